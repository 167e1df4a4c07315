#include "core/runner/process_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <sstream>
#include <thread>

namespace schedd::runner {
namespace {

std::vector<pid_t> all_pids() {
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

// A /proc file, whole; "" (or what was read) when it cannot be read. Not std::ifstream:
// libstdc++'s filebuf throws when read() fails, and the file of a process reaped between the
// open and the read fails with ESRCH; these scans run in destructors and in the runner's
// watchdog, where an exception is std::terminate.
std::string read_proc_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string out;
  char buf[4096];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  ::close(fd);
  return out;
}

// Fields of /proc/PID/stat after the command name (which may hold spaces and parentheses):
// index 0 is field 3 (state).
std::vector<std::string> stat_fields(pid_t pid) {
  const std::string line = read_proc_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = line.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream rest(line.substr(close + 1));
  std::vector<std::string> fields;
  std::string f;
  while (rest >> f) fields.push_back(f);
  return fields;
}

pid_t session_of(pid_t pid) {
  auto f = stat_fields(pid);
  if (f.size() < 4) return -1;
  return static_cast<pid_t>(std::strtol(f[3].c_str(), nullptr, 10));  // field 6
}

bool is_zombie_or_gone(pid_t pid) {
  auto f = stat_fields(pid);
  return f.empty() || f[0] == "Z" || f[0] == "X";
}

std::string environ_value(pid_t pid, const std::string& var) {
  const std::string all = read_proc_file("/proc/" + std::to_string(pid) + "/environ");
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
  return {};
}

void wait_gone(const std::vector<pid_t>& pids, std::chrono::milliseconds wait) {
  auto until = std::chrono::steady_clock::now() + wait;
  for (pid_t p : pids) {
    // A zombie is dead: its parent (maybe us, maybe init) reaps it.
    while (!is_zombie_or_gone(p) && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
}

}  // namespace

unsigned long long start_ticks(pid_t pid) {
  auto f = stat_fields(pid);
  if (f.size() < 20) return 0;
  return std::strtoull(f[19].c_str(), nullptr, 10);  // field 22
}

std::string self_mark() {
  pid_t pid = getpid();
  return std::to_string(pid) + ":" + std::to_string(start_ticks(pid));
}

bool mark_alive(const std::string& mark) {
  auto colon = mark.find(':');
  if (colon == std::string::npos) return false;
  pid_t pid = static_cast<pid_t>(std::strtol(mark.c_str(), nullptr, 10));
  unsigned long long ticks = std::strtoull(mark.c_str() + colon + 1, nullptr, 10);
  if (pid <= 0) return false;
  return !is_zombie_or_gone(pid) && start_ticks(pid) == ticks;
}

std::size_t kill_session(pid_t sid, std::chrono::milliseconds wait) {
  if (sid <= 1) return 0;
  std::vector<pid_t> killed;
  // Twice: a process forking while the first pass runs shows up in the second.
  for (int pass = 0; pass < 2; ++pass) {
    for (pid_t p : all_pids()) {
      if (p == getpid() || session_of(p) != sid) continue;
      if (::kill(p, SIGKILL) == 0) killed.push_back(p);
    }
  }
  wait_gone(killed, wait);
  return killed.size();
}

std::vector<pid_t> kill_orphans_of_dead_daemons(const std::string& node,
                                                std::chrono::milliseconds wait) {
  std::vector<pid_t> killed;
  const pid_t self = getpid();
  for (int pass = 0; pass < 2; ++pass) {
    for (pid_t p : all_pids()) {
      if (p == self) continue;
      std::string mark = environ_value(p, kRunnerMarkVar);
      if (mark.empty() || environ_value(p, kNodeMarkVar) != node) continue;
      if (mark_alive(mark)) continue;
      if (::kill(p, SIGKILL) == 0) killed.push_back(p);
    }
  }
  wait_gone(killed, wait);
  return killed;
}

}  // namespace schedd::runner
