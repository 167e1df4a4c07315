// The `schedd` command line: run, check-config, plugins, exec, calendar (later), --version.
// Each command returns the process exit code: 0 success, 1 a run that did not succeed,
// 2 bad input (usage, config, plugins). Errors go to stderr, results to stdout.
#pragma once

namespace schedd {

int cli_main(int argc, char** argv);

}  // namespace schedd
