#include "core/control/validate.h"

namespace schedd {

void validate_helpers(Config& config, const PluginHost& plugins, std::vector<ConfigError>& errors) {
  validate_helpers(
      config,
      [&](std::string_view name) -> const ExecutorInfo* {
        const Executor* e = plugins.find(name);
        return e == nullptr ? nullptr : &e->info();
      },
      [&] {
        std::vector<std::string> names;
        for (const auto* e : plugins.executors()) names.push_back(e->name);
        return names;
      },
      errors);
}

}  // namespace schedd
