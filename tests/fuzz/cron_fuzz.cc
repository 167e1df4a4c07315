// libFuzzer target for the cron parser and the next-instant search (how to run it:
// tests/fuzz/CMakeLists.txt). Any input must parse or fail cleanly; a parsed expression must give a
// schedule whose next instants are strictly increasing, and that finds an instant exactly when
// can_fire() says one exists (in UTC no local time is skipped). Never crashes, hangs or asserts.
//
// Built twice: as `cron_fuzz` with libFuzzer (clang, -DSCHEDD_FUZZ=ON) and as
// `cron_fuzz_replay` with replay_main.cc in every build, which runs the corpus as a test.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/schedule/cron.h"
#include "core/schedule/schedule.h"

namespace {

void check(bool ok, const char* what, std::string_view input) {
  if (ok) return;
  std::fprintf(stderr, "cron_fuzz: %s for input \"%.*s\"\n", what, static_cast<int>(input.size()),
               input.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Cron expressions are short; longer inputs only slow the search down.
  if (size > 256) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  auto expr = schedd::parse_cron(text);
  if (!expr.is_ok()) {
    check(!expr.status().message().empty(), "an error without a message", text);
    return 0;
  }
  const bool fires = expr->can_fire();

  static const date::time_zone* const utc = date::locate_zone("UTC");
  auto schedule = schedd::Schedule::cron(text, utc);
  check(schedule.is_ok(), "parse_cron accepts what Schedule::cron rejects", text);
  check(schedule->fixed_time() == expr->fixed_time, "fixed_time differs", text);

  // 2026-03-08T01:30:00Z and 1999-12-31T23:59:59Z (inside the 400-year search window).
  for (int64_t start : {int64_t{1772933400}, int64_t{946684799}}) {
    schedd::TimePoint t{std::chrono::seconds(start)};
    for (int i = 0; i < 3; ++i) {
      std::optional<schedd::TimePoint> next = schedule->next_after(t);
      check(next.has_value() == fires, "next_after disagrees with can_fire", text);
      if (!next) break;
      check(*next > t, "next_after is not strictly later", text);
      t = *next;
    }
  }
  return 0;
}
