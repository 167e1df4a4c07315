// Asks the kernel for a short CPU slice for the calling thread, for a thread whose job is to
// wake at an instant and act at once (the dispatcher's loop, woken by its timer at a run's
// due time).
//
// Why: since Linux 6.6 the fair scheduler is EEVDF. A thread woken by a timer on a CPU that a
// CPU-bound process holds preempts it only if its deadline (eligible time + slice) is the
// earlier one; with the default slice (0.7-3 ms, and the whole session's group with
// autogroup) it often waits until the running process's slice ends. On 2 cores busy with
// compilers that was the dispatcher's 2-8 ms waits from due to claim. A thread that declares
// a short slice (sched_attr.sched_runtime, Linux >= 6.12) gets an early deadline and
// preempts on wake-up; it gets no more CPU over time than before (same weight, same nice).
//
// No privilege is needed. On an older kernel sched_runtime is ignored for SCHED_OTHER, and
// on any error nothing changes: the call is a hint. Thread-safe (affects the caller only).
#pragma once

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>

namespace schedd {

// struct sched_attr of <linux/sched/types.h> (SCHED_ATTR_SIZE_VER0), under another name:
// glibc >= 2.41 declares its own in <sched.h>. For sched_setattr and sched_getattr.
struct SchedAttr {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime;
  uint64_t sched_deadline;
  uint64_t sched_period;
};

// Returns whether the kernel took the request (not whether it honours sched_runtime).
inline bool request_short_slice(std::chrono::microseconds slice) {
#ifdef SYS_sched_setattr
  const int policy = sched_getscheduler(0);
  if (policy != SCHED_OTHER) return false;  // real-time or batch: the operator chose
  errno = 0;
  const int nice = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));  // this thread's
  if (nice == -1 && errno != 0) return false;
  SchedAttr attr{};
  attr.size = sizeof attr;
  attr.sched_policy = SCHED_OTHER;
  attr.sched_nice = nice;  // unchanged: only the slice is asked for
  attr.sched_runtime =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(slice).count());
  return syscall(SYS_sched_setattr, 0, &attr, 0) == 0;
#else
  (void)slice;
  return false;
#endif
}

}  // namespace schedd
