// libFuzzer target for the config loader, through the entry `schedd check-config` uses:
// parse_config (what load_config runs on the file's bytes), then validate_helpers against a
// fixed set of executor schemas (the first-party plugins' shapes, fuzz_executors.h; no plugin
// is loaded), then
// every helper's schedule built as the engine builds it, and the effective config printed as
// `check-config --print-effective` does. Any input must load or give errors that each carry a
// message; nothing may crash, hang or assert.
//
// Built as `config_fuzz` (fuzz preset) and `config_fuzz_replay` (every build: the corpus as a
// ctest); see tests/fuzz/CMakeLists.txt.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/config.h"
#include "core/daemon/effective_config.h"
#include "fuzz_check.h"
#include "fuzz_executors.h"

using schedd::ExecutorInfo;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<ExecutorInfo> executors = schedd::fuzz::executor_schemas();
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  std::vector<schedd::ConfigError> errors;
  std::optional<schedd::Config> config = schedd::parse_config(text, "fuzz.toml", errors);
  FUZZ_CHECK("config_fuzz", config.has_value() == errors.empty(),
             "parse_config returned a config with errors, or neither", text);
  for (const auto& e : errors) {
    FUZZ_CHECK("config_fuzz", !e.message.empty(), "an error without a message", text);
  }
  if (!config) return 0;

  auto lookup = [](std::string_view name) -> const ExecutorInfo* {
    for (const auto& e : executors) {
      if (e.name == name) return &e;
    }
    return nullptr;
  };
  auto names = [] {
    std::vector<std::string> out;
    for (const auto& e : executors) out.push_back(e.name);
    return out;
  };
  schedd::validate_helpers(*config, lookup, names, errors);
  for (const auto& e : errors) {
    FUZZ_CHECK("config_fuzz", !e.message.empty(), "a helper error without a message", text);
  }

  for (const auto& h : config->helpers) {
    auto schedule = schedd::build_schedule(h.schedule, config->timezone, h.name);
    if (!schedule.is_ok()) {
      FUZZ_CHECK("config_fuzz", !schedule.status().message().empty(),
                 "a schedule error without a message", text);
      continue;
    }
    // 2026-03-08T01:30:00Z: two fire instants, strictly increasing.
    schedd::TimePoint t{std::chrono::seconds(1772933400)};
    for (int i = 0; i < 2; ++i) {
      auto next = schedule->next_after(t);
      if (!next) break;
      FUZZ_CHECK("config_fuzz", *next > t, "next_after is not strictly later", text);
      t = *next;
    }
  }
  if (errors.empty()) {
    const std::string effective = schedd::effective_config_toml(*config);
    FUZZ_CHECK("config_fuzz", !effective.empty(), "an empty effective config", text);
  }
  return 0;
}
