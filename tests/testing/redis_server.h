// RedisServer: a real redis-server of the test's own, on a free loopback port, with its data
// (append-only file, fsynced on every write) in a private temp dir. For the Redis store's
// tests, the multi-daemon tests and the benchmarks.
//
// The server is started with --daemonize yes and found again through its pidfile, so it is
// not a child of the test; stop(), kill9() and the destructor wait until the process is gone.
// A missing or failing redis-server is an error (std::runtime_error with the reason and the
// server's log), never a skip: CI installs it (scripts/setup.sh).
//
// Not thread-safe; one per test (the ports and dirs of several instances never collide).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing/temp_dir.h"

extern char** environ;

namespace schedd::testing {

struct RedisContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
using RedisContextPtr = std::unique_ptr<redisContext, RedisContextFree>;

struct RedisReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using RedisReplyPtr = std::unique_ptr<redisReply, RedisReplyFree>;

class RedisServer {
 public:
  struct Options {
    // The server binary: a path, or a name looked up on PATH.
    std::string binary = "redis-server";
    // Extra arguments appended to the command line (e.g. {"--requirepass", "secret"}).
    std::vector<std::string> extra_args = {};
    // Set: the server requires it (--requirepass), and the harness's own connections AUTH.
    std::string password = {};
    // How long start-up may take until the server answers PING.
    std::chrono::milliseconds start_timeout{std::chrono::seconds(20)};
  };

  // Starts the server; throws std::runtime_error when it cannot.
  RedisServer() : RedisServer(Options{}) {}
  explicit RedisServer(Options options) : options_(std::move(options)) {
    binary_ = find_binary(options_.binary);
    // A port that was free a moment ago may be taken by the time the server binds it: try a
    // few ports before giving up.
    for (int attempt = 0;; ++attempt) {
      port_ = free_port();
      std::optional<StartError> error = start();
      if (!error) return;
      if (!error->port_taken || attempt == 4) {
        throw std::runtime_error("RedisServer: " + error->message);
      }
    }
  }

  ~RedisServer() {
    try {
      stop();
    } catch (const std::exception&) {
      // A destructor must not throw; the process was SIGKILLed on the way out of stop().
    }
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  uint16_t port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }
  const std::filesystem::path& dir() const { return dir_.path(); }
  // The server's pid; 0 when it is not running.
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0 && alive(pid_); }
  std::string log() const { return read_file(dir_ / "redis.log"); }

  // A fresh connection (database 0, authenticated when the server has a password); throws
  // when the server does not answer.
  RedisContextPtr connect() const {
    std::string error;
    RedisContextPtr c = open_connection(std::chrono::seconds(2), error);
    if (!c) throw std::runtime_error("RedisServer: cannot connect to " + url() + ": " + error);
    return c;
  }

  // Runs one command on a fresh connection, its words split on spaces (so no argument holds a
  // space); the reply, or throws when there is none.
  RedisReplyPtr command(const std::string& text) const {
    std::vector<std::string> words;
    for (std::size_t begin = 0; begin < text.size();) {
      std::size_t end = text.find(' ', begin);
      if (end == std::string::npos) end = text.size();
      if (end > begin) words.push_back(text.substr(begin, end - begin));
      begin = end + 1;
    }
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    for (const auto& w : words) {
      argv.push_back(w.data());
      lengths.push_back(w.size());
    }
    RedisContextPtr c = connect();
    RedisReplyPtr r(static_cast<redisReply*>(
        redisCommandArgv(c.get(), static_cast<int>(argv.size()), argv.data(), lengths.data())));
    if (!r) throw std::runtime_error("RedisServer: " + text + ": " + c->errstr);
    return r;
  }

  // Graceful stop: SHUTDOWN (the append-only file is flushed), or SIGTERM when the server
  // does not take commands; SIGKILL as a last resort. Returns once the process is gone.
  // No-op when it is not running.
  void stop() {
    if (pid_ <= 0) return;
    const pid_t pid = pid_;
    pid_ = 0;
    if (!alive(pid)) return;
    bool sent = false;
    {
      std::string error;
      if (RedisContextPtr c = open_connection(std::chrono::seconds(2), error)) {
        // On success the server closes the connection without a reply.
        RedisReplyPtr r(static_cast<redisReply*>(redisCommand(c.get(), "SHUTDOWN")));
        sent = !r || r->type != REDIS_REPLY_ERROR;
      }
    }
    if (!sent) ::kill(pid, SIGTERM);
    if (wait_gone(pid, std::chrono::seconds(20))) return;
    ::kill(pid, SIGKILL);
    wait_gone(pid, std::chrono::seconds(10));
    throw std::runtime_error("RedisServer: " + url() + " (pid " + std::to_string(pid) +
                             ") did not stop within 20 s; killed");
  }

  // SIGKILL: what the AOF holds is what survives. Returns once the process is gone.
  void kill9() {
    if (pid_ <= 0) return;
    const pid_t pid = pid_;
    pid_ = 0;
    ::kill(pid, SIGKILL);
    if (!wait_gone(pid, std::chrono::seconds(10))) {
      throw std::runtime_error("RedisServer: pid " + std::to_string(pid) + " survived SIGKILL");
    }
  }

  // Stops the server if it runs, then starts it again on the same port with the same data
  // dir (so it reloads the append-only file). Throws when it cannot start.
  void restart() {
    stop();
    start_again();
  }

  // Starts a server that stop() or kill9() ended, on the same port with the same data dir,
  // so that a test can look at its clients while it is down. Throws when it cannot start.
  void start_again() {
    if (running()) return;
    if (auto error = start()) {
      throw std::runtime_error("RedisServer: restart: " + error->message);
    }
  }

  // Whether `pid` is a live process (a zombie waiting for its reaper counts as gone).
  static bool process_alive(pid_t pid) { return alive(pid); }

 private:
  static std::string find_binary(const std::string& name) {
    if (name.find('/') != std::string::npos) {
      if (::access(name.c_str(), X_OK) == 0) return name;
      throw std::runtime_error("RedisServer: " + name +
                               " is not an executable; install redis-server (scripts/setup.sh)");
    }
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
    std::size_t begin = 0;
    while (begin <= dirs.size()) {
      std::size_t end = dirs.find(':', begin);
      if (end == std::string::npos) end = dirs.size();
      std::string candidate = dirs.substr(begin, end - begin) + "/" + name;
      if (end > begin && ::access(candidate.c_str(), X_OK) == 0) return candidate;
      begin = end + 1;
    }
    throw std::runtime_error("RedisServer: " + name +
                             " not found on PATH; install redis-server (scripts/setup.sh)");
  }

  // A loopback port nothing listens on right now (bound to port 0, then released).
  static uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error("RedisServer: socket() failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ::close(fd);
      throw std::runtime_error("RedisServer: cannot find a free port");
    }
    ::close(fd);
    return ntohs(addr.sin_port);
  }

  static bool alive(pid_t pid) {
    if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
    std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    if (stat.empty()) return false;
    std::size_t paren = stat.rfind(')');
    return paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] != 'Z';
  }

  static bool wait_gone(pid_t pid, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (alive(pid)) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  // A connection to the server, AUTHed when it has a password; nullptr and `error` when not.
  RedisContextPtr open_connection(std::chrono::milliseconds timeout, std::string& error) const {
    struct timeval tv = {static_cast<time_t>(timeout.count() / 1000),
                         static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
    RedisContextPtr c(redisConnectWithTimeout("127.0.0.1", port_, tv));
    if (!c || c->err != 0) {
      error = c ? c->errstr : "out of memory";
      return nullptr;
    }
    redisSetTimeout(c.get(), tv);
    if (!options_.password.empty()) {
      const char* argv[] = {"AUTH", options_.password.c_str()};
      const std::size_t lengths[] = {4, options_.password.size()};
      RedisReplyPtr r(static_cast<redisReply*>(redisCommandArgv(c.get(), 2, argv, lengths)));
      if (!r || r->type == REDIS_REPLY_ERROR) {
        error = r ? std::string(r->str, r->len) : std::string(c->errstr);
        return nullptr;
      }
    }
    return c;
  }

  struct StartError {
    std::string message;
    bool port_taken = false;  // worth another port
  };

  // Starts redis-server on port_ and waits for PONG; the reason when it cannot.
  std::optional<StartError> start() {
    const std::filesystem::path pidfile = dir_ / "redis.pid";
    std::error_code ec;
    std::filesystem::remove(pidfile, ec);
    // The log of this start only (an earlier attempt may have failed on a taken port).
    std::filesystem::remove(dir_ / "redis.log", ec);
    std::filesystem::remove(dir_ / "redis.out", ec);
    std::vector<std::string> argv = {binary_,
                                     "--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--daemonize",
                                     "yes",
                                     "--pidfile",
                                     pidfile.string(),
                                     "--dir",
                                     dir_.path().string(),
                                     "--appendonly",
                                     "yes",
                                     "--appendfsync",
                                     "always",
                                     "--save",
                                     "",
                                     "--logfile",
                                     (dir_ / "redis.log").string(),
                                     "--loglevel",
                                     "warning",
                                     "--always-show-logo",
                                     "no"};
    if (!options_.password.empty()) {
      argv.push_back("--requirepass");
      argv.push_back(options_.password);
    }
    argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, (dir_ / "redis.out").c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, (dir_ / "redis.out").c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    pid_t launcher = -1;
    const int spawned = posix_spawn(&launcher, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (spawned != 0) {
      return StartError{"cannot run " + binary_ + ": " + std::strerror(spawned)};
    }
    // With --daemonize the launcher forks the server and exits.
    int status = 0;
    ::waitpid(launcher, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      return StartError{binary_ + " failed to start on port " + std::to_string(port_) + ": " +
                        diagnostics()};
    }

    const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
    std::string last = "no pidfile";
    while (std::chrono::steady_clock::now() < deadline) {
      if (pid_ <= 0) {
        std::string text = read_file(pidfile);
        if (!text.empty()) pid_ = static_cast<pid_t>(std::atoi(text.c_str()));
      }
      // A port taken meanwhile: the server exits before it writes its pidfile.
      if (read_file(dir_ / "redis.log").find("Could not create server TCP listening socket") !=
          std::string::npos) {
        return StartError{"port " + std::to_string(port_) + " is taken: " + diagnostics(), true};
      }
      if (pid_ > 0 && !alive(pid_)) {
        pid_ = 0;
        return StartError{"redis-server on port " + std::to_string(port_) +
                          " exited: " + diagnostics()};
      }
      if (pid_ > 0) {
        // PONG, not LOADING: the append-only file has been replayed.
        if (RedisContextPtr c = open_connection(std::chrono::seconds(1), last)) {
          RedisReplyPtr r(static_cast<redisReply*>(redisCommand(c.get(), "PING")));
          if (r && r->type == REDIS_REPLY_STATUS && std::string(r->str, r->len) == "PONG") {
            return std::nullopt;
          }
          last = r ? std::string(r->str ? r->str : "", r->len) : std::string(c->errstr);
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      wait_gone(pid_, std::chrono::seconds(10));
      pid_ = 0;
    }
    return StartError{
        "redis-server on port " + std::to_string(port_) + " did not answer PING within " +
        std::to_string(options_.start_timeout.count()) + " ms (" + last + "): " + diagnostics()};
  }

  std::string diagnostics() const {
    std::string text = read_file(dir_ / "redis.out") + read_file(dir_ / "redis.log");
    if (text.size() > 2000) text = "..." + text.substr(text.size() - 2000);
    return text.empty() ? "(no output)" : text;
  }

  Options options_;
  std::string binary_;
  TempDir dir_;
  uint16_t port_ = 0;
  pid_t pid_ = 0;
};

}  // namespace schedd::testing
