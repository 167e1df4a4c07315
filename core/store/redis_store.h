// RedisStore: the shared store of distributed mode (docs/design.md "Shape", docs/redis.md). Many
// daemons use one Redis; every transition is one Lua script, so the ordering contract of
// store.h holds across daemons exactly as it does in one process:
//   - the lookahead, the key queues, the lanes' ready sets and the expiry index are sorted
//     sets; executions are hashes (key names in docs/redis.md, under schedd:<namespace>:);
//   - claim runs one script that expires, applies overlap, promotes due heads and claims up to
//     `max` by (priority, due, seq), honouring key locks and the lane's cluster-wide capacity;
//   - every claim carries a fence and a lease; this store renews the leases of the runs it
//     holds, and any daemon's claim re-queues a run whose lease lapsed, as interrupted, under
//     the retry policy; a completion is recorded only under the fence it was claimed with;
//   - planning is idempotent from every daemon (planned ids are deterministic);
//   - changes other daemons should act on are published (pub/sub) and arrive through
//     subscribe(): new or freed work wakes the dispatcher, operator changes to a helper
//     re-apply it.
//
// Time is the caller's, as in every store; leases use the store's Clock (the daemon's wall
// clock), so daemons sharing a Redis need clocks that agree to well within a lease.
//
// When Redis is unreachable, calls fail with kUnavailable at once (no call blocks for longer
// than the command timeout), health() says why, and a connection thread reconnects with
// backoff. Completions that could not be recorded are kept and replayed on reconnect, and
// their leases renewed meanwhile, so a finished run is never re-run because of an outage.
//
// Thread-safety: thread-safe. Calls from many threads share one connection and are pipelined
// into one round trip (group pipelining).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/clock.h"
#include "core/store/store.h"

namespace schedd {

// redis://[:PASSWORD@]HOST[:PORT][/DB]
struct RedisAddress {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  std::string password;  // from the URL (discouraged: config's password_file or password_env)
  std::string to_string() const;  // "redis://HOST:PORT/DB", never the password
};
// kInvalidArgument naming what is wrong with `url`.
StatusOr<RedisAddress> parse_redis_url(std::string_view url);

struct RedisOptions {
  RedisAddress address;
  std::string ns = "default";  // key prefix schedd:<ns>:
  std::string password;        // wins over the URL's
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds command_timeout{2000};
  std::chrono::milliseconds lease{5000};  // renewed every lease / 5
  std::string node_id = "local";          // this daemon; recover() interrupts its old runs
  Clock* clock = nullptr;                 // lease times; nullptr: the system clock
  // Cluster-wide running limit per lane (lanes not named: no cluster limit, only each
  // daemon's workers). The daemon fills this from [lanes.*] workers unless
  // [redis] lane_capacity = "node".
  std::map<std::string, std::size_t, std::less<>> lane_capacity;
  // Claims beyond free workers per lane call (Store::claim_ahead).
  std::size_t claim_ahead = 0;
  // next_event() is never later than now + rescan (0: no bound), so that an idle daemon
  // still looks at least that often for lapsed leases of daemons that died after it last
  // looked (a claim publishes nothing). Default: the lease.
  std::optional<std::chrono::milliseconds> rescan{};
};

class RedisStore final : public Store {
 public:
  // Connects, authenticates, selects the database, loads the scripts and checks the server
  // (Redis 6.2 or newer). kUnavailable naming the address when Redis cannot be reached.
  static StatusOr<std::unique_ptr<RedisStore>> open(RedisOptions options);
  ~RedisStore() override;
  RedisStore(const RedisStore&) = delete;
  RedisStore& operator=(const RedisStore&) = delete;

  // Executions planned per script call (plan, plan_from).
  static constexpr std::size_t kPlanChunk = 250;

  StatusOr<std::size_t> plan(std::vector<Execution> executions, TimePoint now) override;
  StatusOr<std::size_t> plan_from(const HelperState& seen, std::vector<Execution> executions,
                                  TimePoint now) override;
  StatusOr<std::pair<Execution, std::size_t>> submit(Execution execution, TimePoint now,
                                                     std::size_t capacity_queued) override;
  // A few script calls (chunks of 250 executions), one wake-up each.
  std::vector<StatusOr<std::pair<Execution, std::size_t>>> submit_many(
      std::vector<Execution> executions, TimePoint now, std::size_t capacity_queued) override;
  StatusOr<ClaimResult> claim(std::string_view lane, std::size_t max, TimePoint now,
                              std::string_view node) override;
  Status complete(std::string_view id, uint64_t fence, const Completion& c) override;
  void complete_async(std::string_view id, uint64_t fence, const Completion& c,
                      std::function<void(Status)> done) override;
  std::optional<TimePoint> next_event(TimePoint now) override;
  StatusOr<Execution> cancel(std::string_view id, TimePoint now) override;
  StatusOr<std::size_t> remove_planned(std::string_view name, TimePoint due_after) override;
  std::optional<Execution> get(std::string_view id) override;
  std::vector<std::optional<Execution>> get_many(const std::vector<std::string>& ids) override;
  std::vector<Execution> list(const ExecutionFilter& filter) override;
  std::optional<std::size_t> position(std::string_view id) override;
  std::vector<Execution> key_queue(std::string_view key) override;
  using Store::prune_history;
  std::size_t prune_history(const HistoryCutoffs& cutoffs) override;
  std::vector<LaneCounts> counts(TimePoint now) override;
  std::optional<HelperState> helper_state(std::string_view name) override;
  Status put_helper_state(const HelperState& state) override;
  Status put_watermark(const std::string& name, TimePoint planned_until) override;
  std::vector<Execution> recover(TimePoint now) override;
  void subscribe(StoreEvents events) override;
  bool remote() const override { return true; }
  std::size_t claim_ahead() const override;
  std::string describe() const override;
  Status health() const override;
  void write_metrics(std::string& out) const override;

  // Tests and diagnostics: renews the leases of the runs this store holds now (the lease
  // thread does this every lease / 5). Returns the ids whose lease was lost.
  StatusOr<std::vector<std::string>> renew_leases();
  // Tests: deletes every key of this namespace.
  Status wipe();

 private:
  struct Impl;
  explicit RedisStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace schedd
