// Config: the typed, validated form of schedd.toml. Loading never throws: every mistake is
// collected as a ConfigError with file:line:col, and all of them are reported in one run.
//
// Loading is two-phase because helper params are checked against executor schemas, which
// come from plugins, whose directory comes from the config:
//   1. load_config(path)            parses and validates everything that needs no plugin;
//   2. validate_helpers(cfg, find)  checks executors exist and params match their schemas,
//                                   converting each helper's raw params into typed values.
//
// Thread-safety: plain values; immutable after loading.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/common/params.h"
#include "core/common/status.h"
#include "core/schedule/dst_policy.h"
#include "core/schedule/schedule.h"

namespace schedd {

struct SourceLoc {
  std::string file;
  uint32_t line = 0;  // 1-based; 0 when unknown
  uint32_t column = 0;
};

struct ConfigError {
  SourceLoc where;
  std::string message;
  // "path:line:col: message" (or "path: message" when the position is unknown).
  std::string to_string() const;
};

// A param as written in TOML, before the executor's schema gives it a type.
struct RawParam {
  std::string name;
  SourceLoc where;
  // string, integer, float, bool, array of strings, table of strings; `kind` says which.
  // kOther is anything else (a date, a mixed array, a nested table): `value` then holds a
  // description of it for messages ("array containing integer").
  enum class Kind { kString, kInt, kDouble, kBool, kStringList, kStringMap, kOther } kind;
  std::variant<std::string, int64_t, double, bool, StringList, StringMap> value;
};

// The most helpers one config may declare (docs/config.md "Limits").
inline constexpr std::size_t kMaxHelpers = 100000;
// The longest string a schedule table holds (cron, time, every, anchor, tz, jitter, days),
// in bytes; cron expressions have the same limit in parse_cron.
inline constexpr std::size_t kMaxScheduleStringBytes = 1024;

// Exactly one of cron / time / every is set.
struct ScheduleConfig {
  std::optional<std::string> cron;  // cron expression (5 or 6 fields, or @macro)
  std::optional<std::string> time;  // daily "HH:MM[:SS]"
  std::vector<std::string> days;    // daily: weekdays ("mon".."sun"); empty = every day
  std::optional<std::chrono::milliseconds> every;  // interval
  std::optional<std::string> anchor;  // interval phase, RFC 3339; default the Unix epoch
  std::optional<std::string> tz;      // IANA zone; default daemon.timezone
  std::chrono::milliseconds jitter{0};
  std::optional<DstPolicy> dst;  // unset: the default per docs/design.md §8
  // Which parts of `dst` were written; the others keep the schedule kind's default.
  bool dst_gap_set = false;
  bool dst_overlap_set = false;
  SourceLoc where;
};

struct RetryConfig {
  uint32_t max_attempts = 3;
  std::vector<std::chrono::milliseconds> delays = {
      std::chrono::seconds(0), std::chrono::seconds(30), std::chrono::seconds(300)};
};

enum class Overlap { kQueue, kSkip, kReplace, kAllow };
enum class CatchUp { kAll, kLatest, kNone };

struct HelperConfig {
  std::string name;
  std::string executor;
  std::string description;
  bool enabled = true;
  ScheduleConfig schedule;
  std::string key;  // default: the helper's name
  std::string lane = "default";
  int priority = 3;  // 1 (highest) .. 5
  std::chrono::milliseconds expiry = std::chrono::minutes(30);
  std::optional<std::chrono::milliseconds> timeout;  // default: the lane's timeout
  std::optional<RetryConfig> retry;                  // default: [retry]
  Overlap overlap = Overlap::kQueue;
  CatchUp catch_up = CatchUp::kAll;
  std::vector<RawParam> raw_params;
  ParamList params;  // filled by validate_helpers
  SourceLoc where;   // the [helpers.NAME] header
  SourceLoc executor_where;
  SourceLoc params_where;  // the params table; line 0 when the helper has none
};

struct LaneConfig {
  std::string name;
  uint32_t workers = 4;
  std::optional<std::chrono::milliseconds> timeout;  // default timeout of executions in it
};

// How tickets of one project run: [tickets] with the project's [tickets.projects.NAME]
// overrides applied.
struct TicketSettings {
  std::string executor = "ticket";
  std::string lane = "default";
  int priority = 3;
  std::optional<std::chrono::milliseconds> expiry;
};

// One project's overrides; unset keys come from [tickets].
struct TicketProjectConfig {
  std::optional<std::string> executor;
  std::optional<std::string> lane;
  std::optional<int> priority;
  std::optional<std::chrono::milliseconds> expiry;
};

struct TicketsConfig : TicketSettings {
  std::map<std::string, TicketProjectConfig, std::less<>> projects;

  // The settings for `project`: its overrides over the [tickets] defaults.
  TicketSettings for_project(std::string_view project) const {
    TicketSettings out = *this;
    auto it = projects.find(project);
    if (it == projects.end()) return out;
    const TicketProjectConfig& p = it->second;
    if (p.executor) out.executor = *p.executor;
    if (p.lane) out.lane = *p.lane;
    if (p.priority) out.priority = *p.priority;
    if (p.expiry) out.expiry = p.expiry;
    return out;
  }
};

// [redis]: settings of the shared Redis store (store = "redis://HOST:PORT/DB"); the table is
// refused with any other store.
struct RedisConfig {
  std::string ns = "default";  // `namespace`: keys are schedd:<ns>:...
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds command_timeout{2000};
  std::chrono::milliseconds lease{5000};  // >= 1s
  // The password, read at start-up by read_redis_password(); at most one of the two.
  std::optional<std::string> password_file;  // resolved against the config file's folder
  std::optional<std::string> password_env;
  // kCluster: each lane's `workers` is its running limit across all daemons; kNode: each
  // daemon's own workers only.
  enum class LaneCapacity { kCluster, kNode } lane_capacity = LaneCapacity::kCluster;
  uint64_t claim_ahead = 0;
};

// [plugins.NAME]: how one plugin's executors run (NAME is the plugin's manifest name, as
// `schedd plugins` prints it). Unset fields come from [daemon].
struct PluginConfig {
  std::string name;
  std::optional<std::string> isolation;                // "process" | "inprocess"
  std::optional<uint64_t> memory_limit;                // bytes, RLIMIT_AS of each runner
  std::optional<std::chrono::milliseconds> cpu_limit;  // CPU time of one run
  std::optional<uint64_t> open_files;                  // RLIMIT_NOFILE of each runner
  std::optional<std::string> user;                     // run as this user (daemon running as root)
  std::optional<std::string> group;
  SourceLoc where;
};

struct Config {
  std::filesystem::path file;  // the config file itself
  // [daemon]
  std::string timezone;              // empty: the machine's zone
  std::filesystem::path plugin_dir;  // resolved against the config file's folder
  enum class OnPluginError { kFail, kSkip } on_plugin_error = OnPluginError::kFail;
  std::string log_format = "text";  // "text" | "json"
  std::string log_level = "info";   // "debug" | "info" | "warn" | "error"
  std::string store = "memory";     // "memory" | "sqlite:PATH" | "redis://HOST:PORT/DB"
  // Where a relative sqlite PATH lives. Default: the config file's folder.
  std::filesystem::path data_dir;
  std::filesystem::path store_path;  // sqlite: PATH resolved against data_dir
  std::string durability = "full";   // sqlite: "full" (acked after the WAL fsync) | "batch"
  std::chrono::milliseconds durability_window{50};  // batch: longest time between fsyncs
  std::string node_id;                              // empty: the host name
  std::chrono::milliseconds lookahead = std::chrono::hours(2);
  std::chrono::milliseconds expand_every = std::chrono::minutes(5);
  std::chrono::milliseconds history_retention = std::chrono::hours(24);
  // [history] retention: how long terminal executions of one status (by its name: "failed",
  // "timed_out", ...) stay in history. Statuses not listed keep history_retention.
  std::map<std::string, std::chrono::milliseconds, std::less<>> history_retention_by_status;
  std::chrono::milliseconds shutdown_grace = std::chrono::seconds(30);
  // How plugins run unless [plugins.NAME] says otherwise: "process" (each in its own
  // schedd-runner processes) or "inprocess".
  std::string isolation = "process";
  // How long a run out of process may go on after a stop request (timeout, cancel,
  // shutdown) before its runner and everything it started are killed.
  std::chrono::milliseconds kill_grace = std::chrono::seconds(5);
  // How long loading one plugin may take (its static constructors included).
  std::chrono::milliseconds plugin_load_timeout = std::chrono::seconds(10);
  // The schedd-runner program; empty: the one installed beside the daemon.
  std::filesystem::path runner;
  // [plugins.*]
  std::vector<PluginConfig> plugins;
  // [api]
  std::string listen = "127.0.0.1:7878";
  std::optional<std::string> token_file;
  std::optional<std::string> token_env;
  // A read-only token (GET endpoints only; 403 on mutating ones), from a file or env var.
  std::optional<std::string> read_token_file;
  std::optional<std::string> read_token_env;
  // Most bytes of `params` (as compact JSON) in one API submission or ticket. Default: 65536
  int64_t max_param_bytes = 64 << 10;
  // [capacity]
  uint64_t capacity_queued = 10000;
  // [retry], [lanes.*], [tickets], [helpers.*]
  RetryConfig retry;
  std::vector<LaneConfig> lanes;  // always contains "default"
  TicketsConfig tickets;
  std::vector<HelperConfig> helpers;  // in file order
  // [redis]
  RedisConfig redis;
  // Settings given outside the file (environment, flags) by key ("api.listen"), with where
  // they came from; filled by apply_overrides.
  struct Overridden {
    std::string source;    // "SCHEDD_LISTEN", "--listen"
    std::string replaced;  // the value it replaced, as the file (or the default) had it
  };
  std::map<std::string, Overridden, std::less<>> overridden;

  const LaneConfig* find_lane(std::string_view name) const;
  const HelperConfig* find_helper(std::string_view name) const;
  const PluginConfig* find_plugin(std::string_view name) const;
};

// Phase 1. Returns the config when `errors` stays empty; otherwise nullopt with every error
// found appended to `errors`.
std::optional<Config> load_config(const std::filesystem::path& path,
                                  std::vector<ConfigError>& errors);
// The same from text (tests, API bodies); `source_name` appears in error locations.
std::optional<Config> parse_config(std::string_view text, const std::string& source_name,
                                   std::vector<ConfigError>& errors);

// A setting given outside the config file, by an environment variable or a command-line flag
// (docs/config.md "Environment and flags"). Precedence: flag over environment over file.
struct ConfigOverride {
  std::string key;     // "api.listen", "daemon.store", "daemon.data_dir", ...
  std::string value;   // as given; relative paths are relative to the working directory
  std::string source;  // "SCHEDD_LISTEN" or "--listen": errors and --print-effective name it
};

// The environment variables schedd reads, each with the key it sets ("" for SCHEDD_CONFIG,
// which names the file itself).
struct EnvSetting {
  const char* variable;
  const char* key;
};
inline constexpr EnvSetting kEnvSettings[] = {
    {"SCHEDD_CONFIG", ""},
    {"SCHEDD_LISTEN", "api.listen"},
    {"SCHEDD_STORE", "daemon.store"},
    {"SCHEDD_DATA_DIR", "daemon.data_dir"},
    {"SCHEDD_LOG_LEVEL", "daemon.log_level"},
    {"SCHEDD_TOKEN_FILE", "api.token_file"},
};

// The overrides the SCHEDD_* variables that are set ask for, read through `get` (getenv in
// the daemon); SCHEDD_CONFIG is not among them.
std::vector<ConfigOverride> environment_overrides(
    const std::function<const char*(const char*)>& get);

// Applies `overrides` in order, a later one winning (pass the environment's first, then the
// flags'). Each value is checked as the file's would be; an error names its source
// ("SCHEDD_LISTEN: \"x\" is not HOST:PORT, ...") and leaves the setting as it was. Relative
// paths are resolved against `cwd`. A token_file override replaces the file's token_env.
// Records each applied setting in cfg.overridden.
void apply_overrides(Config& cfg, const std::vector<ConfigOverride>& overrides,
                     const std::filesystem::path& cwd, std::vector<ConfigError>& errors);

// The Redis password from [redis] password_file (trimmed) or password_env; nullopt when
// neither is set. kInvalidArgument naming the file or the variable (never its content) when
// it cannot be read or is empty.
StatusOr<std::optional<std::string>> read_redis_password(const RedisConfig& redis);

// Looks up an executor's schema by name; nullptr when no loaded plugin provides it.
using ExecutorLookup = std::function<const ExecutorInfo*(std::string_view)>;
// Names of all known executors, for did-you-mean suggestions.
using ExecutorNames = std::function<std::vector<std::string>()>;

// Phase 2. Checks every helper's executor exists and its params match the schema (unknown
// param with did-you-mean, missing required, wrong type); fills HelperConfig::params with
// typed values in schema order, defaults included. Appends every error found.
void validate_helpers(Config& config, const ExecutorLookup& lookup, const ExecutorNames& names,
                      std::vector<ConfigError>& errors);

// Converts one raw param per its spec; nullopt with a message when the type does not fit.
// Shared with the API, which validates submitted params the same way.
std::optional<ParamValue> convert_param(const RawParam& raw, const ParamSpec& spec,
                                        std::string& error);

// Parses a schedule given as a TOML inline table (`{ cron = "0 * * * *", tz = "UTC" }`), as
// an API update or `schedd calendar` might; validated exactly like a helper's `schedule` in a
// config file. Errors are located in `source_name`, column counted from the table's start + 11.
std::optional<ScheduleConfig> parse_schedule(std::string_view inline_table,
                                             const std::string& source_name,
                                             std::vector<ConfigError>& errors);

// Builds the evaluable Schedule of a validated ScheduleConfig. `default_tz` is
// [daemon].timezone ("" = the machine's zone); `seed` (the helper's name) derives the jitter.
StatusOr<Schedule> build_schedule(const ScheduleConfig& config, const std::string& default_tz,
                                  std::string_view seed);

// The closest candidate within an edit distance that makes a typo plausible, or "".
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace schedd
