// The Redis store: the conformance suite against a real redis-server, then what only a shared
// store does: leases and fences across daemons, cluster-wide lane capacity, pub/sub, stale
// planners, and Redis going away and coming back.
#include "core/store/redis_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/store/redis_client.h"
#include "tests/store_conformance/store_conformance.h"
#include "tests/testing/manual_clock.h"
#include "tests/testing/redis_server.h"

namespace schedd::testing {
namespace {

using namespace std::chrono_literals;

// One server for the whole binary; every store gets a namespace of its own.
RedisServer& shared_server() {
  static RedisServer server;
  return server;
}

std::string unique_ns() {
  static std::atomic<int> n{0};
  return "t" + std::to_string(getpid()) + "-" + std::to_string(n++);
}

RedisOptions options_for(const RedisServer& server, std::string ns = "") {
  RedisOptions o;
  o.address.port = server.port();
  o.ns = ns.empty() ? unique_ns() : std::move(ns);
  return o;
}

std::unique_ptr<RedisStore> open_ok(RedisOptions o) {
  auto s = RedisStore::open(std::move(o));
  EXPECT_TRUE(s.is_ok()) << s.status().to_string();
  return s.is_ok() ? std::move(s).value() : nullptr;
}

INSTANTIATE_TEST_SUITE_P(Redis, StoreConformanceTest, ::testing::Values(StoreFactory([] {
                           RedisOptions o = options_for(shared_server());
                           o.node_id = "node-1";
                           // Conformance time jumps by hours without renewals: no lapses.
                           o.lease = std::chrono::hours(24 * 365);
                           o.rescan = std::chrono::milliseconds(0);
                           return std::unique_ptr<Store>(open_ok(o));
                         })));

// Two daemons (stores) on one namespace, with leases on a manual clock.
class RedisPairTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ns_ = unique_ns();
    a_ = open_ok(with(ns_, "a"));
    b_ = open_ok(with(ns_, "b"));
    ASSERT_TRUE(a_ && b_);
  }
  // Both daemons reopened with a cluster-wide capacity of 4 on the default lane, 20 ready
  // executions on 20 keys, and a claiming all 4 of them: what it claimed.
  std::vector<Execution> a_holding_cluster_capacity_of_4() {
    capacity_["default"] = 4;
    a_ = open_ok(with(ns_, "a"));
    b_ = open_ok(with(ns_, "b"));
    std::vector<Execution> batch;
    for (int i = 0; i < 20; ++i) {
      batch.push_back(make_exec(make_spec("k" + std::to_string(i)), kT0));
    }
    plan(*a_, batch);
    return claim(*a_, "a");
  }
  RedisOptions with(const std::string& ns, const std::string& node) {
    RedisOptions o = options_for(shared_server(), ns);
    o.node_id = node;
    o.lease = 5s;
    o.clock = &clock_;
    o.lane_capacity = capacity_;
    o.rescan = 0ms;
    return o;
  }
  void plan(RedisStore& s, std::vector<Execution> e) {
    auto r = s.plan(std::move(e), clock_.now());
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  }
  std::vector<Execution> claim(RedisStore& s, const std::string& node, std::size_t max = 10) {
    auto r = s.claim("default", max, clock_.now(), node);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? r->claimed : std::vector<Execution>{};
  }

  ManualClock clock_{kT0};
  std::string ns_;
  std::map<std::string, std::size_t, std::less<>> capacity_;
  std::unique_ptr<RedisStore> a_;
  std::unique_ptr<RedisStore> b_;
};

TEST_F(RedisPairTest, ALapsedLeaseIsReQueuedAsInterruptedAndTheOldFenceIsRefused) {
  auto spec = make_spec("job", {.max_attempts = 2});
  plan(*a_, {make_exec(spec, kT0)});
  auto mine = claim(*a_, "a");
  ASSERT_EQ(mine.size(), 1u);
  clock_.advance(1s);
  EXPECT_TRUE(claim(*b_, "b").empty());  // the key runs on a, its lease holds
  clock_.advance(5s);                    // a never renewed: lapsed at kT0 + 5 s
  auto taken = claim(*b_, "b");
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].id, mine[0].id);
  EXPECT_EQ(taken[0].attempt, 2u);
  EXPECT_EQ(taken[0].node, "b");
  EXPECT_GT(taken[0].fence, mine[0].fence);
  Completion c{.status = ExecStatus::kSucceeded, .finished = clock_.now()};
  Status late = a_->complete(mine[0].id, mine[0].fence, c);
  EXPECT_EQ(late.code(), StatusCode::kFailedPrecondition) << late.to_string();
  ASSERT_TRUE(b_->complete(taken[0].id, taken[0].fence, c).is_ok());
  auto done = a_->get(mine[0].id);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, ExecStatus::kSucceeded);
  EXPECT_EQ(done->node, "b");
}

TEST_F(RedisPairTest, ALapsedLeaseWithoutRetriesEndsInterrupted) {
  plan(*a_, {make_exec(make_spec("job"), kT0)});
  ASSERT_EQ(claim(*a_, "a").size(), 1u);
  clock_.advance(6s);
  EXPECT_TRUE(claim(*b_, "b").empty());
  auto e = b_->get("job@1767225600");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, ExecStatus::kInterrupted);
  EXPECT_NE(e->message.find("lease of node a lapsed"), std::string::npos) << e->message;
}

TEST_F(RedisPairTest, RenewedLeasesHold) {
  plan(*a_, {make_exec(make_spec("job", {.max_attempts = 3}), kT0)});
  ASSERT_EQ(claim(*a_, "a").size(), 1u);
  clock_.advance(4s);
  auto lost = a_->renew_leases();  // now until kT0 + 9 s
  ASSERT_TRUE(lost.is_ok());
  EXPECT_TRUE(lost->empty());
  clock_.advance(4s);
  EXPECT_TRUE(claim(*b_, "b").empty());
  auto e = b_->get("job@1767225600");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, ExecStatus::kRunning);
  EXPECT_EQ(e->node, "a");
}

// A renewal that reaches Redis after this daemon's own completion of a run (they race: the
// renewal lists the runs held when it starts) does not call that run lost; one that finds the
// run re-queued by another daemon does.
TEST_F(RedisPairTest, ARenewalAfterItsOwnCompletionIsNotALostLease) {
  plan(*a_, {make_exec(make_spec("done", {.max_attempts = 3}), kT0),
             make_exec(make_spec("taken", {.max_attempts = 3}), kT0)});
  auto mine = claim(*a_, "a");
  ASSERT_EQ(mine.size(), 2u);
  const Execution& done = mine[0].id == "done@1767225600" ? mine[0] : mine[1];
  // The completion lands first, as if from another thread of the same daemon: `a` still
  // holds the run when it renews.
  Completion c;
  c.status = ExecStatus::kSucceeded;
  c.finished = kT0 + 1s;
  ASSERT_TRUE(b_->complete(done.id, done.fence, c).is_ok());
  clock_.advance(6s);  // `taken`'s lease lapses; b re-queues it as interrupted
  EXPECT_TRUE(claim(*b_, "b", 0).empty());
  auto lost = a_->renew_leases();
  ASSERT_TRUE(lost.is_ok()) << lost.status().to_string();
  EXPECT_EQ(*lost, std::vector<std::string>{"taken@1767225600"});
}

// A completion sent without waiting is in Redis before the same daemon's next call: the claim
// right after it takes the key's next execution. Its result arrives once, later.
TEST_F(RedisPairTest, AnAsyncCompletionIsAheadOfTheNextClaim) {
  auto spec = make_spec("job");
  plan(*a_, {make_exec(spec, kT0), make_exec(spec, kT0 + 1s)});
  clock_.advance(1s);
  auto first = claim(*a_, "a");
  ASSERT_EQ(first.size(), 1u);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Status> results;
  Completion c;
  c.status = ExecStatus::kSucceeded;
  c.finished = clock_.now();
  a_->complete_async(first[0].id, first[0].fence, c, [&](Status s) {
    std::lock_guard lock(mu);
    results.push_back(std::move(s));
    cv.notify_all();
  });
  auto next = claim(*a_, "a");
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].id, "job@1767225601");
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return !results.empty(); }));
  EXPECT_TRUE(results[0].is_ok()) << results[0].to_string();
  EXPECT_EQ(a_->get(first[0].id)->status, ExecStatus::kSucceeded);
  // A stale one (the fence is spent) reports the refusal, as complete() would.
  results.clear();
  a_->complete_async(first[0].id, first[0].fence, c, [&](Status s) {
    std::lock_guard l(mu);
    results.push_back(std::move(s));
    cv.notify_all();
  });
  ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return !results.empty(); }));
  EXPECT_EQ(results[0].code(), StatusCode::kFailedPrecondition) << results[0].to_string();
}

long long evalsha_calls(RedisClient& control) {
  auto r = control.call({"INFO", "commandstats"});
  EXPECT_TRUE(r.is_ok());
  const std::string& text = r->str;
  auto at = text.find("cmdstat_evalsha:calls=");
  if (at == std::string::npos) return 0;
  return std::stoll(text.substr(at + std::string("cmdstat_evalsha:calls=").size()));
}

// Completions queued while the connection waits for Redis go out as one script call, and each
// still gets its own answer: recorded, refused as stale, or not found.
TEST_F(RedisPairTest, CompletionsQueuedTogetherAreOneScriptCallWithAnAnswerEach) {
  std::vector<Execution> plan_these;
  for (int k = 0; k < 12; ++k)
    plan_these.push_back(make_exec(make_spec("job" + std::to_string(k)), kT0));
  plan(*a_, std::move(plan_these));
  auto runs = claim(*a_, "a", 12);
  ASSERT_EQ(runs.size(), 12u);
  RedisConnectOptions co;
  co.address.port = shared_server().port();
  auto control = RedisClient::connect(co);
  ASSERT_TRUE(control.is_ok()) << control.status().to_string();
  // Writes (scripts) from every client wait until UNPAUSE: the first completion's round trip
  // stays out while the others queue behind it.
  ASSERT_TRUE((*control)->call({"CLIENT", "PAUSE", "10000", "WRITE"}).is_ok());
  const long long before = evalsha_calls(**control);
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, Status> results;
  Completion c;
  c.status = ExecStatus::kSucceeded;
  c.finished = clock_.now();
  auto complete = [&](const std::string& id, uint64_t fence, const std::string& label) {
    a_->complete_async(id, fence, c, [&, label](Status s) {
      std::lock_guard lock(mu);
      results.emplace(label, std::move(s));
      cv.notify_all();
    });
  };
  for (const auto& e : runs) complete(e.id, e.fence, e.id);
  complete(runs[3].id, runs[3].fence + 1000, "wrong fence");
  complete("nobody", 1, "unknown");
  ASSERT_TRUE((*control)->call({"CLIENT", "UNPAUSE"}).is_ok());
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return results.size() == 14; }));
  for (const auto& e : runs) {
    EXPECT_TRUE(results.at(e.id).is_ok()) << e.id << ": " << results.at(e.id).to_string();
    EXPECT_EQ(a_->get(e.id)->status, ExecStatus::kSucceeded) << e.id;
  }
  EXPECT_EQ(results.at("wrong fence").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(results.at("unknown").code(), StatusCode::kNotFound);
  // 14 completions: the first alone, the rest together (a lease renewal may slip in between).
  const long long calls = evalsha_calls(**control) - before;
  EXPECT_GE(calls, 1);
  EXPECT_LE(calls, 3) << "completions were not sent together";
}

TEST_F(RedisPairTest, NextEventIncludesAnotherDaemonsLeaseButNotOwn) {
  plan(*a_, {make_exec(make_spec("job"), kT0)});
  ASSERT_EQ(claim(*a_, "a").size(), 1u);
  EXPECT_EQ(a_->next_event(kT0), std::nullopt);
  EXPECT_EQ(b_->next_event(kT0), kT0 + 5s);
}

TEST_F(RedisPairTest, AnIdleDaemonLooksForLapsedLeasesAtLeastEveryRescan) {
  RedisOptions o = with(ns_, "c");
  o.rescan.reset();  // default: the lease
  auto c = open_ok(o);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->next_event(kT0), kT0 + 5s);
  EXPECT_EQ(b_->next_event(kT0), std::nullopt);
}

TEST_F(RedisPairTest, RecoverInterruptsOnlyTheRunsOfItsOwnNode) {
  plan(*a_, {make_exec(make_spec("x"), kT0), make_exec(make_spec("y"), kT0)});
  ASSERT_EQ(claim(*a_, "a", 1).size(), 1u);
  ASSERT_EQ(claim(*b_, "b", 1).size(), 1u);
  auto recovered = a_->recover(kT0 + 1s);
  ASSERT_EQ(recovered.size(), 1u);
  EXPECT_EQ(recovered[0].node, "a");
  auto running = a_->list(ExecutionFilter{.status = ExecStatus::kRunning});
  ASSERT_EQ(running.size(), 1u);
  EXPECT_EQ(running[0].node, "b");
}

TEST_F(RedisPairTest, LaneCapacityIsClusterWide) {
  capacity_["default"] = 2;
  a_ = open_ok(with(ns_, "a"));
  b_ = open_ok(with(ns_, "b"));
  std::vector<Execution> batch;
  for (int i = 0; i < 5; ++i) batch.push_back(make_exec(make_spec("k" + std::to_string(i)), kT0));
  plan(*a_, batch);
  auto on_a = claim(*a_, "a", 5);
  EXPECT_EQ(on_a.size(), 2u);
  EXPECT_TRUE(claim(*b_, "b", 5).empty());
  Completion c{.status = ExecStatus::kSucceeded, .finished = kT0};
  ASSERT_TRUE(a_->complete(on_a[0].id, on_a[0].fence, c).is_ok());
  EXPECT_EQ(claim(*b_, "b", 5).size(), 1u);
}

// Issue #19: with a cluster-wide limit, a daemon that completes a run used to claim the
// capacity it had just freed, so the first daemon to claim did all the work. Now a daemon
// that waits for capacity gets its share: the one running more claims nothing until the
// waiter has caught up.
TEST_F(RedisPairTest, ClusterCapacityIsSharedWithADaemonWaitingForIt) {
  const auto on_a = a_holding_cluster_capacity_of_4();
  ASSERT_EQ(on_a.size(), 4u);
  EXPECT_TRUE(claim(*b_, "b").empty());  // b now waits for capacity
  Completion c{.status = ExecStatus::kSucceeded, .finished = kT0};
  ASSERT_TRUE(a_->complete(on_a[0].id, on_a[0].fence, c).is_ok());
  // a runs 3, over its share of 2 while b waits: the freed place is b's.
  EXPECT_TRUE(claim(*a_, "a").empty());
  auto on_b = claim(*b_, "b");
  EXPECT_EQ(on_b.size(), 1u);
  ASSERT_TRUE(a_->complete(on_a[1].id, on_a[1].fence, c).is_ok());
  // 2 and 1 running, 1 free: a is at its share, b below it.
  EXPECT_TRUE(claim(*a_, "a").empty());
  EXPECT_EQ(claim(*b_, "b").size(), 1u);
  ASSERT_TRUE(a_->complete(on_a[2].id, on_a[2].fence, c).is_ok());
  EXPECT_EQ(claim(*a_, "a").size(), 1u);  // back to its share of 2
  EXPECT_TRUE(claim(*b_, "b").empty());   // the lane is full: 2 and 2
  // A daemon that stops waiting (a claim with no free worker) no longer holds the other one
  // to a share: once b asks for nothing, a may use all that frees.
  EXPECT_TRUE(claim(*b_, "b", 0).empty());
  ASSERT_TRUE(a_->complete(on_a[3].id, on_a[3].fence, c).is_ok());
  ASSERT_TRUE(b_->complete(on_b[0].id, on_b[0].fence, c).is_ok());
  EXPECT_EQ(claim(*a_, "a").size(), 2u);
}

// A daemon below its share whose claim asks for nothing still waits: its dispatcher's
// housekeeping claim asks for nothing while another claim of the daemon's own holds the lane's
// free workers. Before, that claim took the daemon off the waiting list, the other daemon's
// share was no longer capped, and one daemon ran 89 % of 30,000 jobs in the 2-daemon benchmark.
TEST_F(RedisPairTest, AWaitingDaemonBelowItsShareKeepsWaitingThroughAClaimForNothing) {
  const auto on_a = a_holding_cluster_capacity_of_4();
  ASSERT_EQ(on_a.size(), 4u);
  EXPECT_TRUE(claim(*b_, "b").empty());     // b waits
  EXPECT_TRUE(claim(*b_, "b", 0).empty());  // b runs 0, below its share of 2: still waits
  Completion c{.status = ExecStatus::kSucceeded, .finished = kT0};
  ASSERT_TRUE(a_->complete(on_a[0].id, on_a[0].fence, c).is_ok());
  EXPECT_TRUE(claim(*a_, "a").empty());  // a runs 3, over its share while b waits
  EXPECT_EQ(claim(*b_, "b").size(), 1u);
}

// A claim that runs dry answers the next events too, and next_event() at the same instant
// uses that answer instead of a round trip; anything this store sends in between (here a
// plan of an earlier execution) makes it ask Redis again.
TEST_F(RedisPairTest, NextEventAfterAClaimThatRanDrySeesWhatWasPlannedSince) {
  plan(*a_, {make_exec(make_spec("k1"), kT0 + 10s)});
  EXPECT_TRUE(claim(*a_, "a").empty());
  EXPECT_EQ(a_->next_event(kT0), kT0 + 10s);
  EXPECT_TRUE(claim(*a_, "a").empty());
  plan(*a_, {make_exec(make_spec("k2"), kT0 + 5s)});
  EXPECT_EQ(a_->next_event(kT0), kT0 + 5s);
  // A claim at another instant answers nothing for this one.
  auto r = a_->claim("default", 10, kT0 + 1s, "a");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(a_->next_event(kT0), kT0 + 5s);
}

TEST_F(RedisPairTest, APlanFromAStateAnotherDaemonChangedIsAbortedAndStoresNothing) {
  HelperState off{.name = "job", .enabled = false};
  ASSERT_TRUE(a_->put_helper_state(off).is_ok());
  HelperState seen{.name = "job"};  // b applied the config's state: nothing stored
  auto r = b_->plan_from(seen, {make_exec(make_spec("job"), kT0 + 60s)}, kT0);
  EXPECT_EQ(r.status().code(), StatusCode::kAborted) << r.status().to_string();
  EXPECT_EQ(a_->get("job@1767225660"), std::nullopt);
  auto ok = b_->plan_from(off, {make_exec(make_spec("job"), kT0 + 60s)}, kT0);
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ(*ok, 1u);
}

// A plan larger than one script call (RedisStore::kPlanChunk) is stored whole, in due order,
// and planning it again from the other daemon creates nothing.
TEST_F(RedisPairTest, APlanOfSeveralChunksIsStoredWholeAndOnce) {
  const std::size_t n = 2 * RedisStore::kPlanChunk + 7;
  auto spec = make_spec("big");
  std::vector<Execution> all;
  for (std::size_t i = 0; i < n; ++i) {
    all.push_back(make_exec(spec, kT0 + std::chrono::seconds(60 + static_cast<int64_t>(i))));
  }
  auto first = a_->plan(all, kT0);
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  EXPECT_EQ(*first, n);
  auto again = b_->plan(all, kT0);
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_EQ(*again, 0u);
  auto queue = b_->key_queue("big");
  ASSERT_EQ(queue.size(), n);
  EXPECT_EQ(queue.front().id, all.front().id);
  EXPECT_EQ(queue.back().id, all.back().id);
}

TEST_F(RedisPairTest, PutWatermarkLeavesAnotherDaemonsChangeAlone) {
  ASSERT_TRUE(a_->put_helper_state(HelperState{.name = "job", .enabled = false}).is_ok());
  ASSERT_TRUE(b_->put_watermark("job", kT0 + 2h).is_ok());
  auto s = a_->helper_state("job");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->enabled, false);
  EXPECT_EQ(s->planned_until, kT0 + 2h);
}

// Waits (real time, bounded) for pub/sub deliveries; the bound only stops a broken test.
struct EventLog {
  std::mutex mu;
  std::condition_variable cv;
  int wakes = 0;
  std::vector<std::string> helpers;
  StoreEvents events() {
    return StoreEvents{
        .wake =
            [this] {
              std::lock_guard lock(mu);
              ++wakes;
              cv.notify_all();
            },
        .helper_changed =
            [this](const std::string& name) {
              std::lock_guard lock(mu);
              helpers.push_back(name);
              cv.notify_all();
            },
    };
  }
  template <typename Pred>
  bool wait(Pred pred) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 10s, pred);
  }
  // A subscription is asynchronous, and what is published before it is in place is lost:
  // calls `publish` (without the lock) again every 50 ms until `seen` holds, for up to 10 s.
  template <typename Publish, typename Pred>
  bool publish_until(Publish publish, Pred seen) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    std::unique_lock lock(mu);
    while (!seen()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      lock.unlock();
      publish();
      lock.lock();
      cv.wait_for(lock, 50ms, seen);
    }
    return true;
  }
};

TEST_F(RedisPairTest, SubmissionsAndHelperChangesReachTheOtherDaemon) {
  EventLog log;
  b_->subscribe(log.events());
  // The subscription is asynchronous: publish until it is seen.
  int n = 0;
  ASSERT_TRUE(log.publish_until(
      [&] {
        auto r = a_->submit(make_exec(make_spec("t", {.origin = ExecOrigin::kTicket}), kT0,
                                      "t-" + std::to_string(n++)),
                            kT0, 1000);
        EXPECT_TRUE(r.is_ok());
      },
      [&] { return log.wakes > 0; }));
  ASSERT_TRUE(a_->put_helper_state(HelperState{.name = "nightly", .enabled = false}).is_ok());
  ASSERT_TRUE(log.wait([&] { return !log.helpers.empty(); }));
  EXPECT_EQ(log.helpers.front(), "nightly");
  // A watermark alone is not a change to act on.
  ASSERT_TRUE(a_->put_watermark("nightly", kT0 + 2h).is_ok());
  ASSERT_TRUE(a_->put_helper_state(HelperState{.name = "nightly", .enabled = true}).is_ok());
  ASSERT_TRUE(log.wait([&] { return log.helpers.size() >= 2; }));
  std::lock_guard lock(log.mu);
  EXPECT_EQ(log.helpers.size(), 2u);
}

// A daemon waiting for a lane's cluster capacity is sent a wake-up when another daemon's
// completion frees some, instead of finding out on its next rescan.
TEST_F(RedisPairTest, ACompletionThatFreesClusterCapacityWakesTheDaemonWaitingForIt) {
  capacity_["default"] = 2;
  a_ = open_ok(with(ns_, "a"));
  b_ = open_ok(with(ns_, "b"));
  EventLog log;
  b_->subscribe(log.events());
  std::vector<Execution> batch;
  for (int i = 0; i < 4; ++i) batch.push_back(make_exec(make_spec("k" + std::to_string(i)), kT0));
  plan(*a_, batch);
  auto on_a = claim(*a_, "a");
  ASSERT_EQ(on_a.size(), 2u);
  EXPECT_TRUE(claim(*b_, "b").empty());
  // Helper changes as fences: the subscription is asynchronous (publish until one is seen),
  // and b's deliveries come in publication order. Once a second fence is seen, the plan's
  // wake-up has been delivered and nothing else is on its way.
  int n = 0;
  ASSERT_TRUE(log.publish_until(
      [&] {
        EXPECT_TRUE(a_->put_helper_state(
                          HelperState{.name = "fence-" + std::to_string(n++), .enabled = true})
                        .is_ok());
      },
      [&] { return !log.helpers.empty(); }));
  ASSERT_TRUE(a_->put_helper_state(HelperState{.name = "fence-last", .enabled = true}).is_ok());
  ASSERT_TRUE(log.wait([&] { return log.helpers.back() == "fence-last"; }));
  {
    std::lock_guard lock(log.mu);
    log.wakes = 0;
  }
  Completion c{.status = ExecStatus::kSucceeded, .finished = kT0};
  ASSERT_TRUE(a_->complete(on_a[0].id, on_a[0].fence, c).is_ok());
  EXPECT_TRUE(log.wait([&] { return log.wakes > 0; }));
  EXPECT_EQ(claim(*b_, "b").size(), 1u);
}

// Executions queued by a schedd without the `dq` index (GET /v1/executions?order=due) are
// put into it once, when a daemon opens the namespace.
TEST_F(RedisPairTest, ExecutionsQueuedBeforeTheDueIndexAreListedInDueOrderAfterAnOpen) {
  plan(*a_, {make_exec(make_spec("x"), kT0 + 20s), make_exec(make_spec("y"), kT0 + 10s)});
  RedisConnectOptions co;
  co.address.port = shared_server().port();
  auto control = RedisClient::connect(co);
  ASSERT_TRUE(control.is_ok()) << control.status().to_string();
  const std::string p = "schedd:" + ns_ + ":";
  ASSERT_TRUE((*control)->call({"DEL", p + "dq", p + "dqv"}).is_ok());  // as an old schedd left it
  ExecutionFilter f;
  f.order = ExecutionFilter::Order::kDue;
  EXPECT_TRUE(a_->list(f).empty());
  auto c = open_ok(with(ns_, "c"));
  ASSERT_NE(c, nullptr);
  const std::vector<std::string> due_order = {"y@1767225610", "x@1767225620"};
  EXPECT_EQ(ids_of(c->list(f)), due_order);
  EXPECT_EQ(ids_of(a_->list(f)), due_order);
}

// An execution hash with a value that is not an integer where one belongs (a hand edit,
// another program writing the keys) is a decode error naming the execution and the field,
// not a 0 taken silently (or, before, a std::out_of_range from a reply read by index).
TEST(RedisStoreTest, AMalformedExecutionHashIsADecodeErrorNamingTheField) {
  auto str = [](const std::string& v) {
    RedisValue r;
    r.type = RedisValue::Type::kString;
    r.str = v;
    return r;
  };
  RedisValue hash;
  hash.type = RedisValue::Type::kArray;
  for (const char* v : {"id", "x-1", "tpl", "t1", "st", "0", "due", "12abc", "seq", "7"}) {
    hash.elements.push_back(str(v));
  }
  auto spec = make_spec("t");
  auto find = [&](const std::string&) { return spec; };
  auto r = decode_execution(hash, {}, find);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("execution x-1: field due is not an integer: \"12abc\""),
            std::string::npos)
      << r.status().message();
  hash.elements[7] = str("1767225600000000000");
  auto ok = decode_execution(hash, {}, find);
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ(ok->due, kT0);
  EXPECT_EQ(ok->seq, 7u);
}

TEST(RedisStoreTest, OpenRefusesAnAddressWithNothingListeningAndNamesIt) {
  RedisOptions o;
  o.address.port = 1;  // nothing listens on port 1 here
  o.connect_timeout = 500ms;
  auto s = RedisStore::open(o);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(s.status().message().find("redis://127.0.0.1:1/0"), std::string::npos)
      << s.status().message();
}

TEST(RedisStoreTest, AnOutageFailsCallsFastKeepsCompletionsAndRecoversByItself) {
  RedisServer server;
  ManualClock clock(kT0);
  RedisOptions o = options_for(server);
  o.clock = &clock;
  o.node_id = "a";
  o.command_timeout = 1s;
  auto store = open_ok(o);
  ASSERT_TRUE(store);
  auto spec = make_spec("job");
  ASSERT_TRUE(store->plan({make_exec(spec, kT0), make_exec(spec, kT0 + 1s)}, kT0).is_ok());
  auto c = store->claim("default", 1, kT0, "a");
  ASSERT_TRUE(c.is_ok());
  ASSERT_EQ(c->claimed.size(), 1u);

  server.stop();  // graceful: the AOF has everything
  auto refused = store->submit(make_exec(spec, kT0, "adhoc"), kT0, 100);
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable) << refused.status().to_string();
  EXPECT_FALSE(store->health().is_ok());
  // The run finishes during the outage: its completion is kept, not lost.
  Completion done{.status = ExecStatus::kSucceeded, .finished = kT0 + 1s};
  EXPECT_TRUE(store->complete(c->claimed[0].id, c->claimed[0].fence, done).is_ok());

  server.restart();
  // The store reconnects by itself (backoff up to 2 s) and replays the completion.
  bool recovered = false;
  for (int i = 0; i < 200 && !recovered; ++i) {
    std::this_thread::sleep_for(50ms);
    auto e = store->get(c->claimed[0].id);
    recovered = store->health().is_ok() && e && e->status == ExecStatus::kSucceeded;
  }
  ASSERT_TRUE(recovered) << store->health().to_string();
  // The key is free again: the next one of the key is claimable.
  auto next = store->claim("default", 1, kT0 + 1s, "a");
  ASSERT_TRUE(next.is_ok()) << next.status().to_string();
  ASSERT_EQ(next->claimed.size(), 1u);
  EXPECT_EQ(next->claimed[0].id, "job@1767225601");
}

// History written by a schedd from before per-status history (the one `hist` zset) is pruned
// at the longest retention, so an upgrade never drops an execution earlier than any retention
// would.
TEST_F(RedisPairTest, LegacyHistoryIsPrunedAtTheLongestRetention) {
  auto spec = make_spec("job", {.key = "-", .overlap = OverlapPolicy::kAllow});
  plan(*a_, {make_exec(spec, kT0, "job-a"), make_exec(spec, kT0, "job-b")});
  auto claimed = claim(*a_, "a");
  ASSERT_EQ(claimed.size(), 2u);
  Completion ok;
  ok.finished = kT0 + 10s;
  ASSERT_TRUE(a_->complete(claimed[0].id, claimed[0].fence, ok).is_ok());
  Completion failed = ok;
  failed.status = ExecStatus::kFailed;
  ASSERT_TRUE(a_->complete(claimed[1].id, claimed[1].fence, failed).is_ok());
  // Move both into the legacy index, as an older schedd recorded them.
  RedisConnectOptions co;
  co.address.port = shared_server().port();
  auto control = RedisClient::connect(co);
  ASSERT_TRUE(control.is_ok()) << control.status().to_string();
  const std::string p = "schedd:" + ns_ + ":";
  const std::string score = std::to_string(
      std::chrono::duration_cast<std::chrono::microseconds>((kT0 + 10s).time_since_epoch())
          .count());
  for (const char* st : {"2", "3"})
    ASSERT_TRUE((*control)->call({"DEL", p + "hist:" + st}).is_ok());
  ASSERT_TRUE(
      (*control)->call({"ZADD", p + "hist", score, claimed[0].id, score, claimed[1].id}).is_ok());

  // Succeeded kept 1 h, failed a week: an hour on, nothing goes (the legacy entries wait for
  // the week).
  HistoryCutoffs cutoffs(kT0 + 1h);
  cutoffs.set(ExecStatus::kFailed, kT0 + 1h - 7 * 24h);
  EXPECT_EQ(a_->prune_history(cutoffs), 0u);
  EXPECT_TRUE(a_->get(claimed[0].id).has_value());
  EXPECT_TRUE(a_->get(claimed[1].id).has_value());
  // Once every retention has passed, both go, with their legacy index entries.
  EXPECT_EQ(a_->prune_history(HistoryCutoffs(kT0 + 8 * 24h)), 2u);
  EXPECT_FALSE(a_->get(claimed[0].id).has_value());
  auto left = (*control)->call({"ZCARD", p + "hist"});
  ASSERT_TRUE(left.is_ok());
  EXPECT_EQ(left->integer, 0);
}

}  // namespace
}  // namespace schedd::testing
