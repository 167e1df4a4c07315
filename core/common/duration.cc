#include "core/common/duration.h"

#include <array>
#include <cstdint>
#include <limits>
#include <string>

namespace schedd {
namespace {

struct Unit {
  std::string_view name;
  int64_t ms;
};

// Largest first: format_duration walks them in this order. The parser compares whole runs of
// letters, so "ms" never reads as "m" followed by garbage.
constexpr std::array<Unit, 5> kUnits = {{
    {"d", 24 * 60 * 60 * 1000},
    {"h", 60 * 60 * 1000},
    {"m", 60 * 1000},
    {"s", 1000},
    {"ms", 1},
}};

// The longest duration accepted: 100 years of days. Anything larger is surely a typo, and
// callers add durations to nanosecond time points, which overflow at about 292 years.
constexpr int64_t kMaxMs = int64_t{36500} * 24 * 60 * 60 * 1000;

std::string quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

}  // namespace

StatusOr<std::chrono::milliseconds> parse_duration(std::string_view text) {
  if (text.empty()) {
    return invalid_argument("empty duration (write e.g. \"90s\" or \"1h30m\")");
  }
  const std::string q = quoted(text);
  if (text.front() == '-') return invalid_argument(q + ": a duration cannot be negative");
  if (text.front() == '+') return invalid_argument(q + ": write the duration without a sign");

  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (!is_digit(text[i])) {
      if (text[i] == ' ' || text[i] == '\t') {
        return invalid_argument(q + ": write the duration without spaces, e.g. \"1h30m\"");
      }
      return invalid_argument(q + ": expected a number followed by a unit (ms, s, m, h or d)");
    }
    // The number: digits only, saturating at "too large".
    int64_t value = 0;
    bool too_large = false;
    for (; i < text.size() && is_digit(text[i]); ++i) {
      const int digit = text[i] - '0';
      if (value > (std::numeric_limits<int64_t>::max() - digit) / 10) {
        too_large = true;
      } else {
        value = value * 10 + digit;
      }
    }
    if (i < text.size() && (text[i] == '.' || text[i] == ',')) {
      return invalid_argument(q +
                              ": use whole numbers of a smaller unit, e.g. \"1m30s\" "
                              "instead of \"1.5m\"");
    }
    // The unit: the run of letters that follows.
    const size_t unit_begin = i;
    while (i < text.size() && is_alpha(text[i])) ++i;
    const std::string_view unit = text.substr(unit_begin, i - unit_begin);
    if (unit.empty()) {
      return invalid_argument(q + ": missing unit after " + std::string(text.substr(0, i)) +
                              " (use ms, s, m, h or d)");
    }
    int64_t factor = 0;
    for (const Unit& u : kUnits) {
      if (u.name == unit) factor = u.ms;
    }
    if (factor == 0) {
      return invalid_argument(q + ": unknown unit " + quoted(unit) + " (use ms, s, m, h or d)");
    }
    if (too_large || value > (kMaxMs - total) / factor) {
      return invalid_argument(q + ": too large (at most 36500d)");
    }
    total += value * factor;
  }
  return std::chrono::milliseconds(total);
}

std::string format_duration(std::chrono::milliseconds d) {
  int64_t count = d.count();
  if (count == 0) return "0s";
  std::string out;
  // Negative durations never come out of parse_duration; print them readably anyway. The
  // magnitude is computed unsigned so that the most negative value does not overflow.
  uint64_t rest = static_cast<uint64_t>(count);
  if (count < 0) {
    out = "-";
    rest = ~rest + 1;
  }
  for (const Unit& u : kUnits) {
    const uint64_t n = rest / static_cast<uint64_t>(u.ms);
    if (n == 0) continue;
    out += std::to_string(n);
    out += u.name;
    rest -= n * static_cast<uint64_t>(u.ms);
  }
  return out;
}

}  // namespace schedd
