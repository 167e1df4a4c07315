// schedd-bench: end-to-end load driver for the engine. Runs the real planner, store and
// dispatcher with the real noop and sleep plugins loaded through the real loader, and prints
// one JSON object on stdout. `--quick` runs a smaller version for CI smoke tests.
//
//   build/release/bin/schedd-bench --plugin-dir build/release/plugins [--quick]
//
// Numbers and how to read them: docs/PERFORMANCE.md.
#include <malloc.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/dispatch/dispatcher.h"
#include "core/planner/planner.h"
#include "core/plugin_host/plugin_host.h"
#include "core/schedule/schedule.h"
#include "core/store/memory_store.h"
#include "core/store/sqlite_store.h"

namespace schedd {
namespace {

using Clk = std::chrono::steady_clock;

double rss_mb() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

double seconds_since(Clk::time_point t) {
  return std::chrono::duration<double>(Clk::now() - t).count();
}

std::shared_ptr<ExecTemplate> noop_template(const std::string& name, const std::string& key) {
  auto t = std::make_shared<ExecTemplate>();
  t->name = name;
  t->executor = "noop";
  t->key = key;
  t->max_attempts = 1;
  return t;
}

// Counts finished executions and wakes a waiter at a target.
struct Counter {
  std::mutex mu;
  std::condition_variable cv;
  std::size_t done = 0;
  void add() {
    std::lock_guard l(mu);
    ++done;
    cv.notify_all();
  }
  void wait_for(std::size_t n) {
    std::unique_lock l(mu);
    cv.wait(l, [&] { return done >= n; });
  }
};

struct Plan {
  std::size_t executions = 0;
  double seconds = 0;
  double bytes_per_execution = 0;
};

// 10,000 helpers firing every minute, planned over the 2 h window.
Plan bench_plan(std::size_t helpers) {
  MemoryStore store;
  Planner planner(store, std::chrono::hours(2));
  auto every = std::make_shared<const Schedule>(*Schedule::every(std::chrono::minutes(1)));
  for (std::size_t i = 0; i < helpers; ++i) {
    std::string name = "helper-" + std::to_string(i);
    planner.set_helper({name, noop_template(name, name), every, true, CatchUpPolicy::kAll});
  }
  malloc_trim(0);
  double before = rss_mb();
  auto t0 = Clk::now();
  auto report = planner.plan_all(SystemClock::instance().now());
  Plan p;
  p.seconds = seconds_since(t0);
  p.executions = report.is_ok() ? report->created : 0;
  p.bytes_per_execution =
      (rss_mb() - before) * 1024 * 1024 / std::max<std::size_t>(1, p.executions);
  return p;
}

DispatcherOptions options(std::size_t workers) {
  DispatcherOptions o;
  o.lanes = {{"default", workers}};
  o.log_transitions = false;
  o.expand_every = std::chrono::hours(24);
  return o;
}

// `total` noop executions on `keys` keys, all due a second ago.
std::vector<Execution> ready_batch(std::size_t total, std::size_t keys, TimePoint now) {
  std::vector<std::shared_ptr<ExecTemplate>> templates;
  for (std::size_t k = 0; k < keys; ++k) {
    templates.push_back(noop_template("k" + std::to_string(k), "k" + std::to_string(k)));
  }
  std::vector<Execution> batch;
  batch.reserve(total);
  for (std::size_t i = 0; i < total; ++i) {
    Execution e;
    e.id = "e" + std::to_string(i);
    e.spec = templates[i % keys];
    e.due = e.not_before = now - std::chrono::seconds(1);
    batch.push_back(std::move(e));
  }
  return batch;
}

// `total` ready noop executions over `keys` keys through `workers` workers.
double bench_dispatch(const PluginHost& plugins, std::size_t total, std::size_t keys,
                      std::size_t workers) {
  MemoryStore store;
  Planner planner(store, std::chrono::hours(2));
  TimePoint now = SystemClock::instance().now();
  (void)store.plan(ready_batch(total, keys, now), now);
  Counter counter;
  Dispatcher d(
      store, planner, SystemClock::instance(), [&](std::string_view n) { return plugins.find(n); },
      options(workers));
  d.add_observer({.on_finish = [&](const Execution&, const Completion&) { counter.add(); }});
  auto t0 = Clk::now();
  d.start();
  counter.wait_for(total);
  double s = seconds_since(t0);
  d.stop(std::chrono::milliseconds(0));
  return total / s;
}

struct Lag {
  double p50 = 0, p99 = 0, max = 0;
};

std::size_t g_claim_ahead = SqliteOptions{}.claim_ahead;

std::unique_ptr<SqliteStore> open_sqlite(const std::filesystem::path& path) {
  SqliteOptions o;  // durability full: fsync every commit
  o.claim_ahead = g_claim_ahead;
  auto s = SqliteStore::open(path, o);
  if (!s.is_ok()) {
    std::cerr << s.status().to_string() << "\n";
    std::exit(1);
  }
  return std::move(s).value();
}

struct Durable {
  double dispatch_per_second = 0;
  double bytes_per_execution = 0;  // the file after dispatch: every execution in history
  uint64_t commits = 0;
};

// The dispatch benchmark on the SQLite store with full durability: every claim is on disk
// (fsync) before its run starts, every completion is written in the next group commit.
Durable bench_durable_dispatch(const PluginHost& plugins, const std::filesystem::path& dir,
                               std::size_t total, std::size_t keys, std::size_t workers) {
  const auto path = dir / "dispatch.db";
  Durable out;
  {
    auto store = open_sqlite(path);
    Planner planner(*store, std::chrono::hours(2));
    TimePoint now = SystemClock::instance().now();
    (void)store->plan(ready_batch(total, keys, now), now);
    store->flush();
    const uint64_t commits_before = store->writer_stats().commits;
    Counter counter;
    Dispatcher d(
        *store, planner, SystemClock::instance(),
        [&](std::string_view n) { return plugins.find(n); }, options(workers));
    d.add_observer({.on_finish = [&](const Execution&, const Completion&) { counter.add(); }});
    auto t0 = Clk::now();
    d.start();
    counter.wait_for(total);
    d.stop(std::chrono::milliseconds(0));
    store->flush();  // the last completions on disk too
    out.dispatch_per_second = total / seconds_since(t0);
    out.commits = store->writer_stats().commits - commits_before;
  }
  // Closed: SQLite has checkpointed the WAL into the file and removed it.
  out.bytes_per_execution = static_cast<double>(std::filesystem::file_size(path)) / total;
  return out;
}

struct Ack {
  double p50 = 0, p99 = 0;
};

// Submission acknowledgement latency on the SQLite store (full durability): `threads`
// clients each submitting `per_thread` executions one after another; each submit returns
// once its row is fsynced, so concurrent submissions share commits.
Ack bench_submit_ack(const std::filesystem::path& dir, std::size_t threads,
                     std::size_t per_thread) {
  auto store = open_sqlite(dir / "submit.db");
  auto spec = noop_template("ticket", "");
  std::vector<std::vector<double>> ms(threads);
  std::vector<std::thread> pool;
  for (std::size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (std::size_t i = 0; i < per_thread; ++i) {
        Execution e;
        e.id = "t" + std::to_string(t) + "-" + std::to_string(i);
        e.spec = spec;
        TimePoint now = SystemClock::instance().now();
        e.due = e.not_before = now + std::chrono::hours(1);
        auto t0 = Clk::now();
        auto r = store->submit(std::move(e), now, SIZE_MAX);
        ms[t].push_back(seconds_since(t0) * 1000);
        if (!r.is_ok()) std::cerr << r.status().to_string() << "\n";
      }
    });
  }
  for (auto& th : pool) th.join();
  std::vector<double> all;
  for (auto& v : ms) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  return {all[all.size() / 2], all[all.size() * 99 / 100]};
}

// Start-up recovery of `total` queued executions on `keys` keys: open (read every row and
// rebuild the index) plus recover(), timed from a closed file.
double bench_recovery(const std::filesystem::path& dir, std::size_t total, std::size_t keys) {
  const auto path = dir / "recovery.db";
  {
    auto store = open_sqlite(path);
    TimePoint now = SystemClock::instance().now();
    (void)store->plan(ready_batch(total, keys, now), now);
    store->flush();
  }
  auto t0 = Clk::now();
  auto store = open_sqlite(path);
  store->recover(SystemClock::instance().now());
  double s = seconds_since(t0);
  if (store->load_report().queued != total) {
    std::cerr << "recovery loaded " << store->load_report().queued << " of " << total << "\n";
  }
  return s;
}

// `total` executions due at spread-out instants over `span`, on `keys` keys: the delay from
// due to the executor being called, on the real clock.
Lag bench_lag(const PluginHost& plugins, std::size_t total, std::size_t keys,
              std::chrono::milliseconds span) {
  MemoryStore store;
  Planner planner(store, std::chrono::hours(2));
  TimePoint start = SystemClock::instance().now() + std::chrono::milliseconds(500);
  std::vector<Execution> batch;
  for (std::size_t i = 0; i < total; ++i) {
    Execution e;
    e.id = "lag" + std::to_string(i);
    e.spec = noop_template("lag", "k" + std::to_string(i % keys));
    e.due = e.not_before = start + span * i / total;
    batch.push_back(std::move(e));
  }
  (void)store.plan(std::move(batch), SystemClock::instance().now());
  std::mutex mu;
  std::vector<double> lags;
  Counter counter;
  Dispatcher d(
      store, planner, SystemClock::instance(), [&](std::string_view n) { return plugins.find(n); },
      options(2));
  d.add_observer({.on_start =
                      [&](const Execution& e) {
                        double ms = std::chrono::duration<double, std::milli>(
                                        SystemClock::instance().now() - e.due)
                                        .count();
                        std::lock_guard l(mu);
                        lags.push_back(ms);
                      },
                  .on_finish = [&](const Execution&, const Completion&) { counter.add(); }});
  d.start();
  counter.wait_for(total);
  d.stop(std::chrono::milliseconds(0));
  std::sort(lags.begin(), lags.end());
  auto pct = [&](double p) {
    return lags[std::min(lags.size() - 1, std::size_t(p * lags.size()))];
  };
  return {pct(0.50), pct(0.99), lags.back()};
}

// `n` executions running at once (sleep plugin), the RSS while they run.
double bench_concurrent(const PluginHost& plugins, std::size_t n) {
  MemoryStore store;
  Planner planner(store, std::chrono::hours(2));
  TimePoint now = SystemClock::instance().now();
  std::vector<Execution> batch;
  for (std::size_t i = 0; i < n; ++i) {
    auto t = std::make_shared<ExecTemplate>();
    t->name = "nap";
    t->executor = "sleep";
    t->key = "c" + std::to_string(i);
    t->params = {{"duration", ParamValue::duration(std::chrono::hours(1))}};
    Execution e;
    e.id = "c" + std::to_string(i);
    e.spec = t;
    e.due = e.not_before = now;
    batch.push_back(std::move(e));
  }
  (void)store.plan(std::move(batch), now);
  std::atomic<std::size_t> started{0};
  Dispatcher d(
      store, planner, SystemClock::instance(),
      [&](std::string_view name) { return plugins.find(name); }, options(n));
  d.add_observer({.on_start = [&](const Execution&) { ++started; }});
  d.start();
  while (started.load() < n) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  double rss = rss_mb();
  d.stop(std::chrono::milliseconds(0));
  return rss;
}

}  // namespace
}  // namespace schedd

int main(int argc, char** argv) {
  using namespace schedd;
  CLI::App app{"schedd-bench: end-to-end engine load driver"};
  std::string plugin_dir = SCHEDD_PLUGIN_DIR;
  bool quick = false;
  app.add_option("--plugin-dir", plugin_dir, "Folder with noop.so and sleep.so");
  app.add_flag("--quick", quick, "Smaller run for CI smoke tests");
  app.add_option("--claim-ahead", g_claim_ahead, "SQLite store: claims ahead of free workers");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);

  PluginHost plugins;
  for (const char* f : {"noop.so", "sleep.so"}) {
    if (auto err = plugins.load_file(std::filesystem::path(plugin_dir) / f)) {
      std::cerr << err->to_string() << "\n";
      return 2;
    }
  }
  const std::size_t helpers = quick ? 1000 : 10000;
  const std::size_t dispatch_total = quick ? 50000 : 1000000;
  const std::size_t dispatch_keys = quick ? 1000 : 10000;
  const std::size_t lag_total = quick ? 2000 : 10000;
  const std::size_t concurrent = quick ? 100 : 1000;

  // Concurrent first: its RSS is the whole process's, and the later phases leave freed heap
  // that glibc keeps mapped.
  double rss = bench_concurrent(plugins, concurrent);
  Plan plan = bench_plan(helpers);
  double per_second = bench_dispatch(plugins, dispatch_total, dispatch_keys, 2);
  Lag lag = bench_lag(plugins, lag_total, 100, std::chrono::milliseconds(quick ? 2000 : 10000));

  std::string tmpl = (std::filesystem::temp_directory_path() / "schedd-bench-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) return 1;
  const std::filesystem::path dir = tmpl;
  const std::size_t recovery_total = quick ? 100000 : 1000000;
  Durable durable = bench_durable_dispatch(plugins, dir, dispatch_total, dispatch_keys, 2);
  Ack ack = bench_submit_ack(dir, 8, quick ? 250 : 2500);
  double recovery = bench_recovery(dir, recovery_total, dispatch_keys);
  std::filesystem::remove_all(dir);

  nlohmann::ordered_json j;
  j["plan_executions"] = plan.executions;
  j["plan_seconds"] = plan.seconds;
  j["plan_bytes_per_execution"] = plan.bytes_per_execution;
  j["dispatch_executions"] = dispatch_total;
  j["dispatch_keys"] = dispatch_keys;
  j["dispatch_workers"] = 2;
  j["dispatch_per_second"] = per_second;
  j["lag_executions"] = lag_total;
  j["lag_p50_ms"] = lag.p50;
  j["lag_p99_ms"] = lag.p99;
  j["lag_max_ms"] = lag.max;
  j["concurrent_running"] = concurrent;
  j["concurrent_rss_mb"] = rss;
  j["durable_dispatch_per_second"] = durable.dispatch_per_second;
  j["durable_dispatch_commits"] = durable.commits;
  j["submit_ack_p50_ms"] = ack.p50;
  j["submit_ack_p99_ms"] = ack.p99;
  j["recovery_executions"] = recovery_total;
  j["recovery_seconds"] = recovery;
  j["bytes_on_disk_per_execution"] = durable.bytes_per_execution;
  std::cout << j.dump() << std::endl;
  return 0;
}
