// Encodings shared by the durable stores (SQLite, Redis): status codes, times, templates.
#include "core/store/codec.h"

#include <array>
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

// Throws on a malformed body (caught by load()).
std::shared_ptr<const ExecTemplate> template_from_body(const std::string& body) {
  Json j = Json::parse(body);
  auto t = std::make_shared<ExecTemplate>();
  t->origin = static_cast<ExecOrigin>(integer(j.at("origin")));
  t->name = j.at("name").get<std::string>();
  t->executor = j.at("executor").get<std::string>();
  t->key = j.at("key").get<std::string>();
  t->lane = j.at("lane").get<std::string>();
  t->priority = static_cast<int>(integer(j.at("priority")));
  if (!j.at("expiry_ms").is_null()) {
    t->expiry = std::chrono::milliseconds(integer(j["expiry_ms"]));
  }
  if (!j.at("timeout_ms").is_null()) {
    t->timeout = std::chrono::milliseconds(integer(j["timeout_ms"]));
  }
  t->max_attempts = static_cast<uint32_t>(integer(j.at("max_attempts")));
  for (const auto& d : j.at("retry_delays_ms")) {
    t->retry_delays.emplace_back(integer(d));
  }
  t->overlap = static_cast<OverlapPolicy>(integer(j.at("overlap")));
  t->params = params_from_json(j.at("params"));
  return t;
}

}  // namespace schedd::codec
