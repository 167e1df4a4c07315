#include "core/daemon/notify.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "core/common/thread_name.h"

namespace schedd {
namespace {

// A whole decimal number with nothing around it; nullopt otherwise (or on overflow).
std::optional<unsigned long long> parse_unsigned(const char* text) {
  if (text == nullptr || *text < '0' || *text > '9') return std::nullopt;
  errno = 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0') return std::nullopt;
  return v;
}

}  // namespace

NotifyEnvironment read_notify_environment(const std::function<const char*(const char*)>& get,
                                          long pid) {
  NotifyEnvironment env;
  if (const char* s = get("NOTIFY_SOCKET"); s != nullptr) env.socket = s;
  const char* usec = get("WATCHDOG_USEC");
  if (usec == nullptr) return env;
  auto value = parse_unsigned(usec);
  if (!value || *value == 0) {
    env.warnings.push_back(std::string("WATCHDOG_USEC: \"") + usec +
                           "\" is not a positive number of microseconds; no watchdog pings");
    return env;
  }
  if (const char* p = get("WATCHDOG_PID"); p != nullptr) {
    auto owner = parse_unsigned(p);
    if (!owner) {
      env.warnings.push_back(std::string("WATCHDOG_PID: \"") + p +
                             "\" is not a process id; no watchdog pings");
      return env;
    }
    // The watchdog is some other process's (a parent that exec'd us without clearing it).
    if (static_cast<long>(*owner) != pid) return env;
  }
  env.watchdog = std::chrono::microseconds(static_cast<int64_t>(*value));
  return env;
}

Notifier::Notifier(const std::string& socket) : socket_(socket) {
  if (socket.empty()) return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket.size() >= sizeof addr.sun_path) {
    error_ = "NOTIFY_SOCKET \"" + socket + "\": longer than a socket address may be";
    return;
  }
  if (socket[0] != '/' && socket[0] != '@') {
    error_ = "NOTIFY_SOCKET \"" + socket + "\": neither a path nor an @abstract name";
    return;
  }
  std::memcpy(addr.sun_path, socket.data(), socket.size());
  if (socket[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket.size() +
                                          (socket[0] == '@' ? 0 : 1));
  address_.assign(reinterpret_cast<const char*>(&addr), len);
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) error_ = "NOTIFY_SOCKET \"" + socket + "\": socket: " + std::strerror(errno);
}

Notifier::~Notifier() {
  if (fd_ >= 0) ::close(fd_);
}

Status Notifier::send(std::string_view message) const {
  if (fd_ < 0) return Status::ok();
  const auto* addr = reinterpret_cast<const sockaddr*>(address_.data());
  for (;;) {
    ssize_t n = ::sendto(fd_, message.data(), message.size(), MSG_NOSIGNAL, addr,
                         static_cast<socklen_t>(address_.size()));
    if (n >= 0) return Status::ok();
    if (errno == EINTR) continue;
    return unavailable("NOTIFY_SOCKET \"" + socket_ + "\": " + std::strerror(errno));
  }
}

std::string monotonic_usec_field() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const long long usec = static_cast<long long>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
  return "MONOTONIC_USEC=" + std::to_string(usec);
}

ServiceMonitor::ServiceMonitor(const Notifier& notifier, Options options)
    : notifier_(notifier), options_(std::move(options)) {}

ServiceMonitor::~ServiceMonitor() { stop(); }

void ServiceMonitor::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  exit_ = false;
  thread_ = std::thread([this] {
    name_this_thread("schedd-notify");
    run();
  });
}

void ServiceMonitor::stop() {
  {
    std::lock_guard lock(mu_);
    exit_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

uint64_t ServiceMonitor::pings() const {
  std::lock_guard lock(mu_);
  return pings_;
}

uint64_t ServiceMonitor::missed() const {
  std::lock_guard lock(mu_);
  return missed_;
}

void ServiceMonitor::run() {
  using std::chrono::steady_clock;
  // Pings at half the watchdog interval, as sd_watchdog_enabled(3) advises; at least 1 ms.
  std::optional<steady_clock::duration> ping_every;
  if (options_.watchdog) {
    ping_every =
        std::max<steady_clock::duration>(*options_.watchdog / 2, std::chrono::milliseconds(1));
  }
  const steady_clock::duration status_every =
      std::max<steady_clock::duration>(options_.status_every, std::chrono::milliseconds(10));
  auto poke = [&] {
    const steady_clock::time_point at = steady_clock::now();
    if (options_.poke) options_.poke();
    return at;
  };
  steady_clock::time_point poked_at = poke();
  steady_clock::time_point next_status = steady_clock::now() + status_every;
  steady_clock::time_point next_ping =
      ping_every ? steady_clock::now() + *ping_every : steady_clock::time_point::max();
  bool stalled_logged = false;
  std::unique_lock lock(mu_);
  while (!exit_) {
    const steady_clock::time_point wake = std::min(next_status, next_ping);
    if (cv_.wait_until(lock, wake, [&] { return exit_; })) break;
    lock.unlock();
    const steady_clock::time_point now = steady_clock::now();
    bool pinged = false;
    bool missed = false;
    if (now >= next_ping) {
      // The loop turned since it was last poked: it is alive. Otherwise hold the ping back;
      // systemd ends the daemon when WATCHDOG_USEC passes without one.
      const bool fresh = !options_.heartbeat || options_.heartbeat() >= poked_at;
      if (fresh) {
        if (Status s = notifier_.send("WATCHDOG=1"); !s.is_ok()) {
          spdlog::warn("watchdog ping: {}", s.message());
        }
        pinged = true;
        if (stalled_logged) spdlog::info("watchdog: the dispatcher loop turns again");
        stalled_logged = false;
      } else {
        missed = true;
        if (!stalled_logged) {
          spdlog::error(
              "watchdog: the dispatcher loop has not turned in the {:.1f} s since it was "
              "poked; holding back WATCHDOG=1",
              std::chrono::duration<double>(now - poked_at).count());
          stalled_logged = true;
        }
      }
      // Poke only a loop that answered: the stall is measured from the last unanswered poke.
      if (fresh) poked_at = poke();
      next_ping = now + *ping_every;
    }
    if (now >= next_status) {
      if (options_.status) {
        std::string line = options_.status();
        if (Status s = notifier_.send("STATUS=" + line); !s.is_ok()) {
          spdlog::warn("status notification: {}", s.message());
        }
      }
      next_status = now + status_every;
    }
    lock.lock();
    if (pinged) ++pings_;
    if (missed) ++missed_;
  }
}

}  // namespace schedd
