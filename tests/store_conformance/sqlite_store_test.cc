#include "core/store/sqlite_store.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/store/codec.h"
#include "tests/store_conformance/store_conformance.h"
#include "tests/testing/sqlite_rows.h"
#include "tests/testing/temp_dir.h"

namespace schedd::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

// A SqliteStore in its own temp folder. With `reopen`, every call that changes something is
// followed by flushing, closing and re-opening the file, so that the conformance suite checks
// that what is on disk reproduces exactly what the memory index held (seq, fences, key
// queues, helper state), not just that the live store behaves.
class FileStore final : public Store {
 private:
  // Runs `f`; with reopen, a call that changes something (`changes` of its result) is
  // followed by a reopen. Calls are serialized (the reopen replaces the store under
  // concurrent callers).
  static constexpr auto kAlways = [](const auto&) { return true; };
  static constexpr auto kNever = [](const auto&) { return false; };
  template <typename F, typename Changed>
  auto call(Changed changes, F f) {
    std::lock_guard lock(mu_);
    auto result = f();
    if (reopen_ && changes(result)) {
      if (!s_->flush()) throw std::runtime_error("flush failed");
      s_.reset();
      open();
    }
    return result;
  }

 public:
  explicit FileStore(bool reopen) : reopen_(reopen) { open(); }

  StatusOr<std::size_t> plan(std::vector<Execution> e, TimePoint now) override {
    return call(kAlways, [&] { return s_->plan(std::move(e), now); });
  }
  StatusOr<std::pair<Execution, std::size_t>> submit(Execution e, TimePoint now,
                                                     std::size_t cap) override {
    return call(kAlways, [&] { return s_->submit(std::move(e), now, cap); });
  }
  StatusOr<ClaimResult> claim(std::string_view lane, std::size_t max, TimePoint now,
                              std::string_view node) override {
    // A claim that found nothing (workers polling) changed nothing: no reopen.
    auto found = [](const StatusOr<ClaimResult>& r) {
      return !r.is_ok() || !r->claimed.empty() || !r->expired.empty() || !r->skipped.empty() ||
             !r->replace.empty();
    };
    return call(found, [&] { return s_->claim(lane, max, now, node); });
  }
  Status complete(std::string_view id, uint64_t fence, const Completion& c) override {
    return call(kAlways, [&] { return s_->complete(id, fence, c); });
  }
  std::optional<TimePoint> next_event(TimePoint now) override {
    return call(kNever, [&] { return s_->next_event(now); });
  }
  StatusOr<Execution> cancel(std::string_view id, TimePoint now) override {
    return call(kAlways, [&] { return s_->cancel(id, now); });
  }
  StatusOr<std::size_t> remove_planned(std::string_view name, TimePoint due_after) override {
    return call(kAlways, [&] { return s_->remove_planned(name, due_after); });
  }
  std::optional<Execution> get(std::string_view id) override {
    return call(kNever, [&] { return s_->get(id); });
  }
  std::vector<Execution> list(const ExecutionFilter& f) override {
    return call(kNever, [&] { return s_->list(f); });
  }
  std::optional<std::size_t> position(std::string_view id) override {
    return call(kNever, [&] { return s_->position(id); });
  }
  std::vector<Execution> key_queue(std::string_view key) override {
    return call(kNever, [&] { return s_->key_queue(key); });
  }
  using Store::prune_history;
  std::size_t prune_history(const HistoryCutoffs& cutoffs) override {
    return call(kAlways, [&] { return s_->prune_history(cutoffs); });
  }
  std::vector<LaneCounts> counts(TimePoint now) override {
    return call(kNever, [&] { return s_->counts(now); });
  }
  std::optional<HelperState> helper_state(std::string_view name) override {
    return call(kNever, [&] { return s_->helper_state(name); });
  }
  Status put_helper_state(const HelperState& state) override {
    return call(kAlways, [&] { return s_->put_helper_state(state); });
  }
  std::vector<Execution> recover(TimePoint now) override {
    return call(kAlways, [&] { return s_->recover(now); });
  }
  // The prefix tells the conformance suite which transient, in-memory-only state (a
  // replace already reported) a reopen forgets; see kReopenedStorePrefix.
  std::string describe() const override {
    return (reopen_ ? std::string(kReopenedStorePrefix) : std::string()) + s_->describe();
  }

 private:
  void open() {
    // Batch durability: no fsync per commit (durability is not what these tests check;
    // the reopened store commits and closes after every change).
    SqliteOptions o;
    o.durability = SqliteOptions::Durability::kBatch;
    o.batch_window = std::chrono::hours(1);
    auto s = SqliteStore::open(dir_ / "store.db", o);
    if (!s.is_ok()) throw std::runtime_error(s.status().to_string());
    s_ = std::move(s).value();
  }
  TempDir dir_;
  bool reopen_;
  std::mutex mu_;
  std::unique_ptr<SqliteStore> s_;
};

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformanceTest, ::testing::Values(StoreFactory([] {
                           return std::make_unique<FileStore>(false);
                         })));
INSTANTIATE_TEST_SUITE_P(SqliteReopened, StoreConformanceTest, ::testing::Values(StoreFactory([] {
                           return std::make_unique<FileStore>(true);
                         })));

std::unique_ptr<SqliteStore> open_ok(const std::filesystem::path& path, SqliteOptions o = {}) {
  auto s = SqliteStore::open(path, o);
  EXPECT_TRUE(s.is_ok()) << s.status().to_string();
  return s.is_ok() ? std::move(s).value() : nullptr;
}

std::string open_error(const std::filesystem::path& path, SqliteOptions o = {}) {
  auto s = SqliteStore::open(path, o);
  EXPECT_FALSE(s.is_ok());
  return s.is_ok() ? "" : s.status().message();
}

int user_version(const std::filesystem::path& path) {
  sqlite3* db = nullptr;
  int v = -1;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
      v = sqlite3_column_int(s, 0);
    }
    sqlite3_finalize(s);
  }
  sqlite3_close(db);
  return v;
}

void set_user_version(const std::filesystem::path& path, int v) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  std::string sql = "PRAGMA user_version=" + std::to_string(v);
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
}

TEST(SqliteStoreTest, NewFileGetsTheCurrentSchemaAndItsFolder) {
  TempDir dir;
  auto path = dir / "data" / "nested" / "schedd.db";
  {
    auto store = open_ok(path);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->load_report().schema_before, 0);
    EXPECT_EQ(store->load_report().schema_after, SqliteStore::kSchemaVersion);
    EXPECT_EQ(store->describe(), "sqlite:" + path.string());
  }
  EXPECT_EQ(user_version(path), SqliteStore::kSchemaVersion);
  auto again = open_ok(path);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->load_report().schema_before, SqliteStore::kSchemaVersion);
}

TEST(SqliteStoreTest, ASecondOpenOfTheSameFileIsRefusedByTheLock) {
  TempDir dir;
  auto path = dir / "schedd.db";
  auto first = open_ok(path);
  ASSERT_NE(first, nullptr);
  std::string error = open_error(path);
  EXPECT_THAT(error, HasSubstr(path.string()));
  EXPECT_THAT(error, HasSubstr("in use by another schedd (pid " + std::to_string(getpid())));
  first.reset();  // the lock goes with the store
  EXPECT_NE(open_ok(path), nullptr);
}

TEST(SqliteStoreTest, AFileFromANewerSchemaIsRefusedAndLeftAlone) {
  TempDir dir;
  auto path = dir / "schedd.db";
  open_ok(path).reset();
  set_user_version(path, SqliteStore::kSchemaVersion + 1);
  auto before = std::filesystem::file_size(path);
  std::string error = open_error(path);
  EXPECT_THAT(error,
              HasSubstr(fmt::format("written by a newer schedd (schema {}; this build reads "
                                    "up to {})",
                                    SqliteStore::kSchemaVersion + 1, SqliteStore::kSchemaVersion)));
  EXPECT_EQ(user_version(path), SqliteStore::kSchemaVersion + 1);
  EXPECT_EQ(std::filesystem::file_size(path), before);
}

TEST(SqliteStoreTest, AFileThatIsNotADatabaseIsRefusedAndLeftAlone) {
  TempDir dir;
  std::string junk(8192, 'x');
  auto path = dir.write("schedd.db", junk);
  std::string error = open_error(path);
  EXPECT_THAT(error, HasSubstr(path.string()));
  EXPECT_THAT(error, HasSubstr("not a database"));
  std::ifstream in(path, std::ios::binary);
  std::string after((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(after, junk);
}

TEST(SqliteStoreTest, ExecutionsTemplatesAndHelperStateSurviveAReopen) {
  TempDir dir;
  auto path = dir / "schedd.db";
  auto t = std::make_shared<ExecTemplate>();
  t->origin = ExecOrigin::kTicket;
  t->name = "PROJ-1";
  t->executor = "ticket";
  t->key = "proj";
  t->lane = "ai";
  t->priority = 2;
  t->expiry = 90s;
  t->timeout = 5min;
  t->max_attempts = 4;
  t->retry_delays = {0s, 30s};
  t->overlap = OverlapPolicy::kSkip;
  t->params = {{"steps", ParamValue::integer(5)},
               {"ratio", ParamValue::number(0.25)},
               {"dry", ParamValue::boolean(true)},
               {"every", ParamValue::duration(1500ms)},
               {"tags", ParamValue::list({"a", "b"})},
               {"env", ParamValue::map({{"K", "V"}})},
               {"note", ParamValue::string("héllo \"quoted\"")}};
  HelperState h;
  h.name = "report";
  h.enabled = false;
  h.schedule_override = "{ cron = \"0 * * * *\" }";
  h.planned_until = at(2h);
  {
    auto store = open_ok(path);
    auto r = store->submit(make_exec(t, at(1s), "ticket-1"), at(0s), 100);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    ASSERT_TRUE(store->put_helper_state(h).is_ok());
  }
  auto store = open_ok(path);
  EXPECT_EQ(store->load_report().queued, 1u);
  EXPECT_EQ(store->load_report().helper_states, 1u);
  auto e = store->get("ticket-1");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->status, ExecStatus::kQueued);
  EXPECT_EQ(e->due, at(1s));
  EXPECT_EQ(e->created, at(0s));
  const ExecTemplate& s = *e->spec;
  EXPECT_EQ(s.origin, ExecOrigin::kTicket);
  EXPECT_EQ(s.name, "PROJ-1");
  EXPECT_EQ(s.executor, "ticket");
  EXPECT_EQ(s.key, "proj");
  EXPECT_EQ(s.lane, "ai");
  EXPECT_EQ(s.priority, 2);
  EXPECT_EQ(s.expiry, 90s);
  EXPECT_EQ(s.timeout, 5min);
  EXPECT_EQ(s.max_attempts, 4u);
  EXPECT_EQ(s.retry_delays, (std::vector<std::chrono::milliseconds>{0s, 30s}));
  EXPECT_EQ(s.overlap, OverlapPolicy::kSkip);
  EXPECT_EQ(s.params, t->params);
  auto got = store->helper_state("report");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->enabled, false);
  EXPECT_EQ(got->schedule_override, h.schedule_override);
  EXPECT_EQ(got->planned_until, at(2h));
}

int64_t count_rows(const std::filesystem::path& path, const char* table) {
  sqlite3* db = nullptr;
  int64_t n = -1;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* s = nullptr;
    std::string sql = std::string("SELECT count(*) FROM ") + table;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
      n = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
  }
  sqlite3_close(db);
  return n;
}

// Tickets of one project differ only in name and params: their rows keep those, and all of
// them name one template row (its shape), instead of a template row each.
TEST(SqliteStoreTest, TicketsOfOneShapeShareOneTemplateRowAndKeepTheirNamesAndParams) {
  TempDir dir;
  auto path = dir / "schedd.db";
  auto ticket = [](const std::string& name, ParamList params) {
    auto t = std::make_shared<ExecTemplate>(*make_spec(name, {.origin = ExecOrigin::kTicket}));
    t->key = "proj";
    t->params = std::move(params);
    return std::shared_ptr<const ExecTemplate>(std::move(t));
  };
  {
    auto store = open_ok(path);
    ASSERT_NE(store, nullptr);
    for (int i = 1; i <= 5; ++i) {
      ParamList params;
      if (i % 2 == 0) params = {{"steps", ParamValue::integer(i)}};
      auto r = store->submit(make_exec(ticket("T-" + std::to_string(i), params), at(1s),
                                       "ticket:proj:T-" + std::to_string(i)),
                             at(0s), 100);
      ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    }
    ASSERT_TRUE(store->flush());
  }
  EXPECT_EQ(count_rows(path, "executions"), 5);
  EXPECT_EQ(count_rows(path, "templates"), 1);
  auto store = open_ok(path);
  ASSERT_NE(store, nullptr);
  for (int i = 1; i <= 5; ++i) {
    auto e = store->get("ticket:proj:T-" + std::to_string(i));
    ASSERT_TRUE(e.has_value()) << i;
    EXPECT_EQ(e->spec->name, "T-" + std::to_string(i));
    EXPECT_EQ(e->spec->key, "proj");
    EXPECT_EQ(e->spec->origin, ExecOrigin::kTicket);
    if (i % 2 == 0) {
      EXPECT_EQ(e->spec->params, (ParamList{{"steps", ParamValue::integer(i)}}));
    } else {
      EXPECT_TRUE(e->spec->params.empty());
    }
  }
  EXPECT_EQ(store->key_queue("proj").size(), 5u);
}

// A schema 1 file (tickets with a template row each, no name or params in the row) opens,
// migrates to the current schema and keeps every execution as it was.
TEST(SqliteStoreTest, ASchemaOneFileIsMigratedWithItsExecutionsIntact) {
  TempDir dir;
  auto path = dir / "schedd.db";
  auto t = std::make_shared<ExecTemplate>(*make_spec("OLD-1", {.origin = ExecOrigin::kTicket}));
  t->key = "proj";
  t->params = {{"steps", ParamValue::integer(7)}};
  {
    // Written by this build, then turned into what schema 1 wrote: the template row carries
    // the ticket's name and params, the row has no columns for them.
    auto store = open_ok(path);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->submit(make_exec(t, at(1s), "ticket:proj:OLD-1"), at(0s), 100).is_ok());
  }
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    const std::string body = codec::template_to_body(*t);
    sqlite3_stmt* s = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "UPDATE templates SET body = ?1", -1, &s, nullptr), SQLITE_OK);
    sqlite3_bind_text(s, 1, body.c_str(), -1, SQLITE_TRANSIENT);
    ASSERT_EQ(sqlite3_step(s), SQLITE_DONE);
    sqlite3_finalize(s);
    ASSERT_EQ(sqlite3_exec(db,
                           "ALTER TABLE executions DROP COLUMN name; "
                           "ALTER TABLE executions DROP COLUMN params; "
                           "ALTER TABLE helper_state DROP COLUMN priority; "
                           "ALTER TABLE helper_state DROP COLUMN expiry_ms; PRAGMA user_version=1",
                           nullptr, nullptr, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db);
    sqlite3_close(db);
  }
  ASSERT_EQ(user_version(path), 1);
  auto store = open_ok(path);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->load_report().schema_before, 1);
  EXPECT_EQ(store->load_report().schema_after, SqliteStore::kSchemaVersion);
  auto e = store->get("ticket:proj:OLD-1");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->spec->name, "OLD-1");
  EXPECT_EQ(e->spec->params, t->params);
  EXPECT_EQ(e->status, ExecStatus::kQueued);
}

// The writer checkpoints once the WAL is long enough (its only connection: exclusive locking
// mode): the database file takes the pages while the store is open and writing, and nothing
// is lost.
TEST(SqliteStoreTest, TheWriterCopiesTheWalIntoTheDatabaseOnceItIsLong) {
  TempDir dir;
  auto path = dir / "schedd.db";
  SqliteOptions o;
  o.checkpoint_pages = 32;
  constexpr int kRows = 600;
  {
    auto store = open_ok(path, o);
    ASSERT_NE(store, nullptr);
    const auto db_before = std::filesystem::file_size(path);
    auto spec = make_spec("t", {.origin = ExecOrigin::kAdhoc});
    for (int i = 0; i < kRows; ++i) {
      auto r = store->submit(make_exec(spec, at(1s), "c-" + std::to_string(i)), at(0s), 100000);
      ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    }
    ASSERT_TRUE(store->flush());
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (store->writer_stats().checkpoints == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
    EXPECT_GE(store->writer_stats().checkpoints, 1u);
    EXPECT_GT(std::filesystem::file_size(path), db_before) << "no page reached the database";
  }
  auto store = open_ok(path, o);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->load_report().queued, static_cast<std::size_t>(kRows));
}

// A run claimed and never completed (the daemon died) comes back running, holding its key;
// recover() makes it interrupted and re-queues it ahead of the rest of its key.
TEST(SqliteStoreTest, AClaimWithoutCompletionIsInterruptedOnTheNextStart) {
  TempDir dir;
  auto path = dir / "schedd.db";
  auto spec = make_spec("sync", {.max_attempts = 3});
  {
    auto store = open_ok(path);
    ASSERT_TRUE(store->plan({make_exec(spec, at(0s)), make_exec(spec, at(60s))}, at(0s)).is_ok());
    auto c = store->claim("default", 1, at(0s), "node-a");
    ASSERT_TRUE(c.is_ok());
    ASSERT_EQ(c->claimed.size(), 1u);
    EXPECT_TRUE(store->wait_durable(c->durable_token));
  }
  auto store = open_ok(path);
  EXPECT_EQ(store->load_report().running, 1u);
  EXPECT_EQ(store->load_report().queued, 1u);
  // Still holding its key before recovery: nothing of "sync" may start.
  auto none = store->claim("default", 5, at(61s), "node-b");
  ASSERT_TRUE(none.is_ok());
  EXPECT_TRUE(none->claimed.empty());
  auto interrupted = store->recover(at(70s));
  ASSERT_EQ(interrupted.size(), 1u);
  EXPECT_EQ(interrupted[0].id, "sync@1767225600");
  EXPECT_EQ(interrupted[0].node, "node-a");
  auto next = store->claim("default", 5, at(70s), "node-b");
  ASSERT_TRUE(next.is_ok());
  ASSERT_EQ(next->claimed.size(), 1u);
  EXPECT_EQ(next->claimed[0].id, "sync@1767225600");
  EXPECT_EQ(next->claimed[0].attempt, 2u);
}

TEST(SqliteStoreTest, HistoryPrunedAndPlansRemovedAreGoneFromDisk) {
  TempDir dir;
  auto path = dir / "schedd.db";
  {
    auto store = open_ok(path);
    auto a = make_spec("a");
    auto b = make_spec("b");
    ASSERT_TRUE(
        store->plan({make_exec(a, at(0s)), make_exec(b, at(0s)), make_exec(b, at(60s))}, at(0s))
            .is_ok());
    auto c = store->claim("default", 1, at(0s), "n");
    ASSERT_TRUE(c.is_ok());
    ASSERT_EQ(c->claimed.size(), 1u);
    Completion done;
    done.finished = at(1s);
    ASSERT_TRUE(store->complete(c->claimed[0].id, c->claimed[0].fence, done).is_ok());
    EXPECT_EQ(store->prune_history(at(2s)), 1u);
    auto removed =
        store->remove_planned(c->claimed[0].id == "a@1767225600" ? "b" : "a", TimePoint::min());
    ASSERT_TRUE(removed.is_ok());
    EXPECT_GE(*removed, 1u);
  }
  auto store = open_ok(path);
  const auto& r = store->load_report();
  EXPECT_EQ(r.terminal, 0u);
  EXPECT_EQ(r.running, 0u);
  EXPECT_EQ(r.queued + r.terminal + r.running, store->list({}).size());
  EXPECT_LE(store->list({}).size(), 1u);
}

// Batch durability: a submission is acknowledged once committed (before any fsync), and the
// writer fsyncs the WAL itself within the window; everything is there after a reopen.
TEST(SqliteStoreTest, BatchDurabilityFsyncsTheWalWithinTheWindow) {
  TempDir dir;
  auto path = dir / "schedd.db";
  SqliteOptions o;
  o.durability = SqliteOptions::Durability::kBatch;
  o.batch_window = 20ms;
  {
    auto store = open_ok(path, o);
    ASSERT_NE(store, nullptr);
    auto spec = make_spec("t", {.origin = ExecOrigin::kAdhoc});
    for (int i = 0; i < 20; ++i) {
      auto r = store->submit(make_exec(spec, at(1s), "t-" + std::to_string(i)), at(0s), 100);
      ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    }
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (store->writer_stats().fsyncs == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
    EXPECT_GE(store->writer_stats().fsyncs, 1u);
    EXPECT_GE(store->writer_stats().commits, 1u);
  }
  auto store = open_ok(path, o);
  EXPECT_EQ(store->load_report().queued, 20u);
}

// A full disk: SQLite's page limit stands in for it. The write fails, the store says so,
// submissions are refused with nothing stored, and nothing crashes.
TEST(SqliteStoreTest, AFullDiskRefusesSubmissionsWithAClearError) {
  TempDir dir;
  auto path = dir / "schedd.db";
  SqliteOptions o;
  o.max_pages = 8;
  auto store = open_ok(path, o);
  ASSERT_NE(store, nullptr);
  auto spec = make_spec("bulk", {.origin = ExecOrigin::kAdhoc});
  std::vector<Execution> many;
  for (int i = 0; i < 2000; ++i) {
    Execution e = make_exec(spec, at(1s), "bulk-" + std::to_string(i));
    e.message = std::string(200, 'm');
    many.push_back(std::move(e));
  }
  ASSERT_TRUE(store->plan(std::move(many), at(0s)).is_ok());
  EXPECT_FALSE(store->flush());
  Status health = store->health();
  EXPECT_EQ(health.code(), StatusCode::kUnavailable);
  EXPECT_THAT(health.message(), HasSubstr("database or disk is full"));
  EXPECT_THAT(health.message(), HasSubstr(path.string()));
  auto refused = store->submit(make_exec(spec, at(1s), "ticket-after-full"), at(0s), 100000);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(refused.status().message(), HasSubstr("nothing was accepted"));
  EXPECT_FALSE(store->get("ticket-after-full").has_value());
}

// Deferred submissions (the HTTP API's path): the call returns before the commit, and the
// callback comes once per submission, only when the row is in the file.
TEST(SqliteStoreTest, DeferredSubmissionsAreCalledBackOnceEachWhenOnDisk) {
  TempDir dir;
  auto path = dir / "schedd.db";
  SqliteOptions o;
  o.checkpoint_pages = 1u << 30;  // CrashCopy reads the files: no checkpoint meanwhile
  auto store = open_ok(path, o);
  ASSERT_NE(store, nullptr);
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, int> calls;
  std::vector<std::string> not_on_disk, failed, before_fsync;
  constexpr int kThreads = 4, kEach = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto spec = make_spec("t" + std::to_string(t), {.origin = ExecOrigin::kTicket});
      for (int i = 0; i < kEach; ++i) {
        const std::string id = "d-" + std::to_string(t) + "-" + std::to_string(i);
        auto r = store->submit_deferred(make_exec(spec, at(3600s), id), at(0s), 1000000,
                                        [&, id, i](Status s) {
                                          // A copy of the files per check is slow: every
                                          // 20th submission of each thread is checked.
                                          bool on_disk = true;
                                          if (i % 20 == 19) {
                                            CrashCopy copy(path);
                                            on_disk = execution_on_disk(copy.db(), id);
                                          }
                                          std::lock_guard lock(mu);
                                          ++calls[id];
                                          cv.notify_all();
                                          if (!s.is_ok()) failed.push_back(id);
                                          if (!on_disk) not_on_disk.push_back(id);
                                          // Full durability: acknowledged by the syncer,
                                          // after its fsync of the WAL.
                                          if (store->writer_stats().fsyncs == 0)
                                            before_fsync.push_back(id);
                                        });
        ASSERT_TRUE(r.is_ok()) << r.status().to_string();
        EXPECT_EQ(r->first.id, id);
        EXPECT_EQ(r->second, static_cast<std::size_t>(i + 1));  // one key per thread
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(store->flush());
  // flush() returns when the last commit is durable; its callbacks run right after.
  std::unique_lock lock(mu);
  cv.wait_for(lock, 10s, [&] { return calls.size() == kThreads * kEach; });
  EXPECT_EQ(calls.size(), static_cast<std::size_t>(kThreads * kEach));
  for (const auto& [id, n] : calls) EXPECT_EQ(n, 1) << id;
  EXPECT_TRUE(failed.empty());
  EXPECT_TRUE(not_on_disk.empty()) << not_on_disk.size() << " called back before the commit";
  EXPECT_TRUE(before_fsync.empty()) << before_fsync.size() << " called back before any fsync";
}

// The store keeps the file in SQLite's exclusive locking mode: the WAL index is in its heap,
// never a shared map of PATH-shm (a map of a file that cannot be written any more ends the
// process with SIGBUS, issue #18), and no other connection can read the file meanwhile.
TEST(SqliteStoreTest, TheFileIsLockedExclusivelyWithNoSharedMemoryIndex) {
  TempDir dir;
  auto path = dir / "schedd.db";
  {
    auto store = open_ok(path);
    ASSERT_NE(store, nullptr);
    auto spec = make_spec("t", {.origin = ExecOrigin::kAdhoc});
    ASSERT_TRUE(store->submit(make_exec(spec, at(1s), "x-1"), at(0s), 100).is_ok());
    EXPECT_TRUE(std::filesystem::exists(path.string() + "-wal"));
    EXPECT_FALSE(std::filesystem::exists(path.string() + "-shm"));
    sqlite3* other = nullptr;
    ASSERT_EQ(sqlite3_open_v2(path.c_str(), &other, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    int rc = sqlite3_prepare_v2(other, "SELECT count(*) FROM executions", -1, &st, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    sqlite3_finalize(st);
    EXPECT_EQ(rc & 0xff, SQLITE_BUSY) << sqlite3_errmsg(other);
    sqlite3_close(other);
  }
  EXPECT_EQ(count_rows(path, "executions"), 1);  // readable once the store is closed
}

// backup() copies the file as committed, between two commits, into bytes that open as a
// store of their own (rollback journal, not WAL), while the store goes on writing.
TEST(SqliteStoreTest, ABackupIsACompleteCopyThatOpensAsAStore) {
  TempDir dir;
  auto path = dir / "schedd.db";
  auto store = open_ok(path);
  ASSERT_NE(store, nullptr);
  auto spec = make_spec("t", {.origin = ExecOrigin::kAdhoc});
  constexpr int kRows = 300;
  for (int i = 0; i < kRows; ++i) {
    ASSERT_TRUE(
        store->submit(make_exec(spec, at(1s), "b-" + std::to_string(i)), at(0s), 100000).is_ok());
  }
  // Planned (not waited for) changes queued right before the backup are in it too or not at
  // all, never half: the backup runs between commits.
  std::vector<Execution> planned;
  for (int i = 0; i < 50; ++i) planned.push_back(make_exec(spec, at(2s), "p-" + std::to_string(i)));
  ASSERT_TRUE(store->plan(std::move(planned), at(0s)).is_ok());
  auto bytes = store->backup();
  ASSERT_TRUE(bytes.is_ok()) << bytes.status().to_string();
  ASSERT_GE(bytes->size(), 100u);
  EXPECT_EQ(bytes->substr(0, 16), std::string("SQLite format 3\0", 16));
  EXPECT_EQ((*bytes)[18], 1) << "not a rollback-journal file";
  EXPECT_EQ((*bytes)[19], 1);
  EXPECT_EQ(store->writer_stats().backups, 1u);
  // The store goes on writing after it.
  ASSERT_TRUE(store->submit(make_exec(spec, at(1s), "after"), at(0s), 100000).is_ok());

  const auto copy = dir / "restored.db";
  std::ofstream(copy, std::ios::binary)
      .write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
  auto restored = open_ok(copy);
  ASSERT_NE(restored, nullptr);
  const std::size_t queued = restored->load_report().queued;
  EXPECT_TRUE(queued == kRows || queued == kRows + 50) << queued;
  EXPECT_TRUE(restored->get("b-0").has_value());
  EXPECT_TRUE(restored->get("b-" + std::to_string(kRows - 1)).has_value());
  EXPECT_FALSE(restored->get("after").has_value());
}

// A store that has no file answers backup() with an error naming it.
TEST(SqliteStoreTest, AMemoryStoreHasNoBackup) {
  MemoryStore store;
  auto r = store.backup();
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("no file to back up"));
}

// A deferred submission whose write fails is called back with the error, once, and a
// refused one (the store failing already) is never called back.
TEST(SqliteStoreTest, ADeferredSubmissionWhoseWriteFailsIsCalledBackWithTheError) {
  TempDir dir;
  auto path = dir / "schedd.db";
  SqliteOptions o;
  o.max_pages = 8;
  auto store = open_ok(path, o);
  ASSERT_NE(store, nullptr);
  auto spec = make_spec("t", {.origin = ExecOrigin::kTicket});
  Execution big = make_exec(spec, at(60s), "too-big");
  big.message = std::string(200000, 'm');  // larger than 8 pages

  std::mutex mu;
  std::condition_variable cv;
  std::vector<Status> results;
  auto r = store->submit_deferred(std::move(big), at(0s), 100, [&](Status s) {
    std::lock_guard lock(mu);
    results.push_back(std::move(s));
    cv.notify_all();
  });
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return !results.empty(); }));
    EXPECT_EQ(results[0].code(), StatusCode::kUnavailable);
    EXPECT_THAT(results[0].message(), HasSubstr("not acknowledged"));
  }
  auto refused =
      store->submit_deferred(make_exec(spec, at(60s), "after"), at(0s), 100, [&](Status s) {
        std::lock_guard lock(mu);
        results.push_back(std::move(s));
      });
  ASSERT_FALSE(refused.is_ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("nothing was accepted"));
  store.reset();  // closing with the failed change unwritten calls nobody again
  std::lock_guard lock(mu);
  EXPECT_EQ(results.size(), 1u);
}

// Closing the store writes what is queued first, so deferred submissions made just before
// are called back as durable, not dropped.
TEST(SqliteStoreTest, ClosingCallsBackDeferredSubmissionsAfterWritingThem) {
  TempDir dir;
  auto path = dir / "schedd.db";
  auto store = open_ok(path);
  ASSERT_NE(store, nullptr);
  auto spec = make_spec("t", {.origin = ExecOrigin::kTicket});
  std::atomic<int> ok{0}, bad{0};
  for (int i = 0; i < 50; ++i) {
    auto r = store->submit_deferred(make_exec(spec, at(60s), "c-" + std::to_string(i)), at(0s),
                                    1000, [&](Status s) { ++(s.is_ok() ? ok : bad); });
    ASSERT_TRUE(r.is_ok());
  }
  store.reset();
  EXPECT_EQ(ok.load(), 50);
  EXPECT_EQ(bad.load(), 0);
  auto reopened = open_ok(path);
  ASSERT_NE(reopened, nullptr);
  EXPECT_TRUE(reopened->get("c-49").has_value());
}

// One group of many changes (issue #19: the writer gets them as flat records in call order and
// writes only the latest state of each row, sorted by id): plans, claims, expiries, completions
// that succeed, fail or retry, a second claim of the retried ones, a prune and a re-plan of a
// pruned id, plus claims and completions of rows written by an earlier group (narrow
// updates). Read back, every execution is as the memory index had it.
TEST(SqliteStoreTest, OneGroupOfManyChangesIsWrittenAsTheLatestStateOfEachRow) {
  TempDir dir;
  auto path = dir / "schedd.db";
  SqliteOptions o;
  // After a commit of two or more changes the writer gathers until 256 changes wait or the
  // store closes: everything below goes into one group, written when the store closes.
  o.commit_gather = std::chrono::hours(1);
  auto fields = [](const Execution& e) {
    auto ns = [](const std::optional<TimePoint>& t) { return t ? codec::to_ns(*t) : -1; };
    return fmt::format(
        "{} {} attempt={} fence={} due={} not_before={} seq={} created={} "
        "started={} finished={} message='{}' output='{}' node='{}' name={}",
        e.id, exec_status_name(e.status), e.attempt, e.fence, codec::to_ns(e.due),
        codec::to_ns(e.not_before), e.seq, codec::to_ns(e.created), ns(e.started), ns(e.finished),
        e.message, e.output, e.node, e.spec->name);
  };
  auto all = [&](Store& store) {
    ExecutionFilter f;
    f.limit = 10000;
    std::vector<std::string> out;
    for (const auto& e : store.list(f)) out.push_back(fields(e));
    return out;
  };
  std::vector<std::string> before;
  {
    auto store = open_ok(path, o);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store
                    ->plan({make_exec(make_spec("warm1"), at(1s), "warm-1"),
                            make_exec(make_spec("warm2"), at(1s), "warm-2")},
                           at(0s))
                    .is_ok());
    ASSERT_TRUE(store->flush());
    const uint64_t commits = store->writer_stats().commits;

    std::vector<Execution> batch;
    for (int i = 0; i < 40; ++i) {
      batch.push_back(make_exec(make_spec(fmt::format("h{:02}", i), {.max_attempts = 2}), at(1s)));
    }
    for (int i = 0; i < 5; ++i) {
      batch.push_back(make_exec(make_spec(fmt::format("x{}", i), {.expiry = 1s}), at(1s)));
    }
    ASSERT_TRUE(store->plan(std::move(batch), at(0s)).is_ok());
    auto first = store->claim("default", 100, at(3s), "node-a");
    ASSERT_TRUE(first.is_ok()) << first.status().to_string();
    ASSERT_EQ(first->claimed.size(), 42u);
    ASSERT_EQ(first->expired.size(), 5u);
    int n = 0;
    for (const auto& e : first->claimed) {
      Completion c;
      c.finished = at(4s);
      const int kind = n++ % 4;
      if (kind == 3) continue;  // still running
      c.status = kind == 0 ? ExecStatus::kSucceeded : ExecStatus::kFailed;
      c.retry = kind == 1;
      c.retry_at = at(10s);
      c.message = fmt::format("{} {}", kind, e.id);
      c.output = kind == 0 ? "out " + e.id : "";
      ASSERT_TRUE(store->complete(e.id, e.fence, c).is_ok()) << e.id;
    }
    auto second = store->claim("default", 100, at(11s), "node-b");
    ASSERT_TRUE(second.is_ok()) << second.status().to_string();
    ASSERT_EQ(second->claimed.size(), 11u);  // the retried ones, attempt 2
    for (std::size_t i = 0; i < 5; ++i) {
      const Execution& e = second->claimed[i];
      Completion c;
      c.finished = at(12s);
      c.message = "second " + e.id;
      ASSERT_TRUE(store->complete(e.id, e.fence, c).is_ok()) << e.id;
    }
    // Succeeded ones leave history, and one of them is planned again under its id.
    HistoryCutoffs cutoffs(TimePoint::min());
    cutoffs.set(ExecStatus::kSucceeded, at(5s));
    EXPECT_EQ(store->prune_history(cutoffs), 11u);
    ASSERT_FALSE(store->get("warm-1").has_value());
    auto replanned = store->plan({make_exec(make_spec("warm1"), at(1s), "warm-1")}, at(20s));
    ASSERT_TRUE(replanned.is_ok()) << replanned.status().to_string();
    EXPECT_EQ(*replanned, 1u);

    EXPECT_EQ(store->writer_stats().commits, commits) << "the changes were not one group";
    before = all(*store);
    ASSERT_EQ(before.size(), 2u + 45u - 11u + 1u);
  }
  auto store = open_ok(path);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(all(*store), before);
  EXPECT_EQ(store->load_report().running, 16u);
}

}  // namespace
}  // namespace schedd::testing
