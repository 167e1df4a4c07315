// Finding and killing the processes a run left behind (docs/design.md §12: no run outlives its
// daemon). Linux /proc based. Thread-safe (no shared state).
//
// Every process a runner starts stays in the runner's session (the runner calls setsid(), a
// `shell` job only changes its process group) and inherits the runner's environment, which
// carries SCHEDD_RUNNER_OF=<daemon pid>:<daemon start ticks> (see runner_env_mark). A
// process can leave the session with setsid() but rarely clears its environment, so the two
// together find a run's whole tree: kill_session() while the daemon lives, and
// kill_orphans_of_dead_daemons() at the next start after a kill -9.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace schedd::runner {

// The environment variable that marks a runner and everything it starts.
inline constexpr const char* kRunnerMarkVar = "SCHEDD_RUNNER_OF";
// Identifies this daemon's runners' processes to the next instance of the same node.
inline constexpr const char* kNodeMarkVar = "SCHEDD_NODE";

// "<pid>:<start ticks>" of the calling process: names it even after its pid is reused.
std::string self_mark();
// The start time of `pid` in clock ticks since boot (/proc/PID/stat field 22); 0 if gone.
unsigned long long start_ticks(pid_t pid);
// Whether the process a mark names is still the same live process.
bool mark_alive(const std::string& mark);

// SIGKILLs every process whose session is `sid` (the runner and all it started, including
// process groups it made), then waits up to `wait` for them to be gone. Returns how many it
// signalled.
std::size_t kill_session(pid_t sid, std::chrono::milliseconds wait);

// At start-up: SIGKILLs every process whose environment marks it as a runner (or a
// descendant of one) of a daemon instance of node `node` that is no longer alive, and waits
// up to `wait` for them to be gone. Processes of live daemons (another instance on the
// machine) are never touched. Returns the pids killed, for the log.
std::vector<pid_t> kill_orphans_of_dead_daemons(const std::string& node,
                                                std::chrono::milliseconds wait);

}  // namespace schedd::runner
