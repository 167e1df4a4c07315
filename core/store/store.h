// Store: the seam between one machine and many (docs/design.md "Shape"). It holds the lookahead
// set, every execution's state, helper runtime state and history, and makes each transition
// one call. The in-memory store serializes under one mutex; the SQLite-backed embedded store
// adds durability; the Redis store does each call in one Lua script.
//
// Ordering contract for claim (docs/design.md §1, §2): only the head of each key's queue is
// eligible, the head being the queued execution with the smallest (due, seq); among eligible
// heads that are ready (not_before <= now) and whose key is not running, the lane's claims
// go by priority (1 first), then due, then seq.
//
// Thread-safety: every implementation is safe to call from any number of threads.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/common/clock.h"
#include "core/common/status.h"
#include "core/store/execution.h"

namespace schedd {

// What claim() did besides claiming.
struct ClaimResult {
  std::vector<Execution> claimed;  // now running, keys locked; in claim order
  std::vector<Execution> expired;  // moved to expired (not started by due + expiry)
  std::vector<Execution> skipped;  // overlap = skip: came due while the helper's key was running
  // overlap = replace: came due while these were running; the caller should request a stop.
  std::vector<std::string> replace;
  // A durable store returns claims before they are on disk; the dispatcher passes this to
  // wait_durable() before it starts any of them, so that a run never starts unrecorded.
  uint64_t durable_token = 0;
  // A store with leases (Redis): the instant (the store's clock) until which the claims'
  // leases hold unless renewed; another daemon may take their keys once it passed.
  std::optional<TimePoint> lease_until;
};

// How an attempt ended, as the dispatcher reports it.
struct Completion {
  ExecStatus status = ExecStatus::kSucceeded;  // terminal status of this attempt
  bool retry = false;  // re-queue as attempt + 1 at `retry_at` instead of finishing
  TimePoint retry_at{};
  TimePoint finished{};
  std::string message{};
  std::string output{};
};

struct ExecutionFilter {
  std::optional<ExecStatus> status{};
  std::optional<std::string> name{};  // helper or ticket name
  std::optional<std::string> key{};
  std::optional<std::string> lane{};
  std::size_t limit = 100;
  std::string after_id{};  // cursor: executions strictly after this id in list order
  std::optional<int> priority{};
  std::vector<ExecStatus> statuses{};    // any of these (and `status`, if set)
  std::optional<TimePoint> due_after{};  // only executions due strictly after this
  // kId: every execution (by `status` if set) in id order, after `after_id`. kDue: queued
  // executions only (`status` is ignored) by (due, seq), the order they are planned in,
  // strictly after `after_due` when set; a page costs about the number of keys with queued
  // executions plus the page, not the number queued.
  enum class Order { kId, kDue };
  Order order = Order::kId;
  std::optional<std::pair<TimePoint, uint64_t>> after_due{};  // (due, seq) cursor for kDue
};

struct LaneCounts {
  std::string lane;
  std::size_t running = 0;
  std::size_t queued = 0;  // queued and due (not_before <= now): waiting for a worker or key
};

// Per terminal status, the instant before which its executions leave history: prune_history
// drops a terminal execution when its finish time is before the cutoff of its status. Entries
// of queued and running are ignored. Values; thread-safe to copy.
class HistoryCutoffs {
 public:
  // Every status cut off at `before`: the one cutoff of a single history_retention.
  explicit HistoryCutoffs(TimePoint before) { before_.fill(before); }
  void set(ExecStatus s, TimePoint before) { before_[static_cast<std::size_t>(s)] = before; }
  TimePoint before(ExecStatus s) const { return before_[static_cast<std::size_t>(s)]; }
  // The earliest and latest cutoff over the terminal statuses.
  TimePoint earliest() const {
    TimePoint t = TimePoint::max();
    for (ExecStatus s : kTerminalStatuses) t = std::min(t, before(s));
    return t;
  }
  TimePoint latest() const {
    TimePoint t = TimePoint::min();
    for (ExecStatus s : kTerminalStatuses) t = std::max(t, before(s));
    return t;
  }

 private:
  std::array<TimePoint, kExecStatusCount> before_{};
};

// How long terminal executions stay in history ([daemon] history_retention and [history]
// retention, docs/config.md): `fallback` unless their status has its own entry. Values;
// thread-safe to copy.
struct HistoryRetention {
  std::chrono::milliseconds fallback = std::chrono::hours(24);  // Default: 24 h
  std::map<ExecStatus, std::chrono::milliseconds> by_status{};  // terminal statuses only

  std::chrono::milliseconds of(ExecStatus s) const {
    auto it = by_status.find(s);
    return it == by_status.end() ? fallback : it->second;
  }
  // The cutoffs of a pruning at `now`: now - retention, per status.
  HistoryCutoffs cutoffs(TimePoint now) const {
    auto minus = [&](std::chrono::milliseconds d) {
      return now - std::chrono::duration_cast<TimePoint::duration>(d);
    };
    HistoryCutoffs out(minus(fallback));
    for (const auto& [s, d] : by_status) out.set(s, minus(d));
    return out;
  }
  bool operator==(const HistoryRetention&) const = default;
};

// Helper runtime state set through the control API; wins over the config until reset.
struct HelperState {
  std::string name{};
  std::optional<bool> enabled{};                   // unset: the config's value
  std::optional<std::string> schedule_override{};  // serialized schedule (TOML inline table)
  std::optional<TimePoint> planned_until{};        // planner watermark
  std::optional<int> priority_override{};          // 1..5; unset: the config's priority
  std::optional<std::chrono::milliseconds> expiry_override{};  // > 0; unset: the config's
};

// What a shared store (Redis) tells this daemon about changes made by other daemons. Called on
// the store's own thread; the callbacks must be cheap and must not call back into the store.
struct StoreEvents {
  // Something may have become claimable or its next event may have moved (another daemon
  // submitted, planned, or freed a key), or the store came back after an outage.
  std::function<void()> wake{};
  // An operator changed helper `name`'s runtime state (enable, disable, schedule override).
  std::function<void(const std::string& name)> helper_changed{};
  // A store with leases renewed the leases of `ids` (runs this daemon holds) until `until`
  // (the store's clock). Called from the store's lease thread.
  std::function<void(const std::vector<std::string>& ids, TimePoint until)> leases_renewed{};
};

class Store {
 public:
  virtual ~Store() = default;

  // Inserts planned executions; an id that exists already (in any state, history included)
  // is left alone, so re-planning is idempotent. An execution given with a terminal status
  // (catch-up's skipped) is recorded as such, never queued. Returns how many were created.
  virtual StatusOr<std::size_t> plan(std::vector<Execution> executions, TimePoint now) = 0;

  // Accepts one ad-hoc execution unless `capacity_queued` executions are already queued and
  // due, in which case kResourceExhausted and nothing is stored. kAlreadyExists (with the
  // stored execution's id in the message) when the id exists and is not terminal. Returns the
  // stored execution (seq assigned) and its 1-based position in its key's queue.
  virtual StatusOr<std::pair<Execution, std::size_t>> submit(Execution execution, TimePoint now,
                                                             std::size_t capacity_queued) = 0;

  // submit() of each of `executions` in order (an earlier one's room counts against a later
  // one's capacity), with one result per execution, in order; a failed one does not stop the
  // rest. A remote store takes them in a few round trips instead of one each (the HTTP API's
  // bulk submissions).
  virtual std::vector<StatusOr<std::pair<Execution, std::size_t>>> submit_many(
      std::vector<Execution> executions, TimePoint now, std::size_t capacity_queued) {
    std::vector<StatusOr<std::pair<Execution, std::size_t>>> out;
    out.reserve(executions.size());
    for (auto& e : executions) out.push_back(submit(std::move(e), now, capacity_queued));
    return out;
  }

  // Called exactly once, from any thread (the store's writer, or the caller before
  // submit_deferred returns), when a deferred submission is durable (OK) or will never be
  // acknowledged (kUnavailable: the write failed or the store closed). Must be cheap and must
  // not call back into the store.
  using DurableCallback = std::function<void(Status)>;

  // submit() without waiting for durability: returns as soon as the execution is accepted in
  // the index (the same result and errors as submit), and calls `on_durable` once the
  // acceptance may be acknowledged to the outside. `on_durable` is called only when this
  // returns OK. The HTTP API answers from `on_durable`, so no thread blocks per submission
  // and one commit carries every submission queued meanwhile. Stores without a write-behind
  // call it before returning.
  virtual StatusOr<std::pair<Execution, std::size_t>> submit_deferred(Execution execution,
                                                                      TimePoint now,
                                                                      std::size_t capacity_queued,
                                                                      DurableCallback on_durable) {
    auto r = submit(std::move(execution), now, capacity_queued);
    if (r.is_ok()) on_durable(Status::ok());
    return r;
  }

  // True when calls may wait on another machine (a network round trip to Redis), so callers
  // that must stay responsive (the HTTP I/O threads) hand them to a pool instead.
  virtual bool remote() const { return false; }

  // Claims up to `max` (possibly 0) ready executions for `lane` at `now` (see the ordering
  // contract),
  // marks them running with a new fence, records `node`, and locks their keys. First moves
  // queued executions past due + expiry to expired (any lane) and applies overlap = skip /
  // replace. Returns empty vectors, not an error, when nothing is ready.
  virtual StatusOr<ClaimResult> claim(std::string_view lane, std::size_t max, TimePoint now,
                                      std::string_view node) = 0;

  // Ends a claimed attempt. kFailedPrecondition when `id` is not running under `fence` (a
  // lapsed lease re-queued it). Releases the key. With `retry` the execution goes back to
  // its key's queue at its original position, attempt + 1, not_before = retry_at.
  virtual Status complete(std::string_view id, uint64_t fence, const Completion& c) = 0;

  // complete() whose result comes later: `done` is called once with what complete() would have
  // returned, maybe on another thread. Calls made after this one on the same store see the
  // completion (a remote store sends it ahead of them), so a claim right after it can take
  // the key's next execution. A remote store does not wait for its round trip, so a worker
  // runs its next execution while the completion travels. `done` must be cheap.
  virtual void complete_async(std::string_view id, uint64_t fence, const Completion& c,
                              std::function<void(Status)> done) {
    done(complete(id, fence, c));
  }

  // The earliest instant at which the passing of time alone changes what claim would do:
  // the earliest not_before of a key head not yet ready, the earliest expiry of a queued
  // execution, the earliest skip/replace decision. Heads that are ready already are not
  // events (a completion frees the worker they wait for). nullopt when there is none. The
  // dispatcher calls claim for every lane (with max 0 for a full lane) before asking, so
  // everything due at `now` has been handled.
  virtual std::optional<TimePoint> next_event(TimePoint now) = 0;

  // Queued -> cancelled. kFailedPrecondition if running (the caller may request a stop),
  // kNotFound if unknown; terminal ones are returned unchanged with kAlreadyExists.
  virtual StatusOr<Execution> cancel(std::string_view id, TimePoint now) = 0;

  // Removes queued executions of helper `name` that were planned (origin helper) and are due
  // after `due_after` (TimePoint::min(): all of them). Returns how many. Used by disable and
  // update (all) and by a reload that changed the helper (those not yet due: the due ones
  // run as planned).
  virtual StatusOr<std::size_t> remove_planned(std::string_view name, TimePoint due_after) = 0;

  virtual std::optional<Execution> get(std::string_view id) = 0;
  // get() of each id, in order; a remote store reads them in one round trip.
  virtual std::vector<std::optional<Execution>> get_many(const std::vector<std::string>& ids) {
    std::vector<std::optional<Execution>> out;
    out.reserve(ids.size());
    for (const auto& id : ids) out.push_back(get(id));
    return out;
  }
  virtual std::vector<Execution> list(const ExecutionFilter& filter) = 0;
  // 1-based position of a queued execution in its key's queue (running one not counted).
  virtual std::optional<std::size_t> position(std::string_view id) = 0;
  // Queued executions of `key` in order.
  virtual std::vector<Execution> key_queue(std::string_view key) = 0;

  // Drops terminal executions finished before the cutoff of their status. Returns how many.
  // Costs about the number dropped (each store indexes history by status and finish time).
  virtual std::size_t prune_history(const HistoryCutoffs& cutoffs) = 0;
  // Drops terminal executions of any status finished before `before`.
  std::size_t prune_history(TimePoint before) { return prune_history(HistoryCutoffs(before)); }

  virtual std::vector<LaneCounts> counts(TimePoint now) = 0;

  virtual std::optional<HelperState> helper_state(std::string_view name) = 0;
  virtual Status put_helper_state(const HelperState& state) = 0;

  // Recovery after a crash: every running execution becomes interrupted; those the retry
  // policy allows go back to their key's queue (attempt + 1, not_before = now). Returns the
  // interrupted executions as they were. A shared store (Redis) interrupts only the runs of
  // this daemon's node id and runs whose lease lapsed: other daemons' runs are alive.
  virtual std::vector<Execution> recover(TimePoint now) = 0;

  // Blocks until every change made up to the call that returned `token` is durable (see
  // ClaimResult::durable_token). Returns false if the store is closing and it never will be.
  // Stores without a write-behind return true at once.
  virtual bool wait_durable(uint64_t /*token*/) { return true; }

  // How many claims beyond its free workers a lane should take in one call, so that one
  // durable write carries many claims (0: claim only for free workers). The dispatcher asks
  // only when runs in the lane are short; see docs/store.md.
  virtual std::size_t claim_ahead() const { return 0; }

  // Plans executions of one helper that the caller computed from helper state `seen` (enabled
  // and schedule_override as the planner last applied them). A shared store refuses with
  // kAborted, storing nothing, when another daemon changed either since; the caller re-applies
  // the state and plans again. A single-process store plans (its callers serialize changes).
  virtual StatusOr<std::size_t> plan_from(const HelperState& /*seen*/,
                                          std::vector<Execution> executions, TimePoint now) {
    return plan(std::move(executions), now);
  }

  // plan_from() for executions of one helper at `dues` (ascending), each with id
  // planned_id(name, due), template `spec`, not_before = due: what the planner sends. The
  // default builds the Executions and calls plan_from; the memory store keeps them as compact
  // records and makes the full Execution only when it is claimed or read (docs/store.md).
  virtual StatusOr<std::size_t> plan_dues(const HelperState& seen, std::string_view name,
                                          const std::shared_ptr<const ExecTemplate>& spec,
                                          std::span<const TimePoint> dues, TimePoint now) {
    std::vector<Execution> executions(dues.size());
    for (std::size_t i = 0; i < dues.size(); ++i) {
      executions[i].id = planned_id(name, dues[i]);
      executions[i].spec = spec;
      executions[i].due = dues[i];
      executions[i].not_before = dues[i];
    }
    return plan_from(seen, std::move(executions), now);
  }

  // Moves only the planner watermark of helper `name`, leaving enabled and the override as
  // stored (another daemon may have just changed them). Callers serialize per store process.
  virtual Status put_watermark(const std::string& name, TimePoint planned_until) {
    HelperState state = helper_state(name).value_or(HelperState{name, {}, {}, {}});
    state.planned_until = planned_until;
    return put_helper_state(state);
  }

  // Registers for changes made by other daemons (a shared store); a no-op for stores that
  // only this process changes. Call before the engine starts.
  virtual void subscribe(StoreEvents /*events*/) {}

  // "memory", "sqlite:/path/to/schedd.db", ...: for status and logs.
  virtual std::string describe() const = 0;
  // OK while the store accepts writes; otherwise why not (a full disk, a lost connection).
  virtual Status health() const { return Status::ok(); }
  // Appends the store's own metrics to `out`, whole families in the Prometheus text format
  // (core/common/metrics.h): its write or round-trip latency, reconnects, errors
  // (docs/monitoring.md). Cheap: no I/O. Default: none.
  virtual void write_metrics(std::string& /*out*/) const {}
  // A consistent copy of the store's file as a standalone SQLite database, for `schedctl
  // backup` (docs/operations.md "Backup"). kFailedPrecondition for a store that has no file
  // to copy (memory; Redis keeps its own persistence).
  virtual StatusOr<std::string> backup() {
    return failed_precondition("store " + describe() +
                               " has no file to back up (only an sqlite store has one)");
  }
};

}  // namespace schedd
