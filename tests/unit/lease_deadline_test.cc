// A run never outlives its lease (docs/redis.md "The lease contract"), checked at the
// dispatcher with a lease that is never renewed (MemoryStore::set_unrenewed_lease: what a
// daemon cut off from Redis sees), real plugins, and a manual clock for the daemon's side:
//   - a run whose lease is not renewed is asked to stop before the lease's hard end and is
//     recorded as interrupted;
//   - an in-process run that ignores the stop is still going at the hard end: the daemon
//     ends itself (here the on_lease_breach hook stands in for the process exit);
//   - out of process, the runner ends the run at the hard end by itself, on its own clock,
//     while the daemon's clock does not move at all (a paused daemon).
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>

#include "core/dispatch/dispatcher.h"
#include "core/runner/plugin_loader.h"
#include "core/store/memory_store.h"
#include "tests/testing/manual_clock.h"

namespace schedd {
namespace {

using namespace std::chrono_literals;
using testing::ManualClock;
namespace fs = std::filesystem;

std::shared_ptr<ExecTemplate> spec(const std::string& executor, ParamList params) {
  auto t = std::make_shared<ExecTemplate>();
  t->name = "leased";
  t->executor = executor;
  t->key = "k";
  t->max_attempts = 1;
  t->params = std::move(params);
  return t;
}

struct Finished {
  std::mutex mu;
  std::optional<Completion> completion;
  bool done() {
    std::lock_guard l(mu);
    return completion.has_value();
  }
};

// Runs one execution of `executor` under a 2 s lease that is never renewed (margin 400 ms:
// the stop request comes at claim + 800 ms, the hard end at claim + 1.6 s).
class LeaseHarness {
 public:
  LeaseHarness(const PluginHost& plugins, const std::string& executor, ParamList params,
               std::function<void(const std::string&)> on_breach = nullptr)
      : clock_(*parse_rfc3339("2026-12-06T12:00:00Z")), planner_(store_, 2h) {
    store_.set_unrenewed_lease(2s);
    DispatcherOptions o;
    o.lanes = {{"default", 1}};
    o.lease_margin = 400ms;
    o.kill_grace = 5s;
    o.log_transitions = false;
    o.on_lease_breach = std::move(on_breach);
    dispatcher_ = std::make_unique<Dispatcher>(
        store_, planner_, clock_, [&plugins](std::string_view n) { return plugins.find(n); }, o);
    dispatcher_->add_observer({.on_finish = [this](const Execution&, const Completion& c) {
      std::lock_guard l(finished_.mu);
      finished_.completion = c;
    }});
    Execution e;
    e.id = "leased@1";
    e.spec = spec(executor, std::move(params));
    e.due = e.not_before = clock_.now();
    EXPECT_TRUE(store_.plan({e}, clock_.now()).is_ok());
    dispatcher_->start();
  }
  ~LeaseHarness() { dispatcher_->stop(0ms); }

  bool wait_running() {
    auto until = std::chrono::steady_clock::now() + 10s;
    while (dispatcher_->running() == 0 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(1ms);
    }
    return dispatcher_->running() == 1;
  }
  bool wait_finished(std::chrono::seconds limit) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (!finished_.done() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(1ms);
    }
    return finished_.done();
  }
  ManualClock& clock() { return clock_; }
  Dispatcher& dispatcher() { return *dispatcher_; }
  Completion completion() {
    std::lock_guard l(finished_.mu);
    return *finished_.completion;
  }

 private:
  MemoryStore store_;
  ManualClock clock_;
  Planner planner_;
  Finished finished_;
  std::unique_ptr<Dispatcher> dispatcher_;
};

PluginHost& in_process() {
  static PluginHost* host = [] {
    auto* h = new PluginHost();
    std::vector<PluginLoadError> errors;
    EXPECT_TRUE(h->load_dir(SCHEDD_PLUGIN_DIR, PluginErrorPolicy::kFail, errors).is_ok());
    EXPECT_EQ(h->load_file(fs::path(SCHEDD_FIXTURE_DIR) / "fx_ignores_stop.so"), std::nullopt);
    return h;
  }();
  return *host;
}

TEST(LeaseDeadlineTest, ARunWhoseLeaseIsNotRenewedIsAskedToStopAndRecordedInterrupted) {
  LeaseHarness h(in_process(), "sleep", {{"duration", ParamValue::duration(1h)}});
  ASSERT_TRUE(h.wait_running());
  h.clock().advance(700ms);  // before the stop request: still running
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(h.dispatcher().running(), 1u);
  h.clock().advance(200ms);  // claim + 900 ms: past hard end - 2 x margin
  ASSERT_TRUE(h.wait_finished(10s)) << h.dispatcher().debug_state();
  EXPECT_EQ(h.completion().status, ExecStatus::kInterrupted);
}

TEST(LeaseDeadlineTest, AnInProcessRunStillGoingAtTheHardEndEndsTheDaemon) {
  std::atomic<int> breaches{0};
  std::string breached;
  std::mutex mu;
  LeaseHarness h(in_process(), "fx_stubborn", {{"busy", ParamValue::duration(1500ms)}},
                 [&](const std::string& id) {
                   std::lock_guard l(mu);
                   breached = id;
                   ++breaches;
                 });
  ASSERT_TRUE(h.wait_running());
  h.clock().advance(900ms);  // the stop request, which fx_stubborn ignores
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(breaches.load(), 0) << "before the hard end";
  h.clock().advance(800ms);  // claim + 1.7 s: past the hard end (claim + 1.6 s)
  auto until = std::chrono::steady_clock::now() + 10s;
  while (breaches.load() == 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(1ms);
  }
  {
    std::lock_guard l(mu);
    EXPECT_GE(breaches.load(), 1);
    EXPECT_EQ(breached, "leased@1");
  }
  // The daemon would have ended here. The test instead lets the run return before the
  // dispatcher goes away, so that no thread outlives what it uses.
  ASSERT_TRUE(h.wait_finished(10s));
}

TEST(LeaseDeadlineTest, OutOfProcessTheRunnerEndsTheRunAtTheHardEndOnItsOwn) {
  // The daemon's (manual) clock never moves, as if the daemon were paused: only the
  // runner's own watchdog can end the run, at the hard end in real time (claim + 1.6 s).
  const fs::path dir = fs::temp_directory_path() / ("schedd-lease-" + std::to_string(getpid()));
  fs::create_directories(dir);
  fs::copy_file(fs::path(SCHEDD_FIXTURE_DIR) / "fx_spin.so", dir / "fx_spin.so",
                fs::copy_options::overwrite_existing);
  PluginHost host;
  runner::LoadOptions lo;
  lo.dir = dir;
  lo.runner_binary = SCHEDD_RUNNER_BINARY;
  lo.node = "lease-test";
  std::vector<PluginLoadError> errors;
  ASSERT_TRUE(runner::load_plugins(host, lo, errors).is_ok());
  const auto t0 = std::chrono::steady_clock::now();
  {
    LeaseHarness h(host, "fx_spin", {});
    ASSERT_TRUE(h.wait_running());
    ASSERT_TRUE(h.wait_finished(10s)) << h.dispatcher().debug_state();
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(took, 1400ms);
    EXPECT_LT(took, 6s);
    EXPECT_NE(h.completion().message.find("hard deadline"), std::string::npos)
        << h.completion().message;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace schedd
