// The HTTP control API end to end: real HTTP on port 0 (a Beast client), the real Beast
// server, the routing layer, an Engine with real plugins loaded by the real PluginHost, the
// in-memory store and the real clock. Waits are bounded waits for a condition, never sleeps.
#include "core/api/api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <date/date.h>
#include <fmt/format.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <chrono>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>

#include "core/control/validate.h"
#include "core/store/memory_store.h"
#include "core/store/sqlite_store.h"
#include "tests/testing/http_client.h"
#include "tests/testing/openapi_validator.h"
#include "tests/testing/sqlite_rows.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace schedd::api {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using namespace std::chrono_literals;

// Polls `condition` until it holds or `timeout` (real time) passes.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return condition();
}

// Bounds every blocking read and write of a test socket, so a broken server fails the test
// instead of hanging it.
void set_socket_timeouts(tcp::socket& s, std::chrono::seconds t = 10s) {
  timeval tv{static_cast<time_t>(t.count()), 0};
  setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

struct Response {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;
  json j;
  std::string code() const {
    return j.is_object() && j.contains("error") ? j["error"].value("code", "") : "";
  }
  std::string message() const {
    return j.is_object() && j.contains("error") ? j["error"].value("message", "") : "";
  }
};

// Every answer an HttpClient (tests/testing/http_client.h) receives anywhere in this test
// binary is checked against openapi.yaml too: the daemon tests that use it (reload, service,
// crash, cluster, ...) see answers these tests may not. A connection that failed (status 0)
// has no answer to check.
const bool kHttpClientAnswersAreChecked = [] {
  schedd::testing::HttpClient::observer() = [](const std::string& method, const std::string& target,
                                               int status,
                                               const std::map<std::string, std::string>& headers,
                                               const std::string& body) {
    if (status == 0) return;
    if (std::string why =
            schedd::testing::OpenApiValidator::docs().check(method, target, status, headers, body);
        !why.empty()) {
      ADD_FAILURE() << "openapi.yaml (HttpClient): " << why;
    }
  };
  return true;
}();

// One request on its own connection.
Response request(uint16_t port, const std::string& method, const std::string& target,
                 const std::string& body = "", const std::string& token = "",
                 std::map<std::string, std::string> extra = {}) {
  net::io_context ioc;
  tcp::socket sock(ioc);
  sock.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  set_socket_timeouts(sock);
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "127.0.0.1");
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  for (auto& [k, v] : extra) req.set(k, v);
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  http::write(sock, req);
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(boost::none);
  parser.skip(method == "HEAD");  // a HEAD answer has a Content-Length but no body
  http::read(sock, buf, parser);
  const auto& res = parser.get();
  Response r;
  r.status = res.result_int();
  r.body = res.body();
  for (const auto& f : res) r.headers[std::string(f.name_string())] = std::string(f.value());
  r.j = json::parse(r.body, nullptr, false);
  // Every answer a test receives is what docs/openapi.yaml says it may be.
  if (std::string why = schedd::testing::OpenApiValidator::docs().check(method, target, r.status,
                                                                        r.headers, r.body);
      !why.empty()) {
    ADD_FAILURE() << "openapi.yaml: " << why;
  }
  return r;
}

// A server-sent events client built on Beast's parser (chunk callbacks).
class SseClient {
 public:
  // next() throws when no data comes for `timeout`.
  explicit SseClient(uint16_t port, std::chrono::seconds timeout = 10s)
      : sock_(ioc_), timeout_(timeout) {
    sock_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    set_socket_timeouts(sock_, timeout);
    http::request<http::empty_body> req{http::verb::get, "/v1/stats/stream", 11};
    req.set(http::field::host, "127.0.0.1");
    http::write(sock_, req);
    on_chunk_ = [this](std::uint64_t, beast::string_view data, beast::error_code&) {
      text_.append(data.data(), data.size());
      return data.size();
    };
    parser_.on_chunk_body(on_chunk_);
    http::read_header(sock_, buf_, parser_);
    sock_.non_blocking(true);
  }
  int status() { return parser_.get().result_int(); }
  std::string content_type() { return std::string(parser_.get()[http::field::content_type]); }

  // The next event (name, data), "message" for an event without a name as EventSource names
  // it; throws on a read timeout or a closed stream.
  std::pair<std::string, std::string> next() {
    for (;;) {
      if (auto end = text_.find("\n\n"); end != std::string::npos) {
        std::string block = text_.substr(0, end);
        text_.erase(0, end + 2);
        std::string name, data;
        std::size_t pos = 0;
        while (pos <= block.size()) {
          std::size_t nl = block.find('\n', pos);
          if (nl == std::string::npos) nl = block.size();
          std::string line = block.substr(pos, nl - pos);
          pos = nl + 1;
          if (line.rfind("event: ", 0) == 0) name = line.substr(7);
          if (line.rfind("data: ", 0) == 0) data += line.substr(6);
        }
        if (!data.empty()) return {name.empty() ? "message" : name, data};
        continue;  // a comment or retry line
      }
      // Asio's blocking read would wait on past SO_RCVTIMEO: the socket is non-blocking and
      // the wait is bounded here.
      beast::error_code ec;
      http::read_some(sock_, buf_, parser_, ec);
      if (ec == net::error::would_block) {
        pollfd fd{sock_.native_handle(), POLLIN, 0};
        if (::poll(&fd, 1, static_cast<int>(timeout_.count() * 1000)) == 0) {
          throw std::runtime_error("no data for " + std::to_string(timeout_.count()) + " s");
        }
      } else if (ec) {
        throw beast::system_error(ec);
      }
    }
  }
  // Reads stats events until one satisfies `pred` (each wait bounded by the timeout).
  json wait_stats(const std::function<bool(const json&)>& pred, int max_events = 1000) {
    for (int i = 0; i < max_events; ++i) {
      auto [name, data] = next();
      if (name != "stats") continue;
      json j = json::parse(data);
      if (pred(j)) return j;
    }
    return json();
  }

 private:
  net::io_context ioc_;
  tcp::socket sock_;
  std::chrono::seconds timeout_;
  beast::flat_buffer buf_;
  http::response_parser<http::empty_body> parser_;
  std::function<std::size_t(std::uint64_t, beast::string_view, beast::error_code&)> on_chunk_;
  std::string text_;
};

const char* kConfig = R"([lanes.default]
workers = 2
[capacity]
queued = 100
[tickets]
executor = "sleep"
[helpers.hourly]
executor = "noop"
schedule = { every = "1h" }
[helpers.sleeper]
executor = "sleep"
schedule = { every = "1h" }
params = { duration = "1ms" }
)";

class Harness {
 public:
  // `store`: the store to serve (default: a MemoryStore).
  explicit Harness(const std::string& toml = kConfig, ApiOptions options = {},
                   HttpServerOptions server = {}, std::unique_ptr<Store> store = nullptr)
      : owned_(store ? std::move(store) : std::make_unique<MemoryStore>()), store_(*owned_) {
    std::vector<PluginLoadError> errors;
    EXPECT_TRUE(plugins_.load_dir(SCHEDD_PLUGIN_DIR, PluginErrorPolicy::kFail, errors).is_ok());
    std::vector<ConfigError> cerrors;
    auto cfg = parse_config(toml, "api.toml", cerrors);
    for (const auto& e : cerrors) ADD_FAILURE() << e.to_string();
    config_ = std::move(*cfg);
    validate_helpers(config_, plugins_, cerrors);
    for (const auto& e : cerrors) ADD_FAILURE() << e.to_string();
    engine_ = std::make_unique<Engine>(config_, store_, SystemClock::instance(), plugins_, "n1");
    EXPECT_TRUE(engine_->start().is_ok());
    // The first planning round is done when every helper has a planning watermark.
    EXPECT_TRUE(eventually([&] {
      for (const auto& h : config_.helpers) {
        auto state = store_.helper_state(h.name);
        if (!state || !state->planned_until) return false;
      }
      return true;
    }));
    server.listen = "127.0.0.1:0";
    auto s = ApiService::start(*engine_, std::move(options), std::move(server));
    if (!s.is_ok()) {
      ADD_FAILURE() << s.status().to_string();
      return;
    }
    service_ = std::move(s).value();
  }
  ~Harness() {
    if (service_) service_->stop();
    engine_->stop(0ms);
  }

  uint16_t port() const { return service_->port(); }
  Response get(const std::string& target, const std::string& token = "") {
    return request(port(), "GET", target, "", token);
  }
  Response post(const std::string& target, const std::string& body = "",
                const std::string& token = "") {
    return request(port(), "POST", target, body, token);
  }
  Response call(const std::string& method, const std::string& target, const std::string& body = "",
                const std::string& token = "") {
    return request(port(), method, target, body, token);
  }
  std::string status_of(const std::string& id) {
    Response r = get("/v1/executions/" + id);
    return r.j.is_object() ? r.j.value("status", "") : "";
  }
  bool wait_status(const std::string& id, const std::string& status) {
    return eventually([&] { return status_of(id) == status; });
  }
  std::size_t stored() {
    ExecutionFilter f;
    f.limit = 1000000;
    return store_.list(f).size();
  }

  Engine& engine() { return *engine_; }
  Store& store() { return store_; }

 private:
  PluginHost plugins_;
  Config config_;
  std::unique_ptr<Store> owned_;
  Store& store_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<ApiService> service_;
};

TEST(ApiTest, HealthReadyStatusStatsLanesAndMetrics) {
  Harness h;
  Response r = h.get("/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.j["status"], "ok");
  EXPECT_EQ(r.headers["Content-Type"], "application/json");

  r = h.get("/readyz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.j["ready"], true);

  r = h.get("/v1/status");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.j["node"], "n1");
  EXPECT_EQ(r.j["store"], "memory");
  EXPECT_EQ(r.j["version"], SCHEDD_VERSION);
  EXPECT_EQ(r.j["helpers"]["total"], 2);
  EXPECT_EQ(r.j["capacity"]["queued"], 100);
  EXPECT_EQ(r.j["capacity"]["running"], 2);
  EXPECT_EQ(r.j["lanes"][0]["name"], "default");

  r = h.get("/v1/stats");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.j["runningCapacity"], 2);
  EXPECT_EQ(r.j["queuedCapacity"], 100);
  EXPECT_EQ(r.j["lanes"]["default"]["runningCapacity"], 2);

  r = h.get("/v1/lanes");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.j["lanes"][0]["workers"], 2);

  Response s = h.post("/v1/executions", R"({"executor":"noop"})");
  ASSERT_EQ(s.status, 201) << s.body;
  ASSERT_TRUE(h.wait_status(s.j["id"], "succeeded"));
  r = h.get("/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(r.body.find("schedd_build_info{version=\"" SCHEDD_VERSION), std::string::npos);
  EXPECT_NE(
      r.body.find(
          "schedd_executions_total{origin=\"adhoc\",lane=\"default\",status=\"succeeded\"} 1"),
      std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("schedd_queued{lane=\"default\"} 0"), std::string::npos);
  EXPECT_NE(r.body.find("schedd_run_duration_seconds_count 1"), std::string::npos);
  EXPECT_NE(r.body.find("schedd_start_lag_seconds_bucket{le=\"+Inf\"} 1"), std::string::npos);
}

TEST(ApiTest, SubmitsAndShowsAnExecutionWithItsTimeline) {
  Harness h;
  Response r = h.post("/v1/executions",
                      R"({"executor":"sleep","params":{"duration":"1ms"},"priority":2,
                          "key":"k1","expiry":"10m","name":"nap"})");
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string id = r.j["id"];
  EXPECT_EQ(r.j["position"], 1);
  EXPECT_EQ(r.headers["Location"], "/v1/executions/" + id);
  ASSERT_TRUE(h.wait_status(id, "succeeded"));
  r = h.get("/v1/executions/" + id);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.j["key"], "k1");
  EXPECT_EQ(r.j["priority"], 2);
  EXPECT_EQ(r.j["name"], "nap");
  EXPECT_EQ(r.j["origin"], "adhoc");
  EXPECT_EQ(r.j["params"]["duration"], "1ms");
  EXPECT_EQ(r.j["node"], "n1");
  ASSERT_TRUE(r.j["timeline"].is_array());
  EXPECT_EQ(r.j["timeline"].back()["event"], "succeeded");
  EXPECT_FALSE(r.j["started"].is_null());

  // A helper's executor and params, with an explicit id and a later not_before.
  r = h.post("/v1/executions",
             R"({"helper":"sleeper","id":"mine-1","not_before":"2099-01-01T00:00:00Z"})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.j["id"], "mine-1");
  EXPECT_EQ(r.j["execution"]["executor"], "sleep");
  EXPECT_EQ(r.j["execution"]["not_before"], "2099-01-01T00:00:00.000Z");
  r = h.post("/v1/executions", R"({"helper":"sleeper","id":"mine-1"})");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.code(), "already_exists");
}

std::unique_ptr<Store> sqlite_store(const std::filesystem::path& path, SqliteOptions o = {}) {
  auto s = SqliteStore::open(path, o);
  EXPECT_TRUE(s.is_ok()) << s.status().to_string();
  return s.is_ok() ? std::unique_ptr<Store>(std::move(s).value()) : nullptr;
}

// With the durable store, a submission is answered 201 only once it is in the file, while
// many clients submit at once over keep-alive connections (their answers come from the
// store's writer, not from a thread per request); a repeated ticket is idempotent.
TEST(ApiTest, DurableSubmissionsAreAnsweredOnlyOnceOnDisk) {
  schedd::testing::TempDir dir;
  const auto path = dir.path() / "schedd.db";
  SqliteOptions o;
  o.checkpoint_pages = 1u << 30;  // CrashCopy reads the files: no checkpoint meanwhile
  Harness h(kConfig, ApiOptions{}, HttpServerOptions{}, sqlite_store(path, o));
  constexpr int kClients = 8, kEach = 40;
  std::atomic<int> created{0}, missing{0}, other{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      schedd::testing::HttpClient client("127.0.0.1", h.port());
      for (int i = 0; i < kEach; ++i) {
        const std::string project = "p" + std::to_string(c);
        auto r = client.post(
            "/v1/projects/" + project + "/tickets",
            R"({"ticket":"t)" + std::to_string(i) +
                R"(","params":{"duration":"1ms"},"not_before":"2099-01-01T00:00:00Z"})");
        json j = json::parse(r.body, nullptr, false);
        if (r.status != 201 || !j.is_object() || j.value("position", 0) != i + 1) {
          ++other;
          continue;
        }
        ++created;
        // The files as a crash now would leave them (the store's own file is locked).
        schedd::testing::CrashCopy copy(path);
        if (!schedd::testing::execution_on_disk(copy.db(), j.value("id", ""))) ++missing;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(created.load(), kClients * kEach);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(missing.load(), 0) << "answered 201 before the row was in the file";

  Response again =
      h.post("/v1/projects/p0/tickets", R"({"ticket":"t0","params":{"duration":"1ms"}})");
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.j.value("created", true), false);
  EXPECT_EQ(again.j.value("position", 0), 1);

  Response e = h.post("/v1/executions", R"({"executor":"noop","id":"durable-1",
                                            "not_before":"2099-01-01T00:00:00Z"})");
  ASSERT_EQ(e.status, 201) << e.body;
  // A backup taken over the API has it, and every ticket.
  Response backup = h.post("/v1/store/backup", "");
  ASSERT_EQ(backup.status, 200) << backup.body.substr(0, 300);
  schedd::testing::BackupCopy copy(backup.body);
  ASSERT_NE(copy.db(), nullptr);
  EXPECT_TRUE(schedd::testing::execution_on_disk(copy.db(), "durable-1"));
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(copy.db(), "SELECT count(*) FROM executions", -1, &st, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_GE(sqlite3_column_int(st, 0), kClients * kEach + 1);  // and the helpers' planned runs
  sqlite3_finalize(st);
}

// POST /v1/store/backup with a store that has no file: 409 naming the store.
TEST(ApiTest, AStoreBackupNeedsAnSqliteStore) {
  Harness h(kConfig);
  Response r = h.post("/v1/store/backup", "");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(r.code(), "failed_precondition") << r.body;
  EXPECT_NE(r.body.find("no file to back up"), std::string::npos) << r.body;
}

// A submission accepted in memory whose write then fails is answered 503 (not 201): the
// answer waits for the commit, and the commit failed.
TEST(ApiTest, ASubmissionWhoseWriteFailsIsAnswered503) {
  schedd::testing::TempDir dir;
  SqliteOptions o;
  o.max_pages = 8;  // a "full disk" of 32 KiB
  // Params of 100,000 bytes, over the default [api] max_param_bytes: raised for this test.
  Harness h("[lanes.default]\nworkers = 1\n[api]\nmax_param_bytes = 200000\n", ApiOptions{},
            HttpServerOptions{}, sqlite_store(dir.path() / "schedd.db", o));
  const std::string command(100000, 'x');
  Response r = h.post("/v1/executions", R"({"executor":"shell","params":{"command":")" + command +
                                            R"("},"not_before":"2099-01-01T00:00:00Z"})");
  EXPECT_EQ(r.status, 503) << r.body.substr(0, 300);
  EXPECT_EQ(r.code(), "unavailable");
  EXPECT_NE(r.message().find("not acknowledged"), std::string::npos) << r.message();
  // The daemon still answers, and says why it is not ready.
  Response ready = h.get("/readyz");
  EXPECT_EQ(ready.status, 503) << ready.body;
}

TEST(ApiTest, BadRequestsAreJsonErrorsThatNameThePositionOrField) {
  ApiOptions options;
  options.max_json_depth = 8;
  HttpServerOptions server;
  server.body_limit = 4096;
  Harness h(kConfig, options, server);
  const std::size_t before = h.stored();

  Response r = h.post("/v1/executions", R"({"executor": "noop",})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.code(), "invalid_argument");
  EXPECT_NE(r.message().find("invalid JSON at byte 21"), std::string::npos) << r.message();

  r = h.post("/v1/executions", std::string(20, '[') + std::string(20, ']'));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.message().find("deeper than 8"), std::string::npos) << r.message();

  r = h.post("/v1/executions", R"({"executor":"noop","priority":"high"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.code(), "invalid_field");
  EXPECT_EQ(r.j["error"]["field"], "priority");
  EXPECT_EQ(r.message(), "priority: expected integer, got string");

  r = h.post("/v1/executions", R"({"executor":"noop","priority":9})");
  EXPECT_EQ(r.j["error"]["field"], "priority");

  r = h.post("/v1/executions", R"({"executor":"noop","prioirty":1})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.j["error"]["field"], "prioirty");
  EXPECT_NE(r.message().find("did you mean \"priority\""), std::string::npos);

  r = h.post("/v1/executions", R"({"executor":"sleep","params":{"duration":5}})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.j["error"]["field"], "params.duration");

  r = h.post("/v1/executions", R"({"executor":"sleep"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.message().find("missing required param \"duration\""), std::string::npos);

  r = h.post("/v1/executions", R"({"executor":"nope"})");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.code(), "not_found");

  r = h.post("/v1/executions", R"({"helper":"nope"})");
  EXPECT_EQ(r.status, 404);

  r = h.post("/v1/executions", R"({"executor":"noop","lane":"nope"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.j["error"]["field"], "lane");

  r = h.post("/v1/executions", R"({"executor":"noop","not_before":"tomorrow"})");
  EXPECT_EQ(r.j["error"]["field"], "not_before");

  // Past 2262-04-11T23:47:16Z, the last instant a 64-bit nanosecond clock holds: refused,
  // never wrapped to a date in 1677 (issue #18); so is the first second before 1677-09-21.
  for (const char* when :
       {"9999-12-31T00:00:00Z", "2262-04-12T00:00:00Z", "1677-09-21T00:12:43Z"}) {
    r = h.post("/v1/executions", fmt::format(R"({{"executor":"noop","not_before":"{}"}})", when));
    EXPECT_EQ(r.status, 400) << when << " " << r.body;
    EXPECT_EQ(r.j["error"]["field"], "not_before") << when << " " << r.body;
    EXPECT_NE(r.message().find("can be represented"), std::string::npos) << r.body;
  }
  r = h.post("/v1/executions",
             R"({"executor":"noop","not_before":"2262-04-11T23:47:16Z","expiry":"1h"})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.j["error"]["field"], "expiry") << r.body;

  r = h.post("/v1/executions", "[1,2]");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.message().find("must be a JSON object"), std::string::npos);

  r = h.post("/v1/executions", "");
  EXPECT_EQ(r.status, 400);

  r = h.post("/v1/executions", std::string(5000, ' '));
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.code(), "body_too_large");

  r = h.get("/v1/executions/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.code(), "not_found");

  r = h.get("/v1/nothing/here");
  EXPECT_EQ(r.status, 404);

  r = h.call("DELETE", "/v1/status");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers["Allow"], "GET, HEAD");
  // Allow lists what every route of the path takes (the route table drives both).
  r = h.call("DELETE", "/v1/projects/p/tickets");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers["Allow"], "GET, HEAD, POST");
  r = h.call("PUT", "/v1/executions/bulk");
  EXPECT_EQ(r.headers["Allow"], "POST, GET, HEAD");  // bulk, and an execution named "bulk"
  r = h.call("PATCH", "/v1/projects/p/tickets/bulk");
  EXPECT_EQ(r.headers["Allow"], "POST, GET, HEAD, DELETE");
  EXPECT_EQ(h.call("POST", "/v1/helpers/x/y").status, 404);

  r = h.get("/v1/executions/%zz");
  EXPECT_EQ(r.status, 400);

  r = request(h.port(), "GET", "/healthz", "", "", {{"X-Big", std::string(20000, 'x')}});
  EXPECT_EQ(r.status, 431);
  EXPECT_EQ(r.code(), "headers_too_large");

  EXPECT_EQ(h.stored(), before);
  EXPECT_EQ(h.get("/healthz").status, 200);  // still serving
}

TEST(ApiTest, SubmissionBeyondQueuedCapacityGets429AndStoresNothing) {
  Harness h(R"([lanes.default]
workers = 1
[capacity]
queued = 2
[tickets]
executor = "sleep"
)");
  auto submit = [&] {
    return h.post("/v1/executions", R"({"executor":"sleep","key":"k","params":{"duration":"1h"}})");
  };
  Response first = submit();
  ASSERT_EQ(first.status, 201) << first.body;
  ASSERT_TRUE(h.wait_status(first.j["id"], "running"));
  ASSERT_EQ(submit().status, 201);
  ASSERT_EQ(submit().status, 201);
  const std::size_t stored = h.stored();

  Response r = submit();
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(r.code(), "queue_full");
  EXPECT_FALSE(r.headers["Retry-After"].empty());
  EXPECT_GE(std::stoi(r.headers["Retry-After"]), 1);
  EXPECT_EQ(r.j["error"]["queued"], 2);
  EXPECT_EQ(r.j["error"]["queuedCapacity"], 2);
  EXPECT_EQ(r.j["error"]["running"], 1);
  EXPECT_EQ(r.j["error"]["runningCapacity"], 1);
  EXPECT_EQ(h.stored(), stored);

  r = h.post("/v1/projects/p/tickets", R"({"ticket":"t1","params":{"duration":"1h"}})");
  EXPECT_EQ(r.status, 429);
  r = h.post("/v1/executions/bulk", R"({"executions":[{"executor":"noop"}]})");
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(h.stored(), stored);
  EXPECT_NE(h.get("/metrics").body.find("schedd_submissions_rejected_total 3"), std::string::npos);
}

TEST(ApiTest, TicketsRunOneAfterAnotherPerProjectWithPositions) {
  Harness h;
  const std::string params = R"("params":{"duration":"1h"})";
  Response r = h.post("/v1/projects/p1/tickets", R"({"ticket":"t1",)" + params + "}");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.j["id"], "p1:t1");
  EXPECT_EQ(r.j["created"], true);
  EXPECT_EQ(r.j["position"], 1);
  ASSERT_TRUE(h.wait_status("p1:t1", "running"));

  r = h.post("/v1/projects/p1/tickets", R"({"ticket":"t2",)" + params + "}");
  ASSERT_EQ(r.status, 201);
  EXPECT_EQ(r.j["position"], 1);
  EXPECT_EQ(r.j["message"], "ticket t2 of project p1 queued at position #1");
  r = h.post("/v1/projects/p1/tickets", R"({"ticket":"t3",)" + params + "}");
  EXPECT_EQ(r.j["position"], 2);

  // Idempotent: the same ticket again says where it is, and stores nothing new.
  const std::size_t stored = h.stored();
  r = h.post("/v1/projects/p1/tickets", R"({"ticket":"t2",)" + params + "}");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.j["created"], false);
  EXPECT_EQ(r.j["position"], 1);
  EXPECT_EQ(r.j["message"], "ticket t2 of project p1 is already queued at position #1");
  r = h.post("/v1/projects/p1/tickets", R"({"ticket":"t1",)" + params + "}");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.j["status"], "running");
  EXPECT_EQ(h.stored(), stored);

  // Another project runs in parallel (two workers).
  r = h.post("/v1/projects/p2/tickets", R"({"ticket":"t1",)" + params + "}");
  ASSERT_EQ(r.status, 201);
  ASSERT_TRUE(h.wait_status("p2:t1", "running"));

  r = h.get("/v1/projects/p1/tickets");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.j["running"]["id"], "p1:t1");
  ASSERT_EQ(r.j["queue"].size(), 2u);
  EXPECT_EQ(r.j["queue"][0]["ticket"], "t2");
  EXPECT_EQ(r.j["queue"][0]["position"], 1);
  EXPECT_EQ(r.j["queue"][1]["ticket"], "t3");
  EXPECT_EQ(r.j["queue"][1]["position"], 2);

  r = h.get("/v1/projects/p1/tickets/t3");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.j["position"], 2);
  EXPECT_EQ(r.j["project"], "p1");

  r = h.call("DELETE", "/v1/projects/p1/tickets/t3");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.j["status"], "cancelled");
  r = h.call("DELETE", "/v1/projects/p1/tickets/t3");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.code(), "already_finished");

  // Running: 409 unless a cooperative stop is requested; then the next ticket starts.
  r = h.call("DELETE", "/v1/projects/p1/tickets/t1");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.code(), "running");
  EXPECT_EQ(h.status_of("p1:t1"), "running");
  r = h.call("DELETE", "/v1/projects/p1/tickets/t1?stop=true");
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.j["stop_requested"], true);
  ASSERT_TRUE(h.wait_status("p1:t1", "cancelled"));
  ASSERT_TRUE(h.wait_status("p1:t2", "running"));

  EXPECT_EQ(h.get("/v1/projects/nope/tickets").status, 404);
  EXPECT_EQ(h.get("/v1/projects/p1/tickets/nope").status, 404);
  EXPECT_EQ(h.call("DELETE", "/v1/projects/p1/tickets/nope").status, 404);
  r = h.post("/v1/projects/p1/tickets", R"({"params":{"duration":"1s"}})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.j["error"]["field"], "ticket");
  r = h.post("/v1/projects/p%2F1/tickets", R"({"ticket":"x","params":{"duration":"1s"}})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.j["error"]["field"], "project");
  r = h.post("/v1/projects/p1/tickets", R"({"ticket":"x"})");
  EXPECT_EQ(r.status, 400);  // the sleep executor needs a duration
}

// The first-party ticket plugin: a project's tickets run one after another, report
// progress in steps, and stop when asked.
TEST(ApiTest, TicketPluginRunsAProjectsTicketsInOrderAndStops) {
  Harness h(R"([tickets]
executor = "ticket"
)");
  const std::string work = R"("params":{"duration":"30ms","steps":3})";
  ASSERT_EQ(h.post("/v1/projects/demo/tickets", R"({"ticket":"a",)" + work + "}").status, 201);
  ASSERT_EQ(h.post("/v1/projects/demo/tickets", R"({"ticket":"b",)" + work + "}").status, 201);
  ASSERT_TRUE(h.wait_status("demo:a", "succeeded"));
  ASSERT_TRUE(h.wait_status("demo:b", "succeeded"));
  Response a = h.get("/v1/projects/demo/tickets/a");
  Response b = h.get("/v1/projects/demo/tickets/b");
  EXPECT_EQ(a.j["output"], "ticket demo:a of project demo done (attempt 1)");
  EXPECT_EQ(a.j["executor"], "ticket");
  EXPECT_EQ(a.j["params"]["steps"], 3);
  // Same project: b started only after a finished (RFC 3339 UTC text sorts by time).
  EXPECT_LE(a.j["finished"].get<std::string>(), b.j["started"].get<std::string>());

  ASSERT_EQ(
      h.post("/v1/projects/demo/tickets", R"({"ticket":"long","params":{"duration":"1h"}})").status,
      201);
  ASSERT_TRUE(h.wait_status("demo:long", "running"));
  EXPECT_EQ(h.call("DELETE", "/v1/projects/demo/tickets/long?stop=true").status, 202);
  ASSERT_TRUE(h.wait_status("demo:long", "cancelled"));
  EXPECT_EQ(h.get("/v1/executions/demo:long").j["message"], "stopped at step 0 of 10");
}

TEST(ApiTest, TicketsNeedTheirExecutor) {
  Harness h(R"([tickets]
executor = "not-loaded"
)");
  Response r = h.post("/v1/projects/p/tickets", R"({"ticket":"t"})");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.code(), "tickets_unavailable");
}

// [tickets.projects.NAME] overrides the executor, lane, priority and expiry of one project.
TEST(ApiTest, TicketSettingsAreOverriddenPerProject) {
  Harness h(R"([lanes.default]
workers = 2
[lanes.bulk]
workers = 1
[tickets]
executor = "sleep"
priority = 3
[tickets.projects.fast]
executor = "noop"
lane = "bulk"
priority = 1
expiry = "90s"
)");
  Response fast =
      h.post("/v1/projects/fast/tickets", R"({"ticket":"a","not_before":"2099-01-01T00:00:00Z"})");
  ASSERT_EQ(fast.status, 201) << fast.body;
  Response other =
      h.post("/v1/projects/other/tickets",
             R"({"ticket":"a","params":{"duration":"1ms"},"not_before":"2099-01-01T00:00:00Z"})");
  ASSERT_EQ(other.status, 201) << other.body;
  auto f = h.store().get(fast.j.value("id", ""));
  auto o = h.store().get(other.j.value("id", ""));
  ASSERT_TRUE(f && o);
  EXPECT_EQ(f->spec->executor, "noop");
  EXPECT_EQ(f->spec->lane, "bulk");
  EXPECT_EQ(f->spec->priority, 1);
  EXPECT_EQ(f->spec->expiry, std::chrono::milliseconds(90000));
  EXPECT_EQ(o->spec->executor, "sleep");
  EXPECT_EQ(o->spec->lane, "default");
  EXPECT_EQ(o->spec->priority, 3);
  EXPECT_FALSE(o->spec->expiry.has_value());
}

TEST(ApiTest, AuthNoneWrongReadOnlyAndRight) {
  testing::TempDir dir;
  ApiOptions options;
  options.token = "s3cret";
  options.read_token = "reader";
  Harness h(kConfig, options);
  const std::string body = R"({"executor":"noop"})";

  Response r = h.post("/v1/executions", body);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.code(), "unauthorized");
  EXPECT_EQ(r.headers["WWW-Authenticate"], "Bearer");
  EXPECT_EQ(h.post("/v1/executions", body, "wrong").status, 401);
  EXPECT_EQ(h.post("/v1/executions", body, "s3cre").status, 401);
  EXPECT_EQ(
      request(h.port(), "POST", "/v1/executions", body, "", {{"Authorization", "Basic x"}}).status,
      401);
  r = h.post("/v1/executions", body, "reader");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.code(), "forbidden");
  EXPECT_EQ(h.post("/v1/helpers/hourly/disable", "", "reader").status, 403);
  EXPECT_EQ(h.post("/v1/executions", body, "s3cret").status, 201);

  EXPECT_EQ(h.get("/v1/status").status, 200);            // reading needs no token
  EXPECT_EQ(h.get("/v1/status", "reader").status, 200);  // the read-only one
  EXPECT_EQ(h.get("/v1/status", "s3cret").status, 200);
  EXPECT_EQ(h.get("/v1/status", "wrong").status, 401);  // a wrong one is refused
}

TEST(ApiTest, TokensComeFromFileOrEnvironment) {
  testing::TempDir dir;
  Config c;
  c.token_file = dir.write("token", "from-file\n").string();
  c.read_token_env = "SCHEDD_API_TEST_READ_TOKEN";
  setenv("SCHEDD_API_TEST_READ_TOKEN", "from-env", 1);
  auto o = api_options_from_config(c);
  ASSERT_TRUE(o.is_ok()) << o.status().to_string();
  EXPECT_EQ(o->token, "from-file");
  EXPECT_EQ(o->read_token, "from-env");
  unsetenv("SCHEDD_API_TEST_READ_TOKEN");
  o = api_options_from_config(c);
  EXPECT_FALSE(o.is_ok());
  EXPECT_NE(o.status().message().find("SCHEDD_API_TEST_READ_TOKEN"), std::string::npos);
  c.read_token_env.reset();
  c.token_file = dir.write("empty", "\n").string();
  EXPECT_FALSE(api_options_from_config(c).is_ok());
}

TEST(ApiTest, ConfigTakesOneReadOnlyTokenSource) {
  std::vector<ConfigError> errors;
  auto cfg =
      parse_config("[api]\nread_token_file = \"t\"\nread_token_env = \"T\"\n", "x.toml", errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].to_string(),
            "x.toml:3:18: [api] read_token_env: set either read_token_file or read_token_env, "
            "not both");
  errors.clear();
  cfg = parse_config("[api]\nread_token_env = \"T\"\n", "x.toml", errors);
  ASSERT_TRUE(cfg.has_value());
  EXPECT_EQ(cfg->read_token_env, "T");
}

TEST(ApiTest, RefusesANonLoopbackAddressWithoutAToken) {
  PluginHost plugins;
  std::vector<PluginLoadError> errors;
  ASSERT_TRUE(plugins.load_dir(SCHEDD_PLUGIN_DIR, PluginErrorPolicy::kFail, errors).is_ok());
  Config config;
  config.lanes.push_back(LaneConfig{"default", 1, std::nullopt});
  MemoryStore store;
  Engine engine(config, store, SystemClock::instance(), plugins, "n1");
  HttpServerOptions server;
  server.listen = "0.0.0.0:0";
  auto s = ApiService::start(engine, ApiOptions{}, server);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("without an API token"), std::string::npos);

  ApiOptions with_token;
  with_token.token = "t";
  s = ApiService::start(engine, with_token, server);
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  EXPECT_GT((*s)->port(), 0);

  server.listen = "127.0.0.1:notaport";
  EXPECT_EQ(ApiService::start(engine, ApiOptions{}, server).status().code(),
            StatusCode::kInvalidArgument);
  // A port in use is an error, not a silent second listener.
  server.listen = "127.0.0.1:" + std::to_string((*s)->port());
  with_token.token = "t";
  auto again = ApiService::start(engine, with_token, server);
  EXPECT_EQ(again.status().code(), StatusCode::kUnavailable) << again.status().to_string();
}

// The dashboard: its page at /, its files under /ui/, compiled in; every answer carries the
// Content-Security-Policy (no inline scripts, this origin only); only GET; no escape from /ui/.
TEST(ApiTest, ServesTheDashboardWithAStrictContentSecurityPolicy) {
  Harness h;
  Response page = h.get("/");
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(page.headers["Content-Type"], "text/html; charset=utf-8");
  EXPECT_THAT(page.body, ::testing::HasSubstr("<script type=\"module\" src=\"/ui/"));
  const std::string csp = page.headers["Content-Security-Policy"];
  EXPECT_THAT(csp, ::testing::HasSubstr("default-src 'none'"));
  EXPECT_THAT(csp, ::testing::HasSubstr("script-src 'self';"));
  EXPECT_THAT(csp, ::testing::Not(::testing::HasSubstr("unsafe-inline")));
  EXPECT_THAT(csp, ::testing::HasSubstr("frame-ancestors 'none'"));
  EXPECT_EQ(page.headers["X-Content-Type-Options"], "nosniff");
  // The page's own scripts and styles are served from the binary, with their types.
  for (const std::string prefix : {"src=\"", "href=\""}) {
    for (std::size_t at = page.body.find(prefix + "/ui/"); at != std::string::npos;
         at = page.body.find(prefix + "/ui/", at + 1)) {
      const std::size_t from = at + prefix.size();
      const std::string path = page.body.substr(from, page.body.find('"', from) - from);
      Response asset = h.get(path);
      EXPECT_EQ(asset.status, 200) << path;
      EXPECT_FALSE(asset.body.empty()) << path;
      EXPECT_EQ(asset.headers["Content-Security-Policy"], csp) << path;
      const bool js = path.ends_with(".js"), css = path.ends_with(".css");
      if (js) {
        EXPECT_EQ(asset.headers["Content-Type"], "text/javascript; charset=utf-8");
      }
      if (css) {
        EXPECT_EQ(asset.headers["Content-Type"], "text/css; charset=utf-8");
      }
    }
  }
  EXPECT_EQ(h.get("/ui/no-such-file.js").status, 404);
  EXPECT_EQ(h.get("/ui/%2e%2e/%2e%2e/etc/passwd").status, 404);
  Response post = h.post("/", "{}");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.headers["Allow"], "GET, HEAD");
  EXPECT_EQ(h.get("/nope").status, 404);  // the API's own 404 still answers elsewhere
}

// The dashboard asks what its token may do, to disable its buttons for a read-only one.
TEST(ApiTest, WhoamiSaysWhatTheTokenMayDo) {
  {
    Harness open;
    EXPECT_EQ(open.get("/v1/whoami").j, json({{"access", "full"}, {"tokens", false}}));
  }
  ApiOptions options;
  options.token = "s3cret";
  options.read_token = "reader";
  Harness h(kConfig, options);
  EXPECT_EQ(h.get("/v1/whoami").j["access"], "anonymous");
  EXPECT_EQ(h.get("/v1/whoami", "reader").j["access"], "read");
  EXPECT_EQ(h.get("/v1/whoami", "s3cret").j["access"], "full");
  EXPECT_EQ(h.get("/v1/whoami", "s3cret").j["tokens"], true);
  EXPECT_EQ(h.get("/v1/whoami", "wrong").status, 401);
  // The page is read without a token, like every GET.
  EXPECT_EQ(h.get("/").status, 200);
}

// Several tickets of one project in one call: all or nothing on bad input, in order, and
// the ones already queued are reported instead of queued twice.
TEST(ApiTest, BulkTicketsQueueSeveralTicketsOfOneProjectInOrder) {
  Harness h;
  Response r = h.post("/v1/projects/acme/tickets", R"({"ticket":"t2","params":{"duration":"1h"}})");
  ASSERT_EQ(r.status, 201) << r.body;
  r = h.post("/v1/projects/acme/tickets/bulk",
             R"({"tickets":["t1","t2",{"ticket":"t3","priority":5}],"params":{"duration":"1h"}})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.j["count"], 2);
  ASSERT_EQ(r.j["tickets"].size(), 3u);
  EXPECT_EQ(r.j["tickets"][0]["id"], "acme:t1");
  EXPECT_EQ(r.j["tickets"][0]["created"], true);
  EXPECT_EQ(r.j["tickets"][1]["created"], false);
  EXPECT_EQ(r.j["tickets"][2]["created"], true);
  EXPECT_EQ(h.get("/v1/projects/acme/tickets/t3").j["priority"], 5);

  // One bad item: nothing stored, and the error names it.
  const std::size_t before = h.stored();
  r = h.post(
      "/v1/projects/acme/tickets/bulk",
      R"({"tickets":["t4",{"ticket":"t5","params":{"duration":"soon"}}],"params":{"duration":"1s"}})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.j["error"]["field"], "tickets[1].params.duration") << r.body;
  r = h.post("/v1/projects/acme/tickets/bulk",
             R"({"tickets":["t6","t6"],"params":{"duration":"1s"}})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.j["error"]["field"], "tickets[1].ticket") << r.body;
  EXPECT_EQ(h.post("/v1/projects/acme/tickets/bulk", R"({"tickets":[]})").status, 400);
  EXPECT_EQ(h.post("/v1/projects/acme/tickets/bulk", R"({"tickets":[7]})").status, 400);
  EXPECT_EQ(h.stored(), before);
  for (const char* t : {"t1", "t2", "t3"}) {
    (void)h.call("DELETE", std::string("/v1/projects/acme/tickets/") + t + "?stop=true");
  }
}

// "Clear queue": cancels what the filter matches among queued executions, nothing else.
TEST(ApiTest, CancelByFilterClearsTheMatchingQueue) {
  Harness h("[lanes.default]\nworkers = 1\n[lanes.other]\nworkers = 1\n");
  // One blocker per lane holds the key "k"; the rest wait behind it on the same key.
  auto submit = [&](const std::string& id, const char* lane, int priority) {
    Response r = h.post("/v1/executions", json{{"id", id},
                                               {"executor", "sleep"},
                                               {"key", std::string("k-") + lane},
                                               {"lane", lane},
                                               {"priority", priority},
                                               {"params", {{"duration", "1h"}}}}
                                              .dump());
    ASSERT_EQ(r.status, 201) << r.body;
  };
  submit("a-run", "default", 3);
  submit("b-run", "other", 3);
  ASSERT_TRUE(h.wait_status("a-run", "running"));
  ASSERT_TRUE(h.wait_status("b-run", "running"));
  for (int i = 0; i < 5; ++i) submit("a" + std::to_string(i), "default", i % 2 == 0 ? 1 : 2);
  for (int i = 0; i < 3; ++i) submit("b" + std::to_string(i), "other", 1);

  Response r = h.post("/v1/executions/cancel", R"({"lane":"default","priority":1})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.j["cancelled"], 3);  // a0 a2 a4
  EXPECT_EQ(h.status_of("a0"), "cancelled");
  EXPECT_EQ(h.status_of("a1"), "queued");
  r = h.post("/v1/executions/cancel", R"({"lane":"default"})");
  EXPECT_EQ(r.j["cancelled"], 2);
  EXPECT_EQ(h.status_of("a-run"), "running");  // running ones are left alone
  EXPECT_EQ(h.status_of("b0"), "queued");
  r = h.post("/v1/executions/cancel", "");  // everything queued
  EXPECT_EQ(r.j["cancelled"], 3);
  EXPECT_EQ(h.status_of("b2"), "cancelled");
  r = h.post("/v1/executions/cancel", R"({"status":"running"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.j["error"]["field"], "status");
  EXPECT_EQ(h.post("/v1/executions/cancel", R"({"lane":3})").status, 400);
  EXPECT_EQ(h.post("/v1/executions/cancel", R"({"bogus":1})").status, 400);
  for (const char* id : {"a-run", "b-run"}) {
    (void)h.post(std::string("/v1/executions/") + id + "/cancel", R"({"stop":true})");
  }
}

// A helper's next run is shown even when it lies beyond the 2 h lookahead: computed from its
// schedule (the dashboard's Helpers page shows it). A disabled helper has none.
TEST(ApiTest, HelpersListComputesTheNextRunBeyondTheLookahead) {
  Harness h(R"([helpers.yearly]
executor = "noop"
schedule = { cron = "0 0 1 1 *", tz = "UTC" }
[helpers.off]
executor = "noop"
schedule = { every = "1m" }
)");
  ASSERT_EQ(h.post("/v1/helpers/off/disable").status, 200);
  const auto now = std::chrono::system_clock::now();
  const auto year = date::year_month_day(date::floor<date::days>(now)).year();
  const std::string expected = fmt::format("{}-01-01T00:00:00.000Z", int(year) + 1);
  Response r = h.get("/v1/helpers");
  ASSERT_EQ(r.status, 200) << r.body;
  std::map<std::string, json> by_name;
  for (const auto& x : r.j["helpers"]) by_name[x["name"]] = x;
  EXPECT_EQ(by_name["yearly"]["next_due"], expected) << r.body;
  // Planned only in the last two hours of the year.
  const bool in_window =
      date::sys_days(date::year_month_day(year + date::years(1), date::January, date::day(1))) -
          now <=
      std::chrono::hours(2);
  EXPECT_EQ(by_name["yearly"]["next_due_planned"], in_window);
  EXPECT_TRUE(by_name["off"]["next_due"].is_null()) << r.body;
  EXPECT_TRUE(by_name["yearly"]["last"].is_null()) << r.body;  // never ran

  // The list carries each helper's last result, so a page needs one request for all.
  Response run = h.post("/v1/helpers/yearly/run");
  ASSERT_EQ(run.status, 201) << run.body;
  const std::string id = run.j["id"];
  ASSERT_TRUE(h.wait_status(id, "succeeded"));
  r = h.get("/v1/helpers");
  json last;
  for (const auto& x : r.j["helpers"]) {
    if (x["name"] == "yearly") last = x["last"];
  }
  EXPECT_EQ(last["id"], id) << r.body;
  EXPECT_EQ(last["status"], "succeeded");
  EXPECT_TRUE(last["finished"].is_string());
}

TEST(ApiTest, StatsStreamPushesUpdatesAsExecutionsStartAndFinish) {
  ApiOptions options;
  options.heartbeat = 50ms;
  Harness h(kConfig, options);
  SseClient sse(h.port());
  EXPECT_EQ(sse.status(), 200);
  EXPECT_EQ(sse.content_type(), "text/event-stream");
  json first = sse.wait_stats([](const json&) { return true; });
  EXPECT_EQ(first["running"], 0);
  EXPECT_EQ(first["runningCapacity"], 2);
  EXPECT_EQ(first["queuedCapacity"], 100);

  Response r = h.post("/v1/executions", R"({"executor":"sleep","params":{"duration":"1h"}})");
  ASSERT_EQ(r.status, 201);
  json running = sse.wait_stats([](const json& j) { return j["running"] == 1; });
  EXPECT_EQ(running["lanes"]["default"]["running"], 1);
  const std::string id = r.j["id"];
  r = h.post("/v1/executions/" + id + "/cancel", R"({"stop":true})");
  EXPECT_EQ(r.status, 202) << r.body;
  json idle = sse.wait_stats([](const json& j) { return j["running"] == 0; });
  EXPECT_EQ(idle["queued"], 0) << h.get("/v1/executions/" + id).body << "\n"
                               << h.get("/v1/stats").body << "\n"
                               << h.engine().dispatcher().debug_state();

  // Heartbeats keep coming while nothing changes.
  bool heartbeat = false;
  for (int i = 0; i < 100 && !heartbeat; ++i) heartbeat = sse.next().first == "heartbeat";
  EXPECT_TRUE(heartbeat);
  EXPECT_EQ(h.get("/v1/status").j["stream_clients"], 1);
}

// Browser clients written for other queue systems read the stream with a plain
// EventSource.onmessage handler, which sees only unnamed events: every stats event is also
// sent unnamed, right after the named one, and heartbeats stay named.
TEST(ApiTest, StatsStreamAlsoSendsStatsUnnamedForAPlainOnmessageHandler) {
  ApiOptions options;
  options.heartbeat = 50ms;
  Harness h(kConfig, options);
  SseClient sse(h.port());
  Response r = h.post("/v1/executions", R"({"executor":"sleep","params":{"duration":"1h"}})");
  ASSERT_EQ(r.status, 201) << r.body;
  std::string named;  // the data of the last named stats event, until its unnamed copy
  bool seen = false;
  for (int i = 0; i < 100 && !seen; ++i) {
    auto [name, data] = sse.next();
    // Named (an unnamed one would fail below); progress events come between stats.
    if (name == "heartbeat" || name == "progress") continue;
    if (name == "stats") {
      named = data;
      continue;
    }
    ASSERT_EQ(name, "message");
    EXPECT_EQ(data, named);
    named.clear();
    seen = json::parse(data)["running"] == 1;
  }
  EXPECT_TRUE(seen) << "no unnamed stats event with the run";
  r = h.post("/v1/executions/" + r.j["id"].get<std::string>() + "/cancel", R"({"stop":true})");
  EXPECT_EQ(r.status, 202) << r.body;
}

// A running execution's progress reports reach the live stream as `progress` events and its
// API record as `progress` (the ticket plugin's step progress was dropped under schedd run).
TEST(ApiTest, ARunsProgressReachesTheStreamAndItsRecord) {
  Harness h("[lanes.default]\nworkers = 2\n");
  SseClient sse(h.port());
  Response r =
      h.post("/v1/executions", R"({"executor":"ticket","params":{"duration":"600ms","steps":3}})");
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string id = r.j["id"];
  std::vector<std::string> messages;
  for (int i = 0; i < 200 && messages.size() < 2; ++i) {
    auto [name, data] = sse.next();
    if (name != "progress") continue;
    json p = json::parse(data);
    EXPECT_EQ(p["id"], id);
    messages.push_back(p["message"]);
  }
  ASSERT_EQ(messages.size(), 2u) << "fewer than two progress events";
  EXPECT_NE(messages[0], messages[1]);
  // The record of the running execution carries the latest report.
  Response got = h.get("/v1/executions/" + id);
  ASSERT_EQ(got.status, 200) << got.body;
  if (got.j["status"] == "running") {
    ASSERT_TRUE(got.j.contains("progress")) << got.body;
    EXPECT_GT(got.j["progress"]["fraction"].get<double>(), 0.0);
  }
}

// The dashboard's gaps (issue #16): a configured project with nothing queued has an empty
// queue, an unknown one is a 404 naming it; a running ticket's record has `progress` and
// `log` (null and [] before the first report) in the project's queue too; /v1/status has the
// last ten minutes' throughput and start lag.
TEST(ApiTest, ProjectsRunningTicketsAndRecentThroughputAsTheDashboardShowsThem) {
  Harness h(std::string(kConfig) + "[tickets.projects.acme]\nexecutor = \"ticket\"\n");
  Response r = h.get("/v1/projects/acme/tickets");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.j["queued"], 0);
  EXPECT_EQ(r.j["queue"], json::array());
  EXPECT_EQ(r.j["running"], nullptr);
  r = h.get("/v1/projects/nobody/tickets");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.message().find("unknown project \"nobody\""), std::string::npos) << r.message();

  r = h.post("/v1/projects/acme/tickets",
             R"({"ticket":"T-1","params":{"duration":"2s","steps":4}})");
  ASSERT_EQ(r.status, 201) << r.body;
  json running;
  ASSERT_TRUE(eventually([&] {
    running = h.get("/v1/projects/acme/tickets").j["running"];
    return running.is_object() && running["progress"].is_object();
  })) << running.dump();
  EXPECT_TRUE(running["log"].is_array());
  EXPECT_EQ(running["ticket"], "T-1");
  ASSERT_TRUE(h.wait_status("acme:T-1", "succeeded"));

  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(h.post("/v1/executions", R"({"executor":"noop"})").status, 201);
  json recent;
  ASSERT_TRUE(eventually([&] {
    recent = h.get("/v1/status").j["recent"];
    return recent.is_object() && recent["finished"].get<int>() >= 4;
  })) << recent.dump();
  EXPECT_EQ(recent["window_seconds"], 600);
  EXPECT_EQ(recent["series"].size(), 60u);
  EXPECT_GE(recent["started"].get<int>(), 4);
  EXPECT_GE(recent["lag_mean_seconds"].get<double>(), 0.0);
  EXPECT_GE(recent["lag_max_seconds"].get<double>(), recent["lag_mean_seconds"].get<double>());
  int in_series = 0;
  for (const auto& b : recent["series"]) in_series += b["finished"].get<int>();
  EXPECT_EQ(in_series, recent["finished"].get<int>());
  EXPECT_DOUBLE_EQ(recent["finished_per_minute"].get<double>(),
                   recent["finished"].get<double>() / 10.0);
}

// A live page is closed and another opened, again and again. Each round: client A connects,
// sees a run start and leaves while it runs; the run ends; client B connects just after, and
// a run starts and ends while B is connected: B must hear of both. The publisher once
// compared each sample with the last stats it had sent to anyone, not with what each client
// had been sent: with A gone before the end of its run went out, B's "running: 1" matched
// those last stats and was sent to no one, and B got only its first event.
TEST(ApiTest, StatsStreamShowsEachRunToAClientThatConnectsJustAfterAnotherLeaves) {
  Harness h("[lanes.default]\nworkers = 2\n");  // no helpers: the test's runs are the only ones
  constexpr int kRounds = 40;
  int missed = 0;
  // Starts a run that lasts until stop() and returns its id.
  auto start = [&] {
    Response r = h.post("/v1/executions", R"({"executor":"sleep","params":{"duration":"1h"}})");
    EXPECT_EQ(r.status, 201) << r.body;
    return r.j.value("id", "");
  };
  auto stop = [&](const std::string& id) {
    EXPECT_EQ(h.post("/v1/executions/" + id + "/cancel", R"({"stop":true})").status, 202);
  };
  auto idle = [&] { return h.get("/v1/stats").j["running"] == 0; };
  // Whether `sse` sends stats with `running` within its read timeout.
  auto hears = [&](SseClient& sse, int running, const char* who, int round) {
    try {
      sse.wait_stats([&](const json& j) { return j["running"] == running; });
      return true;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "round " << round << ": " << who << " got no stats with running " << running
                    << " (" << e.what() << "); stream_clients "
                    << h.get("/v1/status").j["stream_clients"];
      ++missed;
      return false;
    }
  };
  for (int round = 0; round < kRounds; ++round) {
    std::string id;
    {
      SseClient a(h.port(), 3s);
      ASSERT_EQ(a.wait_stats([](const json&) { return true; })["running"], 0) << "round " << round;
      id = start();
      hears(a, 1, "A", round);
    }  // A leaves while its run goes on
    stop(id);
    ASSERT_TRUE(eventually(idle)) << "round " << round;
    SseClient b(h.port(), 3s);
    ASSERT_EQ(b.wait_stats([](const json&) { return true; })["running"], 0) << "round " << round;
    id = start();
    const bool started = hears(b, 1, "B", round);
    stop(id);
    if (started) hears(b, 0, "B", round);
    ASSERT_TRUE(eventually(idle)) << "round " << round;
  }
  EXPECT_EQ(missed, 0) << "stats missed in " << kRounds << " rounds";
}

TEST(ApiTest, ClientsThatNeverReadOrNeverFinishDoNotStallOthers) {
  HttpServerOptions server;
  server.threads = 2;
  Harness h(kConfig, ApiOptions{}, server);
  net::io_context ioc;
  std::vector<std::unique_ptr<tcp::socket>> idle;
  const auto endpoint = tcp::endpoint(net::ip::make_address("127.0.0.1"), h.port());
  for (int i = 0; i < 8; ++i) {
    // Connects and sends nothing.
    idle.push_back(std::make_unique<tcp::socket>(ioc));
    idle.back()->connect(endpoint);
  }
  for (int i = 0; i < 4; ++i) {
    // Sends half a request.
    idle.push_back(std::make_unique<tcp::socket>(ioc));
    idle.back()->connect(endpoint);
    net::write(*idle.back(),
               net::buffer(std::string("POST /v1/executions HTTP/1.1\r\nHost: x\r\n")));
  }
  for (int i = 0; i < 4; ++i) {
    // Opens a stats stream and never reads it.
    idle.push_back(std::make_unique<tcp::socket>(ioc));
    idle.back()->connect(endpoint);
    net::write(*idle.back(),
               net::buffer(std::string("GET /v1/stats/stream HTTP/1.1\r\nHost: x\r\n\r\n")));
  }
  ASSERT_TRUE(eventually([&] { return h.get("/v1/status").j["stream_clients"] == 4; }));
  for (int i = 0; i < 20; ++i) {
    Response r = h.post("/v1/executions", R"({"executor":"noop"})");
    ASSERT_EQ(r.status, 201);
    EXPECT_EQ(h.get("/healthz").status, 200);
  }
  // Closing the streams' connections ends their subscriptions.
  idle.clear();
  EXPECT_TRUE(eventually([&] { return h.get("/v1/status").j["stream_clients"] == 0; }));
}

TEST(ApiTest, HelpersListShowEnableDisableUpdateAndRun) {
  Harness h;
  Response r = h.get("/v1/helpers");
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(r.j["helpers"].size(), 2u);
  EXPECT_EQ(r.j["helpers"][0]["name"], "hourly");
  EXPECT_EQ(r.j["helpers"][0]["enabled"], true);
  EXPECT_EQ(r.j["helpers"][0]["schedule"]["every"], "1h");
  EXPECT_FALSE(r.j["helpers"][0]["next_due"].is_null());

  r = h.get("/v1/helpers/hourly");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.j["config"]["executor"], "noop");
  EXPECT_EQ(r.j["next"].size(), 2u);  // 2 h lookahead of an hourly schedule
  EXPECT_EQ(h.get("/v1/helpers/nope").status, 404);

  r = h.post("/v1/helpers/hourly/disable");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.j["removed"], 2);
  EXPECT_EQ(h.get("/v1/helpers/hourly").j["state"]["enabled"], false);
  EXPECT_EQ(h.get("/v1/helpers/hourly").j["next"].size(), 0u);
  r = h.post("/v1/helpers/hourly/enable");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.j["planned"], 2);

  r = h.call("PUT", "/v1/helpers/hourly/schedule", R"({"schedule":{"every":"30m"}})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.j["planned"], 4);
  EXPECT_EQ(r.j["next"].size(), 4u);
  r = h.call("PUT", "/v1/helpers/hourly/schedule", R"({"schedule":"{ cron = \"0 * * * *\" }"})");
  ASSERT_EQ(r.status, 200) << r.body;
  r = h.call("PUT", "/v1/helpers/hourly/schedule", R"({"schedule":{"cron":"61 * * * *"}})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.j["error"]["field"], "schedule");
  r = h.call("PUT", "/v1/helpers/hourly/schedule", R"({"schedule":{"evry":"1m"}})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.message().find("evry"), std::string::npos) << r.message();
  r = h.call("PUT", "/v1/helpers/hourly/schedule", R"({"schedule":5})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(h.call("PUT", "/v1/helpers/nope/schedule", R"({"schedule":{"every":"1m"}})").status,
            404);
  EXPECT_EQ(h.post("/v1/helpers/nope/enable").status, 404);
  EXPECT_EQ(h.post("/v1/helpers/nope/disable").status, 404);

  r = h.post("/v1/helpers/hourly/run");
  ASSERT_EQ(r.status, 201) << r.body;
  ASSERT_TRUE(h.wait_status(r.j["id"], "succeeded"));
  EXPECT_EQ(h.get("/v1/helpers/hourly").j["last"][0]["id"], r.j["id"]);
  EXPECT_EQ(h.post("/v1/helpers/nope/run").status, 404);
}

// PATCH /v1/helpers/NAME changes priority and expiry (not only the schedule) as state: the
// config's rules and messages, the planned executions not yet due re-planned with the new
// values (idempotently), shown by both helper endpoints, kept across a restart of a durable
// store, and put back to the config's value with null.
TEST(ApiTest, HelperPriorityAndExpiryOverridesPersistAndReset) {
  testing::TempDir dir;
  const auto path = dir / "schedd.db";
  auto planned_priorities = [](Harness& h) {
    std::set<int> out;
    const Response r = h.get("/v1/executions?helper=hourly&status=queued");
    for (const auto& e : r.j["executions"]) out.insert(e["priority"].get<int>());
    return out;
  };
  {
    Harness h(kConfig, {}, {}, sqlite_store(path));
    Response r = h.call("PATCH", "/v1/helpers/hourly", R"({"priority":1,"expiry":"10m"})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.j["planned"], 2);
    EXPECT_EQ(r.j["state"]["priority"], 1);
    EXPECT_EQ(r.j["state"]["priority_override"], 1);
    EXPECT_EQ(r.j["state"]["expiry"], "10m");
    EXPECT_EQ(r.j["config"]["priority"], 3);
    EXPECT_EQ(planned_priorities(h), std::set<int>{1});
    auto next = h.get("/v1/executions/" + r.j["next"][0]["id"].get<std::string>());
    EXPECT_EQ(next.j["priority"], 1);
    ASSERT_FALSE(next.j["expires"].is_null());
    EXPECT_EQ(parse_rfc3339(next.j["expires"].get<std::string>()).value() -
                  parse_rfc3339(next.j["due"].get<std::string>()).value(),
              10min);
    // The same change again plans the same executions: nothing doubles.
    r = h.call("PATCH", "/v1/helpers/hourly", R"({"priority":1,"expiry":"10m"})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(h.get("/v1/executions?helper=hourly&status=queued").j["executions"].size(), 2u);

    // The config's rules and messages, naming the field; nothing changes.
    r = h.call("PATCH", "/v1/helpers/hourly", R"({"priority":7})");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.j["error"]["field"], "priority");
    EXPECT_EQ(r.message(), "priority: 7 is out of range 1-5");
    r = h.call("PATCH", "/v1/helpers/hourly", R"({"priority":2,"expiry":"0s"})");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.j["error"]["field"], "expiry");
    EXPECT_EQ(r.message(), "expiry: must be greater than 0 (got \"0s\")");
    r = h.call("PATCH", "/v1/helpers/hourly", R"({"expiry":"soon"})");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.j["error"]["field"], "expiry");
    r = h.call("PATCH", "/v1/helpers/hourly", R"({"expiry":30})");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.message(), "expiry: expected a duration string such as \"90s\", got integer");
    r = h.call("PATCH", "/v1/helpers/hourly", R"({"priorty":2})");
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.message().find("did you mean \"priority\""), std::string::npos) << r.message();
    EXPECT_EQ(h.call("PATCH", "/v1/helpers/hourly", "{}").status, 400);
    EXPECT_EQ(h.call("PATCH", "/v1/helpers/nope", R"({"priority":2})").status, 404);
    EXPECT_EQ(planned_priorities(h), std::set<int>{1});

    // A schedule in the same call; the override's shape is the schedule's, as written too.
    r = h.call("PATCH", "/v1/helpers/hourly", R"({"schedule":{"every":"30m"}})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.j["planned"], 4);
    EXPECT_EQ(r.j["state"]["schedule_override"]["every"], "30m");
    EXPECT_EQ(r.j["state"]["schedule_override_toml"], "{ every = \"30m\" }");
    EXPECT_EQ(planned_priorities(h), std::set<int>{1});
  }
  {
    Harness h(kConfig, {}, {}, sqlite_store(path));
    Response r = h.get("/v1/helpers");
    ASSERT_EQ(r.status, 200);
    const json& hourly = r.j["helpers"][0];
    ASSERT_EQ(hourly["name"], "hourly");
    EXPECT_EQ(hourly["priority"], 1);
    EXPECT_EQ(hourly["priority_override"], 1);
    EXPECT_EQ(hourly["expiry"], "10m");
    EXPECT_EQ(hourly["expiry_override"], "10m");
    EXPECT_EQ(hourly["schedule_override"]["every"], "30m");
    EXPECT_EQ(r.j["helpers"][1]["priority_override"], nullptr);
    EXPECT_EQ(r.j["helpers"][1]["schedule_override"], nullptr);

    // null: back to the config's value, and the plan with it.
    r = h.call("PATCH", "/v1/helpers/hourly", R"({"priority":null,"expiry":null})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.j["state"]["priority"], 3);
    EXPECT_EQ(r.j["state"]["priority_override"], nullptr);
    EXPECT_EQ(r.j["state"]["expiry"], "30m");
    EXPECT_EQ(r.j["state"]["expiry_override"], nullptr);
    EXPECT_EQ(r.j["state"]["schedule_override"]["every"], "30m");
    EXPECT_EQ(planned_priorities(h), std::set<int>{3});
  }
}

TEST(ApiTest, ListsExecutionsWithFiltersAndCursorPaging) {
  Harness h;
  for (int i = 0; i < 5; ++i) {
    Response r = h.post("/v1/executions", R"({"executor":"noop","key":"page","id":"page-)" +
                                              std::to_string(i) + R"("})");
    ASSERT_EQ(r.status, 201) << r.body;
  }
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(h.wait_status("page-" + std::to_string(i), "succeeded"));
  std::vector<std::string> seen;
  std::string cursor;
  for (int page = 0; page < 10; ++page) {
    Response r =
        h.get("/v1/executions?key=page&limit=2" + (cursor.empty() ? "" : "&cursor=" + cursor));
    ASSERT_EQ(r.status, 200) << r.body;
    for (const auto& e : r.j["executions"]) seen.push_back(e["id"]);
    if (r.j["next_cursor"].is_null()) break;
    cursor = r.j["next_cursor"];
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"page-0", "page-1", "page-2", "page-3", "page-4"}));
  Response r = h.get("/v1/executions?status=succeeded&lane=default&key=page");
  EXPECT_EQ(r.j["executions"].size(), 5u);
  r = h.get("/v1/executions?status=queued&helper=hourly");
  EXPECT_EQ(r.j["executions"].size(), 2u);
  r = h.get("/v1/executions?status=bogus");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.j["error"]["field"], "status");
  EXPECT_EQ(h.get("/v1/executions?limit=0").status, 400);
  EXPECT_EQ(h.get("/v1/executions?colour=red").status, 400);

  // Cancel a queued one; cancelling it again is a conflict; unknown is 404.
  r = h.post("/v1/executions",
             R"({"executor":"noop","id":"later","not_before":"2099-01-01T00:00:00Z"})");
  ASSERT_EQ(r.status, 201);
  r = h.post("/v1/executions/later/cancel");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.j["status"], "cancelled");
  EXPECT_EQ(h.post("/v1/executions/later/cancel").status, 409);
  EXPECT_EQ(h.post("/v1/executions/nope/cancel").status, 404);

  // Clearing history drops terminal executions, not queued ones.
  r = h.call("DELETE", "/v1/history");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_GE(r.j["removed"], 6);
  EXPECT_EQ(h.get("/v1/executions/page-0").status, 404);
  EXPECT_EQ(h.get("/v1/executions?status=queued&helper=hourly").j["executions"].size(), 2u);
  EXPECT_EQ(h.call("DELETE", "/v1/history?before=yesterday").status, 400);
}

// GET /v1/executions?order=due: queued executions by (due, submission), paged by a cursor of
// the last one's due and seq; several statuses; "planned" (queued, not yet due); priority.
TEST(ApiTest, ListsQueuedExecutionsInDueOrderWithACursor) {
  Harness h;
  for (const auto& [id, when, priority] :
       std::vector<std::tuple<std::string, std::string, int>>{{"z-1", "2099-01-03", 3},
                                                              {"z-2", "2099-01-01", 3},
                                                              {"z-3", "2099-01-02", 1},
                                                              {"z-4", "2099-01-01", 3}}) {
    Response r = h.post("/v1/executions",
                        fmt::format(R"({{"executor":"noop","name":"zz","id":"{}","priority":{},)"
                                    R"("not_before":"{}T00:00:00Z"}})",
                                    id, priority, when));
    ASSERT_EQ(r.status, 201) << r.body;
  }
  auto pages = [&](const std::string& query, std::size_t limit) {
    std::vector<std::string> seen;
    std::string cursor;
    for (int page = 0; page < 100; ++page) {
      Response r = h.get("/v1/executions?order=due&limit=" + std::to_string(limit) + query +
                         (cursor.empty() ? "" : "&cursor=" + cursor));
      EXPECT_EQ(r.status, 200) << r.body;
      for (const auto& e : r.j["executions"]) seen.push_back(e["id"]);
      if (!r.j["next_cursor"].is_string()) break;
      cursor = r.j["next_cursor"];
    }
    return seen;
  };
  // Equal due times keep submission order (z-2 before z-4).
  const std::vector<std::string> zz = {"z-2", "z-4", "z-3", "z-1"};
  EXPECT_EQ(pages("&helper=zz", 1), zz);
  EXPECT_EQ(pages("&helper=zz&status=queued,planned", 3), zz);
  EXPECT_EQ(pages("&helper=zz&status=planned", 2), zz);
  EXPECT_EQ(pages("&helper=zz&priority=1", 1), std::vector<std::string>{"z-3"});
  // Everything queued: the helpers' planned runs (due within the 2 h lookahead) first, in due
  // order, then these.
  Response all = h.get("/v1/executions?order=due&status=queued");
  ASSERT_EQ(all.status, 200) << all.body;
  ASSERT_EQ(all.j["executions"].size(), 8u);
  std::vector<std::string> dues, tail;
  for (const auto& e : all.j["executions"]) {
    dues.push_back(e["due"]);
    if (e["name"] == "zz") tail.push_back(e["id"]);
  }
  EXPECT_TRUE(std::is_sorted(dues.begin(), dues.end()));
  EXPECT_EQ(tail, zz);

  Response r = h.get("/v1/executions?order=due&status=running");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.j["error"]["field"], "status");
  r = h.get("/v1/executions?status=planned,succeeded");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.j["error"]["field"], "status");
  r = h.get("/v1/executions?order=due&cursor=z-2");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.j["error"]["field"], "cursor");
  EXPECT_EQ(h.get("/v1/executions?order=sideways").status, 400);
  EXPECT_EQ(h.get("/v1/executions?priority=6").status, 400);
  // Several statuses in id order.
  r = h.get("/v1/executions?status=queued,succeeded&helper=zz");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.j["executions"].size(), 4u);
}

TEST(ApiTest, BulkSubmissionIsAllOrNothing) {
  Harness h;
  const std::size_t before = h.stored();
  Response r = h.post("/v1/executions/bulk",
                      R"({"executions":[{"executor":"noop"},{"executor":"noop","priority":0}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.j["error"]["field"], "executions[1].priority");
  r = h.post("/v1/executions/bulk",
             R"({"executions":[{"executor":"noop","id":"b1"},{"executor":"noop","id":"b1"}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.j["error"]["field"], "executions[1].id");
  r = h.post("/v1/executions/bulk", R"({"executions":[{"executor":"noop"},{"executor":"x"}]})");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(h.post("/v1/executions/bulk", R"({"executions":[]})").status, 400);
  EXPECT_EQ(h.post("/v1/executions/bulk", R"({"executions":{}})").status, 400);
  EXPECT_EQ(h.stored(), before);

  r = h.post("/v1/executions/bulk",
             R"({"executions":[{"executor":"noop","id":"b1"},{"executor":"noop","id":"b2"}]})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.j["count"], 2);
  EXPECT_EQ(r.j["executions"][1]["id"], "b2");
  EXPECT_TRUE(h.wait_status("b2", "succeeded"));
}

TEST(ApiTest, StopEndsOpenStreamsAndConnections) {
  auto h = std::make_unique<Harness>();
  SseClient sse(h->port());
  sse.wait_stats([](const json&) { return true; });
  h.reset();  // stops the server with the stream open
  EXPECT_ANY_THROW({
    for (int i = 0; i < 1000; ++i) sse.next();
  });
}

// schedctl over the API: --json output parsed here, human output checked for its key lines.
// Issue #18: a HEAD answer carried its 405 (or 401, 404) JSON body after the header, so a
// keep-alive client read that body as the start of its next answer (RFC 9110 §9.3.2). HEAD
// is answered as GET is, header only, for every status: on one connection, each HEAD is
// followed by a GET whose answer must parse.
TEST(ApiTest, HeadAnswersAreHeadersOnlySoTheNextAnswerOnTheConnectionParses) {
  ApiOptions options;
  options.token = "s3cret";
  Harness h(kConfig, options);
  net::io_context ioc;
  tcp::socket sock(ioc);
  sock.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), h.port()));
  set_socket_timeouts(sock);
  beast::flat_buffer buf;
  struct Case {
    std::string target;
    std::string token;
    int status;
  };
  const std::vector<Case> cases = {
      {"/v1/status", "", 200},           // a JSON 200
      {"/v1/executions/nope", "", 404},  // an unknown execution
      {"/v1/nothing/here", "", 404},     // no such endpoint
      {"/v1/system/reload", "", 405},    // POST only
      {"/v1/status", "wrong", 401},      // a wrong token
      {"/", "", 200},                    // the dashboard's page
      {"/ui/no-such-file.js", "", 404},  // the dashboard's own 404
      {"/v1/executions/%zz", "", 400},   // a malformed target
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.target);
    http::request<http::empty_body> head{http::verb::head, c.target, 11};
    head.set(http::field::host, "127.0.0.1");
    if (!c.token.empty()) head.set(http::field::authorization, "Bearer " + c.token);
    http::write(sock, head);
    http::response_parser<http::empty_body> hp;
    hp.skip(true);
    http::read(sock, buf, hp);
    EXPECT_EQ(hp.get().result_int(), c.status);
    EXPECT_TRUE(hp.get().keep_alive());
    // The same target by GET, for the length HEAD announced, with its own connection.
    Response get = request(h.port(), "GET", c.target, "", c.token);
    EXPECT_EQ(get.status, c.status);
    if (c.target != "/v1/status") {  // /v1/status moves (uptime, time)
      EXPECT_EQ(hp.get()[http::field::content_length], std::to_string(get.body.size()));
    }
    EXPECT_EQ(hp.get()[http::field::content_type], get.headers["Content-Type"]);
    // The next request on this connection gets its own answer, from its first byte.
    http::request<http::empty_body> next{http::verb::get, "/healthz", 11};
    next.set(http::field::host, "127.0.0.1");
    http::write(sock, next);
    http::response<http::string_body> res;
    beast::error_code ec;
    http::read(sock, buf, res, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_EQ(json::parse(res.body(), nullptr, false), json({{"status", "ok"}}));
  }
  // The dashboard's files, by HEAD: the length of the file, no body.
  Response page = h.get("/");
  const std::size_t at = page.body.find("src=\"/ui/");
  ASSERT_NE(at, std::string::npos);
  const std::string script = page.body.substr(at + 5, page.body.find('"', at + 5) - at - 5);
  Response asset = request(h.port(), "HEAD", script);
  EXPECT_EQ(asset.status, 200);
  EXPECT_TRUE(asset.body.empty());
  EXPECT_EQ(asset.headers["Content-Length"], std::to_string(h.get(script).body.size()));
  EXPECT_FALSE(asset.headers["Content-Security-Policy"].empty());

  // The stream: its header, no events, and the connection closes.
  tcp::socket stream(ioc);
  stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), h.port()));
  set_socket_timeouts(stream);
  http::request<http::empty_body> head{http::verb::head, "/v1/stats/stream", 11};
  head.set(http::field::host, "127.0.0.1");
  http::write(stream, head);
  beast::flat_buffer sbuf;
  http::response_parser<http::empty_body> sp;
  sp.skip(true);
  http::read(stream, sbuf, sp);
  EXPECT_EQ(sp.get().result_int(), 200);
  EXPECT_EQ(sp.get()[http::field::content_type], "text/event-stream");
  char byte;
  beast::error_code ec;
  const std::size_t n = stream.read_some(net::buffer(&byte, 1), ec);
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(ec, net::error::eof) << ec.message();
}

// Issue #18: `PUT /v1/executions/bulk` answered 405 with `Allow: GET`. For every route
// template of the router and every method, the answer is 405 exactly when no route takes the
// method on that path, and a 405's Allow lists exactly the methods that were not answered
// 405 there (the route table drives both). Every answer is also checked against openapi.yaml
// by request(), including that its Allow matches the methods the document defines.
TEST(ApiTest, EveryMethodNotAllowedOnARouteGets405WithTheMethodsThatRouteThere) {
  Harness h;
  const std::vector<std::string> methods = {"GET",   "HEAD",   "POST",   "PUT",
                                            "PATCH", "DELETE", "OPTIONS"};
  std::set<std::string> paths;
  for (const auto& [method, pattern] : Api::route_table()) {
    std::string path;
    std::size_t pos = 0;
    while (pos < pattern.size()) {  // every {capture} becomes "x"
      const std::size_t open = pattern.find('{', pos);
      if (open == std::string::npos) {
        path += pattern.substr(pos);
        break;
      }
      path += pattern.substr(pos, open - pos) + "x";
      pos = pattern.find('}', open) + 1;
    }
    paths.insert(path);
  }
  paths.insert("/");
  EXPECT_TRUE(paths.count("/v1/executions/bulk"));
  for (const std::string& path : paths) {
    SCOPED_TRACE(path);
    std::set<std::string> routed;
    std::vector<std::pair<std::string, Response>> refused;
    for (const std::string& m : methods) {
      if (m == "GET" && path == "/v1/stats/stream") {  // an endless answer: seen by HEAD
        routed.insert(m);
        continue;
      }
      Response r = request(h.port(), m, path);
      if (r.status == 405) {
        refused.emplace_back(m, r);
        continue;
      }
      EXPECT_EQ(r.message().find("no such endpoint"), std::string::npos) << m << ": " << r.body;
      routed.insert(m);
    }
    EXPECT_FALSE(routed.empty());
    EXPECT_EQ(routed.count("GET"), routed.count("HEAD")) << "HEAD goes wherever GET goes";
    for (const auto& [m, r] : refused) {
      std::set<std::string> allow;
      std::stringstream list(r.headers.count("Allow") ? r.headers.at("Allow") : "");
      for (std::string item; std::getline(list, item, ',');) {
        allow.insert(item.substr(item.find_first_not_of(' ')));
      }
      EXPECT_EQ(allow, routed) << m << " answered " << r.body;
    }
  }
  Response bulk = h.call("PUT", "/v1/executions/bulk");
  EXPECT_EQ(bulk.status, 405);
  EXPECT_THAT(bulk.headers["Allow"], ::testing::HasSubstr("POST"));
}

// Issue #18: null for a field was taken as "not given" and answered 201; no field of a
// submission, ticket or bulk body is nullable (docs/openapi.yaml). PATCH /v1/helpers/NAME
// keeps null as "back to the config's value", as documented.
TEST(ApiTest, NullForAnyFieldIsRefusedNamingTheField) {
  Harness h;
  const std::size_t before = h.stored();
  for (const std::string field : {"executor", "helper", "id", "name", "key", "lane", "priority",
                                  "params", "not_before", "expiry", "timeout"}) {
    SCOPED_TRACE(field);
    json body = {{"executor", "noop"}};
    body[field] = nullptr;
    Response r = h.post("/v1/executions", body.dump());
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(r.code(), "invalid_field");
    EXPECT_EQ(r.j["error"].value("field", ""), field);
    EXPECT_EQ(r.message(), field + ": null is not allowed; omit the field instead");
  }
  for (const std::string field :
       {"ticket", "params", "priority", "not_before", "expiry", "timeout"}) {
    SCOPED_TRACE(field);
    json body = {{"ticket", "t1"}, {"params", {{"duration", "1ms"}}}};
    body[field] = nullptr;
    Response r = h.post("/v1/projects/acme/tickets", body.dump());
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(r.j["error"].value("field", ""), field);
  }
  Response r = h.post("/v1/executions/bulk",
                      R"({"executions":[{"executor":"noop"},{"executor":"noop","key":null}]})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.j["error"].value("field", ""), "executions[1].key");
  r = h.post("/v1/executions/bulk", R"({"executions":null})");
  EXPECT_EQ(r.j["error"].value("field", ""), "executions");
  r = h.post("/v1/projects/acme/tickets/bulk", R"({"tickets":["a","b"],"params":null})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.j["error"].value("field", ""), "params");
  r = h.post("/v1/projects/acme/tickets/bulk",
             R"({"tickets":["a",{"ticket":"b","priority":null}],"params":{"duration":"1ms"}})");
  EXPECT_EQ(r.j["error"].value("field", ""), "tickets[1].priority");
  r = h.post("/v1/executions/cancel", R"({"key":null})");
  EXPECT_EQ(r.j["error"].value("field", ""), "key");
  r = h.post("/v1/lanes/default/scale", R"({"workers":null})");
  EXPECT_EQ(r.j["error"].value("field", ""), "workers");
  r = h.call("PUT", "/v1/helpers/hourly/schedule", R"({"schedule":null})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.j["error"].value("field", ""), "schedule");
  r = h.post("/v1/executions/x/cancel", R"({"stop":null})");
  EXPECT_EQ(r.j["error"].value("field", ""), "stop");
  EXPECT_EQ(h.stored(), before);

  // Where null is documented: back to the config's value.
  r = h.call("PATCH", "/v1/helpers/hourly", R"({"priority":1})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.j["state"]["priority_override"], 1);
  r = h.call("PATCH", "/v1/helpers/hourly", R"({"priority":null})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(r.j["state"]["priority_override"].is_null());
}

// Issue #18: `"id": ""` was replaced by a generated id, against the documented pattern;
// an empty name, key or lane is no way to ask for the default either.
TEST(ApiTest, AnEmptyIdOrNameIsRefused) {
  Harness h;
  const std::size_t before = h.stored();
  for (const std::string field : {"id", "executor", "name", "key", "lane"}) {
    SCOPED_TRACE(field);
    json body = {{"executor", "noop"}};
    body[field] = "";
    Response r = h.post("/v1/executions", body.dump());
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(r.j["error"].value("field", ""), field);
  }
  Response r = h.post("/v1/executions/bulk", R"({"executions":[{"executor":"noop","id":""}]})");
  EXPECT_EQ(r.j["error"].value("field", ""), "executions[0].id");
  r = h.post("/v1/projects/acme/tickets", R"({"ticket":""})");
  EXPECT_EQ(r.j["error"].value("field", ""), "ticket");
  EXPECT_EQ(h.stored(), before);
  r = h.post("/v1/executions", R"({"executor":"noop","id":"given-1"})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.j["id"], "given-1");
}

// [api] max_param_bytes bounds the params of each submission and ticket (as compact JSON),
// with a 413 that names the limit; a bulk ticket request's shared params count for each.
TEST(ApiTest, ParamsOverTheConfiguredLimitAre413NamingTheLimit) {
  Harness h(std::string(kConfig) + "[api]\nmax_param_bytes = 100\n");
  const std::size_t before = h.stored();
  const std::string big =
      std::string(R"({"duration":"1ms","pad":")") + std::string(100, 'x') + "\"}";
  Response r = h.post("/v1/executions", R"({"executor":"sleep","params":)" + big + "}");
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_EQ(r.code(), "params_too_large");
  EXPECT_EQ(r.j["error"].value("field", ""), "params");
  EXPECT_THAT(r.message(), ::testing::HasSubstr("exceed the limit of 100 bytes"));
  EXPECT_THAT(r.message(), ::testing::HasSubstr("[api] max_param_bytes"));
  r = h.post("/v1/executions/bulk",
             R"({"executions":[{"executor":"noop"},{"executor":"sleep","params":)" + big + "}]}");
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_EQ(r.j["error"].value("field", ""), "executions[1].params");
  r = h.post("/v1/projects/acme/tickets", R"({"ticket":"t1","params":)" + big + "}");
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_EQ(r.j["error"].value("field", ""), "params");
  r = h.post("/v1/projects/acme/tickets/bulk", R"({"tickets":["a","b"],"params":)" + big + "}");
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_EQ(r.j["error"].value("field", ""), "tickets[0].params");
  EXPECT_EQ(h.stored(), before);
  // Within the limit: accepted.
  r = h.post("/v1/executions", R"({"executor":"sleep","params":{"duration":"1ms"}})");
  EXPECT_EQ(r.status, 201) << r.body;
  r = h.post("/v1/projects/acme/tickets", R"({"ticket":"t1","params":{"duration":"1ms"}})");
  EXPECT_EQ(r.status, 201) << r.body;
}

// Sends a 100 MB submission (a param of 100 MB) as fast as the daemon takes it and returns
// the answer and how many bytes it took: the daemon must answer 413 once the body passes the
// body limit, without reading (or holding) the rest.
std::pair<Response, std::size_t> send_huge_body(uint16_t port, bool chunked) {
  constexpr std::size_t kTotal = 100u << 20;
  net::io_context ioc;
  tcp::socket sock(ioc);
  sock.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  set_socket_timeouts(sock);
  std::string head =
      "POST /v1/executions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Content-Type: application/json\r\n";
  head += chunked ? "Transfer-Encoding: chunked\r\n\r\n"
                  : "Content-Length: " + std::to_string(kTotal) + "\r\n\r\n";
  net::write(sock, net::buffer(head));
  const std::string piece(64 << 10, 'x');
  const std::string chunk = fmt::format("{:x}\r\n{}\r\n", piece.size(), piece);
  const std::string& unit = chunked ? chunk : piece;
  std::size_t sent = 0;
  sock.non_blocking(true);
  std::size_t offset = 0;  // into `unit`
  while (sent < kTotal) {
    pollfd fd{sock.native_handle(), POLLIN | POLLOUT, 0};
    if (::poll(&fd, 1, 10000) <= 0) break;
    if (fd.revents & (POLLIN | POLLERR | POLLHUP)) break;  // the answer (or a reset)
    const ssize_t n =
        ::send(sock.native_handle(), unit.data() + offset, unit.size() - offset, MSG_NOSIGNAL);
    if (n <= 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) continue;
      break;
    }
    sent += static_cast<std::size_t>(n);
    offset = (offset + static_cast<std::size_t>(n)) % unit.size();
  }
  sock.non_blocking(false);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  beast::error_code ec;
  http::read(sock, buf, res, ec);
  Response r;
  r.status = ec ? 0 : res.result_int();
  r.body = ec ? ec.message() : res.body();
  r.j = json::parse(r.body, nullptr, false);
  return {r, sent};
}

// A 100 MB param over HTTP is refused at the body limit (1 MiB): by its Content-Length before
// any of it is read, and a chunked one once it passes the limit; the daemon keeps serving.
TEST(ApiTest, AHundredMegabyteParamIsRefusedAtTheBodyLimitWithoutReadingItAll) {
  Harness h;
  const std::size_t before = h.stored();
  for (const bool chunked : {false, true}) {
    SCOPED_TRACE(chunked ? "chunked" : "Content-Length");
    auto [r, sent] = send_huge_body(h.port(), chunked);
    EXPECT_EQ(r.status, 413) << r.body;
    EXPECT_EQ(r.code(), "body_too_large");
    EXPECT_THAT(r.message(), ::testing::HasSubstr("exceeds 1048576 bytes"));
    // It answered long before the 100 MB were sent (socket buffers take a few MB).
    EXPECT_LT(sent, 32u << 20) << "sent " << sent << " bytes before the answer";
    RecordProperty(chunked ? "chunked_bytes_sent" : "content_length_bytes_sent",
                   std::to_string(sent));
  }
  EXPECT_EQ(h.stored(), before);
  EXPECT_EQ(h.get("/healthz").status, 200);
}

TEST(ApiSchedctlTest, CommandsPrintJsonAndWatchOncePrintsOneSnapshot) {
  Harness h(R"([tickets]
executor = "sleep"
[helpers.hourly]
executor = "noop"
schedule = { every = "1h" }
)");
  const std::string addr = "127.0.0.1:" + std::to_string(h.port());
  auto ctl = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {SCHEDCTL_BINARY, "--addr", addr};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::run_process(argv);
  };

  auto r = ctl({"--json", "watch", "--once"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json snapshot = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(snapshot.is_object()) << r.out;
  EXPECT_EQ(snapshot["runningCapacity"], 4);
  EXPECT_EQ(snapshot["queuedCapacity"], 10000);
  EXPECT_EQ(snapshot["running"], 0);

  r = ctl({"watch", "--once"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("running 0"), std::string::npos) << r.out;

  r = ctl({"--json", "status"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["node"], "n1");

  r = ctl({"--json", "submit", "sleep", "--key", "k", "-p", "duration=1h", "--priority", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string id = json::parse(r.out)["id"];
  ASSERT_TRUE(h.wait_status(id, "running"));
  r = ctl({"--json", "watch", "--once"});
  EXPECT_EQ(json::parse(r.out)["running"], 1);

  r = ctl({"tickets", "add", "proj", "t1", "-p", "duration=1h"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "ticket t1 of project proj queued at position #1\n");
  ASSERT_TRUE(h.wait_status("proj:t1", "running"));
  ASSERT_EQ(ctl({"tickets", "add", "proj", "t2", "-p", "duration=1h"}).exit_code, 0);
  r = ctl({"--json", "queue", "proj"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json q = json::parse(r.out);
  EXPECT_EQ(q["running"]["id"], "proj:t1");
  EXPECT_EQ(q["queue"][0]["id"], "proj:t2");
  r = ctl({"queue", "proj"});
  EXPECT_NE(r.out.find("running  proj:t1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("#1"), std::string::npos) << r.out;

  r = ctl({"cancel", id});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("HTTP 409"), std::string::npos) << r.err;
  r = ctl({"--json", "cancel", id, "--stop"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["stop_requested"], true);
  r = ctl({"tickets", "cancel", "proj", "t2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;

  // Bulk tickets queue behind the running t1; "clear queue" cancels them; "clear completed"
  // empties the history.
  r = ctl({"tickets", "bulk", "proj", "b1", "b2", "b3", "-p", "duration=1h"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("proj:b3                  queued at #3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("3 tickets queued"), std::string::npos) << r.out;
  EXPECT_EQ(h.status_of("proj:b2"), "queued");
  r = ctl({"clear", "queue", "--key", "proj"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "3 queued executions cancelled\n");
  EXPECT_EQ(h.status_of("proj:b2"), "cancelled");
  EXPECT_EQ(h.status_of("proj:t1"), "running");
  r = ctl({"--json", "clear", "completed"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GE(json::parse(r.out)["removed"].get<int>(), 4);  // t2, b1-b3
  EXPECT_EQ(h.get("/v1/executions/proj:b2").status, 404);
  EXPECT_EQ(ctl({"clear", "everything"}).exit_code, 2);

  r = ctl({"--json", "helpers"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["helpers"][0]["name"], "hourly");
  r = ctl({"--json", "helpers", "disable", "hourly"});
  EXPECT_EQ(json::parse(r.out)["removed"], 2);
  r = ctl({"helpers", "update", "hourly", "{ every = \"30m\" }"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = ctl({"helpers", "update", "hourly", "--priority", "2", "--expiry", "10m"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("hourly: priority 2, expiry 10m;"), std::string::npos) << r.out;
  r = ctl({"helpers", "update", "hourly", "--priority", "9"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("priority: 9 is out of range 1-5"), std::string::npos) << r.err;
  r = ctl({"--json", "helpers", "update", "hourly", "--priority", "config", "--expiry", "config"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["state"]["priority_override"], nullptr);
  EXPECT_EQ(json::parse(r.out)["state"]["expiry"], "30m");
  EXPECT_EQ(ctl({"helpers", "update", "hourly"}).exit_code, 2);
  r = ctl({"helpers", "show", "nope"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("HTTP 404"), std::string::npos);

  r = testing::run_process({SCHEDCTL_BINARY, "--addr", "127.0.0.1:1", "status"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("cannot reach"), std::string::npos) << r.err;
}

// `schedd run` serves the API on the configured address, logs it, refuses a non-loopback
// address without a token, and stops the API before the engine.
TEST(ApiDaemonTest, RunServesTheApiAndRefusesAnOpenAddressWithoutAToken) {
  testing::TempDir dir;
  const std::string head =
      std::string("[daemon]\nplugin_dir = \"") + SCHEDD_PLUGIN_DIR + "\"\n[api]\n";
  auto open = dir.write("open.toml", head + "listen = \"0.0.0.0:0\"\n");
  auto r = testing::run_process({SCHEDD_BINARY, "run", "-c", open.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("without an API token"), std::string::npos) << r.err;

  dir.write("token", "tok\n");
  auto cfg = dir.write("schedd.toml", head + "listen = \"127.0.0.1:0\"\ntoken_file = \"token\"\n");
  testing::Process p({SCHEDD_BINARY, "run", "-c", cfg.string()});
  ASSERT_TRUE(p.wait_for_err("schedd ready", 20s)) << p.err();
  const std::string err = p.err();
  const std::string marker = "listening on http://127.0.0.1:";
  auto at = err.find(marker);
  ASSERT_NE(at, std::string::npos) << err;
  const auto port = static_cast<uint16_t>(std::stoi(err.substr(at + marker.size())));
  EXPECT_EQ(request(port, "GET", "/healthz").status, 200);
  EXPECT_EQ(request(port, "POST", "/v1/executions", R"({"executor":"noop"})").status, 401);
  EXPECT_EQ(request(port, "POST", "/v1/executions", R"({"executor":"noop"})", "tok").status, 201);
  p.signal(SIGTERM);
  auto end = p.wait();
  EXPECT_EQ(end.exit_code, 0) << end.err;
}

}  // namespace
}  // namespace schedd::api
