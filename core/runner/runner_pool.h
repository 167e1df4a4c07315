// Out-of-process execution (docs/design.md §12, docs/sdk.md "Isolation"): RunnerProcess is one
// schedd-runner child serving one plugin; RunnerPool keeps a plugin's warm runners;
// IsolatedExecutor is the Executor the dispatcher calls, which borrows a runner for a run.
//
// A runner is started in its own session with PR_SET_PDEATHSIG(SIGKILL) from one long-lived
// spawner thread (the death signal follows the thread that forked, so it must not be a
// worker that may exit), with the plugin's limits, and with SCHEDD_RUNNER_OF / SCHEDD_NODE
// in its environment so that a later daemon can find what a killed one left running.
//
// Thread-safety: RunnerProcess is used by one thread at a time (the pool hands it out);
// RunnerPool and IsolatedExecutor are thread-safe.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/common/status.h"
#include "core/plugin_host/plugin_host.h"
#include "core/runner/protocol.h"

namespace schedd::runner {

// Limits applied to a plugin's runners (config [plugins.NAME]). Unset: none.
struct RunnerLimits {
  std::optional<uint64_t> memory_bytes;          // RLIMIT_AS of each runner
  std::optional<std::chrono::milliseconds> cpu;  // CPU time of one run (RLIMIT_CPU)
  std::optional<uint64_t> open_files;            // RLIMIT_NOFILE
  std::optional<uid_t> uid;                      // run as (only when the daemon is root)
  std::optional<gid_t> gid;
};

struct RunnerSettings {
  std::filesystem::path runner_binary;  // schedd-runner
  std::filesystem::path plugin_file;
  RunnerLimits limits;
  // How long a run may go on after a stop request before its runner is killed.
  // Default: 5 s.
  std::chrono::milliseconds kill_grace{5000};
  // How long loading the plugin (its static constructors included) may take. Default: 10 s.
  std::chrono::milliseconds load_timeout{10000};
  std::size_t output_tail = 64 * 1024;  // bytes of stdout/stderr kept per run
  int log_rate = 200;                   // log lines a second a run may send
  std::string node;                     // SCHEDD_NODE of the runners
};

// "acme.so (executor sync)": how messages name a plugin.
std::string plugin_label(const std::filesystem::path& plugin_file, std::string_view executor);

class RunnerProcess {
 public:
  // Starts a runner and waits (up to settings.load_timeout) for its HELLO. A refusal of the
  // plugin (LOAD_ERROR), a crash while loading, a protocol error or the time limit is an
  // error naming the plugin file; the runner is then gone.
  static StatusOr<std::unique_ptr<RunnerProcess>> start(const RunnerSettings& settings);
  ~RunnerProcess();  // kills the runner's session if it still runs, and reaps it

  pid_t pid() const { return pid_; }
  const Hello& hello() const { return hello_; }
  uint64_t runs() const { return runs_; }
  // After run(): false when the runner died, was killed or broke the protocol.
  bool healthy() const { return healthy_; }
  // Whether the last run() ended because the runner crashed (not a kill of ours).
  bool crashed() const { return crashed_; }

  // Runs one attempt of `executor` (see Executor::run for stop and kill_grace).
  RunOutcome run(const RunRequest& request, const std::string& executor, StopSource& stop);
  // Sends every item at once and runs them one after another, calling `done` as each ends,
  // in order. Returns how many ended: fewer than items.size() when the runner crashed or
  // was killed (the item it was on got that outcome; the later ones never started).
  std::size_t run_batch(std::span<BatchItem> items, const std::string& executor,
                        const BatchDone& done);

  // Resident memory of the runner, in bytes (from /proc; 0 when unknown).
  uint64_t rss_bytes() const;

 private:
  RunnerProcess() = default;
  // Kills the session and reaps; returns the wait status.
  int kill_and_reap();
  // Reaps after the runner closed its socket (waits up to 1 s, then kills).
  int reap_after_eof();
  std::string describe_exit(int wait_status, std::string_view executor) const;

  RunnerSettings settings_;
  pid_t pid_ = -1;
  int data_fd_ = -1;
  int control_fd_ = -1;
  int wake_fd_ = -1;  // eventfd attached to the run's StopSource
  bool reaped_ = false;
  bool healthy_ = true;
  bool crashed_ = false;
  uint64_t seq_ = 0;
  uint64_t runs_ = 0;
  Hello hello_;
  std::unique_ptr<FrameReader> reader_;
};

struct PoolStats {
  std::string plugin;
  std::size_t runners = 0;  // alive (idle or busy)
  std::size_t busy = 0;
  uint64_t runs = 0;
  uint64_t crashes = 0;
  uint64_t started = 0;
  uint64_t rss_bytes = 0;  // of the idle runners (busy ones are not read while they run)
};

// A plugin's warm runners. A runner serves many runs one after another; the pool grows to
// as many runners as runs of the plugin in flight (so it is sized by the lanes that use
// it), keeps them between runs, replaces a crashed one at once, and backs off (100 ms
// doubling to 5 s) while a plugin keeps crashing. Thread-safe.
class RunnerPool {
 public:
  RunnerPool(RunnerSettings settings, std::unique_ptr<RunnerProcess> first);
  ~RunnerPool();

  // A runner for one run: an idle one, or a new one. Waits out a crash backoff (returns
  // early with kCancelled when `stop` is requested). kUnavailable when the pool is closed or
  // no runner could be started (the message names the plugin).
  StatusOr<std::unique_ptr<RunnerProcess>> acquire(StopSource& stop);
  void release(std::unique_ptr<RunnerProcess> runner);
  // Kills the idle runners and, with `kill_busy`, the sessions of those out on runs (their
  // runs then end at once as if crashed); later acquires fail.
  void close(bool kill_busy = false);
  // A reload loaded the plugin anew: kills the idle runners now and each busy one as it
  // comes back. Acquires still work (a run claimed before the reload gets a runner of its
  // own, which is not kept), so nothing already claimed fails for the swap.
  void retire();

  PoolStats stats() const;
  const RunnerSettings& settings() const { return settings_; }

 private:
  RunnerSettings settings_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<RunnerProcess>> idle_;
  bool closed_ = false;
  bool retiring_ = false;  // retire(): no runner is kept idle
  std::size_t busy_ = 0;
  std::vector<pid_t> busy_pids_;
  uint64_t runs_ = 0;
  uint64_t crashes_ = 0;
  uint64_t started_ = 0;
  uint32_t crashes_in_row_ = 0;
  std::chrono::steady_clock::time_point no_start_before_{};
};

// An executor whose runs happen in its plugin's runners.
class IsolatedExecutor final : public Executor {
 public:
  IsolatedExecutor(ExecutorInfo info, std::shared_ptr<RunnerPool> pool);
  Isolation isolation() const override { return Isolation::kProcess; }
  RunOutcome run(const RunRequest& request, StopSource& stop) const override;
  // One runner for the whole batch: one write carries every run, and results come back as
  // they end (see RunnerProcess::run_batch); what a crash left unstarted goes to a new one.
  void run_batch(std::span<BatchItem> items, const BatchDone& done) const override;
  const void* batch_key() const override { return pool_.get(); }
  const std::shared_ptr<RunnerPool>& pool() const { return pool_; }

 private:
  std::shared_ptr<RunnerPool> pool_;
};

}  // namespace schedd::runner
