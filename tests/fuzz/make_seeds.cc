// Writes seed inputs that only the code can make well: real SQLite store files for
// sqlite_store_fuzz (a store with executions in every status, params of every type, helper
// state; rewritten with page_size 512 so that a file is a few KB), and the template bodies
// the Redis store keeps, for redis_reply_fuzz. Run once when the store's schema changes:
//   build/F/bin/schedd_fuzz_make_seeds tests/fuzz/corpus
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "core/runner/protocol.h"
#include "core/store/codec.h"
#include "core/store/sqlite_store.h"

namespace {

using namespace schedd;
namespace fs = std::filesystem;

const TimePoint kT0{std::chrono::seconds(1767225600)};  // 2026-01-01T00:00:00Z

std::shared_ptr<ExecTemplate> spec(const std::string& name, ExecOrigin origin) {
  auto t = std::make_shared<ExecTemplate>();
  t->origin = origin;
  t->name = name;
  t->executor = origin == ExecOrigin::kTicket ? "ticket" : "shell";
  t->key = name;
  t->priority = 2;
  t->expiry = std::chrono::minutes(30);
  t->timeout = std::chrono::seconds(90);
  t->max_attempts = 3;
  t->retry_delays = {std::chrono::seconds(0), std::chrono::seconds(30)};
  t->params = {{"command", ParamValue::string("echo hi")},
               {"max_output", ParamValue::integer(4096)},
               {"ratio", ParamValue::number(0.25)},
               {"inherit_env", ParamValue::boolean(true)},
               {"grace", ParamValue::duration(std::chrono::seconds(5))},
               {"args", ParamValue::list({"-c", "x"})},
               {"env", ParamValue::map({{"A", "1"}})}};
  return t;
}

Execution exec(std::shared_ptr<const ExecTemplate> t, TimePoint due, const std::string& id) {
  Execution e;
  e.id = id;
  e.spec = std::move(t);
  e.due = due;
  e.not_before = due;
  return e;
}

int write_store(const fs::path& path, int variant) {
  for (const char* s : {"", "-wal", "-shm", ".lock"}) fs::remove(path.string() + s);
  {
    auto store = SqliteStore::open(path);
    if (!store.is_ok()) {
      std::cerr << store.status().to_string() << "\n";
      return 1;
    }
    Store& s = **store;
    auto helper = spec("hourly", ExecOrigin::kHelper);
    std::vector<Execution> planned;
    for (int i = 0; i < 3; ++i) {
      const TimePoint due = kT0 + std::chrono::hours(i);
      planned.push_back(exec(helper, due, planned_id("hourly", due)));
    }
    (void)s.plan(planned, kT0);
    if (variant >= 1) {
      auto ticket = spec("acme", ExecOrigin::kTicket);
      (void)s.submit(exec(ticket, kT0, "acme:T-1"), kT0, 100);
      (void)s.submit(exec(spec("adhoc", ExecOrigin::kAdhoc), kT0, "adhoc-1"), kT0, 100);
      auto claimed = s.claim("default", 2, kT0 + std::chrono::seconds(1), "node-a");
      if (claimed.is_ok() && !claimed->claimed.empty()) {
        const Execution& c = claimed->claimed.front();
        Completion done;
        done.status = ExecStatus::kFailed;
        done.retry = variant >= 2;
        done.retry_at = kT0 + std::chrono::seconds(30);
        done.finished = kT0 + std::chrono::seconds(2);
        done.message = "exit status 1";
        done.output = "boom\n";
        (void)s.complete(c.id, c.fence, done);
      }
    }
    HelperState state;
    state.name = "hourly";
    state.enabled = variant != 1;
    state.schedule_override = "{ every = \"30m\" }";
    state.planned_until = kT0 + std::chrono::hours(2);
    state.priority_override = 1;
    state.expiry_override = std::chrono::minutes(10);
    (void)s.put_helper_state(state);
  }
  // Small pages, no WAL: one self-contained file of a few KB.
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) return 1;
  const int rc = sqlite3_exec(db, "PRAGMA journal_mode=DELETE; PRAGMA page_size=512; VACUUM;",
                              nullptr, nullptr, nullptr);
  sqlite3_close(db);
  for (const char* s : {"-wal", "-shm", ".lock"}) fs::remove(path.string() + s);
  return rc == SQLITE_OK ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " CORPUS_DIR (tests/fuzz/corpus)\n";
    return 2;
  }
  const fs::path corpus = argv[1];
  fs::create_directories(corpus / "sqlite_store");
  for (int v = 0; v < 3; ++v) {
    if (write_store(corpus / "sqlite_store" / ("store_v" + std::to_string(v) + ".db"), v) != 0) {
      std::cerr << "cannot write store seed " << v << "\n";
      return 1;
    }
  }
  fs::create_directories(corpus / "redis_reply");
  const std::string body = codec::template_to_body(*spec("hourly", ExecOrigin::kHelper));
  std::ofstream(corpus / "redis_reply" / "template_bulk") << "$" << body.size() << "\r\n"
                                                          << body << "\r\n";
  std::ofstream(corpus / "redis_reply" / "template_mget") << "*2\r\n$" << body.size() << "\r\n"
                                                          << body << "\r\n$-1\r\n";
  // Runner protocol: each frame alone, a runner's whole conversation, and a daemon's.
  namespace rp = runner;
  const fs::path frames = corpus / "runner_protocol";
  fs::create_directories(frames);
  auto write = [&](const std::string& name, const std::string& bytes) {
    std::ofstream(frames / name, std::ios::binary) << bytes;
  };
  rp::Hello hello;
  hello.pid = 4242;
  hello.plugin_name = "shell";
  hello.plugin_version = "1.2.0";
  hello.load_time = std::chrono::microseconds(1500);
  ExecutorInfo info;
  info.name = "shell";
  info.description = "runs a command";
  info.params = {ParamSpec{"command", ParamType::kString, true, std::nullopt, "the command"},
                 ParamSpec{"timeout", ParamType::kDuration, false, "\"30s\"", ""}};
  hello.executors = {info};
  rp::RunFrame run;
  run.seq = 7;
  run.executor = "shell";
  run.execution_id = "hourly@1767225600";
  run.name = "hourly";
  run.key = "hourly";
  run.lane = "default";
  run.attempt = 2;
  run.due_unix_ms = 1767225600000;
  run.deadline_unix_ms = 1767225690000;
  run.fence = 12;
  run.hard_deadline_ns = 5000000000;
  run.params = spec("hourly", ExecOrigin::kHelper)->params;
  std::string one, runner_side, daemon_side;
  rp::encode(hello, one);
  write("hello", one);
  runner_side += one;
  one.clear();
  rp::encode_load_error("plugins/libx.so: built for plugin ABI 1, this runner speaks ABI 2", one);
  write("load_error", one);
  one.clear();
  rp::encode(rp::LogFrame{7, 2, "step 1 done"}, one);
  write("log", one);
  runner_side += one;
  one.clear();
  rp::encode(rp::ProgressFrame{7, 0.5, "half way"}, one);
  write("progress", one);
  runner_side += one;
  one.clear();
  rp::encode(rp::ResultFrame{7, 1, "ok", "hi\n", 2500000, 3}, one);
  write("result", one);
  runner_side += one;
  one.clear();
  rp::encode(run, one);
  write("run", one);
  daemon_side += one;
  one.clear();
  rp::encode(rp::StopFrame{7}, one);
  write("stop", one);
  daemon_side += one;
  one.clear();
  rp::encode(rp::ExtendFrame{7, 9000000000}, one);
  write("extend", one);
  daemon_side += one;
  write("runner_conversation", runner_side);
  write("daemon_conversation", daemon_side);
  std::cout << "seeds written to " << corpus.string() << "\n";
  return 0;
}
