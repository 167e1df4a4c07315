// schedd-http-bench: end-to-end load driver for the HTTP control API (issue #6). Starts the
// real `schedd run` on a temporary config (SQLite store, durability "full", API on port 0),
// then, in this order:
//
//   sse     opens `--sse` (100) server-sent-event connections to GET /v1/stats/stream on the
//           idle daemon and reports its VmRSS growth (/proc/PID/status) with them connected;
//   submit  `--clients` threads, each with one keep-alive connection, post tickets
//           (POST /v1/projects/{P}/tickets over `--projects` projects) until `--total` are
//           acknowledged or `--seconds` pass, while one more thread samples GET /v1/status
//           latency on its own keep-alive connection;
//   sse     the same 100 stream connections again, after the load (heap freed by the load is
//           reused, so this one can read lower; the idle one is the headline).
//
// Every acknowledged ticket is durable: a 201 is sent after the store's commit is fsynced.
// Tickets are due far in the future (`not_before` in 2099) so that the measurement is the
// submission path only: the queue never drains, capacity.queued (which counts due
// executions) is never reached, and no executor or dispatcher work competes for the CPU.
// `--run` submits them due now instead, on the noop executor, to see the cost with dispatch.
//
// Prints one JSON object on stdout. `--quick` is the CI smoke run.
//
// Redis mode (issue #19): `--redis-server` starts a redis-server of its own (free loopback port,
// `--appendonly yes --appendfsync always`, data in the temp dir), `--redis URL` uses one that
// runs; the daemon's store is then Redis (a namespace of its own per run). After the submit
// phase above (single tickets), a bulk phase posts `--bulk-total` executions in
// POST /v1/executions/bulk requests of `--bulk-size`, `--bulk-clients` at once (as
// tests/load/schedd_daemons.js does: ids given, noop, 2099). Each phase reports its rate and
// what it cost Redis: `INFO cpu` (used_cpu_sys + used_cpu_user) and `INFO commandstats`
// (EVALSHA calls) before and after, per acknowledged submission.
//
//   build/release/bin/schedd-http-bench [--quick] [--clients 64] [--total 200000]
//   build/release/bin/schedd-http-bench --redis-server --sse 0 [--schedd OTHER/bin/schedd]
//
// Numbers and how to read them: docs/PERFORMANCE.md, "HTTP API (issue #6)".
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing/daemon_process.h"
#include "tests/testing/http_client.h"
#include "tests/testing/temp_dir.h"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clk = std::chrono::steady_clock;
using schedd::testing::DaemonProcess;
using schedd::testing::HttpClient;
using schedd::testing::TempDir;

double seconds_since(Clk::time_point t) {
  return std::chrono::duration<double>(Clk::now() - t).count();
}

// VmRSS of `pid` in MB (0 when unreadable).
double rss_mb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

struct Options {
  std::string schedd = SCHEDD_BINARY;
  std::string plugin_dir = SCHEDD_PLUGIN_DIR;
  std::size_t clients = 64;
  std::size_t projects = 1000;
  std::size_t total = 200000;
  double seconds = 30;
  std::size_t sse = 100;
  std::string durability = "full";
  bool run = false;
  bool quick = false;
  bool keep = false;
  std::string driver = "async";
  std::string redis;          // a running server's URL
  bool redis_server = false;  // start one of our own
  std::size_t bulk_total = 100000;
  std::size_t bulk_size = 1000;
  std::size_t bulk_clients = 2;
};

// ---- Redis mode ----------------------------------------------------------------------------

// The text of `cmd`'s standard output ("" when it cannot run).
std::string run_output(const std::string& cmd) {
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) return out;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  ::pclose(f);
  return out;
}

// "HOST PORT" of a redis://[:PASSWORD@]HOST[:PORT][/DB] URL, as redis-cli options.
std::string cli_target(const std::string& url) {
  std::string rest = url.substr(url.find("://") == std::string::npos ? 0 : url.find("://") + 3);
  rest = rest.substr(0, rest.find('/'));
  if (auto at = rest.rfind('@'); at != std::string::npos) rest = rest.substr(at + 1);
  const auto colon = rest.find(':');
  const std::string host = colon == std::string::npos ? rest : rest.substr(0, colon);
  const std::string port = colon == std::string::npos ? "6379" : rest.substr(colon + 1);
  return "-h " + host + " -p " + port;
}

// The server's CPU time (used_cpu_sys + used_cpu_user, seconds) and its EVALSHA calls so far.
struct RedisCost {
  double cpu_seconds = 0;
  double evalsha_calls = 0;
};
RedisCost redis_cost(const std::string& url) {
  std::map<std::string, std::string> info;
  const std::string text = run_output("redis-cli " + cli_target(url) + " INFO all 2>/dev/null");
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (auto colon = line.find(':'); colon != std::string::npos) {
      info[line.substr(0, colon)] = line.substr(colon + 1);
    }
    pos = end + 1;
  }
  RedisCost c;
  c.cpu_seconds =
      std::atof(info["used_cpu_sys"].c_str()) + std::atof(info["used_cpu_user"].c_str());
  const std::string& ev = info["cmdstat_evalsha"];  // calls=N,usec=...
  if (auto p = ev.find("calls="); p != std::string::npos)
    c.evalsha_calls = std::atof(ev.c_str() + p + 6);
  return c;
}

// A redis-server of the bench's own, on a free loopback port, its append-only file fsynced on
// every write, its data in `dir`. Shut down (SHUTDOWN NOSAVE) on destruction.
class OwnRedis {
 public:
  explicit OwnRedis(const std::filesystem::path& dir) {
    port_ = free_port();
    std::filesystem::create_directories(dir);
    const std::string cmd = "redis-server --port " + std::to_string(port_) +
                            " --bind 127.0.0.1 --daemonize yes" + " --pidfile " +
                            (dir / "redis.pid").string() + " --dir " + dir.string() +
                            " --appendonly yes --appendfsync always --save '' --logfile " +
                            (dir / "redis.log").string();
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("cannot start: " + cmd);
    for (int i = 0; i < 200; ++i) {
      if (run_output("redis-cli -p " + std::to_string(port_) + " PING 2>/dev/null")
              .starts_with("PONG")) {
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    throw std::runtime_error("redis-server on port " + std::to_string(port_) + " did not answer");
  }
  ~OwnRedis() {
    (void)std::system(
        ("redis-cli -p " + std::to_string(port_) + " SHUTDOWN NOSAVE >/dev/null 2>&1").c_str());
  }
  OwnRedis(const OwnRedis&) = delete;
  OwnRedis& operator=(const OwnRedis&) = delete;
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }

 private:
  static int free_port() {
    net::io_context ioc;
    tcp::acceptor a(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    return a.local_endpoint().port();
  }
  int port_ = 0;
};

std::string config_text(const Options& o, const TempDir& dir, const std::string& redis_url) {
  const std::string store = redis_url.empty()
                                ? "store = \"sqlite:" + (dir / "state" / "schedd.db").string() +
                                      "\"\ndurability = \"" + o.durability + "\"\n"
                                : "store = \"" + redis_url + "\"\n";
  const std::string redis =
      redis_url.empty() ? ""
                        : "\n[redis]\nnamespace = \"bench-" + std::to_string(::getpid()) + "\"\n";
  return "[daemon]\nplugin_dir = \"" + o.plugin_dir + "\"\n" + store +
         "log_level = \"info\"\n\n[api]\nlisten = \"127.0.0.1:0\"\n\n"
         "[capacity]\nqueued = 100000000\n\n[lanes.default]\nworkers = 2\n\n"
         "[tickets]\nexecutor = \"noop\"\n" +
         redis;
}

struct Sse {
  double before_mb = 0, after_mb = 0;
  std::size_t connected = 0;
};

// `n` stream connections, each having read its first event; the daemon's RSS before and with
// them connected (after a second, so that a few pushes have gone out).
Sse sse_phase(const DaemonProcess& d, std::size_t n) {
  Sse out;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  out.before_mb = rss_mb(d.pid());
  std::vector<std::unique_ptr<HttpClient>> streams;
  for (std::size_t i = 0; i < n; ++i) {
    auto c = std::make_unique<HttpClient>("127.0.0.1", d.port());
    auto r = c->open_stream("/v1/stats/stream", "event: stats");
    if (r.status != 200) {
      std::cerr << "stream " << i << ": " << r.status << " " << r.body << "\n";
      continue;
    }
    ++out.connected;
    streams.push_back(std::move(c));
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  out.after_mb = rss_mb(d.pid());
  streams.clear();
  return out;
}

struct Submit {
  std::size_t created = 0, errors = 0;
  double seconds = 0;
  std::vector<double> submit_ms, status_ms;
  std::size_t status_errors = 0;
};

// One keep-alive connection of the async driver: posts its tickets one after another, each as
// soon as the previous answer arrived. All connections share one thread (an io_context), so
// the driver costs little CPU and no thread switch per request on the 2 cores it shares with
// the daemon.
class AsyncSubmitter : public std::enable_shared_from_this<AsyncSubmitter> {
 public:
  struct Shared {
    const Options& o;
    Clk::time_point deadline;
    std::string extra;
    std::atomic<std::size_t>& created;
    std::atomic<std::size_t>& errors;
  };
  AsyncSubmitter(net::io_context& ioc, Shared& shared, std::size_t index, std::size_t count,
                 std::vector<double>& lat)
      : stream_(ioc), shared_(shared), index_(index), count_(count), lat_(lat) {}

  void start(const tcp::endpoint& ep) {
    stream_.async_connect(ep, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->fail("connect", ec);
      self->next();
    });
  }

 private:
  void next() {
    if (sent_ >= count_ || Clk::now() >= shared_.deadline) return;
    const std::size_t n = index_ * count_ + sent_++;
    req_ = {};
    req_.method(http::verb::post);
    req_.target("/v1/projects/p" + std::to_string(n % shared_.o.projects) + "/tickets");
    req_.version(11);
    req_.set(http::field::host, "127.0.0.1");
    req_.set(http::field::content_type, "application/json");
    req_.body() = R"({"ticket":"t)" + std::to_string(n) + "\"" + shared_.extra + "}";
    req_.prepare_payload();
    started_ = Clk::now();
    http::async_write(
        stream_, req_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
          if (ec) return self->fail("write", ec);
          self->res_ = {};
          http::async_read(self->stream_, self->buf_, self->res_,
                           [self](beast::error_code ec, std::size_t) {
                             if (ec) return self->fail("read", ec);
                             self->lat_.push_back(seconds_since(self->started_) * 1000);
                             if (self->res_.result_int() == 201) {
                               ++self->shared_.created;
                             } else if (++self->shared_.errors <= 5) {
                               std::cerr << "submit: " << self->res_.result_int() << " "
                                         << self->res_.body() << "\n";
                             }
                             self->next();
                           });
        });
  }
  void fail(const char* what, beast::error_code ec) {
    if (++shared_.errors <= 5) std::cerr << "submit " << what << ": " << ec.message() << "\n";
  }

  beast::tcp_stream stream_;
  Shared& shared_;
  std::size_t index_, count_, sent_ = 0;
  std::vector<double>& lat_;
  beast::flat_buffer buf_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
  Clk::time_point started_;
};

// Samples GET /v1/status every 5 ms on its own keep-alive connection until `done`.
std::thread status_sampler(const DaemonProcess& d, std::atomic<bool>& done, Submit& out) {
  return std::thread([&d, &done, &out] {
    HttpClient client("127.0.0.1", d.port());
    while (!done) {
      const auto s = Clk::now();
      auto r = client.get("/v1/status");
      if (r.status == 200) {
        out.status_ms.push_back(seconds_since(s) * 1000);
      } else {
        ++out.status_errors;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
}

// Ends a submit phase that started at `t0`: stops the status sampler, gathers the counts and
// every connection's latencies into `out`.
Submit finish(Submit& out, Clk::time_point t0, std::atomic<bool>& done, std::thread& sampler,
              const std::atomic<std::size_t>& created, const std::atomic<std::size_t>& errors,
              const std::vector<std::vector<double>>& lat) {
  out.seconds = seconds_since(t0);
  done = true;
  sampler.join();
  out.created = created;
  out.errors = errors;
  for (const auto& v : lat) out.submit_ms.insert(out.submit_ms.end(), v.begin(), v.end());
  return std::move(out);
}

// The submit phase with the async driver: --clients connections on one thread.
Submit submit_phase_async(const Options& o, const DaemonProcess& d) {
  const std::size_t per_client = (o.total + o.clients - 1) / o.clients;
  std::atomic<bool> done{false};
  std::atomic<std::size_t> created{0}, errors{0};
  std::vector<std::vector<double>> lat(o.clients);
  for (auto& v : lat) v.reserve(per_client);
  Submit out;
  AsyncSubmitter::Shared shared{
      o,
      Clk::now() +
          std::chrono::duration_cast<Clk::duration>(std::chrono::duration<double>(o.seconds)),
      o.run ? "" : R"(,"not_before":"2099-01-01T00:00:00Z")", created, errors};
  net::io_context ioc(1);
  const tcp::endpoint ep(net::ip::make_address("127.0.0.1"), d.port());
  for (std::size_t c = 0; c < o.clients; ++c) {
    std::make_shared<AsyncSubmitter>(ioc, shared, c, per_client, lat[c])->start(ep);
  }
  std::thread sampler = status_sampler(d, done, out);
  const auto t0 = Clk::now();
  ioc.run();
  return finish(out, t0, done, sampler, created, errors, lat);
}

Submit submit_phase(const Options& o, const DaemonProcess& d) {
  const std::size_t per_client = (o.total + o.clients - 1) / o.clients;
  const std::string extra = o.run ? "" : R"(,"not_before":"2099-01-01T00:00:00Z")";
  std::atomic<bool> done{false};
  std::atomic<std::size_t> created{0}, errors{0};
  std::vector<std::vector<double>> lat(o.clients);
  // Connect every client first (one warm-up ticket each), then start the clock.
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (std::size_t c = 0; c < o.clients; ++c) {
    clients.push_back(std::make_unique<HttpClient>("127.0.0.1", d.port()));
    auto r = clients.back()->post("/v1/projects/warmup/tickets",
                                  R"({"ticket":"w)" + std::to_string(c) + "\"" + extra + "}");
    if (r.status != 201) std::cerr << "warm-up: " << r.status << " " << r.body << "\n";
  }
  Submit out;
  const auto deadline = Clk::now() + std::chrono::duration<double>(o.seconds);
  const auto t0 = Clk::now();
  std::vector<std::thread> threads;
  for (std::size_t c = 0; c < o.clients; ++c) {
    threads.emplace_back([&, c] {
      HttpClient& client = *clients[c];
      lat[c].reserve(per_client);
      for (std::size_t i = 0; i < per_client && Clk::now() < deadline; ++i) {
        const std::size_t n = c * per_client + i;
        const std::string target = "/v1/projects/p" + std::to_string(n % o.projects) + "/tickets";
        const std::string body = R"({"ticket":"t)" + std::to_string(n) + "\"" + extra + "}";
        const auto s = Clk::now();
        auto r = client.post(target, body);
        lat[c].push_back(seconds_since(s) * 1000);
        if (r.status == 201) {
          ++created;
        } else if (++errors <= 5) {
          std::cerr << "submit: " << r.status << " " << r.body << "\n";
        }
      }
    });
  }
  std::thread sampler = status_sampler(d, done, out);
  for (auto& t : threads) t.join();
  return finish(out, t0, done, sampler, created, errors, lat);
}

struct Bulk {
  std::size_t created = 0, errors = 0, requests = 0;
  double seconds = 0;
};

// The bulk phase: `--bulk-clients` threads, each with one keep-alive connection, post
// POST /v1/executions/bulk requests of `--bulk-size` executions until `--bulk-total` are
// acknowledged or `--seconds` pass.
Bulk bulk_phase(const Options& o, const DaemonProcess& d) {
  const std::string nb = o.run ? "" : R"(,"not_before":"2099-01-01T00:00:00Z")";
  const std::size_t chunks = (o.bulk_total + o.bulk_size - 1) / o.bulk_size;
  std::atomic<std::size_t> next{0}, created{0}, errors{0}, requests{0};
  const auto deadline = Clk::now() + std::chrono::duration<double>(o.seconds);
  const auto t0 = Clk::now();
  std::vector<std::thread> threads;
  for (std::size_t c = 0; c < o.bulk_clients; ++c) {
    threads.emplace_back([&] {
      HttpClient client("127.0.0.1", d.port());
      for (std::size_t k = next++; k < chunks && Clk::now() < deadline; k = next++) {
        std::string body = R"({"executions":[)";
        const std::size_t end = std::min(o.bulk_total, (k + 1) * o.bulk_size);
        for (std::size_t n = k * o.bulk_size; n < end; ++n) {
          if (n > k * o.bulk_size) body += ',';
          body += R"({"id":"b)" + std::to_string(n) + R"(","executor":"noop","key":"p)" +
                  std::to_string(n % o.projects) + "\"" + nb + "}";
        }
        body += "]}";
        auto r = client.post("/v1/executions/bulk", body);
        ++requests;
        if (r.status == 201) {
          created += end - k * o.bulk_size;
        } else if (++errors <= 5) {
          std::cerr << "bulk: " << r.status << " " << r.body.substr(0, 300) << "\n";
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  Bulk out;
  out.seconds = seconds_since(t0);
  out.created = created;
  out.errors = errors;
  out.requests = requests;
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"schedd-http-bench: end-to-end load driver for the HTTP control API"};
  app.add_option("--schedd", o.schedd, "The schedd binary");
  app.add_option("--plugin-dir", o.plugin_dir, "Folder with noop.so");
  app.add_option("--clients", o.clients, "Submitting threads, one keep-alive connection each")
      ->check(CLI::Range(1, 1000));
  app.add_option("--projects", o.projects, "Projects the tickets are spread over")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--total", o.total, "Tickets to submit (the phase ends at --seconds anyway)");
  app.add_option("--seconds", o.seconds, "Longest submit phase");
  app.add_option("--sse", o.sse, "Stream clients")->check(CLI::Range(0, 1000));
  app.add_option("--durability", o.durability, "sqlite durability: full or batch")
      ->check(CLI::IsMember({"full", "batch"}));
  app.add_option("--driver", o.driver,
                 "async: every connection on one driver thread; threads: a thread per "
                 "connection (blocking client)")
      ->check(CLI::IsMember({"async", "threads"}));
  app.add_option("--redis", o.redis, "Redis mode on this running server (redis://HOST:PORT/DB)");
  app.add_flag("--redis-server", o.redis_server,
               "Redis mode on a redis-server of its own (appendfsync always)");
  app.add_option("--bulk-total", o.bulk_total, "Redis mode: executions of the bulk phase");
  app.add_option("--bulk-size", o.bulk_size, "Redis mode: executions per bulk request")
      ->check(CLI::Range(1, 10000));
  app.add_option("--bulk-clients", o.bulk_clients, "Redis mode: bulk requests at once")
      ->check(CLI::Range(1, 64));
  app.add_flag("--run", o.run, "Tickets due now (noop runs them) instead of in 2099");
  app.add_flag("--keep", o.keep, "Write the daemon's log to $TMPDIR/schedd-http-bench.log");
  app.add_flag("--quick", o.quick, "Smaller run for CI smoke tests");
  CLI11_PARSE(app, argc, argv);
  if (o.quick) {
    o.total = std::min<std::size_t>(o.total, 2000);
    o.sse = std::min<std::size_t>(o.sse, 10);
    o.seconds = std::min(o.seconds, 20.0);
    o.bulk_total = std::min<std::size_t>(o.bulk_total, 2000);
  }

  TempDir dir;
  std::unique_ptr<OwnRedis> own_redis;
  if (o.redis_server) own_redis = std::make_unique<OwnRedis>(dir / "redis");
  const std::string redis_url = own_redis ? own_redis->url() : o.redis;
  auto config = dir.write("schedd.toml", config_text(o, dir, redis_url));
  DaemonProcess daemon(config, {}, {}, o.schedd);
  if (!daemon.wait_ready()) {
    std::cerr << "schedd did not start:\n" << daemon.log();
    return 1;
  }
  // For `perf record -g -p PID` while it runs.
  std::cerr << "schedd pid " << daemon.pid() << ", API on 127.0.0.1:" << daemon.port() << "\n";
  const double rss_idle = rss_mb(daemon.pid());
  Sse sse_idle = sse_phase(daemon, o.sse);
  const RedisCost cost0 = redis_url.empty() ? RedisCost{} : redis_cost(redis_url);
  Submit sub = o.driver == "async" ? submit_phase_async(o, daemon) : submit_phase(o, daemon);
  const RedisCost cost1 = redis_url.empty() ? RedisCost{} : redis_cost(redis_url);
  Bulk bulk;
  if (!redis_url.empty()) bulk = bulk_phase(o, daemon);
  const RedisCost cost2 = redis_url.empty() ? RedisCost{} : redis_cost(redis_url);
  const double rss_loaded = rss_mb(daemon.pid());
  Sse sse_loaded = sse_phase(daemon, o.sse);
  const std::string log = daemon.log();
  const int exit_code = daemon.stop().exit_code;
  if (o.keep) {
    std::ofstream(dir.path().parent_path() / "schedd-http-bench.log") << log;
    std::cerr << "log: " << (dir.path().parent_path() / "schedd-http-bench.log").string() << "\n";
  }

  nlohmann::ordered_json j;
  j["http_submit_per_second"] = static_cast<double>(sub.created) / sub.seconds;
  j["http_status_p99_ms"] = percentile(sub.status_ms, 0.99);
  j["sse_clients_rss_mb"] = sse_idle.after_mb - sse_idle.before_mb;
  j["clients"] = o.clients;
  j["driver"] = o.driver;
  j["projects"] = o.projects;
  j["durability"] = o.durability;
  j["due"] = o.run ? "now" : "2099";
  j["total"] = sub.created;
  j["errors"] = sub.errors;
  j["seconds"] = sub.seconds;
  j["submit_p50_ms"] = percentile(sub.submit_ms, 0.50);
  j["submit_p99_ms"] = percentile(sub.submit_ms, 0.99);
  j["status_samples"] = sub.status_ms.size();
  j["status_errors"] = sub.status_errors;
  j["status_p50_ms"] = percentile(sub.status_ms, 0.50);
  j["status_max_ms"] = sub.status_ms.empty() ? 0 : sub.status_ms.back();
  j["sse_clients"] = sse_idle.connected;
  j["rss_idle_mb"] = rss_idle;
  j["rss_sse_before_mb"] = sse_idle.before_mb;
  j["rss_sse_after_mb"] = sse_idle.after_mb;
  j["rss_after_submit_mb"] = rss_loaded;
  j["sse_clients_rss_mb_after_load"] = sse_loaded.after_mb - sse_loaded.before_mb;
  j["daemon_exit"] = exit_code;
  if (!redis_url.empty()) {
    auto per = [](double v, std::size_t n) { return n == 0 ? 0.0 : v / static_cast<double>(n); };
    j["store"] = "redis";
    j["redis"] = redis_url;
    j["redis_cpu_us_per_submit"] = per((cost1.cpu_seconds - cost0.cpu_seconds) * 1e6, sub.created);
    j["redis_evalsha_per_submit"] = per(cost1.evalsha_calls - cost0.evalsha_calls, sub.created);
    j["bulk_per_second"] = static_cast<double>(bulk.created) / bulk.seconds;
    j["bulk_total"] = bulk.created;
    j["bulk_errors"] = bulk.errors;
    j["bulk_size"] = o.bulk_size;
    j["bulk_clients"] = o.bulk_clients;
    j["bulk_seconds"] = bulk.seconds;
    j["redis_cpu_us_per_bulk_item"] =
        per((cost2.cpu_seconds - cost1.cpu_seconds) * 1e6, bulk.created);
    j["redis_evalsha_per_bulk_item"] = per(cost2.evalsha_calls - cost1.evalsha_calls, bulk.created);
  }
  std::cout << j.dump() << std::endl;
  const bool ok = sub.created > 0 && sub.errors == 0 && bulk.errors == 0 &&
                  (redis_url.empty() || bulk.created > 0) && sse_idle.connected == o.sse &&
                  sse_loaded.connected == o.sse && exit_code == 0;
  return ok ? 0 : 1;
}
