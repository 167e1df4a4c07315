// Shared by the fuzz targets: the first-party plugins' executor schemas (noop, sleep, shell,
// ticket) as the daemon holds them, without loading a plugin (the fuzz preset's clang ASan
// build cannot link plugins, and fuzzing a plugin is not the point), and executors with those
// schemas that succeed at once.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/plugin_host/plugin_host.h"

namespace schedd::fuzz {

inline std::vector<ExecutorInfo> executor_schemas() {
  auto param = [](const char* name, ParamType type, bool required,
                  std::optional<std::string> def = std::nullopt) {
    ParamSpec p;
    p.name = name;
    p.type = type;
    p.required = required;
    p.default_toml = std::move(def);
    return p;
  };
  std::vector<ExecutorInfo> out(4);
  out[0].name = "noop";
  out[1].name = "sleep";
  out[1].params = {param("duration", ParamType::kDuration, false, "\"1s\"")};
  out[2].name = "shell";
  out[2].params = {param("command", ParamType::kString, true),
                   param("args", ParamType::kStringList, false),
                   param("env", ParamType::kStringMap, false),
                   param("max_output", ParamType::kInt, false, "65536"),
                   param("ratio", ParamType::kDouble, false, "0.5"),
                   param("inherit_env", ParamType::kBool, false, "true")};
  out[3].name = "ticket";
  out[3].params = {param("message", ParamType::kString, false, "\"\"")};
  for (auto& e : out) {
    e.plugin_name = "fuzz";
    e.plugin_version = "1.0.0";
  }
  return out;
}

// An executor of one of those schemas; a run succeeds at once.
class FuzzExecutor final : public Executor {
 public:
  explicit FuzzExecutor(ExecutorInfo info) { info_ = std::move(info); }
  Isolation isolation() const override { return Isolation::kInProcess; }
  RunOutcome run(const RunRequest&, StopSource&) const override {
    RunOutcome out;
    out.status = RunStatus::kSucceeded;
    return out;
  }
};

// Adds the executors to `host` as one plugin named "fuzz".
inline void add_executors(PluginHost& host) {
  PluginInfo plugin;
  plugin.name = "fuzz";
  plugin.version = "1.0.0";
  std::vector<std::unique_ptr<Executor>> executors;
  for (auto& info : executor_schemas()) {
    plugin.executors.push_back(info.name);
    executors.push_back(std::make_unique<FuzzExecutor>(std::move(info)));
  }
  host.add(std::move(plugin), std::move(executors));
}

}  // namespace schedd::fuzz
