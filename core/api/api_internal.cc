#include "core/api/api_internal.h"

#include <date/date.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "core/common/duration.h"
#include "core/common/params_json.h"

namespace schedd::api {

using std::chrono::milliseconds;

// ---------------------------------------------------------------------------------------
// Responses

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

HttpResponse json_response(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  r.body = dump(body) + "\n";
  return r;
}

HttpResponse error_response(int status, std::string_view code, std::string_view message,
                            json extra) {
  json e = {{"code", code}, {"message", message}};
  for (auto& [k, v] : extra.items()) e[k] = v;
  return json_response(status, json{{"error", e}});
}

HttpResponse status_response(const Status& s, json extra) {
  switch (s.code()) {
    case StatusCode::kInvalidArgument:
      return error_response(400, "invalid_argument", s.message(), std::move(extra));
    case StatusCode::kNotFound:
      return error_response(404, "not_found", s.message(), std::move(extra));
    case StatusCode::kAlreadyExists:
      return error_response(409, "already_exists", s.message(), std::move(extra));
    case StatusCode::kFailedPrecondition:
      return error_response(409, "failed_precondition", s.message(), std::move(extra));
    case StatusCode::kResourceExhausted:
      return error_response(429, "queue_full", s.message(), std::move(extra));
    case StatusCode::kUnavailable:
      return error_response(503, "unavailable", s.message(), std::move(extra));
    case StatusCode::kDeadlineExceeded:
      return error_response(504, "deadline_exceeded", s.message(), std::move(extra));
    case StatusCode::kCancelled:
      return error_response(503, "cancelled", s.message(), std::move(extra));
    case StatusCode::kAborted:
      return error_response(409, "aborted", s.message(), std::move(extra));
    case StatusCode::kOk:
    case StatusCode::kInternal:
      break;
  }
  return error_response(500, "internal", s.message(), std::move(extra));
}

HttpResponse field_response(const FieldError& e) {
  return error_response(400, "invalid_field", e.message, json{{"field", e.field}});
}
// ---------------------------------------------------------------------------------------
// Time and values

std::string time_text(TimePoint t) {
  return date::format("%FT%TZ", std::chrono::floor<milliseconds>(t));
}

json opt_time(const std::optional<TimePoint>& t) { return t ? json(time_text(*t)) : json(); }

const char* origin_name(ExecOrigin o) {
  switch (o) {
    case ExecOrigin::kHelper:
      return "helper";
    case ExecOrigin::kTicket:
      return "ticket";
    case ExecOrigin::kAdhoc:
      return "adhoc";
  }
  return "adhoc";
}

json params_json(const ParamList& params) {
  json j = json::object();
  for (const auto& [name, value] : params) j[name] = param_to_json(value, DurationJson::kText);
  return j;
}

json execution_json(const Execution& e, std::optional<std::size_t> position) {
  const ExecTemplate& s = *e.spec;
  json j = {{"id", e.id},
            {"name", s.name},
            {"origin", origin_name(s.origin)},
            {"executor", s.executor},
            {"key", e.key()},
            {"lane", s.lane},
            {"priority", s.priority},
            {"status", exec_status_name(e.status)},
            {"attempt", e.attempt},
            {"max_attempts", s.max_attempts},
            {"due", time_text(e.due)},
            {"not_before", time_text(e.not_before)},
            {"created", time_text(e.created)},
            {"started", opt_time(e.started)},
            {"finished", opt_time(e.finished)},
            {"expires", opt_time(e.expires())},
            {"message", e.message},
            {"output", e.output},
            {"node", e.node},
            {"params", params_json(s.params)}};
  if (s.timeout) j["timeout"] = format_duration(*s.timeout);
  if (s.origin == ExecOrigin::kTicket) {
    j["project"] = e.key();
    j["ticket"] = s.name;
  }
  if (position) j["position"] = *position;
  // The timeline, in order: what happened to it and when (the latest attempt's start and end).
  json timeline = json::array();
  timeline.push_back({{"event", "created"}, {"at", time_text(e.created)}});
  timeline.push_back({{"event", "due"}, {"at", time_text(e.due)}});
  if (e.not_before != e.due) {
    timeline.push_back(
        {{"event", "not_before"}, {"at", time_text(e.not_before)}, {"attempt", e.attempt}});
  }
  if (e.started) {
    timeline.push_back(
        {{"event", "started"}, {"at", time_text(*e.started)}, {"attempt", e.attempt}});
  }
  if (e.finished) {
    timeline.push_back({{"event", exec_status_name(e.status)},
                        {"at", time_text(*e.finished)},
                        {"attempt", e.attempt}});
  }
  j["timeline"] = std::move(timeline);
  return j;
}

void add_progress(json& j, Engine& engine, const Execution& e) {
  if (e.status != ExecStatus::kRunning) return;
  // A running execution always has both: null and [] until its plugin reports (or when it
  // runs on another daemon).
  j["progress"] = json();
  j["log"] = json::array();
  auto p = engine.dispatcher().progress(e.id);
  if (!p) return;
  if (p->at != TimePoint{}) {
    j["progress"] = {{"fraction", p->fraction < 0 ? json() : json(p->fraction)},
                     {"message", p->message},
                     {"at", time_text(p->at)}};
  }
  j["log"] = p->log;
}

// ---------------------------------------------------------------------------------------
// Request parsing

namespace {

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      auto hex = [](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
      };
      int hi = hex(s[i + 1]);
      int lo = hex(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

std::optional<Target> parse_target(std::string_view target) {
  Target t;
  std::string_view path = target;
  std::string_view query;
  if (auto q = target.find('?'); q != std::string_view::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  if (path.empty() || path.front() != '/') return std::nullopt;
  std::size_t pos = 1;
  while (pos <= path.size()) {
    std::size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    auto seg = percent_decode(path.substr(pos, slash - pos), false);
    if (!seg) return std::nullopt;
    if (!seg->empty()) t.segments.push_back(std::move(*seg));
    pos = slash + 1;
  }
  pos = 0;
  while (pos < query.size()) {
    std::size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view item = query.substr(pos, amp - pos);
    pos = amp + 1;
    if (item.empty()) continue;
    std::size_t eq = item.find('=');
    auto name = percent_decode(item.substr(0, eq), true);
    auto value = percent_decode(eq == std::string_view::npos ? "" : item.substr(eq + 1), true);
    if (!name || !value) return std::nullopt;
    t.query[*name] = *value;
  }
  return t;
}

StatusOr<json> parse_json(const std::string& body, std::size_t max_depth) {
  std::size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (std::size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) {
        return invalid_argument(
            fmt::format("JSON nested deeper than {} levels at byte {}", max_depth, i + 1));
      }
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  try {
    return json::parse(body);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 3: ..." -> the part
    // after the position.
    if (auto colon = what.find(": "); colon != std::string::npos) what = what.substr(colon + 2);
    return invalid_argument(fmt::format("invalid JSON at byte {}: {}", e.byte, what));
  }
}

const char* json_type(const json& j) {
  switch (j.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::object:
      return "object";
    case json::value_t::array:
      return "array";
    case json::value_t::string:
      return "string";
    case json::value_t::boolean:
      return "boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "integer";
    case json::value_t::number_float:
      return "number";
    default:
      return "value";
  }
}

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}
bool valid_id(std::string_view s) {
  if (s.empty() || s.size() > 200) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ||
           c == ':' || c == '@';
  });
}

std::string ticket_id(const std::string& project, const std::string& ticket) {
  return project + ":" + ticket;
}

std::optional<ParamList> convert_params(const json* params, const ExecutorInfo& info,
                                        FieldError& error) {
  HelperConfig h;
  h.name = "api";
  h.executor = info.name;
  if (params != nullptr) {
    for (auto& [name, v] : params->items()) {
      RawParam raw;
      raw.name = name;
      using Kind = RawParam::Kind;
      if (v.is_string()) {
        raw.kind = Kind::kString;
        raw.value = v.get<std::string>();
      } else if (v.is_number_integer()) {
        raw.kind = Kind::kInt;
        raw.value = v.get<int64_t>();
      } else if (v.is_number_float()) {
        raw.kind = Kind::kDouble;
        raw.value = v.get<double>();
      } else if (v.is_boolean()) {
        raw.kind = Kind::kBool;
        raw.value = v.get<bool>();
      } else if (v.is_array() &&
                 std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_string(); })) {
        raw.kind = Kind::kStringList;
        raw.value = v.get<StringList>();
      } else if (v.is_object() &&
                 std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_string(); })) {
        raw.kind = Kind::kStringMap;
        raw.value = v.get<StringMap>();
      } else {
        raw.kind = Kind::kOther;
        raw.value = std::string(v.is_array()    ? "array containing non-strings"
                                : v.is_object() ? "table containing non-strings"
                                                : json_type(v));
      }
      h.raw_params.push_back(std::move(raw));
    }
  }
  Config c;
  c.helpers.push_back(std::move(h));
  std::vector<ConfigError> errors;
  validate_helpers(
      c, [&](std::string_view name) { return name == info.name ? &info : nullptr; },
      [&] { return std::vector<std::string>{info.name}; }, errors);
  if (!errors.empty()) {
    std::string message = errors.front().message;
    const std::string head = "[helpers.api] ";
    if (message.rfind(head, 0) == 0) message = message.substr(head.size());
    std::string field = "params";
    // 'param "duration": ...' / 'unknown param "x" ...' / 'missing required param "x" ...'
    if (auto q = message.find('"'); q != std::string::npos) {
      if (auto q2 = message.find('"', q + 1); q2 != std::string::npos) {
        field += "." + message.substr(q + 1, q2 - q - 1);
      }
    }
    error = FieldError{field, "params: " + message};
    return std::nullopt;
  }
  return std::move(c.helpers.front().params);
}

std::optional<std::string> schedule_toml(const json& j, FieldError& error) {
  auto quote = [](const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        out += fmt::format("\\u{:04x}", static_cast<int>(c));
      } else {
        out += c;
      }
    }
    return out + "\"";
  };
  std::string out = "{ ";
  bool first = true;
  for (auto& [key, v] : j.items()) {
    if (!valid_name(key)) {
      error = FieldError{"schedule", "schedule: \"" + key + "\" is not a schedule key"};
      return std::nullopt;
    }
    std::string value;
    if (v.is_string()) {
      value = quote(v.get<std::string>());
    } else if (v.is_number_integer()) {
      value = std::to_string(v.get<int64_t>());
    } else if (v.is_boolean()) {
      value = v.get<bool>() ? "true" : "false";
    } else if (v.is_array()) {
      value = "[";
      for (const auto& x : v) {
        if (!x.is_string()) {
          error =
              FieldError{"schedule." + key, "schedule." + key + ": expected an array of strings"};
          return std::nullopt;
        }
        value += (value.size() > 1 ? ", " : "") + quote(x.get<std::string>());
      }
      value += "]";
    } else if (v.is_object()) {
      // dst = { gap = "skip", overlap = "both" }
      value = "{ ";
      bool f = true;
      for (auto& [k2, v2] : v.items()) {
        if (!valid_name(k2) || !v2.is_string()) {
          error =
              FieldError{"schedule." + key, "schedule." + key + ": expected an object of strings"};
          return std::nullopt;
        }
        value += (f ? "" : ", ") + k2 + " = " + quote(v2.get<std::string>());
        f = false;
      }
      value += " }";
    } else {
      error = FieldError{"schedule." + key,
                         "schedule." + key + ": unsupported value type " + json_type(v)};
      return std::nullopt;
    }
    out += (first ? "" : ", ") + key + " = " + value;
    first = false;
  }
  return out + " }";
}

json schedule_json(const ScheduleConfig& s) {
  json j = json::object();
  if (s.cron) j["cron"] = *s.cron;
  if (s.time) j["time"] = *s.time;
  if (!s.days.empty()) j["days"] = s.days;
  if (s.every) j["every"] = format_duration(*s.every);
  if (s.anchor) j["anchor"] = *s.anchor;
  if (s.tz) j["tz"] = *s.tz;
  if (s.jitter.count() > 0) j["jitter"] = format_duration(s.jitter);
  return j;
}

}  // namespace schedd::api
