#include "core/schedule/schedule.h"

#include <cctype>
#include <cstdio>

namespace schedd {
namespace {

using std::chrono::hours;
using std::chrono::seconds;

// How far a clock may fall back at once (see the header's assumption).
constexpr seconds kMaxFallBack = hours(3);

// Instants before this are searched from here: the calendar starts at year 0.
const date::sys_seconds kFirstScheduleSearch = date::sys_days(date::year(0) / 1 / 1);

DstPolicy default_policy(bool fixed_time) {
  DstPolicy p;
  if (fixed_time) {
    p.gap = DstPolicy::Gap::kShift;
    p.overlap = DstPolicy::Overlap::kFirst;
  } else {
    p.gap = DstPolicy::Gap::kSkip;
    p.overlap = DstPolicy::Overlap::kBoth;
  }
  return p;
}

// FNV-1a, 64 bit: stable across runs, machines and compilers (std::hash is not).
uint64_t stable_hash(std::string_view s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

bool parse_2digits(std::string_view s, std::size_t pos, int& out) {
  if (pos + 2 > s.size() || !std::isdigit(static_cast<unsigned char>(s[pos])) ||
      !std::isdigit(static_cast<unsigned char>(s[pos + 1]))) {
    return false;
  }
  out = (s[pos] - '0') * 10 + (s[pos + 1] - '0');
  return true;
}

}  // namespace

StatusOr<const date::time_zone*> find_zone(std::string_view name) {
  try {
    return date::locate_zone(name);
  } catch (const std::exception&) {
    return invalid_argument("unknown time zone \"" + std::string(name) + "\"");
  }
}

const date::time_zone* local_zone() {
  try {
    return date::current_zone();
  } catch (const std::exception&) {
    return date::locate_zone("UTC");
  }
}

StatusOr<Schedule> Schedule::cron(std::string_view expr, const date::time_zone* tz) {
  auto parsed = parse_cron(expr);
  if (!parsed.is_ok()) return parsed.status();
  Schedule s;
  s.kind_ = Kind::kCron;
  s.cron_ = std::move(parsed).value();
  s.tz_ = tz;
  s.dst_ = default_policy(s.cron_.fixed_time);
  return s;
}

StatusOr<Schedule> Schedule::daily(std::string_view time, const std::vector<std::string>& days,
                                   const date::time_zone* tz) {
  int h = 0, m = 0, sec = 0;
  bool ok = (time.size() == 5 || time.size() == 8) && parse_2digits(time, 0, h) && time[2] == ':' &&
            parse_2digits(time, 3, m);
  if (ok && time.size() == 8) ok = time[5] == ':' && parse_2digits(time, 6, sec);
  if (!ok) {
    return invalid_argument("time: \"" + std::string(time) + "\" is not HH:MM or HH:MM:SS");
  }
  if (h > 23 || m > 59 || sec > 59) {
    return invalid_argument("time: \"" + std::string(time) +
                            "\" is out of range (00:00:00 to 23:59:59)");
  }
  std::string dow = "*";
  if (!days.empty()) {
    static const char* const kNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    auto valid_name = [](std::string_view d) {
      if (d.size() != 3) return false;
      std::string lower(d);
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      for (const char* n : kNames) {
        if (lower == n) return true;
      }
      return false;
    };
    dow.clear();
    for (const auto& d : days) {
      std::string_view v = d;
      std::size_t dash = v.find('-');
      bool ok_day = dash == std::string_view::npos
                        ? valid_name(v)
                        : valid_name(v.substr(0, dash)) && valid_name(v.substr(dash + 1));
      if (!ok_day) {
        return invalid_argument("days: \"" + d + "\" is not a weekday (mon..sun) or a range " +
                                "of them (mon-fri)");
      }
      if (!dow.empty()) dow += ",";
      dow += d;
    }
  }
  std::string expr =
      std::to_string(sec) + " " + std::to_string(m) + " " + std::to_string(h) + " * * " + dow;
  auto parsed = parse_cron(expr);
  if (!parsed.is_ok()) return invalid_argument("days: " + parsed.status().message());
  Schedule s;
  s.kind_ = Kind::kDaily;
  s.cron_ = std::move(parsed).value();
  s.cron_.text = std::string(time);
  s.tz_ = tz;
  s.dst_ = default_policy(true);
  return s;
}

StatusOr<Schedule> Schedule::every(std::chrono::milliseconds period, TimePoint anchor) {
  return every(period, std::chrono::floor<seconds>(anchor));
}

StatusOr<Schedule> Schedule::every(std::chrono::milliseconds period, date::sys_seconds anchor) {
  if (period < seconds(1) || period.count() % 1000 != 0) {
    return invalid_argument("every: must be a whole number of seconds, at least 1s");
  }
  Schedule s;
  s.kind_ = Kind::kEvery;
  s.period_ = std::chrono::duration_cast<seconds>(period);
  s.anchor_ = anchor;
  return s;
}

Schedule& Schedule::with_dst(DstPolicy policy) {
  dst_ = policy;
  return *this;
}

Schedule& Schedule::with_jitter(std::chrono::milliseconds jitter, std::string_view seed) {
  auto whole = std::chrono::duration_cast<seconds>(jitter).count();
  jitter_offset_ =
      whole <= 0 ? seconds(0)
                 : seconds(static_cast<int64_t>(stable_hash(seed) % static_cast<uint64_t>(whole)));
  return *this;
}

// Computed in whole seconds, where years 0-9999 are far inside int64: the nanosecond
// TimePoint arithmetic this replaced wrapped past 2262-04-11 (issue #18).
std::optional<date::sys_seconds> Schedule::next_after_seconds(date::sys_seconds t) const {
  if (t >= kLastScheduleInstant) return std::nullopt;
  if (t < kFirstScheduleSearch) t = kFirstScheduleSearch - seconds(1);
  const date::sys_seconds base = t - jitter_offset_;
  std::optional<date::sys_seconds> next;
  if (kind_ == Kind::kEvery) {
    const int64_t since = (base - anchor_).count();
    const int64_t period = period_.count();
    next = anchor_ + seconds((floor_div(since, period) + 1) * period);
  } else {
    next = next_in_zone(base);
  }
  if (!next) return std::nullopt;
  *next += jitter_offset_;
  if (*next > kLastScheduleInstant) return std::nullopt;
  // In the schedule's zone too, so every instant prints as a four-digit year there.
  if (tz_ != nullptr && *next + tz_->get_info(*next).offset > kLastScheduleInstant) {
    return std::nullopt;
  }
  return next;
}

std::optional<TimePoint> Schedule::next_after(TimePoint t) const {
  // Fire instants are whole seconds, so the first one after t is the first after floor(t).
  auto next = next_after_seconds(std::chrono::floor<seconds>(t));
  if (!next || *next > kLastTimePoint) return std::nullopt;
  return TimePoint(*next);
}

// The zone's timeline is a sequence of segments [begin, end) of constant UTC offset; within
// one, local = utc + offset is monotone, so its first fire instant after `t` is one
// CronExpr::next_at_or_after call (plus a skip over occurrences the overlap policy drops).
// Segments are visited in order; every candidate of a segment precedes the next segment's, and
// a gap's shifted instant is the end of the segment before it. This is the rule of docs/design.md
// §8 evaluated per segment: a local time in the head of a segment that the previous one fell
// back from is a last occurrence, one in the tail of a segment the next one falls back into is
// a first occurrence, and a local time between two segments' ranges does not exist.
std::optional<date::sys_seconds> Schedule::next_in_zone(date::sys_seconds ts) const {
  using date::local_seconds;
  using date::sys_seconds;
  const sys_seconds lo = ts + seconds(1);  // the first whole second after t
  auto local_of = [](sys_seconds u, seconds offset) {
    return local_seconds(u.time_since_epoch() + offset);
  };

  date::sys_info seg = tz_->get_info(ts);
  // Neighbours; at either end of the zone's table get_info returns a non-adjacent segment.
  date::sys_info prev = tz_->get_info(seg.begin - seconds(1));
  date::sys_info next = tz_->get_info(seg.end);
  bool has_prev = prev.end == seg.begin;
  bool has_next = next.begin == seg.end;

  // Matching local times later than this are not searched (a 400-year cycle past the earliest
  // local time that can map to an instant after t).
  const bool t_near = (has_prev && ts - seg.begin < kMaxFallBack && prev.offset > seg.offset) ||
                      (has_next && seg.end - ts < kMaxFallBack && next.offset < seg.offset);
  const local_seconds give_up =
      local_of(ts, seg.offset) - (t_near ? kMaxFallBack : seconds(0)) + date::days(146097 + 366);

  for (;;) {
    const local_seconds seg_local_end = local_of(seg.end, seg.offset);
    // [seg local begin, repeat_end): also local times of prev, whose occurrences come first.
    const bool head_repeats = has_prev && prev.offset > seg.offset;
    const local_seconds repeat_end = local_of(seg.begin, prev.offset);
    // [repeated_from, seg_local_end): local times that occur again in next.
    const bool tail_repeats = has_next && next.offset < seg.offset;
    const local_seconds repeated_from = local_of(seg.end, next.offset);

    local_seconds q = local_of(std::max(lo, seg.begin), seg.offset);
    while (q < seg_local_end) {
      auto l = cron_.next_at_or_after(q);
      if (!l) return std::nullopt;  // no match in a whole 400-year cycle: never
      if (*l >= seg_local_end || *l > give_up) break;
      if (head_repeats && *l < repeat_end && dst_.overlap == DstPolicy::Overlap::kFirst) {
        q = repeat_end;  // a last occurrence: skip the rest of the repeated range
        continue;
      }
      if (tail_repeats && *l >= repeated_from && dst_.overlap == DstPolicy::Overlap::kLast) {
        break;  // a first occurrence, and so is every later local time of this segment
      }
      return sys_seconds(l->time_since_epoch() - seg.offset);
    }
    if (!has_next) return std::nullopt;
    if (next.offset > seg.offset && dst_.gap == DstPolicy::Gap::kShift) {
      // Local times in [seg_local_end, gap_end) do not exist; a match there fires at seg.end.
      auto l = cron_.next_at_or_after(seg_local_end);
      if (!l) return std::nullopt;
      if (*l < local_of(seg.end, next.offset) && *l <= give_up) return seg.end;
    }
    prev = seg;
    seg = next;
    has_prev = true;
    next = tz_->get_info(seg.end);
    has_next = next.begin == seg.end;
  }
}

std::string format_rfc3339(TimePoint t, const date::time_zone* tz) {
  return format_rfc3339(std::chrono::floor<seconds>(t), tz);
}

std::string format_rfc3339(date::sys_seconds s, const date::time_zone* tz) {
  date::sys_info info = tz->get_info(s);
  date::local_seconds local{s.time_since_epoch() + info.offset};
  std::string out = date::format("%FT%T", local);
  auto off = info.offset.count();
  char sign = off < 0 ? '-' : '+';
  if (off < 0) off = -off;
  char buf[8];
  std::snprintf(buf, sizeof buf, "%c%02d:%02d", sign, static_cast<int>(off / 3600),
                static_cast<int>(off / 60 % 60));
  return out + buf;
}

namespace {

// An RFC 3339 instant as whole seconds (any year 0000-9999) plus nanoseconds of fraction.
struct Rfc3339 {
  date::sys_seconds whole;
  int64_t frac_ns = 0;
};

StatusOr<Rfc3339> parse_rfc3339_parts(std::string_view s) {
  auto bad = [&] {
    return invalid_argument("\"" + std::string(s) +
                            "\" is not an RFC 3339 time (like 2026-03-08T01:30:00Z or "
                            "2026-03-08T01:30:00-05:00)");
  };
  int y1 = 0, y2 = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!(parse_2digits(s, 0, y1) && parse_2digits(s, 2, y2) && s.size() > 19 && s[4] == '-' &&
        parse_2digits(s, 5, mo) && s[7] == '-' && parse_2digits(s, 8, d) &&
        (s[10] == 'T' || s[10] == 't' || s[10] == ' ') && parse_2digits(s, 11, h) && s[13] == ':' &&
        parse_2digits(s, 14, mi) && s[16] == ':' && parse_2digits(s, 17, sec))) {
    return bad();
  }
  std::size_t pos = 19;
  int64_t frac_ns = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
      if (digits < 9) {
        frac_ns = frac_ns * 10 + (s[pos] - '0');
        ++digits;
      }
      ++pos;
    }
    if (digits == 0) return bad();
    for (; digits < 9; ++digits) frac_ns *= 10;
  }
  int offset_s = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh = 0, om = 0;
    if (!(parse_2digits(s, pos + 1, oh) && pos + 3 < s.size() && s[pos + 3] == ':' &&
          parse_2digits(s, pos + 4, om)) ||
        oh > 23 || om > 59) {
      return bad();
    }
    offset_s = (oh * 3600 + om * 60) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return bad();
  }
  if (pos != s.size()) return bad();
  date::year_month_day ymd{date::year(y1 * 100 + y2), date::month(static_cast<unsigned>(mo)),
                           date::day(static_cast<unsigned>(d))};
  if (!ymd.ok() || h > 23 || mi > 59 || sec > 60) return bad();
  return Rfc3339{
      date::sys_days(ymd) + hours(h) + std::chrono::minutes(mi) + seconds(sec) - seconds(offset_s),
      frac_ns};
}

std::string utc_text(date::sys_seconds t) { return date::format("%FT%TZ", t); }

}  // namespace

StatusOr<date::sys_seconds> parse_rfc3339_seconds(std::string_view s) {
  auto parts = parse_rfc3339_parts(s);
  if (!parts.is_ok()) return parts.status();
  return parts->whole;
}

StatusOr<TimePoint> parse_rfc3339(std::string_view s) {
  auto parts = parse_rfc3339_parts(s);
  if (!parts.is_ok()) return parts.status();
  const auto max_frac = (TimePoint::max() - TimePoint(kLastTimePoint)).count();
  if (parts->whole > kLastTimePoint ||
      (parts->whole == kLastTimePoint && parts->frac_ns > max_frac)) {
    return invalid_argument("\"" + std::string(s) + "\" is too late: no instant after " +
                            utc_text(kLastTimePoint) + " can be represented");
  }
  if (parts->whole < kFirstTimePoint) {
    return invalid_argument("\"" + std::string(s) + "\" is too early: no instant before " +
                            utc_text(kFirstTimePoint) + " can be represented");
  }
  return TimePoint(parts->whole) +
         std::chrono::duration_cast<TimePoint::duration>(std::chrono::nanoseconds(parts->frac_ns));
}

}  // namespace schedd
