#include "core/store/execution.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <utility>

namespace schedd {
namespace {

constexpr std::array<std::pair<ExecStatus, const char*>, 9> kStatusNames = {{
    {ExecStatus::kQueued, "queued"},
    {ExecStatus::kRunning, "running"},
    {ExecStatus::kSucceeded, "succeeded"},
    {ExecStatus::kFailed, "failed"},
    {ExecStatus::kTimedOut, "timed_out"},
    {ExecStatus::kCancelled, "cancelled"},
    {ExecStatus::kExpired, "expired"},
    {ExecStatus::kSkipped, "skipped"},
    {ExecStatus::kInterrupted, "interrupted"},
}};

}  // namespace

const char* exec_status_name(ExecStatus s) {
  for (const auto& [status, name] : kStatusNames) {
    if (status == s) return name;
  }
  return "unknown";
}

std::optional<ExecStatus> parse_exec_status(std::string_view name) {
  for (const auto& [status, text] : kStatusNames) {
    if (name == text) return status;
  }
  return std::nullopt;
}

std::chrono::milliseconds retry_delay(const ExecTemplate& spec, uint32_t next_attempt) {
  if (spec.retry_delays.empty() || next_attempt < 2) return std::chrono::milliseconds(0);
  std::size_t index = std::min<std::size_t>(next_attempt - 2, spec.retry_delays.size() - 1);
  return spec.retry_delays[index];
}

std::string planned_id(std::string_view helper, TimePoint due) {
  // floor, not truncation, so an instant before the epoch still names the second it falls in.
  auto seconds = std::chrono::floor<std::chrono::seconds>(due.time_since_epoch()).count();
  return fmt::format("{}@{}", helper, seconds);
}

}  // namespace schedd
