// Execution: one run of a helper or ticket, as the store keeps it. See docs/design.md "Execution
// lifecycle". Values; thread-safe to copy.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/clock.h"
#include "core/common/params.h"

namespace schedd {

enum class ExecStatus {
  kQueued,
  kRunning,
  kSucceeded,
  kFailed,
  kTimedOut,
  kCancelled,
  kExpired,
  kSkipped,
  kInterrupted,
};

inline constexpr std::size_t kExecStatusCount = 9;
static_assert(static_cast<std::size_t>(ExecStatus::kInterrupted) + 1 == kExecStatusCount,
              "kExecStatusCount counts every ExecStatus");
// The statuses an execution ends in (is_terminal), in enum order.
inline constexpr ExecStatus kTerminalStatuses[] = {
    ExecStatus::kSucceeded, ExecStatus::kFailed,  ExecStatus::kTimedOut,    ExecStatus::kCancelled,
    ExecStatus::kExpired,   ExecStatus::kSkipped, ExecStatus::kInterrupted,
};

// "queued", "running", "succeeded", "failed", "timed_out", "cancelled", "expired", "skipped",
// "interrupted".
const char* exec_status_name(ExecStatus s);
std::optional<ExecStatus> parse_exec_status(std::string_view name);
inline bool is_terminal(ExecStatus s) {
  return s != ExecStatus::kQueued && s != ExecStatus::kRunning;
}

enum class OverlapPolicy { kQueue, kSkip, kReplace, kAllow };
enum class ExecOrigin { kHelper = 1, kTicket = 2, kAdhoc = 3 };

// What every execution of one helper (or one ticket submission) shares. Immutable once
// built, shared between the executions planned from it to keep planned executions small.
struct ExecTemplate {
  ExecOrigin origin = ExecOrigin::kHelper;
  std::string name;      // helper or ticket name
  std::string executor;  // executor name
  std::string key;       // serialization key; empty for overlap = allow (the id is used)
  std::string lane = "default";
  int priority = 3;                                  // 1 (highest) .. 5
  std::optional<std::chrono::milliseconds> expiry;   // not started by due + expiry: expired
  std::optional<std::chrono::milliseconds> timeout;  // stop requested after this long
  uint32_t max_attempts = 1;
  std::vector<std::chrono::milliseconds> retry_delays;  // last one repeats
  OverlapPolicy overlap = OverlapPolicy::kQueue;
  ParamList params;
};

struct Execution {
  std::string id;  // helpers: "name@due-epoch-seconds"
  std::shared_ptr<const ExecTemplate> spec;
  TimePoint due;         // planned due time; orders the key's queue and sets expiry
  TimePoint not_before;  // earliest start: due, or later for a retry
  uint64_t seq = 0;      // submission order, assigned by the store
  uint32_t attempt = 1;
  ExecStatus status = ExecStatus::kQueued;
  uint64_t fence = 0;  // claim token, increasing; a completion must carry the current one
  TimePoint created{};
  std::optional<TimePoint> started;
  std::optional<TimePoint> finished;
  std::string message;
  std::string output;
  std::string node;  // the daemon that ran it

  const std::string& key() const { return spec->key.empty() ? id : spec->key; }
  const std::string& lane() const { return spec->lane; }
  int priority() const { return spec->priority; }
  std::optional<TimePoint> expires() const {
    if (!spec->expiry) return std::nullopt;
    return due + *spec->expiry;
  }
};

// The retry delay before attempt `next_attempt` (2 for the first retry): delays[n-2], the last
// one repeating; zero when there are none.
std::chrono::milliseconds retry_delay(const ExecTemplate& spec, uint32_t next_attempt);

// Deterministic id of a planned execution: "helper@1767225600".
std::string planned_id(std::string_view helper, TimePoint due);

}  // namespace schedd
