// Engine::update_helper: a helper's schedule, priority and expiry overrides (HelperState),
// and the template they give its executions.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/common/duration.h"
#include "core/control/engine.h"
#include "core/schedule/schedule.h"

namespace schedd {

std::shared_ptr<const ExecTemplate> Engine::helper_template(
    const HelperConfig& h, const std::optional<HelperState>& state) const {
  std::shared_ptr<const ExecTemplate> base = make_template(h);
  if (!state || (!state->priority_override && !state->expiry_override)) return base;
  auto t = std::make_shared<ExecTemplate>(*base);
  if (state->priority_override) t->priority = *state->priority_override;
  if (state->expiry_override) t->expiry = *state->expiry_override;
  return t;
}

StatusOr<std::size_t> Engine::update_helper(const std::string& helper, const HelperUpdate& update) {
  std::lock_guard lock(mu_);
  const HelperConfig* h = config().find_helper(helper);
  if (h == nullptr) return not_found("unknown helper \"" + helper + "\"");
  // Checked as the config file checks [helpers.NAME] (Loader::read_int, duration_value).
  if (update.schedule && *update.schedule) {
    if (Status s = check_schedule(helper, **update.schedule); !s.is_ok()) return s;
  }
  if (update.priority && *update.priority && (**update.priority < 1 || **update.priority > 5)) {
    return invalid_argument(fmt::format("priority: {} is out of range 1-5", **update.priority));
  }
  if (update.expiry && *update.expiry && (*update.expiry)->count() <= 0) {
    return invalid_argument(fmt::format("expiry: must be greater than 0 (got \"{}\")",
                                        format_duration(**update.expiry)));
  }

  const std::optional<HelperState> before = store_.helper_state(helper);
  const bool schedule_changed =
      update.schedule && *update.schedule != (before ? before->schedule_override : std::nullopt);
  if (Status s = planner_->update_state(helper,
                                        [&](HelperState& st) {
                                          if (update.schedule)
                                            st.schedule_override = *update.schedule;
                                          if (update.priority)
                                            st.priority_override = *update.priority;
                                          if (update.expiry) st.expiry_override = *update.expiry;
                                          st.planned_until.reset();
                                        });
      !s.is_ok()) {
    return s;
  }
  // A new schedule replaces every planned execution; a new priority or expiry only those not
  // yet due, which are planned again below with the same ids and the new template.
  const TimePoint now = clock_.now();
  auto removed = store_.remove_planned(helper, schedule_changed ? TimePoint::min() : now);
  if (!removed.is_ok()) return removed.status();
  if (Status s = apply_state(*h); !s.is_ok()) return s;
  auto report = planner_->plan_helper(helper, now);
  if (!report.is_ok()) return report.status();
  dispatcher_->poke();
  const std::optional<HelperState> after = store_.helper_state(helper);
  spdlog::info(
      "helper {} updated (schedule {}, priority {}, expiry {}): {} queued removed, {} "
      "planned",
      helper, after && after->schedule_override ? *after->schedule_override : "as configured",
      after && after->priority_override ? std::to_string(*after->priority_override)
                                        : "as configured",
      after && after->expiry_override ? format_duration(*after->expiry_override) : "as configured",
      *removed, report->created);
  return report->created;
}

}  // namespace schedd
