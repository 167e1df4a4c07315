// The `schedd` command line: run, check-config, doctor, plugins, exec, calendar, --version.
// Each command returns the process exit code: 0 success, 1 a run that did not succeed (or a
// failed doctor check), 2 bad input (usage, config, plugins). Errors go to stderr, results
// to stdout. The config file comes from -c or SCHEDD_CONFIG; SCHEDD_* variables and flags
// override some of its settings (docs/config.md "Environment and flags").
#pragma once

namespace schedd {

int cli_main(int argc, char** argv);

}  // namespace schedd
