// at("2026-03-08T07:00:00Z"): the instant an RFC 3339 text names, for tests. Bad text fails the
// test (and gives the epoch) rather than throwing.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "core/common/clock.h"
#include "core/schedule/schedule.h"

namespace schedd::testing {

inline TimePoint at(const std::string& rfc3339) {
  auto t = parse_rfc3339(rfc3339);
  EXPECT_TRUE(t.is_ok()) << rfc3339 << ": " << t.status().to_string();
  return t.is_ok() ? *t : TimePoint{};
}

}  // namespace schedd::testing
