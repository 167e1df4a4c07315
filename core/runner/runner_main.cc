// schedd-runner: loads one plugin and runs its executors for the daemon that started it,
// one run after another, speaking the runner protocol (core/runner/protocol.h).
//
//   schedd-runner --plugin FILE --protocol N --data-fd FD --control-fd FD
//                 [--output-tail BYTES] [--cpu-limit-ms MS] [--log-rate LINES_PER_S]
//
// The daemon starts it with PR_SET_PDEATHSIG, in its own session, with its limits set. Its
// stdout and stderr (and so the plugin's) go into a pipe this program drains itself, keeping
// a bounded tail per run: a plugin that floods them never reaches the daemon's log.
//
// Threads: main reads RUN frames and calls the plugin; the watchdog reads STOP and EXTEND
// from the control socket and ends the process at a run's hard deadline; the drain thread
// empties the output pipe.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "core/common/log_rate.h"
#include "core/plugin_host/plugin_host.h"
#include "core/runner/process_tree.h"
#include "core/runner/protocol.h"

namespace schedd::runner {
namespace {

// Exit codes the daemon reads (docs/sdk.md).
constexpr int kExitUsage = 64;
constexpr int kExitProtocol = 65;
constexpr int kExitDeadline = 86;  // not 66: ThreadSanitizer's exit code

struct Args {
  std::string plugin;
  uint32_t protocol = 0;
  int data_fd = -1;
  int control_fd = -1;
  std::size_t output_tail = 64 * 1024;
  int64_t cpu_limit_ms = 0;
  int log_rate = 200;
};

bool parse_args(int argc, char** argv, Args& a) {
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    const char* v = argv[i + 1];
    if (flag == "--plugin") {
      a.plugin = v;
    } else if (flag == "--protocol") {
      a.protocol = static_cast<uint32_t>(std::strtoul(v, nullptr, 10));
    } else if (flag == "--data-fd") {
      a.data_fd = std::atoi(v);
    } else if (flag == "--control-fd") {
      a.control_fd = std::atoi(v);
    } else if (flag == "--output-tail") {
      a.output_tail = std::strtoull(v, nullptr, 10);
    } else if (flag == "--cpu-limit-ms") {
      a.cpu_limit_ms = std::strtoll(v, nullptr, 10);
    } else if (flag == "--log-rate") {
      a.log_rate = std::atoi(v);
    } else {
      return false;
    }
  }
  return !a.plugin.empty() && a.data_fd >= 0 && a.control_fd >= 0 && argc % 2 == 1;
}

// The process's stdout and stderr, drained into a bounded tail. Thread-safe.
class OutputTail {
 public:
  explicit OutputTail(std::size_t limit) : limit_(limit) {}

  // Points fds 1 and 2 at a pipe and starts draining it. Returns false if it could not.
  bool start() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return false;
    read_fd_ = fds[0];
    fcntl(read_fd_, F_SETFL, O_NONBLOCK);
    if (dup2(fds[1], 1) < 0 || dup2(fds[1], 2) < 0) return false;
    close(fds[1]);
    thread_ = std::thread([this] { drain_loop(); });
    thread_.detach();  // lives as long as the process
    return true;
  }
  // Starts a run's tail. (Output still in the pipe from between runs counts for this one.)
  void reset() {
    std::lock_guard lock(mu_);
    tail_.clear();
    bytes_ = 0;
  }
  // What the run wrote, as far as it reached the pipe by now; and how many bytes in all.
  std::pair<std::string, uint64_t> take() {
    fflush(stdout);
    fflush(stderr);
    std::lock_guard lock(mu_);
    read_available_locked();
    return {tail_, bytes_};
  }

 private:
  void drain_loop() {
    pollfd p{read_fd_, POLLIN, 0};
    while (true) {
      if (poll(&p, 1, -1) < 0 && errno != EINTR) return;
      std::lock_guard lock(mu_);
      read_available_locked();
    }
  }
  void read_available_locked() {
    char buf[64 * 1024];
    while (true) {
      ssize_t n = ::read(read_fd_, buf, sizeof buf);
      if (n <= 0) return;
      bytes_ += static_cast<uint64_t>(n);
      if (limit_ == 0) continue;
      tail_.append(buf, static_cast<std::size_t>(n));
      if (tail_.size() > 2 * limit_) tail_.erase(0, tail_.size() - limit_);
    }
  }

  const std::size_t limit_;
  int read_fd_ = -1;
  std::thread thread_;
  std::mutex mu_;
  std::string tail_;  // guarded by mu_; trimmed to `limit_` when taken
  uint64_t bytes_ = 0;
};

// The run in progress, shared by main (which runs it) and the watchdog (which stops or ends
// it). Guarded by mu.
struct Current {
  std::mutex mu;
  uint64_t seq = 0;       // 0: idle
  uint64_t last_seq = 0;  // the latest run started (STOP/EXTEND of later ones are kept)
  // STOP and EXTEND for runs sent in the same batch but not started yet.
  std::set<uint64_t> stopped_early;
  std::map<uint64_t, int64_t> extended_early;
  StopSource* stop = nullptr;
  int64_t hard_deadline_ns = 0;
  int wake_fd = -1;  // an eventfd: wakes the watchdog to look at a new deadline
};

// Sends frames on the data socket from main and from plugin threads (progress, log).
class Sender {
 public:
  explicit Sender(int fd) : fd_(fd) {}
  void send(const std::string& frame) {
    std::lock_guard lock(mu_);
    if (!write_all(fd_, frame).is_ok()) {
      // The daemon is gone: nothing to run for.
      _exit(0);
    }
  }

 private:
  int fd_;
  std::mutex mu_;
};

[[noreturn]] void end_at_deadline() {
  // Everything this runner started goes with it; the daemon sees exit 86.
  kill_session(getpid(), std::chrono::milliseconds(0));
  _exit(kExitDeadline);
}

void watchdog(int control_fd, Current& cur) {
  FrameReader reader(control_fd);
  while (true) {
    int timeout_ms = -1;
    {
      std::lock_guard lock(cur.mu);
      if (cur.seq != 0 && cur.hard_deadline_ns != 0) {
        int64_t left = cur.hard_deadline_ns - monotonic_ns();
        if (left <= 0) end_at_deadline();
        timeout_ms = static_cast<int>(std::min<int64_t>((left + 999999) / 1000000, 1 << 30));
      }
    }
    pollfd p[2] = {{control_fd, POLLIN, 0}, {cur.wake_fd, POLLIN, 0}};
    int n = poll(p, 2, timeout_ms);
    if (n < 0 && errno != EINTR) _exit(kExitProtocol);
    if (p[1].revents & POLLIN) {
      uint64_t v;
      [[maybe_unused]] ssize_t r = ::read(cur.wake_fd, &v, sizeof v);
    }
    if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    auto filled = reader.fill();
    if (!filled.is_ok()) {
      // The daemon closed its end or died: end the run and everything it started.
      kill_session(getpid(), std::chrono::milliseconds(0));
      _exit(0);
    }
    while (true) {
      auto frame = reader.next();
      if (!frame.is_ok()) _exit(kExitProtocol);
      if (!frame->has_value()) break;
      const Frame& f = **frame;
      std::lock_guard lock(cur.mu);
      if (f.type == FrameType::kStop) {
        auto m = decode_stop(f.payload);
        if (!m.is_ok()) _exit(kExitProtocol);
        if (m->seq == cur.seq && cur.stop != nullptr) {
          cur.stop->request_stop();
        } else if (m->seq > cur.last_seq && cur.stopped_early.size() < 4096) {
          cur.stopped_early.insert(m->seq);
        }
      } else if (f.type == FrameType::kExtend) {
        auto m = decode_extend(f.payload);
        if (!m.is_ok()) _exit(kExitProtocol);
        if (m->seq == cur.seq) {
          cur.hard_deadline_ns = m->hard_deadline_ns;
        } else if (m->seq > cur.last_seq && cur.extended_early.size() < 4096) {
          cur.extended_early[m->seq] = m->hard_deadline_ns;
        }
      } else {
        _exit(kExitProtocol);
      }
    }
  }
}

// Limits one run's CPU time: RLIMIT_CPU's soft limit becomes what the process used so far
// plus `limit_ms` (the kernel sends SIGXCPU past it, which ends the runner).
void limit_cpu(int64_t limit_ms) {
  if (limit_ms <= 0) return;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  int64_t used_s = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1;
  rlimit rl{};
  getrlimit(RLIMIT_CPU, &rl);
  rlim_t soft = static_cast<rlim_t>(used_s + (limit_ms + 999) / 1000);
  if (rl.rlim_max != RLIM_INFINITY && soft > rl.rlim_max) soft = rl.rlim_max;
  rl.rlim_cur = soft;
  setrlimit(RLIMIT_CPU, &rl);
}

int serve(const Args& args) {
  Sender sender(args.data_fd);
  std::string out;
  if (args.protocol != kProtocolVersion) {
    encode_load_error("schedd-runner speaks runner protocol " + std::to_string(kProtocolVersion) +
                          ", the daemon asked for " + std::to_string(args.protocol) +
                          " (install the runner of the same schedd version)",
                      out);
    sender.send(out);
    return kExitUsage;
  }
  OutputTail tail(args.output_tail);
  if (!tail.start()) {
    encode_load_error(std::string("cannot capture output: ") + std::strerror(errno), out);
    sender.send(out);
    return kExitUsage;
  }
  // Plugins log through the host API, which here becomes LOG frames; anything that still
  // reaches spdlog (the loader's own messages) goes to the captured stderr.
  PluginHost host;
  if (auto err = host.load_file(args.plugin)) {
    encode_load_error(err->message, out);
    sender.send(out);
    return kExitUsage;
  }
  const PluginInfo& info = host.plugins().front();
  Hello hello;
  hello.pid = getpid();
  hello.plugin_name = info.name;
  hello.plugin_version = info.version;
  hello.load_time = info.load_time;
  for (const auto* e : host.executors()) hello.executors.push_back(*e);
  encode(hello, out);
  sender.send(out);

  Current cur;
  cur.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  std::thread([&] { watchdog(args.control_fd, cur); }).detach();

  FrameReader reader(args.data_fd);
  while (true) {
    auto frame = reader.next();
    if (!frame.is_ok()) return kExitProtocol;
    if (!frame->has_value()) {
      auto filled = reader.fill();
      if (!filled.is_ok()) {
        // The daemon is done with this runner (or gone).
        kill_session(getpid(), std::chrono::milliseconds(0));
        return 0;
      }
      continue;
    }
    if ((*frame)->type != FrameType::kRun) return kExitProtocol;
    auto run = decode_run((*frame)->payload);
    if (!run.is_ok()) return kExitProtocol;

    RunRequest req;
    req.execution_id = run->execution_id;
    req.origin = static_cast<Origin>(run->origin);
    req.name = run->name;
    req.key = run->key;
    req.lane = run->lane;
    req.attempt = run->attempt;
    req.due = std::chrono::system_clock::time_point(std::chrono::milliseconds(run->due_unix_ms));
    if (run->deadline_unix_ms != 0) {
      req.deadline =
          std::chrono::system_clock::time_point(std::chrono::milliseconds(run->deadline_unix_ms));
    }
    req.fence = run->fence;
    req.params = std::move(run->params);
    const uint64_t seq = run->seq;
    // Log lines are rate-limited per run: a plugin that logs in a tight loop costs the daemon
    // a bounded number of frames, and the result says how many were dropped.
    struct LogBudget {
      std::mutex mu;
      LogRateWindow window;
    } budget{{}, LogRateWindow(args.log_rate)};
    req.on_progress = [&](double fraction, std::string_view message) {
      std::string f;
      encode(ProgressFrame{seq, fraction, std::string(message)}, f);
      sender.send(f);
    };
    req.on_log = [&](int level, std::string_view message) {
      {
        std::lock_guard lock(budget.mu);
        if (!budget.window.admit(std::chrono::steady_clock::now())) return;
      }
      std::string f;
      encode(LogFrame{seq, level, std::string(message)}, f);
      sender.send(f);
    };

    RunOutcome outcome;
    const Executor* executor = host.find(run->executor);
    StopSource stop;
    bool stopped_before_start = false;
    {
      std::lock_guard lock(cur.mu);
      cur.seq = seq;
      cur.last_seq = seq;
      cur.stop = &stop;
      cur.hard_deadline_ns = run->hard_deadline_ns;
      // A batch's later runs may have been stopped or extended before they started.
      stopped_before_start = cur.stopped_early.erase(seq) > 0;
      cur.stopped_early.erase(cur.stopped_early.begin(), cur.stopped_early.lower_bound(seq));
      if (auto it = cur.extended_early.find(seq); it != cur.extended_early.end()) {
        cur.hard_deadline_ns = std::max(cur.hard_deadline_ns, it->second);
      }
      cur.extended_early.erase(cur.extended_early.begin(), cur.extended_early.upper_bound(seq));
    }
    if (run->hard_deadline_ns != 0) {
      uint64_t one = 1;
      [[maybe_unused]] ssize_t w = ::write(cur.wake_fd, &one, sizeof one);
    }
    tail.reset();
    limit_cpu(args.cpu_limit_ms);
    if (executor == nullptr) {
      outcome.status = RunStatus::kFailedPermanent;
      outcome.message = "this runner's plugin has no executor \"" + run->executor + "\"";
    } else if (stopped_before_start) {
      outcome.status = RunStatus::kCancelled;
      outcome.message = "stopped before it started";
    } else {
      outcome = executor->run(req, stop);
    }
    {
      std::lock_guard lock(cur.mu);
      cur.seq = 0;
      cur.stop = nullptr;
      cur.hard_deadline_ns = 0;
    }
    auto [captured, bytes] = tail.take();
    ResultFrame result;
    result.seq = seq;
    result.status = static_cast<int32_t>(outcome.status);
    result.message = std::move(outcome.message);
    result.output = std::move(outcome.output);
    if (!captured.empty()) {
      if (captured.size() > args.output_tail) {
        captured.erase(0, captured.size() - args.output_tail);
      }
      if (!result.output.empty()) result.output += "\n";
      result.output += "--- stdout/stderr";
      if (bytes > captured.size()) {
        result.output += " (last " + std::to_string(captured.size()) + " of " +
                         std::to_string(bytes) + " bytes)";
      }
      result.output += " ---\n" + captured;
    }
    result.output_bytes = bytes;
    uint64_t dropped = 0;
    {
      std::lock_guard lock(budget.mu);
      dropped = budget.window.take_dropped();
    }
    if (dropped > 0) {
      std::string f;
      encode(LogFrame{seq, 3,
                      std::to_string(dropped) + " log lines dropped (more than " +
                          std::to_string(args.log_rate) + " a second)"},
             f);
      sender.send(f);
    }
    result.duration_ns = outcome.duration.count();
    out.clear();
    encode(result, out);
    sender.send(out);
  }
}

}  // namespace
}  // namespace schedd::runner

// In sanitizer builds (tests), a plugin's crash must still end the runner by its signal, as
// in production, not become the sanitizer's report and exit code: the daemon names the signal.
#if defined(__SANITIZE_ADDRESS__)
extern "C" const char* __asan_default_options() {
  return "handle_segv=0:handle_abort=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0:"
         "detect_leaks=0";
}
#endif
#if defined(__SANITIZE_THREAD__)
extern "C" const char* __tsan_default_options() {
  return "handle_segv=0:handle_abort=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0";
}
#endif

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  schedd::runner::Args args;
  if (!schedd::runner::parse_args(argc, argv, args)) {
    fprintf(stderr,
            "usage: schedd-runner --plugin FILE --protocol N --data-fd FD --control-fd FD "
            "[--output-tail BYTES] [--cpu-limit-ms MS] [--log-rate N]\n"
            "(started by schedd; not meant to be run by hand)\n");
    return schedd::runner::kExitUsage;
  }
  // The protocol sockets must not leak into what a plugin starts: a child holding the data
  // socket would hide the runner's end from the daemon for as long as the child lives.
  fcntl(args.data_fd, F_SETFD, FD_CLOEXEC);
  fcntl(args.control_fd, F_SETFD, FD_CLOEXEC);
  // The loader's own messages must not be lost, but must not go to the daemon's log either.
  spdlog::set_pattern("schedd-runner: %v");
  return schedd::runner::serve(args);
}
