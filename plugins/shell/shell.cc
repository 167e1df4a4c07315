// shell: runs a program (looked up in PATH) with arguments, in its own process group, and
// records the tail of its stdout and stderr.
//
// Contract:
//   - exit code 0 -> succeeded; any other exit code -> failed ("exit code N", retried per
//     policy); killed by a signal -> failed ("killed by signal N (SIGxxx)").
//   - the program cannot be started (not found, not executable, bad cwd) -> failed
//     permanently, naming the command and the reason; transient resource shortage (EAGAIN,
//     ENOMEM, EMFILE, ENFILE) -> failed, so that it is retried.
//   - on a stop request the whole process group gets SIGTERM, then SIGKILL after
//     `kill_grace`, and the attempt returns cancelled.
//   - when the program exits on its own, processes it left in the background keep running;
//     what they wrote so far is read without waiting for them to close the pipes.
//   - output: the last `output_limit` bytes of stdout, then, if stderr is not empty, a line
//     "--- stderr ---" and the last `output_limit` bytes of stderr.
//   - the child's environment is the daemon's, plus `env`, plus SCHEDD_EXECUTION_ID,
//     SCHEDD_KEY, SCHEDD_ATTEMPT, SCHEDD_HELPER, SCHEDD_LANE, SCHEDD_DUE and SCHEDD_FENCE
//     (which win over `env`). Its stdin is /dev/null; no other descriptor of the daemon is
//     inherited.
//
// Thread-safety: `run` keeps all state on its own stack and may be called concurrently. It
// reads `environ`, so the daemon must not call setenv() while executions run. It reaps only
// its own child with waitpid(pid), so it relies on SIGCHLD not being ignored and on nobody
// else calling waitpid(-1).
#include <schedd/sdk.hpp>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

extern char** environ;

namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr milliseconds kPollInterval{20};
constexpr milliseconds kDefaultKillGrace{5000};
constexpr int64_t kDefaultOutputLimit = 4096;
// Bounds the final non-blocking drain so that a background process that keeps writing cannot
// hold the attempt open: at most this many reads per pipe after the program exited.
constexpr int kMaxDrainReads = 64;
// Reads per ready pipe per poll, so that a chatty program cannot delay the stop check.
constexpr int kReadsPerPoll = 4;

// strerror_r comes in an XSI (int) and a GNU (char*) flavour; accept either.
[[maybe_unused]] std::string pick_error_text(int rc, const char* buf, int err) {
  return rc == 0 ? std::string(buf) : "error " + std::to_string(err);
}
[[maybe_unused]] std::string pick_error_text(const char* text, const char* /*buf*/, int /*err*/) {
  return std::string(text);
}
std::string error_text(int err) {
  char buf[256] = {};
  return pick_error_text(strerror_r(err, buf, sizeof buf), buf, err);
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGHUP:
      return "SIGHUP";
    case SIGINT:
      return "SIGINT";
    case SIGQUIT:
      return "SIGQUIT";
    case SIGILL:
      return "SIGILL";
    case SIGTRAP:
      return "SIGTRAP";
    case SIGABRT:
      return "SIGABRT";
    case SIGBUS:
      return "SIGBUS";
    case SIGFPE:
      return "SIGFPE";
    case SIGKILL:
      return "SIGKILL";
    case SIGUSR1:
      return "SIGUSR1";
    case SIGSEGV:
      return "SIGSEGV";
    case SIGUSR2:
      return "SIGUSR2";
    case SIGPIPE:
      return "SIGPIPE";
    case SIGALRM:
      return "SIGALRM";
    case SIGTERM:
      return "SIGTERM";
    case SIGCHLD:
      return "SIGCHLD";
    case SIGCONT:
      return "SIGCONT";
    case SIGSTOP:
      return "SIGSTOP";
    case SIGTSTP:
      return "SIGTSTP";
    case SIGTTIN:
      return "SIGTTIN";
    case SIGTTOU:
      return "SIGTTOU";
    case SIGURG:
      return "SIGURG";
    case SIGXCPU:
      return "SIGXCPU";
    case SIGXFSZ:
      return "SIGXFSZ";
    case SIGVTALRM:
      return "SIGVTALRM";
    case SIGPROF:
      return "SIGPROF";
    case SIGSYS:
      return "SIGSYS";
    default:
      return "unknown signal";
  }
}

// RFC 3339 in UTC: "2026-11-23T13:00:00Z", with ".mmm" only when the milliseconds are not 0.
std::string rfc3339_utc(int64_t unix_ms) {
  int64_t secs = unix_ms / 1000;
  int64_t ms = unix_ms % 1000;
  if (ms < 0) {  // floor, so that times before 1970 still print correctly
    ms += 1000;
    secs -= 1;
  }
  time_t t = static_cast<time_t>(secs);
  struct tm tm_utc {};
  if (gmtime_r(&t, &tm_utc) == nullptr) return std::to_string(unix_ms) + "ms";
  char buf[64];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm_utc);
  std::string out(buf, n);
  if (ms != 0) {
    char frac[8];
    snprintf(frac, sizeof frac, ".%03d", static_cast<int>(ms));
    out += frac;
  }
  out += 'Z';
  return out;
}

// Keeps the last `limit` bytes appended to it.
class Tail {
 public:
  explicit Tail(size_t limit) : limit_(limit) {}
  void append(const char* data, size_t n) {
    if (limit_ == 0) return;
    if (n >= limit_) {
      buf_.assign(data + (n - limit_), limit_);
      return;
    }
    buf_.append(data, n);
    // Trim lazily so that many small writes cost amortized O(1) per byte.
    if (buf_.size() > 2 * limit_) buf_.erase(0, buf_.size() - limit_);
  }
  std::string take() {
    if (buf_.size() > limit_) buf_.erase(0, buf_.size() - limit_);
    return std::move(buf_);
  }

 private:
  size_t limit_;
  std::string buf_;
};

// Owns a file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Closes the descriptor held, if any, and takes ownership of `fd`.
  void reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// A pipe whose both ends are close-on-exec, so that executions running at the same time
// never inherit each other's pipes; posix_spawn's dup2 clears the flag on the child's copy.
struct Pipe {
  Fd read_end;
  Fd write_end;
};

int make_pipe(Pipe& p) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return errno;
  p.read_end.reset(fds[0]);
  p.write_end.reset(fds[1]);
  // Only the parent's end is non-blocking: the flag belongs to the open file description,
  // and the program should see an ordinary blocking stdout.
  int flags = fcntl(fds[0], F_GETFL);
  if (flags < 0 || fcntl(fds[0], F_SETFL, flags | O_NONBLOCK) != 0) return errno;
  return 0;
}

// Reads from `fd` into `tail` without blocking, at most `max_reads` times. Resets `fd` at EOF
// or on a read error.
void read_available(Fd& fd, Tail& tail, int max_reads) {
  char buf[16384];
  for (int i = 0; i < max_reads && fd.valid(); ++i) {
    ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n > 0) {
      tail.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      fd.reset();
    } else if (errno == EINTR) {
      continue;
    } else {
      if (errno != EAGAIN && errno != EWOULDBLOCK) fd.reset();
      return;
    }
  }
}

// posix_spawn attributes and file actions, destroyed on scope exit.
class SpawnSetup {
 public:
  SpawnSetup() {
    attr_ok_ = posix_spawnattr_init(&attr_) == 0;
    actions_ok_ = posix_spawn_file_actions_init(&actions_) == 0;
  }
  ~SpawnSetup() {
    if (attr_ok_) posix_spawnattr_destroy(&attr_);
    if (actions_ok_) posix_spawn_file_actions_destroy(&actions_);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;

  // Returns 0 or an errno value.
  int configure(int out_fd, int err_fd, const std::string& cwd) {
    if (!attr_ok_ || !actions_ok_) return ENOMEM;
    // The child leads a new process group (pgid = its pid), so a stop signals everything it
    // started. Its signal mask is emptied and all signals are reset to their defaults: the
    // daemon may block or ignore signals (SIGTERM for sigwait, SIGPIPE) and both would
    // otherwise be inherited across exec.
    sigset_t empty;
    sigset_t all;
    sigemptyset(&empty);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    int rc = posix_spawnattr_setflags(
        &attr_, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (rc == 0) rc = posix_spawnattr_setpgroup(&attr_, 0);
    if (rc == 0) rc = posix_spawnattr_setsigmask(&attr_, &empty);
    if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr_, &all);
    if (rc == 0) rc = posix_spawn_file_actions_addopen(&actions_, 0, "/dev/null", O_RDONLY, 0);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&actions_, out_fd, 1);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&actions_, err_fd, 2);
    if (rc == 0 && !cwd.empty()) {
      rc = posix_spawn_file_actions_addchdir_np(&actions_, cwd.c_str());
    }
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    // Descriptors the daemon opened without O_CLOEXEC (sockets, files) stay out of the child.
    if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&actions_, 3);
#endif
    return rc;
  }

  const posix_spawnattr_t* attr() const { return &attr_; }
  const posix_spawn_file_actions_t* actions() const { return &actions_; }

 private:
  bool attr_ok_ = false;
  bool actions_ok_ = false;
  posix_spawnattr_t attr_;
  posix_spawn_file_actions_t actions_;
};

// Builds the child's environment: the daemon's `environ` with `overrides` replacing or adding
// variables.
std::vector<std::string> build_environment(const std::map<std::string, std::string>& overrides) {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    size_t eq = entry.find('=');
    std::string name(entry.substr(0, eq));
    if (overrides.count(name) == 0) out.emplace_back(entry);
  }
  for (const auto& [name, value] : overrides) out.push_back(name + "=" + value);
  return out;
}

std::vector<char*> as_argv(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

bool is_transient(int err) {
  return err == EAGAIN || err == ENOMEM || err == EMFILE || err == ENFILE;
}

// Appended, not `"\"" + std::string(s) + ...`: GCC 12 at -O3 reports a false -Wrestrict on that.
std::string quote(std::string_view s) {
  std::string q;
  q.reserve(s.size() + 2);
  q += '"';
  q += s;
  q += '"';
  return q;
}

std::string format_output(std::string out, std::string err) {
  if (!err.empty()) {
    if (!out.empty() && out.back() != '\n') out += '\n';
    out += "--- stderr ---\n";
    out += err;
  }
  return out;
}

class Shell final : public schedd::Executor {
 public:
  schedd::Result run(schedd::Context& ctx) override {
    const schedd::Params& params = ctx.params();
    const std::string command = params.string("command");
    if (command.empty()) return schedd::Result::failed_permanently("param \"command\" is empty");
    const std::vector<std::string> args =
        params.has("args") ? params.list("args") : std::vector<std::string>{};
    std::map<std::string, std::string> env =
        params.has("env") ? params.map("env") : std::map<std::string, std::string>{};
    const std::string cwd = params.string_or("cwd", "");
    const milliseconds kill_grace = params.duration_or("kill_grace", kDefaultKillGrace);
    const int64_t output_limit = params.integer_or("output_limit", kDefaultOutputLimit);
    if (output_limit < 0) {
      return schedd::Result::failed_permanently(
          schedd::format("param \"output_limit\" must not be negative, got {}", output_limit));
    }

    env["SCHEDD_EXECUTION_ID"] = std::string(ctx.execution_id());
    env["SCHEDD_KEY"] = std::string(ctx.key());
    env["SCHEDD_ATTEMPT"] = std::to_string(ctx.attempt());
    env["SCHEDD_HELPER"] = std::string(ctx.name());
    env["SCHEDD_LANE"] = std::string(ctx.lane());
    env["SCHEDD_DUE"] = rfc3339_utc(ctx.raw().due_unix_ms);
    env["SCHEDD_FENCE"] = std::to_string(ctx.fence());

    if (ctx.stop_requested()) return schedd::Result::cancelled("stopped before start");

    // Everything the child needs is built before spawning.
    std::vector<std::string> argv_strings;
    argv_strings.reserve(args.size() + 1);
    argv_strings.push_back(command);
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv = as_argv(argv_strings);
    std::vector<std::string> env_strings = build_environment(env);
    std::vector<char*> envp = as_argv(env_strings);

    Pipe out_pipe;
    Pipe err_pipe;
    int rc = make_pipe(out_pipe);
    if (rc == 0) rc = make_pipe(err_pipe);
    if (rc != 0) return schedd::Result::failed("cannot create pipes: " + error_text(rc));

    SpawnSetup setup;
    rc = setup.configure(out_pipe.write_end.get(), err_pipe.write_end.get(), cwd);
    if (rc != 0) return schedd::Result::failed("cannot prepare to spawn: " + error_text(rc));

    pid_t pid = -1;
    rc = posix_spawnp(&pid, command.c_str(), setup.actions(), setup.attr(), argv.data(),
                      envp.data());
    out_pipe.write_end.reset();
    err_pipe.write_end.reset();
    if (rc != 0) {
      std::string message = "cannot run " + quote(command);
      if (!cwd.empty()) message += " in " + quote(cwd);
      message += ": " + error_text(rc);
      if (is_transient(rc)) return schedd::Result::failed(message);
      return schedd::Result::failed_permanently(message);
    }
    ctx.log().debug("started {} as pid {}", quote(command), pid);

    return supervise(ctx, pid, out_pipe.read_end, err_pipe.read_end,
                     static_cast<size_t>(output_limit), kill_grace);
  }

 private:
  // Reads the pipes and waits for the child `pid` (also its process group id) to exit,
  // terminating the group on a stop request. Always reaps the child.
  static schedd::Result supervise(schedd::Context& ctx, pid_t pid, Fd& out_fd, Fd& err_fd,
                                  size_t output_limit, milliseconds kill_grace) {
    Tail out(output_limit);
    Tail err(output_limit);
    const auto start = steady_clock::now();
    bool stopping = false;
    bool killed = false;
    steady_clock::time_point kill_at{};
    int wstatus = 0;
    int wait_error = 0;

    milliseconds closed_wait{1};
    for (;;) {
      if (!stopping && ctx.stop_requested()) {
        stopping = true;
        kill_at = steady_clock::now() + kill_grace;
        ctx.log().info("stop requested: sending SIGTERM to process group {}", pid);
        kill(-pid, SIGTERM);
      }
      if (stopping && !killed && steady_clock::now() >= kill_at) {
        killed = true;
        ctx.log().warn("process group {} still running after {} ms: sending SIGKILL", pid,
                       kill_grace.count());
        kill(-pid, SIGKILL);
      }

      pollfd fds[2];
      nfds_t nfds = 0;
      Fd* owners[2];
      for (Fd* fd : {&out_fd, &err_fd}) {
        if (!fd->valid()) continue;
        fds[nfds] = pollfd{fd->get(), POLLIN, 0};
        owners[nfds] = fd;
        ++nfds;
      }
      if (nfds == 0) {
        // Both pipes are closed: the exit is usually a moment away. Wait with a backoff from
        // 1 ms (a fixed 20 ms added that much to short commands), waking at once on a stop.
        ctx.wait_for_stop(closed_wait);
        closed_wait = std::min(closed_wait * 2, kPollInterval);
      } else if (poll(fds, nfds, static_cast<int>(kPollInterval.count())) > 0) {
        for (nfds_t i = 0; i < nfds; ++i) {
          if (fds[i].revents == 0) continue;
          read_available(*owners[i], owners[i] == &out_fd ? out : err, kReadsPerPoll);
        }
      }

      pid_t r = waitpid(pid, &wstatus, WNOHANG);
      if (r == pid) break;
      if (r < 0 && errno != EINTR) {
        wait_error = errno;
        break;
      }
    }

    if (stopping && !killed) {
      // The program exited within the grace period; take down whatever it left behind.
      kill(-pid, SIGKILL);
    }
    read_available(out_fd, out, kMaxDrainReads);
    read_available(err_fd, err, kMaxDrainReads);
    std::string output = format_output(out.take(), err.take());

    if (wait_error != 0) {
      // Only possible if something else reaped the child (SIGCHLD ignored, waitpid(-1)).
      kill(-pid, SIGKILL);
      return schedd::Result::failed(
          "lost track of pid " + std::to_string(pid) + ": " + error_text(wait_error),
          std::move(output));
    }

    std::string how;
    if (WIFEXITED(wstatus)) {
      how = "exit code " + std::to_string(WEXITSTATUS(wstatus));
    } else if (WIFSIGNALED(wstatus)) {
      int sig = WTERMSIG(wstatus);
      how = schedd::format("killed by signal {} ({})", sig, signal_name(sig));
    } else {
      how = "wait status " + std::to_string(wstatus);
    }

    if (stopping) {
      auto waited = std::chrono::duration_cast<milliseconds>(steady_clock::now() - start);
      std::string message = schedd::format("stopped after {} ms: ", waited.count());
      if (killed) {
        message += schedd::format("still running {} ms after SIGTERM, ", kill_grace.count());
      }
      message += how;
      return schedd::Result::cancelled(std::move(message), std::move(output));
    }
    if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) {
      return schedd::Result::succeeded(std::move(output));
    }
    return schedd::Result::failed(how, std::move(output));
  }
};

}  // namespace

SCHEDD_PLUGIN("shell", "1.0.0") {
  registrar.add<Shell>("shell", "Runs a program in its own process group and records its output")
      .required("command", schedd::ParamType::kString, "Program to run, looked up in PATH")
      .optional("args", schedd::ParamType::kStringList, "[]", "Arguments passed to the program")
      .optional("env", schedd::ParamType::kStringMap, std::nullopt,
                "Extra environment variables, on top of the daemon's")
      .optional("cwd", schedd::ParamType::kString, std::nullopt,
                "Working directory (default: the daemon's)")
      .optional("kill_grace", schedd::ParamType::kDuration, "\"5s\"",
                "Time between SIGTERM and SIGKILL after a stop request")
      .optional("output_limit", schedd::ParamType::kInt, "4096",
                "Bytes kept from the end of stdout, and of stderr");
}
