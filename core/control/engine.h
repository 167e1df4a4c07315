// Engine: the control facade over store, planner and dispatcher, built from a validated
// Config. The CLI's `run` and the HTTP API (later) reach the engine only through here.
//
// Helper runtime state (enable, disable, schedule updates) is kept in the store as
// HelperState, wins over the config file until reset, and survives restarts with a durable
// store (docs/design.md §6).
//
// Thread-safety: all public calls are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/common/clock.h"
#include "core/common/status.h"
#include "core/config/config.h"
#include "core/dispatch/dispatcher.h"
#include "core/planner/planner.h"
#include "core/plugin_host/plugin_host.h"
#include "core/store/store.h"

namespace schedd {

// An ad-hoc execution request (API submission or "run now").
struct SubmitRequest {
  std::string id;  // empty: generated
  ExecOrigin origin = ExecOrigin::kAdhoc;
  std::string name;      // ticket name or a label
  std::string executor;  // required unless `helper` is set
  std::string helper;    // run this helper's executor and params
  std::string key;       // default: the helper's key, else the id
  std::string lane;      // default: the helper's lane, else "default"
  std::optional<int> priority;
  ParamList params;  // validated against the executor's schema by the caller
  std::optional<TimePoint> not_before;
  std::optional<std::chrono::milliseconds> expiry;
  std::optional<std::chrono::milliseconds> timeout;
};

struct SubmitResult {
  Execution execution;
  std::size_t position = 0;  // 1-based in its key's queue
};

// The execution template of helper `h` as `cfg` configures it (its lane's timeout, the
// default retry).
std::shared_ptr<ExecTemplate> template_of(const HelperConfig& h, const Config& cfg);

// How long terminal executions stay in history as `cfg` says ([daemon] history_retention,
// [history] retention).
HistoryRetention history_retention_of(const Config& cfg);
// "1d" or "1d (succeeded 1d, failed 7d)": a retention in words, for reloads and status.
std::string describe_retention(const HistoryRetention& r);

// One lane as it runs now: the dispatcher's size and pause, the store's counts.
struct LaneView {
  std::string name;
  std::size_t workers = 0;  // 0 for a lane only the store knows (another daemon's)
  bool paused = false;
  bool local = true;  // this daemon runs it
  std::size_t running = 0;
  std::size_t queued = 0;  // queued and due
};

// What Engine::reload applied, one line each, and what it could not.
struct ReloadReport {
  bool applied = true;                     // false: the config was refused, nothing changed
  std::vector<std::string> errors;         // why it was refused ("file:line:col: ...")
  std::vector<std::string> changes;        // "helper backup: added", "lane default: 4 -> 8 workers"
  std::vector<std::string> needs_restart;  // "listen: 127.0.0.1:7878 -> 0.0.0.0:7878"
};

// A change of a helper's runtime overrides (Engine::update_helper). Each field: absent =
// unchanged; present and empty = back to the config file's value.
struct HelperUpdate {
  std::optional<std::optional<std::string>> schedule;              // a TOML inline table
  std::optional<std::optional<int>> priority;                      // 1..5
  std::optional<std::optional<std::chrono::milliseconds>> expiry;  // > 0
};

class Engine {
 public:
  // `config` must have passed validate_helpers against `plugins`. Nothing runs until start().
  Engine(const Config& config, Store& store, Clock& clock, const PluginHost& plugins,
         std::string node_id);
  ~Engine();

  // Recovers interrupted executions, plans, and starts dispatching.
  Status start();
  // Graceful stop: no more claims; running executions get `grace` to finish.
  void stop(std::chrono::milliseconds grace);

  // docs/design.md §6. enable returns how many executions it planned; disable how many queued
  // executions it removed; update replaces the queued ones with a plan from `schedule`.
  StatusOr<std::size_t> enable(const std::string& helper);
  StatusOr<std::size_t> disable(const std::string& helper);
  StatusOr<std::size_t> update_schedule(const std::string& helper, const std::string& inline_toml);
  // Applies `update`, validated as the config file is (same messages), in one state change
  // that survives restarts, then re-plans: a changed schedule replaces every planned
  // execution (as update_schedule), a changed priority or expiry replaces those not yet due
  // (due ones keep the values they were planned with). Planned ids are deterministic, so
  // applying the same update twice changes nothing. Returns how many executions it planned.
  // Defined in helper_update.cc.
  StatusOr<std::size_t> update_helper(const std::string& helper, const HelperUpdate& update);
  // Queues one execution of `helper` due now (priority and key as configured).
  StatusOr<SubmitResult> run_now(const std::string& helper);
  // Live reload (docs/operations.md "Reload"): `next` must have passed the same validation as
  // at start-up, against `plugins` (loaded from next's plugin_dir). Helpers added are
  // planned, removed ones lose their queued planned executions, changed ones (schedule,
  // template, enabled, catch-up) are re-planned from now: what is due already runs as
  // planned, what is not yet due is planned anew (the same ids when the schedule is the
  // same). Lanes added or resized in the file are resized here; runs in flight finish on
  // the executors they started with, new runs use `plugins`. Settings that only a restart
  // can change (listen, store, node, lookahead, ...) keep their running values and are
  // named in the report. Earlier configs and plugin hosts are kept until the engine ends,
  // so that references handed out by config() and plugins() stay valid.
  StatusOr<ReloadReport> reload(std::shared_ptr<const Config> next,
                                std::shared_ptr<const PluginHost> plugins);
  StatusOr<SubmitResult> submit(SubmitRequest request);
  // submit() of each request, in order, the store taking them together (Store::submit_many):
  // one result per request; a request that fails does not stop the rest.
  std::vector<StatusOr<SubmitResult>> submit_many(std::vector<SubmitRequest> requests);
  // submit() that returns once the store accepted the execution, before it is durable;
  // `on_durable` says when the acceptance may be acknowledged (Store::submit_deferred).
  StatusOr<SubmitResult> submit_deferred(SubmitRequest request, Store::DurableCallback on_durable);
  // Cancels a queued execution, or requests a cooperative stop of a running one here
  // (kFailedPrecondition either way for a running one; with `stop_running` false no stop is
  // requested).
  StatusOr<Execution> cancel(const std::string& id, bool stop_running = true);

  // Observers that may be added while the engine runs (the API's metrics and live stats);
  // called like DispatchObserver hooks, from dispatcher threads without core locks held, so
  // they must be cheap. remove_observer waits for calls in progress; it must not be called
  // from an observer. Returns an id for remove_observer.
  uint64_t add_observer(DispatchObserver observer);
  void remove_observer(uint64_t id);

  Store& store() { return store_; }
  Planner& planner() { return *planner_; }
  Dispatcher& dispatcher() { return *dispatcher_; }
  // The current config and plugins (replaced by reload()).
  const Config& config() const { return *config_.load(std::memory_order_acquire); }
  const PluginHost& plugins() const { return *plugins_.load(std::memory_order_acquire); }
  Clock& clock() { return clock_; }
  const std::string& node_id() const { return node_id_; }
  // This daemon's lanes (scaled, paused) with the store's counts, then lanes only the store
  // knows (another daemon's, in distributed mode).
  std::vector<LaneView> lanes();
  // The first instant after `after` at which helper `h` fires on its schedule as it stands
  // (a stored override wins over the config), whatever the lookahead has planned; nullopt
  // when it never fires again.
  std::optional<TimePoint> next_fire(const HelperConfig& h, TimePoint after) const;

 private:
  std::shared_ptr<const ExecTemplate> make_template(const HelperConfig& h) const;
  // make_template with the stored priority and expiry overrides, if any (helper_update.cc).
  std::shared_ptr<const ExecTemplate> helper_template(
      const HelperConfig& h, const std::optional<HelperState>& state) const;
  // The execution a submission asks for, validated (helper, executor, lane, priority).
  StatusOr<Execution> prepare(SubmitRequest req, TimePoint now);
  Status apply_state(const HelperConfig& h);
  // Checks an inline-TOML schedule for `helper` as the config file checks one.
  Status check_schedule(const std::string& helper, const std::string& inline_toml) const;
  // `h`'s schedule with the stored override, if any, applied.
  StatusOr<Schedule> effective_schedule(const HelperConfig& h,
                                        const std::optional<HelperState>& state) const;
  // Re-applies helpers whose stored state another daemon changed (shared store), off the
  // store's and the planner's threads.
  void queue_refresh(const std::string& name);
  void refresh_loop();

  std::atomic<const Config*> config_;
  Store& store_;
  Clock& clock_;
  std::atomic<const PluginHost*> plugins_;
  // What reload() installed, and every config and host before it (see reload()).
  std::vector<std::shared_ptr<const Config>> configs_;
  std::vector<std::shared_ptr<const PluginHost>> hosts_;
  std::mutex hosts_mu_;
  std::vector<const PluginHost*> all_hosts_;  // the first (not owned) and hosts_; hosts_mu_
  std::string node_id_;
  std::unique_ptr<Planner> planner_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::mutex mu_;  // serializes enable/disable/update
  uint64_t adhoc_counter_ = 0;

  std::mutex refresh_mu_;
  std::condition_variable refresh_cv_;
  std::set<std::string> refresh_;  // helper names to re-apply
  bool refresh_stop_ = false;
  std::thread refresher_;

  // Observers added through add_observer; one DispatchObserver registered at construction
  // fans out to them under a shared lock.
  std::shared_mutex observers_mu_;
  std::vector<std::pair<uint64_t, DispatchObserver>> observers_;
  uint64_t next_observer_ = 0;
};

}  // namespace schedd
