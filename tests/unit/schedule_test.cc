// Schedule and cron vectors: every grammar feature, every error message, and the DST rules
// of docs/design.md §8 in New York (1 h shifts) and Lord Howe (30 min shifts). Pure functions of
// (schedule, zone, instant): no clock involved.
#include "core/schedule/schedule.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "tests/testing/instants.h"

namespace schedd {
namespace {

using namespace std::chrono_literals;

const date::time_zone* zone(const char* name) { return date::locate_zone(name); }

using testing::at;

std::vector<std::string> next_n(const Schedule& s, const std::string& from, int n,
                                const date::time_zone* tz) {
  std::vector<std::string> out;
  TimePoint t = at(from);
  for (int i = 0; i < n; ++i) {
    auto next = s.next_after(t);
    if (!next) break;
    out.push_back(format_rfc3339(*next, tz));
    t = *next;
  }
  return out;
}

Schedule cron_in(const std::string& expr, const char* tz) {
  auto s = Schedule::cron(expr, zone(tz));
  EXPECT_TRUE(s.is_ok()) << expr << ": " << s.status().to_string();
  return std::move(s).value();
}

struct CronCase {
  const char* expr;
  const char* from;
  std::vector<std::string> expected;
};

class CronGrammarTest : public ::testing::TestWithParam<CronCase> {};

TEST_P(CronGrammarTest, NextInstantsInUtc) {
  const CronCase& c = GetParam();
  Schedule s = cron_in(c.expr, "UTC");
  EXPECT_EQ(next_n(s, c.from, static_cast<int>(c.expected.size()), zone("UTC")), c.expected)
      << c.expr;
}

// 2026-01-01 is a Thursday.
INSTANTIATE_TEST_SUITE_P(
    Vectors, CronGrammarTest,
    ::testing::Values(
        CronCase{"*/15 * * * *",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-01T00:15:00+00:00", "2026-01-01T00:30:00+00:00",
                  "2026-01-01T00:45:00+00:00", "2026-01-01T01:00:00+00:00"}},
        CronCase{"5/20 * * * *",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-01T00:05:00+00:00", "2026-01-01T00:25:00+00:00",
                  "2026-01-01T00:45:00+00:00", "2026-01-01T01:05:00+00:00"}},
        CronCase{"10-20/5 3 * * *",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-01T03:10:00+00:00", "2026-01-01T03:15:00+00:00",
                  "2026-01-01T03:20:00+00:00", "2026-01-02T03:10:00+00:00"}},
        CronCase{"0 9 * * MON-FRI",
                 "2026-01-02T10:00:00Z",
                 {"2026-01-05T09:00:00+00:00", "2026-01-06T09:00:00+00:00"}},
        CronCase{"0 12 * * sun-tue",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-04T12:00:00+00:00", "2026-01-05T12:00:00+00:00",
                  "2026-01-06T12:00:00+00:00", "2026-01-11T12:00:00+00:00"}},
        CronCase{"0 0 1,15 * *",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-15T00:00:00+00:00", "2026-02-01T00:00:00+00:00",
                  "2026-02-15T00:00:00+00:00"}},
        CronCase{"30 6 1 jan,Jul *",
                 "2026-01-01T07:00:00Z",
                 {"2026-07-01T06:30:00+00:00", "2027-01-01T06:30:00+00:00"}},
        CronCase{"0 0 1 FEB-APR/2 *",
                 "2026-01-01T00:00:00Z",
                 {"2026-02-01T00:00:00+00:00", "2026-04-01T00:00:00+00:00",
                  "2027-02-01T00:00:00+00:00"}},
        CronCase{"*/20 * * * * *",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-01T00:00:20+00:00", "2026-01-01T00:00:40+00:00",
                  "2026-01-01T00:01:00+00:00"}},
        CronCase{"0 0 * * 7",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-04T00:00:00+00:00", "2026-01-11T00:00:00+00:00"}},
        CronCase{"0 0 * * 0", "2026-01-01T00:00:00Z", {"2026-01-04T00:00:00+00:00"}},
        // Both day fields restricted: either matches (13th or any Friday).
        CronCase{"0 0 13 * 5",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-02T00:00:00+00:00", "2026-01-09T00:00:00+00:00",
                  "2026-01-13T00:00:00+00:00", "2026-01-16T00:00:00+00:00"}},
        // "*/1" is not exactly "*": still restricted, so the OR rule applies.
        CronCase{"0 0 */1 * 5",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-02T00:00:00+00:00", "2026-01-03T00:00:00+00:00"}},
        CronCase{"0 0 L * *",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-31T00:00:00+00:00", "2026-02-28T00:00:00+00:00",
                  "2026-03-31T00:00:00+00:00"}},
        CronCase{"0 0 1,L * *",
                 "2026-01-02T00:00:00Z",
                 {"2026-01-31T00:00:00+00:00", "2026-02-01T00:00:00+00:00",
                  "2026-02-28T00:00:00+00:00"}},
        // Last weekday: Jan 31 and Feb 28 2026 are Saturdays.
        CronCase{"0 0 LW * *",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-30T00:00:00+00:00", "2026-02-27T00:00:00+00:00",
                  "2026-03-31T00:00:00+00:00"}},
        // Nearest weekday: Feb 15 and Mar 15 2026 are Sundays.
        CronCase{"0 0 15W * *",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-15T00:00:00+00:00", "2026-02-16T00:00:00+00:00",
                  "2026-03-16T00:00:00+00:00"}},
        // 1W never crosses into the previous month: Aug 1 2026 is a Saturday -> Mon Aug 3.
        CronCase{"0 0 1W 8 *", "2026-01-01T00:00:00Z", {"2026-08-03T00:00:00+00:00"}},
        // 31W: Jan 31 2026 is a Saturday -> Fri Jan 30; months without a 31st never match.
        CronCase{"0 0 31W * *",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-30T00:00:00+00:00", "2026-03-31T00:00:00+00:00"}},
        CronCase{"0 0 * * 5L",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-30T00:00:00+00:00", "2026-02-27T00:00:00+00:00",
                  "2026-03-27T00:00:00+00:00"}},
        CronCase{"0 0 * * FRIL", "2026-01-01T00:00:00Z", {"2026-01-30T00:00:00+00:00"}},
        CronCase{"0 0 * * 1#2",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-12T00:00:00+00:00", "2026-02-09T00:00:00+00:00",
                  "2026-03-09T00:00:00+00:00"}},
        CronCase{"0 0 * * MON#1,fri#3",
                 "2026-01-01T00:00:00Z",
                 {"2026-01-05T00:00:00+00:00", "2026-01-16T00:00:00+00:00",
                  "2026-02-02T00:00:00+00:00", "2026-02-20T00:00:00+00:00"}},
        CronCase{"0 0 29 2 *",
                 "2026-01-01T00:00:00Z",
                 {"2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00"}},
        CronCase{"@hourly",
                 "2026-01-01T00:30:00Z",
                 {"2026-01-01T01:00:00+00:00", "2026-01-01T02:00:00+00:00"}},
        CronCase{"@daily", "2026-01-01T00:30:00Z", {"2026-01-02T00:00:00+00:00"}},
        CronCase{"@midnight", "2026-01-01T00:30:00Z", {"2026-01-02T00:00:00+00:00"}},
        CronCase{"@weekly", "2026-01-01T00:30:00Z", {"2026-01-04T00:00:00+00:00"}},
        CronCase{"@monthly", "2026-01-01T00:30:00Z", {"2026-02-01T00:00:00+00:00"}},
        CronCase{"@yearly", "2026-01-01T00:30:00Z", {"2027-01-01T00:00:00+00:00"}},
        CronCase{"@ANNUALLY", "2026-01-01T00:30:00Z", {"2027-01-01T00:00:00+00:00"}},
        // Strictly after: from a fire instant, the next one.
        CronCase{"0 * * * *", "2026-01-01T05:00:00Z", {"2026-01-01T06:00:00+00:00"}},
        CronCase{"0 * * * *", "2026-01-01T04:59:59.999Z", {"2026-01-01T05:00:00+00:00"}},
        // Year boundaries.
        CronCase{"59 23 31 12 *", "2026-12-31T23:59:00Z", {"2027-12-31T23:59:00+00:00"}}));

struct ErrorCase {
  const char* expr;
  const char* message;
};

class CronErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(CronErrorTest, NamesFieldValueAndColumn) {
  auto r = parse_cron(GetParam().expr);
  ASSERT_FALSE(r.is_ok()) << GetParam().expr;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Vectors, CronErrorTest,
    ::testing::Values(
        ErrorCase{"60 * * * *", "minute: 60 is out of range 0-59 (column 1)"},
        ErrorCase{"* 24 * * *", "hour: 24 is out of range 0-23 (column 3)"},
        ErrorCase{"* * 0 * *", "day-of-month: 0 is out of range 1-31 (column 5)"},
        ErrorCase{"* * * 13 *", "month: 13 is out of range 1-12 (column 7)"},
        ErrorCase{"* * * * 8", "day-of-week: 8 is out of range 0-7 (column 9)"},
        ErrorCase{"61 0 0 * * *", "second: 61 is out of range 0-59 (column 1)"},
        ErrorCase{"0  0,70 * * *", "hour: 70 is out of range 0-23 (column 6)"},
        ErrorCase{"* * * FOO *", "month: invalid value \"FOO\" (column 7)"},
        ErrorCase{"* * * * MOON", "day-of-week: invalid value \"MOON\" (column 9)"},
        ErrorCase{"1x * * * *", "minute: invalid value \"1x\" (column 1)"},
        ErrorCase{"*/0 * * * *", "minute: step 0 is not allowed (column 3)"},
        ErrorCase{"*/x * * * *", "minute: invalid step \"x\" (column 3)"},
        ErrorCase{"*/61 * * * *", "minute: step 61 is larger than the range 0-59 (column 3)"},
        ErrorCase{"5-1 * * * *", "minute: range 5-1 is backwards (start after end) (column 1)"},
        ErrorCase{"1,,2 * * * *", "minute: empty list item (column 3)"},
        ErrorCase{"* * * * 1#6", "day-of-week: #6 must be #1 to #5 (column 11)"},
        ErrorCase{"* * * * L",
                  "day-of-week: L needs a weekday before it (e.g. 5L or FRIL) "
                  "(column 9)"},
        ErrorCase{"0 0 32W * *", "day-of-month: 32 is out of range 1-31 (column 5)"},
        ErrorCase{"* * * *",
                  "expected 5 fields (minute hour day-of-month month day-of-week) "
                  "or 6 (with seconds first), got 4"},
        ErrorCase{"* * * * * * *",
                  "expected 5 fields (minute hour day-of-month month "
                  "day-of-week) or 6 (with seconds first), got 7"},
        ErrorCase{"", "empty cron expression"},
        ErrorCase{"@fortnightly",
                  "unknown macro \"@fortnightly\" (use @yearly, @annually, "
                  "@monthly, @weekly, @daily, @midnight or @hourly)"}));

TEST(CronTest, NeverFiringExpressionsParseButCannotFire) {
  for (const char* expr : {"0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 30W 2 *",
                           "0 0 * 2 1#5,2#5,"
                           "3#5,4#5,5#5,6#5"}) {
    auto e = parse_cron(expr);
    ASSERT_TRUE(e.is_ok()) << expr;
    // "0 0 * 2 ...#5" does fire in leap years where Feb 29 falls on a matching weekday.
    EXPECT_EQ(e->can_fire(), std::string_view(expr).find("#5") != std::string_view::npos) << expr;
  }
  Schedule s = cron_in("0 0 30 2 *", "UTC");
  EXPECT_EQ(s.next_after(at("2026-01-01T00:00:00Z")), std::nullopt);
}

TEST(CronTest, FixedTimeClassification) {
  EXPECT_TRUE(parse_cron("30 2 * * *")->fixed_time);
  EXPECT_TRUE(parse_cron("@daily")->fixed_time);
  EXPECT_TRUE(parse_cron("0 30 2 * * 1-5")->fixed_time);
  EXPECT_FALSE(parse_cron("@hourly")->fixed_time);
  EXPECT_FALSE(parse_cron("*/30 2 * * *")->fixed_time);
  EXPECT_FALSE(parse_cron("0,30 2 * * *")->fixed_time);
  EXPECT_FALSE(parse_cron("30 1-2 * * *")->fixed_time);
  EXPECT_FALSE(parse_cron("* 30 2 * * *")->fixed_time);
  // The values matched decide, not the spelling (issue #18).
  EXPECT_TRUE(parse_cron("1,1 2 * * *")->fixed_time);
  EXPECT_TRUE(parse_cron("30-30,30 2-2 * * *")->fixed_time);
  EXPECT_TRUE(parse_cron("*/60 30 2 * * *")->fixed_time);
  EXPECT_TRUE(parse_cron("30 2/24 * * *")->fixed_time);
  EXPECT_FALSE(parse_cron("30,31 2 * * *")->fixed_time);
}

TEST(CronTest, RareScheduleFindsItsDayWithoutScanningMinutes) {
  // Fifth Monday of February: only in leap years whose Feb 1 is a Monday.
  Schedule s = cron_in("0 0 * 2 1#5", "UTC");
  EXPECT_EQ(next_n(s, "2026-01-01T00:00:00Z", 2, zone("UTC")),
            (std::vector<std::string>{"2044-02-29T00:00:00+00:00", "2072-02-29T00:00:00+00:00"}));
}

// --- DST in New York: 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST.

struct DstCase {
  const char* name;
  const char* expr;
  const char* tz;
  std::optional<DstPolicy> policy;
  const char* from;
  std::vector<std::string> expected;
};

class DstTest : public ::testing::TestWithParam<DstCase> {};

TEST_P(DstTest, FollowsPolicy) {
  const DstCase& c = GetParam();
  Schedule s = cron_in(c.expr, c.tz);
  if (c.policy) s.with_dst(*c.policy);
  EXPECT_EQ(next_n(s, c.from, static_cast<int>(c.expected.size()), zone(c.tz)), c.expected);
}

constexpr DstPolicy kSkipGap{DstPolicy::Gap::kSkip, DstPolicy::Overlap::kFirst};
constexpr DstPolicy kShiftGapBoth{DstPolicy::Gap::kShift, DstPolicy::Overlap::kBoth};
constexpr DstPolicy kLast{DstPolicy::Gap::kShift, DstPolicy::Overlap::kLast};
constexpr DstPolicy kBoth{DstPolicy::Gap::kShift, DstPolicy::Overlap::kBoth};
constexpr DstPolicy kIntervalFirst{DstPolicy::Gap::kSkip, DstPolicy::Overlap::kFirst};

INSTANTIATE_TEST_SUITE_P(
    NewYorkAndLordHowe, DstTest,
    ::testing::Values(DstCase{"fixed_gap_shifts",
                              "30 2 * * *",
                              "America/New_York",
                              std::nullopt,
                              "2026-03-07T00:00:00-05:00",
                              {"2026-03-07T02:30:00-05:00", "2026-03-08T03:00:00-04:00",
                               "2026-03-09T02:30:00-04:00"}},
                      DstCase{"fixed_gap_skip",
                              "30 2 * * *",
                              "America/New_York",
                              kSkipGap,
                              "2026-03-07T00:00:00-05:00",
                              {"2026-03-07T02:30:00-05:00", "2026-03-09T02:30:00-04:00"}},
                      DstCase{"fixed_overlap_first",
                              "30 1 * * *",
                              "America/New_York",
                              std::nullopt,
                              "2026-10-31T00:00:00-04:00",
                              {"2026-10-31T01:30:00-04:00", "2026-11-01T01:30:00-04:00",
                               "2026-11-02T01:30:00-05:00"}},
                      DstCase{"fixed_overlap_last",
                              "30 1 * * *",
                              "America/New_York",
                              kLast,
                              "2026-10-31T12:00:00-04:00",
                              {"2026-11-01T01:30:00-05:00", "2026-11-02T01:30:00-05:00"}},
                      DstCase{"fixed_overlap_both",
                              "30 1 * * *",
                              "America/New_York",
                              kBoth,
                              "2026-10-31T12:00:00-04:00",
                              {"2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00",
                               "2026-11-02T01:30:00-05:00"}},
                      DstCase{"interval_gap_skips",
                              "*/30 * * * *",
                              "America/New_York",
                              std::nullopt,
                              "2026-03-08T01:00:00-05:00",
                              {"2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00",
                               "2026-03-08T03:30:00-04:00"}},
                      DstCase{"interval_gap_shift_dedupes",
                              "*/30 * * * *",
                              "America/New_York",
                              kShiftGapBoth,
                              "2026-03-08T01:00:00-05:00",
                              {"2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00",
                               "2026-03-08T03:30:00-04:00"}},
                      DstCase{"interval_overlap_both",
                              "*/30 * * * *",
                              "America/New_York",
                              std::nullopt,
                              "2026-11-01T00:30:00-04:00",
                              {"2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00",
                               "2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-05:00",
                               "2026-11-01T02:00:00-05:00"}},
                      DstCase{"hourly_fires_at_both_one_oclocks",
                              "@hourly",
                              "America/New_York",
                              std::nullopt,
                              "2026-11-01T00:30:00-04:00",
                              {"2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00",
                               "2026-11-01T02:00:00-05:00"}},
                      DstCase{"interval_overlap_first",
                              "*/30 * * * *",
                              "America/New_York",
                              kIntervalFirst,
                              "2026-11-01T00:30:00-04:00",
                              {"2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00",
                               "2026-11-01T02:00:00-05:00"}},
                      // Starting inside the first pass of the overlap: the next instant has an
                      // earlier local time than the start.
                      DstCase{"interval_from_inside_overlap",
                              "*/30 * * * *",
                              "America/New_York",
                              std::nullopt,
                              "2026-11-01T01:45:00-04:00",
                              {"2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-05:00"}},
                      DstCase{"every_minute_across_fall_back",
                              "* 1 * * *",
                              "America/New_York",
                              std::nullopt,
                              "2026-11-01T01:58:30-04:00",
                              {"2026-11-01T01:59:00-04:00", "2026-11-01T01:00:00-05:00",
                               "2026-11-01T01:01:00-05:00"}},
                      // Lord Howe: +10:30 standard, +11:00 summer; 30-minute shifts.
                      // 2026-10-04 02:00 -> 02:30; 2026-04-05 02:00 -> 01:30.
                      DstCase{"lord_howe_fixed_gap",
                              "15 2 * * *",
                              "Australia/Lord_Howe",
                              std::nullopt,
                              "2026-10-03T00:00:00+10:30",
                              {"2026-10-03T02:15:00+10:30", "2026-10-04T02:30:00+11:00",
                               "2026-10-05T02:15:00+11:00"}},
                      DstCase{"lord_howe_interval_gap",
                              "*/15 * * * *",
                              "Australia/Lord_Howe",
                              std::nullopt,
                              "2026-10-04T01:45:00+10:30",
                              {"2026-10-04T02:30:00+11:00", "2026-10-04T02:45:00+11:00"}},
                      DstCase{"lord_howe_interval_overlap",
                              "*/15 1 * * *",
                              "Australia/Lord_Howe",
                              std::nullopt,
                              "2026-04-05T01:00:00+11:00",
                              {"2026-04-05T01:15:00+11:00", "2026-04-05T01:30:00+11:00",
                               "2026-04-05T01:45:00+11:00", "2026-04-05T01:30:00+10:30",
                               "2026-04-05T01:45:00+10:30", "2026-04-06T01:00:00+10:30"}},
                      DstCase{"lord_howe_fixed_overlap_first",
                              "45 1 * * *",
                              "Australia/Lord_Howe",
                              std::nullopt,
                              "2026-04-04T12:00:00+11:00",
                              {"2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"}}),
    [](const ::testing::TestParamInfo<DstCase>& info) { return std::string(info.param.name); });

TEST(DailyTest, IsFixedTimeWithWeekdays) {
  auto s = Schedule::daily("02:30", {}, zone("America/New_York"));
  ASSERT_TRUE(s.is_ok());
  EXPECT_TRUE(s->fixed_time());
  EXPECT_EQ(next_n(*s, "2026-03-07T00:00:00-05:00", 2, zone("America/New_York")),
            (std::vector<std::string>{"2026-03-07T02:30:00-05:00", "2026-03-08T03:00:00-04:00"}));
  auto weekdays = Schedule::daily("06:30:15", {"mon-wed", "FRI"}, zone("UTC"));
  ASSERT_TRUE(weekdays.is_ok()) << weekdays.status().to_string();
  EXPECT_EQ(next_n(*weekdays, "2026-01-01T00:00:00Z", 4, zone("UTC")),
            (std::vector<std::string>{"2026-01-02T06:30:15+00:00", "2026-01-05T06:30:15+00:00",
                                      "2026-01-06T06:30:15+00:00", "2026-01-07T06:30:15+00:00"}));
}

TEST(DailyTest, RejectsBadTimeAndDays) {
  EXPECT_EQ(Schedule::daily("25:00", {}, zone("UTC")).status().message(),
            "time: \"25:00\" is out of range (00:00:00 to 23:59:59)");
  EXPECT_EQ(Schedule::daily("6:30", {}, zone("UTC")).status().message(),
            "time: \"6:30\" is not HH:MM or HH:MM:SS");
  EXPECT_EQ(Schedule::daily("06:30", {"someday"}, zone("UTC")).status().message(),
            "days: \"someday\" is not a weekday (mon..sun) or a range of them (mon-fri)");
}

TEST(EveryTest, AbsolutePeriodFromEpochOrAnchor) {
  auto s = Schedule::every(90min);
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(next_n(*s, "2026-01-01T00:00:00Z", 2, zone("UTC")),
            (std::vector<std::string>{"2026-01-01T01:30:00+00:00", "2026-01-01T03:00:00+00:00"}));
  auto anchored = Schedule::every(1h, at("2026-01-01T00:20:00Z"));
  ASSERT_TRUE(anchored.is_ok());
  EXPECT_EQ(next_n(*anchored, "2025-12-31T23:00:00Z", 3, zone("UTC")),
            (std::vector<std::string>{"2025-12-31T23:20:00+00:00", "2026-01-01T00:20:00+00:00",
                                      "2026-01-01T01:20:00+00:00"}));
}

TEST(EveryTest, UnaffectedByDst) {
  auto s = Schedule::every(1h);
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(next_n(*s, "2026-11-01T00:30:00-04:00", 3, zone("America/New_York")),
            (std::vector<std::string>{"2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00",
                                      "2026-11-01T02:00:00-05:00"}));
}

TEST(EveryTest, RejectsSubSecondPeriods) {
  EXPECT_EQ(Schedule::every(1500ms).status().message(),
            "every: must be a whole number of seconds, at least 1s");
  EXPECT_FALSE(Schedule::every(0ms).is_ok());
}

TEST(JitterTest, DeterministicOffsetBelowJitter) {
  std::set<int64_t> offsets;
  for (const char* name : {"alpha", "beta", "gamma", "delta", "epsilon"}) {
    auto a = Schedule::every(1h);
    auto b = Schedule::every(1h);
    a->with_jitter(30s, name);
    b->with_jitter(30s, name);
    EXPECT_EQ(a->jitter_offset(), b->jitter_offset());
    EXPECT_GE(a->jitter_offset(), 0s);
    EXPECT_LT(a->jitter_offset(), 30s);
    offsets.insert(a->jitter_offset().count());
    // The shifted schedule keeps its period and stays strictly-after.
    TimePoint t = at("2026-01-01T00:00:00Z");
    auto n1 = a->next_after(t);
    auto n2 = a->next_after(*n1);
    EXPECT_EQ(*n2 - *n1, 1h);
    EXPECT_EQ(*n1, a->jitter_offset() > 0s ? t + a->jitter_offset() : t + 1h);
  }
  EXPECT_GT(offsets.size(), 1u);  // names spread out
}

TEST(ScheduleTest, GapOnlyScheduleWithSkipNeverFiresAndTerminates) {
  // Second Sunday of March at 02:30 in New York is always inside the gap (since 2007), and
  // tzdata lists transitions up to 2037; past them the answer is 2038.
  Schedule s = cron_in("30 2 * 3 0#2", "America/New_York");
  s.with_dst(kSkipGap);
  auto next = s.next_after(at("2026-01-01T00:00:00Z"));
  ASSERT_TRUE(next.has_value());
  EXPECT_GE(*next, at("2038-01-01T00:00:00Z"));
}

TEST(Rfc3339Test, ParsesAndRejects) {
  EXPECT_EQ(at("2026-03-08T01:30:00-05:00"), at("2026-03-08T06:30:00Z"));
  EXPECT_EQ(at("2026-03-08 06:30:00.250Z") - at("2026-03-08T06:30:00Z"), 250ms);
  EXPECT_FALSE(parse_rfc3339("2026-03-08T01:30:00").is_ok());
  EXPECT_FALSE(parse_rfc3339("2026-02-30T01:30:00Z").is_ok());
  EXPECT_FALSE(parse_rfc3339("yesterday").is_ok());
  EXPECT_EQ(format_rfc3339(at("2026-07-01T12:00:00Z"), zone("Australia/Lord_Howe")),
            "2026-07-01T22:30:00+10:30");
  EXPECT_EQ(find_zone("Mars/Olympus").status().message(), "unknown time zone \"Mars/Olympus\"");
}

// --- Time range: exact to 9999, refused (never wrapped) past a TimePoint (issue #18). -------

date::sys_seconds secs(const std::string& rfc3339) {
  auto t = parse_rfc3339_seconds(rfc3339);
  EXPECT_TRUE(t.is_ok()) << t.status().to_string();
  return t.is_ok() ? *t : date::sys_seconds{};
}

// Up to `n` instants after `from` in whole seconds (what `schedd calendar` prints), in UTC.
std::vector<std::string> next_n_seconds(const Schedule& s, const std::string& from, int n) {
  std::vector<std::string> out;
  date::sys_seconds t = secs(from);
  for (int i = 0; i < n; ++i) {
    auto next = s.next_after_seconds(t);
    if (!next) break;
    EXPECT_GT(*next, t) << "not increasing after " << date::format("%FT%TZ", t);
    out.push_back(date::format("%FT%TZ", *next));
    t = *next;
  }
  return out;
}

TEST(TimeRangeTest, LeapDaysPast2262AreExact) {
  // `schedd calendar '0 0 29 2 *' --count 60 --tz UTC --from 2026-01-01T00:00:00Z` printed
  // 2260-02-29 and then 1679-08-10T00:25:26.
  auto got = next_n_seconds(cron_in("0 0 29 2 *", "UTC"), "2026-01-01T00:00:00Z", 60);
  ASSERT_EQ(got.size(), 60u);
  EXPECT_EQ(got.front(), "2028-02-29T00:00:00Z");
  EXPECT_EQ(got[56], "2260-02-29T00:00:00Z");
  EXPECT_EQ(got[57], "2264-02-29T00:00:00Z");
  EXPECT_EQ(got[59], "2272-02-29T00:00:00Z");
  // 2100 and 2200 are not leap years.
  EXPECT_EQ(std::count(got.begin(), got.end(), "2100-02-29T00:00:00Z"), 0);
  EXPECT_NE(std::find(got.begin(), got.end(), "2104-02-29T00:00:00Z"), got.end());
}

TEST(TimeRangeTest, FifthMondayOfFebruaryPast2262) {
  EXPECT_EQ(next_n_seconds(cron_in("0 0 * 2 1#5", "UTC"), "2200-01-01T00:00:00Z", 4),
            (std::vector<std::string>{"2208-02-29T00:00:00Z", "2236-02-29T00:00:00Z",
                                      "2264-02-29T00:00:00Z", "2292-02-29T00:00:00Z"}));
}

TEST(TimeRangeTest, NothingAfterYear9999) {
  // `--from 9999-12-31T00:00:00Z` answered 1816.
  EXPECT_TRUE(next_n_seconds(cron_in("0 0 29 2 *", "UTC"), "9999-12-31T00:00:00Z", 3).empty());
  // The last day in the schedule's zone too: Berlin's midnight of 10000-01-01 is not printed.
  EXPECT_EQ(next_n_seconds(cron_in("0 0 * * *", "Europe/Berlin"), "9999-12-30T12:00:00Z", 3),
            (std::vector<std::string>{"9999-12-30T23:00:00Z"}));
  EXPECT_EQ(next_n_seconds(cron_in("0 18 * * *", "America/New_York"), "9999-12-30T12:00:00Z", 3),
            (std::vector<std::string>{"9999-12-30T23:00:00Z", "9999-12-31T23:00:00Z"}));
  EXPECT_EQ(next_n_seconds(cron_in("59 23 31 12 *", "UTC"), "9990-01-01T00:00:00Z", 20).back(),
            "9999-12-31T23:59:00Z");
  auto daily = Schedule::daily("23:59:59", {}, zone("UTC"));
  ASSERT_TRUE(daily.is_ok());
  EXPECT_EQ(next_n_seconds(*daily, "9999-12-30T00:00:00Z", 3),
            (std::vector<std::string>{"9999-12-30T23:59:59Z", "9999-12-31T23:59:59Z"}));
  // Jitter does not push an instant past the end either.
  daily->with_jitter(1h, "seed-with-a-nonzero-offset");
  ASSERT_GT(daily->jitter_offset(), 0s);
  EXPECT_EQ(next_n_seconds(*daily, "9999-12-31T01:00:00Z", 3), (std::vector<std::string>{}));
  EXPECT_EQ(cron_in("* * * * *", "UTC").next_after_seconds(kLastScheduleInstant), std::nullopt);
}

TEST(TimeRangeTest, EveryHundredYearsIsExact) {
  // every = "36500d" wrapped too.
  auto s = Schedule::every(36500 * 24h);
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(next_n_seconds(*s, "2026-01-01T00:00:00Z", 3),
            (std::vector<std::string>{"2069-12-07T00:00:00Z", "2169-11-13T00:00:00Z",
                                      "2269-10-20T00:00:00Z"}));
  auto got = next_n_seconds(*s, "9800-01-01T00:00:00Z", 5);
  ASSERT_EQ(got.size(), 2u);  // the third is in 10064
  EXPECT_EQ(got[0].substr(0, 4), "9864");
  auto anchored = Schedule::every(24h, secs("9999-06-01T12:00:00Z"));
  ASSERT_TRUE(anchored.is_ok());
  EXPECT_EQ(next_n_seconds(*anchored, "2026-01-01T00:00:00Z", 1),
            (std::vector<std::string>{"2026-01-01T12:00:00Z"}));
}

TEST(TimeRangeTest, TimePointCallersGetNoneInsteadOfAWrap) {
  // The planner's next_after(TimePoint): the last representable fire, then none.
  const Schedule leap = cron_in("0 0 29 2 *", "UTC");
  auto last = leap.next_after(at("2259-01-01T00:00:00Z"));
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(format_rfc3339(*last, zone("UTC")), "2260-02-29T00:00:00+00:00");
  EXPECT_EQ(leap.next_after(*last), std::nullopt);
  auto every = Schedule::every(36500 * 24h);
  ASSERT_TRUE(every.is_ok());
  EXPECT_EQ(every->next_after(at("2169-11-13T00:00:00Z")), std::nullopt);
  const Schedule minutely = cron_in("* * * * *", "UTC");
  EXPECT_EQ(minutely.next_after(TimePoint::max()), std::nullopt);
  auto near_end = minutely.next_after(at("2262-04-11T23:46:00Z"));
  ASSERT_TRUE(near_end.has_value());
  EXPECT_EQ(format_rfc3339(*near_end, zone("UTC")), "2262-04-11T23:47:00+00:00");
  EXPECT_EQ(minutely.next_after(*near_end), std::nullopt);
  // From before the start of TimePoint's range too.
  auto first = minutely.next_after(TimePoint::min());
  ASSERT_TRUE(first.has_value());
  EXPECT_GT(*first, TimePoint::min());
}

TEST(TimeRangeTest, Rfc3339RefusesWhatATimePointCannotHold) {
  EXPECT_EQ(parse_rfc3339("9999-12-31T00:00:00Z").status().message(),
            "\"9999-12-31T00:00:00Z\" is too late: no instant after 2262-04-11T23:47:16Z can be "
            "represented");
  EXPECT_EQ(parse_rfc3339("1000-01-01T00:00:00Z").status().message(),
            "\"1000-01-01T00:00:00Z\" is too early: no instant before 1677-09-21T00:12:44Z can "
            "be represented");
  EXPECT_TRUE(parse_rfc3339("2262-04-11T23:47:16.854775807Z").is_ok());
  EXPECT_FALSE(parse_rfc3339("2262-04-11T23:47:16.854775808Z").is_ok());
  EXPECT_FALSE(parse_rfc3339("2262-04-11T23:47:17Z").is_ok());
  EXPECT_TRUE(parse_rfc3339("1677-09-21T00:12:44Z").is_ok());
  // The seconds form takes the whole calendar.
  EXPECT_EQ(date::format("%FT%TZ", secs("9999-12-31T23:59:59Z")), "9999-12-31T23:59:59Z");
  EXPECT_EQ(secs("0000-01-01T00:00:00+01:00"), date::sys_days(date::year(0) / 1 / 1) - 1h);
  EXPECT_EQ(format_rfc3339(secs("9999-12-31T23:59:59Z"), zone("America/New_York")),
            "9999-12-31T18:59:59-05:00");
}

}  // namespace
}  // namespace schedd
