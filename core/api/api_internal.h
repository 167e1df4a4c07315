// What the API's resource files (helpers.cc, executions.cc, tickets.cc, system.cc,
// metrics.cc, lanes.cc) share: JSON answers and errors, request parsing (Fields), the
// execution JSON, Metrics, StatsFeed, and Api::Impl with its route table. Private to
// core/api; nothing outside includes it.
//
// Where a route lives: each resource file defines its part of the table (Impl::*_routes())
// next to its handlers, and api.cc joins the parts (Impl::routes()), checks auth and
// dispatches.
//
// Thread-safety: the free functions are thread-safe; Metrics, StatsFeed and DurableReply are
// thread-safe; Fields is not (one per request).
#pragma once

#include <fmt/format.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/api/api.h"
#include "core/api/http.h"
#include "core/common/duration.h"
#include "core/common/metrics.h"
#include "core/common/status.h"
#include "core/config/config.h"
#include "core/control/engine.h"

namespace schedd::api {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------
// Responses

std::string dump(const json& j);
HttpResponse json_response(int status, const json& body);
HttpResponse error_response(int status, std::string_view code, std::string_view message,
                            json extra = json::object());
// The one place Status codes become HTTP statuses (docs/design.md "Errors"). 429 is built by the
// caller, which knows the counts for its body.
HttpResponse status_response(const Status& s, json extra = json::object());

// Joins a deferred submission's durability (Store::submit_deferred, from the store's writer)
// with the response built once the submission was accepted, and answers when both are known:
// the response if the submission became durable, the store's 503 otherwise. Thread-safe.
class DurableReply : public std::enable_shared_from_this<DurableReply> {
 public:
  // The callback for submit_deferred.
  Store::DurableCallback callback() {
    return [self = shared_from_this()](Status s) { self->durable(std::move(s)); };
  }

  // The response to return from the handler: `ok` at once if durability is known already,
  // otherwise a deferred response that is sent when it is.
  HttpResponse reply(HttpResponse ok) {
    std::lock_guard lock(mu_);
    if (durable_) return durable_->is_ok() ? std::move(ok) : status_response(*durable_);
    ok_ = std::move(ok);
    HttpResponse r;
    r.deferred = out_;
    return r;
  }

 private:
  void durable(Status s) {
    std::unique_lock lock(mu_);
    if (!ok_) {
      durable_ = std::move(s);
      return;
    }
    HttpResponse ok = std::move(*ok_);
    ok_.reset();
    lock.unlock();
    out_->resolve(s.is_ok() ? std::move(ok) : status_response(s));
  }

  std::mutex mu_;
  std::optional<Status> durable_;
  std::optional<HttpResponse> ok_;
  std::shared_ptr<DeferredResponse> out_ = std::make_shared<DeferredResponse>();
};

// A request error naming the field at fault.
struct FieldError {
  std::string field;
  std::string message;
};

HttpResponse field_response(const FieldError& e);

// ---------------------------------------------------------------------------------------
// Time and values

std::string time_text(TimePoint t);
json opt_time(const std::optional<TimePoint>& t);
const char* origin_name(ExecOrigin o);
json params_json(const ParamList& params);
json execution_json(const Execution& e, std::optional<std::size_t> position = std::nullopt);
// A running execution's last progress report and log lines, when it runs on this daemon
// (in process or out): `progress` {fraction (null when unknown), message, at} and `log`.
void add_progress(json& j, Engine& engine, const Execution& e);
json schedule_json(const ScheduleConfig& s);

// ---------------------------------------------------------------------------------------
// Request parsing

struct Target {
  std::vector<std::string> segments;  // percent-decoded path segments
  std::map<std::string, std::string> query;
};

std::optional<Target> parse_target(std::string_view target);
// Parses a JSON request body, refusing nesting deeper than `max_depth` before parsing.
StatusOr<json> parse_json(const std::string& body, std::size_t max_depth);
const char* json_type(const json& j);

// Reads typed fields of a JSON object; the first mistake is kept, naming the field.
class Fields {
 public:
  Fields(const json& object, std::string prefix) : obj_(object), prefix_(std::move(prefix)) {}

  bool ok() const { return !error_; }
  const FieldError& error() const { return *error_; }
  void fail(const std::string& field, const std::string& message) {
    if (!error_) error_ = FieldError{prefix_ + field, prefix_ + field + ": " + message};
  }

  // Unknown fields are mistakes (a typo would otherwise be silently ignored).
  void only(std::initializer_list<const char*> known) {
    for (auto& [key, value] : obj_.items()) {
      bool found = false;
      for (const char* k : known) found = found || key == k;
      if (!found) {
        std::vector<std::string> names(known.begin(), known.end());
        std::string best = did_you_mean(key, names);
        fail(key, "unknown field" + (best.empty() ? "" : " (did you mean \"" + best + "\"?)"));
      }
    }
  }

  // The field, nullptr when absent. No field of a request body is nullable (docs/openapi.yaml):
  // a null is a mistake, not "absent" (PATCH /v1/helpers/NAME, where null means "back to the
  // config's value", reads its fields itself).
  const json* get(const char* name) {
    auto it = obj_.find(name);
    if (it == obj_.end()) return nullptr;
    if (it->is_null()) return fail(name, "null is not allowed; omit the field instead"), nullptr;
    return &*it;
  }
  // A bulk request's list: a required, non-empty array of at most `max` items.
  const json* items(const char* name, std::size_t max) {
    const json* v = get(name);
    if (v == nullptr) {
      fail(name, "required");
    } else if (!v->is_array()) {
      fail(name, std::string("expected array, got ") + json_type(*v));
    } else if (v->empty()) {
      fail(name, "must not be empty");
    } else if (v->size() > max) {
      fail(name, fmt::format("at most {} per request", max));
    }
    return ok() ? v : nullptr;
  }
  std::optional<std::string> string(const char* name) {
    const json* v = get(name);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) return mismatch(name, "string", *v), std::nullopt;
    return v->get<std::string>();
  }
  // A string that, when given, is not empty ("" is not a way to ask for the default).
  std::optional<std::string> nonempty_string(const char* name) {
    auto s = string(name);
    if (s && s->empty()) return fail(name, "must not be empty; omit the field instead"), s;
    return s;
  }
  std::optional<int64_t> integer(const char* name) {
    const json* v = get(name);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number_integer()) return mismatch(name, "integer", *v), std::nullopt;
    return v->get<int64_t>();
  }
  std::optional<bool> boolean(const char* name) {
    const json* v = get(name);
    if (v == nullptr) return std::nullopt;
    if (!v->is_boolean()) return mismatch(name, "boolean", *v), std::nullopt;
    return v->get<bool>();
  }
  // A duration: a string like "30s" or "1h30m".
  std::optional<std::chrono::milliseconds> duration(const char* name) {
    auto text = string(name);
    if (!text) return std::nullopt;
    auto d = parse_duration(*text);
    if (!d.is_ok()) return fail(name, d.status().message()), std::nullopt;
    if (d->count() <= 0) return fail(name, "must be greater than 0"), std::nullopt;
    return *d;
  }
  std::optional<TimePoint> time(const char* name) {
    auto text = string(name);
    if (!text) return std::nullopt;
    auto t = parse_rfc3339(*text);
    if (!t.is_ok()) return fail(name, t.status().message()), std::nullopt;
    return *t;
  }
  const json* object(const char* name) {
    const json* v = get(name);
    if (v == nullptr) return nullptr;
    if (!v->is_object()) return mismatch(name, "object", *v), nullptr;
    return v;
  }

 private:
  void mismatch(const char* name, const char* expected, const json& got) {
    fail(name, std::string("expected ") + expected + ", got " + json_type(got));
  }

  const json& obj_;
  std::string prefix_;
  std::optional<FieldError> error_;
};

// Names of projects and tickets: they become execution ids and URL segments.
bool valid_name(std::string_view s);
bool valid_id(std::string_view s);
std::string ticket_id(const std::string& project, const std::string& ticket);

// JSON params -> RawParams -> validated against the executor's schema exactly as a helper's
// params in the config file are (unknown param with did-you-mean, missing required, types,
// defaults).
std::optional<ParamList> convert_params(const json* params, const ExecutorInfo& info,
                                        FieldError& error);
// A JSON schedule object ({"cron": "...", "tz": "..."}) as the TOML inline table that
// parse_schedule validates, so the API accepts exactly what the config file does.
std::optional<std::string> schedule_toml(const json& j, FieldError& error);

// ---------------------------------------------------------------------------------------
// Metrics (metrics.cc): counters and histograms of what the dispatcher did, for /metrics.

class Metrics {
 public:
  void started(const Execution& e, TimePoint now);
  void finished(const Execution& e, const Completion& c);
  void expired(const Execution& e);
  void skipped(const Execution& e);
  void rejected();
  double average_duration_seconds() const;
  void write(std::string& out) const;
  // Throughput and start lag over the last kRecentBuckets x kBucket before `now`, oldest
  // first: what /v1/status shows as `recent` (the Overview page's charts on load).
  json recent(TimePoint now) const;
  static constexpr std::chrono::seconds kBucket{10};
  static constexpr std::size_t kRecentBuckets = 60;  // 10 minutes

 private:
  using Label = std::pair<std::string, std::string>;  // origin, lane
  static Label label(const Execution& e);

  mutable std::mutex mu_;
  std::map<std::pair<Label, std::string>, uint64_t> totals_;
  uint64_t expired_ = 0, skipped_ = 0, retried_ = 0, interrupted_ = 0, rejected_ = 0;
  double avg_duration_ = 0;
  Histogram lag_{{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300}};
  Histogram duration_{{0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600}};
  struct Bucket {
    uint64_t finished = 0;  // reached a final status (retries not counted)
    uint64_t started = 0;
    double lag_sum = 0;  // seconds, over `started`
    double lag_max = 0;
  };
  Bucket& bucket(TimePoint t);        // mu_ held; drops buckets older than the window
  std::map<int64_t, Bucket> recent_;  // by t / kBucket
};

// Requests by route and status, and their latency by route, for /metrics (metrics.cc); the
// transport reports each answered request (HttpServerOptions::on_response). A route is an
// index into Impl::routes(), then the dashboard's "/" and "/ui/{file}", then "unmatched" (no
// route: a 404, a malformed request). Labels are route templates and status codes, never a
// raw path, so there are at most as many series as routes times codes. Observing costs a
// few relaxed atomic increments. Thread-safe.
class HttpMetrics {
 public:
  HttpMetrics();
  // `elapsed`: from the request read to its response; unset for the transport's own errors.
  void observe(int route, int status, std::optional<std::chrono::nanoseconds> elapsed);
  void write(std::string& out) const;
  // The route indexes after the route table's.
  static int dashboard_route(bool index_page);
  static int unmatched_route();

 private:
  static constexpr std::array<int, 24> kCodes = {200, 201, 202, 204, 206, 301, 302, 304,
                                                 400, 401, 403, 404, 405, 406, 409, 412,
                                                 413, 415, 422, 429, 431, 500, 501, 503};
  struct Row {
    std::array<std::atomic<uint64_t>, kCodes.size() + 1> codes{};  // + 1: any other code
    AtomicHistogram latency;
  };
  std::size_t rows_;
  std::unique_ptr<Row[]> row_;
};

// ---------------------------------------------------------------------------------------
// Live stats (system.cc): one thread publishes to every stream; no connection holds a
// thread. Each subscriber is sent every sample that differs from the stats it was last sent;
// a sample is taken and sent, or taken and a subscriber registered with it, under
// sample_mu_, so that no sample goes out between a new subscriber's first stats and its
// registration.

class StatsFeed {
 public:
  StatsFeed(std::function<std::string()> snapshot, const ApiOptions& options);
  ~StatsFeed();

  // Sends the current stats at once, then every change. Returns the unsubscribe function.
  std::function<void()> subscribe(StreamPush push);
  // Something changed (cheap; called from dispatcher threads and API calls).
  // Wakes the publisher only when the change is news to it and someone listens: a burst of
  // submissions costs one wake-up per stats interval, not one each.
  void poke();
  // Sends a named event (a run's progress) to every client at once. Cheap when nobody
  // listens; called from dispatcher threads, at most about 20 times a second per run.
  void publish(const char* name, const std::string& data);
  std::size_t clients();

 private:
  static std::string event(const char* name, const std::string& data);
  // Stats go out twice: as `event: stats` (addEventListener("stats", ...)) and unnamed, the
  // "message" event that a plain EventSource.onmessage handler receives.
  static std::string stats_event(const std::string& stats);
  // Called with mu_ held; sends `chunk` (a stats event when `stats` is set, to those that
  // were last sent other stats) and drops subscribers whose connection is gone. Returns
  // whether it sent stats to anyone.
  bool broadcast(const std::string& chunk, const std::string* stats = nullptr);
  void run();

  std::function<std::string()> snapshot_;
  const ApiOptions& options_;
  std::mutex sample_mu_;  // taken before mu_, never while holding it
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool dirty_ = false;
  uint64_t next_id_ = 0;
  struct Subscriber {
    StreamPush push;
    std::string last;  // the stats it was last sent
  };
  std::map<uint64_t, Subscriber> subscribers_;
  std::thread thread_;  // last: starts after everything it uses
};

// ---------------------------------------------------------------------------------------
// The routes

struct Api::Impl {
  // Registers the engine observer that feeds `metrics` and `feed` (api.cc).
  Impl(Engine& e, ApiOptions o);
  ~Impl();

  // Auth, then the dashboard's files (web_routes.h), then the route table (api.cc). The
  // response's `route` says which route answered (HttpMetrics).
  HttpResponse route(const HttpRequest& req);

  // One request, as a handler sees it.
  struct Call {
    const HttpRequest& req;
    const Target& target;
    const std::vector<std::string>& args;  // the path's {captures}, in order
    std::optional<bool> full;  // set when a valid token was given: whether it is the full one
  };
  // The route table (routes()) drives dispatch, 405's Allow, and which requests are answered
  // on the I/O thread. Auth is by method: GET reads, everything else needs the full token.
  struct Route {
    const char* method;
    const char* pattern;  // "/v1/helpers/{name}/enable": a {...} segment captures one segment
    bool inline_local;    // cheap and never waits: answered on the I/O thread (local store)
    HttpResponse (*handler)(Impl&, const Call&);
    std::vector<std::string> parts = {};  // the pattern's segments, split once
  };
  // route() once the route `r` (nullptr: none) for method `m` is known.
  HttpResponse answer(const HttpRequest& req, const Target& target, const std::string& m, bool read,
                      const Route* r, const std::vector<std::string>& args);
  // The whole table: the parts below, joined in this order (api.cc).
  static const std::vector<Route>& routes();
  // Each resource's part of the table, defined in the file of its handlers. A new route goes
  // in the part its URL names; within a part, a literal segment goes before a capture in the
  // same place.
  static std::vector<Route> system_routes();     // system.cc: /healthz /readyz /v1/status
                                                 // /v1/whoami /v1/stats /v1/stats/stream
  static std::vector<Route> metrics_routes();    // metrics.cc: /metrics
  static std::vector<Route> lane_routes();       // lanes.cc: /v1/lanes...
  static std::vector<Route> helper_routes();     // helpers.cc: /v1/helpers...
  static std::vector<Route> execution_routes();  // executions.cc: /v1/executions...
                                                 // /v1/history
  static std::vector<Route> ticket_routes();     // tickets.cc: /v1/projects/{project}/tickets...
  // The route for `method` on the path, its captures in `args`; nullptr when none. Routes are
  // tried in table order, so a literal segment listed first wins over a capture.
  static const Route* match_route(const std::string& method,
                                  const std::vector<std::string>& segments,
                                  std::vector<std::string>& args);
  // The methods some route takes on the path ("GET, POST"), "" when no route has the path.
  static std::string allowed_methods(const std::vector<std::string>& segments);

  // system.cc
  json stats_json();
  HttpResponse status();
  HttpResponse readyz();
  HttpResponse whoami(const Call& c);
  HttpResponse stats_stream();
  // metrics.cc
  HttpResponse metrics_text();
  // lanes.cc
  HttpResponse lanes();
  HttpResponse lane_scale(const std::string& lane, const std::string& body);
  HttpResponse lane_pause(const std::string& lane, bool paused);
  HttpResponse lane_workers(const std::string& lane);
  // One lane as GET /v1/lanes lists it; nullopt when this daemon has no such lane.
  std::optional<json> lane_state(const std::string& lane);
  HttpResponse reload();
  HttpResponse drain(bool on);
  json drain_json();
  // helpers.cc
  HttpResponse helpers_list();
  HttpResponse helper_show(const std::string& name);
  HttpResponse helper_enable(const std::string& name, bool enable);
  HttpResponse helper_schedule(const std::string& name, const std::string& body);
  HttpResponse helper_update(const std::string& name, const std::string& body);
  HttpResponse helper_run(const std::string& name);
  // executions.cc
  HttpResponse executions_list(const Target& t);
  HttpResponse execution_show(const std::string& id);
  HttpResponse execution_submit(const std::string& body);
  HttpResponse executions_bulk(const std::string& body);
  HttpResponse execution_cancel(const std::string& id, const Target& t, const std::string& body,
                                const std::optional<std::string>& project);
  HttpResponse executions_cancel_matching(const std::string& body);
  HttpResponse history_clear(const Target& t);
  // Reads a submission object; nullopt with `error` set when a field is wrong.
  std::optional<SubmitRequest> read_submit(const json& j, const std::string& prefix,
                                           FieldError& error);
  // tickets.cc
  HttpResponse ticket_submit(const std::string& project, const std::string& body);
  HttpResponse tickets_bulk(const std::string& project, const std::string& body);
  // Reads one ticket object of `project` (fields named with `prefix`); nullopt with the
  // error's response set when a field is wrong or no plugin provides the tickets executor.
  std::optional<SubmitRequest> read_ticket(const std::string& project, const json& j,
                                           const std::string& prefix,
                                           std::optional<HttpResponse>& error);
  HttpResponse project_queue(const std::string& project);
  HttpResponse ticket_show(const std::string& project, const std::string& ticket);

  // api.cc: shared by the handlers.
  StatusOr<json> body_object(const std::string& body, bool allow_empty);
  // "params: N bytes exceed the limit of M bytes ([api] max_param_bytes)" when `params` (as
  // compact JSON) is larger than the config allows; nullopt when it fits or is absent.
  std::optional<std::string> params_too_large(const json* params);
  HttpResponse queue_full(const Status& s);
  // Bulk requests (bulk_mu held): a 429 when `due_now` more would exceed capacity.queued; the
  // answer to a submission that failed midway, after cancelling what was already stored.
  std::optional<HttpResponse> bulk_over_capacity(std::size_t due_now);
  HttpResponse bulk_roll_back(const std::vector<std::string>& stored, const Status& why);
  HttpResponse submitted(const StatusOr<SubmitResult>& r);
  // Submits without holding a thread until the commit: the 201 is sent once it is durable.
  HttpResponse submit_durably(SubmitRequest req);

  // The bearer tokens as they are now (set_tokens may replace them at any time).
  struct Tokens {
    std::optional<std::string> token;
    std::optional<std::string> read_token;
  };
  Tokens tokens() const {
    std::lock_guard lock(tokens_mu);
    return {options.token, options.read_token};
  }

  Engine& engine;
  ApiOptions options;  // token and read_token under tokens_mu
  mutable std::mutex tokens_mu;
  std::chrono::steady_clock::time_point started;
  Metrics metrics;
  HttpMetrics http_metrics;
  StatsFeed feed;
  uint64_t observer_id = 0;
  std::mutex bulk_mu;  // one bulk submission at a time
};

}  // namespace schedd::api
