// noop: an executor that does nothing and succeeds at once. Useful to exercise scheduling,
// keys and lanes without side effects, and as the smallest possible first-party plugin.
//
// Thread-safety: stateless; `run` may be called concurrently.
#include <schedd/sdk.hpp>

namespace {

class Noop final : public schedd::Executor {
 public:
  schedd::Result run(schedd::Context& /*ctx*/) override { return schedd::Result::succeeded(); }
};

}  // namespace

SCHEDD_PLUGIN("noop", "1.0.0") {
  registrar.add<Noop>("noop", "Does nothing and succeeds immediately");
}
