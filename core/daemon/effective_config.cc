#include "core/daemon/effective_config.h"

#include <nlohmann/json.hpp>

#include "core/common/duration.h"
#include "core/store/execution.h"

namespace schedd {
namespace {

// A TOML basic string: JSON's escaping is a subset TOML accepts.
std::string str(const std::string& s) { return nlohmann::json(s).dump(); }
std::string dur(std::chrono::milliseconds d) { return str(format_duration(d)); }

class Printer {
 public:
  explicit Printer(const Config& cfg) : cfg_(cfg) {}

  void table(const std::string& name) { out_ += (out_.empty() ? "[" : "\n[") + name + "]\n"; }
  void comment(const std::string& text) { out_ += "# " + text + "\n"; }
  // `key = value`, and where it came from when the environment or a flag set it.
  void line(const std::string& section, const std::string& key, const std::string& value) {
    out_ += key + " = " + value;
    auto it = cfg_.overridden.find(section + "." + key);
    if (it != cfg_.overridden.end()) {
      out_ += "  # from " + it->second.source + " (was " + str(it->second.replaced) + ")";
    }
    out_ += "\n";
  }
  std::string take() { return std::move(out_); }

 private:
  const Config& cfg_;
  std::string out_;
};

}  // namespace

std::string effective_config_toml(const Config& cfg) {
  Printer p(cfg);
  p.comment("The effective config of " + cfg.file.string() +
            ": the file, then SCHEDD_* variables over it, then flags over those.");
  p.comment("Paths are shown as the daemon resolves them; every key is shown, defaults included.");
  p.table("daemon");
  p.line("daemon", "timezone", str(cfg.timezone));
  p.line("daemon", "plugin_dir", str(cfg.plugin_dir.string()));
  p.line("daemon", "on_plugin_error",
         str(cfg.on_plugin_error == Config::OnPluginError::kSkip ? "skip" : "fail"));
  p.line("daemon", "log_format", str(cfg.log_format));
  p.line("daemon", "log_level", str(cfg.log_level));
  p.line("daemon", "data_dir", str(cfg.data_dir.string()));
  p.line("daemon", "store", str(cfg.store));
  if (!cfg.store_path.empty()) p.comment("store file: " + cfg.store_path.string());
  p.line("daemon", "durability", str(cfg.durability));
  p.line("daemon", "durability_window", dur(cfg.durability_window));
  p.line("daemon", "node_id", str(cfg.node_id));
  p.line("daemon", "lookahead", dur(cfg.lookahead));
  p.line("daemon", "expand_every", dur(cfg.expand_every));
  p.line("daemon", "history_retention", dur(cfg.history_retention));
  p.line("daemon", "shutdown_grace", dur(cfg.shutdown_grace));
  p.line("daemon", "isolation", str(cfg.isolation));
  p.line("daemon", "kill_grace", dur(cfg.kill_grace));
  p.line("daemon", "plugin_load_timeout", dur(cfg.plugin_load_timeout));
  if (!cfg.runner.empty()) p.line("daemon", "runner", str(cfg.runner.string()));

  // Every terminal status with the retention it gets: its own, or history_retention.
  p.table("history");
  std::string retention;
  std::string own;
  for (ExecStatus status : kTerminalStatuses) {
    const std::string name = exec_status_name(status);
    auto it = cfg.history_retention_by_status.find(name);
    const bool set = it != cfg.history_retention_by_status.end();
    retention += (retention.empty() ? "" : ", ") + name + " = " +
                 dur(set ? it->second : cfg.history_retention);
    if (set) own += (own.empty() ? "" : ", ") + name;
  }
  p.comment(own.empty()
                ? "every status keeps [daemon] history_retention"
                : "set in the file: " + own + "; the others keep [daemon] history_retention");
  p.line("history", "retention", "{ " + retention + " }");

  p.table("api");
  p.line("api", "listen", str(cfg.listen));
  if (cfg.token_file) p.line("api", "token_file", str(*cfg.token_file));
  if (cfg.token_env) p.line("api", "token_env", str(*cfg.token_env));
  if (!cfg.token_file && !cfg.token_env) p.comment("no token: the API listens on loopback only");
  if (cfg.read_token_file) p.line("api", "read_token_file", str(*cfg.read_token_file));
  if (cfg.read_token_env) p.line("api", "read_token_env", str(*cfg.read_token_env));
  p.line("api", "max_param_bytes", std::to_string(cfg.max_param_bytes));

  p.table("capacity");
  p.line("capacity", "queued", std::to_string(cfg.capacity_queued));

  p.table("retry");
  p.line("retry", "max_attempts", std::to_string(cfg.retry.max_attempts));
  std::string delays;
  for (auto d : cfg.retry.delays) delays += (delays.empty() ? "" : ", ") + dur(d);
  p.line("retry", "delays", "[" + delays + "]");

  for (const auto& lane : cfg.lanes) {
    const std::string section = "lanes." + lane.name;
    p.table(section);
    p.line(section, "workers", std::to_string(lane.workers));
    if (lane.timeout) p.line(section, "timeout", dur(*lane.timeout));
  }

  p.table("tickets");
  p.line("tickets", "executor", str(cfg.tickets.executor));
  p.line("tickets", "lane", str(cfg.tickets.lane));
  p.line("tickets", "priority", std::to_string(cfg.tickets.priority));
  if (cfg.tickets.expiry) p.line("tickets", "expiry", dur(*cfg.tickets.expiry));

  if (cfg.store.starts_with("redis://")) {
    p.table("redis");
    p.line("redis", "namespace", str(cfg.redis.ns));
    p.line("redis", "connect_timeout", dur(cfg.redis.connect_timeout));
    p.line("redis", "command_timeout", dur(cfg.redis.command_timeout));
    p.line("redis", "lease", dur(cfg.redis.lease));
    if (cfg.redis.password_file) p.line("redis", "password_file", str(*cfg.redis.password_file));
    if (cfg.redis.password_env) p.line("redis", "password_env", str(*cfg.redis.password_env));
    p.line("redis", "lane_capacity",
           str(cfg.redis.lane_capacity == RedisConfig::LaneCapacity::kNode ? "node" : "cluster"));
    p.line("redis", "claim_ahead", std::to_string(cfg.redis.claim_ahead));
  }

  std::string out = p.take();
  std::string plugins;
  for (const auto& pl : cfg.plugins) plugins += (plugins.empty() ? "" : ", ") + pl.name;
  if (!plugins.empty()) out += "\n# [plugins.*] as in the file: " + plugins + "\n";
  std::string helpers;
  for (const auto& h : cfg.helpers) helpers += (helpers.empty() ? "" : ", ") + h.name;
  out += "\n# [helpers.*] as in the file (" + std::to_string(cfg.helpers.size()) + ")" +
         (helpers.empty() ? "" : ": " + helpers) + "\n";
  return out;
}

}  // namespace schedd
