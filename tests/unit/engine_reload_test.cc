// Live reload and lanes changed at run time, on the real engine with a ManualClock
// (docs/operations.md "Reload", "Scale, pause and drain").
#include <gtest/gtest.h>

#include <set>

#include "tests/testing/engine_harness.h"

namespace schedd {
namespace {

using namespace std::chrono_literals;
using testing::at;
using testing::Harness;
using testing::kStart;

std::vector<Execution> queued_of(Harness& h, const std::string& helper) {
  ExecutionFilter f;
  f.status = ExecStatus::kQueued;
  f.limit = 1000000;
  std::vector<Execution> out;
  for (auto& e : h.store().list(f)) {
    if (e.spec->name == helper) out.push_back(std::move(e));
  }
  return out;
}

bool mentions(const std::vector<std::string>& lines, const std::string& what) {
  return std::any_of(lines.begin(), lines.end(),
                     [&](const std::string& l) { return l.find(what) != std::string::npos; });
}

// Waits (real time, bounded) until execution `id` has status `want`.
void wait_status(Harness& h, const std::string& id, ExecStatus want) {
  EXPECT_TRUE(Harness::wait_for([&] {
    auto e = h.store().get(id);
    return e && e->status == want;
  })) << id
      << " is not " << exec_status_name(want);
}

Dispatcher::LaneStatus lane_of(Harness& h, const std::string& name) {
  for (const auto& l : h.engine().dispatcher().lanes()) {
    if (l.name == name) return l;
  }
  ADD_FAILURE() << "no lane " << name;
  return {};
}

// Waits (real time, bounded) until lane `name` has `n` worker threads.
void wait_threads(Harness& h, const std::string& name, std::size_t n) {
  Harness::wait_for([&] { return lane_of(h, name).threads == n; });
  EXPECT_EQ(lane_of(h, name).threads, n);
}

const char* kBefore = R"([lanes.default]
workers = 2
[helpers.keep]
executor = "noop"
schedule = { every = "1m" }
[helpers.gone]
executor = "noop"
schedule = { every = "1m" }
[helpers.moved]
executor = "noop"
schedule = { every = "1m" }
)";

const char* kAfter = R"([lanes.default]
workers = 3
[lanes.batch]
workers = 1
[helpers.keep]
executor = "noop"
schedule = { every = "1m" }
[helpers.moved]
executor = "noop"
schedule = { every = "2m" }
[helpers.added]
executor = "noop"
lane = "batch"
schedule = { every = "5m" }
)";

TEST(EngineReloadTest, AddsRemovesReschedulesHelpersAndResizesLanes) {
  Harness h(kBefore, at(kStart));
  h.start();
  ASSERT_EQ(queued_of(h, "gone").size(), 120u);
  auto keep_before = queued_of(h, "keep");

  auto report = h.reload(kAfter);
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  h.idle();
  EXPECT_TRUE(report->needs_restart.empty());
  EXPECT_TRUE(mentions(report->changes, "helper gone: removed (120 queued"));
  EXPECT_TRUE(mentions(report->changes, "helper added: added (24 executions planned)"));
  EXPECT_TRUE(mentions(report->changes, "helper moved: schedule changed"));
  EXPECT_TRUE(mentions(report->changes, "lane default: 2 -> 3 workers"));
  EXPECT_TRUE(mentions(report->changes, "lane batch: added with 1 workers"));
  EXPECT_FALSE(mentions(report->changes, "helper keep"));

  EXPECT_EQ(queued_of(h, "gone").size(), 0u);
  EXPECT_EQ(queued_of(h, "added").size(), 24u);
  auto moved = queued_of(h, "moved");
  EXPECT_EQ(moved.size(), 60u);
  for (const auto& e : moved) {
    auto s = std::chrono::duration_cast<std::chrono::seconds>(e.due.time_since_epoch()).count();
    EXPECT_EQ(s % 120, 0) << e.id;  // every 2 minutes from the epoch
  }
  // The unchanged helper keeps its plan as it was, execution for execution.
  auto keep_after = queued_of(h, "keep");
  ASSERT_EQ(keep_after.size(), keep_before.size());
  for (std::size_t i = 0; i < keep_after.size(); ++i) {
    EXPECT_EQ(keep_after[i].id, keep_before[i].id);
    EXPECT_EQ(keep_after[i].seq, keep_before[i].seq);
  }
  EXPECT_EQ(lane_of(h, "default").workers, 3u);
  EXPECT_EQ(lane_of(h, "batch").workers, 1u);
  wait_threads(h, "batch", 1);
  EXPECT_NE(h.engine().config().find_helper("added"), nullptr);
  EXPECT_EQ(h.engine().config().find_helper("gone"), nullptr);

  // Ten minutes on: every due run of every helper ran once, none of `gone`.
  for (int i = 0; i < 10; ++i) h.advance(1min);
  std::map<std::string, int> runs;
  std::set<std::string> ids;
  for (const auto& e : h.events("finish")) {
    EXPECT_TRUE(ids.insert(e.id).second) << "ran twice: " << e.id;
    ++runs[e.id.substr(0, e.id.find('@'))];
  }
  EXPECT_EQ(runs["keep"], 10);
  EXPECT_EQ(runs["moved"], 5);
  EXPECT_EQ(runs["added"], 2);
  EXPECT_EQ(runs["gone"], 0);

  // The same file again changes nothing.
  auto again = h.reload(kAfter);
  ASSERT_TRUE(again.is_ok());
  EXPECT_TRUE(again->changes.empty()) << again->changes.front();
}

TEST(EngineReloadTest, AChangedHelperKeepsWhatIsDueAndReplansTheRest) {
  // Runs last until cancelled: the 00:01 run holds the key while 00:02 comes due and waits.
  Harness h(R"([helpers.job]
executor = "sleep"
schedule = { every = "1m" }
priority = 3
params = { duration = "1h" }
)",
            at(kStart));
  h.start();
  h.clock().advance(30s);  // 00:01
  h.wait_running(1);
  h.clock().advance(1min);  // 00:02 is due and waits for the key
  h.quiet();
  const std::size_t queued_before = queued_of(h, "job").size();

  auto report = h.reload(R"([helpers.job]
executor = "sleep"
schedule = { every = "1m" }
priority = 1
params = { duration = "1h" }
)");
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  EXPECT_TRUE(mentions(report->changes, "helper job: priority changed"));
  auto due = h.store().get("job@1767225720");  // 00:02, due before the reload
  ASSERT_TRUE(due.has_value());
  EXPECT_EQ(due->status, ExecStatus::kQueued);
  EXPECT_EQ(due->priority(), 3);
  auto later = h.store().get("job@1767225780");  // 00:03, planned anew
  ASSERT_TRUE(later.has_value());
  EXPECT_EQ(later->priority(), 1);
  h.quiet();
  // 00:02, kept, and 00:03 .. 02:02 (the lookahead from now): none lost or doubled.
  std::set<std::string> queued;
  for (const auto& e : queued_of(h, "job")) queued.insert(e.id);
  EXPECT_EQ(queued.size(), 121u);
  EXPECT_GE(queued.size(), queued_before);
  for (int64_t m = 0; m < 121; ++m) {
    EXPECT_TRUE(queued.contains("job@" + std::to_string(1767225720 + 60 * m))) << m;
  }
  // The run in flight is untouched.
  EXPECT_EQ(h.engine().dispatcher().running(), 1u);
  EXPECT_EQ(h.store().get("job@1767225660")->status, ExecStatus::kRunning);
}

TEST(EngineReloadTest, NamesWhatNeedsARestartAndKeepsItsRunningValue) {
  Harness h(R"([daemon]
lookahead = "2h"
[api]
listen = "127.0.0.1:7878"
[lanes.default]
workers = 1
[lanes.old]
workers = 2
)",
            at(kStart));
  h.start();
  auto report = h.reload(R"([daemon]
lookahead = "3h"
[api]
listen = "0.0.0.0:9000"
[lanes.default]
workers = 1
)");
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  EXPECT_TRUE(mentions(report->needs_restart, "listen: 127.0.0.1:7878 -> 0.0.0.0:9000"));
  EXPECT_TRUE(mentions(report->needs_restart, "lookahead: 2h -> 3h"));
  EXPECT_TRUE(mentions(report->needs_restart, "lane old: removed"));
  EXPECT_EQ(h.engine().config().listen, "127.0.0.1:7878");
  EXPECT_EQ(h.engine().config().lookahead, 2h);
  EXPECT_NE(h.engine().config().find_lane("old"), nullptr);
  EXPECT_EQ(lane_of(h, "old").workers, 2u);
}

// A changed history retention applies at the reload: what is past the new retention leaves
// history at once, without waiting for the next planning round or a restart.
TEST(EngineReloadTest, AChangedHistoryRetentionPrunesAtOnce) {
  const std::string helpers = R"(
[helpers.ok]
executor = "fx_outcome"
schedule = { every = "10m" }
params = { outcome = "succeeded" }
[helpers.bad]
executor = "fx_outcome"
schedule = { every = "10m" }
retry = { max_attempts = 1 }
params = { outcome = "failed" }
)";
  Harness h("[daemon]\nexpand_every = \"1h\"\n" + helpers, at(kStart));
  h.start();
  for (int i = 0; i < 12; ++i) h.advance(10min);  // 2 hours, every run kept (24 h)
  ASSERT_EQ(h.count(ExecStatus::kSucceeded), 12u);
  ASSERT_EQ(h.count(ExecStatus::kFailed), 12u);
  auto report = h.reload(
      "[daemon]\nexpand_every = \"1h\"\n[history]\n"
      "retention = { succeeded = \"25m\" }\n" +
      helpers);
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  EXPECT_TRUE(mentions(report->changes, "history_retention: 1d -> 1d (succeeded 25m)"))
      << ::testing::PrintToString(report->changes);
  EXPECT_FALSE(mentions(report->needs_restart, "history_retention"));
  EXPECT_EQ(h.engine().dispatcher().history_retention().of(ExecStatus::kSucceeded), 25min);
  // The clock has not moved: the reload's own pruning dropped them. Runs finished at 00:10,
  // 00:20, ... 02:00 (at :30 past, the clock moving in steps); the cutoff is 01:35:30.
  h.idle();
  EXPECT_EQ(h.count(ExecStatus::kSucceeded), 3u);
  EXPECT_EQ(h.count(ExecStatus::kFailed), 12u);
}

// Submits `n` runs that last until cancelled, each with its own key, in the default lane.
std::vector<std::string> submit_endless(Harness& h, int n) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    SubmitRequest r;
    r.executor = "sleep";
    r.id = "run-" + std::to_string(i);
    r.params = {{"duration", ParamValue::duration(1h)}};
    auto s = h.engine().submit(r);
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    ids.push_back(r.id);
  }
  return ids;
}

TEST(LaneControlTest, ScalingDownLetsRunsFinishAndScalingUpRunsMore) {
  Harness h(R"([lanes.default]
workers = 3
)",
            at(kStart));
  h.start();
  auto ids = submit_endless(h, 6);
  h.wait_running(3);
  auto before = h.engine().dispatcher().set_lane_workers("default", 1);
  ASSERT_TRUE(before.is_ok());
  EXPECT_EQ(*before, 3u);
  h.quiet();
  EXPECT_EQ(h.engine().dispatcher().running(), 3u);  // nothing running is stopped
  // As runs end, the lane shrinks to one: one run at a time.
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(h.engine().cancel(ids[i]).status().code() == StatusCode::kFailedPrecondition);
  // The count passes through 1 while the three stop (3, 2, 1, 0, then the fourth starts), so
  // wait for the three ends and the fourth start before counting what runs.
  h.wait_events("finish", 3);
  h.wait_starts(4);
  h.wait_running(1);
  wait_threads(h, "default", 1);
  h.quiet();
  EXPECT_EQ(h.engine().dispatcher().running(), 1u);
  EXPECT_EQ(lane_of(h, "default").busy, 1u);

  ASSERT_TRUE(h.engine().dispatcher().set_lane_workers("default", 4).is_ok());
  h.wait_running(3);  // the two still queued start at once
  wait_threads(h, "default", 4);
  EXPECT_EQ(lane_of(h, "default").workers, 4u);

  EXPECT_FALSE(h.engine().dispatcher().set_lane_workers("default", 0).is_ok());
  EXPECT_FALSE(h.engine().dispatcher().set_lane_workers("default", 5000).is_ok());
  for (const auto& id : ids) (void)h.engine().cancel(id);
  h.wait_running(0);
}

TEST(LaneControlTest, APausedLaneAndADrainingDaemonClaimNothingAndFinishWhatRuns) {
  Harness h(R"([lanes.default]
workers = 2
)",
            at(kStart));
  h.start();
  auto first = submit_endless(h, 1);
  h.wait_running(1);
  ASSERT_TRUE(h.engine().dispatcher().set_lane_paused("default", true).is_ok());
  EXPECT_TRUE(lane_of(h, "default").paused);
  SubmitRequest quick;
  quick.executor = "noop";
  quick.id = "quick";
  ASSERT_TRUE(h.engine().submit(quick).is_ok());
  h.clock().advance(1s);
  h.quiet();
  EXPECT_EQ(h.store().get("quick")->status, ExecStatus::kQueued);
  EXPECT_EQ(h.engine().dispatcher().running(), 1u);  // the running one goes on
  ASSERT_TRUE(h.engine().dispatcher().set_lane_paused("default", false).is_ok());
  wait_status(h, "quick", ExecStatus::kSucceeded);
  EXPECT_FALSE(h.engine().dispatcher().set_lane_paused("nope", true).is_ok());

  h.engine().dispatcher().set_draining(true);
  EXPECT_TRUE(h.engine().dispatcher().draining());
  quick.id = "quick-2";
  ASSERT_TRUE(h.engine().submit(quick).is_ok());
  h.clock().advance(1s);
  h.quiet();
  EXPECT_EQ(h.store().get("quick-2")->status, ExecStatus::kQueued);
  ASSERT_EQ(h.engine().cancel(first[0]).status().code(), StatusCode::kFailedPrecondition);
  h.wait_running(0);  // drained: nothing runs, and nothing new started
  h.quiet();
  EXPECT_EQ(h.store().get("quick-2")->status, ExecStatus::kQueued);
  h.engine().dispatcher().set_draining(false);
  wait_status(h, "quick-2", ExecStatus::kSucceeded);
}

}  // namespace
}  // namespace schedd
