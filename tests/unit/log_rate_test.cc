#include "core/common/log_rate.h"

#include <gtest/gtest.h>

namespace schedd {
namespace {

using namespace std::chrono_literals;

TEST(LogRateWindowTest, PassesThePerSecondLimitThenCountsWhatItDropsPerWindow) {
  LogRateWindow w(3);
  const LogRateWindow::Instant t0 = LogRateWindow::Instant{} + 100s;
  uint64_t closed = 99;
  int passed = 0;
  for (int i = 0; i < 10; ++i) passed += w.admit(t0 + std::chrono::milliseconds(i), &closed);
  EXPECT_EQ(passed, 3);
  EXPECT_EQ(closed, 0u) << "the first call opens a window with nothing dropped before it";
  // 999 ms after the window opened: still the same window.
  EXPECT_FALSE(w.admit(t0 + 999ms, &closed));
  // A second later a new window opens: it passes again, and reports the 8 of the old one.
  closed = 0;
  EXPECT_TRUE(w.admit(t0 + 1s, &closed));
  EXPECT_EQ(closed, 8u);
  EXPECT_EQ(w.take_dropped(), 0u) << "reported once";
  EXPECT_TRUE(w.admit(t0 + 1s + 1ms));
  EXPECT_TRUE(w.admit(t0 + 1s + 2ms));
  EXPECT_FALSE(w.admit(t0 + 1s + 3ms));
  EXPECT_EQ(w.take_dropped(), 1u);  // what the end of a run reports
  EXPECT_EQ(w.take_dropped(), 0u);
}

TEST(LogRateWindowTest, ZeroMeansNoLimit) {
  LogRateWindow w(0);
  const LogRateWindow::Instant t0 = LogRateWindow::Instant{} + 1s;
  for (int i = 0; i < 10000; ++i) ASSERT_TRUE(w.admit(t0));
  EXPECT_EQ(w.take_dropped(), 0u);
}

}  // namespace
}  // namespace schedd
