// TcpProxy: a loopback TCP proxy in front of one upstream port (a test's redis-server), with
// which a test cuts one daemon off from Redis the way a network partition does: silently.
//
//   blackhole()        no byte moves in either direction and no connection is accepted, but
//                      every socket stays open: the peers see no error, no reset and no close,
//                      only silence (their calls time out). What either side wrote meanwhile
//                      waits in the kernel's buffers and in the proxy's.
//   restore()          forwarding resumes, buffered bytes first, as TCP delivers them once a
//                      partition heals: a request that its client gave up on (and whose
//                      connection it closed) still reaches the server late.
//   freeze_existing()  only the connections open now go silent; new ones are accepted and
//                      forwarded (a path that broke for old connections only). What their
//                      clients send meanwhile is read and kept (frozen_bytes()), not forwarded.
//   release_frozen()   the frozen connections forward again, their kept bytes first.
//
// Each of these returns once the proxy's thread has applied it: from then on, no byte moves
// that the mode forbids. One thread polls everything; a connection is closed (both sides)
// once both directions have ended and been flushed, or at once on an error.
//
// Thread-safety: the public methods may be called from any thread.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace schedd::testing {

class TcpProxy {
 public:
  // Listens on a free loopback port; each accepted connection gets its own connection to
  // 127.0.0.1:`upstream_port`. Throws std::runtime_error when it cannot listen.
  explicit TcpProxy(uint16_t upstream_port) : upstream_port_(upstream_port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in addr = loopback(0);
    socklen_t len = sizeof addr;
    if (listen_fd_ < 0 ||
        ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 128) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      if (listen_fd_ >= 0) ::close(listen_fd_);
      throw std::runtime_error("TcpProxy: cannot listen on a loopback port");
    }
    port_ = ntohs(addr.sin_port);
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    thread_ = std::thread([this] { loop(); });
  }

  ~TcpProxy() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    wake();
    thread_.join();
    for (auto& l : links_) close_link(l);
    ::close(listen_fd_);
    ::close(wake_fd_);
  }
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  uint16_t port() const { return port_; }
  // The proxy as a Redis store address.
  std::string redis_url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }
  // What clients sent on frozen connections since the last freeze_existing(), held back.
  std::string frozen_bytes() const {
    std::lock_guard lock(mu_);
    return frozen_bytes_;
  }
  // Connections accepted so far (a daemon that never connected through the proxy is a test
  // bug, not a partition).
  std::size_t accepted() const { return accepted_.load(); }

  void blackhole() {
    apply([](State& s) { s.blackholed = true; });
  }
  void restore() {
    apply([](State& s) { s.blackholed = false; });
  }
  void freeze_existing() {
    apply([](State& s) { s.freeze_existing = true; });
  }
  void release_frozen() {
    apply([](State& s) { s.release_frozen = true; });
  }

 private:
  struct State {
    bool blackholed = false;
    bool freeze_existing = false;  // one-shot: freeze the links open now
    bool release_frozen = false;   // one-shot: unfreeze every link
  };

  struct Link {
    int down = -1;  // the accepted client
    int up = -1;    // the upstream server
    std::string to_up, to_down;
    bool down_eof = false, up_eof = false;    // read side ended
    bool up_shut = false, down_shut = false;  // write side shut after the other's end
    bool frozen = false;
    bool dead = false;
  };

  static constexpr std::size_t kMaxBuffered = 1 << 20;

  static sockaddr_in loopback(uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    return addr;
  }

  void wake() {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t w = ::write(wake_fd_, &one, sizeof one);
  }

  // Queues a change for the proxy's thread and waits until it has applied it.
  template <typename F>
  void apply(F change) {
    std::unique_lock lock(mu_);
    change(requested_);
    const uint64_t gen = ++requested_gen_;
    wake();
    applied_cv_.wait(lock, [&] { return applied_gen_ >= gen; });
  }

  static void close_link(Link& l) {
    if (l.down >= 0) ::close(l.down);
    if (l.up >= 0) ::close(l.up);
    l.down = l.up = -1;
    l.dead = true;
  }

  // Reads what `from` has into `into`; false on an error (the link dies).
  static bool pump_in(int from, std::string& into, bool& eof) {
    char buf[65536];
    while (into.size() < kMaxBuffered) {
      ssize_t n = ::recv(from, buf, sizeof buf, 0);
      if (n > 0) {
        into.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) {
        eof = true;
        return true;
      }
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    return true;
  }

  // Writes what `from` holds to `to`; false on an error (the link dies).
  static bool pump_out(int to, std::string& from) {
    while (!from.empty()) {
      ssize_t n = ::send(to, from.data(), from.size(), MSG_NOSIGNAL);
      if (n > 0) {
        from.erase(0, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
    return true;
  }

  void accept_all() {
    while (true) {
      int down = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (down < 0) return;
      ++accepted_;
      // A blocking connect to the loopback upstream: immediate, or refused.
      int up = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in addr = loopback(upstream_port_);
      if (up < 0 || ::connect(up, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        if (up >= 0) ::close(up);
        ::close(down);  // the client sees the close, as it would see a refused server
        continue;
      }
      ::fcntl(up, F_SETFL, ::fcntl(up, F_GETFL) | O_NONBLOCK);
      int one = 1;
      ::setsockopt(up, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      ::setsockopt(down, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      Link l;
      l.down = down;
      l.up = up;
      links_.push_back(std::move(l));
    }
  }

  void loop() {
    State state;
    while (true) {
      {
        std::lock_guard lock(mu_);
        if (stop_) return;
        if (applied_gen_ != requested_gen_) {
          state.blackholed = requested_.blackholed;
          if (requested_.freeze_existing) {
            for (auto& l : links_) l.frozen = true;
          }
          if (requested_.release_frozen) {
            for (auto& l : links_) l.frozen = false;
          }
          requested_.freeze_existing = requested_.release_frozen = false;
          applied_gen_ = requested_gen_;
          applied_cv_.notify_all();
        }
      }
      std::vector<pollfd> fds;
      std::vector<Link*> owners;  // fds[i] for i >= 2 belongs to owners[(i - 2) / 2]
      fds.push_back({wake_fd_, POLLIN, 0});
      fds.push_back({state.blackholed ? -1 : listen_fd_, POLLIN, 0});
      std::vector<Link*> frozen;  // fds[2 + 2 * owners.size() + i] is frozen[i]'s client
      for (auto& l : links_) {
        if (state.blackholed || l.frozen) continue;
        short down_ev =
            static_cast<short>((!l.down_eof && l.to_up.size() < kMaxBuffered ? POLLIN : 0) |
                               (!l.to_down.empty() ? POLLOUT : 0));
        short up_ev =
            static_cast<short>((!l.up_eof && l.to_down.size() < kMaxBuffered ? POLLIN : 0) |
                               (!l.to_up.empty() ? POLLOUT : 0));
        fds.push_back({l.down, down_ev, 0});
        fds.push_back({l.up, up_ev, 0});
        owners.push_back(&l);
      }
      for (auto& l : links_) {
        if (state.blackholed || !l.frozen || l.down_eof || l.to_up.size() >= kMaxBuffered) continue;
        fds.push_back({l.down, POLLIN, 0});
        frozen.push_back(&l);
      }
      if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) return;
      if (fds[0].revents & POLLIN) {
        uint64_t v;
        [[maybe_unused]] ssize_t r = ::read(wake_fd_, &v, sizeof v);
        // The mode may have changed: apply it before moving any byte.
        continue;
      }
      if (fds[1].revents & POLLIN) accept_all();
      for (std::size_t i = 0; i < owners.size(); ++i) {
        Link& l = *owners[i];
        const short down_re = fds[2 + 2 * i].revents;
        const short up_re = fds[3 + 2 * i].revents;
        bool ok = true;
        if (ok && (down_re & (POLLIN | POLLHUP | POLLERR)))
          ok = pump_in(l.down, l.to_up, l.down_eof);
        if (ok && (up_re & (POLLIN | POLLHUP | POLLERR))) ok = pump_in(l.up, l.to_down, l.up_eof);
        if (ok) ok = pump_out(l.up, l.to_up) && pump_out(l.down, l.to_down);
        if (!ok) {
          close_link(l);
          continue;
        }
        // An end travels on once everything before it has.
        if (l.down_eof && l.to_up.empty() && !l.up_shut) {
          ::shutdown(l.up, SHUT_WR);
          l.up_shut = true;
        }
        if (l.up_eof && l.to_down.empty() && !l.down_shut) {
          ::shutdown(l.down, SHUT_WR);
          l.down_shut = true;
        }
        if (l.up_shut && l.down_shut) close_link(l);
      }
      for (std::size_t i = 0; i < frozen.size(); ++i) {
        Link& l = *frozen[i];
        if (!(fds[2 + 2 * owners.size() + i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        const std::size_t before = l.to_up.size();
        if (!pump_in(l.down, l.to_up, l.down_eof)) {
          // Reset by the client: what it sent is gone with it, as on a real network.
          close_link(l);
          continue;
        }
        std::lock_guard lock(mu_);
        frozen_bytes_.append(l.to_up, before, std::string::npos);
      }
      links_.remove_if([](const Link& l) { return l.dead; });
    }
  }

  const uint16_t upstream_port_;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  std::atomic<std::size_t> accepted_{0};
  std::list<Link> links_;  // the proxy thread's only

  mutable std::mutex mu_;
  std::condition_variable applied_cv_;
  std::string frozen_bytes_;  // guarded by mu_
  State requested_;           // guarded by mu_
  uint64_t requested_gen_ = 0;
  uint64_t applied_gen_ = 0;
  bool stop_ = false;
  std::thread thread_;  // last: starts once everything above is set
};

}  // namespace schedd::testing
