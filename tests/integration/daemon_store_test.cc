// The SQLite store as `schedd run` uses it: one daemon per store file, --ephemeral, and
// helper runtime state from the API surviving a restart (and winning over the config file).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "tests/testing/daemon_process.h"
#include "tests/testing/http_client.h"
#include "tests/testing/temp_dir.h"

namespace schedd::testing {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

std::filesystem::path write_config(const TempDir& dir) {
  return dir.write("schedd.toml", std::string(R"([daemon]
plugin_dir = ")") + SCHEDD_PLUGIN_DIR +
                                      R"("
store = "sqlite:state/schedd.db"

[api]
listen = "127.0.0.1:0"

[helpers.tick]
executor = "noop"
schedule = { every = "1h" }
)");
}

TEST(DaemonStoreTest, ASecondDaemonOnTheSameStoreIsRefusedButEphemeralRuns) {
  TempDir dir;
  auto config = write_config(dir);
  DaemonProcess first(config);
  ASSERT_TRUE(first.wait_ready()) << first.log();

  DaemonProcess second(config);
  ProcessResult refused = second.wait();
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_THAT(refused.err, HasSubstr((dir / "state" / "schedd.db").string()));
  EXPECT_THAT(refused.err, HasSubstr("in use by another schedd (pid"));

  DaemonProcess ephemeral(config, {"--ephemeral"});
  ASSERT_TRUE(ephemeral.wait_ready()) << ephemeral.log();
  EXPECT_THAT(ephemeral.log(), HasSubstr("store memory (--ephemeral; configured sqlite:"));
  EXPECT_EQ(ephemeral.stop().exit_code, 0);
  EXPECT_EQ(first.stop().exit_code, 0);
}

TEST(DaemonStoreTest, HelperStateFromTheApiSurvivesAKillAndWinsOverTheConfig) {
  TempDir dir;
  auto config = write_config(dir);
  {
    DaemonProcess d(config);
    ASSERT_TRUE(d.wait_ready()) << d.log();
    HttpClient client("127.0.0.1", d.port());
    auto r = client.post("/v1/helpers/tick/disable", "");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_GE(Json::parse(r.body).value("removed", -1), 1);  // every 1 h over a 2 h window
    d.kill9();
  }
  DaemonProcess d(config);
  ASSERT_TRUE(d.wait_ready()) << d.log();
  EXPECT_THAT(d.log(), HasSubstr("helper states"));
  HttpClient client("127.0.0.1", d.port());
  auto r = client.get("/v1/helpers/tick");
  ASSERT_EQ(r.status, 200) << r.body;
  Json j = Json::parse(r.body);
  EXPECT_EQ(j["state"]["enabled"], false) << r.body;
  EXPECT_TRUE(j["next"].empty()) << r.body;
  EXPECT_EQ(d.stop().exit_code, 0);
}

}  // namespace
}  // namespace schedd::testing
