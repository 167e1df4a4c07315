// The HTTP control API (docs/api.md): a routing layer that maps a request (method, path,
// headers, body) to a response by calling the Engine, with no HTTP library in sight, and
// ApiService, which serves it with HttpServer. Nothing here reaches past control/.
//
// Thread-safety: Api::handle is called concurrently from the transport's threads and is
// thread-safe. ApiService::start/stop from one thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/api/http.h"
#include "core/api/http_server.h"
#include "core/common/status.h"
#include "core/config/config.h"
#include "core/control/engine.h"

namespace schedd::api {

struct ApiOptions {
  // Bearer token for every endpoint. Unset: no token is needed, and the server listens only
  // on loopback addresses.
  std::optional<std::string> token;
  // Bearer token for reading only: mutating endpoints answer 403 with it.
  std::optional<std::string> read_token;
  // Live reload (POST /v1/system/reload), as SIGHUP does it: re-reads the config the daemon
  // started with. Unset: the endpoint answers 501.
  std::function<ReloadReport()> reload;
  // Deepest JSON nesting accepted in a request body. Default: 32
  std::size_t max_json_depth = 32;
  // Most executions in one bulk submission. Default: 1000
  std::size_t max_bulk = 1000;
  // Live stats stream: a heartbeat event this often. Default: 15 s
  std::chrono::milliseconds heartbeat = std::chrono::seconds(15);
  // Live stats stream: at most one stats event per this interval (10 per second).
  // Default: 100 ms
  std::chrono::milliseconds stats_min_interval = std::chrono::milliseconds(100);
  // Live stats stream: while clients are connected, the counts are also compared this
  // often, to see changes no dispatcher event announces (an execution coming due and
  // waiting, a completion recorded after its event). Default: 250 ms
  std::chrono::milliseconds stats_check = std::chrono::milliseconds(250);
};

// The tokens named by [api] token_file / token_env / read_token_file / read_token_env.
// Errors name the file or variable.
StatusOr<ApiOptions> api_options_from_config(const Config& config);

class Api {
 public:
  // `engine` must outlive the Api. Registers an engine observer (metrics, live stats).
  Api(Engine& engine, ApiOptions options);
  ~Api();
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  // Never throws: every failure is a JSON error response.
  HttpResponse handle(const HttpRequest& request);
  // Whether handle() never blocks for this request, so the transport may call it on an I/O
  // thread (HttpServerOptions::run_inline).
  bool handles_inline(const HttpRequest& request) const;
  // Counts an answered request for /metrics (HttpServerOptions::on_response): `route` as
  // handle() set it in the response.
  void record_response(int route, int status, std::optional<std::chrono::nanoseconds> elapsed);
  // Replaces the bearer tokens (a reload rotated them); requests after it use the new ones.
  // Returns whether they changed.
  bool set_tokens(std::optional<std::string> token, std::optional<std::string> read_token);

  // The route table as (method, path pattern) pairs, "{name}" for a captured segment, in the
  // order routes are tried; the dashboard's GET / and GET /ui/{file} are not in it. HEAD is
  // served wherever GET is. Tests compare it with docs/openapi.yaml.
  static std::vector<std::pair<std::string, std::string>> route_table();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The API served over HTTP, as `schedd run` runs it.
class ApiService {
 public:
  // Listens on `server.listen`; refuses a non-loopback address when `options` has no token.
  static StatusOr<std::unique_ptr<ApiService>> start(Engine& engine, ApiOptions options,
                                                     HttpServerOptions server);
  ~ApiService();

  // Stops serving (ends every connection); idempotent. Call before the engine stops.
  void stop();
  std::string address() const { return server_->address(); }
  // Api::set_tokens. Refused (kFailedPrecondition) when it would leave a non-loopback
  // listener without a token.
  StatusOr<bool> set_tokens(std::optional<std::string> token,
                            std::optional<std::string> read_token);
  uint16_t port() const { return server_->port(); }

 private:
  ApiService() = default;
  std::unique_ptr<Api> api_;  // outlives server_, whose streams reference it
  std::unique_ptr<HttpServer> server_;
  bool loopback_only_ = true;  // started without a token
};

}  // namespace schedd::api
