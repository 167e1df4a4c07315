// Logging set-up for the daemon: spdlog's default logger on stderr, as human-readable text or
// as JSON lines (one object per line with time, level and msg, the message JSON-escaped).
// Call once at start-up, before threads log.
#pragma once

#include <string>

#include "core/common/status.h"

namespace schedd {

// `format`: "text" or "json"; `level`: "debug", "info", "warn" or "error".
Status setup_logging(const std::string& format, const std::string& level);

}  // namespace schedd
