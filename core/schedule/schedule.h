// Schedule: when a helper fires. Three kinds, all pure functions of (schedule, instant):
//   cron   a cron expression evaluated on the wall clock of an IANA zone;
//   daily  "HH:MM[:SS]" on every day or on listed weekdays, in a zone (a fixed-time cron);
//   every  an absolute period from an anchor instant (default the Unix epoch), unaffected by
//          time zones and DST.
//
// DST (docs/design.md §8): a fixed-time schedule (seconds, minute and hour each match exactly one
// value, however written: `30`, `30,30` and `30-30` alike; every daily schedule) fires once per
// matching day, in a gap at the first instant after the gap and in an overlap at the first
// occurrence only. An interval schedule (a field matching more than one value) skips local times
// that do not exist and fires at both occurrences of repeated ones, in real-time order. `with_dst`
// overrides either default.
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

// Fire instants are whole seconds. The schedule layer carries them as date::sys_seconds, exact
// for every date up to year 9999; a TimePoint (nanoseconds in 64 bits) ends at kLastTimePoint.
// The last instant a schedule produces: 9999-12-31T23:59:59Z, and for a zoned schedule also
// 9999-12-31T23:59:59 local time. A schedule whose next fire time is later has none.
inline const date::sys_seconds kLastScheduleInstant =
    date::sys_days(date::year(9999) / 12 / 31) + std::chrono::seconds(86399);
// The last whole second a TimePoint represents: 2262-04-11T23:47:16Z.
inline const date::sys_seconds kLastTimePoint =
    std::chrono::floor<std::chrono::seconds>(TimePoint::max());
// The first whole second a TimePoint represents: 1677-09-21T00:12:44Z.
inline const date::sys_seconds kFirstTimePoint =
    std::chrono::ceil<std::chrono::seconds>(TimePoint::min());

class Schedule {
 public:
  enum class Kind { kCron, kDaily, kEvery };

  // `tz` must not be null for cron and daily.
  static StatusOr<Schedule> cron(std::string_view expr, const date::time_zone* tz);
  // `time`: "HH:MM" or "HH:MM:SS"; `days`: weekday names (mon..sun, any case) or ranges
  // ("mon-fri"); empty means every day.
  static StatusOr<Schedule> daily(std::string_view time, const std::vector<std::string>& days,
                                  const date::time_zone* tz);
  // `period` must be a positive whole number of seconds. The anchor is floored to a second.
  static StatusOr<Schedule> every(std::chrono::milliseconds period, TimePoint anchor = TimePoint{});
  static StatusOr<Schedule> every(std::chrono::milliseconds period, date::sys_seconds anchor);

  // Overrides the DST default of a cron or daily schedule (ignored by `every`).
  Schedule& with_dst(DstPolicy policy);
  // Shifts every fire instant by a fixed offset in [0, jitter), whole seconds, derived from
  // `seed` (the helper's name) with a stable hash, so planning stays deterministic.
  Schedule& with_jitter(std::chrono::milliseconds jitter, std::string_view seed);

  // The first fire instant strictly after `t`, exact, or nullopt when there is none up to
  // kLastScheduleInstant (a schedule whose local times all fall in skipped gaps, or whose next
  // date is past year 9999). Successive calls are strictly increasing.
  std::optional<date::sys_seconds> next_after_seconds(date::sys_seconds t) const;
  // The same for a TimePoint (the planner's): nullopt also when the next fire instant is past
  // kLastTimePoint, which a TimePoint cannot hold. Never wraps.
  std::optional<TimePoint> next_after(TimePoint t) const;

  Kind kind() const { return kind_; }
  bool fixed_time() const { return kind_ != Kind::kEvery && cron_.fixed_time; }
  DstPolicy dst() const { return dst_; }
  const date::time_zone* zone() const { return tz_; }
  std::chrono::seconds jitter_offset() const { return jitter_offset_; }

 private:
  Schedule() = default;
  std::optional<date::sys_seconds> next_in_zone(date::sys_seconds t) const;

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
std::string format_rfc3339(date::sys_seconds t, const date::time_zone* tz);

// Parses "2026-03-08T01:30:00Z", "...+05:30", "...-04:00", optional fractional seconds; 'T'
// may be a space. Errors say what is expected. An instant a TimePoint cannot hold (before
// 1677-09-21T00:12:44Z or after 2262-04-11T23:47:16Z) is refused, never wrapped:
// `"9999-12-31T00:00:00Z" cannot be represented: no instant after 2262-04-11T23:47:16Z can`.
StatusOr<TimePoint> parse_rfc3339(std::string_view text);
// The same, floored to whole seconds, for any year 0000-9999 (the calendar and anchors).
StatusOr<date::sys_seconds> parse_rfc3339_seconds(std::string_view text);

}  // namespace schedd
