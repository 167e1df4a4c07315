// StopSource: the stop token an executor sees. A timeout, a cancel request or shutdown calls
// request_stop(); the executor polls stop_requested() or blocks in wait_for(). A thread that
// waits in poll() instead (a worker waiting on a runner) attaches an eventfd, which
// request_stop() makes readable. Thread-safe.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace schedd {

class StopSource {
 public:
  void request_stop() {
    {
      std::lock_guard lock(mu_);
      stopped_.store(true, std::memory_order_release);
      signal_fd_locked();
    }
    cv_.notify_all();
  }
  bool stop_requested() const { return stopped_.load(std::memory_order_acquire); }
  // Waits up to `timeout` of real time; returns true if a stop was requested.
  bool wait_for(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return stopped_.load(std::memory_order_acquire); });
  }
  // Makes `eventfd` readable on request_stop(), and at once when a stop was already
  // requested; -1 detaches. The caller owns the fd and detaches before closing it.
  void attach_fd(int eventfd) {
    std::lock_guard lock(mu_);
    fd_ = eventfd;
    if (stopped_.load(std::memory_order_relaxed)) signal_fd_locked();
  }
  // Makes the attached fd readable without requesting a stop (something else changed that
  // its waiter must look at, such as a new deadline).
  void wake() {
    std::lock_guard lock(mu_);
    signal_fd_locked();
  }

 private:
  void signal_fd_locked() {
    if (fd_ < 0) return;
    uint64_t one = 1;
    // An eventfd write fails only when the counter would overflow: it is readable anyway.
    [[maybe_unused]] ssize_t n = ::write(fd_, &one, sizeof one);
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stopped_{false};
  int fd_ = -1;  // guarded by mu_
};

}  // namespace schedd
