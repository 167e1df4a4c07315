// Shared by the fuzz targets: FUZZ_CHECK aborts (a crash libFuzzer records, a failed replay
// test) with the target, the broken property and the input's first bytes when a property of
// the code under test does not hold.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace schedd::fuzz {

[[noreturn]] inline void fail(const char* target, const char* what, std::string_view input) {
  const int shown = static_cast<int>(input.size() < 200 ? input.size() : 200);
  std::fprintf(stderr, "%s: %s for input (%zu bytes) \"%.*s\"\n", target, what, input.size(), shown,
               input.data());
  std::abort();
}

}  // namespace schedd::fuzz

#define FUZZ_CHECK(target, cond, what, input)               \
  do {                                                      \
    if (!(cond)) ::schedd::fuzz::fail(target, what, input); \
  } while (0)
