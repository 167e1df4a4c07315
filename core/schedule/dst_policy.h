// DstPolicy: what a schedule does with local times that do not exist (a spring-forward gap)
// or occur twice (a fall-back overlap). See docs/schedules.md and docs/design.md §8.
#pragma once

namespace schedd {

struct DstPolicy {
  // kShift: fire at the first instant after the gap; kSkip: do not fire.
  enum class Gap { kShift, kSkip } gap = Gap::kShift;
  // Which occurrence(s) of a repeated local time fire.
  enum class Overlap { kFirst, kLast, kBoth } overlap = Overlap::kFirst;
  bool operator==(const DstPolicy&) const = default;
};

}  // namespace schedd
