// The real `schedd` binary, driven as an operator would: exit codes, stdout vs stderr, the
// text of errors, and a clean shutdown on SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace schedd {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::run_process;

const std::string kSchedd = SCHEDD_BINARY;
const std::string kPlugins = SCHEDD_PLUGIN_DIR;

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// A config in a temp dir whose plugin_dir is the build's first-party plugins.
fs::path write_config(const testing::TempDir& dir, const std::string& body) {
  return dir.write("schedd.toml", "[daemon]\nplugin_dir = \"" + kPlugins + "\"\n" + body);
}

TEST(CliTest, VersionNamesTheAbi) {
  auto r = run_process({kSchedd, "--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "schedd " SCHEDD_VERSION " (plugin ABI 1)\n");
}

TEST(CliTest, UsageErrorExitsTwo) {
  auto r = run_process({kSchedd, "frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(r.out.empty());
}

TEST(CliTest, ShippedConfigsAreValid) {
  for (const char* name : {"schedd.toml", "minimal.toml"}) {
    std::string path = std::string(SCHEDD_SOURCE_DIR) + "/config/" + name;
    auto r = run_process({kSchedd, "check-config", path, "--plugin-dir", kPlugins});
    EXPECT_EQ(r.exit_code, 0) << name << "\n" << r.err;
    EXPECT_TRUE(r.out.starts_with(path + ": ok (")) << r.out;
  }
}

TEST(CliTest, CheckConfigReportsEveryMistakeWithPosition) {
  testing::TempDir dir;
  fs::path cfg = write_config(dir, R"([lanes.default]
workres = 4

[helpers.report]
executor = "shel"
schedule = { cron = "61 * * * *" }
priority = 9
)");
  auto r = run_process({kSchedd, "check-config", cfg.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(r.out.empty()) << r.out;
  std::string p = cfg.string();
  // Phase 1 errors (all of them, in file order) stop before executors are checked.
  auto l = lines(r.err);
  ASSERT_GE(l.size(), 3u) << r.err;
  EXPECT_EQ(l[0],
            p + ":4:1: unknown key \"workres\" in [lanes.default] (did you mean \"workers\"?)")
      << r.err;
  EXPECT_NE(r.err.find(p + ":8:"), std::string::npos) << r.err;  // cron
  EXPECT_NE(r.err.find("minute: 61 is out of range 0-59"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(p + ":9:12: [helpers.report] priority: 9 is out of range 1-5"),
            std::string::npos)
      << r.err;
}

// Issue #18: a 50,000-segment table header overflowed toml++'s stack (SIGSEGV, exit 139).
TEST(CliTest, CheckConfigRefusesDeepNestingInsteadOfCrashing) {
  testing::TempDir dir;
  std::string header = "[t";
  for (int i = 1; i < 50000; ++i) header += ".t";
  auto cfg = dir.write("deep.toml", header + "]\n");
  auto r = run_process({kSchedd, "check-config", cfg.string()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(cfg.string() + ":1:1: nesting depth 50000 exceeds the limit of 64"),
            std::string::npos)
      << r.err;
}

TEST(CliTest, CheckConfigNamesUnknownExecutorWithSuggestion) {
  testing::TempDir dir;
  fs::path cfg = write_config(dir, R"([helpers.report]
executor = "shel"
schedule = { every = "1h" }
)");
  auto r = run_process({kSchedd, "check-config", cfg.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(cfg.string() +
                       ":4:12: [helpers.report] executor: unknown executor \"shel\" (did you "
                       "mean \"shell\"?)"),
            std::string::npos)
      << r.err;
}

TEST(CliTest, RefusedPluginStopsStartupAndNamesTheFile) {
  testing::TempDir dir;
  fs::create_directory(dir / "plugins");
  for (const char* f : {"noop.so", "sleep.so"})
    fs::copy_file(fs::path(kPlugins) / f, dir / "plugins" / f);
  fs::copy_file(fs::path(SCHEDD_FIXTURE_DIR) / "fx_wrong_abi.so", dir / "plugins" / "future.so");
  fs::copy_file(fs::path(SCHEDD_FIXTURE_DIR) / "fx_no_manifest.so", dir / "plugins" / "lib.so");
  dir.write("schedd.toml", R"([daemon]
plugin_dir = "plugins"
[helpers.n]
executor = "noop"
schedule = { every = "1m" }
)");
  auto r = run_process({kSchedd, "check-config", (dir / "schedd.toml").string()});
  EXPECT_EQ(r.exit_code, 2);
  std::string future = (dir / "plugins" / "future.so").string();
  std::string lib = (dir / "plugins" / "lib.so").string();
  EXPECT_NE(r.err.find(future + ": built for plugin ABI 999, this daemon speaks ABI 1"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(lib + ": not a schedd plugin: no schedd_plugin_manifest symbol"),
            std::string::npos)
      << r.err;

  // on_plugin_error = "skip" loads the rest.
  dir.write("schedd.toml", R"([daemon]
plugin_dir = "plugins"
on_plugin_error = "skip"
[helpers.n]
executor = "noop"
schedule = { every = "1m" }
)");
  auto skip = run_process({kSchedd, "plugins", "-c", (dir / "schedd.toml").string()});
  EXPECT_EQ(skip.exit_code, 0) << skip.err;
  EXPECT_NE(skip.out.find("executor noop"), std::string::npos) << skip.out;
  EXPECT_NE(skip.out.find("skipped " + future), std::string::npos) << skip.out;
}

TEST(CliTest, PluginsListsExecutorsAndSchemas) {
  testing::TempDir dir;
  fs::path cfg = write_config(dir, "");
  auto r = run_process({kSchedd, "plugins", "-c", cfg.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* needle : {"plugin shell ", "plugin sleep ", "plugin noop ", "executor shell",
                             "command (string, required)", "duration (duration, required)"}) {
    EXPECT_NE(r.out.find(needle), std::string::npos) << needle << "\n" << r.out;
  }
}

TEST(CliTest, ExecRunsOneHelperNow) {
  testing::TempDir dir;
  fs::path cfg = write_config(dir, R"([helpers.hello]
executor = "shell"
schedule = { every = "1h" }
params = { command = "sh", args = ["-c", "echo hello $SCHEDD_HELPER"] }
[helpers.nap]
executor = "sleep"
schedule = { every = "1h" }
params = { duration = "30s" }
)");
  auto r = run_process({kSchedd, "exec", "-c", cfg.string(), "hello"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("status: succeeded\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("hello hello"), std::string::npos) << r.out;

  // A timeout requests a cooperative stop; the sleep plugin returns at once.
  auto t0 = std::chrono::steady_clock::now();
  auto nap = run_process({kSchedd, "exec", "-c", cfg.string(), "nap", "--timeout", "200ms"});
  EXPECT_EQ(nap.exit_code, 1);
  EXPECT_NE(nap.out.find("status: timed_out\n"), std::string::npos) << nap.out;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s);

  auto unknown = run_process({kSchedd, "exec", "-c", cfg.string(), "helo"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("unknown helper \"helo\" (did you mean \"hello\"?)"),
            std::string::npos)
      << unknown.err;
}

TEST(CliTest, RunStopsCleanlyOnSigterm) {
  testing::TempDir dir;
  // Port 0: the control API must not depend on a fixed port being free.
  fs::path cfg = write_config(dir, R"([api]
listen = "127.0.0.1:0"
[helpers.n]
executor = "noop"
schedule = { every = "1m" }
)");
  testing::Process p({kSchedd, "run", "-c", cfg.string(), "--log-format", "json"});
  ASSERT_TRUE(p.wait_for_err("schedd ready", 20s)) << p.err();
  p.signal(SIGTERM);
  auto r = p.wait();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto l = lines(r.err);
  ASSERT_FALSE(l.empty());
  for (const auto& line : l) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "not JSON: " << line;
    EXPECT_TRUE(j.contains("time") && j.contains("level") && j.contains("msg")) << line;
  }
  EXPECT_NE(r.err.find("schedd stopped"), std::string::npos);
}

TEST(CalendarCliTest, PrintsNextInstantsWithOffsets) {
  auto r = run_process({kSchedd, "calendar", "30 2 * * *", "--tz", "America/New_York", "--from",
                        "2026-03-07T12:00:00Z", "--count", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "2026-03-08T03:00:00-04:00\n2026-03-09T02:30:00-04:00\n");
  auto utc = run_process({kSchedd, "calendar", "--daily", "06:30", "--tz", "UTC", "--from",
                          "2026-01-01T00:00:00Z", "--count", "1"});
  EXPECT_EQ(utc.out, "2026-01-01T06:30:00+00:00\n");
  auto every =
      run_process({kSchedd, "calendar", "--every", "90s", "--anchor", "2026-01-01T00:00:10Z",
                   "--tz", "UTC", "--from", "2026-01-01T00:00:00Z", "--count", "2"});
  EXPECT_EQ(every.out, "2026-01-01T00:00:10+00:00\n2026-01-01T00:01:40+00:00\n");
  auto dst = run_process({kSchedd, "calendar", "30 2 * * *", "--tz", "America/New_York", "--dst",
                          "gap=skip", "--from", "2026-03-07T12:00:00Z", "--count", "1"});
  EXPECT_EQ(dst.out, "2026-03-09T02:30:00-04:00\n");
}

TEST(CalendarCliTest, NeverFiringPrintsNothing) {
  auto r = run_process({kSchedd, "calendar", "0 0 30 2 *", "--tz", "UTC"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
}

// Issue #18: instants wrapped past 2262-04-11 (2260-02-29, then 1679-08-10T00:25:26), and
// --from 9999-12-31T00:00:00Z answered 1816.
TEST(CalendarCliTest, DatesPast2262AreExactAndNothingWrapsAfter9999) {
  auto r = run_process({kSchedd, "calendar", "0 0 29 2 *", "--count", "60", "--tz", "UTC", "--from",
                        "2026-01-01T00:00:00Z"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto out = lines(r.out);
  ASSERT_EQ(out.size(), 60u);
  for (size_t i = 1; i < out.size(); ++i) EXPECT_LT(out[i - 1], out[i]) << i;
  EXPECT_EQ(out[56], "2260-02-29T00:00:00+00:00");
  EXPECT_EQ(out[57], "2264-02-29T00:00:00+00:00");
  auto end = run_process(
      {kSchedd, "calendar", "0 0 29 2 *", "--tz", "UTC", "--from", "9999-12-31T00:00:00Z"});
  EXPECT_EQ(end.exit_code, 0) << end.err;
  EXPECT_EQ(end.out, "");
  EXPECT_EQ(end.err,
            "calendar: no fire instant after 9999-12-31T00:00:00+00:00 up to "
            "9999-12-31T23:59:59Z, the last instant a schedule reaches\n");
  auto every = run_process({kSchedd, "calendar", "--every", "36500d", "--tz", "UTC", "--from",
                            "2100-01-01T00:00:00Z", "--count", "2"});
  EXPECT_EQ(every.out, "2169-11-13T00:00:00+00:00\n2269-10-20T00:00:00+00:00\n");
}

TEST(CalendarCliTest, InvalidInputExitsTwoWithNothingOnStdout) {
  for (std::vector<std::string> args : {std::vector<std::string>{"60 * * * *"},
                                        {"* * * *"},
                                        {"@daily", "--tz", "Mars/Base"},
                                        {"@daily", "--from", "tomorrow"},
                                        {"--every", "10x"},
                                        {"--daily", "24:00"},
                                        {"@daily", "--daily", "06:00"},
                                        {"@daily", "--dst", "gap=maybe"}}) {
    std::vector<std::string> argv = {kSchedd, "calendar"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run_process(argv);
    EXPECT_EQ(r.exit_code, 2) << args[0];
    EXPECT_EQ(r.out, "") << args[0];
    EXPECT_FALSE(r.err.empty()) << args[0];
  }
  auto r = run_process({kSchedd, "calendar", "61 * * * *"});
  EXPECT_EQ(r.err, "calendar: minute: 61 is out of range 0-59 (column 1)\n");
}

}  // namespace
}  // namespace schedd
