// `schedd doctor`: what an operator would check by hand before (or while) running the
// daemon, in one run, one line per check: the config, the plugins, the store, Redis, the
// listen address, the time zone data, the clock and permissions (docs/operations.md
// "schedd doctor"). It changes nothing: the store is opened read-only (never migrated or
// locked), the listen address is bound and released at once, a write test file is removed.
//
// Thread-safety: plain functions; run from the command line's thread.
#pragma once

#include <string>
#include <vector>

#include "core/common/status.h"
#include "core/config/config.h"
#include "core/plugin_host/plugin_host.h"

namespace schedd {

struct DoctorLine {
  enum class Level { kOk, kWarn, kFail, kSkip };
  Level level = Level::kOk;
  std::string check;  // "config", "plugins", "store", "redis", "listen", "tzdata", ...
  std::string detail;
  std::vector<std::string> more;  // further lines (every config error), printed indented
};

// What loading the config found (the daemon's load stages), handed to the doctor.
struct DoctorInput {
  std::string config_path;
  const Config* config = nullptr;  // nullptr: it did not load
  std::vector<std::string> config_errors;
  const PluginHost* plugins = nullptr;  // nullptr: not loaded (no config)
  Status plugins_status;
  std::vector<std::string> plugin_errors;  // refusals, fatal or skipped
  std::vector<std::string> helper_errors;
};

// Runs every check; the ones that need a config are skipped without one.
std::vector<DoctorLine> run_doctor(const DoctorInput& input);

// "ok    store        sqlite /var/lib/schedd/schedd.db: schema 2, ..." (more lines indented).
std::string format_doctor_line(const DoctorLine& line);

}  // namespace schedd
