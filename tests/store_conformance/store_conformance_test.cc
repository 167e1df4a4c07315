// The Store conformance tests (see store_conformance.h). Each implementation instantiates
// StoreConformanceTest in its own *_test.cc; this file only defines the tests.
#include "tests/store_conformance/store_conformance.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "tests/testing/manual_clock.h"

namespace schedd::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// ---- plan ---------------------------------------------------------------------------------

TEST_P(StoreConformanceTest, PlanStoresQueuedExecutionsWithSeqAndCreated) {
  auto spec = make_spec("backup");
  plan({make_exec(spec, at(60s)), make_exec(spec, at(120s))}, at(5s));
  auto a = store().get("backup@1767225660");
  auto b = store().get("backup@1767225720");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->status, ExecStatus::kQueued);
  EXPECT_EQ(a->attempt, 1u);
  EXPECT_EQ(a->created, at(5s));
  EXPECT_EQ(a->due, at(60s));
  EXPECT_LT(a->seq, b->seq);
  EXPECT_EQ(a->spec->name, "backup");
  EXPECT_FALSE(a->started.has_value());
}

TEST_P(StoreConformanceTest, PlanIsIdempotent) {
  auto spec = make_spec("backup");
  std::vector<Execution> batch = {make_exec(spec, at(0s)), make_exec(spec, at(60s))};
  plan(batch);
  auto again = store().plan(batch, at(1s));
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(*again, 0u);
  auto overlapping = store().plan({make_exec(spec, at(60s)), make_exec(spec, at(120s))}, at(1s));
  ASSERT_TRUE(overlapping.is_ok());
  EXPECT_EQ(*overlapping, 1u);
  EXPECT_EQ(store().key_queue("backup").size(), 3u);
}

TEST_P(StoreConformanceTest, PlanDoesNotRecreateFinishedExecutions) {
  auto spec = make_spec("backup");
  plan({make_exec(spec, at(0s))});
  auto c = claim("default", 1, at(0s));
  ASSERT_EQ(c.claimed.size(), 1u);
  finish(c.claimed[0], at(1s));
  auto again = store().plan({make_exec(spec, at(0s))}, at(2s));
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(*again, 0u);
  EXPECT_EQ(status_of("backup@1767225600"), ExecStatus::kSucceeded);
  EXPECT_THAT(store().key_queue("backup"), IsEmpty());
}

TEST_P(StoreConformanceTest, PlanRejectsAnExecutionWithoutTemplateAndStoresNothing) {
  Execution bad;
  bad.id = "bad@1";
  auto r = store().plan({make_exec(make_spec("good"), at(0s)), bad}, kT0);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(store().get("good@1767225600").has_value());
}

// ---- claim ordering -----------------------------------------------------------------------

// Callers read the clock before the store's lock, so a claim can carry an older `now` than a
// next_event that ran just before it. Whatever the store does with that (claim at the later
// instant, or not yet), it never starts an execution before its not_before. Regression: the
// engine simulation saw "started before not_before" about once in 40 runs.
TEST_P(StoreConformanceTest, AClaimWithAnOlderNowNeverStartsBeforeNotBefore) {
  auto spec = make_spec("late");
  plan({make_exec(spec, at(10s))});
  (void)store().next_event(at(20s));
  auto r = store().claim("default", 1, at(5s), "n1");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  for (const auto& e : r->claimed) {
    ASSERT_TRUE(e.started.has_value());
    EXPECT_GE(*e.started, e.not_before) << e.id;
  }
}

TEST_P(StoreConformanceTest, ClaimOrdersByPriorityThenDueThenSubmission) {
  plan({
      make_exec(make_spec("p3-early", {.priority = 3}), at(0s)),
      make_exec(make_spec("p1-late", {.priority = 1}), at(20s)),
      make_exec(make_spec("p1-early", {.priority = 1}), at(10s)),
      make_exec(make_spec("p5", {.priority = 5}), at(0s)),
      make_exec(make_spec("p3-same-due-b", {.priority = 3}), at(5s)),
      make_exec(make_spec("p3-same-due-a", {.priority = 3}), at(5s)),
  });
  EXPECT_THAT(claim_ids("default", 10, at(30s)),
              ElementsAre("p1-early@1767225610", "p1-late@1767225620", "p3-early@1767225600",
                          "p3-same-due-b@1767225605", "p3-same-due-a@1767225605", "p5@1767225600"));
}

TEST_P(StoreConformanceTest, ClaimIsFifoWithinAKeyRegardlessOfPriority) {
  plan({
      make_exec(make_spec("low", {.key = "k", .priority = 5}), at(0s)),
      make_exec(make_spec("high", {.key = "k", .priority = 1}), at(10s)),
      make_exec(make_spec("other", {.priority = 3}), at(10s)),
  });
  auto first = claim("default", 10, at(20s));
  EXPECT_THAT(ids_of(first.claimed), ElementsAre("other@1767225610", "low@1767225600"));
  // The priority-1 execution waits behind the key's earlier one until it completes.
  EXPECT_THAT(claim_ids("default", 10, at(21s)), IsEmpty());
  finish(first.claimed[1], at(22s));
  EXPECT_THAT(claim_ids("default", 10, at(22s)), ElementsAre("high@1767225610"));
}

TEST_P(StoreConformanceTest, KeyOrderIsDueThenSubmissionNotInsertionOrder) {
  auto spec = make_spec("job", {.key = "k"});
  plan({make_exec(spec, at(20s)), make_exec(spec, at(10s))});
  plan({make_exec(spec, at(5s), "job-late-planned-early-due")});
  EXPECT_THAT(ids_of(store().key_queue("k")),
              ElementsAre("job-late-planned-early-due", "job@1767225610", "job@1767225620"));
  EXPECT_THAT(claim_ids("default", 5, at(30s)), ElementsAre("job-late-planned-early-due"));
}

TEST_P(StoreConformanceTest, OneRunningPerKeyAcrossLanes) {
  plan({
      make_exec(make_spec("a", {.key = "shared", .lane = "lane-a"}), at(0s)),
      make_exec(make_spec("b", {.key = "shared", .lane = "lane-b"}), at(1s)),
  });
  auto a = claim("lane-a", 5, at(2s));
  ASSERT_EQ(a.claimed.size(), 1u);
  EXPECT_THAT(claim_ids("lane-b", 5, at(3s)), IsEmpty());
  finish(a.claimed[0], at(4s));
  EXPECT_THAT(claim_ids("lane-b", 5, at(4s)), ElementsAre("b@1767225601"));
}

TEST_P(StoreConformanceTest, ClaimNeverReturnsAnotherLanesExecutions) {
  plan({
      make_exec(make_spec("a", {.lane = "lane-a", .priority = 5}), at(0s)),
      make_exec(make_spec("b", {.lane = "lane-b", .priority = 1}), at(0s)),
  });
  EXPECT_THAT(claim_ids("lane-a", 5, at(1s)), ElementsAre("a@1767225600"));
  EXPECT_THAT(claim_ids("lane-a", 5, at(1s)), IsEmpty());
  EXPECT_THAT(claim_ids("no-such-lane", 5, at(1s)), IsEmpty());
  EXPECT_THAT(claim_ids("lane-b", 5, at(1s)), ElementsAre("b@1767225600"));
}

TEST_P(StoreConformanceTest, ClaimRespectsMax) {
  std::vector<Execution> batch;
  for (int i = 0; i < 5; ++i) batch.push_back(make_exec(make_spec("h" + std::to_string(i)), kT0));
  plan(batch);
  EXPECT_THAT(claim_ids("default", 0, at(1s)), IsEmpty());
  EXPECT_EQ(claim_ids("default", 2, at(1s)).size(), 2u);
  EXPECT_EQ(claim_ids("default", 2, at(1s)).size(), 2u);
  EXPECT_EQ(claim_ids("default", 2, at(1s)).size(), 1u);
}

TEST_P(StoreConformanceTest, ClaimMarksRunningWithIncreasingFenceAndNode) {
  plan({make_exec(make_spec("a"), kT0), make_exec(make_spec("b"), kT0)});
  auto r = store().claim("default", 2, at(3s), "node-7");
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->claimed.size(), 2u);
  const Execution& a = r->claimed[0];
  EXPECT_EQ(a.status, ExecStatus::kRunning);
  EXPECT_EQ(a.started, at(3s));
  EXPECT_EQ(a.node, "node-7");
  EXPECT_GT(a.fence, 0u);
  EXPECT_LT(a.fence, r->claimed[1].fence);
  auto stored = store().get(a.id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->status, ExecStatus::kRunning);
  EXPECT_EQ(stored->fence, a.fence);
}

TEST_P(StoreConformanceTest, FutureNotBeforeIsNotClaimedAndNextEventReportsIt) {
  plan({make_exec(make_spec("later"), at(60s))});
  EXPECT_THAT(claim_ids("default", 5, at(59s)), IsEmpty());
  EXPECT_EQ(store().next_event(at(59s)), at(60s));
  EXPECT_THAT(claim_ids("default", 5, at(60s)), ElementsAre("later@1767225660"));
}

TEST_P(StoreConformanceTest, NextEventIsNulloptWhenNothingIsQueued) {
  EXPECT_EQ(store().next_event(kT0), std::nullopt);
  plan({make_exec(make_spec("a"), kT0)});
  ASSERT_EQ(claim_ids("default", 1, kT0).size(), 1u);
  EXPECT_EQ(store().next_event(at(1s)), std::nullopt);
}

TEST_P(StoreConformanceTest, NextEventIgnoresWhatIsAlreadyClaimable) {
  // A ready head waits for a worker, not for time: it is no event. The next one is.
  plan({make_exec(make_spec("a"), at(10s)), make_exec(make_spec("b"), at(50s))});
  EXPECT_EQ(store().next_event(at(30s)), at(50s));
  EXPECT_EQ(store().next_event(at(60s)), std::nullopt);
  EXPECT_EQ(claim_ids("default", 5, at(60s)).size(), 2u);
}

TEST_P(StoreConformanceTest, NextEventReportsTheEarliestExpiryOfAWaitingExecution) {
  auto spec = make_spec("job", {.expiry = 30s});
  plan({make_exec(spec, at(0s)), make_exec(spec, at(10s))});
  ASSERT_EQ(claim_ids("default", 5, at(0s)).size(), 1u);
  // The second waits behind the running first; it can change state when it expires.
  EXPECT_EQ(store().next_event(at(11s)), at(40s));
}

// ---- expiry -------------------------------------------------------------------------------

TEST_P(StoreConformanceTest, ExecutionNotStartedByDuePlusExpiryExpires) {
  plan({make_exec(make_spec("job", {.expiry = 30s}), at(0s))});
  auto r = claim("default", 5, at(30s));
  EXPECT_THAT(r.claimed, IsEmpty());
  EXPECT_THAT(ids_of(r.expired), ElementsAre("job@1767225600"));
  EXPECT_EQ(r.expired[0].status, ExecStatus::kExpired);
  auto stored = store().get("job@1767225600");
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->status, ExecStatus::kExpired);
  EXPECT_EQ(stored->finished, at(30s));
  EXPECT_THAT(store().key_queue("job"), IsEmpty());
}

// due + expiry past the end of TimePoint (2262-04-11T23:47:16Z) is held at the end, never
// wrapped to 1677: such an execution neither expires at once nor makes next_event report an
// instant in the past.
TEST_P(StoreConformanceTest, DuePlusExpiryNearTheEndOfTimeIsCappedNotWrapped) {
  const TimePoint due = TimePoint::max() - 1min;
  plan({make_exec(make_spec("late", {.expiry = 1h}), due)});
  auto r = claim("default", 5, at(0s));
  EXPECT_THAT(r.claimed, IsEmpty());
  EXPECT_THAT(r.expired, IsEmpty()) << "expired at once: due + expiry wrapped";
  auto next = store().next_event(at(0s));
  ASSERT_TRUE(next.has_value());
  EXPECT_GT(*next, at(0s));
  auto stored = store().get(planned_id("late", due));
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->status, ExecStatus::kQueued);
}

TEST_P(StoreConformanceTest, ExpiryIsReportedByAClaimOfAnyLane) {
  plan({make_exec(make_spec("job", {.lane = "lane-b", .expiry = 1s}), at(0s))});
  auto r = claim("lane-a", 5, at(5s));
  EXPECT_THAT(ids_of(r.expired), ElementsAre("job@1767225600"));
}

TEST_P(StoreConformanceTest, ExecutionsWaitingBehindARunningKeyExpire) {
  auto spec = make_spec("job", {.expiry = 30s});
  plan({make_exec(spec, at(0s)), make_exec(spec, at(10s)), make_exec(spec, at(20s))});
  auto first = claim("default", 5, at(0s));
  ASSERT_THAT(ids_of(first.claimed), ElementsAre("job@1767225600"));
  auto r = claim("default", 5, at(45s));
  EXPECT_THAT(ids_of(r.expired), ElementsAre("job@1767225610"));
  EXPECT_THAT(ids_of(store().key_queue("job")), ElementsAre("job@1767225620"));
  finish(first.claimed[0], at(46s));
  EXPECT_THAT(claim_ids("default", 5, at(46s)), ElementsAre("job@1767225620"));
}

TEST_P(StoreConformanceTest, RetriesDoNotExpire) {
  auto spec = make_spec("job", {.expiry = 10s, .max_attempts = 3});
  plan({make_exec(spec, at(0s))});
  auto first = claim("default", 1, at(5s));
  ASSERT_EQ(first.claimed.size(), 1u);
  retry(first.claimed[0], at(6s), at(60s));
  auto r = claim("default", 1, at(60s));
  EXPECT_THAT(r.expired, IsEmpty());
  ASSERT_THAT(ids_of(r.claimed), ElementsAre("job@1767225600"));
  EXPECT_EQ(r.claimed[0].attempt, 2u);
}

// ---- complete and retry -------------------------------------------------------------------

TEST_P(StoreConformanceTest, CompleteRecordsTheTerminalState) {
  plan({make_exec(make_spec("job"), at(0s))});
  auto c = claim("default", 1, at(1s));
  ASSERT_EQ(c.claimed.size(), 1u);
  Completion done;
  done.status = ExecStatus::kFailed;
  done.finished = at(9s);
  done.message = "exit 3";
  done.output = "out";
  ASSERT_TRUE(store().complete(c.claimed[0].id, c.claimed[0].fence, done).is_ok());
  auto e = store().get(c.claimed[0].id);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, ExecStatus::kFailed);
  EXPECT_EQ(e->finished, at(9s));
  EXPECT_EQ(e->started, at(1s));
  EXPECT_EQ(e->message, "exit 3");
  EXPECT_EQ(e->output, "out");
  EXPECT_EQ(e->attempt, 1u);
}

TEST_P(StoreConformanceTest, CompleteWithAStaleFenceFailsAndChangesNothing) {
  plan({make_exec(make_spec("job"), at(0s))});
  auto c = claim("default", 1, at(1s));
  ASSERT_EQ(c.claimed.size(), 1u);
  const Execution& e = c.claimed[0];
  Completion done;
  done.finished = at(2s);
  Status wrong = store().complete(e.id, e.fence + 1, done);
  EXPECT_EQ(wrong.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(status_of(e.id), ExecStatus::kRunning);
  ASSERT_TRUE(store().complete(e.id, e.fence, done).is_ok());
  // A second completion of the same claim is stale too.
  EXPECT_EQ(store().complete(e.id, e.fence, done).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store().complete("nope", 1, done).code(), StatusCode::kNotFound);
}

// The message and output are the last attempt's: a retry that succeeds without either reads
// with neither, not with the failed attempt's.
TEST_P(StoreConformanceTest, ALaterAttemptWithoutAMessageClearsTheFailedAttemptsMessage) {
  plan({make_exec(make_spec("job", {.max_attempts = 3}), at(0s))});
  auto first = claim("default", 1, at(1s));
  ASSERT_EQ(first.claimed.size(), 1u);
  retry(first.claimed[0], at(2s), at(3s));
  EXPECT_EQ(store().get("job@1767225600")->message, "boom");
  auto second = claim("default", 1, at(3s));
  ASSERT_EQ(second.claimed.size(), 1u);
  Completion done;
  done.status = ExecStatus::kSucceeded;
  done.finished = at(4s);
  ASSERT_TRUE(store().complete(second.claimed[0].id, second.claimed[0].fence, done).is_ok());
  auto e = store().get("job@1767225600");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, ExecStatus::kSucceeded);
  EXPECT_EQ(e->attempt, 2u);
  EXPECT_EQ(e->message, "");
  EXPECT_EQ(e->output, "");
}

TEST_P(StoreConformanceTest, RetryKeepsKeyOrderAndIncrementsAttempt) {
  auto spec = make_spec("job", {.max_attempts = 3});
  plan({make_exec(spec, at(0s)), make_exec(spec, at(10s))});
  auto first = claim("default", 5, at(10s));
  ASSERT_THAT(ids_of(first.claimed), ElementsAre("job@1767225600"));
  retry(first.claimed[0], at(11s), at(40s));
  auto queued = store().get("job@1767225600");
  ASSERT_TRUE(queued);
  EXPECT_EQ(queued->status, ExecStatus::kQueued);
  EXPECT_EQ(queued->attempt, 2u);
  EXPECT_EQ(queued->not_before, at(40s));
  EXPECT_EQ(queued->due, at(0s));
  EXPECT_EQ(store().position("job@1767225600"), 1u);
  // The later one of the same key waits for the retry, though it is due and the retry is not.
  EXPECT_THAT(claim_ids("default", 5, at(20s)), IsEmpty());
  EXPECT_EQ(store().next_event(at(20s)), at(40s));
  auto second = claim("default", 5, at(40s));
  ASSERT_THAT(ids_of(second.claimed), ElementsAre("job@1767225600"));
  EXPECT_EQ(second.claimed[0].attempt, 2u);
  EXPECT_GT(second.claimed[0].fence, first.claimed[0].fence);
  // The old claim's fence no longer completes it.
  Completion stale;
  stale.finished = at(41s);
  EXPECT_EQ(store().complete("job@1767225600", first.claimed[0].fence, stale).code(),
            StatusCode::kFailedPrecondition);
  finish(second.claimed[0], at(41s));
  EXPECT_THAT(claim_ids("default", 5, at(41s)), ElementsAre("job@1767225610"));
}

// ---- submit -------------------------------------------------------------------------------

TEST_P(StoreConformanceTest, SubmitStoresAndReturnsPositionInKey) {
  auto ticket = make_spec("proj", {.origin = ExecOrigin::kTicket});
  auto a = store().submit(make_exec(ticket, at(0s), "t-1"), at(0s), 100);
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  EXPECT_EQ(a->second, 1u);
  EXPECT_EQ(a->first.status, ExecStatus::kQueued);
  EXPECT_EQ(a->first.created, at(0s));
  auto b = store().submit(make_exec(ticket, at(1s), "t-2"), at(1s), 100);
  ASSERT_TRUE(b.is_ok());
  EXPECT_EQ(b->second, 2u);
  EXPECT_GT(b->first.seq, a->first.seq);
  // An earlier due time goes ahead in the key's queue.
  auto c = store().submit(make_exec(ticket, at(-10s), "t-0"), at(2s), 100);
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(c->second, 1u);
  EXPECT_EQ(store().position("t-1"), 2u);
  EXPECT_EQ(store().position("t-2"), 3u);
}

TEST_P(StoreConformanceTest, SubmitBeyondCapacityIsRefusedAndStoresNothing) {
  auto ticket = make_spec("proj", {.key = "-", .origin = ExecOrigin::kTicket});
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(store().submit(make_exec(ticket, kT0, "t-" + std::to_string(i)), kT0, 3).is_ok());
  }
  auto refused = store().submit(make_exec(ticket, kT0, "t-3"), kT0, 3);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(refused.status().message(), "queue full: 3 queued of capacity 3");
  EXPECT_FALSE(store().get("t-3").has_value());
  // Running executions do not count: claiming one makes room.
  ASSERT_EQ(claim_ids("default", 1, kT0).size(), 1u);
  EXPECT_TRUE(store().submit(make_exec(ticket, kT0, "t-3"), kT0, 3).is_ok());
}

TEST_P(StoreConformanceTest, CapacityCountsOnlyExecutionsThatAreDue) {
  auto spec = make_spec("future");
  plan({make_exec(spec, at(60s)), make_exec(spec, at(120s))});
  auto ticket = make_spec("proj", {.origin = ExecOrigin::kTicket});
  EXPECT_TRUE(store().submit(make_exec(ticket, kT0, "t-1"), kT0, 1).is_ok());
  EXPECT_EQ(store().submit(make_exec(ticket, kT0, "t-2"), kT0, 1).status().code(),
            StatusCode::kResourceExhausted);
  // At 60 s a planned execution is due too, and counts.
  EXPECT_EQ(store().submit(make_exec(ticket, at(60s), "t-2"), at(60s), 2).status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_TRUE(store().submit(make_exec(ticket, at(60s), "t-2"), at(60s), 3).is_ok());
}

TEST_P(StoreConformanceTest, SubmitOfAnIdAlreadyQueuedOrRunningIsRefused) {
  auto ticket = make_spec("proj", {.origin = ExecOrigin::kTicket});
  ASSERT_TRUE(store().submit(make_exec(ticket, kT0, "t-1"), kT0, 100).is_ok());
  ASSERT_TRUE(store().submit(make_exec(ticket, kT0, "t-2"), kT0, 100).is_ok());
  auto dup = store().submit(make_exec(ticket, kT0, "t-2"), kT0, 100);
  ASSERT_FALSE(dup.is_ok());
  EXPECT_EQ(dup.status().code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(dup.status().message(), HasSubstr("t-2"));
  EXPECT_THAT(dup.status().message(), HasSubstr("already queued at position 2"));
  ASSERT_EQ(claim_ids("default", 1, kT0).size(), 1u);
  auto running = store().submit(make_exec(ticket, kT0, "t-1"), kT0, 100);
  EXPECT_EQ(running.status().code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(running.status().message(), HasSubstr("already running"));
  EXPECT_EQ(store().key_queue("proj").size(), 1u);
}

TEST_P(StoreConformanceTest, SubmitMayReuseTheIdOfAFinishedExecution) {
  auto ticket = make_spec("proj", {.origin = ExecOrigin::kTicket});
  ASSERT_TRUE(store().submit(make_exec(ticket, kT0, "t-1"), kT0, 100).is_ok());
  auto c = claim("default", 1, kT0);
  ASSERT_EQ(c.claimed.size(), 1u);
  finish(c.claimed[0], at(1s));
  auto again = store().submit(make_exec(ticket, at(2s), "t-1"), at(2s), 100);
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_EQ(status_of("t-1"), ExecStatus::kQueued);
}

// ---- positions, cancel --------------------------------------------------------------------

TEST_P(StoreConformanceTest, PositionsCountQueuedExecutionsOfTheKeyOnly) {
  auto spec = make_spec("job", {.key = "k"});
  plan({make_exec(spec, at(0s)), make_exec(spec, at(1s)), make_exec(spec, at(2s)),
        make_exec(make_spec("other"), at(0s))});
  EXPECT_EQ(store().position("job@1767225600"), 1u);
  EXPECT_EQ(store().position("job@1767225602"), 3u);
  EXPECT_EQ(store().position("other@1767225600"), 1u);
  ASSERT_EQ(claim_ids("default", 5, at(5s)).size(), 2u);
  EXPECT_EQ(store().position("job@1767225600"), std::nullopt);  // running
  EXPECT_EQ(store().position("job@1767225601"), 1u);
  EXPECT_EQ(store().position("job@1767225602"), 2u);
  EXPECT_EQ(store().position("nope"), std::nullopt);
  EXPECT_THAT(ids_of(store().key_queue("k")), ElementsAre("job@1767225601", "job@1767225602"));
  EXPECT_THAT(store().key_queue("nope"), IsEmpty());
}

TEST_P(StoreConformanceTest, CancelQueuedRunningUnknownAndFinished) {
  auto spec = make_spec("job");
  plan({make_exec(spec, at(0s)), make_exec(spec, at(1s))});
  auto c = claim("default", 1, at(1s));
  ASSERT_EQ(c.claimed.size(), 1u);

  auto queued = store().cancel("job@1767225601", at(2s));
  ASSERT_TRUE(queued.is_ok()) << queued.status().to_string();
  EXPECT_EQ(queued->status, ExecStatus::kCancelled);
  EXPECT_EQ(queued->finished, at(2s));
  EXPECT_THAT(store().key_queue("job"), IsEmpty());

  EXPECT_EQ(store().cancel("job@1767225600", at(2s)).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(status_of("job@1767225600"), ExecStatus::kRunning);
  EXPECT_EQ(store().cancel("nope", at(2s)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store().cancel("job@1767225601", at(3s)).status().code(), StatusCode::kAlreadyExists);
}

TEST_P(StoreConformanceTest, CancellingTheHeadLetsTheNextOneStart) {
  auto spec = make_spec("job", {.priority = 5});
  plan({make_exec(spec, at(0s)), make_exec(spec, at(1s)), make_exec(make_spec("x"), at(50s))});
  ASSERT_TRUE(store().cancel("job@1767225600", at(2s)).is_ok());
  EXPECT_THAT(claim_ids("default", 5, at(2s)), ElementsAre("job@1767225601"));
}

// ---- remove_planned -----------------------------------------------------------------------

TEST_P(StoreConformanceTest, RemovePlannedRemovesOnlyQueuedPlannedExecutionsOfTheHelper) {
  auto job = make_spec("job", {.max_attempts = 1});
  auto other = make_spec("other");
  auto ticket = make_spec("job", {.key = "proj", .origin = ExecOrigin::kTicket});
  plan({make_exec(job, at(0s)), make_exec(job, at(1s)), make_exec(job, at(60s)),
        make_exec(other, at(60s))});
  ASSERT_TRUE(store().submit(make_exec(ticket, at(0s), "ticket-1"), at(0s), 100).is_ok());
  auto c = claim("default", 5, at(0s));
  ASSERT_THAT(sorted(ids_of(c.claimed)), ElementsAre("job@1767225600", "ticket-1"));
  auto done = std::find_if(c.claimed.begin(), c.claimed.end(),
                           [](const Execution& e) { return e.id == "job@1767225600"; });
  finish(*done, at(1s));
  auto second = claim("default", 5, at(1s));
  ASSERT_THAT(ids_of(second.claimed), ElementsAre("job@1767225601"));

  auto removed = store().remove_planned("job", TimePoint::min());
  ASSERT_TRUE(removed.is_ok());
  EXPECT_EQ(*removed, 1u);  // job@...660; the running and finished ones stay
  EXPECT_FALSE(store().get("job@1767225660").has_value());
  EXPECT_EQ(status_of("job@1767225600"), ExecStatus::kSucceeded);
  EXPECT_EQ(status_of("job@1767225601"), ExecStatus::kRunning);
  EXPECT_EQ(status_of("ticket-1"), ExecStatus::kRunning);
  EXPECT_EQ(status_of("other@1767225660"), ExecStatus::kQueued);
  EXPECT_EQ(*store().remove_planned("job", TimePoint::min()), 0u);
  EXPECT_EQ(*store().remove_planned("nobody", TimePoint::min()), 0u);
  // Removed ids may be planned again (enable after disable).
  EXPECT_EQ(*store().plan({make_exec(job, at(60s))}, at(2s)), 1u);
}

TEST_P(StoreConformanceTest, RemovePlannedAfterAnInstantKeepsThoseDueByThen) {
  // A reload that changed a helper replans what is not yet due; the due ones, which may wait
  // behind their key, stay and run as planned.
  auto job = make_spec("job", {.key = "k"});
  plan({make_exec(job, at(0s)), make_exec(job, at(30s)), make_exec(job, at(60s)),
        make_exec(job, at(90s))});
  auto removed = store().remove_planned("job", at(30s));
  ASSERT_TRUE(removed.is_ok());
  EXPECT_EQ(*removed, 2u);
  EXPECT_EQ(status_of("job@1767225600"), ExecStatus::kQueued);
  EXPECT_EQ(status_of("job@1767225630"), ExecStatus::kQueued);
  EXPECT_FALSE(store().get("job@1767225660").has_value());
  EXPECT_FALSE(store().get("job@1767225690").has_value());
  EXPECT_THAT(claim_ids("default", 5, at(40s)), ElementsAre("job@1767225600"));
}

TEST_P(StoreConformanceTest, RemovePlannedLetsTheNextOfTheKeyStart) {
  auto job = make_spec("job", {.key = "k"});
  auto other = make_spec("other", {.key = "k"});
  plan({make_exec(job, at(0s)), make_exec(other, at(1s))});
  ASSERT_EQ(*store().remove_planned("job", TimePoint::min()), 1u);
  EXPECT_THAT(claim_ids("default", 5, at(1s)), ElementsAre("other@1767225601"));
}

// ---- overlap ------------------------------------------------------------------------------

TEST_P(StoreConformanceTest, OverlapSkipRecordsRunsThatComeDueWhileTheHelperRuns) {
  auto spec = make_spec("job", {.overlap = OverlapPolicy::kSkip});
  plan({make_exec(spec, at(0s)), make_exec(spec, at(60s)), make_exec(spec, at(120s))});
  auto first = claim("default", 5, at(0s));
  ASSERT_THAT(ids_of(first.claimed), ElementsAre("job@1767225600"));
  EXPECT_THAT(first.skipped, IsEmpty());
  EXPECT_EQ(store().next_event(at(1s)), at(60s));
  auto r = claim("default", 5, at(60s));
  EXPECT_THAT(r.claimed, IsEmpty());
  ASSERT_THAT(ids_of(r.skipped), ElementsAre("job@1767225660"));
  EXPECT_EQ(r.skipped[0].status, ExecStatus::kSkipped);
  EXPECT_EQ(status_of("job@1767225660"), ExecStatus::kSkipped);
  finish(first.claimed[0], at(90s));
  auto next = claim("default", 5, at(120s));
  EXPECT_THAT(ids_of(next.claimed), ElementsAre("job@1767225720"));
  EXPECT_THAT(next.skipped, IsEmpty());
}

TEST_P(StoreConformanceTest, OverlapSkipSkipsEveryOverdueRunInOneClaim) {
  auto spec = make_spec("job", {.overlap = OverlapPolicy::kSkip});
  plan({make_exec(spec, at(0s)), make_exec(spec, at(10s)), make_exec(spec, at(20s))});
  auto r = claim("default", 5, at(30s));
  EXPECT_THAT(ids_of(r.claimed), ElementsAre("job@1767225600"));
  EXPECT_THAT(ids_of(r.skipped), ElementsAre("job@1767225610", "job@1767225620"));
}

TEST_P(StoreConformanceTest, OverlapSkipWaitsBehindAnotherHelperOnTheSameKey) {
  auto skipper = make_spec("skipper", {.key = "k", .overlap = OverlapPolicy::kSkip});
  auto other = make_spec("other", {.key = "k"});
  plan({make_exec(other, at(0s)), make_exec(skipper, at(10s))});
  auto first = claim("default", 5, at(10s));
  ASSERT_THAT(ids_of(first.claimed), ElementsAre("other@1767225600"));
  EXPECT_THAT(first.skipped, IsEmpty());
  finish(first.claimed[0], at(11s));
  EXPECT_THAT(claim_ids("default", 5, at(11s)), ElementsAre("skipper@1767225610"));
}

TEST_P(StoreConformanceTest, OverlapReplaceReportsTheRunningExecutionOnce) {
  // A reopened store forgets that it reported a replace (a restart interrupts the run
  // anyway): it reports the same running execution again once per reopen, never another.
  const bool reopened = store().describe().starts_with(kReopenedStorePrefix);
  const auto again = [&](const ClaimResult& c) {
    if (reopened) {
      EXPECT_THAT(c.replace, ElementsAre("job@1767225600"));
    } else {
      EXPECT_THAT(c.replace, IsEmpty());
    }
    EXPECT_THAT(c.claimed, IsEmpty());
  };
  auto spec = make_spec("job", {.overlap = OverlapPolicy::kReplace});
  plan({make_exec(spec, at(0s)), make_exec(spec, at(60s)), make_exec(spec, at(70s))});
  auto first = claim("default", 5, at(0s));
  ASSERT_THAT(ids_of(first.claimed), ElementsAre("job@1767225600"));
  EXPECT_THAT(first.replace, IsEmpty());
  auto r = claim("default", 5, at(60s));
  EXPECT_THAT(r.claimed, IsEmpty());
  EXPECT_THAT(r.replace, ElementsAre("job@1767225600"));
  again(claim("default", 5, at(61s)));
  again(claim("default", 5, at(75s)));
  // The replacing run waits for the key and starts once the replaced one ends.
  finish(first.claimed[0], at(76s), ExecStatus::kCancelled);
  auto next = claim("default", 5, at(76s));
  ASSERT_THAT(ids_of(next.claimed), ElementsAre("job@1767225660"));
  // The one behind it is due too: the newly running one is reported for replacement.
  EXPECT_THAT(next.replace, ElementsAre("job@1767225660"));
}

TEST_P(StoreConformanceTest, OverlapAllowRunsConcurrently) {
  auto spec = make_spec("job", {.overlap = OverlapPolicy::kAllow});
  plan({make_exec(spec, at(0s)), make_exec(spec, at(10s))});
  EXPECT_THAT(claim_ids("default", 5, at(0s)), ElementsAre("job@1767225600"));
  auto r = claim("default", 5, at(10s));
  EXPECT_THAT(ids_of(r.claimed), ElementsAre("job@1767225610"));
  EXPECT_THAT(r.skipped, IsEmpty());
  EXPECT_THAT(r.replace, IsEmpty());
  EXPECT_EQ(store().get("job@1767225610")->key(), "job@1767225610");
}

// ---- history, counts, helper state --------------------------------------------------------

TEST_P(StoreConformanceTest, PruneHistoryDropsOnlyOldTerminalExecutions) {
  auto spec = make_spec("job", {.key = "-", .overlap = OverlapPolicy::kAllow});
  plan({make_exec(spec, at(0s)), make_exec(spec, at(1s)), make_exec(spec, at(2s)),
        make_exec(spec, at(500s))});
  auto c = claim("default", 5, at(2s));
  ASSERT_EQ(c.claimed.size(), 3u);
  finish(c.claimed[0], at(10s));
  finish(c.claimed[1], at(20s));
  EXPECT_EQ(store().prune_history(at(15s)), 1u);
  EXPECT_FALSE(store().get(c.claimed[0].id).has_value());
  EXPECT_TRUE(store().get(c.claimed[1].id).has_value());
  EXPECT_EQ(store().prune_history(at(1000s)), 1u);
  EXPECT_EQ(status_of(c.claimed[2].id), ExecStatus::kRunning);
  EXPECT_EQ(status_of("job@1767226100"), ExecStatus::kQueued);
  EXPECT_EQ(store().prune_history(at(1000s)), 0u);
}

// [history] retention: each terminal status leaves history at its own retention, the others
// at the fallback, on a manual clock advanced past each retention in turn.
TEST_P(StoreConformanceTest, PruneHistoryKeepsEachStatusForItsOwnRetention) {
  ManualClock clock(kT0);
  HistoryRetention retention;
  retention.fallback = 24h;
  retention.by_status = {{ExecStatus::kSucceeded, 1h},
                         {ExecStatus::kCancelled, 2h},
                         {ExecStatus::kExpired, 3h},
                         {ExecStatus::kSkipped, 4h},
                         {ExecStatus::kFailed, 7 * 24h}};
  // One execution ends in each of succeeded, failed, timed_out (fallback), cancelled, expired
  // and skipped, all within the first minute.
  auto spec = make_spec("job", {.key = "-", .overlap = OverlapPolicy::kAllow});
  // In a lane of its own, so that the claims below leave it queued until it expires.
  auto expiring = make_spec("late", {.lane = "slow", .expiry = 5s});
  Execution skipped = make_exec(make_spec("skip"), at(0s));
  skipped.status = ExecStatus::kSkipped;
  plan({make_exec(spec, at(0s)), make_exec(spec, at(1s)), make_exec(spec, at(2s)),
        make_exec(spec, at(50s)), make_exec(expiring, at(0s)), skipped});
  auto c = claim("default", 3, at(2s));
  ASSERT_EQ(c.claimed.size(), 3u);
  finish(c.claimed[0], at(10s), ExecStatus::kSucceeded);
  finish(c.claimed[1], at(10s), ExecStatus::kFailed);
  finish(c.claimed[2], at(10s), ExecStatus::kTimedOut);
  ASSERT_TRUE(store().cancel("job@1767225650", at(10s)).is_ok());
  // A claim at 10s (any lane, even for none) finds `late` past due + expiry.
  EXPECT_THAT(ids_of(claim("default", 0, at(10s)).expired), ElementsAre("late@1767225600"));
  const std::string succeeded = c.claimed[0].id;
  const std::string failed = c.claimed[1].id;
  const std::string timed_out = c.claimed[2].id;
  const std::string cancelled = "job@1767225650";
  const std::string expired = "late@1767225600";
  const std::string skip = "skip@1767225600";
  for (const auto& id : {succeeded, failed, timed_out, cancelled, expired, skip}) {
    ASSERT_TRUE(store().get(id).has_value()) << id;
  }
  auto kept = [&] {
    std::set<std::string> out;
    for (const auto& id : {succeeded, failed, timed_out, cancelled, expired, skip}) {
      if (store().get(id)) out.insert(id);
    }
    return out;
  };
  auto prune_at = [&](std::chrono::milliseconds since_t0) {
    clock.set(at(since_t0));
    return store().prune_history(retention.cutoffs(clock.now()));
  };

  // Nothing is past any retention yet (everything finished at 10 s or earlier: skipped at 0 s).
  EXPECT_EQ(prune_at(1h), 0u);
  // A retention is kept in full: at finish + retention the execution is still there.
  EXPECT_EQ(prune_at(1h + 10s), 0u);
  EXPECT_EQ(prune_at(1h + 11s), 1u);
  EXPECT_EQ(kept(), (std::set<std::string>{failed, timed_out, cancelled, expired, skip}));
  EXPECT_EQ(prune_at(2h + 11s), 1u);
  EXPECT_EQ(kept(), (std::set<std::string>{failed, timed_out, expired, skip}));
  EXPECT_EQ(prune_at(3h + 11s), 1u);
  EXPECT_EQ(kept(), (std::set<std::string>{failed, timed_out, skip}));
  EXPECT_EQ(prune_at(4h + 11s), 1u);
  EXPECT_EQ(kept(), (std::set<std::string>{failed, timed_out}));
  EXPECT_EQ(prune_at(24h + 11s), 1u);  // timed_out has no entry: the fallback
  EXPECT_EQ(kept(), (std::set<std::string>{failed}));
  EXPECT_EQ(prune_at(7 * 24h), 0u);
  EXPECT_EQ(prune_at(7 * 24h + 11s), 1u);
  EXPECT_THAT(kept(), IsEmpty());
  // Queued and running executions are never history, whatever the cutoffs.
  plan({make_exec(spec, at(7 * 24h + 20s)), make_exec(spec, at(7 * 24h + 21s))});
  auto running = claim("default", 1, at(7 * 24h + 20s));
  ASSERT_EQ(running.claimed.size(), 1u);
  EXPECT_EQ(store().prune_history(HistoryCutoffs(TimePoint::max())), 0u);
  EXPECT_EQ(status_of(running.claimed[0].id), ExecStatus::kRunning);
}

// A pruning round drops more than one batch of one status at once (the Redis store prunes in
// batches of 1000) and leaves the statuses it keeps alone.
TEST_P(StoreConformanceTest, PruneHistoryPerStatusDropsEveryBatch) {
  // Fewer where every change re-opens the file (each costs a reopen).
  const int kRuns = store().describe().starts_with(kReopenedStorePrefix) ? 33 : 1100;
  std::vector<Execution> batch;
  auto spec = make_spec("job", {.key = "-", .overlap = OverlapPolicy::kAllow});
  for (int i = 0; i < kRuns; ++i) batch.push_back(make_exec(spec, at(std::chrono::seconds(i))));
  plan(batch);
  auto c = claim("default", kRuns, at(std::chrono::seconds(kRuns)));
  ASSERT_EQ(c.claimed.size(), static_cast<std::size_t>(kRuns));
  for (int i = 0; i < kRuns; ++i) {
    finish(c.claimed[static_cast<std::size_t>(i)], at(std::chrono::seconds(kRuns)),
           i % 11 == 0 ? ExecStatus::kFailed : ExecStatus::kSucceeded);
  }
  HistoryCutoffs cutoffs(at(std::chrono::seconds(kRuns + 1)));
  cutoffs.set(ExecStatus::kFailed, at(0s));
  EXPECT_EQ(store().prune_history(cutoffs), static_cast<std::size_t>(kRuns - kRuns / 11));
  ExecutionFilter f;
  f.limit = kRuns;
  auto left = store().list(f);
  EXPECT_EQ(left.size(), static_cast<std::size_t>(kRuns / 11));
  for (const auto& e : left) EXPECT_EQ(e.status, ExecStatus::kFailed) << e.id;
}

TEST_P(StoreConformanceTest, CountsRunningAndDueQueuedPerLane) {
  plan({
      make_exec(make_spec("a1", {.key = "ka", .lane = "a"}), at(0s)),
      make_exec(make_spec("a2", {.key = "ka", .lane = "a"}), at(1s)),
      make_exec(make_spec("a3", {.lane = "a"}), at(100s)),
      make_exec(make_spec("b1", {.lane = "b"}), at(0s)),
  });
  ASSERT_EQ(claim_ids("a", 5, at(5s)).size(), 1u);
  auto counts = store().counts(at(5s));
  std::map<std::string, std::pair<std::size_t, std::size_t>> by_lane;
  for (const auto& c : counts) by_lane[c.lane] = {c.running, c.queued};
  EXPECT_EQ(by_lane["a"], std::make_pair(std::size_t{1}, std::size_t{1}));
  EXPECT_EQ(by_lane["b"], std::make_pair(std::size_t{0}, std::size_t{1}));
  counts = store().counts(at(100s));
  for (const auto& c : counts) by_lane[c.lane] = {c.running, c.queued};
  EXPECT_EQ(by_lane["a"], std::make_pair(std::size_t{1}, std::size_t{2}));
  // Going back in time is exact too.
  counts = store().counts(at(0s));
  for (const auto& c : counts) by_lane[c.lane] = {c.running, c.queued};
  EXPECT_EQ(by_lane["a"], std::make_pair(std::size_t{1}, std::size_t{0}));
  EXPECT_EQ(by_lane["b"], std::make_pair(std::size_t{0}, std::size_t{1}));
}

TEST_P(StoreConformanceTest, HelperStateRoundTrips) {
  EXPECT_EQ(store().helper_state("backup"), std::nullopt);
  HelperState s;
  s.name = "backup";
  s.enabled = false;
  s.schedule_override = "{ kind = \"daily\", at = [\"02:00\"] }";
  s.planned_until = at(7200s);
  ASSERT_TRUE(store().put_helper_state(s).is_ok());
  auto got = store().helper_state("backup");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->name, "backup");
  EXPECT_EQ(got->enabled, false);
  EXPECT_EQ(got->schedule_override, s.schedule_override);
  EXPECT_EQ(got->planned_until, at(7200s));
  s.enabled.reset();
  s.schedule_override.reset();
  ASSERT_TRUE(store().put_helper_state(s).is_ok());
  got = store().helper_state("backup");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->enabled, std::nullopt);
  EXPECT_EQ(got->schedule_override, std::nullopt);
  EXPECT_EQ(got->planned_until, at(7200s));
  EXPECT_EQ(store().helper_state("other"), std::nullopt);
}

// ---- list in due order (GET /v1/executions?order=due) --------------------------------------

// Every queued execution in (due, seq) order, read `limit` at a time through the cursor.
std::vector<std::string> list_by_due(Store& store, ExecutionFilter f, std::size_t limit) {
  f.order = ExecutionFilter::Order::kDue;
  f.limit = limit;
  std::vector<std::string> out;
  for (int pages = 0; pages < 1000; ++pages) {
    auto page = store.list(f);
    for (const auto& e : page) out.push_back(e.id);
    if (page.size() < limit) break;
    f.after_due = std::make_pair(page.back().due, page.back().seq);
  }
  return out;
}

TEST_P(StoreConformanceTest, ListInDueOrderPagesQueuedExecutionsByDueThenSubmission) {
  // Several keys, dues interleaved across them, equal dues ordered by submission, a retry
  // (later not_before, same due), and running and finished ones left out.
  auto a = make_spec("a", {.key = "ka", .max_attempts = 2});
  auto b = make_spec("b", {.key = "kb", .lane = "other", .priority = 1});
  auto c = make_spec("c", {.overlap = OverlapPolicy::kAllow});
  plan({make_exec(a, at(0s)), make_exec(a, at(20s)), make_exec(a, at(40s))});
  plan({make_exec(b, at(10s)), make_exec(b, at(20s)), make_exec(b, at(50s))});
  plan({make_exec(c, at(20s), "c-1"), make_exec(c, at(5s), "c-0"), make_exec(c, at(60s), "c-2")});
  // a@0 runs and fails: retried at 30 s, its due (0 s) and place kept. b@10 runs.
  auto first = claim("default", 1, at(0s));
  ASSERT_THAT(ids_of(first.claimed), ElementsAre("a@1767225600"));
  retry(first.claimed[0], at(1s), at(30s));
  auto running = claim("other", 1, at(10s));
  ASSERT_THAT(ids_of(running.claimed), ElementsAre("b@1767225610"));
  const std::vector<std::string> all = {"a@1767225600", "c-0", "a@1767225620",
                                        "b@1767225620", "c-1", "a@1767225640",
                                        "b@1767225650", "c-2"};
  for (std::size_t limit : {1, 2, 3, 100}) {
    EXPECT_EQ(list_by_due(store(), {}, limit), all) << "limit " << limit;
  }
  // The status filter is ignored: only queued ones are listed in due order.
  ExecutionFilter f;
  f.status = ExecStatus::kRunning;
  EXPECT_EQ(list_by_due(store(), f, 3), all);

  // Filters.
  f = {};
  f.name = "a";
  EXPECT_THAT(list_by_due(store(), f, 2),
              ElementsAre("a@1767225600", "a@1767225620", "a@1767225640"));
  f = {};
  f.key = "kb";
  EXPECT_THAT(list_by_due(store(), f, 1), ElementsAre("b@1767225620", "b@1767225650"));
  f = {};
  f.lane = "other";
  f.priority = 1;
  EXPECT_THAT(list_by_due(store(), f, 5), ElementsAre("b@1767225620", "b@1767225650"));
  f = {};
  f.priority = 2;
  EXPECT_TRUE(list_by_due(store(), f, 5).empty());
  // due_after: only those due later (the "planned" ones), from the first of them.
  f = {};
  f.due_after = at(20s);
  EXPECT_THAT(list_by_due(store(), f, 2), ElementsAre("a@1767225640", "b@1767225650", "c-2"));

  // A cursor whose execution started or went away still pages on from its place.
  ExecutionFilter g;
  g.order = ExecutionFilter::Order::kDue;
  g.limit = 2;
  auto page = store().list(g);
  ASSERT_THAT(ids_of(page), ElementsAre("a@1767225600", "c-0"));
  ASSERT_TRUE(store().cancel("c-0", at(2s)).is_ok());
  g.after_due = std::make_pair(page.back().due, page.back().seq);
  EXPECT_THAT(ids_of(store().list(g)), ElementsAre("a@1767225620", "b@1767225620"));
}

TEST_P(StoreConformanceTest, ListInDueOrderPagesManyWithoutSkippingOrRepeating) {
  // 2,000 queued over 50 keys and ten shared due times: pages of 97 give each exactly once,
  // in (due, seq) order.
  std::vector<Execution> batch;
  for (int i = 0; i < 2000; ++i) {
    auto spec = make_spec(fmt::format("h{}", i % 50));
    batch.push_back(
        make_exec(spec, at(std::chrono::seconds((i * 7) % 10)), fmt::format("x{:04}", i)));
  }
  plan(std::move(batch));
  ExecutionFilter f;
  f.order = ExecutionFilter::Order::kDue;
  f.limit = 97;
  std::vector<std::pair<TimePoint, uint64_t>> seen;
  std::set<std::string> ids;
  while (true) {
    auto page = store().list(f);
    for (const auto& e : page) {
      seen.emplace_back(e.due, e.seq);
      ids.insert(e.id);
    }
    if (page.size() < f.limit) break;
    f.after_due = std::make_pair(page.back().due, page.back().seq);
  }
  EXPECT_EQ(seen.size(), 2000u);
  EXPECT_EQ(ids.size(), 2000u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
}

TEST_P(StoreConformanceTest, HelperStateKeepsPriorityAndExpiryOverrides) {
  // PATCH /v1/helpers/NAME: the overrides survive a restart (the reopened SQLite store) and
  // are shared (Redis), each alone and reset alone, without touching the other fields.
  HelperState s;
  s.name = "backup";
  s.priority_override = 1;
  s.expiry_override = 90s;
  s.planned_until = at(60s);
  ASSERT_TRUE(store().put_helper_state(s).is_ok());
  auto got = store().helper_state("backup");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->priority_override, 1);
  EXPECT_EQ(got->expiry_override, 90s);
  EXPECT_EQ(got->enabled, std::nullopt);
  EXPECT_EQ(got->schedule_override, std::nullopt);
  EXPECT_EQ(got->planned_until, at(60s));

  s.priority_override.reset();
  s.expiry_override = 36h;
  ASSERT_TRUE(store().put_helper_state(s).is_ok());
  got = store().helper_state("backup");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->priority_override, std::nullopt);
  EXPECT_EQ(got->expiry_override, 36h);

  // Moving the watermark keeps the overrides.
  ASSERT_TRUE(store().put_watermark("backup", at(120s)).is_ok());
  got = store().helper_state("backup");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->expiry_override, 36h);
  EXPECT_EQ(got->planned_until, at(120s));

  s.expiry_override.reset();
  s.planned_until.reset();
  ASSERT_TRUE(store().put_helper_state(s).is_ok());
  got = store().helper_state("backup");
  EXPECT_TRUE(!got || (!got->priority_override && !got->expiry_override));
}

// ---- recover ------------------------------------------------------------------------------

TEST_P(StoreConformanceTest, RecoverInterruptsRunningAndRequeuesPerRetryPolicy) {
  auto once = make_spec("once", {.max_attempts = 1});
  auto thrice = make_spec("thrice", {.max_attempts = 3});
  plan({make_exec(once, at(0s)), make_exec(thrice, at(0s)), make_exec(thrice, at(5s)),
        make_exec(make_spec("idle"), at(100s))});
  auto c = claim("default", 5, at(1s));
  ASSERT_EQ(c.claimed.size(), 2u);

  auto interrupted = store().recover(at(50s));
  EXPECT_THAT(sorted(ids_of(interrupted)), ElementsAre("once@1767225600", "thrice@1767225600"));
  for (const auto& e : interrupted) EXPECT_EQ(e.status, ExecStatus::kRunning);  // as they were

  auto gone = store().get("once@1767225600");
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->status, ExecStatus::kInterrupted);
  EXPECT_EQ(gone->finished, at(50s));
  auto back = store().get("thrice@1767225600");
  ASSERT_TRUE(back);
  EXPECT_EQ(back->status, ExecStatus::kQueued);
  EXPECT_EQ(back->attempt, 2u);
  EXPECT_EQ(back->not_before, at(50s));
  EXPECT_EQ(store().position("thrice@1767225600"), 1u);  // ahead of the later one of its key
  EXPECT_THAT(store().recover(at(51s)), IsEmpty());

  auto again = claim("default", 5, at(50s));
  ASSERT_THAT(ids_of(again.claimed), ElementsAre("thrice@1767225600"));
  EXPECT_EQ(again.claimed[0].attempt, 2u);
}

// ---- list ---------------------------------------------------------------------------------

// get_many answers each id in order: the execution, or nothing for an id that is not stored.
TEST_P(StoreConformanceTest, GetManyAnswersEachIdInOrder) {
  plan({make_exec(make_spec("a"), at(0s)), make_exec(make_spec("b"), at(0s))});
  auto some = store().get_many({"b@1767225600", "nope", "a@1767225600"});
  ASSERT_EQ(some.size(), 3u);
  ASSERT_TRUE(some[0].has_value());
  EXPECT_EQ(some[0]->id, "b@1767225600");
  EXPECT_FALSE(some[1].has_value());
  ASSERT_TRUE(some[2].has_value());
  EXPECT_EQ(some[2]->id, "a@1767225600");
  EXPECT_EQ(some[2]->status, ExecStatus::kQueued);
  auto none = store().get_many({"nope", "nor-this"});
  ASSERT_EQ(none.size(), 2u);
  EXPECT_FALSE(none[0].has_value());
  EXPECT_FALSE(none[1].has_value());
  EXPECT_TRUE(store().get_many({}).empty());
}

TEST_P(StoreConformanceTest, ListFiltersAndPagesInIdOrder) {
  plan({
      make_exec(make_spec("a", {.key = "k1", .lane = "x"}), at(0s)),
      make_exec(make_spec("a", {.key = "k1", .lane = "x"}), at(1s)),
      make_exec(make_spec("b", {.key = "k2"}), at(0s)),
      make_exec(make_spec("c", {.key = "k2"}), at(0s)),
      make_exec(make_spec("d"), at(0s)),
  });
  ASSERT_EQ(claim_ids("x", 5, at(1s)).size(), 1u);

  ExecutionFilter all;
  EXPECT_THAT(ids_of(store().list(all)), ElementsAre("a@1767225600", "a@1767225601", "b@1767225600",
                                                     "c@1767225600", "d@1767225600"));
  ExecutionFilter page;
  page.limit = 2;
  auto p1 = store().list(page);
  EXPECT_THAT(ids_of(p1), ElementsAre("a@1767225600", "a@1767225601"));
  page.after_id = p1.back().id;
  auto p2 = store().list(page);
  EXPECT_THAT(ids_of(p2), ElementsAre("b@1767225600", "c@1767225600"));
  page.after_id = p2.back().id;
  EXPECT_THAT(ids_of(store().list(page)), ElementsAre("d@1767225600"));
  page.after_id = "d@1767225600";
  EXPECT_THAT(store().list(page), IsEmpty());

  ExecutionFilter by_status;
  by_status.status = ExecStatus::kRunning;
  EXPECT_THAT(ids_of(store().list(by_status)), ElementsAre("a@1767225600"));
  ExecutionFilter by_name;
  by_name.name = "a";
  EXPECT_EQ(store().list(by_name).size(), 2u);
  ExecutionFilter by_key;
  by_key.key = "k2";
  EXPECT_THAT(ids_of(store().list(by_key)), ElementsAre("b@1767225600", "c@1767225600"));
  ExecutionFilter by_lane;
  by_lane.lane = "x";
  by_lane.status = ExecStatus::kQueued;
  EXPECT_THAT(ids_of(store().list(by_lane)), ElementsAre("a@1767225601"));
  // The cursor need not be a stored id.
  ExecutionFilter cursor;
  cursor.after_id = "b";
  cursor.limit = 1;
  EXPECT_THAT(ids_of(store().list(cursor)), ElementsAre("b@1767225600"));
}

// ---- concurrency --------------------------------------------------------------------------

// Four workers claim and complete 2000 executions over 40 keys; every execution runs once
// (plus its retries), and no key ever has two running.
TEST_P(StoreConformanceTest, ConcurrentClaimAndCompleteKeepKeysSerialized) {
  // A reopened store reads its whole file after every call (and serializes the calls around
  // that): fewer executions keep it within the test timeout under the sanitizers.
  const bool reopened = store().describe().starts_with(kReopenedStorePrefix);
  const int kExecutions = reopened ? 200 : 2000;
  const int kKeys = reopened ? 20 : 40;
  std::vector<Execution> batch;
  std::vector<std::shared_ptr<const ExecTemplate>> specs;
  for (int k = 0; k < kKeys; ++k) {
    specs.push_back(make_spec("h" + std::to_string(k), {.max_attempts = 2}));
  }
  for (int i = 0; i < kExecutions; ++i) {
    batch.push_back(
        make_exec(specs[i % kKeys], at(std::chrono::milliseconds(i)), "run-" + std::to_string(i)));
  }
  plan(batch);

  std::mutex mu;
  std::set<std::string> running_keys;
  std::map<std::string, int> finished_count;
  std::atomic<int> finished{0};
  std::atomic<bool> violation{false};
  const TimePoint now = at(10s);
  auto worker = [&](int n) {
    std::string node = "node-" + std::to_string(n);
    while (finished.load() < kExecutions) {
      auto r = store().claim("default", 3, now, node);
      if (!r.is_ok()) {
        violation = true;
        return;
      }
      if (r->claimed.empty()) std::this_thread::yield();
      for (const auto& e : r->claimed) {
        {
          std::lock_guard lock(mu);
          if (!running_keys.insert(e.key()).second) violation = true;
        }
        Completion c;
        c.finished = now;
        c.retry = e.attempt == 1 && e.seq % 7 == 0;
        c.status = c.retry ? ExecStatus::kFailed : ExecStatus::kSucceeded;
        c.retry_at = now;
        {
          std::lock_guard lock(mu);
          running_keys.erase(e.key());  // before complete: the key may be claimed right after
          if (!c.retry) ++finished_count[e.id];
        }
        if (!store().complete(e.id, e.fence, c).is_ok()) violation = true;
        if (!c.retry) ++finished;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int n = 0; n < 4; ++n) threads.emplace_back(worker, n);
  for (auto& t : threads) t.join();
  EXPECT_FALSE(violation.load());
  EXPECT_EQ(finished_count.size(), static_cast<std::size_t>(kExecutions));
  for (const auto& [id, n] : finished_count) EXPECT_EQ(n, 1) << id;
  EXPECT_EQ(store().next_event(now), std::nullopt);
}

// ---- randomized differential test ---------------------------------------------------------

// A brute-force model of the Store contract: vectors scanned on every call.
class ReferenceModel {
 public:
  struct Item {
    Execution e;  // id, spec, due, not_before, seq, attempt, status
    uint64_t model_seq = 0;
  };

  std::size_t plan(const std::vector<Execution>& batch) {
    std::size_t created = 0;
    for (const auto& e : batch) {
      if (find(e.id)) continue;
      add(e);
      ++created;
    }
    return created;
  }

  void add(const Execution& e) {
    items_.push_back(Item{e, ++seq_});
    items_.back().e.status = ExecStatus::kQueued;
  }

  Item* find(std::string_view id) {
    for (auto& i : items_) {
      if (i.e.id == id) return &i;
    }
    return nullptr;
  }

  bool key_running(const std::string& key) const {
    return std::any_of(items_.begin(), items_.end(), [&](const Item& i) {
      return i.e.status == ExecStatus::kRunning && i.e.key() == key;
    });
  }
  Item* running_of(const std::string& key) {
    for (auto& i : items_) {
      if (i.e.status == ExecStatus::kRunning && i.e.key() == key) return &i;
    }
    return nullptr;
  }

  Item* head(const std::string& key) {
    Item* best = nullptr;
    for (auto& i : items_) {
      if (i.e.status != ExecStatus::kQueued || i.e.key() != key) continue;
      if (!best || std::tie(i.e.due, i.model_seq) < std::tie(best->e.due, best->model_seq)) {
        best = &i;
      }
    }
    return best;
  }

  std::set<std::string> queued_keys() const {
    std::set<std::string> keys;
    for (const auto& i : items_) {
      if (i.e.status == ExecStatus::kQueued) keys.insert(i.e.key());
    }
    return keys;
  }

  // The head of a running key that overlap would act on at some time.
  bool watched(const std::string& key, Item* h) {
    Item* r = running_of(key);
    if (!r || !h || h->e.attempt != 1 || r->e.spec->name != h->e.spec->name) return false;
    return h->e.spec->overlap == OverlapPolicy::kSkip ||
           (h->e.spec->overlap == OverlapPolicy::kReplace && !replace_requested_.count(key));
  }

  void overlap(TimePoint now, std::vector<std::string>& skipped,
               std::vector<std::string>& replace) {
    bool changed = true;
    while (changed) {
      changed = false;
      for (const auto& key : queued_keys()) {
        Item* h = head(key);
        if (!watched(key, h) || h->e.not_before > now) continue;
        if (h->e.spec->overlap == OverlapPolicy::kSkip) {
          h->e.status = ExecStatus::kSkipped;
          skipped.push_back(h->e.id);
        } else {
          replace_requested_.insert(key);
          replace.push_back(running_of(key)->e.id);
        }
        changed = true;
      }
    }
  }

  struct Claimed {
    std::vector<std::string> claimed, expired, skipped, replace;
  };

  Claimed claim(const std::string& lane, std::size_t max, TimePoint now) {
    Claimed out;
    for (auto& i : items_) {
      auto exp = i.e.expires();
      if (i.e.status == ExecStatus::kQueued && i.e.attempt == 1 && exp && *exp <= now) {
        i.e.status = ExecStatus::kExpired;
        out.expired.push_back(i.e.id);
      }
    }
    overlap(now, out.skipped, out.replace);
    while (out.claimed.size() < max) {
      Item* best = nullptr;
      for (const auto& key : queued_keys()) {
        if (key_running(key)) continue;
        Item* h = head(key);
        if (h->e.lane() != lane || h->e.not_before > now) continue;
        if (!best || std::make_tuple(h->e.priority(), h->e.due, h->model_seq) <
                         std::make_tuple(best->e.priority(), best->e.due, best->model_seq)) {
          best = h;
        }
      }
      if (!best) break;
      best->e.status = ExecStatus::kRunning;
      out.claimed.push_back(best->e.id);
    }
    overlap(now, out.skipped, out.replace);
    return out;
  }

  void release(Item& i) { replace_requested_.erase(i.e.key()); }

  void complete(Item& i, bool retry, TimePoint retry_at) {
    release(i);
    if (retry) {
      i.e.status = ExecStatus::kQueued;
      i.e.attempt += 1;
      i.e.not_before = retry_at;
    } else {
      i.e.status = ExecStatus::kSucceeded;
    }
  }

  std::optional<TimePoint> next_event(TimePoint now) {
    std::optional<TimePoint> next;
    auto consider = [&](TimePoint t) {
      if (!next || t < *next) next = t;
    };
    // Only instants strictly after `now`: what is due already is the claimer's business.
    for (const auto& key : queued_keys()) {
      Item* h = head(key);
      if (h->e.not_before <= now) continue;
      if (!key_running(key) || watched(key, h)) consider(h->e.not_before);
    }
    for (const auto& i : items_) {
      auto exp = i.e.expires();
      if (i.e.status == ExecStatus::kQueued && i.e.attempt == 1 && exp && *exp > now) {
        consider(*exp);
      }
    }
    return next;
  }

  std::size_t position(Item& i) {
    std::size_t pos = 1;
    for (const auto& o : items_) {
      if (o.e.status == ExecStatus::kQueued && o.e.key() == i.e.key() &&
          std::tie(o.e.due, o.model_seq) < std::tie(i.e.due, i.model_seq)) {
        ++pos;
      }
    }
    return pos;
  }

  std::pair<std::size_t, std::size_t> counts(const std::string& lane, TimePoint now) const {
    std::size_t running = 0, queued = 0;
    for (const auto& i : items_) {
      if (i.e.lane() != lane) continue;
      if (i.e.status == ExecStatus::kRunning) ++running;
      if (i.e.status == ExecStatus::kQueued && i.e.not_before <= now) ++queued;
    }
    return {running, queued};
  }

  std::size_t remove_planned(const std::string& name) {
    auto before = items_.size();
    std::erase_if(items_, [&](const Item& i) {
      return i.e.status == ExecStatus::kQueued && i.e.spec->origin == ExecOrigin::kHelper &&
             i.e.spec->name == name;
    });
    return before - items_.size();
  }

  std::vector<std::string> recover(TimePoint now) {
    std::vector<std::string> out;
    for (auto& i : items_) {
      if (i.e.status != ExecStatus::kRunning) continue;
      out.push_back(i.e.id);
      release(i);
      if (i.e.spec->max_attempts > i.e.attempt) {
        i.e.status = ExecStatus::kQueued;
        i.e.attempt += 1;
        i.e.not_before = now;
      } else {
        i.e.status = ExecStatus::kInterrupted;
      }
    }
    return out;
  }

  std::vector<Item>& items() { return items_; }

 private:
  std::vector<Item> items_;
  std::set<std::string> replace_requested_;
  uint64_t seq_ = 0;
};

TEST_P(StoreConformanceTest, RandomizedOperationsMatchABruteForceModel) {
  // SCHEDD_STORE_SEED=<n> replays another walk (to hunt for or reproduce a failure).
  const char* seed_env = std::getenv("SCHEDD_STORE_SEED");
  const unsigned seed = seed_env != nullptr ? std::strtoul(seed_env, nullptr, 10) : 20260101;
  SCOPED_TRACE("seed " + std::to_string(seed));
  // A reopened store may report a replace again after a reopen (see kReopenedStorePrefix).
  const bool reopened = store().describe().starts_with(kReopenedStorePrefix);
  std::mt19937 rng(seed);
  auto pick = [&rng](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  const std::vector<std::string> lanes = {"a", "b"};
  // Every policy, twice for skip and replace; helpers 0-3 share two keys between them.
  const std::vector<OverlapPolicy> overlaps = {OverlapPolicy::kQueue,   OverlapPolicy::kSkip,
                                               OverlapPolicy::kReplace, OverlapPolicy::kAllow,
                                               OverlapPolicy::kSkip,    OverlapPolicy::kReplace,
                                               OverlapPolicy::kQueue,   OverlapPolicy::kQueue};
  std::vector<std::shared_ptr<const ExecTemplate>> helpers;
  for (int h = 0; h < 8; ++h) {
    SpecOptions o;
    o.key = h < 4 ? "shared-" + std::to_string(h % 2) : "";
    o.lane = lanes[pick(2)];
    o.priority = 1 + pick(5);
    if (pick(2)) o.expiry = std::chrono::seconds(20 + pick(200));
    o.max_attempts = 1 + pick(3);
    o.overlap = overlaps[h];
    helpers.push_back(make_spec("h" + std::to_string(h), o));
  }
  auto ticket = make_spec("proj", {.key = "proj",
                                   .lane = "a",
                                   .priority = 2,
                                   .expiry = std::chrono::seconds(100),
                                   .origin = ExecOrigin::kTicket});

  ReferenceModel model;
  TimePoint now = kT0;
  int tickets = 0;
  std::map<std::string, int> seen;  // how often each interesting outcome happened
  // A reopened store reads the whole file after every change: fewer steps keep it within
  // the test timeout under the sanitizers.
  const int steps = reopened ? 600 : 4000;
  for (int step = 0; step < steps; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    int op = pick(100);
    if (op < 20) {  // plan a few runs of a helper, some already planned
      auto& spec = helpers[pick(static_cast<int>(helpers.size()))];
      std::vector<Execution> batch;
      for (int n = 1 + pick(3); n > 0; --n) {
        TimePoint due = now + std::chrono::seconds(10 * (pick(40) - 8));
        batch.push_back(make_exec(spec, std::chrono::floor<std::chrono::seconds>(due)));
      }
      std::size_t expected = model.plan(batch);
      auto created = store().plan(batch, now);
      ASSERT_TRUE(created.is_ok());
      ASSERT_EQ(*created, expected);
    } else if (op < 27) {  // submit a ticket
      auto e = make_exec(ticket, now + std::chrono::seconds(pick(30)),
                         "ticket-" + std::to_string(++tickets));
      auto r = store().submit(e, now, 1000000);
      ASSERT_TRUE(r.is_ok()) << r.status().to_string();
      model.add(e);
      ASSERT_EQ(r->second, model.position(*model.find(e.id)));
    } else if (op < 55) {  // claim
      std::string lane = lanes[pick(2)];
      std::size_t max = pick(4);
      auto expected = model.claim(lane, max, now);
      auto r = store().claim(lane, max, now, "node-1");
      ASSERT_TRUE(r.is_ok());
      ASSERT_EQ(ids_of(r->claimed), expected.claimed);
      ASSERT_EQ(sorted(ids_of(r->expired)), sorted(expected.expired));
      ASSERT_EQ(sorted(ids_of(r->skipped)), sorted(expected.skipped));
      if (!reopened) {
        ASSERT_EQ(sorted(r->replace), sorted(expected.replace));
      }
      for (const auto& e : r->claimed) model.find(e.id)->e.fence = e.fence;
      seen["claimed"] += static_cast<int>(r->claimed.size());
      seen["expired"] += static_cast<int>(r->expired.size());
      seen["skipped"] += static_cast<int>(r->skipped.size());
      seen["replace"] += static_cast<int>(r->replace.size());
    } else if (op < 75) {  // complete a running one, perhaps with a retry
      std::vector<ReferenceModel::Item*> running;
      for (auto& i : model.items()) {
        if (i.e.status == ExecStatus::kRunning) running.push_back(&i);
      }
      if (running.empty()) continue;
      ReferenceModel::Item& i = *running[pick(static_cast<int>(running.size()))];
      Completion c;
      c.finished = now;
      c.retry = i.e.attempt < i.e.spec->max_attempts && pick(2);
      c.status = c.retry ? ExecStatus::kFailed : ExecStatus::kSucceeded;
      c.retry_at = now + std::chrono::seconds(pick(60));
      if (pick(10) == 0) {
        ASSERT_EQ(store().complete(i.e.id, i.e.fence + 1, c).code(),
                  StatusCode::kFailedPrecondition);
        continue;
      }
      ASSERT_TRUE(store().complete(i.e.id, i.e.fence, c).is_ok());
      model.complete(i, c.retry, c.retry_at);
      seen[c.retry ? "retried" : "succeeded"] += 1;
    } else if (op < 80) {  // cancel
      if (model.items().empty()) continue;
      ReferenceModel::Item& i = model.items()[pick(static_cast<int>(model.items().size()))];
      auto r = store().cancel(i.e.id, now);
      if (i.e.status == ExecStatus::kQueued) {
        ASSERT_TRUE(r.is_ok());
        i.e.status = ExecStatus::kCancelled;
      } else if (i.e.status == ExecStatus::kRunning) {
        ASSERT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
      } else {
        ASSERT_EQ(r.status().code(), StatusCode::kAlreadyExists);
      }
    } else if (op < 88) {  // next_event, position, counts
      ASSERT_EQ(store().next_event(now), model.next_event(now));
      if (!model.items().empty()) {
        ReferenceModel::Item& i = model.items()[pick(static_cast<int>(model.items().size()))];
        auto pos = store().position(i.e.id);
        if (i.e.status == ExecStatus::kQueued) {
          ASSERT_EQ(pos, model.position(i));
        } else {
          ASSERT_EQ(pos, std::nullopt);
        }
      }
      std::map<std::string, std::pair<std::size_t, std::size_t>> counted;
      for (const auto& c : store().counts(now)) counted[c.lane] = {c.running, c.queued};
      for (const auto& lane : lanes) ASSERT_EQ(counted[lane], model.counts(lane, now)) << lane;
    } else if (op < 90) {  // disable a helper
      std::string name = "h" + std::to_string(pick(static_cast<int>(helpers.size())));
      auto removed = store().remove_planned(name, TimePoint::min());
      ASSERT_TRUE(removed.is_ok());
      ASSERT_EQ(*removed, model.remove_planned(name));
    } else if (op < 91) {  // a crash and restart
      auto recovered = sorted(ids_of(store().recover(now)));
      ASSERT_EQ(recovered, sorted(model.recover(now)));
      seen["recovered"] += static_cast<int>(recovered.size());
    } else {  // time passes
      now += std::chrono::seconds(pick(40));
    }
  }
  // The walk must have exercised every path it compares, or it proves little.
  for (const char* outcome :
       {"claimed", "expired", "skipped", "replace", "retried", "succeeded", "recovered"}) {
    EXPECT_GE(seen[outcome], 1) << outcome;
  }
}

}  // namespace
}  // namespace schedd::testing
