// schedd-bench: end-to-end load driver for the engine. Runs the real planner,
// store and dispatcher with the real noop and sleep plugins loaded through the
// real loader, and prints its figures on stdout: one line each, or with --json one
// JSON object and nothing else. `--quick` runs a smaller version for CI smoke tests.
// `--repeat N` runs it N times, each in a fresh process, and reports each figure's
// median, with min, max and every value under `spread`. `--phases a,b` runs only those.
//
//   build/release/bin/schedd-bench --plugin-dir build/release/plugins [--quick]
//                                  [--json] [--repeat N] [--phases plan,dispatch,...]
//                                  [--redis redis://127.0.0.1:6379/0
//                                  [--redis-only]]
//
// With --redis, the same dispatch and lag measurements run on the Redis store
// too (one store, one dispatcher, --redis-workers workers; fields redis_*),
// each in a namespace of its own that is wiped afterwards.
// scripts/bench-redis.sh runs them beside BullMQ on one redis-server.
//
// Numbers and how to read them: docs/PERFORMANCE.md.
#include <fmt/format.h>
#include <malloc.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "core/dispatch/dispatcher.h"
#include "core/planner/planner.h"
#include "core/plugin_host/plugin_host.h"
#include "core/runner/plugin_loader.h"
#include "core/schedule/schedule.h"
#include "core/store/memory_store.h"
#include "core/store/redis_store.h"
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

// Counts finished executions and wakes a waiter at a target. Only the last one wakes it: a
// wake-up per run would put one more thread on the 2 cores per run than a daemon has.
struct Counter {
  std::mutex mu;
  std::condition_variable cv;
  std::size_t done = 0;
  std::size_t target = SIZE_MAX;
  void add() {
    std::lock_guard l(mu);
    if (++done >= target) cv.notify_all();
  }
  void wait_for(std::size_t n) {
    std::unique_lock l(mu);
    target = n;
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

// `total` ready noop executions over `keys` keys through `workers` workers, on
// `store`.
double bench_dispatch_on(Store& store, const PluginHost& plugins, std::size_t total,
                         std::size_t keys, std::size_t workers) {
  Planner planner(store, std::chrono::hours(2));
  TimePoint now = SystemClock::instance().now();
  if (auto planned = store.plan(ready_batch(total, keys, now), now); !planned.is_ok()) {
    std::cerr << "plan: " << planned.status().to_string() << "\n";
    std::exit(1);
  }
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

double bench_dispatch(const PluginHost& plugins, std::size_t total, std::size_t keys,
                      std::size_t workers) {
  MemoryStore store;
  return bench_dispatch_on(store, plugins, total, keys, workers);
}

struct Lag {
  double p50 = 0, p99 = 0, max = 0;
  // Where the runs later than kSlowMs lost their time, summed over them (ms): due -> claimed
  // (the dispatcher's wake-up and the store's claim), claimed -> started (a worker took it),
  // started -> the end the lag is measured to (out of process: the round trip to the runner
  // and the run). Each slow run also counts in the step that took most of its lag.
  static constexpr double kSlowMs = 2.0;
  std::size_t slow = 0;
  double slow_claim_ms = 0, slow_start_ms = 0, slow_end_ms = 0;
  std::size_t slow_most_claim = 0, slow_most_start = 0, slow_most_end = 0;
};

// With --lag-trace FILE: one line per run of each lag phase, for matching the slow runs
// against a scheduler trace (perf sched record -k CLOCK_MONOTONIC): phase, id, lag, and the
// CLOCK_MONOTONIC ns of due, claimed, started and ended.
std::string g_lag_trace;

std::size_t g_claim_ahead = SqliteOptions{}.claim_ahead;

std::unique_ptr<SqliteStore> open_sqlite(const std::filesystem::path& path) {
  SqliteOptions o;  // durability full: acknowledged after the WAL fsync
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

// The dispatch benchmark on the SQLite store with full durability: every claim
// is on disk (fsync) before its run starts, every completion is written in the
// next group commit.
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

// Submission acknowledgement latency on the SQLite store (full durability):
// `threads` clients each submitting `per_thread` executions one after another;
// each submit returns once its row is fsynced, so concurrent submissions share
// commits.
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

// Start-up recovery of `total` queued executions on `keys` keys: open (read
// every row and rebuild the index) plus recover(), timed from a closed file.
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

// `total` executions due at spread-out instants over `span` (from 500 ms from
// now), on `keys` keys, through `workers` workers on `store`: the delay from
// due to the executor being called, on the real clock.
// With `at_finish` the delay runs to the end of the run instead (an upper bound of the delay
// to the executor's start where that happens in another process).
Lag bench_lag_on(Store& store, const PluginHost& plugins, std::size_t total, std::size_t keys,
                 std::chrono::milliseconds span, std::size_t workers, bool at_finish = false,
                 const std::string& phase = "lag") {
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
  if (auto planned = store.plan(std::move(batch), SystemClock::instance().now());
      !planned.is_ok()) {
    std::cerr << "plan: " << planned.status().to_string() << "\n";
    std::exit(1);
  }
  // Per run (index from its id "lagN"): when it was claimed, started and ended, on the wall
  // clock its due time is on; slots are written by one thread each, read after stop().
  struct Steps {
    TimePoint due{}, claimed{}, started{}, ended{};
    int64_t mono_claimed = 0, mono_started = 0, mono_ended = 0;
  };
  std::vector<Steps> steps(total);
  auto index = [&](const Execution& e) { return std::stoul(e.id.substr(3)); };
  auto mono_now = [] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clk::now().time_since_epoch())
        .count();
  };
  Counter counter;
  Dispatcher d(
      store, planner, SystemClock::instance(), [&](std::string_view n) { return plugins.find(n); },
      options(workers));
  d.add_observer({.on_claim =
                      [&](const Execution& e) {
                        Steps& s = steps[index(e)];
                        s.claimed = SystemClock::instance().now();
                        s.mono_claimed = mono_now();
                      },
                  .on_start =
                      [&](const Execution& e) {
                        Steps& s = steps[index(e)];
                        s.started = SystemClock::instance().now();
                        s.mono_started = mono_now();
                      },
                  .on_finish =
                      [&](const Execution& e, const Completion&) {
                        Steps& s = steps[index(e)];
                        s.due = e.due;
                        s.ended = SystemClock::instance().now();
                        s.mono_ended = mono_now();
                        counter.add();
                      }});
  d.start();
  counter.wait_for(total);
  d.stop(std::chrono::milliseconds(0));
  auto ms = [](TimePoint a, TimePoint b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
  };
  Lag out;
  std::vector<double> lags;
  lags.reserve(total);
  std::ofstream trace;
  if (!g_lag_trace.empty()) trace.open(g_lag_trace, std::ios::app);
  for (const Steps& s : steps) {
    const double lag = ms(s.due, at_finish ? s.ended : s.started);
    lags.push_back(lag);
    const double claim = ms(s.due, s.claimed), start = ms(s.claimed, s.started),
                 end = at_finish ? ms(s.started, s.ended) : 0;
    if (trace.is_open()) {
      const int64_t mono_due =
          s.mono_claimed -
          std::chrono::duration_cast<std::chrono::nanoseconds>(s.claimed - s.due).count();
      trace << phase << " " << lag << " " << mono_due << " " << s.mono_claimed << " "
            << s.mono_started << " " << s.mono_ended << "\n";
    }
    if (lag <= Lag::kSlowMs) continue;
    ++out.slow;
    out.slow_claim_ms += claim;
    out.slow_start_ms += start;
    out.slow_end_ms += end;
    if (claim >= start && claim >= end) {
      ++out.slow_most_claim;
    } else if (start >= end) {
      ++out.slow_most_start;
    } else {
      ++out.slow_most_end;
    }
  }
  std::sort(lags.begin(), lags.end());
  auto pct = [&](double p) {
    return lags[std::min(lags.size() - 1, std::size_t(p * lags.size()))];
  };
  out.p50 = pct(0.50);
  out.p99 = pct(0.99);
  out.max = lags.back();
  return out;
}

// Out of process (docs/sdk.md "Isolation"): the plugins of `dir` loaded through
// schedd-runner, as `schedd run` does by default.
std::unique_ptr<PluginHost> load_isolated(const std::filesystem::path& dir) {
  auto host = std::make_unique<PluginHost>();
  runner::LoadOptions o;
  o.dir = dir;
  o.runner_binary = runner::default_runner_binary();
  o.node = "schedd-bench";
  std::vector<PluginLoadError> errors;
  if (Status s = runner::load_plugins(*host, o, errors); !s.is_ok()) {
    for (const auto& e : errors) std::cerr << e.to_string() << "\n";
    std::cerr << s.to_string() << "\n";
    std::exit(2);
  }
  return host;
}

struct IsolationBench {
  double dispatch_per_second = 0;
  Lag lag;                   // due -> run finished (an upper bound of due -> started in the runner)
  double runner_rss_mb = 0;  // one warm runner of the noop plugin
  double daemon_rss_20_plugins_mb = 0;  // this process's RSS growth for 20 isolated plugins
  double runners_rss_20_plugins_mb = 0;
  double crash_to_serving_ms = 0;  // median over rounds: a crash until the next run ended
};

// The noop plugin (renamed: its executor is "noop") through warm runners.
IsolationBench bench_isolation(const std::filesystem::path& plugin_dir, std::size_t total,
                               std::size_t lag_total, std::chrono::milliseconds lag_span) {
  IsolationBench out;
  std::string tmpl = (std::filesystem::temp_directory_path() / "schedd-iso-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) std::exit(1);
  const std::filesystem::path dir = tmpl;
  std::filesystem::copy_file(plugin_dir / "noop.so", dir / "noop.so");
  auto host = load_isolated(dir);
  out.dispatch_per_second = bench_dispatch(*host, total, 1000, 2);
  {
    // Lag to the end of the run: the round trip to the runner included.
    MemoryStore store;
    out.lag =
        bench_lag_on(store, *host, lag_total, 100, lag_span, 2, /*at_finish=*/true, "isolated");
  }
  for (const auto& pool : runner::runner_pools(*host)) {
    auto st = pool->stats();
    if (st.runners > 0) out.runner_rss_mb = st.rss_bytes / 1048576.0 / st.runners;
  }
  host.reset();
  std::filesystem::remove_all(dir);

  // 20 distinct plugins.
  const double before = rss_mb();
  auto twenty = load_isolated(SCHEDD_BENCH_PLUGIN_DIR);
  out.daemon_rss_20_plugins_mb = rss_mb() - before;
  for (const auto& pool : runner::runner_pools(*twenty)) {
    out.runners_rss_20_plugins_mb += pool->stats().rss_bytes / 1048576.0;
  }
  // A crash, then the next run on the same plugin: spawn + handshake + the run.
  const Executor* crash = twenty->find("bench_crash");
  const Executor* noop = twenty->find("bench_noop_0");
  std::vector<double> ms;
  for (int i = 0; i < 15; ++i) {
    RunRequest req;
    req.execution_id = "crash" + std::to_string(i);
    StopSource stop;
    RunOutcome o = crash->run(req, stop);
    if (o.status == RunStatus::kSucceeded) std::exit(3);
    auto t0 = Clk::now();
    RunRequest next;
    next.execution_id = "after" + std::to_string(i);
    StopSource stop2;
    if (noop->run(next, stop2).status != RunStatus::kSucceeded) std::exit(3);
    ms.push_back(seconds_since(t0) * 1000);
    // Past the crash backoff, so that each round measures a replacement, not a wait.
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  std::sort(ms.begin(), ms.end());
  out.crash_to_serving_ms = ms[ms.size() / 2];
  return out;
}

Lag bench_lag(const PluginHost& plugins, std::size_t total, std::size_t keys,
              std::chrono::milliseconds span, bool at_finish = false) {
  MemoryStore store;
  return bench_lag_on(store, plugins, total, keys, span, 2, at_finish, "inprocess");
}

// The Redis store at `url` for one measurement: a namespace of its own, the
// lane's capacity the dispatcher's workers. Exits with the reason when Redis
// cannot be reached.
std::unique_ptr<RedisStore> open_redis(const std::string& url, const std::string& phase,
                                       std::size_t workers, std::size_t claim_ahead) {
  auto address = parse_redis_url(url);
  if (!address.is_ok()) {
    std::cerr << "--redis: " << address.status().message() << "\n";
    std::exit(2);
  }
  RedisOptions o;
  o.address = *address;
  o.ns = "bench-" + phase + "-" + std::to_string(getpid());
  o.node_id = "schedd-bench";
  o.clock = &SystemClock::instance();
  o.lane_capacity = {{"default", workers}};
  o.claim_ahead = claim_ahead;
  auto store = RedisStore::open(std::move(o));
  if (!store.is_ok()) {
    std::cerr << "--redis: " << store.status().to_string() << "\n";
    std::exit(1);
  }
  if (Status s = (*store)->wipe(); !s.is_ok()) {
    std::cerr << "--redis: wipe: " << s.to_string() << "\n";
    std::exit(1);
  }
  return std::move(store).value();
}

struct RedisBench {
  std::string address;
  double dispatch_per_second = 0;
  Lag lag;
};

// The dispatch and lag measurements on the Redis store, each in a fresh
// namespace that is wiped afterwards (history kept until then, as a daemon
// keeps it).
RedisBench bench_redis(const PluginHost& plugins, const std::string& url, std::size_t total,
                       std::size_t keys, std::size_t workers, std::size_t lag_total,
                       std::chrono::milliseconds lag_span, std::size_t claim_ahead) {
  RedisBench out;
  out.address = parse_redis_url(url)->to_string();
  {
    auto store = open_redis(url, "dispatch", workers, claim_ahead);
    out.dispatch_per_second = bench_dispatch_on(*store, plugins, total, keys, workers);
    (void)store->wipe();
  }
  {
    auto store = open_redis(url, "lag", workers, claim_ahead);
    out.lag = bench_lag_on(*store, plugins, lag_total, std::min<std::size_t>(100, lag_total),
                           lag_span, workers);
    (void)store->wipe();
  }
  return out;
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

// The phases --phases names, in the order they run.
constexpr const char* kPhases[] = {"concurrent", "plan", "dispatch", "lag",  "isolation",
                                   "durable",    "ack",  "recovery", "redis"};

// A figure's median over the runs (the mean of the middle two for an even count).
double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Every run's object folded into one: each number is the median of the runs, and `spread`
// holds each number's min, max and values (nested objects the same way, by path). Anything
// else (strings) is the first run's.
nlohmann::ordered_json fold_runs(const std::vector<nlohmann::ordered_json>& runs,
                                 nlohmann::ordered_json& spread, const std::string& prefix) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& [name, first] : runs.front().items()) {
    const std::string path = prefix.empty() ? name : prefix + "." + name;
    if (first.is_object()) {
      std::vector<nlohmann::ordered_json> parts;
      for (const auto& r : runs) {
        if (r.contains(name) && r[name].is_object()) parts.push_back(r[name]);
      }
      out[name] = fold_runs(parts, spread, path);
      continue;
    }
    if (!first.is_number()) {
      out[name] = first;
      continue;
    }
    std::vector<double> values;
    for (const auto& r : runs) {
      if (r.contains(name) && r[name].is_number()) values.push_back(r[name].get<double>());
    }
    const double m = median_of(values);
    if (first.is_number_integer() && m == static_cast<double>(static_cast<int64_t>(m))) {
      out[name] = static_cast<int64_t>(m);
    } else {
      out[name] = m;
    }
    spread[path] = {{"min", *std::min_element(values.begin(), values.end())},
                    {"max", *std::max_element(values.begin(), values.end())},
                    {"values", values}};
  }
  return out;
}

// Runs this program again `n` times, each in a fresh process (so RSS figures start from the
// same heap) with SCHEDD_BENCH_CHILD set, which makes it run once and print JSON; folds the
// runs. An empty result on a failed run (its exit status is reported on stderr).
std::optional<nlohmann::ordered_json> run_repeated(char** argv, int n) {
  std::vector<nlohmann::ordered_json> runs;
  for (int i = 0; i < n; ++i) {
    int fds[2];
    if (pipe(fds) != 0) return std::nullopt;
    pid_t pid = fork();
    if (pid < 0) return std::nullopt;
    if (pid == 0) {
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
      setenv("SCHEDD_BENCH_CHILD", "1", 1);
      execv("/proc/self/exe", argv);
      _exit(127);
    }
    close(fds[1]);
    std::string text;
    char buf[4096];
    for (ssize_t r; (r = read(fds[0], buf, sizeof buf)) != 0;) {
      if (r < 0) {
        if (errno == EINTR) continue;
        break;
      }
      text.append(buf, static_cast<std::size_t>(r));
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::cerr << "schedd-bench: run " << i + 1 << " of " << n << " failed (status " << status
                << ")\n";
      return std::nullopt;
    }
    auto j = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) {
      std::cerr << "schedd-bench: run " << i + 1 << " printed no JSON object\n";
      return std::nullopt;
    }
    std::cerr << "schedd-bench: run " << i + 1 << " of " << n << " done\n";
    runs.push_back(std::move(j));
  }
  nlohmann::ordered_json spread = nlohmann::ordered_json::object();
  nlohmann::ordered_json out = fold_runs(runs, spread, "");
  out["runs"] = n;
  out["spread"] = std::move(spread);
  return out;
}

// Without --json: one line per figure, `name  value`, or with --repeat `name  median  [min ..
// max]`.
void print_table(const nlohmann::ordered_json& j, const std::string& prefix) {
  auto show = [](const nlohmann::ordered_json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number_float()) return fmt::format("{:.6g}", v.get<double>());
    return v.dump();
  };
  const nlohmann::ordered_json* spread =
      j.contains("spread") && j["spread"].is_object() ? &j["spread"] : nullptr;
  std::function<void(const nlohmann::ordered_json&, const std::string&)> walk =
      [&](const nlohmann::ordered_json& o, const std::string& pre) {
        for (const auto& [name, v] : o.items()) {
          if (pre.empty() && name == "spread") continue;
          const std::string path = pre.empty() ? name : pre + "." + name;
          if (v.is_object()) {
            walk(v, path);
            continue;
          }
          std::cout << fmt::format("{:<40} {}", path, show(v));
          if (spread != nullptr && spread->contains(path)) {
            const auto& s = (*spread)[path];
            if (s["min"] != s["max"]) {
              std::cout << fmt::format("   [{} .. {}]", show(s["min"]), show(s["max"]));
            }
          }
          std::cout << "\n";
        }
      };
  walk(j, prefix);
}

}  // namespace
}  // namespace schedd

int main(int argc, char** argv) {
  using namespace schedd;
  CLI::App app{"schedd-bench: end-to-end engine load driver"};
  std::string plugin_dir = SCHEDD_PLUGIN_DIR;
  bool quick = false;
  bool json = false;
  int repeat = 1;
  std::vector<std::string> phases_given;
  app.add_option("--plugin-dir", plugin_dir, "Folder with noop.so and sleep.so");
  app.add_flag("--quick", quick, "Smaller run for CI smoke tests");
  app.add_flag("--json", json,
               "Print one JSON object on stdout and nothing else (logs go to stderr)");
  app.add_option("--repeat", repeat,
                 "Run N times, each in a fresh process, and report each figure's median, with "
                 "its min, max and values under `spread`")
      ->check(CLI::Range(1, 1000));
  app.add_option("--phases", phases_given,
                 "Only these phases, comma-separated: concurrent, plan, dispatch, lag, "
                 "isolation, durable, ack, recovery, redis (default: all; redis only with "
                 "--redis)")
      ->delimiter(',')
      ->check(CLI::IsMember(std::vector<std::string>(std::begin(kPhases), std::end(kPhases))));
  app.add_option("--claim-ahead", g_claim_ahead, "SQLite store: claims ahead of free workers");
  std::string redis_url;
  bool redis_only = false;
  std::size_t redis_workers = 2;
  std::size_t redis_total = 0;
  std::size_t redis_keys = 1000;
  std::size_t redis_lag_total = 0;
  std::size_t redis_lag_span_ms = 0;
  std::size_t redis_claim_ahead = 0;
  app.add_option("--redis", redis_url,
                 "Also measure the Redis store at this URL (redis://HOST:PORT/DB): "
                 "redis_dispatch_per_second, redis_lag_p99_ms");
  app.add_flag("--redis-only", redis_only, "With --redis: only the Redis measurements");
  bool durable_only = false;
  app.add_flag("--durable-only", durable_only,
               "Only the SQLite store's measurements (durable_*, submit_ack_*, recovery_*, "
               "bytes_on_disk_*)");
  bool isolation_only = false;
  bool dispatch_only = false;
  app.add_flag("--dispatch-only", dispatch_only,
               "Only the in-memory dispatch and lag measurements (dispatch_per_second, lag_*)");
  app.add_flag("--isolation-only", isolation_only,
               "Only the out-of-process measurements (isolated_*) and the in-memory dispatch "
               "they compare with");
  app.add_option("--lag-trace", g_lag_trace,
                 "Append one line per run of each lag phase to this file (phase, lag ms, and "
                 "the CLOCK_MONOTONIC ns of due, claimed, started, ended)");
  app.add_option("--redis-workers", redis_workers, "Redis: dispatcher workers (default 2)");
  app.add_option("--redis-executions", redis_total,
                 "Redis: executions dispatched (default 100000; --quick 5000)");
  app.add_option("--redis-keys", redis_keys, "Redis: keys they are spread over (default 1000)");
  app.add_option("--redis-lag-executions", redis_lag_total,
                 "Redis: executions of the lag measurement (default as the "
                 "in-memory one)");
  app.add_option("--redis-lag-span-ms", redis_lag_span_ms,
                 "Redis: span their due times are spread over (default as the "
                 "in-memory one)");
  app.add_option("--redis-claim-ahead", redis_claim_ahead,
                 "Redis: claims ahead of free workers (default 0)");
  CLI11_PARSE(app, argc, argv);
  if (redis_only && redis_url.empty()) {
    std::cerr << "--redis-only needs --redis URL\n";
    return 2;
  }
  if (redis_workers == 0) {
    std::cerr << "--redis-workers must be at least 1\n";
    return 2;
  }
  // Which phases run.
  std::set<std::string> phases(phases_given.begin(), phases_given.end());
  if (redis_only) phases = {"redis"};
  if (durable_only) phases = {"durable", "ack", "recovery"};
  if (phases.empty()) {
    phases.insert(std::begin(kPhases), std::end(kPhases));
    if (redis_url.empty()) phases.erase("redis");
  }
  if (phases.count("redis") > 0 && redis_url.empty()) {
    std::cerr << "the redis phase needs --redis URL\n";
    return 2;
  }
  auto want = [&](const char* phase) { return phases.count(phase) > 0; };

  // Logs go to stderr whatever the output: stdout carries the figures only.
  spdlog::set_default_logger(spdlog::stderr_color_mt("schedd-bench"));
  spdlog::set_level(spdlog::level::warn);
  const bool child = getenv("SCHEDD_BENCH_CHILD") != nullptr;
  if (child) json = true;
  auto emit = [&](const nlohmann::ordered_json& out) {
    if (json) {
      std::cout << out.dump() << std::endl;
    } else {
      print_table(out, "");
    }
  };
  if (repeat > 1 && !child) {
    auto folded = run_repeated(argv, repeat);
    if (!folded) return 1;
    emit(*folded);
    return 0;
  }

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
  const std::chrono::milliseconds lag_span(quick ? 2000 : 10000);
  if (redis_total == 0) redis_total = quick ? 5000 : 100000;
  if (redis_lag_total == 0) redis_lag_total = lag_total;
  const std::chrono::milliseconds redis_lag_span =
      redis_lag_span_ms > 0 ? std::chrono::milliseconds(redis_lag_span_ms) : lag_span;

  nlohmann::ordered_json j;
  auto add_redis = [&] {
    if (redis_url.empty()) return;
    RedisBench r = bench_redis(plugins, redis_url, redis_total, redis_keys, redis_workers,
                               redis_lag_total, redis_lag_span, redis_claim_ahead);
    j["redis_address"] = r.address;
    j["redis_dispatch_executions"] = redis_total;
    j["redis_dispatch_keys"] = redis_keys;
    j["redis_dispatch_workers"] = redis_workers;
    j["redis_claim_ahead"] = redis_claim_ahead;
    j["redis_dispatch_per_second"] = r.dispatch_per_second;
    j["redis_lag_executions"] = redis_lag_total;
    j["redis_lag_span_ms"] = redis_lag_span.count();
    j["redis_lag_p50_ms"] = r.lag.p50;
    j["redis_lag_p99_ms"] = r.lag.p99;
    j["redis_lag_max_ms"] = r.lag.max;
  };
  auto add_isolation = [&](const IsolationBench& iso) {
    j["isolated_dispatch_per_second"] = iso.dispatch_per_second;
    j["isolated_lag_p50_ms"] = iso.lag.p50;
    j["isolated_lag_p99_ms"] = iso.lag.p99;
    j["isolated_lag_max_ms"] = iso.lag.max;
    j["isolated_lag_slow_runs"] = iso.lag.slow;
    j["isolated_lag_slow_ms"] = {{"due_to_claim", iso.lag.slow_claim_ms},
                                 {"claim_to_start", iso.lag.slow_start_ms},
                                 {"start_to_end", iso.lag.slow_end_ms}};
    j["isolated_lag_slow_most_in"] = {{"due_to_claim", iso.lag.slow_most_claim},
                                      {"claim_to_start", iso.lag.slow_most_start},
                                      {"start_to_end", iso.lag.slow_most_end}};
    j["isolated_runner_rss_mb"] = iso.runner_rss_mb;
    j["isolated_daemon_rss_20_plugins_mb"] = iso.daemon_rss_20_plugins_mb;
    j["isolated_runners_rss_20_plugins_mb"] = iso.runners_rss_20_plugins_mb;
    j["isolated_crash_to_serving_ms"] = iso.crash_to_serving_ms;
  };
  if (dispatch_only) {
    j["dispatch_per_second"] = bench_dispatch(plugins, dispatch_total, dispatch_keys, 2);
    Lag lag = bench_lag(plugins, lag_total, 100, lag_span);
    j["lag_p50_ms"] = lag.p50;
    j["lag_p99_ms"] = lag.p99;
    j["lag_max_ms"] = lag.max;
    emit(j);
    return 0;
  }
  if (isolation_only) {
    j["dispatch_per_second"] = bench_dispatch(plugins, dispatch_total, dispatch_keys, 2);
    // The same lag in process, to the run's end as the isolated one: what the machine's
    // scheduling costs a run without a runner, in the same minute.
    Lag inproc = bench_lag(plugins, lag_total, 100, lag_span, /*at_finish=*/true);
    j["inprocess_lag_p50_ms"] = inproc.p50;
    j["inprocess_lag_p99_ms"] = inproc.p99;
    j["inprocess_lag_max_ms"] = inproc.max;
    j["inprocess_lag_slow_runs"] = inproc.slow;
    add_isolation(bench_isolation(plugin_dir, quick ? 20000 : 200000, lag_total, lag_span));
    emit(j);
    return 0;
  }

  // Concurrent first: its RSS is the whole process's, and the later phases
  // leave freed heap that glibc keeps mapped.
  if (want("concurrent")) {
    double rss = bench_concurrent(plugins, concurrent);
    j["concurrent_running"] = concurrent;
    j["concurrent_rss_mb"] = rss;
  }
  if (want("plan")) {
    Plan plan = bench_plan(helpers);
    j["plan_executions"] = plan.executions;
    j["plan_seconds"] = plan.seconds;
    j["plan_bytes_per_execution"] = plan.bytes_per_execution;
  }
  if (want("dispatch")) {
    j["dispatch_executions"] = dispatch_total;
    j["dispatch_keys"] = dispatch_keys;
    j["dispatch_workers"] = 2;
    j["dispatch_per_second"] = bench_dispatch(plugins, dispatch_total, dispatch_keys, 2);
  }
  if (want("lag")) {
    Lag lag = bench_lag(plugins, lag_total, 100, lag_span);
    j["lag_executions"] = lag_total;
    j["lag_p50_ms"] = lag.p50;
    j["lag_p99_ms"] = lag.p99;
    j["lag_max_ms"] = lag.max;
  }
  if (want("isolation")) {
    add_isolation(bench_isolation(plugin_dir, quick ? 20000 : 200000, lag_total, lag_span));
  }
  if (want("durable") || want("ack") || want("recovery")) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "schedd-bench-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) return 1;
    const std::filesystem::path dir = tmpl;
    if (want("durable")) {
      Durable durable = bench_durable_dispatch(plugins, dir, dispatch_total, dispatch_keys, 2);
      j["durable_dispatch_per_second"] = durable.dispatch_per_second;
      j["durable_dispatch_commits"] = durable.commits;
      j["bytes_on_disk_per_execution"] = durable.bytes_per_execution;
    }
    if (want("ack")) {
      Ack ack = bench_submit_ack(dir, 8, quick ? 250 : 2500);
      j["submit_ack_p50_ms"] = ack.p50;
      j["submit_ack_p99_ms"] = ack.p99;
    }
    if (want("recovery")) {
      const std::size_t recovery_total = quick ? 100000 : 1000000;
      j["recovery_executions"] = recovery_total;
      j["recovery_seconds"] = bench_recovery(dir, recovery_total, dispatch_keys);
    }
    std::filesystem::remove_all(dir);
  }
  if (want("redis")) add_redis();
  emit(j);
  return 0;
}
