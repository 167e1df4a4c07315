// GET /metrics: Prometheus text of the lanes' gauges and Metrics' counters and histograms.
#include <fmt/format.h>
#include <schedd/abi.h>

#include <algorithm>

#include "core/api/api_internal.h"

namespace schedd::api {

std::vector<Api::Impl::Route> Api::Impl::metrics_routes() {
  using C = const Call&;
  return {
      {"GET", "/metrics", true, [](Impl& a, C) { return a.metrics_text(); }},
  };
}

std::string label_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
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
  out +=
      "# HELP schedd_executions_total Executions that reached a final status, by helper "
      "(tickets: origin ticket) and status.\n# TYPE schedd_executions_total counter\n";
  for (const auto& [k, n] : totals_) {
    out += fmt::format("schedd_executions_total{{origin=\"{}\",helper=\"{}\",status=\"{}\"}} {}\n",
                       k.first.first, label_escape(k.first.second), k.second, n);
  }
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    out += fmt::format("# HELP {} {}\n# TYPE {} counter\n{} {}\n", name, help, name, name, v);
  };
  counter("schedd_expired_total", "Executions that expired before they started.", expired_);
  counter("schedd_skipped_total", "Executions recorded as skipped.", skipped_);
  counter("schedd_retried_total", "Attempts that failed or timed out and were retried.", retried_);
  counter("schedd_interrupted_total", "Attempts interrupted by a shutdown.", interrupted_);
  counter("schedd_submissions_rejected_total",
          "API submissions refused because capacity.queued was reached.", rejected_);
  out +=
      "# HELP schedd_start_lag_seconds Time from an execution's due time (not_before) to its "
      "start.\n# TYPE schedd_start_lag_seconds histogram\n";
  lag_.write(out, "schedd_start_lag_seconds");
  out +=
      "# HELP schedd_run_duration_seconds Time an attempt ran.\n"
      "# TYPE schedd_run_duration_seconds histogram\n";
  duration_.write(out, "schedd_run_duration_seconds");
}

Metrics::Label Metrics::label(const Execution& e) {
  const ExecTemplate& s = *e.spec;
  return {origin_name(s.origin), s.origin == ExecOrigin::kHelper ? s.name : ""};
}

HttpResponse Api::Impl::metrics_text() {
  std::string out;
  out += fmt::format(
      "# HELP schedd_build_info Build information.\n# TYPE schedd_build_info gauge\n"
      "schedd_build_info{{version=\"{}\",plugin_abi=\"{}\"}} 1\n",
      SCHEDD_VERSION, SCHEDD_ABI_VERSION);
  json stats = stats_json();
  out += "# HELP schedd_queued Executions queued and due, per lane.\n# TYPE schedd_queued gauge\n";
  for (auto& [name, l] : stats["lanes"].items()) {
    out += fmt::format("schedd_queued{{lane=\"{}\"}} {}\n", label_escape(name),
                       l["queued"].get<std::size_t>());
  }
  out += "# HELP schedd_running Executions running, per lane.\n# TYPE schedd_running gauge\n";
  for (auto& [name, l] : stats["lanes"].items()) {
    out += fmt::format("schedd_running{{lane=\"{}\"}} {}\n", label_escape(name),
                       l["running"].get<std::size_t>());
  }
  out += "# HELP schedd_workers Workers per lane.\n# TYPE schedd_workers gauge\n";
  for (auto& [name, l] : stats["lanes"].items()) {
    out += fmt::format("schedd_workers{{lane=\"{}\"}} {}\n", label_escape(name),
                       l["runningCapacity"].get<std::size_t>());
  }
  out +=
      "# HELP schedd_lane_paused 1 while a lane is paused (claims nothing).\n"
      "# TYPE schedd_lane_paused gauge\n";
  for (auto& [name, l] : stats["lanes"].items()) {
    out += fmt::format("schedd_lane_paused{{lane=\"{}\"}} {}\n", label_escape(name),
                       l.value("paused", false) ? 1 : 0);
  }
  out += fmt::format(
      "# HELP schedd_queued_capacity capacity.queued.\n# TYPE schedd_queued_capacity gauge\n"
      "schedd_queued_capacity {}\n"
      "# HELP schedd_draining 1 while the daemon drains (claims nothing).\n"
      "# TYPE schedd_draining gauge\nschedd_draining {}\n",
      engine.config().capacity_queued, stats.value("draining", false) ? 1 : 0);
  metrics.write(out);
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = std::move(out);
  return r;
}

}  // namespace schedd::api
