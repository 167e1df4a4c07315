// The systemd service notification protocol (sd_notify(3)), spoken by hand: one datagram of
// "KEY=VALUE" lines per message to the AF_UNIX socket named by NOTIFY_SOCKET (a path, or an
// abstract name written with a leading '@'). No libsystemd: the protocol is a sendto(), and
// the daemon then runs the same with or without systemd (docs/operations.md "Signals").
//
// ServiceMonitor is the thread that keeps systemd told while the daemon runs: a fresh STATUS=
// line every few seconds, and WATCHDOG=1 at half of WATCHDOG_USEC, but only while the
// dispatcher's loop keeps turning (its heartbeat moves on after each poke), so that a wedged
// dispatcher stops the pings and systemd restarts the daemon.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/common/status.h"

namespace schedd {

// What the service manager asked of this process, read from the environment.
struct NotifyEnvironment {
  std::string socket;  // NOTIFY_SOCKET; empty: not run by a service manager that listens
  // WATCHDOG_USEC, when set, valid, and meant for this process (WATCHDOG_PID unset or ours).
  std::optional<std::chrono::microseconds> watchdog;
  // Values that were set but could not be used, each naming its variable; the daemon logs
  // them and goes on without that part.
  std::vector<std::string> warnings;
};

// Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID through `get` (getenv in the daemon) for
// the process `pid`.
NotifyEnvironment read_notify_environment(const std::function<const char*(const char*)>& get,
                                          long pid);

// Sends notifications to one NOTIFY_SOCKET. Thread-safe: each message is one sendto() on a
// datagram socket that never changes after construction.
class Notifier {
 public:
  // Disabled: every send() does nothing and returns OK.
  Notifier() = default;
  // Opens a datagram socket for `socket` (a path or "@abstract"). An unusable address leaves
  // the notifier disabled and is reported by `error()`.
  explicit Notifier(const std::string& socket);
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  bool enabled() const { return fd_ >= 0; }
  // Why a configured socket could not be used; empty when it could (or none was given).
  const std::string& error() const { return error_; }
  // Sends `message` ("READY=1\nSTATUS=...") as one datagram. An error names the socket.
  Status send(std::string_view message) const;

 private:
  int fd_ = -1;
  std::string socket_;
  std::string error_;
  // The destination (sockaddr_un) and its length; an abstract name's leading byte is NUL.
  std::string address_;
};

// "MONOTONIC_USEC=<CLOCK_MONOTONIC in microseconds>", as RELOADING=1 carries it.
std::string monotonic_usec_field();

// Keeps the service manager told while the daemon runs (see the file comment). Thread-safe:
// start() and stop() from one thread; pings() and missed() from any.
class ServiceMonitor {
 public:
  struct Options {
    // How often STATUS= is refreshed. Default: 2 s.
    std::chrono::milliseconds status_every{2000};
    // WATCHDOG_USEC; unset: no pings. Pings go out at half of it.
    std::optional<std::chrono::microseconds> watchdog;
    // The one-line status summary; called on the monitor's thread.
    std::function<std::string()> status;
    // The dispatcher loop's last turn (Dispatcher::heartbeat) and a way to make it turn.
    std::function<std::chrono::steady_clock::time_point()> heartbeat;
    std::function<void()> poke;
  };

  ServiceMonitor(const Notifier& notifier, Options options);
  ~ServiceMonitor();  // stop()

  void start();
  void stop();
  // How many WATCHDOG=1 were sent, and how many were held back because the heartbeat had not
  // moved since the previous poke (for logs and tests).
  uint64_t pings() const;
  uint64_t missed() const;

 private:
  void run();

  const Notifier& notifier_;
  Options options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool exit_ = false;
  uint64_t pings_ = 0;
  uint64_t missed_ = 0;
  std::thread thread_;
};

}  // namespace schedd
