// Live reload, lane scaling, pause and drain on the real daemon over HTTP and signals
// (issue #17): real plugins, a real SQLite file, the fx_record fixture's run records for
// "no loss, no duplicate, no key overlap".
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <thread>

#include "tests/testing/daemon_process.h"
#include "tests/testing/http_client.h"
#include "tests/testing/run_records.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace schedd::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;
using namespace std::chrono_literals;

// The config: SQLite in `dir`, the API on port 0 with the token in dir/token, the fx_record
// plugin, tickets run by it, lane `default` with `workers`, and `helpers` as given (TOML).
fs::path write_config(const TempDir& dir, const std::string& token, int workers,
                      const std::string& helpers, const std::string& extra_daemon = "") {
  fs::create_directories(dir.path() / "plugins");
  const fs::path plugin = dir.path() / "plugins" / "fx_record.so";
  if (!fs::exists(plugin)) fs::copy_file(fs::path(SCHEDD_FIXTURE_DIR) / "fx_record.so", plugin);
  dir.write("token", token + "\n");
  // Written aside and renamed: a reload never reads half a file.
  const fs::path written =
      dir.write("schedd.toml.new",
                "[daemon]\nplugin_dir = \"plugins\"\n"
                "store = \"sqlite:state/schedd.db\"\n"
                "shutdown_grace = \"5s\"\n" +
                    extra_daemon +
                    "[api]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"token\"\n"
                    "[capacity]\nqueued = 100000\n"
                    "[lanes.default]\nworkers = " +
                    std::to_string(workers) + "\n[tickets]\nexecutor = \"record\"\n" + helpers);
  fs::rename(written, dir / "schedd.toml");
  return dir / "schedd.toml";
}

std::string every_hour(const std::string& name, const std::string& every = "1h") {
  return "\n[helpers." + name + "]\nexecutor = \"record\"\nschedule = { every = \"" + every +
         "\" }\nparams = { file = \"/dev/null\" }\n";
}

std::set<std::string> helper_names(HttpClient& c) {
  auto r = c.get("/v1/helpers");
  EXPECT_EQ(r.status, 200) << r.body;
  std::set<std::string> out;
  if (r.status != 200) return out;
  const Json j = Json::parse(r.body);
  for (const auto& h : j["helpers"]) out.insert(h.value("name", ""));
  return out;
}

Json lane(HttpClient& c, const std::string& name) {
  auto r = c.get("/v1/lanes");
  EXPECT_EQ(r.status, 200) << r.body;
  if (r.status != 200) return Json::object();
  const Json j = Json::parse(r.body);
  for (const auto& l : j["lanes"]) {
    if (l.value("name", "") == name) return l;
  }
  return Json::object();
}

// Each test's folder and, once start() is called, a daemon on write_config(dir, "t", ...) and
// a client that holds its token: the setup the tests below share.
class ReloadTest : public ::testing::Test {
 protected:
  // Writes the config, starts the daemon and waits until it is ready; a fatal failure
  // otherwise (call it under ASSERT_NO_FATAL_FAILURE).
  void start(int workers, const std::string& helpers) {
    write_config(dir, "t", workers, helpers);
    daemon_ = std::make_unique<DaemonProcess>(dir.path() / "schedd.toml");
    ASSERT_TRUE(daemon_->wait_ready()) << daemon_->log();
    client_ = std::make_unique<HttpClient>("127.0.0.1", daemon_->port(), "t");
  }
  DaemonProcess& daemon() { return *daemon_; }
  HttpClient& client() { return *client_; }

  TempDir dir;  // outlives the daemon (members are destroyed in reverse order)

 private:
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<HttpClient> client_;
};

using LaneControlApiTest = ReloadTest;

TEST_F(ReloadTest, AValidChangeAppliesAnInvalidOneKeepsTheOldConfig) {
  write_config(dir, "first-token", 2, every_hour("keep") + every_hour("gone"));
  DaemonProcess d(dir.path() / "schedd.toml");
  ASSERT_TRUE(d.wait_ready()) << d.log();
  HttpClient first("127.0.0.1", d.port(), "first-token");
  EXPECT_EQ(helper_names(first), (std::set<std::string>{"keep", "gone"}));
  EXPECT_EQ(lane(first, "default").value("workers", 0), 2);

  // Valid: a helper added, one removed, one rescheduled, the lane resized, the token rotated.
  write_config(dir, "second-token", 3, every_hour("keep", "2h") + every_hour("added"));
  d.signal(SIGHUP);
  ASSERT_TRUE(d.wait_for_log("reload applied")) << d.log();
  HttpClient second("127.0.0.1", d.port(), "second-token");
  EXPECT_EQ(first.get("/v1/helpers").status, 401);
  EXPECT_EQ(helper_names(second), (std::set<std::string>{"keep", "added"}));
  EXPECT_EQ(lane(second, "default").value("workers", 0), 3);
  auto keep = Json::parse(second.get("/v1/helpers/keep").body);
  EXPECT_EQ(keep["config"]["schedule"].value("every", ""), "2h") << keep.dump();
  EXPECT_THAT(d.log(), HasSubstr("reload: helper gone: removed"));
  EXPECT_THAT(d.log(), HasSubstr("reload: api tokens: replaced"));

  // Invalid: the old config stays, every error is named with its place.
  dir.write("schedd.toml",
            "[daemon]\nplugin_dir = \"plugins\"\nworkres = 3\n"
            "[helpers.bad]\nexecutor = \"record\"\nschedule = { cron = \"61 * * * *\" }\n");
  auto refused = second.post("/v1/system/reload", "");
  EXPECT_EQ(refused.status, 422) << refused.body;
  Json error = Json::parse(refused.body)["error"];
  EXPECT_EQ(error.value("code", ""), "invalid_config");
  EXPECT_FALSE(error.value("applied", true));
  ASSERT_TRUE(error["errors"].is_array());
  EXPECT_GE(error["errors"].size(), 1u);
  EXPECT_THAT(error["errors"][0].get<std::string>(), HasSubstr("schedd.toml:3:1"));
  EXPECT_EQ(helper_names(second), (std::set<std::string>{"keep", "added"}));
  EXPECT_EQ(lane(second, "default").value("workers", 0), 3);
  EXPECT_THAT(d.log(), HasSubstr("reload refused"));

  // What cannot change live is named, and keeps its running value.
  write_config(dir, "second-token", 3, every_hour("keep", "2h") + every_hour("added"),
               "history_retention = \"48h\"\n");
  const std::string text = read_file(dir / "schedd.toml");
  dir.write("schedd.toml", std::regex_replace(text, std::regex("sqlite:state/schedd.db"),
                                              "sqlite:state/other.db"));
  auto restart = second.post("/v1/system/reload", "");
  ASSERT_EQ(restart.status, 200) << restart.body;
  Json report = Json::parse(restart.body);
  EXPECT_TRUE(report.value("applied", false));
  std::string needs = report["needs_restart"].dump();
  EXPECT_THAT(needs, HasSubstr("store: sqlite:state/schedd.db -> sqlite:state/other.db"));
  // History retention applies live (the dispatcher prunes with the new one at once).
  EXPECT_THAT(needs, Not(HasSubstr("history_retention")));
  EXPECT_THAT(report["changes"].dump(), HasSubstr("history_retention: 1d -> 2d"));

  // schedctl says the same.
  auto ctl = run_process({SCHEDCTL_BINARY, "--addr", "127.0.0.1:" + std::to_string(d.port()),
                          "--token", "second-token", "reload"});
  EXPECT_EQ(ctl.exit_code, 0) << ctl.err;
  EXPECT_THAT(ctl.out, HasSubstr("needs a restart to change:"));
  auto result = d.stop();
  EXPECT_EQ(result.exit_code, 0);
}

// Submits `n` tickets to each of `projects` (key = project), each working `work`.
std::vector<std::string> submit_tickets(HttpClient& c, const fs::path& records, int n, int projects,
                                        const std::string& work, const std::string& prefix) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    const std::string project = "p" + std::to_string(i % projects);
    Json body = {{"ticket", prefix + std::to_string(i)},
                 {"params", {{"file", records.string()}, {"duration", work}}}};
    auto r = c.post("/v1/projects/" + project + "/tickets", body.dump());
    EXPECT_EQ(r.status, 201) << r.body;
    if (r.status == 201) ids.push_back(Json::parse(r.body).value("id", ""));
  }
  return ids;
}

// Waits until every id is terminal; returns how many succeeded.
int wait_all(HttpClient& c, const std::vector<std::string>& ids) {
  int ok = 0;
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  for (const auto& id : ids) {
    while (true) {
      auto r = c.get("/v1/executions/" + id);
      std::string status = r.status == 200 ? Json::parse(r.body).value("status", "") : "";
      if (status == "succeeded") ++ok;
      if ((status != "queued" && status != "running") ||
          std::chrono::steady_clock::now() > deadline) {
        EXPECT_EQ(status, "succeeded") << id << ": " << r.body;
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
  }
  return ok;
}

// Every ticket ran once, and no two runs of a key overlapped.
void expect_each_once_without_overlap(const fs::path& records,
                                      const std::vector<std::string>& ids) {
  auto runs = read_runs(records);
  std::map<std::string, int> count;
  for (const auto& r : runs) ++count[r.id];
  for (const auto& id : ids) EXPECT_EQ(count[id], 1) << id;
  EXPECT_EQ(runs.size(), ids.size());
  EXPECT_EQ(count_key_overlaps(runs), 0u);
}

TEST_F(ReloadTest, APluginAddedToTheFolderServesNewRunsAfterAReload) {
  ASSERT_NO_FATAL_FAILURE(start(2, every_hour("a")));
  DaemonProcess& d = daemon();
  HttpClient& c = client();
  const std::string submit = R"({"executor":"fx_progress","params":{"steps":2,"step":"10ms"}})";
  EXPECT_EQ(c.post("/v1/executions", submit).status, 404);  // unknown executor

  fs::copy_file(fs::path(SCHEDD_FIXTURE_DIR) / "fx_progress.so",
                dir.path() / "plugins" / "fx_progress.so");
  auto r = c.post("/v1/system/reload", "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr("plugin fx_progress 1.0.0: loaded from"));
  auto s = c.post("/v1/executions", submit);
  ASSERT_EQ(s.status, 201) << s.body;
  const std::string id = Json::parse(s.body).value("id", "");
  EXPECT_EQ(wait_all(c, {id}), 1);
  EXPECT_EQ(d.stop().exit_code, 0);
}

TEST_F(ReloadTest, AnUpgradedPluginServesNewRunsWhileARunInFlightFinishesOnTheOldOne) {
  const fs::path records = dir.path() / "runs.txt";
  ASSERT_NO_FATAL_FAILURE(start(2, ""));
  DaemonProcess& d = daemon();
  HttpClient& c = client();
  auto submit = [&](const std::string& id, const std::string& work) {
    Json body = {{"executor", "record"},
                 {"id", id},
                 {"params", {{"file", records.string()}, {"duration", work}}}};
    auto r = c.post("/v1/executions", body.dump());
    EXPECT_EQ(r.status, 201) << r.body;
  };
  submit("in-flight", "3s");
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (read_runs(records).empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(read_runs(records).size(), 1u);  // it runs, on 1.0.0

  // Version 2 replaces the file (renamed over it, as a package upgrade does).
  fs::copy_file(fs::path(SCHEDD_FIXTURE_DIR) / "fx_record_v2.so", dir.path() / "fx_record.new");
  fs::rename(dir.path() / "fx_record.new", dir.path() / "plugins" / "fx_record.so");
  auto r = c.post("/v1/system/reload", "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr("plugin fx_record 2.0.0: loaded from"));
  EXPECT_THAT(r.body, HasSubstr("(was 1.0.0)"));
  submit("after", "10ms");
  ASSERT_EQ(wait_all(c, {"after", "in-flight"}), 2);
  EXPECT_EQ(Json::parse(c.get("/v1/executions/after").body).value("output", ""), "fx_record 2.0.0");
  EXPECT_EQ(Json::parse(c.get("/v1/executions/in-flight").body).value("output", ""),
            "fx_record 1.0.0");
  EXPECT_EQ(d.stop().exit_code, 0);
}

TEST_F(ReloadTest, ReloadsUnderLoadLoseNothingDuplicateNothingAndOverlapNoKey) {
  const fs::path records = dir.path() / "runs.txt";
  ASSERT_NO_FATAL_FAILURE(start(4, every_hour("a")));
  DaemonProcess& d = daemon();
  HttpClient& c = client();
  std::vector<std::string> ids;
  std::thread reloader([&] {
    for (int i = 0; i < 10; ++i) {
      // Alternate the lane's size and the helper set while tickets run.
      write_config(dir, "t", i % 2 == 0 ? 2 : 6,
                   every_hour("a") + (i % 2 == 0 ? every_hour("b") : std::string()));
      d.signal(SIGHUP);
      std::this_thread::sleep_for(150ms);
    }
  });
  for (int round = 0; round < 5; ++round) {
    auto more = submit_tickets(c, records, 40, 8, "20ms", "r" + std::to_string(round) + "-");
    ids.insert(ids.end(), more.begin(), more.end());
    std::this_thread::sleep_for(100ms);
  }
  reloader.join();
  EXPECT_EQ(wait_all(c, ids), static_cast<int>(ids.size()));
  expect_each_once_without_overlap(records, ids);
  EXPECT_THAT(d.log(), HasSubstr("reload applied"));
  EXPECT_EQ(d.stop().exit_code, 0);
}

TEST_F(LaneControlApiTest, ScalePauseAndDrainUnderAStreamOfTickets) {
  const fs::path records = dir.path() / "runs.txt";
  ASSERT_NO_FATAL_FAILURE(start(2, ""));
  DaemonProcess& d = daemon();
  HttpClient& c = client();
  HttpClient anonymous("127.0.0.1", d.port());
  EXPECT_EQ(anonymous.post("/v1/lanes/default/scale", R"({"workers":4})").status, 401);

  auto bad = c.post("/v1/lanes/default/scale", R"({"workers":0})");
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_THAT(bad.body, HasSubstr("workers"));
  EXPECT_EQ(c.post("/v1/lanes/nope/scale", R"({"workers":2})").status, 404);

  auto ids = submit_tickets(c, records, 60, 12, "50ms", "a-");
  auto up = c.post("/v1/lanes/default/scale", R"({"workers":6})");
  ASSERT_EQ(up.status, 200) << up.body;
  EXPECT_EQ(Json::parse(up.body).value("workers", 0), 6);
  EXPECT_EQ(Json::parse(up.body).value("previous_workers", 0), 2);
  EXPECT_EQ(lane(c, "default").value("workers", 0), 6);

  // Paused: nothing new starts; what runs finishes.
  ASSERT_EQ(c.post("/v1/lanes/default/pause", "").status, 200);
  EXPECT_TRUE(lane(c, "default").value("paused", false));
  // What was claimed before the pause finishes (with claim-ahead, more than the workers).
  const auto settle = std::chrono::steady_clock::now() + 30s;
  while (lane(c, "default").value("running", -1) != 0 &&
         std::chrono::steady_clock::now() < settle) {
    std::this_thread::sleep_for(20ms);
  }
  const auto paused_runs = read_runs(records).size();
  EXPECT_LT(paused_runs, 60u);  // the pause held some back
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(read_runs(records).size(), paused_runs);
  auto metrics = c.get("/metrics");
  EXPECT_THAT(metrics.body, HasSubstr("schedd_lane_paused{lane=\"default\"} 1"));
  EXPECT_THAT(metrics.body, HasSubstr("schedd_workers{lane=\"default\"} 6"));
  ASSERT_EQ(c.post("/v1/lanes/default/resume", "").status, 200);

  auto down = c.post("/v1/lanes/default/scale", R"({"workers":1})");
  ASSERT_EQ(down.status, 200) << down.body;
  auto more = submit_tickets(c, records, 30, 6, "20ms", "b-");
  ids.insert(ids.end(), more.begin(), more.end());

  // Drain: stops claiming, says when empty, stays up; undrain claims again.
  auto drain = c.post("/v1/system/drain", "");
  ASSERT_EQ(drain.status, 200) << drain.body;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  Json state;
  do {
    state = Json::parse(c.get("/v1/system/drain").body);
    if (state.value("drained", false)) break;
    std::this_thread::sleep_for(20ms);
  } while (std::chrono::steady_clock::now() < deadline);
  EXPECT_TRUE(state.value("drained", false)) << state.dump();
  const auto drained_runs = read_runs(records).size();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(read_runs(records).size(), drained_runs);
  EXPECT_THAT(c.get("/metrics").body, HasSubstr("schedd_draining 1"));
  ASSERT_EQ(c.post("/v1/system/undrain", "").status, 200);

  EXPECT_EQ(wait_all(c, ids), static_cast<int>(ids.size()));
  expect_each_once_without_overlap(records, ids);
  EXPECT_EQ(lane(c, "default").value("workers", 0), 1);
  EXPECT_EQ(lane(c, "default").value("threads", 0), 1);

  auto ctl = run_process({SCHEDCTL_BINARY, "--addr", "127.0.0.1:" + std::to_string(d.port()),
                          "--token", "t", "lanes", "scale", "default", "3"});
  EXPECT_EQ(ctl.exit_code, 0) << ctl.err;
  EXPECT_THAT(ctl.out, HasSubstr("default"));
  EXPECT_EQ(lane(c, "default").value("workers", 0), 3);
  auto drain_ctl = run_process({SCHEDCTL_BINARY, "--addr", "127.0.0.1:" + std::to_string(d.port()),
                                "--token", "t", "drain", "--wait"});
  EXPECT_EQ(drain_ctl.exit_code, 0) << drain_ctl.err;
  EXPECT_THAT(drain_ctl.out, HasSubstr("drained"));
  EXPECT_EQ(d.stop().exit_code, 0);
}

}  // namespace
}  // namespace schedd::testing
