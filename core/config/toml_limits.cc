#include "core/config/toml_limits.h"

#include <vector>

namespace schedd {
namespace {

// Line and column (1-based, columns in code points as toml++ counts them) of byte `offset`.
std::pair<uint32_t, uint32_t> position(std::string_view text, std::size_t offset) {
  uint32_t line = 1;
  uint32_t column = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      ++line;
      column = 1;
    } else if ((c & 0xC0) != 0x80) {
      ++column;
    }
  }
  return {line, column};
}

// The offset of the first byte that is not part of well-formed UTF-8 (no overlong forms, no
// surrogates, nothing above U+10FFFF), or npos.
std::size_t invalid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return i;
    }
    if (i + len > n) return i;
    if (s[i + 1] < lo || s[i + 1] > hi) return i;
    for (std::size_t k = 2; k < len; ++k) {
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

bool is_bare_key_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// One pass over the text with an explicit stack of open arrays and inline tables; see the
// header for what it understands. Not thread-safe; one per call.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : s_(text) {}

  std::optional<TomlLimitError> run() {
    while (!eof() && !error_) {
      skip_space_and_comments(/*newlines=*/true);
      if (eof()) break;
      if (cur() == '[') {
        header();
      } else {
        keyval();
      }
    }
    return error_;
  }

 private:
  // An array or inline table being read, and the depth its elements or keys start from.
  struct Open {
    char bracket;
    std::size_t depth;
  };

  bool eof() const { return i_ >= s_.size(); }
  char cur() const { return s_[i_]; }
  char at(std::size_t k) const { return i_ + k < s_.size() ? s_[i_ + k] : '\0'; }

  void fail(std::size_t offset, std::string message) {
    auto [line, column] = position(s_, offset);
    error_ = TomlLimitError{line, column, std::move(message)};
  }

  // Fails when `depth`, reached at `offset`, is over the limit. A key or header counts all
  // its segments first, so its whole depth is named; brackets stop at the first one over, so
  // the stack of open ones never grows past the limit.
  void reach(std::size_t depth, std::size_t offset) {
    if (depth <= kMaxConfigNesting || error_) return;
    fail(offset, "nesting depth " + std::to_string(depth) + " exceeds the limit of " +
                     std::to_string(kMaxConfigNesting));
  }

  void skip_blank() {
    while (!eof() && (cur() == ' ' || cur() == '\t')) ++i_;
  }

  void skip_to_eol() {
    while (!eof() && cur() != '\n') ++i_;
  }

  // Blanks and comments, and newlines too when `newlines`.
  void skip_space_and_comments(bool newlines) {
    while (!eof()) {
      const char c = cur();
      if (c == ' ' || c == '\t' || c == '\r' || (newlines && c == '\n')) {
        ++i_;
      } else if (c == '#') {
        skip_to_eol();
      } else {
        return;
      }
    }
  }

  // At a quote: skips the string (basic, literal, or either multi-line form). An unterminated
  // single-line string ends at the newline, as toml++ reports it there.
  void skip_string() {
    const char q = cur();
    if (at(1) == q && at(2) == q) {
      i_ += 3;
      while (!eof()) {
        if (q == '"' && cur() == '\\') {
          i_ += 2;
        } else if (cur() == q && at(1) == q && at(2) == q) {
          i_ += 3;
          // Up to two more quotes belong to the content: """a"""" is a" then the end.
          for (int k = 0; k < 2 && !eof() && cur() == q; ++k) ++i_;
          return;
        } else {
          ++i_;
        }
      }
      i_ = s_.size();
      return;
    }
    ++i_;
    while (!eof() && cur() != '\n') {
      if (q == '"' && cur() == '\\') {
        i_ += 2;
        continue;
      }
      if (cur() == q) {
        ++i_;
        return;
      }
      ++i_;
    }
  }

  // Reads a dotted key (bare or quoted segments, blanks around dots) and returns how many
  // segments it has: 0 when no key starts here. A segment longer than the limit fails.
  std::size_t read_key() {
    std::size_t segments = 0;
    while (!eof()) {
      const std::size_t begin = i_;
      std::size_t length = 0;
      if (cur() == '"' || cur() == '\'') {
        skip_string();
        length = i_ - begin >= 2 ? i_ - begin - 2 : 0;
      } else if (is_bare_key_char(cur())) {
        while (!eof() && is_bare_key_char(cur())) ++i_;
        length = i_ - begin;
      } else {
        break;
      }
      if (length > kMaxConfigKeyBytes) {
        fail(begin, "key of " + std::to_string(length) + " bytes exceeds the limit of " +
                        std::to_string(kMaxConfigKeyBytes) + " bytes");
        return segments;
      }
      ++segments;
      skip_blank();
      if (eof() || cur() != '.') break;
      ++i_;
      skip_blank();
    }
    return segments;
  }

  // [a.b.c] or [[a.b.c]]: sets the depth keys under it start from.
  void header() {
    const std::size_t begin = i_;
    ++i_;
    if (!eof() && cur() == '[') ++i_;
    skip_blank();
    const std::size_t segments = read_key();
    if (error_) return;
    reach(segments, begin);
    if (error_) return;
    table_depth_ = segments;
    skip_to_eol();  // the closing brackets and a comment; anything else is toml++'s to report
  }

  // key = value at the top level (under the current table header).
  void keyval() {
    const std::size_t begin = i_;
    const std::size_t segments = read_key();
    if (error_) return;
    if (segments == 0) {
      skip_to_eol();  // not a key: a syntax error for toml++
      return;
    }
    const std::size_t depth = table_depth_ + segments;
    reach(depth, begin);
    if (error_) return;
    skip_blank();
    if (eof() || cur() != '=') {
      skip_to_eol();
      return;
    }
    ++i_;
    value(depth);
  }

  // A value owned by a key at `depth`, including any arrays and inline tables it opens, up to
  // the end of the line it ends on.
  void value(std::size_t depth) {
    std::vector<Open> open;
    std::size_t key_depth = depth;  // the key inside the innermost inline table
    enum class Want { kValue, kAfterValue, kKey } want = Want::kValue;
    while (!error_) {
      const bool in_array = !open.empty() && open.back().bracket == '[';
      const bool in_table = !open.empty() && open.back().bracket == '{';
      const bool nested = !open.empty();
      // Arrays span lines; inline tables are lenient here too, so a newline never loses a
      // bracket that is still open.
      skip_space_and_comments(/*newlines=*/nested);
      if (eof()) return;
      const char c = cur();
      if (!nested && want == Want::kAfterValue) {
        skip_to_eol();  // a comment was skipped; anything else is toml++'s to report
        return;
      }
      if (!nested && c == '\n') return;  // a key with no value: toml++ reports it
      if ((c == ']' && in_array) || (c == '}' && in_table)) {
        ++i_;
        open.pop_back();
        want = Want::kAfterValue;
        continue;
      }
      if (c == ',' && nested) {
        ++i_;
        want = in_table ? Want::kKey : Want::kValue;
        continue;
      }
      if (want == Want::kKey) {
        const std::size_t begin = i_;
        const std::size_t segments = read_key();
        if (error_) return;
        if (segments > 0) {
          key_depth = open.back().depth + segments;
          reach(key_depth, begin);
          if (error_) return;
          skip_blank();
          if (!eof() && cur() == '=') ++i_;
          want = Want::kValue;
          continue;
        }
        want = Want::kValue;  // not a key: read on as a value so brackets still count
      }
      // The depth of whatever owns this value: the top key, the array, or the inline
      // table's key. An array's elements are one deeper than its owner; an inline table's
      // keys start from its owner (a = {b = 1} is as deep as a.b = 1).
      const std::size_t owner = !nested ? depth : in_array ? open.back().depth : key_depth;
      if (c == '[' || c == '{') {
        const std::size_t inner = c == '[' ? owner + 1 : owner;
        reach(inner, i_);
        if (error_) return;
        ++i_;
        open.push_back(Open{c, inner});
        want = c == '[' ? Want::kValue : Want::kKey;
      } else if (c == '"' || c == '\'') {
        skip_string();
        want = Want::kAfterValue;
      } else {
        // A number, bool, date or stray character: up to the next delimiter.
        const std::size_t begin = i_;
        while (!eof()) {
          const char d = cur();
          if (d == ' ' || d == '\t' || d == '\r' || d == '\n' || d == '#' || d == ',' || d == '[' ||
              d == ']' || d == '{' || d == '}' || d == '"' || d == '\'') {
            break;
          }
          ++i_;
        }
        if (i_ == begin) ++i_;  // a bracket that closes nothing open
        want = Want::kAfterValue;
      }
    }
  }

  std::string_view s_;
  std::size_t i_ = 0;
  std::size_t table_depth_ = 0;
  std::optional<TomlLimitError> error_;
};

}  // namespace

std::optional<TomlLimitError> check_toml_limits(std::string_view text) {
  if (text.size() > kMaxConfigBytes) {
    return TomlLimitError{0, 0,
                          "file of " + std::to_string(text.size()) +
                              " bytes exceeds the limit of " + std::to_string(kMaxConfigBytes) +
                              " bytes (16 MiB)"};
  }
  if (const std::size_t bad = invalid_utf8(text); bad != std::string_view::npos) {
    auto [line, column] = position(text, bad);
    char hex[8];
    const auto byte = static_cast<unsigned char>(text[bad]);
    const char* digits = "0123456789abcdef";
    hex[0] = '0';
    hex[1] = 'x';
    hex[2] = digits[byte >> 4];
    hex[3] = digits[byte & 0xF];
    hex[4] = '\0';
    return TomlLimitError{line, column,
                          std::string("invalid UTF-8 (byte ") + hex + "); a TOML file is UTF-8"};
  }
  return Scanner(text).run();
}

}  // namespace schedd
