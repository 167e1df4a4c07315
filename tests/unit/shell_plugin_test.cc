// Tests of the first-party plugins (shell, sleep, noop), loaded from the build's plugin folder
// through PluginHost exactly as the daemon loads them. The shell tests start real processes.
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/plugin_host/plugin_host.h"
#include "core/plugin_host/stop_source.h"
#include "tests/testing/temp_dir.h"

namespace schedd {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using testing::TempDir;

// 2026-11-23T13:00:00Z
constexpr int64_t kDueUnixSeconds = 1795438800;

std::unique_ptr<PluginHost> load_plugin(const std::string& file) {
  auto host = std::make_unique<PluginHost>();
  auto error = host->load_file(std::filesystem::path(SCHEDD_PLUGIN_DIR) / file);
  EXPECT_FALSE(error.has_value()) << error->to_string();
  return host;
}

RunRequest make_request(ParamList params) {
  RunRequest r;
  r.execution_id = "nightly@1795438800";
  r.name = "nightly";
  r.key = "reports";
  r.lane = "batch";
  r.attempt = 2;
  r.due = std::chrono::system_clock::time_point(std::chrono::seconds(kDueUnixSeconds));
  r.params = std::move(params);
  return r;
}

// Params for `sh -c script`, plus `extra`.
ParamList sh(const std::string& script, ParamList extra = {}) {
  ParamList p{{"command", ParamValue::string("sh")}, {"args", ParamValue::list({"-c", script})}};
  for (auto& e : extra) p.push_back(std::move(e));
  return p;
}

// True once `pid` no longer runs: gone, or a zombie waiting for a reaper that is not us
// (in a container, PID 1 may never reap reparented grandchildren).
bool process_gone(pid_t pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return true;
  std::string stat = testing::read_file("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return true;
  // "<pid> (<comm>) <state> ...": the state follows the last ')'.
  auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
}

// Polls for an external process state: the one kind of waiting these tests allow.
template <typename Pred>
bool eventually(Pred pred, milliseconds limit = milliseconds(10000)) {
  const auto until = steady_clock::now() + limit;
  while (steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return pred();
}

// Reads a pid that the script wrote atomically (to a temp name, then renamed).
pid_t wait_for_pidfile(const std::filesystem::path& file) {
  pid_t pid = 0;
  eventually([&] {
    std::string text = testing::read_file(file);
    if (text.empty()) return false;
    pid = static_cast<pid_t>(std::stol(text));
    return true;
  });
  return pid;
}

class ShellPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    host_ = load_plugin("shell.so");
    ASSERT_NE(host_->find("shell"), nullptr);
  }

  RunOutcome run(ParamList params, uint64_t fence = 0) {
    StopSource stop;
    RunRequest request = make_request(std::move(params));
    request.fence = fence;
    return host_->find("shell")->run(request, stop);
  }

  std::unique_ptr<PluginHost> host_;
};

TEST_F(ShellPluginTest, DeclaresItsParams) {
  const ExecutorInfo& info = host_->find("shell")->info();
  ASSERT_NE(info.find_param("command"), nullptr);
  EXPECT_TRUE(info.find_param("command")->required);
  ASSERT_NE(info.find_param("kill_grace"), nullptr);
  EXPECT_EQ(info.find_param("kill_grace")->default_toml, "\"5s\"");
  ASSERT_NE(info.find_param("output_limit"), nullptr);
  EXPECT_EQ(info.find_param("output_limit")->default_toml, "4096");
  ASSERT_NE(info.find_param("args"), nullptr);
  ASSERT_NE(info.find_param("env"), nullptr);
  ASSERT_NE(info.find_param("cwd"), nullptr);
}

TEST_F(ShellPluginTest, ExitZeroSucceedsWithStdout) {
  RunOutcome out = run(sh("echo hello; echo world"));
  EXPECT_EQ(out.status, RunStatus::kSucceeded) << out.message;
  EXPECT_EQ(out.output, "hello\nworld\n");
}

TEST_F(ShellPluginTest, OnlyCommandIsNeeded) {
  RunOutcome out = run({{"command", ParamValue::string("true")}});
  EXPECT_EQ(out.status, RunStatus::kSucceeded) << out.message;
  EXPECT_EQ(out.output, "");
}

TEST_F(ShellPluginTest, ArgsArePassedVerbatim) {
  RunOutcome out = run({{"command", ParamValue::string("printf")},
                        {"args", ParamValue::list({"[%s]", "a b", "$HOME", "*"})}});
  EXPECT_EQ(out.status, RunStatus::kSucceeded) << out.message;
  EXPECT_EQ(out.output, "[a b][$HOME][*]");
}

TEST_F(ShellPluginTest, NonzeroExitFails) {
  RunOutcome out = run(sh("echo partial; exit 3"));
  EXPECT_EQ(out.status, RunStatus::kFailed);
  EXPECT_EQ(out.message, "exit code 3");
  EXPECT_EQ(out.output, "partial\n");
}

TEST_F(ShellPluginTest, KilledBySignalFails) {
  RunOutcome out = run(sh("kill -USR1 $$"));
  EXPECT_EQ(out.status, RunStatus::kFailed);
  EXPECT_EQ(out.message, "killed by signal " + std::to_string(SIGUSR1) + " (SIGUSR1)");
}

TEST_F(ShellPluginTest, StderrFollowsStdoutUnderAMarker) {
  RunOutcome out = run(sh("echo out; echo err >&2; printf more"));
  EXPECT_EQ(out.status, RunStatus::kSucceeded) << out.message;
  EXPECT_EQ(out.output, "out\nmore\n--- stderr ---\nerr\n");
}

TEST_F(ShellPluginTest, OutputLimitKeepsTheTailOfEachStream) {
  RunOutcome out = run(sh("printf 0123456789abcdefghij; printf ABCDEFGHIJKLMNOPQRST >&2",
                          {{"output_limit", ParamValue::integer(10)}}));
  EXPECT_EQ(out.status, RunStatus::kSucceeded) << out.message;
  EXPECT_EQ(out.output, "abcdefghij\n--- stderr ---\nKLMNOPQRST");
}

TEST_F(ShellPluginTest, DefaultOutputLimitIs4096Bytes) {
  // A megabyte through the pipe in many writes; only the last 4096 bytes are kept.
  RunOutcome out = run(sh("head -c 1000000 /dev/zero | tr '\\0' x; printf END"));
  EXPECT_EQ(out.status, RunStatus::kSucceeded) << out.message;
  EXPECT_EQ(out.output.size(), 4096u);
  EXPECT_THAT(out.output, EndsWith("xxxEND"));
}

TEST_F(ShellPluginTest, ZeroOutputLimitKeepsNothing) {
  RunOutcome out = run(sh("echo out; echo err >&2", {{"output_limit", ParamValue::integer(0)}}));
  EXPECT_EQ(out.status, RunStatus::kSucceeded) << out.message;
  EXPECT_EQ(out.output, "");
}

TEST_F(ShellPluginTest, NegativeOutputLimitIsPermanent) {
  RunOutcome out = run(sh("true", {{"output_limit", ParamValue::integer(-1)}}));
  EXPECT_EQ(out.status, RunStatus::kFailedPermanent);
  EXPECT_THAT(out.message, HasSubstr("output_limit"));
}

TEST_F(ShellPluginTest, ChildSeesExecutionEnvironment) {
  const char* path = getenv("PATH");
  ASSERT_NE(path, nullptr);
  RunOutcome out =
      run(sh("printf '%s\\n' \"$SCHEDD_EXECUTION_ID\" \"$SCHEDD_KEY\" \"$SCHEDD_ATTEMPT\" "
             "\"$SCHEDD_HELPER\" \"$SCHEDD_LANE\" \"$SCHEDD_DUE\" \"$MY_SETTING\" \"$PATH\"",
             {{"env", ParamValue::map({{"MY_SETTING", "a value with spaces"}})}}));
  EXPECT_EQ(out.status, RunStatus::kSucceeded) << out.message;
  EXPECT_EQ(out.output, std::string("nightly@1795438800\n"
                                    "reports\n"
                                    "2\n"
                                    "nightly\n"
                                    "batch\n"
                                    "2026-11-23T13:00:00Z\n"
                                    "a value with spaces\n") +
                            path + "\n");
}

TEST_F(ShellPluginTest, ChildSeesTheFence) {
  RunOutcome out = run(sh("printf %s \"$SCHEDD_FENCE\""), 18446744073709551615u);
  EXPECT_EQ(out.status, RunStatus::kSucceeded) << out.message;
  EXPECT_EQ(out.output, "18446744073709551615");
  // Without a fence from the store the variable is still set, to 0.
  out = run(sh("printf %s \"${SCHEDD_FENCE-unset}\""));
  EXPECT_EQ(out.output, "0");
  out = run(sh("printf %s \"$SCHEDD_FENCE\"", {{"env", ParamValue::map({{"SCHEDD_FENCE", "9"}})}}),
            7);
  EXPECT_EQ(out.output, "7");
}

TEST_F(ShellPluginTest, EnvCannotOverrideScheddVariables) {
  RunOutcome out =
      run(sh("printf %s \"$SCHEDD_KEY\"", {{"env", ParamValue::map({{"SCHEDD_KEY", "forged"}})}}));
  EXPECT_EQ(out.status, RunStatus::kSucceeded) << out.message;
  EXPECT_EQ(out.output, "reports");
}

TEST_F(ShellPluginTest, StdinIsEmpty) {
  RunOutcome out = run(sh("wc -c"));
  EXPECT_EQ(out.status, RunStatus::kSucceeded) << out.message;
  EXPECT_EQ(out.output, "0\n");
}

TEST_F(ShellPluginTest, CwdIsHonored) {
  TempDir dir;
  RunOutcome out = run(sh("pwd -P", {{"cwd", ParamValue::string(dir.path().string())}}));
  EXPECT_EQ(out.status, RunStatus::kSucceeded) << out.message;
  EXPECT_EQ(out.output, std::filesystem::canonical(dir.path()).string() + "\n");
}

TEST_F(ShellPluginTest, MissingCwdIsPermanent) {
  TempDir dir;
  RunOutcome out = run(sh("true", {{"cwd", ParamValue::string((dir / "missing").string())}}));
  EXPECT_EQ(out.status, RunStatus::kFailedPermanent);
  EXPECT_THAT(out.message, HasSubstr("missing"));
}

TEST_F(ShellPluginTest, CommandNotFoundIsPermanent) {
  RunOutcome out = run({{"command", ParamValue::string("schedd-no-such-command")}});
  EXPECT_EQ(out.status, RunStatus::kFailedPermanent);
  EXPECT_THAT(out.message, HasSubstr("\"schedd-no-such-command\""));
  EXPECT_THAT(out.message, HasSubstr("No such file or directory"));
}

TEST_F(ShellPluginTest, DoesNotWaitForBackgroundedGrandchild) {
  // The grandchild keeps the pipes open for a minute; the run returns when `sh` exits.
  TempDir dir;
  const auto start = steady_clock::now();
  RunOutcome out = run(sh("sleep 60 & echo $! > pid.tmp && mv pid.tmp pid; echo done",
                          {{"cwd", ParamValue::string(dir.path().string())}}));
  EXPECT_EQ(out.status, RunStatus::kSucceeded) << out.message;
  EXPECT_EQ(out.output, "done\n");
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(30));
  pid_t grandchild = wait_for_pidfile(dir / "pid");
  ASSERT_GT(grandchild, 0);
  kill(grandchild, SIGKILL);
}

TEST_F(ShellPluginTest, StopKillsTheWholeProcessGroup) {
  TempDir dir;
  StopSource stop;
  RunRequest request = make_request(sh("sleep 300 & echo $! > pid.tmp && mv pid.tmp pid; wait",
                                       {{"cwd", ParamValue::string(dir.path().string())},
                                        {"kill_grace", ParamValue::duration(milliseconds(5000))}}));
  std::atomic<pid_t> grandchild{0};
  steady_clock::time_point stop_at;
  std::thread stopper([&] {
    grandchild = wait_for_pidfile(dir / "pid");
    stop_at = steady_clock::now();
    stop.request_stop();
  });
  RunOutcome out = host_->find("shell")->run(request, stop);
  const auto returned_at = steady_clock::now();
  stopper.join();

  EXPECT_EQ(out.status, RunStatus::kCancelled);
  EXPECT_THAT(out.message, StartsWith("stopped after"));
  EXPECT_THAT(out.message, HasSubstr("killed by signal 15 (SIGTERM)"));
  EXPECT_THAT(out.message, Not(HasSubstr("SIGKILL")));
  // SIGTERM was enough: no need to wait for the grace period.
  EXPECT_LT(returned_at - stop_at, std::chrono::seconds(4));
  ASSERT_GT(grandchild.load(), 0);
  EXPECT_TRUE(eventually([&] { return process_gone(grandchild.load()); }))
      << "grandchild " << grandchild.load() << " survived the stop";
}

TEST_F(ShellPluginTest, StopEscalatesToSigkillAfterKillGrace) {
  TempDir dir;
  StopSource stop;
  RunRequest request =
      make_request(sh("trap '' TERM; sleep 300 & echo $! > pid.tmp && mv pid.tmp pid; wait",
                      {{"cwd", ParamValue::string(dir.path().string())},
                       {"kill_grace", ParamValue::duration(milliseconds(200))}}));
  std::atomic<pid_t> grandchild{0};
  steady_clock::time_point stop_at;
  std::thread stopper([&] {
    grandchild = wait_for_pidfile(dir / "pid");
    stop_at = steady_clock::now();
    stop.request_stop();
  });
  RunOutcome out = host_->find("shell")->run(request, stop);
  const auto returned_at = steady_clock::now();
  stopper.join();

  EXPECT_EQ(out.status, RunStatus::kCancelled);
  EXPECT_THAT(out.message, HasSubstr("still running 200 ms after SIGTERM"));
  EXPECT_THAT(out.message, HasSubstr("killed by signal 9 (SIGKILL)"));
  EXPECT_GE(returned_at - stop_at, milliseconds(200));
  EXPECT_LT(returned_at - stop_at, std::chrono::seconds(10));
  ASSERT_GT(grandchild.load(), 0);
  EXPECT_TRUE(eventually([&] { return process_gone(grandchild.load()); }))
      << "grandchild " << grandchild.load() << " survived SIGKILL";
}

// `schedd exec` and `schedd run` block SIGTERM in every thread (to sigwait for it), and a
// daemon may ignore SIGPIPE. The child must inherit neither, or the stop's SIGTERM would be
// ignored until SIGKILL. (The program is not `sh`: dash clears its signal mask on start.)
TEST_F(ShellPluginTest, ChildStartsWithCleanSignalState) {
  struct sigaction ignore {};
  struct sigaction saved {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  ASSERT_EQ(sigaction(SIGPIPE, &ignore, &saved), 0);
  RunOutcome out;
  std::thread worker([&] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    out = run({{"command", ParamValue::string("grep")},
               {"args", ParamValue::list({"-E", "^Sig(Blk|Ign)", "/proc/self/status"})}});
  });
  worker.join();
  sigaction(SIGPIPE, &saved, nullptr);
  EXPECT_EQ(out.status, RunStatus::kSucceeded) << out.message;
  // Lines "SigBlk:\t<hex mask>" and "SigIgn:\t<hex mask>", bit N-1 for signal N. Only the
  // classic signals 1..31 count: glibc's spawn itself ignores its internal real-time ones.
  std::istringstream lines(out.output);
  std::string name;
  std::string mask;
  int seen = 0;
  while (lines >> name >> mask) {
    ++seen;
    EXPECT_EQ(std::stoull(mask, nullptr, 16) & 0x7fffffffull, 0u) << name << " " << mask;
  }
  EXPECT_EQ(seen, 2) << out.output;
}

TEST_F(ShellPluginTest, StopBeforeStartDoesNotSpawn) {
  TempDir dir;
  StopSource stop;
  stop.request_stop();
  RunOutcome out = host_->find("shell")->run(
      make_request(sh("touch ran", {{"cwd", ParamValue::string(dir.path().string())}})), stop);
  EXPECT_EQ(out.status, RunStatus::kCancelled);
  EXPECT_FALSE(std::filesystem::exists(dir / "ran"));
}

TEST_F(ShellPluginTest, ConcurrentRunsKeepTheirOwnOutput) {
  constexpr int kRuns = 8;
  std::vector<std::future<RunOutcome>> results;
  for (int i = 0; i < kRuns; ++i) {
    results.push_back(std::async(std::launch::async, [this, i] {
      RunRequest r =
          make_request(sh("echo $SCHEDD_EXECUTION_ID; echo $RUN_INDEX >&2",
                          {{"env", ParamValue::map({{"RUN_INDEX", std::to_string(i)}})}}));
      r.execution_id = "run-" + std::to_string(i);
      StopSource stop;
      return host_->find("shell")->run(r, stop);
    }));
  }
  for (int i = 0; i < kRuns; ++i) {
    RunOutcome out = results[i].get();
    EXPECT_EQ(out.status, RunStatus::kSucceeded) << out.message;
    EXPECT_EQ(out.output,
              "run-" + std::to_string(i) + "\n--- stderr ---\n" + std::to_string(i) + "\n");
  }
}

class SleepPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    host_ = load_plugin("sleep.so");
    ASSERT_NE(host_->find("sleep"), nullptr);
  }
  std::unique_ptr<PluginHost> host_;
};

TEST_F(SleepPluginTest, ShortSleepSucceeds) {
  StopSource stop;
  const auto start = steady_clock::now();
  RunOutcome out = host_->find("sleep")->run(
      make_request({{"duration", ParamValue::duration(milliseconds(50))}}), stop);
  EXPECT_EQ(out.status, RunStatus::kSucceeded) << out.message;
  EXPECT_GE(steady_clock::now() - start, milliseconds(50));
}

TEST_F(SleepPluginTest, StopEndsTheWaitEarly) {
  StopSource stop;
  RunRequest request = make_request({{"duration", ParamValue::duration(std::chrono::seconds(60))}});
  // The plugin reports progress as its wait begins; the stop is requested from another thread
  // only then, so the test covers interrupting a wait in progress.
  std::promise<void> waiting;
  std::atomic<bool> reported{false};
  request.on_progress = [&](double, std::string_view) {
    if (!reported.exchange(true)) waiting.set_value();
  };
  std::thread stopper([&] {
    waiting.get_future().wait();
    stop.request_stop();
  });
  const auto start = steady_clock::now();
  RunOutcome out = host_->find("sleep")->run(request, stop);
  const auto took = steady_clock::now() - start;
  stopper.join();
  EXPECT_EQ(out.status, RunStatus::kCancelled);
  EXPECT_THAT(out.message, StartsWith("stopped after"));
  EXPECT_LT(took, std::chrono::seconds(10));
}

TEST_F(SleepPluginTest, MissingDurationFailsNamingIt) {
  StopSource stop;
  RunOutcome out = host_->find("sleep")->run(make_request({}), stop);
  EXPECT_NE(out.status, RunStatus::kSucceeded);
  EXPECT_THAT(out.message, HasSubstr("duration"));
}

TEST(NoopPluginTest, SucceedsWithNoOutput) {
  auto host = load_plugin("noop.so");
  const Executor* noop = host->find("noop");
  ASSERT_NE(noop, nullptr);
  EXPECT_TRUE(noop->info().params.empty());
  StopSource stop;
  RunOutcome out = noop->run(make_request({}), stop);
  EXPECT_EQ(out.status, RunStatus::kSucceeded);
  EXPECT_EQ(out.message, "");
  EXPECT_EQ(out.output, "");
}

}  // namespace
}  // namespace schedd
