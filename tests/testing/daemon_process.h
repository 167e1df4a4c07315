// DaemonProcess: the real `schedd run -c CONFIG` as a child process, for tests that restart,
// kill and talk to it over HTTP. The config must have `[api] listen = "127.0.0.1:0"`; the
// port is read from the "listening on" log line. Not thread-safe; one per daemon.
#pragma once

#include <signal.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing/subprocess.h"

namespace schedd::testing {

class DaemonProcess {
 public:
  // `env`: "NAME=VALUE" entries added to the daemon's environment (through env(1), which
  // execs the daemon in place, so pid() is the daemon's).
  // `binary`: the schedd to run (a benchmark's --schedd, to compare two builds).
  explicit DaemonProcess(const std::filesystem::path& config, std::vector<std::string> extra = {},
                         std::vector<std::string> env = {}, std::string binary = SCHEDD_BINARY) {
    started_ = std::chrono::steady_clock::now();
    std::vector<std::string> argv;
    if (!env.empty()) {
      argv.push_back("/usr/bin/env");
      argv.insert(argv.end(), env.begin(), env.end());
    }
    argv.insert(argv.end(), {std::move(binary), "run", "-c", config.string()});
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc_ = std::make_unique<Process>(std::move(argv));
  }

  // Waits up to 60 s for "schedd ready" and the API's port. False if it exits first.
  bool wait_ready() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (proc_->err().find("schedd ready") == std::string::npos) {
      if (proc_->exited() || std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ready_after_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_);
    static const std::regex kListen(R"(listening on (?:http://)?127\.0\.0\.1:(\d+))");
    std::smatch m;
    std::string err = proc_->err();
    if (!std::regex_search(err, m, kListen)) return false;
    port_ = static_cast<uint16_t>(std::stoi(m[1]));
    return true;
  }

  uint16_t port() const { return port_; }
  pid_t pid() const { return proc_->pid(); }
  double ready_seconds() const { return ready_after_.count(); }
  std::string log() const { return proc_->err(); }
  // Waits up to `timeout` for `text` in the log; false when it does not come.
  bool wait_for_log(const std::string& text,
                    std::chrono::milliseconds timeout = std::chrono::seconds(30)) const {
    return proc_->wait_for_err(text, timeout);
  }
  // Sends `sig` (tests of signal handling).
  void signal(int sig) { proc_->signal(sig); }
  bool exited() { return proc_->exited(); }
  void kill9() {
    proc_->signal(SIGKILL);
    proc_->wait();
  }
  ProcessResult stop() {
    proc_->signal(SIGTERM);
    return proc_->wait();
  }
  // For a daemon expected to refuse to start: its exit.
  ProcessResult wait() { return proc_->wait(); }

 private:
  std::unique_ptr<Process> proc_;
  std::chrono::steady_clock::time_point started_;
  std::chrono::duration<double> ready_after_{};
  uint16_t port_ = 0;
};

}  // namespace schedd::testing
