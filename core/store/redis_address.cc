// parse_redis_url and RedisAddress::to_string (redis_store.h), apart from the store so that
// the config can check a URL without a connection.
#include <fmt/format.h>

#include <charconv>

#include "core/store/redis_store.h"

namespace schedd {

std::string RedisAddress::to_string() const {
  return fmt::format("redis://{}:{}/{}", host, port, db);
}

namespace {

template <typename T>
bool parse_number(std::string_view text, T& out) {
  if (text.empty()) return false;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && p == text.data() + text.size();
}

}  // namespace

StatusOr<RedisAddress> parse_redis_url(std::string_view url) {
  constexpr std::string_view kScheme = "redis://";
  auto bad = [&](std::string_view why) {
    return invalid_argument(
        fmt::format("store \"{}\": {} (expected redis://HOST[:PORT][/DB])", url, why));
  };
  if (!url.starts_with(kScheme)) return bad("not a redis:// URL");
  std::string_view rest = url.substr(kScheme.size());
  RedisAddress a;
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view auth = rest.substr(0, at);
    rest = rest.substr(at + 1);
    // redis://:PASSWORD@host or redis://user:PASSWORD@host (the user is ignored: AUTH default)
    auto colon = auth.find(':');
    a.password = std::string(colon == std::string_view::npos ? auth : auth.substr(colon + 1));
  }
  std::string_view hostport = rest;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    hostport = rest.substr(0, slash);
    std::string_view db = rest.substr(slash + 1);
    if (!db.empty() && (!parse_number(db, a.db) || a.db < 0)) {
      return bad(fmt::format("database \"{}\" is not a number", db));
    }
  }
  std::string_view host = hostport;
  if (auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
    host = hostport.substr(0, colon);
    std::string_view port = hostport.substr(colon + 1);
    if (!parse_number(port, a.port) || a.port <= 0 || a.port > 65535) {
      return bad(fmt::format("port \"{}\" is not a port number", port));
    }
  }
  if (host.empty()) return bad("no host");
  a.host = std::string(host);
  return a;
}

}  // namespace schedd
