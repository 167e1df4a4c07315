// MemoryStore: the Store held in process memory, with no durability of its own. It is the
// index the embedded store keeps in front of SQLite, and the store of tests. Every call is
// O(log n) in the number of executions held (plus the size of what it returns), except the
// calls that are documented otherwise in docs/store.md (list, position, key_queue,
// remove_planned, recover); claim() never scans.
//
// Time is whatever the caller passes: the store has no clock. Passing an earlier `now` than
// before is allowed and exact, only slower (the queued-and-due count walks back).
//
// Thread-safety: thread-safe. One mutex serializes every call; no call blocks on anything
// but that mutex, and nothing outside the store is called while it is held.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/store/store.h"

namespace schedd {

class MemoryStore final : public Store {
 public:
  MemoryStore();
  ~MemoryStore() override;
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  // Tests of lease containment: claims report a lease of `lease` from their `now`
  // (ClaimResult::lease_until) that is never renewed, which is what a daemon cut off from a
  // shared store sees. Call before the first claim. Default: no lease.
  void set_unrenewed_lease(std::chrono::milliseconds lease) { lease_ = lease; }

  StatusOr<std::size_t> plan(std::vector<Execution> executions, TimePoint now) override;
  // Keeps each planned execution that is not its key's head as a compact entry of 24 bytes
  // (due, seq, created) and makes the full Execution when it becomes the head or is read
  // (docs/store.md "Compact planned executions"). Helpers with an expiry, overlap = allow (no
  // key) or an '@' in their name are stored as full records, as plan() does.
  StatusOr<std::size_t> plan_dues(const HelperState& seen, std::string_view name,
                                  const std::shared_ptr<const ExecTemplate>& spec,
                                  std::span<const TimePoint> dues, TimePoint now) override;
  StatusOr<std::pair<Execution, std::size_t>> submit(Execution execution, TimePoint now,
                                                     std::size_t capacity_queued) override;
  StatusOr<ClaimResult> claim(std::string_view lane, std::size_t max, TimePoint now,
                              std::string_view node) override;
  Status complete(std::string_view id, uint64_t fence, const Completion& c) override;
  std::optional<TimePoint> next_event(TimePoint now) override;
  StatusOr<Execution> cancel(std::string_view id, TimePoint now) override;
  StatusOr<std::size_t> remove_planned(std::string_view name, TimePoint due_after) override;
  std::optional<Execution> get(std::string_view id) override;
  std::vector<Execution> list(const ExecutionFilter& filter) override;
  std::optional<std::size_t> position(std::string_view id) override;
  std::vector<Execution> key_queue(std::string_view key) override;
  using Store::prune_history;
  std::size_t prune_history(const HistoryCutoffs& cutoffs) override;
  std::vector<LaneCounts> counts(TimePoint now) override;
  std::optional<HelperState> helper_state(std::string_view name) override;
  Status put_helper_state(const HelperState& state) override;
  std::vector<Execution> recover(TimePoint now) override;
  std::string describe() const override { return "memory"; }

  // The same calls, also reporting what they changed, for the embedded store (SqliteStore),
  // which writes exactly that to disk. Each out-parameter may be null.
  //   plan: copies of the executions created (seq and status as stored);
  //   complete: the execution after the completion (re-queued or terminal);
  //   remove_planned / prune_history: ids of the executions dropped;
  //   recover: every interrupted execution after recovery (re-queued or terminal).
  StatusOr<std::size_t> plan(std::vector<Execution> executions, TimePoint now,
                             std::vector<Execution>* created);
  Status complete(std::string_view id, uint64_t fence, const Completion& c, Execution* after);
  StatusOr<std::size_t> remove_planned(std::string_view name, TimePoint due_after,
                                       std::vector<std::string>* removed);
  std::size_t prune_history(const HistoryCutoffs& cutoffs, std::vector<std::string>* pruned);
  std::vector<Execution> recover(TimePoint now, std::vector<Execution>* after);

  // Loads executions exactly as they were stored (status, seq, attempt, fence, timestamps
  // kept) and helper states into an empty store: the embedded store's start-up. Queued ones
  // go back to their key queues in (due, seq) order; running ones hold their keys until
  // recover() interrupts them. kFailedPrecondition if the store is not empty, kInvalidArgument
  // on an execution that cannot be placed (a second running execution of one key).
  Status restore(std::vector<Execution> executions, std::vector<HelperState> states);

 private:
  // list() in ExecutionFilter::Order::kDue; mu_ held.
  std::vector<Execution> list_by_due(const ExecutionFilter& filter);
  struct State;  // the indexes; see memory_store.cc and docs/store.md

  std::mutex mu_;
  std::unique_ptr<State> state_;  // guarded by mu_
  std::optional<std::chrono::milliseconds> lease_;
};

}  // namespace schedd
