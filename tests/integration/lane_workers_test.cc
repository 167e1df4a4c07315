// The workers view (GET /v1/lanes/{lane}/workers, `schedctl lanes workers LANE`) on the real
// `schedd run`: runs in flight in process and out of process (with their runner's pid,
// plugin, RSS and runs served), idle workers, and an unknown lane. Every answer is checked
// against docs/openapi.yaml by the HttpClient observer (tests/integration/api_test.cc).
//
// Waits are bounded waits for a condition, never sleeps.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "tests/testing/daemon_process.h"
#include "tests/testing/http_client.h"
#include "tests/testing/process_scan.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace schedd::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using Json = nlohmann::json;

// A daemon with the sleep plugin in process and fx_progress out of process, lane `default` of
// three workers, tickets run by sleep, and a node id of its own.
class WorkersDaemon {
 public:
  WorkersDaemon() {
    fs::create_directories(dir_.path() / "plugins");
    fs::copy_file(fs::path(SCHEDD_PLUGIN_DIR) / "sleep.so", dir_.path() / "plugins" / "sleep.so");
    fs::copy_file(fs::path(SCHEDD_FIXTURE_DIR) / "fx_progress.so",
                  dir_.path() / "plugins" / "fx_progress.so");
    node_ = "workers-" + dir_.path().filename().string();
    dir_.write("schedd.toml", "[daemon]\nplugin_dir = \"plugins\"\nnode_id = \"" + node_ +
                                  "\"\nisolation = \"process\"\n"
                                  "[api]\nlisten = \"127.0.0.1:0\"\n"
                                  "[lanes.default]\nworkers = 3\n"
                                  "[lanes.other]\nworkers = 1\n"
                                  "[tickets]\nexecutor = \"sleep\"\n"
                                  "[plugins.sleep]\nisolation = \"inprocess\"\n");
    daemon_ = std::make_unique<DaemonProcess>(dir_.path() / "schedd.toml");
    ready_ = daemon_->wait_ready();
    if (ready_) http_ = std::make_unique<HttpClient>("127.0.0.1", daemon_->port());
  }
  ~WorkersDaemon() {
    if (daemon_ && !daemon_->exited()) daemon_->stop();
  }

  bool ready() const { return ready_; }
  HttpClient& http() { return *http_; }
  DaemonProcess& daemon() { return *daemon_; }
  uint16_t port() const { return daemon_->port(); }

  Json workers(const std::string& lane) {
    auto r = http_->get("/v1/lanes/" + lane + "/workers");
    EXPECT_EQ(r.status, 200) << r.body;
    return Json::parse(r.body, nullptr, false);
  }
  // The worker entry running `id` in `view`, or null.
  static Json running(const Json& view, const std::string& id) {
    for (const auto& w : view["workers"]) {
      if (w["execution"].is_object() && w["execution"].value("id", "") == id) return w;
    }
    return Json();
  }
  // Waits until `done(view of lane)` holds; returns the last view.
  template <typename Done>
  Json wait_view(const std::string& lane, Done done) {
    Json view;
    wait_until(
        [&] {
          view = workers(lane);
          return done(view);
        },
        30s);
    return view;
  }

 private:
  TempDir dir_;
  std::string node_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<HttpClient> http_;
  bool ready_ = false;
};

// Whether `text` contains a match of the ECMAScript regex `re` (gtest's MatchesRegex has only a
// simple regex syntax on Linux).
bool has_match(const std::string& text, const std::string& re) {
  return std::regex_search(text, std::regex(re));
}

int64_t count_state(const Json& view, const std::string& state) {
  int64_t n = 0;
  for (const auto& w : view["workers"]) n += w.value("state", "") == state ? 1 : 0;
  return n;
}

TEST(LaneWorkersTest, ShowsRunsInProcessAndOutOfProcessAndIdleWorkers) {
  WorkersDaemon d;
  ASSERT_TRUE(d.ready()) << d.daemon().log();

  // Nothing runs yet: three idle workers, numbered 1..3.
  Json view = d.workers("default");
  EXPECT_EQ(view.value("lane", ""), "default");
  EXPECT_EQ(view.value("size", 0), 3);
  EXPECT_EQ(view.value("busy", -1), 0);
  ASSERT_EQ(view["workers"].size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const Json& w = view["workers"][static_cast<std::size_t>(i)];
    EXPECT_EQ(w.value("worker", 0), i + 1);
    EXPECT_EQ(w.value("state", ""), "idle");
    EXPECT_TRUE(w["idle_since"].is_string());
    EXPECT_TRUE(w["execution"].is_null());
  }

  // Out of process: fx_progress reports progress after each 20 ms step.
  auto r = d.http().post("/v1/executions", R"({"id": "prog-1", "executor": "fx_progress",
      "key": "k-prog", "params": {"steps": 100000, "step": "20ms"}})");
  ASSERT_EQ(r.status, 201) << r.body;
  // In process: a ticket of project "acme" that sleeps an hour.
  r = d.http().post("/v1/projects/acme/tickets",
                    R"({"ticket": "T-1", "params": {"duration": "1h"}})");
  ASSERT_EQ(r.status, 201) << r.body;

  view = d.wait_view("default", [](const Json& v) {
    const Json p = WorkersDaemon::running(v, "prog-1");
    return p.is_object() && p["execution"]["progress"].is_object() &&
           p["execution"]["runner"].is_object() &&
           WorkersDaemon::running(v, "acme:T-1").is_object() &&
           // the ticket shows once begun; its first progress report comes a moment later
           WorkersDaemon::running(v, "acme:T-1")["execution"]["progress"].is_object();
  });
  EXPECT_EQ(view.value("busy", 0), 2) << view.dump(2);
  EXPECT_EQ(count_state(view, "running"), 2);
  EXPECT_EQ(count_state(view, "idle"), 1);

  // The out-of-process run: its runner is a live schedd-runner serving fx_progress.so.
  const Json prog = WorkersDaemon::running(view, "prog-1");
  ASSERT_TRUE(prog.is_object()) << view.dump(2);
  EXPECT_EQ(prog.value("state", ""), "running");
  EXPECT_TRUE(prog["idle_since"].is_null());
  const Json& pe = prog["execution"];
  EXPECT_EQ(pe.value("key", ""), "k-prog");
  EXPECT_EQ(pe.value("origin", ""), "adhoc");
  EXPECT_EQ(pe.value("executor", ""), "fx_progress");
  EXPECT_EQ(pe.value("attempt", 0), 1);
  EXPECT_FALSE(pe.value("stop_requested", true));
  ASSERT_TRUE(pe["since"].is_string());
  EXPECT_TRUE(
      has_match(pe["since"].get<std::string>(), R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$)"))
      << pe.dump();
  ASSERT_TRUE(pe["progress"].is_object()) << pe.dump(2);
  EXPECT_GT(pe["progress"]["fraction"].get<double>(), 0.0);
  EXPECT_TRUE(has_match(pe["progress"].value("message", ""), R"(^step \d+ of 100000$)"))
      << pe.dump();
  const Json& runner = pe["runner"];
  const auto pid = static_cast<pid_t>(runner.value("pid", 0LL));
  ASSERT_GT(pid, 0) << runner.dump();
  EXPECT_NE(pid, d.daemon().pid());
  EXPECT_THAT(command_line(pid), HasSubstr("fx_progress.so"));
  EXPECT_EQ(runner.value("plugin", ""), "fx_progress");
  EXPECT_EQ(runner.value("version", ""), "1.0.0");
  EXPECT_EQ(runner.value("runs_served", -1), 0);
  ASSERT_TRUE(runner["rss_bytes"].is_number()) << runner.dump();
  EXPECT_GT(runner["rss_bytes"].get<int64_t>(), 0);

  // The in-process ticket: key = project, no runner; sleep reports 0 % as it begins.
  const Json ticket = WorkersDaemon::running(view, "acme:T-1");
  ASSERT_TRUE(ticket.is_object()) << view.dump(2);
  const Json& te = ticket["execution"];
  EXPECT_EQ(te.value("origin", ""), "ticket");
  EXPECT_EQ(te.value("project", ""), "acme");
  EXPECT_EQ(te.value("ticket", ""), "T-1");
  EXPECT_EQ(te.value("key", ""), "acme");
  EXPECT_EQ(te.value("executor", ""), "sleep");
  EXPECT_TRUE(te["runner"].is_null());
  ASSERT_TRUE(te["progress"].is_object()) << te.dump(2);
  EXPECT_EQ(te["progress"].value("fraction", -1.0), 0.0);
  EXPECT_EQ(te["progress"].value("message", ""), "waiting 3600000 ms");
  EXPECT_TRUE(te["since"].is_string());
  // The two run on different workers.
  EXPECT_NE(prog.value("worker", 0), ticket.value("worker", 0));

  // The other lane is idle; an unknown lane is a 404 naming it.
  Json other = d.workers("other");
  ASSERT_EQ(other["workers"].size(), 1u);
  EXPECT_EQ(other["workers"][0].value("state", ""), "idle");
  auto missing = d.http().get("/v1/lanes/nosuch/workers");
  EXPECT_EQ(missing.status, 404);
  EXPECT_THAT(missing.body, HasSubstr("unknown lane \\\"nosuch\\\""));

  // schedctl shows the same.
  auto ctl = run_process({SCHEDCTL_BINARY, "--addr", "127.0.0.1:" + std::to_string(d.port()),
                          "lanes", "workers", "default"});
  EXPECT_EQ(ctl.exit_code, 0) << ctl.err;
  EXPECT_THAT(ctl.out, HasSubstr("lane default: 3 workers, 2 busy"));
  EXPECT_TRUE(has_match(ctl.out, R"(\n\d +running +\S+Z +prog-1 key k-prog )")) << ctl.out;
  EXPECT_THAT(ctl.out, HasSubstr("acme:T-1 key acme (ticket T-1 of project acme) attempt 1"));
  EXPECT_THAT(ctl.out, HasSubstr("runner pid " + std::to_string(pid) + ", plugin fx_progress"));
  EXPECT_THAT(ctl.out, HasSubstr("0 runs served"));
  EXPECT_TRUE(has_match(ctl.out, R"(\d+% step \d+ of 100000 \(at \S+Z\))")) << ctl.out;
  EXPECT_TRUE(has_match(ctl.out, R"(\n\d +idle +\S+Z +-\n)")) << ctl.out;
  auto unknown = run_process({SCHEDCTL_BINARY, "--addr", "127.0.0.1:" + std::to_string(d.port()),
                              "lanes", "workers", "nosuch"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("unknown lane \"nosuch\""));

  // A cancelled run is marked as stopping until it ends; then its worker is idle again, since
  // the run ended.
  ASSERT_EQ(d.http().post("/v1/executions/prog-1/cancel?stop=true", "").status, 202);
  view = d.wait_view(
      "default", [](const Json& v) { return !WorkersDaemon::running(v, "prog-1").is_object(); });
  EXPECT_EQ(view.value("busy", 0), 1) << view.dump(2);
  EXPECT_EQ(count_state(view, "idle"), 2);

  // The runner is kept warm: the next run of fx_progress gets it, having served one run.
  r = d.http().post("/v1/executions", R"({"id": "prog-2", "executor": "fx_progress",
      "params": {"steps": 100000, "step": "20ms"}})");
  ASSERT_EQ(r.status, 201) << r.body;
  view = d.wait_view("default", [](const Json& v) {
    const Json p = WorkersDaemon::running(v, "prog-2");
    return p.is_object() && p["execution"]["runner"].is_object();
  });
  const Json again = WorkersDaemon::running(view, "prog-2")["execution"]["runner"];
  EXPECT_EQ(again.value("pid", 0LL), static_cast<long long>(pid)) << view.dump(2);
  EXPECT_EQ(again.value("runs_served", -1), 1);
}

}  // namespace
}  // namespace schedd::testing
