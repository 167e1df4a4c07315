#include "core/planner/planner.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace schedd {

Planner::Planner(Store& store, std::chrono::milliseconds lookahead)
    : store_(store), lookahead_(lookahead) {}

void Planner::set_helper(PlannedHelper helper) {
  std::lock_guard lock(mu_);
  std::string name = helper.name;
  helpers_[name] = std::move(helper);
}

void Planner::remove_helper(const std::string& name) {
  std::lock_guard lock(mu_);
  helpers_.erase(name);
}

std::optional<PlannedHelper> Planner::helper(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = helpers_.find(name);
  if (it == helpers_.end()) return std::nullopt;
  return it->second;
}

std::vector<PlannedHelper> Planner::helpers() const {
  std::lock_guard lock(mu_);
  std::vector<PlannedHelper> out;
  for (const auto& [name, h] : helpers_) out.push_back(h);
  return out;
}

StatusOr<PlanReport> Planner::plan_all(TimePoint now) {
  std::lock_guard lock(mu_);
  rounds_.fetch_add(1, std::memory_order_relaxed);
  PlanReport total;
  for (const auto& [name, h] : helpers_) {
    if (!h.enabled) continue;
    auto r = plan_locked(h, now);
    if (!r.is_ok()) {
      failures_.fetch_add(1, std::memory_order_relaxed);
      return r.status();
    }
    total.created += r->created;
    total.skipped += r->skipped;
  }
  const TimePoint until = now > TimePoint::max() - lookahead_ ? TimePoint::max() : now + lookahead_;
  planned_until_ns_.store(
      std::chrono::duration_cast<std::chrono::nanoseconds>(until.time_since_epoch()).count(),
      std::memory_order_relaxed);
  return total;
}

Planner::Stats Planner::stats() const {
  Stats s;
  s.rounds = rounds_.load(std::memory_order_relaxed);
  s.failures = failures_.load(std::memory_order_relaxed);
  const int64_t ns = planned_until_ns_.load(std::memory_order_relaxed);
  if (ns != INT64_MIN) {
    s.planned_until =
        TimePoint(std::chrono::duration_cast<TimePoint::duration>(std::chrono::nanoseconds(ns)));
  }
  return s;
}

StatusOr<PlanReport> Planner::plan_helper(const std::string& name, TimePoint now) {
  std::lock_guard lock(mu_);
  auto it = helpers_.find(name);
  if (it == helpers_.end()) return not_found("unknown helper \"" + name + "\"");
  if (!it->second.enabled) return PlanReport{};
  return plan_locked(it->second, now);
}

Status Planner::reset_watermark(const std::string& name) {
  return update_state(name, [](HelperState& s) { s.planned_until.reset(); });
}

Status Planner::update_state(const std::string& name,
                             const std::function<void(HelperState&)>& change) {
  std::lock_guard lock(mu_);
  HelperState state = store_.helper_state(name).value_or(HelperState{name, {}, {}, {}});
  change(state);
  return store_.put_helper_state(state);
}

StatusOr<PlanReport> Planner::plan_locked(const PlannedHelper& h, TimePoint now) {
  HelperState state = store_.helper_state(h.name).value_or(HelperState{h.name, {}, {}, {}});
  // Another daemon (shared store) changed the helper since it was applied here: plan nothing
  // until it is re-applied.
  if (state.enabled != h.seen.enabled || state.schedule_override != h.seen.schedule_override ||
      state.priority_override != h.seen.priority_override ||
      state.expiry_override != h.seen.expiry_override) {
    if (on_stale_) on_stale_(h.name);
    return PlanReport{};
  }
  // Saturates rather than wraps at the end of TimePoint (2262-04-11T23:47:16Z); next_after
  // returns nothing later, so nothing past it is planned.
  const TimePoint until = now > TimePoint::max() - lookahead_ ? TimePoint::max() : now + lookahead_;
  // Plan from the watermark when there is one (after downtime this includes the missed due
  // times), else from now.
  const TimePoint from = state.planned_until.value_or(now);

  // The due instants in the window; those before `now` were missed (downtime).
  std::vector<TimePoint>& dues = dues_;  // reused: one allocation for the round, not per helper
  dues.clear();
  for (auto t = h.schedule->next_after(from); t && *t <= until; t = h.schedule->next_after(*t)) {
    dues.push_back(*t);
  }
  const auto first_ahead = std::lower_bound(dues.begin(), dues.end(), now);
  const std::size_t missed = static_cast<std::size_t>(first_ahead - dues.begin());

  PlanReport report;
  StatusOr<std::size_t> created = std::size_t{0};
  HelperState seen = h.seen;
  seen.name = h.name;
  if (missed == 0) {
    // The usual round: only instants ahead, sent as instants so that the store need not
    // build an Execution (an id string, a template reference) per planned run.
    if (!dues.empty()) created = store_.plan_dues(seen, h.name, h.spec, dues, now);
  } else {
    // Catch-up (docs/design.md §7): missed due times run (and expire by the normal rule if
    // too old), or only the latest runs, or none; what does not run is recorded as skipped.
    std::size_t keep = 0;
    switch (h.catch_up) {
      case CatchUpPolicy::kAll:
        keep = missed;
        break;
      case CatchUpPolicy::kLatest:
        keep = 1;
        break;
      case CatchUpPolicy::kNone:
        keep = 0;
        break;
    }
    const std::size_t skip = missed - keep;
    std::vector<Execution> batch(dues.size());
    for (std::size_t i = 0; i < dues.size(); ++i) {
      Execution& e = batch[i];
      e.id = planned_id(h.name, dues[i]);
      e.spec = h.spec;
      e.due = dues[i];
      e.not_before = dues[i];
      if (i < skip) {
        e.status = ExecStatus::kSkipped;
        e.finished = now;
        e.message = "missed while the daemon was down (catch_up)";
      }
    }
    report.skipped = skip;
    spdlog::info("helper {}: {} missed due times since {}; catch-up runs {}, skips {}", h.name,
                 missed, format_rfc3339(from, date::locate_zone("UTC")), keep, skip);
    created = store_.plan_from(seen, std::move(batch), now);
  }
  if (created.status().code() == StatusCode::kAborted) {
    if (on_stale_) on_stale_(h.name);
    return PlanReport{};
  }
  if (!created.is_ok()) return created.status();
  report.created = *created - std::min(*created, report.skipped);
  if (Status s = store_.put_watermark(h.name, until); !s.is_ok()) return s;
  return report;
}

}  // namespace schedd
