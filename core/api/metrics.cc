// GET /metrics: the Prometheus text of the daemon's process, its HTTP requests (HttpMetrics),
// the lanes' gauges, the planner, the runners, the store (Store::write_metrics) and what the
// dispatcher did (Metrics). docs/monitoring.md lists every family and what it is for.
#include <dirent.h>
#include <fmt/format.h>
#include <schedd/abi.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/api/api_internal.h"
#include "core/runner/plugin_loader.h"
#include "core/runner/runner_pool.h"

namespace schedd::api {

std::vector<Api::Impl::Route> Api::Impl::metrics_routes() {
  using C = const Call&;
  return {
      {"GET", "/metrics", true, [](Impl& a, C) { return a.metrics_text(); }},
  };
}

void Metrics::started(const Execution& e, TimePoint now) {
  const double lag = std::max(0.0, std::chrono::duration<double>(now - e.not_before).count());
  std::lock_guard lock(mu_);
  lag_.observe(lag);
  Bucket& b = bucket(now);
  ++b.started;
  b.lag_sum += lag;
  b.lag_max = std::max(b.lag_max, lag);
}

Metrics::Bucket& Metrics::bucket(TimePoint t) {
  const int64_t i = std::chrono::floor<std::chrono::seconds>(t).time_since_epoch() / kBucket;
  while (!recent_.empty() && recent_.begin()->first <= i - static_cast<int64_t>(kRecentBuckets)) {
    recent_.erase(recent_.begin());
  }
  return recent_[i];
}

json Metrics::recent(TimePoint now) const {
  const int64_t last = std::chrono::floor<std::chrono::seconds>(now).time_since_epoch() / kBucket;
  const int64_t first = last - static_cast<int64_t>(kRecentBuckets) + 1;
  std::lock_guard lock(mu_);
  json series = json::array();
  uint64_t finished = 0, started = 0;
  double lag_sum = 0, lag_max = 0;
  for (int64_t i = first; i <= last; ++i) {
    auto it = recent_.find(i);
    const Bucket b = it == recent_.end() ? Bucket{} : it->second;
    finished += b.finished;
    started += b.started;
    lag_sum += b.lag_sum;
    lag_max = std::max(lag_max, b.lag_max);
    series.push_back({{"at", time_text(TimePoint(i * kBucket))},
                      {"finished", b.finished},
                      {"started", b.started},
                      {"lag_mean_seconds", b.started ? json(b.lag_sum / b.started) : json()},
                      {"lag_max_seconds", b.started ? json(b.lag_max) : json()}});
  }
  const double minutes = std::chrono::duration<double>(kBucket * kRecentBuckets).count() / 60.0;
  return {{"window_seconds", (kBucket * kRecentBuckets).count()},
          {"bucket_seconds", kBucket.count()},
          {"finished", finished},
          {"finished_per_minute", finished / minutes},
          {"started", started},
          {"lag_mean_seconds", started ? json(lag_sum / started) : json()},
          {"lag_max_seconds", started ? json(lag_max) : json()},
          {"series", series}};
}

void Metrics::finished(const Execution& e, const Completion& c) {
  std::lock_guard lock(mu_);
  if (e.started) {
    const double d = std::chrono::duration<double>(c.finished - *e.started).count();
    duration_.observe(std::max(0.0, d));
    avg_duration_ = avg_duration_ == 0 ? d : 0.9 * avg_duration_ + 0.1 * d;
  }
  if (c.status == ExecStatus::kInterrupted) ++interrupted_;
  if (c.retry) {
    ++retried_;
    return;
  }
  ++totals_[{label(e), exec_status_name(c.status)}];
  ++bucket(c.finished).finished;
}

void Metrics::expired(const Execution& e) {
  std::lock_guard lock(mu_);
  ++expired_;
  ++totals_[{label(e), "expired"}];
}

void Metrics::skipped(const Execution& e) {
  std::lock_guard lock(mu_);
  ++skipped_;
  ++totals_[{label(e), "skipped"}];
}

void Metrics::rejected() {
  std::lock_guard lock(mu_);
  ++rejected_;
}

double Metrics::average_duration_seconds() const {
  std::lock_guard lock(mu_);
  return avg_duration_;
}

void Metrics::write(std::string& out) const {
  std::lock_guard lock(mu_);
  metric_family(out, "schedd_executions_total", "counter",
                "Executions that reached a final status, by origin (helper, ticket, adhoc), lane "
                "and status.");
  for (const auto& [k, n] : totals_) {
    out += fmt::format("schedd_executions_total{{origin=\"{}\",lane=\"{}\",status=\"{}\"}} {}\n",
                       k.first.first, label_escape(k.first.second), k.second, n);
  }
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    metric_family(out, name, "counter", help);
    out += fmt::format("{} {}\n", name, v);
  };
  counter("schedd_expired_total", "Executions that expired before they started.", expired_);
  counter("schedd_skipped_total", "Executions recorded as skipped.", skipped_);
  counter("schedd_retried_total", "Attempts that failed or timed out and were retried.", retried_);
  counter("schedd_interrupted_total", "Attempts interrupted by a shutdown.", interrupted_);
  counter("schedd_submissions_rejected_total",
          "API submissions refused because capacity.queued was reached.", rejected_);
  metric_family(out, "schedd_start_lag_seconds", "histogram",
                "Time from an execution's due time (not_before) to its start.");
  lag_.write(out, "schedd_start_lag_seconds");
  metric_family(out, "schedd_run_duration_seconds", "histogram", "Time an attempt ran.");
  duration_.write(out, "schedd_run_duration_seconds");
}

Metrics::Label Metrics::label(const Execution& e) {
  // The lane, not the helper or ticket: a label per helper would make a series per helper
  // (10,000 helpers, 10,000 series per status), which /metrics keeps bounded.
  return {origin_name(e.spec->origin), e.spec->lane};
}

// ---------------------------------------------------------------------------------------
// HTTP requests

HttpMetrics::HttpMetrics()
    : rows_(Api::Impl::routes().size() + 3), row_(std::make_unique<Row[]>(rows_)) {}

int HttpMetrics::dashboard_route(bool index_page) {
  return static_cast<int>(Api::Impl::routes().size()) + (index_page ? 0 : 1);
}

int HttpMetrics::unmatched_route() { return static_cast<int>(Api::Impl::routes().size()) + 2; }

void HttpMetrics::observe(int route, int status, std::optional<std::chrono::nanoseconds> elapsed) {
  if (route < 0 || static_cast<std::size_t>(route) >= rows_) route = unmatched_route();
  Row& row = row_[static_cast<std::size_t>(route)];
  std::size_t code = 0;
  while (code < kCodes.size() && kCodes[code] != status) ++code;
  row.codes[code].fetch_add(1, std::memory_order_relaxed);
  if (elapsed) row.latency.observe(std::chrono::duration<double>(*elapsed).count());
}

void HttpMetrics::write(std::string& out) const {
  const auto& table = Api::Impl::routes();
  auto labels = [&](std::size_t i) -> std::string {
    if (i < table.size()) {
      return fmt::format("method=\"{}\",route=\"{}\"", table[i].method, table[i].pattern);
    }
    if (i == table.size()) return "method=\"GET\",route=\"/\"";
    if (i == table.size() + 1) return "method=\"GET\",route=\"/ui/{file}\"";
    return "method=\"other\",route=\"unmatched\"";
  };
  metric_family(out, "schedd_http_requests_total", "counter",
                "HTTP requests answered, by route template and status code (route=\"unmatched\": "
                "no route, or a request the server refused before routing).");
  for (std::size_t i = 0; i < rows_; ++i) {
    const std::string l = labels(i);
    for (std::size_t c = 0; c <= kCodes.size(); ++c) {
      const uint64_t n = row_[i].codes[c].load(std::memory_order_relaxed);
      if (n == 0) continue;
      out += fmt::format("schedd_http_requests_total{{{},code=\"{}\"}} {}\n", l,
                         c < kCodes.size() ? std::to_string(kCodes[c]) : std::string("other"), n);
    }
  }
  metric_family(out, "schedd_http_request_duration_seconds", "histogram",
                "Time from reading an HTTP request to writing its response (a stream: its "
                "header), by route template.");
  for (std::size_t i = 0; i < rows_; ++i) {
    if (row_[i].latency.count() == 0) continue;
    row_[i].latency.write(out, "schedd_http_request_duration_seconds", labels(i));
  }
}

// ---------------------------------------------------------------------------------------
// The process, from /proc/self (the names Prometheus' client libraries use)

namespace {

std::string read_file(const char* path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_process(std::string& out) {
  static const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  static const long page = ::sysconf(_SC_PAGESIZE);
  static const double boot_time = [] {
    std::istringstream in(read_file("/proc/stat"));
    std::string key;
    double v = 0;
    while (in >> key) {
      if (key == "btime") {
        in >> v;
        break;
      }
    }
    return v;
  }();
  // /proc/self/stat: the fields after the command's closing parenthesis, from field 3.
  const std::string stat = read_file("/proc/self/stat");
  const std::size_t paren = stat.rfind(')');
  if (paren != std::string::npos) {
    std::istringstream in(stat.substr(paren + 1));
    std::vector<std::string> f;
    for (std::string x; in >> x;) f.push_back(x);
    if (f.size() > 21) {
      const double cpu = (std::stod(f[11]) + std::stod(f[12])) / ticks;  // utime + stime
      metric_family(out, "process_cpu_seconds_total", "counter",
                    "Total user and system CPU time spent in seconds.");
      out += fmt::format("process_cpu_seconds_total {}\n", cpu);
      metric_family(out, "process_resident_memory_bytes", "gauge",
                    "Resident memory size in bytes.");
      out += fmt::format("process_resident_memory_bytes {}\n", std::stoull(f[21]) * page);
      metric_family(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
      out += fmt::format("process_virtual_memory_bytes {}\n", std::stoull(f[20]));
      metric_family(out, "process_start_time_seconds", "gauge",
                    "Start time of the process since unix epoch in seconds.");
      out +=
          fmt::format("process_start_time_seconds {:.2f}\n", boot_time + std::stod(f[19]) / ticks);
      metric_family(out, "process_threads", "gauge", "Number of OS threads in the process.");
      out += fmt::format("process_threads {}\n", f[17]);
    }
  }
  if (DIR* d = ::opendir("/proc/self/fd")) {
    std::size_t fds = 0;
    while (const dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ++fds;
    }
    ::closedir(d);
    metric_family(out, "process_open_fds", "gauge", "Number of open file descriptors.");
    out += fmt::format("process_open_fds {}\n", fds - 1);  // less the one reading the folder
  }
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    metric_family(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
    out += fmt::format("process_max_fds {}\n", nofile.rlim_cur == RLIM_INFINITY
                                                   ? std::string("+Inf")
                                                   : std::to_string(nofile.rlim_cur));
  }
}

double unix_seconds(TimePoint t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

}  // namespace

// ---------------------------------------------------------------------------------------
// GET /metrics

HttpResponse Api::Impl::metrics_text() {
  std::string out;
  out.reserve(16 << 10);
  write_process(out);
  metric_family(out, "schedd_build_info", "gauge",
                "Always 1: the daemon's version and the plugin ABI it speaks (abi; plugin_abi is "
                "the same, kept for older queries).");
  out += fmt::format("schedd_build_info{{version=\"{}\",abi=\"{}\",plugin_abi=\"{}\"}} 1\n",
                     SCHEDD_VERSION, SCHEDD_ABI_VERSION, SCHEDD_ABI_VERSION);
  http_metrics.write(out);

  // Lanes: this daemon's, then those only the store knows (another daemon's).
  const std::vector<LaneView> lanes = engine.lanes();
  auto per_lane = [&](const char* name, const char* help, auto value) {
    metric_family(out, name, "gauge", help);
    for (const LaneView& l : lanes) {
      out += fmt::format("{}{{lane=\"{}\"}} {}\n", name, label_escape(l.name), value(l));
    }
  };
  per_lane("schedd_queued",
           "Executions queued and due (waiting for a worker or their key), per lane.",
           [](const LaneView& l) { return l.queued; });
  per_lane("schedd_running", "Executions running, per lane.",
           [](const LaneView& l) { return l.running; });
  per_lane("schedd_workers", "Workers per lane (0 for a lane only another daemon runs).",
           [](const LaneView& l) { return l.workers; });
  per_lane("schedd_lane_paused", "1 while a lane is paused (claims nothing).",
           [](const LaneView& l) { return l.paused ? 1 : 0; });
  metric_family(out, "schedd_queued_capacity", "gauge", "capacity.queued.");
  out += fmt::format("schedd_queued_capacity {}\n", engine.config().capacity_queued);
  metric_family(out, "schedd_draining", "gauge", "1 while the daemon drains (claims nothing).");
  out += fmt::format("schedd_draining {}\n", engine.dispatcher().draining() ? 1 : 0);

  // Readiness, as /readyz decides it (without its store read).
  const bool store_ok = engine.store().health().is_ok();
  const bool ready = store_ok && !engine.plugins().executors().empty();
  metric_family(out, "schedd_store_healthy", "gauge",
                "1 while the store accepts writes; 0 while it cannot (a full disk, Redis "
                "unreachable).");
  out += fmt::format("schedd_store_healthy {}\n", store_ok ? 1 : 0);
  metric_family(out, "schedd_ready", "gauge",
                "1 while GET /readyz answers 200 (the store accepts writes, an executor is "
                "loaded).");
  out += fmt::format("schedd_ready {}\n", ready ? 1 : 0);
  engine.store().write_metrics(out);

  // The planner.
  const Planner::Stats planner = engine.planner().stats();
  metric_family(out, "schedd_planner_rounds_total", "counter",
                "Planning rounds over every enabled helper.");
  out += fmt::format("schedd_planner_rounds_total {}\n", planner.rounds);
  metric_family(out, "schedd_planner_failures_total", "counter",
                "Planning rounds that failed (the store refused), leaving helpers unplanned.");
  out += fmt::format("schedd_planner_failures_total {}\n", planner.failures);
  metric_family(out, "schedd_planner_lookahead_seconds", "gauge",
                "How far ahead the planner keeps executions planned ([daemon] lookahead).");
  out += fmt::format("schedd_planner_lookahead_seconds {}\n",
                     std::chrono::duration<double>(engine.planner().lookahead()).count());
  if (planner.planned_until) {
    metric_family(out, "schedd_planner_planned_until_seconds", "gauge",
                  "Unix time up to which the last complete planning round planned every "
                  "enabled helper (its watermark).");
    out += fmt::format("schedd_planner_planned_until_seconds {:.3f}\n",
                       unix_seconds(*planner.planned_until));
  }

  // Out-of-process runners, per plugin.
  const auto pools = runner::runner_pools(engine.plugins());
  std::vector<runner::PoolStats> runners;
  runners.reserve(pools.size());
  for (const auto& pool : pools) runners.push_back(pool->stats());
  auto per_plugin = [&](const char* name, const char* type, const char* help, auto value) {
    metric_family(out, name, type, help);
    for (const auto& r : runners) {
      out += fmt::format("{}{{plugin=\"{}\"}} {}\n", name, label_escape(r.plugin), value(r));
    }
  };
  per_plugin("schedd_runners", "gauge", "Runner processes alive (idle or busy), per plugin.",
             [](const runner::PoolStats& r) { return r.runners; });
  per_plugin("schedd_runners_busy", "gauge", "Runner processes running a run, per plugin.",
             [](const runner::PoolStats& r) { return r.busy; });
  per_plugin("schedd_runner_starts_total", "counter", "Runner processes started, per plugin.",
             [](const runner::PoolStats& r) { return r.started; });
  per_plugin("schedd_runner_crashes_total", "counter",
             "Runner processes that crashed (not killed by the daemon), per plugin.",
             [](const runner::PoolStats& r) { return r.crashes; });
  per_plugin("schedd_runner_runs_total", "counter", "Runs the runners served, per plugin.",
             [](const runner::PoolStats& r) { return r.runs; });
  per_plugin("schedd_runner_idle_resident_memory_bytes", "gauge",
             "Resident memory of the idle runners, per plugin.",
             [](const runner::PoolStats& r) { return r.rss_bytes; });

  metrics.write(out);
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = std::move(out);
  return r;
}

}  // namespace schedd::api
