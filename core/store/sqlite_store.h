// SqliteStore: the embedded durable store (docs/design.md "Shape"). A MemoryStore answers every
// call; each change it makes is also queued for one writer thread, which writes the queued
// changes of many calls in one SQLite transaction (group commit, WAL mode) and then marks
// them durable. Calls that acknowledge something to the outside wait for that:
//   - submit, cancel, remove_planned, recover and put_helper_state (enabled or schedule
//     override changed) return only once their change is durable;
//   - claim returns at once with a durable_token; the dispatcher waits for it before it
//     starts the claimed runs, so a run never starts unrecorded;
//   - plan, complete and prune_history do not wait: their changes are
//     written in call order with the next group, and a crash before that is recovered by
//     re-planning (idempotent) or by interrupting the run (at least once, docs/design.md §9).
//
// Durability (docs/operations.md): kFull acknowledges a change only once the WAL is fsynced
// after its commit; kBatch commits without fsync and fsyncs the WAL at most every
// `batch_window`, so a power loss loses at most that window of acknowledged changes and a
// process crash loses none. In kFull the fsync runs on its own thread (the syncer), so the
// writer commits the next group while the previous one is being synced (pipelined group
// commit): SQLite commits with synchronous=NORMAL and the syncer's fdatasync of the WAL makes
// every commit before it durable.
//
// A lock file (PATH.lock, flock) keeps a second daemon off the same file. The schema is
// versioned (PRAGMA user_version) and migrated on open; a file from a newer schedd is refused.
//
// One connection, in SQLite's exclusive locking mode: the WAL index lives in this process's
// heap instead of a shared memory map of PATH-shm, so a store folder made read-only (or a file
// system remounted read-only) under the daemon makes writes fail with an error instead of
// killing the process with SIGBUS on the mapping (issue #18). Other processes cannot open the
// file while the store is open ("database is locked"); backup() takes a consistent copy from
// inside (`schedd backup`, POST /v1/store/backup). The writer thread also runs the WAL
// checkpoints, after the commit that fills the WAL past `checkpoint_pages`.
//
// Thread-safety: thread-safe, like every Store.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/common/metrics.h"
#include "core/store/memory_store.h"
#include "core/store/store.h"

struct sqlite3;

namespace schedd {

struct SqliteOptions {
  enum class Durability { kFull, kBatch };
  Durability durability = Durability::kFull;
  std::chrono::milliseconds batch_window{50};  // kBatch: longest time between fsyncs
  // Group commit under load: a commit starts no sooner than this after the previous one
  // started, unless kGatherRows changes are waiting, so that each commit (its page writes,
  // whatever it carries) carries more. A change made while the writer is idle is written at
  // once, so a lone submission waits for no timer. 0 disables. Default: 250 us (1 ms before
  // the syncer took the fsync off the writer; docs/PERFORMANCE.md, "HTTP API")
  std::chrono::microseconds commit_gather{250};
  static constexpr std::size_t kGatherRows = 256;
  // Claims beyond free workers per lane call (Store::claim_ahead); 0 disables.
  std::size_t claim_ahead = 512;
  // Tests: SQLite's max_page_count, to make the disk "full" (0: no limit).
  uint64_t max_pages = 0;
  // The writer copies the WAL into the database (a checkpoint, after a commit has been handed
  // to the syncer) once it holds this many pages. Default: 4096
  uint32_t checkpoint_pages = 4096;
};

// What open() found on disk.
struct SqliteLoadReport {
  int schema_before = 0;  // 0: a new file
  int schema_after = 0;
  std::size_t queued = 0;
  std::size_t running = 0;  // running at the crash; recover() interrupts them
  std::size_t terminal = 0;
  std::size_t helper_states = 0;
  std::size_t templates_dropped = 0;  // no longer referenced
  double seconds = 0;
};

// Counters of the writer thread, for metrics and benchmarks.
struct SqliteWriterStats {
  uint64_t commits = 0;
  uint64_t rows_written = 0;  // upserts and deletes
  uint64_t failures = 0;      // commits that failed and were retried
  uint64_t fsyncs = 0;        // the store's own WAL fsyncs (the syncer's, batch mode's)
  uint64_t checkpoints = 0;   // WAL checkpoints run by the writer
  // Checkpoints that could not run (an I/O error): retried after the next commit.
  uint64_t checkpoints_busy = 0;
  uint64_t backups = 0;  // backup() copies taken
};

class SqliteStore final : public Store {
 public:
  static constexpr int kSchemaVersion = 3;

  // Opens (creating if needed, with its parent folder) and loads the store at `path`.
  // Errors name the file: locked by another daemon, newer schema, not a database, corrupt.
  static StatusOr<std::unique_ptr<SqliteStore>> open(const std::filesystem::path& path,
                                                     SqliteOptions options = {});
  ~SqliteStore() override;  // writes what is queued, then closes
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  StatusOr<std::size_t> plan(std::vector<Execution> executions, TimePoint now) override;
  StatusOr<std::pair<Execution, std::size_t>> submit(Execution execution, TimePoint now,
                                                     std::size_t capacity_queued) override;
  StatusOr<std::pair<Execution, std::size_t>> submit_deferred(Execution execution, TimePoint now,
                                                              std::size_t capacity_queued,
                                                              DurableCallback on_durable) override;
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
  bool wait_durable(uint64_t token) override;
  std::size_t claim_ahead() const override { return options_.claim_ahead; }
  std::string describe() const override;
  Status health() const override;
  void write_metrics(std::string& out) const override;
  // A consistent copy of the file as committed so far, taken by the writer thread between two
  // commits (writes wait meanwhile), as the bytes of a standalone database in rollback-journal
  // mode. Held in memory: the result is as large as the file. kUnavailable once closed.
  StatusOr<std::string> backup() override;

  // Blocks until everything changed so far is durable; false if a write failed meanwhile.
  bool flush();

  const SqliteLoadReport& load_report() const { return report_; }
  SqliteWriterStats writer_stats() const;
  const std::filesystem::path& path() const { return path_; }

 private:
  struct Batch;        // changes waiting for the writer, in call order
  struct WriterState;  // prepared statements and the template cache; writer thread only

  SqliteStore(std::filesystem::path path, SqliteOptions options);
  Status open_db();
  Status load();
  void writer();
  // kFull: fsyncs the WAL after the writer's commits and settles them (durable_token_).
  void syncer();
  // Writer thread: a checkpoint when the WAL hook asked for one, and backup() requests.
  void checkpoint_if_due();
  void run_backups(std::unique_lock<std::mutex>& lock);
  // Writes one batch in one transaction; the error message on failure.
  std::optional<std::string> write(Batch& batch);
  // fdatasync of the WAL (opened on first use); false with errno's text in `error`.
  bool sync_wal(std::string* error = nullptr);

  // Queues one call's changes for the writer: `fill` adds them to the pending batch under
  // wmu_. Called with mu_ held, which orders it after the MemoryStore call it records.
  // Returns the token of the change (see wait_token).
  template <typename Fill>
  uint64_t enqueue(Fill fill) {
    std::lock_guard g(wmu_);
    const std::size_t before = pending_size_locked();
    fill(*pending_);
    // The writer waits for a first change, or (gathering) for kGatherRows of them; waking
    // it for every change in between would cost a context switch each.
    if (before == 0 || pending_size_locked() >= SqliteOptions::kGatherRows) {
      writer_cv_.notify_one();
    }
    return ++queued_token_;
  }
  std::size_t pending_size_locked() const;  // wmu_ held
  // Registers `cb` for `token` (the last one enqueued; call with mu_ held so tokens arrive in
  // order). The writer calls it once the token is durable, or with an error when a write
  // carrying it fails or the store closes.
  void when_durable(uint64_t token, DurableCallback cb);
  // Calls, with `status` and wmu_ released meanwhile, every callback registered for a token up
  // to `up_to` (a commit: durable_token_; a failed write: its token; closing: all).
  void settle_callbacks(std::unique_lock<std::mutex>& lock, uint64_t up_to, const Status& status);
  // Waits until `token` is durable (true) or the store closed (false). With `fail_fast`,
  // also returns false once a write that included `token` has failed.
  bool wait_token(uint64_t token, bool fail_fast);
  Status refuse_if_failing() const;

  const std::filesystem::path path_;
  const SqliteOptions options_;
  SqliteLoadReport report_;
  MemoryStore mem_;

  sqlite3* db_ = nullptr;  // the writer thread's after open()
  int lock_fd_ = -1;
  int wal_fd_ = -1;  // the syncer's and batch mode's fsync target
  std::unique_ptr<WriterState> ws_;

  // mu_ orders every mutating call: its MemoryStore call and its queued change happen under
  // it, so the writer sees changes in the order the memory index made them.
  std::mutex mu_;
  // wmu_ guards the queue between callers and the writer, and the durability counters.
  mutable std::mutex wmu_;
  std::condition_variable writer_cv_;
  std::condition_variable durable_cv_;
  std::unique_ptr<Batch> pending_;
  std::unique_ptr<Batch> spare_;  // the writer's last batch, emptied, for reuse as pending_
  uint64_t queued_token_ = 0;     // the last change queued
  uint64_t durable_token_ = 0;    // every change up to this one is durable
  std::atomic<uint64_t> durable_seen_{0};  // durable_token_, for wait_token without wmu_
  uint64_t attempted_token_ = 0;        // the writer has tried to write every change up to this one
  uint64_t committed_token_ = 0;        // kFull: committed up to this one, maybe not yet synced
  bool syncer_exit_ = false;            // kFull: the writer is done; sync what is left and exit
  std::condition_variable sync_cv_;     // the syncer waits for commits
  std::optional<std::string> failing_;  // the last write error, until a write succeeds
  bool closing_ = false;
  bool closed_ = false;  // the writer has exited; nothing more becomes durable
  // Deferred submissions waiting for their token, in token order.
  std::deque<std::pair<uint64_t, DurableCallback>> callbacks_;
  SqliteWriterStats stats_;
  Histogram commit_seconds_{latency_bounds()};  // the writer's transactions (wmu_)
  Histogram fsync_seconds_{latency_bounds()};   // fdatasync of the WAL (wmu_)
  std::thread writer_thread_;
  std::thread syncer_thread_;  // kFull
  // Set by the WAL hook during a commit (writer thread only): the WAL is past checkpoint_pages.
  bool checkpoint_due_ = false;
  // backup() requests waiting for the writer (wmu_); each is answered once.
  struct BackupRequest;
  std::deque<std::shared_ptr<BackupRequest>> backups_;
};

}  // namespace schedd
