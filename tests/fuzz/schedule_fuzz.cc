// libFuzzer target for the schedule parsers other than the cron grammar (cron_fuzz): a
// helper's `schedule` written as a TOML inline table, as config files, API updates and
// `schedd calendar` give it: daily (`time`, `days`), interval (`every`, `anchor`), cron, `tz`,
// `jitter` and the `dst` table, parsed by parse_schedule and built by build_schedule
// (core/config/build_schedule.cc). Any input must build or fail with a message; a built
// schedule's next instants are strictly increasing. Never crashes, hangs or asserts.
//
// Built as `schedule_fuzz` (fuzz preset) and `schedule_fuzz_replay` (every build); see
// tests/fuzz/CMakeLists.txt.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/config.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A schedule is one short inline table; longer inputs only slow the search down.
  if (size > 512) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  std::vector<schedd::ConfigError> errors;
  auto config = schedd::parse_schedule(text, "fuzz", errors);
  FUZZ_CHECK("schedule_fuzz", config.has_value() == errors.empty(),
             "parse_schedule returned a schedule with errors, or neither", text);
  for (const auto& e : errors) {
    FUZZ_CHECK("schedule_fuzz", !e.message.empty(), "an error without a message", text);
  }
  if (!config) return 0;

  // The daemon's zone: UTC here, so that a schedule without `tz` does not depend on the host.
  auto schedule = schedd::build_schedule(*config, "UTC", "fuzz-helper");
  if (!schedule.is_ok()) {
    FUZZ_CHECK("schedule_fuzz", !schedule.status().message().empty(),
               "a build error without a message", text);
    return 0;
  }
  // Around the 2026 US spring-forward (2026-03-08T01:30:00Z) and fall-back
  // (2026-11-01T05:30:00Z), and just before 2000.
  for (int64_t start : {int64_t{1772933400}, int64_t{1793511000}, int64_t{946684799}}) {
    schedd::TimePoint t{std::chrono::seconds(start)};
    for (int i = 0; i < 4; ++i) {
      std::optional<schedd::TimePoint> next = schedule->next_after(t);
      if (!next) break;
      FUZZ_CHECK("schedule_fuzz", *next > t, "next_after is not strictly later", text);
      t = *next;
    }
  }
  return 0;
}
