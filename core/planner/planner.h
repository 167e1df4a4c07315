// Planner: keeps every enabled helper's executions planned up to now + lookahead
// (docs/design.md §5), with deterministic ids "helper@due-epoch-seconds", so planning is
// idempotent across re-plans, restarts and several planners. It records a watermark per
// helper (HelperState::planned_until) so that after downtime the missed due times are planned
// too and the catch-up policy (§7) decides what runs.
//
// Thread-safety: all public calls are serialized by an internal mutex; the store is
// thread-safe on its own.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/common/clock.h"
#include "core/common/status.h"
#include "core/schedule/schedule.h"
#include "core/store/execution.h"
#include "core/store/store.h"

namespace schedd {

enum class CatchUpPolicy { kAll, kLatest, kNone };

// A helper as the planner sees it.
struct PlannedHelper {
  std::string name;
  std::shared_ptr<const ExecTemplate> spec;
  std::shared_ptr<const Schedule> schedule;
  bool enabled = true;
  CatchUpPolicy catch_up = CatchUpPolicy::kAll;
  // The stored runtime state this was built from (enabled and schedule_override; the
  // watermark is ignored). A planning round that finds another state in the store, because
  // another daemon changed it, plans nothing for the helper and reports it stale.
  HelperState seen{};
};

struct PlanReport {
  std::size_t created = 0;  // new queued executions
  std::size_t skipped = 0;  // missed due times recorded as skipped by catch-up
};

class Planner {
 public:
  // Default: 2 h lookahead.
  Planner(Store& store, std::chrono::milliseconds lookahead);

  // Replaces the helper set (config load, enable/disable/update).
  void set_helper(PlannedHelper helper);
  // Forgets helper `name` (removed from the config by a reload). Its stored state stays.
  void remove_helper(const std::string& name);
  std::optional<PlannedHelper> helper(const std::string& name) const;
  std::vector<PlannedHelper> helpers() const;

  // Plans every enabled helper up to now + lookahead.
  StatusOr<PlanReport> plan_all(TimePoint now);
  // Plans one helper (enable, update, run of the planner for a single helper).
  StatusOr<PlanReport> plan_helper(const std::string& name, TimePoint now);
  // Forgets the watermark of `name`, so the next plan starts from `now` (update, disable).
  Status reset_watermark(const std::string& name);
  // Reads `name`'s HelperState from the store, applies `change`, and writes it back, under
  // the planner's lock: a planning round (which writes the watermark into the same state)
  // never interleaves with it, so neither update is lost.
  Status update_state(const std::string& name, const std::function<void(HelperState&)>& change);

  std::chrono::milliseconds lookahead() const { return lookahead_; }

  // What plan_all did, for /metrics (docs/monitoring.md): rounds run and failed, and the end
  // of the window the last complete round planned every enabled helper up to (unset before
  // one completed). Read without the planner's lock, so a long round never delays it.
  struct Stats {
    uint64_t rounds = 0;
    uint64_t failures = 0;
    std::optional<TimePoint> planned_until;
  };
  Stats stats() const;

  // Called from inside a planning call, under the planner's lock, with the name of a
  // helper whose stored state differs from the one it was built from; the owner re-applies
  // it. Must not call back into the planner on this thread. Set before planning starts.
  void set_on_stale(std::function<void(const std::string&)> fn) { on_stale_ = std::move(fn); }

 private:
  StatusOr<PlanReport> plan_locked(const PlannedHelper& h, TimePoint now);

  Store& store_;
  const std::chrono::milliseconds lookahead_;
  mutable std::mutex mu_;
  std::map<std::string, PlannedHelper> helpers_;
  std::vector<TimePoint> dues_;  // plan_locked's due instants, reused between helpers
  std::function<void(const std::string&)> on_stale_;
  std::atomic<uint64_t> rounds_{0};
  std::atomic<uint64_t> failures_{0};
  std::atomic<int64_t> planned_until_ns_{INT64_MIN};  // INT64_MIN: no round completed yet
};

}  // namespace schedd
