// Reading schedd.toml into a Config. toml++ is called only from parse_impl() and
// default_value(), which catch its exceptions; everything else walks the parsed tree and
// reports each mistake as a ConfigError instead of stopping, so one run lists them all.
// Every function here is reentrant: no state is shared between calls but the date library's
// zone database, which is safe to read from any thread.
#include "core/config/config.h"

#include <date/date.h>
#include <date/tz.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <utility>

#include <toml++/toml.h>

#include "core/common/duration.h"
#include "core/config/toml_limits.h"
#include "core/schedule/cron.h"
#include "core/store/execution.h"
#include "core/store/redis_store.h"

namespace schedd {

std::string ConfigError::to_string() const {
  std::string out = where.file;
  if (where.line > 0) {
    out += ':' + std::to_string(where.line);
    if (where.column > 0) out += ':' + std::to_string(where.column);
  }
  return out + ": " + message;
}

const LaneConfig* Config::find_lane(std::string_view name) const {
  for (const auto& lane : lanes) {
    if (lane.name == name) return &lane;
  }
  return nullptr;
}

const PluginConfig* Config::find_plugin(std::string_view name) const {
  for (const auto& p : plugins) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

const HelperConfig* Config::find_helper(std::string_view name) const {
  for (const auto& helper : helpers) {
    if (helper.name == name) return &helper;
  }
  return nullptr;
}

namespace {

using std::chrono::milliseconds;
using Names = std::vector<std::string>;

// ---------------------------------------------------------------------------------------------
// Text helpers.

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// "a, b, c" (or with each item quoted: "\"a\", \"b\"").
std::string join(const Names& items, bool quoted = false) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    out += quoted ? quote(items[i]) : items[i];
  }
  return out;
}

bool is_bare_key(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

// A key as it would be written in a TOML table header.
std::string key_segment(std::string_view s) { return is_bare_key(s) ? std::string(s) : quote(s); }

// Helper and lane names: letters, digits, '_', '-' and '.'.
bool is_valid_name(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

size_t levenshtein(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t substitute = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, substitute});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// " (did you mean "x"?)" or "".
std::string suggestion(std::string_view word, const Names& candidates) {
  std::string best = did_you_mean(word, candidates);
  return best.empty() ? "" : " (did you mean " + quote(best) + "?)";
}

const char* node_type_name(toml::node_type type) {
  switch (type) {
    case toml::node_type::none:
      return "nothing";
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
  }
  return "value";
}

bool parse_digits(std::string_view s, int& out) {
  if (s.empty() || s.size() > 4) return false;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

std::string two_digits(int v) {
  std::string s = std::to_string(v);
  return s.size() < 2 ? "0" + s : s;
}

// ---------------------------------------------------------------------------------------------
// Value checks that need no TOML. Each returns "" when the text is fine, or why it is not.

// Checks a cron expression: first its shape (non-empty; one of the @macros, or 5 fields, or 6
// with seconds first), with messages that suggest the macro meant; then each field, with the
// full parser of core/schedule/cron.h, refusing expressions that can never fire.
std::string check_cron(std::string_view expr) {
  static const Names kMacros = {"@yearly", "@annually", "@monthly", "@weekly",
                                "@daily",  "@midnight", "@hourly"};
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < expr.size()) {
    while (i < expr.size() && std::isspace(static_cast<unsigned char>(expr[i]))) ++i;
    const size_t begin = i;
    while (i < expr.size() && !std::isspace(static_cast<unsigned char>(expr[i]))) ++i;
    if (i > begin) fields.push_back(expr.substr(begin, i - begin));
  }
  if (fields.empty()) return "empty cron expression";
  if (fields[0].front() == '@') {
    if (fields.size() == 1 &&
        std::find(kMacros.begin(), kMacros.end(), fields[0]) != kMacros.end()) {
      return "";
    }
    return quote(expr) + " is not a cron macro" + suggestion(fields[0], kMacros) +
           "; use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly";
  }
  if (fields.size() != 5 && fields.size() != 6) {
    return quote(expr) + " has " + std::to_string(fields.size()) +
           " fields; a cron expression has 5 (minute hour day-of-month month day-of-week) or 6 "
           "(seconds first)";
  }
  StatusOr<CronExpr> cron = parse_cron(expr);
  if (!cron.is_ok()) return cron.status().message();
  if (!cron->can_fire()) return quote(expr) + " " + kNeverFires;
  return "";
}

// "HH:MM" or "HH:MM:SS" (the hour may have one digit). On success `normalized` gets the
// two-digit form.
std::string check_time_of_day(std::string_view text, std::string& normalized) {
  const std::string bad = quote(text) + " is not a time of day; write \"HH:MM\" or \"HH:MM:SS\"";
  const size_t c1 = text.find(':');
  if (c1 == std::string_view::npos) return bad;
  const size_t c2 = text.find(':', c1 + 1);
  const std::string_view hh = text.substr(0, c1);
  const std::string_view mm = text.substr(c1 + 1, c2 == std::string_view::npos ? c2 : c2 - c1 - 1);
  const std::string_view ss = c2 == std::string_view::npos ? "" : text.substr(c2 + 1);
  int h = 0, m = 0, s = 0;
  if (hh.size() > 2 || mm.size() != 2 || !parse_digits(hh, h) || !parse_digits(mm, m)) return bad;
  if (c2 != std::string_view::npos && (ss.size() != 2 || !parse_digits(ss, s))) return bad;
  const std::string prefix = quote(text) + " is not a valid time of day: ";
  if (h > 23) return prefix + "hour " + std::to_string(h) + " is out of range 0-23";
  if (m > 59) return prefix + "minute " + std::to_string(m) + " is out of range 0-59";
  if (s > 59) return prefix + "second " + std::to_string(s) + " is out of range 0-59";
  normalized = two_digits(h) + ":" + two_digits(m);
  if (c2 != std::string_view::npos) normalized += ":" + two_digits(s);
  return "";
}

// An RFC 3339 date-time with an offset: 2024-01-01T09:30:00Z, 2024-01-01 09:30:00.5+02:00.
std::string check_rfc3339(std::string_view text) {
  const std::string bad =
      quote(text) + " is not an RFC 3339 date-time such as \"2024-01-01T00:00:00Z\"";
  // YYYY-MM-DDTHH:MM:SS is 19 characters, followed by [.fraction] and Z or +HH:MM.
  if (text.size() < 19) return bad;
  auto digits_at = [&](size_t pos, size_t n, int& out) {
    return parse_digits(text.substr(pos, n), out) && text.substr(pos, n).size() == n;
  };
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!digits_at(0, 4, year) || text[4] != '-' || !digits_at(5, 2, month) || text[7] != '-' ||
      !digits_at(8, 2, day) || (text[10] != 'T' && text[10] != 't' && text[10] != ' ') ||
      !digits_at(11, 2, hour) || text[13] != ':' || !digits_at(14, 2, minute) || text[16] != ':' ||
      !digits_at(17, 2, second)) {
    return bad;
  }
  size_t i = 19;
  if (i < text.size() && text[i] == '.') {
    ++i;
    const size_t begin = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == begin) return bad;
  }
  const std::string_view zone = text.substr(i);
  int offset_h = 0, offset_m = 0;
  if (zone != "Z" && zone != "z") {
    if (zone.size() != 6 || (zone[0] != '+' && zone[0] != '-') || zone[3] != ':' ||
        !parse_digits(zone.substr(1, 2), offset_h) || !parse_digits(zone.substr(4, 2), offset_m)) {
      return zone.empty() ? quote(text) + " has no UTC offset; end it with Z or +HH:MM" : bad;
    }
  }
  const std::string prefix = quote(text) + " is not a valid date-time: ";
  if (month < 1 || month > 12) {
    return prefix + "month " + std::to_string(month) + " is out of range 1-12";
  }
  const date::year_month_day ymd{date::year(year), date::month(static_cast<unsigned>(month)),
                                 date::day(static_cast<unsigned>(day))};
  if (!ymd.ok()) return prefix + "day " + std::to_string(day) + " does not exist in that month";
  if (hour > 23) return prefix + "hour " + std::to_string(hour) + " is out of range 0-23";
  if (minute > 59) return prefix + "minute " + std::to_string(minute) + " is out of range 0-59";
  if (second > 59) return prefix + "second " + std::to_string(second) + " is out of range 0-59";
  if (offset_h > 23 || offset_m > 59) return prefix + "the UTC offset is out of range";
  return "";
}

// An IANA zone name the date library can open.
std::string check_time_zone(std::string_view name) {
  const date::tzdb* db = nullptr;
  try {
    db = &date::get_tzdb();
  } catch (const std::exception& e) {
    return "cannot check time zone " + quote(name) + ": " + e.what();
  }
  try {
    date::locate_zone(name);
    return "";
  } catch (const std::exception&) {
  }
  Names zones;
  zones.reserve(db->zones.size());
  for (const auto& zone : db->zones) zones.push_back(zone.name());
  return "unknown time zone " + quote(name) + suggestion(name, zones);
}

// "memory", "sqlite:PATH" or "redis://...". Only the scheme is checked for now; the stores
// parse the rest when they open.
std::string check_store(std::string_view store) {
  const std::string use = "use \"memory\", \"sqlite:PATH\" or \"redis://HOST:PORT/DB\"";
  if (store == "memory") return "";
  if (store.starts_with("sqlite:")) {
    if (store.size() > 7) return "";
    return quote(store) + " has no path; write e.g. \"sqlite:/var/lib/schedd/schedd.db\"";
  }
  if (store.starts_with("redis://")) {
    if (store.size() == 8) {
      return quote(store) + " has no address; write e.g. \"redis://127.0.0.1:6379/0\"";
    }
    StatusOr<RedisAddress> address = parse_redis_url(store);
    if (address.is_ok()) return "";
    // parse_redis_url's message starts with `store "URL": `; the caller already says which
    // key it is. A password in the URL is not repeated in the message.
    std::string why = address.status().message();
    if (why.starts_with("store ")) why = why.substr(6);
    const std::string_view rest = store.substr(8);
    if (const size_t at = rest.rfind('@'); at != std::string_view::npos) {
      const std::string_view auth = rest.substr(0, at);
      const size_t colon = auth.find(':');
      const std::string_view password =
          colon == std::string_view::npos ? auth : auth.substr(colon + 1);
      if (!password.empty()) {
        for (size_t pos = why.find(password); pos != std::string::npos;
             pos = why.find(password, pos + 3)) {
          why.replace(pos, password.size(), "***");
        }
      }
    }
    return why;
  }
  return quote(store) + " is not a supported store; " + use;
}

// cfg.store_path from cfg.store and cfg.data_dir: a relative sqlite PATH lives in data_dir.
void resolve_store_path(Config& cfg) {
  cfg.store_path.clear();
  if (!cfg.store.starts_with("sqlite:")) return;
  std::filesystem::path path(cfg.store.substr(7));
  if (path.is_relative()) path = cfg.data_dir / path;
  cfg.store_path = path.lexically_normal();
}

// "HOST:PORT" with a port 0-65535; an IPv6 host is bracketed: "[::1]:7878".
std::string check_listen(std::string_view listen) {
  const std::string bad = quote(listen) + " is not HOST:PORT, e.g. \"127.0.0.1:7878\"";
  const size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return bad;
  const std::string_view host = listen.substr(0, colon);
  const std::string_view port = listen.substr(colon + 1);
  if (host.front() == '[' ? host.back() != ']' || host.size() < 3
                          : host.find(':') != std::string_view::npos) {
    return bad;
  }
  if (port.empty() || port.size() > 9 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return quote(listen) + ": the port must be a number 0-65535";
  }
  const long value = std::stol(std::string(port));
  if (value > 65535) return "port " + std::to_string(value) + " is out of range 0-65535";
  return "";
}

// ---------------------------------------------------------------------------------------------
// Raw params.

RawParam make_raw_param(std::string name, const toml::node& node, SourceLoc where) {
  RawParam raw{std::move(name), std::move(where), RawParam::Kind::kOther, std::string()};
  switch (node.type()) {
    case toml::node_type::string:
      raw.kind = RawParam::Kind::kString;
      raw.value = node.as_string()->get();
      return raw;
    case toml::node_type::integer:
      raw.kind = RawParam::Kind::kInt;
      raw.value = node.as_integer()->get();
      return raw;
    case toml::node_type::floating_point:
      raw.kind = RawParam::Kind::kDouble;
      raw.value = node.as_floating_point()->get();
      return raw;
    case toml::node_type::boolean:
      raw.kind = RawParam::Kind::kBool;
      raw.value = node.as_boolean()->get();
      return raw;
    case toml::node_type::array: {
      StringList list;
      for (const auto& element : *node.as_array()) {
        if (!element.is_string()) {
          raw.value = std::string("array containing ") + node_type_name(element.type());
          return raw;
        }
        list.push_back(element.as_string()->get());
      }
      raw.kind = RawParam::Kind::kStringList;
      raw.value = std::move(list);
      return raw;
    }
    case toml::node_type::table: {
      StringMap map;
      for (const auto& [key, value] : *node.as_table()) {
        if (!value.is_string()) {
          raw.value = std::string("table containing ") + node_type_name(value.type());
          return raw;
        }
        map.emplace(std::string(key.str()), value.as_string()->get());
      }
      raw.kind = RawParam::Kind::kStringMap;
      raw.value = std::move(map);
      return raw;
    }
    default:
      raw.value = std::string(node_type_name(node.type()));
      return raw;
  }
}

std::string raw_kind_name(const RawParam& raw) {
  switch (raw.kind) {
    case RawParam::Kind::kString:
      return "string";
    case RawParam::Kind::kInt:
      return "integer";
    case RawParam::Kind::kDouble:
      return "float";
    case RawParam::Kind::kBool:
      return "boolean";
    case RawParam::Kind::kStringList:
      return "array of strings";
    case RawParam::Kind::kStringMap:
      return "table of strings";
    case RawParam::Kind::kOther:
      break;
  }
  if (const auto* what = std::get_if<std::string>(&raw.value); what && !what->empty()) {
    return *what;
  }
  return "an unsupported value";
}

// ---------------------------------------------------------------------------------------------
// The loader: walks the parsed document section by section.

const Names kRootKeys = {"daemon",  "api",     "capacity", "retry",   "lanes",
                         "tickets", "helpers", "redis",    "plugins", "history"};
const Names kHistoryKeys = {"retention"};
// [history.retention]: the terminal statuses, named as the API names them.
const Names kRetentionKeys = [] {
  Names out;
  for (ExecStatus s : kTerminalStatuses) out.emplace_back(exec_status_name(s));
  return out;
}();
const Names kDaemonKeys = {"timezone",
                           "plugin_dir",
                           "data_dir",
                           "on_plugin_error",
                           "log_format",
                           "log_level",
                           "store",
                           "node_id",
                           "lookahead",
                           "expand_every",
                           "history_retention",
                           "shutdown_grace",
                           "durability",
                           "durability_window",
                           "isolation",
                           "kill_grace",
                           "plugin_load_timeout",
                           "runner"};
const Names kPluginKeys = {"isolation", "memory_limit", "cpu_limit", "open_files", "user", "group"};
const Names kApiKeys = {"listen",          "token_file",     "token_env",
                        "read_token_file", "read_token_env", "max_param_bytes"};
const Names kCapacityKeys = {"queued"};
const Names kRedisKeys = {"namespace",     "connect_timeout", "command_timeout", "lease",
                          "password_file", "password_env",    "lane_capacity",   "claim_ahead"};
const Names kRetryKeys = {"max_attempts", "delays"};
const Names kLaneKeys = {"workers", "timeout"};
const Names kTicketKeys = {"executor", "lane", "priority", "expiry", "projects"};
const Names kTicketProjectKeys = {"executor", "lane", "priority", "expiry"};
const Names kHelperKeys = {"executor", "description", "enabled", "schedule", "key",
                           "lane",     "priority",    "expiry",  "timeout",  "retry",
                           "overlap",  "catch_up",    "params"};
const Names kScheduleKeys = {"cron", "time", "every", "days", "anchor", "tz", "jitter", "dst"};
const Names kDstKeys = {"gap", "overlap"};
const Names kWeekdays = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

// Where a value must be strictly positive.
enum class Positive { kNo, kYes };

class Loader {
 public:
  Loader(std::string file, std::filesystem::path base_dir, std::vector<ConfigError>& errors)
      : file_(std::move(file)), base_dir_(std::move(base_dir)), errors_(errors) {}

  void load(const toml::table& root, Config& cfg);
  // Reads the inline table under key "schedule" of `root` (an API or CLI schedule update).
  void load_schedule(const toml::table& root, ScheduleConfig& sc) {
    const toml::node* node = root.get("schedule");
    if (node == nullptr || !node->is_table()) {
      error(SourceLoc{file_, 1, 1}, "schedule: expected a table such as { cron = \"0 * * * *\" }");
      return;
    }
    read_schedule(Section{*node->as_table(), "schedule"}, sc);
  }

 private:
  // One table of the document, named as its header would be ("lanes.default"); "" is the root.
  struct Section {
    const toml::table& table;
    std::string name;
  };

  SourceLoc loc(const toml::source_region& r) const {
    return SourceLoc{file_, static_cast<uint32_t>(r.begin.line),
                     static_cast<uint32_t>(r.begin.column)};
  }
  void error(const toml::source_region& r, std::string message) {
    errors_.push_back(ConfigError{loc(r), std::move(message)});
  }
  void error(SourceLoc where, std::string message) {
    errors_.push_back(ConfigError{std::move(where), std::move(message)});
  }

  static std::string header(const Section& s) { return "[" + s.name + "]"; }
  // "[daemon] lookahead: ", or "daemon: " at the root.
  static std::string prefix(const Section& s, std::string_view key) {
    return (s.name.empty() ? "" : header(s) + " ") + std::string(key) + ": ";
  }
  static Section child(const Section& s, const toml::table& t, std::string_view key) {
    return Section{t, s.name.empty() ? key_segment(key) : s.name + "." + key_segment(key)};
  }
  std::filesystem::path resolve(const std::string& p) const {
    std::filesystem::path path(p);
    if (path.is_relative()) path = base_dir_ / path;
    return path.lexically_normal();
  }

  void check_keys(const Section& s, const Names& known);
  bool check_type(const Section& s, std::string_view key, const toml::node& node,
                  toml::node_type type);

  const toml::table* read_table(const Section& s, std::string_view key);
  std::optional<std::string> read_string(const Section& s, std::string_view key,
                                         bool allow_empty = true);
  std::optional<int64_t> read_int(const Section& s, std::string_view key, int64_t lo, int64_t hi);
  std::optional<bool> read_bool(const Section& s, std::string_view key);
  std::optional<milliseconds> read_duration(const Section& s, std::string_view key,
                                            Positive positive);
  std::optional<milliseconds> duration_value(const toml::node& node, const std::string& prefix,
                                             Positive positive);
  std::optional<std::string> read_enum(const Section& s, std::string_view key,
                                       const Names& allowed);
  // A lane name to check once all lanes are known.
  void lane_ref(const Section& s, std::string_view key, std::string& out);

  void read_daemon(const Section& s, Config& cfg);
  void read_api(const Section& s, Config& cfg);
  void read_history(const Section& s, Config& cfg);
  void read_redis(const Section& s, const toml::node& node, Config& cfg);
  RetryConfig read_retry(const Section& s, RetryConfig base);
  void read_lanes(const Section& s, Config& cfg);
  void read_plugins(const Section& s, Config& cfg);
  void read_tickets(const Section& s, Config& cfg);
  void read_helpers(const Section& s, Config& cfg);
  void read_helper(const Section& s, const toml::key& name, HelperConfig& h, const Config& cfg);
  void read_schedule(const Section& s, ScheduleConfig& sc);
  void read_params(const Section& s, HelperConfig& h);
  void check_lane_refs(const Config& cfg);

  std::string file_;
  std::filesystem::path base_dir_;
  std::vector<ConfigError>& errors_;

  struct LaneRef {
    std::string lane;
    SourceLoc where;
    std::string prefix;
  };
  std::vector<LaneRef> lane_refs_;
  // [daemon] store was written as a redis:// URL (valid or not): [redis] belongs with it.
  bool redis_store_written_ = false;
};

void Loader::check_keys(const Section& s, const Names& known) {
  for (const auto& [key, value] : s.table) {
    const std::string k(key.str());
    if (std::find(known.begin(), known.end(), k) != known.end()) continue;
    const std::string best = did_you_mean(k, known);
    std::string message;
    if (s.name.empty() && value.is_table()) {
      message = "unknown table [" + key_segment(k) + "]";
      message +=
          best.empty() ? "; expected one of: " + join(known) : " (did you mean [" + best + "]?)";
    } else {
      message = "unknown key " + quote(k) + (s.name.empty() ? "" : " in " + header(s));
      message += best.empty() ? "; expected one of: " + join(known)
                              : " (did you mean " + quote(best) + "?)";
    }
    error(key.source(), std::move(message));
  }
}

bool Loader::check_type(const Section& s, std::string_view key, const toml::node& node,
                        toml::node_type type) {
  if (node.type() == type) return true;
  error(node.source(), prefix(s, key) + "expected " + node_type_name(type) + ", got " +
                           node_type_name(node.type()));
  return false;
}

const toml::table* Loader::read_table(const Section& s, std::string_view key) {
  const toml::node* node = s.table.get(key);
  if (node == nullptr || !check_type(s, key, *node, toml::node_type::table)) return nullptr;
  return node->as_table();
}

std::optional<std::string> Loader::read_string(const Section& s, std::string_view key,
                                               bool allow_empty) {
  const toml::node* node = s.table.get(key);
  if (node == nullptr || !check_type(s, key, *node, toml::node_type::string)) return std::nullopt;
  std::string value = node->as_string()->get();
  if (!allow_empty && value.empty()) {
    error(node->source(), prefix(s, key) + "must not be empty");
    return std::nullopt;
  }
  return value;
}

std::optional<int64_t> Loader::read_int(const Section& s, std::string_view key, int64_t lo,
                                        int64_t hi) {
  const toml::node* node = s.table.get(key);
  if (node == nullptr || !check_type(s, key, *node, toml::node_type::integer)) {
    return std::nullopt;
  }
  const int64_t value = node->as_integer()->get();
  if (value < lo || value > hi) {
    std::string range = hi == std::numeric_limits<int64_t>::max()
                            ? "(the minimum is " + std::to_string(lo) + ")"
                            : std::to_string(lo) + "-" + std::to_string(hi);
    error(node->source(), prefix(s, key) + std::to_string(value) + " is out of range " + range);
    return std::nullopt;
  }
  return value;
}

std::optional<bool> Loader::read_bool(const Section& s, std::string_view key) {
  const toml::node* node = s.table.get(key);
  if (node == nullptr || !check_type(s, key, *node, toml::node_type::boolean)) {
    return std::nullopt;
  }
  return node->as_boolean()->get();
}

std::optional<milliseconds> Loader::duration_value(const toml::node& node,
                                                   const std::string& prefix, Positive positive) {
  if (!node.is_string()) {
    error(node.source(), prefix + "expected a duration string such as \"90s\", got " +
                             node_type_name(node.type()));
    return std::nullopt;
  }
  const std::string& text = node.as_string()->get();
  StatusOr<milliseconds> d = parse_duration(text);
  if (!d.is_ok()) {
    error(node.source(), prefix + d.status().message());
    return std::nullopt;
  }
  if (positive == Positive::kYes && d->count() == 0) {
    error(node.source(), prefix + "must be greater than 0 (got " + quote(text) + ")");
    return std::nullopt;
  }
  return *d;
}

std::optional<milliseconds> Loader::read_duration(const Section& s, std::string_view key,
                                                  Positive positive) {
  const toml::node* node = s.table.get(key);
  if (node == nullptr) return std::nullopt;
  return duration_value(*node, prefix(s, key), positive);
}

std::optional<std::string> Loader::read_enum(const Section& s, std::string_view key,
                                             const Names& allowed) {
  const toml::node* node = s.table.get(key);
  if (node == nullptr || !check_type(s, key, *node, toml::node_type::string)) return std::nullopt;
  const std::string& value = node->as_string()->get();
  if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return value;
  error(node->source(), prefix(s, key) + quote(value) + " is not one of " + join(allowed, true) +
                            suggestion(value, allowed));
  return std::nullopt;
}

void Loader::lane_ref(const Section& s, std::string_view key, std::string& out) {
  const toml::node* node = s.table.get(key);
  if (auto lane = read_string(s, key, /*allow_empty=*/false)) {
    out = *lane;
    lane_refs_.push_back(LaneRef{*lane, loc(node->source()), prefix(s, key)});
  }
}

void Loader::load(const toml::table& root, Config& cfg) {
  const Section top{root, ""};
  check_keys(top, kRootKeys);

  // Sections are read in dependency order ([retry] before helpers inherit it, all lanes
  // before lane names are checked); errors are sorted into file order by the caller.
  if (const toml::table* t = read_table(top, "daemon")) read_daemon(child(top, *t, "daemon"), cfg);
  if (cfg.plugin_dir.empty()) cfg.plugin_dir = resolve("plugins");
  if (cfg.data_dir.empty()) cfg.data_dir = base_dir_.empty() ? "." : base_dir_.lexically_normal();
  resolve_store_path(cfg);
  if (const toml::table* t = read_table(top, "api")) read_api(child(top, *t, "api"), cfg);
  if (const toml::table* t = read_table(top, "history")) {
    read_history(child(top, *t, "history"), cfg);
  }
  if (const toml::table* t = read_table(top, "capacity")) {
    const Section s = child(top, *t, "capacity");
    check_keys(s, kCapacityKeys);
    if (auto v = read_int(s, "queued", 1, std::numeric_limits<int64_t>::max())) {
      cfg.capacity_queued = static_cast<uint64_t>(*v);
    }
  }
  if (const toml::table* t = read_table(top, "retry")) {
    cfg.retry = read_retry(child(top, *t, "retry"), cfg.retry);
  }
  if (const toml::table* t = read_table(top, "lanes")) read_lanes(child(top, *t, "lanes"), cfg);
  if (cfg.find_lane("default") == nullptr) {
    LaneConfig lane;
    lane.name = "default";
    cfg.lanes.insert(cfg.lanes.begin(), std::move(lane));
  }
  if (const toml::table* t = read_table(top, "tickets")) {
    read_tickets(child(top, *t, "tickets"), cfg);
  }
  if (const toml::table* t = read_table(top, "redis")) {
    read_redis(child(top, *t, "redis"), *root.get("redis"), cfg);
  }
  if (const toml::table* t = read_table(top, "helpers")) {
    read_helpers(child(top, *t, "helpers"), cfg);
  }
  if (const toml::table* t = read_table(top, "plugins")) {
    read_plugins(child(top, *t, "plugins"), cfg);
  }
  check_lane_refs(cfg);
}

void Loader::read_daemon(const Section& s, Config& cfg) {
  check_keys(s, kDaemonKeys);
  if (auto tz = read_string(s, "timezone")) {
    if (!tz->empty()) {
      if (std::string why = check_time_zone(*tz); !why.empty()) {
        error(s.table.get("timezone")->source(), prefix(s, "timezone") + why);
      }
    }
    cfg.timezone = *tz;
  }
  if (auto dir = read_string(s, "plugin_dir", /*allow_empty=*/false))
    cfg.plugin_dir = resolve(*dir);
  if (auto v = read_enum(s, "on_plugin_error", {"fail", "skip"})) {
    cfg.on_plugin_error =
        *v == "skip" ? Config::OnPluginError::kSkip : Config::OnPluginError::kFail;
  }
  if (auto v = read_enum(s, "log_format", {"text", "json"})) cfg.log_format = *v;
  if (auto v = read_enum(s, "log_level", {"debug", "info", "warn", "error"})) cfg.log_level = *v;
  if (auto dir = read_string(s, "data_dir", /*allow_empty=*/false)) cfg.data_dir = resolve(*dir);
  if (auto store = read_string(s, "store")) {
    redis_store_written_ = store->starts_with("redis://");
    if (std::string why = check_store(*store); !why.empty()) {
      error(s.table.get("store")->source(), prefix(s, "store") + why);
    } else {
      cfg.store = *store;
    }
  }
  if (auto v = read_enum(s, "durability", {"full", "batch"})) cfg.durability = *v;
  if (auto v = read_duration(s, "durability_window", Positive::kYes)) cfg.durability_window = *v;
  if (auto v = read_string(s, "node_id")) cfg.node_id = *v;

  const auto lookahead = read_duration(s, "lookahead", Positive::kYes);
  const auto expand_every = read_duration(s, "expand_every", Positive::kYes);
  if (lookahead) cfg.lookahead = *lookahead;
  if (expand_every) cfg.expand_every = *expand_every;
  const bool lookahead_ok = lookahead || s.table.get("lookahead") == nullptr;
  const bool expand_ok = expand_every || s.table.get("expand_every") == nullptr;
  if (lookahead_ok && expand_ok && cfg.expand_every > cfg.lookahead) {
    // Blame whichever of the two was written; expand_every when both were.
    const char* key = expand_every ? "expand_every" : "lookahead";
    error(s.table.get(key)->source(),
          prefix(s, key) + "expand_every (" + format_duration(cfg.expand_every) +
              ") must not be longer than lookahead (" + format_duration(cfg.lookahead) + ")");
  }
  if (auto v = read_duration(s, "history_retention", Positive::kNo)) cfg.history_retention = *v;
  if (auto v = read_duration(s, "shutdown_grace", Positive::kNo)) cfg.shutdown_grace = *v;
  if (auto v = read_enum(s, "isolation", {"process", "inprocess"})) cfg.isolation = *v;
  if (auto v = read_duration(s, "kill_grace", Positive::kNo)) cfg.kill_grace = *v;
  if (auto v = read_duration(s, "plugin_load_timeout", Positive::kYes)) {
    cfg.plugin_load_timeout = *v;
  }
  if (auto v = read_string(s, "runner", /*allow_empty=*/false)) cfg.runner = resolve(*v);
}

void Loader::read_history(const Section& s, Config& cfg) {
  check_keys(s, kHistoryKeys);
  const toml::table* t = read_table(s, "retention");
  if (t == nullptr) return;
  const Section r = child(s, *t, "retention");
  check_keys(r, kRetentionKeys);
  for (const std::string& status : kRetentionKeys) {
    const toml::node* node = t->get(status);
    if (node == nullptr) continue;
    if (auto d = duration_value(*node, prefix(r, status), Positive::kNo)) {
      cfg.history_retention_by_status[status] = *d;
    }
  }
}

void Loader::read_api(const Section& s, Config& cfg) {
  check_keys(s, kApiKeys);
  if (auto listen = read_string(s, "listen")) {
    if (std::string why = check_listen(*listen); !why.empty()) {
      error(s.table.get("listen")->source(), prefix(s, "listen") + why);
    } else {
      cfg.listen = *listen;
    }
  }
  if (auto file = read_string(s, "token_file", /*allow_empty=*/false)) {
    cfg.token_file = resolve(*file).string();
  }
  if (auto env = read_string(s, "token_env", /*allow_empty=*/false)) cfg.token_env = *env;
  if (cfg.token_file && cfg.token_env) {
    error(s.table.get("token_env")->source(),
          prefix(s, "token_env") + "set either token_file or token_env, not both");
  }
  if (auto file = read_string(s, "read_token_file", /*allow_empty=*/false)) {
    cfg.read_token_file = resolve(*file).string();
  }
  if (auto env = read_string(s, "read_token_env", /*allow_empty=*/false)) {
    cfg.read_token_env = *env;
  }
  if (cfg.read_token_file && cfg.read_token_env) {
    error(s.table.get("read_token_env")->source(),
          prefix(s, "read_token_env") + "set either read_token_file or read_token_env, not both");
  }
  if (auto v = read_int(s, "max_param_bytes", 1, 1 << 30)) cfg.max_param_bytes = *v;
}

void Loader::read_redis(const Section& s, const toml::node& node, Config& cfg) {
  if (!redis_store_written_) {
    error(node.source(), header(s) + " only applies to a Redis store, but [daemon] store is " +
                             quote(cfg.store) +
                             "; remove [redis] or set store = " + "\"redis://HOST:PORT/DB\"");
    return;
  }
  check_keys(s, kRedisKeys);
  RedisConfig& r = cfg.redis;
  if (auto ns = read_string(s, "namespace", /*allow_empty=*/false)) {
    if (is_valid_name(*ns)) {
      r.ns = *ns;
    } else {
      error(s.table.get("namespace")->source(),
            prefix(s, "namespace") + quote(*ns) +
                " is not a valid namespace: use only letters, digits, \"_\", \"-\" and \".\"");
    }
  }
  if (auto v = read_duration(s, "connect_timeout", Positive::kYes)) r.connect_timeout = *v;
  if (auto v = read_duration(s, "command_timeout", Positive::kYes)) r.command_timeout = *v;
  if (auto v = read_duration(s, "lease", Positive::kYes)) {
    if (*v < std::chrono::seconds(1)) {
      error(s.table.get("lease")->source(),
            prefix(s, "lease") + format_duration(*v) +
                " is too short: a lease must be at least 1s (it is renewed every lease / 5)");
    } else {
      r.lease = *v;
    }
  }
  if (auto file = read_string(s, "password_file", /*allow_empty=*/false)) {
    r.password_file = resolve(*file).string();
  }
  if (auto env = read_string(s, "password_env", /*allow_empty=*/false)) r.password_env = *env;
  if (r.password_file && r.password_env) {
    error(s.table.get("password_env")->source(),
          prefix(s, "password_env") + "set either password_file or password_env, not both");
  }
  if (auto v = read_enum(s, "lane_capacity", {"cluster", "node"})) {
    r.lane_capacity =
        *v == "node" ? RedisConfig::LaneCapacity::kNode : RedisConfig::LaneCapacity::kCluster;
  }
  if (auto v = read_int(s, "claim_ahead", 0, 1000000)) r.claim_ahead = static_cast<uint64_t>(*v);
}

RetryConfig Loader::read_retry(const Section& s, RetryConfig base) {
  check_keys(s, kRetryKeys);
  if (auto v = read_int(s, "max_attempts", 1, 100)) base.max_attempts = static_cast<uint32_t>(*v);
  const toml::node* node = s.table.get("delays");
  if (node == nullptr || !check_type(s, "delays", *node, toml::node_type::array)) return base;
  const toml::array& array = *node->as_array();
  if (array.empty()) {
    error(node->source(), prefix(s, "delays") + "must not be empty (write e.g. [\"30s\"])");
    return base;
  }
  std::vector<milliseconds> delays;
  bool ok = true;
  for (size_t i = 0; i < array.size(); ++i) {
    const std::string p = prefix(s, "delays[" + std::to_string(i) + "]");
    if (auto d = duration_value(*array.get(i), p, Positive::kNo)) {
      delays.push_back(*d);
    } else {
      ok = false;
    }
  }
  if (ok) base.delays = std::move(delays);
  return base;
}

// The entries of a table of named tables ([lanes.*], [helpers.*]) in file order; entries that
// are not tables are reported and left out.
std::vector<std::pair<const toml::key*, const toml::table*>> named_tables(const toml::table& t) {
  std::vector<std::pair<const toml::key*, const toml::table*>> out;
  for (const auto& [key, value] : t) {
    if (value.is_table()) out.emplace_back(&key, value.as_table());
  }
  auto position = [](const toml::source_region& r) {
    return std::pair(r.begin.line, r.begin.column);
  };
  std::stable_sort(out.begin(), out.end(), [&](const auto& a, const auto& b) {
    return position(a.second->source()) < position(b.second->source());
  });
  return out;
}

void Loader::read_lanes(const Section& s, Config& cfg) {
  for (const auto& [key, value] : s.table) {
    if (!value.is_table()) check_type(s, key.str(), value, toml::node_type::table);
  }
  for (const auto& [key, table] : named_tables(s.table)) {
    const std::string name(key->str());
    const Section ls = child(s, *table, name);
    if (!is_valid_name(name)) {
      error(key->source(), header(ls) + " invalid lane name " + quote(name) +
                               ": use only letters, digits, \"_\", \"-\" and \".\"");
    }
    check_keys(ls, kLaneKeys);
    LaneConfig lane;
    lane.name = name;
    if (auto v = read_int(ls, "workers", 1, 1024)) lane.workers = static_cast<uint32_t>(*v);
    if (auto v = read_duration(ls, "timeout", Positive::kYes)) lane.timeout = *v;
    cfg.lanes.push_back(std::move(lane));
  }
}

// "256MiB", "1GiB", "512MB", "4096" (bytes): a size with an optional binary or decimal unit.
std::optional<uint64_t> parse_size(std::string_view text) {
  std::size_t i = 0;
  uint64_t n = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    if (n > (std::numeric_limits<uint64_t>::max() - 9) / 10) return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(text[i] - '0');
    ++i;
  }
  if (i == 0) return std::nullopt;
  const std::string unit(text.substr(i));
  const std::pair<const char*, uint64_t> units[] = {{"", 1},
                                                    {"B", 1},
                                                    {"KiB", 1ull << 10},
                                                    {"MiB", 1ull << 20},
                                                    {"GiB", 1ull << 30},
                                                    {"TiB", 1ull << 40},
                                                    {"KB", 1000},
                                                    {"MB", 1000000},
                                                    {"GB", 1000000000},
                                                    {"K", 1ull << 10},
                                                    {"M", 1ull << 20},
                                                    {"G", 1ull << 30}};
  for (const auto& [name, mult] : units) {
    if (unit == name) {
      if (n > std::numeric_limits<uint64_t>::max() / mult) return std::nullopt;
      return n * mult;
    }
  }
  return std::nullopt;
}

void Loader::read_plugins(const Section& s, Config& cfg) {
  for (const auto& [key, value] : s.table) {
    if (!value.is_table()) check_type(s, key.str(), value, toml::node_type::table);
  }
  for (const auto& [key, table] : named_tables(s.table)) {
    const std::string name(key->str());
    const Section ps = child(s, *table, name);
    check_keys(ps, kPluginKeys);
    PluginConfig p;
    p.name = name;
    p.where = loc(key->source());
    if (auto v = read_enum(ps, "isolation", {"process", "inprocess"})) p.isolation = *v;
    if (auto v = read_string(ps, "memory_limit", /*allow_empty=*/false)) {
      auto bytes = parse_size(*v);
      if (!bytes || *bytes < (16ull << 20)) {
        error(ps.table.get("memory_limit")->source(),
              prefix(ps, "memory_limit") + quote(*v) +
                  " is not a size of at least 16MiB (such as \"256MiB\" or \"2GiB\")");
      } else {
        p.memory_limit = *bytes;
      }
    }
    if (auto v = read_duration(ps, "cpu_limit", Positive::kYes)) p.cpu_limit = *v;
    if (auto v = read_int(ps, "open_files", 16, 1 << 20)) p.open_files = static_cast<uint64_t>(*v);
    if (auto v = read_string(ps, "user", /*allow_empty=*/false)) p.user = *v;
    if (auto v = read_string(ps, "group", /*allow_empty=*/false)) p.group = *v;
    cfg.plugins.push_back(std::move(p));
  }
}

void Loader::read_tickets(const Section& s, Config& cfg) {
  check_keys(s, kTicketKeys);
  if (auto v = read_string(s, "executor", /*allow_empty=*/false)) cfg.tickets.executor = *v;
  lane_ref(s, "lane", cfg.tickets.lane);
  if (auto v = read_int(s, "priority", 1, 5)) cfg.tickets.priority = static_cast<int>(*v);
  if (auto v = read_duration(s, "expiry", Positive::kYes)) cfg.tickets.expiry = *v;
  const toml::table* projects = read_table(s, "projects");
  if (projects == nullptr) return;
  const Section ps = child(s, *projects, "projects");
  for (const auto& [key, value] : ps.table) {
    if (!value.is_table()) check_type(ps, key.str(), value, toml::node_type::table);
  }
  for (const auto& [key, table] : named_tables(ps.table)) {
    const std::string name(key->str());
    const Section p = child(ps, *table, name);
    check_keys(p, kTicketProjectKeys);
    TicketProjectConfig project;
    if (auto v = read_string(p, "executor", /*allow_empty=*/false)) project.executor = *v;
    if (p.table.get("lane") != nullptr) {
      std::string lane;
      lane_ref(p, "lane", lane);
      if (!lane.empty()) project.lane = lane;
    }
    if (auto v = read_int(p, "priority", 1, 5)) project.priority = static_cast<int>(*v);
    if (auto v = read_duration(p, "expiry", Positive::kYes)) project.expiry = *v;
    cfg.tickets.projects.insert_or_assign(name, std::move(project));
  }
}

void Loader::read_helpers(const Section& s, Config& cfg) {
  if (s.table.size() > kMaxHelpers) {
    error(s.table.source(), header(s) + " " + std::to_string(s.table.size()) +
                                " helpers exceed the limit of " + std::to_string(kMaxHelpers));
    return;
  }
  for (const auto& [key, value] : s.table) {
    if (!value.is_table()) check_type(s, key.str(), value, toml::node_type::table);
  }
  for (const auto& [key, table] : named_tables(s.table)) {
    HelperConfig h;
    read_helper(child(s, *table, key->str()), *key, h, cfg);
    cfg.helpers.push_back(std::move(h));
  }
}

void Loader::read_helper(const Section& s, const toml::key& name, HelperConfig& h,
                         const Config& cfg) {
  h.name = std::string(name.str());
  h.key = h.name;
  h.where = loc(s.table.source());
  if (!is_valid_name(h.name)) {
    error(name.source(), header(s) + " invalid helper name " + quote(h.name) +
                             ": use only letters, digits, \"_\", \"-\" and \".\"");
  }
  check_keys(s, kHelperKeys);

  if (const toml::node* node = s.table.get("executor")) {
    h.executor_where = loc(node->source());
    if (auto v = read_string(s, "executor", /*allow_empty=*/false)) h.executor = *v;
  } else {
    error(s.table.source(), header(s) + " missing required key \"executor\"");
  }
  if (auto v = read_string(s, "description")) h.description = *v;
  if (auto v = read_bool(s, "enabled")) h.enabled = *v;
  if (s.table.get("schedule") == nullptr) {
    error(s.table.source(), header(s) + " missing required key \"schedule\"");
  } else if (const toml::table* t = read_table(s, "schedule")) {
    const size_t before = errors_.size();
    const Section ss = child(s, *t, "schedule");
    read_schedule(ss, h.schedule);
    // Whatever the field checks let through must also build an evaluable schedule.
    if (errors_.size() == before) {
      auto built = build_schedule(h.schedule, cfg.timezone, h.name);
      if (!built.is_ok()) error(t->source(), header(ss) + " " + built.status().message());
    }
  }
  if (auto v = read_string(s, "key", /*allow_empty=*/false)) h.key = *v;
  lane_ref(s, "lane", h.lane);
  if (auto v = read_int(s, "priority", 1, 5)) h.priority = static_cast<int>(*v);
  if (auto v = read_duration(s, "expiry", Positive::kYes)) h.expiry = *v;
  if (auto v = read_duration(s, "timeout", Positive::kYes)) h.timeout = *v;
  if (const toml::table* t = read_table(s, "retry")) {
    h.retry = read_retry(child(s, *t, "retry"), cfg.retry);
  }
  if (auto v = read_enum(s, "overlap", {"queue", "skip", "replace", "allow"})) {
    h.overlap = *v == "skip"      ? Overlap::kSkip
                : *v == "replace" ? Overlap::kReplace
                : *v == "allow"   ? Overlap::kAllow
                                  : Overlap::kQueue;
  }
  if (auto v = read_enum(s, "catch_up", {"all", "latest", "none"})) {
    h.catch_up = *v == "latest" ? CatchUp::kLatest : *v == "none" ? CatchUp::kNone : CatchUp::kAll;
  }
  if (const toml::table* t = read_table(s, "params")) {
    h.params_where = loc(t->source());
    read_params(child(s, *t, "params"), h);
  }
}

void Loader::read_schedule(const Section& s, ScheduleConfig& sc) {
  sc.where = loc(s.table.source());
  check_keys(s, kScheduleKeys);

  // Over-long strings are refused before any check quotes them in a message.
  bool too_long = false;
  auto check_length = [&](const toml::node& node, const std::string& key) {
    const auto* str = node.as_string();
    if (str == nullptr || str->get().size() <= kMaxScheduleStringBytes) return;
    error(node.source(), prefix(s, key) + "string of " + std::to_string(str->get().size()) +
                             " bytes exceeds the limit of " +
                             std::to_string(kMaxScheduleStringBytes) + " bytes");
    too_long = true;
  };
  for (const auto& [key, value] : s.table) {
    check_length(value, std::string(key.str()));
    if (const toml::array* items = value.as_array()) {
      for (size_t i = 0; i < items->size(); ++i) {
        check_length(*items->get(i), std::string(key.str()) + "[" + std::to_string(i) + "]");
      }
    }
  }
  if (too_long) return;

  // The kind: exactly one of cron, time, every. A second one is blamed, in file order.
  std::vector<std::pair<std::string, const toml::node*>> kinds;
  for (const char* kind : {"cron", "time", "every"}) {
    if (const toml::node* node = s.table.get(kind)) kinds.emplace_back(kind, node);
  }
  std::stable_sort(kinds.begin(), kinds.end(), [](const auto& a, const auto& b) {
    const auto& ra = a.second->source().begin;
    const auto& rb = b.second->source().begin;
    return std::pair(ra.line, ra.column) < std::pair(rb.line, rb.column);
  });
  if (kinds.empty()) {
    error(s.table.source(), header(s) + " needs one of cron, time or every");
  }
  for (size_t i = 1; i < kinds.size(); ++i) {
    error(kinds[i].second->source(), prefix(s, kinds[i].first) + "a schedule has exactly one " +
                                         "of cron, time or every, and this one already has " +
                                         kinds[0].first);
  }
  const std::string kind = kinds.empty() ? "" : kinds[0].first;

  if (auto cron = read_string(s, "cron")) {
    if (std::string why = check_cron(*cron); !why.empty()) {
      error(s.table.get("cron")->source(), prefix(s, "cron") + why);
    } else if (kind == "cron") {
      sc.cron = *cron;
    }
  }
  if (const toml::node* node = s.table.get("time")) {
    std::string normalized;
    std::string why;
    if (const auto* t = node->as_time()) {
      // A TOML local time: time = 09:30:00.
      const toml::time& v = t->get();
      if (v.nanosecond != 0) {
        why = "fractional seconds are not supported";
      } else {
        normalized = two_digits(v.hour) + ":" + two_digits(v.minute);
        if (v.second != 0) normalized += ":" + two_digits(v.second);
      }
    } else if (check_type(s, "time", *node, toml::node_type::string)) {
      why = check_time_of_day(node->as_string()->get(), normalized);
    }
    if (!why.empty()) error(node->source(), prefix(s, "time") + why);
    if (why.empty() && !normalized.empty() && kind == "time") sc.time = normalized;
  }
  if (auto every = read_duration(s, "every", Positive::kYes); every && kind == "every") {
    sc.every = *every;
  }

  if (const toml::node* node = s.table.get("days")) {
    if (kind != "time" && !kind.empty()) {
      error(node->source(), prefix(s, "days") + "only applies to \"time\" schedules");
    } else if (check_type(s, "days", *node, toml::node_type::array)) {
      const toml::array& days = *node->as_array();
      for (size_t i = 0; i < days.size(); ++i) {
        const std::string p = prefix(s, "days[" + std::to_string(i) + "]");
        const toml::node& day = *days.get(i);
        if (!day.is_string()) {
          error(day.source(), p + "expected string, got " + node_type_name(day.type()));
          continue;
        }
        const std::string& d = day.as_string()->get();
        if (std::find(kWeekdays.begin(), kWeekdays.end(), d) == kWeekdays.end()) {
          error(day.source(), p + quote(d) + " is not a weekday" + suggestion(d, kWeekdays) +
                                  "; use " + join(kWeekdays));
          continue;
        }
        if (std::find(sc.days.begin(), sc.days.end(), d) == sc.days.end()) sc.days.push_back(d);
      }
    }
  }
  if (const toml::node* node = s.table.get("anchor")) {
    if (kind != "every" && !kind.empty()) {
      error(node->source(), prefix(s, "anchor") + "only applies to \"every\" schedules");
    } else if (const auto* dt = node->as_date_time()) {
      // A TOML offset date-time: anchor = 2024-01-01T00:00:00Z.
      if (!dt->get().offset) {
        error(node->source(),
              prefix(s, "anchor") + "needs a UTC offset, e.g. 2024-01-01T00:00:00Z");
      } else {
        std::ostringstream text;
        text << dt->get();
        sc.anchor = text.str();
      }
    } else if (check_type(s, "anchor", *node, toml::node_type::string)) {
      const std::string& text = node->as_string()->get();
      if (std::string why = check_rfc3339(text); !why.empty()) {
        error(node->source(), prefix(s, "anchor") + why);
      } else {
        sc.anchor = text;
      }
    }
  }
  if (auto tz = read_string(s, "tz", /*allow_empty=*/false)) {
    if (std::string why = check_time_zone(*tz); !why.empty()) {
      error(s.table.get("tz")->source(), prefix(s, "tz") + why);
    } else {
      sc.tz = *tz;
    }
  }
  if (auto v = read_duration(s, "jitter", Positive::kNo)) sc.jitter = *v;
  if (const toml::node* node = s.table.get("dst")) {
    if (kind == "every") {
      error(node->source(), prefix(s, "dst") +
                                "does not apply to \"every\" schedules, which are absolute "
                                "durations unaffected by daylight saving time");
    } else if (const toml::table* t = read_table(s, "dst")) {
      const Section ds = child(s, *t, "dst");
      check_keys(ds, kDstKeys);
      DstPolicy dst;
      if (auto v = read_enum(ds, "gap", {"shift", "skip"})) {
        dst.gap = *v == "skip" ? DstPolicy::Gap::kSkip : DstPolicy::Gap::kShift;
        sc.dst_gap_set = true;
      }
      if (auto v = read_enum(ds, "overlap", {"first", "last", "both"})) {
        dst.overlap = *v == "last"   ? DstPolicy::Overlap::kLast
                      : *v == "both" ? DstPolicy::Overlap::kBoth
                                     : DstPolicy::Overlap::kFirst;
        sc.dst_overlap_set = true;
      }
      sc.dst = dst;
    }
  }
}

void Loader::read_params(const Section& s, HelperConfig& h) {
  for (const auto& [key, value] : s.table) {
    h.raw_params.push_back(make_raw_param(std::string(key.str()), value, loc(value.source())));
  }
  std::stable_sort(h.raw_params.begin(), h.raw_params.end(), [](const auto& a, const auto& b) {
    return std::pair(a.where.line, a.where.column) < std::pair(b.where.line, b.where.column);
  });
}

void Loader::check_lane_refs(const Config& cfg) {
  Names lanes;
  for (const auto& lane : cfg.lanes) lanes.push_back(lane.name);
  for (const auto& ref : lane_refs_) {
    if (cfg.find_lane(ref.lane) != nullptr) continue;
    const std::string best = did_you_mean(ref.lane, lanes);
    error(ref.where, ref.prefix + "unknown lane " + quote(ref.lane) +
                         (best.empty() ? "; defined lanes: " + join(lanes)
                                       : " (did you mean " + quote(best) + "?)"));
  }
}

// ---------------------------------------------------------------------------------------------

void sort_from(std::vector<ConfigError>& errors, size_t first) {
  std::stable_sort(errors.begin() + static_cast<std::ptrdiff_t>(first), errors.end(),
                   [](const ConfigError& a, const ConfigError& b) {
                     return std::pair(a.where.line, a.where.column) <
                            std::pair(b.where.line, b.where.column);
                   });
}

// Refuses text over a limit of toml_limits.h before toml++ recurses into it.
bool within_limits(std::string_view text, const std::string& source_name,
                   std::vector<ConfigError>& errors) {
  std::optional<TomlLimitError> over = check_toml_limits(text);
  if (!over) return true;
  errors.push_back(
      ConfigError{SourceLoc{source_name, over->line, over->column}, std::move(over->message)});
  return false;
}

std::optional<Config> parse_impl(std::string_view text, const std::string& source_name,
                                 const std::filesystem::path& base_dir,
                                 std::vector<ConfigError>& errors) {
  const size_t first = errors.size();
  Config cfg;
  cfg.file = source_name;
  if (!within_limits(text, source_name, errors)) return std::nullopt;
  try {
    toml::table root = toml::parse(text, std::string_view(source_name));
    Loader(source_name, base_dir, errors).load(root, cfg);
  } catch (const toml::parse_error& e) {
    errors.push_back(
        ConfigError{SourceLoc{source_name, e.source().begin.line, e.source().begin.column},
                    std::string(e.description())});
  } catch (const std::exception& e) {
    errors.push_back(
        ConfigError{SourceLoc{source_name, 0, 0}, std::string("cannot read config: ") + e.what()});
  }
  sort_from(errors, first);
  if (errors.size() != first) return std::nullopt;
  return cfg;
}

}  // namespace

std::optional<Config> load_config(const std::filesystem::path& path,
                                  std::vector<ConfigError>& errors) {
  const std::string name = path.string();
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    errors.push_back(
        ConfigError{SourceLoc{name, 0, 0}, "cannot read config file: it is a directory"});
    return std::nullopt;
  }
  // A file over the size limit is refused before it is read into memory.
  if (const auto size = std::filesystem::file_size(path, ec); !ec && size > kMaxConfigBytes) {
    errors.push_back(ConfigError{
        SourceLoc{name, 0, 0}, "file of " + std::to_string(size) + " bytes exceeds the limit of " +
                                   std::to_string(kMaxConfigBytes) + " bytes (16 MiB)"});
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    errors.push_back(
        ConfigError{SourceLoc{name, 0, 0}, std::string("cannot read config file: ") +
                                               (err != 0 ? std::strerror(err) : "open failed")});
    return std::nullopt;
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    errors.push_back(ConfigError{SourceLoc{name, 0, 0}, "cannot read config file: read failed"});
    return std::nullopt;
  }
  return parse_impl(text, name, path.parent_path(), errors);
}

std::optional<Config> parse_config(std::string_view text, const std::string& source_name,
                                   std::vector<ConfigError>& errors) {
  return parse_impl(text, source_name, std::filesystem::path(source_name).parent_path(), errors);
}

std::optional<ScheduleConfig> parse_schedule(std::string_view inline_table,
                                             const std::string& source_name,
                                             std::vector<ConfigError>& errors) {
  const size_t first = errors.size();
  ScheduleConfig sc;
  const std::string text = "schedule = " + std::string(inline_table);
  if (!within_limits(text, source_name, errors)) return std::nullopt;
  try {
    toml::table root = toml::parse(text, std::string_view(source_name));
    Loader(source_name, std::filesystem::path(), errors).load_schedule(root, sc);
  } catch (const toml::parse_error& e) {
    errors.push_back(
        ConfigError{SourceLoc{source_name, e.source().begin.line, e.source().begin.column},
                    std::string(e.description())});
  }
  if (errors.size() != first) return std::nullopt;
  return sc;
}

StatusOr<std::optional<std::string>> read_redis_password(const RedisConfig& redis) {
  auto trim = [](std::string text) {
    auto space = [](unsigned char c) { return std::isspace(c) != 0; };
    while (!text.empty() && space(text.back())) text.pop_back();
    size_t begin = 0;
    while (begin < text.size() && space(text[begin])) ++begin;
    return text.substr(begin);
  };
  if (redis.password_file) {
    const std::string& file = *redis.password_file;
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      const int err = errno;
      return invalid_argument("[redis] password_file " + file + ": cannot be read (" +
                              (err != 0 ? std::strerror(err) : "open failed") + ")");
    }
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    text = trim(std::move(text));
    if (text.empty()) return invalid_argument("[redis] password_file " + file + " is empty");
    return std::optional<std::string>(std::move(text));
  }
  if (redis.password_env) {
    const char* value = std::getenv(redis.password_env->c_str());
    std::string text = trim(value == nullptr ? "" : value);
    if (text.empty()) {
      return invalid_argument("[redis] password_env: environment variable " + *redis.password_env +
                              " is not set or empty");
    }
    return std::optional<std::string>(std::move(text));
  }
  return std::optional<std::string>();
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  if (word.empty()) return "";
  const std::string w = lowercase(word);
  // A typo is plausible within 2 edits, or a third of the word for long words, but never when
  // the whole word would have to change.
  const size_t limit = std::min(std::max<size_t>(2, w.size() / 3), w.size() - 1);
  std::string best;
  size_t best_distance = limit + 1;
  for (const auto& candidate : candidates) {
    const size_t d = levenshtein(w, lowercase(candidate));
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

std::optional<ParamValue> convert_param(const RawParam& raw, const ParamSpec& spec,
                                        std::string& error) {
  using Kind = RawParam::Kind;
  const std::string p = "param " + quote(spec.name) + ": ";
  auto mismatch = [&](const char* expected) -> std::optional<ParamValue> {
    error = p + "expected " + expected + ", got " + raw_kind_name(raw);
    return std::nullopt;
  };
  switch (spec.type) {
    case ParamType::kString:
      if (raw.kind != Kind::kString) return mismatch("string");
      return ParamValue::string(std::get<std::string>(raw.value));
    case ParamType::kInt:
      if (raw.kind != Kind::kInt) return mismatch("int");
      return ParamValue::integer(std::get<int64_t>(raw.value));
    case ParamType::kDouble:
      if (raw.kind == Kind::kInt) {
        return ParamValue::number(static_cast<double>(std::get<int64_t>(raw.value)));
      }
      if (raw.kind != Kind::kDouble) return mismatch("double");
      return ParamValue::number(std::get<double>(raw.value));
    case ParamType::kBool:
      if (raw.kind != Kind::kBool) return mismatch("bool");
      return ParamValue::boolean(std::get<bool>(raw.value));
    case ParamType::kDuration: {
      if (raw.kind != Kind::kString) return mismatch("duration (a string such as \"90s\")");
      StatusOr<milliseconds> d = parse_duration(std::get<std::string>(raw.value));
      if (!d.is_ok()) {
        error = p + d.status().message();
        return std::nullopt;
      }
      return ParamValue::duration(*d);
    }
    case ParamType::kStringList:
      if (raw.kind != Kind::kStringList) return mismatch("string list");
      return ParamValue::list(std::get<StringList>(raw.value));
    case ParamType::kStringMap:
      if (raw.kind != Kind::kStringMap) return mismatch("string map");
      return ParamValue::map(std::get<StringMap>(raw.value));
  }
  error = p + "the executor declares an unknown param type " +
          std::to_string(static_cast<int32_t>(spec.type));
  return std::nullopt;
}

namespace {

// The default a plugin declared, as TOML text, converted per the spec.
std::optional<ParamValue> default_value(const ParamSpec& spec, std::string& error) {
  try {
    const std::string doc = "v = " + *spec.default_toml;
    if (auto over = check_toml_limits(doc)) {
      error = quote(*spec.default_toml) + " is not a TOML value: " + over->message;
      return std::nullopt;
    }
    toml::table t = toml::parse(std::string_view(doc), std::string_view("default"));
    const toml::node* node = t.get("v");
    if (node == nullptr) {
      error = "empty default";
      return std::nullopt;
    }
    return convert_param(make_raw_param(spec.name, *node, SourceLoc{}), spec, error);
  } catch (const toml::parse_error& e) {
    error = quote(*spec.default_toml) + " is not a TOML value: " + std::string(e.description());
  } catch (const std::exception& e) {
    error = e.what();
  }
  return std::nullopt;
}

void validate_helper(HelperConfig& h, const ExecutorLookup& lookup, const ExecutorNames& names,
                     std::vector<ConfigError>& errors) {
  const std::string head = "[helpers." + key_segment(h.name) + "] ";
  const ExecutorInfo* info = lookup ? lookup(h.executor) : nullptr;
  if (info == nullptr) {
    Names known = names ? names() : Names{};
    std::sort(known.begin(), known.end());
    const std::string best = did_you_mean(h.executor, known);
    std::string message = head + "executor: unknown executor " + quote(h.executor);
    if (!best.empty()) {
      message += " (did you mean " + quote(best) + "?)";
    } else if (known.empty()) {
      message += "; no executors are loaded";
    } else {
      message += "; loaded executors: " + join(known);
    }
    errors.push_back(ConfigError{h.executor_where, std::move(message)});
    return;
  }

  Names param_names;
  for (const auto& spec : info->params) param_names.push_back(spec.name);
  // Params some unknown param looks like a typo of: they are not reported missing as well.
  Names suggested;
  for (const auto& raw : h.raw_params) {
    if (info->find_param(raw.name) != nullptr) continue;
    const std::string best = did_you_mean(raw.name, param_names);
    if (!best.empty()) suggested.push_back(best);
    std::string message = head + "unknown param " + quote(raw.name) + " for executor " +
                          quote(info->name) +
                          (best.empty() ? "" : " (did you mean " + quote(best) + "?)");
    message += param_names.empty() ? "; it takes no params" : "; it takes " + join(param_names);
    errors.push_back(ConfigError{raw.where, std::move(message)});
  }

  h.params.clear();
  for (const auto& spec : info->params) {
    const auto raw = std::find_if(h.raw_params.begin(), h.raw_params.end(),
                                  [&](const RawParam& r) { return r.name == spec.name; });
    std::string error;
    if (raw != h.raw_params.end()) {
      if (auto value = convert_param(*raw, spec, error)) {
        h.params.emplace_back(spec.name, std::move(*value));
      } else {
        errors.push_back(ConfigError{raw->where, head + error});
      }
    } else if (spec.required) {
      if (std::find(suggested.begin(), suggested.end(), spec.name) != suggested.end()) continue;
      errors.push_back(ConfigError{h.params_where.line > 0 ? h.params_where : h.where,
                                   head + "missing required param " + quote(spec.name) +
                                       " for executor " + quote(info->name)});
    } else if (spec.default_toml) {
      if (auto value = default_value(spec, error)) {
        h.params.emplace_back(spec.name, std::move(*value));
      } else {
        errors.push_back(ConfigError{h.executor_where, head + "executor " + quote(info->name) +
                                                           " declares a bad default for param " +
                                                           quote(spec.name) + ": " + error});
      }
    }
  }
}

}  // namespace

void validate_helpers(Config& config, const ExecutorLookup& lookup, const ExecutorNames& names,
                      std::vector<ConfigError>& errors) {
  const size_t first = errors.size();
  for (auto& h : config.helpers) {
    if (h.executor.empty()) continue;  // already reported by phase 1
    try {
      validate_helper(h, lookup, names, errors);
    } catch (const std::exception& e) {
      errors.push_back(ConfigError{
          h.where, "[helpers." + key_segment(h.name) + "] cannot check params: " + e.what()});
    }
  }
  sort_from(errors, first);
}

// ---------------------------------------------------------------------------------------------
// Settings from the environment and the command line.

std::vector<ConfigOverride> environment_overrides(
    const std::function<const char*(const char*)>& get) {
  std::vector<ConfigOverride> out;
  for (const EnvSetting& e : kEnvSettings) {
    if (*e.key == '\0') continue;  // SCHEDD_CONFIG names the file; the CLI reads it
    if (const char* value = get(e.variable); value != nullptr) {
      out.push_back(ConfigOverride{e.key, value, e.variable});
    }
  }
  return out;
}

void apply_overrides(Config& cfg, const std::vector<ConfigOverride>& overrides,
                     const std::filesystem::path& cwd, std::vector<ConfigError>& errors) {
  auto absolute = [&](const std::string& p) {
    std::filesystem::path path(p);
    if (path.is_relative()) path = cwd / path;
    return path.lexically_normal();
  };
  for (const ConfigOverride& o : overrides) {
    auto fail = [&](const std::string& why) {
      errors.push_back(ConfigError{SourceLoc{o.source, 0, 0}, why});
    };
    auto note = [&](std::string replaced) {
      cfg.overridden.insert_or_assign(o.key, Config::Overridden{o.source, std::move(replaced)});
    };
    if (o.value.empty()) {
      fail("is set but empty (" + o.key + "); unset it to keep the config file's value");
      continue;
    }
    if (o.key == "api.listen") {
      if (std::string why = check_listen(o.value); !why.empty()) {
        fail(why);
        continue;
      }
      note(cfg.listen);
      cfg.listen = o.value;
    } else if (o.key == "daemon.store") {
      if (std::string why = check_store(o.value); !why.empty()) {
        fail(why);
        continue;
      }
      note(cfg.store);
      cfg.store = o.value;
    } else if (o.key == "daemon.data_dir") {
      note(cfg.data_dir.string());
      cfg.data_dir = absolute(o.value);
    } else if (o.key == "daemon.plugin_dir") {
      note(cfg.plugin_dir.string());
      cfg.plugin_dir = absolute(o.value);
    } else if (o.key == "daemon.log_level" || o.key == "daemon.log_format") {
      const bool level = o.key == "daemon.log_level";
      const Names allowed = level ? Names{"debug", "info", "warn", "error"} : Names{"text", "json"};
      if (std::find(allowed.begin(), allowed.end(), o.value) == allowed.end()) {
        fail(quote(o.value) + " is not one of " + join(allowed, true) +
             suggestion(o.value, allowed));
        continue;
      }
      std::string& field = level ? cfg.log_level : cfg.log_format;
      note(field);
      field = o.value;
    } else if (o.key == "api.token_file") {
      std::string replaced = cfg.token_file  ? *cfg.token_file
                             : cfg.token_env ? "token_env = " + quote(*cfg.token_env)
                                             : "unset";
      note(std::move(replaced));
      cfg.token_file = absolute(o.value).string();
      cfg.token_env.reset();
    } else {
      // A programming error in a caller, reported rather than asserted.
      fail("no such setting " + quote(o.key));
    }
  }
  resolve_store_path(cfg);
}

}  // namespace schedd
