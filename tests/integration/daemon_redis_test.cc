// `schedd run` with the Redis store (store = "redis://..."): it refuses to start, naming the
// address, when Redis cannot be reached or its password cannot be read; it starts against a
// real redis-server (tests/testing/redis_server.h) and never logs the password.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "tests/testing/daemon_process.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/temp_dir.h"

namespace schedd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A config on `store` with `redis_table` appended ("" for none).
std::filesystem::path write_config(const TempDir& dir, const std::string& store,
                                   const std::string& redis_table = "") {
  return dir.write("schedd.toml", std::string("[daemon]\nplugin_dir = \"") + SCHEDD_PLUGIN_DIR +
                                      "\"\nstore = \"" + store +
                                      "\"\nnode_id = \"node-a\"\n"
                                      "[api]\nlisten = \"127.0.0.1:0\"\n"
                                      "[helpers.tick]\nexecutor = \"noop\"\n"
                                      "schedule = { every = \"1h\" }\n" +
                                      redis_table);
}

// A loopback port nothing listens on: a redis-server's, once it has stopped.
uint16_t closed_port() {
  RedisServer server;
  const uint16_t port = server.port();
  server.stop();
  return port;
}

TEST(DaemonRedisTest, RefusesToStartWhenRedisIsUnreachableAndNamesTheAddress) {
  TempDir dir;
  const std::string url = "redis://127.0.0.1:" + std::to_string(closed_port()) + "/0";
  DaemonProcess daemon(write_config(dir, url, "[redis]\nconnect_timeout = \"500ms\"\n"));
  ProcessResult result = daemon.wait();
  EXPECT_NE(result.exit_code, 0);
  EXPECT_THAT(result.err, HasSubstr("cannot open the store: "));
  EXPECT_THAT(result.err, HasSubstr(url));
  EXPECT_THAT(result.err, Not(HasSubstr("schedd ready")));
}

TEST(DaemonRedisTest, RefusesToStartWhenThePasswordCannotBeRead) {
  TempDir dir;
  const std::string url = "redis://127.0.0.1:" + std::to_string(closed_port()) + "/0";
  DaemonProcess missing_file(write_config(dir, url, "[redis]\npassword_file = \"no-such\"\n"));
  ProcessResult result = missing_file.wait();
  EXPECT_NE(result.exit_code, 0);
  EXPECT_THAT(result.err, HasSubstr(url));
  EXPECT_THAT(result.err, HasSubstr("password_file " + (dir / "no-such").string()));

  ::unsetenv("SCHEDD_DAEMON_REDIS_TEST_NO_PASSWORD");
  DaemonProcess missing_env(
      write_config(dir, url, "[redis]\npassword_env = \"SCHEDD_DAEMON_REDIS_TEST_NO_PASSWORD\"\n"));
  result = missing_env.wait();
  EXPECT_NE(result.exit_code, 0);
  EXPECT_THAT(result.err, HasSubstr("SCHEDD_DAEMON_REDIS_TEST_NO_PASSWORD is not set or empty"));
}

TEST(DaemonRedisTest, StartsOnARealRedisAndNeverLogsThePassword) {
  RedisServer server(RedisServer::Options{.password = "pw-7f3a9c"});
  TempDir dir;
  dir.write("redis-password", "pw-7f3a9c\n");
  DaemonProcess daemon(write_config(dir, server.url(),
                                    "[redis]\nnamespace = \"itest\"\n"
                                    "password_file = \"redis-password\"\n"));
  ASSERT_TRUE(daemon.wait_ready()) << daemon.log();
  EXPECT_THAT(daemon.log(), HasSubstr("store " + server.url()));
  EXPECT_THAT(daemon.log(), HasSubstr("node-a"));
  EXPECT_EQ(daemon.stop().exit_code, 0);
  EXPECT_THAT(daemon.log(), Not(HasSubstr("pw-7f3a9c")));
  // It wrote under its namespace.
  RedisReplyPtr keys = server.command("KEYS schedd:itest:*");
  ASSERT_EQ(keys->type, REDIS_REPLY_ARRAY);
  EXPECT_GT(keys->elements, 0u);
}

TEST(DaemonRedisTest, AWrongPasswordIsRefusedNamingTheAddress) {
  RedisServer server(RedisServer::Options{.password = "right"});
  TempDir dir;
  ::setenv("SCHEDD_DAEMON_REDIS_TEST_PASSWORD", "wrong-5d1e", 1);
  DaemonProcess daemon(write_config(dir, server.url(),
                                    "[redis]\npassword_env = "
                                    "\"SCHEDD_DAEMON_REDIS_TEST_PASSWORD\"\n"));
  ProcessResult result = daemon.wait();
  ::unsetenv("SCHEDD_DAEMON_REDIS_TEST_PASSWORD");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_THAT(result.err, HasSubstr("cannot open the store: "));
  EXPECT_THAT(result.err, HasSubstr(server.url()));
  EXPECT_THAT(result.err, Not(HasSubstr("wrong-5d1e")));
}

}  // namespace
}  // namespace schedd::testing
