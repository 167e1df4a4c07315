// Distributed mode, lease containment: a daemon that stops renewing its leases (paused with
// SIGSTOP, or cut off from Redis by a silent partition) must have its run of a key over before
// another daemon starts that key, and its late completion must change nothing.
//
// Two real `schedd run` daemons share one real redis-server (tests/testing/redis_server.h),
// with a 2 s lease (renewed every 400 ms; runs end at lease end - 400 ms). The fx_record
// fixture plugin runs out of process (isolation = "process") and appends fsynced start and end
// records with the runner's pid. Each round submits three tickets of one fresh key K: T1 (a
// long run) and T2, T3 (short ones queued behind it). Once T1 runs, the daemon that runs it
// (the victim) is cut off for longer than its lease, then let back. Each round asserts:
//   - the other daemon re-queued T1 (its log says the victim's lease lapsed) and ran it as a
//     higher attempt, starting only after the victim's lease ended in Redis (wall clock);
//   - the victim's run had ended before that: with an end record ("stopped"), or killed with
//     its runner, which a watcher saw dead (and which /proc says is dead the moment the other
//     run's start record is read); a killed runner died before its lease ended;
//   - once back, the victim's completion of T1 was refused by the fence ("is not running under
//     fence" in its log), and T1 stayed the other daemon's;
//   - T1, T2 and T3 all ended succeeded; T2 and T3 ran exactly once, T1 exactly twice (only
//     the victim's run unfinished).
// At the end: no two runs of a key overlapped in time (a killed run ends when its runner was
// seen dead), both daemons stop with exit 0, and Redis holds no running execution, lease or
// lane count.
//
// PausedDaemon...: the victim is SIGSTOPped, so only its runner can end the run, by itself,
// at the hard deadline; the rounds let it back while the other daemon still runs T1 (its
// stale completion must not free K) and after T1 succeeded.
//
// PartitionedDaemon...: each daemon reaches Redis through its own TcpProxy
// (tests/testing/tcp_proxy.h); the victim's proxy goes silent (a blackhole: nothing forwarded,
// nothing closed) and later forwards again, delivering what was stuck, as a healed partition
// does. The victim's lease guard asks the run to stop before the hard deadline, or its runner
// ends it there.
//
// PartitionedDaemonWithAnInProcessRun... and PartitionedDaemonStopsItsInProcessRun...: the
// same partition with the run in process. The dispatcher's loop waits in a Redis call for up
// to command_timeout (6 s here, twice the lease); the lease guard, a thread that never calls
// the store, must still ask the run to stop in time, and end the daemon (exit 70) at the hard
// deadline when the run ignores the request.
//
// LateRenewalFromADeadConnection...: a renewal stuck on a connection its daemon gave up on
// reaches Redis after the renewals that followed it (the proxy freezes the old connections and
// releases them later); the lease must not move back (the renew script's ZADD has GT), or the
// other daemon takes the key while the run still holds it.
//
// The suite runs alone (RUN_SERIAL in tests/CMakeLists.txt): it times leases on the wall
// clock. SCHEDD_LEASE_TEST_VERBOSE=1 prints what both daemons logged about each round's T1.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing/daemon_process.h"
#include "tests/testing/http_client.h"
#include "tests/testing/process_scan.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/run_records.h"
#include "tests/testing/tcp_proxy.h"
#include "tests/testing/temp_dir.h"

namespace schedd::testing {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

constexpr const char* kNamespace = "lease";

int64_t wall_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// One line of fx_record's file, with the pid that run_records.h does not read.
struct Record {
  char kind = 0;  // 'S' or 'E'
  std::string id;
  uint32_t attempt = 0;
  int64_t mono = 0;
  int64_t wall = 0;
  std::string how;  // E only
  pid_t pid = 0;
};

std::vector<Record> read_records(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::vector<Record> out;
  for (std::string line; std::getline(in, line);) {
    std::istringstream ls(line);
    Record r;
    std::string key;
    long pid = 0;
    ls >> r.kind >> r.id >> key >> r.attempt >> r.mono >> r.wall;
    if (r.kind == 'E') ls >> r.how;
    ls >> pid;
    r.pid = static_cast<pid_t>(pid);
    if (ls.fail() || (r.kind != 'S' && r.kind != 'E')) {
      ADD_FAILURE() << "bad record line: " << line;
      continue;
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<Record> records_of(const std::vector<Record>& all, char kind, const std::string& id) {
  std::vector<Record> out;
  for (const auto& r : all) {
    if (r.kind == kind && r.id == id) out.push_back(r);
  }
  return out;
}

// Whether one line of `log` contains every one of `parts`.
bool log_has_line(const std::string& log, const std::vector<std::string>& parts) {
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    bool all = true;
    for (const auto& p : parts) all = all && line.find(p) != std::string::npos;
    if (all) return true;
  }
  return false;
}

std::string lines_about(const std::string& log, const std::string& id) {
  std::string out;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (line.find(id) != std::string::npos) out += "    " + line + "\n";
  }
  return out;
}

// The bulk strings of the RESP commands in `bytes` (a client's requests), in order; a
// truncated last command is left out.
std::vector<std::string> resp_bulks(const std::string& bytes) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    const std::size_t eol = bytes.find("\r\n", pos);
    if (eol == std::string::npos) break;
    if (bytes[pos] == '$') {
      const std::size_t len = std::stoul(bytes.substr(pos + 1, eol - pos - 1));
      if (eol + 2 + len + 2 > bytes.size()) break;
      out.push_back(bytes.substr(eol + 2, len));
      pos = eol + 2 + len + 2;
    } else {
      pos = eol + 2;  // an array header
    }
  }
  return out;
}

// The lease end (µs) that a renewal of `id` among `bytes` asks for (the renew script's
// arguments: P, the new lease end, then id and fence pairs); 0 when there is none.
int64_t renewal_until(const std::string& bytes, const std::string& id) {
  const std::vector<std::string> b = resp_bulks(bytes);
  for (std::size_t i = 0; i + 5 < b.size(); ++i) {
    if (b[i] == "EVALSHA" && b[i + 5] == id) return std::stoll(b[i + 4]);
  }
  return 0;
}

// Notes when a process is first seen dead (gone or a zombie), polling /proc every
// millisecond from its own thread: an upper bound on the moment it died, on both clocks.
class DeathWatch {
 public:
  explicit DeathWatch(pid_t pid) : pid_(pid), thread_([this] { watch(); }) {}
  ~DeathWatch() {
    stop_ = true;
    thread_.join();
  }
  DeathWatch(const DeathWatch&) = delete;
  DeathWatch& operator=(const DeathWatch&) = delete;

  bool dead() const { return dead_.load(); }
  // Valid once dead().
  int64_t mono() const { return mono_; }
  int64_t wall() const { return wall_; }

 private:
  void watch() {
    while (!stop_.load()) {
      if (!process_alive(pid_)) {
        mono_ = mono_ns();
        wall_ = wall_ns();
        dead_ = true;  // publishes mono_ and wall_
        return;
      }
      std::this_thread::sleep_for(1ms);
    }
  }

  const pid_t pid_;
  int64_t mono_ = 0;
  int64_t wall_ = 0;
  std::atomic<bool> dead_{false};
  std::atomic<bool> stop_{false};
  std::thread thread_;  // last: starts once the fields above exist
};

enum class Cut { kPause, kPartition };

struct Round {
  std::chrono::milliseconds run_for;  // T1's duration
  std::chrono::milliseconds hold;     // how long the victim stays cut off
};

// What the daemons' configs may vary in.
struct Settings {
  std::string isolation = "process";
  // Its margin (a fifth) leaves 600 ms between a run's hard deadline, where its runner or
  // daemon ends it, and the lease's end; 400 ms (a 2 s lease) is within a stall of the
  // shared CI machine, which once made a runner end its run after the lease.
  std::string lease = "3s";
  std::string command_timeout = "2s";  // [redis]; the default
  std::string kill_grace = "5s";       // [daemon]; the default
};

class ClusterLeaseTest : public ::testing::Test {
 protected:
  struct Node {
    std::string name;
    std::filesystem::path config;
    std::unique_ptr<TcpProxy> proxy;  // kPartition only
    std::unique_ptr<DaemonProcess> daemon;
    std::unique_ptr<HttpClient> http;
    bool is_cut = false;  // stopped or blackholed now
  };

  // Starts two daemons on the test's Redis, each through its own proxy for kPartition.
  void start(Cut cut, const Settings& settings = {}) {
    cut_ = cut;
    std::filesystem::create_directories(dir_ / "plugins");
    std::filesystem::copy_file(std::filesystem::path(SCHEDD_FIXTURE_DIR) / "fx_record.so",
                               dir_ / "plugins" / "fx_record.so");
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      Node& n = nodes_[i];
      n.name = i == 0 ? "node-a" : "node-b";
      std::string url = redis_.url();
      if (cut == Cut::kPartition) {
        n.proxy = std::make_unique<TcpProxy>(redis_.port());
        url = n.proxy->redis_url();
      }
      std::string config = R"([daemon]
plugin_dir = "plugins"
store = "@URL@"
node_id = "@NODE@"
isolation = "@ISOLATION@"
kill_grace = "@KILL_GRACE@"
shutdown_grace = "10s"
[redis]
namespace = "@NS@"
lease = "@LEASE@"
command_timeout = "@COMMAND_TIMEOUT@"
[api]
listen = "127.0.0.1:0"
[retry]
max_attempts = 10
delays = ["0s"]
[lanes.default]
workers = 2
[tickets]
executor = "record"
)";
      for (const auto& [from, to] : {std::pair<std::string, std::string>{"@URL@", url},
                                     {"@NODE@", n.name},
                                     {"@NS@", kNamespace},
                                     {"@ISOLATION@", settings.isolation},
                                     {"@KILL_GRACE@", settings.kill_grace},
                                     {"@LEASE@", settings.lease},
                                     {"@COMMAND_TIMEOUT@", settings.command_timeout}}) {
        config.replace(config.find(from), from.size(), to);
      }
      n.config = dir_.write(n.name + ".toml", config);
      n.daemon = std::make_unique<DaemonProcess>(n.config);
    }
    for (Node& n : nodes_) {
      ASSERT_TRUE(n.daemon->wait_ready()) << n.daemon->log();
      n.http = std::make_unique<HttpClient>("127.0.0.1", n.daemon->port());
      if (n.proxy) {
        ASSERT_GT(n.proxy->accepted(), 0u) << n.name << " bypassed its proxy";
      }
    }
  }

  void TearDown() override {
    // A failed assertion may leave a victim stopped or cut off: let it go, so that it exits.
    for (Node& n : nodes_) {
      if (n.is_cut) let_back(n);
    }
  }

  void submit(Node& n, const std::string& key, const std::string& ticket,
              std::chrono::milliseconds duration, bool ignore_stop = false) {
    Json body = {
        {"ticket", ticket},
        {"params",
         {{"file", records_.string()}, {"duration", std::to_string(duration.count()) + "ms"}}}};
    if (ignore_stop) body["params"]["ignore_stop"] = true;
    auto r = n.http->post("/v1/projects/" + key + "/tickets", body.dump());
    ASSERT_EQ(r.status, 201) << key << ":" << ticket << ": " << r.body;
    accepted_.push_back(key + ":" + ticket);
  }

  // Polls the records until `pred` holds for one of them; that record, or none at `timeout`.
  std::optional<Record> wait_record(const std::function<bool(const Record&)>& pred,
                                    std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      for (const auto& r : read_records(records_)) {
        if (pred(r)) return r;
      }
      if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
      std::this_thread::sleep_for(2ms);
    }
  }

  std::string hget(const std::string& id, const std::string& field) {
    RedisReplyPtr r =
        redis_.command("HGET schedd:" + std::string(kNamespace) + ":e:" + id + " " + field);
    return r->type == REDIS_REPLY_STRING ? std::string(r->str, r->len) : "";
  }

  // The lease end Redis holds for the running execution `id` (µs since the epoch); 0: none.
  int64_t lease_score(const std::string& id) {
    RedisReplyPtr r = redis_.command("ZSCORE schedd:" + std::string(kNamespace) + ":lease " + id);
    return r->type == REDIS_REPLY_STRING ? std::stoll(std::string(r->str, r->len)) : 0;
  }

  Json wait_terminal(Node& n, const std::string& id, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      auto r = n.http->get("/v1/executions/" + id);
      if (r.status == 200) {
        Json j = Json::parse(r.body);
        const std::string status = j.value("status", "");
        if ((status != "queued" && status != "running") ||
            std::chrono::steady_clock::now() > deadline) {
          return j;
        }
      } else if (std::chrono::steady_clock::now() > deadline) {
        return Json{{"status", "unknown"}, {"http", r.status}, {"body", r.body}};
      }
      std::this_thread::sleep_for(20ms);
    }
  }

  void cut_off(Node& n) {
    n.is_cut = true;
    if (cut_ == Cut::kPause) {
      ASSERT_EQ(::kill(n.daemon->pid(), SIGSTOP), 0);
    } else {
      n.proxy->blackhole();
    }
  }
  void let_back(Node& n) {
    n.is_cut = false;
    if (cut_ == Cut::kPause) {
      ASSERT_EQ(::kill(n.daemon->pid(), SIGCONT), 0);
    } else {
      n.proxy->restore();
    }
  }

  // One round on the fresh key "k<index>"; see the file comment.
  void run_round(int index, Round round) {
    const std::string key = "k" + std::to_string(index);
    const std::string t1 = key + ":T1";
    SCOPED_TRACE("round " + std::to_string(index) + " (" + key + ")");
    Node& submit_to = nodes_[index % 2];
    ASSERT_NO_FATAL_FAILURE(submit(submit_to, key, "T1", round.run_for));
    ASSERT_NO_FATAL_FAILURE(submit(submit_to, key, "T2", 200ms));
    ASSERT_NO_FATAL_FAILURE(submit(submit_to, key, "T3", 200ms));

    // T1 runs: on which daemon, in which runner.
    std::optional<Record> first =
        wait_record([&](const Record& r) { return r.kind == 'S' && r.id == t1; }, 20s);
    ASSERT_TRUE(first) << t1 << " never started";
    const std::string holder = hget(t1, "node");
    const std::size_t v = holder == nodes_[0].name ? 0 : 1;
    ASSERT_EQ(holder, nodes_[v].name) << t1 << " is held by \"" << holder << "\"";
    Node& victim = nodes_[v];
    Node& other = nodes_[1 - v];
    ASSERT_NE(first->pid, victim.daemon->pid()) << "fx_record ran in process";
    ASSERT_EQ(environ_value(first->pid, "SCHEDD_NODE"), victim.name)
        << "pid " << first->pid << " is not a runner of " << victim.name;
    DeathWatch runner(first->pid);

    const int64_t cut_mono = mono_ns();
    ASSERT_NO_FATAL_FAILURE(cut_off(victim));
    // What Redis holds once nothing more can reach it from the victim (a request already on
    // its way lands within a few ms): the lease the other daemon waits out.
    std::this_thread::sleep_for(50ms);
    RedisReplyPtr score =
        redis_.command("ZSCORE schedd:" + std::string(kNamespace) + ":lease " + t1);
    ASSERT_EQ(score->type, REDIS_REPLY_STRING) << t1 << " has no lease";
    const int64_t lease_end_wall = std::stoll(std::string(score->str, score->len)) * 1000;

    // The other daemon takes T1 over.
    std::optional<Record> again = wait_record(
        [&](const Record& r) { return r.kind == 'S' && r.id == t1 && r.attempt > first->attempt; },
        20s);
    const bool runner_alive_then = process_alive(first->pid);
    ASSERT_TRUE(again) << t1 << " was never taken over; " << other.name << " said:\n"
                       << lines_about(other.daemon->log(), t1);
    std::this_thread::sleep_until(
        std::chrono::steady_clock::time_point(std::chrono::nanoseconds(cut_mono) + round.hold));
    ASSERT_NO_FATAL_FAILURE(let_back(victim));

    // Back: its completion of T1 is refused by the fence.
    const bool refused = wait_until(
        [&] {
          return log_has_line(victim.daemon->log(), {t1, "is not running under fence"});
        },
        20s);

    for (const std::string& id : {t1, key + ":T2", key + ":T3"}) {
      Json e = wait_terminal(other, id, 40s);
      EXPECT_EQ(e.value("status", ""), "succeeded") << id << ": " << e.dump();
    }
    EXPECT_EQ(hget(t1, "node"), other.name) << t1 << " did not stay the other daemon's";

    const std::vector<Record> all = read_records(records_);
    const std::vector<Record> starts = records_of(all, 'S', t1);
    const std::vector<Record> ends = records_of(all, 'E', t1);
    std::optional<Record> first_end;
    for (const auto& e : ends) {
      if (e.attempt == first->attempt) first_end = e;
    }
    const std::string victim_says = lines_about(victim.daemon->log(), t1);
    const std::string other_says = lines_about(other.daemon->log(), t1);

    EXPECT_TRUE(refused) << victim.name << "'s completion of " << t1
                         << " was not refused by the fence; it said:\n"
                         << victim_says;
    EXPECT_TRUE(log_has_line(other.daemon->log(),
                             {t1, "the lease of node " + victim.name + " lapsed while it ran"}))
        << other.name << " said:\n"
        << other_says;
    // Ran twice: the victim's unfinished run, and the other's.
    ASSERT_EQ(starts.size(), 2u) << t1 << " started " << starts.size() << " times";
    EXPECT_EQ(again->pid, starts[1].pid);
    EXPECT_EQ(environ_value(again->pid, "SCHEDD_NODE"), other.name);
    // Only after the victim's lease ended in Redis.
    EXPECT_GE(again->wall, lease_end_wall)
        << "the other daemon started " << t1 << " " << (lease_end_wall - again->wall) / 1000000
        << " ms before the victim's lease ended";

    // The victim's run was over before the other's started: stopped (end record), or killed
    // with its runner before its lease ended.
    int64_t victim_end_mono = 0;
    int64_t victim_end_wall = 0;
    std::string how;
    if (first_end) {
      how = first_end->how;
      victim_end_mono = first_end->mono;
      victim_end_wall = first_end->wall;
      EXPECT_EQ(first_end->how, "stopped") << t1 << "'s first run was not stopped";
      EXPECT_TRUE(log_has_line(victim.daemon->log(), {t1, "lease not renewed", "stop requested"}))
          << victim_says;
    } else {
      how = "killed";
      EXPECT_TRUE(runner.dead()) << "the victim's runner " << first->pid
                                 << " still lives, and its run has no end";
      EXPECT_FALSE(runner_alive_then) << "the victim's runner " << first->pid << " was alive when "
                                      << t1 << " started again on " << other.name;
      victim_end_mono = runner.dead() ? runner.mono() : again->mono;
      victim_end_wall = runner.dead() ? runner.wall() : again->wall;
      if (runner.dead()) {
        deaths_.push_back(runner.mono());
        EXPECT_LT(runner.wall(), lease_end_wall)
            << "the victim's runner was still seen alive "
            << (runner.wall() - lease_end_wall) / 1000000 << " ms after its lease ended";
      }
      // Its transition line, logged after the completion went to Redis: the refusal above may
      // have come first.
      EXPECT_TRUE(wait_until(
          [&] {
            return log_has_line(victim.daemon->log(), {t1, "hard deadline"});
          },
          20s))
          << lines_about(victim.daemon->log(), t1);
    }
    EXPECT_LT(victim_end_mono, again->mono)
        << "the victim's run of " << t1 << " (" << how << ") ended "
        << (victim_end_mono - again->mono) / 1000000 << " ms after the other daemon's began";
    if (cut_ == Cut::kPause) {
      // Paused, the daemon could not ask: only its runner could end the run.
      EXPECT_FALSE(first_end) << "the paused daemon's run ended with a record: " << how;
    }
    for (const std::string& id : {key + ":T2", key + ":T3"}) {
      const auto s = records_of(all, 'S', id);
      const auto e = records_of(all, 'E', id);
      EXPECT_EQ(s.size(), 1u) << id << " started " << s.size() << " times";
      EXPECT_TRUE(e.size() == 1 && e[0].how == "done") << id << " did not end once, done";
    }
    if (std::getenv("SCHEDD_LEASE_TEST_VERBOSE") != nullptr) {
      std::printf("%s said:\n%s%s said:\n%s", victim.name.c_str(), victim_says.c_str(),
                  other.name.c_str(), other_says.c_str());
    }
    std::printf(
        "%s round %d: T1 %lld ms, cut %lld ms: %s's run %s %.0f ms after the cut, %.0f ms "
        "before its lease ended; %s started it again %.0f ms after the lease ended\n",
        cut_ == Cut::kPause ? "pause" : "partition", index,
        static_cast<long long>(round.run_for.count()), static_cast<long long>(round.hold.count()),
        victim.name.c_str(), how.c_str(), (victim_end_mono - cut_mono) / 1e6,
        (lease_end_wall - victim_end_wall) / 1e6, other.name.c_str(),
        (again->wall - lease_end_wall) / 1e6);
  }

  // The in-process partition tests: daemons with in-process runs, a 3 s lease and a
  // command_timeout of 6 s (twice the lease); T1 of `key` for 8 s (ignoring its stop request
  // or not) and, with `then_t2`, T2 behind it. Waits for T1 to start in process, then cuts its
  // daemon off.
  struct InProcessCut {
    std::string t1;
    Record first;
    std::size_t victim = 0;      // index in nodes_
    int64_t cut_mono = 0;        // when the cut began
    int64_t lease_end_wall = 0;  // T1's lease end in Redis after the cut (ns)
  };
  void cut_off_in_process_run(const std::string& key, bool ignore_stop, bool then_t2,
                              InProcessCut& c) {
    Settings settings;
    settings.isolation = "inprocess";
    settings.command_timeout = "6s";
    ASSERT_NO_FATAL_FAILURE(start(Cut::kPartition, settings));
    c.t1 = key + ":T1";
    ASSERT_NO_FATAL_FAILURE(submit(nodes_[0], key, "T1", 8s, ignore_stop));
    if (then_t2) {
      ASSERT_NO_FATAL_FAILURE(submit(nodes_[0], key, "T2", 200ms));
    }
    std::optional<Record> first =
        wait_record([&](const Record& r) { return r.kind == 'S' && r.id == c.t1; }, 20s);
    ASSERT_TRUE(first) << c.t1 << " never started";
    c.first = *first;
    c.victim = hget(c.t1, "node") == nodes_[0].name ? 0 : 1;
    ASSERT_EQ(first->pid, nodes_[c.victim].daemon->pid()) << c.t1 << " did not run in process";
    c.cut_mono = mono_ns();
    ASSERT_NO_FATAL_FAILURE(cut_off(nodes_[c.victim]));
    std::this_thread::sleep_for(50ms);
    c.lease_end_wall = lease_score(c.t1) * 1000;
    ASSERT_NE(c.lease_end_wall, 0) << c.t1 << " has no lease";
  }

  // After the rounds: no overlap, clean exits, nothing left running in Redis.
  void finish() {
    for (Node& n : nodes_) {
      ProcessResult end = n.daemon->stop();
      EXPECT_EQ(end.exit_code, 0) << n.name << ":\n" << end.err;
    }
    std::vector<RecordedRun> runs = read_runs(records_);
    std::sort(deaths_.begin(), deaths_.end());
    end_killed_runs(runs, deaths_);
    EXPECT_EQ(count_key_overlaps(runs), 0u);
    std::set<std::string> done;
    for (const auto& r : runs) {
      if (r.how == "done") done.insert(r.id);
    }
    for (const auto& id : accepted_) EXPECT_TRUE(done.contains(id)) << id << " never completed";

    const std::string p = "schedd:" + std::string(kNamespace) + ":";
    EXPECT_EQ(redis_.command("HLEN " + p + "run")->integer, 0) << "executions left running";
    EXPECT_EQ(redis_.command("ZCARD " + p + "lease")->integer, 0) << "leases left behind";
    RedisReplyPtr lrun = redis_.command("HGETALL " + p + "lrun");
    for (std::size_t i = 0; i + 1 < lrun->elements; i += 2) {
      EXPECT_EQ(std::string(lrun->element[i + 1]->str), "0")
          << "lane " << lrun->element[i]->str << " counts running executions";
    }
  }

  RedisServer redis_;
  TempDir dir_;
  const std::filesystem::path records_ = dir_ / "records.txt";
  Cut cut_ = Cut::kPause;
  std::array<Node, 2> nodes_;
  std::vector<std::string> accepted_;
  std::vector<int64_t> deaths_;  // when killed runners were seen dead (mono)
};

TEST_F(ClusterLeaseTest, PausedDaemonsRunIsEndedByItsRunnerBeforeAnotherTakesTheKey) {
  ASSERT_NO_FATAL_FAILURE(start(Cut::kPause));
  // Let back while the other daemon still runs T1, after it finished, and again.
  const std::array<Round, 3> rounds = {Round{6s, 5s}, Round{3s, 8s}, Round{6s, 5s}};
  for (std::size_t i = 0; i < rounds.size(); ++i) {
    ASSERT_NO_FATAL_FAILURE(run_round(static_cast<int>(i), rounds[i]));
  }
  finish();
}

TEST_F(ClusterLeaseTest, PartitionedDaemonsRunEndsBeforeAnotherTakesTheKey) {
  ASSERT_NO_FATAL_FAILURE(start(Cut::kPartition));
  // Healed after the other daemon finished T1, while it still runs T1, and again.
  const std::array<Round, 3> rounds = {Round{6s, 11s}, Round{8s, 4s}, Round{6s, 11s}};
  for (std::size_t i = 0; i < rounds.size(); ++i) {
    ASSERT_NO_FATAL_FAILURE(run_round(static_cast<int>(i), rounds[i]));
  }
  finish();
}

// An in-process run cannot be killed alone: a daemon cut off from Redis must end itself
// (exit 70) at the hard deadline of a run that ignores its stop request, before the lease ends
// and another daemon may start the key. Here a Redis call may wait up to 6 s for its reply
// (command_timeout), twice the lease: the lease guard, a thread that never calls the store,
// must act while the dispatcher's loop waits in such a call.
TEST_F(ClusterLeaseTest, PartitionedDaemonWithAnInProcessRunEndsItselfBeforeAnotherTakesTheKey) {
  const std::string key = "inproc";
  InProcessCut c;
  ASSERT_NO_FATAL_FAILURE(cut_off_in_process_run(key, /*ignore_stop=*/true, /*then_t2=*/true, c));
  const std::string& t1 = c.t1;
  const std::optional<Record> first = c.first;
  Node& victim = nodes_[c.victim];
  Node& other = nodes_[1 - c.victim];
  DeathWatch daemon(victim.daemon->pid());  // it ends 600 ms before its lease does
  const int64_t cut_mono = c.cut_mono;
  const int64_t lease_end_wall = c.lease_end_wall;
  std::optional<Record> again = wait_record(
      [&](const Record& r) { return r.kind == 'S' && r.id == t1 && r.attempt > first->attempt; },
      20s);
  ASSERT_TRUE(again) << t1 << " was never taken over; " << other.name << " said:\n"
                     << lines_about(other.daemon->log(), t1);
  const bool victim_ran_then = !daemon.dead();
  const bool ended = wait_until([&] { return daemon.dead(); }, 20s);
  EXPECT_TRUE(ended) << victim.name << " never ended itself";
  ASSERT_NO_FATAL_FAILURE(let_back(victim));
  // One that did not end is asked to, so that the wait is bounded.
  ProcessResult end = ended ? victim.daemon->wait() : victim.daemon->stop();
  EXPECT_EQ(end.exit_code, 70) << end.err;
  EXPECT_TRUE(
      log_has_line(end.err, {t1, "its lease ends now and its in-process run has not returned"}))
      << lines_about(end.err, t1);
  EXPECT_FALSE(victim_ran_then) << victim.name << " still ran " << t1 << " in process when "
                                << other.name << " started it again";
  if (daemon.dead()) {
    EXPECT_LT(daemon.wall(), lease_end_wall)
        << victim.name << " ended itself " << (daemon.wall() - lease_end_wall) / 1000000
        << " ms after its lease ended";
    EXPECT_LT(daemon.mono(), again->mono)
        << victim.name << " ended itself " << (daemon.mono() - again->mono) / 1000000
        << " ms after " << other.name << " started " << t1 << " again";
    std::printf(
        "in process: %s ended itself %.0f ms after the cut, %.0f ms after its lease ended; %s "
        "started %s again %.0f ms after the lease ended\n",
        victim.name.c_str(), (daemon.mono() - cut_mono) / 1e6,
        (daemon.wall() - lease_end_wall) / 1e6, other.name.c_str(), t1.c_str(),
        (again->wall - lease_end_wall) / 1e6);
  }

  for (const std::string& id : {t1, key + ":T2"}) {
    Json e = wait_terminal(other, id, 40s);
    EXPECT_EQ(e.value("status", ""), "succeeded") << id << ": " << e.dump();
  }
  ProcessResult other_end = other.daemon->stop();
  EXPECT_EQ(other_end.exit_code, 0) << other_end.err;
  std::vector<RecordedRun> runs = read_runs(records_);
  end_killed_runs(runs, {daemon.dead() ? daemon.mono() : mono_ns()});
  EXPECT_EQ(count_key_overlaps(runs), 0u);
}

// The same partition with an in-process run that honours its stop request: the lease guard
// asks it to stop before the lease's hard end, while the loop waits in a Redis call, so the
// run is over before the other daemon may start the key, and the daemon lives.
TEST_F(ClusterLeaseTest, PartitionedDaemonStopsItsInProcessRunBeforeAnotherTakesTheKey) {
  InProcessCut c;
  ASSERT_NO_FATAL_FAILURE(
      cut_off_in_process_run("inproc", /*ignore_stop=*/false, /*then_t2=*/false, c));
  const std::string& t1 = c.t1;
  const std::optional<Record> first = c.first;
  Node& victim = nodes_[c.victim];
  Node& other = nodes_[1 - c.victim];
  const int64_t cut_mono = c.cut_mono;
  const int64_t lease_end_wall = c.lease_end_wall;
  std::optional<Record> stopped = wait_record(
      [&](const Record& r) { return r.kind == 'E' && r.id == t1 && r.attempt == first->attempt; },
      20s);
  ASSERT_TRUE(stopped) << victim.name << "'s run of " << t1 << " never ended";
  EXPECT_EQ(stopped->how, "stopped");
  EXPECT_LT(stopped->wall, lease_end_wall)
      << victim.name << "'s run ended " << (stopped->wall - lease_end_wall) / 1000000
      << " ms after its lease ended";
  std::optional<Record> again = wait_record(
      [&](const Record& r) { return r.kind == 'S' && r.id == t1 && r.attempt > first->attempt; },
      20s);
  ASSERT_TRUE(again) << t1 << " was never taken over; " << other.name << " said:\n"
                     << lines_about(other.daemon->log(), t1);
  EXPECT_LT(stopped->mono, again->mono);
  std::printf(
      "in process, stopped: %s's run stopped %.0f ms after the cut, %.0f ms before its lease "
      "ended; %s started %s again %.0f ms after the lease ended\n",
      victim.name.c_str(), (stopped->mono - cut_mono) / 1e6, (lease_end_wall - stopped->wall) / 1e6,
      other.name.c_str(), t1.c_str(), (again->wall - lease_end_wall) / 1e6);
  ASSERT_NO_FATAL_FAILURE(let_back(victim));
  Json e = wait_terminal(other, t1, 40s);
  EXPECT_EQ(e.value("status", ""), "succeeded") << t1 << ": " << e.dump();
  for (Node& n : nodes_) {
    ProcessResult end = n.daemon->stop();
    EXPECT_EQ(end.exit_code, 0) << n.name << ":\n" << end.err;
  }
  EXPECT_EQ(count_key_overlaps(read_runs(records_)), 0u);
}

// A renewal that a daemon gave up on (no reply within command_timeout: it reconnected and
// renewed again) may still reach Redis later from the dead connection, as TCP delivers it once
// the path heals. It asks for an older lease end than the renewals after it, and must not
// shorten the lease: another daemon would take the key while the run goes on. The victim's
// connections are frozen until one holds a renewal of T1 (the first request stuck may be
// another), and released once that renewal's lease end has passed; then the other daemon is
// woken to claim (a submission).
TEST_F(ClusterLeaseTest, LateRenewalFromADeadConnectionNeverShortensALease) {
  Settings settings;
  // Recovers from a stuck call well within the lease, with no stop asked meanwhile.
  settings.command_timeout = "500ms";
  settings.kill_grace = "200ms";
  ASSERT_NO_FATAL_FAILURE(start(Cut::kPartition, settings));
  const std::string key = "late";
  const std::string t1 = key + ":T1";
  ASSERT_NO_FATAL_FAILURE(submit(nodes_[0], key, "T1", 10s));
  ASSERT_NO_FATAL_FAILURE(submit(nodes_[0], key, "T2", 200ms));
  std::optional<Record> first =
      wait_record([&](const Record& r) { return r.kind == 'S' && r.id == t1; }, 20s);
  ASSERT_TRUE(first) << t1 << " never started";
  const std::size_t v = hget(t1, "node") == nodes_[0].name ? 0 : 1;
  Node& victim = nodes_[v];
  Node& other = nodes_[1 - v];

  int64_t stuck_until = 0;  // µs
  for (int tries = 0; tries < 10 && stuck_until == 0; ++tries) {
    victim.proxy->freeze_existing();
    wait_until([&] { return renewal_until(victim.proxy->frozen_bytes(), t1) != 0; }, 1500ms);
    stuck_until = renewal_until(victim.proxy->frozen_bytes(), t1);
    if (stuck_until == 0) victim.proxy->release_frozen();
  }
  ASSERT_NE(stuck_until, 0) << "no renewal of " << t1 << " got stuck in 10 tries";
  // Meanwhile the victim renews on a new connection.
  ASSERT_TRUE(wait_until([&] { return lease_score(t1) > stuck_until; }, 5s))
      << victim.name << " did not renew on a new connection:\n"
      << victim.daemon->log();
  std::this_thread::sleep_until(
      std::chrono::system_clock::time_point(std::chrono::microseconds(stuck_until) + 100ms));
  const int64_t before = lease_score(t1);
  victim.proxy->release_frozen();
  int64_t lowest = before;
  for (int i = 0; i < 50; ++i) {
    if (int64_t now = lease_score(t1); now != 0) lowest = std::min(lowest, now);
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_NO_FATAL_FAILURE(submit(other, "nudge", "N", 10ms));
  EXPECT_GE(lowest, before) << "the late renewal moved the lease of " << t1 << " back by "
                            << (before - lowest) / 1000 << " ms, to "
                            << (wall_ns() / 1000 - lowest) / 1000 << " ms ago";

  for (const std::string& id : {t1, key + ":T2", std::string("nudge:N")}) {
    Json e = wait_terminal(other, id, 40s);
    EXPECT_EQ(e.value("status", ""), "succeeded") << id << ": " << e.dump();
  }
  EXPECT_EQ(records_of(read_records(records_), 'S', t1).size(), 1u)
      << t1 << " ran again; " << other.name << " said:\n"
      << lines_about(other.daemon->log(), t1) << victim.name << " said:\n"
      << lines_about(victim.daemon->log(), t1);
  finish();
}

}  // namespace
}  // namespace schedd::testing
