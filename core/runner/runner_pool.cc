#include "core/runner/runner_pool.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <functional>
#include <future>
#include <thread>

#include "core/common/thread_name.h"
#include "core/runner/process_tree.h"

extern char** environ;

namespace schedd::runner {
namespace {

// strerror(err), naming the daemon's descriptor limit when that is what ran out.
std::string errno_text(int err) {
  std::string text = strerror(err);
  rlimit rl{};
  if ((err == EMFILE || err == ENFILE) && getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
      rl.rlim_cur != RLIM_INFINITY) {
    text += " (RLIMIT_NOFILE " + std::to_string(rl.rlim_cur) + ")";
  }
  return text;
}

// The longest crash-loop backoff a run waits out for its runner; beyond it the attempt fails.
constexpr std::chrono::milliseconds kMaxBackoffWait{100};

using SteadyClock = std::chrono::steady_clock;

// Forks every runner from one thread that lives as long as the process: PR_SET_PDEATHSIG
// fires when the thread that forked the child exits, not the process, so a worker thread
// that ends (shutdown, a written-off worker) must not be a runner's parent thread.
class Spawner {
 public:
  static Spawner& instance() {
    static Spawner* s = new Spawner();  // never destroyed: runners may outlive statics' order
    return *s;
  }
  // Runs `fork_job` on the spawner thread and returns its result.
  pid_t run(std::function<pid_t()> fork_job) {
    std::packaged_task<pid_t()> task(std::move(fork_job));
    auto result = task.get_future();
    {
      std::lock_guard lock(mu_);
      jobs_.push_back(std::move(task));
    }
    cv_.notify_one();
    return result.get();
  }

 private:
  Spawner() {
    std::thread([this] {
      name_this_thread("schedd-spawner");
      while (true) {
        std::packaged_task<pid_t()> job;
        {
          std::unique_lock lock(mu_);
          cv_.wait(lock, [&] { return !jobs_.empty(); });
          job = std::move(jobs_.front());
          jobs_.pop_front();
        }
        job();
      }
    }).detach();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::packaged_task<pid_t()>> jobs_;
};

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev == nullptr ? "signal " + std::to_string(sig) : std::string("SIG") + abbrev;
}

int ms_until(SteadyClock::time_point t) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(t - SteadyClock::now()).count();
  if (left < 0) return 0;
  return static_cast<int>(std::min<int64_t>(left, 1 << 30));
}

void drain_eventfd(int fd) {
  uint64_t v;
  [[maybe_unused]] ssize_t n = ::read(fd, &v, sizeof v);
}

}  // namespace

std::string plugin_label(const std::filesystem::path& plugin_file, std::string_view executor) {
  return "plugin " + plugin_file.filename().string() + " (executor " + std::string(executor) + ")";
}

StatusOr<std::unique_ptr<RunnerProcess>> RunnerProcess::start(const RunnerSettings& settings) {
  const std::string file = settings.plugin_file.string();
  int data[2], control[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, data) != 0) {
    return unavailable(file + ": cannot start a runner: socketpair: " + errno_text(errno));
  }
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, control) != 0) {
    int e = errno;
    close(data[0]);
    close(data[1]);
    return unavailable(file + ": cannot start a runner: socketpair: " + errno_text(e));
  }
  // Everything the child needs is built before fork: between fork and exec only
  // async-signal-safe calls are allowed in a multi-threaded parent.
  const std::string binary = settings.runner_binary.string();
  std::vector<std::string> args = {binary,
                                   "--plugin",
                                   file,
                                   "--protocol",
                                   std::to_string(kProtocolVersion),
                                   "--data-fd",
                                   "3",
                                   "--control-fd",
                                   "4",
                                   "--output-tail",
                                   std::to_string(settings.output_tail),
                                   "--log-rate",
                                   std::to_string(settings.log_rate)};
  if (settings.limits.cpu) {
    args.push_back("--cpu-limit-ms");
    args.push_back(std::to_string(settings.limits.cpu->count()));
  }
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view v(*e);
    if (v.starts_with(std::string(kRunnerMarkVar) + "=") ||
        v.starts_with(std::string(kNodeMarkVar) + "=")) {
      continue;
    }
    env.emplace_back(v);
  }
  env.push_back(std::string(kRunnerMarkVar) + "=" + self_mark());
  env.push_back(std::string(kNodeMarkVar) + "=" + settings.node);
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = getpid();
  const RunnerLimits limits = settings.limits;
  const bool root = geteuid() == 0;
  const int child_data = data[1], child_control = control[1];
  // For a kernel without close_range (before 5.9): close() every descriptor below the limit.
  rlimit nofile{};
  const int max_fd = getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY
                         ? static_cast<int>(std::min<rlim_t>(nofile.rlim_cur, 1 << 20))
                         : 1 << 16;

  pid_t pid = Spawner::instance().run([&]() -> pid_t {
    pid_t p = fork();
    if (p != 0) return p;
    // Child: async-signal-safe calls only.
    setsid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the daemon died before the line above
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (limits.memory_bytes) {
      rlimit rl{*limits.memory_bytes, *limits.memory_bytes};
      setrlimit(RLIMIT_AS, &rl);
    }
    if (limits.open_files) {
      rlimit rl{*limits.open_files, *limits.open_files};
      setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (root && limits.gid) {
      if (setgroups(0, nullptr) != 0 || setgid(*limits.gid) != 0) _exit(126);
    }
    if (root && limits.uid) {
      if (setuid(*limits.uid) != 0) _exit(126);
    }
    // fds 3 and 4 are the sockets; the dups clear FD_CLOEXEC. Move them above 4 first so
    // that neither dup2 overwrites the other.
    int d = fcntl(child_data, F_DUPFD_CLOEXEC, 10);
    int c = fcntl(child_control, F_DUPFD_CLOEXEC, 10);
    if (d < 0 || c < 0 || dup2(d, 3) < 0 || dup2(c, 4) < 0) _exit(127);
    if (devnull >= 0) dup2(devnull, 0);
    // Nothing else of the daemon's goes with it: a descriptor opened without FD_CLOEXEC (an
    // accepted API connection, a store's socket) would outlive the daemon's close of it in
    // the runner, and a client reusing that kept-alive connection would wait on a socket
    // nobody reads.
    if (close_range(5, ~0U, 0) != 0) {
      for (int fd = 5; fd < max_fd; ++fd) close(fd);
    }
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  });
  int spawn_errno = errno;
  if (devnull >= 0) close(devnull);
  close(data[1]);
  close(control[1]);
  if (pid < 0) {
    close(data[0]);
    close(control[0]);
    return unavailable(file + ": cannot start a runner: fork: " + errno_text(spawn_errno));
  }

  std::unique_ptr<RunnerProcess> r(new RunnerProcess());
  r->settings_ = settings;
  r->pid_ = pid;
  r->data_fd_ = data[0];
  r->control_fd_ = control[0];
  r->wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  r->reader_ = std::make_unique<FrameReader>(r->data_fd_);

  // The handshake: HELLO or LOAD_ERROR within the load time limit.
  const auto until = SteadyClock::now() + settings.load_timeout;
  while (true) {
    auto frame = r->reader_->next();
    if (!frame.is_ok()) {
      r->kill_and_reap();
      return unavailable(file + ": runner protocol error at start: " + frame.status().message());
    }
    if (frame->has_value()) {
      const Frame& f = **frame;
      if (f.type == FrameType::kLoadError) {
        auto m = decode_load_error(f.payload);
        r->kill_and_reap();
        if (!m.is_ok()) return unavailable(file + ": " + m.status().message());
        return failed_precondition(file + ": " + *m);
      }
      if (f.type != FrameType::kHello) {
        r->kill_and_reap();
        return unavailable(file + ": runner protocol error at start: frame type " +
                           std::to_string(static_cast<int>(f.type)) + " before HELLO");
      }
      auto hello = decode_hello(f.payload);
      if (!hello.is_ok()) {
        r->kill_and_reap();
        return unavailable(file + ": runner handshake refused: " + hello.status().message());
      }
      r->hello_ = std::move(*hello);
      for (auto& e : r->hello_.executors) e.plugin_file = file;
      return r;
    }
    pollfd p{r->data_fd_, POLLIN, 0};
    int left = ms_until(until);
    if (left == 0 || poll(&p, 1, left) == 0) {
      if (SteadyClock::now() < until) continue;
      r->kill_and_reap();
      return Status(StatusCode::kDeadlineExceeded,
                    file + ": loading the plugin took longer than " +
                        std::to_string(settings.load_timeout.count()) +
                        " ms (a static constructor that blocks?); its runner was killed");
    }
    auto filled = r->reader_->fill();
    if (!filled.is_ok()) {
      int status = r->reap_after_eof();
      if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        return unavailable(file + ": cannot execute the runner " + binary);
      }
      return unavailable(file + ": the runner " + r->describe_exit(status, "") +
                         " while loading the plugin");
    }
  }
}

RunnerProcess::~RunnerProcess() {
  if (!reaped_ && pid_ > 0) {
    // Closing the sockets tells an idle runner to leave; it kills its session on the way.
    close(data_fd_);
    close(control_fd_);
    data_fd_ = control_fd_ = -1;
    reap_after_eof();
  }
  if (data_fd_ >= 0) close(data_fd_);
  if (control_fd_ >= 0) close(control_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

int RunnerProcess::kill_and_reap() {
  if (reaped_) return 0;
  kill_session(pid_, std::chrono::milliseconds(200));
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
  healthy_ = false;
  return status;
}

int RunnerProcess::reap_after_eof() {
  if (reaped_) return 0;
  int status = 0;
  for (int i = 0; i < 1000; ++i) {
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      healthy_ = false;
      // What it started dies with it, whatever it was doing.
      kill_session(pid_, std::chrono::milliseconds(200));
      return status;
    }
    if (r < 0 && errno != EINTR) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return kill_and_reap();
}

std::string RunnerProcess::describe_exit(int status, std::string_view executor) const {
  std::string who = executor.empty() ? "" : plugin_label(settings_.plugin_file, executor) + " ";
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    std::string s = who + "crashed: " + signal_name(sig);
    if (sig == SIGXCPU) s += " (its CPU time limit)";
    return s;
  }
  if (WIFEXITED(status)) {
    int code = WEXITSTATUS(status);
    if (code == 86) return who + "was ended by its runner at the run's hard deadline";
    return who + "exited with status " + std::to_string(code);
  }
  return who + "ended (wait status " + std::to_string(status) + ")";
}

uint64_t RunnerProcess::rss_bytes() const {
  std::ifstream in("/proc/" + std::to_string(pid_) + "/statm");
  uint64_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

RunOutcome RunnerProcess::run(const RunRequest& request, const std::string& executor,
                              StopSource& stop) {
  RunOutcome out;
  BatchItem item{&request, &stop};
  run_batch(std::span<BatchItem>(&item, 1), executor,
            [&](std::size_t, RunOutcome o) { out = std::move(o); });
  return out;
}

std::size_t RunnerProcess::run_batch(std::span<BatchItem> items, const std::string& executor,
                                     const BatchDone& done) {
  const auto started = SteadyClock::now();
  crashed_ = false;
  const std::string label = plugin_label(settings_.plugin_file, executor);
  // Ends item `i` without a result from the runner; the runner is not usable afterwards.
  // An item's StopSource may be gone once `done` was called for it (the dispatcher's record
  // of the run ends there): detach first, and never touch the item again.
  std::size_t attached = 0;  // items [0, attached) have the wake fd attached
  auto finish_item = [&](std::size_t i, RunOutcome out) {
    if (i < attached) items[i].stop->attach_fd(-1);
    done(i, std::move(out));
  };
  auto fail = [&](std::size_t i, RunStatus status, std::string message) {
    RunOutcome out;
    out.status = status;
    out.message = std::move(message);
    out.duration = SteadyClock::now() - started;
    healthy_ = false;
    for (std::size_t j = i + 1; j < attached; ++j) items[j].stop->attach_fd(-1);
    finish_item(i, std::move(out));
    return i + 1;
  };
  if (!healthy_ || items.empty()) return 0;

  // Every RUN of the batch in one write: the runner runs them one after another.
  struct State {
    uint64_t seq = 0;
    int64_t hard_ns = 0;
    bool stop_sent = false;
  };
  std::vector<State> state(items.size());
  std::string frames;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const RunRequest& request = *items[i].request;
    RunFrame run;
    run.seq = state[i].seq = ++seq_;
    run.executor = executor;
    run.execution_id = request.execution_id;
    run.origin = static_cast<int32_t>(request.origin);
    run.name = request.name;
    run.key = request.key;
    run.lane = request.lane;
    run.attempt = request.attempt;
    run.due_unix_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(request.due.time_since_epoch())
            .count();
    if (request.deadline) {
      run.deadline_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 request.deadline->time_since_epoch())
                                 .count();
    }
    run.fence = request.fence;
    run.hard_deadline_ns = state[i].hard_ns =
        request.hard_deadline_ns ? request.hard_deadline_ns->load() : 0;
    run.params = request.params;
    encode(run, frames);
  }
  runs_ += items.size();
  // The data socket stays blocking for writes (the frames go out whole, the runner reads
  // them whenever it is idle); reads below only follow a poll that said there is data.
  if (!write_all(data_fd_, frames).is_ok()) {
    int status = reap_after_eof();
    crashed_ = true;
    return fail(0, RunStatus::kFailed, describe_exit(status, executor) + " before the run started");
  }

  for (auto& item : items) item.stop->attach_fd(wake_fd_);
  attached = items.size();

  std::size_t cur = 0;  // the item the runner is on (results come in order)
  std::optional<SteadyClock::time_point> kill_at;  // of `cur`, after its stop request
  while (cur < items.size()) {
    const RunRequest& request = *items[cur].request;
    // Frames already read first: a RESULT may be buffered behind LOG frames.
    auto next = reader_->next();
    if (!next.is_ok()) {
      kill_and_reap();
      return fail(cur, RunStatus::kFailed,
                  label + ": runner protocol error: " + next.status().message() + "; killed");
    }
    if (next->has_value()) {
      const Frame& f = **next;
      bool bad = false;
      switch (f.type) {
        case FrameType::kLog: {
          auto m = decode_log(f.payload);
          if (!m.is_ok()) {
            bad = true;
            break;
          }
          if (m->seq != state[cur].seq) continue;
          if (request.on_log) {
            request.on_log(m->level, m->message);
          } else {
            auto lvl = m->level >= 4   ? spdlog::level::err
                       : m->level == 3 ? spdlog::level::warn
                       : m->level <= 1 ? spdlog::level::debug
                                       : spdlog::level::info;
            spdlog::log(lvl, "[{}] {}: {}", request.execution_id, executor, m->message);
          }
          continue;
        }
        case FrameType::kProgress: {
          auto m = decode_progress(f.payload);
          if (!m.is_ok()) {
            bad = true;
            break;
          }
          if (m->seq == state[cur].seq && request.on_progress) {
            request.on_progress(m->fraction, m->message);
          }
          continue;
        }
        case FrameType::kResult: {
          auto m = decode_result(f.payload);
          if (!m.is_ok() || m->seq != state[cur].seq) {
            bad = true;
            break;
          }
          RunOutcome out;
          out.message = std::move(m->message);
          out.output = std::move(m->output);
          out.duration = std::chrono::nanoseconds(m->duration_ns);
          switch (m->status) {
            case 0:
            case 1:
            case 2:
            case 3:
              out.status = static_cast<RunStatus>(m->status);
              break;
            default:
              out.status = RunStatus::kFailedPermanent;
              out.message = "executor returned unknown status " + std::to_string(m->status);
          }
          finish_item(cur, std::move(out));
          ++cur;
          kill_at.reset();
          if (cur < items.size() && items[cur].stop->stop_requested() && state[cur].stop_sent) {
            kill_at = SteadyClock::now() + settings_.kill_grace;
          }
          continue;
        }
        default:
          bad = true;
      }
      if (bad) {
        // A frame that does not decode, a result out of order, or a type a runner never
        // sends.
        kill_and_reap();
        return fail(cur, RunStatus::kFailed,
                    label + ": runner protocol error: unexpected or bad frame (type " +
                        std::to_string(static_cast<int>(f.type)) + "); killed");
      }
    }

    // Stop requests and deadline moves, for the current run and the batch's later ones.
    for (std::size_t i = cur; i < items.size(); ++i) {
      if (items[i].stop->stop_requested() && !state[i].stop_sent) {
        std::string frame;
        encode(StopFrame{state[i].seq}, frame);
        (void)write_all(control_fd_, frame);  // a dead runner shows up as EOF below
        state[i].stop_sent = true;
        if (i == cur) kill_at = SteadyClock::now() + settings_.kill_grace;
      }
      if (items[i].request->hard_deadline_ns) {
        int64_t now_hard = items[i].request->hard_deadline_ns->load();
        if (now_hard != state[i].hard_ns) {
          state[i].hard_ns = now_hard;
          std::string frame;
          encode(ExtendFrame{state[i].seq, now_hard}, frame);
          (void)write_all(control_fd_, frame);
        }
      }
    }
    std::optional<SteadyClock::time_point> wake_at = kill_at;
    if (state[cur].hard_ns != 0) {
      // The runner ends itself at the hard deadline; a runner that is itself stopped
      // (SIGSTOP) or wedged is killed from here a little later.
      auto hard = SteadyClock::time_point(std::chrono::nanoseconds(state[cur].hard_ns)) +
                  std::chrono::milliseconds(100);
      if (!wake_at || hard < *wake_at) wake_at = hard;
    }
    if (wake_at && SteadyClock::now() >= *wake_at) {
      kill_and_reap();
      if (kill_at && SteadyClock::now() >= *kill_at) {
        return fail(cur, RunStatus::kCancelled,
                    label + " did not stop within kill_grace " +
                        std::to_string(settings_.kill_grace.count()) +
                        " ms of the stop request: killed with its process tree");
      }
      return fail(cur, RunStatus::kFailed,
                  label + " still ran at its hard deadline (lease): killed with its process tree");
    }

    pollfd p[2] = {{data_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int n = poll(p, 2, wake_at ? ms_until(*wake_at) : -1);
    if (n < 0 && errno != EINTR) {
      kill_and_reap();
      return fail(cur, RunStatus::kFailed, label + ": poll: " + strerror(errno));
    }
    if (p[1].revents & POLLIN) drain_eventfd(wake_fd_);
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      auto filled = reader_->fill();
      if (!filled.is_ok()) {
        // The runner is gone mid-run: it crashed, exited, or ended itself at its deadline.
        int status = reap_after_eof();
        crashed_ = true;
        std::string why = describe_exit(status, executor);
        if (filled.status().message().find("middle") != std::string::npos) {
          why += " (in the middle of a frame)";
        }
        return fail(cur, state[cur].stop_sent ? RunStatus::kCancelled : RunStatus::kFailed, why);
      }
    }
  }
  return cur;
}

RunnerPool::RunnerPool(RunnerSettings settings, std::unique_ptr<RunnerProcess> first)
    : settings_(std::move(settings)) {
  if (first) {
    ++started_;
    idle_.push_back(std::move(first));
  }
}

RunnerPool::~RunnerPool() { close(); }

StatusOr<std::unique_ptr<RunnerProcess>> RunnerPool::acquire(StopSource& stop) {
  {
    std::unique_lock lock(mu_);
    while (true) {
      if (closed_) return unavailable(settings_.plugin_file.string() + ": runner pool closed");
      if (!idle_.empty()) {
        auto r = std::move(idle_.back());
        idle_.pop_back();
        ++busy_;
        busy_pids_.push_back(r->pid());
        return r;
      }
      auto now = SteadyClock::now();
      if (now >= no_start_before_) break;
      // A plugin in a crash loop. A short backoff is waited out (a stop ends the wait); a
      // longer one fails the attempt at once, so that the lane's workers stay free for the
      // runs of other plugins (the retry policy decides when this run comes back).
      if (no_start_before_ - now > kMaxBackoffWait) {
        const auto left =
            std::chrono::ceil<std::chrono::milliseconds>(no_start_before_ - now).count();
        return unavailable(
            fmt::format("its runner crashed {} times in a row; the next one starts in {} ms",
                        crashes_in_row_, left));
      }
      lock.unlock();
      bool stopped = stop.wait_for(std::chrono::ceil<std::chrono::milliseconds>(
          std::min(no_start_before_ - now, SteadyClock::duration(std::chrono::milliseconds(50)))));
      lock.lock();
      if (stopped) return Status(StatusCode::kCancelled, "stopped while its runner restarted");
    }
    ++busy_;
  }
  auto started = RunnerProcess::start(settings_);
  std::lock_guard lock(mu_);
  if (!started.is_ok()) {
    --busy_;
    ++crashes_;
    ++crashes_in_row_;
    no_start_before_ = SteadyClock::now() + std::chrono::milliseconds(std::min<int64_t>(
                                                5000, 100LL << std::min(crashes_in_row_, 6u)));
    return started.status();
  }
  ++started_;
  busy_pids_.push_back((*started)->pid());
  return std::move(started).value();
}

void RunnerPool::release(std::unique_ptr<RunnerProcess> runner) {
  std::unique_ptr<RunnerProcess> replacement_for;
  {
    std::lock_guard lock(mu_);
    --busy_;
    ++runs_;
    std::erase(busy_pids_, runner->pid());
    if (runner->crashed()) {
      ++crashes_;
      ++crashes_in_row_;
      // The first crash is replaced at once; a plugin that keeps crashing waits 100 ms,
      // doubling to 5 s, so that its crash loop does not become a fork loop.
      if (crashes_in_row_ > 1) {
        no_start_before_ =
            SteadyClock::now() + std::chrono::milliseconds(std::min<int64_t>(
                                     5000, 100LL << std::min(crashes_in_row_ - 2, 6u)));
      }
    } else if (runner->healthy()) {
      crashes_in_row_ = 0;
    }
    if (runner->healthy() && !closed_ && !retiring_) {
      idle_.push_back(std::move(runner));
      cv_.notify_one();
      return;
    }
    replacement_for = std::move(runner);
  }
  // Destroyed (killed and reaped) outside the lock.
  replacement_for.reset();
}

void RunnerPool::retire() {
  std::vector<std::unique_ptr<RunnerProcess>> idle;
  {
    std::lock_guard lock(mu_);
    retiring_ = true;
    idle.swap(idle_);
  }
  idle.clear();  // killed and reaped outside the lock
}

void RunnerPool::close(bool kill_busy) {
  std::vector<std::unique_ptr<RunnerProcess>> idle;
  std::vector<pid_t> busy;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    idle.swap(idle_);
    if (kill_busy) busy = busy_pids_;
  }
  // Their workers see the sockets close and reap them.
  for (pid_t pid : busy) kill_session(pid, std::chrono::milliseconds(0));
  idle.clear();
}

PoolStats RunnerPool::stats() const {
  std::lock_guard lock(mu_);
  PoolStats s;
  s.plugin = settings_.plugin_file.filename().string();
  s.runners = idle_.size() + busy_;
  s.busy = busy_;
  s.runs = runs_;
  s.crashes = crashes_;
  s.started = started_;
  for (const auto& r : idle_) s.rss_bytes += r->rss_bytes();
  return s;
}

IsolatedExecutor::IsolatedExecutor(ExecutorInfo info, std::shared_ptr<RunnerPool> pool)
    : pool_(std::move(pool)) {
  info_ = std::move(info);
}

RunOutcome IsolatedExecutor::run(const RunRequest& request, StopSource& stop) const {
  RunOutcome out;
  BatchItem item{&request, &stop};
  run_batch(std::span<BatchItem>(&item, 1), [&](std::size_t, RunOutcome o) { out = std::move(o); });
  return out;
}

void IsolatedExecutor::run_batch(std::span<BatchItem> items, const BatchDone& done) const {
  std::size_t from = 0;
  while (from < items.size()) {
    auto runner = pool_->acquire(*items[from].stop);
    if (!runner.is_ok()) {
      RunOutcome out;
      out.status = runner.status().code() == StatusCode::kCancelled ? RunStatus::kCancelled
                                                                    : RunStatus::kFailed;
      out.message = plugin_label(pool_->settings().plugin_file, info_.name) +
                    ": no runner: " + runner.status().message();
      done(from, std::move(out));
      ++from;
      continue;
    }
    const RunnerInfo info{(*runner)->pid(), (*runner)->hello().plugin_name,
                          (*runner)->hello().plugin_version, (*runner)->runs()};
    for (std::size_t i = from; i < items.size(); ++i) {
      if (items[i].request->on_runner) items[i].request->on_runner(info);
    }
    // Runs after one that crashed or was killed never started: they go to a new runner.
    std::size_t ended =
        (*runner)->run_batch(items.subspan(from), info_.name,
                             [&](std::size_t i, RunOutcome o) { done(from + i, std::move(o)); });
    pool_->release(std::move(*runner));
    from += std::max<std::size_t>(ended, 1);
  }
}

}  // namespace schedd::runner
