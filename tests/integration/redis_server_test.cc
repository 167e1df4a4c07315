// The RedisServer harness (tests/testing/redis_server.h) against the real redis-server: it
// answers on its own port, its data survives a graceful restart and a SIGKILL (append-only
// file, fsync always), stop() closes the port, and a missing binary fails loudly.
#include "tests/testing/redis_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "core/store/redis_store.h"

namespace schedd::testing {
namespace {

using ::testing::HasSubstr;

std::string get(const RedisServer& server, const std::string& key) {
  RedisReplyPtr r = server.command("GET " + key);
  if (r->type != REDIS_REPLY_STRING) return "<type " + std::to_string(r->type) + ">";
  return std::string(r->str, r->len);
}

void set(const RedisServer& server, const std::string& key, const std::string& value) {
  RedisReplyPtr r = server.command("SET " + key + " " + value);
  ASSERT_EQ(r->type, REDIS_REPLY_STATUS) << (r->str ? r->str : "");
}

TEST(RedisServerTest, AnswersOnItsOwnLoopbackPort) {
  RedisServer server;
  EXPECT_TRUE(server.running());
  EXPECT_GT(server.pid(), 0);
  EXPECT_EQ(server.url(), "redis://127.0.0.1:" + std::to_string(server.port()) + "/0");
  // The store reads the same address from the URL.
  StatusOr<RedisAddress> address = parse_redis_url(server.url());
  ASSERT_TRUE(address.is_ok()) << address.status().message();
  EXPECT_EQ(address->host, "127.0.0.1");
  EXPECT_EQ(address->port, server.port());
  EXPECT_EQ(address->db, 0);

  RedisReplyPtr pong = server.command("PING");
  ASSERT_EQ(pong->type, REDIS_REPLY_STATUS);
  EXPECT_EQ(std::string(pong->str, pong->len), "PONG");
  RedisReplyPtr aof = server.command("CONFIG GET appendfsync");
  ASSERT_EQ(aof->type, REDIS_REPLY_ARRAY);
  ASSERT_EQ(aof->elements, 2u);
  EXPECT_EQ(std::string(aof->element[1]->str, aof->element[1]->len), "always");

  RedisServer other;
  EXPECT_NE(other.port(), server.port());
  set(server, "k", "one");
  RedisReplyPtr missing = other.command("EXISTS k");
  EXPECT_EQ(missing->integer, 0);
}

TEST(RedisServerTest, RestartKeepsDataOnTheSamePort) {
  RedisServer server;
  const uint16_t port = server.port();
  const pid_t first = server.pid();
  set(server, "greeting", "hello");
  server.restart();
  EXPECT_EQ(server.port(), port);
  EXPECT_NE(server.pid(), first);
  EXPECT_EQ(get(server, "greeting"), "hello");
}

TEST(RedisServerTest, Kill9LosesNoAcknowledgedWrite) {
  RedisServer server;
  for (int i = 0; i < 100; ++i) set(server, "k" + std::to_string(i), std::to_string(i));
  server.kill9();
  EXPECT_FALSE(server.running());
  server.restart();
  EXPECT_EQ(get(server, "k0"), "0");
  EXPECT_EQ(get(server, "k99"), "99");
  RedisReplyPtr size = server.command("DBSIZE");
  EXPECT_EQ(size->integer, 100);
}

TEST(RedisServerTest, StopClosesThePortAndWaitsForTheProcess) {
  RedisServer server;
  const pid_t pid = server.pid();
  server.stop();
  EXPECT_FALSE(server.running());
  EXPECT_EQ(server.pid(), 0);
  EXPECT_FALSE(RedisServer::process_alive(pid));
  server.stop();  // idempotent
}

TEST(RedisServerTest, APasswordIsRequiredAndTheHarnessUsesIt) {
  RedisServer server(RedisServer::Options{.password = "s3cret"});
  set(server, "k", "v");  // the harness's connections AUTH
  struct timeval tv = {2, 0};
  RedisContextPtr plain(redisConnectWithTimeout("127.0.0.1", server.port(), tv));
  ASSERT_TRUE(plain && plain->err == 0);
  RedisReplyPtr refused(static_cast<redisReply*>(redisCommand(plain.get(), "GET k")));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->type, REDIS_REPLY_ERROR);
  EXPECT_THAT(std::string(refused->str, refused->len), HasSubstr("NOAUTH"));
  server.restart();  // waits for PONG through AUTH, and stops through AUTH
  EXPECT_EQ(get(server, "k"), "v");
}

TEST(RedisServerTest, MissingBinaryFailsLoudly) {
  try {
    RedisServer server(RedisServer::Options{.binary = "/nonexistent/redis-server"});
    ADD_FAILURE() << "started without a binary";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/redis-server"));
    EXPECT_THAT(e.what(), HasSubstr("install redis-server"));
  }
  try {
    RedisServer server(RedisServer::Options{.binary = "no-such-redis-server-binary"});
    ADD_FAILURE() << "started without a binary";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("not found on PATH"));
  }
}

TEST(RedisServerTest, AServerThatCannotStartReportsItsLog) {
  try {
    RedisServer server(RedisServer::Options{.extra_args = {"--no-such-option", "1"}});
    ADD_FAILURE() << "started with a bad option";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("no-such-option"));
  }
}

}  // namespace
}  // namespace schedd::testing
