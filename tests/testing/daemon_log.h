// Reads the log a `schedd run` wrote to stderr, in either format (core/daemon/logging.cc):
//   text  2026-12-06T19:22:05.072+00:00 info  exec good@1796584925 [good] queued -> running ...
//   json  {"time":"2026-12-06T19:22:05.072+00:00","level":"info","msg":"exec good@..."}
// into timed lines, so that tests can measure the gaps between transitions. Pure functions.
#pragma once

#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace schedd::testing {

struct DaemonLogLine {
  int64_t unix_ms = 0;
  std::string msg;
};

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
inline int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// "2026-12-06T19:22:05.072+00:00" (or "+0000", or "Z") as milliseconds since the epoch.
inline std::optional<int64_t> parse_log_time(const std::string& t) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, ms = 0, used = 0;
  if (std::sscanf(t.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3d%n", &y, &mo, &d, &h, &mi, &s, &ms,
                  &used) != 7) {
    return std::nullopt;
  }
  int64_t offset_min = 0;
  std::string zone = t.substr(static_cast<std::size_t>(used));
  if (!zone.empty() && zone[0] != 'Z') {
    int oh = 0, om = 0;
    if (std::sscanf(zone.c_str() + 1, "%2d:%2d", &oh, &om) != 2 &&
        std::sscanf(zone.c_str() + 1, "%2d%2d", &oh, &om) != 2) {
      return std::nullopt;
    }
    offset_min = (zone[0] == '-' ? -1 : 1) * (oh * 60 + om);
  }
  int64_t days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  int64_t secs = days * 86400 + h * 3600 + mi * 60 + s - offset_min * 60;
  return secs * 1000 + ms;
}

// The lines of a log. `bad` gets each line that is not in the expected format (in JSON: not a
// JSON object with time, level and msg).
inline std::vector<DaemonLogLine> parse_daemon_log(const std::string& text, bool json,
                                                   std::vector<std::string>* bad = nullptr) {
  std::vector<DaemonLogLine> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    DaemonLogLine l;
    std::optional<int64_t> t;
    if (json) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.is_object() && j.contains("time") && j["time"].is_string() &&
          j.contains("level") && j.contains("msg") && j["msg"].is_string()) {
        t = parse_log_time(j["time"].get<std::string>());
        l.msg = j["msg"].get<std::string>();
      }
    } else {
      auto space = line.find(' ');
      if (space != std::string::npos) {
        t = parse_log_time(line.substr(0, space));
        auto msg = line.find_first_not_of(' ', line.find(' ', space + 1));
        if (msg != std::string::npos) l.msg = line.substr(msg);
      }
    }
    if (!t) {
      if (bad != nullptr) bad->push_back(line);
      continue;
    }
    l.unix_ms = *t;
    out.push_back(std::move(l));
  }
  return out;
}

}  // namespace schedd::testing
