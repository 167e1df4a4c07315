// Clock: the one source of "now" in core, and the one way core waits for a future instant.
// Nothing in core calls system_clock::now() or sleeps on its own, so tests drive time with
// ManualClock (tests/testing/manual_clock.h) and run a day of schedules in milliseconds.
// Implementations are thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace schedd {

using TimePoint = std::chrono::system_clock::time_point;

// t + d, held to [TimePoint::min(), TimePoint::max()] instead of wrapping (signed overflow): a
// due time near 2262-04-11, the end of a 64-bit nanosecond clock, plus an expiry.
template <typename Rep, typename Period>
TimePoint add_capped(TimePoint t, std::chrono::duration<Rep, Period> d) {
  const auto dn = std::chrono::duration_cast<TimePoint::duration>(d);
  if (dn.count() > 0 && t > TimePoint::max() - dn) return TimePoint::max();
  if (dn.count() < 0 && t < TimePoint::min() - dn) return TimePoint::min();
  return t + dn;
}

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time (schedules, due times, records).
  virtual TimePoint now() const = 0;
  // Elapsed time (run timeouts): it only moves forward, and does not step when the wall clock
  // is set, so a clock step neither times a run out early nor lets it run past its timeout.
  virtual std::chrono::steady_clock::time_point steady_now() const = 0;
  // Blocks the caller, who holds `lock` (the mutex `cv` is used with), until `cv` is notified,
  // the clock reaches `deadline`, or a spurious wake-up; callers re-check their condition.
  // Returns at once when the clock no longer reads `observed` (the caller's last now()), so
  // that a time change between the caller's reading and this call is never slept through.
  // Like condition_variable::wait_until, `lock` is released while waiting.
  virtual void wait_until(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                          TimePoint deadline, TimePoint observed) = 0;
};

// The real wall clock.
class SystemClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::system_clock::now(); }
  std::chrono::steady_clock::time_point steady_now() const override {
    return std::chrono::steady_clock::now();
  }
  void wait_until(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                  TimePoint deadline, TimePoint /*observed: real time always moves*/) override {
    // Wake at least once a minute so that a wall-clock step is noticed promptly.
    TimePoint cap = now() + std::chrono::minutes(1);
    cv.wait_until(lock, deadline < cap ? deadline : cap);
  }
  static SystemClock& instance() {
    static SystemClock clock;
    return clock;
  }
};

}  // namespace schedd
