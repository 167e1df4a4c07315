#include "core/runner/plugin_loader.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>
#include <thread>

namespace schedd::runner {

std::filesystem::path default_runner_binary() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  for (const auto& candidate : {exe.parent_path() / "schedd-runner",
                                exe.parent_path() / ".." / "lib" / "schedd" / "schedd-runner"}) {
    if (std::filesystem::exists(candidate, ec)) return candidate.lexically_normal();
  }
  return {};
}

namespace {

// A runner of `file` as `options` say, without limits.
RunnerSettings runner_settings(const LoadOptions& options, const std::filesystem::path& file) {
  RunnerSettings s;
  s.runner_binary = options.runner_binary;
  s.plugin_file = file;
  s.load_timeout = options.load_timeout;
  s.kill_grace = options.kill_grace;
  s.node = options.node;
  return s;
}

}  // namespace

Status load_plugins(PluginHost& host, const LoadOptions& options,
                    std::vector<PluginLoadError>& errors) {
  std::error_code ec;
  if (!std::filesystem::is_directory(options.dir, ec)) {
    errors.push_back({options.dir, "plugin_dir is not a directory"});
    return failed_precondition(options.dir.string() + ": plugin_dir is not a directory");
  }
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(options.dir, ec)) {
    if (entry.path().extension() == ".so" && entry.is_regular_file(ec)) {
      files.push_back(entry.path());
    }
  }
  if (ec) {
    errors.push_back({options.dir, "cannot list plugin_dir: " + ec.message()});
    return failed_precondition(options.dir.string() + ": cannot list plugin_dir: " + ec.message());
  }
  std::sort(files.begin(), files.end());
  if (options.runner_binary.empty()) {
    errors.push_back(
        {options.dir, "no schedd-runner found beside the daemon (set [daemon] runner)"});
    return failed_precondition("no schedd-runner to load plugins with");
  }

  // 1. Every file in its own runner, all at once: one slow plugin costs the load time limit
  // once, not once per plugin.
  struct Probe {
    std::filesystem::path file;
    StatusOr<std::unique_ptr<RunnerProcess>> runner = Status(StatusCode::kInternal, "not probed");
  };
  std::vector<Probe> probes(files.size());
  {
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < files.size(); ++i) {
      probes[i].file = files[i];
      threads.emplace_back(
          [&, i] { probes[i].runner = RunnerProcess::start(runner_settings(options, files[i])); });
    }
    for (auto& t : threads) t.join();
  }

  std::vector<bool> refused(files.size(), false);
  auto refuse = [&](std::size_t i, std::string message) {
    if (refused[i]) return;
    refused[i] = true;
    // Not logged here: the caller reports refusals once its log is set up (JSON or text).
    errors.push_back({files[i], std::move(message)});
  };
  for (std::size_t i = 0; i < probes.size(); ++i) {
    if (!probes[i].runner.is_ok()) {
      // The runner's messages start with the file; PluginLoadError adds it again.
      std::string m = probes[i].runner.status().message();
      const std::string prefix = files[i].string() + ": ";
      if (m.starts_with(prefix)) m = m.substr(prefix.size());
      refuse(i, std::move(m));
    }
  }

  // 2. Executor names claimed twice: refused in every plugin that claims them.
  std::map<std::string, std::vector<std::size_t>> claims;
  for (std::size_t i = 0; i < probes.size(); ++i) {
    if (refused[i]) continue;
    for (const auto& e : (*probes[i].runner)->hello().executors) claims[e.name].push_back(i);
  }
  for (const auto& [name, owners] : claims) {
    if (owners.size() < 2) continue;
    std::string list;
    for (std::size_t k = 0; k < owners.size(); ++k) {
      if (k > 0) list += k + 1 == owners.size() ? " and " : ", ";
      list += files[owners[k]].filename().string();
    }
    for (std::size_t i : owners) {
      refuse(i, "duplicate executor \"" + name + "\": provided by " + list +
                    " (none of them is loaded)");
    }
  }

  std::size_t refused_count =
      static_cast<std::size_t>(std::count(refused.begin(), refused.end(), true));
  if (refused_count > 0 && options.on_error == PluginErrorPolicy::kFail) {
    return failed_precondition(std::to_string(refused_count) + " of " +
                               std::to_string(files.size()) + " plugins in " +
                               options.dir.string() + " were refused");
  }

  // 3. Each accepted plugin as configured.
  for (std::size_t i = 0; i < probes.size(); ++i) {
    if (refused[i]) continue;
    std::unique_ptr<RunnerProcess> runner = std::move(*probes[i].runner);
    const Hello& hello = runner->hello();
    PluginRunSettings settings =
        options.settings_for ? options.settings_for(hello.plugin_name) : PluginRunSettings{};
    if (settings.isolation == Isolation::kInProcess) {
      runner.reset();
      if (auto err = host.load_file(files[i])) {
        refuse(i, err->message);
        if (options.on_error == PluginErrorPolicy::kFail) {
          return failed_precondition(files[i].string() + " was refused");
        }
      }
      continue;
    }
    RunnerSettings rs = runner_settings(options, files[i]);
    rs.limits = settings.limits;
    // The probe ran without the plugin's limits: a runner with them replaces it.
    const bool limited = settings.limits.memory_bytes || settings.limits.cpu ||
                         settings.limits.open_files || settings.limits.uid || settings.limits.gid;
    PluginInfo info;
    info.name = hello.plugin_name;
    info.version = hello.plugin_version;
    info.file = files[i];
    info.load_time = hello.load_time;
    std::vector<ExecutorInfo> execs = hello.executors;
    if (limited) runner.reset();
    auto pool = std::make_shared<RunnerPool>(rs, std::move(runner));
    std::vector<std::unique_ptr<Executor>> executors;
    for (auto& e : execs) {
      info.executors.push_back(e.name);
      executors.push_back(std::make_unique<IsolatedExecutor>(std::move(e), pool));
    }
    host.add(std::move(info), std::move(executors));
  }
  return Status::ok();
}

std::vector<std::shared_ptr<RunnerPool>> runner_pools(const PluginHost& host) {
  std::vector<std::shared_ptr<RunnerPool>> out;
  std::set<const RunnerPool*> seen;
  for (const auto* info : host.executors()) {
    const Executor* e = host.find(info->name);
    if (e == nullptr || e->isolation() != Isolation::kProcess) continue;
    const auto& pool = static_cast<const IsolatedExecutor*>(e)->pool();
    if (seen.insert(pool.get()).second) out.push_back(pool);
  }
  return out;
}

}  // namespace schedd::runner
