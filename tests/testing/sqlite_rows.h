// Reads a schedd SQLite store file from outside the daemon, as a crash right now would leave
// it. Not thread-safe per connection: one sqlite3* per thread.
#pragma once

#include <sqlite3.h>

#include <string>

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

}  // namespace schedd::testing
