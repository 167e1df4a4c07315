#include "core/api/web_routes.h"

#include <algorithm>

#include "core/api/web_assets.h"

namespace schedd::web {

const char* const kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";

namespace {

const Asset* find(std::string_view path) {
  auto all = assets();
  auto it = std::lower_bound(all.begin(), all.end(), path,
                             [](const Asset& a, std::string_view p) { return a.path < p; });
  if (it == all.end() || it->path != path) return nullptr;
  return &*it;
}

HttpResponse plain(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

void secure(HttpResponse& r) {
  r.headers.emplace_back("Content-Security-Policy", kContentSecurityPolicy);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  // Small files of this binary's version: revalidated on each load, never stale.
  r.headers.emplace_back("Cache-Control", "no-cache");
}

}  // namespace

std::optional<HttpResponse> route(const std::string& method,
                                  const std::vector<std::string>& segments) {
  std::string path;
  if (segments.empty()) {
    path = "/index.html";
  } else if (segments.front() == "ui" && segments.size() >= 2) {
    for (std::size_t i = 1; i < segments.size(); ++i) {
      if (segments[i].empty() || segments[i] == "." || segments[i] == "..") {
        path.clear();
        break;
      }
      path += "/" + segments[i];
    }
    if (path.empty()) {
      HttpResponse r = plain(404, "not found\n");
      secure(r);
      return r;
    }
  } else {
    return std::nullopt;
  }
  HttpResponse r;
  if (method != "GET" && method != "HEAD") {
    r = plain(405, method + " is not allowed here; use GET or HEAD\n");
    r.headers.emplace_back("Allow", "GET, HEAD");
  } else if (const Asset* a = find(path)) {
    r.content_type = a->content_type;
    r.body = std::string(a->body());
  } else {
    r = plain(404, "no such dashboard file: /ui" + path + "\n");
  }
  secure(r);
  return r;
}

}  // namespace schedd::web
