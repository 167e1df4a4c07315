#include "core/store/memory_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tests/store_conformance/store_conformance.h"

namespace schedd::testing {
namespace {

using namespace std::chrono_literals;

INSTANTIATE_TEST_SUITE_P(Memory, StoreConformanceTest, ::testing::Values(StoreFactory([] {
                           return std::make_unique<MemoryStore>();
                         })));

// ---- execution.h helpers ------------------------------------------------------------------

TEST(StoreExecutionTest, StatusNamesRoundTrip) {
  for (ExecStatus s : {ExecStatus::kQueued, ExecStatus::kRunning, ExecStatus::kSucceeded,
                       ExecStatus::kFailed, ExecStatus::kTimedOut, ExecStatus::kCancelled,
                       ExecStatus::kExpired, ExecStatus::kSkipped, ExecStatus::kInterrupted}) {
    EXPECT_EQ(parse_exec_status(exec_status_name(s)), s) << exec_status_name(s);
  }
  EXPECT_STREQ(exec_status_name(ExecStatus::kTimedOut), "timed_out");
  EXPECT_EQ(parse_exec_status("Queued"), std::nullopt);
  EXPECT_EQ(parse_exec_status(""), std::nullopt);
  EXPECT_FALSE(is_terminal(ExecStatus::kRunning));
  EXPECT_TRUE(is_terminal(ExecStatus::kInterrupted));
}

TEST(StoreExecutionTest, RetryDelayRepeatsTheLastDelay) {
  ExecTemplate spec;
  EXPECT_EQ(retry_delay(spec, 2), 0ms);
  spec.retry_delays = {0ms, 30s, 5min};
  EXPECT_EQ(retry_delay(spec, 1), 0ms);
  EXPECT_EQ(retry_delay(spec, 2), 0ms);
  EXPECT_EQ(retry_delay(spec, 3), 30s);
  EXPECT_EQ(retry_delay(spec, 4), 5min);
  EXPECT_EQ(retry_delay(spec, 50), 5min);
}

TEST(StoreExecutionTest, PlannedIdIsHelperAtEpochSeconds) {
  EXPECT_EQ(planned_id("backup", kT0), "backup@1767225600");
  EXPECT_EQ(planned_id("backup", kT0 + 999ms), "backup@1767225600");
  EXPECT_EQ(planned_id("x", TimePoint{} - 500ms), "x@-1");
}

TEST(StoreExecutionTest, KeyIsTheIdWhenTheTemplateHasNone) {
  auto spec = make_spec("job", {.overlap = OverlapPolicy::kAllow});
  Execution e = make_exec(spec, kT0);
  EXPECT_EQ(e.key(), "job@1767225600");
  EXPECT_EQ(make_exec(make_spec("job"), kT0).key(), "job");
}

// ---- scale --------------------------------------------------------------------------------

// 2000 helpers x 50 planned runs, claimed and completed in due order: every claim is a few
// ordered-set operations, so this stays well under a second even in a debug build.
TEST(MemoryStoreTest, PlansAndDrainsAHundredThousandExecutions) {
  MemoryStore store;
  constexpr int kHelpers = 2000;
  constexpr int kRuns = 50;
  std::vector<Execution> batch;
  batch.reserve(kHelpers * kRuns);
  for (int h = 0; h < kHelpers; ++h) {
    auto spec = make_spec("helper-" + std::to_string(h), {.expiry = 1h});
    for (int r = 0; r < kRuns; ++r) batch.push_back(make_exec(spec, kT0 + std::chrono::minutes(r)));
  }
  auto created = store.plan(std::move(batch), kT0);
  ASSERT_TRUE(created.is_ok());
  ASSERT_EQ(*created, std::size_t{kHelpers * kRuns});

  std::size_t done = 0;
  for (int minute = 0; minute < kRuns; ++minute) {
    TimePoint now = kT0 + std::chrono::minutes(minute);
    // Everything due now is ready (no event); the next event is the earliest expiry.
    ASSERT_EQ(store.next_event(now), now + std::chrono::hours(1));
    while (true) {
      auto r = store.claim("default", 256, now, "node");
      ASSERT_TRUE(r.is_ok());
      ASSERT_TRUE(r->expired.empty());
      if (r->claimed.empty()) break;
      for (const auto& e : r->claimed) {
        ASSERT_EQ(e.due, now);
        Completion c;
        c.finished = now;
        ASSERT_TRUE(store.complete(e.id, e.fence, c).is_ok());
        ++done;
      }
    }
    ASSERT_EQ(done, std::size_t{kHelpers} * (minute + 1));
  }
  EXPECT_EQ(store.next_event(kT0 + 2h), std::nullopt);
  EXPECT_EQ(store.prune_history(kT0 + 2h), std::size_t{kHelpers * kRuns});
}

// ---- compact planned executions (issue #19) -----------------------------------------------

// Every field of two executions, for comparing a compact one with what a Record holds.
void expect_same(const Execution& a, const Execution& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.spec, b.spec) << a.id;
  EXPECT_EQ(a.due, b.due) << a.id;
  EXPECT_EQ(a.not_before, b.not_before) << a.id;
  EXPECT_EQ(a.seq, b.seq) << a.id;
  EXPECT_EQ(a.attempt, b.attempt) << a.id;
  EXPECT_EQ(a.status, b.status) << a.id;
  EXPECT_EQ(a.fence, b.fence) << a.id;
  EXPECT_EQ(a.created, b.created) << a.id;
  EXPECT_EQ(a.started, b.started) << a.id;
  EXPECT_EQ(a.finished, b.finished) << a.id;
  EXPECT_EQ(a.message, b.message) << a.id;
  EXPECT_EQ(a.output, b.output) << a.id;
  EXPECT_EQ(a.node, b.node) << a.id;
}

std::vector<TimePoint> minutes_from(TimePoint t, int n) {
  std::vector<TimePoint> out;
  for (int i = 0; i < n; ++i) out.push_back(t + std::chrono::minutes(i));
  return out;
}

// A store that plans through plan_dues as the planner does, and one that plans the same
// executions as full Executions through the base class's plan_dues (MemoryStore::plan with
// a template that has an expiry far away is never compact): both report the same fields.
TEST(MemoryStoreCompactTest, PlannedExecutionHasTheSameFieldsAsAFullRecord) {
  MemoryStore store;
  auto spec = make_spec("tick");
  const auto dues = minutes_from(kT0, 5);
  const TimePoint planned_at = kT0 - 1s;
  ASSERT_EQ(store.plan_dues(HelperState{"tick"}, "tick", spec, dues, planned_at).value(), 5u);
  for (int i = 0; i < 5; ++i) {
    Execution want;
    want.id = planned_id("tick", dues[i]);
    want.spec = spec;
    want.due = dues[i];
    want.not_before = dues[i];
    want.seq = static_cast<uint64_t>(i + 1);
    want.created = planned_at;
    auto got = store.get(want.id);
    ASSERT_TRUE(got.has_value()) << want.id;
    expect_same(*got, want);
  }
  // Claimed at its due: the execution made at claim time is what get() showed, running.
  for (int i = 0; i < 5; ++i) {
    auto before = store.get(planned_id("tick", dues[i]));
    ASSERT_TRUE(before.has_value());
    auto r = store.claim("default", 10, dues[i], "node-a");
    ASSERT_TRUE(r.is_ok());
    ASSERT_EQ(r->claimed.size(), 1u) << i;
    Execution want = *before;
    want.status = ExecStatus::kRunning;
    want.started = dues[i];
    want.node = "node-a";
    want.fence = r->claimed[0].fence;
    EXPECT_GT(want.fence, 0u);
    expect_same(r->claimed[0], want);
    expect_same(*store.get(want.id), want);
    Completion c;
    c.finished = dues[i] + 1s;
    c.message = "done";
    ASSERT_TRUE(store.complete(want.id, want.fence, c).is_ok());
  }
  EXPECT_TRUE(store.key_queue("tick").empty());
}

TEST(MemoryStoreCompactTest, ReplanningIsIdempotentAndSubmittingAPlannedIdIsRefused) {
  MemoryStore store;
  auto spec = make_spec("tick");
  const auto dues = minutes_from(kT0, 4);
  ASSERT_EQ(store.plan_dues(HelperState{"tick"}, "tick", spec, dues, kT0).value(), 4u);
  EXPECT_EQ(store.plan_dues(HelperState{"tick"}, "tick", spec, dues, kT0).value(), 0u);
  // The vector form sees the compact ones too.
  std::vector<Execution> again;
  for (TimePoint d : minutes_from(kT0, 6)) again.push_back(make_exec(spec, d));
  EXPECT_EQ(store.plan(std::move(again), kT0).value(), 2u);
  auto r = store.submit(make_exec(spec, kT0 + 2min), kT0, 100);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(r.status().message().find("at position 3"), std::string::npos) << r.status().message();
  // Not ids of planned executions: "tick@0...", another second, another helper.
  EXPECT_FALSE(store.get("tick@01767225660").has_value());
  EXPECT_FALSE(store.get("tick@1767225661").has_value());
  EXPECT_FALSE(store.get("tock@1767225660").has_value());
  EXPECT_FALSE(store.get("tick@").has_value());
  EXPECT_TRUE(store.get("tick@1767225660").has_value());
}

TEST(MemoryStoreCompactTest, GetPositionCancelAndRemovePlanned) {
  MemoryStore store;
  auto spec = make_spec("tick");
  const auto dues = minutes_from(kT0, 6);
  ASSERT_EQ(store.plan_dues(HelperState{"tick"}, "tick", spec, dues, kT0).value(), 6u);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(store.position(planned_id("tick", dues[i])), std::size_t(i + 1));
  }
  // Cancel one in the middle: it leaves the queue and is history, the rest move up.
  auto cancelled = store.cancel(planned_id("tick", dues[2]), kT0 + 10s);
  ASSERT_TRUE(cancelled.is_ok());
  EXPECT_EQ(cancelled->status, ExecStatus::kCancelled);
  EXPECT_EQ(cancelled->seq, 3u);
  EXPECT_EQ(store.get(planned_id("tick", dues[2]))->status, ExecStatus::kCancelled);
  EXPECT_EQ(store.position(planned_id("tick", dues[2])), std::nullopt);
  EXPECT_EQ(store.position(planned_id("tick", dues[3])), 3u);
  EXPECT_EQ(store.cancel(planned_id("tick", dues[2]), kT0).status().code(),
            StatusCode::kAlreadyExists);
  // Remove those due after minute 3: minutes 4 and 5 (compact) go.
  std::vector<std::string> removed;
  ASSERT_EQ(store.remove_planned("tick", dues[3], &removed).value(), 2u);
  EXPECT_EQ(sorted(removed), sorted({planned_id("tick", dues[4]), planned_id("tick", dues[5])}));
  EXPECT_FALSE(store.get(planned_id("tick", dues[5])).has_value());
  EXPECT_EQ(ids_of(store.key_queue("tick")),
            (std::vector<std::string>{planned_id("tick", dues[0]), planned_id("tick", dues[1]),
                                      planned_id("tick", dues[3])}));
  // Only the queued-and-due count changed as well: three queued, all due by minute 3.
  EXPECT_EQ(store.counts(dues[3])[0].queued, 3u);
  // Remove all, the head (a Record) included.
  ASSERT_EQ(store.remove_planned("tick", TimePoint::min()).value(), 3u);
  EXPECT_TRUE(store.key_queue("tick").empty());
  EXPECT_EQ(store.counts(dues[3])[0].queued, 0u);
  EXPECT_EQ(store.next_event(kT0), std::nullopt);
  // Planned again: every id is free but the cancelled one's.
  EXPECT_EQ(store.plan_dues(HelperState{"tick"}, "tick", spec, dues, kT0).value(), 5u);
}

// A submitted execution on the key of a helper's compact executions goes between them by
// (due, seq), and runs there.
TEST(MemoryStoreCompactTest, KeyOrderMixesCompactAndSubmittedExecutions) {
  MemoryStore store;
  auto spec = make_spec("tick", {.key = "k"});
  auto adhoc = make_spec("manual", {.key = "k", .origin = ExecOrigin::kAdhoc});
  const auto dues = minutes_from(kT0, 5);
  ASSERT_EQ(store.plan_dues(HelperState{"tick"}, "tick", spec, dues, kT0).value(), 5u);
  auto sub = store.submit(make_exec(adhoc, kT0 + 150s, "manual-1"), kT0, 100);
  ASSERT_TRUE(sub.is_ok());
  EXPECT_EQ(sub->second, 4u);  // after minutes 0, 1, 2
  const std::vector<std::string> order{planned_id("tick", dues[0]), planned_id("tick", dues[1]),
                                       planned_id("tick", dues[2]), "manual-1",
                                       planned_id("tick", dues[3]), planned_id("tick", dues[4])};
  EXPECT_EQ(ids_of(store.key_queue("k")), order);
  ExecutionFilter by_due;
  by_due.order = ExecutionFilter::Order::kDue;
  EXPECT_EQ(ids_of(store.list(by_due)), order);
  by_due.limit = 2;  // paging with the (due, seq) cursor
  std::vector<std::string> paged;
  while (true) {
    auto page = store.list(by_due);
    if (page.empty()) break;
    for (const auto& e : page) paged.push_back(e.id);
    by_due.after_due = std::make_pair(page.back().due, page.back().seq);
  }
  EXPECT_EQ(paged, order);
  for (std::size_t i = 0; i < order.size(); ++i) EXPECT_EQ(store.position(order[i]), i + 1);
  // Claimed one at a time, late enough for all: the key's order.
  std::vector<std::string> ran;
  for (std::size_t i = 0; i < order.size(); ++i) {
    auto r = store.claim("default", 10, kT0 + 1h, "n");
    ASSERT_TRUE(r.is_ok());
    ASSERT_EQ(r->claimed.size(), 1u);
    ran.push_back(r->claimed[0].id);
    Completion c;
    c.finished = kT0 + 1h;
    ASSERT_TRUE(store.complete(r->claimed[0].id, r->claimed[0].fence, c).is_ok());
  }
  EXPECT_EQ(ran, order);
}

// list() in id order merges Records and compact entries exactly as sorted strings, names
// that are prefixes of one another ("h-1", "h-10") included, and pages by the id cursor.
TEST(MemoryStoreCompactTest, ListInIdOrderMergesCompactAndRecords) {
  MemoryStore store;
  std::vector<std::string> all;
  for (const char* name : {"h-1", "h-10", "h-2", "h", "h-1x"}) {
    auto spec = make_spec(name);
    const auto dues = minutes_from(kT0 + 59min, 3);  // across a digit-count-neutral range
    ASSERT_EQ(store.plan_dues(HelperState{name}, name, spec, dues, kT0).value(), 3u);
    for (TimePoint d : dues) all.push_back(planned_id(name, d));
  }
  auto adhoc = make_spec("e", {.origin = ExecOrigin::kAdhoc});
  for (const char* id : {"e1", "h-1@", "h-1@9", "zz"}) {
    ASSERT_TRUE(store.submit(make_exec(adhoc, kT0, id), kT0, 100).is_ok()) << id;
    all.push_back(id);
  }
  // One of them run to history: still listed, by its id.
  auto r = store.claim("default", 1, kT0, "n");
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->claimed.size(), 1u);
  Completion c;
  c.finished = kT0;
  ASSERT_TRUE(store.complete(r->claimed[0].id, r->claimed[0].fence, c).is_ok());
  std::sort(all.begin(), all.end());

  ExecutionFilter f;
  f.limit = 1000;
  EXPECT_EQ(ids_of(store.list(f)), all);
  for (std::size_t limit : {1, 2, 3, 7}) {
    ExecutionFilter page;
    page.limit = limit;
    std::vector<std::string> got;
    while (true) {
      auto p = store.list(page);
      if (p.empty()) break;
      for (const auto& e : p) got.push_back(e.id);
      page.after_id = p.back().id;
    }
    EXPECT_EQ(got, all) << "limit " << limit;
  }
  // Filters apply to compact entries: a name, queued only, due after an instant.
  ExecutionFilter named;
  named.name = "h-1";
  EXPECT_EQ(store.list(named).size(), 3u);
  ExecutionFilter running;
  running.status = ExecStatus::kRunning;
  EXPECT_TRUE(store.list(running).empty());
  ExecutionFilter late;
  late.due_after = kT0 + 60min;
  late.limit = 1000;
  EXPECT_EQ(store.list(late).size(), 5u);  // the last minute of each helper
  ExecutionFilter lane;
  lane.lane = "other";
  EXPECT_TRUE(store.list(lane).empty());
}

// The embedded store's start-up: restore() of what list() shows gives a store that lists
// and runs the same.
TEST(MemoryStoreCompactTest, RestoreKeepsCompactExecutionsExactly) {
  MemoryStore a;
  auto spec = make_spec("tick");
  auto other = make_spec("tock", {.key = "tick"});
  ASSERT_EQ(a.plan_dues(HelperState{"tick"}, "tick", spec, minutes_from(kT0, 4), kT0).value(), 4u);
  ASSERT_EQ(
      a.plan_dues(HelperState{"tock"}, "tock", other, minutes_from(kT0 + 30s, 3), kT0 + 1s).value(),
      3u);
  ExecutionFilter f;
  f.limit = 1000;
  const auto before = a.list(f);
  ASSERT_EQ(before.size(), 7u);
  MemoryStore b;
  ASSERT_TRUE(b.restore(before, {}).is_ok());
  const auto after = b.list(f);
  ASSERT_EQ(after.size(), before.size());
  for (std::size_t i = 0; i < before.size(); ++i) expect_same(after[i], before[i]);
  EXPECT_EQ(ids_of(b.key_queue("tick")), ids_of(a.key_queue("tick")));
  // A twice-stored compact id is refused.
  std::vector<Execution> twice = before;
  twice.push_back(before.back());
  MemoryStore c;
  EXPECT_EQ(c.restore(twice, {}).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace schedd::testing
