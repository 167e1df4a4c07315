// Limits checked on a TOML document's text before toml++ parses it. toml++ 3.3 builds and
// frees nested tables recursively, so 50,000 dotted segments in one table header or key
// overflow the stack (SIGSEGV), and it has undefined behaviour on some invalid UTF-8. The
// check here is one linear pass that never recurses: it understands enough of TOML (comments,
// the four string forms, keys, table headers, arrays and inline tables) that text inside a
// string or comment never counts, and it is lenient elsewhere, leaving syntax errors to
// toml++. The limits are documented in docs/configuration.md ("Limits").
// Reentrant; no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace schedd {

// The largest config file read. Default: 16 MiB.
inline constexpr std::size_t kMaxConfigBytes = std::size_t{16} << 20;
// How deep tables, arrays and inline tables may nest: the dotted segments of a table header
// plus those of a key under it plus each array and inline table the value opens
// ([a.b] then c.d = [[1]] is 6 deep).
inline constexpr std::size_t kMaxConfigNesting = 64;
// The longest key (one segment of a dotted key, bare or quoted), in bytes.
inline constexpr std::size_t kMaxConfigKeyBytes = 1024;

struct TomlLimitError {
  uint32_t line = 0;  // 1-based; 0 when the error is about the whole text
  uint32_t column = 0;
  std::string message;
};

// Returns the first limit `text` breaks (size, invalid UTF-8, nesting depth, key length),
// or nothing when toml++ may parse it.
std::optional<TomlLimitError> check_toml_limits(std::string_view text);

}  // namespace schedd
