// ticket: simulated work for tickets (the quick start's project queues). Works for
// `duration` in `steps` equal steps, reporting progress after each ("step 3 of 10"), and
// stops at once when asked (cancel, timeout, shutdown): the attempt returns cancelled
// ("stopped at step 3 of 10"). With `fail = true` the attempt fails after its work, to show
// retries. Its output names the ticket's execution id, key (project) and attempt.
//
// Thread-safety: stateless; `run` may be called concurrently.
#include <schedd/sdk.hpp>

#include <algorithm>
#include <chrono>

namespace {

class Ticket final : public schedd::Executor {
 public:
  schedd::Result run(schedd::Context& ctx) override {
    using std::chrono::milliseconds;
    const milliseconds duration = ctx.params().duration("duration");
    const int64_t steps = std::clamp<int64_t>(ctx.params().integer("steps"), 1, 1000);
    const bool fail = ctx.params().boolean("fail");
    ctx.progress(0.0, schedd::format("step 0 of {}", steps));
    for (int64_t i = 1; i <= steps; ++i) {
      // Spread the duration exactly: step i ends at i * duration / steps.
      const milliseconds step = duration * i / steps - duration * (i - 1) / steps;
      if (ctx.wait_for_stop(step)) {
        return schedd::Result::cancelled(schedd::format("stopped at step {} of {}", i - 1, steps));
      }
      ctx.progress(static_cast<double>(i) / static_cast<double>(steps),
                   schedd::format("step {} of {}", i, steps));
    }
    const std::string output = schedd::format("ticket {} of project {} done (attempt {})",
                                              ctx.execution_id(), ctx.key(), ctx.attempt());
    if (fail) return schedd::Result::failed("asked to fail (fail = true)", output);
    return schedd::Result::succeeded(output);
  }
};

}  // namespace

SCHEDD_PLUGIN("ticket", "1.0.0") {
  registrar.add<Ticket>("ticket", "Simulated ticket work in steps, with progress; honours stop")
      .optional("duration", schedd::ParamType::kDuration, "\"5s\"", "How long the work takes")
      .optional("steps", schedd::ParamType::kInt, "10", "Progress steps (1-1000)")
      .optional("fail", schedd::ParamType::kBool, "false", "Fail after the work (shows retries)");
}
