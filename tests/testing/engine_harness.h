// The engine end to end in-process for tests: real plugins through the real loader, the
// in-memory store, the real dispatcher threads and a ManualClock. Used by engine_test.cc and
// engine_reload_test.cc.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/control/engine.h"
#include "core/control/validate.h"
#include "core/store/memory_store.h"
#include "tests/testing/instants.h"
#include "tests/testing/manual_clock.h"

namespace schedd::testing {

using namespace std::chrono_literals;

// Where the engine tests' clocks start.
inline constexpr const char* kStart = "2026-01-01T00:00:30Z";

struct Event {
  std::string kind;  // claim, start, finish, expired, skipped
  std::string id;
  std::string key;
  int priority = 0;
  uint32_t attempt = 0;
  ExecStatus status = ExecStatus::kQueued;
  std::chrono::steady_clock::time_point real;
};

class Harness {
 public:
  Harness(const std::string& toml, TimePoint start) : clock_(start) {
    std::vector<PluginLoadError> errors;
    namespace fs = std::filesystem;
    EXPECT_TRUE(plugins_.load_dir(SCHEDD_PLUGIN_DIR, PluginErrorPolicy::kFail, errors).is_ok());
    EXPECT_EQ(plugins_.load_file(fs::path(SCHEDD_FIXTURE_DIR) / "fx_good.so"), std::nullopt);
    EXPECT_EQ(plugins_.load_file(fs::path(SCHEDD_FIXTURE_DIR) / "fx_record.so"), std::nullopt);
    std::vector<ConfigError> cerrors;
    auto cfg = parse_config(toml, "engine.toml", cerrors);
    for (const auto& e : cerrors) ADD_FAILURE() << e.to_string();
    config_ = std::move(*cfg);
    validate_helpers(config_, plugins_, cerrors);
    for (const auto& e : cerrors) ADD_FAILURE() << e.to_string();
    engine_ = std::make_unique<Engine>(config_, store_, clock_, plugins_, "test-node");
    DispatchObserver o;
    o.on_claim = [this](const Execution& e) { record("claim", e, e.status); };
    o.on_start = [this](const Execution& e) { record("start", e, e.status); };
    o.on_finish = [this](const Execution& e, const Completion& c) {
      record("finish", e, c.status);
    };
    o.on_expired = [this](const Execution& e) { record("expired", e, ExecStatus::kExpired); };
    o.on_skipped = [this](const Execution& e) { record("skipped", e, ExecStatus::kSkipped); };
    engine_->dispatcher().add_observer(o);
  }
  ~Harness() { engine_->stop(0ms); }

  // Starts and waits for the first planning round, so that the plan starts at the start time.
  void start() {
    ASSERT_TRUE(engine_->start().is_ok());
    idle();
  }
  void idle() { ASSERT_TRUE(engine_->dispatcher().wait_idle(10s)) << "engine did not go idle"; }
  // Like idle(), while runs that wait for a cancel go on (no stop requested of them).
  void quiet() {
    ASSERT_TRUE(engine_->dispatcher().wait_quiet(10s, [](const Execution&) { return true; }))
        << "engine did not go quiet: " << engine_->dispatcher().debug_state();
  }
  void advance(std::chrono::nanoseconds d) {
    clock_.advance(d);
    idle();
  }
  // Waits (real time, up to 10 s) until `done()` holds; returns whether it did.
  template <typename Done>
  static bool wait_for(Done done) {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(1ms);
    }
    return true;
  }
  // Waits (real time, bounded) until `n` executions are running, and then until the engine
  // is quiet, so that a count passing through `n` (runs stopping while others start) is not
  // taken for where it settles.
  void wait_running(std::size_t n) {
    wait_for([&] { return engine_->dispatcher().running() == n; });
    quiet();
    ASSERT_EQ(engine_->dispatcher().running(), n);
  }

  // Waits (real time, bounded) until `n` events of `kind` were observed.
  void wait_events(const std::string& kind, std::size_t n) {
    wait_for([&] { return events(kind).size() >= n; });
    ASSERT_GE(events(kind).size(), n) << kind;
  }
  void wait_starts(std::size_t n) {
    wait_events("start", n);
    ASSERT_EQ(events("start").size(), n);
  }
  // For a helper that runs every minute and never ends by itself: starts the run due at
  // 00:01 and lets the one due at 00:02 come due while it runs.
  void second_run_due_while_first_runs() {
    start();
    clock_.advance(30s);
    wait_running(1);
    clock_.advance(1min);
  }

  std::vector<Event> events(const std::string& kind) {
    std::lock_guard lock(mu_);
    std::vector<Event> out;
    for (const auto& e : events_) {
      if (e.kind == kind) out.push_back(e);
    }
    return out;
  }
  std::vector<std::string> ids(const std::string& kind) {
    std::vector<std::string> out;
    for (const auto& e : events(kind)) out.push_back(e.id);
    return out;
  }
  std::size_t count(ExecStatus s) {
    ExecutionFilter f;
    f.status = s;
    f.limit = 1000000;
    return store_.list(f).size();
  }

  // Reloads the engine with `toml` (validated against the same plugins), as SIGHUP does.
  StatusOr<ReloadReport> reload(const std::string& toml) {
    std::vector<ConfigError> errors;
    auto cfg = parse_config(toml, "engine.toml", errors);
    if (!cfg) return invalid_argument(errors.empty() ? "parse" : errors.front().to_string());
    validate_helpers(*cfg, plugins_, errors);
    if (!errors.empty()) return invalid_argument(errors.front().to_string());
    return engine_->reload(std::make_shared<const Config>(std::move(*cfg)), nullptr);
  }

  Engine& engine() { return *engine_; }
  MemoryStore& store() { return store_; }
  ManualClock& clock() { return clock_; }

 private:
  void record(const char* kind, const Execution& e, ExecStatus s) {
    std::lock_guard lock(mu_);
    events_.push_back(
        {kind, e.id, e.key(), e.priority(), e.attempt, s, std::chrono::steady_clock::now()});
  }

  ManualClock clock_;
  PluginHost plugins_;
  Config config_;
  MemoryStore store_;
  std::unique_ptr<Engine> engine_;
  std::mutex mu_;
  std::vector<Event> events_;
};

}  // namespace schedd::testing
