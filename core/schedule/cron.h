// Cron expressions: parsing and matching of local calendar times. Time zones and DST are
// handled by Schedule (schedule.h); a CronExpr only answers "does this local date/time match"
// and "what is the next matching local time", by field arithmetic.
//
// Grammar (docs/schedules.md): 5 fields (minute hour day-of-month month day-of-week) or 6
// with a leading seconds field; `*`, values, ranges `a-b`, steps `*/n`, `a-b/n`, `a/n`, lists;
// names JAN-DEC and SUN-SAT (any case, also in ranges); day-of-week 0 and 7 are Sunday;
// macros @yearly @annually @monthly @weekly @daily @midnight @hourly. Extensions:
// day-of-month `L`, `LW`, `nW`; day-of-week `nL` / `FRIL`, `n#k`.
//
// Thread-safety: a parsed CronExpr is an immutable value.
#pragma once

#include <date/date.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/common/status.h"

namespace schedd {

struct CronExpr {
  std::string text;                  // as written
  uint64_t seconds = 0;              // bit s for second s (0-59)
  uint64_t minutes = 0;              // bit m (0-59)
  uint32_t hours = 0;                // bit h (0-23)
  uint32_t months = 0;               // bit m (1-12)
  uint32_t dom = 0;                  // bit d (1-31): plain days of month
  uint32_t dom_nearest_weekday = 0;  // bit d: `dW`
  bool dom_last = false;             // `L`
  bool dom_last_weekday = false;     // `LW`
  uint8_t dow = 0;                   // bit w (0=Sunday .. 6)
  uint8_t dow_last = 0;              // bit w: `wL`, the last such weekday of the month
  std::array<uint8_t, 7> dow_nth{};  // per weekday, bit k (1-5): `w#k`
  bool dom_restricted = false;       // day-of-month is not exactly "*"
  bool dow_restricted = false;       // day-of-week is not exactly "*"
  // Seconds, minute and hour each match exactly one value, however written: `30`, `30,30`
  // and `30-30` alike (docs/design.md §8 "fixed-time").
  bool fixed_time = false;

  // Whether the calendar day matches the day-of-month, month and day-of-week fields (either
  // day field when both are restricted).
  bool day_matches(date::year_month_day ymd) const;

  // The smallest matching local time >= `from`, or nullopt when none exists within 400
  // years (which, for an expression that can fire at all, cannot happen: the Gregorian
  // calendar repeats every 400 years).
  std::optional<date::local_seconds> next_at_or_after(date::local_seconds from) const;

  // Whether any calendar day in a full 400-year cycle matches.
  bool can_fire() const;
};

// The longest cron expression parsed, in bytes: a list of every minute of every field is
// about 600.
inline constexpr std::size_t kMaxCronBytes = 1024;

// Parses `text` (at most kMaxCronBytes). Errors name the field, the value and the 1-based column:
// `minute: 60 is out of range 0-59 (column 1)`. An expression that parses but can never fire
// (`0 0 30 2 *`) is returned; callers that must refuse it (config validation) check
// can_fire() and report kNeverFires.
StatusOr<CronExpr> parse_cron(std::string_view text);

inline constexpr const char* kNeverFires =
    "never fires: no date matches the day-of-month, month and day-of-week fields";

}  // namespace schedd
