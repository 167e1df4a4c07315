// Schedule: when a helper fires. Three kinds, all pure functions of (schedule, instant):
//   cron   a cron expression evaluated on the wall clock of an IANA zone;
//   daily  "HH:MM[:SS]" on every day or on listed weekdays, in a zone (a fixed-time cron);
//   every  an absolute period from an anchor instant (default the Unix epoch), unaffected by
//          time zones and DST.
//
// DST (docs/design.md §8): a fixed-time schedule (seconds, minute and hour each one plain value;
// every daily schedule) fires once per matching day, in a gap at the first instant after the
// gap and in an overlap at the first occurrence only. An interval schedule (any `*`, `/`,
// range or list in those fields) skips local times that do not exist and fires at both
// occurrences of repeated ones, in real-time order. `with_dst` overrides either default.
//
// Assumption, true of every zone in the tz database since 1900: a clock never falls back by
// more than 3 hours at once.
//
// Thread-safety: immutable after construction; next_after may be called concurrently.
#pragma once

#include <date/tz.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/clock.h"
#include "core/common/status.h"
#include "core/schedule/cron.h"
#include "core/schedule/dst_policy.h"

namespace schedd {

class Schedule {
 public:
  enum class Kind { kCron, kDaily, kEvery };

  // `tz` must not be null for cron and daily.
  static StatusOr<Schedule> cron(std::string_view expr, const date::time_zone* tz);
  // `time`: "HH:MM" or "HH:MM:SS"; `days`: weekday names (mon..sun, any case) or ranges
  // ("mon-fri"); empty means every day.
  static StatusOr<Schedule> daily(std::string_view time, const std::vector<std::string>& days,
                                  const date::time_zone* tz);
  // `period` must be a positive whole number of seconds.
  static StatusOr<Schedule> every(std::chrono::milliseconds period, TimePoint anchor = TimePoint{});

  // Overrides the DST default of a cron or daily schedule (ignored by `every`).
  Schedule& with_dst(DstPolicy policy);
  // Shifts every fire instant by a fixed offset in [0, jitter), whole seconds, derived from
  // `seed` (the helper's name) with a stable hash, so planning stays deterministic.
  Schedule& with_jitter(std::chrono::milliseconds jitter, std::string_view seed);

  // The first fire instant strictly after `t`, or nullopt when there is none (only a
  // schedule whose local times all fall in skipped gaps).
  std::optional<TimePoint> next_after(TimePoint t) const;

  Kind kind() const { return kind_; }
  bool fixed_time() const { return kind_ != Kind::kEvery && cron_.fixed_time; }
  DstPolicy dst() const { return dst_; }
  const date::time_zone* zone() const { return tz_; }
  std::chrono::seconds jitter_offset() const { return jitter_offset_; }

 private:
  Schedule() = default;
  std::optional<TimePoint> next_in_zone(TimePoint t) const;

  Kind kind_ = Kind::kCron;
  CronExpr cron_;
  const date::time_zone* tz_ = nullptr;
  DstPolicy dst_;
  std::chrono::seconds period_{0};
  date::sys_seconds anchor_{};
  std::chrono::seconds jitter_offset_{0};
};

// Looks up an IANA zone name; errors name it: `unknown time zone "Mars/Olympus"`.
StatusOr<const date::time_zone*> find_zone(std::string_view name);

// The machine's zone (/etc/localtime), or UTC when it cannot be determined.
const date::time_zone* local_zone();

// RFC 3339 with the zone's offset at `t`, whole seconds: "2026-03-08T03:00:00-04:00", and
// "+00:00" for UTC.
std::string format_rfc3339(TimePoint t, const date::time_zone* tz);

// Parses "2026-03-08T01:30:00Z", "...+05:30", "...-04:00", optional fractional seconds; 'T'
// may be a space. Errors say what is expected.
StatusOr<TimePoint> parse_rfc3339(std::string_view text);

}  // namespace schedd
