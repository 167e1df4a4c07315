// Out-of-process execution with real processes (core/runner/runner_pool.h, plugin_loader.h):
// the real schedd-runner serving real fixture plugins, and fake runners (bash scripts written
// to a temporary folder, speaking the protocol with printf on fd 3) that break it. Every
// refusal asserts the text an operator reads, and every runner that is refused or killed is
// checked to be gone (reaped: no /proc entry) together with what it started.
#include "core/runner/runner_pool.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/runner/plugin_loader.h"
#include "core/runner/process_tree.h"
#include "core/runner/protocol.h"
#include "tests/testing/temp_dir.h"

extern char** environ;

namespace schedd::runner {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

fs::path fixture(const std::string& name) { return fs::path(SCHEDD_FIXTURE_DIR) / (name + ".so"); }

RunnerSettings settings_for(const fs::path& plugin) {
  RunnerSettings s;
  s.runner_binary = SCHEDD_RUNNER_BINARY;
  s.plugin_file = plugin;
  s.load_timeout = 10s;  // a loaded machine must not turn a slow start into a failure
  return s;
}

RunRequest request_with(ParamList params) {
  RunRequest r;
  r.execution_id = "helper@1700000000";
  r.name = "helper";
  r.key = "k1";
  r.lane = "fast";
  r.attempt = 2;
  r.due = std::chrono::system_clock::time_point(1700000000123ms);
  r.params = std::move(params);
  // Log lines stay out of the test's output (and so out of the flood test's check).
  r.on_log = [](int, std::string_view) {};
  return r;
}

int64_t ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

// A /proc file, whole; "" when it cannot be read. Not std::ifstream: libstdc++'s filebuf
// throws when read() fails, and reading the file of a process that was reaped after the
// open fails with ESRCH.
std::string read_proc(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string out;
  char buf[4096];
  while (true) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  close(fd);
  return out;
}

// Fields of /proc/PID/stat after the command name: [0] state, [1] ppid, [2] pgrp, [3] session.
std::vector<std::string> stat_fields(pid_t pid) {
  std::string line = read_proc("/proc/" + std::to_string(pid) + "/stat");
  auto close = line.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream rest(line.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string f; rest >> f;) fields.push_back(f);
  return fields;
}

// Reaped: not even a zombie is left (only its parent, this process, could have reaped it).
bool reaped(pid_t pid) { return !fs::exists("/proc/" + std::to_string(pid)); }

// Dead: gone or a zombie (an orphan is reaped by init, whenever that gets to it).
bool dead(pid_t pid) {
  auto f = stat_fields(pid);
  return f.empty() || f[0] == "Z" || f[0] == "X";
}

std::vector<pid_t> all_pids() {
  std::vector<pid_t> out;
  std::error_code ec;
  for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos) {
      out.push_back(static_cast<pid_t>(std::stol(name)));
    }
  }
  return out;
}

// Processes of session `sid` that are not zombies.
std::vector<pid_t> live_in_session(pid_t sid) {
  std::vector<pid_t> out;
  for (pid_t p : all_pids()) {
    auto f = stat_fields(p);
    if (f.size() > 3 && f[0] != "Z" && f[0] != "X" && std::stol(f[3]) == sid) out.push_back(p);
  }
  return out;
}

// Processes (zombies included) whose command line contains `needle`.
std::vector<pid_t> pids_with_cmdline(const std::string& needle) {
  std::vector<pid_t> out;
  for (pid_t p : all_pids()) {
    if (p == getpid()) continue;
    std::string cmd = read_proc("/proc/" + std::to_string(p) + "/cmdline");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (cmd.find(needle) != std::string::npos) out.push_back(p);
  }
  return out;
}

pid_t read_pid(const fs::path& file) {
  std::string s = testing::read_file(file);
  return s.empty() ? -1 : static_cast<pid_t>(std::stol(s));
}

// A fake schedd-runner: a bash script in its own folder, started by RunnerProcess::start
// exactly like the real one (fd 3 the data socket, fd 4 the control socket). It records its
// pid in `pid`; in its body, read_frame consumes one whole frame from the daemon.
class FakeRunner {
 public:
  void write(const std::string& body) {
    std::string script = "#!/bin/bash\n";
    script += "echo $$ > '" + (dir_ / "pid").string() + "'\n";
    script +=
        "read_frame() {\n"
        "  local len\n"
        "  len=$(dd bs=4 count=1 iflag=fullblock <&3 2>/dev/null | od -An -tu4 | tr -d ' ')\n"
        "  dd bs=\"$len\" count=1 iflag=fullblock <&3 >/dev/null 2>&1\n"
        "}\n";
    script += body;
    binary_ = dir_.write("fake-runner", script);
    fs::permissions(binary_, fs::perms::owner_all);
  }
  fs::path plugin() const { return dir_ / "fake.so"; }
  RunnerSettings settings() const {
    RunnerSettings s = settings_for(plugin());
    s.runner_binary = binary_;
    return s;
  }
  pid_t pid() const { return read_pid(dir_ / "pid"); }
  // A line starting a background child that records its pid in `child`: killing the
  // runner's session must take it too. It does not hold the protocol sockets (as a real
  // runner's children do not), so the runner's exit is the end of the stream.
  std::string spawn_child() const {
    return "sleep 30 3>&- 4>&- & echo $! > '" + (dir_ / "child").string() + "'\n";
  }
  pid_t child() const { return read_pid(dir_ / "child"); }

  // The script and its child are gone: the script reaped by us, the child dead.
  void expect_gone() const {
    const pid_t p = pid();
    ASSERT_GT(p, 0) << "the fake runner never ran";
    EXPECT_TRUE(reaped(p)) << "runner " << p << " is still there (state "
                           << (stat_fields(p).empty() ? "?" : stat_fields(p)[0]) << ")";
    const pid_t c = child();
    ASSERT_GT(c, 0) << "the fake runner's child never ran";
    EXPECT_TRUE(dead(c)) << "the runner's child " << c << " outlived it";
  }

 private:
  testing::TempDir dir_;
  fs::path binary_;
};

// A bash command writing `bytes` to fd 3.
std::string printf_to_data_fd(std::string_view bytes) {
  std::string cmd = "printf '";
  char buf[8];
  for (unsigned char c : bytes) {
    std::snprintf(buf, sizeof buf, "\\x%02x", c);
    cmd += buf;
  }
  return cmd + "' >&3\n";
}

// The HELLO a fake runner sends: plugin "fake", one executor "fake_exec".
std::string fake_hello(uint32_t protocol = kProtocolVersion) {
  Hello h;
  h.protocol = protocol;
  h.pid = 1;
  h.plugin_name = "fake";
  h.plugin_version = "0.0.1";
  ExecutorInfo e;
  e.name = "fake_exec";
  h.executors.push_back(e);
  std::string out;
  encode(h, out);
  return out;
}

std::string le32(uint32_t v) {
  std::string s;
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

// Kinds of garbage a broken runner may send.
struct Garbage {
  const char* what;
  std::string bytes;
  std::string at_start;  // expected in the refusal at the handshake
  std::string in_run;    // expected in the failure of a run
};

std::vector<Garbage> garbage_kinds() {
  std::mt19937 rng(20240601);
  // Random bytes, starting with a length no frame may have (so the outcome is deterministic).
  std::string random = "\xde\xad\xbe\xef";
  for (int i = 0; i < 64; ++i) random.push_back(static_cast<char>(rng() & 0xff));
  return {
      {"random bytes", random,
       "runner protocol error at start: a frame of 4022250974 bytes (the limit is 16777216)",
       "runner protocol error: a frame of 4022250974 bytes (the limit is 16777216); killed"},
      {"a frame of unknown type", le32(2) + "\x63x",
       "runner protocol error at start: frame type 99 before HELLO",
       "runner protocol error: unexpected or bad frame (type 99); killed"},
      {"a frame of 100 MiB", le32(100u << 20) + "\x05",
       "runner protocol error at start: a frame of 104857600 bytes (the limit is 16777216)",
       "runner protocol error: a frame of 104857600 bytes (the limit is 16777216); killed"},
  };
}

// Sets RLIMIT_CORE to 0 while it lives, so the crashing fixtures leave no core files.
class NoCoreDumps {
 public:
  NoCoreDumps() {
    getrlimit(RLIMIT_CORE, &saved_);
    rlimit none{0, saved_.rlim_max};
    setrlimit(RLIMIT_CORE, &none);
  }
  ~NoCoreDumps() { setrlimit(RLIMIT_CORE, &saved_); }

 private:
  rlimit saved_{};
};

TEST(RunnerPoolTest, StartReadsTheHelloOfAGoodPlugin) {
  auto started = RunnerProcess::start(settings_for(fixture("fx_good")));
  ASSERT_TRUE(started.is_ok()) << started.status().message();
  auto& runner = *started;
  EXPECT_GT(runner->pid(), 0);
  EXPECT_TRUE(runner->healthy());
  const Hello& h = runner->hello();
  EXPECT_EQ(h.protocol, kProtocolVersion);
  EXPECT_EQ(h.pid, runner->pid());
  EXPECT_EQ(h.plugin_name, "fx_good");
  EXPECT_EQ(h.plugin_version, "2.3.4");
  ASSERT_EQ(h.executors.size(), 2u);
  const ExecutorInfo& echo = h.executors[0];
  EXPECT_EQ(echo.name, "fx_echo");
  EXPECT_EQ(echo.description, "Echoes a message");
  EXPECT_EQ(echo.plugin_name, "fx_good");
  EXPECT_EQ(echo.plugin_version, "2.3.4");
  EXPECT_EQ(echo.plugin_file, fixture("fx_good").string());
  ASSERT_EQ(echo.params.size(), 2u);
  EXPECT_EQ(echo.params[0].name, "message");
  EXPECT_EQ(echo.params[0].type, ParamType::kString);
  EXPECT_TRUE(echo.params[0].required);
  EXPECT_EQ(echo.params[0].default_toml, std::nullopt);
  EXPECT_EQ(echo.params[0].description, "What to echo");
  EXPECT_EQ(echo.params[1].name, "times");
  EXPECT_EQ(echo.params[1].type, ParamType::kInt);
  EXPECT_FALSE(echo.params[1].required);
  EXPECT_EQ(echo.params[1].default_toml, "1");
  const ExecutorInfo& outcome = h.executors[1];
  EXPECT_EQ(outcome.name, "fx_outcome");
  ASSERT_EQ(outcome.params.size(), 1u);
  EXPECT_EQ(outcome.params[0].name, "outcome");
  EXPECT_TRUE(outcome.params[0].required);

  // Destroying an idle runner ends it and reaps it.
  const pid_t pid = runner->pid();
  runner.reset();
  EXPECT_TRUE(reaped(pid));
  EXPECT_TRUE(live_in_session(pid).empty());
}

// The daemon's descriptors opened without FD_CLOEXEC (asio's accepted API connections, say)
// do not go with a runner: a kept-alive HTTP connection the daemon closed stayed open in its
// runners, and a client that reused it waited for an answer nobody would write.
TEST(RunnerPoolTest, ARunnerHoldsNoDescriptorOfTheDaemonOtherThanItsSockets) {
  int leak[2];
  ASSERT_EQ(pipe(leak), 0);  // no O_CLOEXEC, as an inheritable descriptor of the daemon
  // Above 4, where the runner's own sockets go (a descriptor there is replaced anyway).
  const int high = fcntl(leak[0], F_DUPFD, 100);
  ASSERT_GE(high, 100);
  struct stat st {};
  ASSERT_EQ(fstat(high, &st), 0);
  const std::string pipe_name = "pipe:[" + std::to_string(st.st_ino) + "]";
  auto started = RunnerProcess::start(settings_for(fixture("fx_good")));
  close(high);
  close(leak[0]);
  close(leak[1]);
  ASSERT_TRUE(started.is_ok()) << started.status().message();
  const pid_t pid = (*started)->pid();
  std::vector<std::string> targets;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    std::error_code ec;
    targets.push_back(entry.path().filename().string() + " -> " +
                      std::filesystem::read_symlink(entry.path(), ec).string());
  }
  ASSERT_FALSE(targets.empty());
  using ::testing::Contains;
  using ::testing::StartsWith;
  for (const auto& t : targets) EXPECT_THAT(t, ::testing::Not(::testing::HasSubstr(pipe_name)));
  // Its own sockets to the daemon are still there, on 3 and 4.
  EXPECT_THAT(targets, Contains(StartsWith("3 -> socket:")));
  EXPECT_THAT(targets, Contains(StartsWith("4 -> socket:")));
}

TEST(RunnerPoolTest, RunsEchoAndEveryOutcomeOnOneWarmRunner) {
  auto started = RunnerProcess::start(settings_for(fixture("fx_good")));
  ASSERT_TRUE(started.is_ok()) << started.status().message();
  auto& runner = *started;
  const pid_t pid = runner->pid();

  RunRequest req =
      request_with({{"message", ParamValue::string("hi")}, {"times", ParamValue::integer(2)}});
  std::vector<std::pair<double, std::string>> progress;
  std::vector<std::pair<int, std::string>> logs;
  req.on_progress = [&](double f, std::string_view m) { progress.emplace_back(f, m); };
  req.on_log = [&](int level, std::string_view m) { logs.emplace_back(level, m); };
  StopSource stop;
  RunOutcome out = runner->run(req, "fx_echo", stop);
  EXPECT_EQ(out.status, RunStatus::kSucceeded) << out.message;
  EXPECT_EQ(out.message, "");
  EXPECT_EQ(out.output,
            "hihi|id=helper@1700000000|name=helper|key=k1|lane=fast|attempt=2|due=1700000000123");
  EXPECT_GT(out.duration.count(), 0);
  EXPECT_EQ(progress,
            (std::vector<std::pair<double, std::string>>{{0.5, "echoed"}, {1.0, "echoed"}}));
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_EQ(logs[0].second, "echo helper@1700000000 x2");

  struct Want {
    const char* outcome;
    RunStatus status;
    const char* message;
    const char* output;
  };
  for (const Want& w :
       {Want{"failed", RunStatus::kFailed, "asked to fail", "partial"},
        Want{"permanent", RunStatus::kFailedPermanent, "asked to fail for good", ""},
        Want{"cancelled", RunStatus::kCancelled, "asked to cancel", ""},
        Want{"succeeded", RunStatus::kSucceeded, "", "fine"}}) {
    SCOPED_TRACE(w.outcome);
    StopSource s;
    RunOutcome o =
        runner->run(request_with({{"outcome", ParamValue::string(w.outcome)}}), "fx_outcome", s);
    EXPECT_EQ(o.status, w.status);
    EXPECT_EQ(o.message, w.message);
    EXPECT_EQ(o.output, w.output);
    EXPECT_FALSE(runner->crashed());
    EXPECT_TRUE(runner->healthy());
  }
  // An executor the plugin does not have fails for good, and the runner stays usable.
  StopSource s;
  RunOutcome none = runner->run(request_with({}), "nope", s);
  EXPECT_EQ(none.status, RunStatus::kFailedPermanent);
  EXPECT_EQ(none.message, "this runner's plugin has no executor \"nope\"");
  EXPECT_TRUE(runner->healthy());
  EXPECT_EQ(runner->pid(), pid);
  EXPECT_EQ(runner->runs(), 6u);
}

TEST(RunnerPoolTest, ProgressAndLogFramesReachTheRequestInOrder) {
  auto started = RunnerProcess::start(settings_for(fixture("fx_progress")));
  ASSERT_TRUE(started.is_ok()) << started.status().message();
  RunRequest req =
      request_with({{"steps", ParamValue::integer(3)}, {"step", ParamValue::duration(10ms)}});
  std::vector<std::string> events;
  req.on_progress = [&](double f, std::string_view m) {
    events.push_back("progress " + std::to_string(f) + " " + std::string(m));
  };
  req.on_log = [&](int level, std::string_view m) {
    events.push_back("log " + std::to_string(level) + " " + std::string(m));
  };
  StopSource stop;
  RunOutcome out = (*started)->run(req, "fx_progress", stop);
  EXPECT_EQ(out.status, RunStatus::kSucceeded) << out.message;
  EXPECT_EQ(out.output, "3 steps");
  EXPECT_EQ(events, (std::vector<std::string>{
                        "progress " + std::to_string(1.0 / 3) + " step 1 of 3",
                        "log 2 step 1 done",
                        "progress " + std::to_string(2.0 / 3) + " step 2 of 3",
                        "log 2 step 2 done",
                        "progress " + std::to_string(1.0) + " step 3 of 3",
                        "log 2 step 3 done",
                    }));
}

// What a plugin starts (with fork and exec, not through the shell plugin's closefrom) must
// not inherit the runner's protocol sockets: a child holding the data socket would hide the
// runner's crash from the daemon (no end of stream while the child lives).
TEST(RunnerPoolTest, TheRunnersProtocolSocketsAreCloseOnExec) {
  auto started = RunnerProcess::start(settings_for(fixture("fx_good")));
  ASSERT_TRUE(started.is_ok()) << started.status().message();
  const pid_t pid = (*started)->pid();
  for (int fd : {3, 4}) {
    SCOPED_TRACE("fd " + std::to_string(fd));
    std::istringstream info(
        read_proc("/proc/" + std::to_string(pid) + "/fdinfo/" + std::to_string(fd)));
    std::string line;
    long flags = -1;
    while (std::getline(info, line)) {
      if (line.rfind("flags:", 0) == 0) flags = std::stol(line.substr(6), nullptr, 8);
    }
    ASSERT_GE(flags, 0) << "no fdinfo";
    EXPECT_TRUE(flags & O_CLOEXEC) << "flags " << std::oct << flags;
  }
}

TEST(RunnerPoolTest, RunnerAnsweringAnotherProtocolIsRefusedNamingBothVersions) {
  FakeRunner fake;
  fake.write(fake.spawn_child() + printf_to_data_fd(fake_hello(999)) + "wait\n");
  const auto t0 = Clock::now();
  auto started = RunnerProcess::start(fake.settings());
  ASSERT_FALSE(started.is_ok());
  // Refused on receipt, not at the 10 s load time limit.
  EXPECT_LT(ms_since(t0), 5000);
  EXPECT_EQ(started.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(started.status().message(),
            fake.plugin().string() +
                ": runner handshake refused: the runner speaks protocol 999, this daemon speaks " +
                std::to_string(kProtocolVersion));
  fake.expect_gone();
}

TEST(RunnerPoolTest, TheRealRunnerRefusesADaemonOfAnotherProtocol) {
  int data[2], control[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, data), 0);
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, control), 0);
  // Above 4 first, so that neither dup2 below lands on the other's source.
  const int d = fcntl(data[1], F_DUPFD_CLOEXEC, 10);
  const int c = fcntl(control[1], F_DUPFD_CLOEXEC, 10);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, d, 3);
  posix_spawn_file_actions_adddup2(&fa, c, 4);
  std::vector<std::string> args = {SCHEDD_RUNNER_BINARY,
                                   "--plugin",
                                   fixture("fx_good").string(),
                                   "--protocol",
                                   "999",
                                   "--data-fd",
                                   "3",
                                   "--control-fd",
                                   "4"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  ASSERT_EQ(posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  for (int fd : {data[1], control[1], d, c}) close(fd);

  FrameReader reader(data[0]);
  std::optional<Frame> frame;
  while (!frame) {
    auto next = reader.next();
    ASSERT_TRUE(next.is_ok()) << next.status().message();
    if (next->has_value()) {
      frame = std::move(**next);
      break;
    }
    auto filled = reader.fill();
    ASSERT_TRUE(filled.is_ok()) << filled.status().message();
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  close(data[0]);
  close(control[0]);
  ASSERT_EQ(frame->type, FrameType::kLoadError);
  auto message = decode_load_error(frame->payload);
  ASSERT_TRUE(message.is_ok()) << message.status().message();
  EXPECT_EQ(*message, "schedd-runner speaks runner protocol " + std::to_string(kProtocolVersion) +
                          ", the daemon asked for 999 (install the runner of the same schedd "
                          "version)");
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 64);
}

TEST(RunnerPoolTest, GarbageAtTheHandshakeIsRefusedAndTheRunnerReaped) {
  for (const Garbage& g : garbage_kinds()) {
    SCOPED_TRACE(g.what);
    FakeRunner fake;
    fake.write(fake.spawn_child() + printf_to_data_fd(g.bytes) + "wait\n");
    const auto t0 = Clock::now();
    auto started = RunnerProcess::start(fake.settings());
    ASSERT_FALSE(started.is_ok());
    EXPECT_LT(ms_since(t0), 5000);
    EXPECT_EQ(started.status().code(), StatusCode::kUnavailable);
    EXPECT_EQ(started.status().message(), fake.plugin().string() + ": " + g.at_start);
    fake.expect_gone();
  }
}

TEST(RunnerPoolTest, GarbageDuringARunFailsItAndKillsTheRunner) {
  std::vector<Garbage> kinds = garbage_kinds();
  // Frames of known types that are wrong here: a RESULT whose payload does not decode, and a
  // second HELLO.
  std::string bad_result;
  encode(ResultFrame{1, 0, "m", "o", 1, 1}, bad_result);
  bad_result[0] = static_cast<char>(bad_result[0] + 1);
  bad_result += "!";
  kinds.push_back({"a RESULT with a trailing byte", bad_result, "",
                   "runner protocol error: unexpected or bad frame (type 5); killed"});
  kinds.push_back({"a HELLO during a run", fake_hello(), "",
                   "runner protocol error: unexpected or bad frame (type 1); killed"});
  for (const Garbage& g : kinds) {
    SCOPED_TRACE(g.what);
    FakeRunner fake;
    fake.write(fake.spawn_child() + printf_to_data_fd(fake_hello()) + "read_frame\n" +
               printf_to_data_fd(g.bytes) + "wait\n");
    auto started = RunnerProcess::start(fake.settings());
    ASSERT_TRUE(started.is_ok()) << started.status().message();
    auto& runner = *started;
    EXPECT_EQ(runner->pid(), fake.pid());
    StopSource stop;
    const auto t0 = Clock::now();
    RunOutcome out = runner->run(request_with({}), "fake_exec", stop);
    EXPECT_LT(ms_since(t0), 5000);
    EXPECT_EQ(out.status, RunStatus::kFailed);
    EXPECT_EQ(out.message, "plugin fake.so (executor fake_exec): " + g.in_run);
    EXPECT_FALSE(runner->healthy());
    fake.expect_gone();
    EXPECT_TRUE(live_in_session(runner->pid()).empty());
  }
}

TEST(RunnerPoolTest, TruncatedResultSaysTheRunnerEndedInTheMiddleOfAFrame) {
  std::string result;
  encode(ResultFrame{1, 0, "a result cut in half", "its output", 1, 10}, result);
  FakeRunner fake;
  fake.write(fake.spawn_child() + printf_to_data_fd(fake_hello()) + "read_frame\n" +
             printf_to_data_fd(result.substr(0, result.size() / 2)) + "exit 0\n");
  auto started = RunnerProcess::start(fake.settings());
  ASSERT_TRUE(started.is_ok()) << started.status().message();
  StopSource stop;
  RunOutcome out = (*started)->run(request_with({}), "fake_exec", stop);
  EXPECT_EQ(out.status, RunStatus::kFailed);
  EXPECT_EQ(out.message,
            "plugin fake.so (executor fake_exec) exited with status 0 (in the middle of a frame)");
  EXPECT_TRUE((*started)->crashed());
  EXPECT_FALSE((*started)->healthy());
  fake.expect_gone();
}

TEST(RunnerPoolTest, CrashesFailTheAttemptNamingPluginExecutorAndHow) {
  NoCoreDumps no_cores;
  struct Want {
    const char* plugin;
    const char* message;
  };
  for (const Want& w :
       {Want{"fx_segv", "plugin fx_segv.so (executor fx_segv) crashed: SIGSEGV"},
        Want{"fx_abort", "plugin fx_abort.so (executor fx_abort) crashed: SIGABRT"},
        Want{"fx_exit", "plugin fx_exit.so (executor fx_exit) exited with status 3"}}) {
    SCOPED_TRACE(w.plugin);
    const RunnerSettings settings = settings_for(fixture(w.plugin));
    auto started = RunnerProcess::start(settings);
    ASSERT_TRUE(started.is_ok()) << started.status().message();
    const pid_t first = (*started)->pid();
    const ExecutorInfo info = (*started)->hello().executors.at(0);
    auto pool = std::make_shared<RunnerPool>(settings, std::move(*started));
    IsolatedExecutor executor(info, pool);
    StopSource stop;
    RunOutcome out = executor.run(request_with({}), stop);
    EXPECT_EQ(out.status, RunStatus::kFailed);
    EXPECT_EQ(out.message, w.message);
    EXPECT_TRUE(reaped(first));
    EXPECT_TRUE(live_in_session(first).empty());
    PoolStats stats = pool->stats();
    EXPECT_EQ(stats.crashes, 1u);
    EXPECT_EQ(stats.runners, 0u);
    EXPECT_EQ(stats.busy, 0u);
    // The pool starts a new runner for the next run (which crashes the same way).
    out = executor.run(request_with({}), stop);
    EXPECT_EQ(out.message, w.message);
    stats = pool->stats();
    EXPECT_EQ(stats.started, 2u);
    EXPECT_EQ(stats.crashes, 2u);
    EXPECT_EQ(stats.runs, 2u);
  }
}

TEST(RunnerPoolTest, PoolReplacesACrashedRunnerAndTheNextRunWorks) {
  NoCoreDumps no_cores;
  const RunnerSettings settings = settings_for(fixture("fx_progress"));
  auto started = RunnerProcess::start(settings);
  ASSERT_TRUE(started.is_ok()) << started.status().message();
  const ExecutorInfo info = (*started)->hello().executors.at(0);
  auto pool = std::make_shared<RunnerPool>(settings, std::move(*started));
  IsolatedExecutor executor(info, pool);

  // A run whose runner dies of SIGSEGV in the middle (sent from here at its first progress).
  StopSource stop;
  auto runner = pool->acquire(stop);
  ASSERT_TRUE(runner.is_ok()) << runner.status().message();
  const pid_t crashed_pid = (*runner)->pid();
  RunRequest req =
      request_with({{"steps", ParamValue::integer(1000)}, {"step", ParamValue::duration(5ms)}});
  bool killed = false;
  req.on_progress = [&](double, std::string_view) {
    if (!killed) killed = ::kill(crashed_pid, SIGSEGV) == 0;
  };
  RunOutcome out = (*runner)->run(req, "fx_progress", stop);
  pool->release(std::move(*runner));
  ASSERT_TRUE(killed);
  EXPECT_EQ(out.status, RunStatus::kFailed);
  EXPECT_EQ(out.message, "plugin fx_progress.so (executor fx_progress) crashed: SIGSEGV");
  EXPECT_TRUE(reaped(crashed_pid));

  // The next run gets a new runner at once and succeeds.
  const auto t0 = Clock::now();
  out = executor.run(
      request_with({{"steps", ParamValue::integer(2)}, {"step", ParamValue::duration(1ms)}}), stop);
  EXPECT_LT(ms_since(t0), 5000);
  EXPECT_EQ(out.status, RunStatus::kSucceeded) << out.message;
  EXPECT_EQ(out.output, "2 steps");
  PoolStats stats = pool->stats();
  EXPECT_EQ(stats.started, 2u);
  EXPECT_EQ(stats.crashes, 1u);
  EXPECT_EQ(stats.runs, 2u);
  EXPECT_EQ(stats.runners, 1u);  // the new one, idle and warm
  EXPECT_EQ(stats.busy, 0u);
  // And that runner is not the one that crashed.
  auto again = pool->acquire(stop);
  ASSERT_TRUE(again.is_ok());
  EXPECT_NE((*again)->pid(), crashed_pid);
  pool->release(std::move(*again));
}

// A reload replaced the plugin: the old pool keeps no runner, but a run claimed before the
// swap still gets one (closing the pool instead failed such runs with "runner pool closed").
TEST(RunnerPoolTest, ARetiredPoolStillRunsButKeepsNoRunner) {
  const RunnerSettings settings = settings_for(fixture("fx_progress"));
  auto started = RunnerProcess::start(settings);
  ASSERT_TRUE(started.is_ok()) << started.status().message();
  const ExecutorInfo info = (*started)->hello().executors.at(0);
  const pid_t warm = (*started)->pid();
  auto pool = std::make_shared<RunnerPool>(settings, std::move(*started));
  IsolatedExecutor executor(info, pool);
  ASSERT_EQ(pool->stats().runners, 1u);
  pool->retire();
  EXPECT_EQ(pool->stats().runners, 0u);
  EXPECT_TRUE(reaped(warm));
  StopSource stop;
  RunOutcome out = executor.run(
      request_with({{"steps", ParamValue::integer(2)}, {"step", ParamValue::duration(1ms)}}), stop);
  EXPECT_EQ(out.status, RunStatus::kSucceeded) << out.message;
  PoolStats stats = pool->stats();
  EXPECT_EQ(stats.runs, 1u);
  EXPECT_EQ(stats.runners, 0u);  // not kept after the run
  EXPECT_EQ(stats.busy, 0u);
}

// A crash loop: the first crash is replaced at once, later ones after a backoff of 100 ms
// doubling to 5 s. Up to 100 ms is waited out (a stop ends the wait); a longer one fails the
// attempt at once, so that a crash-looping plugin never holds its lane's workers from the
// runs of other plugins.
TEST(RunnerPoolTest, CrashBackoffIsWaitedOutWhenShortAndFailsFastWhenLong) {
  NoCoreDumps no_cores;
  const RunnerSettings settings = settings_for(fixture("fx_segv"));
  auto started = RunnerProcess::start(settings);
  ASSERT_TRUE(started.is_ok()) << started.status().message();
  auto pool = std::make_shared<RunnerPool>(settings, std::move(*started));

  // Three crashes in a row; the wait before each next runner: none for the first two (the
  // warm runner, then the first crash is replaced at once), then 100 ms.
  std::vector<int64_t> waits;
  for (int i = 0; i < 3; ++i) {
    StopSource stop;
    const auto t0 = Clock::now();
    auto runner = pool->acquire(stop);
    waits.push_back(ms_since(t0));
    ASSERT_TRUE(runner.is_ok()) << runner.status().message();
    RunOutcome out = (*runner)->run(request_with({}), "fx_segv", stop);
    EXPECT_EQ(out.message, "plugin fx_segv.so (executor fx_segv) crashed: SIGSEGV");
    pool->release(std::move(*runner));
  }
  SCOPED_TRACE(::testing::PrintToString(waits));
  EXPECT_GE(waits[2], 90);
  EXPECT_LT(waits[2], 4000);
  EXPECT_EQ(pool->stats().crashes, 3u);

  // Now the backoff is 200 ms: the next acquire fails at once, saying why.
  {
    StopSource stop;
    const auto t0 = Clock::now();
    auto runner = pool->acquire(stop);
    EXPECT_LT(ms_since(t0), 90);
    ASSERT_FALSE(runner.is_ok());
    EXPECT_EQ(runner.status().code(), StatusCode::kUnavailable);
    EXPECT_THAT(runner.status().message(),
                ::testing::MatchesRegex("its runner crashed 3 times in a row; the next one "
                                        "starts in [0-9]+ ms"));
    EXPECT_EQ(pool->stats().busy, 0u);
    // Through the executor the attempt fails (retried per policy), naming the plugin.
    ExecutorInfo info;
    info.name = "fx_segv";
    IsolatedExecutor executor(info, pool);
    RunOutcome out = executor.run(request_with({}), stop);
    EXPECT_EQ(out.status, RunStatus::kFailed);
    EXPECT_THAT(out.message, ::testing::StartsWith("plugin fx_segv.so (executor fx_segv): no "
                                                   "runner: its runner crashed 3 times"));
  }

  // Once the backoff has passed, a runner starts again.
  std::this_thread::sleep_for(250ms);
  StopSource stop;
  auto runner = pool->acquire(stop);
  ASSERT_TRUE(runner.is_ok()) << runner.status().message();
  pool->release(std::move(*runner));
}

TEST(RunnerPoolTest, StopKillsARunThatIgnoresItAfterKillGrace) {
  RunnerSettings settings = settings_for(fixture("fx_spin"));
  settings.kill_grace = 300ms;
  auto started = RunnerProcess::start(settings);
  ASSERT_TRUE(started.is_ok()) << started.status().message();
  auto& runner = *started;
  const pid_t pid = runner->pid();
  StopSource stop;
  auto run = std::async(std::launch::async,
                        [&] { return runner->run(request_with({}), "fx_spin", stop); });
  // fx_spin reports nothing to wait for: give its run time to begin.
  ASSERT_EQ(run.wait_for(200ms), std::future_status::timeout);
  const auto t0 = Clock::now();
  stop.request_stop();
  RunOutcome out = run.get();
  const int64_t took = ms_since(t0);
  EXPECT_GE(took, 290);
  EXPECT_LT(took, 300 + 1500);
  EXPECT_EQ(out.status, RunStatus::kCancelled);
  EXPECT_EQ(out.message,
            "plugin fx_spin.so (executor fx_spin) did not stop within kill_grace 300 ms of the "
            "stop request: killed with its process tree");
  EXPECT_FALSE(runner->healthy());
  EXPECT_FALSE(runner->crashed());
  EXPECT_TRUE(reaped(pid));
  EXPECT_TRUE(live_in_session(pid).empty());
}

// A stop requested before (or just as) the run starts must reach the plugin like any other:
// a plugin that honours stop ends at once, instead of being killed after kill_grace.
TEST(RunnerPoolTest, StopRequestedAsTheRunStartsReachesThePlugin) {
  RunnerSettings settings = settings_for(fixture("fx_progress"));
  settings.kill_grace = 3s;
  auto started = RunnerProcess::start(settings);
  ASSERT_TRUE(started.is_ok()) << started.status().message();
  auto& runner = *started;
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE("run " + std::to_string(i + 1));
    StopSource stop;
    stop.request_stop();
    const auto t0 = Clock::now();
    RunOutcome out = runner->run(
        request_with({{"steps", ParamValue::integer(200)}, {"step", ParamValue::duration(20ms)}}),
        "fx_progress", stop);
    EXPECT_LT(ms_since(t0), 2000);
    EXPECT_EQ(out.status, RunStatus::kCancelled);
    // The plugin saw the stop at once, or the runner never started it.
    EXPECT_TRUE(out.message == "stopped after 0 of 200 steps" ||
                out.message == "stopped before it started")
        << out.message;
    ASSERT_TRUE(runner->healthy());
  }
}

TEST(RunnerPoolTest, HardDeadlineEndsTheRunWithoutAStopRequest) {
  auto started = RunnerProcess::start(settings_for(fixture("fx_spin")));
  ASSERT_TRUE(started.is_ok()) << started.status().message();
  auto& runner = *started;
  const pid_t pid = runner->pid();
  const auto t0 = Clock::now();
  std::atomic<int64_t> hard{monotonic_ns() + 300'000'000};
  RunRequest req = request_with({});
  req.hard_deadline_ns = &hard;
  StopSource stop;  // never requested
  RunOutcome out = runner->run(req, "fx_spin", stop);
  const int64_t took = ms_since(t0);
  EXPECT_GE(took, 290);
  EXPECT_LT(took, 2500);
  EXPECT_EQ(out.status, RunStatus::kFailed);
  // The runner's own watchdog (exit 86), or the daemon's kill 100 ms later if the runner
  // could not act in time.
  EXPECT_TRUE(out.message ==
                  "plugin fx_spin.so (executor fx_spin) was ended by its runner at the run's hard "
                  "deadline" ||
              out.message ==
                  "plugin fx_spin.so (executor fx_spin) still ran at its hard deadline (lease): "
                  "killed with its process tree")
      << out.message;
  EXPECT_TRUE(reaped(pid));
  EXPECT_TRUE(live_in_session(pid).empty());
}

TEST(RunnerPoolTest, MovingTheHardDeadlineLaterExtendsTheRun) {
  auto started = RunnerProcess::start(settings_for(fixture("fx_spin")));
  ASSERT_TRUE(started.is_ok()) << started.status().message();
  auto& runner = *started;
  const auto t0 = Clock::now();
  const int64_t t0_ns = monotonic_ns();
  // Seconds apart, not a few hundred ms: a stall of the shared machine between the steps
  // below must not make the move come after the first deadline, nor the look at the run after
  // the second.
  std::atomic<int64_t> hard{t0_ns + 1'000'000'000};
  RunRequest req = request_with({});
  req.hard_deadline_ns = &hard;
  StopSource stop;
  auto run = std::async(std::launch::async, [&] { return runner->run(req, "fx_spin", stop); });
  // Well before the first deadline, move it to 2.5 s.
  ASSERT_EQ(run.wait_until(t0 + 150ms), std::future_status::timeout);
  hard.store(t0_ns + 2'500'000'000);
  stop.wake();
  // Past the first deadline and the daemon's 100 ms after it, with room: still running.
  EXPECT_EQ(run.wait_until(t0 + 1600ms), std::future_status::timeout)
      << "the run ended at its first deadline";
  RunOutcome out = run.get();
  const int64_t took = ms_since(t0);
  EXPECT_GE(took, 2490);
  EXPECT_LT(took, 5500);
  EXPECT_EQ(out.status, RunStatus::kFailed);
  EXPECT_NE(out.message.find("hard deadline"), std::string::npos) << out.message;
  EXPECT_TRUE(reaped(runner->pid()));
}

TEST(RunnerPoolTest, SlowStaticConstructorHitsTheLoadTimeLimit) {
  // A copy in a folder of its own, so that its runner can be told apart by command line.
  testing::TempDir dir;
  const fs::path plugin = dir / "fx_slow_ctor.so";
  fs::copy_file(fixture("fx_slow_ctor"), plugin);
  RunnerSettings settings = settings_for(plugin);
  settings.load_timeout = 500ms;

  std::atomic<bool> done{false};
  std::mutex mu;
  std::vector<pid_t> seen;
  std::thread watcher([&] {
    while (!done) {
      for (pid_t p : pids_with_cmdline(plugin.string())) {
        std::lock_guard lock(mu);
        if (std::find(seen.begin(), seen.end(), p) == seen.end()) seen.push_back(p);
      }
      std::this_thread::sleep_for(5ms);
    }
  });
  const auto t0 = Clock::now();
  auto started = RunnerProcess::start(settings);
  const int64_t took = ms_since(t0);
  done = true;
  watcher.join();

  ASSERT_FALSE(started.is_ok());
  EXPECT_EQ(started.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(started.status().message(),
            plugin.string() +
                ": loading the plugin took longer than 500 ms (a static constructor that "
                "blocks?); its runner was killed");
  EXPECT_GE(took, 490);
  EXPECT_LT(took, 2000);
  ASSERT_FALSE(seen.empty()) << "the runner was never seen";
  for (pid_t p : seen) EXPECT_TRUE(reaped(p)) << p;
  EXPECT_TRUE(pids_with_cmdline(plugin.string()).empty());
}

TEST(LoadPluginsTest, DuplicateExecutorsAreRefusedInEveryPluginWhateverTheFileOrder) {
  struct Names {
    const char* good;
    const char* dup;
  };
  // fx_duplicate sorts first, then last.
  for (const Names& n : {Names{"fx_good.so", "fx_duplicate.so"}, Names{"a_good.so", "z_dup.so"}}) {
    for (PluginErrorPolicy policy : {PluginErrorPolicy::kFail, PluginErrorPolicy::kSkip}) {
      const bool fail = policy == PluginErrorPolicy::kFail;
      SCOPED_TRACE(std::string(n.good) + " " + n.dup + (fail ? " kFail" : " kSkip"));
      testing::TempDir dir;
      fs::copy_file(fixture("fx_good"), dir / n.good);
      fs::copy_file(fixture("fx_duplicate"), dir / n.dup);
      fs::copy_file(fixture("fx_progress"), dir / "m_progress.so");
      LoadOptions options;
      options.dir = dir.path();
      options.on_error = policy;
      options.runner_binary = SCHEDD_RUNNER_BINARY;
      options.kill_grace = 1s;
      {
        PluginHost host;
        std::vector<PluginLoadError> errors;
        Status status = load_plugins(host, options, errors);

        const std::string first = std::min<std::string>(n.good, n.dup);
        const std::string second = std::max<std::string>(n.good, n.dup);
        const std::string message = "duplicate executor \"fx_echo\": provided by " + first +
                                    " and " + second + " (none of them is loaded)";
        ASSERT_EQ(errors.size(), 2u);
        std::sort(errors.begin(), errors.end(),
                  [](const auto& a, const auto& b) { return a.file < b.file; });
        EXPECT_EQ(errors[0].file, dir / first);
        EXPECT_EQ(errors[1].file, dir / second);
        EXPECT_EQ(errors[0].message, message);
        EXPECT_EQ(errors[1].message, message);
        EXPECT_EQ(host.find("fx_echo"), nullptr);
        EXPECT_EQ(host.find("fx_outcome"), nullptr);
        // The refused plugins' probe runners are gone.
        EXPECT_TRUE(pids_with_cmdline((dir / n.good).string()).empty());
        EXPECT_TRUE(pids_with_cmdline((dir / n.dup).string()).empty());
        if (fail) {
          ASSERT_FALSE(status.is_ok());
          EXPECT_EQ(status.message(), "2 of 3 plugins in " + dir.path().string() + " were refused");
          EXPECT_TRUE(host.executors().empty());
        } else {
          ASSERT_TRUE(status.is_ok()) << status.message();
          // The rest load, out of process, and run.
          ASSERT_EQ(host.executors().size(), 1u);
          const Executor* progress = host.find("fx_progress");
          ASSERT_NE(progress, nullptr);
          EXPECT_EQ(progress->isolation(), Isolation::kProcess);
          StopSource stop;
          RunOutcome out = progress->run(request_with({{"steps", ParamValue::integer(1)},
                                                       {"step", ParamValue::duration(1ms)}}),
                                         stop);
          EXPECT_EQ(out.status, RunStatus::kSucceeded) << out.message;
          EXPECT_EQ(out.output, "1 steps");
        }
      }
      // Nothing load_plugins started outlives the host.
      EXPECT_TRUE(pids_with_cmdline(dir.path().string()).empty());
    }
  }
}

TEST(RunnerPoolTest, FloodedOutputKeepsABoundedTailAndNeverReachesTheDaemon) {
  testing::TempDir dir;
  const fs::path captured = dir / "stdout";
  // This process's stdout and stderr go to a file while the runner starts (inheriting them)
  // and runs: none of the flood may land there.
  fflush(stdout);
  fflush(stderr);
  const int saved_out = dup(1), saved_err = dup(2);
  const int file = open(captured.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(file, 0);
  dup2(file, 1);
  dup2(file, 2);
  close(file);

  RunnerSettings settings = settings_for(fixture("fx_flood"));
  settings.output_tail = 4096;
  auto started = RunnerProcess::start(settings);
  RunOutcome out;
  int64_t took = 0;
  if (started.is_ok()) {
    StopSource stop;
    const auto t0 = Clock::now();
    out = (*started)->run(request_with({{"mb", ParamValue::integer(100)}}), "fx_flood", stop);
    took = ms_since(t0);
  }
  fflush(stdout);
  fflush(stderr);
  dup2(saved_out, 1);
  dup2(saved_err, 2);
  close(saved_out);
  close(saved_err);

  ASSERT_TRUE(started.is_ok()) << started.status().message();
  EXPECT_EQ(out.status, RunStatus::kSucceeded) << out.message;
  const uint64_t total = (100u << 20) + std::string("flood done\n").size();
  const std::string header =
      "--- stdout/stderr (last 4096 of " + std::to_string(total) + " bytes) ---\n";
  EXPECT_LE(out.output.size(), header.size() + 4096);
  EXPECT_TRUE(out.output == header + std::string(4096 - 11, 'x') + "flood done\n")
      << out.output.substr(0, 200);
  EXPECT_TRUE((*started)->healthy());
  const std::string leaked = testing::read_file(captured);
  EXPECT_EQ(leaked.find("xxxxxxxx"), std::string::npos) << leaked.size() << " bytes leaked";
  EXPECT_EQ(leaked.find("flood done"), std::string::npos);
  RecordProperty("flood_ms", static_cast<int>(took));
}

// kill_session reads /proc/PID/stat of every process on the machine; a process reaped
// between the open and the read of its file must count as gone, not throw (it runs in
// destructors and in the runner's watchdog thread, where an exception is std::terminate).
// Short-lived processes are started and reaped meanwhile; a hit of that window is a matter of
// luck, so a broken reader fails this test often, not always.
TEST(ProcessTreeTest, ScansSurviveProcessesReapedWhileTheyRead) {
  // A child that leads no session: no session has its pid as id while it lives (the kernel
  // does not reuse a pid still used as a session id), so kill_session(its pid) kills nothing.
  pid_t bystander = -1;
  {
    std::vector<std::string> args = {"/bin/sleep", "30"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ASSERT_EQ(posix_spawn(&bystander, argv[0], nullptr, nullptr, argv.data(), environ), 0);
  }
  std::atomic<bool> done{false};
  std::atomic<int> churned{0};
  std::vector<std::thread> churners;
  for (int t = 0; t < 2; ++t) {
    churners.emplace_back([&, t] {
      // Twenty children at a time, each a `sleep` of 5 to 30 ms: listed by a scan, then
      // reaped while it runs. posix_spawn, not fork: a fork copies this process's page tables
      // under its memory map lock, which would stall the scans.
      std::deque<pid_t> alive;
      unsigned seed = static_cast<unsigned>(t) + 1;
      while (!done || !alive.empty()) {
        if (!done && alive.size() < 20) {
          char secs[16];
          std::snprintf(secs, sizeof secs, "0.%03d", 5 + static_cast<int>(rand_r(&seed) % 25));
          char arg0[] = "/bin/sleep";
          char* argv[] = {arg0, secs, nullptr};
          pid_t p;
          if (posix_spawn(&p, argv[0], nullptr, nullptr, argv, environ) == 0) alive.push_back(p);
          continue;
        }
        waitpid(alive.front(), nullptr, 0);
        alive.pop_front();
        ++churned;
      }
    });
  }
  std::string thrown;
  int scans = 0;
  const auto until = Clock::now() + 2s;
  while (Clock::now() < until && thrown.empty()) {
    try {
      EXPECT_EQ(kill_session(bystander, 0ms), 0u);
      ++scans;
    } catch (const std::exception& e) {
      thrown = e.what();
    }
  }
  done = true;
  for (auto& t : churners) t.join();
  const bool bystander_alive = !dead(bystander);
  ::kill(bystander, SIGKILL);
  waitpid(bystander, nullptr, 0);
  EXPECT_EQ(thrown, "") << "after " << scans << " scans and " << churned << " processes";
  EXPECT_TRUE(bystander_alive);
  EXPECT_GT(churned, 0);
}

}  // namespace
}  // namespace schedd::runner
