// strings(errors): config errors as the text an operator reads, for comparing in tests.
#pragma once

#include <string>
#include <vector>

#include "core/config/config.h"

namespace schedd::testing {

inline std::vector<std::string> strings(const std::vector<ConfigError>& errors) {
  std::vector<std::string> out;
  for (const auto& e : errors) out.push_back(e.to_string());
  return out;
}

}  // namespace schedd::testing
