#include "core/common/params_json.h"

#include "core/common/duration.h"

namespace schedd {

nlohmann::json param_to_json(const ParamValue& v, DurationJson durations) {
  switch (v.type) {
    case ParamType::kString:
      return std::get<std::string>(v.value);
    case ParamType::kInt:
      return std::get<int64_t>(v.value);
    case ParamType::kDouble:
      return std::get<double>(v.value);
    case ParamType::kBool:
      return std::get<bool>(v.value);
    case ParamType::kDuration: {
      auto d = std::get<std::chrono::milliseconds>(v.value);
      if (durations == DurationJson::kText) return format_duration(d);
      return d.count();
    }
    case ParamType::kStringList:
      return std::get<StringList>(v.value);
    case ParamType::kStringMap:
      return std::get<StringMap>(v.value);
  }
  return v.to_text();
}

}  // namespace schedd
