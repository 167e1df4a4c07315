// NotifyListener: the service manager's end of sd_notify(3) for tests. Binds a datagram
// AF_UNIX socket (a path in a private temp dir, or an abstract name) and records every
// message with the steady_clock instant it arrived, on a thread of its own. Thread-safe.
//
// "Arrived" is when the kernel queued the datagram on the socket (SO_TIMESTAMPNS), not when
// the receiving thread got to it: on a loaded machine that thread can be late by more than a
// watchdog interval, and a message sent before some event in the daemon must not count as
// arriving after it.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <ctime>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing/temp_dir.h"

namespace schedd::testing {

struct NotifyMessage {
  std::string text;  // "READY=1\nSTATUS=..."
  std::chrono::steady_clock::time_point at;
  // Whether one of its lines is exactly `field` ("READY=1"), or starts with it ("STATUS=").
  bool has(const std::string& field) const {
    std::size_t pos = 0;
    while (pos <= text.size()) {
      std::size_t end = text.find('\n', pos);
      if (end == std::string::npos) end = text.size();
      std::string_view line(text.data() + pos, end - pos);
      if (field.back() == '=' ? line.starts_with(field) : line == field) return true;
      pos = end + 1;
    }
    return false;
  }
};

class NotifyListener {
 public:
  // `abstract`: an "@name" in the abstract namespace instead of a path.
  explicit NotifyListener(bool abstract = false) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("NotifyListener: socket failed");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    socklen_t len = 0;
    if (abstract) {
      name_ = "@schedd-test-notify-" + std::to_string(::getpid()) + "-" +
              std::to_string(reinterpret_cast<uintptr_t>(this));
      std::memcpy(addr.sun_path, name_.data(), name_.size());
      addr.sun_path[0] = '\0';
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size());
    } else {
      name_ = (dir_ / "notify").string();
      std::memcpy(addr.sun_path, name_.data(), name_.size());
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size() + 1);
    }
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
      ::close(fd_);
      throw std::runtime_error("NotifyListener: bind " + name_ + ": " + std::strerror(errno));
    }
    const int on = 1;
    if (::setsockopt(fd_, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) != 0) {
      ::close(fd_);
      throw std::runtime_error(std::string("NotifyListener: SO_TIMESTAMPNS: ") +
                               std::strerror(errno));
    }
    thread_ = std::thread([this] { receive(); });
  }
  ~NotifyListener() {
    exit_ = true;
    thread_.join();
    ::close(fd_);
  }
  NotifyListener(const NotifyListener&) = delete;
  NotifyListener& operator=(const NotifyListener&) = delete;

  // What NOTIFY_SOCKET should say.
  const std::string& address() const { return name_; }

  std::vector<NotifyMessage> messages() const {
    std::lock_guard lock(mu_);
    return messages_;
  }
  // Messages with `field` (see NotifyMessage::has) that arrived at or after `from`.
  std::size_t count(const std::string& field, std::chrono::steady_clock::time_point from = {},
                    std::chrono::steady_clock::time_point to =
                        std::chrono::steady_clock::time_point::max()) const {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    for (const auto& m : messages_) n += m.at >= from && m.at < to && m.has(field) ? 1 : 0;
    return n;
  }
  // Waits up to `timeout` for a message with `field` at index `after` or later; returns its
  // index, or -1 (a bounded wait on a real process).
  long wait_for(const std::string& field, std::chrono::milliseconds timeout,
                std::size_t after = 0) const {
    std::unique_lock lock(mu_);
    long found = -1;
    cv_.wait_for(lock, timeout, [&] {
      for (std::size_t i = after; i < messages_.size(); ++i) {
        if (messages_[i].has(field)) {
          found = static_cast<long>(i);
          return true;
        }
      }
      return false;
    });
    return found;
  }
  // Calls `on_message` on the receiving thread for each message as it arrives (before
  // waiters see it). Set before the daemon starts.
  void on_message(std::function<void(const NotifyMessage&)> f) {
    std::lock_guard lock(mu_);
    hook_ = std::move(f);
  }

 private:
  void receive() {
    char buf[4096];
    while (!exit_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      iovec iov{buf, sizeof buf};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      ssize_t n = ::recvmsg(fd_, &msg, 0);
      if (n < 0) continue;
      NotifyMessage m{std::string(buf, static_cast<std::size_t>(n)), queued_at(msg)};
      std::function<void(const NotifyMessage&)> hook;
      {
        std::lock_guard lock(mu_);
        hook = hook_;
      }
      if (hook) hook(m);
      std::lock_guard lock(mu_);
      messages_.push_back(std::move(m));
      cv_.notify_all();
    }
  }

  // The steady_clock instant the kernel queued the message (its CLOCK_REALTIME stamp, moved
  // by how long ago that was); now when the stamp is missing.
  static std::chrono::steady_clock::time_point queued_at(msghdr& msg) {
    const auto now = std::chrono::steady_clock::now();
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS) continue;
      timespec stamp{};
      std::memcpy(&stamp, CMSG_DATA(c), sizeof stamp);
      const auto queued = std::chrono::system_clock::time_point(
          std::chrono::duration_cast<std::chrono::system_clock::duration>(
              std::chrono::seconds(stamp.tv_sec) + std::chrono::nanoseconds(stamp.tv_nsec)));
      const auto ago = std::chrono::system_clock::now() - queued;
      if (ago < std::chrono::system_clock::duration::zero()) return now;
      return now - std::chrono::duration_cast<std::chrono::steady_clock::duration>(ago);
    }
    return now;
  }

  TempDir dir_;
  int fd_ = -1;
  std::string name_;
  std::atomic<bool> exit_{false};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<NotifyMessage> messages_;
  std::function<void(const NotifyMessage&)> hook_;
  std::thread thread_;
};

}  // namespace schedd::testing
