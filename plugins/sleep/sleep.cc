// sleep: waits for `duration`, then succeeds. A stop request (cancel, timeout, shutdown) ends
// the wait at once and the attempt returns cancelled ("stopped after N ms"). Reports progress
// 0 ("waiting N ms") when the wait begins. Useful to test timeouts, cancellation,
// key serialization and lane capacity.
//
// Thread-safety: stateless; `run` may be called concurrently.
#include <schedd/sdk.hpp>

#include <chrono>

namespace {

class Sleep final : public schedd::Executor {
 public:
  schedd::Result run(schedd::Context& ctx) override {
    using std::chrono::milliseconds;
    using std::chrono::steady_clock;
    const milliseconds duration = ctx.params().duration("duration");
    const auto start = steady_clock::now();
    // Tells observers the wait has begun (tests use it to request a stop mid-wait).
    ctx.progress(0.0, schedd::format("waiting {} ms", duration.count()));
    if (ctx.wait_for_stop(duration)) {
      auto waited = std::chrono::duration_cast<milliseconds>(steady_clock::now() - start);
      return schedd::Result::cancelled(schedd::format("stopped after {} ms", waited.count()));
    }
    return schedd::Result::succeeded();
  }
};

}  // namespace

SCHEDD_PLUGIN("sleep", "1.0.0") {
  registrar.add<Sleep>("sleep", "Waits for a duration, or until stopped")
      .required("duration", schedd::ParamType::kDuration, "How long to wait, e.g. \"30s\"");
}
