// Reads a schedd SQLite store file from outside the store. The store holds its file in SQLite's
// exclusive locking mode while it is open, so no other connection can read the file itself:
// a test reads a copy of the files (CrashCopy: what a crash right now would leave) or a backup
// the store made (POST /v1/store/backup, SqliteStore::backup()). Not thread-safe per object.
#pragma once

#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

namespace schedd::testing {

// Whether execution `id` is in the file, read through `db` (a connection of the reader's own).
inline bool execution_on_disk(sqlite3* db, const std::string& id) {
  sqlite3_stmt* st = nullptr;
  bool found = false;
  if (sqlite3_prepare_v2(db, "SELECT 1 FROM executions WHERE id = ?", -1, &st, nullptr) ==
      SQLITE_OK) {
    sqlite3_bind_text(st, 1, id.c_str(), -1, SQLITE_TRANSIENT);
    found = sqlite3_step(st) == SQLITE_ROW;
  }
  sqlite3_finalize(st);
  return found;
}

// An open connection to a database in a folder of its own, removed with it.
class DbCopy {
 public:
  DbCopy() {
    char tmpl[] = "/tmp/schedd-dbcopy-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) dir_ = tmpl;
  }
  ~DbCopy() {
    sqlite3_close(db_);
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  DbCopy(const DbCopy&) = delete;
  DbCopy& operator=(const DbCopy&) = delete;

  // The connection; nullptr if the copy could not be made or opened.
  sqlite3* db() const { return db_; }
  std::filesystem::path file() const { return dir_ / "copy.db"; }

 protected:
  void open() {
    if (sqlite3_open_v2(file().c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
      sqlite3_close(db_);
      db_ = nullptr;
    }
  }
  std::filesystem::path dir_;
  sqlite3* db_ = nullptr;
};

// The store's files (PATH, then PATH-wal) copied as they are on disk now and opened: SQLite
// recovers the copied WAL's committed frames, as it would after a crash. Sound while the store
// runs no checkpoint during the copy (SqliteOptions::checkpoint_pages above what the test
// writes): a checkpoint between the two copies could leave the copy without pages it moved into
// the database file meanwhile.
class CrashCopy : public DbCopy {
 public:
  explicit CrashCopy(const std::filesystem::path& db) {
    std::error_code ec;
    if (dir_.empty()) return;
    std::filesystem::copy_file(db, file(), ec);
    if (ec) return;
    std::filesystem::path wal = db.string() + "-wal";
    if (std::filesystem::exists(wal, ec)) {
      std::filesystem::copy_file(wal, file().string() + "-wal", ec);
      if (ec) return;
    }
    open();
  }
};

// A backup's bytes (POST /v1/store/backup), written to a file and opened.
class BackupCopy : public DbCopy {
 public:
  explicit BackupCopy(const std::string& bytes) {
    if (dir_.empty()) return;
    {
      std::ofstream out(file(), std::ios::binary);
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      if (!out) return;
    }
    open();
  }
};

}  // namespace schedd::testing
