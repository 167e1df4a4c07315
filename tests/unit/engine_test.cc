// The engine end to end in-process: real plugins through the real loader, the in-memory
// store, the real dispatcher threads, and a ManualClock, so a day of schedules runs in
// milliseconds. Executors that must "take a while" use the sleep plugin, which waits on its
// stop token; tests end them with a cancel instead of waiting.
#include "core/control/engine.h"
#include "core/control/validate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "core/store/memory_store.h"
#include "tests/testing/engine_harness.h"
#include "tests/testing/manual_clock.h"
#include "tests/testing/temp_dir.h"

namespace schedd {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using testing::at;
using testing::Event;
using testing::Harness;

using testing::kStart;

// A helper due every minute whose runs last until cancelled, with the given overlap policy.
std::string endless_every_minute(const char* overlap) {
  return std::string(R"([helpers.job]
executor = "sleep"
schedule = { every = "1m" }
overlap = ")") +
         overlap + R"("
params = { duration = "1h" }
)";
}

TEST(EngineTest, PlansLookaheadWithDeterministicIdsAndRunsOnTime) {
  Harness h(R"([helpers.tick]
executor = "noop"
schedule = { every = "1m" }
)",
            at(kStart));
  h.start();
  h.idle();
  EXPECT_EQ(h.count(ExecStatus::kQueued), 120u);  // 2 h lookahead of a 1-minute schedule
  ASSERT_TRUE(h.store().get("tick@1767225660").has_value());  // 00:01:00
  EXPECT_EQ(h.ids("start").size(), 0u);

  h.advance(30s);  // 00:01:00
  EXPECT_EQ(h.ids("finish"), (std::vector<std::string>{"tick@1767225660"}));
  h.advance(5min);  // 00:06:00: five more, in due order, and the window grows
  auto finished = h.ids("finish");
  ASSERT_EQ(finished.size(), 6u);
  EXPECT_TRUE(std::is_sorted(finished.begin(), finished.end()));
  EXPECT_EQ(h.count(ExecStatus::kSucceeded), 6u);
  EXPECT_EQ(h.count(ExecStatus::kQueued), 120u);
  // Re-planning is idempotent.
  auto again = h.engine().planner().plan_all(h.clock().now());
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(again->created, 0u);
}

TEST(EngineTest, RunsADayOfSchedulesOnAManualClock) {
  Harness h(R"([daemon]
timezone = "America/New_York"
[lanes.default]
workers = 2
[helpers.minutely]
executor = "noop"
schedule = { cron = "* * * * *" }
[helpers.quarter]
executor = "noop"
schedule = { cron = "*/15 * * * *" }
[helpers.daily]
executor = "noop"
schedule = { time = "09:00" }
)",
            at("2026-03-10T00:00:30-04:00"));
  h.start();
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 24 * 60; ++i) h.advance(1min);
  auto real = std::chrono::steady_clock::now() - t0;
  std::map<std::string, int> per_helper;
  for (const auto& e : h.events("finish")) {
    EXPECT_EQ(e.status, ExecStatus::kSucceeded);
    ++per_helper[e.id.substr(0, e.id.find('@'))];
  }
  EXPECT_EQ(per_helper["minutely"], 1440);
  EXPECT_EQ(per_helper["quarter"], 96);
  EXPECT_EQ(per_helper["daily"], 1);
  EXPECT_LT(real, 60s);  // sanity bound only; the speed is measured in tests/bench
}

TEST(EngineTest, ReadyExecutionsStartByPriorityThenDueThenSubmission) {
  Harness h(R"([lanes.default]
workers = 1
)",
            at(kStart));
  h.start();
  h.idle();
  TimePoint go = h.clock().now() + 10s;
  std::vector<std::pair<std::string, int>> subs = {
      {"a", 3}, {"b", 1}, {"c", 5}, {"d", 1}, {"e", 2}};
  for (const auto& [name, prio] : subs) {
    SubmitRequest r;
    r.id = name;
    r.executor = "noop";
    r.key = "key-" + name;
    r.priority = prio;
    r.not_before = go;
    ASSERT_TRUE(h.engine().submit(r).is_ok());
  }
  // One earlier-due execution with a worse priority still comes after better priorities.
  SubmitRequest early;
  early.id = "f";
  early.executor = "noop";
  early.key = "key-f";
  early.priority = 1;
  early.not_before = go - 5s;
  ASSERT_TRUE(h.engine().submit(early).is_ok());
  h.advance(10s);
  EXPECT_EQ(h.ids("start"), (std::vector<std::string>{"f", "b", "d", "e", "a", "c"}));
}

TEST(EngineTest, PriorityDoesNotReorderWithinAKey) {
  Harness h(R"([lanes.default]
workers = 2
)",
            at(kStart));
  h.start();
  h.idle();
  TimePoint go = h.clock().now() + 10s;
  for (const auto& [name, prio] :
       std::vector<std::pair<std::string, int>>{{"k1", 5}, {"k2", 1}, {"k3", 3}}) {
    SubmitRequest r;
    r.id = name;
    r.executor = "noop";
    r.key = "shared";
    r.priority = prio;
    r.not_before = go;
    ASSERT_TRUE(h.engine().submit(r).is_ok());
  }
  h.advance(10s);
  EXPECT_EQ(h.ids("start"), (std::vector<std::string>{"k1", "k2", "k3"}));
}

TEST(EngineTest, SameKeyNeverOverlapsWhileKeysRunInParallel) {
  Harness h(R"([lanes.default]
workers = 4
[lanes.other]
workers = 2
)",
            at(kStart));
  h.start();
  h.idle();
  for (int i = 0; i < 10; ++i) {
    for (const char* key : {"alpha", "beta", "gamma"}) {
      SubmitRequest r;
      r.id = std::string(key) + "-" + std::to_string(i);
      r.executor = "sleep";
      r.key = key;
      r.lane = i % 2 ? "other" : "default";  // a key spans lanes
      r.params = {{"duration", ParamValue::duration(15ms)}};
      ASSERT_TRUE(h.engine().submit(r).is_ok());
    }
  }
  h.idle();
  auto starts = h.events("start");
  auto finishes = h.events("finish");
  ASSERT_EQ(finishes.size(), 30u);
  std::map<std::string, std::chrono::steady_clock::time_point> start_of, end_of;
  for (const auto& e : starts) start_of[e.id] = e.real;
  for (const auto& e : finishes) end_of[e.id] = e.real;
  std::map<std::string, std::vector<std::string>> order;
  for (const auto& e : starts) order[e.key].push_back(e.id);
  int max_parallel = 0;
  for (const auto& [key, ids] : order) {
    // FIFO by submission within the key, and each ends before the next starts.
    for (std::size_t i = 0; i < ids.size(); ++i) {
      EXPECT_EQ(ids[i], key + "-" + std::to_string(i));
      if (i > 0) {
        EXPECT_LE(end_of[ids[i - 1]], start_of[ids[i]]) << ids[i];
      }
    }
  }
  for (const auto& e : starts) {
    int parallel = 0;
    for (const auto& [id, s] : start_of) {
      if (s <= e.real && end_of[id] > e.real) ++parallel;
    }
    max_parallel = std::max(max_parallel, parallel);
  }
  EXPECT_GE(max_parallel, 2);  // different keys did run at the same time
  EXPECT_LE(max_parallel, 3);  // ... but never two of one key
}

TEST(EngineTest, ExecutionWaitingBehindItsKeyExpires) {
  Harness h("", at(kStart));
  h.start();
  h.idle();
  SubmitRequest blocker;
  blocker.id = "blocker";
  blocker.executor = "sleep";
  blocker.key = "k";
  blocker.params = {{"duration", ParamValue::duration(1h)}};
  ASSERT_TRUE(h.engine().submit(blocker).is_ok());
  h.wait_running(1);
  SubmitRequest waiter = blocker;
  waiter.id = "waiter";
  waiter.expiry = 1min;
  ASSERT_TRUE(h.engine().submit(waiter).is_ok());
  h.clock().advance(61s);
  h.wait_running(1);
  // The observer hears of the expiry after the store recorded it: wait for the observer.
  h.wait_events("expired", 1);
  EXPECT_EQ(h.store().get("waiter")->status, ExecStatus::kExpired);
  EXPECT_EQ(h.ids("expired"), (std::vector<std::string>{"waiter"}));
  // Cancel the running one: a cooperative stop, recorded as cancelled, never retried.
  auto c = h.engine().cancel("blocker");
  EXPECT_EQ(c.status().code(), StatusCode::kFailedPrecondition);
  h.idle();
  EXPECT_EQ(h.store().get("blocker")->status, ExecStatus::kCancelled);
  EXPECT_EQ(h.ids("start"), (std::vector<std::string>{"blocker"}));
}

// A plugin that reports a cancelled run as failed is not retried: the cancel wins (it was
// recorded failed and retried up to max_attempts).
TEST(EngineTest, ACancelWinsOverAFailureTheStoppedPluginReports) {
  Harness h(R"([retry]
max_attempts = 3
delays = ["0s"]
)",
            at(kStart));
  h.start();
  testing::TempDir dir;
  SubmitRequest r;
  r.executor = "record";
  r.id = "fails-when-stopped";
  r.params = {{"file", ParamValue::string((dir / "runs.txt").string())},
              {"duration", ParamValue::duration(1h)},
              {"ignore_stop", ParamValue::boolean(false)},
              {"fail_on_stop", ParamValue::boolean(true)}};
  ASSERT_TRUE(h.engine().submit(r).is_ok());
  h.wait_running(1);
  EXPECT_EQ(h.engine().cancel(r.id).status().code(), StatusCode::kFailedPrecondition);
  h.wait_events("finish", 1);
  h.wait_running(0);
  h.idle();
  auto e = h.store().get(r.id);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->status, ExecStatus::kCancelled) << e->message;
  EXPECT_EQ(e->attempt, 1u);
  EXPECT_EQ(h.ids("start").size(), 1u);  // no retry
}

// Regression: EngineSimulationTest's auditor judged a claim by the clock its on_claim hook read,
// and failed ("started at or after due + expiry") when the test moved the clock on between a
// worker's claim (after a cancel freed its key) and the hook. The claim itself was on time;
// on_claim's `started` is the instant the store claimed at, whatever the clock reads later.
TEST(EngineTest, ClaimHookSeesTheClaimInstantWhenTheClockMovesOnMeanwhile) {
  Harness h("", at(kStart));
  std::mutex mu;
  std::optional<TimePoint> claimed_at, clock_in_hook;
  std::optional<TimePoint> waiter_expires;
  DispatchObserver mover;  // the test thread advancing the clock while the claim's hooks run
  mover.on_claim = [&](const Execution& e) {
    if (e.id == "waiter") h.clock().advance(1min);
  };
  DispatchObserver checker;
  checker.on_claim = [&](const Execution& e) {
    if (e.id != "waiter") return;
    std::lock_guard l(mu);
    claimed_at = e.started;
    clock_in_hook = h.clock().now();
    waiter_expires = e.expires();
  };
  h.engine().dispatcher().add_observer(mover);
  h.engine().dispatcher().add_observer(checker);
  h.start();
  SubmitRequest blocker;
  blocker.id = "blocker";
  blocker.executor = "sleep";
  blocker.key = "k";
  blocker.params = {{"duration", ParamValue::duration(1h)}};
  ASSERT_TRUE(h.engine().submit(blocker).is_ok());
  h.wait_running(1);
  SubmitRequest waiter;
  waiter.id = "waiter";
  waiter.executor = "noop";
  waiter.key = "k";
  waiter.expiry = 1min;
  ASSERT_TRUE(h.engine().submit(waiter).is_ok());
  const TimePoint submitted = h.clock().now();
  h.clock().advance(30s);
  ASSERT_TRUE(h.engine().dispatcher().wait_quiet(
      10s, [](const Execution& e) { return e.id == "blocker"; }));
  const TimePoint cancelled = h.clock().now();
  // The blocker's worker frees the key and claims the waiter at `cancelled`, 30 s before its
  // expiry; the mover then moves the clock 30 s past it before the checker runs.
  EXPECT_EQ(h.engine().cancel("blocker").status().code(), StatusCode::kFailedPrecondition);
  h.wait_events("finish", 2);
  h.idle();
  std::lock_guard l(mu);
  ASSERT_TRUE(claimed_at && clock_in_hook && waiter_expires);
  EXPECT_EQ(*waiter_expires, submitted + 1min);
  EXPECT_EQ(*claimed_at, cancelled);
  EXPECT_LT(*claimed_at, *waiter_expires);
  EXPECT_GE(*clock_in_hook, *waiter_expires);  // what the old auditor compared, wrongly
  EXPECT_EQ(h.store().get("waiter")->status, ExecStatus::kSucceeded);
  EXPECT_EQ(h.ids("expired"), std::vector<std::string>{});
}

// Regression (ApiTest's stats stream test failed in CI): a stop-cancel that came between the
// store's claim and the dispatcher's hand-over of the run to a worker was lost. The store said
// running, the dispatcher did not know the run yet, and the API answered 202 while the run
// went on. The claim hook runs in that gap: it asks for the cancel from another thread and
// holds the gap open a while.
TEST(EngineTest, AStopCancelBetweenClaimAndHandOverStopsTheRun) {
  Harness h("", at(kStart));
  std::thread canceller;
  std::optional<StatusOr<Execution>> cancel;
  DispatchObserver gap;
  gap.on_claim = [&](const Execution& e) {
    if (e.id != "gap") return;
    EXPECT_FALSE(h.engine().dispatcher().request_stop("gap", ExecStatus::kCancelled))
        << "the claim hook no longer runs before the hand-over";
    canceller = std::thread([&] { cancel = h.engine().cancel("gap", /*stop_running=*/true); });
    std::this_thread::sleep_for(20ms);
  };
  h.engine().dispatcher().add_observer(gap);
  h.start();
  SubmitRequest r;
  r.id = "gap";
  r.executor = "sleep";
  r.params = {{"duration", ParamValue::duration(1h)}};
  ASSERT_TRUE(h.engine().submit(r).is_ok());
  h.wait_events("finish", 1);
  canceller.join();
  ASSERT_TRUE(cancel);
  EXPECT_EQ(cancel->status().code(), StatusCode::kFailedPrecondition);
  h.idle();  // observers hear of the end before the store records it
  EXPECT_EQ(h.store().get("gap")->status, ExecStatus::kCancelled);
}

TEST(EngineTest, TimeoutStopsAndRetriesPerPolicyKeepingKeyOrder) {
  Harness h(R"([helpers.slow]
executor = "sleep"
schedule = { every = "1h" }
timeout = "30s"
retry = { max_attempts = 2, delays = ["10s"] }
params = { duration = "1h" }
)",
            at(kStart));
  h.start();
  h.idle();
  ASSERT_TRUE(h.engine().run_now("slow").is_ok());
  h.wait_running(1);
  // Queued behind it on the same key: must wait for the retry too.
  SubmitRequest next;
  next.id = "next";
  next.executor = "noop";
  next.key = "slow";
  ASSERT_TRUE(h.engine().submit(next).is_ok());
  h.advance(31s);  // timeout -> timed_out, retry in 10 s
  auto finishes = h.events("finish");
  ASSERT_EQ(finishes.size(), 1u);
  EXPECT_EQ(finishes[0].status, ExecStatus::kTimedOut);
  EXPECT_TRUE(h.ids("start").size() == 1u);  // "next" did not jump the queue
  h.clock().advance(10s);
  h.wait_starts(2);
  auto starts = h.events("start");
  ASSERT_EQ(starts.size(), 2u);
  EXPECT_EQ(starts[1].attempt, 2u);
  h.advance(31s);  // second timeout: attempts exhausted
  auto run = h.store().get(starts[1].id);
  EXPECT_EQ(run->status, ExecStatus::kTimedOut);
  EXPECT_EQ(run->attempt, 2u);
  EXPECT_EQ(h.ids("start").back(), "next");  // then the key moves on
}

TEST(EngineTest, FailuresRetryWithDelaysButPermanentOnesDoNot) {
  Harness h(R"([retry]
max_attempts = 3
delays = ["0s", "5s"]
[helpers.flaky]
executor = "fx_outcome"
schedule = { every = "1h" }
params = { outcome = "failed" }
[helpers.broken]
executor = "fx_outcome"
schedule = { every = "1h" }
params = { outcome = "permanent" }
)",
            at(kStart));
  h.start();
  h.idle();
  auto flaky = h.engine().run_now("flaky");
  auto broken = h.engine().run_now("broken");
  ASSERT_TRUE(flaky.is_ok() && broken.is_ok());
  h.idle();       // flaky attempt 1 fails, attempt 2 (delay 0s) fails; broken fails once
  h.advance(5s);  // flaky attempt 3 (delay 5s) fails: exhausted
  std::map<std::string, std::vector<uint32_t>> attempts;
  for (const auto& e : h.events("start")) attempts[e.id].push_back(e.attempt);
  EXPECT_EQ(attempts[flaky->execution.id], (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(attempts[broken->execution.id], (std::vector<uint32_t>{1}));
  EXPECT_EQ(h.store().get(flaky->execution.id)->status, ExecStatus::kFailed);
  EXPECT_EQ(h.store().get(broken->execution.id)->message, "asked to fail for good");
}

TEST(EngineTest, OverlapSkipRecordsTheRunThatCameDueWhileRunning) {
  Harness h(endless_every_minute("skip"), at(kStart));
  h.second_run_due_while_first_runs();
  h.wait_events("skipped", 1);
  EXPECT_EQ(h.ids("skipped"), (std::vector<std::string>{"job@1767225720"}));
  EXPECT_EQ(h.store().get("job@1767225720")->status, ExecStatus::kSkipped);
  ASSERT_EQ(h.engine().cancel("job@1767225660").status().code(), StatusCode::kFailedPrecondition);
}

TEST(EngineTest, OverlapReplaceCancelsTheRunningOne) {
  Harness h(endless_every_minute("replace"), at(kStart));
  h.second_run_due_while_first_runs();
  h.wait_events("start", 2);
  EXPECT_EQ(h.store().get("job@1767225660")->status, ExecStatus::kCancelled);
  EXPECT_EQ(h.ids("start"), (std::vector<std::string>{"job@1767225660", "job@1767225720"}));
  ASSERT_EQ(h.engine().cancel("job@1767225720").status().code(), StatusCode::kFailedPrecondition);
}

TEST(EngineTest, OverlapAllowRunsConcurrently) {
  Harness h(endless_every_minute("allow"), at(kStart));
  h.second_run_due_while_first_runs();
  h.wait_running(2);
  for (const char* id : {"job@1767225660", "job@1767225720"}) {
    ASSERT_EQ(h.engine().cancel(id).status().code(), StatusCode::kFailedPrecondition);
  }
}

TEST(EngineTest, EnableDisableUpdateReportCounts) {
  Harness h(R"([helpers.job]
executor = "noop"
schedule = { every = "1m" }
enabled = false
)",
            at(kStart));
  h.start();
  h.idle();
  EXPECT_EQ(h.count(ExecStatus::kQueued), 0u);
  EXPECT_EQ(*h.engine().enable("job"), 120u);
  EXPECT_EQ(h.count(ExecStatus::kQueued), 120u);
  EXPECT_EQ(*h.engine().disable("job"), 120u);
  EXPECT_EQ(h.count(ExecStatus::kQueued), 0u);
  EXPECT_EQ(*h.engine().enable("job"), 120u);
  EXPECT_EQ(*h.engine().update_schedule("job", R"({ every = "2m" })"), 60u);
  EXPECT_EQ(h.count(ExecStatus::kQueued), 60u);
  auto bad = h.engine().update_schedule("job", R"({ cron = "61 * * * *" })");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("minute: 61 is out of range 0-59"), std::string::npos)
      << bad.status().message();
  EXPECT_EQ(h.engine().enable("nope").status().code(), StatusCode::kNotFound);
  // State, not config: kept in the store.
  auto state = h.store().helper_state("job");
  ASSERT_TRUE(state && state->enabled && state->schedule_override);
  EXPECT_TRUE(*state->enabled);
  EXPECT_EQ(*state->schedule_override, R"({ every = "2m" })");
}

struct CatchUpCase {
  const char* mode;
  std::size_t ran;
  std::size_t skipped;
  std::size_t expired;
};

class CatchUpTest : public ::testing::TestWithParam<CatchUpCase> {};

TEST_P(CatchUpTest, MissedRunsFollowThePolicy) {
  const CatchUpCase& c = GetParam();
  Harness h(std::string(R"([helpers.job]
executor = "noop"
schedule = { every = "1m" }
expiry = "5m"
catch_up = ")") +
                c.mode + "\"\n",
            at(kStart));
  // The daemon was down: the watermark says it had planned up to 10 minutes ago.
  HelperState state{"job", {}, {}, at(kStart) - 10min};
  ASSERT_TRUE(h.store().put_helper_state(state).is_ok());
  h.start();
  h.idle();
  EXPECT_EQ(h.count(ExecStatus::kSucceeded), c.ran) << c.mode;
  EXPECT_EQ(h.count(ExecStatus::kSkipped), c.skipped) << c.mode;
  EXPECT_EQ(h.count(ExecStatus::kExpired), c.expired) << c.mode;
}

// Ten missed minutes; expiry 5m: with "all", the 5 newest still run, the older 5 expire.
INSTANTIATE_TEST_SUITE_P(Modes, CatchUpTest,
                         ::testing::Values(CatchUpCase{"all", 5, 0, 5},
                                           CatchUpCase{"latest", 1, 9, 0},
                                           CatchUpCase{"none", 0, 10, 0}));

TEST(EngineTest, RecoveryInterruptsRunningAndRetries) {
  Harness h(R"([helpers.job]
executor = "noop"
schedule = { every = "1h" }
retry = { max_attempts = 2, delays = ["0s"] }
)",
            at(kStart));
  // A previous daemon claimed one and died.
  auto spec = std::make_shared<ExecTemplate>();
  spec->name = "job";
  spec->executor = "noop";
  spec->key = "job";
  spec->max_attempts = 2;
  Execution e;
  e.id = "job@1767225600";
  e.spec = spec;
  e.due = e.not_before = at("2026-01-01T00:00:00Z");
  ASSERT_EQ(*h.store().plan({e}, e.due), 1u);
  auto claimed = h.store().claim("default", 1, at(kStart), "dead-node");
  ASSERT_TRUE(claimed.is_ok());
  ASSERT_EQ(claimed->claimed.size(), 1u);
  h.start();
  h.idle();
  auto done = h.store().get("job@1767225600");
  EXPECT_EQ(done->status, ExecStatus::kSucceeded);
  EXPECT_EQ(done->attempt, 2u);
}

TEST(EngineTest, SubmissionsBeyondQueuedCapacityAreRefused) {
  Harness h(R"([capacity]
queued = 3
)",
            at(kStart));
  h.start();
  h.idle();
  // s0 runs; s1..s3 wait behind it (3 queued = capacity); s4 is refused.
  for (int i = 0; i < 5; ++i) {
    SubmitRequest r;
    r.id = "s" + std::to_string(i);
    r.executor = "sleep";
    r.key = "one-key";
    r.params = {{"duration", ParamValue::duration(1h)}};
    auto res = h.engine().submit(r);
    if (i == 0) h.wait_running(1);
    if (i < 4) {
      EXPECT_TRUE(res.is_ok()) << i << ": " << res.status().to_string();
      continue;
    }
    EXPECT_EQ(res.status().code(), StatusCode::kResourceExhausted);
    EXPECT_EQ(h.store().get(r.id), std::nullopt);  // nothing stored
  }
  EXPECT_EQ(h.count(ExecStatus::kQueued), 3u);
  ASSERT_EQ(h.engine().cancel("s0").status().code(), StatusCode::kFailedPrecondition);
}

TEST(EngineTest, HistoryIsPrunedAfterRetention) {
  Harness h(R"([daemon]
history_retention = "1h"
expand_every = "5m"
[helpers.job]
executor = "noop"
schedule = { every = "10m" }
)",
            at(kStart));
  h.start();
  for (int i = 0; i < 18; ++i) h.advance(10min);  // 3 hours
  EXPECT_EQ(h.events("finish").size(), 18u);
  // Only runs that finished within the last hour (plus one expand period) remain.
  std::size_t kept = h.count(ExecStatus::kSucceeded);
  EXPECT_GE(kept, 6u);
  EXPECT_LE(kept, 7u);
}

// [history] retention: successes leave history after their 1 h, failures stay for 2 d, and a
// status without an entry (timed_out here: none) would keep history_retention.
TEST(EngineTest, HistoryIsPrunedPerOutcome) {
  Harness h(R"([daemon]
history_retention = "3h"
expand_every = "5m"
[history]
retention = { succeeded = "1h", failed = "2d" }
[helpers.ok]
executor = "fx_outcome"
schedule = { every = "10m" }
params = { outcome = "succeeded" }
[helpers.bad]
executor = "fx_outcome"
schedule = { every = "10m" }
retry = { max_attempts = 1 }
params = { outcome = "failed" }
)",
            at(kStart));
  h.start();
  for (int i = 0; i < 18; ++i) h.advance(10min);  // 3 hours
  EXPECT_EQ(h.events("finish").size(), 36u);
  // Successes of the last hour (plus one expand period) remain; every failure does.
  std::size_t kept = h.count(ExecStatus::kSucceeded);
  EXPECT_GE(kept, 6u);
  EXPECT_LE(kept, 7u);
  EXPECT_EQ(h.count(ExecStatus::kFailed), 18u);
  // Two days on, the failures of the first three hours are gone too (what fails now is the
  // catch-up of the runs due in the last expiry, 30 min, before the clock's jump).
  const TimePoint first_three_hours_end = h.clock().now();
  h.advance(2 * 24h + 1min);  // the last ones finished at the clock's reading then
  ExecutionFilter f;
  f.status = ExecStatus::kFailed;
  f.limit = 1000;
  auto failed = h.store().list(f);
  EXPECT_LE(failed.size(), 4u);
  for (const auto& e : failed) EXPECT_GT(e.due, first_three_hours_end) << e.id;
}

}  // namespace
}  // namespace schedd
