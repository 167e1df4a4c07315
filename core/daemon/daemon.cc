#include "core/daemon/daemon.h"

#include <schedd/abi.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "core/api/api.h"
#include "core/common/clock.h"
#include "core/common/duration.h"
#include "core/config/config.h"
#include "core/control/engine.h"
#include "core/control/validate.h"
#include "core/daemon/doctor.h"
#include "core/daemon/effective_config.h"
#include "core/daemon/logging.h"
#include "core/daemon/notify.h"
#include "core/plugin_host/plugin_host.h"
#include "core/runner/plugin_loader.h"
#include "core/runner/process_tree.h"
#include "core/schedule/schedule.h"
#include "core/store/memory_store.h"
#include "core/store/redis_store.h"
#include "core/store/sqlite_store.h"

namespace schedd {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitRunFailed = 1;
constexpr int kExitBadInput = 2;

std::string version_line() {
  return std::string("schedd ") + SCHEDD_VERSION + " (plugin ABI " +
         std::to_string(SCHEDD_ABI_VERSION) + ")";
}

// A loaded, validated configuration with its plugins.
struct Loaded {
  Config config;
  std::unique_ptr<PluginHost> plugins;
  std::vector<PluginLoadError> skipped;  // refusals tolerated by on_plugin_error = "skip"
  std::vector<std::string> warnings;     // reported once the log is set up
};

// This daemon's node id: [daemon].node_id, or the host name.
std::string node_id_of(const Config& cfg) {
  if (!cfg.node_id.empty()) return cfg.node_id;
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return host;
}

// How the plugin named `name` runs: [plugins.NAME] over [daemon].isolation. User and group
// names were resolved by resolve_plugin_users().
runner::PluginRunSettings plugin_settings(const Config& cfg, const std::string& name) {
  runner::PluginRunSettings s;
  const PluginConfig* p = cfg.find_plugin(name);
  std::string isolation = p != nullptr && p->isolation ? *p->isolation : cfg.isolation;
  s.isolation = isolation == "inprocess" ? Isolation::kInProcess : Isolation::kProcess;
  if (p == nullptr) return s;
  s.limits.memory_bytes = p->memory_limit;
  s.limits.cpu = p->cpu_limit;
  s.limits.open_files = p->open_files;
  if (p->user) {
    if (const passwd* pw = getpwnam(p->user->c_str())) {
      s.limits.uid = pw->pw_uid;
      if (!p->group) s.limits.gid = pw->pw_gid;
    }
  }
  if (p->group) {
    if (const group* gr = getgrnam(p->group->c_str())) s.limits.gid = gr->gr_gid;
  }
  return s;
}

// Checks [plugins.*] user and group names exist; appends an error for each that does not.
void check_plugin_users(const Config& cfg, std::vector<ConfigError>& errors) {
  for (const auto& p : cfg.plugins) {
    if (p.user && getpwnam(p.user->c_str()) == nullptr) {
      errors.push_back(
          {p.where, "[plugins." + p.name + "] user: no such user \"" + *p.user + "\""});
    }
    if (p.group && getgrnam(p.group->c_str()) == nullptr) {
      errors.push_back(
          {p.where, "[plugins." + p.name + "] group: no such group \"" + *p.group + "\""});
    }
  }
}

// What loading found, stage by stage: the config (with the environment's and the flags'
// settings over it), its plugins, and the helpers checked against them. A stage runs only
// when the one before it succeeded.
struct LoadStages {
  std::optional<Config> config;
  std::vector<std::string> config_errors;      // file:line:col lines, and "SCHEDD_X: ..." ones
  std::unique_ptr<PluginHost> plugins;         // set when the config loaded
  Status plugins_status;                       // non-ok: refused with on_plugin_error = "fail"
  std::vector<PluginLoadError> plugin_errors;  // refusals (tolerated ones with "skip")
  std::vector<std::string> helper_errors;
  std::vector<std::string> warnings;  // reported once the log is set up
};

// Runs every loading stage it can for `path` with `flags` over it (after the environment's
// SCHEDD_* settings). Prints nothing.
LoadStages load_stages(const std::string& path, const std::vector<ConfigOverride>& flags) {
  LoadStages st;
  std::vector<ConfigError> errors;
  std::optional<Config> config = load_config(path, errors);
  if (config) {
    std::vector<ConfigOverride> overrides =
        environment_overrides([](const char* name) { return std::getenv(name); });
    overrides.insert(overrides.end(), flags.begin(), flags.end());
    std::error_code ec;
    std::filesystem::path cwd = std::filesystem::current_path(ec);
    apply_overrides(*config, overrides, cwd, errors);
    check_plugin_users(*config, errors);
  }
  for (const auto& e : errors) st.config_errors.push_back(e.to_string());
  if (!config || !errors.empty()) return st;

  st.plugins = std::make_unique<PluginHost>();
  runner::LoadOptions options;
  options.dir = config->plugin_dir;
  options.on_error = config->on_plugin_error == Config::OnPluginError::kSkip
                         ? PluginErrorPolicy::kSkip
                         : PluginErrorPolicy::kFail;
  options.runner_binary = config->runner.empty() ? runner::default_runner_binary() : config->runner;
  options.load_timeout = config->plugin_load_timeout;
  options.kill_grace = config->kill_grace;
  options.node = node_id_of(*config);
  const Config& cfg = *config;
  options.settings_for = [&cfg](const std::string& name) { return plugin_settings(cfg, name); };
  st.plugins_status = runner::load_plugins(*st.plugins, options, st.plugin_errors);
  if (st.plugins_status.is_ok()) {
    for (const auto& p : config->plugins) {
      bool found = false;
      for (const auto& info : st.plugins->plugins()) found = found || info.name == p.name;
      if (!found) {
        st.warnings.push_back(
            ConfigError{p.where, "[plugins." + p.name + "] names no loaded plugin"}.to_string());
      }
    }
    const PluginHost& host = *st.plugins;
    std::vector<ConfigError> helper_errors;
    validate_helpers(*config, host, helper_errors);
    for (const auto& e : helper_errors) st.helper_errors.push_back(e.to_string());
  }
  st.config = std::move(config);
  return st;
}

// Loads the config, its plugins and validates helpers against them. On failure prints every
// problem found to stderr and returns nullopt. `flags` are the command line's settings
// (--plugin-dir, --listen, ...: an operator's choice, never a request's).
std::optional<Loaded> load_all(const std::string& path, const std::vector<ConfigOverride>& flags) {
  LoadStages st = load_stages(path, flags);
  auto print_count = [&](std::size_t n) {
    std::cerr << path << ": " << n << (n == 1 ? " error" : " errors") << "\n";
  };
  if (!st.config_errors.empty() || !st.config) {
    for (const auto& e : st.config_errors) std::cerr << e << "\n";
    print_count(st.config_errors.size());
    return std::nullopt;
  }
  if (!st.plugins_status.is_ok()) {
    for (const auto& e : st.plugin_errors) std::cerr << e.to_string() << "\n";
    std::cerr << st.plugins_status.message() << "\n";
    // With refused plugins, unknown executors are a consequence; report the cause only.
    return std::nullopt;
  }
  if (!st.helper_errors.empty()) {
    for (const auto& e : st.helper_errors) std::cerr << e << "\n";
    print_count(st.helper_errors.size());
    return std::nullopt;
  }
  Loaded loaded;
  loaded.config = std::move(*st.config);
  loaded.plugins = std::move(st.plugins);
  loaded.skipped = std::move(st.plugin_errors);
  loaded.warnings = std::move(st.warnings);
  return loaded;
}

std::string describe_param(const ParamSpec& p) {
  std::string s = std::string(param_type_name(p.type));
  if (p.required) {
    s += ", required";
  } else if (p.default_toml) {
    s += ", default " + *p.default_toml;
  } else {
    s += ", optional";
  }
  return s;
}

int cmd_plugins(const std::string& config_path, const std::vector<ConfigOverride>& flags) {
  auto loaded = load_all(config_path, flags);
  if (!loaded) return kExitBadInput;
  for (const auto& p : loaded->plugins->plugins()) {
    std::cout << "plugin " << p.name << " " << p.version << " (" << p.file.string() << ")"
              << ", loaded in " << fmt::format("{:.3f}", p.load_time.count() / 1000.0) << " ms\n";
    for (const auto& name : p.executors) {
      const ExecutorInfo& info = loaded->plugins->find(name)->info();
      std::cout << "  executor " << info.name << ": " << info.description << "\n";
      for (const auto& param : info.params) {
        std::cout << "    " << param.name << " (" << describe_param(param) << ")";
        if (!param.description.empty()) std::cout << ": " << param.description;
        std::cout << "\n";
      }
    }
  }
  for (const auto& e : loaded->skipped) std::cout << "skipped " << e.to_string() << "\n";
  return kExitOk;
}

int cmd_check_config(const std::string& config_path, const std::vector<ConfigOverride>& flags,
                     bool print_effective) {
  auto loaded = load_all(config_path, flags);
  if (!loaded) return kExitBadInput;
  if (print_effective) {
    std::cout << effective_config_toml(loaded->config);
    return kExitOk;
  }
  std::size_t executors = loaded->plugins->executors().size();
  std::cout << config_path << ": ok (" << loaded->config.helpers.size() << " helpers, "
            << loaded->config.lanes.size() << " lanes, " << loaded->plugins->plugins().size()
            << " plugins, " << executors << " executors)\n";
  return kExitOk;
}

// `schedd doctor`: every check, one line each; exit 1 when any check failed.
int cmd_doctor(const std::string& config_path, const std::vector<ConfigOverride>& flags) {
  LoadStages st = load_stages(config_path, flags);
  DoctorInput in;
  in.config_path = config_path;
  in.config = st.config ? &*st.config : nullptr;
  in.config_errors = st.config_errors;
  in.plugins = st.plugins.get();
  in.plugins_status = st.plugins_status;
  for (const auto& e : st.plugin_errors) in.plugin_errors.push_back(e.to_string());
  in.helper_errors = st.helper_errors;
  std::size_t failed = 0;
  std::size_t warned = 0;
  for (const DoctorLine& l : run_doctor(in)) {
    std::cout << format_doctor_line(l);
    failed += l.level == DoctorLine::Level::kFail ? 1 : 0;
    warned += l.level == DoctorLine::Level::kWarn ? 1 : 0;
  }
  std::cout << "doctor: " << failed << (failed == 1 ? " failure, " : " failures, ") << warned
            << (warned == 1 ? " warning" : " warnings") << "\n";
  std::cout.flush();
  return failed == 0 ? kExitOk : kExitRunFailed;
}

// The signals a service meets. Every one of them ends `run` gracefully but SIGHUP, which
// reloads (docs/operations.md "Signals"); `exec` ends its run on any of them.
constexpr int kDaemonSignals[] = {SIGTERM, SIGINT, SIGQUIT, SIGHUP};

// Blocks the daemon's signals (and `extra`, 0 for none) in this thread and every thread it
// starts afterwards, so that one waiter takes them with sigwait. Processes the daemon starts
// get a clean mask (runner_pool.cc, the shell plugin). A signal its parent left ignored
// (nohup ignores SIGHUP, a shell's `cmd &` SIGINT and SIGQUIT) is discarded before sigwait
// can see it, so each gets its default action back first; blocked, that action never runs.
sigset_t block_daemon_signals(int extra = 0) {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : kDaemonSignals) sigaddset(&set, sig);
  if (extra != 0) sigaddset(&set, extra);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  for (int sig : kDaemonSignals) signal(sig, SIG_DFL);
  if (extra != 0) signal(extra, SIG_DFL);
  return set;
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    case SIGQUIT:
      return "SIGQUIT";
    case SIGHUP:
      return "SIGHUP";
    case SIGUSR2:
      return "SIGUSR2";
    default:
      return "a signal";
  }
}

// SCHEDD_DEBUG_HOOKS=1: SIGUSR2 wedges (and a second one unwedges) the dispatcher's loop, so
// that a test can show the watchdog pings stop. Never for production use.
bool debug_hooks_enabled() {
  const char* v = std::getenv("SCHEDD_DEBUG_HOOKS");
  return v != nullptr && std::string_view(v) == "1";
}

int cmd_exec(const std::string& config_path, const std::vector<ConfigOverride>& flags,
             const std::string& helper_name, const std::string& timeout_text) {
  sigset_t signals = block_daemon_signals();
  auto loaded = load_all(config_path, flags);
  if (!loaded) return kExitBadInput;
  const Config& cfg = loaded->config;
  const HelperConfig* helper = cfg.find_helper(helper_name);
  if (helper == nullptr) {
    std::vector<std::string> names;
    for (const auto& h : cfg.helpers) names.push_back(h.name);
    std::string hint = did_you_mean(helper_name, names);
    std::cerr << config_path << ": unknown helper \"" << helper_name << "\""
              << (hint.empty() ? "" : " (did you mean \"" + hint + "\"?)") << "\n";
    return kExitBadInput;
  }
  std::optional<std::chrono::milliseconds> timeout = helper->timeout;
  if (!timeout) {
    if (const LaneConfig* lane = cfg.find_lane(helper->lane)) timeout = lane->timeout;
  }
  if (!timeout_text.empty()) {
    auto t = parse_duration(timeout_text);
    if (!t.is_ok()) {
      std::cerr << "--timeout: " << t.status().message() << "\n";
      return kExitBadInput;
    }
    timeout = *t;
  }

  const Clock& clock = SystemClock::instance();
  TimePoint now = clock.now();
  RunRequest req;
  req.execution_id =
      helper->name + "@" +
      std::to_string(
          std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
  req.origin = Origin::kHelper;
  req.name = helper->name;
  req.key = helper->key;
  req.lane = helper->lane;
  req.attempt = 1;
  req.due = now;
  if (timeout) req.deadline = now + *timeout;
  req.params = helper->params;
  req.on_progress = [&](double fraction, std::string_view message) {
    spdlog::info("[{}] progress {:.0f}% {}", req.execution_id, fraction * 100, message);
  };

  const Executor* executor = loaded->plugins->find(helper->executor);
  StopSource stop;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  bool timed_out = false;
  RunOutcome outcome;
  std::thread worker([&] {
    RunOutcome o = executor->run(req, stop);
    std::lock_guard lock(mu);
    outcome = std::move(o);
    done = true;
    cv.notify_all();
  });
  // Signal waiter: SIGTERM, SIGINT, SIGQUIT or SIGHUP (a closed terminal) requests a
  // cooperative stop (cancelled).
  std::thread signal_waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::lock_guard lock(mu);
    if (!done) {
      spdlog::warn("[{}] {}: requesting stop", req.execution_id, signal_name(sig));
      stop.request_stop();
      cv.notify_all();
    }
  });
  bool abandoned = false;
  {
    std::unique_lock lock(mu);
    if (timeout) {
      if (!cv.wait_for(lock, *timeout, [&] { return done || stop.stop_requested(); })) {
        timed_out = true;
        spdlog::warn("[{}] timeout of {} reached: requesting stop", req.execution_id,
                     format_duration(*timeout));
        stop.request_stop();
      }
    } else {
      cv.wait(lock, [&] { return done || stop.stop_requested(); });
    }
    // After a stop request (timeout or signal) the run gets kill_grace: out of process its
    // runner is killed then, in process nothing can end it and exec leaves it behind.
    if (!done &&
        !cv.wait_for(lock, cfg.kill_grace + std::chrono::seconds(1), [&] { return done; })) {
      abandoned = true;
    }
  }
  if (abandoned) {
    std::cout << "status: " << (timed_out ? "timed_out" : "cancelled") << "\n";
    std::cout << "message: in-process run did not stop within kill_grace "
              << format_duration(cfg.kill_grace) << " of the stop request; abandoned\n";
    std::cout.flush();
    std::_Exit(kExitRunFailed);
  }
  worker.join();
  // Wake the signal waiter so it can exit.
  pthread_kill(signal_waiter.native_handle(), SIGTERM);
  signal_waiter.join();

  std::string status = run_status_name(outcome.status);
  if (outcome.status != RunStatus::kSucceeded && timed_out) status = "timed_out";
  if (outcome.status == RunStatus::kCancelled && !timed_out) status = "cancelled";
  std::cout << "status: " << status << "\n";
  std::cout << "message: " << outcome.message << "\n";
  std::cout << "duration: "
            << fmt::format("{:.3f}", std::chrono::duration<double>(outcome.duration).count())
            << "s\n";
  std::cout << "output: " << outcome.output << "\n";
  return outcome.status == RunStatus::kSucceeded ? kExitOk : kExitRunFailed;
}

// The Redis store of `cfg` (store = "redis://..." and [redis]) for this daemon, `node_id`.
// nullptr after logging why it cannot be opened; the message names the address, never the
// password.
std::unique_ptr<Store> open_redis_store(const Config& cfg, const std::string& node_id) {
  StatusOr<RedisAddress> address = parse_redis_url(cfg.store);
  if (!address.is_ok()) {
    // The config loader checked the URL; this is a second look at the same text.
    spdlog::error("cannot open the store: {}", address.status().message());
    return nullptr;
  }
  RedisOptions options;
  options.address = *address;
  StatusOr<std::optional<std::string>> password = read_redis_password(cfg.redis);
  if (!password.is_ok()) {
    spdlog::error("cannot open the store {}: {}", address->to_string(),
                  password.status().message());
    return nullptr;
  }
  if (password->has_value()) options.password = **password;  // wins over the URL's
  options.ns = cfg.redis.ns;
  options.connect_timeout = cfg.redis.connect_timeout;
  options.command_timeout = cfg.redis.command_timeout;
  options.lease = cfg.redis.lease;
  options.node_id = node_id;
  options.clock = &SystemClock::instance();
  // Cluster-wide running limits: each lane's workers, unless every daemon runs its own.
  if (cfg.redis.lane_capacity == RedisConfig::LaneCapacity::kCluster) {
    for (const auto& lane : cfg.lanes) options.lane_capacity[lane.name] = lane.workers;
  }
  options.claim_ahead = cfg.redis.claim_ahead;
  const auto t0 = std::chrono::steady_clock::now();
  auto opened = RedisStore::open(std::move(options));
  if (!opened.is_ok()) {
    spdlog::error("cannot open the store: {}", opened.status().message());
    return nullptr;
  }
  spdlog::info(
      "store {}: namespace {}, node {}, lease {}, lane capacity {}{}; opened in {:.3f} s",
      address->to_string(), cfg.redis.ns, node_id, format_duration(cfg.redis.lease),
      cfg.redis.lane_capacity == RedisConfig::LaneCapacity::kCluster ? "cluster-wide" : "per node",
      cfg.redis.claim_ahead > 0 ? ", claim-ahead " + std::to_string(cfg.redis.claim_ahead)
                                : std::string(),
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return std::move(opened).value();
}

// The store the config names, opened and loaded (and logged), or the in-memory store with
// --ephemeral. nullptr after logging why it cannot be opened.
std::unique_ptr<Store> open_store(const Config& cfg, bool ephemeral, const std::string& node_id) {
  if (ephemeral || cfg.store == "memory") {
    spdlog::warn(
        "store memory{}: nothing survives a restart",
        ephemeral && cfg.store != "memory" ? " (--ephemeral; configured " + cfg.store + ")" : "");
    return std::make_unique<MemoryStore>();
  }
  if (cfg.store.starts_with("sqlite:")) {
    SqliteOptions options;
    options.durability = cfg.durability == "batch" ? SqliteOptions::Durability::kBatch
                                                   : SqliteOptions::Durability::kFull;
    options.batch_window = cfg.durability_window;
    auto opened = SqliteStore::open(cfg.store_path, options);
    if (!opened.is_ok()) {
      spdlog::error("cannot open the store: {}", opened.status().message());
      return nullptr;
    }
    const SqliteLoadReport& r = (*opened)->load_report();
    if (r.schema_before == 0) {
      spdlog::info("store {}: new file (schema {})", cfg.store_path.string(), r.schema_after);
    } else if (r.schema_before != r.schema_after) {
      spdlog::info("store {}: migrated schema {} -> {}", cfg.store_path.string(), r.schema_before,
                   r.schema_after);
    }
    spdlog::info(
        "store {}: loaded {} queued, {} running at the last stop, {} in history, {} helper "
        "states in {:.3f} s; durability {}",
        cfg.store_path.string(), r.queued, r.running, r.terminal, r.helper_states, r.seconds,
        cfg.durability == "batch"
            ? "batch (fsync every " + format_duration(cfg.durability_window) + ")"
            : std::string("full (acknowledged after the WAL fsync)"));
    return std::move(opened).value();
  }
  if (cfg.store.starts_with("redis://")) return open_redis_store(cfg, node_id);
  spdlog::error("store {} is not supported (use \"memory\", \"sqlite:PATH\" or \"redis://...\")",
                cfg.store);
  return nullptr;
}

// The one-line summary systemd shows (STATUS=): what runs and waits, per lane, and whether
// the store and the dispatcher are well.
std::string status_line(Engine& engine, const std::string& listen) {
  std::size_t running = 0;
  std::size_t queued = 0;
  std::string lanes;
  for (const LaneView& lane : engine.lanes()) {
    if (!lane.local) continue;
    running += lane.running;
    queued += lane.queued;
    lanes += fmt::format("{}{} {}/{}{}", lanes.empty() ? "" : ", ", lane.name, lane.running,
                         lane.workers, lane.paused ? " paused" : "");
  }
  std::string line = fmt::format("running {}, queued {} (lanes {}); ", running, queued, lanes);
  if (engine.dispatcher().draining()) {
    line += engine.dispatcher().drained() ? "drained; " : "draining; ";
  }
  const Status health = engine.store().health();
  line += health.is_ok() ? "store ok" : "store: " + health.message();
  const auto since = std::chrono::steady_clock::now() - engine.dispatcher().heartbeat();
  if (since > std::chrono::seconds(10)) {
    line += fmt::format("; dispatcher stalled for {} s",
                        std::chrono::duration_cast<std::chrono::seconds>(since).count());
  }
  return line + "; API " + listen;
}

// Live reload (SIGHUP, POST /v1/system/reload, schedctl reload): the config file again,
// with the same environment and flags over it, validated as at start-up. Invalid: every
// error is logged and returned, and the daemon keeps its config. Valid: the engine applies
// it (Engine::reload), then the log level and the API's tokens follow. One at a time.
ReloadReport reload_daemon(Engine& engine, const std::string& config_path,
                           const std::vector<ConfigOverride>& flags, api::ApiService* api) {
  static std::mutex one_at_a_time;
  std::lock_guard lock(one_at_a_time);
  const auto t0 = std::chrono::steady_clock::now();
  ReloadReport out;
  out.applied = false;
  LoadStages st = load_stages(config_path, flags);
  out.errors = st.config_errors;
  if (st.config && out.errors.empty()) {
    if (!st.plugins_status.is_ok()) {
      for (const auto& e : st.plugin_errors) out.errors.push_back(e.to_string());
      out.errors.push_back(st.plugins_status.message());
    } else {
      out.errors = st.helper_errors;
    }
  }
  if (!out.errors.empty() || !st.config) {
    if (out.errors.empty()) out.errors.push_back(config_path + ": cannot be read");
    for (const auto& e : out.errors) spdlog::error("reload: {}", e);
    spdlog::error("reload refused ({} {}): still running on the config loaded before",
                  out.errors.size(), out.errors.size() == 1 ? "error" : "errors");
    return out;
  }
  for (const auto& e : st.plugin_errors) spdlog::warn("reload: plugin skipped: {}", e.to_string());
  for (const auto& w : st.warnings) spdlog::warn("reload: {}", w);
  auto tokens = api::api_options_from_config(*st.config);
  if (!tokens.is_ok()) {
    out.errors.push_back("[api] " + tokens.status().message());
    spdlog::error("reload refused: [api] {}", tokens.status().message());
    return out;
  }
  const std::string old_level = engine.config().log_level;
  const int64_t old_param_limit = engine.config().max_param_bytes;
  auto next = std::make_shared<const Config>(std::move(*st.config));
  std::shared_ptr<const PluginHost> host(std::move(st.plugins));
  auto applied = engine.reload(next, host);
  if (!applied.is_ok()) {
    out.errors.push_back(applied.status().message());
    spdlog::error("reload failed: {}", applied.status().message());
    return out;
  }
  out = std::move(applied).value();
  out.applied = true;
  if (next->log_level != old_level) {
    spdlog::set_level(spdlog::level::from_str(next->log_level));
    out.changes.push_back("log_level: " + old_level + " -> " + next->log_level);
    spdlog::info("reload: {}", out.changes.back());
  }
  if (next->max_param_bytes != old_param_limit) {
    // The API reads the limit from the engine's config at each request: already applied.
    out.changes.push_back(
        fmt::format("api.max_param_bytes: {} -> {}", old_param_limit, next->max_param_bytes));
    spdlog::info("reload: {}", out.changes.back());
  }
  if (api != nullptr) {
    auto rotated = api->set_tokens(tokens->token, tokens->read_token);
    if (!rotated.is_ok()) {
      out.needs_restart.push_back("api tokens: " + rotated.status().message());
      spdlog::warn("reload: needs a restart: {}", out.needs_restart.back());
    } else if (*rotated) {
      out.changes.push_back("api tokens: replaced");
      spdlog::info("reload: {}", out.changes.back());
    }
  }
  spdlog::info(
      "reload applied in {:.1f} ms: {} changes, {} needing a restart",
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count(),
      out.changes.size(), out.needs_restart.size());
  return out;
}

int cmd_run(const std::string& config_path, const std::vector<ConfigOverride>& flags,
            bool ephemeral) {
  const bool debug_hooks = debug_hooks_enabled();
  sigset_t signals = block_daemon_signals(debug_hooks ? SIGUSR2 : 0);
  // What systemd asked for, taken out of the environment before any thread or child process
  // starts, so that runs do not inherit it (NotifyAccess=main ignores them anyway).
  const NotifyEnvironment notify_env =
      read_notify_environment([](const char* name) { return std::getenv(name); }, getpid());
  for (const char* name : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}) unsetenv(name);
  const Notifier notifier(notify_env.socket);
  auto notify = [&](const std::string& message) {
    if (Status s = notifier.send(message); !s.is_ok()) spdlog::warn("sd_notify: {}", s.message());
  };
  // Log set-up needs the config; config errors are printed plainly before that.
  auto loaded = load_all(config_path, flags);
  if (!loaded) return kExitBadInput;
  const Config& cfg = loaded->config;
  if (Status s = setup_logging(cfg.log_format, cfg.log_level); !s.is_ok()) {
    std::cerr << s.message() << "\n";
    return kExitBadInput;
  }
  spdlog::info("{} starting with {}", version_line(), cfg.file.string());
  for (const auto& [key, o] : cfg.overridden) {
    spdlog::info("{} from {} (the file has {})", key, o.source, o.replaced);
  }
  for (const auto& w : notify_env.warnings) spdlog::warn("{}", w);
  if (!notifier.error().empty()) spdlog::warn("{}: no service notifications", notifier.error());
  if (notifier.enabled()) {
    spdlog::info("service notifications to {}{}", notify_env.socket,
                 notify_env.watchdog ? fmt::format(", watchdog every {} ms (pings at half)",
                                                   notify_env.watchdog->count() / 1000)
                                     : std::string());
  }
  for (const auto& p : loaded->plugins->plugins()) {
    const Executor* first = p.executors.empty() ? nullptr : loaded->plugins->find(p.executors[0]);
    bool in_process = first != nullptr && first->isolation() == Isolation::kInProcess;
    spdlog::info("plugin {} {} loaded from {} in {:.3f} ms ({} executors, {})", p.name, p.version,
                 p.file.string(), p.load_time.count() / 1000.0, p.executors.size(),
                 in_process ? "in process" : "out of process");
  }
  for (const auto& e : loaded->skipped) spdlog::warn("plugin skipped: {}", e.to_string());
  for (const auto& w : loaded->warnings) spdlog::warn("{}", w);
  for (const auto& lane : cfg.lanes) {
    spdlog::info("lane {}: {} workers", lane.name, lane.workers);
  }
  for (const auto& h : cfg.helpers) {
    spdlog::info("helper {}: executor {}, key {}, lane {}, {}", h.name, h.executor, h.key, h.lane,
                 h.enabled ? "enabled" : "disabled");
  }
  std::string node_id = node_id_of(cfg);
  // Processes this daemon starts itself (in-process `shell` jobs) carry the same marks as its
  // runners, so that the next instance finds them too. No other thread reads the
  // environment yet (the runner spawner only forks when asked).
  setenv(runner::kRunnerMarkVar, runner::self_mark().c_str(), 1);
  setenv(runner::kNodeMarkVar, node_id.c_str(), 1);
  // Whatever an earlier instance of this node left running (kill -9, OOM kill, power cut
  // with a surviving process) dies before this one re-runs its executions.
  auto orphans = runner::kill_orphans_of_dead_daemons(node_id, std::chrono::seconds(5));
  if (!orphans.empty()) {
    std::string pids;
    for (pid_t p : orphans) pids += (pids.empty() ? "" : " ") + std::to_string(p);
    spdlog::warn("killed {} processes left running by an earlier instance of node {}: {}",
                 orphans.size(), node_id, pids);
  }
  notify("STATUS=starting: opening the store");
  std::unique_ptr<Store> store_owner = open_store(cfg, ephemeral, node_id);
  if (!store_owner) return kExitRunFailed;
  Store& store = *store_owner;
  notify("STATUS=starting: recovering and planning");
  Engine engine(cfg, store, SystemClock::instance(), *loaded->plugins, node_id);
  if (Status s = engine.start(); !s.is_ok()) {
    spdlog::error("cannot start: {}", s.message());
    return kExitBadInput;
  }
  // The control API: started after the engine, stopped before it.
  auto api_options = api::api_options_from_config(cfg);
  if (!api_options.is_ok()) {
    spdlog::error("[api] {}", api_options.status().message());
    engine.stop(std::chrono::milliseconds(0));
    return kExitBadInput;
  }
  const bool api_token = api_options->token.has_value();
  api::HttpServerOptions api_http;
  api_http.listen = cfg.listen;
  // The API's reload waits for the service to exist (it rotates the service's tokens).
  std::atomic<api::ApiService*> service_for_reload{nullptr};
  std::string address;  // set once the API listens, before any reload can run
  auto reload = [&] {
    notify("RELOADING=1\n" + monotonic_usec_field() + "\nSTATUS=reloading");
    ReloadReport r = reload_daemon(engine, config_path, flags, service_for_reload.load());
    notify("READY=1\nSTATUS=" + status_line(engine, address));
    return r;
  };
  api_options->reload = reload;
  auto api_service = api::ApiService::start(engine, std::move(*api_options), api_http);
  if (!api_service.is_ok()) {
    spdlog::error("cannot serve the control API: {}", api_service.status().message());
    engine.stop(std::chrono::milliseconds(0));
    return kExitRunFailed;
  }
  address = (*api_service)->address();
  service_for_reload.store(api_service->get());
  spdlog::info("node {}: store {}; control API listening on http://{} ({})", node_id,
               store.describe(), address,
               api_token ? "bearer token required to change" : "no token: loopback only");

  // The store is recovered, the plugins are loaded and the API listens: ready.
  notify("READY=1\nSTATUS=" + status_line(engine, address));
  ServiceMonitor::Options monitor_options;
  monitor_options.watchdog = notify_env.watchdog;
  monitor_options.status = [&] { return status_line(engine, address); };
  monitor_options.heartbeat = [&] { return engine.dispatcher().heartbeat(); };
  monitor_options.poke = [&] { engine.dispatcher().poke(); };
  ServiceMonitor monitor(notifier, std::move(monitor_options));
  if (notifier.enabled()) monitor.start();
  spdlog::info("schedd ready; stop with SIGTERM or Ctrl-C, reload with SIGHUP");

  int sig = 0;
  bool wedged = false;
  for (;;) {
    sigwait(&signals, &sig);
    if (sig == SIGHUP) {
      spdlog::info("received SIGHUP: reloading {}", config_path);
      reload();
      continue;
    }
    if (sig == SIGUSR2 && debug_hooks) {
      wedged = !wedged;
      spdlog::warn("SIGUSR2 (SCHEDD_DEBUG_HOOKS): dispatcher loop {}",
                   wedged ? "wedged on purpose" : "released");
      engine.dispatcher().wedge_loop_for_test(wedged);
      continue;
    }
    break;
  }
  spdlog::info("received {}, shutting down (grace {})", signal_name(sig),
               format_duration(cfg.shutdown_grace));
  notify("STOPPING=1\nSTATUS=stopping: finishing running executions");
  monitor.stop();
  if (wedged) engine.dispatcher().wedge_loop_for_test(false);
  (*api_service)->stop();
  engine.stop(cfg.shutdown_grace);
  if (engine.dispatcher().running() > 0) {
    // In-process runs that would not stop were recorded as interrupted and left behind with
    // their threads: end the process now, before destructors run under those threads.
    spdlog::warn("schedd stopped, leaving {} in-process runs behind",
                 engine.dispatcher().running());
    spdlog::shutdown();
    std::_Exit(kExitOk);
  }
  spdlog::info("schedd stopped");
  spdlog::shutdown();
  return kExitOk;
}

struct CalendarArgs {
  std::string expr;
  std::string daily;
  std::vector<std::string> days;
  std::string every;
  std::string anchor;
  std::string from;
  std::string tz;
  std::string dst;
  int count = 10;
};

// Parses "gap=skip,overlap=both" (either part optional).
StatusOr<DstPolicy> parse_dst_flag(const std::string& text, DstPolicy policy) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(pos, comma - pos);
    pos = comma + 1;
    if (item == "gap=shift") {
      policy.gap = DstPolicy::Gap::kShift;
    } else if (item == "gap=skip") {
      policy.gap = DstPolicy::Gap::kSkip;
    } else if (item == "overlap=first") {
      policy.overlap = DstPolicy::Overlap::kFirst;
    } else if (item == "overlap=last") {
      policy.overlap = DstPolicy::Overlap::kLast;
    } else if (item == "overlap=both") {
      policy.overlap = DstPolicy::Overlap::kBoth;
    } else {
      return invalid_argument("--dst: \"" + item +
                              "\" is not gap=shift|skip or overlap=first|last|both");
    }
  }
  return policy;
}

// Prints the next fire instants; invalid input prints nothing on stdout and exits 2.
int cmd_calendar(const CalendarArgs& a) {
  auto fail = [](const std::string& message) {
    std::cerr << "calendar: " << message << "\n";
    return kExitBadInput;
  };
  int kinds = !a.expr.empty() + !a.daily.empty() + !a.every.empty();
  if (kinds != 1) return fail("give exactly one of EXPR, --daily or --every");
  if (a.count < 0) return fail("--count must not be negative");
  const date::time_zone* tz = local_zone();
  if (!a.tz.empty()) {
    auto z = find_zone(a.tz);
    if (!z.is_ok()) return fail("--tz: " + z.status().message());
    tz = *z;
  }
  // Whole seconds, exact for any date up to 9999 (fire instants are whole seconds, so the
  // first one after --from is the first after its second).
  date::sys_seconds from = std::chrono::floor<std::chrono::seconds>(SystemClock::instance().now());
  if (!a.from.empty()) {
    auto f = parse_rfc3339_seconds(a.from);
    if (!f.is_ok()) return fail("--from: " + f.status().message());
    from = *f;
  }
  std::optional<Schedule> schedule;
  if (!a.expr.empty()) {
    auto s = Schedule::cron(a.expr, tz);
    if (!s.is_ok()) return fail(s.status().message());
    schedule = std::move(s).value();
  } else if (!a.daily.empty()) {
    auto s = Schedule::daily(a.daily, a.days, tz);
    if (!s.is_ok()) return fail(s.status().message());
    schedule = std::move(s).value();
  } else {
    auto period = parse_duration(a.every);
    if (!period.is_ok()) return fail("--every: " + period.status().message());
    date::sys_seconds anchor{};
    if (!a.anchor.empty()) {
      auto t = parse_rfc3339_seconds(a.anchor);
      if (!t.is_ok()) return fail("--anchor: " + t.status().message());
      anchor = *t;
    }
    auto s = Schedule::every(*period, anchor);
    if (!s.is_ok()) return fail(s.status().message());
    schedule = std::move(s).value();
  }
  if (!a.days.empty() && a.daily.empty()) return fail("--days needs --daily");
  if (!a.anchor.empty() && a.every.empty()) return fail("--anchor needs --every");
  if (!a.dst.empty()) {
    auto p = parse_dst_flag(a.dst, schedule->dst());
    if (!p.is_ok()) return fail(p.status().message());
    schedule->with_dst(*p);
  }
  std::string out;
  date::sys_seconds t = from;
  int printed = 0;
  for (; printed < a.count; ++printed) {
    auto next = schedule->next_after_seconds(t);
    if (!next) break;
    out += format_rfc3339(*next, tz) + "\n";
    t = *next;
  }
  std::cout << out;
  if (printed < a.count) {
    // Fewer than asked: say so on stderr, so a short list is never mistaken for the end of
    // the output. Schedules stop at 9999-12-31T23:59:59Z.
    std::cerr << "calendar: no fire instant after " << format_rfc3339(t, tz)
              << " up to 9999-12-31T23:59:59Z, the last instant a schedule reaches\n";
  }
  return kExitOk;
}

}  // namespace

int cli_main(int argc, char** argv) {
  CLI::App app{"schedd: a scheduler daemon with plugin executors", "schedd"};
  app.set_version_flag("--version", version_line());
  app.require_subcommand(1);
  app.footer(
      "Environment: SCHEDD_CONFIG (the config file when -c is not given), SCHEDD_LISTEN, "
      "SCHEDD_STORE, SCHEDD_DATA_DIR, SCHEDD_LOG_LEVEL, SCHEDD_TOKEN_FILE. A flag wins over "
      "the environment, which wins over the file (docs/config.md).");

  std::string config_path;
  std::string helper;
  std::string timeout;
  // Settings from flags, by key; applied over the file and the environment.
  std::string plugin_dir;
  std::string listen;
  std::string data_dir;
  std::string log_level;
  std::string log_format;

  auto add_config = [&](CLI::App* cmd) {
    cmd->add_option("-c,--config", config_path, "Config file (default: $SCHEDD_CONFIG)");
    cmd->add_option("--plugin-dir", plugin_dir, "Override [daemon].plugin_dir");
  };
  auto add_service_flags = [&](CLI::App* cmd) {
    cmd->add_option("--listen", listen, "Override [api].listen (HOST:PORT); env SCHEDD_LISTEN");
    cmd->add_option("--data-dir", data_dir,
                    "Override [daemon].data_dir, where a relative sqlite store lives; env "
                    "SCHEDD_DATA_DIR");
    cmd->add_option("--log-level", log_level,
                    "Override [daemon].log_level (debug, info, warn, error); env "
                    "SCHEDD_LOG_LEVEL");
  };

  auto* run = app.add_subcommand("run", "Run the daemon");
  add_config(run);
  add_service_flags(run);
  run->add_option("--log-format", log_format, "text or json (overrides [daemon].log_format)")
      ->check(CLI::IsMember({"text", "json"}));
  bool ephemeral = false;
  run->add_flag("--ephemeral", ephemeral,
                "Keep everything in memory, whatever [daemon].store says (demos, tests)");

  auto* check = app.add_subcommand("check-config", "Validate a config file and its plugins");
  check->add_option("file", config_path, "Config file");
  add_config(check);
  add_service_flags(check);
  bool print_effective = false;
  check->add_flag("--print-effective", print_effective,
                  "Print the effective config (file, environment, flags) and where each "
                  "overridden value came from");

  auto* doctor = app.add_subcommand(
      "doctor", "Check config, plugins, store, Redis, listen address, tzdata, clock, permissions");
  add_config(doctor);
  add_service_flags(doctor);

  auto* plugins = app.add_subcommand("plugins", "List plugins, executors and their parameters");
  add_config(plugins);

  auto* exec =
      app.add_subcommand("exec", "Run one helper's executor once, now, and print the result");
  add_config(exec);
  exec->add_option("helper", helper, "Helper name")->required();
  exec->add_option("--timeout", timeout, "Override the helper's timeout (e.g. 30s)");

  CalendarArgs cal;
  auto* calendar = app.add_subcommand(
      "calendar", "Print the next fire instants of a schedule (RFC 3339, in --tz)");
  calendar->add_option("expr", cal.expr, "Cron expression (5 or 6 fields, or @macro)");
  calendar->add_option("--daily", cal.daily, "Daily time HH:MM[:SS]");
  calendar->add_option("--days", cal.days, "With --daily: weekdays (mon..sun, mon-fri)")
      ->delimiter(',');
  calendar->add_option("--every", cal.every, "Interval (90s, 30m, 2h)");
  calendar->add_option("--anchor", cal.anchor, "With --every: phase instant (RFC 3339)");
  calendar->add_option("--from", cal.from, "Start after this instant (RFC 3339; default now)");
  calendar->add_option("--tz", cal.tz, "IANA time zone (default: the machine's)");
  calendar->add_option("--count", cal.count, "How many instants (default 10)");
  calendar->add_option("--dst", cal.dst, "DST override: gap=shift|skip,overlap=first|last|both");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitBadInput;
  }

  // Until run sets up the configured format, log plainly to stderr.
  (void)setup_logging("text", "info");
  if (calendar->parsed()) return cmd_calendar(cal);

  // The config file: -c, else SCHEDD_CONFIG.
  if (config_path.empty()) {
    if (const char* env = std::getenv("SCHEDD_CONFIG"); env != nullptr && *env != '\0') {
      config_path = env;
    }
  }
  if (config_path.empty()) {
    std::cerr << "no config file: give -c FILE or set SCHEDD_CONFIG\n";
    return kExitBadInput;
  }
  std::vector<ConfigOverride> flags;
  auto flag = [&](const std::string& value, const char* key, const char* name) {
    if (!value.empty()) flags.push_back(ConfigOverride{key, value, name});
  };
  flag(plugin_dir, "daemon.plugin_dir", "--plugin-dir");
  flag(data_dir, "daemon.data_dir", "--data-dir");
  flag(listen, "api.listen", "--listen");
  flag(log_level, "daemon.log_level", "--log-level");
  flag(log_format, "daemon.log_format", "--log-format");

  if (run->parsed()) return cmd_run(config_path, flags, ephemeral);
  if (check->parsed()) return cmd_check_config(config_path, flags, print_effective);
  if (doctor->parsed()) return cmd_doctor(config_path, flags);
  if (plugins->parsed()) return cmd_plugins(config_path, flags);
  if (exec->parsed()) return cmd_exec(config_path, flags, helper, timeout);
  return kExitBadInput;
}

}  // namespace schedd
