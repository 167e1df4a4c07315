// schedd as a service, from the inside (issue #17): the sd_notify protocol on a NOTIFY_SOCKET
// of the test's own, the signals a service meets, settings from the environment and flags,
// and `schedd doctor`. Every test runs the real daemon with real plugins and a real SQLite
// file (and a real redis-server for the doctor's Redis line).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "core/store/sqlite_store.h"
#include "tests/testing/daemon_process.h"
#include "tests/testing/http_client.h"
#include "tests/testing/notify_listener.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/sqlite_rows.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace schedd::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

// A config with a SQLite store in `dir`, the API on `listen`, and a helper `long` that sleeps
// for an hour when run (its schedule fires once a year, so only "run now" starts it).
fs::path service_config(const TempDir& dir, const std::string& listen = "127.0.0.1:0",
                        const std::string& extra_daemon = "") {
  return dir.write("etc/schedd.toml", std::string(R"([daemon]
plugin_dir = ")") + SCHEDD_PLUGIN_DIR + R"("
store = "sqlite:state/schedd.db"
shutdown_grace = "5s"
kill_grace = "1s"
)" + extra_daemon + R"(
[api]
listen = ")" + listen + R"("

[helpers.long]
executor = "sleep"
schedule = { cron = "0 0 1 1 *" }
params = { duration = "1h" }
)");
}

// A loopback port nobody listens on right now.
uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Executions recorded as `running` (status code 1, docs/store.md) in the SQLite store `h`.
int running_in(sqlite3* h) {
  int n = -1;
  sqlite3_stmt* st = nullptr;
  if (h != nullptr &&
      sqlite3_prepare_v2(h, "SELECT count(*) FROM executions WHERE status = 1", -1, &st, nullptr) ==
          SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    n = sqlite3_column_int(st, 0);
  }
  sqlite3_finalize(st);
  return n;
}

// ... in the store file, once the daemon is gone.
int running_on_disk(const fs::path& db) {
  sqlite3* h = nullptr;
  int n = -1;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    n = running_in(h);
  }
  sqlite3_close(h);
  return n;
}

// ... in a backup taken over the API of the daemon at `port` (while it runs, the daemon holds
// its file locked).
int running_in_backup(uint16_t port) {
  HttpClient client("127.0.0.1", port);
  auto r = client.post("/v1/store/backup", "");
  if (r.status != 200) {
    ADD_FAILURE() << "backup: " << r.status << " " << r.body.substr(0, 300);
    return -1;
  }
  BackupCopy copy(r.body);
  return running_in(copy.db());
}

// Starts helper `long` through the API and waits until it runs; returns its id.
std::string start_long_run(uint16_t port) {
  HttpClient client("127.0.0.1", port);
  auto r = client.post("/v1/helpers/long/run", "");
  if (r.status != 201) {
    ADD_FAILURE() << "run now: " << r.status << " " << r.body;
    return "";
  }
  const std::string id = Json::parse(r.body).value("id", "");
  const auto deadline = steady_clock::now() + std::chrono::seconds(30);
  while (steady_clock::now() < deadline) {
    auto g = client.get("/v1/executions/" + id);
    if (g.status == 200 && Json::parse(g.body).value("status", "") == "running") return id;
    std::this_thread::sleep_for(milliseconds(20));
  }
  ADD_FAILURE() << "execution " << id << " never ran";
  return id;
}

std::string signal_test_name(const ::testing::TestParamInfo<int>& info) {
  switch (info.param) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    case SIGQUIT:
      return "SIGQUIT";
    case SIGHUP:
      return "SIGHUP";
  }
  return "signal" + std::to_string(info.param);
}

// --- Signals --------------------------------------------------------------------------------

class SignalTest : public ::testing::TestWithParam<int> {};

// Whatever signal ends the daemon ends it gracefully, and SIGHUP never ends it: no execution is
// left recorded as running in the store file afterwards.
TEST_P(SignalTest, EndsGracefullyOrReloadsAndLeavesNothingRunning) {
  const int sig = GetParam();
  TempDir dir;
  auto config = service_config(dir);
  DaemonProcess d(config);
  ASSERT_TRUE(d.wait_ready()) << d.log();
  const std::string id = start_long_run(d.port());
  ASSERT_FALSE(id.empty());
  // The API reads the store's memory; the claim reaches the file with the writer's next
  // commit, which a backup taken just before it does not see.
  int in_backup = running_in_backup(d.port());
  for (int i = 0; i < 100 && in_backup == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    in_backup = running_in_backup(d.port());
  }
  EXPECT_EQ(in_backup, 1);

  d.signal(sig);
  if (sig == SIGHUP) {
    // It reloads and keeps serving, the run still going.
    ASSERT_TRUE(d.wait_for_log("reload applied")) << d.log();
    ASSERT_THAT(d.log(), HasSubstr("received SIGHUP: reloading"));
    EXPECT_FALSE(d.exited());
    HttpClient client("127.0.0.1", d.port());
    auto g = client.get("/v1/executions/" + id);
    ASSERT_EQ(g.status, 200) << g.body;
    EXPECT_EQ(Json::parse(g.body).value("status", ""), "running");
    // A second SIGHUP is handled the same way: the daemon waits for the next signal.
    d.signal(SIGHUP);
    EXPECT_EQ(HttpClient("127.0.0.1", d.port()).get("/healthz").status, 200);
    d.signal(SIGTERM);
  }
  ProcessResult r = d.wait();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const std::string name = signal_test_name({sig == SIGHUP ? SIGTERM : sig, 0});
  EXPECT_THAT(r.err, HasSubstr("received " + name + ", shutting down")) << r.err;
  EXPECT_THAT(r.err, HasSubstr("schedd stopped"));
  EXPECT_EQ(running_on_disk(dir / "etc/state/schedd.db"), 0);
}

// A parent that left the signals ignored (nohup: SIGHUP; a shell's `cmd &`: SIGINT, SIGQUIT)
// does not take them away: the daemon still reloads on SIGHUP and stops on SIGINT.
TEST(SignalIgnoredTest, SignalsIgnoredByTheParentStillWork) {
  TempDir dir;
  auto config = service_config(dir);
  Process p({"/bin/sh", "-c", "trap '' HUP INT QUIT; exec \"$0\" run -c \"$1\"", SCHEDD_BINARY,
             config.string()});
  ASSERT_TRUE(p.wait_for_err("schedd ready", std::chrono::seconds(60))) << p.err();
  p.signal(SIGHUP);
  ASSERT_TRUE(p.wait_for_err("reload applied", std::chrono::seconds(30))) << p.err();
  p.signal(SIGINT);
  ProcessResult r = p.wait();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("received SIGINT, shutting down"));
}

INSTANTIATE_TEST_SUITE_P(Signals, SignalTest, ::testing::Values(SIGTERM, SIGINT, SIGQUIT, SIGHUP),
                         signal_test_name);

class ExecSignalTest : public ::testing::TestWithParam<int> {};

// `schedd exec` ends its run gracefully (cancelled) on any of them, SIGHUP included (a closed
// terminal).
TEST_P(ExecSignalTest, EndsTheRunAsCancelled) {
  TempDir dir;
  auto config = service_config(dir);
  Process p({SCHEDD_BINARY, "exec", "-c", config.string(), "long"});
  ASSERT_TRUE(p.wait_for_err("progress", std::chrono::seconds(30))) << p.err();
  p.signal(GetParam());
  ProcessResult r = p.wait();
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.out, HasSubstr("status: cancelled")) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("requesting stop"));
}

INSTANTIATE_TEST_SUITE_P(Signals, ExecSignalTest,
                         ::testing::Values(SIGTERM, SIGINT, SIGQUIT, SIGHUP), signal_test_name);

// --- sd_notify --------------------------------------------------------------------------------

// READY=1 only once the API answers; WATCHDOG=1 at half of WATCHDOG_USEC; RELOADING=1 then
// READY=1 around SIGHUP; STOPPING=1 on SIGTERM.
TEST(NotifyTest, ReadyAfterTheApiAnswersThenWatchdogReloadAndStopping) {
  TempDir dir;
  const uint16_t port = free_port();
  auto config = service_config(dir);
  NotifyListener listener;
  // At READY=1, at once, on the listener's thread: the API must answer.
  std::atomic<int> status_at_ready{-1};
  listener.on_message([&](const NotifyMessage& m) {
    if (m.has("READY=1") && status_at_ready < 0) {
      HttpClient client("127.0.0.1", port);
      status_at_ready = client.get("/healthz").status;
    }
  });
  DaemonProcess d(config, {"--listen", "127.0.0.1:" + std::to_string(port)},
                  {"NOTIFY_SOCKET=" + listener.address(), "WATCHDOG_USEC=400000"});
  const long ready = listener.wait_for("READY=1", std::chrono::seconds(60));
  ASSERT_GE(ready, 0) << d.log();
  EXPECT_EQ(status_at_ready.load(), 200) << "READY=1 came before the API answered";
  ASSERT_TRUE(d.wait_ready()) << d.log();
  EXPECT_EQ(d.port(), port);
  auto messages = listener.messages();
  // Start-up status lines came before READY, and READY carries a status line of its own.
  EXPECT_TRUE(messages[0].has("STATUS=")) << messages[0].text;
  EXPECT_THAT(messages[static_cast<std::size_t>(ready)].text, HasSubstr("STATUS=running 0"));
  for (long i = 0; i < ready; ++i) {
    EXPECT_FALSE(messages[static_cast<std::size_t>(i)].has("WATCHDOG=1"));
  }

  // Pings at half of 400 ms: about 10 in 2 s. Bounds are loose: the machine is shared.
  const auto from = steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const std::size_t pings = listener.count("WATCHDOG=1", from, steady_clock::now());
  EXPECT_GE(pings, 4u);
  EXPECT_LE(pings, 20u);
  // The status line stays current: more than one arrives while running.
  EXPECT_GE(listener.count("STATUS="), 2u);

  const std::size_t before_reload = listener.messages().size();
  d.signal(SIGHUP);
  const long reloading = listener.wait_for("RELOADING=1", std::chrono::seconds(30), before_reload);
  ASSERT_GE(reloading, 0) << d.log();
  messages = listener.messages();
  EXPECT_TRUE(messages[static_cast<std::size_t>(reloading)].has("MONOTONIC_USEC="))
      << messages[static_cast<std::size_t>(reloading)].text;
  const long ready_again =
      listener.wait_for("READY=1", std::chrono::seconds(30), static_cast<std::size_t>(reloading));
  EXPECT_GT(ready_again, reloading);
  EXPECT_EQ(HttpClient("127.0.0.1", port).get("/healthz").status, 200);

  const std::size_t before_stop = listener.messages().size();
  d.signal(SIGTERM);
  EXPECT_GE(listener.wait_for("STOPPING=1", std::chrono::seconds(30), before_stop), 0);
  EXPECT_EQ(d.wait().exit_code, 0);
}

// A dispatcher wedged on purpose (SCHEDD_DEBUG_HOOKS=1, SIGUSR2) stops the watchdog pings, and
// they come back once it turns again.
TEST(NotifyTest, AWedgedDispatcherStopsTheWatchdogPings) {
  TempDir dir;
  auto config = service_config(dir);
  NotifyListener listener(/*abstract=*/true);
  DaemonProcess d(
      config, {},
      {"NOTIFY_SOCKET=" + listener.address(), "WATCHDOG_USEC=200000", "SCHEDD_DEBUG_HOOKS=1"});
  ASSERT_TRUE(d.wait_ready()) << d.log();
  ASSERT_GE(listener.wait_for("WATCHDOG=1", std::chrono::seconds(30)), 0) << d.log();

  d.signal(SIGUSR2);
  ASSERT_TRUE(d.wait_for_log("holding back WATCHDOG=1")) << d.log();
  ASSERT_THAT(d.log(), HasSubstr("dispatcher loop wedged on purpose"));
  // From the first held-back ping on, none goes out: 1.5 s is over 10 intervals of 100 ms.
  const auto from = steady_clock::now();
  std::this_thread::sleep_for(milliseconds(1500));
  EXPECT_EQ(listener.count("WATCHDOG=1", from), 0u) << d.log();

  d.signal(SIGUSR2);
  const std::size_t after = listener.messages().size();
  EXPECT_GE(listener.wait_for("WATCHDOG=1", std::chrono::seconds(30), after), 0) << d.log();
  // Logged before that ping went out, but the test reads the log on a thread of its own.
  EXPECT_TRUE(d.wait_for_log("the dispatcher loop turns again")) << d.log();
  EXPECT_EQ(d.stop().exit_code, 0);
}

// Without NOTIFY_SOCKET nothing is sent and nothing complains; SIGUSR2 is not taken without
// the debug hooks (its default action ends the process, as for any program).
TEST(NotifyTest, NoSocketNoNotifications) {
  TempDir dir;
  auto config = service_config(dir);
  DaemonProcess d(config);
  ASSERT_TRUE(d.wait_ready()) << d.log();
  EXPECT_THAT(d.log(), Not(HasSubstr("service notifications")));
  EXPECT_THAT(d.log(), Not(HasSubstr("sd_notify")));
  EXPECT_EQ(d.stop().exit_code, 0);
}

// --- Environment and flags --------------------------------------------------------------------

TEST(EnvironmentTest, FlagOverEnvironmentOverFileOnARealDaemon) {
  TempDir dir;
  const uint16_t env_port = free_port();
  const uint16_t flag_port = free_port();
  auto config = service_config(dir, "127.0.0.1:1");  // never used: both override it
  dir.write("data/.keep", "");
  DaemonProcess d(config, {"--listen", "127.0.0.1:" + std::to_string(flag_port)},
                  {"SCHEDD_LISTEN=127.0.0.1:" + std::to_string(env_port),
                   "SCHEDD_DATA_DIR=" + (dir / "data").string(), "SCHEDD_LOG_LEVEL=debug"});
  ASSERT_TRUE(d.wait_ready()) << d.log();
  EXPECT_EQ(d.port(), flag_port);
  EXPECT_THAT(d.log(), HasSubstr("api.listen from --listen"));
  EXPECT_THAT(d.log(), HasSubstr("daemon.data_dir from SCHEDD_DATA_DIR"));
  EXPECT_TRUE(fs::exists(dir / "data/state/schedd.db")) << d.log();
  EXPECT_FALSE(fs::exists(dir / "etc/state"));
  // At debug level the API logs each request.
  EXPECT_EQ(HttpClient("127.0.0.1", d.port()).get("/healthz").status, 200);
  EXPECT_TRUE(d.wait_for_log("GET /healthz -> 200")) << d.log();
  EXPECT_EQ(d.stop().exit_code, 0);
}

TEST(EnvironmentTest, ConfigFromTheEnvironmentAndPrintEffective) {
  TempDir dir;
  auto config = service_config(dir);
  auto r =
      run_process({"/usr/bin/env", "SCHEDD_CONFIG=" + config.string(),
                   "SCHEDD_STORE=sqlite:other.db", "SCHEDD_LISTEN=127.0.0.1:7001", SCHEDD_BINARY,
                   "check-config", "--print-effective", "--listen", "127.0.0.1:7002"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("listen = \"127.0.0.1:7002\"  # from --listen (was "
                               "\"127.0.0.1:7001\")"));
  EXPECT_THAT(r.out, HasSubstr("store = \"sqlite:other.db\"  # from SCHEDD_STORE (was "
                               "\"sqlite:state/schedd.db\")"));
  EXPECT_THAT(r.out, HasSubstr("# store file: " + (dir / "etc/other.db").string()));
  EXPECT_THAT(r.out, HasSubstr("shutdown_grace = \"5s\"\n"));
  EXPECT_THAT(r.out, HasSubstr("max_param_bytes = 65536\n"));  // a default, shown too
  EXPECT_THAT(r.out, HasSubstr("# [helpers.*] as in the file (1): long"));
}

TEST(EnvironmentTest, ABadValueNamesTheVariable) {
  TempDir dir;
  auto config = service_config(dir);
  auto r = run_process({"/usr/bin/env", "SCHEDD_LISTEN=localhost", "SCHEDD_LOG_LEVEL=loud",
                        SCHEDD_BINARY, "run", "-c", config.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("SCHEDD_LISTEN: \"localhost\" is not HOST:PORT"));
  EXPECT_THAT(r.err, HasSubstr("SCHEDD_LOG_LEVEL: \"loud\" is not one of"));

  auto none = run_process({"/usr/bin/env", "-u", "SCHEDD_CONFIG", SCHEDD_BINARY, "run"});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_THAT(none.err, HasSubstr("give -c FILE or set SCHEDD_CONFIG"));
}

// --- schedd doctor ----------------------------------------------------------------------------

// The doctor's line for `check`, "" when there is none.
std::string doctor_line(const std::string& out, const std::string& check) {
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > 6 && line.substr(6).starts_with(check + " ")) return line;
  }
  return "";
}

TEST(DoctorTest, AGoodConfigPassesWithOneLineEach) {
  TempDir dir;
  auto config = service_config(dir, "127.0.0.1:" + std::to_string(free_port()));
  {
    // A store file with its schema, as a daemon leaves it.
    DaemonProcess d(config, {"--listen", "127.0.0.1:0"});
    ASSERT_TRUE(d.wait_ready()) << d.log();
    ASSERT_EQ(d.stop().exit_code, 0);
  }
  auto r = run_process({SCHEDD_BINARY, "doctor", "-c", config.string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(doctor_line(r.out, "config"), HasSubstr("ok    config"));
  EXPECT_THAT(doctor_line(r.out, "config"), HasSubstr("1 helpers"));
  EXPECT_THAT(doctor_line(r.out, "plugins"), HasSubstr("ok    plugins"));
  EXPECT_THAT(doctor_line(r.out, "plugins"), HasSubstr("sleep "));
  EXPECT_THAT(doctor_line(r.out, "store"), HasSubstr("ok    store"));
  EXPECT_THAT(doctor_line(r.out, "store"),
              HasSubstr("schema " + std::to_string(SqliteStore::kSchemaVersion) + ", "));
  EXPECT_THAT(doctor_line(r.out, "store"), HasSubstr(" free on "));
  EXPECT_THAT(doctor_line(r.out, "redis"), HasSubstr("skip  redis"));
  EXPECT_THAT(doctor_line(r.out, "listen"), HasSubstr("ok    listen"));
  EXPECT_THAT(doctor_line(r.out, "tzdata"), HasSubstr("tzdata 20"));
  EXPECT_THAT(doctor_line(r.out, "clock"), Not(HasSubstr("FAIL")));
  EXPECT_THAT(doctor_line(r.out, "permissions"), HasSubstr("writable"));
  EXPECT_THAT(r.out, HasSubstr("doctor: 0 failures"));
}

TEST(DoctorTest, ABadPluginDirFailsNamingIt) {
  TempDir dir;
  auto config = service_config(dir);
  auto r = run_process(
      {SCHEDD_BINARY, "doctor", "-c", config.string(), "--plugin-dir", "/nonexistent/plugins"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(doctor_line(r.out, "plugins"), HasSubstr("FAIL  plugins"));
  EXPECT_THAT(doctor_line(r.out, "plugins"), HasSubstr("/nonexistent/plugins"));
  EXPECT_THAT(doctor_line(r.out, "permissions"), HasSubstr("/nonexistent/plugins"));
  EXPECT_THAT(r.out, HasSubstr("doctor: 2 failures"));
}

TEST(DoctorTest, ABusyListenPortFailsNamingIt) {
  TempDir dir;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const std::string listen = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  auto config = service_config(dir, listen);
  auto r = run_process({SCHEDD_BINARY, "doctor", "-c", config.string()});
  ::close(fd);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(doctor_line(r.out, "listen"), HasSubstr("FAIL  listen"));
  EXPECT_THAT(doctor_line(r.out, "listen"), HasSubstr(listen + ": cannot listen"));
  EXPECT_THAT(r.out, HasSubstr("doctor: 1 failure"));
}

TEST(DoctorTest, AnUnwritableStoreDirFailsNamingIt) {
  TempDir dir;
  // /proc takes no new files, not even from root; as another user a read-only folder does.
  std::vector<std::string> dirs = {"/proc/schedd-doctor-test"};
  if (::geteuid() != 0) {
    fs::create_directories(dir / "ro");
    fs::permissions(dir / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    dirs.push_back((dir / "ro").string());
  }
  for (const auto& state : dirs) {
    auto config = service_config(dir);
    auto r = run_process({"/usr/bin/env", "SCHEDD_STORE=sqlite:" + state + "/schedd.db",
                          SCHEDD_BINARY, "doctor", "-c", config.string()});
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_THAT(doctor_line(r.out, "permissions"), HasSubstr("FAIL  permissions"));
    EXPECT_THAT(doctor_line(r.out, "permissions"), HasSubstr("state dir " + state));
    EXPECT_THAT(doctor_line(r.out, "config"), HasSubstr("daemon.store from SCHEDD_STORE"));
  }
  if (::geteuid() != 0) fs::permissions(dir / "ro", fs::perms::owner_all);
}

TEST(DoctorTest, RedisLineNamesVersionAndAof) {
  RedisServer server;
  TempDir dir;
  auto config = service_config(dir);
  auto r = run_process({"/usr/bin/env", "SCHEDD_STORE=" + server.url(), SCHEDD_BINARY, "doctor",
                        "-c", config.string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(doctor_line(r.out, "store"), HasSubstr("ok    store        " + server.url()));
  EXPECT_THAT(doctor_line(r.out, "redis"), HasSubstr("reachable, Redis "));
  EXPECT_THAT(doctor_line(r.out, "redis"), HasSubstr("AOF on (appendfsync always)"));

  server.stop();
  r = run_process({"/usr/bin/env", "SCHEDD_STORE=" + server.url(), SCHEDD_BINARY, "doctor", "-c",
                   config.string()});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(doctor_line(r.out, "redis"), HasSubstr("FAIL  redis"));
  EXPECT_THAT(doctor_line(r.out, "redis"), HasSubstr(server.url() + ": not reachable"));
}

TEST(DoctorTest, ABadConfigFailsAndSkipsWhatNeedsIt) {
  TempDir dir;
  auto config = dir.write("schedd.toml", "[daemon]\nlookahed = \"2h\"\n");
  auto r = run_process({SCHEDD_BINARY, "doctor", "-c", config.string()});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(doctor_line(r.out, "config"), HasSubstr("FAIL  config"));
  EXPECT_THAT(doctor_line(r.out, "config"), HasSubstr(config.string() + ":2:1: unknown key"));
  EXPECT_THAT(doctor_line(r.out, "plugins"), HasSubstr("skip  plugins"));
  EXPECT_THAT(doctor_line(r.out, "tzdata"), HasSubstr("tzdata 20"));
}

}  // namespace
}  // namespace schedd::testing
