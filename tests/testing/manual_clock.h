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

  void set(TimePoint t) {
    std::vector<Waiter> waiters;
    {
      std::lock_guard g(mu_);
      now_ = t;
      waiters = waiters_;
    }
    for (const auto& w : waiters) {
      std::lock_guard l(*w.mu);
      w.cv->notify_all();
    }
  }
  void advance(std::chrono::nanoseconds d) {
    set(now() + std::chrono::duration_cast<TimePoint::duration>(d));
  }

 private:
  struct Waiter {
    std::condition_variable* cv;
    std::mutex* mu;
    bool operator==(const Waiter&) const = default;
  };
  mutable std::mutex mu_;
  TimePoint now_;
  std::vector<Waiter> waiters_;
};

}  // namespace schedd::testing
