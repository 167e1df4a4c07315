#include "core/common/thread_slice.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <thread>

namespace schedd {
namespace {

// sched_getattr of the calling thread, into the header's SchedAttr.
bool get_attr(SchedAttr& attr) {
  attr = {};
  return syscall(SYS_sched_getattr, 0, &attr, sizeof attr, 0) == 0;
}

// Linux >= 6.12 keeps a SCHED_OTHER thread's sched_runtime as its slice.
bool kernel_has_custom_slices() {
  utsname u{};
  if (uname(&u) != 0) return false;
  int major = 0, minor = 0;
  if (std::sscanf(u.release, "%d.%d", &major, &minor) != 2) return false;
  return major > 6 || (major == 6 && minor >= 12);
}

// The dispatcher's loop asks for a short slice; the request must not reset the thread's nice
// (an operator's `nice -n 10 schedd` would silently lose it for the loop).
TEST(ThreadSliceTest, ShortSliceKeepsTheThreadsNice) {
  std::thread([] {
    // Raising one's own nice needs no privilege.
    ASSERT_EQ(setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 7), 0);
    ASSERT_TRUE(request_short_slice(std::chrono::microseconds(100)));
    EXPECT_EQ(getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())), 7);
    SchedAttr attr;
    ASSERT_TRUE(get_attr(attr));
    EXPECT_EQ(attr.sched_nice, 7);
    EXPECT_EQ(attr.sched_policy, static_cast<uint32_t>(SCHED_OTHER));
    if (kernel_has_custom_slices()) {
      EXPECT_EQ(attr.sched_runtime, 100000u);
    }
  }).join();
}

// Only the calling thread gets the slice: the process's other threads keep the default.
TEST(ThreadSliceTest, OnlyTheCallingThreadChanges) {
  if (!kernel_has_custom_slices()) GTEST_SKIP() << "kernel without custom slices (< 6.12)";
  SchedAttr before;
  ASSERT_TRUE(get_attr(before));
  std::thread([] { ASSERT_TRUE(request_short_slice(std::chrono::microseconds(100))); }).join();
  SchedAttr after;
  ASSERT_TRUE(get_attr(after));
  EXPECT_EQ(after.sched_runtime, before.sched_runtime);
  EXPECT_NE(after.sched_runtime, 100000u);
}

// A thread under another policy (batch, real-time) is left alone: that was the operator's choice.
TEST(ThreadSliceTest, LeavesOtherPoliciesAlone) {
  std::thread([] {
    sched_param p{};
    if (sched_setscheduler(0, SCHED_BATCH, &p) != 0) GTEST_SKIP() << "cannot set SCHED_BATCH";
    EXPECT_FALSE(request_short_slice(std::chrono::microseconds(100)));
    EXPECT_EQ(sched_getscheduler(0), SCHED_BATCH);
  }).join();
}

}  // namespace
}  // namespace schedd
