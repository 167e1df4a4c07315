#include "core/api/api.h"

#include <date/date.h>
#include <fmt/format.h>
#include <schedd/abi.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "core/api/web_routes.h"
#include "core/common/duration.h"
#include "core/common/params_json.h"
#include "core/schedule/schedule.h"

namespace schedd::api {
namespace {

using json = nlohmann::json;
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
                            json extra = json::object()) {
  json e = {{"code", code}, {"message", message}};
  for (auto& [k, v] : extra.items()) e[k] = v;
  return json_response(status, json{{"error", e}});
}

// The one place Status codes become HTTP statuses (docs/design.md "Errors"). 429 is built by the
// caller, which knows the counts for its body.
HttpResponse status_response(const Status& s, json extra = json::object()) {
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

// Joins a deferred submission's durability (Store::submit_deferred, from the store's writer)
// with the response built once the submission was accepted, and answers when both are known:
// the response if the submission became durable, the store's 503 otherwise. Thread-safe.
class DurableReply : public std::enable_shared_from_this<DurableReply> {
 public:
  // The callback for submit_deferred.
  Store::DurableCallback callback() {
    return [self = shared_from_this()](Status s) { self->durable(std::move(s)); };
  }

  // The response to return from the handler: `ok` at once if durability is known already,
  // otherwise a deferred response that is sent when it is.
  HttpResponse reply(HttpResponse ok) {
    std::lock_guard lock(mu_);
    if (durable_) return durable_->is_ok() ? std::move(ok) : status_response(*durable_);
    ok_ = std::move(ok);
    HttpResponse r;
    r.deferred = out_;
    return r;
  }

 private:
  void durable(Status s) {
    std::unique_lock lock(mu_);
    if (!ok_) {
      durable_ = std::move(s);
      return;
    }
    HttpResponse ok = std::move(*ok_);
    ok_.reset();
    lock.unlock();
    out_->resolve(s.is_ok() ? std::move(ok) : status_response(s));
  }

  std::mutex mu_;
  std::optional<Status> durable_;
  std::optional<HttpResponse> ok_;
  std::shared_ptr<DeferredResponse> out_ = std::make_shared<DeferredResponse>();
};

// A request error naming the field at fault.
struct FieldError {
  std::string field;
  std::string message;
};

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

json execution_json(const Execution& e, std::optional<std::size_t> position = std::nullopt) {
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

// A running execution's last progress report and log lines, when it runs on this daemon
// (in process or out): `progress` {fraction (null when unknown), message, at} and `log`.
void add_progress(json& j, Engine& engine, const Execution& e) {
  if (e.status != ExecStatus::kRunning) return;
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

struct Target {
  std::vector<std::string> segments;  // percent-decoded path segments
  std::map<std::string, std::string> query;
};

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

// Parses a JSON request body, refusing nesting deeper than `max_depth` before parsing.
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

// Reads typed fields of a JSON object; the first mistake is kept, naming the field.
class Fields {
 public:
  Fields(const json& object, std::string prefix) : obj_(object), prefix_(std::move(prefix)) {}

  bool ok() const { return !error_; }
  const FieldError& error() const { return *error_; }
  void fail(const std::string& field, const std::string& message) {
    if (!error_) error_ = FieldError{prefix_ + field, prefix_ + field + ": " + message};
  }

  // Unknown fields are mistakes (a typo would otherwise be silently ignored).
  void only(std::initializer_list<const char*> known) {
    for (auto& [key, value] : obj_.items()) {
      bool found = false;
      for (const char* k : known) found = found || key == k;
      if (!found) {
        std::vector<std::string> names(known.begin(), known.end());
        std::string best = did_you_mean(key, names);
        fail(key, "unknown field" + (best.empty() ? "" : " (did you mean \"" + best + "\"?)"));
      }
    }
  }

  const json* get(const char* name) {
    auto it = obj_.find(name);
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  // A bulk request's list: a required, non-empty array of at most `max` items.
  const json* items(const char* name, std::size_t max) {
    const json* v = get(name);
    if (v == nullptr) {
      fail(name, "required");
    } else if (!v->is_array()) {
      fail(name, std::string("expected array, got ") + json_type(*v));
    } else if (v->empty()) {
      fail(name, "must not be empty");
    } else if (v->size() > max) {
      fail(name, fmt::format("at most {} per request", max));
    }
    return ok() ? v : nullptr;
  }
  std::optional<std::string> string(const char* name) {
    const json* v = get(name);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) return mismatch(name, "string", *v), std::nullopt;
    return v->get<std::string>();
  }
  std::optional<int64_t> integer(const char* name) {
    const json* v = get(name);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number_integer()) return mismatch(name, "integer", *v), std::nullopt;
    return v->get<int64_t>();
  }
  std::optional<bool> boolean(const char* name) {
    const json* v = get(name);
    if (v == nullptr) return std::nullopt;
    if (!v->is_boolean()) return mismatch(name, "boolean", *v), std::nullopt;
    return v->get<bool>();
  }
  // A duration: a string like "30s" or "1h30m".
  std::optional<milliseconds> duration(const char* name) {
    auto text = string(name);
    if (!text) return std::nullopt;
    auto d = parse_duration(*text);
    if (!d.is_ok()) return fail(name, d.status().message()), std::nullopt;
    if (d->count() <= 0) return fail(name, "must be greater than 0"), std::nullopt;
    return *d;
  }
  std::optional<TimePoint> time(const char* name) {
    auto text = string(name);
    if (!text) return std::nullopt;
    auto t = parse_rfc3339(*text);
    if (!t.is_ok()) return fail(name, t.status().message()), std::nullopt;
    return *t;
  }
  const json* object(const char* name) {
    const json* v = get(name);
    if (v == nullptr) return nullptr;
    if (!v->is_object()) return mismatch(name, "object", *v), nullptr;
    return v;
  }

 private:
  void mismatch(const char* name, const char* expected, const json& got) {
    fail(name, std::string("expected ") + expected + ", got " + json_type(got));
  }

  const json& obj_;
  std::string prefix_;
  std::optional<FieldError> error_;
};

// Names of projects and tickets: they become execution ids and URL segments.
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

// JSON params -> RawParams -> validated against the executor's schema exactly as a helper's
// params in the config file are (unknown param with did-you-mean, missing required, types,
// defaults).
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

// A JSON schedule object ({"cron": "...", "tz": "..."}) as the TOML inline table that
// parse_schedule validates, so the API accepts exactly what the config file does.
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

// ---------------------------------------------------------------------------------------
// Auth

// Compares in time that depends only on the lengths, not on where the texts differ.
bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::size_t n = std::max(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

std::string trim(std::string s) {
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

StatusOr<std::optional<std::string>> read_token(const std::optional<std::string>& file,
                                                const std::optional<std::string>& env,
                                                const char* what) {
  if (file) {
    std::ifstream in(*file, std::ios::binary);
    if (!in) return invalid_argument(std::string(what) + "_file " + *file + ": cannot be read");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    text = trim(text);
    if (text.empty()) return invalid_argument(std::string(what) + "_file " + *file + " is empty");
    return std::optional<std::string>(text);
  }
  if (env) {
    const char* v = std::getenv(env->c_str());
    std::string text = v == nullptr ? "" : trim(v);
    if (text.empty()) {
      return invalid_argument(std::string(what) + "_env: environment variable " + *env +
                              " is not set or empty");
    }
    return std::optional<std::string>(text);
  }
  return std::optional<std::string>();
}

// ---------------------------------------------------------------------------------------
// Metrics

struct Histogram {
  std::vector<double> bounds;
  std::vector<uint64_t> counts;  // per bound, not cumulative; +1 for +Inf
  double sum = 0;
  uint64_t count = 0;

  explicit Histogram(std::vector<double> b) : bounds(std::move(b)), counts(bounds.size() + 1) {}
  void observe(double v) {
    std::size_t i = 0;
    while (i < bounds.size() && v > bounds[i]) ++i;
    ++counts[i];
    sum += v;
    ++count;
  }
  void write(std::string& out, const std::string& name) const {
    uint64_t cumulative = 0;
    for (std::size_t i = 0; i < bounds.size(); ++i) {
      cumulative += counts[i];
      out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds[i], cumulative);
    }
    cumulative += counts.back();
    out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, cumulative,
                       name, sum, name, count);
  }
};

std::string label_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

class Metrics {
 public:
  void started(const Execution& e, TimePoint now) {
    const double lag = std::chrono::duration<double>(now - e.not_before).count();
    std::lock_guard lock(mu_);
    lag_.observe(std::max(0.0, lag));
  }
  void finished(const Execution& e, const Completion& c) {
    std::lock_guard lock(mu_);
    if (e.started) {
      const double d = std::chrono::duration<double>(c.finished - *e.started).count();
      duration_.observe(std::max(0.0, d));
      avg_duration_ = avg_duration_ == 0 ? d : 0.9 * avg_duration_ + 0.1 * d;
    }
    if (c.status == ExecStatus::kInterrupted) ++interrupted_;
    if (c.retry) {
      ++retried_;
      return;
    }
    ++totals_[{label(e), exec_status_name(c.status)}];
  }
  void expired(const Execution& e) {
    std::lock_guard lock(mu_);
    ++expired_;
    ++totals_[{label(e), "expired"}];
  }
  void skipped(const Execution& e) {
    std::lock_guard lock(mu_);
    ++skipped_;
    ++totals_[{label(e), "skipped"}];
  }
  void rejected() {
    std::lock_guard lock(mu_);
    ++rejected_;
  }
  double average_duration_seconds() const {
    std::lock_guard lock(mu_);
    return avg_duration_;
  }

  void write(std::string& out) const {
    std::lock_guard lock(mu_);
    out +=
        "# HELP schedd_executions_total Executions that reached a final status, by helper "
        "(tickets: origin ticket) and status.\n# TYPE schedd_executions_total counter\n";
    for (const auto& [k, n] : totals_) {
      out +=
          fmt::format("schedd_executions_total{{origin=\"{}\",helper=\"{}\",status=\"{}\"}} {}\n",
                      k.first.first, label_escape(k.first.second), k.second, n);
    }
    auto counter = [&](const char* name, const char* help, uint64_t v) {
      out += fmt::format("# HELP {} {}\n# TYPE {} counter\n{} {}\n", name, help, name, name, v);
    };
    counter("schedd_expired_total", "Executions that expired before they started.", expired_);
    counter("schedd_skipped_total", "Executions recorded as skipped.", skipped_);
    counter("schedd_retried_total", "Attempts that failed or timed out and were retried.",
            retried_);
    counter("schedd_interrupted_total", "Attempts interrupted by a shutdown.", interrupted_);
    counter("schedd_submissions_rejected_total",
            "API submissions refused because capacity.queued was reached.", rejected_);
    out +=
        "# HELP schedd_start_lag_seconds Time from an execution's due time (not_before) to its "
        "start.\n# TYPE schedd_start_lag_seconds histogram\n";
    lag_.write(out, "schedd_start_lag_seconds");
    out +=
        "# HELP schedd_run_duration_seconds Time an attempt ran.\n"
        "# TYPE schedd_run_duration_seconds histogram\n";
    duration_.write(out, "schedd_run_duration_seconds");
  }

 private:
  using Label = std::pair<std::string, std::string>;  // origin, helper
  static Label label(const Execution& e) {
    const ExecTemplate& s = *e.spec;
    return {origin_name(s.origin), s.origin == ExecOrigin::kHelper ? s.name : ""};
  }

  mutable std::mutex mu_;
  std::map<std::pair<Label, std::string>, uint64_t> totals_;
  uint64_t expired_ = 0, skipped_ = 0, retried_ = 0, interrupted_ = 0, rejected_ = 0;
  double avg_duration_ = 0;
  Histogram lag_{{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300}};
  Histogram duration_{{0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600}};
};

// ---------------------------------------------------------------------------------------
// Live stats: one thread publishes to every stream; no connection holds a thread. Each
// subscriber is sent every sample that differs from the stats it was last sent; a sample is
// taken and sent, or taken and a subscriber registered with it, under sample_mu_, so that no
// sample goes out between a new subscriber's first stats and its registration.

class StatsFeed {
 public:
  StatsFeed(std::function<std::string()> snapshot, const ApiOptions& options)
      : snapshot_(std::move(snapshot)), options_(options), thread_([this] { run(); }) {}
  ~StatsFeed() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // Sends the current stats at once, then every change. Returns the unsubscribe function.
  std::function<void()> subscribe(StreamPush push) {
    std::lock_guard sampling(sample_mu_);
    std::string snap = snapshot_();
    std::lock_guard lock(mu_);
    if (!push(": schedd live stats\nretry: 1000\n\n" + stats_event(snap))) return [] {};
    const uint64_t id = ++next_id_;
    subscribers_.emplace(id, Subscriber{std::move(push), std::move(snap)});
    cv_.notify_all();
    return [this, id] {
      std::lock_guard l(mu_);
      subscribers_.erase(id);
    };
  }

  // Something changed (cheap; called from dispatcher threads and API calls).
  // Wakes the publisher only when the change is news to it and someone listens: a burst of
  // submissions costs one wake-up per stats interval, not one each.
  void poke() {
    std::lock_guard lock(mu_);
    if (dirty_) return;
    dirty_ = true;
    if (!subscribers_.empty()) cv_.notify_all();
  }

  // Sends a named event (a run's progress) to every client at once. Cheap when nobody
  // listens; called from dispatcher threads, at most about 20 times a second per run.
  void publish(const char* name, const std::string& data) {
    std::lock_guard lock(mu_);
    if (subscribers_.empty()) return;
    broadcast(event(name, data));
  }

  std::size_t clients() {
    std::lock_guard lock(mu_);
    return subscribers_.size();
  }

 private:
  static std::string event(const char* name, const std::string& data) {
    return fmt::format("event: {}\ndata: {}\n\n", name, data);
  }
  // Stats go out twice: as `event: stats` (addEventListener("stats", ...)) and unnamed, the
  // "message" event that a plain EventSource.onmessage handler receives.
  static std::string stats_event(const std::string& stats) {
    return fmt::format("event: stats\ndata: {0}\n\ndata: {0}\n\n", stats);
  }

  // Called with mu_ held; sends `chunk` (a stats event when `stats` is set, to those that
  // were last sent other stats) and drops subscribers whose connection is gone. Returns
  // whether it sent stats to anyone.
  bool broadcast(const std::string& chunk, const std::string* stats = nullptr) {
    bool sent = false;
    for (auto it = subscribers_.begin(); it != subscribers_.end();) {
      Subscriber& sub = it->second;
      bool alive = true;
      if (stats == nullptr) {
        alive = sub.push(chunk);
      } else if (sub.last != *stats) {
        alive = sub.push(chunk);
        sub.last = *stats;
        sent = true;
      }
      if (alive) {
        ++it;
      } else {
        it = subscribers_.erase(it);
      }
    }
    return sent;
  }

  void run() {
    using clock = std::chrono::steady_clock;
    std::unique_lock lock(mu_);
    clock::time_point last_sent{};
    clock::time_point last_check{};
    clock::time_point last_heartbeat = clock::now();
    while (!stop_) {
      if (subscribers_.empty()) {
        cv_.wait(lock, [&] { return stop_ || !subscribers_.empty(); });
        last_heartbeat = clock::now();
        continue;
      }
      const auto now = clock::now();
      if (now >= last_heartbeat + options_.heartbeat) {
        broadcast(
            event("heartbeat", json{{"time", time_text(std::chrono::system_clock::now())}}.dump()));
        last_heartbeat = now;
      }
      const auto check_at =
          dirty_ ? last_sent + options_.stats_min_interval : last_check + options_.stats_check;
      if (now >= check_at) {
        dirty_ = false;
        last_check = now;
        lock.unlock();
        std::lock_guard sampling(sample_mu_);
        std::string snap = snapshot_();
        lock.lock();
        if (broadcast(stats_event(snap), &snap)) last_sent = now;
        continue;
      }
      cv_.wait_until(lock, std::min(check_at, last_heartbeat + options_.heartbeat));
    }
  }

  std::function<std::string()> snapshot_;
  const ApiOptions& options_;
  std::mutex sample_mu_;  // taken before mu_, never while holding it
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool dirty_ = false;
  uint64_t next_id_ = 0;
  struct Subscriber {
    StreamPush push;
    std::string last;  // the stats it was last sent
  };
  std::map<uint64_t, Subscriber> subscribers_;
  std::thread thread_;  // last: starts after everything it uses
};

}  // namespace

// ---------------------------------------------------------------------------------------
// The routes

struct Api::Impl {
  Impl(Engine& e, ApiOptions o)
      : engine(e),
        options(std::move(o)),
        started(std::chrono::steady_clock::now()),
        feed([this] { return dump(stats_json()); }, options) {
    DispatchObserver observer;
    observer.on_claim = [this](const Execution&) { feed.poke(); };
    observer.on_start = [this](const Execution& x) {
      metrics.started(x, engine.clock().now());
      feed.poke();
    };
    observer.on_finish = [this](const Execution& x, const Completion& c) {
      metrics.finished(x, c);
      feed.poke();
    };
    observer.on_expired = [this](const Execution& x) {
      metrics.expired(x);
      feed.poke();
    };
    observer.on_skipped = [this](const Execution& x) {
      metrics.skipped(x);
      feed.poke();
    };
    observer.on_progress = [this](const Execution& x, const RunProgress& p) {
      feed.publish("progress", dump({{"id", x.id},
                                     {"key", x.key()},
                                     {"lane", x.lane()},
                                     {"fraction", p.fraction < 0 ? json() : json(p.fraction)},
                                     {"message", p.message},
                                     {"at", time_text(p.at)}}));
    };
    observer_id = engine.add_observer(std::move(observer));
  }
  ~Impl() { engine.remove_observer(observer_id); }

  HttpResponse route(const HttpRequest& req);

  // One request, as a handler sees it.
  struct Call {
    const HttpRequest& req;
    const Target& target;
    const std::vector<std::string>& args;  // the path's {captures}, in order
    std::optional<bool> full;  // set when a valid token was given: whether it is the full one
  };
  // The route table (routes()) drives dispatch, 405's Allow, and which requests are answered
  // on the I/O thread. Auth is by method: GET reads, everything else needs the full token.
  struct Route {
    const char* method;
    const char* pattern;  // "/v1/helpers/{name}/enable": a {...} segment captures one segment
    bool inline_local;    // cheap and never waits: answered on the I/O thread (local store)
    HttpResponse (*handler)(Impl&, const Call&);
    std::vector<std::string> parts = {};  // the pattern's segments, split once
  };
  static const std::vector<Route>& routes();
  // The route for `method` on the path, its captures in `args`; nullptr when none. Routes are
  // tried in table order, so a literal segment listed first wins over a capture.
  static const Route* match_route(const std::string& method,
                                  const std::vector<std::string>& segments,
                                  std::vector<std::string>& args);
  // The methods some route takes on the path ("GET, POST"), "" when no route has the path.
  static std::string allowed_methods(const std::vector<std::string>& segments);
  HttpResponse whoami(const Call& c);
  HttpResponse stats_stream();

  // system
  json stats_json();
  HttpResponse status();
  HttpResponse readyz();
  HttpResponse metrics_text();
  HttpResponse lanes();
  // helpers
  HttpResponse helpers_list();
  HttpResponse helper_show(const std::string& name);
  HttpResponse helper_enable(const std::string& name, bool enable);
  HttpResponse helper_schedule(const std::string& name, const std::string& body);
  HttpResponse helper_run(const std::string& name);
  // executions
  HttpResponse executions_list(const Target& t);
  HttpResponse execution_show(const std::string& id);
  HttpResponse execution_submit(const std::string& body);
  HttpResponse executions_bulk(const std::string& body);
  HttpResponse execution_cancel(const std::string& id, const Target& t, const std::string& body,
                                const std::optional<std::string>& project);
  HttpResponse history_clear(const Target& t);
  // tickets
  HttpResponse ticket_submit(const std::string& project, const std::string& body);
  HttpResponse tickets_bulk(const std::string& project, const std::string& body);
  // Reads one ticket object of `project` (fields named with `prefix`); nullopt with the
  // error's response set when a field is wrong or no plugin provides the tickets executor.
  std::optional<SubmitRequest> read_ticket(const std::string& project, const json& j,
                                           const std::string& prefix,
                                           std::optional<HttpResponse>& error);
  HttpResponse executions_cancel_matching(const std::string& body);
  HttpResponse project_queue(const std::string& project);
  HttpResponse ticket_show(const std::string& project, const std::string& ticket);

  StatusOr<json> body_object(const std::string& body, bool allow_empty);
  // Reads a submission object; nullopt with `error` set when a field is wrong.
  std::optional<SubmitRequest> read_submit(const json& j, const std::string& prefix,
                                           FieldError& error);
  HttpResponse queue_full(const Status& s);
  // Bulk requests (bulk_mu held): a 429 when `due_now` more would exceed capacity.queued; the
  // answer to a submission that failed midway, after cancelling what was already stored.
  std::optional<HttpResponse> bulk_over_capacity(std::size_t due_now);
  HttpResponse bulk_roll_back(const std::vector<std::string>& stored, const Status& why);
  HttpResponse submitted(const StatusOr<SubmitResult>& r);
  // Submits without holding a thread until the commit: the 201 is sent once it is durable.
  HttpResponse submit_durably(SubmitRequest req);

  Engine& engine;
  ApiOptions options;
  std::chrono::steady_clock::time_point started;
  Metrics metrics;
  StatsFeed feed;
  uint64_t observer_id = 0;
  std::mutex bulk_mu;  // one bulk submission at a time
};

json Api::Impl::stats_json() {
  const Config& cfg = engine.config();
  std::vector<LaneCounts> counts = engine.store().counts(engine.clock().now());
  std::size_t running = 0, queued = 0, workers = 0;
  json lanes = json::object();
  for (const auto& lane : cfg.lanes) {
    std::size_t r = 0, q = 0;
    for (const auto& c : counts) {
      if (c.lane == lane.name) {
        r = c.running;
        q = c.queued;
      }
    }
    running += r;
    queued += q;
    workers += lane.workers;
    lanes[lane.name] = {{"running", r}, {"runningCapacity", lane.workers}, {"queued", q}};
  }
  // Lanes the store knows that the config does not (another daemon's, in distributed mode).
  for (const auto& c : counts) {
    if (cfg.find_lane(c.lane) == nullptr) {
      running += c.running;
      queued += c.queued;
      lanes[c.lane] = {{"running", c.running}, {"runningCapacity", 0}, {"queued", c.queued}};
    }
  }
  return {{"running", running},
          {"runningCapacity", workers},
          {"queued", queued},
          {"queuedCapacity", cfg.capacity_queued},
          {"lanes", lanes}};
}

HttpResponse Api::Impl::status() {
  const Config& cfg = engine.config();
  json stats = stats_json();
  std::size_t enabled = 0;
  for (const auto& h : cfg.helpers) {
    auto state = engine.store().helper_state(h.name);
    if (state && state->enabled ? *state->enabled : h.enabled) ++enabled;
  }
  json lanes = json::array();
  for (auto& [name, l] : stats["lanes"].items()) {
    lanes.push_back({{"name", name},
                     {"workers", l["runningCapacity"]},
                     {"running", l["running"]},
                     {"queued", l["queued"]}});
  }
  const auto uptime = std::chrono::steady_clock::now() - started;
  return json_response(
      200, {{"version", SCHEDD_VERSION},
            {"plugin_abi", SCHEDD_ABI_VERSION},
            {"node", engine.node_id()},
            {"store", cfg.store},
            {"uptime_seconds", std::chrono::duration_cast<std::chrono::seconds>(uptime).count()},
            {"time", time_text(engine.clock().now())},
            {"dispatcher", {{"state", "running"}, {"running", engine.dispatcher().running()}}},
            {"helpers", {{"total", cfg.helpers.size()}, {"enabled", enabled}}},
            {"running", stats["running"]},
            {"queued", stats["queued"]},
            {"capacity", {{"running", stats["runningCapacity"]}, {"queued", cfg.capacity_queued}}},
            {"lanes", lanes},
            {"executors", engine.plugins().executors().size()},
            {"stream_clients", feed.clients()}});
}

HttpResponse Api::Impl::readyz() {
  json checks = json::object();
  bool ready = true;
  try {
    // A store can answer reads and still refuse writes (Redis unreachable, a full disk).
    const Status health = engine.store().health();
    (void)engine.store().counts(engine.clock().now());
    checks["store"] = health.is_ok() ? "ok" : "unavailable: " + health.message();
    ready = ready && health.is_ok();
  } catch (const std::exception& e) {
    checks["store"] = std::string("unreachable: ") + e.what();
    ready = false;
  }
  const std::size_t executors = engine.plugins().executors().size();
  checks["plugins"] = fmt::format("{} executors", executors);
  if (executors == 0) ready = false;
  return json_response(ready ? 200 : 503, {{"ready", ready}, {"checks", checks}});
}

HttpResponse Api::Impl::metrics_text() {
  std::string out;
  out += fmt::format(
      "# HELP schedd_build_info Build information.\n# TYPE schedd_build_info gauge\n"
      "schedd_build_info{{version=\"{}\",plugin_abi=\"{}\"}} 1\n",
      SCHEDD_VERSION, SCHEDD_ABI_VERSION);
  json stats = stats_json();
  out += "# HELP schedd_queued Executions queued and due, per lane.\n# TYPE schedd_queued gauge\n";
  for (auto& [name, l] : stats["lanes"].items()) {
    out += fmt::format("schedd_queued{{lane=\"{}\"}} {}\n", label_escape(name),
                       l["queued"].get<std::size_t>());
  }
  out += "# HELP schedd_running Executions running, per lane.\n# TYPE schedd_running gauge\n";
  for (auto& [name, l] : stats["lanes"].items()) {
    out += fmt::format("schedd_running{{lane=\"{}\"}} {}\n", label_escape(name),
                       l["running"].get<std::size_t>());
  }
  out += "# HELP schedd_workers Workers per lane.\n# TYPE schedd_workers gauge\n";
  for (auto& [name, l] : stats["lanes"].items()) {
    out += fmt::format("schedd_workers{{lane=\"{}\"}} {}\n", label_escape(name),
                       l["runningCapacity"].get<std::size_t>());
  }
  out += fmt::format(
      "# HELP schedd_queued_capacity capacity.queued.\n# TYPE schedd_queued_capacity gauge\n"
      "schedd_queued_capacity {}\n",
      engine.config().capacity_queued);
  metrics.write(out);
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = std::move(out);
  return r;
}

HttpResponse Api::Impl::lanes() {
  json stats = stats_json();
  json out = json::array();
  for (const auto& lane : engine.config().lanes) {
    const json& l = stats["lanes"][lane.name];
    out.push_back({{"name", lane.name},
                   {"workers", lane.workers},
                   {"timeout", lane.timeout ? json(format_duration(*lane.timeout)) : json()},
                   {"running", l["running"]},
                   {"queued", l["queued"]}});
  }
  return json_response(200, {{"lanes", out}});
}

HttpResponse Api::Impl::helpers_list() {
  // One pass over the executions for every helper's next due time and last result (the
  // dashboard lists them all in one request).
  ExecutionFilter f;
  f.limit = std::numeric_limits<std::size_t>::max();
  std::map<std::string, TimePoint> next;
  std::map<std::string, Execution> last;
  for (auto& e : engine.store().list(f)) {
    if (e.spec->origin != ExecOrigin::kHelper) continue;
    if (e.status == ExecStatus::kQueued) {
      auto [it, inserted] = next.emplace(e.spec->name, e.due);
      if (!inserted && e.due < it->second) it->second = e.due;
    } else if (is_terminal(e.status)) {
      auto it = last.find(e.spec->name);
      if (it == last.end()) {
        last.emplace(e.spec->name, std::move(e));
      } else if (e.finished.value_or(TimePoint{}) > it->second.finished.value_or(TimePoint{})) {
        it->second = std::move(e);
      }
    }
  }
  json out = json::array();
  for (const auto& h : engine.config().helpers) {
    auto state = engine.store().helper_state(h.name);
    const bool enabled = state && state->enabled ? *state->enabled : h.enabled;
    json j = {{"name", h.name},
              {"executor", h.executor},
              {"description", h.description},
              {"enabled", enabled},
              {"key", h.key},
              {"lane", h.lane},
              {"priority", h.priority},
              {"schedule", schedule_json(h.schedule)}};
    if (state && state->schedule_override) j["schedule_override"] = *state->schedule_override;
    auto it = next.find(h.name);
    std::optional<TimePoint> due;
    if (it != next.end()) {
      due = it->second;
    } else if (enabled) {
      // Nothing planned yet (its next run lies beyond the lookahead): computed.
      TimePoint after = engine.clock().now();
      if (state && state->planned_until && *state->planned_until > after) {
        after = *state->planned_until;
      }
      due = engine.next_fire(h, after);
    }
    j["next_due"] = due ? json(time_text(*due)) : json();
    j["next_due_planned"] = it != next.end();
    if (auto l = last.find(h.name); l != last.end()) {
      const Execution& e = l->second;
      j["last"] = {{"id", e.id},
                   {"status", exec_status_name(e.status)},
                   {"due", time_text(e.due)},
                   {"started", opt_time(e.started)},
                   {"finished", opt_time(e.finished)},
                   {"attempt", e.attempt},
                   {"message", e.message}};
    } else {
      j["last"] = json();
    }
    out.push_back(std::move(j));
  }
  return json_response(200, {{"helpers", out}});
}

HttpResponse Api::Impl::helper_show(const std::string& name) {
  const HelperConfig* h = engine.config().find_helper(name);
  if (h == nullptr) return status_response(not_found("unknown helper \"" + name + "\""));
  auto state = engine.store().helper_state(name);
  ExecutionFilter f;
  f.name = name;
  f.limit = std::numeric_limits<std::size_t>::max();
  std::vector<Execution> planned, done;
  for (auto& e : engine.store().list(f)) {
    if (e.spec->origin != ExecOrigin::kHelper) continue;
    if (e.status == ExecStatus::kQueued) {
      planned.push_back(std::move(e));
    } else if (is_terminal(e.status)) {
      done.push_back(std::move(e));
    }
  }
  std::sort(planned.begin(), planned.end(), [](const Execution& a, const Execution& b) {
    return std::tie(a.due, a.seq) < std::tie(b.due, b.seq);
  });
  std::sort(done.begin(), done.end(), [](const Execution& a, const Execution& b) {
    return a.finished.value_or(TimePoint{}) > b.finished.value_or(TimePoint{});
  });
  json next = json::array(), last = json::array();
  for (std::size_t i = 0; i < planned.size() && i < 10; ++i) {
    next.push_back({{"id", planned[i].id},
                    {"due", time_text(planned[i].due)},
                    {"priority", planned[i].priority()}});
  }
  for (std::size_t i = 0; i < done.size() && i < 10; ++i) {
    last.push_back({{"id", done[i].id},
                    {"status", exec_status_name(done[i].status)},
                    {"due", time_text(done[i].due)},
                    {"started", opt_time(done[i].started)},
                    {"finished", opt_time(done[i].finished)},
                    {"attempt", done[i].attempt},
                    {"message", done[i].message}});
  }
  json running = json::array();
  ExecutionFilter rf;
  rf.name = name;
  rf.status = ExecStatus::kRunning;
  for (const auto& e : engine.store().list(rf)) running.push_back(e.id);
  json params = params_json(h->params);
  json config = {{"name", h->name},
                 {"executor", h->executor},
                 {"description", h->description},
                 {"enabled", h->enabled},
                 {"schedule", schedule_json(h->schedule)},
                 {"key", h->key},
                 {"lane", h->lane},
                 {"priority", h->priority},
                 {"expiry", format_duration(h->expiry)},
                 {"timeout", h->timeout ? json(format_duration(*h->timeout)) : json()},
                 {"params", params}};
  json st = {{"enabled", state && state->enabled ? *state->enabled : h->enabled},
             {"enabled_override", state && state->enabled ? json(*state->enabled) : json()},
             {"schedule_override",
              state && state->schedule_override ? json(*state->schedule_override) : json()},
             {"planned_until", state ? opt_time(state->planned_until) : json()}};
  return json_response(200, {{"name", name},
                             {"config", config},
                             {"state", st},
                             {"running", running},
                             {"next", next},
                             {"last", last}});
}

HttpResponse Api::Impl::helper_enable(const std::string& name, bool enable) {
  auto r = enable ? engine.enable(name) : engine.disable(name);
  if (!r.is_ok()) return status_response(r.status());
  feed.poke();
  return json_response(200, enable ? json{{"helper", name}, {"enabled", true}, {"planned", *r}}
                                   : json{{"helper", name}, {"enabled", false}, {"removed", *r}});
}

HttpResponse Api::Impl::helper_schedule(const std::string& name, const std::string& body) {
  if (engine.config().find_helper(name) == nullptr) {
    return status_response(not_found("unknown helper \"" + name + "\""));
  }
  auto j = body_object(body, false);
  if (!j.is_ok()) return status_response(j.status());
  Fields fields(*j, "");
  fields.only({"schedule"});
  const json* s = fields.get("schedule");
  if (fields.ok() && s == nullptr) fields.fail("schedule", "required");
  if (s != nullptr && !s->is_string() && !s->is_object()) {
    fields.fail("schedule", std::string("expected a TOML inline table string or an object, got ") +
                                json_type(*s));
  }
  if (!fields.ok()) return field_response(fields.error());
  std::string toml;
  if (s->is_string()) {
    toml = s->get<std::string>();
  } else {
    FieldError e;
    auto t = schedule_toml(*s, e);
    if (!t) return field_response(e);
    toml = *t;
  }
  auto r = engine.update_schedule(name, toml);
  if (!r.is_ok()) {
    if (r.status().code() == StatusCode::kInvalidArgument) {
      return field_response(FieldError{"schedule", r.status().message()});
    }
    return status_response(r.status());
  }
  feed.poke();
  HttpResponse shown = helper_show(name);
  json plan = json::parse(shown.body, nullptr, false);
  return json_response(200, {{"helper", name},
                             {"schedule", toml},
                             {"planned", *r},
                             {"next", plan.is_object() ? plan["next"] : json::array()}});
}

HttpResponse Api::Impl::queue_full(const Status& s) {
  metrics.rejected();
  json stats = stats_json();
  // A hint, not a promise: about one average run, at least a second, at most a minute.
  const double avg = metrics.average_duration_seconds();
  const int retry_after = std::clamp(static_cast<int>(std::ceil(avg)), 1, 60);
  HttpResponse r = error_response(429, "queue_full", s.message(),
                                  {{"queued", stats["queued"]},
                                   {"queuedCapacity", stats["queuedCapacity"]},
                                   {"running", stats["running"]},
                                   {"runningCapacity", stats["runningCapacity"]},
                                   {"retry_after_seconds", retry_after}});
  r.headers.emplace_back("Retry-After", std::to_string(retry_after));
  return r;
}

HttpResponse Api::Impl::submitted(const StatusOr<SubmitResult>& r) {
  if (!r.is_ok()) {
    if (r.status().code() == StatusCode::kResourceExhausted) return queue_full(r.status());
    return status_response(r.status());
  }
  feed.poke();
  HttpResponse res = json_response(201, {{"id", r->execution.id},
                                         {"position", r->position},
                                         {"status", exec_status_name(r->execution.status)},
                                         {"execution", execution_json(r->execution, r->position)}});
  res.headers.emplace_back("Location", "/v1/executions/" + r->execution.id);
  return res;
}

HttpResponse Api::Impl::submit_durably(SubmitRequest req) {
  auto reply = std::make_shared<DurableReply>();
  auto r = engine.submit_deferred(std::move(req), reply->callback());
  if (!r.is_ok()) return submitted(r);
  return reply->reply(submitted(r));
}

HttpResponse Api::Impl::helper_run(const std::string& name) {
  return submitted(engine.run_now(name));
}

StatusOr<json> Api::Impl::body_object(const std::string& body, bool allow_empty) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) {
    if (allow_empty) return json::object();
    return invalid_argument("a JSON object body is required");
  }
  auto j = parse_json(body, options.max_json_depth);
  if (!j.is_ok()) return j.status();
  if (!j->is_object()) {
    return invalid_argument(std::string("the body must be a JSON object, got ") + json_type(*j));
  }
  return j;
}

std::optional<SubmitRequest> Api::Impl::read_submit(const json& j, const std::string& prefix,
                                                    FieldError& error) {
  Fields f(j, prefix);
  f.only({"id", "executor", "helper", "name", "key", "lane", "priority", "params", "not_before",
          "expiry", "timeout"});
  SubmitRequest req;
  req.id = f.string("id").value_or("");
  req.executor = f.string("executor").value_or("");
  req.helper = f.string("helper").value_or("");
  req.name = f.string("name").value_or("");
  req.key = f.string("key").value_or("");
  req.lane = f.string("lane").value_or("");
  if (auto p = f.integer("priority")) {
    if (*p < 1 || *p > 5) {
      f.fail("priority", fmt::format("{} is out of range 1-5", *p));
    } else {
      req.priority = static_cast<int>(*p);
    }
  }
  req.not_before = f.time("not_before");
  req.expiry = f.duration("expiry");
  req.timeout = f.duration("timeout");
  const json* params = f.object("params");
  if (f.ok() && !req.id.empty() && !valid_id(req.id)) {
    f.fail("id", "use 1-200 letters, digits, '_', '-', '.', ':' or '@'");
  }
  if (f.ok() && req.executor.empty() && req.helper.empty()) {
    f.fail("executor", "executor or helper is required");
  }
  if (f.ok() && !req.executor.empty() && !req.helper.empty()) {
    f.fail("executor", "give executor or helper, not both");
  }
  if (f.ok() && !req.lane.empty() && engine.config().find_lane(req.lane) == nullptr) {
    f.fail("lane", "unknown lane \"" + req.lane + "\"");
  }
  if (!f.ok()) {
    error = f.error();
    return std::nullopt;
  }
  std::string executor = req.executor;
  if (!req.helper.empty()) {
    const HelperConfig* h = engine.config().find_helper(req.helper);
    if (h == nullptr) {
      error = FieldError{prefix + "helper", "unknown helper \"" + req.helper + "\""};
      error.message = "404:" + error.message;  // marks a not-found for the caller
      return std::nullopt;
    }
    executor = h->executor;
  }
  const Executor* loaded = engine.plugins().find(executor);
  if (loaded == nullptr) {
    error = FieldError{prefix + "executor", "404:unknown executor \"" + executor + "\""};
    return std::nullopt;
  }
  if (params != nullptr || req.helper.empty()) {
    FieldError pe;
    auto converted = convert_params(params, loaded->info(), pe);
    if (!converted) {
      error = FieldError{prefix + pe.field, prefix + pe.message};
      return std::nullopt;
    }
    req.params = std::move(*converted);
  }
  return req;
}

// A FieldError from read_submit whose message starts "404:" is an unknown helper/executor.
HttpResponse submit_error(const FieldError& e) {
  if (e.message.rfind("404:", 0) == 0) {
    return error_response(404, "not_found", e.message.substr(4), json{{"field", e.field}});
  }
  return field_response(e);
}

HttpResponse Api::Impl::execution_submit(const std::string& body) {
  auto j = body_object(body, false);
  if (!j.is_ok()) return status_response(j.status());
  FieldError error;
  auto req = read_submit(*j, "", error);
  if (!req) return submit_error(error);
  return submit_durably(std::move(*req));
}

std::optional<HttpResponse> Api::Impl::bulk_over_capacity(std::size_t due_now) {
  const std::size_t queued = stats_json()["queued"].get<std::size_t>();
  if (queued + due_now <= engine.config().capacity_queued) return std::nullopt;
  return queue_full(Status(StatusCode::kResourceExhausted,
                           fmt::format("queue full: {} queued + {} submitted exceeds capacity {}",
                                       queued, due_now, engine.config().capacity_queued)));
}

HttpResponse Api::Impl::bulk_roll_back(const std::vector<std::string>& stored, const Status& why) {
  // A concurrent submission took the room or the id: undo what this request stored.
  for (const auto& id : stored) (void)engine.cancel(id, /*stop_running=*/true);
  feed.poke();
  if (why.code() == StatusCode::kResourceExhausted) return queue_full(why);
  return status_response(why, json{{"rolled_back", stored.size()}});
}

HttpResponse Api::Impl::executions_bulk(const std::string& body) {
  auto j = body_object(body, false);
  if (!j.is_ok()) return status_response(j.status());
  Fields f(*j, "");
  f.only({"executions"});
  const json* list = f.items("executions", options.max_bulk);
  if (!f.ok()) return field_response(f.error());

  // Everything is checked before anything is stored.
  std::vector<SubmitRequest> requests;
  std::set<std::string> ids;
  const TimePoint now = engine.clock().now();
  std::size_t due_now = 0;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const std::string prefix = fmt::format("executions[{}].", i);
    const json& item = (*list)[i];
    if (!item.is_object()) {
      return field_response(FieldError{
          prefix.substr(0, prefix.size() - 1),
          prefix.substr(0, prefix.size() - 1) + ": expected object, got " + json_type(item)});
    }
    FieldError error;
    auto req = read_submit(item, prefix, error);
    if (!req) return submit_error(error);
    if (!req->id.empty()) {
      if (!ids.insert(req->id).second) {
        return field_response(
            FieldError{prefix + "id", prefix + "id: \"" + req->id + "\" appears twice"});
      }
      if (auto existing = engine.store().get(req->id); existing && !is_terminal(existing->status)) {
        return error_response(409, "already_exists",
                              fmt::format("{}id: execution {} is already {}", prefix, req->id,
                                          exec_status_name(existing->status)),
                              json{{"field", prefix + "id"}});
      }
    }
    if (!req->not_before || *req->not_before <= now) ++due_now;
    requests.push_back(std::move(*req));
  }
  std::lock_guard lock(bulk_mu);
  if (auto full = bulk_over_capacity(due_now)) return std::move(*full);
  json out = json::array();
  std::vector<std::string> stored;
  for (auto& req : requests) {
    auto r = engine.submit(std::move(req));
    if (!r.is_ok()) return bulk_roll_back(stored, r.status());
    stored.push_back(r->execution.id);
    out.push_back({{"id", r->execution.id}, {"position", r->position}});
  }
  feed.poke();
  return json_response(201, {{"executions", out}, {"count", out.size()}});
}

HttpResponse Api::Impl::executions_list(const Target& t) {
  ExecutionFilter f;
  for (const auto& [k, v] : t.query) {
    if (k == "status") {
      auto s = parse_exec_status(v);
      if (!s) {
        return field_response(
            FieldError{"status", "status: \"" + v +
                                     "\" is not one of queued, running, succeeded, failed, "
                                     "timed_out, cancelled, expired, skipped, interrupted"});
      }
      f.status = *s;
    } else if (k == "helper" || k == "name") {
      f.name = v;
    } else if (k == "key" || k == "project") {
      f.key = v;
    } else if (k == "lane") {
      f.lane = v;
    } else if (k == "limit") {
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < 1 || n > 1000) {
        return field_response(FieldError{"limit", "limit: \"" + v + "\" is not a number 1-1000"});
      }
      f.limit = static_cast<std::size_t>(n);
    } else if (k == "cursor") {
      f.after_id = v;
    } else {
      return field_response(FieldError{
          k,
          "unknown query parameter \"" + k + "\"; use status, helper, key, lane, limit or cursor"});
    }
  }
  std::vector<Execution> list = engine.store().list(f);
  json out = json::array();
  for (const auto& e : list) {
    std::optional<std::size_t> pos;
    if (e.status == ExecStatus::kQueued) pos = engine.store().position(e.id);
    out.push_back(execution_json(e, pos));
    add_progress(out.back(), engine, e);
  }
  json next = list.size() == f.limit && !list.empty() ? json(list.back().id) : json();
  return json_response(200, {{"executions", out}, {"next_cursor", next}});
}

HttpResponse Api::Impl::execution_show(const std::string& id) {
  auto e = engine.store().get(id);
  if (!e) return status_response(not_found("unknown execution \"" + id + "\""));
  std::optional<std::size_t> pos;
  if (e->status == ExecStatus::kQueued) pos = engine.store().position(id);
  json j = execution_json(*e, pos);
  add_progress(j, engine, *e);
  return json_response(200, j);
}

HttpResponse Api::Impl::execution_cancel(const std::string& id, const Target& t,
                                         const std::string& body,
                                         const std::optional<std::string>& project) {
  bool stop = false;
  if (auto it = t.query.find("stop"); it != t.query.end()) {
    if (it->second != "true" && it->second != "false" && !it->second.empty()) {
      return field_response(FieldError{"stop", "stop: expected true or false"});
    }
    stop = it->second != "false";
  }
  auto j = body_object(body, true);
  if (!j.is_ok()) return status_response(j.status());
  Fields f(*j, "");
  f.only({"stop"});
  if (auto s = f.boolean("stop")) stop = *s;
  if (!f.ok()) return field_response(f.error());

  auto e = engine.store().get(id);
  const std::string what = project ? "ticket" : "execution";
  if (!e || (project && (e->spec->origin != ExecOrigin::kTicket || e->key() != *project))) {
    return status_response(not_found("unknown " + what + " \"" + id + "\""));
  }
  auto r = engine.cancel(id, stop);
  feed.poke();
  if (r.is_ok()) {
    return json_response(
        200,
        {{"id", id}, {"status", exec_status_name(r->status)}, {"execution", execution_json(*r)}});
  }
  if (r.status().code() == StatusCode::kFailedPrecondition) {
    if (stop) {
      return json_response(202, {{"id", id},
                                 {"status", "running"},
                                 {"stop_requested", true},
                                 {"message", r.status().message()}});
    }
    return error_response(
        409, "running",
        what + " " + id + " is running; cancel with stop=true to request a cooperative stop");
  }
  if (r.status().code() == StatusCode::kAlreadyExists) {
    auto now = engine.store().get(id);
    return error_response(409, "already_finished",
                          what + " " + id + " already finished" +
                              (now ? std::string(" (") + exec_status_name(now->status) + ")" : ""));
  }
  return status_response(r.status());
}

HttpResponse Api::Impl::history_clear(const Target& t) {
  TimePoint before = engine.clock().now();
  for (const auto& [k, v] : t.query) {
    if (k != "before") {
      return field_response(FieldError{k, "unknown query parameter \"" + k + "\"; use before"});
    }
    auto b = parse_rfc3339(v);
    if (!b.is_ok()) return field_response(FieldError{"before", "before: " + b.status().message()});
    before = *b;
  }
  const std::size_t removed = engine.store().prune_history(before);
  return json_response(200, {{"removed", removed}, {"before", time_text(before)}});
}

std::optional<SubmitRequest> Api::Impl::read_ticket(const std::string& project, const json& j,
                                                    const std::string& prefix,
                                                    std::optional<HttpResponse>& error) {
  Fields f(j, prefix);
  f.only({"ticket", "params", "priority", "not_before", "expiry", "timeout"});
  auto ticket = f.string("ticket");
  if (f.ok() && !ticket) f.fail("ticket", "required");
  if (f.ok() && !valid_name(*ticket))
    f.fail("ticket", "use 1-128 letters, digits, '_', '-' or '.'");
  std::optional<int> priority;
  if (auto p = f.integer("priority")) {
    if (*p < 1 || *p > 5) {
      f.fail("priority", fmt::format("{} is out of range 1-5", *p));
    } else {
      priority = static_cast<int>(*p);
    }
  }
  auto not_before = f.time("not_before");
  auto expiry = f.duration("expiry");
  auto timeout = f.duration("timeout");
  const json* params = f.object("params");
  if (!f.ok()) {
    error = field_response(f.error());
    return std::nullopt;
  }

  const TicketSettings tc = engine.config().tickets.for_project(project);
  const Executor* executor = engine.plugins().find(tc.executor);
  if (executor == nullptr) {
    error = error_response(503, "tickets_unavailable",
                           "the tickets executor \"" + tc.executor +
                               "\" ([tickets] executor or its project's override) is not "
                               "provided by any loaded plugin");
    return std::nullopt;
  }
  FieldError pe;
  auto converted = convert_params(params, executor->info(), pe);
  if (!converted) {
    if (!prefix.empty()) {
      pe.field = prefix + pe.field;
      pe.message = prefix + pe.message;
    }
    error = field_response(pe);
    return std::nullopt;
  }

  SubmitRequest req;
  req.id = ticket_id(project, *ticket);
  req.origin = ExecOrigin::kTicket;
  req.name = *ticket;
  req.executor = tc.executor;
  req.key = project;
  req.lane = tc.lane;
  req.priority = priority.value_or(tc.priority);
  req.params = std::move(*converted);
  req.not_before = not_before;
  req.expiry = expiry ? expiry : tc.expiry;
  req.timeout = timeout;
  return req;
}

HttpResponse Api::Impl::ticket_submit(const std::string& project, const std::string& body) {
  if (!valid_name(project)) {
    return field_response(
        FieldError{"project", "project: use 1-128 letters, digits, '_', '-' or '.'"});
  }
  auto j = body_object(body, false);
  if (!j.is_ok()) return status_response(j.status());
  std::optional<HttpResponse> error;
  auto read = read_ticket(project, *j, "", error);
  if (!read) return std::move(*error);
  SubmitRequest& req = *read;
  const std::string ticket = req.name;
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto reply = std::make_shared<DurableReply>();
    auto r = engine.submit_deferred(req, reply->callback());
    if (r.is_ok()) {
      feed.poke();
      HttpResponse res = json_response(
          201, {{"id", r->execution.id},
                {"project", project},
                {"ticket", ticket},
                {"status", "queued"},
                {"position", r->position},
                {"created", true},
                {"message", fmt::format("ticket {} of project {} queued at position #{}", ticket,
                                        project, r->position)}});
      res.headers.emplace_back("Location", "/v1/projects/" + project + "/tickets/" + ticket);
      return reply->reply(std::move(res));
    }
    if (r.status().code() == StatusCode::kResourceExhausted) return queue_full(r.status());
    if (r.status().code() != StatusCode::kAlreadyExists) return status_response(r.status());
    // Already queued or running: idempotent. It may finish meanwhile; then submit again.
    auto existing = engine.store().get(req.id);
    if (!existing || is_terminal(existing->status)) continue;
    std::optional<std::size_t> pos;
    if (existing->status == ExecStatus::kQueued) pos = engine.store().position(req.id);
    const std::string message =
        existing->status == ExecStatus::kRunning
            ? fmt::format("ticket {} of project {} is already running", ticket, project)
            : fmt::format("ticket {} of project {} is already queued at position #{}", ticket,
                          project, pos.value_or(0));
    return json_response(200, {{"id", req.id},
                               {"project", project},
                               {"ticket", ticket},
                               {"status", exec_status_name(existing->status)},
                               {"position", pos ? json(*pos) : json(0)},
                               {"created", false},
                               {"message", message}});
  }
  return error_response(409, "conflict", "ticket " + ticket + " changed state during submission");
}

// Several tickets of one project in one call, all or nothing: each item is a ticket object
// as POST .../tickets takes, or a ticket name; items without params get the request's
// `params`. Tickets already queued or running are reported, not queued twice.
HttpResponse Api::Impl::tickets_bulk(const std::string& project, const std::string& body) {
  if (!valid_name(project)) {
    return field_response(
        FieldError{"project", "project: use 1-128 letters, digits, '_', '-' or '.'"});
  }
  auto j = body_object(body, false);
  if (!j.is_ok()) return status_response(j.status());
  Fields f(*j, "");
  f.only({"tickets", "params"});
  const json* list = f.items("tickets", options.max_bulk);
  const json* params = f.object("params");
  if (!f.ok()) return field_response(f.error());

  std::vector<SubmitRequest> requests;
  std::set<std::string> names;
  const TimePoint now = engine.clock().now();
  std::size_t due_now = 0;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const std::string prefix = fmt::format("tickets[{}].", i);
    json item = (*list)[i];
    if (item.is_string()) item = json{{"ticket", item}};
    if (item.is_object()) {
      if (params != nullptr && !item.contains("params")) item["params"] = *params;
    } else {
      const std::string field = prefix.substr(0, prefix.size() - 1);
      return field_response(
          FieldError{field, field + ": expected a ticket name or object, got " + json_type(item)});
    }
    std::optional<HttpResponse> error;
    auto req = read_ticket(project, item, prefix, error);
    if (!req) return std::move(*error);
    if (!names.insert(req->name).second) {
      return field_response(
          FieldError{prefix + "ticket", prefix + "ticket: \"" + req->name + "\" appears twice"});
    }
    if (!req->not_before || *req->not_before <= now) ++due_now;
    requests.push_back(std::move(*req));
  }
  std::lock_guard lock(bulk_mu);
  if (auto full = bulk_over_capacity(due_now)) return std::move(*full);
  json out = json::array();
  std::vector<std::string> stored;
  for (auto& req : requests) {
    const std::string id = req.id, ticket = req.name;
    auto r = engine.submit(std::move(req));
    if (r.is_ok()) {
      stored.push_back(id);
      out.push_back({{"id", id}, {"ticket", ticket}, {"position", r->position}, {"created", true}});
      continue;
    }
    auto existing =
        r.status().code() == StatusCode::kAlreadyExists ? engine.store().get(id) : std::nullopt;
    if (existing && !is_terminal(existing->status)) {
      std::optional<std::size_t> pos;
      if (existing->status == ExecStatus::kQueued) pos = engine.store().position(id);
      out.push_back({{"id", id},
                     {"ticket", ticket},
                     {"status", exec_status_name(existing->status)},
                     {"position", pos ? json(*pos) : json(0)},
                     {"created", false}});
      continue;
    }
    return bulk_roll_back(stored, r.status());
  }
  feed.poke();
  return json_response(201, {{"project", project}, {"tickets", out}, {"count", stored.size()}});
}

// Cancels every queued execution that matches the filter ("clear queue"). Running ones are
// left alone: stop them one by one.
HttpResponse Api::Impl::executions_cancel_matching(const std::string& body) {
  auto j = body_object(body, true);
  if (!j.is_ok()) return status_response(j.status());
  Fields f(*j, "");
  f.only({"status", "helper", "key", "lane", "priority"});
  ExecutionFilter filter;
  filter.status = ExecStatus::kQueued;
  if (auto st = f.string("status"); st && *st != "queued") {
    f.fail("status",
           "only queued executions are cancelled by filter (stop running ones one by one)");
  }
  filter.name = f.string("helper");
  filter.key = f.string("key");
  filter.lane = f.string("lane");
  std::optional<int64_t> priority = f.integer("priority");
  if (priority && (*priority < 1 || *priority > 5)) {
    f.fail("priority", fmt::format("{} is out of range 1-5", *priority));
  }
  if (!f.ok()) return field_response(f.error());
  filter.limit = 1000;
  std::size_t cancelled = 0, matched = 0;
  while (true) {
    std::vector<Execution> page = engine.store().list(filter);
    for (const auto& e : page) {
      if (priority && e.priority() != *priority) continue;
      ++matched;
      if (engine.cancel(e.id, /*stop_running=*/false).is_ok()) ++cancelled;
    }
    if (page.size() < filter.limit) break;
    filter.after_id = page.back().id;
  }
  feed.poke();
  // `matched - cancelled` started or finished meanwhile.
  return json_response(200, {{"cancelled", cancelled}, {"matched", matched}});
}

HttpResponse Api::Impl::project_queue(const std::string& project) {
  ExecutionFilter f;
  f.key = project;
  f.limit = std::numeric_limits<std::size_t>::max();
  std::vector<Execution> all = engine.store().list(f);
  std::erase_if(all, [](const Execution& e) { return e.spec->origin != ExecOrigin::kTicket; });
  if (all.empty()) return status_response(not_found("unknown project \"" + project + "\""));
  json running = json();
  json recent = json::array();
  for (const auto& e : all) {
    if (e.status == ExecStatus::kRunning) {
      running = execution_json(e);
      add_progress(running, engine, e);
    }
  }
  json queue = json::array();
  std::size_t pos = 0;
  for (const auto& e : engine.store().key_queue(project)) {
    queue.push_back(execution_json(e, ++pos));
  }
  return json_response(
      200,
      {{"project", project}, {"running", running}, {"queue", queue}, {"queued", queue.size()}});
}

HttpResponse Api::Impl::ticket_show(const std::string& project, const std::string& ticket) {
  auto e = engine.store().get(ticket_id(project, ticket));
  if (!e || e->spec->origin != ExecOrigin::kTicket) {
    return status_response(
        not_found("unknown ticket \"" + ticket + "\" of project \"" + project + "\""));
  }
  std::optional<std::size_t> pos;
  if (e->status == ExecStatus::kQueued) pos = engine.store().position(e->id);
  json j = execution_json(*e, pos);
  add_progress(j, engine, *e);
  return json_response(200, j);
}

HttpResponse Api::Impl::whoami(const Call& c) {
  // What the caller may do: the dashboard disables its buttons for a read-only token.
  const bool tokens = options.token || options.read_token;
  const char* access = !tokens ? "full" : !c.full ? "anonymous" : *c.full ? "full" : "read";
  return json_response(200, {{"access", access}, {"tokens", tokens}});
}

HttpResponse Api::Impl::stats_stream() {
  HttpResponse r;
  r.content_type = "text/event-stream";
  r.headers.emplace_back("X-Accel-Buffering", "no");
  r.stream = [this](StreamPush push) { return feed.subscribe(std::move(push)); };
  return r;
}

const std::vector<Api::Impl::Route>& Api::Impl::routes() {
  using C = const Call&;
  static const std::vector<Route> table = [] {
    std::vector<Route> t = {
        // system
        {"GET", "/healthz", true,
         [](Impl&, C) {
           return json_response(200, {{"status", "ok"}});
         }},
        {"GET", "/readyz", true, [](Impl& a, C) { return a.readyz(); }},
        {"GET", "/metrics", true, [](Impl& a, C) { return a.metrics_text(); }},
        {"GET", "/v1/status", true, [](Impl& a, C) { return a.status(); }},
        {"GET", "/v1/whoami", true, [](Impl& a, C c) { return a.whoami(c); }},
        {"GET", "/v1/lanes", true, [](Impl& a, C) { return a.lanes(); }},
        {"GET", "/v1/stats", true, [](Impl& a, C) { return json_response(200, a.stats_json()); }},
        {"GET", "/v1/stats/stream", false, [](Impl& a, C) { return a.stats_stream(); }},
        {"DELETE", "/v1/history", false, [](Impl& a, C c) { return a.history_clear(c.target); }},
        // helpers
        {"GET", "/v1/helpers", false, [](Impl& a, C) { return a.helpers_list(); }},
        {"GET", "/v1/helpers/{name}", false, [](Impl& a, C c) { return a.helper_show(c.args[0]); }},
        {"POST", "/v1/helpers/{name}/enable", false,
         [](Impl& a, C c) { return a.helper_enable(c.args[0], true); }},
        {"POST", "/v1/helpers/{name}/disable", false,
         [](Impl& a, C c) { return a.helper_enable(c.args[0], false); }},
        {"PUT", "/v1/helpers/{name}/schedule", false,
         [](Impl& a, C c) { return a.helper_schedule(c.args[0], c.req.body); }},
        {"POST", "/v1/helpers/{name}/run", false,
         [](Impl& a, C c) { return a.helper_run(c.args[0]); }},
        // executions
        {"GET", "/v1/executions", false, [](Impl& a, C c) { return a.executions_list(c.target); }},
        {"POST", "/v1/executions", true,
         [](Impl& a, C c) { return a.execution_submit(c.req.body); }},
        {"POST", "/v1/executions/bulk", false,
         [](Impl& a, C c) { return a.executions_bulk(c.req.body); }},
        {"POST", "/v1/executions/cancel", false,
         [](Impl& a, C c) { return a.executions_cancel_matching(c.req.body); }},
        {"GET", "/v1/executions/{id}", false,
         [](Impl& a, C c) { return a.execution_show(c.args[0]); }},
        {"POST", "/v1/executions/{id}/cancel", false,
         [](Impl& a, C c) {
           return a.execution_cancel(c.args[0], c.target, c.req.body, std::nullopt);
         }},
        // tickets
        {"GET", "/v1/projects/{project}/tickets", false,
         [](Impl& a, C c) { return a.project_queue(c.args[0]); }},
        {"POST", "/v1/projects/{project}/tickets", true,
         [](Impl& a, C c) { return a.ticket_submit(c.args[0], c.req.body); }},
        // A ticket may be named "bulk": it is still read and cancelled by name.
        {"POST", "/v1/projects/{project}/tickets/bulk", false,
         [](Impl& a, C c) { return a.tickets_bulk(c.args[0], c.req.body); }},
        {"GET", "/v1/projects/{project}/tickets/{ticket}", false,
         [](Impl& a, C c) { return a.ticket_show(c.args[0], c.args[1]); }},
        {"DELETE", "/v1/projects/{project}/tickets/{ticket}", false,
         [](Impl& a, C c) {
           return a.execution_cancel(ticket_id(c.args[0], c.args[1]), c.target, c.req.body,
                                     c.args[0]);
         }},
    };
    for (auto& r : t) {
      std::string_view p = r.pattern;
      while (!p.empty()) {
        p.remove_prefix(1);  // '/'
        const std::size_t end = std::min(p.find('/'), p.size());
        r.parts.emplace_back(p.substr(0, end));
        p.remove_prefix(end);
      }
    }
    return t;
  }();
  return table;
}

namespace {
bool path_matches(const std::vector<std::string>& parts, const std::vector<std::string>& segments,
                  std::vector<std::string>* args) {
  if (parts.size() != segments.size()) return false;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].starts_with('{')) {
      if (args != nullptr) args->push_back(segments[i]);
    } else if (parts[i] != segments[i]) {
      return false;
    }
  }
  return true;
}
}  // namespace

const Api::Impl::Route* Api::Impl::match_route(const std::string& method,
                                               const std::vector<std::string>& segments,
                                               std::vector<std::string>& args) {
  for (const Route& r : routes()) {
    if (r.method != method) continue;
    args.clear();
    if (path_matches(r.parts, segments, &args)) return &r;
  }
  args.clear();
  return nullptr;
}

std::string Api::Impl::allowed_methods(const std::vector<std::string>& segments) {
  std::string out;
  for (const Route& r : routes()) {
    if (!path_matches(r.parts, segments, nullptr)) continue;
    if ((", " + out + ",").find(std::string(", ") + r.method + ",") != std::string::npos) continue;
    out += (out.empty() ? "" : ", ") + std::string(r.method);
  }
  return out;
}

HttpResponse Api::Impl::route(const HttpRequest& req) {
  auto target = parse_target(req.target);
  if (!target) {
    return error_response(400, "bad_request", "malformed request target (path or query)");
  }
  const std::string& m = req.method;
  const bool read = m == "GET";

  // Auth: a wrong token is always refused; mutating requests need the full token.
  std::optional<bool> full;  // set when a valid token was given: whether it is the full one
  if (options.token || options.read_token) {
    if (!req.authorization.empty()) {
      std::string_view auth = req.authorization;
      constexpr std::string_view kBearer = "bearer ";
      std::string scheme(auth.substr(0, std::min(auth.size(), kBearer.size())));
      std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (scheme != kBearer) {
        return error_response(401, "unauthorized", "Authorization must be \"Bearer TOKEN\"");
      }
      const std::string token = trim(std::string(auth.substr(kBearer.size())));
      const bool is_full = options.token && constant_time_equal(token, *options.token);
      const bool is_read = options.read_token && constant_time_equal(token, *options.read_token);
      if (!is_full && !is_read) {
        HttpResponse r = error_response(401, "unauthorized", "invalid token");
        r.headers.emplace_back("WWW-Authenticate", "Bearer");
        return r;
      }
      full = is_full;
    }
    if (!read && options.token) {
      if (!full) {
        HttpResponse r = error_response(401, "unauthorized",
                                        "this endpoint needs \"Authorization: Bearer TOKEN\"");
        r.headers.emplace_back("WWW-Authenticate", "Bearer");
        return r;
      }
      if (!*full) {
        return error_response(403, "forbidden", "the read-only token cannot change anything");
      }
    }
  }

  if (auto page = web::route(m, target->segments)) return std::move(*page);
  std::vector<std::string> args;
  const Route* r = match_route(m, target->segments, args);
  if (r == nullptr) {
    // A known path with another method: 405 with the methods it takes.
    std::string allow = allowed_methods(target->segments);
    if (allow.empty()) {
      return error_response(404, "not_found", "no such endpoint: " + m + " " + req.target);
    }
    HttpResponse res = error_response(405, "method_not_allowed",
                                      m + " is not allowed on " + req.target + "; use " + allow);
    res.headers.emplace_back("Allow", allow);
    return res;
  }
  return r->handler(*this, Call{req, *target, args, full});
}

Api::Api(Engine& engine, ApiOptions options)
    : impl_(std::make_unique<Impl>(engine, std::move(options))) {}
Api::~Api() = default;

bool Api::handles_inline(const HttpRequest& request) const {
  // Which requests never wait: with a local store, the cheap reads and single submissions
  // (a durable submission is answered later, from the store's writer, not waited for), as
  // the route table marks them, and the dashboard's files. Everything that waits for a
  // commit (operator changes, cancel, bulk) or may walk much of the store (listings) goes to
  // the pool, and so does everything on a remote store but the liveness probe.
  auto target = parse_target(request.target);
  if (!target) return true;  // a 400, at once
  const auto& s = target->segments;
  if (request.method == "GET" && s.size() == 1 && s[0] == "healthz") return true;
  if (impl_->engine.store().remote()) return false;
  if (s.empty() || s[0] == "ui") return true;  // the dashboard (web_routes.h)
  std::vector<std::string> args;
  const Impl::Route* r = Impl::match_route(request.method, s, args);
  return r != nullptr && r->inline_local;
}

HttpResponse Api::handle(const HttpRequest& request) {
  try {
    HttpResponse r = impl_->route(request);
    spdlog::debug("api: {} {} {} -> {}", request.remote, request.method, request.target, r.status);
    return r;
  } catch (const std::exception& e) {
    spdlog::error("api: {} {}: {}", request.method, request.target, e.what());
    return error_response(500, "internal", e.what());
  }
}

StatusOr<ApiOptions> api_options_from_config(const Config& config) {
  ApiOptions o;
  auto token = read_token(config.token_file, config.token_env, "token");
  if (!token.is_ok()) return token.status();
  o.token = *token;
  auto read = read_token(config.read_token_file, config.read_token_env, "read_token");
  if (!read.is_ok()) return read.status();
  o.read_token = *read;
  return o;
}

StatusOr<std::unique_ptr<ApiService>> ApiService::start(Engine& engine, ApiOptions options,
                                                        HttpServerOptions server) {
  std::unique_ptr<ApiService> service(new ApiService());
  server.require_loopback = !options.token.has_value();
  service->api_ = std::make_unique<Api>(engine, std::move(options));
  server.run_inline = [api = service->api_.get()](const HttpRequest& r) {
    return api->handles_inline(r);
  };
  auto s = HttpServer::start(std::move(server), [api = service->api_.get()](const HttpRequest& r) {
    return api->handle(r);
  });
  if (!s.is_ok()) return s.status();
  service->server_ = std::move(s).value();
  return service;
}

ApiService::~ApiService() { stop(); }

void ApiService::stop() {
  if (server_) server_->stop();
}

}  // namespace schedd::api
