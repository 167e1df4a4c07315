#include "core/common/duration.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace schedd {
namespace {

using namespace std::chrono_literals;

std::chrono::milliseconds ok(std::string_view text) {
  auto d = parse_duration(text);
  EXPECT_TRUE(d.is_ok()) << text << ": " << d.status().to_string();
  return d.is_ok() ? *d : std::chrono::milliseconds(-1);
}

std::string err(std::string_view text) {
  auto d = parse_duration(text);
  EXPECT_FALSE(d.is_ok()) << text << " parsed as " << (d.is_ok() ? d->count() : 0) << "ms";
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
  return d.status().message();
}

TEST(DurationTest, ParsesEachUnit) {
  EXPECT_EQ(ok("500ms"), 500ms);
  EXPECT_EQ(ok("90s"), 90s);
  EXPECT_EQ(ok("30m"), 30min);
  EXPECT_EQ(ok("2h"), 2h);
  EXPECT_EQ(ok("1d"), 24h);
  EXPECT_EQ(ok("0s"), 0ms);
  EXPECT_EQ(ok("0ms"), 0ms);
}

TEST(DurationTest, ParsesSums) {
  EXPECT_EQ(ok("1h30m"), 90min);
  EXPECT_EQ(ok("1d2h3m4s5ms"), 24h + 2h + 3min + 4s + 5ms);
  EXPECT_EQ(ok("1m1m"), 2min);
  EXPECT_EQ(ok("1s500ms"), 1500ms);
  EXPECT_EQ(ok("0010s"), 10s);
}

TEST(DurationTest, RejectsEmpty) {
  EXPECT_EQ(err(""), "empty duration (write e.g. \"90s\" or \"1h30m\")");
}

TEST(DurationTest, RejectsNegative) {
  EXPECT_EQ(err("-5s"), "\"-5s\": a duration cannot be negative");
  EXPECT_EQ(err("+5s"), "\"+5s\": write the duration without a sign");
}

TEST(DurationTest, RejectsUnknownUnit) {
  EXPECT_EQ(err("10x"), "\"10x\": unknown unit \"x\" (use ms, s, m, h or d)");
  EXPECT_EQ(err("1H"), "\"1H\": unknown unit \"H\" (use ms, s, m, h or d)");
  EXPECT_EQ(err("3min"), "\"3min\": unknown unit \"min\" (use ms, s, m, h or d)");
  EXPECT_EQ(err("1us"), "\"1us\": unknown unit \"us\" (use ms, s, m, h or d)");
}

TEST(DurationTest, RejectsMissingUnitAndNonNumbers) {
  EXPECT_EQ(err("10"), "\"10\": missing unit after 10 (use ms, s, m, h or d)");
  EXPECT_EQ(err("1h30"), "\"1h30\": missing unit after 1h30 (use ms, s, m, h or d)");
  EXPECT_EQ(err("h"), "\"h\": expected a number followed by a unit (ms, s, m, h or d)");
  EXPECT_EQ(err("1h 30m"), "\"1h 30m\": write the duration without spaces, e.g. \"1h30m\"");
  EXPECT_EQ(err(" 1h"), "\" 1h\": write the duration without spaces, e.g. \"1h30m\"");
  EXPECT_EQ(err("1h_"), "\"1h_\": expected a number followed by a unit (ms, s, m, h or d)");
}

TEST(DurationTest, RejectsFractions) {
  EXPECT_EQ(err("1.5h"),
            "\"1.5h\": use whole numbers of a smaller unit, e.g. \"1m30s\" instead of \"1.5m\"");
}

TEST(DurationTest, RejectsOverflow) {
  EXPECT_EQ(err("99999999999999999999999s"),
            "\"99999999999999999999999s\": too large (at most 36500d)");
  EXPECT_EQ(err("9223372036854775807d"), "\"9223372036854775807d\": too large (at most 36500d)");
  EXPECT_EQ(err("36500d1ms"), "\"36500d1ms\": too large (at most 36500d)");
  EXPECT_EQ(ok("36500d"), std::chrono::hours(24) * 36500);
}

TEST(DurationTest, FormatsCanonically) {
  EXPECT_EQ(format_duration(0ms), "0s");
  EXPECT_EQ(format_duration(500ms), "500ms");
  EXPECT_EQ(format_duration(90s), "1m30s");
  EXPECT_EQ(format_duration(90min), "1h30m");
  EXPECT_EQ(format_duration(24h), "1d");
  EXPECT_EQ(format_duration(24h + 1ms), "1d1ms");
  EXPECT_EQ(format_duration(-1500ms), "-1s500ms");
  EXPECT_EQ(format_duration(std::chrono::milliseconds::min()).front(), '-');
}

TEST(DurationTest, FormatIsTheInverseOfParse) {
  for (auto d : {0ms, 1ms, 999ms, 1000ms, 61001ms, std::chrono::milliseconds(90061001),
                 std::chrono::milliseconds(int64_t{36500} * 86400000)}) {
    EXPECT_EQ(ok(format_duration(d)), d) << format_duration(d);
  }
  for (std::string_view text : {"1h30m", "500ms", "2d3h", "59m59s999ms"}) {
    EXPECT_EQ(format_duration(ok(text)), text);
  }
}

}  // namespace
}  // namespace schedd
