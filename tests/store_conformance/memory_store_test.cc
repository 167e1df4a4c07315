#include "core/store/memory_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <random>
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

// Differential: the same random calls on a store whose helpers are kept compact and on one
// whose helpers have an expiry too far away to matter (full records only) give the same
// answers, field by field.
TEST(MemoryStoreCompactTest, RandomCallsAnswerAsFullRecordsDo) {
  MemoryStore compact;
  MemoryStore full;
  constexpr int kHelpers = 6;
  std::vector<std::shared_ptr<const ExecTemplate>> specs_c;
  std::vector<std::shared_ptr<const ExecTemplate>> specs_f;
  const char* keys[] = {"a", "b", "a", "c", "b", "a"};  // some helpers share a key
  for (int h = 0; h < kHelpers; ++h) {
    const std::string name = h == 0 ? "h" : "h" + std::to_string(h * 5);  // "h", "h5", "h10"...
    specs_c.push_back(make_spec(name, {.key = keys[h], .priority = 1 + h % 3}));
    specs_f.push_back(
        make_spec(name, {.key = keys[h], .priority = 1 + h % 3, .expiry = 24 * 365 * 10h}));
  }
  auto adhoc_c = make_spec("manual", {.key = "a", .origin = ExecOrigin::kAdhoc});
  auto adhoc_f = make_spec("manual", {.key = "a", .origin = ExecOrigin::kAdhoc});
  auto same = [](const Execution& a, const Execution& b) {
    return a.id == b.id && a.spec->name == b.spec->name && a.due == b.due &&
           a.not_before == b.not_before && a.seq == b.seq && a.attempt == b.attempt &&
           a.status == b.status && a.fence == b.fence && a.created == b.created &&
           a.started == b.started && a.finished == b.finished && a.message == b.message &&
           a.node == b.node;
  };
  auto same_all = [&](const std::vector<Execution>& a, const std::vector<Execution>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!same(a[i], b[i])) return false;
    }
    return true;
  };
  std::mt19937 rng(19);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  TimePoint now = kT0;
  std::vector<std::string> seen_ids;
  std::vector<Execution> running;
  std::size_t claimed = 0;
  for (int step = 0; step < 3000; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    const int op = pick(10);
    if (op == 0) {  // plan a helper's next minutes (some planned before, some not)
      const int h = pick(kHelpers);
      std::vector<TimePoint> dues;
      TimePoint from = now + std::chrono::minutes(pick(20) - 2);
      for (int i = 0; i < 1 + pick(8); ++i) dues.push_back(from + std::chrono::minutes(i));
      const std::string& name = specs_c[h]->name;
      auto a = compact.plan_dues(HelperState{name}, name, specs_c[h], dues, now);
      auto b = full.plan_dues(HelperState{name}, name, specs_f[h], dues, now);
      ASSERT_EQ(a.value(), b.value());
      for (TimePoint d : dues) seen_ids.push_back(planned_id(name, d));
    } else if (op == 1) {  // submit an ad-hoc execution, sometimes with a planned id
      const std::string id = pick(3) == 0 && !seen_ids.empty()
                                 ? seen_ids[pick(static_cast<int>(seen_ids.size()))]
                                 : "m" + std::to_string(step);
      const TimePoint due = now + std::chrono::seconds(pick(600));
      auto a = compact.submit(make_exec(adhoc_c, due, id), now, 1000);
      auto b = full.submit(make_exec(adhoc_f, due, id), now, 1000);
      ASSERT_EQ(a.status().code(), b.status().code()) << a.status().message();
      if (a.is_ok()) {
        EXPECT_TRUE(same(a->first, b->first));
        EXPECT_EQ(a->second, b->second);
      } else {
        EXPECT_EQ(a.status().message(), b.status().message());
      }
      seen_ids.push_back(id);
    } else if (op <= 4) {  // claim what is due, and complete some of the running
      now += std::chrono::seconds(pick(90));
      const std::size_t max = 1 + static_cast<std::size_t>(pick(3));
      auto a = compact.claim("default", max, now, "n");
      auto b = full.claim("default", max, now, "n");
      ASSERT_TRUE(a.is_ok() && b.is_ok());
      ASSERT_TRUE(same_all(a->claimed, b->claimed));
      EXPECT_EQ(ids_of(a->skipped), ids_of(b->skipped));
      claimed += a->claimed.size();
      for (auto& e : a->claimed) running.push_back(e);
      while (!running.empty() && pick(3) != 0) {
        const std::size_t i = static_cast<std::size_t>(pick(static_cast<int>(running.size())));
        Completion c;
        c.finished = now;
        c.status = pick(4) == 0 ? ExecStatus::kFailed : ExecStatus::kSucceeded;
        Execution after_a;
        Execution after_b;
        ASSERT_TRUE(compact.complete(running[i].id, running[i].fence, c, &after_a).is_ok());
        ASSERT_TRUE(full.complete(running[i].id, running[i].fence, c, &after_b).is_ok());
        EXPECT_TRUE(same(after_a, after_b));
        running.erase(running.begin() + static_cast<std::ptrdiff_t>(i));
      }
    } else if (op == 5 && !seen_ids.empty()) {  // cancel one
      const std::string& id = seen_ids[pick(static_cast<int>(seen_ids.size()))];
      auto a = compact.cancel(id, now);
      auto b = full.cancel(id, now);
      ASSERT_EQ(a.status().code(), b.status().code());
      if (a.is_ok()) {
        EXPECT_TRUE(same(*a, *b));
      }
    } else if (op == 6) {  // remove some planned
      const int h = pick(kHelpers);
      const TimePoint after =
          pick(4) == 0 ? TimePoint::min() : now + std::chrono::minutes(pick(15));
      std::vector<std::string> ra;
      std::vector<std::string> rb;
      auto a = compact.remove_planned(specs_c[h]->name, after, &ra);
      auto b = full.remove_planned(specs_f[h]->name, after, &rb);
      ASSERT_EQ(a.value(), b.value());
      EXPECT_EQ(sorted(ra), sorted(rb));
    } else if (!seen_ids.empty()) {  // reads
      const std::string& id = seen_ids[pick(static_cast<int>(seen_ids.size()))];
      auto ga = compact.get(id);
      auto gb = full.get(id);
      ASSERT_EQ(ga.has_value(), gb.has_value()) << id;
      if (ga) {
        EXPECT_TRUE(same(*ga, *gb)) << id;
      }
      EXPECT_EQ(compact.position(id), full.position(id)) << id;
      for (const char* key : {"a", "b", "c"}) {
        EXPECT_TRUE(same_all(compact.key_queue(key), full.key_queue(key))) << key;
      }
      ExecutionFilter f;
      f.limit = 1 + static_cast<std::size_t>(pick(40));
      if (pick(2) == 0) f.after_id = id;
      if (pick(3) == 0) f.status = ExecStatus::kQueued;
      if (pick(4) == 0) f.key = "a";
      if (pick(4) == 0) f.due_after = now + std::chrono::minutes(pick(10));
      EXPECT_TRUE(same_all(compact.list(f), full.list(f))) << id;
      f.order = ExecutionFilter::Order::kDue;
      EXPECT_TRUE(same_all(compact.list(f), full.list(f))) << id;
      auto ca = compact.counts(now);
      auto cb = full.counts(now);
      ASSERT_EQ(ca.size(), cb.size());
      for (std::size_t i = 0; i < ca.size(); ++i) {
        EXPECT_EQ(ca[i].queued, cb[i].queued);
        EXPECT_EQ(ca[i].running, cb[i].running);
      }
    }
  }
  ExecutionFilter every;
  every.limit = 100000;
  EXPECT_TRUE(same_all(compact.list(every), full.list(every)));
  EXPECT_GT(claimed, 500u);                     // the calls did run things
  EXPECT_GT(compact.list(every).size(), 500u);  // and left many behind
}

}  // namespace
}  // namespace schedd::testing
