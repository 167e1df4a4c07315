// The kill -9 test of the embedded store (issue 5): the real daemon with the SQLite store and
// the fx_record plugin, which appends fsynced start and end records. Helpers on shared keys
// run every second while a client submits executions over HTTP; the daemon is SIGKILLed at a
// random moment, restarted, and killed again, for SCHEDD_CRASH_ROUNDS rounds (default 20).
// A last round drains everything and stops gracefully. Then, from the records, the daemon's
// logs and the store file:
//   - every accepted submission ended (succeeded) and ran to a "done" end record;
//   - no key ever had two overlapping runs, across restarts too (a run killed mid-way ends
//     at its kill);
//   - an execution ran twice only if it was running at a kill (a kill lies between its two
//     starts), with a higher attempt the second time, and the next start logged it as
//     interrupted;
//   - nothing is left queued or running that was due before the last round ended.
// It prints the recovery time of each round (load time from the log, and spawn-to-ready).
// SCHEDD_CRASH_SEED=<n> replays another schedule of kills.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing/daemon_process.h"
#include "tests/testing/http_client.h"
#include "tests/testing/run_records.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace schedd::testing {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

TEST(CrashTest, KillNineRoundsLoseNothingAndNeverOverlapAKey) {
  const char* rounds_env = std::getenv("SCHEDD_CRASH_ROUNDS");
  const int rounds = rounds_env != nullptr ? std::atoi(rounds_env) : 20;
  const char* seed_env = std::getenv("SCHEDD_CRASH_SEED");
  const unsigned seed = seed_env != nullptr ? std::strtoul(seed_env, nullptr, 10) : 5;
  SCOPED_TRACE("seed " + std::to_string(seed) + ", rounds " + std::to_string(rounds));
  std::mt19937 rng(seed);

  TempDir dir;
  std::filesystem::create_directories(dir / "plugins");
  std::filesystem::copy_file(std::filesystem::path(SCHEDD_FIXTURE_DIR) / "fx_record.so",
                             dir / "plugins" / "fx_record.so");
  const auto records = dir / "records.txt";
  const auto db = dir / "state" / "schedd.db";
  std::string config = R"([daemon]
plugin_dir = "plugins"
store = "sqlite:state/schedd.db"
lookahead = "10m"
expand_every = "1m"
shutdown_grace = "10s"

[api]
listen = "127.0.0.1:0"

[capacity]
queued = 100000

[retry]
max_attempts = 100
delays = ["0s"]

[lanes.default]
workers = 4

[tickets]
executor = "record"
)";
  // Three helpers share key "shared"; two more have their own keys. Every second each.
  const std::vector<std::pair<std::string, std::string>> helpers = {
      {"h-a", "shared"}, {"h-b", "shared"}, {"h-c", "shared"}, {"h-d", "h-d"}, {"h-e", "h-e"}};
  for (const auto& [name, key] : helpers) {
    config += "\n[helpers." + name + "]\nexecutor = \"record\"\nkey = \"" + key +
              "\"\nschedule = { every = \"1s\" }\nexpiry = \"1h\"\nparams = { file = \"" +
              records.string() + "\", duration = \"40ms\" }\n";
  }
  const auto config_path = dir.write("schedd.toml", config);

  std::vector<std::string> accepted;  // submission ids answered 201
  std::vector<int64_t> kills;         // CLOCK_MONOTONIC after each SIGKILL returned
  std::vector<std::string> logs;      // each round's daemon log
  std::vector<double> load_seconds;
  std::vector<double> ready_seconds;
  int submitted = 0;

  std::chrono::system_clock::time_point stop_wall{};  // when the last round asked its stop
  auto run_round = [&](bool last) {
    DaemonProcess d(config_path);
    ASSERT_TRUE(d.wait_ready()) << d.log();
    ready_seconds.push_back(d.ready_seconds());
    static const std::regex kLoaded(R"(loaded (\d+) queued, (\d+) running .* in ([0-9.]+) s)");
    std::smatch m;
    std::string log = d.log();
    if (std::regex_search(log, m, kLoaded)) load_seconds.push_back(std::stod(m[3]));

    // Submit from another thread while the main thread picks the moment to kill.
    std::atomic<bool> stop_submitting{false};
    std::mutex mu;
    const unsigned submitter_seed = rng();  // drawn here: rng belongs to this thread
    std::thread submitter([&] {
      HttpClient client("127.0.0.1", d.port());
      std::mt19937 local(submitter_seed);
      while (!stop_submitting.load()) {
        std::string id;
        {
          std::lock_guard g(mu);
          id = "sub-" + std::to_string(++submitted);
        }
        Json body = {{"id", id},
                     {"executor", "record"},
                     {"key", "p" + std::to_string(local() % 8)},
                     {"params", {{"file", records.string()}, {"duration", "20ms"}}}};
        auto r = client.post("/v1/executions", body.dump());
        if (r.status == 201) {
          std::lock_guard g(mu);
          accepted.push_back(id);
        } else if (r.status == 0) {
          return;  // the daemon is gone
        } else {
          ADD_FAILURE() << "submit " << id << ": " << r.status << " " << r.body;
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(local() % 15));
      }
    });
    if (!last) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200 + rng() % 1300));
      d.kill9();
      kills.push_back(mono_ns());
      stop_submitting = true;
      submitter.join();
      logs.push_back(d.log());
      return;
    }
    std::this_thread::sleep_for(1s);
    stop_submitting = true;
    submitter.join();
    // Drain: every accepted submission terminal, asked over the API.
    HttpClient client("127.0.0.1", d.port());
    auto deadline = std::chrono::steady_clock::now() + 120s;
    std::size_t next = 0;
    while (next < accepted.size() && std::chrono::steady_clock::now() < deadline) {
      auto r = client.get("/v1/executions/" + accepted[next]);
      ASSERT_EQ(r.status, 200) << accepted[next] << ": " << r.body;
      std::string status = Json::parse(r.body).value("status", "");
      if (status == "queued" || status == "running") {
        std::this_thread::sleep_for(20ms);
        continue;
      }
      ++next;
    }
    EXPECT_EQ(next, accepted.size()) << "not all accepted submissions ended within 120 s";
    // Runs that come due once the stop is asked for are not expected to start: the cut-off
    // below counts from here, not from when the stop (an ASan daemon's may take seconds) ended.
    stop_wall = std::chrono::system_clock::now();
    ProcessResult end = d.stop();
    EXPECT_EQ(end.exit_code, 0) << end.err;
    logs.push_back(end.err);
  };

  for (int round = 0; round < rounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    run_round(false);
    if (::testing::Test::HasFatalFailure()) return;
  }
  const int64_t last_round_start = mono_ns();
  run_round(true);
  if (::testing::Test::HasFatalFailure()) return;
  const auto final_wall = stop_wall;
  (void)last_round_start;

  // ---- the records ------------------------------------------------------------------------
  std::vector<RecordedRun> runs = read_runs(records);
  ASSERT_FALSE(runs.empty());
  // A run without an end record was killed: it ended at the first kill after its start.
  end_killed_runs(runs, kills);
  if (::testing::Test::HasFailure()) return;

  // No key overlaps.
  EXPECT_EQ(count_key_overlaps(runs), 0u);

  // Runs twice only across a kill, with a higher attempt, logged as interrupted.
  std::map<std::string, std::vector<const RecordedRun*>> by_id;
  for (const auto& r : runs) by_id[r.id].push_back(&r);
  std::size_t reruns = 0;
  for (auto& [id, list] : by_id) {
    std::sort(list.begin(), list.end(),
              [](const RecordedRun* a, const RecordedRun* b) { return a->start < b->start; });
    for (std::size_t i = 1; i < list.size(); ++i) {
      ++reruns;
      const RecordedRun& before = *list[i - 1];
      const RecordedRun& again = *list[i];
      auto k = std::upper_bound(kills.begin(), kills.end(), before.start);
      EXPECT_TRUE(k != kills.end() && *k < again.start)
          << id << " ran twice with no kill between (attempts " << before.attempt << ", "
          << again.attempt << ")";
      EXPECT_GT(again.attempt, before.attempt) << id;
      // The round that started after that kill logged the interruption.
      if (k != kills.end()) {
        std::size_t round_after = static_cast<std::size_t>(k - kills.begin()) + 1;
        bool logged = false;
        for (std::size_t j = round_after; j < logs.size() && !logged; ++j) {
          logged = logs[j].find("exec " + id + " ") != std::string::npos &&
                   logs[j].find("interrupted") != std::string::npos;
        }
        EXPECT_TRUE(logged) << id << " re-ran without being logged as interrupted";
      }
    }
  }

  // Every accepted submission finished with a "done" record.
  std::set<std::string> done;
  for (const auto& r : runs) {
    if (r.how == "done") done.insert(r.id);
  }
  for (const auto& id : accepted) EXPECT_TRUE(done.contains(id)) << id << " never completed";

  // ---- the store file ---------------------------------------------------------------------
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  std::map<std::string, int> status;
  std::size_t unfinished_due = 0;
  sqlite3_stmt* q = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(h, "SELECT id, status, due FROM executions", -1, &q, nullptr),
            SQLITE_OK);
  const int64_t cutoff_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>((final_wall - 5s).time_since_epoch())
          .count();
  while (sqlite3_step(q) == SQLITE_ROW) {
    std::string id = reinterpret_cast<const char*>(sqlite3_column_text(q, 0));
    int st = sqlite3_column_int(q, 1);
    status[id] = st;
    if (st == 1 || (st == 0 && sqlite3_column_int64(q, 2) < cutoff_ns)) {
      if (++unfinished_due <= 5) ADD_FAILURE() << id << " left with status " << st;
    }
  }
  sqlite3_finalize(q);
  sqlite3_close(h);
  EXPECT_EQ(unfinished_due, 0u);
  for (const auto& id : accepted) {
    auto it = status.find(id);
    ASSERT_NE(it, status.end()) << id << " is not in the store";
    EXPECT_EQ(it->second, 2) << id << " did not succeed";  // 2: succeeded (docs/store.md)
  }

  // ---- report -----------------------------------------------------------------------------
  std::sort(load_seconds.begin(), load_seconds.end());
  std::sort(ready_seconds.begin(), ready_seconds.end());
  auto median = [](const std::vector<double>& v) { return v.empty() ? 0.0 : v[v.size() / 2]; };
  std::printf(
      "crash test: %d kills, %zu runs recorded, %zu re-runs after kills, %zu submissions "
      "accepted (%d tried); recovery: load median %.4f s max %.4f s, spawn-to-ready median "
      "%.3f s max %.3f s\n",
      rounds, runs.size(), reruns, accepted.size(), submitted, median(load_seconds),
      load_seconds.empty() ? 0.0 : load_seconds.back(), median(ready_seconds),
      ready_seconds.empty() ? 0.0 : ready_seconds.back());
  EXPECT_GT(reruns + runs.size(), 0u);
}

}  // namespace
}  // namespace schedd::testing
