// Submissions over HTTP into a daemon whose store is Redis (issue #19): a bulk request goes to
// Redis in a few script calls (250 each) and keeps their all-or-nothing answers; tickets of a
// project share one template in Redis and keep their own names and params.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "tests/testing/daemon_process.h"
#include "tests/testing/http_client.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/temp_dir.h"

namespace schedd::testing {
namespace {

using json = nlohmann::json;

long long evalsha_calls(const RedisServer& server) {
  RedisReplyPtr r = server.command("INFO commandstats");
  const std::string text(r->str, r->len);
  const std::string tag = "cmdstat_evalsha:calls=";
  auto at = text.find(tag);
  return at == std::string::npos ? 0 : std::stoll(text.substr(at + tag.size()));
}

class DaemonRedisIngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = dir_.write("schedd.toml", std::string("[daemon]\nplugin_dir = \"") +
                                            SCHEDD_PLUGIN_DIR + "\"\nstore = \"" + server_.url() +
                                            "\"\nnode_id = \"node-a\"\n"
                                            "[api]\nlisten = \"127.0.0.1:0\"\n"
                                            "[tickets]\nexecutor = \"ticket\"\n"
                                            "[redis]\nnamespace = \"ingest\"\n");
    daemon_ = std::make_unique<DaemonProcess>(config_);
    ASSERT_TRUE(daemon_->wait_ready()) << daemon_->log();
    client_ = std::make_unique<HttpClient>("127.0.0.1", daemon_->port());
  }
  void TearDown() override {
    if (daemon_) {
      EXPECT_EQ(daemon_->stop().exit_code, 0) << daemon_->log();
    }
  }

  RedisServer server_;
  TempDir dir_;
  std::filesystem::path config_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(DaemonRedisIngestTest, ABulkIsOneScriptCallAndReadsBack) {
  json items = json::array();
  for (int i = 0; i < 1000; ++i) {  // [api] max_bulk
    items.push_back({{"id", "b" + std::to_string(i)},
                     {"executor", "noop"},
                     {"key", "k" + std::to_string(i % 7)},
                     {"not_before", "2099-01-01T00:00:00Z"}});
  }
  const long long before = evalsha_calls(server_);
  auto r = client_->post("/v1/executions/bulk", json{{"executions", items}}.dump());
  ASSERT_EQ(r.status, 201) << r.body;
  // Four submit calls (and the daemon's own claims and next-event calls on its wake-ups):
  // far from one per execution.
  EXPECT_LT(evalsha_calls(server_) - before, 30);
  const json body = json::parse(r.body);
  ASSERT_EQ(body["count"], 1000);
  EXPECT_EQ(body["executions"][9]["id"], "b9");
  EXPECT_EQ(body["executions"][9]["position"], 2);  // k2: b2, b9
  auto one = client_->get("/v1/executions/b9");
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(json::parse(one.body)["status"], "queued");
  auto listed = client_->get("/v1/executions?key=k3&limit=1000");
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_EQ(json::parse(listed.body)["executions"].size(), 143u);  // 3, 10, ..., 997

  // A bulk naming a queued id is refused whole (409), and stores nothing.
  r = client_->post("/v1/executions/bulk", R"({"executions":[{"id":"new-1","executor":"noop"},)"
                                           R"({"id":"b5","executor":"noop"}]})");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_THAT(r.body, ::testing::HasSubstr("executions[1].id"));
  EXPECT_EQ(client_->get("/v1/executions/new-1").status, 404);
}

TEST_F(DaemonRedisIngestTest, TicketsShareATemplateAndKeepTheirParams) {
  auto r = client_->post("/v1/projects/acme/tickets/bulk",
                         R"({"tickets":[{"ticket":"one","params":{"steps":1}},)"
                         R"({"ticket":"two","params":{"steps":2}}],)"
                         R"("params":{"steps":5}})");
  ASSERT_EQ(r.status, 201) << r.body;
  r = client_->post("/v1/projects/acme/tickets", R"({"ticket":"three","params":{"steps":3}})");
  ASSERT_EQ(r.status, 201) << r.body;
  // Again: already queued, reported, not queued twice.
  r = client_->post("/v1/projects/acme/tickets/bulk", R"({"tickets":["three","four"]})");
  ASSERT_EQ(r.status, 201) << r.body;
  const json again = json::parse(r.body);
  EXPECT_EQ(again["count"], 1);
  EXPECT_EQ(again["tickets"][0]["created"], false);
  EXPECT_EQ(again["tickets"][1]["created"], true);

  RedisReplyPtr templates = server_.command("KEYS schedd:ingest:t:s*");
  ASSERT_EQ(templates->type, REDIS_REPLY_ARRAY);
  EXPECT_EQ(templates->elements, 1u);
  for (const char* name : {"one", "two", "three"}) {
    auto t = client_->get(std::string("/v1/projects/acme/tickets/") + name);
    ASSERT_EQ(t.status, 200) << t.body;
    const json j = json::parse(t.body);
    EXPECT_THAT(j.dump(), ::testing::HasSubstr(std::string("\"") + name + "\"")) << j.dump();
  }
  auto two = json::parse(client_->get("/v1/projects/acme/tickets/two").body);
  EXPECT_EQ(two["params"]["steps"], 2) << two.dump();
  EXPECT_EQ(two["ticket"], "two");
}

}  // namespace
}  // namespace schedd::testing
