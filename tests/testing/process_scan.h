// Looks at the machine's processes through /proc, for tests that must prove a daemon left
// nothing running: which processes carry a daemon's marks (SCHEDD_NODE, SCHEDD_RUNNER_OF,
// which the daemon puts in the environment of its runners and of everything they start),
// whether a pid is still a live process, and whether a process is busy. Linux only.
// Thread-safe (no shared state); every answer is a snapshot that may be stale at once.
#pragma once

#include <dirent.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace schedd::testing {

inline std::vector<pid_t> all_pids() {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (end != e->d_name && *end == '\0' && pid > 0) out.push_back(static_cast<pid_t>(pid));
  }
  closedir(d);
  return out;
}

inline std::string proc_file(pid_t pid, const char* name) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/" + name, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Fields of /proc/PID/stat after the command name (which may hold spaces and parentheses):
// index 0 is field 3 (state), 2 is field 5 (process group), 19 is field 22 (start time).
inline std::vector<std::string> stat_fields(pid_t pid) {
  std::string line = proc_file(pid, "stat");
  auto close = line.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream rest(line.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string f; rest >> f;) fields.push_back(f);
  return fields;
}

// A process that still runs: neither gone nor a zombie (a zombie is dead, only not reaped).
inline bool process_alive(pid_t pid) {
  auto f = stat_fields(pid);
  return !f.empty() && f[0] != "Z" && f[0] != "X";
}

inline pid_t process_group_of(pid_t pid) {
  auto f = stat_fields(pid);
  return f.size() > 2 ? static_cast<pid_t>(std::strtol(f[2].c_str(), nullptr, 10)) : -1;
}

// "<pid>:<start ticks>", as the daemon writes SCHEDD_RUNNER_OF for its runners; "" if gone.
inline std::string process_mark(pid_t pid) {
  auto f = stat_fields(pid);
  if (f.size() < 20) return "";
  return std::to_string(pid) + ":" + f[19];
}

// The value of `var` in the environment the process was started with; "" when it has none
// or the process is gone (or not ours to read).
inline std::string environ_value(pid_t pid, const std::string& var) {
  const std::string all = proc_file(pid, "environ");
  const std::string prefix = var + "=";
  std::size_t pos = 0;
  while (pos < all.size()) {
    std::size_t end = all.find('\0', pos);
    if (end == std::string::npos) end = all.size();
    if (all.compare(pos, prefix.size(), prefix) == 0) {
      return all.substr(pos + prefix.size(), end - pos - prefix.size());
    }
    pos = end + 1;
  }
  return "";
}

// The command line with its NULs as spaces.
inline std::string command_line(pid_t pid) {
  std::string c = proc_file(pid, "cmdline");
  for (char& ch : c) {
    if (ch == '\0') ch = ' ';
  }
  return c;
}

// Live processes whose environment has `var`=`value`.
inline std::vector<pid_t> live_processes_with_env(const std::string& var,
                                                  const std::string& value) {
  std::vector<pid_t> out;
  for (pid_t p : all_pids()) {
    if (environ_value(p, var) == value && process_alive(p)) out.push_back(p);
  }
  return out;
}

// Live processes in process group `pgid`.
inline std::vector<pid_t> live_processes_in_group(pid_t pgid) {
  std::vector<pid_t> out;
  for (pid_t p : all_pids()) {
    if (process_group_of(p) == pgid && process_alive(p)) out.push_back(p);
  }
  return out;
}

// "pid (command line)" of each, for failure messages.
inline std::string describe_processes(const std::vector<pid_t>& pids) {
  std::string out;
  for (pid_t p : pids) {
    out += (out.empty() ? "" : ", ") + std::to_string(p) + " (" + command_line(p) + ")";
  }
  return out.empty() ? "none" : out;
}

// Voluntary context switches of the process's main thread: a thread sleeping 1 ms at a
// time adds about a thousand a second, one blocked in read adds none.
inline uint64_t voluntary_switches(pid_t pid) {
  std::istringstream in(proc_file(pid, "status"));
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("voluntary_ctxt_switches:")) {
      return std::strtoull(line.c_str() + line.find(':') + 1, nullptr, 10);
    }
  }
  return 0;
}

// Peak resident memory of the process (VmHWM), in bytes; 0 when unknown.
inline uint64_t peak_rss_bytes(pid_t pid) {
  std::istringstream in(proc_file(pid, "status"));
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("VmHWM:")) {
      return std::strtoull(line.c_str() + line.find(':') + 1, nullptr, 10) * 1024;
    }
  }
  return 0;
}

// Polls `done` every 10 ms until it holds or `timeout` passes; returns its last answer.
inline bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace schedd::testing
