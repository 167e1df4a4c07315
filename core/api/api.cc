// The API's core: the route table joined from its parts, auth, dispatch, and what the
// handlers share. The handlers live in a file per resource (api_internal.h says which).
#include "core/api/api.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>

#include "core/api/api_internal.h"
#include "core/api/web_routes.h"

namespace schedd::api {
namespace {

// ---------------------------------------------------------------------------------------
// Auth

// Compares in time that depends only on the lengths, not on where the texts differ.
bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::size_t n = std::max(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

std::string trim(std::string s) {
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

StatusOr<std::optional<std::string>> read_token(const std::optional<std::string>& file,
                                                const std::optional<std::string>& env,
                                                const char* what) {
  if (file) {
    std::ifstream in(*file, std::ios::binary);
    if (!in) return invalid_argument(std::string(what) + "_file " + *file + ": cannot be read");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    text = trim(text);
    if (text.empty()) return invalid_argument(std::string(what) + "_file " + *file + " is empty");
    return std::optional<std::string>(text);
  }
  if (env) {
    const char* v = std::getenv(env->c_str());
    std::string text = v == nullptr ? "" : trim(v);
    if (text.empty()) {
      return invalid_argument(std::string(what) + "_env: environment variable " + *env +
                              " is not set or empty");
    }
    return std::optional<std::string>(text);
  }
  return std::optional<std::string>();
}

}  // namespace

Api::Impl::Impl(Engine& e, ApiOptions o)
    : engine(e),
      options(std::move(o)),
      started(std::chrono::steady_clock::now()),
      feed([this] { return dump(stats_json()); }, options) {
  DispatchObserver observer;
  observer.on_claim = [this](const Execution&) { feed.poke(); };
  observer.on_start = [this](const Execution& x) {
    metrics.started(x, engine.clock().now());
    feed.poke();
  };
  observer.on_finish = [this](const Execution& x, const Completion& c) {
    metrics.finished(x, c);
    feed.poke();
  };
  observer.on_expired = [this](const Execution& x) {
    metrics.expired(x);
    feed.poke();
  };
  observer.on_skipped = [this](const Execution& x) {
    metrics.skipped(x);
    feed.poke();
  };
  observer.on_progress = [this](const Execution& x, const RunProgress& p) {
    feed.publish("progress", dump({{"id", x.id},
                                   {"key", x.key()},
                                   {"lane", x.lane()},
                                   {"fraction", p.fraction < 0 ? json() : json(p.fraction)},
                                   {"message", p.message},
                                   {"at", time_text(p.at)}}));
  };
  observer_id = engine.add_observer(std::move(observer));
}

Api::Impl::~Impl() { engine.remove_observer(observer_id); }

HttpResponse Api::Impl::queue_full(const Status& s) {
  metrics.rejected();
  json stats = stats_json();
  // A hint, not a promise: about one average run, at least a second, at most a minute.
  const double avg = metrics.average_duration_seconds();
  const int retry_after = std::clamp(static_cast<int>(std::ceil(avg)), 1, 60);
  HttpResponse r = error_response(429, "queue_full", s.message(),
                                  {{"queued", stats["queued"]},
                                   {"queuedCapacity", stats["queuedCapacity"]},
                                   {"running", stats["running"]},
                                   {"runningCapacity", stats["runningCapacity"]},
                                   {"retry_after_seconds", retry_after}});
  r.headers.emplace_back("Retry-After", std::to_string(retry_after));
  return r;
}

HttpResponse Api::Impl::submitted(const StatusOr<SubmitResult>& r) {
  if (!r.is_ok()) {
    if (r.status().code() == StatusCode::kResourceExhausted) return queue_full(r.status());
    return status_response(r.status());
  }
  feed.poke();
  HttpResponse res = json_response(201, {{"id", r->execution.id},
                                         {"position", r->position},
                                         {"status", exec_status_name(r->execution.status)},
                                         {"execution", execution_json(r->execution, r->position)}});
  res.headers.emplace_back("Location", "/v1/executions/" + r->execution.id);
  return res;
}

HttpResponse Api::Impl::submit_durably(SubmitRequest req) {
  auto reply = std::make_shared<DurableReply>();
  auto r = engine.submit_deferred(std::move(req), reply->callback());
  if (!r.is_ok()) return submitted(r);
  return reply->reply(submitted(r));
}

StatusOr<json> Api::Impl::body_object(const std::string& body, bool allow_empty) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) {
    if (allow_empty) return json::object();
    return invalid_argument("a JSON object body is required");
  }
  auto j = parse_json(body, options.max_json_depth);
  if (!j.is_ok()) return j.status();
  if (!j->is_object()) {
    return invalid_argument(std::string("the body must be a JSON object, got ") + json_type(*j));
  }
  return j;
}

std::optional<std::string> Api::Impl::params_too_large(const json* params) {
  if (params == nullptr) return std::nullopt;
  const auto limit = static_cast<std::size_t>(engine.config().max_param_bytes);
  const std::size_t size = dump(*params).size();
  if (size <= limit) return std::nullopt;
  return fmt::format("params: {} bytes exceed the limit of {} bytes ([api] max_param_bytes)", size,
                     limit);
}

std::optional<HttpResponse> Api::Impl::bulk_over_capacity(std::size_t due_now) {
  const std::size_t queued = stats_json()["queued"].get<std::size_t>();
  if (queued + due_now <= engine.config().capacity_queued) return std::nullopt;
  return queue_full(Status(StatusCode::kResourceExhausted,
                           fmt::format("queue full: {} queued + {} submitted exceeds capacity {}",
                                       queued, due_now, engine.config().capacity_queued)));
}

HttpResponse Api::Impl::bulk_roll_back(const std::vector<std::string>& stored, const Status& why) {
  // A concurrent submission took the room or the id: undo what this request stored.
  for (const auto& id : stored) (void)engine.cancel(id, /*stop_running=*/true);
  feed.poke();
  if (why.code() == StatusCode::kResourceExhausted) return queue_full(why);
  return status_response(why, json{{"rolled_back", stored.size()}});
}

// ---------------------------------------------------------------------------------------
// Dispatch

const std::vector<Api::Impl::Route>& Api::Impl::routes() {
  static const std::vector<Route> table = [] {
    std::vector<Route> t;
    for (auto part : {system_routes, metrics_routes, lane_routes, helper_routes, execution_routes,
                      ticket_routes}) {
      for (auto& r : part()) t.push_back(std::move(r));
    }
    for (auto& r : t) {
      std::string_view p = r.pattern;
      while (!p.empty()) {
        p.remove_prefix(1);  // '/'
        const std::size_t end = std::min(p.find('/'), p.size());
        r.parts.emplace_back(p.substr(0, end));
        p.remove_prefix(end);
      }
    }
    return t;
  }();
  return table;
}

namespace {
bool path_matches(const std::vector<std::string>& parts, const std::vector<std::string>& segments,
                  std::vector<std::string>* args) {
  if (parts.size() != segments.size()) return false;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].starts_with('{')) {
      if (args != nullptr) args->push_back(segments[i]);
    } else if (parts[i] != segments[i]) {
      return false;
    }
  }
  return true;
}
}  // namespace

const Api::Impl::Route* Api::Impl::match_route(const std::string& method,
                                               const std::vector<std::string>& segments,
                                               std::vector<std::string>& args) {
  for (const Route& r : routes()) {
    if (r.method != method) continue;
    args.clear();
    if (path_matches(r.parts, segments, &args)) return &r;
  }
  args.clear();
  return nullptr;
}

std::string Api::Impl::allowed_methods(const std::vector<std::string>& segments) {
  std::vector<std::string> methods;
  auto add = [&](const std::string& m) {
    if (std::find(methods.begin(), methods.end(), m) == methods.end()) methods.push_back(m);
  };
  for (const Route& r : routes()) {
    if (!path_matches(r.parts, segments, nullptr)) continue;
    add(r.method);
    if (std::string_view(r.method) == "GET") add("HEAD");  // HEAD is served wherever GET is
  }
  std::string out;
  for (const auto& m : methods) out += (out.empty() ? "" : ", ") + m;
  return out;
}

HttpResponse Api::Impl::route(const HttpRequest& req) {
  auto target = parse_target(req.target);
  if (!target) {
    HttpResponse r = error_response(400, "bad_request", "malformed request target (path or query)");
    r.route = HttpMetrics::unmatched_route();
    return r;
  }
  // HEAD is answered as GET is; the transport sends only the header (RFC 9110 §9.3.2).
  const std::string m = req.method == "HEAD" ? std::string("GET") : req.method;
  const bool read = m == "GET";
  // The route is found first so that every answer, a refusal by auth too, is counted under
  // it (HttpMetrics).
  std::vector<std::string> args;
  const Route* route = match_route(m, target->segments, args);
  HttpResponse res = answer(req, *target, m, read, route, args);
  if (route != nullptr) {
    res.route = static_cast<int>(route - routes().data());
  } else if (m == "GET" && (target->segments.empty() || target->segments[0] == "ui")) {
    res.route = HttpMetrics::dashboard_route(target->segments.empty());
  } else {
    res.route = HttpMetrics::unmatched_route();
  }
  return res;
}

HttpResponse Api::Impl::answer(const HttpRequest& req, const Target& target_ref,
                               const std::string& m, bool read, const Route* r,
                               const std::vector<std::string>& args) {
  const Target* target = &target_ref;

  // Auth: a wrong token is always refused; mutating requests need the full token.
  std::optional<bool> full;  // set when a valid token was given: whether it is the full one
  const Tokens auth_tokens = tokens();
  if (auth_tokens.token || auth_tokens.read_token) {
    if (!req.authorization.empty()) {
      std::string_view auth = req.authorization;
      constexpr std::string_view kBearer = "bearer ";
      std::string scheme(auth.substr(0, std::min(auth.size(), kBearer.size())));
      std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (scheme != kBearer) {
        return error_response(401, "unauthorized", "Authorization must be \"Bearer TOKEN\"");
      }
      const std::string token = trim(std::string(auth.substr(kBearer.size())));
      const bool is_full = auth_tokens.token && constant_time_equal(token, *auth_tokens.token);
      const bool is_read =
          auth_tokens.read_token && constant_time_equal(token, *auth_tokens.read_token);
      if (!is_full && !is_read) {
        HttpResponse r = error_response(401, "unauthorized", "invalid token");
        r.headers.emplace_back("WWW-Authenticate", "Bearer");
        return r;
      }
      full = is_full;
    }
    if (!read && auth_tokens.token) {
      if (!full) {
        HttpResponse r = error_response(401, "unauthorized",
                                        "this endpoint needs \"Authorization: Bearer TOKEN\"");
        r.headers.emplace_back("WWW-Authenticate", "Bearer");
        return r;
      }
      if (!*full) {
        return error_response(403, "forbidden", "the read-only token cannot change anything");
      }
    }
  }

  if (auto page = web::route(m, target->segments)) return std::move(*page);
  if (r == nullptr) {
    // A known path with another method: 405 with the methods it takes.
    std::string allow = allowed_methods(target->segments);
    if (allow.empty()) {
      return error_response(404, "not_found", "no such endpoint: " + m + " " + req.target);
    }
    HttpResponse res = error_response(405, "method_not_allowed",
                                      m + " is not allowed on " + req.target + "; use " + allow);
    res.headers.emplace_back("Allow", allow);
    return res;
  }
  return r->handler(*this, Call{req, *target, args, full});
}

Api::Api(Engine& engine, ApiOptions options)
    : impl_(std::make_unique<Impl>(engine, std::move(options))) {}
Api::~Api() = default;

bool Api::handles_inline(const HttpRequest& request) const {
  // Which requests never wait: with a local store, the cheap reads and single submissions
  // (a durable submission is answered later, from the store's writer, not waited for), as
  // the route table marks them, and the dashboard's files. Everything that waits for a
  // commit (operator changes, cancel, bulk) or may walk much of the store (listings) goes to
  // the pool, and so does everything on a remote store but the liveness probe.
  auto target = parse_target(request.target);
  if (!target) return true;  // a 400, at once
  const auto& s = target->segments;
  const std::string method = request.method == "HEAD" ? std::string("GET") : request.method;
  if (method == "GET" && s.size() == 1 && s[0] == "healthz") return true;
  if (impl_->engine.store().remote()) return false;
  if (s.empty() || s[0] == "ui") return true;  // the dashboard (web_routes.h)
  std::vector<std::string> args;
  const Impl::Route* r = Impl::match_route(method, s, args);
  return r != nullptr && r->inline_local;
}

void Api::record_response(int route, int status, std::optional<std::chrono::nanoseconds> elapsed) {
  impl_->http_metrics.observe(route, status, elapsed);
}

std::vector<std::pair<std::string, std::string>> Api::route_table() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Impl::Route& r : Impl::routes()) out.emplace_back(r.method, r.pattern);
  return out;
}

bool Api::set_tokens(std::optional<std::string> token, std::optional<std::string> read_token) {
  std::lock_guard lock(impl_->tokens_mu);
  if (impl_->options.token == token && impl_->options.read_token == read_token) return false;
  impl_->options.token = std::move(token);
  impl_->options.read_token = std::move(read_token);
  return true;
}

StatusOr<bool> ApiService::set_tokens(std::optional<std::string> token,
                                      std::optional<std::string> read_token) {
  if (!token && !loopback_only_) {
    return failed_precondition(
        "the API listens beyond loopback and needs a token: a reload cannot remove it (restart)");
  }
  return api_->set_tokens(std::move(token), std::move(read_token));
}

HttpResponse Api::handle(const HttpRequest& request) {
  try {
    HttpResponse r = impl_->route(request);
    spdlog::debug("api: {} {} {} -> {}", request.remote, request.method, request.target, r.status);
    return r;
  } catch (const std::exception& e) {
    spdlog::error("api: {} {}: {}", request.method, request.target, e.what());
    return error_response(500, "internal", e.what());
  }
}

StatusOr<ApiOptions> api_options_from_config(const Config& config) {
  ApiOptions o;
  auto token = read_token(config.token_file, config.token_env, "token");
  if (!token.is_ok()) return token.status();
  o.token = *token;
  auto read = read_token(config.read_token_file, config.read_token_env, "read_token");
  if (!read.is_ok()) return read.status();
  o.read_token = *read;
  return o;
}

StatusOr<std::unique_ptr<ApiService>> ApiService::start(Engine& engine, ApiOptions options,
                                                        HttpServerOptions server) {
  std::unique_ptr<ApiService> service(new ApiService());
  server.require_loopback = !options.token.has_value();
  service->loopback_only_ = server.require_loopback;
  service->api_ = std::make_unique<Api>(engine, std::move(options));
  server.run_inline = [api = service->api_.get()](const HttpRequest& r) {
    return api->handles_inline(r);
  };
  server.on_response = [api = service->api_.get()](int route, int status,
                                                   std::optional<std::chrono::nanoseconds> d) {
    api->record_response(route, status, d);
  };
  auto s = HttpServer::start(std::move(server), [api = service->api_.get()](const HttpRequest& r) {
    return api->handle(r);
  });
  if (!s.is_ok()) return s.status();
  service->server_ = std::move(s).value();
  return service;
}

ApiService::~ApiService() { stop(); }

void ApiService::stop() {
  if (server_) server_->stop();
}

}  // namespace schedd::api
