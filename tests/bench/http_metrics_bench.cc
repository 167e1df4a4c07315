// What the HTTP request metrics (issue #20) add to each request: the transport's two
// steady_clock reads and HttpMetrics::observe, on one thread and on two hitting the same rows;
// and writing the HTTP families for /metrics with every route requested.
// docs/PERFORMANCE.md "Scraping /metrics (issue #20)".
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>

#include "core/api/api_internal.h"

namespace schedd::api {
namespace {

HttpMetrics& shared_metrics() {
  static HttpMetrics m;
  return m;
}

void BM_HttpMetricsObserve(benchmark::State& state) {
  HttpMetrics& m = shared_metrics();
  int i = static_cast<int>(state.thread_index());
  for (auto _ : state) {
    const auto read_at = std::chrono::steady_clock::now();
    m.observe(i % 40, i % 7 == 0 ? 404 : 201, std::chrono::steady_clock::now() - read_at);
    ++i;
  }
}
BENCHMARK(BM_HttpMetricsObserve)->Threads(1)->Threads(2);

void BM_HttpMetricsWrite(benchmark::State& state) {
  HttpMetrics m;
  for (int r = 0; r < HttpMetrics::unmatched_route() + 1; ++r) {
    m.observe(r, 200, std::chrono::microseconds(r));
  }
  std::string out;
  for (auto _ : state) {
    out.clear();
    m.write(out);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["bytes"] = static_cast<double>(out.size());
}
BENCHMARK(BM_HttpMetricsWrite);

}  // namespace
}  // namespace schedd::api
