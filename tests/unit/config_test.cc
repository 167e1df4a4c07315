#include "core/config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/config/toml_limits.h"
#include "core/daemon/effective_config.h"
#include "core/schedule/cron.h"
#include "tests/testing/config_errors.h"
#include "tests/testing/temp_dir.h"

namespace schedd {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Executor schemas matching the first-party plugins.
std::vector<ExecutorInfo> first_party_executors() {
  ExecutorInfo shell;
  shell.name = "shell";
  shell.params = {
      {"command", ParamType::kString, true, std::nullopt, "program to run"},
      {"args", ParamType::kStringList, false, "[]", "its arguments"},
      {"env", ParamType::kStringMap, false, std::nullopt, "extra environment"},
      {"cwd", ParamType::kString, false, std::nullopt, "working directory"},
      {"kill_grace", ParamType::kDuration, false, "\"5s\"", "SIGTERM to SIGKILL"},
      {"output_limit", ParamType::kInt, false, "4096", "bytes of output kept"},
  };
  ExecutorInfo sleep;
  sleep.name = "sleep";
  sleep.params = {{"duration", ParamType::kDuration, true, std::nullopt, "how long"}};
  ExecutorInfo noop;
  noop.name = "noop";
  return {shell, sleep, noop};
}

// A hand-built executor registry for phase 2.
struct Executors {
  std::vector<ExecutorInfo> infos = first_party_executors();

  ExecutorLookup lookup() const {
    return [this](std::string_view name) -> const ExecutorInfo* {
      for (const auto& info : infos) {
        if (info.name == name) return &info;
      }
      return nullptr;
    };
  }
  ExecutorNames names() const {
    return [this] {
      std::vector<std::string> out;
      for (const auto& info : infos) out.push_back(info.name);
      return out;
    };
  }
};

using testing::strings;

// Phase 1 errors for `text`, read as "x.toml".
std::vector<std::string> phase1(std::string_view text) {
  std::vector<ConfigError> errors;
  std::optional<Config> cfg = parse_config(text, "x.toml", errors);
  EXPECT_EQ(cfg.has_value(), errors.empty());
  return strings(errors);
}

// Phase 1 must pass; returns the config.
Config parse_ok(std::string_view text) {
  std::vector<ConfigError> errors;
  std::optional<Config> cfg = parse_config(text, "x.toml", errors);
  EXPECT_THAT(strings(errors), IsEmpty());
  return cfg.value_or(Config{});
}

// Phase 1 must pass; returns the phase 2 errors.
std::vector<std::string> phase2(std::string_view text, Config* out = nullptr) {
  Config cfg = parse_ok(text);
  Executors executors;
  std::vector<ConfigError> errors;
  validate_helpers(cfg, executors.lookup(), executors.names(), errors);
  if (out != nullptr) *out = cfg;
  return strings(errors);
}

Config load_ok(const std::filesystem::path& path) {
  std::vector<ConfigError> errors;
  std::optional<Config> cfg = load_config(path, errors);
  EXPECT_THAT(strings(errors), IsEmpty()) << path;
  if (!cfg) return Config{};
  Executors executors;
  validate_helpers(*cfg, executors.lookup(), executors.names(), errors);
  EXPECT_THAT(strings(errors), IsEmpty()) << path;
  return *cfg;
}

const ParamValue* param(const HelperConfig& h, std::string_view name) {
  for (const auto& [n, v] : h.params) {
    if (n == name) return &v;
  }
  return nullptr;
}

std::vector<std::string> param_names(const HelperConfig& h) {
  std::vector<std::string> out;
  for (const auto& [n, v] : h.params) out.push_back(n);
  return out;
}

// --- The mistakes, one by one, with their exact messages. ----------------------------------

TEST(ConfigErrorTest, SyntaxErrorIsOneErrorWithTomlsDescription) {
  EXPECT_THAT(phase1("[daemon]\nlookahead = 2x\nworkres = 1\n"),
              ElementsAre("x.toml:2:14: Error while parsing decimal integer: expected digit, "
                          "saw 'x'"));
  EXPECT_THAT(phase1("[daemon]\n[daemon]\n"),
              ElementsAre("x.toml:2:1: Error while parsing table header: cannot redefine "
                          "existing table 'daemon'"));
}

TEST(ConfigErrorTest, UnknownKeyWithDidYouMean) {
  EXPECT_THAT(phase1("[lanes.default]\n        workres = 4\n"),
              ElementsAre("x.toml:2:9: unknown key \"workres\" in [lanes.default] (did you mean "
                          "\"workers\"?)"));
  EXPECT_THAT(phase1("[daemon]\nlookahaed = \"1h\"\n"),
              ElementsAre("x.toml:2:1: unknown key \"lookahaed\" in [daemon] (did you mean "
                          "\"lookahead\"?)"));
}

TEST(ConfigTest, HistoryRetentionPerOutcome) {
  Config cfg = parse_ok(R"([daemon]
history_retention = "2d"
[history]
retention = { succeeded = "24h", failed = "7d", timed_out = "3d", interrupted = "0s" }
)");
  EXPECT_EQ(cfg.history_retention, 48h);
  using Map = std::map<std::string, std::chrono::milliseconds, std::less<>>;
  EXPECT_EQ(
      cfg.history_retention_by_status,
      (Map{{"succeeded", 24h}, {"failed", 7 * 24h}, {"timed_out", 72h}, {"interrupted", 0s}}));
  // As a table of its own, too; statuses not listed keep history_retention.
  cfg = parse_ok("[history.retention]\ncancelled = \"1h\"\n");
  EXPECT_EQ(cfg.history_retention_by_status, (Map{{"cancelled", 1h}}));
  EXPECT_EQ(parse_ok("").history_retention_by_status, Map{});
}

// check-config --print-effective shows every terminal status with the retention it gets, as
// TOML that reads back to the same settings.
TEST(ConfigTest, EffectiveConfigShowsTheRetentionOfEveryOutcome) {
  Config cfg = parse_ok(R"([daemon]
history_retention = "2d"
[history]
retention = { succeeded = "1h", failed = "7d" }
)");
  const std::string text = effective_config_toml(cfg);
  EXPECT_THAT(text, HasSubstr("[history]\n# set in the file: succeeded, failed; the others keep "
                              "[daemon] history_retention\nretention = { succeeded = \"1h\", "
                              "failed = \"7d\", timed_out = \"2d\", cancelled = \"2d\", "
                              "expired = \"2d\", skipped = \"2d\", interrupted = \"2d\" }\n"));
  Config again = parse_ok(text);
  EXPECT_EQ(again.history_retention, 48h);
  EXPECT_EQ(again.history_retention_by_status.at("failed"), 7 * 24h);
  EXPECT_EQ(again.history_retention_by_status.at("succeeded"), 1h);
  EXPECT_EQ(again.history_retention_by_status.at("expired"), 48h);
  EXPECT_THAT(effective_config_toml(parse_ok("")),
              HasSubstr("# every status keeps [daemon] history_retention\nretention = { "
                        "succeeded = \"1d\", failed = \"1d\""));
}

TEST(ConfigErrorTest, HistoryRetentionNamesTheKeyAndWhere) {
  EXPECT_THAT(phase1("[history]\nretention = { succeded = \"1h\", failed = \"2x\" }\n"),
              ElementsAre("x.toml:2:15: unknown key \"succeded\" in [history.retention] (did you "
                          "mean \"succeeded\"?)",
                          "x.toml:2:41: [history.retention] failed: \"2x\": unknown unit \"x\" "
                          "(use ms, s, m, h or d)"));
  // Only terminal statuses have a retention.
  EXPECT_THAT(phase1("[history.retention]\nrunning = \"1h\"\n"),
              ElementsAre(HasSubstr("x.toml:2:1: unknown key \"running\" in [history.retention]")));
  EXPECT_THAT(phase1("[history.retention]\nexpired = 3600\n"),
              ElementsAre("x.toml:2:11: [history.retention] expired: expected a duration string "
                          "such as \"90s\", got integer"));
  EXPECT_THAT(phase1("[history]\nretention = \"1h\"\n"),
              ElementsAre("x.toml:2:13: [history] retention: expected table, got string"));
  EXPECT_THAT(phase1("[history]\nretain = {}\n"),
              ElementsAre(HasSubstr("x.toml:2:1: unknown key \"retain\" in [history]")));
}

TEST(ConfigErrorTest, UnknownKeyWithoutSuggestionListsTheKeys) {
  EXPECT_THAT(phase1("[api]\nport = 7878\n"),
              ElementsAre("x.toml:2:1: unknown key \"port\" in [api]; expected one of: listen, "
                          "token_file, token_env, read_token_file, read_token_env, "
                          "max_param_bytes"));
}

TEST(ConfigErrorTest, UnknownTopLevelTableAndKey) {
  EXPECT_THAT(phase1("verbose = true\n[deamon]\n"),
              ElementsAre("x.toml:1:1: unknown key \"verbose\"; expected one of: daemon, api, "
                          "capacity, retry, lanes, tickets, helpers, redis, plugins, history",
                          "x.toml:2:2: unknown table [deamon] (did you mean [daemon]?)"));
}

TEST(ConfigErrorTest, WrongType) {
  EXPECT_THAT(phase1("[lanes.default]\nworkers = \"4\"\n"),
              ElementsAre("x.toml:2:11: [lanes.default] workers: expected integer, got string"));
  EXPECT_THAT(phase1("daemon = 3\n"),
              ElementsAre("x.toml:1:10: daemon: expected table, got integer"));
  EXPECT_THAT(phase1("[helpers.report]\nexecutor = \"shell\"\nschedule = { every = \"1m\" }\n"
                     "enabled = \"yes\"\n"),
              ElementsAre("x.toml:4:11: [helpers.report] enabled: expected boolean, got string"));
}

TEST(ConfigErrorTest, PriorityOutOfRange) {
  EXPECT_THAT(phase1("[helpers.report]\nexecutor = \"shell\"\nschedule = { every = \"1m\" }\n"
                     "priority = 9\n"),
              ElementsAre("x.toml:4:12: [helpers.report] priority: 9 is out of range 1-5"));
}

TEST(ConfigErrorTest, BadDuration) {
  EXPECT_THAT(phase1("[daemon]\nlookahead = \"2x\"\n"),
              ElementsAre("x.toml:2:13: [daemon] lookahead: \"2x\": unknown unit \"x\" (use ms, "
                          "s, m, h or d)"));
  EXPECT_THAT(phase1("[daemon]\nlookahead = 7200\n"),
              ElementsAre("x.toml:2:13: [daemon] lookahead: expected a duration string such as "
                          "\"90s\", got integer"));
  EXPECT_THAT(phase1("[lanes.default]\ntimeout = \"0s\"\n"),
              ElementsAre("x.toml:2:11: [lanes.default] timeout: must be greater than 0 (got "
                          "\"0s\")"));
}

TEST(ConfigErrorTest, BadEnumValueListsTheAllowedValues) {
  EXPECT_THAT(phase1("[helpers.report]\nexecutor = \"shell\"\nschedule = { every = \"1m\" }\n"
                     "overlap = \"queu\"\n"),
              ElementsAre("x.toml:4:11: [helpers.report] overlap: \"queu\" is not one of "
                          "\"queue\", \"skip\", \"replace\", \"allow\" (did you mean \"queue\"?)"));
  EXPECT_THAT(phase1("[daemon]\nlog_level = \"verbose\"\n"),
              ElementsAre("x.toml:2:13: [daemon] log_level: \"verbose\" is not one of \"debug\", "
                          "\"info\", \"warn\", \"error\""));
}

TEST(ConfigErrorTest, UnknownLane) {
  EXPECT_THAT(phase1("[lanes.fast]\n[helpers.report]\nexecutor = \"shell\"\n"
                     "schedule = { every = \"1m\" }\nlane = \"fats\"\n"),
              ElementsAre("x.toml:5:8: [helpers.report] lane: unknown lane \"fats\" (did you "
                          "mean \"fast\"?)"));
  EXPECT_THAT(phase1("[lanes.fast]\n[tickets]\nlane = \"gpu\"\n"),
              ElementsAre("x.toml:3:8: [tickets] lane: unknown lane \"gpu\"; defined lanes: "
                          "default, fast"));
}

TEST(ConfigErrorTest, BadTimeOfDay) {
  EXPECT_THAT(phase1("[helpers.report]\nexecutor = \"shell\"\n[helpers.report.schedule]\n"
                     "time = \"25:00\"\n"),
              ElementsAre("x.toml:4:8: [helpers.report.schedule] time: \"25:00\" is not a valid "
                          "time of day: hour 25 is out of range 0-23"));
  EXPECT_THAT(phase1("[helpers.report]\nexecutor = \"shell\"\n[helpers.report.schedule]\n"
                     "time = \"9am\"\n"),
              ElementsAre("x.toml:4:8: [helpers.report.schedule] time: \"9am\" is not a time of "
                          "day; write \"HH:MM\" or \"HH:MM:SS\""));
  EXPECT_THAT(phase1("[helpers.report]\nexecutor = \"shell\"\n[helpers.report.schedule]\n"
                     "time = \"12:60:00\"\n"),
              ElementsAre("x.toml:4:8: [helpers.report.schedule] time: \"12:60:00\" is not a "
                          "valid time of day: minute 60 is out of range 0-59"));
}

TEST(ConfigErrorTest, BadTimeZone) {
  EXPECT_THAT(phase1("[helpers.report]\nexecutor = \"shell\"\n[helpers.report.schedule]\n"
                     "time = \"09:00\"\ntz = \"Europe/Pariss\"\n"),
              ElementsAre("x.toml:5:6: [helpers.report.schedule] tz: unknown time zone "
                          "\"Europe/Pariss\" (did you mean \"Europe/Paris\"?)"));
  EXPECT_THAT(phase1("[daemon]\ntimezone = \"Mars/Olympus\"\n"),
              ElementsAre("x.toml:2:12: [daemon] timezone: unknown time zone \"Mars/Olympus\""));
}

TEST(ConfigErrorTest, TwoScheduleKindsAtOnce) {
  EXPECT_THAT(phase1("[helpers.report]\nexecutor = \"shell\"\n[helpers.report.schedule]\n"
                     "time = \"09:00\"\nevery = \"1h\"\n"),
              ElementsAre("x.toml:5:9: [helpers.report.schedule] every: a schedule has exactly "
                          "one of cron, time or every, and this one already has time"));
}

TEST(ConfigErrorTest, NoScheduleKind) {
  EXPECT_THAT(phase1("[helpers.report]\nexecutor = \"shell\"\n[helpers.report.schedule]\n"
                     "tz = \"UTC\"\n"),
              ElementsAre("x.toml:3:1: [helpers.report.schedule] needs one of cron, time or "
                          "every"));
}

TEST(ConfigErrorTest, MissingExecutorAndSchedule) {
  EXPECT_THAT(phase1("[helpers.report]\ndescription = \"x\"\n"),
              ElementsAre("x.toml:1:1: [helpers.report] missing required key \"executor\"",
                          "x.toml:1:1: [helpers.report] missing required key \"schedule\""));
}

TEST(ConfigErrorTest, BadHelperName) {
  EXPECT_THAT(phase1("[helpers.\"my report\"]\nexecutor = \"shell\"\n"
                     "schedule = { every = \"1m\" }\n"),
              ElementsAre("x.toml:1:10: [helpers.\"my report\"] invalid helper name \"my report\": "
                          "use only letters, digits, \"_\", \"-\" and \".\""));
  // Dots are allowed in names; the key just has to be quoted in TOML.
  EXPECT_THAT(phase1("[helpers.\"db.backup\"]\nexecutor = \"shell\"\n"
                     "schedule = { every = \"1m\" }\n"),
              IsEmpty());
}

TEST(ConfigErrorTest, UnknownExecutorInPhase2) {
  EXPECT_THAT(phase2("[helpers.report]\nexecutor = \"shel\"\nschedule = { every = \"1m\" }\n"),
              ElementsAre("x.toml:2:12: [helpers.report] executor: unknown executor \"shel\" (did "
                          "you mean \"shell\"?)"));
  EXPECT_THAT(phase2("[helpers.report]\nexecutor = \"http\"\nschedule = { every = \"1m\" }\n"),
              ElementsAre("x.toml:2:12: [helpers.report] executor: unknown executor \"http\"; "
                          "loaded executors: noop, shell, sleep"));
}

TEST(ConfigErrorTest, UnknownExecutorWithNoPluginsLoaded) {
  Config cfg = parse_ok("[helpers.report]\nexecutor = \"shell\"\nschedule = { every = \"1m\" }\n");
  std::vector<ConfigError> errors;
  validate_helpers(
      cfg, [](std::string_view) { return nullptr; }, nullptr, errors);
  EXPECT_THAT(strings(errors), ElementsAre("x.toml:2:12: [helpers.report] executor: unknown "
                                           "executor \"shell\"; no executors are loaded"));
}

TEST(ConfigErrorTest, UnknownParam) {
  EXPECT_THAT(
      phase2("[helpers.report]\nexecutor = \"shell\"\nschedule = { every = \"1m\" }\n"
             "[helpers.report.params]\ncommand = \"echo\"\nagrs = [\"hi\"]\n"),
      ElementsAre("x.toml:6:8: [helpers.report] unknown param \"agrs\" for executor \"shell\" (did "
                  "you mean \"args\"?); it takes command, args, env, cwd, kill_grace, "
                  "output_limit"));
  EXPECT_THAT(phase2("[helpers.tick]\nexecutor = \"noop\"\nschedule = { every = \"1m\" }\n"
                     "params = { verbose = true }\n"),
              ElementsAre("x.toml:4:22: [helpers.tick] unknown param \"verbose\" for executor "
                          "\"noop\"; it takes no params"));
}

TEST(ConfigErrorTest, MissingRequiredParam) {
  // Reported at the helper's header when it has no params table...
  EXPECT_THAT(phase2("[helpers.report]\nexecutor = \"shell\"\nschedule = { every = \"1m\" }\n"),
              ElementsAre("x.toml:1:1: [helpers.report] missing required param \"command\" for "
                          "executor \"shell\""));
  // ...and at the params table when it has one.
  EXPECT_THAT(phase2("[helpers.report]\nexecutor = \"shell\"\nschedule = { every = \"1m\" }\n"
                     "[helpers.report.params]\nargs = [\"hi\"]\n"),
              ElementsAre("x.toml:4:1: [helpers.report] missing required param \"command\" for "
                          "executor \"shell\""));
  // A misspelt required param is one mistake, reported once.
  EXPECT_THAT(phase2("[helpers.report]\nexecutor = \"shell\"\nschedule = { every = \"1m\" }\n"
                     "[helpers.report.params]\ncomand = \"echo\"\n"),
              ElementsAre("x.toml:5:10: [helpers.report] unknown param \"comand\" for executor "
                          "\"shell\" (did you mean \"command\"?); it takes command, args, env, "
                          "cwd, kill_grace, output_limit"));
}

TEST(ConfigErrorTest, WrongParamType) {
  EXPECT_THAT(phase2("[helpers.report]\nexecutor = \"shell\"\nschedule = { every = \"1m\" }\n"
                     "[helpers.report.params]\ncommand = \"echo\"\nargs = 5\n"),
              ElementsAre("x.toml:6:8: [helpers.report] param \"args\": expected string list, got "
                          "integer"));
  EXPECT_THAT(phase2("[helpers.nap]\nexecutor = \"sleep\"\nschedule = { every = \"1m\" }\n"
                     "params = { duration = \"1x\" }\n"),
              ElementsAre("x.toml:4:23: [helpers.nap] param \"duration\": \"1x\": unknown unit "
                          "\"x\" (use ms, s, m, h or d)"));
  EXPECT_THAT(phase2("[helpers.report]\nexecutor = \"shell\"\nschedule = { every = \"1m\" }\n"
                     "params = { command = \"echo\", env = { A = 1 } }\n"),
              ElementsAre("x.toml:4:36: [helpers.report] param \"env\": expected string map, got "
                          "table containing integer"));
}

// --- Several mistakes, all reported, in file order. ----------------------------------------

TEST(ConfigErrorTest, ReportsEveryMistakeInFileOrder) {
  const char* text = R"([helpers.report]
executor = "shell"
schedule = { time = "25:00" }
priority = 0
lane = "fats"
overlap = "sometimes"

[daemon]
lookahead = "2hours"
log_format = "xml"

[lanes.fast]
workres = 2

[retry]
max_attempts = 0
delays = []
)";
  EXPECT_THAT(
      phase1(text),
      ElementsAre(
          "x.toml:3:21: [helpers.report.schedule] time: \"25:00\" is not a valid time of day: "
          "hour 25 is out of range 0-23",
          "x.toml:4:12: [helpers.report] priority: 0 is out of range 1-5",
          "x.toml:5:8: [helpers.report] lane: unknown lane \"fats\" (did you mean \"fast\"?)",
          "x.toml:6:11: [helpers.report] overlap: \"sometimes\" is not one of \"queue\", "
          "\"skip\", \"replace\", \"allow\"",
          "x.toml:9:13: [daemon] lookahead: \"2hours\": unknown unit \"hours\" (use ms, s, m, h "
          "or d)",
          "x.toml:10:14: [daemon] log_format: \"xml\" is not one of \"text\", \"json\"",
          "x.toml:13:1: unknown key \"workres\" in [lanes.fast] (did you mean \"workers\"?)",
          "x.toml:16:16: [retry] max_attempts: 0 is out of range 1-100",
          "x.toml:17:10: [retry] delays: must not be empty (write e.g. [\"30s\"])"));
}

TEST(ConfigErrorTest, Phase2ReportsEveryHelper) {
  const char* text = R"([helpers.a]
executor = "shell"
schedule = { every = "1m" }
params = { command = 1, output_limit = "big" }

[helpers.b]
executor = "sleeep"
schedule = { every = "1m" }

[helpers.c]
executor = "sleep"
schedule = { every = "1m" }
)";
  EXPECT_THAT(phase2(text),
              ElementsAre("x.toml:4:22: [helpers.a] param \"command\": expected string, got "
                          "integer",
                          "x.toml:4:40: [helpers.a] param \"output_limit\": expected int, got "
                          "string",
                          "x.toml:7:12: [helpers.b] executor: unknown executor \"sleeep\" (did "
                          "you mean \"sleep\"?)",
                          "x.toml:10:1: [helpers.c] missing required param \"duration\" for "
                          "executor \"sleep\""));
}

// --- Other checks. ---------------------------------------------------------------------------

TEST(ConfigErrorTest, MissingFile) {
  std::vector<ConfigError> errors;
  EXPECT_FALSE(load_config("/nonexistent/schedd.toml", errors).has_value());
  EXPECT_THAT(strings(errors), ElementsAre("/nonexistent/schedd.toml: cannot read config file: "
                                           "No such file or directory"));
}

TEST(ConfigErrorTest, DirectoryInsteadOfFile) {
  testing::TempDir dir;
  std::vector<ConfigError> errors;
  EXPECT_FALSE(load_config(dir.path(), errors).has_value());
  EXPECT_THAT(strings(errors),
              ElementsAre(dir.path().string() + ": cannot read config file: it is a directory"));
}

TEST(ConfigErrorTest, FileErrorsNameTheFile) {
  testing::TempDir dir;
  auto path = dir.write("conf/schedd.toml", "[capacity]\nqueued = 0\n");
  std::vector<ConfigError> errors;
  EXPECT_FALSE(load_config(path, errors).has_value());
  EXPECT_THAT(strings(errors), ElementsAre(path.string() + ":2:10: [capacity] queued: 0 is out of "
                                                           "range (the minimum is 1)"));
}

TEST(ConfigErrorTest, DaemonChecks) {
  EXPECT_THAT(phase1("[daemon]\nlookahead = \"10m\"\nexpand_every = \"15m\"\n"),
              ElementsAre("x.toml:3:16: [daemon] expand_every: expand_every (15m) must not be "
                          "longer than lookahead (10m)"));
  EXPECT_THAT(phase1("[daemon]\nlookahead = \"1m\"\n"),
              ElementsAre("x.toml:2:13: [daemon] lookahead: expand_every (5m) must not be longer "
                          "than lookahead (1m)"));
  EXPECT_THAT(phase1("[daemon]\nlookahead = \"0s\"\n"),
              ElementsAre("x.toml:2:13: [daemon] lookahead: must be greater than 0 (got \"0s\")"));
  EXPECT_THAT(phase1("[daemon]\nstore = \"mysql://db\"\n"),
              ElementsAre("x.toml:2:9: [daemon] store: \"mysql://db\" is not a supported store; "
                          "use \"memory\", \"sqlite:PATH\" or \"redis://HOST:PORT/DB\""));
  EXPECT_THAT(phase1("[daemon]\nstore = \"sqlite:\"\n"),
              ElementsAre("x.toml:2:9: [daemon] store: \"sqlite:\" has no path; write e.g. "
                          "\"sqlite:/var/lib/schedd/schedd.db\""));
  EXPECT_THAT(phase1("[daemon]\nplugin_dir = \"\"\non_plugin_error = \"ignore\"\n"),
              ElementsAre("x.toml:2:14: [daemon] plugin_dir: must not be empty",
                          "x.toml:3:19: [daemon] on_plugin_error: \"ignore\" is not one of "
                          "\"fail\", \"skip\""));
  EXPECT_THAT(phase1("[daemon]\nstore = \"sqlite:/var/lib/schedd.db\"\n"), IsEmpty());
  EXPECT_THAT(phase1("[daemon]\nstore = \"redis://127.0.0.1:6379/0\"\n"), IsEmpty());
}

TEST(ConfigErrorTest, ApiChecks) {
  EXPECT_THAT(phase1("[api]\nlisten = \"127.0.0.1:70000\"\n"),
              ElementsAre("x.toml:2:10: [api] listen: port 70000 is out of range 0-65535"));
  EXPECT_THAT(phase1("[api]\nlisten = \"localhost\"\n"),
              ElementsAre("x.toml:2:10: [api] listen: \"localhost\" is not HOST:PORT, e.g. "
                          "\"127.0.0.1:7878\""));
  EXPECT_THAT(phase1("[api]\nlisten = \"localhost:http\"\n"),
              ElementsAre("x.toml:2:10: [api] listen: \"localhost:http\": the port must be a "
                          "number 0-65535"));
  EXPECT_THAT(phase1("[api]\ntoken_file = \"t\"\ntoken_env = \"T\"\n"),
              ElementsAre("x.toml:3:13: [api] token_env: set either token_file or token_env, "
                          "not both"));
  EXPECT_THAT(phase1("[api]\nlisten = \"[::1]:0\"\n"), IsEmpty());
  EXPECT_THAT(phase1("[api]\nlisten = \"0.0.0.0:65535\"\n"), IsEmpty());
}

TEST(ConfigErrorTest, RedisStoreUrlIsChecked) {
  EXPECT_THAT(phase1("[daemon]\nstore = \"redis://127.0.0.1:abc/0\"\n"),
              ElementsAre("x.toml:2:9: [daemon] store: \"redis://127.0.0.1:abc/0\": port \"abc\" "
                          "is not a port number (expected redis://HOST[:PORT][/DB])"));
  EXPECT_THAT(phase1("[daemon]\nstore = \"redis://127.0.0.1:0/0\"\n"),
              ElementsAre("x.toml:2:9: [daemon] store: \"redis://127.0.0.1:0/0\": port \"0\" is "
                          "not a port number (expected redis://HOST[:PORT][/DB])"));
  EXPECT_THAT(phase1("[daemon]\nstore = \"redis://db.local/one\"\n"),
              ElementsAre("x.toml:2:9: [daemon] store: \"redis://db.local/one\": database "
                          "\"one\" is not a number (expected redis://HOST[:PORT][/DB])"));
  EXPECT_THAT(phase1("[daemon]\nstore = \"redis://:6379/0\"\n"),
              ElementsAre("x.toml:2:9: [daemon] store: \"redis://:6379/0\": no host (expected "
                          "redis://HOST[:PORT][/DB])"));
  EXPECT_THAT(phase1("[daemon]\nstore = \"redis://\"\n"),
              ElementsAre("x.toml:2:9: [daemon] store: \"redis://\" has no address; write e.g. "
                          "\"redis://127.0.0.1:6379/0\""));
  // A password in a bad URL is not repeated in the message.
  EXPECT_THAT(phase1("[daemon]\nstore = \"redis://:s3cret@db:99999/0\"\n"),
              ElementsAre("x.toml:2:9: [daemon] store: \"redis://:***@db:99999/0\": port "
                          "\"99999\" is not a port number (expected redis://HOST[:PORT][/DB])"));
  EXPECT_THAT(phase1("[daemon]\nstore = \"redis://db.local\"\n"), IsEmpty());
  EXPECT_THAT(phase1("[daemon]\nstore = \"redis://10.0.0.5:6380/3\"\n"), IsEmpty());
  EXPECT_THAT(phase1("[daemon]\nstore = \"redis://:pw@10.0.0.5:6380/3\"\n"), IsEmpty());
}

TEST(ConfigErrorTest, RedisTableNeedsARedisStore) {
  EXPECT_THAT(phase1("[redis]\nnamespace = \"prod\"\n"),
              ElementsAre("x.toml:1:1: [redis] only applies to a Redis store, but [daemon] store "
                          "is \"memory\"; remove [redis] or set store = "
                          "\"redis://HOST:PORT/DB\""));
  EXPECT_THAT(phase1("[daemon]\nstore = \"sqlite:/tmp/s.db\"\n[redis]\nlease = \"10s\"\n"),
              ElementsAre("x.toml:3:1: [redis] only applies to a Redis store, but [daemon] store "
                          "is \"sqlite:/tmp/s.db\"; remove [redis] or set store = "
                          "\"redis://HOST:PORT/DB\""));
  // A bad Redis URL is reported once, and [redis] is still checked.
  EXPECT_THAT(phase1("[daemon]\nstore = \"redis://h:x\"\n[redis]\nlease = \"1ms\"\n"),
              ElementsAre("x.toml:2:9: [daemon] store: \"redis://h:x\": port \"x\" is not a port "
                          "number (expected redis://HOST[:PORT][/DB])",
                          "x.toml:4:9: [redis] lease: 1ms is too short: a lease must be at "
                          "least 1s (it is renewed every lease / 5)"));
}

TEST(ConfigErrorTest, RedisChecks) {
  const std::string store = "[daemon]\nstore = \"redis://127.0.0.1:6379/0\"\n[redis]\n";
  EXPECT_THAT(phase1(store + "namespace = \"a b\"\n"),
              ElementsAre("x.toml:4:13: [redis] namespace: \"a b\" is not a valid namespace: use "
                          "only letters, digits, \"_\", \"-\" and \".\""));
  EXPECT_THAT(phase1(store + "namespace = \"x:y\"\n"),
              ElementsAre("x.toml:4:13: [redis] namespace: \"x:y\" is not a valid namespace: use "
                          "only letters, digits, \"_\", \"-\" and \".\""));
  EXPECT_THAT(phase1(store + "namespace = \"\"\n"),
              ElementsAre("x.toml:4:13: [redis] namespace: must not be empty"));
  EXPECT_THAT(phase1(store + "connect_timeout = \"0s\"\ncommand_timeout = 2\n"),
              ElementsAre("x.toml:4:19: [redis] connect_timeout: must be greater than 0 (got "
                          "\"0s\")",
                          "x.toml:5:19: [redis] command_timeout: expected a duration string such "
                          "as \"90s\", got integer"));
  EXPECT_THAT(phase1(store + "command_timeout = \"2 s\"\n"),
              ElementsAre(HasSubstr("x.toml:4:19: [redis] command_timeout: ")));
  EXPECT_THAT(phase1(store + "lease = \"999ms\"\n"),
              ElementsAre("x.toml:4:9: [redis] lease: 999ms is too short: a lease must be at "
                          "least 1s (it is renewed every lease / 5)"));
  EXPECT_THAT(phase1(store + "lease = \"0s\"\n"),
              ElementsAre("x.toml:4:9: [redis] lease: must be greater than 0 (got \"0s\")"));
  EXPECT_THAT(phase1(store + "password_file = \"pw\"\npassword_env = \"PW\"\n"),
              ElementsAre("x.toml:5:16: [redis] password_env: set either password_file or "
                          "password_env, not both"));
  EXPECT_THAT(phase1(store + "password_file = \"\"\npassword_env = \"\"\n"),
              ElementsAre("x.toml:4:17: [redis] password_file: must not be empty",
                          "x.toml:5:16: [redis] password_env: must not be empty"));
  EXPECT_THAT(phase1(store + "lane_capacity = \"nodes\"\n"),
              ElementsAre("x.toml:4:17: [redis] lane_capacity: \"nodes\" is not one of "
                          "\"cluster\", \"node\" (did you mean \"node\"?)"));
  EXPECT_THAT(phase1(store + "claim_ahead = -1\n"),
              ElementsAre("x.toml:4:15: [redis] claim_ahead: -1 is out of range 0-1000000"));
  EXPECT_THAT(phase1(store + "claim_ahead = \"8\"\n"),
              ElementsAre("x.toml:4:15: [redis] claim_ahead: expected integer, got string"));
  EXPECT_THAT(phase1(store + "leese = \"5s\"\n"),
              ElementsAre("x.toml:4:1: unknown key \"leese\" in [redis] (did you mean "
                          "\"lease\"?)"));
  EXPECT_THAT(phase1(store + "password = \"x\"\n"),
              ElementsAre(HasSubstr("x.toml:4:1: unknown key \"password\" in [redis]")));
  EXPECT_THAT(phase1("redis = 1\n[daemon]\nstore = \"redis://h\"\n"),
              ElementsAre("x.toml:1:9: redis: expected table, got integer"));
  EXPECT_THAT(phase1(store + "lease = \"1s\"\nclaim_ahead = 1000000\nnamespace = \"a-b_c.d9\"\n"),
              IsEmpty());
}

TEST(ConfigErrorTest, LaneAndRetryChecks) {
  EXPECT_THAT(phase1("[lanes.default]\nworkers = 0\n[lanes.big]\nworkers = 1025\n"),
              ElementsAre("x.toml:2:11: [lanes.default] workers: 0 is out of range 1-1024",
                          "x.toml:4:11: [lanes.big] workers: 1025 is out of range 1-1024"));
  EXPECT_THAT(phase1("[lanes]\nfast = 3\n[lanes.\"a b\"]\n"),
              ElementsAre("x.toml:2:8: [lanes] fast: expected table, got integer",
                          "x.toml:3:8: [lanes.\"a b\"] invalid lane name \"a b\": use only "
                          "letters, digits, \"_\", \"-\" and \".\""));
  EXPECT_THAT(phase1("[retry]\nmax_attempts = 101\ndelays = [\"1s\", 5, \"1y\"]\n"),
              ElementsAre("x.toml:2:16: [retry] max_attempts: 101 is out of range 1-100",
                          "x.toml:3:17: [retry] delays[1]: expected a duration string such as "
                          "\"90s\", got integer",
                          "x.toml:3:20: [retry] delays[2]: \"1y\": unknown unit \"y\" (use ms, "
                          "s, m, h or d)"));
  EXPECT_THAT(phase1("[helpers.r]\nexecutor = \"noop\"\nschedule = { every = \"1m\" }\n"
                     "retry = { max_attempts = 500 }\n"),
              ElementsAre("x.toml:4:26: [helpers.r.retry] max_attempts: 500 is out of range "
                          "1-100"));
}

TEST(ConfigErrorTest, ScheduleChecks) {
  const std::string head = "[helpers.h]\nexecutor = \"noop\"\n";
  EXPECT_THAT(phase1(head + "schedule = { every = \"1m\", days = [\"mon\"] }\n"),
              ElementsAre("x.toml:3:35: [helpers.h.schedule] days: only applies to \"time\" "
                          "schedules"));
  EXPECT_THAT(phase1(head + "schedule = { time = \"09:00\", days = [\"mon\", \"mnday\"] }\n"),
              ElementsAre("x.toml:3:45: [helpers.h.schedule] days[1]: \"mnday\" is not a weekday; "
                          "use mon, tue, wed, thu, fri, sat, sun"));
  EXPECT_THAT(phase1(head + "schedule = { time = \"09:00\", days = [\"thur\"] }\n"),
              ElementsAre("x.toml:3:38: [helpers.h.schedule] days[0]: \"thur\" is not a weekday "
                          "(did you mean \"thu\"?); use mon, tue, wed, thu, fri, sat, sun"));
  EXPECT_THAT(phase1(head + "schedule = { time = \"09:00\", anchor = \"2024-01-01T00:00:00Z\" }\n"),
              ElementsAre("x.toml:3:39: [helpers.h.schedule] anchor: only applies to \"every\" "
                          "schedules"));
  EXPECT_THAT(phase1(head + "schedule = { every = \"1h\", anchor = \"2024-02-30T00:00:00Z\" }\n"),
              ElementsAre("x.toml:3:37: [helpers.h.schedule] anchor: \"2024-02-30T00:00:00Z\" is "
                          "not a valid date-time: day 30 does not exist in that month"));
  EXPECT_THAT(phase1(head + "schedule = { every = \"1h\", anchor = \"2024-01-01 00:00\" }\n"),
              ElementsAre("x.toml:3:37: [helpers.h.schedule] anchor: \"2024-01-01 00:00\" is not "
                          "an RFC 3339 date-time such as \"2024-01-01T00:00:00Z\""));
  EXPECT_THAT(phase1(head + "schedule = { every = \"1h\", anchor = \"2024-01-01T00:00:00\" }\n"),
              ElementsAre("x.toml:3:37: [helpers.h.schedule] anchor: \"2024-01-01T00:00:00\" has "
                          "no UTC offset; end it with Z or +HH:MM"));
  EXPECT_THAT(phase1(head + "schedule = { every = \"1h\", dst = { gap = \"skip\" } }\n"),
              ElementsAre("x.toml:3:34: [helpers.h.schedule] dst: does not apply to \"every\" "
                          "schedules, which are absolute durations unaffected by daylight saving "
                          "time"));
  EXPECT_THAT(phase1(head + "schedule = { cron = \"@daily\", dst = { gap = \"jump\", ovrlap = "
                            "\"first\" } }\n"),
              ElementsAre("x.toml:3:45: [helpers.h.schedule.dst] gap: \"jump\" is not one of "
                          "\"shift\", \"skip\"",
                          "x.toml:3:53: unknown key \"ovrlap\" in [helpers.h.schedule.dst] (did "
                          "you mean \"overlap\"?)"));
  EXPECT_THAT(phase1(head + "schedule = { every = \"0s\", jitter = \"-1s\" }\n"),
              ElementsAre("x.toml:3:22: [helpers.h.schedule] every: must be greater than 0 (got "
                          "\"0s\")",
                          "x.toml:3:37: [helpers.h.schedule] jitter: \"-1s\": a duration cannot "
                          "be negative"));
  EXPECT_THAT(phase1(head + "schedule = \"@daily\"\n"),
              ElementsAre("x.toml:3:12: [helpers.h] schedule: expected table, got string"));
}

TEST(ConfigErrorTest, CronChecks) {
  const std::string head = "[helpers.h]\nexecutor = \"noop\"\n";
  EXPECT_THAT(phase1(head + "schedule = { cron = \"* * *\" }\n"),
              ElementsAre("x.toml:3:21: [helpers.h.schedule] cron: \"* * *\" has 3 fields; a cron "
                          "expression has 5 (minute hour day-of-month month day-of-week) or 6 "
                          "(seconds first)"));
  EXPECT_THAT(phase1(head + "schedule = { cron = \"@dayly\" }\n"),
              ElementsAre("x.toml:3:21: [helpers.h.schedule] cron: \"@dayly\" is not a cron macro "
                          "(did you mean \"@daily\"?); use @yearly, @annually, @monthly, "
                          "@weekly, @daily, @midnight or @hourly"));
  EXPECT_THAT(phase1(head + "schedule = { cron = \"  \" }\n"),
              ElementsAre("x.toml:3:21: [helpers.h.schedule] cron: empty cron expression"));
  // Fields are checked by the cron parser.
  EXPECT_THAT(phase1(head + "schedule = { cron = \"61 * * * *\" }\n"),
              ElementsAre("x.toml:3:21: [helpers.h.schedule] cron: minute: 61 is out of range "
                          "0-59 (column 1)"));
  EXPECT_THAT(phase1(head + "schedule = { cron = \"0 0 30 2 *\" }\n"),
              ElementsAre("x.toml:3:21: [helpers.h.schedule] cron: \"0 0 30 2 *\" never fires: "
                          "no date matches the day-of-month, month and day-of-week fields"));
  for (const char* ok : {"*/5 * * * *", "0 30 2 * * *", "@weekly", "@midnight", " 0 0 1 1 * "}) {
    EXPECT_THAT(phase1(head + "schedule = { cron = \"" + ok + "\" }\n"), IsEmpty()) << ok;
  }
}

TEST(ConfigErrorTest, NeverCrashesOnOddInput) {
  // Each yields errors, not a crash or an exception.
  for (const char* text :
       {"helpers = []", "[[helpers]]\nx = 1", "helpers.x = 1", "[helpers.x]\nschedule = {}",
        "[helpers.x.params]\na = { b = { c = 1 } }", "[retry]\ndelays = \"1s\"",
        "[helpers.x]\nexecutor = \"noop\"\nschedule = { time = 25:00:00 }", "\xff\xfe",
        "[daemon]\ntimezone = \"\"\nnode_id = 5", "[api]\nlisten = \":\"",
        "[api]\nlisten = \"[::1:80\"", "[helpers.x]\nschedule = { every = 5 }"}) {
    std::vector<ConfigError> errors;
    EXPECT_FALSE(parse_config(text, "x.toml", errors).has_value()) << text;
    EXPECT_FALSE(errors.empty()) << text;
  }
}

// --- Limits checked before toml++ parses (it recurses, and crashed on these). ---------------

// `n` copies of `part` joined by `sep`.
std::string repeat(std::string_view part, size_t n, std::string_view sep = "") {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out += sep;
    out += part;
  }
  return out;
}

TEST(ConfigLimitsTest, DeepTableHeaderIsRefusedNotACrash) {
  // Issue #18: check-config on this file died with SIGSEGV inside toml++.
  EXPECT_THAT(phase1("[" + repeat("t", 50000, ".") + "]\n"),
              ElementsAre("x.toml:1:1: nesting depth 50000 exceeds the limit of 64"));
  EXPECT_THAT(phase1("[daemon]\n\n[[" + repeat("t", 50000, " . ") + "]]\nx = 1\n"),
              ElementsAre("x.toml:3:1: nesting depth 50000 exceeds the limit of 64"));
}

TEST(ConfigLimitsTest, DeepDottedKeyIsRefusedNotACrash) {
  EXPECT_THAT(phase1(repeat("t", 50000, ".") + " = 1\n"),
              ElementsAre("x.toml:1:1: nesting depth 50000 exceeds the limit of 64"));
  // A header's segments and its keys' add up: 2 + 63.
  EXPECT_THAT(phase1("[helpers.x]\n  " + repeat("\"t\"", 63, ".") + " = 1\n"),
              ElementsAre("x.toml:2:3: nesting depth 65 exceeds the limit of 64"));
}

TEST(ConfigLimitsTest, DeepInlineTablesAndArraysAreRefusedNotACrash) {
  // Brackets are refused at the first one over the limit, naming the depth reached there.
  EXPECT_THAT(phase1("a = " + repeat("{b = ", 50000) + "1" + repeat("}", 50000) + "\n"),
              ElementsAre("x.toml:1:321: nesting depth 65 exceeds the limit of 64"));
  EXPECT_THAT(phase1("a = " + repeat("{b.c = ", 50000) + "1" + repeat("}", 50000) + "\n"),
              ElementsAre("x.toml:1:223: nesting depth 65 exceeds the limit of 64"));
  EXPECT_THAT(phase1("a = " + repeat("[", 50000) + repeat("]", 50000) + "\n"),
              ElementsAre("x.toml:1:68: nesting depth 65 exceeds the limit of 64"));
  EXPECT_THAT(phase1("a = [\n" + repeat("[{x = [\n", 20000) + "\n"),
              ElementsAre("x.toml:22:7: nesting depth 65 exceeds the limit of 64"));
}

TEST(ConfigLimitsTest, NestingUpToTheLimitIsLeftToToml) {
  EXPECT_EQ(check_toml_limits("[" + repeat("t", 64, ".") + "]\n"), std::nullopt);
  EXPECT_NE(check_toml_limits("[" + repeat("t", 65, ".") + "]\n"), std::nullopt);
  EXPECT_EQ(check_toml_limits("[a]\n" + repeat("t", 63, ".") + " = 1\n"), std::nullopt);
  EXPECT_EQ(check_toml_limits("a = " + repeat("[", 63) + repeat("]", 63)), std::nullopt);
  EXPECT_NE(check_toml_limits("a = " + repeat("[", 64) + repeat("]", 64)), std::nullopt);
  EXPECT_EQ(check_toml_limits("a = " + repeat("{b = ", 63) + "1" + repeat("}", 63)), std::nullopt);
  // A header resets the depth: each of these is 64 deep, not 128.
  EXPECT_EQ(check_toml_limits("[" + repeat("a", 64, ".") + "]\n[" + repeat("b", 64, ".") + "]\n"),
            std::nullopt);
}

TEST(ConfigLimitsTest, BracketsInStringsAndCommentsDoNotCount) {
  const std::string deep = repeat("[", 1000) + repeat("t", 1000, ".") + repeat("{", 1000);
  for (const std::string& text : {
           "a = \"" + deep + "\"\n",
           "a = '" + deep + "'\n",
           "a = \"\"\"\n" + deep + "\n\\\"\"\"" + deep + "\"\"\"\n",
           "a = '''\n" + deep + "\n'''\n",
           "# " + deep + "\n",
           "a = 1 # " + deep + "\n",
           "a = [ # " + deep + "\n 1, 2 ]\n",
           "\"" + deep.substr(0, 1000) + "\" = 1\n",
       }) {
    EXPECT_EQ(check_toml_limits(text).value_or(TomlLimitError{}).message, "") << text.substr(0, 60);
  }
  // And the scanner does not lose its place after them.
  auto after = check_toml_limits("a = \"\\\"]\"\nb = '''x''''\n[" + repeat("t", 65, ".") + "]\n");
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->line, 3u);
}

TEST(ConfigLimitsTest, LongKeyIsRefused) {
  EXPECT_THAT(phase1(std::string(1025, 'k') + " = 1\n"),
              ElementsAre("x.toml:1:1: key of 1025 bytes exceeds the limit of 1024 bytes"));
  EXPECT_THAT(phase1("[helpers]\nx.\"" + std::string(5000, 'k') + "\" = 1\n"),
              ElementsAre("x.toml:2:3: key of 5000 bytes exceeds the limit of 1024 bytes"));
  EXPECT_THAT(phase1("[" + std::string(2000, 'k') + "]\n"),
              ElementsAre("x.toml:1:2: key of 2000 bytes exceeds the limit of 1024 bytes"));
  EXPECT_EQ(check_toml_limits(std::string(1024, 'k') + " = 1\n"), std::nullopt);
}

TEST(ConfigLimitsTest, BigFileIsRefusedBeforeItIsRead) {
  testing::TempDir dir;
  std::string text = "# padding\n";
  text.resize(kMaxConfigBytes + 1, '#');
  auto path = dir.write("big.toml", text);
  std::vector<ConfigError> errors;
  EXPECT_FALSE(load_config(path, errors).has_value());
  EXPECT_THAT(strings(errors),
              ElementsAre(path.string() + ": file of 16777217 bytes exceeds the limit of "
                                          "16777216 bytes (16 MiB)"));
  EXPECT_THAT(phase1(text), ElementsAre(HasSubstr("exceeds the limit of 16777216 bytes")));
  text.resize(kMaxConfigBytes);
  EXPECT_EQ(check_toml_limits(text), std::nullopt);
}

TEST(ConfigLimitsTest, InvalidUtf8IsRefusedWithItsPosition) {
  EXPECT_THAT(phase1("[daemon]\n# caf\xc3\xa9\nnode_id = \"\xc3\xa9\xff\"\n"),
              ElementsAre("x.toml:3:13: invalid UTF-8 (byte 0xff); a TOML file is UTF-8"));
  // Overlong, surrogate, above U+10FFFF, truncated.
  for (const char* bad :
       {"a = \"\xc0\xaf\"", "a = \"\xed\xa0\x80\"", "a = \"\xf4\x90\x80\x80\"", "a = \"\xe2\x82"}) {
    auto over = check_toml_limits(bad);
    ASSERT_TRUE(over.has_value()) << bad;
    EXPECT_THAT(over->message, HasSubstr("invalid UTF-8")) << bad;
  }
  EXPECT_EQ(check_toml_limits("a = \"\xe2\x82\xac \xf0\x9f\x98\x80\"\n"), std::nullopt);
}

TEST(ConfigLimitsTest, ScheduleOverridesAreCheckedToo) {
  std::vector<ConfigError> errors;
  EXPECT_FALSE(
      parse_schedule(repeat("{a = ", 50000) + repeat("}", 50000), "schedule", errors).has_value());
  EXPECT_THAT(strings(errors), ElementsAre(HasSubstr("exceeds the limit of 64")));
}

TEST(ConfigLimitsTest, LongCronAndScheduleStringsAreRefused) {
  const std::string head = "[helpers.x]\nexecutor = \"noop\"\n";
  const std::string long_cron = "0 0 * * " + std::string(2000, '1');
  EXPECT_THAT(phase1(head + "schedule = { cron = \"" + long_cron + "\" }\n"),
              ElementsAre("x.toml:3:21: [helpers.x.schedule] cron: string of 2008 bytes exceeds "
                          "the limit of 1024 bytes"));
  EXPECT_THAT(
      phase1(head + "schedule = { time = \"09:00\", tz = \"" + std::string(1025, 'Z') + "\" }\n"),
      ElementsAre(HasSubstr("[helpers.x.schedule] tz: string of 1025 bytes exceeds")));
  EXPECT_THAT(phase1(head + "schedule = { time = \"09:00\", days = [\"mon\", \"" +
                     std::string(4096, 'd') + "\"] }\n"),
              ElementsAre(HasSubstr("days[1]: string of 4096 bytes exceeds the limit")));
  // parse_cron refuses it on its own, for the calendar command and the API.
  auto parsed = parse_cron(long_cron);
  ASSERT_FALSE(parsed.is_ok());
  EXPECT_EQ(parsed.status().message(),
            "cron expression of 2008 bytes exceeds the limit of 1024 bytes");
}

TEST(ConfigLimitsTest, TooManyHelpersAreRefused) {
  std::string text = "[helpers]\n";
  for (size_t i = 0; i <= kMaxHelpers; ++i) text += "h" + std::to_string(i) + " = {}\n";
  EXPECT_THAT(phase1(text),
              ElementsAre("x.toml:1:1: [helpers] 100001 helpers exceed the limit of 100000"));
}

// --- What loads, and the defaults it gets. -------------------------------------------------

TEST(ConfigTest, EmptyFileGetsEveryDefault) {
  Config cfg = parse_ok("");
  EXPECT_EQ(cfg.file, "x.toml");
  EXPECT_EQ(cfg.timezone, "");
  EXPECT_EQ(cfg.plugin_dir, "plugins");
  EXPECT_EQ(cfg.on_plugin_error, Config::OnPluginError::kFail);
  EXPECT_EQ(cfg.log_format, "text");
  EXPECT_EQ(cfg.log_level, "info");
  EXPECT_EQ(cfg.store, "memory");
  EXPECT_EQ(cfg.node_id, "");
  EXPECT_EQ(cfg.lookahead, 2h);
  EXPECT_EQ(cfg.expand_every, 5min);
  EXPECT_EQ(cfg.history_retention, 24h);
  EXPECT_EQ(cfg.shutdown_grace, 30s);
  EXPECT_EQ(cfg.listen, "127.0.0.1:7878");
  EXPECT_FALSE(cfg.token_file);
  EXPECT_FALSE(cfg.token_env);
  EXPECT_EQ(cfg.capacity_queued, 10000u);
  EXPECT_EQ(cfg.retry.max_attempts, 3u);
  EXPECT_EQ(cfg.retry.delays, (std::vector<std::chrono::milliseconds>{0s, 30s, 5min}));
  ASSERT_EQ(cfg.lanes.size(), 1u);
  EXPECT_EQ(cfg.lanes[0].name, "default");
  EXPECT_EQ(cfg.lanes[0].workers, 4u);
  EXPECT_FALSE(cfg.lanes[0].timeout);
  EXPECT_EQ(cfg.tickets.executor, "ticket");
  EXPECT_EQ(cfg.tickets.lane, "default");
  EXPECT_EQ(cfg.tickets.priority, 3);
  EXPECT_FALSE(cfg.tickets.expiry);
  EXPECT_TRUE(cfg.helpers.empty());
  EXPECT_EQ(cfg.redis.ns, "default");
  EXPECT_EQ(cfg.redis.connect_timeout, 2s);
  EXPECT_EQ(cfg.redis.command_timeout, 2s);
  EXPECT_EQ(cfg.redis.lease, 5s);
  EXPECT_FALSE(cfg.redis.password_file);
  EXPECT_FALSE(cfg.redis.password_env);
  EXPECT_EQ(cfg.redis.lane_capacity, RedisConfig::LaneCapacity::kCluster);
  EXPECT_EQ(cfg.redis.claim_ahead, 0u);
}

TEST(ConfigTest, RedisStoreWithoutARedisTableGetsTheDefaults) {
  Config cfg = parse_ok("[daemon]\nstore = \"redis://10.1.2.3:6380/2\"\nnode_id = \"a\"\n");
  EXPECT_EQ(cfg.store, "redis://10.1.2.3:6380/2");
  EXPECT_EQ(cfg.store_path, "");
  EXPECT_EQ(cfg.node_id, "a");
  EXPECT_EQ(cfg.redis.ns, "default");
  EXPECT_EQ(cfg.redis.lease, 5s);
  EXPECT_EQ(cfg.redis.lane_capacity, RedisConfig::LaneCapacity::kCluster);
}

TEST(ConfigTest, RedisReadsEverySetting) {
  Config cfg = parse_ok(R"(
[daemon]
store = "redis://127.0.0.1:6379/1"
[redis]
namespace = "prod.eu-1"
connect_timeout = "500ms"
command_timeout = "3s"
lease = "10s"
password_env = "SCHEDD_REDIS_PASSWORD"
lane_capacity = "node"
claim_ahead = 64
)");
  EXPECT_EQ(cfg.redis.ns, "prod.eu-1");
  EXPECT_EQ(cfg.redis.connect_timeout, 500ms);
  EXPECT_EQ(cfg.redis.command_timeout, 3s);
  EXPECT_EQ(cfg.redis.lease, 10s);
  EXPECT_EQ(cfg.redis.password_env, "SCHEDD_REDIS_PASSWORD");
  EXPECT_FALSE(cfg.redis.password_file);
  EXPECT_EQ(cfg.redis.lane_capacity, RedisConfig::LaneCapacity::kNode);
  EXPECT_EQ(cfg.redis.claim_ahead, 64u);
  cfg = parse_ok("[daemon]\nstore = \"redis://h\"\n[redis]\nlane_capacity = \"cluster\"\n");
  EXPECT_EQ(cfg.redis.lane_capacity, RedisConfig::LaneCapacity::kCluster);
}

TEST(ConfigTest, RedisPasswordFromAFile) {
  testing::TempDir dir;
  auto path = dir.write("etc/schedd.toml",
                        "[daemon]\nstore = \"redis://127.0.0.1\"\n"
                        "[redis]\npassword_file = \"secrets/redis\"\n");
  std::vector<ConfigError> errors;
  auto cfg = load_config(path, errors);
  ASSERT_TRUE(cfg) << strings(errors)[0];
  // Relative to the config file's folder.
  const std::string file = (dir.path() / "etc/secrets/redis").string();
  EXPECT_EQ(cfg->redis.password_file, file);

  // Missing: the error names the file.
  StatusOr<std::optional<std::string>> password = read_redis_password(cfg->redis);
  ASSERT_FALSE(password.is_ok());
  EXPECT_EQ(password.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(password.status().message(),
              HasSubstr("[redis] password_file " + file + ": cannot be read"));

  dir.write("etc/secrets/redis", " \n\t\n");
  password = read_redis_password(cfg->redis);
  ASSERT_FALSE(password.is_ok());
  EXPECT_EQ(password.status().message(), "[redis] password_file " + file + " is empty");

  dir.write("etc/secrets/redis", "  s3cr3t pass\n");
  password = read_redis_password(cfg->redis);
  ASSERT_TRUE(password.is_ok()) << password.status().message();
  EXPECT_EQ(*password, std::optional<std::string>("s3cr3t pass"));
}

TEST(ConfigTest, RedisPasswordFromTheEnvironment) {
  RedisConfig redis;
  // Neither key: no password (the URL's, if any, is used).
  StatusOr<std::optional<std::string>> password = read_redis_password(redis);
  ASSERT_TRUE(password.is_ok());
  EXPECT_FALSE(password->has_value());

  redis.password_env = "SCHEDD_CONFIG_TEST_REDIS_PASSWORD";
  ::unsetenv("SCHEDD_CONFIG_TEST_REDIS_PASSWORD");
  password = read_redis_password(redis);
  ASSERT_FALSE(password.is_ok());
  EXPECT_EQ(password.status().message(),
            "[redis] password_env: environment variable SCHEDD_CONFIG_TEST_REDIS_PASSWORD is not "
            "set or empty");
  ::setenv("SCHEDD_CONFIG_TEST_REDIS_PASSWORD", "", 1);
  EXPECT_FALSE(read_redis_password(redis).is_ok());
  ::setenv("SCHEDD_CONFIG_TEST_REDIS_PASSWORD", "hunter2\n", 1);
  password = read_redis_password(redis);
  ASSERT_TRUE(password.is_ok()) << password.status().message();
  EXPECT_EQ(*password, std::optional<std::string>("hunter2"));
  ::unsetenv("SCHEDD_CONFIG_TEST_REDIS_PASSWORD");
}

TEST(ConfigTest, ReadsEverySetting) {
  Config cfg = parse_ok(R"(
[daemon]
timezone = "America/New_York"
plugin_dir = "/opt/schedd/plugins"
on_plugin_error = "skip"
log_format = "json"
log_level = "debug"
store = "sqlite:/var/lib/schedd.db"
node_id = "node-1"
lookahead = "3h"
expand_every = "10m"
history_retention = "7d"
shutdown_grace = "1m"
[api]
listen = "0.0.0.0:9000"
token_env = "SCHEDD_TOKEN"
[capacity]
queued = 50
[retry]
max_attempts = 5
delays = ["1s", "2s"]
[lanes.default]
workers = 8
timeout = "2h"
[tickets]
executor = "job"
priority = 1
expiry = "1d"
)");
  EXPECT_EQ(cfg.timezone, "America/New_York");
  EXPECT_EQ(cfg.plugin_dir, "/opt/schedd/plugins");
  EXPECT_EQ(cfg.on_plugin_error, Config::OnPluginError::kSkip);
  EXPECT_EQ(cfg.log_format, "json");
  EXPECT_EQ(cfg.log_level, "debug");
  EXPECT_EQ(cfg.store, "sqlite:/var/lib/schedd.db");
  EXPECT_EQ(cfg.node_id, "node-1");
  EXPECT_EQ(cfg.lookahead, 3h);
  EXPECT_EQ(cfg.expand_every, 10min);
  EXPECT_EQ(cfg.history_retention, 7 * 24h);
  EXPECT_EQ(cfg.shutdown_grace, 1min);
  EXPECT_EQ(cfg.listen, "0.0.0.0:9000");
  EXPECT_EQ(cfg.token_env, "SCHEDD_TOKEN");
  EXPECT_EQ(cfg.capacity_queued, 50u);
  EXPECT_EQ(cfg.retry.max_attempts, 5u);
  EXPECT_EQ(cfg.retry.delays, (std::vector<std::chrono::milliseconds>{1s, 2s}));
  ASSERT_EQ(cfg.lanes.size(), 1u);
  EXPECT_EQ(cfg.lanes[0].workers, 8u);
  EXPECT_EQ(cfg.lanes[0].timeout, 2h);
  EXPECT_EQ(cfg.tickets.executor, "job");
  EXPECT_EQ(cfg.tickets.priority, 1);
  EXPECT_EQ(cfg.tickets.expiry, 24h);
}

TEST(ConfigTest, HelperDefaultsAndInheritance) {
  Config cfg = parse_ok(R"(
[retry]
max_attempts = 4
delays = ["1s"]
[helpers.plain]
executor = "noop"
schedule = { every = "1m" }
[helpers.custom]
executor = "noop"
schedule = { every = "1m" }
retry = { max_attempts = 2 }
)");
  ASSERT_EQ(cfg.helpers.size(), 2u);
  const HelperConfig& plain = cfg.helpers[0];
  EXPECT_EQ(plain.name, "plain");
  EXPECT_EQ(plain.key, "plain");
  EXPECT_EQ(plain.lane, "default");
  EXPECT_EQ(plain.priority, 3);
  EXPECT_EQ(plain.expiry, 30min);
  EXPECT_TRUE(plain.enabled);
  EXPECT_FALSE(plain.timeout);
  EXPECT_FALSE(plain.retry);
  EXPECT_EQ(plain.overlap, Overlap::kQueue);
  EXPECT_EQ(plain.catch_up, CatchUp::kAll);
  EXPECT_EQ(plain.schedule.every, 1min);
  EXPECT_EQ(plain.schedule.jitter, 0ms);
  EXPECT_FALSE(plain.schedule.dst);
  EXPECT_FALSE(plain.schedule.tz);
  EXPECT_EQ(plain.where.line, 5u);
  EXPECT_EQ(plain.executor_where.line, 6u);
  EXPECT_EQ(plain.executor_where.column, 12u);
  // A helper's retry table inherits what it does not set from [retry].
  const HelperConfig& custom = cfg.helpers[1];
  ASSERT_TRUE(custom.retry);
  EXPECT_EQ(custom.retry->max_attempts, 2u);
  EXPECT_EQ(custom.retry->delays, (std::vector<std::chrono::milliseconds>{1s}));
}

TEST(ConfigTest, HelpersAndLanesKeepFileOrder) {
  Config cfg = parse_ok(R"(
[lanes.zeta]
[lanes.alpha]
[helpers.zulu]
executor = "noop"
schedule = { every = "1m" }
[helpers.alpha]
executor = "noop"
schedule = { every = "1m" }
[helpers.mike]
executor = "noop"
schedule = { every = "1m" }
)");
  ASSERT_EQ(cfg.helpers.size(), 3u);
  EXPECT_EQ(cfg.helpers[0].name, "zulu");
  EXPECT_EQ(cfg.helpers[1].name, "alpha");
  EXPECT_EQ(cfg.helpers[2].name, "mike");
  ASSERT_EQ(cfg.lanes.size(), 3u);
  EXPECT_EQ(cfg.lanes[0].name, "default");
  EXPECT_EQ(cfg.lanes[1].name, "zeta");
  EXPECT_EQ(cfg.lanes[2].name, "alpha");
  EXPECT_NE(cfg.find_lane("alpha"), nullptr);
  EXPECT_EQ(cfg.find_lane("beta"), nullptr);
  EXPECT_EQ(cfg.find_helper("mike"), &cfg.helpers[2]);
  EXPECT_EQ(cfg.find_helper("nope"), nullptr);
}

TEST(ConfigTest, ScheduleForms) {
  Config cfg = parse_ok(R"(
[helpers.daily]
executor = "noop"
[helpers.daily.schedule]
time = "7:05"
days = ["mon", "fri", "mon"]
tz = "Europe/Paris"
jitter = "30s"
dst = { gap = "skip", overlap = "both" }
[helpers.native]
executor = "noop"
schedule = { time = 09:30:15 }
[helpers.interval]
executor = "noop"
schedule = { every = "15m", anchor = 2024-01-01T00:05:00Z }
[helpers.cron]
executor = "noop"
schedule = { cron = "0 30 2 * * *" }
)");
  ASSERT_EQ(cfg.helpers.size(), 4u);
  const ScheduleConfig& daily = cfg.helpers[0].schedule;
  EXPECT_EQ(daily.time, "07:05");
  EXPECT_EQ(daily.days, (std::vector<std::string>{"mon", "fri"}));
  EXPECT_EQ(daily.tz, "Europe/Paris");
  EXPECT_EQ(daily.jitter, 30s);
  ASSERT_TRUE(daily.dst);
  EXPECT_EQ(daily.dst->gap, DstPolicy::Gap::kSkip);
  EXPECT_EQ(daily.dst->overlap, DstPolicy::Overlap::kBoth);
  EXPECT_FALSE(daily.cron);
  EXPECT_FALSE(daily.every);
  EXPECT_EQ(cfg.helpers[1].schedule.time, "09:30:15");
  EXPECT_EQ(cfg.helpers[2].schedule.every, 15min);
  EXPECT_EQ(cfg.helpers[2].schedule.anchor, "2024-01-01T00:05:00Z");
  EXPECT_EQ(cfg.helpers[3].schedule.cron, "0 30 2 * * *");
}

TEST(ConfigTest, RawParamsKeepKindAndLocation) {
  Config cfg = parse_ok(R"([helpers.h]
executor = "noop"
schedule = { every = "1m" }
[helpers.h.params]
s = "text"
i = 42
f = 1.5
b = true
list = ["a", "b"]
empty = []
map = { k = "v" }
mixed = [1, "a"]
when = 2024-01-01
)");
  ASSERT_EQ(cfg.helpers.size(), 1u);
  const auto& raw = cfg.helpers[0].raw_params;
  ASSERT_EQ(raw.size(), 9u);
  // In file order, each with its value's position.
  EXPECT_EQ(raw[0].name, "s");
  EXPECT_EQ(raw[0].kind, RawParam::Kind::kString);
  EXPECT_EQ(std::get<std::string>(raw[0].value), "text");
  EXPECT_EQ(raw[0].where.file, "x.toml");
  EXPECT_EQ(raw[0].where.line, 5u);
  EXPECT_EQ(raw[0].where.column, 5u);
  EXPECT_EQ(raw[1].kind, RawParam::Kind::kInt);
  EXPECT_EQ(std::get<int64_t>(raw[1].value), 42);
  EXPECT_EQ(raw[2].kind, RawParam::Kind::kDouble);
  EXPECT_EQ(raw[3].kind, RawParam::Kind::kBool);
  EXPECT_EQ(raw[4].kind, RawParam::Kind::kStringList);
  EXPECT_EQ(std::get<StringList>(raw[4].value), (StringList{"a", "b"}));
  EXPECT_EQ(raw[5].kind, RawParam::Kind::kStringList);
  EXPECT_EQ(raw[6].kind, RawParam::Kind::kStringMap);
  EXPECT_EQ(std::get<StringMap>(raw[6].value), (StringMap{{"k", "v"}}));
  EXPECT_EQ(raw[7].kind, RawParam::Kind::kOther);
  EXPECT_EQ(raw[8].kind, RawParam::Kind::kOther);
  EXPECT_EQ(cfg.helpers[0].params_where.line, 4u);
}

TEST(ConfigTest, PluginDirIsRelativeToTheConfigFile) {
  testing::TempDir dir;
  auto path = dir.write("etc/schedd.toml",
                        "[daemon]\nplugin_dir = \"../lib/plugins\"\n"
                        "[api]\ntoken_file = \"token\"\n");
  std::vector<ConfigError> errors;
  auto cfg = load_config(path, errors);
  ASSERT_TRUE(cfg) << strings(errors)[0];
  EXPECT_EQ(cfg->file, path);
  EXPECT_EQ(cfg->plugin_dir, dir.path() / "lib/plugins");
  EXPECT_EQ(cfg->token_file, (dir.path() / "etc/token").string());
  // The default is "plugins" beside the config file.
  path = dir.write("etc/other.toml", "");
  cfg = load_config(path, errors);
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->plugin_dir, dir.path() / "etc/plugins");
}

TEST(ConfigTest, Phase2FillsParamsInSchemaOrderWithDefaults) {
  Config cfg;
  EXPECT_THAT(phase2(R"([helpers.report]
executor = "shell"
schedule = { every = "1m" }
params = { output_limit = 10, cwd = "/tmp", command = "echo" }
[helpers.nap]
executor = "sleep"
schedule = { every = "1m" }
params = { duration = "1s" }
[helpers.tick]
executor = "noop"
schedule = { every = "1m" }
)",
                     &cfg),
              IsEmpty());
  ASSERT_EQ(cfg.helpers.size(), 3u);
  const HelperConfig& report = cfg.helpers[0];
  // env: optional without default and absent, so left out.
  EXPECT_EQ(param_names(report),
            (std::vector<std::string>{"command", "args", "cwd", "kill_grace", "output_limit"}));
  EXPECT_EQ(*param(report, "command"), ParamValue::string("echo"));
  EXPECT_EQ(*param(report, "args"), ParamValue::list({}));
  EXPECT_EQ(*param(report, "cwd"), ParamValue::string("/tmp"));
  EXPECT_EQ(*param(report, "kill_grace"), ParamValue::duration(5s));
  EXPECT_EQ(*param(report, "output_limit"), ParamValue::integer(10));
  EXPECT_EQ(*param(cfg.helpers[1], "duration"), ParamValue::duration(1s));
  EXPECT_TRUE(cfg.helpers[2].params.empty());
}

TEST(ConfigTest, Phase2ReportsBadPluginDefaults) {
  Config cfg = parse_ok("[helpers.h]\nexecutor = \"odd\"\nschedule = { every = \"1m\" }\n");
  ExecutorInfo odd;
  odd.name = "odd";
  odd.params = {{"a", ParamType::kInt, false, "\"five\"", ""},
                {"b", ParamType::kString, false, "not toml", ""}};
  std::vector<ConfigError> errors;
  validate_helpers(
      cfg, [&](std::string_view) { return &odd; }, nullptr, errors);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].to_string(),
            "x.toml:2:12: [helpers.h] executor \"odd\" declares a bad default for param \"a\": "
            "param \"a\": expected int, got string");
  EXPECT_THAT(errors[1].to_string(),
              ::testing::StartsWith("x.toml:2:12: [helpers.h] executor \"odd\" declares a bad "
                                    "default for param \"b\": \"not toml\" is not a TOML value: "));
}

TEST(ConfigTest, ConvertParam) {
  auto raw = [](RawParam::Kind kind, auto value) {
    return RawParam{"p", SourceLoc{}, kind, value};
  };
  const ParamSpec dbl{"p", ParamType::kDouble, false, std::nullopt, ""};
  const ParamSpec dur{"p", ParamType::kDuration, false, std::nullopt, ""};
  const ParamSpec map{"p", ParamType::kStringMap, false, std::nullopt, ""};
  std::string error;
  // An integer is accepted where a double is expected.
  EXPECT_EQ(convert_param(raw(RawParam::Kind::kInt, int64_t{2}), dbl, error),
            ParamValue::number(2.0));
  EXPECT_EQ(convert_param(raw(RawParam::Kind::kDouble, 2.5), dbl, error), ParamValue::number(2.5));
  EXPECT_EQ(convert_param(raw(RawParam::Kind::kString, std::string("1h30m")), dur, error),
            ParamValue::duration(90min));
  EXPECT_EQ(error, "");
  EXPECT_FALSE(convert_param(raw(RawParam::Kind::kInt, int64_t{90}), dur, error));
  EXPECT_EQ(error, "param \"p\": expected duration (a string such as \"90s\"), got integer");
  EXPECT_FALSE(convert_param(raw(RawParam::Kind::kStringList, StringList{"a"}), map, error));
  EXPECT_EQ(error, "param \"p\": expected string map, got array of strings");
  EXPECT_FALSE(convert_param(raw(RawParam::Kind::kOther, std::string("date")), map, error));
  EXPECT_EQ(error, "param \"p\": expected string map, got date");
  EXPECT_FALSE(convert_param(raw(RawParam::Kind::kBool, true), dbl, error));
  EXPECT_EQ(error, "param \"p\": expected double, got boolean");
}

TEST(ConfigTest, DidYouMean) {
  const std::vector<std::string> keys = {"workers", "timeout", "lookahead", "expand_every"};
  EXPECT_EQ(did_you_mean("workres", keys), "workers");
  EXPECT_EQ(did_you_mean("timout", keys), "timeout");
  EXPECT_EQ(did_you_mean("Workers", keys), "workers");
  EXPECT_EQ(did_you_mean("expnd_evry", keys), "expand_every");
  EXPECT_EQ(did_you_mean("lookaheadtime", keys), "lookahead");  // 4 edits, a third of 13
  EXPECT_EQ(did_you_mean("colour", keys), "");
  EXPECT_EQ(did_you_mean("", keys), "");
  EXPECT_EQ(did_you_mean("x", {"y", "tz"}), "");
  EXPECT_EQ(did_you_mean("ab", {"cd"}), "");
  EXPECT_EQ(did_you_mean("shel", {"noop", "shell", "sleep"}), "shell");
  EXPECT_EQ(did_you_mean("anything", {}), "");
}

TEST(ConfigTest, ErrorToString) {
  EXPECT_EQ((ConfigError{{"a.toml", 3, 7}, "bad"}).to_string(), "a.toml:3:7: bad");
  EXPECT_EQ((ConfigError{{"a.toml", 3, 0}, "bad"}).to_string(), "a.toml:3: bad");
  EXPECT_EQ((ConfigError{{"a.toml", 0, 0}, "bad"}).to_string(), "a.toml: bad");
}

TEST(ConfigTest, ParamValueText) {
  EXPECT_EQ(ParamValue::string("hi").to_text(), "hi");
  EXPECT_EQ(ParamValue::integer(42).to_text(), "42");
  EXPECT_EQ(ParamValue::number(1.5).to_text(), "1.5");
  EXPECT_EQ(ParamValue::boolean(true).to_text(), "true");
  EXPECT_EQ(ParamValue::duration(90s).to_text(), "1m30s");
  EXPECT_EQ(ParamValue::list({"a", "b"}).to_text(), "[a, b]");
  EXPECT_EQ(ParamValue::list({}).to_text(), "[]");
  EXPECT_EQ(ParamValue::map({{"k", "v"}, {"a", "b"}}).to_text(), "{a=b, k=v}");
  EXPECT_STREQ(param_type_name(ParamType::kStringList), "string list");
  EXPECT_STREQ(param_type_name(ParamType::kDuration), "duration");
  EXPECT_STREQ(param_type_name(static_cast<ParamType>(99)), "unknown");
}

TEST(ConfigTest, SqliteStorePathAndDurability) {
  Config cfg = parse_ok(R"([daemon]
store = "sqlite:/var/lib/schedd/schedd.db"
durability = "batch"
durability_window = "10ms"
)");
  EXPECT_EQ(cfg.store_path, "/var/lib/schedd/schedd.db");
  EXPECT_EQ(cfg.durability, "batch");
  EXPECT_EQ(cfg.durability_window, std::chrono::milliseconds(10));
  Config defaults = parse_ok("[daemon]\nstore = \"sqlite:/tmp/s.db\"\n");
  EXPECT_EQ(defaults.durability, "full");
  EXPECT_EQ(defaults.durability_window, std::chrono::milliseconds(50));
  auto errors = phase1("[daemon]\ndurability = \"sometimes\"\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], HasSubstr("durability"));
  EXPECT_THAT(errors[0], HasSubstr("sometimes"));
}

TEST(ConfigTest, TicketProjectsOverrideTheTicketDefaults) {
  Config cfg = parse_ok(R"([lanes.bulk]
workers = 1
[tickets]
executor = "ticket"
priority = 4
expiry = "1h"
[tickets.projects.acme]
lane = "bulk"
priority = 1
[tickets.projects.batch]
executor = "noop"
expiry = "5m"
)");
  TicketSettings acme = cfg.tickets.for_project("acme");
  EXPECT_EQ(acme.executor, "ticket");
  EXPECT_EQ(acme.lane, "bulk");
  EXPECT_EQ(acme.priority, 1);
  EXPECT_EQ(acme.expiry, std::chrono::hours(1));
  TicketSettings batch = cfg.tickets.for_project("batch");
  EXPECT_EQ(batch.executor, "noop");
  EXPECT_EQ(batch.lane, "default");
  EXPECT_EQ(batch.priority, 4);
  EXPECT_EQ(batch.expiry, std::chrono::minutes(5));
  EXPECT_EQ(cfg.tickets.for_project("other").priority, 4);

  auto errors = phase1(R"([tickets.projects.acme]
lane = "bluk"
priorty = 2
)");
  ASSERT_EQ(errors.size(), 2u) << ::testing::PrintToString(errors);
  EXPECT_THAT(errors[0], HasSubstr("x.toml:2:"));
  EXPECT_THAT(errors[0], HasSubstr("bluk"));
  EXPECT_THAT(errors[1], HasSubstr("priorty"));
  EXPECT_THAT(errors[1], HasSubstr("did you mean \"priority\""));
}

// --- The shipped configs. --------------------------------------------------------------------

TEST(ConfigTest, ReferenceConfigLoads) {
  const std::filesystem::path path = SCHEDD_SOURCE_DIR "/config/schedd.toml";
  Config cfg = load_ok(path);
  EXPECT_EQ(cfg.plugin_dir, (path.parent_path() / "../build/dev/plugins").lexically_normal());
  // Its state lives in the build tree, out of the sources.
  EXPECT_EQ(cfg.store, "sqlite:schedd.db");
  EXPECT_EQ(cfg.data_dir, (path.parent_path() / "../build/state").lexically_normal());
  EXPECT_EQ(cfg.store_path, (path.parent_path() / "../build/state/schedd.db").lexically_normal());
  EXPECT_EQ(cfg.durability, "full");
  EXPECT_EQ(cfg.listen, "127.0.0.1:7878");
  ASSERT_NE(cfg.find_lane("default"), nullptr);
  EXPECT_EQ(cfg.find_lane("default")->workers, 4u);
  EXPECT_GE(cfg.lanes.size(), 2u);
  // Two helpers share the key "reports".
  int reports = 0;
  for (const auto& h : cfg.helpers) reports += h.key == "reports" ? 1 : 0;
  EXPECT_EQ(reports, 2);
  // Schema defaults were filled in.
  const HelperConfig* daily = cfg.find_helper("daily-report");
  ASSERT_NE(daily, nullptr);
  EXPECT_EQ(daily->executor, "shell");
  ASSERT_NE(param(*daily, "kill_grace"), nullptr);
  EXPECT_EQ(*param(*daily, "kill_grace"), ParamValue::duration(5s));
  EXPECT_EQ(*param(*daily, "output_limit"), ParamValue::integer(4096));
}

TEST(ConfigTest, RedisConfigLoads) {
  const std::filesystem::path path = SCHEDD_SOURCE_DIR "/config/redis.toml";
  Config cfg = load_ok(path);
  EXPECT_EQ(cfg.store, "redis://127.0.0.1:6379/0");
  EXPECT_EQ(cfg.node_id, "node-a");
  EXPECT_EQ(cfg.redis.ns, "default");
  EXPECT_EQ(cfg.redis.lease, 5s);
  EXPECT_EQ(cfg.redis.lane_capacity, RedisConfig::LaneCapacity::kCluster);
  EXPECT_FALSE(cfg.redis.password_file);
  EXPECT_FALSE(cfg.redis.password_env);
  ASSERT_NE(cfg.find_lane("default"), nullptr);
  EXPECT_EQ(cfg.find_lane("default")->workers, 4u);
}

TEST(ConfigTest, MinimalConfigLoads) {
  const std::filesystem::path path = SCHEDD_SOURCE_DIR "/config/minimal.toml";
  Config cfg = load_ok(path);
  EXPECT_EQ(cfg.plugin_dir, (path.parent_path() / "../build/dev/plugins").lexically_normal());
  ASSERT_EQ(cfg.helpers.size(), 1u);
  EXPECT_EQ(cfg.helpers[0].executor, "noop");
  EXPECT_EQ(cfg.helpers[0].key, cfg.helpers[0].name);
  EXPECT_EQ(cfg.lanes.size(), 1u);
}

}  // namespace
}  // namespace schedd
