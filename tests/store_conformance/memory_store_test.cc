#include "core/store/memory_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tests/store_conformance/store_conformance.h"

namespace schedd::testing {
namespace {

using namespace std::chrono_literals;

INSTANTIATE_TEST_SUITE_P(Memory, StoreConformanceTest, ::testing::Values(StoreFactory([] {
                           return std::make_unique<MemoryStore>();
                         })));

// ---- execution.h helpers ------------------------------------------------------------------

TEST(StoreExecutionTest, StatusNamesRoundTrip) {
  for (ExecStatus s : {ExecStatus::kQueued, ExecStatus::kRunning, ExecStatus::kSucceeded,
                       ExecStatus::kFailed, ExecStatus::kTimedOut, ExecStatus::kCancelled,
                       ExecStatus::kExpired, ExecStatus::kSkipped, ExecStatus::kInterrupted}) {
    EXPECT_EQ(parse_exec_status(exec_status_name(s)), s) << exec_status_name(s);
  }
  EXPECT_STREQ(exec_status_name(ExecStatus::kTimedOut), "timed_out");
  EXPECT_EQ(parse_exec_status("Queued"), std::nullopt);
  EXPECT_EQ(parse_exec_status(""), std::nullopt);
  EXPECT_FALSE(is_terminal(ExecStatus::kRunning));
  EXPECT_TRUE(is_terminal(ExecStatus::kInterrupted));
}

TEST(StoreExecutionTest, RetryDelayRepeatsTheLastDelay) {
  ExecTemplate spec;
  EXPECT_EQ(retry_delay(spec, 2), 0ms);
  spec.retry_delays = {0ms, 30s, 5min};
  EXPECT_EQ(retry_delay(spec, 1), 0ms);
  EXPECT_EQ(retry_delay(spec, 2), 0ms);
  EXPECT_EQ(retry_delay(spec, 3), 30s);
  EXPECT_EQ(retry_delay(spec, 4), 5min);
  EXPECT_EQ(retry_delay(spec, 50), 5min);
}

TEST(StoreExecutionTest, PlannedIdIsHelperAtEpochSeconds) {
  EXPECT_EQ(planned_id("backup", kT0), "backup@1767225600");
  EXPECT_EQ(planned_id("backup", kT0 + 999ms), "backup@1767225600");
  EXPECT_EQ(planned_id("x", TimePoint{} - 500ms), "x@-1");
}

TEST(StoreExecutionTest, KeyIsTheIdWhenTheTemplateHasNone) {
  auto spec = make_spec("job", {.overlap = OverlapPolicy::kAllow});
  Execution e = make_exec(spec, kT0);
  EXPECT_EQ(e.key(), "job@1767225600");
  EXPECT_EQ(make_exec(make_spec("job"), kT0).key(), "job");
}

// ---- scale --------------------------------------------------------------------------------

// 2000 helpers x 50 planned runs, claimed and completed in due order: every claim is a few
// ordered-set operations, so this stays well under a second even in a debug build.
TEST(MemoryStoreTest, PlansAndDrainsAHundredThousandExecutions) {
  MemoryStore store;
  constexpr int kHelpers = 2000;
  constexpr int kRuns = 50;
  std::vector<Execution> batch;
  batch.reserve(kHelpers * kRuns);
  for (int h = 0; h < kHelpers; ++h) {
    auto spec = make_spec("helper-" + std::to_string(h), {.expiry = 1h});
    for (int r = 0; r < kRuns; ++r) batch.push_back(make_exec(spec, kT0 + std::chrono::minutes(r)));
  }
  auto created = store.plan(std::move(batch), kT0);
  ASSERT_TRUE(created.is_ok());
  ASSERT_EQ(*created, std::size_t{kHelpers * kRuns});

  std::size_t done = 0;
  for (int minute = 0; minute < kRuns; ++minute) {
    TimePoint now = kT0 + std::chrono::minutes(minute);
    // Everything due now is ready (no event); the next event is the earliest expiry.
    ASSERT_EQ(store.next_event(now), now + std::chrono::hours(1));
    while (true) {
      auto r = store.claim("default", 256, now, "node");
      ASSERT_TRUE(r.is_ok());
      ASSERT_TRUE(r->expired.empty());
      if (r->claimed.empty()) break;
      for (const auto& e : r->claimed) {
        ASSERT_EQ(e.due, now);
        Completion c;
        c.finished = now;
        ASSERT_TRUE(store.complete(e.id, e.fence, c).is_ok());
        ++done;
      }
    }
    ASSERT_EQ(done, std::size_t{kHelpers} * (minute + 1));
  }
  EXPECT_EQ(store.next_event(kT0 + 2h), std::nullopt);
  EXPECT_EQ(store.prune_history(kT0 + 2h), std::size_t{kHelpers * kRuns});
}

}  // namespace
}  // namespace schedd::testing
