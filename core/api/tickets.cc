// A project's tickets: /v1/projects/{project}/tickets[/bulk|/{ticket}].
#include <fmt/format.h>

#include <limits>
#include <set>

#include "core/api/api_internal.h"

namespace schedd::api {

std::vector<Api::Impl::Route> Api::Impl::ticket_routes() {
  using C = const Call&;
  return {
      {"GET", "/v1/projects/{project}/tickets", false,
       [](Impl& a, C c) { return a.project_queue(c.args[0]); }},
      {"POST", "/v1/projects/{project}/tickets", true,
       [](Impl& a, C c) { return a.ticket_submit(c.args[0], c.req.body); }},
      // A ticket may be named "bulk": it is still read and cancelled by name.
      {"POST", "/v1/projects/{project}/tickets/bulk", false,
       [](Impl& a, C c) { return a.tickets_bulk(c.args[0], c.req.body); }},
      {"GET", "/v1/projects/{project}/tickets/{ticket}", false,
       [](Impl& a, C c) { return a.ticket_show(c.args[0], c.args[1]); }},
      {"DELETE", "/v1/projects/{project}/tickets/{ticket}", false,
       [](Impl& a, C c) {
         return a.execution_cancel(ticket_id(c.args[0], c.args[1]), c.target, c.req.body,
                                   c.args[0]);
       }},
  };
}

std::optional<SubmitRequest> Api::Impl::read_ticket(const std::string& project, const json& j,
                                                    const std::string& prefix,
                                                    std::optional<HttpResponse>& error) {
  Fields f(j, prefix);
  f.only({"ticket", "params", "priority", "not_before", "expiry", "timeout"});
  auto ticket = f.string("ticket");
  if (f.ok() && !ticket) f.fail("ticket", "required");
  if (f.ok() && !valid_name(*ticket))
    f.fail("ticket", "use 1-128 letters, digits, '_', '-' or '.'");
  std::optional<int> priority;
  if (auto p = f.integer("priority")) {
    if (*p < 1 || *p > 5) {
      f.fail("priority", fmt::format("{} is out of range 1-5", *p));
    } else {
      priority = static_cast<int>(*p);
    }
  }
  auto not_before = f.time("not_before");
  auto expiry = f.duration("expiry");
  auto timeout = f.duration("timeout");
  const json* params = f.object("params");
  if (!f.ok()) {
    error = field_response(f.error());
    return std::nullopt;
  }
  if (auto too_large = params_too_large(params)) {
    error = error_response(413, "params_too_large", prefix + *too_large,
                           json{{"field", prefix + "params"}});
    return std::nullopt;
  }

  const TicketSettings tc = engine.config().tickets.for_project(project);
  const Executor* executor = engine.plugins().find(tc.executor);
  if (executor == nullptr) {
    error = error_response(503, "tickets_unavailable",
                           "the tickets executor \"" + tc.executor +
                               "\" ([tickets] executor or its project's override) is not "
                               "provided by any loaded plugin");
    return std::nullopt;
  }
  FieldError pe;
  auto converted = convert_params(params, executor->info(), pe);
  if (!converted) {
    if (!prefix.empty()) {
      pe.field = prefix + pe.field;
      pe.message = prefix + pe.message;
    }
    error = field_response(pe);
    return std::nullopt;
  }

  SubmitRequest req;
  req.id = ticket_id(project, *ticket);
  req.origin = ExecOrigin::kTicket;
  req.name = *ticket;
  req.executor = tc.executor;
  req.key = project;
  req.lane = tc.lane;
  req.priority = priority.value_or(tc.priority);
  req.params = std::move(*converted);
  req.not_before = not_before;
  req.expiry = expiry ? expiry : tc.expiry;
  req.timeout = timeout;
  return req;
}

HttpResponse Api::Impl::ticket_submit(const std::string& project, const std::string& body) {
  if (!valid_name(project)) {
    return field_response(
        FieldError{"project", "project: use 1-128 letters, digits, '_', '-' or '.'"});
  }
  auto j = body_object(body, false);
  if (!j.is_ok()) return status_response(j.status());
  std::optional<HttpResponse> error;
  auto read = read_ticket(project, *j, "", error);
  if (!read) return std::move(*error);
  SubmitRequest& req = *read;
  const std::string ticket = req.name;
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto reply = std::make_shared<DurableReply>();
    auto r = engine.submit_deferred(req, reply->callback());
    if (r.is_ok()) {
      feed.poke();
      HttpResponse res = json_response(
          201, {{"id", r->execution.id},
                {"project", project},
                {"ticket", ticket},
                {"status", "queued"},
                {"position", r->position},
                {"created", true},
                {"message", fmt::format("ticket {} of project {} queued at position #{}", ticket,
                                        project, r->position)}});
      res.headers.emplace_back("Location", "/v1/projects/" + project + "/tickets/" + ticket);
      return reply->reply(std::move(res));
    }
    if (r.status().code() == StatusCode::kResourceExhausted) return queue_full(r.status());
    if (r.status().code() != StatusCode::kAlreadyExists) return status_response(r.status());
    // Already queued or running: idempotent. It may finish meanwhile; then submit again.
    auto existing = engine.store().get(req.id);
    if (!existing || is_terminal(existing->status)) continue;
    std::optional<std::size_t> pos;
    if (existing->status == ExecStatus::kQueued) pos = engine.store().position(req.id);
    const std::string message =
        existing->status == ExecStatus::kRunning
            ? fmt::format("ticket {} of project {} is already running", ticket, project)
            : fmt::format("ticket {} of project {} is already queued at position #{}", ticket,
                          project, pos.value_or(0));
    return json_response(200, {{"id", req.id},
                               {"project", project},
                               {"ticket", ticket},
                               {"status", exec_status_name(existing->status)},
                               {"position", pos ? json(*pos) : json(0)},
                               {"created", false},
                               {"message", message}});
  }
  return error_response(409, "conflict", "ticket " + ticket + " changed state during submission");
}

// Several tickets of one project in one call, all or nothing: each item is a ticket object
// as POST .../tickets takes, or a ticket name; items without params get the request's
// `params`. Tickets already queued or running are reported, not queued twice.
HttpResponse Api::Impl::tickets_bulk(const std::string& project, const std::string& body) {
  if (!valid_name(project)) {
    return field_response(
        FieldError{"project", "project: use 1-128 letters, digits, '_', '-' or '.'"});
  }
  auto j = body_object(body, false);
  if (!j.is_ok()) return status_response(j.status());
  Fields f(*j, "");
  f.only({"tickets", "params"});
  const json* list = f.items("tickets", options.max_bulk);
  const json* params = f.object("params");
  if (!f.ok()) return field_response(f.error());

  std::vector<SubmitRequest> requests;
  std::set<std::string> names;
  const TimePoint now = engine.clock().now();
  std::size_t due_now = 0;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const std::string prefix = fmt::format("tickets[{}].", i);
    json item = (*list)[i];
    if (item.is_string()) item = json{{"ticket", item}};
    if (item.is_object()) {
      if (params != nullptr && !item.contains("params")) item["params"] = *params;
    } else {
      const std::string field = prefix.substr(0, prefix.size() - 1);
      return field_response(
          FieldError{field, field + ": expected a ticket name or object, got " + json_type(item)});
    }
    std::optional<HttpResponse> error;
    auto req = read_ticket(project, item, prefix, error);
    if (!req) return std::move(*error);
    if (!names.insert(req->name).second) {
      return field_response(
          FieldError{prefix + "ticket", prefix + "ticket: \"" + req->name + "\" appears twice"});
    }
    if (!req->not_before || *req->not_before <= now) ++due_now;
    requests.push_back(std::move(*req));
  }
  std::lock_guard lock(bulk_mu);
  if (auto full = bulk_over_capacity(due_now)) return std::move(*full);
  json out = json::array();
  std::vector<std::string> stored;
  std::vector<std::pair<std::string, std::string>> labels;  // (id, ticket) of each request
  for (const auto& req : requests) labels.emplace_back(req.id, req.name);
  // All of them in one store call (Store::submit_many), then each answer in order.
  auto results = engine.submit_many(std::move(requests));
  std::optional<Status> failed;
  for (std::size_t i = 0; i < results.size(); ++i) {
    const auto& [id, ticket] = labels[i];
    const auto& r = results[i];
    if (r.is_ok()) {
      stored.push_back(id);
      out.push_back({{"id", id}, {"ticket", ticket}, {"position", r->position}, {"created", true}});
      continue;
    }
    auto existing =
        r.status().code() == StatusCode::kAlreadyExists ? engine.store().get(id) : std::nullopt;
    if (existing && !is_terminal(existing->status)) {
      std::optional<std::size_t> pos;
      if (existing->status == ExecStatus::kQueued) pos = engine.store().position(id);
      out.push_back({{"id", id},
                     {"ticket", ticket},
                     {"status", exec_status_name(existing->status)},
                     {"position", pos ? json(*pos) : json(0)},
                     {"created", false}});
      continue;
    }
    if (!failed) failed = r.status();
  }
  if (failed) return bulk_roll_back(stored, *failed);
  feed.poke();
  return json_response(201, {{"project", project}, {"tickets", out}, {"count", stored.size()}});
}

HttpResponse Api::Impl::project_queue(const std::string& project) {
  ExecutionFilter f;
  f.key = project;
  f.limit = std::numeric_limits<std::size_t>::max();
  std::vector<Execution> all = engine.store().list(f);
  std::erase_if(all, [](const Execution& e) { return e.spec->origin != ExecOrigin::kTicket; });
  // A project is known when the config names it ([tickets.projects.NAME]) or the store has
  // a ticket of it; a known project with nothing queued answers an empty queue.
  if (all.empty() && engine.config().tickets.projects.count(project) == 0) {
    return status_response(not_found(
        "unknown project \"" + project +
        "\": no [tickets.projects] entry in the config and no ticket of it in the store"));
  }
  json running = json();
  json recent = json::array();
  for (const auto& e : all) {
    if (e.status == ExecStatus::kRunning) {
      running = execution_json(e);
      add_progress(running, engine, e);
    }
  }
  json queue = json::array();
  std::size_t pos = 0;
  for (const auto& e : engine.store().key_queue(project)) {
    queue.push_back(execution_json(e, ++pos));
  }
  return json_response(
      200,
      {{"project", project}, {"running", running}, {"queue", queue}, {"queued", queue.size()}});
}

HttpResponse Api::Impl::ticket_show(const std::string& project, const std::string& ticket) {
  auto e = engine.store().get(ticket_id(project, ticket));
  if (!e || e->spec->origin != ExecOrigin::kTicket) {
    return status_response(
        not_found("unknown ticket \"" + ticket + "\" of project \"" + project + "\""));
  }
  std::optional<std::size_t> pos;
  if (e->status == ExecStatus::kQueued) pos = engine.store().position(e->id);
  json j = execution_json(*e, pos);
  add_progress(j, engine, *e);
  return json_response(200, j);
}

}  // namespace schedd::api
