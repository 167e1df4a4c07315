// Linked into schedd_tests: process-wide set-up that must happen on the main thread before any
// test starts a thread.
//
// spdlog's registry (the default logger and its formatter) is built on first use inside
// Debian's libspdlog.so, which ThreadSanitizer does not instrument. Built lazily by two
// threads of an in-process daemon (the API's and the store writer's first log lines), TSan
// cannot see the guard that orders the construction and reports a race on the logger. The
// daemon and the runner configure logging on their main thread before starting threads;
// the test binary does the same here.
#include <spdlog/spdlog.h>

namespace {
[[maybe_unused]] const bool kLogRegistryBuilt = spdlog::default_logger_raw() != nullptr;
}  // namespace
