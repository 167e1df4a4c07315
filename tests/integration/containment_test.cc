// Containment of misbehaving plugins by the out-of-process runner (docs/sdk.md "Isolation"):
// the real `schedd run` and `schedd exec` with the fixture plugins that crash, exit, hang,
// leak, flood or block in a static constructor, beside a well-behaved helper.
//
// Each test gets a node id of its own ([daemon] node_id), which the daemon writes into the
// environment of every runner and everything it starts (SCHEDD_NODE), so "nothing left
// running" is checked as "no live process carries that node id" - without touching, or
// being fooled by, the daemons other tests run on the machine at the same time.
//
// Waits are bounded waits for a condition; time limits are generous for a loaded 2-core
// machine, and each says which promise it checks.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing/daemon_log.h"
#include "tests/testing/daemon_process.h"
#include "tests/testing/http_client.h"
#include "tests/testing/process_scan.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

// RLIMIT_AS caps address space, and ASan and TSan reserve terabytes of it for their shadow
// memory at start-up: a runner with a memory limit cannot even start under them, so the leak
// test only means something in plain builds.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SCHEDD_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SCHEDD_TEST_SANITIZED 1
#endif
#endif
#ifndef SCHEDD_TEST_SANITIZED
#define SCHEDD_TEST_SANITIZED 0
#endif

namespace schedd::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Json = nlohmann::json;

// The sanitizers slow a process's exit (ThreadSanitizer sleeps a second in it, by its
// atexit_sleep_ms): limits on how soon a process ends get that much more in their builds.
constexpr std::chrono::milliseconds kExitSlack{SCHEDD_TEST_SANITIZED ? 1000 : 0};

const fs::path kFixtures = SCHEDD_FIXTURE_DIR;
const fs::path kPlugins = SCHEDD_PLUGIN_DIR;
constexpr const char* kNodeVar = "SCHEDD_NODE";
constexpr const char* kMarkVar = "SCHEDD_RUNNER_OF";

// A temp dir with a plugin folder of copies of `plugins`, and a node id no other test uses.
class Sandbox {
 public:
  explicit Sandbox(std::initializer_list<fs::path> plugins) {
    fs::create_directories(dir_ / "plugins");
    for (const auto& p : plugins) fs::copy_file(p, dir_ / "plugins" / p.filename());
    node_ = "containment-" + dir_.path().filename().string();
  }

  // schedd.toml: [daemon] with plugin_dir, node_id and `daemon_keys`, then `rest`.
  fs::path write_config(const std::string& daemon_keys, const std::string& rest) const {
    return dir_.write("schedd.toml", "[daemon]\nplugin_dir = \"plugins\"\nnode_id = \"" + node_ +
                                         "\"\n" + daemon_keys + "\n" + rest);
  }

  const TempDir& dir() const { return dir_; }
  const std::string& node() const { return node_; }

  // Live processes started for this sandbox's daemons (runners and what they started).
  std::vector<pid_t> processes() const { return live_processes_with_env(kNodeVar, node_); }

  // Runners of this sandbox serving plugin file `so` (e.g. "fx_spin.so").
  std::vector<pid_t> runners_of(const std::string& so) const {
    std::vector<pid_t> out;
    for (pid_t p : processes()) {
      std::string cmd = command_line(p);
      if (cmd.find("--plugin ") != std::string::npos &&
          cmd.find("/" + so + " ") != std::string::npos) {
        out.push_back(p);
      }
    }
    return out;
  }

  // Waits until a runner of `so` is busy in a plugin that sleeps 1 ms at a time (fx_spin):
  // its main thread, which blocks in read while the runner is idle, then switches context
  // about a thousand times a second.
  bool wait_spinning(const std::string& so, std::chrono::milliseconds timeout) const {
    std::map<pid_t, uint64_t> first;
    return wait_until(
        [&] {
          for (pid_t p : runners_of(so)) {
            uint64_t now = voluntary_switches(p);
            auto [it, inserted] = first.try_emplace(p, now);
            if (!inserted && now >= it->second + 20) return true;
          }
          return false;
        },
        timeout);
  }

  // Expects that nothing started for this sandbox is alive (within a few seconds: processes
  // killed by their parent's death signal may take a moment to be gone).
  void expect_nothing_left(const std::string& when) const {
    std::vector<pid_t> left;
    bool none = wait_until(
        [&] {
          left = processes();
          return left.empty();
        },
        5s);
    EXPECT_TRUE(none) << when << ": processes of node " << node_
                      << " still alive: " << describe_processes(left);
  }

 private:
  TempDir dir_;
  std::string node_;
};

// The log line of each successful run of the well-behaved helper the tests run beside.
constexpr const char* kGoodSucceeded = "[good] running -> succeeded";

// How often `needle` occurs in `text`.
std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

// The execution as GET /v1/executions/ID shows it once it ended (nullopt if it does not end
// within `timeout`).
std::optional<Json> wait_terminal(HttpClient& http, const std::string& id,
                                  std::chrono::milliseconds timeout) {
  Json last;
  bool ended = wait_until(
      [&] {
        auto r = http.get("/v1/executions/" + id);
        if (r.status != 200) return false;
        last = Json::parse(r.body, nullptr, false);
        if (last.is_discarded()) return false;
        std::string s = last.value("status", "");
        return s != "queued" && s != "running";
      },
      timeout);
  if (!ended) return std::nullopt;
  return last;
}

HttpClient::Response submit(HttpClient& http, const Json& body) {
  return http.post("/v1/executions", body.dump());
}

// The longest a helper that runs every second may go without a start: a second missed is a gap
// of 2 s, and the 800 ms over its 1 s rhythm are room for a late start on the shared, loaded
// CI machine (stalls of over 500 ms have been seen there).
constexpr int64_t kMaxStartGapMs = 1800;

// The instants the `helper` started (its "queued -> running" lines) between the log lines
// containing `from_text` and `to_text`, and the longest time without a start in that window
// (the window's ends included).
struct StartGaps {
  std::size_t starts = 0;
  int64_t max_gap_ms = 0;
  std::string where;  // "from A to B (unix ms)": the longest gap
};

StartGaps start_gaps(const std::vector<DaemonLogLine>& lines, const std::string& helper,
                     const std::string& from_text, const std::string& to_text) {
  std::optional<int64_t> from, to;
  std::vector<int64_t> starts;
  for (const auto& l : lines) {
    if (!from && l.msg.find(from_text) != std::string::npos) from = l.unix_ms;
    if (from && !to && l.msg.find(to_text) != std::string::npos) to = l.unix_ms;
    if (from && !to && l.msg.starts_with("exec " + helper + "@") &&
        l.msg.find("queued -> running") != std::string::npos) {
      starts.push_back(l.unix_ms);
    }
  }
  StartGaps g;
  if (!from || !to) {
    g.max_gap_ms = INT64_MAX;
    g.where = "log lacks \"" + from_text + "\" or \"" + to_text + "\"";
    return g;
  }
  g.starts = starts.size();
  int64_t prev = *from;
  starts.push_back(*to);
  for (int64_t t : starts) {
    if (t - prev > g.max_gap_ms) {
      g.max_gap_ms = t - prev;
      g.where = "from " + std::to_string(prev) + " to " + std::to_string(t) + " (unix ms)";
    }
    prev = t;
  }
  return g;
}

// --------------------------------------------------------------------------------------------
// 1. A misbehaving plugin beside a well-behaved helper: the daemon lives on, the helper keeps
// its one-second rhythm, the bad execution ends as it should, naming the plugin file, the log
// stays JSON, and nothing is left running after the daemon exits.

struct BadPlugin {
  std::string test_name{};
  std::string fixture{};      // file and executor name: fx_segv -> fx_segv.so, executor fx_segv
  std::string helper_keys{};  // more keys of [helpers.bad]
  std::string more_config{};  // more tables ([plugins.NAME])
  std::string status{};       // what the bad execution ends as
  uint32_t attempts = 0;      // ... after this many attempts
  // The message contains one of these (several when the kernel decides how it ends).
  std::vector<std::string> message_any{};
  std::string output_has{};  // "": not checked
  // The runner dies of a signal. The sanitizers catch some (SIGSEGV) and exit instead, so in
  // their builds the message is only checked to name plugin file and executor.
  bool crash = false;
};

void PrintTo(const BadPlugin& p, std::ostream* os) { *os << p.test_name; }

class BadPluginTest : public ::testing::TestWithParam<BadPlugin> {};

TEST_P(BadPluginTest, DaemonAndOtherHelpersCarryOn) {
  const BadPlugin& p = GetParam();
  if (p.fixture == "fx_leak" && SCHEDD_TEST_SANITIZED) {
    GTEST_SKIP() << "RLIMIT_AS and the sanitizers' shadow memory do not mix";
  }
  Sandbox box({kFixtures / (p.fixture + ".so"), kPlugins / "noop.so"});
  const fs::path config = box.write_config(R"(kill_grace = "1s"
shutdown_grace = "5s")",
                                           R"([api]
listen = "127.0.0.1:0"

[retry]
max_attempts = 2
delays = ["0s"]

[helpers.good]
executor = "noop"
schedule = { every = "1s" }

[helpers.bad]
executor = ")" + p.fixture + R"("
schedule = { every = "24h" }
enabled = false
)" + p.helper_keys + "\n" + p.more_config);

  DaemonProcess d(config, {"--log-format", "json"});
  ASSERT_TRUE(d.wait_ready()) << d.log();
  HttpClient http("127.0.0.1", d.port());
  auto submitted = submit(http, {{"helper", "bad"}, {"id", "bad-1"}});
  ASSERT_EQ(submitted.status, 201) << submitted.body;

  std::optional<Json> bad = wait_terminal(http, "bad-1", 40s);
  ASSERT_TRUE(bad.has_value()) << "bad-1 did not end within 40 s\n" << d.log();
  // Several seconds of the daemon's life with the plugin misbehaving in it: five runs of
  // the good helper in all, and two after the bad execution ended.
  const std::size_t good_before = count_of(d.log(), kGoodSucceeded);
  ASSERT_TRUE(wait_until(
      [&] {
        std::size_t good = count_of(d.log(), kGoodSucceeded);
        return good >= 5 && good >= good_before + 2;
      },
      30s))
      << d.log();

  EXPECT_TRUE(process_alive(d.pid())) << d.log();
  EXPECT_EQ(http.get("/readyz").status, 200);
  if (!SCHEDD_TEST_SANITIZED) {
    // A 1 GiB leak or 100 MB of output never reach the daemon's own memory.
    EXPECT_LT(peak_rss_bytes(d.pid()), 200ull << 20);
  }

  ProcessResult end = d.stop();
  EXPECT_EQ(end.exit_code, 0) << end.err;
  box.expect_nothing_left("after the daemon exited");
  // Nothing the plugin wrote reached the daemon's own stdout (stderr, the log, is below).
  EXPECT_TRUE(end.out.empty()) << end.out.size()
                               << " bytes on the daemon's stdout: " << end.out.substr(0, 200);

  // The bad execution (traced without its output, which may be 64 KiB of the flood).
  const std::string output = bad->value("output", "");
  Json traced = *bad;
  traced["output"] = std::to_string(output.size()) + " bytes";
  SCOPED_TRACE(traced.dump());
  EXPECT_EQ(bad->value("status", ""), p.status);
  EXPECT_EQ(bad->value("attempt", 0u), p.attempts);
  const std::string message = bad->value("message", "");
  std::vector<std::string> expected = p.message_any;
  if (p.crash && SCHEDD_TEST_SANITIZED) {
    expected = {"plugin " + p.fixture + ".so (executor " + p.fixture + ") "};
  }
  EXPECT_TRUE(
      std::any_of(expected.begin(), expected.end(),
                  [&](const std::string& m) { return message.find(m) != std::string::npos; }))
      << "message: " << message;
  if (!p.output_has.empty()) {
    EXPECT_NE(output.find(p.output_has), std::string::npos) << output.substr(0, 200);
  }

  // The log: JSON on every line, whatever the plugin wrote to its stdout.
  std::vector<std::string> not_json;
  std::vector<DaemonLogLine> lines = parse_daemon_log(end.err, /*json=*/true, &not_json);
  EXPECT_TRUE(not_json.empty()) << not_json.size() << " lines are not JSON log lines, first: "
                                << (not_json.empty() ? "" : not_json.front().substr(0, 200));
  // The good helper ran once a second from ready to SIGTERM.
  StartGaps g = start_gaps(lines, "good", "schedd ready", "received SIGTERM");
  std::printf(
      "%s: bad-1 %s after %u attempts; good helper started %zu times, longest gap %lld ms\n",
      p.test_name.c_str(), bad->value("status", "").c_str(), bad->value("attempt", 0u), g.starts,
      static_cast<long long>(g.max_gap_ms));
  EXPECT_GE(g.starts, 3u);
  EXPECT_LE(g.max_gap_ms, kMaxStartGapMs)
      << "the good helper did not start for " << g.max_gap_ms << " ms, " << g.where;
}

// What the runner makes of each: a crash or exit fails the attempt naming plugin file,
// executor and signal or status (retried once here); a run that ignores its timeout is
// killed kill_grace after the stop request; a leak meets its memory limit (the fixture's own
// "allocation failed", or a crash when something else in the runner cannot allocate); a
// flood of stdout ends in the run's output tail, not in the daemon's log.
const BadPlugin kBadPlugins[] = {
    {.test_name = "Segv",
     .fixture = "fx_segv",
     .status = "failed",
     .attempts = 2,
     .message_any = {"plugin fx_segv.so (executor fx_segv) crashed: SIGSEGV"},
     .crash = true},
    {.test_name = "Abort",
     .fixture = "fx_abort",
     .status = "failed",
     .attempts = 2,
     .message_any = {"plugin fx_abort.so (executor fx_abort) crashed: SIGABRT"},
     .crash = true},
    {.test_name = "Exit",
     .fixture = "fx_exit",
     .status = "failed",
     .attempts = 2,
     .message_any = {"plugin fx_exit.so (executor fx_exit) exited with status 3"}},
    {.test_name = "ThreadThrow",
     .fixture = "fx_thread_throw",
     .status = "failed",
     .attempts = 2,
     .message_any = {"plugin fx_thread_throw.so (executor fx_thread_throw) crashed: SIGABRT"},
     .crash = true},
    {.test_name = "Spin",
     .fixture = "fx_spin",
     .helper_keys = "timeout = \"1s\"",
     .status = "timed_out",
     .attempts = 2,
     .message_any = {"plugin fx_spin.so (executor fx_spin) did not stop within kill_grace 1000 "
                     "ms of the stop request: killed with its process tree"}},
    {.test_name = "Leak",
     .fixture = "fx_leak",
     .more_config = "[plugins.fx_leak]\nmemory_limit = \"256MiB\"\n",
     .status = "failed",
     .attempts = 2,
     .message_any = {"allocation failed after", "plugin fx_leak.so (executor fx_leak)"}},
    {.test_name = "Flood",
     .fixture = "fx_flood",
     .status = "succeeded",
     .attempts = 1,
     .message_any = {""},
     .output_has = "of 104857611 bytes) ---"},
};

INSTANTIATE_TEST_SUITE_P(ContainmentTest, BadPluginTest, ::testing::ValuesIn(kBadPlugins),
                         [](const ::testing::TestParamInfo<BadPlugin>& info) {
                           return info.param.test_name;
                         });

// A plugin whose static constructor sleeps 30 s is refused after plugin_load_timeout (2 s)
// with on_plugin_error = "skip": the daemon is ready in a few seconds, not 30, logs the
// refusal naming the file and the limit, has killed the plugin's runner, and the other
// plugin's helper runs once a second.
TEST(ContainmentTest, SlowStaticConstructorIsRefusedAtTheLoadTimeLimit) {
  Sandbox box({kFixtures / "fx_slow_ctor.so", kPlugins / "noop.so"});
  const fs::path config = box.write_config(R"(on_plugin_error = "skip"
plugin_load_timeout = "2s")",
                                           R"([api]
listen = "127.0.0.1:0"

[helpers.good]
executor = "noop"
schedule = { every = "1s" }
)");
  DaemonProcess d(config);
  ASSERT_TRUE(d.wait_ready()) << d.log();
  std::printf("ready %.3f s after spawn\n", d.ready_seconds());
  EXPECT_GE(d.ready_seconds(), 1.9) << "ready before the load time limit passed?";
  // 2 s for the limit, the rest for a loaded machine (and a slower start under sanitizers).
  EXPECT_LT(d.ready_seconds(), SCHEDD_TEST_SANITIZED ? 8.0 : 5.0)
      << "the 30 s constructor held the start-up";
  EXPECT_NE(d.log().find("fx_slow_ctor.so: loading the plugin took longer than 2000 ms"),
            std::string::npos)
      << d.log();
  // Its runner was killed when the limit passed, before the daemon became ready.
  std::vector<pid_t> slow = box.runners_of("fx_slow_ctor.so");
  EXPECT_TRUE(slow.empty()) << describe_processes(slow);

  ASSERT_TRUE(wait_until([&] { return count_of(d.log(), kGoodSucceeded) >= 4; }, 30s)) << d.log();
  EXPECT_TRUE(process_alive(d.pid()));
  ProcessResult end = d.stop();
  EXPECT_EQ(end.exit_code, 0) << end.err;
  box.expect_nothing_left("after the daemon exited");
  StartGaps g = start_gaps(parse_daemon_log(end.err, /*json=*/false), "good", "schedd ready",
                           "received SIGTERM");
  std::printf("good helper started %zu times, longest gap %lld ms\n", g.starts,
              static_cast<long long>(g.max_gap_ms));
  EXPECT_GE(g.starts, 3u);
  EXPECT_LE(g.max_gap_ms, kMaxStartGapMs) << g.where;
}

// Regression: with --log-format json and on_plugin_error = "skip", the warning that a refused
// plugin was skipped came out as a text line (it was logged while the plugins loaded, before
// the log format was set up), so the log was not JSON on every line.
TEST(ContainmentTest, JsonLogHasATextLineWhenAPluginIsSkipped) {
  Sandbox box({kFixtures / "fx_wrong_abi.so", kPlugins / "noop.so"});
  const fs::path config = box.write_config("on_plugin_error = \"skip\"", R"([api]
listen = "127.0.0.1:0"
)");
  DaemonProcess d(config, {"--log-format", "json"});
  ASSERT_TRUE(d.wait_ready()) << d.log();
  ProcessResult end = d.stop();
  EXPECT_EQ(end.exit_code, 0) << end.err;
  std::vector<std::string> not_json;
  parse_daemon_log(end.err, /*json=*/true, &not_json);
  EXPECT_TRUE(not_json.empty()) << "not JSON: " << (not_json.empty() ? "" : not_json.front());
  EXPECT_NE(end.err.find("fx_wrong_abi.so"), std::string::npos) << end.err;
}

// --------------------------------------------------------------------------------------------
// 2. Stopping runs that ignore stop requests.

// Reads one execution's row from a store file after the daemon exited.
struct Row {
  int status = -1;  // docs/store.md: 3 failed, 5 cancelled, 8 interrupted, ...
  int attempt = 0;
  std::string message;
};

std::optional<Row> read_row(const fs::path& db, const std::string& id) {
  sqlite3* h = nullptr;
  std::optional<Row> row;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* q = nullptr;
    if (sqlite3_prepare_v2(h, "SELECT status, attempt, message FROM executions WHERE id = ?", -1,
                           &q, nullptr) == SQLITE_OK) {
      sqlite3_bind_text(q, 1, id.c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(q) == SQLITE_ROW) {
        row = Row{sqlite3_column_int(q, 0), sqlite3_column_int(q, 1), ""};
        if (const unsigned char* m = sqlite3_column_text(q, 2)) {
          row->message = reinterpret_cast<const char*>(m);
        }
      }
    }
    sqlite3_finalize(q);
  }
  sqlite3_close(h);
  return row;
}

constexpr int kStatusFailed = 3;
constexpr int kStatusInterrupted = 8;

// SIGTERM while a run ignores its stop request: the daemon asks it to stop, kills its runner
// kill_grace (1 s) later, and exits 0 within shutdown_grace (2 s) + kill_grace (+ 3 s for a
// loaded machine); the run is recorded interrupted (it has no attempt left) and no runner
// process is left.
TEST(ContainmentTest, SigtermEndsARunThatIgnoresStopWithinTheGraces) {
  Sandbox box({kFixtures / "fx_spin.so"});
  const fs::path config = box.write_config(R"(store = "sqlite:state/schedd.db"
shutdown_grace = "2s"
kill_grace = "1s")",
                                           R"([api]
listen = "127.0.0.1:0"

[retry]
max_attempts = 1

[helpers.spin]
executor = "fx_spin"
schedule = { every = "24h" }
enabled = false
)");
  DaemonProcess d(config);
  ASSERT_TRUE(d.wait_ready()) << d.log();
  HttpClient http("127.0.0.1", d.port());
  auto submitted = submit(http, {{"helper", "spin"}, {"id", "spin-1"}});
  ASSERT_EQ(submitted.status, 201) << submitted.body;
  ASSERT_TRUE(box.wait_spinning("fx_spin.so", 20s)) << d.log();
  const std::string mark = process_mark(d.pid());

  const auto t0 = std::chrono::steady_clock::now();
  ProcessResult end = d.stop();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(end.exit_code, 0) << end.err;
  std::printf("exited %.3f s after SIGTERM\n", std::chrono::duration<double>(took).count());
  EXPECT_GE(took, 900ms) << "the run was not given its kill_grace";
  EXPECT_LT(took, 2s + 1s + 3s + kExitSlack) << end.err;
  EXPECT_NE(end.err.find("stop requested of 1 running executions"), std::string::npos) << end.err;
  box.expect_nothing_left("after the daemon exited");
  std::vector<pid_t> marked = live_processes_with_env(kMarkVar, mark);
  EXPECT_TRUE(marked.empty()) << describe_processes(marked);

  std::optional<Row> row = read_row(box.dir() / "state" / "schedd.db", "spin-1");
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->status, kStatusInterrupted) << row->message;
  EXPECT_NE(row->message.find("plugin fx_spin.so (executor fx_spin) did not stop within "
                              "kill_grace 1000 ms"),
            std::string::npos)
      << row->message;
}

// The config of the `schedd exec` tests: the fx_spin helper, kill_grace 1 s.
fs::path exec_config(const Sandbox& box) {
  return box.write_config("kill_grace = \"1s\"", R"([helpers.spin]
executor = "fx_spin"
schedule = { every = "24h" }
)");
}

// `schedd exec --timeout 1s` of a run that ignores stop: the timeout requests a stop, the
// runner is killed kill_grace later, and exec reports timed_out about 2 s after the run
// began (under 4 s).
TEST(ContainmentTest, ExecTimeoutKillsARunThatIgnoresStop) {
  Sandbox box({kFixtures / "fx_spin.so"});
  const fs::path config = exec_config(box);
  Process exec({SCHEDD_BINARY, "exec", "-c", config.string(), "spin", "--timeout", "1s"});
  // Timed from the run, not from the spawn: loading the plugin first takes its own time.
  ASSERT_TRUE(box.wait_spinning("fx_spin.so", 30s)) << exec.err();
  const auto t0 = std::chrono::steady_clock::now();
  ProcessResult r = exec.wait();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("status: timed_out\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("did not stop within kill_grace 1000 ms of the stop request: killed "
                       "with its process tree"),
            std::string::npos)
      << r.out;
  std::printf("exec returned %.3f s after its run began\n",
              std::chrono::duration<double>(took).count());
  // How long the run lasted, as exec timed it: `took` starts only once the test has seen the
  // runner spin, which a loaded machine can delay by more than the 500 ms to spare here.
  const std::size_t at = r.out.find("\nduration: ");
  ASSERT_NE(at, std::string::npos) << r.out;
  const double ran_s = std::strtod(r.out.c_str() + at + 11, nullptr);
  EXPECT_GE(ran_s, 1.5) << "returned before timeout + kill_grace\n" << r.out;
  EXPECT_LT(took, 1s + 1s + 2s + kExitSlack);
  box.expect_nothing_left("after exec returned");
}

// SIGINT to `schedd exec` while the run ignores stop: cancelled, within kill_grace (1 s) of
// the signal plus slack.
TEST(ContainmentTest, ExecSigintCancelsARunThatIgnoresStop) {
  Sandbox box({kFixtures / "fx_spin.so"});
  const fs::path config = exec_config(box);
  Process exec({SCHEDD_BINARY, "exec", "-c", config.string(), "spin"});
  // The signal comes while the run is under way (the runner is spinning in it).
  ASSERT_TRUE(box.wait_spinning("fx_spin.so", 20s)) << exec.err();
  const auto t0 = std::chrono::steady_clock::now();
  exec.signal(SIGINT);
  ProcessResult r = exec.wait();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("status: cancelled\n"), std::string::npos) << r.out;
  std::printf("exec returned %.3f s after SIGINT\n", std::chrono::duration<double>(took).count());
  EXPECT_LT(took, 1s + 2s + kExitSlack) << r.out;
  box.expect_nothing_left("after exec returned");
}

// --------------------------------------------------------------------------------------------
// 3. The crash loop: a plugin that segfaults used to take the daemon down with it, and a
// restarted daemon re-ran the interrupted execution and went down again. Now the attempt
// fails and the daemon stays; killed with kill -9 (the old crash) and restarted, it becomes
// ready and ends the execution failed after its attempts.

// "2026-12-06T19:22:05Z", `ahead` from now (rounded down to the second).
std::string rfc3339_in(std::chrono::seconds ahead) {
  time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + ahead);
  tm utc{};
  gmtime_r(&t, &utc);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

TEST(ContainmentTest, SegfaultingPluginNoLongerCrashLoopsTheDaemon) {
  Sandbox box({kFixtures / "fx_segv.so", kPlugins / "noop.so"});
  const fs::path config = box.write_config(R"(store = "sqlite:state/schedd.db"
lookahead = "1m"
expand_every = "30s"
kill_grace = "1s")",
                                           R"([api]
listen = "127.0.0.1:0"

[retry]
max_attempts = 3
delays = ["0s"]

[helpers.good]
executor = "noop"
schedule = { every = "1s" }

[helpers.segv]
executor = "fx_segv"
schedule = { every = "24h" }
enabled = false
)");
  const fs::path db = box.dir() / "state" / "schedd.db";
  // Under the sanitizers the runner reports the SIGSEGV and exits: only the label is sure.
  const std::string crash = SCHEDD_TEST_SANITIZED
                                ? "plugin fx_segv.so (executor fx_segv) "
                                : "plugin fx_segv.so (executor fx_segv) crashed: SIGSEGV";
  // A later attempt may find the plugin in its crash-loop backoff and fail at once, naming it.
  auto names_the_crash = [&](const std::string& message) {
    return message.find(crash) != std::string::npos ||
           message.find("plugin fx_segv.so (executor fx_segv): no runner: its runner crashed") !=
               std::string::npos;
  };

  // A: due at once, three attempts, all crash; the daemon stays up and stops cleanly.
  {
    DaemonProcess d(config);
    ASSERT_TRUE(d.wait_ready()) << d.log();
    HttpClient http("127.0.0.1", d.port());
    auto s = submit(http, {{"helper", "segv"}, {"id", "seg-a"}, {"key", "seg-a"}});
    ASSERT_EQ(s.status, 201) << s.body;
    std::optional<Json> e = wait_terminal(http, "seg-a", 30s);
    ASSERT_TRUE(e.has_value()) << d.log();
    EXPECT_EQ(e->value("status", ""), "failed");
    EXPECT_EQ(e->value("attempt", 0), 3);
    EXPECT_TRUE(process_alive(d.pid()));
    EXPECT_EQ(http.get("/readyz").status, 200);
    ProcessResult end = d.stop();
    EXPECT_EQ(end.exit_code, 0) << end.err;
    // Read after the stop: a completion reaches the store before its log line.
    EXPECT_EQ(count_of(end.err, "exec seg-a [seg-a] running -> failed"), 3u) << end.err;
    std::optional<Row> row = read_row(db, "seg-a");
    ASSERT_TRUE(row.has_value());
    EXPECT_EQ(row->status, kStatusFailed);
    EXPECT_EQ(row->attempt, 3);
    EXPECT_TRUE(names_the_crash(row->message)) << row->message;
  }

  // B: kill -9 with one execution running its first attempts (seg-r) and one queued for a
  // few seconds later (seg-q); the restarted daemon is ready and ends both failed.
  std::string killed_log;
  {
    DaemonProcess d(config);
    ASSERT_TRUE(d.wait_ready()) << d.log();
    HttpClient http("127.0.0.1", d.port());
    auto q = submit(
        http,
        {{"helper", "segv"}, {"id", "seg-q"}, {"key", "seg-q"}, {"not_before", rfc3339_in(5s)}});
    ASSERT_EQ(q.status, 201) << q.body;
    auto r = submit(http, {{"helper", "segv"}, {"id", "seg-r"}, {"key", "seg-r"}});
    ASSERT_EQ(r.status, 201) << r.body;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (d.log().find("exec seg-r [seg-r] queued -> running") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
    d.kill9();
    killed_log = d.log();
    ASSERT_NE(killed_log.find("exec seg-r [seg-r] queued -> running"), std::string::npos)
        << killed_log;
    ASSERT_EQ(killed_log.find("exec seg-q [seg-q] queued -> running"), std::string::npos)
        << "seg-q started before the kill; the test needs it queued\n"
        << killed_log;
  }
  auto claimed = [&](int attempt) {
    return killed_log.find("exec seg-r [seg-r] queued -> running (lane default, attempt " +
                           std::to_string(attempt)) != std::string::npos;
  };
  std::printf("killed with seg-r in attempt %d\n", claimed(3) ? 3 : claimed(2) ? 2 : 1);
  // Killed in its third attempt (a very slow machine), seg-r is interrupted for good.
  const bool third_claimed = claimed(3);
  {
    DaemonProcess d(config);
    ASSERT_TRUE(d.wait_ready()) << d.log();
    HttpClient http("127.0.0.1", d.port());
    EXPECT_EQ(http.get("/readyz").status, 200);
    std::optional<Json> q = wait_terminal(http, "seg-q", 30s);
    std::optional<Json> r = wait_terminal(http, "seg-r", 30s);
    ASSERT_TRUE(q.has_value() && r.has_value()) << d.log();
    EXPECT_EQ(q->value("status", ""), "failed") << q->dump();
    EXPECT_EQ(q->value("attempt", 0), 3) << q->dump();
    EXPECT_TRUE(names_the_crash(q->value("message", ""))) << q->dump();
    if (third_claimed && r->value("status", "") == "interrupted") {
      std::printf("seg-r was killed in its third attempt: interrupted\n");
    } else {
      EXPECT_EQ(r->value("status", ""), "failed") << r->dump();
      EXPECT_EQ(r->value("attempt", 0), 3) << r->dump();
      EXPECT_TRUE(names_the_crash(r->value("message", ""))) << r->dump();
    }
    // The daemon outlived every crash and still runs its other helper.
    const std::size_t good = count_of(d.log(), kGoodSucceeded);
    EXPECT_TRUE(wait_until([&] { return count_of(d.log(), kGoodSucceeded) > good; }, 10s));
    EXPECT_TRUE(process_alive(d.pid()));
    ProcessResult end = d.stop();
    EXPECT_EQ(end.exit_code, 0) << end.err;
  }
  box.expect_nothing_left("after the last daemon exited");
  std::optional<Row> row = read_row(db, "seg-q");
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->status, kStatusFailed);
  EXPECT_TRUE(names_the_crash(row->message)) << row->message;
}

// --------------------------------------------------------------------------------------------
// 4. kill -9 of the daemon while a `shell` job runs, round after round. The job's processes
// (sh and its sleep) can outlive the daemon: its runner dies with it (its death signal),
// mostly before it can kill its session, and an in-process job has nobody to kill it at all.
// The restarted daemon must kill what is left before it re-runs the interrupted execution,
// or two runs of one key would overlap. The job records "start ID ATTEMPT PID NS" and, 2 s
// later, "end ID ATTEMPT PID NS" to a file.

struct JobRecord {
  bool start = false;
  std::string id;
  int attempt = 0;
  pid_t pid = 0;
};

std::vector<JobRecord> read_job_records(const fs::path& file) {
  std::vector<JobRecord> out;
  std::istringstream in(read_file(file));
  for (std::string line; std::getline(in, line);) {
    std::istringstream ls(line);
    std::string kind;
    JobRecord r;
    long long ns = 0;
    if (!(ls >> kind >> r.id >> r.attempt >> r.pid >> ns)) continue;
    r.start = kind == "start";
    out.push_back(r);
  }
  return out;
}

std::size_t count_starts(const std::vector<JobRecord>& records) {
  return static_cast<std::size_t>(
      std::count_if(records.begin(), records.end(), [](const JobRecord& r) { return r.start; }));
}

void kill_nine_rounds(bool in_process, int rounds) {
  Sandbox box({kPlugins / "shell.so"});
  const fs::path records = box.dir() / "records.txt";
  const std::string script =
      "echo \"start $SCHEDD_EXECUTION_ID $SCHEDD_ATTEMPT $$ $(date +%s%N)\" >> " +
      records.string() + "; sleep 2; echo \"end $SCHEDD_EXECUTION_ID " +
      "$SCHEDD_ATTEMPT $$ $(date +%s%N)\" >> " + records.string();
  const fs::path config = box.write_config(R"(store = "sqlite:state/schedd.db"
lookahead = "1m"
expand_every = "30s"
kill_grace = "1s"
shutdown_grace = "5s")",
                                           R"([api]
listen = "127.0.0.1:0"

[retry]
max_attempts = 100
delays = ["0s"]

[helpers.job]
executor = "shell"
key = "job"
overlap = "queue"
schedule = { every = "1s" }
expiry = "1h"
params = { command = "sh", args = ["-c", )" + Json(script).dump() +
                                               R"(] }
)" + (in_process ? "\n[plugins.shell]\nisolation = \"inprocess\"\n" : ""));

  int rounds_held = 0;
  int rounds_killed_at_restart = 0;
  std::string previous_mark;  // the killed daemon's SCHEDD_RUNNER_OF
  JobRecord previous_run;     // the run it had started when it was killed
  for (int round = 0; round <= rounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const std::size_t starts_before = count_starts(read_job_records(records));
    // Not waiting for "schedd ready": the re-run may start before the API is up, and the
    // kill must land while it runs.
    DaemonProcess d(config);
    std::vector<JobRecord> recs;
    wait_until(
        [&] {
          recs = read_job_records(records);
          return count_starts(recs) > starts_before || !process_alive(d.pid());
        },
        40s);
    ASSERT_GT(count_starts(recs), starts_before) << d.log();
    auto started =
        std::find_if(recs.rbegin(), recs.rend(), [](const JobRecord& r) { return r.start; });
    if (round == 0) {
      // The shell plugin runs where the test means it to.
      EXPECT_NE(
          d.log().find(in_process ? "(1 executors, in process)" : "(1 executors, out of process)"),
          std::string::npos)
          << d.log();
    }
    if (round > 0) {
      // This daemon's run began after everything of the killed daemon was gone: nothing
      // carries its mark, nothing is left in the killed job's process group.
      std::vector<pid_t> old = live_processes_with_env(kMarkVar, previous_mark);
      std::vector<pid_t> group = live_processes_in_group(previous_run.pid);
      EXPECT_TRUE(old.empty()) << "alive from the killed daemon: " << describe_processes(old);
      EXPECT_TRUE(group.empty()) << "the killed run's job is alive: " << describe_processes(group);
      // Who killed the job: out of process, its runner often does, on seeing the daemon's
      // socket close before its own death signal lands, and otherwise the restarted daemon;
      // in process only the restarted daemon can, and must say so (unless the job's 2 s were
      // up before the restart, on a very slow machine).
      const bool killed_at_restart = d.log().find("left running by an earlier instance of node " +
                                                  box.node()) != std::string::npos;
      const bool ended_itself =
          std::any_of(recs.begin(), started.base() - 1, [&](const JobRecord& r) {
            return !r.start && r.id == previous_run.id && r.attempt == previous_run.attempt;
          });
      if (in_process && !ended_itself) {
        EXPECT_TRUE(killed_at_restart) << d.log();
      }
      if (killed_at_restart) ++rounds_killed_at_restart;
      if (old.empty() && group.empty()) ++rounds_held;
    }
    if (round == rounds) {
      // The last daemon lets its run finish, which shows the records' end lines work.
      const JobRecord last = *started;
      EXPECT_TRUE(wait_until(
          [&] {
            for (const JobRecord& r : read_job_records(records)) {
              if (!r.start && r.id == last.id && r.attempt == last.attempt) return true;
            }
            return false;
          },
          10s))
          << read_file(records);
      ProcessResult end = d.stop();
      EXPECT_EQ(end.exit_code, 0) << end.err;
      break;
    }
    previous_mark = process_mark(d.pid());
    previous_run = *started;
    d.kill9();
  }
  box.expect_nothing_left("after the last daemon exited");
  EXPECT_EQ(rounds_held, rounds);
  std::printf("%d of %d kill -9 rounds held; in %d the restarted daemon killed the old job\n",
              rounds_held, rounds, rounds_killed_at_restart);

  // The records: one run at a time. An end belongs to the latest run to start: a killed
  // run's end never comes after the next run's start.
  std::vector<JobRecord> recs = read_job_records(records);
  std::optional<JobRecord> running;
  std::size_t without_end = 0;
  for (const JobRecord& r : recs) {
    if (r.start) {
      if (running) ++without_end;
      running = r;
      continue;
    }
    EXPECT_TRUE(running && running->id == r.id && running->attempt == r.attempt)
        << "end of " << r.id << " attempt " << r.attempt << " (pid " << r.pid
        << ") after another run started\n"
        << read_file(records);
    running.reset();
  }
  std::printf("%zu runs, %zu of them without an end (killed)\n", count_starts(recs), without_end);
}

TEST(ContainmentTest, KillNineNeverLetsAShellJobOverlapItsRerun) { kill_nine_rounds(false, 20); }

TEST(ContainmentTest, KillNineAlsoKillsInProcessShellJobsAtRestart) { kill_nine_rounds(true, 5); }

}  // namespace
}  // namespace schedd::testing
