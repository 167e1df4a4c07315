// PluginHost loads executor plugins (shared libraries built against sdk/) with Boost.DLL,
// checks each manifest before calling anything in the library, and keeps every executor
// together with the library it came from so that no plugin object outlives its code.
//
// Thread-safety: loading is single-threaded (start-up). After that a PluginHost is read-only
// and LoadedExecutor::run may be called from any number of threads at once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/params.h"
#include "core/common/status.h"
#include "core/plugin_host/stop_source.h"

namespace schedd {

// Why a plugin file was refused. `message` never repeats the file.
struct PluginLoadError {
  std::filesystem::path file;
  std::string message;
  // "<file>: <message>"
  std::string to_string() const { return file.string() + ": " + message; }
};

enum class PluginErrorPolicy {
  kFail,  // any refusal stops start-up (default)
  kSkip,  // refused plugins are skipped with a warning; the rest load
};

// Mirrors schedd_origin.
enum class Origin : int32_t { kHelper = 1, kTicket = 2, kAdhoc = 3 };

// Mirrors schedd_status.
enum class RunStatus : int32_t {
  kSucceeded = 0,
  kFailed = 1,
  kFailedPermanent = 2,
  kCancelled = 3,
};
const char* run_status_name(RunStatus s);

// One attempt to run, as handed to an executor.
// The runner process an out-of-process run was handed to (RunRequest::on_runner).
struct RunnerInfo {
  int64_t pid = 0;
  std::string plugin;   // the plugin's manifest name
  std::string version;  // its version
  uint64_t runs = 0;    // runs the runner served before this one
};

struct RunRequest {
  std::string execution_id;
  Origin origin = Origin::kHelper;
  std::string name;  // helper or ticket name
  std::string key;
  std::string lane = "default";
  uint32_t attempt = 1;
  std::chrono::system_clock::time_point due;
  std::optional<std::chrono::system_clock::time_point> deadline;
  ParamList params;  // validated; defaults filled in
  // The claim's fencing token (0: the store has none). Plugins with external side effects
  // pass it along so that a stale run's writes can be refused (docs/redis.md).
  uint64_t fence = 0;
  // Out of process: the CLOCK_MONOTONIC instant (ns; 0: none) by which the run must have
  // ended whatever the daemon does meanwhile (a lease's safe end, Redis mode); the runner
  // enforces it itself. Owned by the caller, who may move it later and then calls
  // StopSource::wake() so that the new value reaches the runner.
  const std::atomic<int64_t>* hard_deadline_ns = nullptr;
  // Optional observers; called from the thread running the executor (or its helpers).
  std::function<void(double fraction, std::string_view message)> on_progress;
  // A log line of the run. Unset: the line goes to the daemon's log, tagged.
  std::function<void(int level, std::string_view message)> on_log;
  // Out of process: called once the run has a runner, before the runner starts it.
  std::function<void(const RunnerInfo&)> on_runner;
};

struct RunOutcome {
  RunStatus status = RunStatus::kFailed;
  std::string message;
  std::string output;
  std::chrono::nanoseconds duration{0};
};

class Plugin;

// One attempt of a batch (Executor::run_batch).
struct BatchItem {
  const RunRequest* request;
  StopSource* stop;
};
// Called as each attempt of a batch ends, with its index in the batch.
using BatchDone = std::function<void(std::size_t index, RunOutcome outcome)>;

// Where an executor's runs happen (docs/design.md §12, docs/sdk.md "Isolation").
enum class Isolation {
  kProcess,    // in a schedd-runner process: crashes, hangs and leaks stay there
  kInProcess,  // on the daemon's worker thread: fastest, but a crash is the daemon's
};

// One executor, however it runs. Thread-safe: run() may be called from many threads at once.
class Executor {
 public:
  virtual ~Executor() = default;
  const ExecutorInfo& info() const { return info_; }
  virtual Isolation isolation() const = 0;
  // Runs one attempt and returns when it has ended. `stop` is the token the executor sees.
  // Out of process the attempt is also ended by force kill_grace after a stop request, and
  // at request.hard_deadline. An unrecognised status from the plugin is a permanent failure.
  virtual RunOutcome run(const RunRequest& request, StopSource& stop) const = 0;
  // Runs several attempts one after another, calling `done` as each ends. Out of process a
  // batch costs one round trip to a runner, not one per attempt. Default: run() each.
  virtual void run_batch(std::span<BatchItem> items, const BatchDone& done) const {
    for (std::size_t i = 0; i < items.size(); ++i) done(i, run(*items[i].request, *items[i].stop));
  }
  // Executors with the same non-null key may share a batch. Default: none.
  virtual const void* batch_key() const { return nullptr; }

 protected:
  ExecutorInfo info_;
};

// One executor of a plugin loaded into this process. Holds a reference to its library.
class LoadedExecutor final : public Executor {
 public:
  Isolation isolation() const override { return Isolation::kInProcess; }
  // Runs on the calling thread; request.hard_deadline is not enforced (nothing can stop a
  // thread that will not return).
  RunOutcome run(const RunRequest& request, StopSource& stop) const override;

 private:
  friend class PluginHost;
  LoadedExecutor() = default;
  std::shared_ptr<Plugin> plugin_;  // keeps the library mapped while this exists
  const void* def_ = nullptr;       // const schedd_executor_def*, inside the library
  void* instance_ = nullptr;        // from def->create
};

// What `schedd plugins` prints of one loaded plugin.
struct PluginInfo {
  std::string name;
  std::string version;
  std::filesystem::path file;
  std::vector<std::string> executors;
  std::chrono::microseconds load_time{0};
};

class PluginHost {
 public:
  PluginHost();
  ~PluginHost();
  PluginHost(const PluginHost&) = delete;
  PluginHost& operator=(const PluginHost&) = delete;

  // Loads every regular file ending in ".so" in `dir`, in name order. Every refusal is
  // appended to `errors` (all of them, not just the first). Returns a non-ok Status (naming
  // the number of refusals) when `policy` is kFail and anything was refused; with kSkip the
  // refused files are left out and the rest stay loaded.
  Status load_dir(const std::filesystem::path& dir, PluginErrorPolicy policy,
                  std::vector<PluginLoadError>& errors);

  // Loads one plugin file. On refusal returns the error and changes nothing.
  std::optional<PluginLoadError> load_file(const std::filesystem::path& file);

  // Adds executors that run elsewhere (out of process), with their plugin's description.
  // The caller checked that no name is already taken.
  void add(PluginInfo plugin, std::vector<std::unique_ptr<Executor>> executors);

  // nullptr when no loaded plugin provides `name`.
  const Executor* find(std::string_view name) const;
  std::vector<const ExecutorInfo*> executors() const;
  const std::vector<PluginInfo>& plugins() const { return plugins_; }

 private:
  std::vector<PluginInfo> plugins_;
  std::vector<std::unique_ptr<Executor>> executors_;
};

}  // namespace schedd
