// LogRateWindow: the per-run limit on plugin log lines, kept by the daemon for in-process runs
// (core/dispatch) and by schedd-runner for its own (core/runner): at most `per_second` lines in
// each one-second window of real time; the rest are counted, to be reported as one line. Not
// thread-safe: its owner holds a lock.
#pragma once

#include <chrono>
#include <cstdint>
#include <utility>

namespace schedd {

class LogRateWindow {
 public:
  using Instant = std::chrono::steady_clock::time_point;

  // per_second <= 0: no limit.
  explicit LogRateWindow(int per_second) : per_second_(per_second) {}

  // Counts a line at `now`: true when it may pass, false when it is over the limit (then it
  // counts as dropped). A call that opens a new window puts the lines dropped in the window
  // it closes into `*closed_drops` (when given) and forgets them.
  bool admit(Instant now, uint64_t* closed_drops = nullptr) {
    if (now - window_start_ >= std::chrono::seconds(1)) {
      window_start_ = now;
      in_window_ = 0;
      if (closed_drops != nullptr) *closed_drops = take_dropped();
    }
    if (per_second_ > 0 && ++in_window_ > per_second_) {
      ++dropped_;
      return false;
    }
    return true;
  }

  // The lines dropped and not yet reported; resets the count.
  uint64_t take_dropped() { return std::exchange(dropped_, 0); }

  int per_second() const { return per_second_; }

 private:
  int per_second_;
  Instant window_start_{};
  int in_window_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace schedd
