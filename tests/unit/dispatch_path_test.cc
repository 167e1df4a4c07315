// The dispatcher's claim path (issue #19): a freed key's next run is claimed at once, in its
// own lane or another, also when the completion that freed it came while another thread's
// claim for that lane was out; lanes of longer runs claim only for free workers, in key
// order. These pin down what any faster dispatch path must keep (PERFORMANCE.md, "Issue #19:
// dispatch path": the reverted change failed the in-flight case). On a manual clock, with
// in-process test executors (no plugins) and the in-memory store.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "core/dispatch/dispatcher.h"
#include "core/store/memory_store.h"
#include "tests/testing/manual_clock.h"

// Its own namespace: in a unity build of schedd_tests this file shares a translation unit
// with others whose anonymous namespaces have helpers of the same names (spec, ...).
namespace schedd::dispatch_path_test {
namespace {

using namespace std::chrono_literals;
using testing::ManualClock;

// Blocks each run until released, then ends it with `status`.
class GateExecutor final : public Executor {
 public:
  explicit GateExecutor(RunStatus status) : status_(status) {}
  Isolation isolation() const override { return Isolation::kInProcess; }
  RunOutcome run(const RunRequest&, StopSource&) const override {
    std::unique_lock l(mu_);
    ++entered_;
    cv_.notify_all();
    cv_.wait(l, [&] { return open_; });
    RunOutcome o;
    o.status = status_;
    return o;
  }
  void open() {
    std::lock_guard l(mu_);
    open_ = true;
    cv_.notify_all();
  }
  bool wait_entered(int n) {
    std::unique_lock l(mu_);
    return cv_.wait_for(l, 10s, [&] { return entered_ >= n; });
  }

 private:
  RunStatus status_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable int entered_ = 0;
  bool open_ = false;
};

// Ends each run at once and reports `duration` as its length; records, per key, the order
// the runs started in, the most runs at once, and the most the lane held claimed.
class RecordingExecutor final : public Executor {
 public:
  explicit RecordingExecutor(std::chrono::nanoseconds duration) : duration_(duration) {}
  Isolation isolation() const override { return Isolation::kInProcess; }
  RunOutcome run(const RunRequest& req, StopSource&) const override {
    {
      std::lock_guard l(mu_);
      ++now_running_;
      max_running_ = std::max(max_running_, now_running_);
      if (!running_keys_.insert(req.key).second) overlapped_ = true;
      order_[req.key].push_back(req.execution_id);
    }
    if (dispatcher_ != nullptr) {
      for (const auto& lane : dispatcher_->lanes()) {
        std::lock_guard l(mu_);
        max_busy_ = std::max(max_busy_, lane.busy);
      }
    }
    {
      std::lock_guard l(mu_);
      --now_running_;
      running_keys_.erase(req.key);
    }
    RunOutcome o;
    o.status = RunStatus::kSucceeded;
    o.duration = duration_;
    return o;
  }
  void watch(const Dispatcher* d) { dispatcher_ = d; }  // before the dispatcher starts
  std::map<std::string, std::vector<std::string>> order() const {
    std::lock_guard l(mu_);
    return order_;
  }
  int max_running() const {
    std::lock_guard l(mu_);
    return max_running_;
  }
  std::size_t max_busy() const {
    std::lock_guard l(mu_);
    return max_busy_;
  }
  bool overlapped() const {
    std::lock_guard l(mu_);
    return overlapped_;
  }

 private:
  std::chrono::nanoseconds duration_;
  const Dispatcher* dispatcher_ = nullptr;
  mutable std::mutex mu_;
  mutable int now_running_ = 0;
  mutable int max_running_ = 0;
  mutable std::size_t max_busy_ = 0;
  mutable bool overlapped_ = false;
  mutable std::set<std::string> running_keys_;
  mutable std::map<std::string, std::vector<std::string>> order_;
};

// Ends each run at once; its runs may share a batch (as an out-of-process plugin's do), and
// it records the size of each batch.
class BatchingExecutor final : public Executor {
 public:
  Isolation isolation() const override { return Isolation::kInProcess; }
  RunOutcome run(const RunRequest&, StopSource&) const override {
    RunOutcome o;
    o.status = RunStatus::kSucceeded;
    return o;
  }
  void run_batch(std::span<BatchItem> items, const BatchDone& done) const override {
    {
      std::lock_guard l(mu_);
      batches_.push_back(items.size());
    }
    for (std::size_t i = 0; i < items.size(); ++i) done(i, run(*items[i].request, *items[i].stop));
  }
  const void* batch_key() const override { return this; }
  std::vector<std::size_t> batches() const {
    std::lock_guard l(mu_);
    return batches_;
  }

 private:
  mutable std::mutex mu_;
  mutable std::vector<std::size_t> batches_;
};

const TimePoint kT0 = *parse_rfc3339("2026-12-07T12:00:00Z");

std::shared_ptr<ExecTemplate> spec(const std::string& executor, const std::string& key,
                                   const std::string& lane = "default") {
  auto t = std::make_shared<ExecTemplate>();
  t->name = key;
  t->executor = executor;
  t->key = key;
  t->lane = lane;
  return t;
}

Execution exec(const std::string& id, std::shared_ptr<ExecTemplate> t, TimePoint due) {
  Execution e;
  e.id = id;
  e.spec = std::move(t);
  e.due = e.not_before = due;
  return e;
}

class DispatchPathTest : public ::testing::Test {
 protected:
  DispatchPathTest() : clock_(kT0), planner_(store_, 2h) {}
  ~DispatchPathTest() override {
    if (dispatcher_) dispatcher_->stop(0ms);
  }
  // `watcher`, if given, watches the dispatcher from before its start.
  void start(std::vector<LaneSpec> lanes, std::map<std::string, const Executor*> executors,
             RecordingExecutor* watcher = nullptr, std::optional<DispatchObserver> observer = {}) {
    executors_ = std::move(executors);
    DispatcherOptions o;
    o.lanes = std::move(lanes);
    o.log_transitions = false;
    o.expand_every = 24h;
    dispatcher_ = std::make_unique<Dispatcher>(
        store_, planner_, clock_,
        [this](std::string_view n) -> const Executor* {
          auto it = executors_.find(std::string(n));
          return it == executors_.end() ? nullptr : it->second;
        },
        o);
    if (watcher != nullptr) watcher->watch(dispatcher_.get());
    if (observer) dispatcher_->add_observer(std::move(*observer));
    dispatcher_->start();
  }
  void plan(std::vector<Execution> es) { ASSERT_TRUE(store_.plan(std::move(es), kT0).is_ok()); }
  ExecStatus status(const std::string& id) { return store_.get(id)->status; }
  // Quiet while the gate's runs wait: the loop sleeps and nothing else is claimable.
  bool wait_quiet() {
    return dispatcher_->wait_quiet(10s, [](const Execution&) { return true; });
  }

  MemoryStore store_;
  ManualClock clock_;
  Planner planner_;
  std::map<std::string, const Executor*> executors_;
  std::unique_ptr<Dispatcher> dispatcher_;
};

TEST_F(DispatchPathTest, AFreedKeysNextRunInAnotherLaneIsClaimedWithoutTheClockMoving) {
  GateExecutor gate(RunStatus::kSucceeded);
  RecordingExecutor quick(0ns);
  // One key over two lanes: y@1 waits in lane b for x@1 of lane a to free the key.
  plan({exec("x@1", spec("gate", "k", "a"), kT0), exec("y@1", spec("quick", "k", "b"), kT0)});
  start({{"default", 1}, {"a", 1}, {"b", 1}}, {{"gate", &gate}, {"quick", &quick}});
  ASSERT_TRUE(gate.wait_entered(1));
  ASSERT_TRUE(wait_quiet()) << dispatcher_->debug_state();
  EXPECT_EQ(status("y@1"), ExecStatus::kQueued);
  gate.open();
  ASSERT_TRUE(dispatcher_->wait_idle(10s)) << dispatcher_->debug_state();
  EXPECT_EQ(status("x@1"), ExecStatus::kSucceeded);
  EXPECT_EQ(status("y@1"), ExecStatus::kSucceeded);
}

// A worker that frees a key finds the lane of the key's next run full: the loop's claim for
// that lane is out, holding its free worker, and reached the store before the completion, so
// it comes back short. The next run must still start now, not at the loop's next wake-up (a
// day away here). On this tree the completion pokes the loop, which claims again; the
// reverted dispatch-path change missed it (EngineSimulationTest found it) until a claim that
// came back short while completions were recorded claimed again.
TEST_F(DispatchPathTest, AClaimInFlightThatMissedACompletionClaimsAgain) {
  GateExecutor gate(RunStatus::kSucceeded);
  RecordingExecutor quick(0ns);
  auto expiring = spec("quick", "ke", "b");
  expiring->expiry = 10s;
  // x@1 holds key k in lane x; y@1 waits for k in lane b; e@1 of lane b expires unstarted
  // at T0 + 40 s. Lanes are claimed in name order: b's claim is the loop's first, the one
  // that reports what expired.
  plan({exec("x@1", spec("gate", "k", "x"), kT0), exec("y@1", spec("quick", "k", "b"), kT0),
        exec("e@1", expiring, kT0 + 30s)});
  std::atomic<bool> hooked{false};
  DispatchObserver o;
  // In the loop's claim for lane b at T0 + 1 min, after the store answered (e@1 expired,
  // nothing claimed) and before the claim gives back its reserved worker: x@1 ends, and its
  // worker gets as far as finding lane b full.
  o.on_expired = [&](const Execution& e) {
    if (e.id != "e@1") return;
    hooked = true;
    gate.open();
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < until) {
      const std::string s = dispatcher_->debug_state();
      if (s.find("completing=0 refilling=0") != std::string::npos &&
          s.find("lane x busy=0 ") != std::string::npos &&
          status("x@1") == ExecStatus::kSucceeded) {
        return;
      }
      std::this_thread::yield();
    }
    ADD_FAILURE() << "x@1's worker did not finish: " << dispatcher_->debug_state();
  };
  start({{"b", 1}, {"x", 1}}, {{"gate", &gate}, {"quick", &quick}}, nullptr, o);
  ASSERT_TRUE(gate.wait_entered(1));
  ASSERT_TRUE(wait_quiet()) << dispatcher_->debug_state();
  ASSERT_EQ(status("y@1"), ExecStatus::kQueued);
  clock_.advance(1min);
  ASSERT_TRUE(dispatcher_->wait_idle(10s)) << dispatcher_->debug_state();
  ASSERT_TRUE(hooked);
  EXPECT_EQ(status("x@1"), ExecStatus::kSucceeded);
  EXPECT_EQ(status("e@1"), ExecStatus::kExpired);
  EXPECT_EQ(status("y@1"), ExecStatus::kSucceeded) << dispatcher_->debug_state();
}

// 10 keys x 40 ready runs through 2 workers.
std::vector<Execution> ready_runs(const std::string& executor) {
  std::vector<Execution> es;
  for (int i = 0; i < 40; ++i) {
    for (int k = 0; k < 10; ++k) {
      es.push_back(exec("r" + std::to_string(k) + "-" + std::to_string(100 + i),
                        spec(executor, "k" + std::to_string(k)), kT0 - 1s + i * 1ms));
    }
  }
  return es;
}

void expect_key_order(const RecordingExecutor& x) {
  const auto order = x.order();
  ASSERT_EQ(order.size(), 10u);
  for (const auto& [key, ids] : order) {
    EXPECT_EQ(ids.size(), 40u) << key;
    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end())) << key;  // ids sort by due here
  }
  EXPECT_FALSE(x.overlapped());
  EXPECT_LE(x.max_running(), 2);  // the lane's size
}

// A claim of several runs wakes one idle worker, not all of them: here that worker takes the
// four runs as one batch, and the three other idle workers sleep on (before, each woke, took
// the dispatcher's lock and found the queue empty).
TEST_F(DispatchPathTest, AClaimTakenAsOneBatchWakesOneWorker) {
  BatchingExecutor batching;
  start({{"default", 4}}, {{"batching", &batching}});
  ASSERT_TRUE(dispatcher_->wait_idle(10s)) << dispatcher_->debug_state();
  const uint64_t before = dispatcher_->idle_wakeups();
  plan({exec("a@1", spec("batching", "a"), kT0), exec("b@1", spec("batching", "b"), kT0),
        exec("c@1", spec("batching", "c"), kT0), exec("d@1", spec("batching", "d"), kT0)});
  dispatcher_->poke();
  ASSERT_TRUE(dispatcher_->wait_idle(10s)) << dispatcher_->debug_state();
  for (const char* id : {"a@1", "b@1", "c@1", "d@1"}) {
    EXPECT_EQ(status(id), ExecStatus::kSucceeded) << id;
  }
  EXPECT_EQ(batching.batches(), std::vector<std::size_t>{4});
  // At most one: a condition variable may wake a thread spuriously.
  EXPECT_LE(dispatcher_->idle_wakeups() - before, 1u);
}

// Runs that do not batch still start on as many workers at once as there are runs: the one
// woken worker takes one and wakes the next while runs are left.
TEST_F(DispatchPathTest, AClaimOfRunsThatDoNotBatchStartsThemAllAtOnce) {
  GateExecutor gate(RunStatus::kSucceeded);
  start({{"default", 4}}, {{"gate", &gate}});
  ASSERT_TRUE(dispatcher_->wait_idle(10s)) << dispatcher_->debug_state();
  plan({exec("a@1", spec("gate", "a"), kT0), exec("b@1", spec("gate", "b"), kT0),
        exec("c@1", spec("gate", "c"), kT0), exec("d@1", spec("gate", "d"), kT0)});
  dispatcher_->poke();
  // Each run waits for the gate: all four are in at once only if four workers took them.
  EXPECT_TRUE(gate.wait_entered(4)) << dispatcher_->debug_state();
  gate.open();
  ASSERT_TRUE(dispatcher_->wait_idle(10s)) << dispatcher_->debug_state();
  for (const char* id : {"a@1", "b@1", "c@1", "d@1"}) {
    EXPECT_EQ(status(id), ExecStatus::kSucceeded) << id;
  }
}

TEST_F(DispatchPathTest, LongerRunsAreClaimedOnlyForFreeWorkers) {
  RecordingExecutor slow(5ms);  // reported, not slept
  plan(ready_runs("slow"));
  start({{"default", 2}}, {{"slow", &slow}}, &slow);
  ASSERT_TRUE(dispatcher_->wait_idle(20s)) << dispatcher_->debug_state();
  expect_key_order(slow);
  EXPECT_LE(slow.max_busy(), 2u);
}

}  // namespace
}  // namespace schedd::dispatch_path_test
