#include "core/store/sqlite_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <system_error>
#include <unordered_set>

#include "core/common/params_json.h"
#include "core/common/thread_name.h"
#include "core/store/codec.h"

namespace schedd {
namespace {

using codec::from_ns;
using codec::params_to_body;
using codec::status_code;
using codec::status_from_code;
using codec::template_from_body;
using codec::template_to_body;
using codec::to_ns;

// ---- schema -----------------------------------------------------------------------------------
// kMigrations[v] takes a file from schema v to v + 1. Add a step, never edit one.

constexpr std::array<const char*, SqliteStore::kSchemaVersion> kMigrations = {
    // 0 -> 1
    R"sql(
CREATE TABLE templates(
  id   INTEGER PRIMARY KEY,
  body TEXT NOT NULL                -- JSON of what executions of one helper or submission share
);
CREATE TABLE executions(
  id         TEXT PRIMARY KEY,
  template   INTEGER NOT NULL,      -- templates.id
  due        INTEGER NOT NULL,      -- ns since the epoch
  not_before INTEGER NOT NULL,
  seq        INTEGER NOT NULL,
  attempt    INTEGER NOT NULL,
  status     INTEGER NOT NULL,      -- see docs/store.md
  fence      INTEGER NOT NULL,
  created    INTEGER NOT NULL,
  started    INTEGER,
  finished   INTEGER,
  message    TEXT,
  output     TEXT,
  node       TEXT
) WITHOUT ROWID;
CREATE TABLE helper_state(
  name              TEXT PRIMARY KEY,
  enabled           INTEGER,
  schedule_override TEXT,
  planned_until     INTEGER
) WITHOUT ROWID;
)sql",
    // 1 -> 2: a ticket's or ad-hoc submission's own name and params live in its row, so
    // that the template row is what a project's tickets share instead of one per ticket.
    R"sql(
ALTER TABLE executions ADD COLUMN name TEXT;    -- NULL: the template's
ALTER TABLE executions ADD COLUMN params TEXT;  -- NULL: the template's; else as codec.h
)sql",
    // 2 -> 3: a helper's priority and expiry overrides (PATCH /v1/helpers/NAME).
    R"sql(
ALTER TABLE helper_state ADD COLUMN priority INTEGER;   -- NULL: the config's
ALTER TABLE helper_state ADD COLUMN expiry_ms INTEGER;  -- NULL: the config's
)sql",
};

// SQLite's message, with the OS error behind an I/O error ("disk I/O error (Operation not
// permitted)": a folder made read-only, not a failing disk).
std::string sqlite_error(sqlite3* db) {
  if (db == nullptr) return "out of memory";
  std::string message = sqlite3_errmsg(db);
  const int os_error = sqlite3_system_errno(db);
  if ((sqlite3_extended_errcode(db) & 0xff) == SQLITE_IOERR && os_error != 0) {
    message += fmt::format(" ({})", std::strerror(os_error));
  }
  return message;
}

// RAII prepared statement.
class Stmt {
 public:
  Stmt() = default;
  Stmt(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) != SQLITE_OK) {
      error_ = sqlite_error(db);
      stmt_ = nullptr;
    }
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt(Stmt&& o) noexcept : stmt_(std::exchange(o.stmt_, nullptr)), error_(std::move(o.error_)) {}
  Stmt& operator=(Stmt&& o) noexcept {
    std::swap(stmt_, o.stmt_);
    std::swap(error_, o.error_);
    return *this;
  }
  sqlite3_stmt* get() const { return stmt_; }
  const std::string& error() const { return error_; }

  void bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  // Bound without a copy: `s` must outlive run().
  void bind(int i, std::string_view s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
  }
  void bind_null(int i) { sqlite3_bind_null(stmt_, i); }
  void bind_opt(int i, const std::optional<TimePoint>& t) {
    if (t) {
      bind(i, to_ns(*t));
    } else {
      bind_null(i);
    }
  }
  void bind_text_or_null(int i, std::string_view s) {
    if (s.empty()) {
      bind_null(i);
    } else {
      bind(i, s);
    }
  }
  // Runs a statement that returns no rows; SQLITE_DONE on success.
  int run() {
    int rc = sqlite3_step(stmt_);
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    return rc;
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  std::string error_;
};

int exec_sql(sqlite3* db, const char* sql, std::string& error) {
  char* msg = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &msg);
  if (rc != SQLITE_OK) error = msg != nullptr ? msg : sqlite_error(db);
  sqlite3_free(msg);
  return rc;
}

std::string column_text(sqlite3_stmt* s, int i) {
  const unsigned char* t = sqlite3_column_text(s, i);
  return t == nullptr ? std::string()
                      : std::string(reinterpret_cast<const char*>(t),
                                    static_cast<std::size_t>(sqlite3_column_bytes(s, i)));
}

std::optional<int64_t> column_opt_int(sqlite3_stmt* s, int i) {
  if (sqlite3_column_type(s, i) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_int64(s, i);
}

}  // namespace

// ---- the queue of changes ---------------------------------------------------------------------

struct SqliteStore::Batch {
  // Changes in call order, each a small record appended to flat vectors (no allocation per
  // change once the vectors have grown; the writer hands its spent batch back for reuse):
  //   kRow: a whole row (plan, submit, recover), the Execution moved in;
  //   kState: the columns a claim, completion, expiry, skip or cancel changes (status,
  //     attempt, fence, not_before, started, finished, node, message, output) of a row
  //     written before; copied out of the execution, strings into `text`;
  //   kErase: a row deleted (remove_planned, prune_history), its id in `text`.
  // The writer keeps only the latest change per id (coalesce()).
  enum class Kind : uint8_t { kRow, kState, kErase };
  struct Op {
    Kind kind;
    uint32_t index;   // kRow: into rows; kState: into states
    uint32_t id_len;  // kState, kErase: the id at text[id_off]
    std::size_t id_off;
  };
  struct State {
    int64_t not_before = 0;
    int64_t started = 0;   // with has_started
    int64_t finished = 0;  // with has_finished
    uint64_t fence = 0;
    uint32_t attempt = 0;
    uint8_t status = 0;
    bool has_started = false;
    bool has_finished = false;
    // node, message and output follow the id in `text`, in this order.
    uint32_t node_len = 0;
    uint32_t message_len = 0;
    uint32_t output_len = 0;
  };
  std::vector<Op> ops;
  std::vector<Execution> rows;
  std::vector<State> states;
  std::string text;
  std::map<std::string, HelperState> helper_states;

  void put(Execution e) {
    ops.push_back(Op{Kind::kRow, static_cast<uint32_t>(rows.size()), 0, 0});
    rows.push_back(std::move(e));
  }
  // The changed columns of `e`, whose row was put before (in this batch or an earlier one).
  void put_state(const Execution& e) {
    State st;
    st.not_before = to_ns(e.not_before);
    st.has_started = e.started.has_value();
    if (st.has_started) st.started = to_ns(*e.started);
    st.has_finished = e.finished.has_value();
    if (st.has_finished) st.finished = to_ns(*e.finished);
    st.fence = e.fence;
    st.attempt = e.attempt;
    st.status = static_cast<uint8_t>(status_code(e.status));
    st.node_len = static_cast<uint32_t>(e.node.size());
    st.message_len = static_cast<uint32_t>(e.message.size());
    st.output_len = static_cast<uint32_t>(e.output.size());
    ops.push_back(Op{Kind::kState, static_cast<uint32_t>(states.size()),
                     static_cast<uint32_t>(e.id.size()), text.size()});
    states.push_back(st);
    text.append(e.id).append(e.node).append(e.message).append(e.output);
  }
  void erase(std::string_view id) {
    ops.push_back(Op{Kind::kErase, 0, static_cast<uint32_t>(id.size()), text.size()});
    text.append(id);
  }

  std::string_view id(const Op& op) const {
    if (op.kind == Kind::kRow) return rows[op.index].id;
    return std::string_view(text).substr(op.id_off, op.id_len);
  }
  // A kState op's strings.
  std::string_view node(const Op& op) const {
    return std::string_view(text).substr(op.id_off + op.id_len, states[op.index].node_len);
  }
  std::string_view message(const Op& op) const {
    const State& st = states[op.index];
    return std::string_view(text).substr(op.id_off + op.id_len + st.node_len, st.message_len);
  }
  std::string_view output(const Op& op) const {
    const State& st = states[op.index];
    return std::string_view(text).substr(op.id_off + op.id_len + st.node_len + st.message_len,
                                         st.output_len);
  }

  bool empty() const { return ops.empty() && helper_states.empty(); }
  std::size_t size() const { return ops.size() + helper_states.size(); }
  // Empty, keeping the vectors' capacity for the next group, up to a group's usual size
  // (a plan of a million rows should not stay allocated).
  void clear() {
    constexpr std::size_t kKeep = 16384;
    auto reset = [](auto& v, std::size_t keep) {
      if (v.capacity() > keep) {
        std::remove_reference_t<decltype(v)>().swap(v);
      } else {
        v.clear();
      }
    };
    reset(ops, kKeep);
    reset(rows, kKeep / 16);
    reset(states, kKeep);
    reset(text, kKeep * 32);
    helper_states.clear();
  }
  // Puts back the changes of an older batch that failed to write, before newer ones.
  void merge_older(Batch& older) {
    Batch merged;
    merged.append(std::move(older));
    merged.append(std::move(*this));
    *this = std::move(merged);
  }

 private:
  void append(Batch&& b) {
    const std::size_t row_base = rows.size();
    const std::size_t state_base = states.size();
    const std::size_t text_base = text.size();
    for (Op op : b.ops) {
      if (op.kind == Kind::kRow) op.index += static_cast<uint32_t>(row_base);
      if (op.kind == Kind::kState) op.index += static_cast<uint32_t>(state_base);
      if (op.kind != Kind::kRow) op.id_off += text_base;
      ops.push_back(op);
    }
    std::move(b.rows.begin(), b.rows.end(), std::back_inserter(rows));
    states.insert(states.end(), b.states.begin(), b.states.end());
    text += b.text;
    for (auto& [name, st] : b.helper_states) helper_states.insert_or_assign(name, std::move(st));
  }
};

struct SqliteStore::WriterState {
  Stmt upsert;
  Stmt update;  // the columns of a Batch::State, numbered as in upsert
  Stmt erase;
  Stmt insert_template;
  Stmt put_state;
  Stmt begin;
  Stmt commit;
  Stmt rollback;
  // Template ids by the address of a live template (weak: a template may die and its
  // address be reused) and by body (dedup across submissions of the same shape).
  struct Entry {
    std::weak_ptr<const ExecTemplate> ref;
    int64_t id = 0;
  };
  std::unordered_map<const ExecTemplate*, Entry> by_ptr;
  std::unordered_map<std::string, int64_t> by_body;
  std::unordered_map<std::string, int64_t> by_shape;  // shape_key -> id
  std::size_t purge_at = 4096;
  int64_t next_template = 1;
  std::vector<uint32_t> order;  // write(): the batch's changes by id, reused
  uint64_t written = 0;         // write(): rows and helper states the last write wrote
  uint64_t missing = 0;         // state changes that found no row (not expected)

  // Binds a state change's columns to `s` (upsert or update, which number them alike).
  static void bind_state(Stmt& s, const Batch& b, const Batch::Op& op) {
    const Batch::State& st = b.states[op.index];
    s.bind(4, st.not_before);
    s.bind(6, static_cast<int64_t>(st.attempt));
    s.bind(7, static_cast<int64_t>(st.status));
    s.bind(8, static_cast<int64_t>(st.fence));
    if (st.has_started) {
      s.bind(10, st.started);
    } else {
      s.bind_null(10);
    }
    if (st.has_finished) {
      s.bind(11, st.finished);
    } else {
      s.bind_null(11);
    }
    s.bind_text_or_null(12, b.message(op));
    s.bind_text_or_null(13, b.output(op));
    s.bind_text_or_null(14, b.node(op));
  }

  // The template's id, inserting its row when new (within the writer's transaction). With
  // `shape`, the id of the template without its name and params (the row keeps those).
  std::optional<int64_t> template_id(const std::shared_ptr<const ExecTemplate>& t, bool shape,
                                     std::string& error) {
    auto it = by_ptr.find(t.get());
    if (it != by_ptr.end()) {
      if (auto live = it->second.ref.lock(); live.get() == t.get()) return it->second.id;
    }
    std::string key;
    std::string body;
    if (shape) {
      // Every ticket is a template object of its own: find its shape without encoding it.
      key = codec::shape_key(*t);
      if (auto sh = by_shape.find(key); sh != by_shape.end()) {
        remember(t, sh->second);
        return sh->second;
      }
      ExecTemplate s = *t;
      s.name.clear();
      s.params.clear();
      body = template_to_body(s);
    } else {
      body = template_to_body(*t);
    }
    int64_t id = 0;
    if (auto b = by_body.find(body); b != by_body.end()) {
      id = b->second;
    } else {
      id = next_template++;
      insert_template.bind(1, id);
      insert_template.bind(2, body);
      if (insert_template.run() != SQLITE_DONE) {
        error = "insert template: " + sqlite_error(sqlite3_db_handle(insert_template.get()));
        --next_template;
        return std::nullopt;
      }
      if (by_body.size() > 100000) by_body.clear();  // a cache: duplicates are harmless
      by_body.emplace(std::move(body), id);
    }
    if (shape) {
      if (by_shape.size() > 100000) by_shape.clear();
      by_shape.emplace(std::move(key), id);
    }
    remember(t, id);
    return id;
  }

  void remember(const std::shared_ptr<const ExecTemplate>& t, int64_t id) {
    by_ptr[t.get()] = Entry{t, id};
    if (by_ptr.size() >= purge_at) {
      std::erase_if(by_ptr, [](const auto& kv) { return kv.second.ref.expired(); });
      purge_at = std::max<std::size_t>(4096, 2 * by_ptr.size());
    }
  }
};

// ---- open and load ----------------------------------------------------------------------------

SqliteStore::SqliteStore(std::filesystem::path path, SqliteOptions options)
    : path_(std::move(path)), options_(options), pending_(std::make_unique<Batch>()) {}

StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::filesystem::path& path,
                                                         SqliteOptions options) {
  std::unique_ptr<SqliteStore> store(new SqliteStore(std::filesystem::absolute(path), options));
  if (Status s = store->open_db(); !s.is_ok()) return s;
  if (Status s = store->load(); !s.is_ok()) return s;
  if (options.durability == SqliteOptions::Durability::kFull) {
    store->syncer_thread_ = std::thread([s = store.get()] {
      name_this_thread("schedd-sync");
      s->syncer();
    });
  }
  // The WAL hook runs inside a commit on the writer's connection; the writer checkpoints after
  // handing that commit to the syncer (checkpoint_if_due). No second connection: exclusive
  // locking mode (open_db) keeps every other connection off the file.
  sqlite3_wal_hook(
      store->db_,
      [](void* self, sqlite3*, const char*, int pages) {
        auto* s = static_cast<SqliteStore*>(self);
        if (pages >= static_cast<int>(s->options_.checkpoint_pages)) s->checkpoint_due_ = true;
        return SQLITE_OK;
      },
      store.get());
  store->writer_thread_ = std::thread([s = store.get()] {
    name_this_thread("schedd-writer");
    s->writer();
  });
  return store;
}

void SqliteStore::checkpoint_if_due() {
  if (!checkpoint_due_) return;
  checkpoint_due_ = false;
  // PASSIVE, and no other connection can read the file: it copies the whole WAL, and the next
  // commit restarts the WAL from its start. It fsyncs the WAL before copying and the database
  // after, so a checkpointed page never depends on an unsynced frame.
  int log = 0, copied = 0;
  const int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
  std::lock_guard g(wmu_);
  if (rc == SQLITE_OK) {
    ++stats_.checkpoints;
    return;
  }
  // The WAL keeps growing until one succeeds; commits are not affected. A failed write of the
  // database file is reported by the next commit too, so one line is enough here.
  ++stats_.checkpoints_busy;
  checkpoint_due_ = true;
  spdlog::debug("store {}: checkpoint failed, retried after the next commit: {}", path_.string(),
                sqlite_error(db_));
}

struct SqliteStore::BackupRequest {
  std::promise<StatusOr<std::string>> result;
};

namespace {
// Copies the main database of `src` (an open connection, no transaction) into memory and
// returns it as the bytes of a standalone file. Runs on the thread that owns `src`.
StatusOr<std::string> copy_database(sqlite3* src, const std::string& where) {
  auto fail = [&](const std::string& what, sqlite3* db) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("{}: backup: {}: {}", where, what, sqlite_error(db)));
  };
  int64_t page_size = 0, pages = 0;
  for (auto [pragma, out] :
       {std::pair{"PRAGMA page_size", &page_size}, std::pair{"PRAGMA page_count", &pages}}) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(src, pragma, -1, &st, nullptr) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
      sqlite3_finalize(st);
      return fail(pragma, src);
    }
    *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  // An in-memory database of the connection's own (memdb), with the source's page size: a
  // backup into memory must not change the page size.
  sqlite3* dest = nullptr;
  if (sqlite3_open_v2(
          "file:schedd-backup?vfs=memdb", &dest,
          SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
          nullptr) != SQLITE_OK) {
    std::string why = sqlite_error(dest);
    sqlite3_close(dest);
    return Status(StatusCode::kUnavailable,
                  fmt::format("{}: backup: cannot open a memory database: {}", where, why));
  }
  struct Close {
    sqlite3* db;
    ~Close() { sqlite3_close(db); }
  } close{dest};
  std::string error;
  const std::string set_page = fmt::format("PRAGMA page_size={}", page_size);
  if (exec_sql(dest, set_page.c_str(), error) != SQLITE_OK) return fail("page size", dest);
  // memdb refuses to grow past 1 GiB by default; allow the whole file and some growth.
  sqlite3_int64 limit = std::max<sqlite3_int64>((pages + 1024) * page_size * 2, 1 << 30);
  sqlite3_file_control(dest, "main", SQLITE_FCNTL_SIZE_LIMIT, &limit);
  sqlite3_backup* b = sqlite3_backup_init(dest, "main", src, "main");
  if (b == nullptr) return fail("init", dest);
  const int rc = sqlite3_backup_step(b, -1);
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("{}: backup: {}", where, sqlite3_errstr(rc)));
  }
  sqlite3_int64 size = 0;
  unsigned char* data = sqlite3_serialize(dest, "main", &size, SQLITE_SERIALIZE_NOCOPY);
  std::string out;
  if (data != nullptr) {
    out.assign(reinterpret_cast<const char*>(data), static_cast<std::size_t>(size));
  } else {
    data = sqlite3_serialize(dest, "main", &size, 0);
    if (data == nullptr) return fail("serialize", dest);
    out.assign(reinterpret_cast<const char*>(data), static_cast<std::size_t>(size));
    sqlite3_free(data);
  }
  // The header's file format versions (offsets 18 and 19): 1, rollback journal, so that the
  // copy is one self-contained file (the source says 2, WAL). schedd switches it back to WAL
  // when it opens a restored copy.
  if (out.size() >= 100) out[18] = out[19] = 1;
  return out;
}
}  // namespace

void SqliteStore::run_backups(std::unique_lock<std::mutex>& lock) {
  while (!backups_.empty()) {
    auto req = std::move(backups_.front());
    backups_.pop_front();
    lock.unlock();
    auto copy = copy_database(db_, "store " + path_.string());
    lock.lock();
    if (copy.is_ok()) ++stats_.backups;  // counted before the caller sees the copy
    req->result.set_value(std::move(copy));
  }
}

StatusOr<std::string> SqliteStore::backup() {
  auto req = std::make_shared<BackupRequest>();
  auto done = req->result.get_future();
  {
    std::lock_guard g(wmu_);
    if (closing_ || closed_) {
      return Status(StatusCode::kUnavailable,
                    fmt::format("store {}: closing; no backup taken", path_.string()));
    }
    backups_.push_back(std::move(req));
  }
  writer_cv_.notify_one();
  return done.get();
}

Status SqliteStore::open_db() {
  const std::string where = "store " + path_.string();
  std::error_code ec;
  if (path_.has_parent_path()) std::filesystem::create_directories(path_.parent_path(), ec);
  if (ec) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("{}: cannot create folder {}: {}", where,
                              path_.parent_path().string(), ec.message()));
  }

  // One daemon per file: an advisory lock on a file beside it, released by the kernel when
  // the process dies, so a crash never leaves it stuck.
  const std::string lock_path = path_.string() + ".lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) {
    return Status(StatusCode::kUnavailable, fmt::format("{}: cannot open lock file {}: {}", where,
                                                        lock_path, std::strerror(errno)));
  }
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char buf[32] = {};
    ssize_t n = ::pread(lock_fd_, buf, sizeof buf - 1, 0);
    std::string holder = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "unknown";
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    if (err == EWOULDBLOCK) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("{}: in use by another schedd (pid {}, lock {}); stop it or "
                                "configure another store path",
                                where, holder, lock_path));
    }
    return Status(StatusCode::kUnavailable,
                  fmt::format("{}: cannot lock {}: {}", where, lock_path, std::strerror(err)));
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(lock_fd_, 0) != 0 ||
      ::pwrite(lock_fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    spdlog::warn("{}: could not write the pid to {}", where, lock_path);
  }

  int rc =
      sqlite3_open_v2(path_.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("{}: cannot open: {}", where, sqlite_error(db_)));
  }
  sqlite3_extended_result_codes(db_, 1);
  // Another process (sqlite3, an older schedd's backup) may hold a read lock briefly.
  sqlite3_busy_timeout(db_, 5000);
  // Before the first read: in exclusive locking mode SQLite keeps the WAL index in heap memory
  // and never maps PATH-shm (sqlite.org/wal.html, "Use of WAL Without Shared-Memory"). A
  // shared map of a file that can no longer be written (chattr +i, a read-only remount)
  // answers the first store into it with SIGBUS; a write() answers with an error the writer
  // reports and retries. It also holds the file's lock for as long as the store is open.
  {
    std::string error;
    if (exec_sql(db_, "PRAGMA locking_mode=EXCLUSIVE", error) != SQLITE_OK) {
      return Status(StatusCode::kUnavailable,
                    fmt::format("{}: cannot set exclusive locking: {}", where, error));
    }
  }

  // The schema version; the first read of the file, so a file that is not a database (or a
  // damaged header) fails here, before anything is written.
  int version = -1;
  {
    Stmt s(db_, "PRAGMA user_version");
    if (s.get() == nullptr || sqlite3_step(s.get()) != SQLITE_ROW) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("{}: cannot read: {} (not a schedd store, or damaged; restore "
                                "a backup or move the file away)",
                                where, s.get() == nullptr ? s.error() : sqlite_error(db_)));
    }
    version = sqlite3_column_int(s.get(), 0);
  }
  report_.schema_before = version;
  if (version < 0) {  // found by tests/fuzz/sqlite_store_fuzz.cc: it indexed the migrations
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("{}: schema version {} is not one schedd writes (not a schedd "
                              "store, or damaged; restore a backup or move the file away)",
                              where, version));
  }
  if (version > kSchemaVersion) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("{}: written by a newer schedd (schema {}; this build reads up to "
                              "{}); upgrade schedd or restore a backup",
                              where, version, kSchemaVersion));
  }

  std::string error;
  // A new file gets 1 KiB pages: a submission dirties about one random leaf page, and each
  // commit writes whole pages to the WAL, so smaller pages write less per submission (16.5k
  // rather than 14-15k durable tickets/s over HTTP; docs/PERFORMANCE.md). Existing files keep
  // theirs: SQLite fixes the page size of a WAL database.
  if (version == 0 && exec_sql(db_, "PRAGMA page_size=1024", error) != SQLITE_OK) {
    return Status(StatusCode::kUnavailable, fmt::format("{}: {}", where, error));
  }
  {
    Stmt s(db_, "PRAGMA journal_mode=WAL");
    if (s.get() == nullptr || sqlite3_step(s.get()) != SQLITE_ROW ||
        column_text(s.get(), 0) != "wal") {
      return Status(StatusCode::kUnavailable,
                    fmt::format("{}: cannot switch to WAL mode: {}", where, sqlite_error(db_)));
    }
  }
  // Commits do not fsync in either mode: kFull's syncer fsyncs the WAL before acknowledging,
  // batch mode every window. Checkpoints still fsync (NORMAL), so a checkpointed page never
  // depends on a WAL frame that was not synced.
  // No automatic checkpoint inside a commit: the writer runs it after the commit is handed
  // to the syncer (checkpoint_if_due), so the acknowledgement does not wait for it.
  if (exec_sql(db_, "PRAGMA synchronous=NORMAL", error) != SQLITE_OK ||
      exec_sql(db_, "PRAGMA wal_autocheckpoint=0", error) != SQLITE_OK ||
      exec_sql(db_, "PRAGMA journal_size_limit=67108864", error) != SQLITE_OK) {
    return Status(StatusCode::kUnavailable, fmt::format("{}: {}", where, error));
  }
  if (options_.max_pages > 0) {
    std::string pragma = fmt::format("PRAGMA max_page_count={}", options_.max_pages);
    exec_sql(db_, pragma.c_str(), error);
  }

  if (version < kSchemaVersion) {
    if (exec_sql(db_, "BEGIN IMMEDIATE", error) != SQLITE_OK) {
      return Status(StatusCode::kUnavailable, fmt::format("{}: {}", where, error));
    }
    for (int v = version; v < kSchemaVersion; ++v) {
      if (exec_sql(db_, kMigrations[static_cast<std::size_t>(v)], error) != SQLITE_OK) {
        exec_sql(db_, "ROLLBACK", error);
        return Status(
            StatusCode::kUnavailable,
            fmt::format("{}: migration from schema {} to {} failed: {}", where, v, v + 1, error));
      }
    }
    std::string set = fmt::format("PRAGMA user_version={}", kSchemaVersion);
    if (exec_sql(db_, set.c_str(), error) != SQLITE_OK ||
        exec_sql(db_, "COMMIT", error) != SQLITE_OK) {
      exec_sql(db_, "ROLLBACK", error);
      return Status(StatusCode::kUnavailable,
                    fmt::format("{}: cannot write the schema: {}", where, error));
    }
  }
  report_.schema_after = kSchemaVersion;

  ws_ = std::make_unique<WriterState>();
  WriterState& w = *ws_;
  w.upsert = Stmt(db_,
                  "INSERT OR REPLACE INTO executions(id, template, due, not_before, seq, attempt, "
                  "status, fence, created, started, finished, message, output, node, name, "
                  "params) "
                  "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)");
  w.update = Stmt(db_,
                  "UPDATE executions SET not_before = ?4, attempt = ?6, status = ?7, fence = ?8, "
                  "started = ?10, finished = ?11, message = ?12, output = ?13, node = ?14 "
                  "WHERE id = ?1");
  w.erase = Stmt(db_, "DELETE FROM executions WHERE id = ?1");
  w.insert_template = Stmt(db_, "INSERT INTO templates(id, body) VALUES(?1, ?2)");
  w.put_state = Stmt(db_,
                     "INSERT OR REPLACE INTO helper_state(name, enabled, schedule_override, "
                     "planned_until, priority, expiry_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
  w.begin = Stmt(db_, "BEGIN IMMEDIATE");
  w.commit = Stmt(db_, "COMMIT");
  w.rollback = Stmt(db_, "ROLLBACK");
  for (const Stmt* s : {&w.upsert, &w.update, &w.erase, &w.insert_template, &w.put_state, &w.begin,
                        &w.commit, &w.rollback}) {
    if (s->get() == nullptr) {
      return Status(StatusCode::kUnavailable, fmt::format("{}: {}", where, s->error()));
    }
  }
  return Status::ok();
}

Status SqliteStore::load() {
  const auto started = std::chrono::steady_clock::now();
  const std::string where = "store " + path_.string();
  auto read_error = [&](const std::string& what) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("{}: cannot read {}: {} (damaged file? restore a backup)", where,
                              what, sqlite_error(db_)));
  };

  std::unordered_map<int64_t, std::shared_ptr<const ExecTemplate>> templates;
  {
    Stmt s(db_, "SELECT id, body FROM templates");
    if (s.get() == nullptr) return read_error("templates");
    int rc = 0;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      int64_t id = sqlite3_column_int64(s.get(), 0);
      std::string body = column_text(s.get(), 1);
      try {
        auto t = template_from_body(body);
        ws_->by_ptr[t.get()] = WriterState::Entry{t, id};
        ws_->by_body.emplace(std::move(body), id);
        templates.emplace(id, std::move(t));
      } catch (const std::exception& e) {
        return Status(StatusCode::kFailedPrecondition,
                      fmt::format("{}: template {} is malformed: {}", where, id, e.what()));
      }
      ws_->next_template = std::max(ws_->next_template, id + 1);
    }
    if (rc != SQLITE_DONE) return read_error("templates");
  }

  std::vector<Execution> executions;
  std::unordered_set<int64_t> used;
  {
    int64_t rows = 0;
    {
      Stmt count(db_, "SELECT count(*) FROM executions");
      if (count.get() != nullptr && sqlite3_step(count.get()) == SQLITE_ROW) {
        rows = sqlite3_column_int64(count.get(), 0);
      }
    }
    executions.reserve(static_cast<std::size_t>(rows));
    Stmt s(db_,
           "SELECT id, template, due, not_before, seq, attempt, status, fence, created, started, "
           "finished, message, output, node, name, params FROM executions");
    if (s.get() == nullptr) return read_error("executions");
    sqlite3_stmt* q = s.get();
    int rc = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
      Execution e;
      e.id = column_text(q, 0);
      int64_t tid = sqlite3_column_int64(q, 1);
      auto t = templates.find(tid);
      if (t == templates.end()) {
        return Status(StatusCode::kFailedPrecondition,
                      fmt::format("{}: execution {} names template {}, "
                                  "which is missing",
                                  where, e.id, tid));
      }
      used.insert(tid);
      e.spec = t->second;
      if (sqlite3_column_type(q, 14) != SQLITE_NULL) {
        // Its own name and params over the shape it shares.
        auto own = std::make_shared<ExecTemplate>(*e.spec);
        own->name = column_text(q, 14);
        if (sqlite3_column_type(q, 15) != SQLITE_NULL) {
          try {
            own->params = codec::params_from_body(column_text(q, 15));
          } catch (const std::exception& ex) {
            return Status(
                StatusCode::kFailedPrecondition,
                fmt::format("{}: execution {} has malformed params: {}", where, e.id, ex.what()));
          }
        }
        e.spec = std::move(own);
      }
      e.due = from_ns(sqlite3_column_int64(q, 2));
      e.not_before = from_ns(sqlite3_column_int64(q, 3));
      e.seq = static_cast<uint64_t>(sqlite3_column_int64(q, 4));
      e.attempt = static_cast<uint32_t>(sqlite3_column_int64(q, 5));
      auto status = status_from_code(sqlite3_column_int(q, 6));
      if (!status) {
        return Status(StatusCode::kFailedPrecondition,
                      fmt::format("{}: execution {} has unknown status {}", where, e.id,
                                  sqlite3_column_int(q, 6)));
      }
      e.status = *status;
      e.fence = static_cast<uint64_t>(sqlite3_column_int64(q, 7));
      e.created = from_ns(sqlite3_column_int64(q, 8));
      if (auto v = column_opt_int(q, 9)) e.started = from_ns(*v);
      if (auto v = column_opt_int(q, 10)) e.finished = from_ns(*v);
      e.message = column_text(q, 11);
      e.output = column_text(q, 12);
      e.node = column_text(q, 13);
      switch (e.status) {
        case ExecStatus::kQueued:
          ++report_.queued;
          break;
        case ExecStatus::kRunning:
          ++report_.running;
          break;
        default:
          ++report_.terminal;
      }
      executions.push_back(std::move(e));
    }
    if (rc != SQLITE_DONE) return read_error("executions");
  }

  std::vector<HelperState> states;
  {
    Stmt s(db_,
           "SELECT name, enabled, schedule_override, planned_until, priority, expiry_ms "
           "FROM helper_state");
    if (s.get() == nullptr) return read_error("helper_state");
    int rc = 0;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      HelperState h;
      h.name = column_text(s.get(), 0);
      if (auto v = column_opt_int(s.get(), 1)) h.enabled = *v != 0;
      if (sqlite3_column_type(s.get(), 2) != SQLITE_NULL) {
        h.schedule_override = column_text(s.get(), 2);
      }
      if (auto v = column_opt_int(s.get(), 3)) h.planned_until = from_ns(*v);
      if (auto v = column_opt_int(s.get(), 4)) h.priority_override = static_cast<int>(*v);
      if (auto v = column_opt_int(s.get(), 5)) h.expiry_override = std::chrono::milliseconds(*v);
      states.push_back(std::move(h));
    }
    if (rc != SQLITE_DONE) return read_error("helper_state");
  }
  report_.helper_states = states.size();

  // Templates no execution uses any more (their executions were pruned).
  std::vector<int64_t> unused;
  for (const auto& [id, t] : templates) {
    if (!used.contains(id)) unused.push_back(id);
  }
  if (!unused.empty()) {
    std::string error;
    Stmt del(db_, "DELETE FROM templates WHERE id = ?1");
    if (del.get() != nullptr && exec_sql(db_, "BEGIN IMMEDIATE", error) == SQLITE_OK) {
      for (int64_t id : unused) {
        del.bind(1, id);
        del.run();
        ws_->by_body.erase(template_to_body(*templates[id]));
        ws_->by_ptr.erase(templates[id].get());
      }
      if (exec_sql(db_, "COMMIT", error) == SQLITE_OK) {
        report_.templates_dropped = unused.size();
      } else {
        exec_sql(db_, "ROLLBACK", error);
      }
    }
  }

  if (Status s = mem_.restore(std::move(executions), std::move(states)); !s.is_ok()) {
    return Status(StatusCode::kFailedPrecondition, fmt::format("{}: {}", where, s.message()));
  }
  report_.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return Status::ok();
}

SqliteStore::~SqliteStore() {
  if (writer_thread_.joinable()) {
    {
      std::lock_guard g(wmu_);
      closing_ = true;
    }
    writer_cv_.notify_all();
    writer_thread_.join();  // sets closed_
  }
  ws_.reset();  // finalizes statements before the connection closes
  if (db_ != nullptr) sqlite3_close_v2(db_);
  if (wal_fd_ >= 0) ::close(wal_fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
}

// ---- the writer -------------------------------------------------------------------------------

std::optional<std::string> SqliteStore::write(Batch& batch) {
  WriterState& w = *ws_;
  w.written = 0;
  if (w.begin.run() != SQLITE_DONE) return "begin: " + sqlite_error(db_);
  std::string error;
  auto fail = [&](std::string what) -> std::optional<std::string> {
    w.rollback.run();
    // Templates inserted in this transaction are gone with it: forget their ids.
    w.by_ptr.clear();
    w.by_body.clear();
    w.by_shape.clear();
    return what;
  };
  using Op = Batch::Op;
  using Kind = Batch::Kind;
  // Sorted by id (then call order): neighbouring rows go to neighbouring pages of the primary
  // key's b-tree, and the changes of one id become neighbours, so that only the latest is
  // written. Small groups keep call order (same-id changes then each get written, in order).
  std::vector<uint32_t>& order = w.order;
  order.resize(batch.ops.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  if (order.size() > 64) {
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
      const int c = batch.id(batch.ops[a]).compare(batch.id(batch.ops[b]));
      return c < 0 || (c == 0 && a < b);
    });
  }
  // A whole row; with `st`, its changed columns from that later change instead of its own.
  auto write_row = [&](const Execution& e, const Op* st) -> bool {
    // A ticket or ad-hoc submission has a template of its own; its row keeps its name and
    // params, and names the shape it shares with its project's other tickets.
    const bool own = e.spec->origin != ExecOrigin::kHelper;
    auto tid = w.template_id(e.spec, own, error);
    if (!tid) return false;
    Stmt& u = w.upsert;
    u.bind(1, e.id);
    u.bind(2, *tid);
    u.bind(3, to_ns(e.due));
    u.bind(5, static_cast<int64_t>(e.seq));
    u.bind(9, to_ns(e.created));
    if (st == nullptr) {
      u.bind(4, to_ns(e.not_before));
      u.bind(6, static_cast<int64_t>(e.attempt));
      u.bind(7, static_cast<int64_t>(status_code(e.status)));
      u.bind(8, static_cast<int64_t>(e.fence));
      u.bind_opt(10, e.started);
      u.bind_opt(11, e.finished);
      u.bind_text_or_null(12, e.message);
      u.bind_text_or_null(13, e.output);
      u.bind_text_or_null(14, e.node);
    } else {
      w.bind_state(u, batch, *st);
    }
    std::string params;  // bound without a copy: lives until run()
    if (own) {
      if (!e.spec->params.empty()) params = params_to_body(e.spec->params);
      u.bind(15, e.spec->name);
      u.bind_text_or_null(16, params);
    } else {
      u.bind_null(15);
      u.bind_null(16);
    }
    if (u.run() != SQLITE_DONE) {
      error = "write " + e.id + ": " + sqlite_error(db_);
      return false;
    }
    return true;
  };
  for (std::size_t i = 0; i < order.size();) {
    // The changes of one id: [i, j). The latest whole row or delete, and the latest state
    // change after it, say all there is to write.
    const std::string_view id = batch.id(batch.ops[order[i]]);
    std::size_t j = i + 1;
    while (j < order.size() && batch.id(batch.ops[order[j]]) == id) ++j;
    const Op* base = nullptr;
    const Op* st = nullptr;
    for (std::size_t k = j; k-- > i;) {
      const Op& op = batch.ops[order[k]];
      if (op.kind != Kind::kState) {
        base = &op;
        break;
      }
      if (st == nullptr) st = &op;
    }
    i = j;
    ++w.written;
    if (base != nullptr && base->kind == Kind::kRow) {
      if (!write_row(batch.rows[base->index], st)) return fail(error);
      continue;
    }
    if (base != nullptr) {  // kErase; nothing changes a deleted row after it
      w.erase.bind(1, id);
      if (w.erase.run() != SQLITE_DONE) {
        return fail(fmt::format("delete {}: {}", id, sqlite_error(db_)));
      }
      continue;
    }
    // Only state changes: the row was written by an earlier group.
    Stmt& u = w.update;
    u.bind(1, id);
    w.bind_state(u, batch, *st);
    if (u.run() != SQLITE_DONE) return fail(fmt::format("write {}: {}", id, sqlite_error(db_)));
    if (sqlite3_changes(db_) == 0) {
      // Not expected: every state change follows its row's first write in call order.
      ++w.missing;
      spdlog::error("store {}: execution {} changed, but has no row to update ({} so far)",
                    path_.string(), id, w.missing);
    }
  }
  for (const auto& [name, h] : batch.helper_states) {
    ++w.written;
    Stmt& p = w.put_state;
    p.bind(1, name);
    if (h.enabled) {
      p.bind(2, static_cast<int64_t>(*h.enabled ? 1 : 0));
    } else {
      p.bind_null(2);
    }
    if (h.schedule_override) {
      p.bind(3, *h.schedule_override);
    } else {
      p.bind_null(3);
    }
    p.bind_opt(4, h.planned_until);
    if (h.priority_override) {
      p.bind(5, static_cast<int64_t>(*h.priority_override));
    } else {
      p.bind_null(5);
    }
    if (h.expiry_override) {
      p.bind(6, static_cast<int64_t>(h.expiry_override->count()));
    } else {
      p.bind_null(6);
    }
    if (p.run() != SQLITE_DONE) return fail("helper state " + name + ": " + sqlite_error(db_));
  }
  if (w.commit.run() != SQLITE_DONE) return fail("commit: " + sqlite_error(db_));
  return std::nullopt;
}

bool SqliteStore::sync_wal(std::string* error) {
  if (wal_fd_ < 0) {
    std::string wal = path_.string() + "-wal";
    wal_fd_ = ::open(wal.c_str(), O_RDONLY | O_CLOEXEC);
    if (wal_fd_ < 0) {
      if (error != nullptr) *error = fmt::format("open {}: {}", wal, std::strerror(errno));
      return false;
    }
  }
  const auto started = std::chrono::steady_clock::now();
  if (::fdatasync(wal_fd_) != 0) {
    if (error != nullptr) {
      *error = fmt::format("fdatasync {}-wal: {}", path_.string(), std::strerror(errno));
    }
    return false;
  }
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
  std::lock_guard g(wmu_);
  ++stats_.fsyncs;
  fsync_seconds_.observe(took.count());
  return true;
}

namespace {
// An acknowledging call whose write failed: the change stays in memory and queued for the
// writer's retries, but it was not acknowledged.
Status not_durable(const std::filesystem::path& path) {
  return Status(StatusCode::kUnavailable,
                fmt::format("store {}: the change could not be written (see health); it was "
                            "not acknowledged",
                            path.string()));
}
}  // namespace

void SqliteStore::syncer() {
  std::unique_lock lock(wmu_);
  while (true) {
    sync_cv_.wait(lock, [&] { return committed_token_ > durable_token_ || syncer_exit_; });
    if (committed_token_ <= durable_token_) return;  // syncer_exit_, nothing left
    // One fdatasync covers every commit made before it starts; commits made meanwhile wait
    // for the next one.
    const uint64_t target = committed_token_;
    lock.unlock();
    std::string error;
    const bool synced = sync_wal(&error);
    lock.lock();
    if (!synced) {
      // As a failed write: the changes stay (committed, in memory), but are not acknowledged;
      // they become durable with the first fsync that succeeds.
      if (!failing_ || *failing_ != error) {
        spdlog::error("store {}: {}; retrying every second (submissions are refused meanwhile)",
                      path_.string(), error);
      }
      failing_ = error;
      attempted_token_ = std::max(attempted_token_, target);
      ++stats_.failures;
      durable_cv_.notify_all();
      settle_callbacks(lock, target, not_durable(path_));
      if (syncer_exit_) return;
      sync_cv_.wait_for(lock, std::chrono::seconds(1));
      continue;
    }
    durable_token_ = target;
    durable_seen_.store(target, std::memory_order_release);
    durable_cv_.notify_all();
    settle_callbacks(lock, target, Status::ok());
  }
}

void SqliteStore::writer() {
  const bool batch_mode = options_.durability == SqliteOptions::Durability::kBatch;
  auto last_sync = std::chrono::steady_clock::now();
  auto last_commit = last_sync - options_.commit_gather;  // when the last commit started
  bool unsynced = false;      // batch mode: commits since the last WAL fsync
  std::size_t last_size = 0;  // changes the last commit carried
  std::unique_lock lock(wmu_);
  while (true) {
    if (batch_mode && unsynced) {
      writer_cv_.wait_until(lock, last_sync + options_.batch_window,
                            [&] { return !pending_->empty() || closing_ || !backups_.empty(); });
    } else {
      writer_cv_.wait(lock, [&] { return !pending_->empty() || closing_ || !backups_.empty(); });
    }
    // Between two commits: a backup sees every commit made so far and none half done.
    if (!backups_.empty()) run_backups(lock);
    if (pending_->empty()) {
      if (batch_mode && unsynced &&
          (closing_ || std::chrono::steady_clock::now() >= last_sync + options_.batch_window)) {
        lock.unlock();
        sync_wal();
        lock.lock();
        last_sync = std::chrono::steady_clock::now();
        unsynced = false;
      }
      if (closing_) break;
      continue;
    }
    // Under load (the last commit began moments ago and carried several changes), gather a
    // little more for this one. A lone client's submissions, one per commit, never wait.
    const auto gather_until = last_commit + options_.commit_gather;
    if (!closing_ && !failing_ && last_size > 1 && pending_->size() < SqliteOptions::kGatherRows &&
        std::chrono::steady_clock::now() < gather_until) {
      writer_cv_.wait_until(lock, gather_until, [&] {
        return closing_ || pending_->size() >= SqliteOptions::kGatherRows;
      });
    }
    last_commit = std::chrono::steady_clock::now();
    std::unique_ptr<Batch> batch = std::move(pending_);
    pending_ = spare_ ? std::move(spare_) : std::make_unique<Batch>();
    last_size = batch->size();
    const uint64_t token = queued_token_;
    lock.unlock();

    const auto write_started = std::chrono::steady_clock::now();
    std::optional<std::string> error = write(*batch);
    const std::chrono::duration<double> write_took =
        std::chrono::steady_clock::now() - write_started;
    if (!error && batch_mode) {
      unsynced = true;
      auto now = std::chrono::steady_clock::now();
      if (now >= last_sync + options_.batch_window) {
        sync_wal();
        last_sync = now;
        unsynced = false;
      }
    }

    const uint64_t written = ws_->written;
    if (!error) batch->clear();
    lock.lock();
    if (!error) {
      ++stats_.commits;
      stats_.rows_written += written;
      spare_ = std::move(batch);
      commit_seconds_.observe(write_took.count());
      if (failing_) {
        spdlog::info("store {}: writing again after: {}", path_.string(), *failing_);
        failing_.reset();
      }
      if (!batch_mode) {
        committed_token_ = token;  // durable once the syncer's next fsync returns
        sync_cv_.notify_one();
      } else {
        durable_token_ = token;
        durable_seen_.store(token, std::memory_order_release);
        durable_cv_.notify_all();
        settle_callbacks(lock, token, Status::ok());
      }
      if (checkpoint_due_) {
        lock.unlock();
        checkpoint_if_due();
        lock.lock();
      }
      continue;
    }
    // Earlier commits are settled first (as durable), so that only this write's changes are
    // refused below.
    durable_cv_.wait(lock, [&] { return durable_token_ >= committed_token_; });
    ++stats_.failures;
    if (!failing_ || *failing_ != *error) {
      spdlog::error(
          "store {}: write failed, retrying every second (submissions are refused "
          "meanwhile): {}",
          path_.string(), *error);
    }
    failing_ = *error;
    attempted_token_ = token;
    pending_->merge_older(*batch);
    durable_cv_.notify_all();  // submitters waiting with a limit re-check failing_
    settle_callbacks(lock, token, not_durable(path_));
    if (closing_) {
      spdlog::error("store {}: closing with {} changes not written: {}", path_.string(),
                    pending_->size(), *error);
      break;
    }
    writer_cv_.wait_for(lock, std::chrono::seconds(1),
                        [&] { return closing_ || !backups_.empty(); });
  }
  if (syncer_thread_.joinable()) {
    syncer_exit_ = true;
    sync_cv_.notify_all();
    lock.unlock();
    syncer_thread_.join();
    lock.lock();
  }
  closed_ = true;
  durable_cv_.notify_all();
  for (auto& req : backups_) {
    req->result.set_value(
        Status(StatusCode::kUnavailable,
               fmt::format("store {}: closing; no backup taken", path_.string())));
  }
  backups_.clear();
  settle_callbacks(lock, UINT64_MAX, not_durable(path_));
}

std::size_t SqliteStore::pending_size_locked() const { return pending_->size(); }

void SqliteStore::when_durable(uint64_t token, DurableCallback cb) {
  std::unique_lock lock(wmu_);
  if (durable_token_ >= token) {
    lock.unlock();
    cb(Status::ok());
    return;
  }
  if (closed_) {
    lock.unlock();
    cb(not_durable(path_));
    return;
  }
  callbacks_.emplace_back(token, std::move(cb));
}

void SqliteStore::settle_callbacks(std::unique_lock<std::mutex>& lock, uint64_t up_to,
                                   const Status& status) {
  std::vector<DurableCallback> due;
  while (!callbacks_.empty() && callbacks_.front().first <= up_to) {
    due.push_back(std::move(callbacks_.front().second));
    callbacks_.pop_front();
  }
  if (due.empty()) return;
  lock.unlock();
  for (auto& cb : due) cb(status);
  lock.lock();
}

// ---- queueing ---------------------------------------------------------------------------------

bool SqliteStore::wait_token(uint64_t token, bool fail_fast) {
  // Claimed ahead, most runs find their claim on disk already: no lock for them.
  if (durable_seen_.load(std::memory_order_acquire) >= token) return true;
  std::unique_lock lock(wmu_);
  durable_cv_.wait(lock, [&] {
    return durable_token_ >= token || closed_ ||
           (fail_fast && failing_ && attempted_token_ >= token);
  });
  return durable_token_ >= token;
}

// A claim waits until it is on disk however long that takes: a run must never start
// unrecorded (the writer retries every second while the disk is full).
bool SqliteStore::wait_durable(uint64_t token) { return wait_token(token, false); }

bool SqliteStore::flush() {
  uint64_t token = 0;
  {
    std::lock_guard g(wmu_);
    token = queued_token_;
  }
  return wait_token(token, true);
}

Status SqliteStore::refuse_if_failing() const {
  std::lock_guard g(wmu_);
  if (!failing_) return Status::ok();
  return Status(
      StatusCode::kUnavailable,
      fmt::format("store {} cannot write ({}); nothing was accepted", path_.string(), *failing_));
}

Status SqliteStore::health() const {
  std::lock_guard g(wmu_);
  if (failing_) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("store {} cannot write: {}", path_.string(), *failing_));
  }
  if (closed_) return Status(StatusCode::kUnavailable, "store closed");
  return Status::ok();
}

std::string SqliteStore::describe() const { return "sqlite:" + path_.string(); }

void SqliteStore::write_metrics(std::string& out) const {
  std::lock_guard g(wmu_);
  metric_family(out, "schedd_sqlite_commit_seconds", "histogram",
                "Time the SQLite writer took for one group commit (BEGIN to COMMIT, without the "
                "WAL fsync).");
  commit_seconds_.write(out, "schedd_sqlite_commit_seconds");
  metric_family(out, "schedd_sqlite_fsync_seconds", "histogram",
                "Time one fdatasync of the SQLite WAL took.");
  fsync_seconds_.write(out, "schedd_sqlite_fsync_seconds");
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    metric_family(out, name, "counter", help);
    out += fmt::format("{} {}\n", name, v);
  };
  counter("schedd_sqlite_commits_total", "Group commits the SQLite writer made.", stats_.commits);
  counter("schedd_sqlite_rows_written_total", "Rows the SQLite writer upserted or deleted.",
          stats_.rows_written);
  counter("schedd_sqlite_write_failures_total",
          "SQLite commits or WAL fsyncs that failed (and were retried).", stats_.failures);
  counter("schedd_sqlite_checkpoints_total", "WAL checkpoints run.", stats_.checkpoints);
  metric_family(out, "schedd_sqlite_pending_changes", "gauge",
                "Changes waiting for the SQLite writer's next commit.");
  out += fmt::format("schedd_sqlite_pending_changes {}\n", pending_->size());
}

SqliteWriterStats SqliteStore::writer_stats() const {
  std::lock_guard g(wmu_);
  return stats_;
}

// ---- the Store calls --------------------------------------------------------------------------

StatusOr<std::size_t> SqliteStore::plan(std::vector<Execution> executions, TimePoint now) {
  std::lock_guard lock(mu_);
  std::vector<Execution> created;
  auto n = mem_.plan(std::move(executions), now, &created);
  if (!n.is_ok() || created.empty()) return n;
  enqueue([&](Batch& b) {
    b.rows.reserve(b.rows.size() + created.size());
    b.ops.reserve(b.ops.size() + created.size());
    for (auto& e : created) b.put(std::move(e));
  });
  return n;
}

StatusOr<std::pair<Execution, std::size_t>> SqliteStore::submit(Execution execution, TimePoint now,
                                                                std::size_t capacity_queued) {
  uint64_t token = 0;
  StatusOr<std::pair<Execution, std::size_t>> result = internal_error("unset");
  {
    std::lock_guard lock(mu_);
    if (Status s = refuse_if_failing(); !s.is_ok()) return s;
    result = mem_.submit(std::move(execution), now, capacity_queued);
    if (!result.is_ok()) return result;
    token = enqueue([&](Batch& b) { b.put(result->first); });
  }
  if (!wait_token(token, true)) return not_durable(path_);
  return result;
}

StatusOr<std::pair<Execution, std::size_t>> SqliteStore::submit_deferred(
    Execution execution, TimePoint now, std::size_t capacity_queued, DurableCallback on_durable) {
  std::lock_guard lock(mu_);
  if (Status s = refuse_if_failing(); !s.is_ok()) return s;
  auto result = mem_.submit(std::move(execution), now, capacity_queued);
  if (!result.is_ok()) return result;
  // Registered under mu_, right after its change was queued, so callbacks_ stays in token
  // order.
  when_durable(enqueue([&](Batch& b) { b.put(result->first); }), std::move(on_durable));
  return result;
}

StatusOr<ClaimResult> SqliteStore::claim(std::string_view lane, std::size_t max, TimePoint now,
                                         std::string_view node) {
  std::lock_guard lock(mu_);
  auto result = mem_.claim(lane, max, now, node);
  if (!result.is_ok()) return result;
  if (result->claimed.empty() && result->expired.empty() && result->skipped.empty()) {
    return result;
  }
  result->durable_token = enqueue([&](Batch& b) {
    for (const auto* list : {&result->claimed, &result->expired, &result->skipped}) {
      for (const auto& e : *list) b.put_state(e);
    }
  });
  return result;
}

Status SqliteStore::complete(std::string_view id, uint64_t fence, const Completion& c) {
  std::lock_guard lock(mu_);
  Execution after;
  Status s = mem_.complete(id, fence, c, &after);
  if (s.is_ok()) enqueue([&](Batch& b) { b.put_state(after); });
  return s;
}

std::optional<TimePoint> SqliteStore::next_event(TimePoint now) { return mem_.next_event(now); }

StatusOr<Execution> SqliteStore::cancel(std::string_view id, TimePoint now) {
  uint64_t token = 0;
  StatusOr<Execution> result = internal_error("unset");
  {
    std::lock_guard lock(mu_);
    result = mem_.cancel(id, now);
    if (!result.is_ok()) return result;
    token = enqueue([&](Batch& b) { b.put_state(*result); });
  }
  if (!wait_token(token, true)) return not_durable(path_);
  return result;
}

// Waits: disable and update acknowledge the removal to an operator, and a restart must not
// find the removed executions queued under a disabled helper.
StatusOr<std::size_t> SqliteStore::remove_planned(std::string_view name, TimePoint due_after) {
  uint64_t token = 0;
  StatusOr<std::size_t> n = internal_error("unset");
  {
    std::lock_guard lock(mu_);
    std::vector<std::string> removed;
    n = mem_.remove_planned(name, due_after, &removed);
    if (!n.is_ok() || removed.empty()) return n;
    token = enqueue([&](Batch& b) {
      for (const auto& id : removed) b.erase(id);
    });
  }
  if (!wait_token(token, true)) return not_durable(path_);
  return n;
}

std::optional<Execution> SqliteStore::get(std::string_view id) { return mem_.get(id); }
std::vector<Execution> SqliteStore::list(const ExecutionFilter& filter) {
  return mem_.list(filter);
}
std::optional<std::size_t> SqliteStore::position(std::string_view id) { return mem_.position(id); }
std::vector<Execution> SqliteStore::key_queue(std::string_view key) { return mem_.key_queue(key); }
std::vector<LaneCounts> SqliteStore::counts(TimePoint now) { return mem_.counts(now); }
std::optional<HelperState> SqliteStore::helper_state(std::string_view name) {
  return mem_.helper_state(name);
}

std::size_t SqliteStore::prune_history(const HistoryCutoffs& cutoffs) {
  std::lock_guard lock(mu_);
  std::vector<std::string> pruned;
  std::size_t n = mem_.prune_history(cutoffs, &pruned);
  if (pruned.empty()) return n;
  enqueue([&](Batch& b) {
    for (const auto& id : pruned) b.erase(id);
  });
  return n;
}

Status SqliteStore::put_helper_state(const HelperState& state) {
  uint64_t token = 0;
  bool operator_change = true;
  {
    std::lock_guard lock(mu_);
    // Only the planner's watermark moved: no wait. It is written with (or after) the plan it
    // covers, so a crash loses both or neither, and the planner plans again from the older
    // watermark; waiting would cost one commit per helper per planning round.
    HelperState old = mem_.helper_state(state.name).value_or(HelperState{});
    operator_change = old.enabled != state.enabled ||
                      old.schedule_override != state.schedule_override ||
                      old.priority_override != state.priority_override ||
                      old.expiry_override != state.expiry_override;
    if (Status s = mem_.put_helper_state(state); !s.is_ok()) return s;
    token = enqueue([&](Batch& b) { b.helper_states.insert_or_assign(state.name, state); });
  }
  if (operator_change && !wait_token(token, true)) return not_durable(path_);
  return Status::ok();
}

std::vector<Execution> SqliteStore::recover(TimePoint now) {
  uint64_t token = 0;
  std::vector<Execution> interrupted;
  {
    std::lock_guard lock(mu_);
    std::vector<Execution> after;
    interrupted = mem_.recover(now, &after);
    if (after.empty()) return interrupted;
    token = enqueue([&](Batch& b) {
      for (auto& e : after) b.put(std::move(e));
    });
  }
  wait_token(token, true);
  return interrupted;
}

}  // namespace schedd
