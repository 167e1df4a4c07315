#include "core/config/config.h"

namespace schedd {

StatusOr<Schedule> build_schedule(const ScheduleConfig& config, const std::string& default_tz,
                                  std::string_view seed) {
  std::optional<Schedule> schedule;
  if (config.every) {
    date::sys_seconds anchor{};
    if (config.anchor) {
      auto t = parse_rfc3339_seconds(*config.anchor);
      if (!t.is_ok()) return invalid_argument("anchor: " + t.status().message());
      anchor = *t;
    }
    auto s = Schedule::every(*config.every, anchor);
    if (!s.is_ok()) return s.status();
    schedule = std::move(s).value();
  } else {
    const date::time_zone* tz = local_zone();
    const std::string& zone_name = config.tz ? *config.tz : default_tz;
    if (!zone_name.empty()) {
      auto z = find_zone(zone_name);
      if (!z.is_ok()) return z.status();
      tz = *z;
    }
    auto s = config.cron ? Schedule::cron(*config.cron, tz)
             : config.time
                 ? Schedule::daily(*config.time, config.days, tz)
                 : StatusOr<Schedule>(invalid_argument("a schedule needs cron, time or every"));
    if (!s.is_ok()) return s.status();
    schedule = std::move(s).value();
    if (config.dst) {
      DstPolicy policy = schedule->dst();
      if (config.dst_gap_set) policy.gap = config.dst->gap;
      if (config.dst_overlap_set) policy.overlap = config.dst->overlap;
      schedule->with_dst(policy);
    }
  }
  if (config.jitter.count() > 0) schedule->with_jitter(config.jitter, seed);
  return std::move(*schedule);
}

}  // namespace schedd
