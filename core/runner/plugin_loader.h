// Loading a plugin folder the way the daemon does (docs/sdk.md "What happens at load"):
//
//   1. every *.so in the folder is opened by its own schedd-runner, all at once, each within
//      the load time limit: the runner checks the manifest before it creates anything, so no
//      plugin code runs in the daemon before its manifest was accepted;
//   2. executor names claimed by more than one plugin are refused in every plugin that
//      claims them, with one message naming all their files, so the outcome does not depend
//      on file order;
//   3. each accepted plugin then runs as configured: out of process, its first runner kept
//      warm in a RunnerPool; in process, loaded into the daemon with Boost.DLL.
//
// Thread-safety: load_plugins is called once, from one thread.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/common/status.h"
#include "core/plugin_host/plugin_host.h"
#include "core/runner/runner_pool.h"

namespace schedd::runner {

// How one plugin runs, decided from its manifest name.
struct PluginRunSettings {
  Isolation isolation = Isolation::kProcess;
  RunnerLimits limits;
};

struct LoadOptions {
  std::filesystem::path dir;
  PluginErrorPolicy on_error = PluginErrorPolicy::kFail;
  std::filesystem::path runner_binary;
  std::chrono::milliseconds load_timeout{10000};
  std::chrono::milliseconds kill_grace{5000};
  std::string node;  // SCHEDD_NODE of the runners
  // Settings of the plugin named `name` (its manifest name). Default: out of process, no
  // limits.
  std::function<PluginRunSettings(const std::string& name)> settings_for;
};

// Loads `options.dir` into `host` (which must be empty). Every refusal is appended to
// `errors`; with kFail any refusal makes the Status non-ok (the host then holds nothing
// usable), with kSkip the refused plugins are left out.
Status load_plugins(PluginHost& host, const LoadOptions& options,
                    std::vector<PluginLoadError>& errors);

// The pools of the out-of-process plugins in `host` (for stats and shutdown).
std::vector<std::shared_ptr<RunnerPool>> runner_pools(const PluginHost& host);

// The schedd-runner beside the running program (/proc/self/exe's folder), or in
// ../lib/schedd/ from it; empty when neither exists.
std::filesystem::path default_runner_binary();

}  // namespace schedd::runner
