// GET /metrics of a real daemon (issue #20): the whole answer passes a strict exposition-format
// check (tests/testing/prom_text.h) with the SQLite store and with the Redis store; every
// process metric is there with a plausible value; HTTP requests are counted under their route
// template, never their raw path; the store's own metrics (SQLite commit and fsync, Redis round
// trip, reconnects and script errors) move when the store works.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "tests/testing/daemon_process.h"
#include "tests/testing/http_client.h"
#include "tests/testing/prom_text.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/temp_dir.h"

namespace schedd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::filesystem::path metrics_config(const TempDir& dir, const std::string& store) {
  return dir.write("schedd.toml", std::string("[daemon]\nplugin_dir = \"") + SCHEDD_PLUGIN_DIR +
                                      "\"\ndata_dir = \"" + dir.path().string() + "\"\nstore = \"" +
                                      store +
                                      "\"\nnode_id = \"node-m\"\n"
                                      "[api]\nlisten = \"127.0.0.1:0\"\n"
                                      "[helpers.tick-7q2]\nexecutor = \"noop\"\n"
                                      "schedule = { every = \"1h\" }\n");
}

PromText scrape(HttpClient& c) {
  auto r = c.get("/metrics");
  EXPECT_EQ(r.status, 200) << r.body;
  PromText p = PromText::parse(r.body);
  EXPECT_TRUE(p.ok()) << p.error_text() << "\n" << r.body;
  return p;
}

// Runs one noop through the API and waits until it succeeded; returns its id.
std::string run_one(HttpClient& c) {
  auto r = c.post("/v1/executions", R"({"executor":"noop"})");
  EXPECT_EQ(r.status, 201) << r.body;
  const std::string id = nlohmann::json::parse(r.body).value("id", "");
  for (int i = 0; i < 2000; ++i) {
    auto e = c.get("/v1/executions/" + id);
    if (e.body.find("\"status\":\"succeeded\"") != std::string::npos) return id;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ADD_FAILURE() << "execution " << id << " did not succeed";
  return id;
}

double count_of(const PromText& p, const std::string& name,
                const std::map<std::string, std::string>& labels) {
  auto v = p.value(name, labels);
  return v ? *v : -1;
}

// What every daemon's scrape must show, whatever its store, after `run_one`, a GET of the
// helper and a GET of an unknown path.
void expect_process_and_http(const PromText& p, const std::string& execution_id) {
  // The process, as Prometheus' client libraries name it.
  ASSERT_TRUE(p.value("process_resident_memory_bytes"));
  EXPECT_GT(*p.value("process_resident_memory_bytes"), 1 << 20);
  EXPECT_LT(*p.value("process_resident_memory_bytes"), 4.0 * (1 << 30));
  ASSERT_TRUE(p.value("process_virtual_memory_bytes"));
  EXPECT_GE(*p.value("process_virtual_memory_bytes"), *p.value("process_resident_memory_bytes"));
  ASSERT_TRUE(p.value("process_open_fds"));
  ASSERT_TRUE(p.value("process_max_fds"));
  // At least stdin, stdout, stderr, the listening socket and the scrape's connection.
  EXPECT_GE(*p.value("process_open_fds"), 5);
  EXPECT_LT(*p.value("process_open_fds"), *p.value("process_max_fds"));
  ASSERT_TRUE(p.value("process_threads"));
  EXPECT_GE(*p.value("process_threads"), 3);  // main, HTTP I/O, dispatcher at least
  ASSERT_TRUE(p.value("process_cpu_seconds_total"));
  EXPECT_GE(*p.value("process_cpu_seconds_total"), 0);
  EXPECT_LT(*p.value("process_cpu_seconds_total"), 600);
  ASSERT_TRUE(p.value("process_start_time_seconds"));
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LE(*p.value("process_start_time_seconds"), now + 2);
  EXPECT_GT(*p.value("process_start_time_seconds"), now - 300);
  EXPECT_EQ(p.value("schedd_build_info", {{"version", SCHEDD_VERSION}, {"abi", "1"}}), 1.0);

  // HTTP: each request under its route template and status.
  EXPECT_EQ(count_of(p, "schedd_http_requests_total",
                     {{"method", "POST"}, {"route", "/v1/executions"}, {"code", "201"}}),
            1);
  EXPECT_GE(count_of(p, "schedd_http_requests_total",
                     {{"method", "GET"}, {"route", "/v1/executions/{id}"}, {"code", "200"}}),
            1);
  EXPECT_EQ(count_of(p, "schedd_http_requests_total",
                     {{"method", "GET"}, {"route", "/v1/helpers/{name}"}, {"code", "200"}}),
            1);
  EXPECT_EQ(count_of(p, "schedd_http_requests_total",
                     {{"method", "GET"}, {"route", "/v1/helpers/{name}"}, {"code", "404"}}),
            1);
  EXPECT_EQ(count_of(p, "schedd_http_requests_total", {{"route", "unmatched"}, {"code", "404"}}),
            1);
  // The first scrape was answered before this one was written.
  EXPECT_EQ(count_of(p, "schedd_http_requests_total",
                     {{"method", "GET"}, {"route", "/metrics"}, {"code", "200"}}),
            1);
  EXPECT_EQ(count_of(p, "schedd_http_request_duration_seconds_count",
                     {{"method", "GET"}, {"route", "/v1/helpers/{name}"}}),
            2);
  // Bounded labels: no raw path, helper name or execution id.
  for (const auto& s : p.samples()) {
    for (const auto& [k, v] : s.labels) {
      EXPECT_THAT(v, Not(HasSubstr("tick-7q2"))) << s.name;
      EXPECT_THAT(v, Not(HasSubstr("no-such-7q2"))) << s.name;
      EXPECT_THAT(v, Not(HasSubstr(execution_id))) << s.name;
    }
  }
  EXPECT_EQ(p.value("schedd_ready"), 1.0);
  EXPECT_EQ(p.value("schedd_store_healthy"), 1.0);
  EXPECT_GE(count_of(p, "schedd_executions_total",
                     {{"origin", "adhoc"}, {"lane", "default"}, {"status", "succeeded"}}),
            1);
  // The planner planned the window once at least.
  EXPECT_GE(*p.value("schedd_planner_rounds_total"), 1);
  ASSERT_TRUE(p.value("schedd_planner_planned_until_seconds"));
  EXPECT_NEAR(*p.value("schedd_planner_planned_until_seconds") - now,
              *p.value("schedd_planner_lookahead_seconds"), 300);
  // The noop plugin runs out of process (the default): its runner served the run.
  EXPECT_GE(count_of(p, "schedd_runner_runs_total", {{"plugin", "noop.so"}}), 1);
}

// The requests expect_process_and_http counts; returns the execution's id.
std::string exercise(HttpClient& c) {
  const std::string id = run_one(c);
  EXPECT_EQ(c.get("/v1/helpers/tick-7q2").status, 200);
  EXPECT_EQ(c.get("/v1/helpers/no-such-7q2").status, 404);
  EXPECT_EQ(c.get("/no-such-7q2/" + id).status, 404);
  scrape(c);
  return id;
}

TEST(MetricsTest, ASqliteDaemonsScrapeIsStrictlyValidWithProcessHttpAndStoreMetrics) {
  TempDir dir;
  DaemonProcess daemon(metrics_config(dir, "sqlite:schedd.db"));
  ASSERT_TRUE(daemon.wait_ready()) << daemon.log();
  HttpClient c("127.0.0.1", daemon.port());
  const std::string id = exercise(c);
  PromText p = scrape(c);
  expect_process_and_http(p, id);
  // The submission and the run were committed and fsynced (durability "full", the default).
  EXPECT_GE(*p.value("schedd_sqlite_commits_total"), 1);
  EXPECT_EQ(p.value("schedd_sqlite_commit_seconds_count"), p.value("schedd_sqlite_commits_total"));
  EXPECT_GE(*p.value("schedd_sqlite_fsync_seconds_count"), 1);
  EXPECT_GT(*p.value("schedd_sqlite_fsync_seconds_sum"), 0);
  EXPECT_EQ(p.value("schedd_sqlite_write_failures_total"), 0.0);
  EXPECT_TRUE(p.value("schedd_sqlite_pending_changes"));
  EXPECT_TRUE(p.find("schedd_redis_connected").empty());

  // A request the transport refuses before routing (too large) is counted as "unmatched",
  // without a latency (it was never read whole).
  EXPECT_EQ(c.post("/v1/executions", std::string(2 << 20, 'x')).status, 413);
  PromText q = scrape(c);
  EXPECT_EQ(count_of(q, "schedd_http_requests_total", {{"route", "unmatched"}, {"code", "413"}}),
            1);
  EXPECT_EQ(count_of(q, "schedd_http_request_duration_seconds_count",
                     {{"method", "other"}, {"route", "unmatched"}}),
            1);  // the 404 of exercise() only
  EXPECT_EQ(daemon.stop().exit_code, 0);
}

TEST(MetricsTest, ARedisDaemonsScrapeIsStrictlyValidAndCountsReconnects) {
  RedisServer server;
  TempDir dir;
  DaemonProcess daemon(metrics_config(dir, server.url()));
  ASSERT_TRUE(daemon.wait_ready()) << daemon.log();
  HttpClient c("127.0.0.1", daemon.port());
  const std::string id = exercise(c);
  PromText p = scrape(c);
  expect_process_and_http(p, id);
  EXPECT_EQ(p.value("schedd_redis_connected"), 1.0);
  EXPECT_GE(*p.value("schedd_redis_round_trip_seconds_count"), 1);
  EXPECT_GT(*p.value("schedd_redis_round_trip_seconds_sum"), 0);
  EXPECT_EQ(p.value("schedd_redis_reconnects_total"), 0.0);
  EXPECT_EQ(p.value("schedd_redis_script_errors_total"), 0.0);
  EXPECT_TRUE(p.find("schedd_sqlite_commits_total").empty());

  // Redis goes away: the store is unhealthy, the daemon not ready, and it says so.
  server.stop();
  bool down = false;
  for (int i = 0; i < 1000 && !down; ++i) {
    (void)c.post("/v1/executions", R"({"executor":"noop"})");  // notices the lost connection
    PromText q = scrape(c);
    down = q.value("schedd_redis_connected") == 0.0 && q.value("schedd_store_healthy") == 0.0 &&
           q.value("schedd_ready") == 0.0;
    if (!down) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(down) << daemon.log();
  // It comes back: one reconnect, connected and ready again.
  server.start_again();
  bool up = false;
  PromText q = PromText::parse("");
  for (int i = 0; i < 1000 && !up; ++i) {
    q = scrape(c);
    up = q.value("schedd_redis_connected") == 1.0 && q.value("schedd_ready") == 1.0;
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(up) << daemon.log();
  EXPECT_GE(*q.value("schedd_redis_reconnects_total"), 1);
  EXPECT_GE(*q.value("schedd_redis_connection_losses_total"), 1);
  EXPECT_EQ(daemon.stop().exit_code, 0);
}

}  // namespace
}  // namespace schedd::testing
