// Dispatcher: claims ready executions from the store and runs them on bounded per-lane worker
// pools (docs/design.md §1-§4, §10-§12). One loop thread sleeps on the injected Clock until the
// earliest instant at which something can change (next due, next expiry, next retry, a
// timeout, the next planning round) or until poked (a completion, an API call): it never polls.
//
// Thread-safety: all public calls are thread-safe. Plugins are called on worker threads with
// no core lock held.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/common/clock.h"
#include "core/common/log_rate.h"
#include "core/common/status.h"
#include "core/planner/planner.h"
#include "core/plugin_host/plugin_host.h"
#include "core/plugin_host/stop_source.h"
#include "core/store/store.h"

namespace schedd {

struct LaneSpec {
  std::string name;
  std::size_t workers = 4;
};

// Observer hooks (metrics, tests). Called from the loop or worker threads without core locks
// held; must be cheap and thread-safe.
//
// In on_claim, `started` is the instant the store claimed the execution at (the `now` given
// to Store::claim, which checked expiry and not_before against it). The clock may read later
// by the time the hook runs: a claim made just before the clock moves past due + expiry was
// on time, so judge a claim by `started`, not by the clock.
struct DispatchObserver {
  std::function<void(const Execution&)> on_claim{};  // claimed, about to start
  std::function<void(const Execution&)> on_start{};  // executor called (worker thread)
  std::function<void(const Execution&, const Completion&)>
      on_finish{};                                     // attempt ended, before the store records it
  std::function<void(const Execution&)> on_expired{};  // also skipped ones go to on_skipped
  std::function<void(const Execution&)> on_skipped{};
  // A running execution reported progress (worker or plugin thread). Not called more than
  // about 20 times a second per run: reports in between only update RunProgress.
  std::function<void(const Execution&, const struct RunProgress&)> on_progress{};
};

// What a running execution last reported: its progress and its latest log lines.
struct RunProgress {
  double fraction = -1;  // [0,1]; negative: unknown
  std::string message;
  TimePoint at{};  // when it was reported (the dispatcher's clock)
  // The run's latest log lines ("LEVEL message"), oldest first; at most kLogLines.
  std::vector<std::string> log;
  static constexpr std::size_t kLogLines = 20;
  // What a run may log: lines a second (more are counted and reported as "N log lines
  // dropped"), and bytes a line (longer lines are cut, saying how long they were). A plugin
  // that logs in a tight loop costs the daemon's log a bounded rate, in process as out of
  // process (where the runner applies the same rate before the daemon sees the lines).
  static constexpr int kLogRate = 200;
  static constexpr std::size_t kLogLineBytes = 4096;
};

struct DispatcherOptions {
  std::vector<LaneSpec> lanes;  // must include "default"
  std::string node_id = "local";
  std::chrono::milliseconds expand_every = std::chrono::minutes(5);
  // How long terminal executions stay in history, per status; pruned every expand_every.
  // Default: 24 h for every status.
  HistoryRetention history_retention{};
  // How long a run may go on after a stop request. Out of process its runner is killed
  // then (IsolatedExecutor); an in-process run that has not returned by then has its worker
  // written off: the lane gets a new worker, the run keeps its key until it returns.
  // Default: 5 s.
  std::chrono::milliseconds kill_grace = std::chrono::seconds(5);
  // With a store that leases claims (Redis): a run must end this long before its lease
  // lapses on this daemon's clock (the clock skew allowed between daemons). A run whose
  // lease was not renewed is asked to stop at lease end - margin - min(kill_grace,
  // (lease - margin) / 2) and ended at lease end - margin: out of process by its runner
  // (which enforces it even while this daemon is paused), in process by ending the daemon
  // (on_lease_breach). Default: 1 s.
  std::chrono::milliseconds lease_margin = std::chrono::seconds(1);
  // Called when an in-process run is still going at its lease's hard end: nothing else can
  // stop it, so the default logs and ends the process (exit code 70).
  std::function<void(const std::string& id)> on_lease_breach;
  // Called by stop() when `grace` ran out with runs still going: ends what can be ended
  // (kills the runners), so that stop() returns on time. Optional.
  std::function<void()> on_grace_expired;
  bool log_transitions = true;
};

class Dispatcher {
 public:
  // `executors` finds an executor by name (nullptr: unknown, the attempt fails permanently).
  using ExecutorLookup = std::function<const Executor*(std::string_view)>;

  Dispatcher(Store& store, Planner& planner, Clock& clock, ExecutorLookup executors,
             DispatcherOptions options);
  ~Dispatcher();  // stop(std::chrono::seconds(0)) if still running

  void add_observer(DispatchObserver observer);  // before start()

  // Starts the loop and the worker threads.
  void start();
  // Stops claiming and requests the stop of every running execution at once (recorded as
  // interrupted and re-queued per their retry policy), then waits up to `grace` in all. Runs
  // still going then are ended through on_grace_expired; an in-process run that still has
  // not returned a second later is recorded as interrupted and left behind with its worker
  // thread (the process is about to exit). Returns within about grace + 1 s.
  void stop(std::chrono::milliseconds grace);

  // Wakes the loop: something changed (submission, enable, update).
  void poke();
  // The store renewed these runs' leases until `until` (StoreEvents::leases_renewed).
  void leases_renewed(const std::vector<std::string>& ids, TimePoint until);
  // poke() for one new queued execution that is not claimable before `not_before`: does
  // nothing while the loop sleeps until `not_before` or earlier anyway (it recomputes its
  // next event when it wakes), so a stream of submissions for later does not keep the loop
  // spinning.
  void poke_for(TimePoint not_before);

  // Requests a cooperative stop of a running execution (cancel, overlap = replace). Returns
  // false when it is not running here.
  bool request_stop(const std::string& id, ExecStatus as = ExecStatus::kCancelled);

  // For tests: blocks until the loop has caught up with the clock's current time and no
  // execution is running or claimable, or `timeout` of real time passes. Returns whether
  // it became idle.
  bool wait_idle(std::chrono::milliseconds timeout);
  // For tests: like wait_idle, but executions for which `keeps_running` is true may still be
  // running (they wait for a timeout or cancel), provided no stop was requested of them.
  bool wait_quiet(std::chrono::milliseconds timeout,
                  const std::function<bool(const Execution&)>& keeps_running);

  std::size_t running() const;
  // Draining, and nothing runs or is being claimed: a claim that reserved its workers just
  // before the drain began still starts its runs, so running() == 0 alone is not enough.
  bool drained() const;

  // Lanes at run time (docs/operations.md "Scale, pause and drain"). A lane's `workers` is
  // its size: claims never exceed it. Scaling down lets running executions finish; the
  // extra workers leave as they become free. A paused lane and a draining daemon claim
  // nothing (expiries and overlap decisions still happen on time); what runs finishes.
  struct LaneStatus {
    std::string name;
    std::size_t workers = 0;  // its size
    std::size_t threads = 0;  // worker threads now (more than `workers` while scaling down)
    std::size_t busy = 0;     // claimed and not completed
    bool paused = false;
  };
  std::vector<LaneStatus> lanes() const;
  // Each worker of a lane as it is now (GET /v1/lanes/{lane}/workers): idle since when, or
  // the run it is on. A snapshot taken under the dispatcher's lock in one pass over the lane's
  // workers and the runs in flight; workers record nothing extra per run for it.
  struct WorkerRun {
    Execution execution;                // as claimed, `started` set
    std::optional<TimePoint> deadline;  // its timeout
    bool stop_requested = false;        // a cancel, timeout or shutdown asked it to stop
    RunProgress progress;               // its last report (no log lines)
    std::optional<RunnerInfo> runner;   // out of process, once it has a runner
  };
  struct WorkerView {
    uint64_t number = 0;     // 1, 2, ... in the order the lane's workers were started
    TimePoint idle_since{};  // while idle: since its last run ended (or it started)
    // Its runs: empty while idle; more than one when it runs a batch (short out-of-process
    // runs handed to one runner together, run one after another).
    std::vector<WorkerRun> runs;
    // Replaced after its in-process run ignored a stop for kill_grace: it leaves when that
    // run returns, and is not one of the lane's `workers` meanwhile.
    bool written_off = false;
  };
  struct LaneWorkers {
    std::vector<WorkerView> workers;  // by number
    std::size_t waiting = 0;          // claimed runs waiting for a free worker (claim-ahead)
  };
  // nullopt for an unknown lane.
  std::optional<LaneWorkers> lane_workers(const std::string& lane) const;
  // Sets `lane`'s size (1..kMaxWorkers), adding the lane if it is new. Returns the old size
  // (0 for a new lane).
  StatusOr<std::size_t> set_lane_workers(const std::string& lane, std::size_t workers);
  // Pauses or resumes a lane. kNotFound for an unknown lane.
  Status set_lane_paused(const std::string& lane, bool paused);
  // Drain: stop claiming on every lane until undrained; running executions finish.
  void set_draining(bool on);
  bool draining() const;
  static constexpr std::size_t kMaxWorkers = 1024;
  // The steady_clock instant at which the loop last began a turn. A watchdog that poke()s
  // the loop and then sees this move on knows the loop is not wedged (systemd WATCHDOG=1).
  std::chrono::steady_clock::time_point heartbeat() const {
    return std::chrono::steady_clock::time_point(
        std::chrono::steady_clock::duration(heartbeat_.load(std::memory_order_acquire)));
  }
  // For tests only: with `on`, the loop stops at the top of its next turn (no claims, no
  // heartbeat) until called with false or stop(), as a loop wedged in a store call would.
  void wedge_loop_for_test(bool on);
  // How long terminal executions stay in history from now on (a reload). The loop prunes with
  // it at once, and then every expand_every.
  void set_history_retention(HistoryRetention retention);
  HistoryRetention history_retention() const;
  // What the running execution `id` last reported; nullopt when it is not running here.
  std::optional<RunProgress> progress(const std::string& id) const;
  // One line of internal state, for diagnostics (tests, status).
  std::string debug_state() const;
  // Times a worker woke and found nothing to take (tests, diagnostics): a claim wakes one
  // worker, and a worker that leaves work behind wakes the next.
  uint64_t idle_wakeups() const;
  const DispatcherOptions& options() const { return options_; }

 private:
  // One claimed attempt, in `running_` from claim until its worker records the outcome. Only
  // that worker erases it, so the worker may hold a reference to it meanwhile; `execution` is
  // not changed after the worker reads it, so the worker reads it without mu_.
  struct Running {
    Execution execution;
    StopSource stop;                    // node-based map: never moves
    std::optional<TimePoint> deadline;  // the run's timeout on the wall clock, for the plugin
    // The same timeout in elapsed time (Clock::steady_now), which the dispatcher enforces: a
    // wall-clock step neither cuts a run short nor lets it overrun.
    std::optional<std::chrono::steady_clock::time_point> timeout_at;
    std::optional<ExecStatus> stop_reason;  // why a stop was requested
    // When it was requested, in real time: kill_grace is real time even on a manual clock.
    std::optional<std::chrono::steady_clock::time_point> stop_at;
    uint64_t durable_token = 0;          // the store's token of the claim (wait_durable)
    bool in_process = false;             // its executor runs on the worker thread
    const Executor* executor = nullptr;  // looked up at claim; nullptr: unknown
    bool written_off = false;            // its worker was replaced (see kill_grace)
    bool abandoned = false;              // recorded by stop(); the worker records nothing
    std::thread::id worker;              // the thread running it, once started
    RunProgress progress;                // guarded by mu_
    std::chrono::steady_clock::time_point progress_sent{};  // last on_progress call
    // The log budget (guarded by mu_): lines dropped over it are reported in one record when
    // their one-second window ends or the run does.
    LogRateWindow log_rate{RunProgress::kLogRate};
    // Out of process: the CLOCK_MONOTONIC instant (ns) by which the run must end; 0: none.
    std::atomic<int64_t> hard_deadline_ns{0};
    std::optional<TimePoint> lease_until;  // its lease (store's clock), when leased
    bool breached = false;                 // in process, still running at its lease's end
    std::optional<RunnerInfo> runner;      // out of process, once it has one; guarded by mu_
  };
  // One worker thread of a lane, for lane_workers(). Guarded by mu_; a node of Lane::slots
  // that its thread holds a reference to until it is joined.
  struct WorkerSlot {
    uint64_t number = 0;
    std::thread::id id{};    // set by the thread as it starts
    TimePoint idle_since{};  // set as it starts and after each run
    bool left = false;       // the thread returned (scaled down, written off, shutting down)
  };
  using RunningMap = std::map<std::string, Running>;
  struct Lane {
    LaneSpec spec;
    std::deque<RunningMap::iterator> queue;  // claimed, waiting for a worker of this lane
    std::size_t busy = 0;                    // claimed (or reserved for a claim) and not completed
    std::size_t written_off = 0;             // runs whose worker was replaced; still in `busy`
    // Claim-ahead (Store::claim_ahead): runs measured in this lane, and their mean duration
    // (exponentially weighted). Only lanes of short runs claim ahead of free workers.
    uint64_t runs = 0;
    double mean_run_us = 0;
    // Its latest run was of an executor that batches (out of process): short runs of such
    // lanes claim ahead, so that a worker can hand its runner several at once.
    bool batchable = false;
    std::condition_variable cv;  // this lane's workers wait here
    std::vector<std::thread> threads;
    // Workers in its loop that are not written off. More than spec.workers after a scale
    // down: the extra ones leave when free, and put their id in `exited` to be joined.
    std::size_t live = 0;
    std::vector<std::thread::id> exited;
    bool paused = false;
    std::list<WorkerSlot> slots;  // one per thread in `threads`, in start order
    uint64_t next_number = 0;
  };

  void loop();
  // Makes the loop take another turn at once (it recomputes its wake-up); holds mu_.
  void poke_locked();
  // Drops history past its retention at `now` (the loop, without mu_).
  void prune_history(TimePoint now);
  void worker(Lane& lane, WorkerSlot& slot);
  // Stops leased runs whose lease was not renewed and ends the daemon under an in-process
  // one at its lease's hard end; sets `next_deadline` to the next such instant if earlier
  // (mu_ held). Called by the loop and by the lease guard, which never calls the store.
  void check_leases_locked(TimePoint now, std::optional<TimePoint>& next_deadline);
  void lease_guard();
  // Starts one more worker thread for `lane` (mu_ held).
  void add_worker_locked(Lane& lane);
  // The lease's hard end of `r` as a CLOCK_MONOTONIC instant for its runner (mu_ held).
  void set_hard_deadline_locked(Running& r, TimePoint now);
  // Requests the stop of a running execution (mu_ held).
  void request_stop_locked(Running& r, ExecStatus as, TimePoint now);
  // Runs one claimed attempt and records it; returns how long the executor ran (not counting
  // the wait for the claim to be durable), for claim-ahead.
  // `written_off` says whether its worker was replaced meanwhile (the thread then leaves).
  // `begun`: the worker already started it under mu_ (begin_run_locked's answer).
  std::chrono::nanoseconds run_one(RunningMap::iterator it, bool& written_off,
                                   std::optional<bool> begun = std::nullopt);
  // Runs claimed attempts of one batching executor in one batch (Executor::run_batch).
  // Returns how long the batch took.
  std::chrono::nanoseconds run_batch(const std::vector<RunningMap::iterator>& its);
  // The parts of run_one: start (false: shutting down, not started), the request, the end.
  bool begin_run(Running& r);
  bool begin_run_locked(Running& r, bool shutting_down);  // mu_ held
  void fill_request(Running& r, RunRequest& req);
  // Logs that `dropped` of r's log lines went over RunProgress::kLogRate.
  void log_dropped(const Execution& e, uint64_t dropped);
  void end_run(RunningMap::iterator it, const RunOutcome& outcome, bool& written_off);
  Completion finish(const Running& r, const RunOutcome& outcome, TimePoint now) const;
  void log_claim_result(const ClaimResult& r);
  // Claims up to the lane's free workers at `now` and queues them for its workers. Called by
  // the loop and by workers that just finished. Returns how many were claimed. With
  // `housekeeping` a full lane still calls the store (max 0) so that expiries and overlap
  // decisions happen on time.
  std::size_t claim_for(Lane& lane, TimePoint now, bool housekeeping);
  // claim_for with mu_ held by `lock` on entry and on return (released for the store call).
  std::size_t claim_for_locked(Lane& lane, TimePoint now, bool housekeeping,
                               std::unique_lock<std::mutex>& lock);
  // How many claims the lane may hold beyond its workers (mu_ held).
  std::size_t ahead_for(const Lane& lane) const;

  Store& store_;
  Planner& planner_;
  Clock& clock_;
  ExecutorLookup executors_;
  DispatcherOptions options_;
  std::vector<DispatchObserver> observers_;
  const std::size_t claim_ahead_;  // the store's Store::claim_ahead()

  mutable std::mutex mu_;
  std::condition_variable loop_cv_;  // the loop waits here (through clock_)
  std::condition_variable idle_cv_;
  bool poked_ = false;
  bool stopping_ = false;      // no more claims
  bool workers_exit_ = false;  // workers leave when their queue is empty
  bool draining_ = false;      // set_draining: no claims on any lane
  bool loop_idle_ = false;     // the loop is waiting and found nothing to do at `idle_at_`
  TimePoint idle_at_{};
  TimePoint wake_at_{};  // while loop_idle_: when the loop wakes by itself
  std::map<std::string, std::unique_ptr<Lane>> lanes_;
  RunningMap running_;
  RunningMap empty_running_;       // never filled: iterated instead of running_ (see loop)
  std::size_t with_deadline_ = 0;  // entries of running_ with a deadline
  std::size_t with_stop_ = 0;      // entries of running_ with a stop request
  std::size_t with_lease_ = 0;     // entries of running_ with a lease
  std::size_t completing_ = 0;     // attempts out of running_ whose completion is being recorded
  // Workers that recorded a completion and are about to claim their lane's next execution
  // (between giving back their slot and reserving it again): wait_quiet is not quiet meanwhile.
  std::size_t refilling_ = 0;
  uint64_t idle_wakeups_ = 0;         // guarded by mu_; see idle_wakeups()
  std::condition_variable guard_cv_;  // the lease guard waits here (through clock_)
  bool guard_exit_ = false;
  std::thread loop_thread_;
  std::thread guard_thread_;
  bool started_ = false;
  HistoryRetention retention_;  // guarded by mu_
  bool prune_now_ = false;      // set_history_retention: the loop prunes on its next turn
  bool wedged_ = false;         // wedge_loop_for_test; guarded by mu_
  std::atomic<std::chrono::steady_clock::rep> heartbeat_{0};  // see heartbeat()
};

}  // namespace schedd
