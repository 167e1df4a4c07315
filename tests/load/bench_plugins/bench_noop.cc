// A noop plugin built 20 times under different names (bench_noop_0 .. bench_noop_19), so that
// schedd-bench can load 20 distinct plugins out of process and measure what they cost the
// daemon and their runners. Variant 0 also has `bench_crash`, which dies by SIGSEGV, for the
// crash-to-replacement measurement.
#include <schedd/sdk.hpp>

#include <csignal>
#include <string>

#define BENCH_STR2(x) #x
#define BENCH_STR(x) BENCH_STR2(x)

namespace {
class Noop final : public schedd::Executor {
 public:
  schedd::Result run(schedd::Context&) override { return schedd::Result::succeeded(); }
};
class Crash final : public schedd::Executor {
 public:
  schedd::Result run(schedd::Context&) override {
    std::raise(SIGSEGV);
    return schedd::Result::failed("still alive");
  }
};
}  // namespace

SCHEDD_PLUGIN("bench_noop_" BENCH_STR(BENCH_INDEX), "1.0.0") {
  registrar.add<Noop>("bench_noop_" BENCH_STR(BENCH_INDEX), "Does nothing");
#if BENCH_INDEX == 0
  registrar.add<Crash>("bench_crash", "Dies by SIGSEGV");
#endif
}
