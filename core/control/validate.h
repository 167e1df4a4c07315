// Phase 2 of config validation against the executors a PluginHost loaded: the one adapter
// between config/ (which knows nothing of plugins) and plugin_host/. Thread-safety: as
// validate_helpers (call it before the engine starts).
#pragma once

#include <vector>

#include "core/config/config.h"
#include "core/plugin_host/plugin_host.h"

namespace schedd {

// Checks every helper's executor and params against `plugins` and fills in typed params;
// appends every error found.
void validate_helpers(Config& config, const PluginHost& plugins, std::vector<ConfigError>& errors);

}  // namespace schedd
