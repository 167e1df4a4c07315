// Property test for cron schedules: random valid expressions over the whole grammar, in random
// zones, from random instants in 2000-2036. For each (expression, zone, start t):
//   1. next_after(t) is strictly later than t;
//   2. the result is a fire instant: its local time matches the expression under this test's
//      own matcher (Model below, built while generating the text, never from parse_cron), or
//      it is the first instant after a gap containing a matching local time (gap = "shift");
//      in an overlap, the occurrence is one the DST policy allows;
//   3. no fire instant lies strictly between t and the result. Up to 3 days: brute force, every
//      minute (every matching second of 6-field expressions). Longer: the first and last day
//      by brute force, every DST transition +-3 h by brute force, random spot checks, and in
//      zones without DST (UTC, Asia/Kolkata) an exact day-by-day check of the days between.
// Zones with DST are checked against the reference rule of docs/design.md §8: an instant fires when
// its local time matches and is unique or the policy keeps that occurrence, or when it ends a
// gap holding a matching local time and the policy shifts.
//
// The seed is printed with every failure; SCHEDD_PROPERTY_SEED=<n> replays or varies it.
#include <gtest/gtest.h>

#include <array>
#include <bitset>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "core/schedule/schedule.h"

namespace schedd {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

constexpr uint64_t kDefaultSeed = 20260308;
constexpr int kExpressions = 300;
constexpr int kStartsPerExpression = 5;

constexpr std::array<const char*, 7> kZones = {"UTC",
                                               "America/New_York",
                                               "Europe/Berlin",
                                               "Australia/Lord_Howe",
                                               "Pacific/Chatham",
                                               "America/Sao_Paulo",
                                               "Asia/Kolkata"};

constexpr std::array<const char*, 12> kMonthNames = {"jan", "feb", "mar", "apr", "may", "jun",
                                                     "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<const char*, 7> kDayNames = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

uint64_t seed_from_env() {
  if (const char* s = std::getenv("SCHEDD_PROPERTY_SEED"); s != nullptr && *s != '\0') {
    return std::strtoull(s, nullptr, 10);
  }
  return kDefaultSeed;
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : g_(seed) {}
  int between(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(g_); }
  int64_t between64(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(g_);
  }
  bool chance(double p) { return std::bernoulli_distribution(p)(g_); }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[static_cast<std::size_t>(between(0, static_cast<int>(v.size()) - 1))];
  }

 private:
  std::mt19937_64 g_;
};

// What an expression means, filled in by the generator as it writes the text.
struct Model {
  std::string text;
  bool six = false;
  std::bitset<60> sec, min;
  std::bitset<24> hour;
  std::bitset<13> month;  // 1-12
  std::bitset<32> dom;    // 1-31
  bool dom_last = false;
  bool dom_last_weekday = false;
  std::bitset<32> dom_nearest;              // nW
  std::bitset<7> dow;                       // 0 = Sunday
  std::bitset<7> dow_last;                  // wL
  std::array<std::bitset<6>, 7> dow_nth{};  // w#k
  bool dom_restricted = false;
  bool dow_restricted = false;
  bool fixed_time = false;

  static unsigned month_length(date::year_month ym) {
    for (unsigned d = 31; d >= 28; --d) {
      if ((ym / date::day(d)).ok()) return d;
    }
    return 28;
  }
  static bool is_weekday(date::year_month_day ymd) {
    unsigned wd = date::weekday(date::sys_days(ymd)).c_encoding();
    return wd >= 1 && wd <= 5;
  }

  bool day_matches(date::year_month_day ymd) const {
    if (!month[static_cast<unsigned>(ymd.month())]) return false;
    const date::year_month ym = ymd.year() / ymd.month();
    const unsigned d = static_cast<unsigned>(ymd.day());
    const unsigned len = month_length(ym);
    bool dom_ok = dom[d] || (dom_last && d == len);
    if (!dom_ok && dom_last_weekday) {
      unsigned lw = len;
      while (!is_weekday(ym / date::day(lw))) --lw;
      dom_ok = d == lw;
    }
    // nW: the weekday of this month closest to day n (n must exist in the month).
    for (unsigned n = 1; n <= len && !dom_ok; ++n) {
      if (!dom_nearest[n]) continue;
      unsigned best = 0;
      for (unsigned c = 1; c <= len; ++c) {
        if (!is_weekday(ym / date::day(c))) continue;
        unsigned dist = c > n ? c - n : n - c;
        unsigned best_dist = best > n ? best - n : n - best;
        if (best == 0 || dist < best_dist) best = c;
      }
      dom_ok = best == d;
    }
    const unsigned wd = date::weekday(date::sys_days(ymd)).c_encoding();
    bool dow_ok = dow[wd];
    // wL: no later day of the same weekday in this month.
    if (!dow_ok && dow_last[wd]) dow_ok = d + 7 > len;
    if (!dow_ok && dow_nth[wd].any()) {
      unsigned k = 0;  // how many days of this weekday up to and including d
      for (unsigned c = d; c >= 1 && c <= d; c -= 7) ++k;
      dow_ok = k <= 5 && dow_nth[wd][k];
    }
    if (dom_restricted && dow_restricted) return dom_ok || dow_ok;
    if (dom_restricted) return dom_ok;
    if (dow_restricted) return dow_ok;
    return true;
  }

  bool time_matches(long tod) const {
    return hour[static_cast<std::size_t>(tod / 3600)] &&
           min[static_cast<std::size_t>(tod / 60 % 60)] && sec[static_cast<std::size_t>(tod % 60)];
  }
};

// Per-day cache around Model::day_matches: scans ask about the same day thousands of times.
class Matcher {
 public:
  explicit Matcher(const Model& m) : m_(m) {}
  bool day(date::local_days d) {
    if (d != cached_day_) {
      cached_day_ = d;
      cached_ = m_.day_matches(date::year_month_day(d));
    }
    return cached_;
  }
  bool matches(date::local_seconds l) {
    auto d = std::chrono::floor<date::days>(l);
    return day(d) && m_.time_matches((l - d).count());
  }
  // Whether hour and minute match at minute-aligned `l` (any second of it could).
  bool minute_matches(date::local_seconds l) {
    auto d = std::chrono::floor<date::days>(l);
    long tod = (l - d).count();
    return day(d) && m_.hour[static_cast<std::size_t>(tod / 3600)] &&
           m_.min[static_cast<std::size_t>(tod / 60 % 60)];
  }

 private:
  const Model& m_;
  date::local_days cached_day_{date::days(-1000000)};
  bool cached_ = false;
};

// --- Generator.

enum class Field { kSec, kMin, kHour, kDom, kMonth, kDow };

struct Bounds {
  int lo, hi;
};
Bounds bounds(Field f) {
  switch (f) {
    case Field::kSec:
    case Field::kMin:
      return {0, 59};
    case Field::kHour:
      return {0, 23};
    case Field::kDom:
      return {1, 31};
    case Field::kMonth:
      return {1, 12};
    case Field::kDow:
      return {0, 7};
  }
  return {0, 0};
}

std::string random_case(Rng& rng, std::string s) {
  for (auto& c : s) {
    if (rng.chance(0.5)) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return s;
}

// A value as text: a number (sometimes zero-padded) or, for months and weekdays, a name with
// the same meaning.
std::string value_text(Rng& rng, Field f, int v) {
  if (f == Field::kMonth && rng.chance(0.4)) {
    return random_case(rng, kMonthNames[static_cast<std::size_t>(v - 1)]);
  }
  if (f == Field::kDow && v <= 6 && rng.chance(0.4)) {
    return random_case(rng, kDayNames[static_cast<std::size_t>(v)]);
  }
  std::string s = std::to_string(v);
  if (v < 10 && rng.chance(0.1)) s = "0" + s;
  return s;
}

// One list item of values/ranges/steps; calls add(v) for every value it covers.
template <typename Add>
std::string numeric_item(Rng& rng, Field f, Add add) {
  const Bounds b = bounds(f);
  const bool dow = f == Field::kDow;
  const int max_step = dow ? 9 : b.hi - b.lo + 1;
  switch (rng.between(0, 5)) {
    case 0:
    case 1: {  // a value; hours and minutes lean towards where DST transitions happen
      int v = rng.between(b.lo, b.hi);
      if (f == Field::kHour && rng.chance(0.5)) v = rng.pick(std::vector<int>{0, 1, 2, 3, 23});
      if (f == Field::kMin && rng.chance(0.3)) v = rng.pick(std::vector<int>{0, 15, 30, 45, 59});
      add(v);
      return value_text(rng, f, v);
    }
    case 2: {  // a range
      int a = rng.between(b.lo, b.hi);
      int z = rng.between(a, b.hi);
      for (int v = a; v <= z; ++v) add(v);
      return value_text(rng, f, a) + "-" + value_text(rng, f, z);
    }
    case 3: {  // */n over the whole field (0-6 for weekdays)
      int n = rng.chance(0.7) ? rng.between(1, std::min(max_step, 15)) : rng.between(1, max_step);
      for (int v = b.lo; v <= (dow ? 6 : b.hi); v += n) add(v);
      return "*/" + std::to_string(n);
    }
    case 4: {  // a-b/n
      int a = rng.between(b.lo, b.hi);
      int z = rng.between(a, b.hi);
      int n = rng.between(1, std::max(1, std::min(max_step, z - a + 2)));
      for (int v = a; v <= z; v += n) add(v);
      return value_text(rng, f, a) + "-" + value_text(rng, f, z) + "/" + std::to_string(n);
    }
    default: {  // a/n: from a to the end of the field (Saturday for weekdays; 7/n is Sunday)
      int a = rng.between(b.lo, b.hi);
      int end = dow ? std::max(a, 6) : b.hi;
      int n = rng.between(1, std::max(1, std::min(max_step, end - a + 2)));
      for (int v = a; v <= end; v += n) add(v);
      return value_text(rng, f, a) + "/" + std::to_string(n);
    }
  }
}

int item_count(Rng& rng) {
  int r = rng.between(0, 99);
  return r < 65 ? 1 : r < 90 ? 2 : 3;
}

template <std::size_t N>
std::string simple_field(Rng& rng, Field f, double star, std::bitset<N>& bits) {
  if (rng.chance(star)) {
    for (int v = bounds(f).lo; v <= bounds(f).hi; ++v) bits.set(static_cast<std::size_t>(v));
    return "*";
  }
  int n = item_count(rng);
  std::string out;
  for (int i = 0; i < n; ++i) {
    if (i) out += ",";
    std::string item = numeric_item(rng, f, [&](int v) { bits.set(static_cast<std::size_t>(v)); });
    out += item;
  }
  return out;
}

std::string dom_field(Rng& rng, Model& m) {
  if (rng.chance(0.6)) {
    m.dom.set();
    return "*";
  }
  m.dom_restricted = true;
  int n = item_count(rng);
  std::string out;
  for (int i = 0; i < n; ++i) {
    if (i) out += ",";
    int r = rng.between(0, 9);
    if (r == 0) {
      m.dom_last = true;
      out += random_case(rng, "l");
    } else if (r == 1) {
      m.dom_last_weekday = true;
      out += random_case(rng, "lw");
    } else if (r <= 3) {
      int d =
          rng.chance(0.4) ? rng.pick(std::vector<int>{1, 2, 28, 29, 30, 31}) : rng.between(1, 31);
      m.dom_nearest.set(static_cast<std::size_t>(d));
      out += value_text(rng, Field::kDom, d) + random_case(rng, "w");
    } else {
      out += numeric_item(rng, Field::kDom, [&](int v) { m.dom.set(static_cast<std::size_t>(v)); });
    }
  }
  return out;
}

std::string dow_field(Rng& rng, Model& m) {
  if (rng.chance(0.6)) {
    m.dow.set();
    return "*";
  }
  m.dow_restricted = true;
  int n = item_count(rng);
  std::string out;
  for (int i = 0; i < n; ++i) {
    if (i) out += ",";
    int r = rng.between(0, 9);
    if (r <= 1) {
      int w = rng.between(0, 7);
      m.dow_last.set(static_cast<std::size_t>(w % 7));
      out += value_text(rng, Field::kDow, w) + random_case(rng, "l");
    } else if (r <= 3) {
      int w = rng.between(0, 7);
      int k = rng.between(1, 5);
      m.dow_nth[static_cast<std::size_t>(w % 7)].set(static_cast<std::size_t>(k));
      out += value_text(rng, Field::kDow, w) + "#" + std::to_string(k);
    } else {
      out += numeric_item(rng, Field::kDow,
                          [&](int v) { m.dow.set(static_cast<std::size_t>(v % 7)); });
    }
  }
  return out;
}

Model macro_model(Rng& rng) {
  static const std::vector<std::pair<std::string, std::string>> kMacros = {
      {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"}};
  const auto& [name, expansion] = rng.pick(kMacros);
  Model m;
  m.text = (rng.chance(0.2) ? " " : "") + random_case(rng, name);
  m.sec.set(0);
  m.month.set();
  m.month.reset(0);
  if (name == "@hourly") {
    m.min.set(0);
    m.hour.set();
  } else {
    m.min.set(0);
    m.hour.set(0);
    m.fixed_time = true;
  }
  m.dom.set();
  m.dow.set();
  if (expansion == "0 0 1 1 *") {
    m.month.reset();
    m.month.set(1);
  }
  if (expansion == "0 0 1 1 *" || expansion == "0 0 1 * *") {
    m.dom.reset();
    m.dom.set(1);
    m.dom_restricted = true;
  }
  if (expansion == "0 0 * * 0") {
    m.dow.reset();
    m.dow.set(0);
    m.dow_restricted = true;
  }
  return m;
}

Model random_model(Rng& rng) {
  if (rng.chance(0.05)) return macro_model(rng);
  Model m;
  m.six = rng.chance(0.25);
  std::vector<std::string> fields;
  if (m.six) {
    fields.push_back(simple_field(rng, Field::kSec, 0.25, m.sec));
  } else {
    m.sec.set(0);
  }
  fields.push_back(simple_field(rng, Field::kMin, 0.2, m.min));
  fields.push_back(simple_field(rng, Field::kHour, 0.35, m.hour));
  fields.push_back(dom_field(rng, m));
  fields.push_back(simple_field(rng, Field::kMonth, 0.7, m.month));
  fields.push_back(dow_field(rng, m));
  // Fixed-time by the values matched, not the spelling (docs/design.md §8): `1,1` is one value.
  m.fixed_time = m.sec.count() == 1 && m.min.count() == 1 && m.hour.count() == 1;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i) m.text += rng.chance(0.1) ? (rng.chance(0.5) ? "\t" : "  ") : " ";
    m.text += fields[i];
  }
  return m;
}

// --- Reference fire rule (docs/design.md §8) and checks.

class Reference {
 public:
  Reference(const Model& m, const date::time_zone* tz, DstPolicy policy)
      : m_(m), match_(m), tz_(tz), policy_(policy) {}

  date::sys_info info(date::sys_seconds u) {
    if (!(u >= info_.begin && u < info_.end)) info_ = tz_->get_info(u);
    return info_;
  }
  date::local_seconds local(date::sys_seconds u) {
    return date::local_seconds(u.time_since_epoch() + info(u).offset);
  }

  // Fires because its own local time matches (and the overlap policy keeps it).
  bool fires_by_match(date::sys_seconds u) {
    date::local_seconds l = local(u);
    if (!match_.matches(l)) return false;
    date::local_info li = tz_->get_info(l);
    if (li.result == date::local_info::unique) return true;
    if (li.result != date::local_info::ambiguous) return false;  // cannot happen
    bool first = date::sys_seconds(l.time_since_epoch() - li.first.offset) == u;
    return first ? policy_.overlap != DstPolicy::Overlap::kLast
                 : policy_.overlap != DstPolicy::Overlap::kFirst;
  }

  // Fires because it ends a gap that holds a matching local time (gap = "shift").
  bool fires_by_shift(date::sys_seconds u) {
    if (policy_.gap != DstPolicy::Gap::kShift) return false;
    date::sys_info now = info(u);
    if (now.begin != u) return false;
    date::sys_info before = tz_->get_info(u - seconds(1));
    if (before.offset >= now.offset) return false;
    // The nonexistent local times: [u + before.offset, u + now.offset).
    date::local_seconds from(u.time_since_epoch() + before.offset);
    date::local_seconds to(u.time_since_epoch() + now.offset);
    for (auto l = from; l < to; l += seconds(60)) {
      if (!match_.minute_matches(l)) continue;
      for (int s = 0; s < 60; ++s) {
        if (m_.sec[static_cast<std::size_t>(s)] && l + seconds(s) < to) return true;
      }
    }
    return false;
  }

  bool fires(date::sys_seconds u) { return fires_by_match(u) || fires_by_shift(u); }

  // Every fire instant in (t, r) over the minute-aligned window [a, b), by brute force.
  // Returns the first one found.
  std::optional<date::sys_seconds> scan(TimePoint t, TimePoint r, date::sys_seconds a,
                                        date::sys_seconds b) {
    for (date::sys_seconds u0 = std::chrono::floor<minutes>(a); u0 < b; u0 += minutes(1)) {
      if (TimePoint(u0) > t && TimePoint(u0) < r && fires_by_shift(u0)) return u0;
      if (!match_.minute_matches(local(u0))) continue;
      for (int s = 0; s < 60; ++s) {
        if (!m_.sec[static_cast<std::size_t>(s)]) continue;
        date::sys_seconds u = u0 + seconds(s);
        if (TimePoint(u) > t && TimePoint(u) < r && fires_by_match(u)) return u;
      }
    }
    return std::nullopt;
  }

  bool day_matches(date::local_days d) { return match_.day(d); }

 private:
  const Model& m_;
  Matcher match_;
  const date::time_zone* tz_;
  DstPolicy policy_;
  date::sys_info info_{};
};

DstPolicy default_policy(bool fixed_time) {
  return fixed_time ? DstPolicy{DstPolicy::Gap::kShift, DstPolicy::Overlap::kFirst}
                    : DstPolicy{DstPolicy::Gap::kSkip, DstPolicy::Overlap::kBoth};
}

bool has_dst(const char* zone) {
  return std::string_view(zone) != "UTC" && std::string_view(zone) != "Asia/Kolkata";
}

const date::sys_seconds kRangeBegin = date::sys_days(date::year(2000) / 1 / 1);
const date::sys_seconds kRangeEnd = date::sys_days(date::year(2037) / 1 / 1);

TimePoint random_start(Rng& rng, const date::time_zone* tz, bool dst_zone) {
  int64_t lo = kRangeBegin.time_since_epoch().count();
  int64_t hi = kRangeEnd.time_since_epoch().count() - 1;
  date::sys_seconds u{seconds(rng.between64(lo, hi))};
  if (dst_zone && rng.chance(0.4)) {
    // Near a transition, where DST handling lives.
    date::sys_info i = tz->get_info(u);
    if (i.end < kRangeEnd) u = i.end + seconds(rng.between(-4 * 3600, 4 * 3600));
  }
  int r = rng.between(0, 9);
  if (r < 3) u = std::chrono::floor<minutes>(u);  // on a minute, often a fire instant
  if (r == 3) u = std::chrono::floor<hours>(u);
  TimePoint t(u);
  if (rng.chance(0.1)) t += std::chrono::milliseconds(rng.between(1, 999));
  return t;
}

TEST(CronPropertyTest, NextAfterIsTheFirstMatchingInstantAfterStart) {
  const uint64_t seed = seed_from_env();
  SCOPED_TRACE("SCHEDD_PROPERTY_SEED=" + std::to_string(seed));
  Rng rng(seed);
  int checked = 0, long_intervals = 0, never = 0;
  for (int e = 0; e < kExpressions; ++e) {
    Model m = random_model(rng);
    const char* zone_name =
        kZones[static_cast<std::size_t>(rng.between(0, static_cast<int>(kZones.size()) - 1))];
    const date::time_zone* tz = date::locate_zone(zone_name);
    const bool dst_zone = has_dst(zone_name);
    SCOPED_TRACE("expression #" + std::to_string(e) + " \"" + m.text + "\" in " + zone_name);

    auto made = Schedule::cron(m.text, tz);
    ASSERT_TRUE(made.is_ok()) << made.status().to_string();
    Schedule s = std::move(made).value();
    ASSERT_EQ(s.fixed_time(), m.fixed_time);
    DstPolicy policy = default_policy(m.fixed_time);
    ASSERT_EQ(s.dst(), policy);
    if (rng.chance(0.2)) {
      policy.gap = rng.chance(0.5) ? DstPolicy::Gap::kShift : DstPolicy::Gap::kSkip;
      policy.overlap = static_cast<DstPolicy::Overlap>(rng.between(0, 2));
      s.with_dst(policy);
    }
    SCOPED_TRACE(std::string("policy gap=") +
                 (policy.gap == DstPolicy::Gap::kShift ? "shift" : "skip") +
                 " overlap=" + std::to_string(static_cast<int>(policy.overlap)));
    Reference ref(m, tz, policy);

    std::optional<TimePoint> previous;
    for (int k = 0; k < kStartsPerExpression; ++k) {
      TimePoint t = previous && rng.chance(0.5) ? *previous : random_start(rng, tz, dst_zone);
      SCOPED_TRACE("from " + format_rfc3339(t, tz) + " (" +
                   format_rfc3339(t, date::locate_zone("UTC")) + ")");
      std::optional<TimePoint> next = s.next_after(t);
      ++checked;
      const date::sys_seconds ts = std::chrono::floor<seconds>(t);
      if (!next) {
        // Only an expression that matches no day at all (in 400 years) may give up.
        ++never;
        date::local_days d = std::chrono::floor<date::days>(ref.local(ts));
        for (int i = 0; i < 146097 + 366; ++i, d += date::days(1)) {
          ASSERT_FALSE(ref.day_matches(d))
              << "next_after gave up, but " << date::format("%F", d) << " matches";
        }
        previous.reset();
        continue;
      }
      const TimePoint r = *next;
      SCOPED_TRACE("next " + format_rfc3339(r, tz));
      // 1. Strictly later.
      ASSERT_GT(r, t);
      ASSERT_EQ(r, std::chrono::floor<seconds>(r)) << "whole seconds";
      const date::sys_seconds rs = std::chrono::floor<seconds>(r);
      // 2. A fire instant: local time matches (or it ends a gap holding one).
      ASSERT_TRUE(ref.fires(rs)) << "local time " << date::format("%F %T", ref.local(rs))
                                 << " does not match, and is no gap shift";
      if (!dst_zone) {
        ASSERT_TRUE(ref.fires_by_match(rs));
      }
      // 3. Nothing fires strictly between.
      const auto span = rs - ts;
      if (span <= date::days(3)) {
        auto hit = ref.scan(t, r, ts, rs + seconds(1));
        ASSERT_FALSE(hit) << "skipped " << format_rfc3339(TimePoint(*hit), tz);
      } else {
        ++long_intervals;
        auto first = ref.scan(t, r, ts, ts + date::days(1));
        ASSERT_FALSE(first) << "skipped " << format_rfc3339(TimePoint(*first), tz);
        auto last = ref.scan(t, r, rs - date::days(1), rs + seconds(1));
        ASSERT_FALSE(last) << "skipped " << format_rfc3339(TimePoint(*last), tz);
        if (dst_zone) {
          // Every transition in between (at most 40), +-3 h.
          int n = 0;
          for (date::sys_info i = tz->get_info(ts); i.end < rs && n < 40; ++n) {
            auto hit = ref.scan(t, r, i.end - hours(3), i.end + hours(3));
            ASSERT_FALSE(hit) << "skipped " << format_rfc3339(TimePoint(*hit), tz)
                              << " near a transition";
            i = tz->get_info(i.end);
          }
        } else {
          // Without DST every matching day between the first and last day fires.
          date::local_days d0 = std::chrono::floor<date::days>(ref.local(ts)) + date::days(1);
          date::local_days d1 = std::chrono::floor<date::days>(ref.local(rs));
          for (date::local_days d = d0; d < d1; d += date::days(1)) {
            ASSERT_FALSE(ref.day_matches(d)) << "skipped the whole day " << date::format("%F", d);
          }
        }
        for (int i = 0; i < 200; ++i) {
          date::sys_seconds u{seconds(
              rng.between64(ts.time_since_epoch().count() + 1, rs.time_since_epoch().count() - 1))};
          if (!m.six) u = std::chrono::floor<minutes>(u);
          if (TimePoint(u) <= t) continue;
          ASSERT_FALSE(ref.fires(u))
              << "skipped " << format_rfc3339(TimePoint(u), tz) << " (spot check)";
        }
      }
      previous = r;
    }
  }
  std::cout << "[ property ] seed " << seed << ": " << checked << " starts, " << long_intervals
            << " intervals over 3 days, " << never << " never-firing\n";
}

// Far future (issue #18): from 2040, where the zone database has no more transitions, to
// 9999-12-31, with starts clustered near the end of TimePoint (2262-04-11) and of the calendar.
// For each start t, eight successive next_after_seconds calls: each is strictly later, a fire
// instant, with no fire instant skipped in between, up to 9999-12-31T23:59:59Z and then none;
// and next_after(TimePoint) agrees wherever a TimePoint can hold the answer, else says none.
date::sys_seconds far_start(Rng& rng) {
  const date::sys_seconds lo = date::sys_days(date::year(2040) / 1 / 1);
  const int r = rng.between(0, 9);
  int64_t s = 0;
  if (r < 5) {
    s = rng.between64(lo.time_since_epoch().count(),
                      kLastScheduleInstant.time_since_epoch().count());
  } else if (r < 8) {
    s = kLastTimePoint.time_since_epoch().count() + rng.between64(-400 * 86400, 400 * 86400);
  } else {
    s = kLastScheduleInstant.time_since_epoch().count() - rng.between64(0, 800 * 86400);
  }
  date::sys_seconds t{seconds(s)};
  if (rng.chance(0.3)) t = std::chrono::floor<minutes>(t);
  return t;
}

TEST(CronPropertyTest, FarFutureIsExactIncreasingOrNone) {
  const uint64_t seed = seed_from_env();
  SCOPED_TRACE("SCHEDD_PROPERTY_SEED=" + std::to_string(seed));
  Rng rng(seed ^ 0x9999);
  int checked = 0, none = 0, past_timepoint = 0;
  for (int e = 0; e < 150; ++e) {
    Model m = random_model(rng);
    const char* zone_name =
        kZones[static_cast<std::size_t>(rng.between(0, static_cast<int>(kZones.size()) - 1))];
    const date::time_zone* tz = date::locate_zone(zone_name);
    SCOPED_TRACE("expression #" + std::to_string(e) + " \"" + m.text + "\" in " + zone_name);
    auto made = Schedule::cron(m.text, tz);
    ASSERT_TRUE(made.is_ok()) << made.status().to_string();
    const Schedule s = std::move(made).value();
    Reference ref(m, tz, s.dst());
    date::sys_seconds t = far_start(rng);
    for (int k = 0; k < 8; ++k, ++checked) {
      SCOPED_TRACE("from " + format_rfc3339(t, tz));
      const std::optional<date::sys_seconds> next = s.next_after_seconds(t);
      if (t <= kLastTimePoint) {
        const std::optional<TimePoint> tp = s.next_after(TimePoint(t));
        if (next && *next <= kLastTimePoint) {
          ASSERT_EQ(tp, std::optional<TimePoint>(TimePoint(*next)));
        } else {
          ASSERT_EQ(tp, std::nullopt) << "a TimePoint past 2262-04-11 wrapped";
        }
      }
      // Local days after t's, through the last (no DST from 2040: local = utc + one offset).
      const date::local_days first_day = std::chrono::floor<date::days>(ref.local(t));
      if (!next) {
        ++none;
        const date::local_days last_day =
            std::chrono::floor<date::days>(ref.local(kLastScheduleInstant));
        if (last_day - first_day <= date::days(800)) {
          // The last day only partly: instants past 9999-12-31T23:59:59Z are none too.
          for (date::local_days d = first_day + date::days(1); d < last_day; d += date::days(1)) {
            ASSERT_FALSE(ref.day_matches(d)) << "none, but " << date::format("%F", d) << " fires";
          }
        }
        break;
      }
      const date::sys_seconds r = *next;
      SCOPED_TRACE("next " + format_rfc3339(r, tz));
      ASSERT_GT(r, t);
      ASSERT_LE(r, kLastScheduleInstant);
      ASSERT_TRUE(ref.fires_by_match(r))
          << "local time " << date::format("%F %T", ref.local(r)) << " does not match";
      if (r > kLastTimePoint) ++past_timepoint;
      // Nothing fires strictly between: brute force over the first and last day (all of it
      // when short), whole days in between by the day rule.
      auto scan = [&](date::sys_seconds a,
                      date::sys_seconds b) -> std::optional<date::sys_seconds> {
        for (date::sys_seconds u0 = std::chrono::floor<minutes>(a); u0 < b; u0 += minutes(1)) {
          const date::local_seconds l = ref.local(u0);
          if (!ref.day_matches(std::chrono::floor<date::days>(l))) {
            // Skip to the last minute of this local day (one offset from 2040 on).
            u0 += std::chrono::floor<date::days>(l) + date::days(1) - minutes(1) - l;
            continue;
          }
          for (int sec = 0; sec < 60; ++sec) {
            if (!m.sec[static_cast<std::size_t>(sec)]) continue;
            const date::sys_seconds u = u0 + seconds(sec);
            if (u > t && u < r && ref.fires_by_match(u)) return u;
          }
        }
        return std::nullopt;
      };
      if (r - t <= date::days(2)) {
        auto hit = scan(t, r);
        ASSERT_FALSE(hit) << "skipped " << format_rfc3339(*hit, tz);
      } else {
        auto hit = scan(t, t + date::days(1));
        ASSERT_FALSE(hit) << "skipped " << format_rfc3339(*hit, tz);
        hit = scan(r - date::days(1), r);
        ASSERT_FALSE(hit) << "skipped " << format_rfc3339(*hit, tz);
        const date::local_days last_day = std::chrono::floor<date::days>(ref.local(r));
        for (date::local_days d = first_day + date::days(1); d < last_day; d += date::days(1)) {
          ASSERT_FALSE(ref.day_matches(d)) << "skipped the whole day " << date::format("%F", d);
        }
      }
      t = r;
    }
  }
  std::cout << "[ property ] far future, seed " << seed << ": " << checked << " calls, "
            << past_timepoint << " instants past 2262-04-11, " << none << " none\n";
}

// `every` from any anchor in 0000-9999, any period up to 36500d: the first anchor + k * period
// after t, exactly, or none when that is past 9999-12-31T23:59:59Z.
TEST(EveryPropertyTest, NextIsTheFirstPeriodAfterStartToYear9999) {
  const uint64_t seed = seed_from_env();
  SCOPED_TRACE("SCHEDD_PROPERTY_SEED=" + std::to_string(seed));
  Rng rng(seed ^ 0xe7e7);
  const int64_t year0 =
      date::sys_seconds(date::sys_days(date::year(0) / 1 / 1)).time_since_epoch().count();
  const int64_t last = kLastScheduleInstant.time_since_epoch().count();
  for (int i = 0; i < 2000; ++i) {
    const int64_t period = rng.chance(0.5) ? rng.between64(1, 86400)
                                           : rng.between64(1, 36500) * 86400 + rng.between(0, 1);
    const date::sys_seconds anchor{seconds(rng.between64(year0, last))};
    auto made = Schedule::every(std::chrono::milliseconds(period * 1000), anchor);
    ASSERT_TRUE(made.is_ok());
    const date::sys_seconds t{seconds(rng.chance(0.5) ? rng.between64(year0, last)
                                                      : last - rng.between64(0, 2 * period))};
    SCOPED_TRACE("every " + std::to_string(period) + "s from " + date::format("%FT%TZ", anchor) +
                 ", after " + date::format("%FT%TZ", t));
    const auto next = made->next_after_seconds(t);
    // The first anchor + k * period after t, by floor division.
    const int64_t since = (t - anchor).count();
    const int64_t k = (since >= 0 ? since / period : -((-since + period - 1) / period)) + 1;
    const date::sys_seconds expected = anchor + seconds(k * period);
    if (t >= kLastScheduleInstant || expected > kLastScheduleInstant) {
      ASSERT_EQ(next, std::nullopt);
      continue;
    }
    ASSERT_EQ(next, std::optional<date::sys_seconds>(expected));
    ASSERT_GT(*next, t);
    ASSERT_LE(*next - seconds(period), t);
    ASSERT_EQ((*next - anchor).count() % period, 0);
    ASSERT_LE(*next, kLastScheduleInstant);
    if (t >= kFirstTimePoint && t <= kLastTimePoint) {
      const auto tp = made->next_after(TimePoint(t));
      ASSERT_EQ(
          tp, *next <= kLastTimePoint ? std::optional<TimePoint>(TimePoint(*next)) : std::nullopt);
    }
  }
}

}  // namespace
}  // namespace schedd
