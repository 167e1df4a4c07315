// hello: the smallest useful schedd plugin in C++. Executor `hello` logs a line and succeeds
// with the output "<greeting> from <execution id>".
//
// Thread-safety: stateless; the daemon may call `run` from several workers at once.
#include <schedd/sdk.hpp>

#include <string>

namespace {

class Hello final : public schedd::Executor {
 public:
  schedd::Result run(schedd::Context& ctx) override {
    if (ctx.stop_requested()) return schedd::Result::cancelled();
    // The daemon fills in the schema default; the fallback covers hosts that do not.
    const std::string greeting = ctx.params().string_or("greeting", "hello");
    ctx.log().info("{} (attempt {})", greeting, ctx.attempt());
    return schedd::Result::succeeded(schedd::format("{} from {}", greeting, ctx.execution_id()));
  }
};

}  // namespace

SCHEDD_PLUGIN("hello", "1.0.0") {
  registrar.add<Hello>("hello", "Greets, to show how a plugin is built")
      .optional("greeting", schedd::ParamType::kString, "\"hello\"", "What to say");
}
