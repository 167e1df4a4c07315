// ManualClock: time moves only when a test calls advance() or set(). Waiters blocked in
// wait_until are woken on every change, so a dispatcher sleeping until "09:00" wakes as soon
// as the test advances past it. Thread-safe.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <utility>
#include <vector>

#include "core/common/clock.h"

namespace schedd::testing {

class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start) : now_(start) {}

  TimePoint now() const override {
    std::lock_guard lock(mu_);
    return now_;
  }
  std::chrono::steady_clock::time_point steady_now() const override {
    std::lock_guard lock(mu_);
    return steady_;
  }

  void wait_until(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                  TimePoint deadline, TimePoint observed) override {
    Waiter w{&cv, lock.mutex()};
    {
      std::lock_guard g(mu_);
      if (now_ >= deadline || now_ != observed) return;
      waiters_.push_back(w);
    }
    // set() notifies under the waiter's own mutex, which we hold until wait() releases it,
    // so a change between the check above and the wait below is not lost.
    cv.wait(lock);
    std::lock_guard g(mu_);
    auto it = std::find(waiters_.begin(), waiters_.end(), w);
    if (it != waiters_.end()) waiters_.erase(it);
  }

  // A step of the wall clock (an operator or NTP setting it): elapsed time does not move.
  void set(TimePoint t) { move(t, std::chrono::nanoseconds(0)); }
  // Time passing: the wall clock and elapsed time both move by d.
  void advance(std::chrono::nanoseconds d) {
    std::chrono::nanoseconds elapsed = d.count() > 0 ? d : std::chrono::nanoseconds(0);
    move(now() + std::chrono::duration_cast<TimePoint::duration>(d), elapsed);
  }

 private:
  void move(TimePoint t, std::chrono::nanoseconds elapsed) {
    std::vector<Waiter> waiters;
    {
      std::lock_guard g(mu_);
      now_ = t;
      steady_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(elapsed);
      waiters = waiters_;
    }
    for (const auto& w : waiters) {
      std::lock_guard l(*w.mu);
      w.cv->notify_all();
    }
  }
  struct Waiter {
    std::condition_variable* cv;
    std::mutex* mu;
    bool operator==(const Waiter&) const = default;
  };
  mutable std::mutex mu_;
  TimePoint now_;
  // Elapsed time starts at an arbitrary reading, as steady_clock's does.
  std::chrono::steady_clock::time_point steady_{std::chrono::hours(1000)};
  std::vector<Waiter> waiters_;
};

}  // namespace schedd::testing
