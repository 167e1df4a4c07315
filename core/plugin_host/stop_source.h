// StopSource: the stop token an executor sees. A timeout, a cancel request or shutdown calls
// request_stop(); the executor polls stop_requested() or blocks in wait_for(). Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

namespace schedd {

class StopSource {
 public:
  void request_stop() {
    {
      std::lock_guard lock(mu_);
      stopped_.store(true, std::memory_order_release);
    }
    cv_.notify_all();
  }
  bool stop_requested() const { return stopped_.load(std::memory_order_acquire); }
  // Waits up to `timeout` of real time; returns true if a stop was requested.
  bool wait_for(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return stopped_.load(std::memory_order_acquire); });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stopped_{false};
};

}  // namespace schedd
