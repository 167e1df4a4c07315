#include "core/daemon/doctor.h"

#include <date/tz.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/timex.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "core/api/api.h"
#include "core/common/clock.h"
#include "core/schedule/schedule.h"
#include "core/store/redis_client.h"
#include "core/store/redis_store.h"
#include "core/store/sqlite_store.h"

namespace schedd {
namespace {

namespace fs = std::filesystem;
using Level = DoctorLine::Level;

DoctorLine line(Level level, std::string check, std::string detail) {
  return DoctorLine{level, std::move(check), std::move(detail), {}};
}

std::string bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

// The folder itself when it exists, else its nearest existing ancestor (where it would be
// created).
fs::path existing_ancestor(fs::path dir) {
  std::error_code ec;
  dir = dir.lexically_normal();
  while (!dir.empty() && !fs::exists(dir, ec)) {
    if (dir == dir.parent_path()) break;
    dir = dir.parent_path();
  }
  return dir.empty() ? fs::path(".") : dir;
}

// Whether a file can be created in `dir`, found by creating one and removing it: access(2)
// says yes to root on a read-only file system. Empty when it can, else why not.
std::string write_test(const fs::path& dir) {
  std::string templ = (dir / ".schedd-doctor-XXXXXX").string();
  int fd = ::mkstemp(templ.data());
  if (fd < 0) return std::strerror(errno);
  ::close(fd);
  ::unlink(templ.c_str());
  return "";
}

std::optional<uint64_t> free_bytes(const fs::path& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) return std::nullopt;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

// Below this much free space the store line warns; below kFailFree it fails.
constexpr uint64_t kWarnFree = uint64_t{1} << 30;
constexpr uint64_t kFailFree = uint64_t{16} << 20;

DoctorLine check_config(const DoctorInput& in) {
  if (in.config == nullptr || !in.config_errors.empty()) {
    const std::size_t n = in.config_errors.size();
    DoctorLine l =
        line(Level::kFail, "config",
             in.config_path + ": " + std::to_string(n) + (n == 1 ? " error" : " errors") +
                 (n > 0 ? ": " + in.config_errors.front() : ""));
    if (n > 1) l.more.assign(in.config_errors.begin() + 1, in.config_errors.end());
    return l;
  }
  const Config& cfg = *in.config;
  std::string detail = in.config_path + ": " + std::to_string(cfg.helpers.size()) + " helpers, " +
                       std::to_string(cfg.lanes.size()) + " lanes";
  std::string over;
  for (const auto& [key, o] : cfg.overridden) {
    over += (over.empty() ? "" : ", ") + key + " from " + o.source;
  }
  if (!over.empty()) detail += "; " + over;
  if (!in.helper_errors.empty()) {
    DoctorLine l = line(Level::kFail, "config",
                        detail + "; " + std::to_string(in.helper_errors.size()) +
                            " helper errors: " + in.helper_errors.front());
    l.more.assign(in.helper_errors.begin() + 1, in.helper_errors.end());
    return l;
  }
  return line(Level::kOk, "config", detail);
}

DoctorLine check_plugins(const DoctorInput& in) {
  if (in.config == nullptr || in.plugins == nullptr) {
    return line(Level::kSkip, "plugins", "no config");
  }
  const std::string dir = in.config->plugin_dir.string();
  if (!in.plugins_status.is_ok()) {
    DoctorLine l = line(Level::kFail, "plugins", in.plugins_status.message());
    for (const auto& e : in.plugin_errors) {
      if (e != in.plugins_status.message()) l.more.push_back(e);
    }
    return l;
  }
  std::string list;
  for (const auto& p : in.plugins->plugins()) {
    list += (list.empty() ? "" : ", ") + p.name + " " + p.version;
  }
  const std::size_t n = in.plugins->plugins().size();
  std::string detail =
      std::to_string(n) + " loaded from " + dir + (list.empty() ? "" : ": ") + list;
  if (!in.plugin_errors.empty()) {
    DoctorLine l = line(Level::kWarn, "plugins",
                        detail + "; " + std::to_string(in.plugin_errors.size()) +
                            " skipped (on_plugin_error = \"skip\"): " + in.plugin_errors.front());
    l.more.assign(in.plugin_errors.begin() + 1, in.plugin_errors.end());
    return l;
  }
  if (n == 0) return line(Level::kWarn, "plugins", "none in " + dir);
  return line(Level::kOk, "plugins", detail);
}

// Who holds PATH.lock, if a daemon does: "pid N", or nullopt when nobody does.
std::optional<std::string> lock_holder(const fs::path& db) {
  const std::string lock_path = db.string() + ".lock";
  int fd = ::open(lock_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::optional<std::string> holder;
  if (::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
    char buf[32] = {};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    std::string pid(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    holder = "pid " + (pid.empty() ? std::string("unknown") : pid);
  }
  ::close(fd);  // releases a lock taken by the test
  return holder;
}

DoctorLine check_sqlite(const Config& cfg) {
  const fs::path& db = cfg.store_path;
  const std::string name = "sqlite " + db.string();
  std::error_code ec;
  const fs::path dir = db.parent_path().empty() ? fs::path(".") : db.parent_path();
  const fs::path where = existing_ancestor(dir);
  std::string free_text;
  Level level = Level::kOk;
  if (auto free = free_bytes(where)) {
    free_text = bytes(*free) + " free on " + where.string();
    if (*free < kFailFree) {
      level = Level::kFail;
      free_text += " (too little to run)";
    } else if (*free < kWarnFree) {
      level = Level::kWarn;
      free_text += " (low)";
    }
  }
  if (!fs::exists(db, ec)) {
    return line(level, "store",
                name + ": no file yet (created on start" +
                    (where == dir ? "" : ", with its folder under " + where.string()) + "); " +
                    free_text);
  }
  if (fs::is_directory(db, ec)) return line(Level::kFail, "store", name + ": is a directory");
  // A running daemon holds the file in SQLite's exclusive locking mode, so no other process
  // can read it (docs/operations.md "Backup"); it checked the file when it opened it.
  if (auto holder = lock_holder(db)) {
    std::string detail =
        name + ": in use by a running schedd (" + *holder + "), not opened while it runs";
    const auto size = fs::file_size(db, ec);
    if (!ec) detail += ", " + bytes(size);
    return line(level, "store", detail + "; " + free_text);
  }
  sqlite3* h = nullptr;
  const std::string uri = "file:" + db.string() + "?mode=ro";
  int rc = sqlite3_open_v2(uri.c_str(), &h, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr);
  int schema = -1;
  std::string why;
  if (rc == SQLITE_OK) {
    sqlite3_busy_timeout(h, 2000);
    sqlite3_stmt* st = nullptr;
    rc = sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &st, nullptr);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) schema = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    // user_version reads 0 from any file; a real check that it is a schedd database.
    if (schema > 0) {
      rc = sqlite3_prepare_v2(h, "SELECT count(*) FROM executions", -1, &st, nullptr);
      if (rc != SQLITE_OK) why = sqlite3_errmsg(h);
      sqlite3_finalize(st);
    }
  }
  if (rc != SQLITE_OK && why.empty()) why = h != nullptr ? sqlite3_errmsg(h) : sqlite3_errstr(rc);
  sqlite3_close(h);
  if (!why.empty() || schema < 0) {
    return line(Level::kFail, "store", name + ": cannot read it: " + why);
  }
  std::string detail = name + ": ";
  if (schema == 0) {
    detail += "an empty file (schema 0)";
  } else if (schema > SqliteStore::kSchemaVersion) {
    return line(Level::kFail, "store",
                name + ": schema " + std::to_string(schema) + ", newer than this schedd's " +
                    std::to_string(SqliteStore::kSchemaVersion) + " (written by a newer schedd)");
  } else {
    detail += "schema " + std::to_string(schema);
    if (schema < SqliteStore::kSchemaVersion) {
      detail += " (migrated to " + std::to_string(SqliteStore::kSchemaVersion) + " on start)";
    }
  }
  const auto size = fs::file_size(db, ec);
  if (!ec) detail += ", " + bytes(size);
  detail += "; " + free_text;
  return line(level, "store", detail);
}

struct RedisContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};

// "field:value" from an INFO reply; empty when absent.
std::string info_field(const std::string& info, const std::string& field) {
  auto pos = info.find(field + ":");
  if (pos == std::string::npos) return "";
  pos += field.size() + 1;
  auto end = info.find_first_of("\r\n", pos);
  return info.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
}

std::string command_text(redisContext* c, const char* command) {
  auto* r = static_cast<redisReply*>(redisCommand(c, command));
  if (r == nullptr) return "";
  std::string out;
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) out.assign(r->str, r->len);
  if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->type == REDIS_REPLY_STRING)
    out.assign(r->element[1]->str, r->element[1]->len);  // CONFIG GET name -> [name, value]
  freeReplyObject(r);
  return out;
}

// The store and redis lines of a Redis store.
std::pair<DoctorLine, DoctorLine> check_redis(const Config& cfg) {
  StatusOr<RedisAddress> address = parse_redis_url(cfg.store);
  if (!address.is_ok()) {
    return {line(Level::kFail, "store", address.status().message()),
            line(Level::kSkip, "redis", "no address")};
  }
  const std::string name = address->to_string();
  RedisConnectOptions o;
  o.address = *address;
  o.password = address->password;
  auto password = read_redis_password(cfg.redis);
  if (!password.is_ok()) {
    return {line(Level::kFail, "store", name + ": " + password.status().message()),
            line(Level::kSkip, "redis", "no password")};
  }
  if (password->has_value()) o.password = **password;
  o.connect_timeout = cfg.redis.connect_timeout;
  o.command_timeout = cfg.redis.command_timeout;
  auto connected = redis_connect(o);
  if (!connected.is_ok()) {
    return {line(Level::kFail, "store", name + ": " + connected.status().message()),
            line(Level::kFail, "redis", name + ": not reachable")};
  }
  std::unique_ptr<redisContext, RedisContextFree> c(*connected);
  const std::string server = command_text(c.get(), "INFO server");
  const std::string persistence = command_text(c.get(), "INFO persistence");
  const std::string version = info_field(server, "redis_version");
  const std::string aof = info_field(persistence, "aof_enabled");
  // CONFIG may be renamed away on managed Redis; the fsync policy is then unknown.
  const std::string fsync = command_text(c.get(), "CONFIG GET appendfsync");
  DoctorLine store = line(Level::kOk, "store", name + " (namespace " + cfg.redis.ns + ")");
  std::string detail = name + ": reachable, Redis " + (version.empty() ? "?" : version);
  Level level = Level::kOk;
  if (!version.empty() && std::atoi(version.c_str()) < 6) {
    level = Level::kFail;
    detail += " (too old: 6.2 or newer needed)";
  }
  if (aof == "1") {
    detail += ", AOF on" + (fsync.empty() ? "" : " (appendfsync " + fsync + ")");
    if (fsync != "always" && level == Level::kOk) {
      level = Level::kWarn;
      detail += "; a Redis machine failure may lose up to a second of acknowledged work";
    }
  } else {
    detail += ", AOF off";
    if (level == Level::kOk) level = Level::kWarn;
    detail += "; a Redis restart loses queued work (docs/redis.md \"Durability\")";
  }
  return {store, line(level, "redis", detail)};
}

bool is_loopback(const sockaddr* a) {
  if (a->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(a);
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (a->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(a);
    return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
  }
  return false;
}

DoctorLine check_listen(const Config& cfg) {
  const std::string& listen = cfg.listen;
  const std::size_t colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  std::string token_note;
  auto api = api::api_options_from_config(cfg);
  if (!api.is_ok()) return line(Level::kFail, "listen", listen + ": " + api.status().message());
  const bool token = api->token.has_value();
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return line(Level::kFail, "listen", listen + ": cannot resolve: " + gai_strerror(rc));
  }
  std::string why;
  bool loopback = false;
  bool bound = false;
  for (addrinfo* a = res; a != nullptr && !bound; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      why = std::strerror(errno);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // as the API server does
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 1) == 0) {
      bound = true;
      loopback = is_loopback(a->ai_addr);
    } else {
      why = std::strerror(errno);
    }
    ::close(fd);
  }
  ::freeaddrinfo(res);
  if (!bound) {
    return line(
        Level::kFail, "listen",
        listen + ": cannot listen: " + why +
            (why == std::strerror(EADDRINUSE) ? " (another schedd, or another program)" : ""));
  }
  if (!loopback && !token) {
    return line(Level::kFail, "listen",
                listen +
                    ": not a loopback address, and [api] has no token: the daemon refuses "
                    "to start (set token_file or token_env)");
  }
  std::string detail = listen + (port == "0" ? ": a free port is picked at start" : ": free");
  detail += token ? ", bearer token set" : ", no token (loopback only)";
  return line(Level::kOk, "listen", detail);
}

// The system zone database's release ("2025b"): date/tz reads it from the database itself,
// and on a system database that has no version file, from the first line of tzdata.zi
// ("# version 2025b"), which Debian's tzdata ships.
std::string tzdata_version(const date::tzdb& db) {
  if (!db.version.empty() && db.version != "unknown") return db.version;
  const char* dir = std::getenv("TZDIR");
  std::ifstream in(fs::path(dir != nullptr && *dir != '\0' ? dir : "/usr/share/zoneinfo") /
                   "tzdata.zi");
  std::string first;
  if (std::getline(in, first) && first.starts_with("# version ")) return first.substr(10);
  return "";
}

DoctorLine check_tzdata(const Config* cfg) {
  try {
    const date::tzdb& db = date::get_tzdb();
    const std::string version = tzdata_version(db);
    std::string detail = "tzdata " +
                         (version.empty() ? std::string("of unknown version") : version) + ", " +
                         std::to_string(db.zones.size()) + " zones";
    std::string zone = cfg != nullptr ? cfg->timezone : "";
    if (zone.empty()) {
      const date::time_zone* local = local_zone();
      detail += "; daemon zone " + (local != nullptr ? std::string(local->name()) : "?") +
                " (the machine's)";
    } else {
      auto z = find_zone(zone);
      if (!z.is_ok()) return line(Level::kFail, "tzdata", detail + "; " + z.status().message());
      detail += "; daemon zone " + zone;
    }
    return line(version.empty() ? Level::kWarn : Level::kOk, "tzdata", detail);
  } catch (const std::exception& e) {
    return line(Level::kFail, "tzdata",
                std::string("cannot load the time zone database: ") + e.what());
  }
}

DoctorLine check_clock() {
  const TimePoint now = SystemClock::instance().now();
  const std::string text = format_rfc3339(now, date::locate_zone("UTC"));
  // A system clock before this build was made is certainly wrong (a board without an RTC
  // that booted at 1970): every schedule would be off.
  const auto year = static_cast<int>(date::year_month_day(date::floor<date::days>(now)).year());
  const int built = std::atoi(&__DATE__[7]);
  if (year < built) {
    return line(Level::kFail, "clock",
                "system clock reads " + text + ", before this schedd was built (" +
                    std::to_string(built) + ")");
  }
  // The kernel's NTP state, as timedatectl reads it: adjtimex() with no change requested.
  timex tx{};
  const int state = ::adjtimex(&tx);
  if (state < 0)
    return line(Level::kWarn, "clock", text + "; NTP state unknown: " + std::strerror(errno));
  if (state == TIME_ERROR || (tx.status & STA_UNSYNC) != 0) {
    return line(Level::kWarn, "clock",
                text +
                    "; not synchronized (the kernel reports no NTP sync): schedules follow "
                    "this clock");
  }
  return line(
      Level::kOk, "clock",
      text + "; NTP synchronized, estimated error " + std::to_string(tx.esterror / 1000) + " ms");
}

DoctorLine check_permissions(const Config& cfg) {
  std::vector<std::string> ok;
  std::vector<std::string> bad;
  Level level = Level::kOk;
  if (cfg.store.starts_with("sqlite:")) {
    const fs::path dir =
        cfg.store_path.parent_path().empty() ? fs::path(".") : cfg.store_path.parent_path();
    const fs::path where = existing_ancestor(dir);
    std::error_code ec;
    if (!fs::is_directory(where, ec)) {
      bad.push_back("state dir " + dir.string() + ": " + where.string() + " is not a directory");
    } else if (std::string why = write_test(where); !why.empty()) {
      bad.push_back(
          "state dir " + dir.string() + " not writable" +
          (where == dir ? "" : " (nor " + where.string() + ", where it would be created)") + ": " +
          why);
    } else if (fs::exists(cfg.store_path, ec) &&
               ::access(cfg.store_path.c_str(), R_OK | W_OK) != 0) {
      bad.push_back("store file " + cfg.store_path.string() + ": " + std::strerror(errno));
    } else {
      ok.push_back("state dir " + dir.string() + " writable");
    }
  }
  if (::access(cfg.plugin_dir.c_str(), R_OK | X_OK) != 0) {
    bad.push_back("plugin dir " + cfg.plugin_dir.string() +
                  " not readable: " + std::strerror(errno));
  } else {
    ok.push_back("plugin dir readable");
  }
  for (const auto* file : {&cfg.token_file, &cfg.read_token_file}) {
    if (*file && ::access((*file)->c_str(), R_OK) != 0) {
      bad.push_back("token file " + **file + " not readable: " + std::strerror(errno));
    }
  }
  std::string detail;
  for (const auto& b : bad) detail += (detail.empty() ? "" : "; ") + b;
  for (const auto& o : ok) detail += (detail.empty() ? "" : ", ") + o;
  if (!bad.empty()) level = Level::kFail;
  if (::geteuid() == 0) {
    detail += "; running as root: plugins run as root too unless [plugins.NAME] user is set";
    if (level == Level::kOk) level = Level::kWarn;
  } else {
    detail += "; running as uid " + std::to_string(::geteuid());
  }
  return line(level, "permissions", detail);
}

}  // namespace

std::vector<DoctorLine> run_doctor(const DoctorInput& in) {
  std::vector<DoctorLine> out;
  out.push_back(check_config(in));
  out.push_back(check_plugins(in));
  const Config* cfg = in.config;
  if (cfg == nullptr) {
    out.push_back(line(Level::kSkip, "store", "no config"));
    out.push_back(line(Level::kSkip, "redis", "no config"));
    out.push_back(line(Level::kSkip, "listen", "no config"));
  } else {
    if (cfg->store.starts_with("redis://")) {
      auto [store, redis] = check_redis(*cfg);
      out.push_back(std::move(store));
      out.push_back(std::move(redis));
    } else {
      if (cfg->store.starts_with("sqlite:")) {
        out.push_back(check_sqlite(*cfg));
      } else {
        out.push_back(line(Level::kWarn, "store", cfg->store + ": nothing survives a restart"));
      }
      out.push_back(line(Level::kSkip, "redis", "the store is not Redis"));
    }
    out.push_back(check_listen(*cfg));
  }
  out.push_back(check_tzdata(cfg));
  out.push_back(check_clock());
  if (cfg == nullptr) {
    out.push_back(line(Level::kSkip, "permissions", "no config"));
  } else {
    out.push_back(check_permissions(*cfg));
  }
  return out;
}

std::string format_doctor_line(const DoctorLine& l) {
  const char* level = "ok";
  switch (l.level) {
    case Level::kOk:
      break;
    case Level::kWarn:
      level = "warn";
      break;
    case Level::kFail:
      level = "FAIL";
      break;
    case Level::kSkip:
      level = "skip";
      break;
  }
  std::string out = fmt::format("{:<5} {:<12} {}\n", level, l.check, l.detail);
  for (const auto& m : l.more) out += "                   " + m + "\n";
  return out;
}

}  // namespace schedd
