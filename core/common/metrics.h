// Prometheus text exposition (format 0.0.4) for GET /metrics: a family's HELP and TYPE
// lines, label escaping, and histograms, shared by the API (core/api/metrics.cc) and the
// stores (Store::write_metrics). Which metrics exist and what they mean is in
// docs/monitoring.md.
//
// Thread-safety: the free functions are thread-safe; Histogram is not (its owner locks);
// AtomicHistogram is (observe and write from any thread, without a lock).
#pragma once

#include <fmt/format.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace schedd {

// `s` as a label value: backslash, double quote and newline escaped.
inline std::string label_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
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

// The "# HELP" and "# TYPE" lines that open a family; `help` must be one line.
inline void metric_family(std::string& out, std::string_view name, std::string_view type,
                          std::string_view help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

// A histogram's _bucket (cumulative, then +Inf), _sum and _count lines; `labels` are put
// before `le` (`method="GET",route="/metrics"`, or "" for none). `counts` has one entry per
// bound plus one for +Inf, not cumulative. _count is the +Inf bucket, so the two always agree.
inline void write_histogram(std::string& out, std::string_view name, std::string_view labels,
                            const std::vector<double>& bounds, const uint64_t* counts, double sum) {
  const std::string_view sep = labels.empty() ? "" : ",";
  uint64_t cumulative = 0;
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    cumulative += counts[i];
    out += fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, bounds[i], cumulative);
  }
  cumulative += counts[bounds.size()];
  out += fmt::format("{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, sep, cumulative);
  if (labels.empty()) {
    out += fmt::format("{}_sum {}\n{}_count {}\n", name, sum, name, cumulative);
  } else {
    out += fmt::format("{}_sum{{{}}} {}\n{}_count{{{}}} {}\n", name, labels, sum, name, labels,
                       cumulative);
  }
}

// Observations counted into fixed buckets. Not thread-safe: its owner locks.
struct Histogram {
  std::vector<double> bounds;    // ascending upper bounds, +Inf implied
  std::vector<uint64_t> counts;  // per bound, not cumulative; +1 for +Inf
  double sum = 0;
  uint64_t count = 0;

  explicit Histogram(std::vector<double> b) : bounds(std::move(b)), counts(bounds.size() + 1) {}
  void observe(double v) {
    std::size_t i = 0;
    while (i < bounds.size() && v > bounds[i]) ++i;
    ++counts[i];
    sum += v;
    ++count;
  }
  void write(std::string& out, std::string_view name, std::string_view labels = {}) const {
    write_histogram(out, name, labels, bounds, counts.data(), sum);
  }
};

// Bounds for latencies from 100 us to 10 s.
inline const std::vector<double>& latency_bounds() {
  static const std::vector<double> b = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                        0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
  return b;
}

// A latency histogram on latency_bounds() that many threads observe into without a lock
// (relaxed atomics: a scrape may see an observation's bucket before its sum).
class AtomicHistogram {
 public:
  static constexpr std::size_t kBuckets = 17;  // latency_bounds() and +Inf

  void observe(double seconds) {
    const auto& b = latency_bounds();
    std::size_t i = 0;
    while (i < b.size() && seconds > b[i]) ++i;
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(static_cast<uint64_t>(seconds * 1e9), std::memory_order_relaxed);
  }
  uint64_t count() const {
    uint64_t n = 0;
    for (const auto& c : counts_) n += c.load(std::memory_order_relaxed);
    return n;
  }
  void write(std::string& out, std::string_view name, std::string_view labels = {}) const {
    std::array<uint64_t, kBuckets> counts;
    for (std::size_t i = 0; i < kBuckets; ++i)
      counts[i] = counts_[i].load(std::memory_order_relaxed);
    write_histogram(out, name, labels, latency_bounds(), counts.data(),
                    static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9);
  }

 private:
  std::array<std::atomic<uint64_t>, kBuckets> counts_{};
  std::atomic<uint64_t> sum_ns_{0};
};

}  // namespace schedd
