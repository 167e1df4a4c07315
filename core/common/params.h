// Executor parameter schemas and typed values, as the daemon holds them: copied out of a
// plugin's manifest (ParamSpec, ExecutorInfo) or parsed from config and API input
// (ParamValue). Values; thread-safe to share once built.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace schedd {

// Mirrors schedd_param_type in sdk/include/schedd/abi.h (same numeric values).
enum class ParamType : int32_t {
  kString = 1,
  kInt = 2,
  kDouble = 3,
  kBool = 4,
  kDuration = 5,
  kStringList = 6,
  kStringMap = 7,
};

// "string", "int", "double", "bool", "duration", "string list", "string map".
const char* param_type_name(ParamType type);

struct ParamSpec {
  std::string name;
  ParamType type = ParamType::kString;
  bool required = false;
  std::optional<std::string> default_toml;  // TOML text of the default, as the plugin gave it
  std::string description;
};

// What the daemon knows of one executor a plugin provides.
struct ExecutorInfo {
  std::string name;
  std::string description;
  std::vector<ParamSpec> params;
  std::string plugin_name;
  std::string plugin_version;
  std::string plugin_file;  // path of the .so it came from

  const ParamSpec* find_param(std::string_view param) const {
    for (const auto& p : params) {
      if (p.name == param) return &p;
    }
    return nullptr;
  }
};

using StringList = std::vector<std::string>;
using StringMap = std::map<std::string, std::string>;

// A typed parameter value. The variant alternative follows the type: kInt -> int64_t,
// kDouble -> double, kBool -> bool, kDuration -> milliseconds, kStringList -> StringList,
// kStringMap -> StringMap, kString -> std::string.
struct ParamValue {
  ParamType type = ParamType::kString;
  std::variant<std::string, int64_t, double, bool, std::chrono::milliseconds, StringList, StringMap>
      value;

  static ParamValue string(std::string s) { return {ParamType::kString, std::move(s)}; }
  static ParamValue integer(int64_t i) { return {ParamType::kInt, i}; }
  static ParamValue number(double d) { return {ParamType::kDouble, d}; }
  static ParamValue boolean(bool b) { return {ParamType::kBool, b}; }
  static ParamValue duration(std::chrono::milliseconds d) { return {ParamType::kDuration, d}; }
  static ParamValue list(StringList l) { return {ParamType::kStringList, std::move(l)}; }
  static ParamValue map(StringMap m) { return {ParamType::kStringMap, std::move(m)}; }

  // Canonical text: the string itself, "42", "true", "90s", "[a, b]", "{k=v}".
  std::string to_text() const;
  bool operator==(const ParamValue&) const = default;
};

// Params in schema order after validation (defaults filled in).
using ParamList = std::vector<std::pair<std::string, ParamValue>>;

}  // namespace schedd
