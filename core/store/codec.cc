// Encodings shared by the durable stores (SQLite, Redis): status codes, times, templates.
#include "core/store/codec.h"

#include <fmt/format.h>

#include <array>
#include <cstdint>
#include <iterator>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/common/params_json.h"

namespace schedd::codec {
namespace {

using Json = nlohmann::json;

constexpr std::array<std::pair<ExecStatus, int>, 9> kStatusCodes = {{
    {ExecStatus::kQueued, 0},
    {ExecStatus::kRunning, 1},
    {ExecStatus::kSucceeded, 2},
    {ExecStatus::kFailed, 3},
    {ExecStatus::kTimedOut, 4},
    {ExecStatus::kCancelled, 5},
    {ExecStatus::kExpired, 6},
    {ExecStatus::kSkipped, 7},
    {ExecStatus::kInterrupted, 8},
}};

// An integer field. A number too big for int64 parses as a float, and get<int64_t>() of a
// float out of range is undefined behaviour (found by tests/fuzz/redis_reply_fuzz.cc), so
// anything but an integer is a malformed body.
int64_t integer(const Json& j) {
  if (!j.is_number_integer()) {
    throw std::runtime_error(std::string("expected an integer, got ") + j.type_name());
  }
  return j.get<int64_t>();
}

ParamValue param_from_json(ParamType type, const Json& j) {
  switch (type) {
    case ParamType::kString:
      return ParamValue::string(j.get<std::string>());
    case ParamType::kInt:
      return ParamValue::integer(integer(j));
    case ParamType::kDouble:
      return ParamValue::number(j.get<double>());
    case ParamType::kBool:
      return ParamValue::boolean(j.get<bool>());
    case ParamType::kDuration:
      return ParamValue::duration(std::chrono::milliseconds(integer(j)));
    case ParamType::kStringList:
      return ParamValue::list(j.get<StringList>());
    case ParamType::kStringMap:
      return ParamValue::map(j.get<StringMap>());
  }
  throw std::runtime_error("unknown param type " + std::to_string(static_cast<int>(type)));
}

}  // namespace

int status_code(ExecStatus s) {
  for (const auto& [status, code] : kStatusCodes) {
    if (status == s) return code;
  }
  return -1;
}

std::optional<ExecStatus> status_from_code(int code) {
  for (const auto& [status, c] : kStatusCodes) {
    if (c == code) return status;
  }
  return std::nullopt;
}

int64_t to_ns(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

TimePoint from_ns(int64_t ns) {
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(std::chrono::nanoseconds(ns)));
}

namespace {
Json params_json(const ParamList& list) {
  Json params = Json::array();
  for (const auto& [name, value] : list) {
    params.push_back(Json::array(
        {name, static_cast<int>(value.type), param_to_json(value, DurationJson::kMilliseconds)}));
  }
  return params;
}
ParamList params_from_json(const Json& params) {
  ParamList list;
  for (const auto& p : params) {
    auto type = static_cast<ParamType>(integer(p.at(1)));
    list.emplace_back(p.at(0).get<std::string>(), param_from_json(type, p.at(2)));
  }
  return list;
}
}  // namespace

std::string params_to_body(const ParamList& params) { return params_json(params).dump(); }

ParamList params_from_body(const std::string& body) { return params_from_json(Json::parse(body)); }

std::string template_to_body(const ExecTemplate& t) {
  Json j;
  j["origin"] = static_cast<int>(t.origin);
  j["name"] = t.name;
  j["executor"] = t.executor;
  j["key"] = t.key;
  j["lane"] = t.lane;
  j["priority"] = t.priority;
  j["expiry_ms"] = t.expiry ? Json(t.expiry->count()) : Json(nullptr);
  j["timeout_ms"] = t.timeout ? Json(t.timeout->count()) : Json(nullptr);
  j["max_attempts"] = t.max_attempts;
  Json delays = Json::array();
  for (auto d : t.retry_delays) delays.push_back(d.count());
  j["retry_delays_ms"] = std::move(delays);
  j["overlap"] = static_cast<int>(t.overlap);
  j["params"] = params_json(t.params);
  return j.dump();
}

namespace {
// Field `name` of the template body `j`; missing is a malformed body naming it.
const Json& field(const Json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end()) throw std::runtime_error(std::string("field ") + name + " is missing");
  return *it;
}

std::string text_field(const Json& j, const char* name) {
  const Json& v = field(j, name);
  if (!v.is_string()) {
    throw std::runtime_error(std::string("field ") + name + ": expected a string, got " +
                             v.type_name());
  }
  return v.get<std::string>();
}

// An integer field within [lo, hi]: a template no schedd writes (priority 99, a negative
// timeout, an overlap policy that does not exist) is refused, not run with nonsense.
int64_t integer_field(const Json& j, const char* name, int64_t lo, int64_t hi) {
  const Json& v = field(j, name);
  int64_t x = 0;
  try {
    x = integer(v);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(std::string("field ") + name + ": " + e.what());
  }
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) x = -1;
  if (x < lo || x > hi) {
    throw std::runtime_error(std::string("field ") + name + ": " + v.dump() + " is out of range " +
                             std::to_string(lo) + "-" + std::to_string(hi));
  }
  return x;
}

std::optional<std::chrono::milliseconds> optional_ms(const Json& j, const char* name) {
  if (field(j, name).is_null()) return std::nullopt;
  return std::chrono::milliseconds(integer_field(j, name, 1, INT64_MAX));
}
}  // namespace

// Throws on a malformed body (caught by load()), naming the field.
std::shared_ptr<const ExecTemplate> template_from_body(const std::string& body) {
  Json j = Json::parse(body);
  if (!j.is_object()) {
    throw std::runtime_error(std::string("expected a JSON object, got ") + j.type_name());
  }
  auto t = std::make_shared<ExecTemplate>();
  t->origin = static_cast<ExecOrigin>(integer_field(j, "origin", 1, 3));
  t->name = text_field(j, "name");
  t->executor = text_field(j, "executor");
  t->key = text_field(j, "key");
  t->lane = text_field(j, "lane");
  t->priority = static_cast<int>(integer_field(j, "priority", 1, 5));
  t->expiry = optional_ms(j, "expiry_ms");
  t->timeout = optional_ms(j, "timeout_ms");
  t->max_attempts = static_cast<uint32_t>(integer_field(j, "max_attempts", 1, UINT32_MAX));
  const Json& delays = field(j, "retry_delays_ms");
  if (!delays.is_array()) {
    throw std::runtime_error(std::string("field retry_delays_ms: expected an array, got ") +
                             delays.type_name());
  }
  for (const auto& d : delays) {
    int64_t ms = 0;
    try {
      ms = integer(d);
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(std::string("field retry_delays_ms: ") + e.what());
    }
    if (ms < 0) {
      throw std::runtime_error("field retry_delays_ms: " + std::to_string(ms) +
                               " is out of range 0-" + std::to_string(INT64_MAX));
    }
    t->retry_delays.emplace_back(ms);
  }
  t->overlap = static_cast<OverlapPolicy>(integer_field(j, "overlap", 0, 3));
  try {
    t->params = params_from_json(field(j, "params"));
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("field params: ") + e.what());
  }
  return t;
}

std::string shape_key(const ExecTemplate& t) {
  std::string k = fmt::format(
      "{}|{}|{}|{}|{}|{}|{}|{}|{}|", static_cast<int>(t.origin), t.priority, t.max_attempts,
      static_cast<int>(t.overlap), t.expiry ? t.expiry->count() : -1,
      t.timeout ? t.timeout->count() : -1, t.executor.size(), t.key.size(), t.lane.size());
  for (auto d : t.retry_delays) fmt::format_to(std::back_inserter(k), "{},", d.count());
  k += t.executor;
  k += t.key;
  k += t.lane;
  return k;
}

}  // namespace schedd::codec
