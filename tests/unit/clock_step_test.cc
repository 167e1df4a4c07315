// The wall clock stepped an hour forward and an hour back under a running engine (issue #18
// point 4: an NTP step, a VM resumed, an operator's `date -s`), on the ManualClock of
// tests/testing/engine_harness.h. What schedd promises (docs/design.md §4, §5, §7, §8):
//
// - back: nothing that ran runs again. Planned ids are `helper@due` and the planner keeps a
//   watermark per helper, so the hour the clock re-lives plans nothing new; the runs planned
//   after the step's target wait for their due times, which now come an hour later in real
//   time.
// - forward: every due time the clock jumped over is recorded exactly once: run late if still
//   within its expiry, expired otherwise (as after downtime). Nothing is skipped silently.
//
// A fixed-time schedule (`time = "03:00"`) and interval ones (`every`, a cron with many hours)
// side by side. The counts are checked per id, so a duplicate start or a missing record fails.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "tests/testing/engine_harness.h"

namespace schedd {
namespace {

using namespace std::chrono_literals;
using testing::at;
using testing::Harness;

std::string id_at(const std::string& helper, const std::string& rfc3339) {
  return helper + "@" +
         std::to_string(
             std::chrono::duration_cast<std::chrono::seconds>(at(rfc3339).time_since_epoch())
                 .count());
}

// One fixed-time and two interval helpers, with `expiry`.
std::string config(const char* expiry) {
  return std::string(R"([daemon]
timezone = "UTC"
[lanes.default]
workers = 4
[helpers.daily]
executor = "noop"
schedule = { time = "03:00" }
expiry = ")") +
         expiry +
         R"("
[helpers.tenmin]
executor = "noop"
schedule = { every = "10m" }
expiry = ")" +
         expiry +
         R"("
[helpers.hourly]
executor = "noop"
schedule = { cron = "15 * * * *" }
expiry = ")" +
         expiry +
         R"("
)";
}

// Per id: how often it started, and the terminal statuses it was recorded with.
struct Tally {
  std::map<std::string, int> starts;
  std::map<std::string, std::vector<ExecStatus>> ends;
};

Tally tally(Harness& h) {
  Tally t;
  for (const auto& e : h.events("start")) ++t.starts[e.id];
  for (const char* kind : {"finish", "expired", "skipped"}) {
    for (const auto& e : h.events(kind)) t.ends[e.id].push_back(e.status);
  }
  return t;
}

// Advances the clock a minute at a time by `span`, letting the engine go idle each step.
void run_for(Harness& h, std::chrono::minutes span) {
  for (auto m = 0min; m < span; m += 1min) h.advance(1min);
}

TEST(ClockStepTest, AnHourBackRunsNothingTwiceAndTheFixedTimeRunOnce) {
  Harness h(config("30m"), at("2026-01-01T02:50:30Z"));
  h.start();
  run_for(h, 30min);  // 03:20:30: daily@03:00 ran, tenmin 03:00..03:20, hourly 03:15
  const Tally before = tally(h);
  ASSERT_EQ(before.starts.count(id_at("daily", "2026-01-01T03:00:00Z")), 1u);

  h.clock().set(h.clock().now() - 1h);  // 02:20:30 again
  h.idle();
  run_for(h, 2h);  // to 04:20:30: the hour re-lived, then an hour of new time

  const Tally t = tally(h);
  for (const auto& [id, n] : t.starts) EXPECT_EQ(n, 1) << id << " started " << n << " times";
  for (const auto& [id, ends] : t.ends) {
    EXPECT_EQ(ends.size(), 1u) << id << " recorded " << ends.size() << " times";
    EXPECT_EQ(ends.front(), ExecStatus::kSucceeded) << id;
  }
  // The fixed-time run: once, before the step; the next is tomorrow's.
  int daily = 0;
  for (const auto& [id, n] : t.starts) daily += id.starts_with("daily@") ? n : 0;
  EXPECT_EQ(daily, 1);
  // The interval helpers: every due time from 03:00 to 04:20 once, none before 03:00 (the
  // re-lived 02:20..02:50 was never planned, so it plans nothing).
  for (int m = 0; m <= 80; m += 10) {
    const auto due = at("2026-01-01T03:00:00Z") + std::chrono::minutes(m);
    const std::string id =
        "tenmin@" +
        std::to_string(
            std::chrono::duration_cast<std::chrono::seconds>(due.time_since_epoch()).count());
    EXPECT_EQ(t.starts.count(id), 1u) << id;
  }
  EXPECT_EQ(t.starts.count(id_at("tenmin", "2026-01-01T02:30:00Z")), 0u);
  EXPECT_EQ(t.starts.count(id_at("hourly", "2026-01-01T03:15:00Z")), 1u);
  EXPECT_EQ(t.starts.count(id_at("hourly", "2026-01-01T04:15:00Z")), 1u);
  std::size_t total = 0;
  for (const auto& [id, n] : t.starts) total += static_cast<std::size_t>(n);
  EXPECT_EQ(total, 1u + 9u + 2u);  // daily, tenmin 03:00..04:20, hourly 03:15 and 04:15
}

// Forward by an hour with the default expiry (30 min): what the clock jumped over is recorded
// once each, run late if due within the last 30 min of the jump, expired otherwise; with an
// expiry longer than the jump, all of it runs late, once.
struct ForwardCase {
  const char* name;
  const char* expiry;
  std::chrono::minutes expiry_minutes;
};

class ClockStepForwardTest : public ::testing::TestWithParam<ForwardCase> {};

TEST_P(ClockStepForwardTest, AnHourForwardRecordsEveryJumpedDueTimeOnce) {
  const ForwardCase& c = GetParam();
  Harness h(config(c.expiry), at("2026-01-01T02:50:30Z"));
  h.start();
  run_for(h, 5min);  // 02:55:30: nothing due yet
  ASSERT_TRUE(h.events("start").empty());
  const TimePoint jump_to = h.clock().now() + 1h;  // 03:55:30
  h.clock().set(jump_to);
  h.idle();
  run_for(h, 1min);  // 03:56:30

  const Tally t = tally(h);
  for (const auto& [id, n] : t.starts) EXPECT_EQ(n, 1) << id << " started " << n << " times";
  // Every due time in the jumped hour, per helper.
  std::vector<std::pair<std::string, TimePoint>> jumped{{"daily", at("2026-01-01T03:00:00Z")},
                                                        {"hourly", at("2026-01-01T03:15:00Z")}};
  for (int m = 0; m <= 50; m += 10) {
    jumped.emplace_back("tenmin", at("2026-01-01T03:00:00Z") + std::chrono::minutes(m));
  }
  std::size_t ran = 0, expired = 0;
  for (const auto& [helper, due] : jumped) {
    const std::string id =
        helper + "@" +
        std::to_string(
            std::chrono::duration_cast<std::chrono::seconds>(due.time_since_epoch()).count());
    auto it = t.ends.find(id);
    ASSERT_NE(it, t.ends.end()) << id << " was jumped over and never recorded";
    ASSERT_EQ(it->second.size(), 1u) << id;
    const bool within_expiry = jump_to - due <= c.expiry_minutes;
    EXPECT_EQ(it->second.front(), within_expiry ? ExecStatus::kSucceeded : ExecStatus::kExpired)
        << id;
    (within_expiry ? ran : expired) += 1;
  }
  std::printf("%s: %zu due times jumped over, %zu ran late, %zu expired\n", c.name, jumped.size(),
              ran, expired);
  EXPECT_EQ(ran + expired, jumped.size());
}

INSTANTIATE_TEST_SUITE_P(ClockStepTest, ClockStepForwardTest,
                         ::testing::Values(ForwardCase{"Expiry30m", "30m", 30min},
                                           ForwardCase{"Expiry2h", "2h", 120min}),
                         [](const ::testing::TestParamInfo<ForwardCase>& info) {
                           return std::string(info.param.name);
                         });

// A run's timeout is elapsed time, not wall-clock time: a step of the wall clock neither times
// a run out early (forward) nor lets it overrun (back). The `sleep` plugin runs until stopped.
TEST(ClockStepTest, RunTimeoutsCountElapsedTimeWhateverTheWallClockDoes) {
  Harness h(R"([lanes.default]
workers = 2
[helpers.fwd]
executor = "sleep"
schedule = { every = "1d" }
timeout = "10m"
retry = { max_attempts = 1 }
params = { duration = "1d" }
[helpers.back]
executor = "sleep"
schedule = { every = "1d" }
timeout = "10m"
retry = { max_attempts = 1 }
params = { duration = "1d" }
)",
            at("2026-01-01T00:00:30Z"));
  h.start();
  ASSERT_TRUE(h.engine().run_now("fwd").is_ok());
  ASSERT_TRUE(h.engine().run_now("back").is_ok());
  h.wait_running(2);

  h.clock().set(h.clock().now() + 2h);  // a step forward, far past both timeouts
  h.quiet();
  EXPECT_TRUE(h.events("finish").empty()) << "a wall-clock step timed a run out";
  h.clock().set(h.clock().now() - 3h);  // and back, an hour before they started
  h.quiet();
  EXPECT_TRUE(h.events("finish").empty());

  h.clock().advance(9min);  // 9 minutes have passed since the runs started
  h.quiet();
  EXPECT_TRUE(h.events("finish").empty());
  h.clock().advance(61s);      // 10 min 1 s: both time out, though the wall clock reads before
  h.wait_events("finish", 2);  // their start
  for (const auto& e : h.events("finish")) {
    EXPECT_EQ(e.status, ExecStatus::kTimedOut) << e.id;
  }
}

}  // namespace
}  // namespace schedd
