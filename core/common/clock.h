// Clock: the one source of "now" in core. Nothing in core calls system_clock::now() directly,
// so tests can drive time with a manual clock (tests/testing/manual_clock.h).
// Implementations are thread-safe.
#pragma once

#include <chrono>

namespace schedd {

using TimePoint = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time (schedules, due times, records).
  virtual TimePoint now() const = 0;
};

// The real wall clock.
class SystemClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::system_clock::now(); }
  static SystemClock& instance() {
    static SystemClock clock;
    return clock;
  }
};

}  // namespace schedd
