// libFuzzer target for the HTTP API's routing layer with no sockets: Api::handle (the route
// table, auth, JSON bodies and every handler) on an Engine over a MemoryStore, set up as
// tests/integration/api_test.cc does but with the first-party plugins' executor schemas
// registered without loading a plugin (fuzz_executors.h). The
// engine is not started, so nothing runs and every input sees the same state: a fresh store,
// engine and Api per input.
//
// Input: the first line is "METHOD TARGET" (TARGET is path and query), the rest is the body:
//   POST /v1/executions
//   {"executor": "noop", "priority": 2}
// Any input must get a response with a status in 200..599 and, for errors, a JSON body with
// an error code and message; never a crash, hang or assert.
//
// Built as `api_fuzz` (fuzz preset) and `api_fuzz_replay` (every build); see
// tests/fuzz/CMakeLists.txt.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>

#include "core/api/api.h"
#include "core/control/validate.h"
#include "core/store/memory_store.h"
#include "fuzz_check.h"
#include "fuzz_executors.h"
#include "tests/testing/manual_clock.h"

namespace {

using namespace schedd;

// Two helpers and ticket settings, so that helper, execution and ticket routes reach their
// handlers; in process (no runner is started: the engine never runs anything).
constexpr const char* kConfig = R"([daemon]
isolation = "inprocess"
timezone = "UTC"
[lanes.default]
workers = 2
[lanes.ai]
workers = 1
[capacity]
queued = 50
[tickets]
executor = "sleep"
[tickets.projects.acme]
priority = 2
[helpers.hourly]
executor = "noop"
schedule = { every = "1h" }
[helpers.report]
executor = "sleep"
schedule = { cron = "*/10 * * * *", tz = "Europe/Paris" }
params = { duration = "1ms" }
)";

struct World {
  PluginHost plugins;
  Config config;
};

World* make_world() {
  auto* w = new World;
  fuzz::add_executors(w->plugins);
  std::vector<ConfigError> errors;
  auto cfg = parse_config(kConfig, "api_fuzz.toml", errors);
  if (cfg) {
    w->config = std::move(*cfg);
    validate_helpers(w->config, w->plugins, errors);
  }
  if (!errors.empty()) fuzz::fail("api_fuzz", "the fixed config is refused", errors[0].message);
  return w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Quiet: errors come back as statuses and answers; the log would only slow the fuzzer.
  static const bool quiet = (spdlog::set_level(spdlog::level::off), true);
  (void)quiet;
  static World* const world = make_world();  // never freed
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  api::HttpRequest request;
  const std::size_t eol = input.find('\n');
  const std::string_view line = input.substr(0, eol);
  const std::size_t space = line.find(' ');
  request.method = std::string(line.substr(0, space));
  if (space != std::string_view::npos) request.target = std::string(line.substr(space + 1));
  if (eol != std::string_view::npos) request.body = std::string(input.substr(eol + 1));
  request.remote = "127.0.0.1:1";

  // 2026-03-08T01:30:00Z, fixed, so that planning is the same for every input.
  static const TimePoint kStart{std::chrono::seconds(1772933400)};
  testing::ManualClock clock(kStart);
  MemoryStore store;
  Engine engine(world->config, store, clock, world->plugins, "fuzz-node");
  api::ApiOptions options;
  api::Api api(engine, options);

  api::HttpResponse response = api.handle(request);
  if (response.deferred || response.stream) return 0;  // answered later, or a live stream
  FUZZ_CHECK("api_fuzz", response.status >= 200 && response.status <= 599,
             "a status outside 200..599", input);
  if (response.status >= 400 && response.content_type == "application/json") {
    auto body = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
    FUZZ_CHECK("api_fuzz", body.is_object() && body.contains("error"),
               "an error response without an error object", input);
    const auto& error = body["error"];
    FUZZ_CHECK(
        "api_fuzz",
        error.is_object() && error.value("code", "") != "" && error.value("message", "") != "",
        "an error without a code or a message", input);
    FUZZ_CHECK("api_fuzz", error.value("code", "") != "internal",
               "an internal error (a handler threw)", input);
  }
  return 0;
}
