#include "core/common/params.h"

#include <charconv>
#include <string>

#include "core/common/duration.h"

namespace schedd {

const char* param_type_name(ParamType type) {
  switch (type) {
    case ParamType::kString:
      return "string";
    case ParamType::kInt:
      return "int";
    case ParamType::kDouble:
      return "double";
    case ParamType::kBool:
      return "bool";
    case ParamType::kDuration:
      return "duration";
    case ParamType::kStringList:
      return "string list";
    case ParamType::kStringMap:
      return "string map";
  }
  return "unknown";
}

namespace {

std::string double_text(double d) {
  // Shortest text that reads back to the same double.
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
  if (ec != std::errc()) return std::to_string(d);
  return std::string(buf, end);
}

struct TextVisitor {
  std::string operator()(const std::string& s) const { return s; }
  std::string operator()(int64_t i) const { return std::to_string(i); }
  std::string operator()(double d) const { return double_text(d); }
  std::string operator()(bool b) const { return b ? "true" : "false"; }
  std::string operator()(std::chrono::milliseconds d) const { return format_duration(d); }
  std::string operator()(const StringList& l) const {
    std::string out = "[";
    for (size_t i = 0; i < l.size(); ++i) {
      if (i > 0) out += ", ";
      out += l[i];
    }
    return out + "]";
  }
  std::string operator()(const StringMap& m) const {
    std::string out = "{";
    bool first = true;
    for (const auto& [k, v] : m) {
      if (!first) out += ", ";
      first = false;
      out += k;
      out += '=';
      out += v;
    }
    return out + "}";
  }
};

}  // namespace

std::string ParamValue::to_text() const { return std::visit(TextVisitor{}, value); }

}  // namespace schedd
