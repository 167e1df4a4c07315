// ParamValue as JSON, shared by the API (responses) and the SQLite store (templates).
// Thread-safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include "core/common/params.h"

namespace schedd {

enum class DurationJson {
  kMilliseconds,  // 90000: exact, for storage
  kText,          // "90s": for people (format_duration)
};

// The value as JSON: strings, numbers and booleans as themselves, lists as arrays, maps as
// objects, durations per `durations`.
nlohmann::json param_to_json(const ParamValue& v, DurationJson durations);

}  // namespace schedd
