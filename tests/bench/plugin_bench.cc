// Microbenchmarks of the plugin host: loading and unloading a first-party plugin from the
// build's plugin folder (SCHEDD_PLUGIN_DIR), and the cost of one LoadedExecutor::run through
// the C ABI, for noop (pure overhead) and for shell running `true` (one process spawn).
// Results and the command that reproduces them are in docs/PERFORMANCE.md.
#include <benchmark/benchmark.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "core/plugin_host/plugin_host.h"
#include "core/plugin_host/stop_source.h"

extern char** environ;

namespace schedd {
namespace {

std::filesystem::path plugin_file(const char* name) {
  return std::filesystem::path(SCHEDD_PLUGIN_DIR) / name;
}

// dlopen, manifest checks, executor creation, then destruction and dlclose. The first-party
// plugins are built with -fno-gnu-unique (docs/design.md "Toolchain"), so dlclose really unmaps
// them and every iteration is a cold load from the page cache.
void load_unload(benchmark::State& state, const char* name) {
  const std::filesystem::path file = plugin_file(name);
  for (auto _ : state) {
    PluginHost host;
    if (auto error = host.load_file(file)) {
      state.SkipWithError(error->to_string().c_str());
      break;
    }
    benchmark::DoNotOptimize(host.plugins().data());
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_PluginLoadUnload_Noop(benchmark::State& state) { load_unload(state, "noop.so"); }
BENCHMARK(BM_PluginLoadUnload_Noop)->Unit(benchmark::kMicrosecond);

void BM_PluginLoadUnload_Shell(benchmark::State& state) { load_unload(state, "shell.so"); }
BENCHMARK(BM_PluginLoadUnload_Shell)->Unit(benchmark::kMicrosecond);

RunRequest request(ParamList params) {
  RunRequest r;
  r.execution_id = "bench@1767571200";
  r.name = "bench";
  r.key = "bench";
  r.due = std::chrono::system_clock::time_point(std::chrono::seconds(1767571200));
  r.params = std::move(params);
  return r;
}

// Runs the executor `executor` of plugin file `name` once per iteration with `params`.
void run_executor(benchmark::State& state, const char* name, const char* executor, ParamList params,
                  bool report_slow_share = false) {
  PluginHost host;
  if (auto error = host.load_file(plugin_file(name))) {
    state.SkipWithError(error->to_string().c_str());
    return;
  }
  const Executor* e = host.find(executor);
  if (e == nullptr) {
    state.SkipWithError("executor not found");
    return;
  }
  const RunRequest r = request(std::move(params));
  StopSource stop;
  int64_t over_10ms = 0;
  for (auto _ : state) {
    RunOutcome out = e->run(r, stop);
    if (out.status != RunStatus::kSucceeded) {
      state.SkipWithError(("run failed: " + out.message).c_str());
      break;
    }
    if (out.duration >= std::chrono::milliseconds(10)) ++over_10ms;
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
  if (report_slow_share) {
    // The share of runs that took 10 ms or more (RunOutcome::duration): it separates a child
    // whose exit is noticed at once from one that waits out the shell plugin's 20 ms poll.
    state.counters["share_over_10ms"] =
        benchmark::Counter(static_cast<double>(over_10ms), benchmark::Counter::kAvgIterations);
  }
}

// The host's share of a run: RunRequest to schedd_context, the call through the ABI, the
// result copied back. noop itself does nothing.
void BM_RunNoop(benchmark::State& state) { run_executor(state, "noop.so", "noop", {}); }
BENCHMARK(BM_RunNoop);

// posix_spawn of /bin/true (found in PATH), pipes, supervision until exit and reaping.
// Wall time: the calling thread mostly waits for the child.
void BM_RunShellTrue(benchmark::State& state) {
  // The shell plugin logs each start at debug level; keep the default logger quiet.
  spdlog::set_level(spdlog::level::warn);
  run_executor(state, "shell.so", "shell", {{"command", ParamValue::string("true")}},
               /*report_slow_share=*/true);
}
BENCHMARK(BM_RunShellTrue)->UseRealTime()->Unit(benchmark::kMicrosecond);

// Baseline for BM_RunShellTrue, in the same run: posix_spawnp of `true` and a blocking
// waitpid, with no pipes and no plugin. The ratio of the two is the shell plugin's overhead.
void BM_PosixSpawnTrue(benchmark::State& state) {
  char arg0[] = "true";
  char* argv[] = {arg0, nullptr};
  for (auto _ : state) {
    pid_t pid = -1;
    if (posix_spawnp(&pid, "true", nullptr, nullptr, argv, environ) != 0) {
      state.SkipWithError("posix_spawnp failed");
      break;
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      state.SkipWithError("true did not exit 0");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PosixSpawnTrue)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace schedd
