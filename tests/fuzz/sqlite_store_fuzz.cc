// libFuzzer target for opening a damaged SQLite store file: the input is the whole file
// (the seeds are real store files written by SqliteStore, made small with page_size 512; see
// make_seeds.cc), written to a scratch folder and opened with SqliteStore::open, which loads
// every row into memory; then recovered as the engine does at start-up, listed and counted.
//
// Any file must open or be refused with an error naming it; what opens must answer list,
// counts and recover without crashing. Never a crash, hang or assert.
//
// Built as `sqlite_store_fuzz` (fuzz preset) and `sqlite_store_fuzz_replay` (every build);
// see tests/fuzz/CMakeLists.txt.
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>

#include <spdlog/spdlog.h>

#include "core/store/sqlite_store.h"
#include "fuzz_check.h"

namespace {

namespace fs = std::filesystem;

// A folder of this process's own, removed at exit.
struct Scratch {
  fs::path dir;
  Scratch() {
    dir = fs::temp_directory_path() / ("schedd-sqlite-fuzz-" + std::to_string(::getpid()));
    fs::create_directories(dir);
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Quiet: errors come back as statuses and answers; the log would only slow the fuzzer.
  static const bool quiet = (spdlog::set_level(spdlog::level::off), true);
  (void)quiet;
  static Scratch scratch;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const fs::path path = scratch.dir / "store.db";
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm", ".lock"}) {
    fs::remove(path.string() + suffix, ec);
  }
  {
    std::ofstream out(path, std::ios::binary);
    out.write(input.data(), static_cast<std::streamsize>(input.size()));
    FUZZ_CHECK("sqlite_store_fuzz", out.good(), "cannot write the scratch file", input);
  }

  schedd::SqliteOptions options;
  options.durability = schedd::SqliteOptions::Durability::kBatch;  // no fsync per input
  options.commit_gather = std::chrono::microseconds(0);
  auto store = schedd::SqliteStore::open(path, options);
  if (!store.is_ok()) {
    FUZZ_CHECK("sqlite_store_fuzz",
               store.status().message().find(path.string()) != std::string::npos,
               "an open error that does not name the file", input);
    return 0;
  }
  // 2026-01-01T01:00:00Z: after every due time in the seeds.
  const schedd::TimePoint now{std::chrono::seconds(1767229200)};
  (void)(*store)->recover(now);
  schedd::ExecutionFilter all;
  all.limit = 1000;
  for (const auto& e : (*store)->list(all)) {
    FUZZ_CHECK("sqlite_store_fuzz", e.spec != nullptr, "a loaded execution without a template",
               input);
    (void)(*store)->get(e.id);
    (void)(*store)->position(e.id);
  }
  (void)(*store)->counts(now);
  (void)(*store)->helper_state("hourly");
  return 0;
}
