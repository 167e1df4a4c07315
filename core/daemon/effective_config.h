// The effective configuration as `schedd check-config --print-effective` prints it: the file
// with the environment's and the command line's settings over it, in TOML, each overridden
// value followed by where it came from. Secrets are never printed: a token or password is
// named by its file or variable only.
#pragma once

#include <string>

#include "core/config/config.h"

namespace schedd {

// `cfg` must have been loaded (and apply_overrides called); helpers and [plugins.*] tables
// are listed by name, as the file defines them.
std::string effective_config_toml(const Config& cfg);

}  // namespace schedd
