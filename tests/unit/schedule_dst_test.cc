// DST and calendar-edge vectors for Schedule (docs/design.md §8, docs/schedules.md). Every expected
// instant was derived by hand from the zone's rules (listed above each block) and cross-checked
// against Python's zoneinfo reading the same tzdata, never taken from this code's own output.
// Vectors stay within 1990-2037: the date library reads only the explicit transitions of
// Debian's TZif files, which end in 2037.
//
// Fixed-time schedules (`30 2 * * *`, `@daily`, `time = ...`) fire once per matching day: at
// the first instant after a gap, and at the first occurrence in an overlap. Interval
// schedules (`*/30 * * * *`, `@hourly`) skip nonexistent local times and fire at both
// occurrences of repeated ones. `dst = { gap, overlap }` overrides either default.
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "core/schedule/schedule.h"
#include "tests/testing/instants.h"

namespace schedd {
namespace {

using Gap = DstPolicy::Gap;
using Overlap = DstPolicy::Overlap;

using testing::at;

// `spec` is a cron expression, or "daily HH:MM[:SS] [day,day-day]" for a daily schedule.
Schedule make_schedule(const std::string& spec, const date::time_zone* tz) {
  const std::string prefix = "daily ";
  if (spec.rfind(prefix, 0) == 0) {
    std::string rest = spec.substr(prefix.size());
    std::string time = rest.substr(0, rest.find(' '));
    std::vector<std::string> days;
    if (std::size_t sp = rest.find(' '); sp != std::string::npos) {
      std::string list = rest.substr(sp + 1);
      for (std::size_t pos = 0; pos <= list.size();) {
        std::size_t comma = std::min(list.find(',', pos), list.size());
        days.push_back(list.substr(pos, comma - pos));
        pos = comma + 1;
      }
    }
    auto s = Schedule::daily(time, days, tz);
    EXPECT_TRUE(s.is_ok()) << spec << ": " << s.status().to_string();
    return std::move(s).value();
  }
  auto s = Schedule::cron(spec, tz);
  EXPECT_TRUE(s.is_ok()) << spec << ": " << s.status().to_string();
  return std::move(s).value();
}

std::vector<std::string> next_n(const Schedule& s, const std::string& from, std::size_t n,
                                const date::time_zone* tz) {
  std::vector<std::string> out;
  TimePoint t = at(from);
  for (std::size_t i = 0; i < n; ++i) {
    auto next = s.next_after(t);
    if (!next) break;
    out.push_back(format_rfc3339(*next, tz));
    t = *next;
  }
  return out;
}

struct Vector {
  const char* name;
  const char* spec;  // cron expression or "daily HH:MM"
  const char* tz;
  std::optional<DstPolicy> policy;  // nullopt: the default for the schedule's kind
  const char* from;                 // exclusive
  std::vector<std::string> expected;
};

std::string vector_name(const ::testing::TestParamInfo<Vector>& info) { return info.param.name; }

// Failure output names the vector instead of dumping its bytes.
void PrintTo(const Vector& v, std::ostream* os) {
  *os << v.name << " (" << v.spec << " in " << v.tz << " from " << v.from << ")";
}

class ScheduleDstVectorTest : public ::testing::TestWithParam<Vector> {};

TEST_P(ScheduleDstVectorTest, NextInstants) {
  const Vector& v = GetParam();
  const date::time_zone* tz = date::locate_zone(v.tz);
  Schedule s = make_schedule(v.spec, tz);
  if (v.policy) s.with_dst(*v.policy);
  EXPECT_EQ(next_n(s, v.from, v.expected.size(), tz), v.expected)
      << v.spec << " in " << v.tz << " from " << v.from;
}

constexpr DstPolicy kShiftFirst{Gap::kShift, Overlap::kFirst};  // fixed-time default
constexpr DstPolicy kSkipBoth{Gap::kSkip, Overlap::kBoth};      // interval default
constexpr DstPolicy kSkipFirst{Gap::kSkip, Overlap::kFirst};
constexpr DstPolicy kSkipLast{Gap::kSkip, Overlap::kLast};
constexpr DstPolicy kShiftLast{Gap::kShift, Overlap::kLast};
constexpr DstPolicy kShiftBoth{Gap::kShift, Overlap::kBoth};

// America/New_York: EST -05:00 / EDT -04:00.
//   2025-03-09 02:00 EST -> 03:00 EDT (07:00Z); 2025-11-02 02:00 EDT -> 01:00 EST (06:00Z).
//   2030-03-10 02:00 -> 03:00 (07:00Z);          2030-11-03 02:00 -> 01:00 (06:00Z).
INSTANTIATE_TEST_SUITE_P(
    NewYork, ScheduleDstVectorTest,
    ::testing::Values(Vector{"fixed_gap_shifts",
                             "30 2 * * *",
                             "America/New_York",
                             std::nullopt,
                             "2025-03-08T00:00:00-05:00",
                             {"2025-03-08T02:30:00-05:00", "2025-03-09T03:00:00-04:00",
                              "2025-03-10T02:30:00-04:00"}},
                      Vector{"fixed_gap_skip",
                             "30 2 * * *",
                             "America/New_York",
                             DstPolicy{Gap::kSkip, Overlap::kFirst},
                             "2025-03-08T00:00:00-05:00",
                             {"2025-03-08T02:30:00-05:00", "2025-03-10T02:30:00-04:00"}},
                      Vector{"daily_gap_shifts",
                             "daily 02:15",
                             "America/New_York",
                             std::nullopt,
                             "2025-03-08T12:00:00-05:00",
                             {"2025-03-09T03:00:00-04:00", "2025-03-10T02:15:00-04:00"}},
                      Vector{"daily_sundays_gap_shifts",
                             "daily 02:00:30 sun",
                             "America/New_York",
                             std::nullopt,
                             "2030-03-01T00:00:00-05:00",
                             {"2030-03-03T02:00:30-05:00", "2030-03-10T03:00:00-04:00",
                              "2030-03-17T02:00:30-04:00"}},
                      Vector{"fixed_overlap_first",
                             "30 1 * * *",
                             "America/New_York",
                             std::nullopt,
                             "2025-11-01T12:00:00-04:00",
                             {"2025-11-02T01:30:00-04:00", "2025-11-03T01:30:00-05:00"}},
                      // Issue #18: a degenerate list is one value, so fixed-time; it fired
                      // at both 01:30s of the fall-back, unlike "30 1 * * *".
                      Vector{"degenerate_list_overlap_first",
                             "30,30 1 * * *",
                             "America/New_York",
                             std::nullopt,
                             "2025-11-01T12:00:00-04:00",
                             {"2025-11-02T01:30:00-04:00", "2025-11-03T01:30:00-05:00"}},
                      Vector{"degenerate_range_list_overlap_first",
                             "0 30-30,30 1-1 * * *",
                             "America/New_York",
                             std::nullopt,
                             "2025-11-01T12:00:00-04:00",
                             {"2025-11-02T01:30:00-04:00", "2025-11-03T01:30:00-05:00"}},
                      Vector{"degenerate_list_gap_shifts",
                             "30,30 2-2 * * *",
                             "America/New_York",
                             std::nullopt,
                             "2025-03-08T00:00:00-05:00",
                             {"2025-03-08T02:30:00-05:00", "2025-03-09T03:00:00-04:00",
                              "2025-03-10T02:30:00-04:00"}},
                      Vector{"fixed_overlap_last",
                             "0 1 * * *",
                             "America/New_York",
                             kShiftLast,
                             "2030-11-02T12:00:00-04:00",
                             {"2030-11-03T01:00:00-05:00", "2030-11-04T01:00:00-05:00"}},
                      Vector{"fixed_overlap_both",
                             "daily 01:59",
                             "America/New_York",
                             kShiftBoth,
                             "2030-11-02T12:00:00-04:00",
                             {"2030-11-03T01:59:00-04:00", "2030-11-03T01:59:00-05:00",
                              "2030-11-04T01:59:00-05:00"}},
                      // 02:00 exists once (EST) on the fall-back day: no repeat for a fixed 02:00.
                      Vector{"fixed_just_after_overlap",
                             "0 2 * * *",
                             "America/New_York",
                             std::nullopt,
                             "2025-11-01T12:00:00-04:00",
                             {"2025-11-02T02:00:00-05:00", "2025-11-03T02:00:00-05:00"}},
                      Vector{"interval_gap_skips",
                             "*/30 * * * *",
                             "America/New_York",
                             std::nullopt,
                             "2025-03-09T01:00:00-05:00",
                             {"2025-03-09T01:30:00-05:00", "2025-03-09T03:00:00-04:00",
                              "2025-03-09T03:30:00-04:00"}},
                      Vector{"hourly_gap_skips",
                             "@hourly",
                             "America/New_York",
                             std::nullopt,
                             "2025-03-09T00:30:00-05:00",
                             {"2025-03-09T01:00:00-05:00", "2025-03-09T03:00:00-04:00",
                              "2025-03-09T04:00:00-04:00"}},
                      Vector{"hourly_overlap_both",
                             "@hourly",
                             "America/New_York",
                             std::nullopt,
                             "2025-11-02T00:00:00-04:00",
                             {"2025-11-02T01:00:00-04:00", "2025-11-02T01:00:00-05:00",
                              "2025-11-02T02:00:00-05:00"}},
                      Vector{"interval_overlap_both",
                             "*/30 * * * *",
                             "America/New_York",
                             std::nullopt,
                             "2030-11-03T00:45:00-04:00",
                             {"2030-11-03T01:00:00-04:00", "2030-11-03T01:30:00-04:00",
                              "2030-11-03T01:00:00-05:00", "2030-11-03T01:30:00-05:00",
                              "2030-11-03T02:00:00-05:00"}},
                      // Every nonexistent 02:xx maps to 03:00 EDT, and fires there once.
                      Vector{"interval_gap_shift_once",
                             "*/20 2 * * *",
                             "America/New_York",
                             kShiftBoth,
                             "2025-03-09T00:00:00-05:00",
                             {"2025-03-09T03:00:00-04:00", "2025-03-10T02:00:00-04:00"}}),
    vector_name);

// Europe/Berlin: CET +01:00 / CEST +02:00, changes at 01:00Z.
//   2026-03-29 (last Sunday of March) 02:00 CET -> 03:00 CEST;
//   2026-10-25 (last Sunday of October) 03:00 CEST -> 02:00 CET.
INSTANTIATE_TEST_SUITE_P(
    Berlin, ScheduleDstVectorTest,
    ::testing::Values(
        Vector{"fixed_gap_shifts",
               "30 2 * * *",
               "Europe/Berlin",
               std::nullopt,
               "2026-03-28T00:00:00+01:00",
               {"2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00",
                "2026-03-30T02:30:00+02:00"}},
        Vector{"fixed_gap_skip",
               "30 2 * * *",
               "Europe/Berlin",
               DstPolicy{Gap::kSkip, Overlap::kFirst},
               "2026-03-28T00:00:00+01:00",
               {"2026-03-28T02:30:00+01:00", "2026-03-30T02:30:00+02:00"}},
        Vector{"daily_gap_shifts",
               "daily 02:00",
               "Europe/Berlin",
               std::nullopt,
               "2026-03-28T12:00:00+01:00",
               {"2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"}},
        Vector{"daily_gap_skip",
               "daily 02:59:59",
               "Europe/Berlin",
               DstPolicy{Gap::kSkip, Overlap::kFirst},
               "2026-03-28T12:00:00+01:00",
               {"2026-03-30T02:59:59+02:00"}},
        Vector{"fixed_overlap_first",
               "30 2 * * *",
               "Europe/Berlin",
               std::nullopt,
               "2026-10-24T12:00:00+02:00",
               {"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
        Vector{"fixed_overlap_last",
               "30 2 * * *",
               "Europe/Berlin",
               kShiftLast,
               "2026-10-24T12:00:00+02:00",
               {"2026-10-25T02:30:00+01:00", "2026-10-26T02:30:00+01:00"}},
        Vector{"fixed_overlap_both",
               "30 2 * * *",
               "Europe/Berlin",
               kShiftBoth,
               "2026-10-24T12:00:00+02:00",
               {"2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00",
                "2026-10-26T02:30:00+01:00"}},
        // Starting between the two 02:30s: the first is past, so "first" fires the next day.
        Vector{"fixed_overlap_first_from_inside",
               "30 2 * * *",
               "Europe/Berlin",
               std::nullopt,
               "2026-10-25T02:45:00+02:00",
               {"2026-10-26T02:30:00+01:00"}},
        Vector{"fixed_overlap_both_from_inside",
               "30 2 * * *",
               "Europe/Berlin",
               kShiftBoth,
               "2026-10-25T02:45:00+02:00",
               {"2026-10-25T02:30:00+01:00", "2026-10-26T02:30:00+01:00"}},
        Vector{"interval_gap_skips",
               "*/30 * * * *",
               "Europe/Berlin",
               std::nullopt,
               "2026-03-29T01:00:00+01:00",
               {"2026-03-29T01:30:00+01:00", "2026-03-29T03:00:00+02:00",
                "2026-03-29T03:30:00+02:00"}},
        Vector{"interval_gap_shift_once",
               "*/15 2 * * *",
               "Europe/Berlin",
               DstPolicy{Gap::kShift, Overlap::kBoth},
               "2026-03-29T00:00:00+01:00",
               {"2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"}},
        Vector{
            "interval_overlap_both",
            "*/30 * * * *",
            "Europe/Berlin",
            std::nullopt,
            "2026-10-25T01:45:00+02:00",
            {"2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-25T02:00:00+01:00",
             "2026-10-25T02:30:00+01:00", "2026-10-25T03:00:00+01:00"}},
        Vector{"hourly_overlap_both",
               "@hourly",
               "Europe/Berlin",
               kSkipBoth,
               "2026-10-25T01:30:00+02:00",
               {"2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00",
                "2026-10-25T03:00:00+01:00"}},
        Vector{"interval_overlap_first",
               "*/30 * * * *",
               "Europe/Berlin",
               kSkipFirst,
               "2026-10-25T01:45:00+02:00",
               {"2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00",
                "2026-10-25T03:00:00+01:00"}},
        Vector{"interval_overlap_last",
               "*/30 * * * *",
               "Europe/Berlin",
               kSkipLast,
               "2026-10-25T01:45:00+02:00",
               {"2026-10-25T02:00:00+01:00", "2026-10-25T02:30:00+01:00",
                "2026-10-25T03:00:00+01:00"}},
        Vector{
            "six_field_overlap_both",
            "*/20 59 2 * * *",
            "Europe/Berlin",
            std::nullopt,
            "2026-10-25T02:59:30+02:00",
            {"2026-10-25T02:59:40+02:00", "2026-10-25T02:59:00+01:00", "2026-10-25T02:59:20+01:00",
             "2026-10-25T02:59:40+01:00", "2026-10-26T02:59:00+01:00"}},
        Vector{"fixed_gap_2031",
               "0 2 30 3 *",
               "Europe/Berlin",
               std::nullopt,
               "2031-01-01T00:00:00+01:00",
               {"2031-03-30T03:00:00+02:00", "2032-03-30T02:00:00+02:00"}}),
    vector_name);

// Australia/Lord_Howe: +10:30 standard / +11:00 summer, 30-minute shifts.
//   2025-04-06 02:00 (+11:00) -> 01:30 (+10:30): 01:30-01:59 repeats;
//   2025-10-05 02:00 (+10:30) -> 02:30 (+11:00): 02:00-02:29 does not exist.
INSTANTIATE_TEST_SUITE_P(
    LordHowe, ScheduleDstVectorTest,
    ::testing::Values(Vector{"fixed_gap_shifts",
                             "15 2 * * *",
                             "Australia/Lord_Howe",
                             std::nullopt,
                             "2025-10-04T00:00:00+10:30",
                             {"2025-10-04T02:15:00+10:30", "2025-10-05T02:30:00+11:00",
                              "2025-10-06T02:15:00+11:00"}},
                      Vector{"fixed_gap_skip",
                             "15 2 * * *",
                             "Australia/Lord_Howe",
                             kSkipFirst,
                             "2025-10-04T00:00:00+10:30",
                             {"2025-10-04T02:15:00+10:30", "2025-10-06T02:15:00+11:00"}},
                      // 02:30 is the first local time after the gap: it exists, no shift involved.
                      Vector{"fixed_at_gap_end",
                             "30 2 * * *",
                             "Australia/Lord_Howe",
                             std::nullopt,
                             "2025-10-04T12:00:00+10:30",
                             {"2025-10-05T02:30:00+11:00", "2025-10-06T02:30:00+11:00"}},
                      Vector{"daily_gap_shifts",
                             "daily 02:00",
                             "Australia/Lord_Howe",
                             std::nullopt,
                             "2025-10-04T12:00:00+10:30",
                             {"2025-10-05T02:30:00+11:00", "2025-10-06T02:00:00+11:00"}},
                      Vector{"interval_gap_skips",
                             "*/10 2 * * *",
                             "Australia/Lord_Howe",
                             std::nullopt,
                             "2025-10-05T01:55:00+10:30",
                             {"2025-10-05T02:30:00+11:00", "2025-10-05T02:40:00+11:00",
                              "2025-10-05T02:50:00+11:00", "2025-10-06T02:00:00+11:00"}},
                      // Only 01:30-01:59 repeats, so @hourly never fires twice.
                      Vector{"hourly_no_repeat",
                             "@hourly",
                             "Australia/Lord_Howe",
                             std::nullopt,
                             "2025-04-06T00:30:00+11:00",
                             {"2025-04-06T01:00:00+11:00", "2025-04-06T02:00:00+10:30",
                              "2025-04-06T03:00:00+10:30"}},
                      Vector{"interval_overlap_both",
                             "*/20 * * * *",
                             "Australia/Lord_Howe",
                             std::nullopt,
                             "2025-04-06T01:10:00+11:00",
                             {"2025-04-06T01:20:00+11:00", "2025-04-06T01:40:00+11:00",
                              "2025-04-06T01:40:00+10:30", "2025-04-06T02:00:00+10:30"}},
                      Vector{"fixed_overlap_first",
                             "45 1 * * *",
                             "Australia/Lord_Howe",
                             kShiftFirst,
                             "2025-04-05T12:00:00+11:00",
                             {"2025-04-06T01:45:00+11:00", "2025-04-07T01:45:00+10:30"}},
                      Vector{"fixed_overlap_last",
                             "45 1 * * *",
                             "Australia/Lord_Howe",
                             kShiftLast,
                             "2025-04-05T12:00:00+11:00",
                             {"2025-04-06T01:45:00+10:30", "2025-04-07T01:45:00+10:30"}},
                      Vector{"fixed_gap_2030",
                             "0 2 * 10 0",
                             "Australia/Lord_Howe",
                             std::nullopt,
                             "2030-10-01T00:00:00+10:30",
                             {"2030-10-06T02:30:00+11:00", "2030-10-13T02:00:00+11:00"}}),
    vector_name);

// Pacific/Chatham: +12:45 standard / +13:45 summer.
//   2026-04-05 (first Sunday of April) 03:45 (+13:45) -> 02:45 (+12:45): 02:45-03:44 repeats;
//   2026-09-27 (last Sunday of September) 02:45 (+12:45) -> 03:45 (+13:45).
INSTANTIATE_TEST_SUITE_P(
    Chatham, ScheduleDstVectorTest,
    ::testing::Values(Vector{"fixed_gap_shifts",
                             "0 3 * * *",
                             "Pacific/Chatham",
                             std::nullopt,
                             "2026-09-26T00:00:00+12:45",
                             {"2026-09-26T03:00:00+12:45", "2026-09-27T03:45:00+13:45",
                              "2026-09-28T03:00:00+13:45"}},
                      Vector{"fixed_gap_skip",
                             "0 3 * * *",
                             "Pacific/Chatham",
                             kSkipFirst,
                             "2026-09-26T00:00:00+12:45",
                             {"2026-09-26T03:00:00+12:45", "2026-09-28T03:00:00+13:45"}},
                      // 02:45 is the first nonexistent minute; 02:44 still exists.
                      Vector{"fixed_gap_first_minute",
                             "45 2 * * *",
                             "Pacific/Chatham",
                             std::nullopt,
                             "2026-09-26T12:00:00+12:45",
                             {"2026-09-27T03:45:00+13:45", "2026-09-28T02:45:00+13:45"}},
                      Vector{"fixed_before_gap",
                             "44 2 * * *",
                             "Pacific/Chatham",
                             std::nullopt,
                             "2026-09-26T12:00:00+12:45",
                             {"2026-09-27T02:44:00+12:45", "2026-09-28T02:44:00+13:45"}},
                      Vector{"daily_gap_shifts",
                             "daily 03:44:59",
                             "Pacific/Chatham",
                             std::nullopt,
                             "2026-09-26T12:00:00+12:45",
                             {"2026-09-27T03:45:00+13:45", "2026-09-28T03:44:59+13:45"}},
                      Vector{"interval_gap_skips",
                             "*/30 * * * *",
                             "Pacific/Chatham",
                             std::nullopt,
                             "2026-09-27T02:00:00+12:45",
                             {"2026-09-27T02:30:00+12:45", "2026-09-27T04:00:00+13:45",
                              "2026-09-27T04:30:00+13:45"}},
                      Vector{"interval_overlap_both",
                             "*/30 * * * *",
                             "Pacific/Chatham",
                             std::nullopt,
                             "2026-04-05T02:00:00+13:45",
                             {"2026-04-05T02:30:00+13:45", "2026-04-05T03:00:00+13:45",
                              "2026-04-05T03:30:00+13:45", "2026-04-05T03:00:00+12:45",
                              "2026-04-05T03:30:00+12:45", "2026-04-05T04:00:00+12:45"}},
                      Vector{"hourly_overlap_both",
                             "@hourly",
                             "Pacific/Chatham",
                             std::nullopt,
                             "2026-04-05T01:30:00+13:45",
                             {"2026-04-05T02:00:00+13:45", "2026-04-05T03:00:00+13:45",
                              "2026-04-05T03:00:00+12:45", "2026-04-05T04:00:00+12:45"}},
                      Vector{"fixed_overlap_first",
                             "0 3 * * *",
                             "Pacific/Chatham",
                             std::nullopt,
                             "2026-04-04T12:00:00+13:45",
                             {"2026-04-05T03:00:00+13:45", "2026-04-06T03:00:00+12:45"}},
                      Vector{"fixed_overlap_both",
                             "0 3 * * *",
                             "Pacific/Chatham",
                             kShiftBoth,
                             "2026-04-04T12:00:00+13:45",
                             {"2026-04-05T03:00:00+13:45", "2026-04-05T03:00:00+12:45",
                              "2026-04-06T03:00:00+12:45"}},
                      Vector{"fixed_overlap_last",
                             "daily 02:45",
                             "Pacific/Chatham",
                             kShiftLast,
                             "2026-04-04T12:00:00+13:45",
                             {"2026-04-05T02:45:00+12:45", "2026-04-06T02:45:00+12:45"}}),
    vector_name);

// America/Sao_Paulo: -03:00 standard / -02:00 summer until 2019, changes at MIDNIGHT.
//   2017-10-15 00:00 (-03:00) -> 01:00 (-02:00);  2018-02-18 00:00 (-02:00) -> 02-17 23:00
//   (-03:00); 2018-11-04 00:00 (-03:00) -> 01:00 (-02:00);  2019-02-17 00:00 (-02:00) -> 02-16
//   23:00; no DST from November 2019 on.
INSTANTIATE_TEST_SUITE_P(
    SaoPaulo, ScheduleDstVectorTest,
    ::testing::Values(
        // Midnight does not exist on 2018-11-04: a fixed-time schedule fires at 01:00 that day.
        Vector{"midnight_gap_shifts",
               "0 0 * * *",
               "America/Sao_Paulo",
               std::nullopt,
               "2018-11-03T00:00:00-03:00",
               {"2018-11-04T01:00:00-02:00", "2018-11-05T00:00:00-02:00"}},
        Vector{"daily_macro_gap_shifts",
               "@daily",
               "America/Sao_Paulo",
               std::nullopt,
               "2018-11-02T12:00:00-03:00",
               {"2018-11-03T00:00:00-03:00", "2018-11-04T01:00:00-02:00",
                "2018-11-05T00:00:00-02:00"}},
        Vector{"daily_time_gap_shifts",
               "daily 00:00",
               "America/Sao_Paulo",
               std::nullopt,
               "2018-11-03T12:00:00-03:00",
               {"2018-11-04T01:00:00-02:00", "2018-11-05T00:00:00-02:00"}},
        Vector{"midnight_gap_skip",
               "@midnight",
               "America/Sao_Paulo",
               DstPolicy{Gap::kSkip, Overlap::kFirst},
               "2018-11-02T12:00:00-03:00",
               {"2018-11-03T00:00:00-03:00", "2018-11-05T00:00:00-02:00"}},
        // The shifted run belongs to the 4th: a day-of-month schedule keeps its date.
        Vector{"dated_midnight_gap_shifts",
               "0 0 4 11 *",
               "America/Sao_Paulo",
               std::nullopt,
               "2018-01-01T00:00:00-02:00",
               {"2018-11-04T01:00:00-02:00", "2019-11-04T00:00:00-03:00"}},
        Vector{"weekly_gap_shifts",
               "@weekly",
               "America/Sao_Paulo",
               std::nullopt,
               "2018-10-30T00:00:00-03:00",
               {"2018-11-04T01:00:00-02:00", "2018-11-11T00:00:00-02:00"}},
        // From just before the gap, and from exactly the shifted instant (strictly after).
        Vector{"from_last_second_before_gap",
               "@daily",
               "America/Sao_Paulo",
               std::nullopt,
               "2018-11-03T23:59:59-03:00",
               {"2018-11-04T01:00:00-02:00"}},
        Vector{"from_shifted_instant",
               "@daily",
               "America/Sao_Paulo",
               std::nullopt,
               "2018-11-04T01:00:00-02:00",
               {"2018-11-05T00:00:00-02:00"}},
        Vector{"gap_2017",
               "0 0 * * *",
               "America/Sao_Paulo",
               std::nullopt,
               "2017-10-14T12:00:00-03:00",
               {"2017-10-15T01:00:00-02:00", "2017-10-16T00:00:00-02:00"}},
        Vector{"interval_gap_skips",
               "*/30 * * * *",
               "America/Sao_Paulo",
               std::nullopt,
               "2018-11-03T23:00:00-03:00",
               {"2018-11-03T23:30:00-03:00", "2018-11-04T01:00:00-02:00",
                "2018-11-04T01:30:00-02:00"}},
        Vector{"hourly_gap_skips",
               "@hourly",
               "America/Sao_Paulo",
               std::nullopt,
               "2018-11-03T22:30:00-03:00",
               {"2018-11-03T23:00:00-03:00", "2018-11-04T01:00:00-02:00",
                "2018-11-04T02:00:00-02:00"}},
        // 23:00-23:59 on 2018-02-17 happens twice.
        Vector{"fixed_overlap_first",
               "0 23 * * *",
               "America/Sao_Paulo",
               std::nullopt,
               "2018-02-17T12:00:00-02:00",
               {"2018-02-17T23:00:00-02:00", "2018-02-18T23:00:00-03:00"}},
        Vector{"fixed_overlap_last",
               "30 23 * * *",
               "America/Sao_Paulo",
               kShiftLast,
               "2018-02-17T12:00:00-02:00",
               {"2018-02-17T23:30:00-03:00", "2018-02-18T23:30:00-03:00"}},
        Vector{"fixed_overlap_both",
               "daily 23:59:59",
               "America/Sao_Paulo",
               kShiftBoth,
               "2018-02-17T12:00:00-02:00",
               {"2018-02-17T23:59:59-02:00", "2018-02-17T23:59:59-03:00",
                "2018-02-18T23:59:59-03:00"}},
        Vector{
            "interval_overlap_both",
            "*/30 * * * *",
            "America/Sao_Paulo",
            std::nullopt,
            "2018-02-17T22:45:00-02:00",
            {"2018-02-17T23:00:00-02:00", "2018-02-17T23:30:00-02:00", "2018-02-17T23:00:00-03:00",
             "2018-02-17T23:30:00-03:00", "2018-02-18T00:00:00-03:00"}},
        Vector{"interval_overlap_first",
               "*/30 * * * *",
               "America/Sao_Paulo",
               kSkipFirst,
               "2018-02-17T22:45:00-02:00",
               {"2018-02-17T23:00:00-02:00", "2018-02-17T23:30:00-02:00",
                "2018-02-18T00:00:00-03:00"}},
        // Midnight after the fall-back exists once: @daily does not repeat.
        Vector{"midnight_after_overlap_once",
               "@daily",
               "America/Sao_Paulo",
               std::nullopt,
               "2018-02-17T00:30:00-02:00",
               {"2018-02-18T00:00:00-03:00", "2018-02-19T00:00:00-03:00"}},
        Vector{"overlap_2019",
               "@hourly",
               "America/Sao_Paulo",
               std::nullopt,
               "2019-02-16T22:30:00-02:00",
               {"2019-02-16T23:00:00-02:00", "2019-02-16T23:00:00-03:00",
                "2019-02-17T00:00:00-03:00"}},
        // DST abolished in 2019: no gap in November 2019.
        Vector{"no_gap_after_2019",
               "0 0 * * *",
               "America/Sao_Paulo",
               std::nullopt,
               "2019-11-02T12:00:00-03:00",
               {"2019-11-03T00:00:00-03:00", "2019-11-04T00:00:00-03:00"}}),
    vector_name);

// Asia/Kolkata: +05:30 all year, no DST (sanity: nothing shifts or repeats).
INSTANTIATE_TEST_SUITE_P(
    Kolkata, ScheduleDstVectorTest,
    ::testing::Values(Vector{"fixed",
                             "30 2 * * *",
                             "Asia/Kolkata",
                             std::nullopt,
                             "2026-03-08T00:00:00+05:30",
                             {"2026-03-08T02:30:00+05:30", "2026-03-09T02:30:00+05:30"}},
                      Vector{"fixed_from_utc_input",
                             "@daily",
                             "Asia/Kolkata",
                             std::nullopt,
                             "2026-10-24T18:29:59Z",
                             {"2026-10-25T00:00:00+05:30", "2026-10-26T00:00:00+05:30"}},
                      Vector{"interval",
                             "*/45 * * * *",
                             "Asia/Kolkata",
                             std::nullopt,
                             "2026-10-25T23:00:00+05:30",
                             {"2026-10-25T23:45:00+05:30", "2026-10-26T00:00:00+05:30",
                              "2026-10-26T00:45:00+05:30"}},
                      Vector{"hourly",
                             "@hourly",
                             "Asia/Kolkata",
                             kShiftBoth,
                             "2026-11-01T00:30:00+05:30",
                             {"2026-11-01T01:00:00+05:30", "2026-11-01T02:00:00+05:30"}},
                      Vector{"daily",
                             "daily 02:30",
                             "Asia/Kolkata",
                             std::nullopt,
                             "2026-03-28T12:00:00+05:30",
                             {"2026-03-29T02:30:00+05:30", "2026-03-30T02:30:00+05:30"}}),
    vector_name);

// --- Calendar edges: leap years, month ends, `31` in short months, `W` at month edges.
//   2000 is a leap year (divisible by 400); 2024 and 2028 are leap years.
//   Weekdays used: 2025-02-01 Sat, 2025-03-01 Sat, 2025-03-30 Sun, 2025-05-31 Sat,
//   2025-06-01 Sun, 2025-08-31 Sun, 2025-11-30 Sun, 2026-02-28 Sat, 2024-02-29 Thu.
class CronCalendarEdgeTest : public ::testing::TestWithParam<Vector> {};

TEST_P(CronCalendarEdgeTest, NextInstants) {
  const Vector& v = GetParam();
  const date::time_zone* tz = date::locate_zone(v.tz);
  Schedule s = make_schedule(v.spec, tz);
  if (v.policy) s.with_dst(*v.policy);
  EXPECT_EQ(next_n(s, v.from, v.expected.size(), tz), v.expected)
      << v.spec << " in " << v.tz << " from " << v.from;
}

INSTANTIATE_TEST_SUITE_P(
    Vectors, CronCalendarEdgeTest,
    ::testing::Values(
        Vector{"feb29_2024_2028",
               "0 0 29 2 *",
               "UTC",
               std::nullopt,
               "2023-03-01T00:00:00Z",
               {"2024-02-29T00:00:00+00:00", "2028-02-29T00:00:00+00:00",
                "2032-02-29T00:00:00+00:00"}},
        Vector{"feb29_2000_is_leap",
               "0 0 29 2 *",
               "UTC",
               std::nullopt,
               "1999-01-01T00:00:00Z",
               {"2000-02-29T00:00:00+00:00", "2004-02-29T00:00:00+00:00"}},
        Vector{"feb29_in_zone",
               "30 12 29 feb *",
               "Pacific/Chatham",
               std::nullopt,
               "2024-02-29T12:30:00+13:45",
               {"2028-02-29T12:30:00+13:45"}},
        Vector{"last_day_feb_2024",
               "0 0 L * *",
               "UTC",
               std::nullopt,
               "2024-02-01T00:00:00Z",
               {"2024-02-29T00:00:00+00:00", "2024-03-31T00:00:00+00:00",
                "2024-04-30T00:00:00+00:00"}},
        Vector{"last_day_feb_2026",
               "0 0 L * *",
               "UTC",
               std::nullopt,
               "2026-02-01T00:00:00Z",
               {"2026-02-28T00:00:00+00:00", "2026-03-31T00:00:00+00:00"}},
        Vector{
            "last_day_of_feb_by_year",
            "0 0 L 2 *",
            "Europe/Berlin",
            std::nullopt,
            "1999-12-31T00:00:00+01:00",
            {"2000-02-29T00:00:00+01:00", "2001-02-28T00:00:00+01:00", "2002-02-28T00:00:00+01:00",
             "2003-02-28T00:00:00+01:00", "2004-02-29T00:00:00+01:00"}},
        Vector{
            "day31_skips_short_months",
            "0 0 31 * *",
            "UTC",
            std::nullopt,
            "2026-01-31T00:00:00Z",
            {"2026-03-31T00:00:00+00:00", "2026-05-31T00:00:00+00:00", "2026-07-31T00:00:00+00:00",
             "2026-08-31T00:00:00+00:00", "2026-10-31T00:00:00+00:00", "2026-12-31T00:00:00+00:00",
             "2027-01-31T00:00:00+00:00"}},
        Vector{"day30_skips_february",
               "0 12 30 * *",
               "Asia/Kolkata",
               std::nullopt,
               "2024-01-30T12:00:00+05:30",
               {"2024-03-30T12:00:00+05:30"}},
        // 1W: Feb 1 and Mar 1 2025 are Saturdays -> Monday the 3rd; Jun 1 is a Sunday -> 2nd.
        Vector{
            "w1_saturday_moves_to_monday",
            "0 0 1W * *",
            "UTC",
            std::nullopt,
            "2025-01-15T00:00:00Z",
            {"2025-02-03T00:00:00+00:00", "2025-03-03T00:00:00+00:00", "2025-04-01T00:00:00+00:00",
             "2025-05-01T00:00:00+00:00", "2025-06-02T00:00:00+00:00"}},
        // 31W: Aug 31 2025 is a Sunday -> Friday the 29th; 30-day months never match.
        Vector{"w31_sunday_moves_to_friday",
               "0 0 31W * *",
               "UTC",
               std::nullopt,
               "2025-08-01T00:00:00Z",
               {"2025-08-29T00:00:00+00:00", "2025-10-31T00:00:00+00:00",
                "2025-12-31T00:00:00+00:00"}},
        Vector{
            "lw_sunday_and_saturday_ends",
            "0 0 LW * *",
            "UTC",
            std::nullopt,
            "2025-05-01T00:00:00Z",
            {"2025-05-30T00:00:00+00:00", "2025-06-30T00:00:00+00:00", "2025-07-31T00:00:00+00:00",
             "2025-08-29T00:00:00+00:00", "2025-09-30T00:00:00+00:00", "2025-10-31T00:00:00+00:00",
             "2025-11-28T00:00:00+00:00"}},
        // 30W: Nov 30 2025 is a Sunday and the last day -> Friday the 28th; Mar 30 2025 is a
        // Sunday but March has a 31st -> Monday the 31st. February never matches.
        Vector{"w30_end_of_30_day_month",
               "0 0 30W * *",
               "UTC",
               std::nullopt,
               "2025-11-01T00:00:00Z",
               {"2025-11-28T00:00:00+00:00", "2025-12-30T00:00:00+00:00",
                "2026-01-30T00:00:00+00:00", "2026-03-30T00:00:00+00:00"}},
        Vector{"w30_sunday_in_31_day_month",
               "0 0 30W 3 *",
               "UTC",
               std::nullopt,
               "2025-01-01T00:00:00Z",
               {"2025-03-31T00:00:00+00:00", "2026-03-30T00:00:00+00:00"}},
        Vector{"lw_february",
               "0 9 LW 2 *",
               "America/New_York",
               std::nullopt,
               "2024-01-01T00:00:00-05:00",
               {"2024-02-29T09:00:00-05:00", "2025-02-28T09:00:00-05:00",
                "2026-02-27T09:00:00-05:00"}},
        // Both day fields restricted: Feb 29 OR any Monday of February.
        Vector{"feb29_or_monday",
               "0 0 29 2 1",
               "UTC",
               std::nullopt,
               "2024-02-20T00:00:00Z",
               {"2024-02-26T00:00:00+00:00", "2024-02-29T00:00:00+00:00",
                "2025-02-03T00:00:00+00:00"}},
        Vector{"last_friday_leap_feb",
               "0 0 * 2 FRIL",
               "UTC",
               std::nullopt,
               "2028-01-01T00:00:00Z",
               {"2028-02-25T00:00:00+00:00", "2029-02-23T00:00:00+00:00"}},
        Vector{"fifth_thursday_feb_2024",
               "0 0 * 2 THU#5",
               "UTC",
               std::nullopt,
               "2020-01-01T00:00:00Z",
               {"2024-02-29T00:00:00+00:00"}},
        // `7/2` starts at Sunday written as 7 and runs to the end of the week: Sunday only
        // (it used to match no day at all). 2026-01-01 is a Thursday.
        Vector{"dow_seven_with_step_is_sunday",
               "0 0 * * 7/2",
               "UTC",
               std::nullopt,
               "2026-01-01T00:00:00Z",
               {"2026-01-04T00:00:00+00:00", "2026-01-11T00:00:00+00:00"}},
        Vector{"dow_seven_with_step_or_day_of_month",
               "0 0 15 * 7/3",
               "UTC",
               std::nullopt,
               "2026-01-01T00:00:00Z",
               {"2026-01-04T00:00:00+00:00", "2026-01-11T00:00:00+00:00",
                "2026-01-15T00:00:00+00:00", "2026-01-18T00:00:00+00:00"}},
        Vector{"year_end_in_zone",
               "59 23 31 12 *",
               "Pacific/Chatham",
               std::nullopt,
               "2025-12-31T23:59:00+13:45",
               {"2026-12-31T23:59:00+13:45"}}),
    vector_name);

}  // namespace
}  // namespace schedd
