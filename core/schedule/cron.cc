#include "core/schedule/cron.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <vector>

namespace schedd {
namespace {

enum class Field { kSecond, kMinute, kHour, kDayOfMonth, kMonth, kDayOfWeek };

struct FieldInfo {
  const char* name;
  int lo;
  int hi;
};

FieldInfo info(Field f) {
  switch (f) {
    case Field::kSecond:
      return {"second", 0, 59};
    case Field::kMinute:
      return {"minute", 0, 59};
    case Field::kHour:
      return {"hour", 0, 23};
    case Field::kDayOfMonth:
      return {"day-of-month", 1, 31};
    case Field::kMonth:
      return {"month", 1, 12};
    case Field::kDayOfWeek:
      return {"day-of-week", 0, 7};
  }
  return {"?", 0, 0};
}

constexpr std::array<std::string_view, 12> kMonthNames = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<std::string_view, 7> kDayNames = {"SUN", "MON", "TUE", "WED",
                                                       "THU", "FRI", "SAT"};

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// One token of a field with its 1-based column in the whole expression.
struct Token {
  std::string_view text;
  std::size_t column;
};

class FieldParser {
 public:
  FieldParser(Field field, Token tok) : field_(field), info_(info(field)), tok_(tok) {}

  Status error(std::string_view what, std::size_t column) const {
    return invalid_argument(std::string(info_.name) + ": " + std::string(what) + " (column " +
                            std::to_string(column) + ")");
  }

  // Parses a number or (month, day-of-week) a name at `s`. Checks the range.
  StatusOr<int> value(std::string_view s, std::size_t column) const {
    if (s.empty()) return error("missing value", column);
    if (std::isdigit(static_cast<unsigned char>(s[0]))) {
      int v = 0;
      for (char c : s) {
        if (!std::isdigit(static_cast<unsigned char>(c))) {
          return error("invalid value \"" + std::string(s) + "\"", column);
        }
        v = v * 10 + (c - '0');
        if (v > 1000) break;
      }
      if (v < info_.lo || v > info_.hi) {
        return error(std::string(s) + " is out of range " + std::to_string(info_.lo) + "-" +
                         std::to_string(info_.hi),
                     column);
      }
      return v;
    }
    std::string u = upper(s);
    if (field_ == Field::kMonth) {
      for (std::size_t i = 0; i < kMonthNames.size(); ++i) {
        if (u == kMonthNames[i]) return static_cast<int>(i + 1);
      }
    } else if (field_ == Field::kDayOfWeek) {
      for (std::size_t i = 0; i < kDayNames.size(); ++i) {
        if (u == kDayNames[i]) return static_cast<int>(i);
      }
    }
    return error("invalid value \"" + std::string(s) + "\"", column);
  }

  // Parses the whole field into `bits` (bit i for value i), plus extensions into `expr`.
  Status parse(uint64_t& bits, CronExpr& expr) {
    std::string_view text = tok_.text;
    std::size_t pos = 0;
    while (pos <= text.size()) {
      std::size_t comma = text.find(',', pos);
      if (comma == std::string_view::npos) comma = text.size();
      std::string_view item = text.substr(pos, comma - pos);
      std::size_t col = tok_.column + pos;
      if (item.empty()) return error("empty list item", col);
      if (Status s = parse_item(item, col, bits, expr); !s.is_ok()) return s;
      pos = comma + 1;
    }
    return Status::ok();
  }

 private:
  Status parse_item(std::string_view item, std::size_t col, uint64_t& bits, CronExpr& expr) {
    std::string u = upper(item);
    if (field_ == Field::kDayOfMonth) {
      if (u == "L") {
        expr.dom_last = true;
        return Status::ok();
      }
      if (u == "LW") {
        expr.dom_last_weekday = true;
        return Status::ok();
      }
      if (u.size() >= 2 && u.back() == 'W') {
        auto v = value(item.substr(0, item.size() - 1), col);
        if (!v.is_ok()) return v.status();
        expr.dom_nearest_weekday |= 1u << *v;
        return Status::ok();
      }
    }
    if (field_ == Field::kDayOfWeek) {
      if (u == "L") return error("L needs a weekday before it (e.g. 5L or FRIL)", col);
      if (u.size() >= 2 && u.back() == 'L') {
        auto v = value(item.substr(0, item.size() - 1), col);
        if (!v.is_ok()) return v.status();
        expr.dow_last |= static_cast<uint8_t>(1u << (*v % 7));
        return Status::ok();
      }
      if (std::size_t hash = item.find('#'); hash != std::string_view::npos) {
        auto v = value(item.substr(0, hash), col);
        if (!v.is_ok()) return v.status();
        std::string_view k = item.substr(hash + 1);
        std::size_t kcol = col + hash + 1;
        if (k.size() != 1 || k[0] < '1' || k[0] > '5') {
          return error("#" + std::string(k) + " must be #1 to #5", kcol);
        }
        expr.dow_nth[*v % 7] |= static_cast<uint8_t>(1u << (k[0] - '0'));
        return Status::ok();
      }
    }

    int lo = info_.lo;
    int hi = info_.hi;
    int step = 1;
    std::string_view base = item;
    if (std::size_t slash = item.find('/'); slash != std::string_view::npos) {
      base = item.substr(0, slash);
      std::string_view st = item.substr(slash + 1);
      std::size_t scol = col + slash + 1;
      if (st.empty() || !std::all_of(st.begin(), st.end(), [](char c) {
            return std::isdigit(static_cast<unsigned char>(c));
          })) {
        return error("invalid step \"" + std::string(st) + "\"", scol);
      }
      step = st.size() > 4 ? 10000 : std::stoi(std::string(st));
      if (step == 0) return error("step 0 is not allowed", scol);
      if (step > info_.hi - info_.lo + 1 && field_ != Field::kDayOfWeek) {
        return error("step " + std::string(st) + " is larger than the range " +
                         std::to_string(info_.lo) + "-" + std::to_string(info_.hi),
                     scol);
      }
    }
    if (base == "*") {
      // whole range
      if (field_ == Field::kDayOfWeek) hi = 6;
    } else if (std::size_t dash = base.find('-'); dash != std::string_view::npos) {
      auto a = value(base.substr(0, dash), col);
      if (!a.is_ok()) return a.status();
      auto b = value(base.substr(dash + 1), col + dash + 1);
      if (!b.is_ok()) return b.status();
      lo = *a;
      hi = *b;
      if (lo > hi) {
        return error("range " + std::string(base) + " is backwards (start after end)", col);
      }
    } else {
      auto a = value(base, col);
      if (!a.is_ok()) return a.status();
      lo = *a;
      if (base.size() == item.size()) {
        hi = lo;  // a plain value
      } else if (field_ == Field::kDayOfWeek) {
        // `a/n`: from a to the end of the week; `7/n` starts at Sunday written as 7 and is
        // Sunday alone (with hi = 6 it used to match no day at all).
        hi = std::max(lo, 6);
      }
    }
    for (int v = lo; v <= hi; v += step) {
      int bit = field_ == Field::kDayOfWeek ? v % 7 : v;
      bits |= uint64_t{1} << bit;
    }
    return Status::ok();
  }

  Field field_;
  FieldInfo info_;
  Token tok_;
};

// Smallest set bit >= from, or -1.
int next_bit(uint64_t mask, int from) {
  if (from >= 64) return -1;
  uint64_t m = mask & (~uint64_t{0} << from);
  return m == 0 ? -1 : std::countr_zero(m);
}

unsigned last_day(date::year_month ym) { return static_cast<unsigned>((ym / date::last).day()); }

// The weekday nearest to day `n` of the month, never leaving the month; 0 when n > length.
unsigned nearest_weekday(date::year_month ym, unsigned n) {
  unsigned last = last_day(ym);
  if (n > last) return 0;
  date::weekday wd{date::sys_days(ym / date::day(n))};
  if (wd == date::Saturday) return n == 1 ? 3 : n - 1;
  if (wd == date::Sunday) return n == last ? n - 2 : n + 1;
  return n;
}

unsigned last_weekday(date::year_month ym) {
  unsigned last = last_day(ym);
  date::weekday wd{date::sys_days(ym / date::day(last))};
  if (wd == date::Saturday) return last - 1;
  if (wd == date::Sunday) return last - 2;
  return last;
}

// First (h, m, s) >= (h0, m0, s0) within one day, as seconds since midnight; -1 when none.
long first_time(const CronExpr& e, int h0, int m0, int s0) {
  for (int h = next_bit(e.hours, h0); h >= 0; h = next_bit(e.hours, h + 1)) {
    int mstart = h == h0 ? m0 : 0;
    for (int m = next_bit(e.minutes, mstart); m >= 0; m = next_bit(e.minutes, m + 1)) {
      int sstart = (h == h0 && m == m0) ? s0 : 0;
      int s = next_bit(e.seconds, sstart);
      if (s >= 0) return h * 3600L + m * 60L + s;
    }
  }
  return -1;
}

constexpr std::array<std::pair<std::string_view, std::string_view>, 7> kMacros = {{
    {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
    {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},
    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
}};

}  // namespace

bool CronExpr::day_matches(date::year_month_day ymd) const {
  if (!(months & (1u << static_cast<unsigned>(ymd.month())))) return false;
  if (!dom_restricted && !dow_restricted) return true;
  unsigned d = static_cast<unsigned>(ymd.day());
  date::year_month ym = ymd.year() / ymd.month();
  bool dom_ok = false;
  if (dom_restricted) {
    dom_ok = (dom & (1u << d)) != 0 || (dom_last && d == last_day(ym)) ||
             (dom_last_weekday && d == last_weekday(ym));
    for (uint32_t bits = dom_nearest_weekday; !dom_ok && bits != 0; bits &= bits - 1) {
      dom_ok = nearest_weekday(ym, static_cast<unsigned>(std::countr_zero(bits))) == d;
    }
  }
  bool dow_ok = false;
  if (dow_restricted) {
    unsigned wd = date::weekday{date::sys_days(ymd)}.c_encoding();
    dow_ok = (dow & (1u << wd)) != 0 || ((dow_last & (1u << wd)) && d + 7 > last_day(ym)) ||
             (dow_nth[wd] & (1u << ((d - 1) / 7 + 1))) != 0;
  }
  if (dom_restricted && dow_restricted) return dom_ok || dow_ok;
  return dom_restricted ? dom_ok : dow_ok;
}

std::optional<date::local_seconds> CronExpr::next_at_or_after(date::local_seconds from) const {
  using std::chrono::seconds;
  date::local_days day = std::chrono::floor<date::days>(from);
  long tod = (from - day).count();
  int h0 = static_cast<int>(tod / 3600), m0 = static_cast<int>(tod / 60 % 60),
      s0 = static_cast<int>(tod % 60);
  const date::local_days limit = day + date::days(146097);  // 400 Gregorian years
  while (day < limit) {
    date::year_month_day ymd{day};
    if (!(months & (1u << static_cast<unsigned>(ymd.month())))) {
      // Jump to the first day of the next month.
      date::year_month next = ymd.year() / ymd.month() + date::months(1);
      day = date::local_days(next / 1);
      h0 = m0 = s0 = 0;
      continue;
    }
    if (day_matches(ymd)) {
      long t = first_time(*this, h0, m0, s0);
      if (t >= 0) return day + seconds(t);
    }
    day += date::days(1);
    h0 = m0 = s0 = 0;
  }
  return std::nullopt;
}

bool CronExpr::can_fire() const {
  // Any 400-year cycle holds every combination of day, month and weekday that exists.
  date::year_month start = date::year(2000) / date::January;
  for (int i = 0; i < 4800; ++i) {
    date::year_month ym = start + date::months(i);
    if (!(months & (1u << static_cast<unsigned>(ym.month())))) continue;
    unsigned last = last_day(ym);
    for (unsigned d = 1; d <= last; ++d) {
      if (day_matches(ym / date::day(d))) return true;
    }
  }
  return false;
}

StatusOr<CronExpr> parse_cron(std::string_view text) {
  if (text.size() > kMaxCronBytes) {
    return invalid_argument("cron expression of " + std::to_string(text.size()) +
                            " bytes exceeds the limit of " + std::to_string(kMaxCronBytes) +
                            " bytes");
  }
  CronExpr e;
  e.text = std::string(text);
  std::string_view body = text;
  std::string expanded;
  // Trim.
  std::size_t first = body.find_first_not_of(" \t");
  if (first == std::string_view::npos) return invalid_argument("empty cron expression");
  if (body[first] == '@') {
    std::size_t end = body.find_last_not_of(" \t");
    std::string name = std::string(body.substr(first, end - first + 1));
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    bool found = false;
    for (const auto& [macro, expansion] : kMacros) {
      if (name == macro) {
        expanded = std::string(expansion);
        found = true;
      }
    }
    if (!found) {
      return invalid_argument("unknown macro \"" + name +
                              "\" (use @yearly, @annually, @monthly, @weekly, @daily, "
                              "@midnight or @hourly)");
    }
    body = expanded;
  }

  std::vector<Token> tokens;
  for (std::size_t i = 0; i < body.size();) {
    if (body[i] == ' ' || body[i] == '\t') {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < body.size() && body[j] != ' ' && body[j] != '\t') ++j;
    // Columns refer to the text as written; a macro's expansion has none of its own.
    tokens.push_back({body.substr(i, j - i), expanded.empty() ? i + 1 : first + 1});
    i = j;
  }
  if (tokens.size() != 5 && tokens.size() != 6) {
    return invalid_argument(
        "expected 5 fields (minute hour day-of-month month day-of-week) or 6 "
        "(with seconds first), got " +
        std::to_string(tokens.size()));
  }
  std::size_t k = 0;
  auto parse_field = [&](Field f, uint64_t& bits) -> Status {
    FieldParser p(f, tokens[k++]);
    return p.parse(bits, e);
  };
  uint64_t sec = 1, min = 0, hour = 0, dom = 0, mon = 0, dow = 0;
  if (tokens.size() == 6) {
    sec = 0;
    if (Status s = parse_field(Field::kSecond, sec); !s.is_ok()) return s;
  }
  if (Status s = parse_field(Field::kMinute, min); !s.is_ok()) return s;
  if (Status s = parse_field(Field::kHour, hour); !s.is_ok()) return s;
  e.dom_restricted = tokens[k].text != "*";
  if (Status s = parse_field(Field::kDayOfMonth, dom); !s.is_ok()) return s;
  if (Status s = parse_field(Field::kMonth, mon); !s.is_ok()) return s;
  e.dow_restricted = tokens[k].text != "*";
  if (Status s = parse_field(Field::kDayOfWeek, dow); !s.is_ok()) return s;
  e.seconds = sec;
  e.minutes = min;
  e.hours = static_cast<uint32_t>(hour);
  e.dom = static_cast<uint32_t>(dom);
  e.months = static_cast<uint32_t>(mon);
  e.dow = static_cast<uint8_t>(dow);
  // Fixed-time is decided by the values the fields match, not by how they are written: "30",
  // "30,30", "30-30" and "*/60" (seconds) all match one value.
  e.fixed_time = std::popcount(sec) == 1 && std::popcount(min) == 1 && std::popcount(hour) == 1;
  return e;
}

}  // namespace schedd
