// The dashboard's files (web/ in the source tree), compiled into the binary at build time by
// cmake/embed_web.cmake, so that an installed daemon serves them with no files beside it.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

namespace schedd::web {

struct Asset {
  const char* path;          // "/index.html", "/app.js"
  const char* content_type;  // "text/javascript; charset=utf-8"
  const unsigned char* data;
  std::size_t size;

  std::string_view body() const { return {reinterpret_cast<const char*>(data), size}; }
};

// Every embedded file, sorted by path.
std::span<const Asset> assets();

}  // namespace schedd::web
