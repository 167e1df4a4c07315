// A seeded randomized simulation of a day: hundreds of helpers and a stream of tickets with
// random schedules, durations (timeouts on the manual clock), priorities, keys, lanes,
// failures, cancels, enables, disables and updates. After every simulated minute it checks
// the invariants of docs/design.md §1-§11, for three seeds. Reproduce a failure with
// SCHEDD_SIM_SEED=<seed>.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>

#include <spdlog/spdlog.h>

#include "core/control/engine.h"
#include "core/control/validate.h"
#include "core/store/memory_store.h"
#include "tests/testing/manual_clock.h"

namespace schedd {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

struct Started {
  std::string key;
  std::string lane;
  TimePoint due;
  uint64_t seq;
  TimePoint at;  // manual clock
  uint32_t attempt;
};

// Records what the dispatcher does and checks the invariants that must hold at each event.
class Auditor {
 public:
  Auditor(testing::ManualClock& clock, std::map<std::string, std::size_t> lane_workers)
      : clock_(clock), lane_workers_(std::move(lane_workers)) {}

  DispatchObserver observer() {
    DispatchObserver o;
    o.on_claim = [this](const Execution& e) { claimed(e); };
    o.on_start = [this](const Execution& e) { started(e); };
    o.on_finish = [this](const Execution& e, const Completion& c) { finished(e, c); };
    o.on_expired = [this](const Execution& e) { expired(e); };
    return o;
  }

  std::vector<std::string> violations() {
    std::lock_guard l(mu_);
    return violations_;
  }
  std::size_t starts() {
    std::lock_guard l(mu_);
    return starts_;
  }
  std::size_t expirations() {
    std::lock_guard l(mu_);
    return expirations_;
  }
  bool ever_started(const std::string& id) {
    std::lock_guard l(mu_);
    return started_ids_.contains(id);
  }

 private:
  void fail(std::string what) { violations_.push_back(std::move(what)); }
  static std::string epoch(TimePoint t) {
    return std::to_string(
        std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count());
  }

  // Judged at the claim's instant (`started`, the `now` the store claimed at; see
  // DispatchObserver), not at clock_.now(): the test thread may move the clock on between a
  // dispatcher thread reading it for a claim and this hook (a claim after a cancel, racing the
  // next minute), and a claim made before due + expiry is on time even if the hook runs after.
  void claimed(const Execution& e) {
    std::lock_guard l(mu_);
    if (!e.started) {
      fail("claimed without a claim instant: " + e.id);
      return;
    }
    const TimePoint at = *e.started;
    if (at > clock_.now()) fail("claimed at an instant the clock has not reached: " + e.id);
    if (e.attempt == 1 && e.expires() && at >= *e.expires()) {
      fail("started at or after due + expiry: " + e.id + " claimed at " + epoch(at) +
           ", expires at " + epoch(*e.expires()));
    }
    if (e.not_before > at) {
      fail("started before not_before: " + e.id + " claimed at " + epoch(at) + ", not before " +
           epoch(e.not_before));
    }
  }

  void started(const Execution& e) {
    std::lock_guard l(mu_);
    ++starts_;
    started_ids_.insert(e.id);
    if (running_keys_.contains(e.key())) {
      fail("key " + e.key() + " overlaps: " + e.id + " started while " + running_keys_[e.key()] +
           " runs");
    }
    running_keys_[e.key()] = e.id;
    if (++lane_running_[e.lane()] > lane_workers_[e.lane()]) {
      fail("lane " + e.lane() + " runs more than its workers");
    }
    auto& last = last_start_[e.key()];
    // Within a key, starts follow (due, submission); a retry repeats its own position.
    if (last.second != 0 && std::pair(e.due, e.seq) < last) {
      fail("key " + e.key() + " out of order: " + e.id);
    }
    last = {e.due, e.seq};
  }

  void finished(const Execution& e, const Completion&) {
    std::lock_guard l(mu_);
    auto it = running_keys_.find(e.key());
    if (it == running_keys_.end() || it->second != e.id) fail("finish without start: " + e.id);
    if (it != running_keys_.end()) running_keys_.erase(it);
    --lane_running_[e.lane()];
  }

  void expired(const Execution& e) {
    std::lock_guard l(mu_);
    ++expirations_;
    // The store's instant of the expiry, like the claim's above.
    if (!e.expires() || !e.finished || *e.finished < *e.expires() || *e.finished > clock_.now()) {
      fail("expired early: " + e.id);
    }
    if (started_ids_.contains(e.id)) fail("expired after it started: " + e.id);
  }

  testing::ManualClock& clock_;
  std::map<std::string, std::size_t> lane_workers_;
  std::mutex mu_;
  std::vector<std::string> violations_;
  std::map<std::string, std::string> running_keys_;
  std::map<std::string, std::size_t> lane_running_;
  std::map<std::string, std::pair<TimePoint, uint64_t>> last_start_;
  std::set<std::string> started_ids_;
  std::size_t starts_ = 0;
  std::size_t expirations_ = 0;
};

// Each run of the suite plays three random days. The seeds other than the first are ones
// that caught dispatcher races the first did not (issue #19's reverted dispatch path: a ready
// head left waiting at minute 6 with seed 1, claimed-ahead runs waiting behind long runs with
// seed 4). SCHEDD_SIM_SEED=<seed> plays that one day instead.
class EngineSimulationTest : public ::testing::TestWithParam<uint64_t> {
 protected:
  // The seed of this instance, or nullopt when SCHEDD_SIM_SEED names another day.
  std::optional<uint64_t> seed() const {
    if (const char* s = std::getenv("SCHEDD_SIM_SEED")) {
      if (GetParam() != kSeeds[0]) return std::nullopt;
      return std::strtoull(s, nullptr, 10);
    }
    return GetParam();
  }

 public:
  static constexpr uint64_t kSeeds[] = {20261123, 1, 4};
};

std::string random_schedule(std::mt19937_64& rng) {
  switch (rng() % 4) {
    case 0:
      return "{ every = \"" + std::to_string(5 + rng() % 120) + "m\" }";
    case 1:
      return "{ cron = \"" + std::to_string(rng() % 60) + " */" + std::to_string(1 + rng() % 4) +
             " * * *\" }";
    case 2:
      return "{ cron = \"*/" + std::to_string(10 + rng() % 50) + " * * * *\" }";
    default:
      return "{ time = \"" + std::to_string(10 + rng() % 14) + ":" +
             std::to_string(10 + rng() % 50) + "\" }";
  }
}

TEST_P(EngineSimulationTest, RandomDayKeepsEveryInvariant) {
  spdlog::set_level(spdlog::level::warn);
  if (!seed()) GTEST_SKIP() << "SCHEDD_SIM_SEED plays one day, in the first instance";
  const uint64_t seed = *this->seed();
  SCOPED_TRACE("SCHEDD_SIM_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);

  // Config: three lanes, ~300 helpers over 40 shared keys, a mix of executors.
  std::string toml = R"([capacity]
queued = 3000
[retry]
max_attempts = 3
delays = ["0s", "2m"]
[lanes.default]
workers = 3
[lanes.fast]
workers = 2
[lanes.solo]
workers = 1
)";
  const char* lanes[] = {"default", "fast", "solo"};
  const int kHelpers = 1000;
  for (int i = 0; i < kHelpers; ++i) {
    std::string name = "h" + std::to_string(i);
    toml += "[helpers." + name + "]\n";
    int kind = static_cast<int>(rng() % 10);
    if (kind < 5) {
      toml += "executor = \"noop\"\n";
    } else if (kind < 7) {
      toml += "executor = \"fx_outcome\"\nparams = { outcome = \"" +
              std::string(kind == 5 ? "failed" : "permanent") + "\" }\n";
    } else {
      // Runs until its timeout on the manual clock: a "duration" of 1-20 minutes.
      toml += "executor = \"sleep\"\nparams = { duration = \"1h\" }\ntimeout = \"" +
              std::to_string(1 + rng() % 20) + "m\"\n";
    }
    toml += "schedule = " + random_schedule(rng) + "\n";
    toml += "key = \"k" + std::to_string(rng() % 120) + "\"\n";
    toml += "lane = \"" + std::string(lanes[rng() % 3]) + "\"\n";
    toml += "priority = " + std::to_string(1 + rng() % 5) + "\n";
    toml += "expiry = \"" + std::to_string(5 + rng() % 60) + "m\"\n";
    const char* overlaps[] = {"queue", "queue", "queue", "skip", "replace"};
    toml += "overlap = \"" + std::string(overlaps[rng() % 5]) + "\"\n";
    if (rng() % 4 == 0) toml += "enabled = false\n";
  }

  PluginHost plugins;
  std::vector<PluginLoadError> perrors;
  ASSERT_TRUE(plugins.load_dir(SCHEDD_PLUGIN_DIR, PluginErrorPolicy::kFail, perrors).is_ok());
  ASSERT_EQ(plugins.load_file(fs::path(SCHEDD_FIXTURE_DIR) / "fx_good.so"), std::nullopt);
  std::vector<ConfigError> errors;
  auto config = parse_config(toml, "sim.toml", errors);
  ASSERT_TRUE(config.has_value()) << errors.front().to_string();
  validate_helpers(*config, plugins, errors);
  ASSERT_TRUE(errors.empty()) << errors.front().to_string();

  // Declared before the engine, so destroyed after it: when an ASSERT or FAIL returns early,
  // ~Engine stops the dispatcher's threads while the clock, store and auditor they use live.
  testing::ManualClock clock(*parse_rfc3339("2026-06-01T00:00:30Z"));
  MemoryStore store;
  Auditor auditor(clock, {{"default", 3}, {"fast", 2}, {"solo", 1}});
  Engine engine(*config, store, clock, plugins, "sim");
  engine.dispatcher().add_observer(auditor.observer());
  ASSERT_TRUE(engine.start().is_ok());
  ASSERT_TRUE(engine.dispatcher().wait_idle(10s));

  auto long_running = [](const Execution& e) { return e.spec->executor == "sleep"; };
  auto queued_planned = [&](const std::string& helper) {
    ExecutionFilter f;
    f.name = helper;
    f.status = ExecStatus::kQueued;
    f.limit = 1000000;
    std::size_t n = 0;
    for (const auto& e : store.list(f)) {
      if (e.spec->origin == ExecOrigin::kHelper && e.id.find("@run-") == std::string::npos) ++n;
    }
    return n;
  };

  std::size_t tickets = 0, refused = 0;
  for (int minute = 0; minute < 24 * 60; ++minute) {
    // Control actions, checked against what the store holds.
    int action = static_cast<int>(rng() % 20);
    std::string helper = "h" + std::to_string(rng() % kHelpers);
    if (action == 0) {
      std::size_t before = queued_planned(helper);
      auto removed = engine.disable(helper);
      ASSERT_TRUE(removed.is_ok());
      EXPECT_EQ(*removed, before) << "disable " << helper;
      EXPECT_EQ(queued_planned(helper), 0u);
    } else if (action == 1) {
      // Enabling an enabled helper plans nothing new; a disabled one gets its window.
      std::size_t before = queued_planned(helper);
      auto planned = engine.enable(helper);
      ASSERT_TRUE(planned.is_ok());
      EXPECT_EQ(queued_planned(helper), before + *planned) << "enable " << helper;
    } else if (action == 2) {
      auto planned = engine.update_schedule(helper, random_schedule(rng));
      ASSERT_TRUE(planned.is_ok()) << planned.status().to_string();
      auto p = engine.planner().helper(helper);
      if (p && p->enabled) {
        EXPECT_EQ(queued_planned(helper), *planned) << "update " << helper;
      }
    } else if (action == 3) {
      // Cancel something random that is queued or running.
      ExecutionFilter f;
      f.status = rng() % 2 ? ExecStatus::kQueued : ExecStatus::kRunning;
      f.limit = 50;
      auto some = store.list(f);
      if (!some.empty()) (void)engine.cancel(some[rng() % some.size()].id);
    }
    // A burst of tickets on project keys.
    for (int t = static_cast<int>(rng() % 4); t > 0; --t) {
      SubmitRequest r;
      r.origin = ExecOrigin::kTicket;
      r.name = "ticket";
      r.executor = rng() % 3 ? "noop" : "fx_outcome";
      if (r.executor == "fx_outcome") r.params = {{"outcome", ParamValue::string("failed")}};
      r.key = "project-" + std::to_string(rng() % 10);
      r.lane = lanes[rng() % 3];
      r.priority = static_cast<int>(1 + rng() % 5);
      if (rng() % 3 == 0) r.expiry = std::chrono::minutes(1 + rng() % 10);
      auto res = engine.submit(r);
      if (res.is_ok()) {
        ++tickets;
      } else {
        ASSERT_EQ(res.status().code(), StatusCode::kResourceExhausted) << res.status().to_string();
        ++refused;
      }
    }
    // Replanning at the same instant creates nothing new.
    if (minute % 97 == 0) {
      auto again = engine.planner().plan_all(clock.now());
      ASSERT_TRUE(again.is_ok());
      auto twice = engine.planner().plan_all(clock.now());
      ASSERT_TRUE(twice.is_ok());
      EXPECT_EQ(twice->created, 0u);
    }

    clock.advance(1min);
    if (!engine.dispatcher().wait_quiet(10s, long_running)) {
      ExecutionFilter rf;
      rf.status = ExecStatus::kRunning;
      std::string running;
      for (const auto& e : store.list(rf)) running += " " + e.id + "(" + e.spec->executor + ")";
      FAIL() << "minute " << minute << ": not quiet; dispatcher running "
             << engine.dispatcher().running() << ", store running:" << running << "; "
             << engine.dispatcher().debug_state();
    }

    // Work-conserving: nothing ready with a free key waits while its lane has a free worker.
    std::map<std::string, std::size_t> running_per_lane;
    std::set<std::string> running_keys;
    ExecutionFilter rf;
    rf.status = ExecStatus::kRunning;
    rf.limit = 1000000;
    for (const auto& e : store.list(rf)) {
      ++running_per_lane[e.lane()];
      running_keys.insert(e.key());
    }
    auto workers_of = [](const std::string& lane) -> std::size_t {
      return lane == "default" ? 3 : lane == "fast" ? 2 : 1;
    };
    bool some_lane_free = false;
    for (const char* lane : lanes) some_lane_free |= running_per_lane[lane] < workers_of(lane);
    ExecutionFilter qf;
    qf.status = ExecStatus::kQueued;
    qf.limit = some_lane_free ? 1000000 : 0;  // all lanes full: nothing can be waiting wrongly
    for (const auto& e : some_lane_free ? store.list(qf) : std::vector<Execution>{}) {
      if (e.not_before > clock.now() || running_keys.contains(e.key())) continue;
      auto queue = store.key_queue(e.key());
      if (queue.empty() || queue.front().id != e.id) continue;  // not the head
      EXPECT_GE(running_per_lane[e.lane()], workers_of(e.lane()))
          << "minute " << minute << ": " << e.id << " is ready with a free key and lane "
          << e.lane() << " has a free worker";
    }
    auto v = auditor.violations();
    ASSERT_TRUE(v.empty()) << "minute " << minute << ": " << v.front();
  }

  // Wind down: disable every helper, let every timeout and retry play out, cancel the rest.
  for (int i = 0; i < kHelpers; ++i) ASSERT_TRUE(engine.disable("h" + std::to_string(i)).is_ok());
  auto unfinished = [&] {
    std::size_t n = 0;
    for (auto s : {ExecStatus::kQueued, ExecStatus::kRunning}) {
      ExecutionFilter f;
      f.status = s;
      f.limit = 1;
      n += store.list(f).size();
    }
    return n;
  };
  for (int i = 0; i < 5000 && unfinished() > 0; ++i) {
    clock.advance(1min);
    ASSERT_TRUE(engine.dispatcher().wait_quiet(10s, long_running));
  }
  ExecutionFilter all;
  all.limit = 10000000;
  std::size_t terminal = 0;
  for (const auto& e : store.list(all)) {
    EXPECT_TRUE(is_terminal(e.status)) << e.id << " is " << exec_status_name(e.status);
    if (e.status == ExecStatus::kExpired) {
      EXPECT_FALSE(auditor.ever_started(e.id)) << e.id;
    }
    ++terminal;
  }
  auto v = auditor.violations();
  EXPECT_TRUE(v.empty()) << v.front();
  // The day did something: these bounds only guard against a vacuous run.
  EXPECT_GT(auditor.starts(), 1000u);
  EXPECT_GT(tickets, 100u);
  RecordProperty("starts", static_cast<int>(auditor.starts()));
  RecordProperty("expired", static_cast<int>(auditor.expirations()));
  RecordProperty("tickets", static_cast<int>(tickets));
  RecordProperty("refused", static_cast<int>(refused));
  RecordProperty("terminal", static_cast<int>(terminal));
}

INSTANTIATE_TEST_SUITE_P(EngineSimulation, EngineSimulationTest,
                         ::testing::ValuesIn(EngineSimulationTest::kSeeds),
                         [](const ::testing::TestParamInfo<uint64_t>& info) {
                           return "seed" + std::to_string(info.param);
                         });

}  // namespace
}  // namespace schedd
