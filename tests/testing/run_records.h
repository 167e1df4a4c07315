// The records of the fx_record fixture plugin (tests/fixtures/plugins/fx_record.cc), as the
// crash and cluster tests read them: one start line and one end line per run, with
// CLOCK_MONOTONIC times, which every process on the machine shares, so runs of several
// daemons can be compared. A run whose daemon was SIGKILLed has no end line; the tests end
// it at the kill.
#pragma once

#include <gtest/gtest.h>
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace schedd::testing {

inline int64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

struct RecordedRun {
  std::string id;
  std::string key;
  uint32_t attempt = 0;
  int64_t start = 0;
  std::optional<int64_t> end;
  std::string how;  // "done", "stopped", or "" (killed)
};

// Parses the record file into runs in start order, pairing each end with its start (id and
// attempt). An end without a start is a test failure.
inline std::vector<RecordedRun> read_runs(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::vector<RecordedRun> runs;
  std::map<std::pair<std::string, uint32_t>, std::size_t> open;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    char kind = 0;
    RecordedRun r;
    int64_t mono = 0;
    int64_t wall = 0;
    ls >> kind >> r.id >> r.key >> r.attempt >> mono >> wall;
    if (kind == 'S') {
      r.start = mono;
      open[{r.id, r.attempt}] = runs.size();
      runs.push_back(r);
    } else if (kind == 'E') {
      auto it = open.find({r.id, r.attempt});
      if (it == open.end()) {
        ADD_FAILURE() << "end record without a start: " << line;
        continue;
      }
      runs[it->second].end = mono;
      ls >> runs[it->second].how;
      open.erase(it);
    }
  }
  return runs;
}

// A run without an end record was killed: it ends at the first kill after its start.
// `kills` is sorted. A run with no end and no kill after its start is a test failure.
inline void end_killed_runs(std::vector<RecordedRun>& runs, const std::vector<int64_t>& kills) {
  for (auto& r : runs) {
    if (r.end) continue;
    auto k = std::upper_bound(kills.begin(), kills.end(), r.start);
    if (k == kills.end()) {
      ADD_FAILURE() << "run " << r.id << " attempt " << r.attempt
                    << " has no end and no kill after its start";
      r.end = r.start;
      continue;
    }
    r.end = *k;
  }
}

// How many times a run started while another run of its key had not ended; the first five
// are reported as test failures. Every run must have an end (end_killed_runs).
inline std::size_t count_key_overlaps(const std::vector<RecordedRun>& runs) {
  std::map<std::string, std::vector<const RecordedRun*>> by_key;
  for (const auto& r : runs) by_key[r.key].push_back(&r);
  std::size_t overlaps = 0;
  for (auto& [key, list] : by_key) {
    std::sort(list.begin(), list.end(),
              [](const RecordedRun* a, const RecordedRun* b) { return a->start < b->start; });
    int64_t busy_until = 0;
    const RecordedRun* holder = nullptr;
    for (const RecordedRun* r : list) {
      if (holder != nullptr && r->start < busy_until) {
        if (++overlaps <= 5) {
          ADD_FAILURE() << "key " << key << ": " << r->id << " (attempt " << r->attempt
                        << ") started while " << holder->id << " (attempt " << holder->attempt
                        << ") ran";
        }
      }
      if (r->end.value_or(r->start) > busy_until) {
        busy_until = r->end.value_or(r->start);
        holder = r;
      }
    }
  }
  return overlaps;
}

}  // namespace schedd::testing
