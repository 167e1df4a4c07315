// Parsing and printing of durations as written in config and API input: "500ms", "90s",
// "30m", "2h", "1d", and sums such as "1h30m". Pure functions; thread-safe.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "core/common/status.h"

namespace schedd {

// Parses a non-negative duration. Units: ms, s, m, h, d; whole numbers only; at most "36500d"
// (100 years), so that adding it to a nanosecond time point cannot overflow. Errors name the
// offending text: `"10x": unknown unit "x" (use ms, s, m, h or d)`.
StatusOr<std::chrono::milliseconds> parse_duration(std::string_view text);

// The shortest text that parse_duration reads back to `d`: "1h30m", "500ms", "0s".
std::string format_duration(std::chrono::milliseconds d);

}  // namespace schedd
