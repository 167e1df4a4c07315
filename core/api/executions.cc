// Executions: list, show, submit (one or in bulk), cancel one or by filter ("clear queue"),
// and the history (DELETE /v1/history, "clear completed").
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <set>

#include "core/api/api_internal.h"

namespace schedd::api {

std::vector<Api::Impl::Route> Api::Impl::execution_routes() {
  using C = const Call&;
  return {
      {"GET", "/v1/executions", false, [](Impl& a, C c) { return a.executions_list(c.target); }},
      {"POST", "/v1/executions", true, [](Impl& a, C c) { return a.execution_submit(c.req.body); }},
      {"POST", "/v1/executions/bulk", false,
       [](Impl& a, C c) { return a.executions_bulk(c.req.body); }},
      {"POST", "/v1/executions/cancel", false,
       [](Impl& a, C c) { return a.executions_cancel_matching(c.req.body); }},
      {"GET", "/v1/executions/{id}", false,
       [](Impl& a, C c) { return a.execution_show(c.args[0]); }},
      {"POST", "/v1/executions/{id}/cancel", false,
       [](Impl& a, C c) {
         return a.execution_cancel(c.args[0], c.target, c.req.body, std::nullopt);
       }},
      {"DELETE", "/v1/history", false, [](Impl& a, C c) { return a.history_clear(c.target); }},
  };
}

namespace {

// A FieldError from read_submit whose message starts "404:" is an unknown helper/executor,
// "413:" params over [api] max_param_bytes.
HttpResponse submit_error(const FieldError& e) {
  if (e.message.rfind("404:", 0) == 0) {
    return error_response(404, "not_found", e.message.substr(4), json{{"field", e.field}});
  }
  if (e.message.rfind("413:", 0) == 0) {
    return error_response(413, "params_too_large", e.message.substr(4), json{{"field", e.field}});
  }
  return field_response(e);
}

}  // namespace

std::optional<SubmitRequest> Api::Impl::read_submit(const json& j, const std::string& prefix,
                                                    FieldError& error) {
  Fields f(j, prefix);
  f.only({"id", "executor", "helper", "name", "key", "lane", "priority", "params", "not_before",
          "expiry", "timeout"});
  SubmitRequest req;
  const std::optional<std::string> id = f.nonempty_string("id");
  req.id = id.value_or("");
  req.executor = f.nonempty_string("executor").value_or("");
  req.helper = f.nonempty_string("helper").value_or("");
  req.name = f.nonempty_string("name").value_or("");
  req.key = f.nonempty_string("key").value_or("");
  req.lane = f.nonempty_string("lane").value_or("");
  if (auto p = f.integer("priority")) {
    if (*p < 1 || *p > 5) {
      f.fail("priority", fmt::format("{} is out of range 1-5", *p));
    } else {
      req.priority = static_cast<int>(*p);
    }
  }
  req.not_before = f.time("not_before");
  req.expiry = f.duration("expiry");
  req.timeout = f.duration("timeout");
  const json* params = f.object("params");
  // due + expiry must stay a representable instant (it is an index key in every store).
  if (f.ok() && req.not_before && req.expiry && *req.not_before > TimePoint::max() - *req.expiry) {
    f.fail("expiry",
           "not_before + expiry is after 2262-04-11T23:47:16Z; no later instant can be "
           "represented");
  }
  if (f.ok() && id && !valid_id(*id)) {
    f.fail("id", "use 1-200 letters, digits, '_', '-', '.', ':' or '@'");
  }
  if (f.ok() && req.executor.empty() && req.helper.empty()) {
    f.fail("executor", "executor or helper is required");
  }
  if (f.ok() && !req.executor.empty() && !req.helper.empty()) {
    f.fail("executor", "give executor or helper, not both");
  }
  if (f.ok() && !req.lane.empty() && engine.config().find_lane(req.lane) == nullptr) {
    f.fail("lane", "unknown lane \"" + req.lane + "\"");
  }
  if (!f.ok()) {
    error = f.error();
    return std::nullopt;
  }
  std::string executor = req.executor;
  if (!req.helper.empty()) {
    const HelperConfig* h = engine.config().find_helper(req.helper);
    if (h == nullptr) {
      error = FieldError{prefix + "helper", "unknown helper \"" + req.helper + "\""};
      error.message = "404:" + error.message;  // marks a not-found for the caller
      return std::nullopt;
    }
    executor = h->executor;
  }
  const Executor* loaded = engine.plugins().find(executor);
  if (loaded == nullptr) {
    error = FieldError{prefix + "executor", "404:unknown executor \"" + executor + "\""};
    return std::nullopt;
  }
  if (auto too_large = params_too_large(params)) {
    error = FieldError{prefix + "params", "413:" + prefix + *too_large};
    return std::nullopt;
  }
  if (params != nullptr || req.helper.empty()) {
    FieldError pe;
    auto converted = convert_params(params, loaded->info(), pe);
    if (!converted) {
      error = FieldError{prefix + pe.field, prefix + pe.message};
      return std::nullopt;
    }
    req.params = std::move(*converted);
  }
  return req;
}

HttpResponse Api::Impl::execution_submit(const std::string& body) {
  auto j = body_object(body, false);
  if (!j.is_ok()) return status_response(j.status());
  FieldError error;
  auto req = read_submit(*j, "", error);
  if (!req) return submit_error(error);
  return submit_durably(std::move(*req));
}

HttpResponse Api::Impl::executions_bulk(const std::string& body) {
  auto j = body_object(body, false);
  if (!j.is_ok()) return status_response(j.status());
  Fields f(*j, "");
  f.only({"executions"});
  const json* list = f.items("executions", options.max_bulk);
  if (!f.ok()) return field_response(f.error());

  // Everything is checked before anything is stored.
  std::vector<SubmitRequest> requests;
  std::set<std::string> ids;
  std::vector<std::pair<std::size_t, std::string>> given;  // (index, id) of items with an id
  const TimePoint now = engine.clock().now();
  std::size_t due_now = 0;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const std::string prefix = fmt::format("executions[{}].", i);
    const json& item = (*list)[i];
    if (!item.is_object()) {
      return field_response(FieldError{
          prefix.substr(0, prefix.size() - 1),
          prefix.substr(0, prefix.size() - 1) + ": expected object, got " + json_type(item)});
    }
    FieldError error;
    auto req = read_submit(item, prefix, error);
    if (!req) return submit_error(error);
    if (!req->id.empty()) {
      if (!ids.insert(req->id).second) {
        return field_response(
            FieldError{prefix + "id", prefix + "id: \"" + req->id + "\" appears twice"});
      }
      given.emplace_back(i, req->id);
    }
    if (!req->not_before || *req->not_before <= now) ++due_now;
    requests.push_back(std::move(*req));
  }
  // Given ids that are taken, read in one go (one round trip on a remote store).
  std::vector<std::string> given_ids;
  for (const auto& [i, id] : given) given_ids.push_back(id);
  const auto existing = engine.store().get_many(given_ids);
  for (std::size_t k = 0; k < given.size() && k < existing.size(); ++k) {
    if (existing[k] && !is_terminal(existing[k]->status)) {
      const std::string prefix = fmt::format("executions[{}].", given[k].first);
      return error_response(409, "already_exists",
                            fmt::format("{}id: execution {} is already {}", prefix, given[k].second,
                                        exec_status_name(existing[k]->status)),
                            json{{"field", prefix + "id"}});
    }
  }
  std::lock_guard lock(bulk_mu);
  if (auto full = bulk_over_capacity(due_now)) return std::move(*full);
  json out = json::array();
  std::vector<std::string> stored;
  // All of them in one store call (Store::submit_many); the first that failed undoes the rest.
  auto results = engine.submit_many(std::move(requests));
  const StatusOr<SubmitResult>* failed = nullptr;
  for (const auto& r : results) {
    if (!r.is_ok()) {
      if (failed == nullptr) failed = &r;
      continue;
    }
    stored.push_back(r->execution.id);
    out.push_back({{"id", r->execution.id}, {"position", r->position}});
  }
  if (failed != nullptr) return bulk_roll_back(stored, failed->status());
  feed.poke();
  return json_response(201, {{"executions", out}, {"count", out.size()}});
}

// GET /v1/executions. `order=id` (the default): every execution in id order, the cursor an id.
// `order=due`: queued executions (status queued or planned) in (due, seq) order, the cursor
// "DUE_NS.SEQ" of the last one; the store pages it without reading what lies before.
HttpResponse Api::Impl::executions_list(const Target& t) {
  ExecutionFilter f;
  bool planned = false;
  std::optional<std::string> cursor;
  for (const auto& [k, v] : t.query) {
    if (k == "status") {
      // One status or several, comma-separated: "queued,planned". "planned": queued and not
      // yet due.
      std::size_t pos = 0;
      while (pos <= v.size()) {
        std::size_t comma = std::min(v.find(',', pos), v.size());
        const std::string one = v.substr(pos, comma - pos);
        pos = comma + 1;
        if (one == "planned") {
          planned = true;
          continue;
        }
        auto s = parse_exec_status(one);
        if (!s) {
          return field_response(FieldError{
              "status", "status: \"" + one +
                            "\" is not one of queued, planned, running, succeeded, failed, "
                            "timed_out, cancelled, expired, skipped, interrupted"});
        }
        if (std::find(f.statuses.begin(), f.statuses.end(), *s) == f.statuses.end()) {
          f.statuses.push_back(*s);
        }
      }
    } else if (k == "helper" || k == "name") {
      f.name = v;
    } else if (k == "key" || k == "project") {
      f.key = v;
    } else if (k == "lane") {
      f.lane = v;
    } else if (k == "priority") {
      if (v.size() != 1 || v[0] < '1' || v[0] > '5') {
        return field_response(
            FieldError{"priority", "priority: \"" + v + "\" is not a number 1-5"});
      }
      f.priority = v[0] - '0';
    } else if (k == "order") {
      if (v != "id" && v != "due") {
        return field_response(FieldError{"order", "order: \"" + v + "\" is not one of id, due"});
      }
      f.order = v == "due" ? ExecutionFilter::Order::kDue : ExecutionFilter::Order::kId;
    } else if (k == "limit") {
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < 1 || n > 1000) {
        return field_response(FieldError{"limit", "limit: \"" + v + "\" is not a number 1-1000"});
      }
      f.limit = static_cast<std::size_t>(n);
    } else if (k == "cursor") {
      if (!v.empty()) cursor = v;
    } else {
      return field_response(
          FieldError{k, "unknown query parameter \"" + k +
                            "\"; use status, helper, key, lane, priority, order, limit or cursor"});
    }
  }
  // "planned" alone, or with "queued" (which includes it): queued ones due after now.
  const bool only_queued =
      f.statuses.empty() || (f.statuses.size() == 1 && f.statuses.front() == ExecStatus::kQueued);
  if (planned && !f.statuses.empty() && !only_queued) {
    return field_response(
        FieldError{"status",
                   "status: planned combines only with queued (planned ones are queued ones not "
                   "yet due)"});
  }
  if (planned) {
    if (f.statuses.empty()) f.due_after = engine.clock().now();
    f.statuses = {ExecStatus::kQueued};
  }
  if (f.order == ExecutionFilter::Order::kDue) {
    if (!f.statuses.empty() && !only_queued && !planned) {
      return field_response(FieldError{
          "status", "status: order=due lists queued executions (status queued or planned)"});
    }
    f.statuses.clear();
    if (cursor) {
      // "DUE_NS.SEQ"
      const std::size_t dot = cursor->find('.');
      char* e1 = nullptr;
      char* e2 = nullptr;
      const long long due = std::strtoll(cursor->c_str(), &e1, 10);
      const unsigned long long seq =
          dot == std::string::npos ? 0 : std::strtoull(cursor->c_str() + dot + 1, &e2, 10);
      if (dot == std::string::npos || e1 != cursor->c_str() + dot || e2 == nullptr || *e2 != '\0' ||
          dot + 1 == cursor->size()) {
        return field_response(FieldError{
            "cursor", "cursor: \"" + *cursor +
                          "\" is not a cursor of order=due; use the previous page's next_cursor"});
      }
      f.after_due =
          std::make_pair(TimePoint(std::chrono::nanoseconds(due)), static_cast<uint64_t>(seq));
    }
  } else if (cursor) {
    f.after_id = *cursor;
  }
  if (f.statuses.size() == 1) {
    f.status = f.statuses.front();
    f.statuses.clear();
  }
  std::vector<Execution> list = engine.store().list(f);
  json out = json::array();
  for (const auto& e : list) {
    std::optional<std::size_t> pos;
    if (e.status == ExecStatus::kQueued) pos = engine.store().position(e.id);
    out.push_back(execution_json(e, pos));
    add_progress(out.back(), engine, e);
  }
  json next;
  if (list.size() == f.limit && !list.empty()) {
    const Execution& last = list.back();
    next =
        f.order == ExecutionFilter::Order::kDue
            ? json(fmt::format(
                  "{}.{}",
                  std::chrono::duration_cast<std::chrono::nanoseconds>(last.due.time_since_epoch())
                      .count(),
                  last.seq))
            : json(last.id);
  }
  return json_response(200, {{"executions", out}, {"next_cursor", next}});
}

HttpResponse Api::Impl::execution_show(const std::string& id) {
  auto e = engine.store().get(id);
  if (!e) return status_response(not_found("unknown execution \"" + id + "\""));
  std::optional<std::size_t> pos;
  if (e->status == ExecStatus::kQueued) pos = engine.store().position(id);
  json j = execution_json(*e, pos);
  add_progress(j, engine, *e);
  return json_response(200, j);
}

HttpResponse Api::Impl::execution_cancel(const std::string& id, const Target& t,
                                         const std::string& body,
                                         const std::optional<std::string>& project) {
  bool stop = false;
  if (auto it = t.query.find("stop"); it != t.query.end()) {
    if (it->second != "true" && it->second != "false" && !it->second.empty()) {
      return field_response(FieldError{"stop", "stop: expected true or false"});
    }
    stop = it->second != "false";
  }
  auto j = body_object(body, true);
  if (!j.is_ok()) return status_response(j.status());
  Fields f(*j, "");
  f.only({"stop"});
  if (auto s = f.boolean("stop")) stop = *s;
  if (!f.ok()) return field_response(f.error());

  auto e = engine.store().get(id);
  const std::string what = project ? "ticket" : "execution";
  if (!e || (project && (e->spec->origin != ExecOrigin::kTicket || e->key() != *project))) {
    return status_response(not_found("unknown " + what + " \"" + id + "\""));
  }
  auto r = engine.cancel(id, stop);
  feed.poke();
  if (r.is_ok()) {
    return json_response(
        200,
        {{"id", id}, {"status", exec_status_name(r->status)}, {"execution", execution_json(*r)}});
  }
  if (r.status().code() == StatusCode::kFailedPrecondition) {
    if (stop) {
      return json_response(202, {{"id", id},
                                 {"status", "running"},
                                 {"stop_requested", true},
                                 {"message", r.status().message()}});
    }
    return error_response(
        409, "running",
        what + " " + id + " is running; cancel with stop=true to request a cooperative stop");
  }
  if (r.status().code() == StatusCode::kAlreadyExists) {
    auto now = engine.store().get(id);
    return error_response(409, "already_finished",
                          what + " " + id + " already finished" +
                              (now ? std::string(" (") + exec_status_name(now->status) + ")" : ""));
  }
  return status_response(r.status());
}

HttpResponse Api::Impl::history_clear(const Target& t) {
  TimePoint before = engine.clock().now();
  for (const auto& [k, v] : t.query) {
    if (k != "before") {
      return field_response(FieldError{k, "unknown query parameter \"" + k + "\"; use before"});
    }
    auto b = parse_rfc3339(v);
    if (!b.is_ok()) return field_response(FieldError{"before", "before: " + b.status().message()});
    before = *b;
  }
  const std::size_t removed = engine.store().prune_history(before);
  return json_response(200, {{"removed", removed}, {"before", time_text(before)}});
}

// Cancels every queued execution that matches the filter ("clear queue"). Running ones are
// left alone: stop them one by one.
HttpResponse Api::Impl::executions_cancel_matching(const std::string& body) {
  auto j = body_object(body, true);
  if (!j.is_ok()) return status_response(j.status());
  Fields f(*j, "");
  f.only({"status", "helper", "key", "lane", "priority"});
  ExecutionFilter filter;
  filter.status = ExecStatus::kQueued;
  if (auto st = f.string("status"); st && *st != "queued") {
    f.fail("status",
           "only queued executions are cancelled by filter (stop running ones one by one)");
  }
  filter.name = f.string("helper");
  filter.key = f.string("key");
  filter.lane = f.string("lane");
  std::optional<int64_t> priority = f.integer("priority");
  if (priority && (*priority < 1 || *priority > 5)) {
    f.fail("priority", fmt::format("{} is out of range 1-5", *priority));
  }
  if (!f.ok()) return field_response(f.error());
  filter.limit = 1000;
  std::size_t cancelled = 0, matched = 0;
  while (true) {
    std::vector<Execution> page = engine.store().list(filter);
    for (const auto& e : page) {
      if (priority && e.priority() != *priority) continue;
      ++matched;
      if (engine.cancel(e.id, /*stop_running=*/false).is_ok()) ++cancelled;
    }
    if (page.size() < filter.limit) break;
    filter.after_id = page.back().id;
  }
  feed.poke();
  // `matched - cancelled` started or finished meanwhile.
  return json_response(200, {{"cancelled", cancelled}, {"matched", matched}});
}

}  // namespace schedd::api
