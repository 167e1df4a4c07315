// The configured helpers: GET /v1/helpers[/NAME], enable, disable, run now and their state
// overrides (PUT /v1/helpers/NAME/schedule).
#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <map>

#include "core/api/api_internal.h"

namespace schedd::api {

namespace {

// A helper's overrides and what they make effective, as GET /v1/helpers and
// /v1/helpers/NAME show them: `priority` and `expiry` as in effect, `*_override` null when
// the config's value holds. `schedule_override` has the shape of `schedule` (an object), and
// `schedule_override_toml` is the TOML inline table as it was written.
void add_overrides(json& j, const HelperConfig& h, const std::optional<HelperState>& state) {
  const std::optional<int> priority = state ? state->priority_override : std::nullopt;
  j["priority"] = priority.value_or(h.priority);
  j["priority_override"] = priority ? json(*priority) : json();
  // Read in place: a copied optional<duration> trips GCC 12's -Wmaybe-uninitialized at -O2.
  if (state && state->expiry_override) {
    j["expiry"] = format_duration(*state->expiry_override);
    j["expiry_override"] = format_duration(*state->expiry_override);
  } else {
    j["expiry"] = format_duration(h.expiry);
    j["expiry_override"] = json();
  }
  j["schedule_override"] = json();
  j["schedule_override_toml"] = json();
  if (state && state->schedule_override) {
    std::vector<ConfigError> errors;
    auto parsed = parse_schedule(*state->schedule_override, "schedule override", errors);
    j["schedule_override"] = parsed ? schedule_json(*parsed) : json(*state->schedule_override);
    j["schedule_override_toml"] = *state->schedule_override;
  }
}

// The message of a config-style error ("priority: 7 is out of range 1-5") names its field.
std::string field_of(const std::string& message) {
  for (const char* f : {"priority", "expiry"}) {
    if (message.rfind(std::string(f) + ":", 0) == 0) return f;
  }
  return "schedule";
}

}  // namespace

std::vector<Api::Impl::Route> Api::Impl::helper_routes() {
  using C = const Call&;
  return {
      {"GET", "/v1/helpers", false, [](Impl& a, C) { return a.helpers_list(); }},
      {"GET", "/v1/helpers/{name}", false, [](Impl& a, C c) { return a.helper_show(c.args[0]); }},
      {"POST", "/v1/helpers/{name}/enable", false,
       [](Impl& a, C c) { return a.helper_enable(c.args[0], true); }},
      {"POST", "/v1/helpers/{name}/disable", false,
       [](Impl& a, C c) { return a.helper_enable(c.args[0], false); }},
      {"PATCH", "/v1/helpers/{name}", false,
       [](Impl& a, C c) { return a.helper_update(c.args[0], c.req.body); }},
      {"PUT", "/v1/helpers/{name}/schedule", false,
       [](Impl& a, C c) { return a.helper_schedule(c.args[0], c.req.body); }},
      {"POST", "/v1/helpers/{name}/run", false,
       [](Impl& a, C c) { return a.helper_run(c.args[0]); }},
  };
}

HttpResponse Api::Impl::helpers_list() {
  // One pass over the executions for every helper's next due time and last result (the
  // dashboard lists them all in one request), a page at a time: a copy of every execution
  // at once (~50 MB at 100,000) grew the daemon by hundreds of MB under concurrent requests,
  // as each API thread's malloc arena kept what it freed.
  ExecutionFilter f;
  f.limit = 1000;
  std::map<std::string, TimePoint> next;
  std::map<std::string, Execution> last;
  for (std::vector<Execution> page = engine.store().list(f); !page.empty();
       page = engine.store().list(f)) {
    f.after_id = page.back().id;
    const bool more = page.size() == f.limit;
    for (auto& e : page) {
      if (e.spec->origin != ExecOrigin::kHelper) continue;
      if (e.status == ExecStatus::kQueued) {
        auto [it, inserted] = next.emplace(e.spec->name, e.due);
        if (!inserted && e.due < it->second) it->second = e.due;
      } else if (is_terminal(e.status)) {
        auto it = last.find(e.spec->name);
        if (it == last.end()) {
          last.emplace(e.spec->name, std::move(e));
        } else if (e.finished.value_or(TimePoint{}) > it->second.finished.value_or(TimePoint{})) {
          it->second = std::move(e);
        }
      }
    }
    if (!more) break;
  }
  json out = json::array();
  for (const auto& h : engine.config().helpers) {
    auto state = engine.store().helper_state(h.name);
    const bool enabled = state && state->enabled ? *state->enabled : h.enabled;
    json j = {{"name", h.name},
              {"executor", h.executor},
              {"description", h.description},
              {"enabled", enabled},
              {"key", h.key},
              {"lane", h.lane},
              {"schedule", schedule_json(h.schedule)}};
    add_overrides(j, h, state);
    auto it = next.find(h.name);
    std::optional<TimePoint> due;
    if (it != next.end()) {
      due = it->second;
    } else if (enabled) {
      // Nothing planned yet (its next run lies beyond the lookahead): computed.
      TimePoint after = engine.clock().now();
      if (state && state->planned_until && *state->planned_until > after) {
        after = *state->planned_until;
      }
      due = engine.next_fire(h, after);
    }
    j["next_due"] = due ? json(time_text(*due)) : json();
    j["next_due_planned"] = it != next.end();
    if (auto l = last.find(h.name); l != last.end()) {
      const Execution& e = l->second;
      j["last"] = {{"id", e.id},
                   {"status", exec_status_name(e.status)},
                   {"due", time_text(e.due)},
                   {"started", opt_time(e.started)},
                   {"finished", opt_time(e.finished)},
                   {"attempt", e.attempt},
                   {"message", e.message}};
    } else {
      j["last"] = json();
    }
    out.push_back(std::move(j));
  }
  return json_response(200, {{"helpers", out}});
}

HttpResponse Api::Impl::helper_show(const std::string& name) {
  const HelperConfig* h = engine.config().find_helper(name);
  if (h == nullptr) return status_response(not_found("unknown helper \"" + name + "\""));
  auto state = engine.store().helper_state(name);
  ExecutionFilter f;
  f.name = name;
  f.limit = std::numeric_limits<std::size_t>::max();
  std::vector<Execution> planned, done;
  for (auto& e : engine.store().list(f)) {
    if (e.spec->origin != ExecOrigin::kHelper) continue;
    if (e.status == ExecStatus::kQueued) {
      planned.push_back(std::move(e));
    } else if (is_terminal(e.status)) {
      done.push_back(std::move(e));
    }
  }
  std::sort(planned.begin(), planned.end(), [](const Execution& a, const Execution& b) {
    return std::tie(a.due, a.seq) < std::tie(b.due, b.seq);
  });
  std::sort(done.begin(), done.end(), [](const Execution& a, const Execution& b) {
    return a.finished.value_or(TimePoint{}) > b.finished.value_or(TimePoint{});
  });
  json next = json::array(), last = json::array();
  for (std::size_t i = 0; i < planned.size() && i < 10; ++i) {
    next.push_back({{"id", planned[i].id},
                    {"due", time_text(planned[i].due)},
                    {"priority", planned[i].priority()}});
  }
  for (std::size_t i = 0; i < done.size() && i < 10; ++i) {
    last.push_back({{"id", done[i].id},
                    {"status", exec_status_name(done[i].status)},
                    {"due", time_text(done[i].due)},
                    {"started", opt_time(done[i].started)},
                    {"finished", opt_time(done[i].finished)},
                    {"attempt", done[i].attempt},
                    {"message", done[i].message}});
  }
  json running = json::array();
  ExecutionFilter rf;
  rf.name = name;
  rf.status = ExecStatus::kRunning;
  for (const auto& e : engine.store().list(rf)) running.push_back(e.id);
  json params = params_json(h->params);
  json config = {{"name", h->name},
                 {"executor", h->executor},
                 {"description", h->description},
                 {"enabled", h->enabled},
                 {"schedule", schedule_json(h->schedule)},
                 {"key", h->key},
                 {"lane", h->lane},
                 {"priority", h->priority},
                 {"expiry", format_duration(h->expiry)},
                 {"timeout", h->timeout ? json(format_duration(*h->timeout)) : json()},
                 {"params", params}};
  json st = {{"enabled", state && state->enabled ? *state->enabled : h->enabled},
             {"enabled_override", state && state->enabled ? json(*state->enabled) : json()},
             {"planned_until", state ? opt_time(state->planned_until) : json()}};
  add_overrides(st, *h, state);
  return json_response(200, {{"name", name},
                             {"config", config},
                             {"state", st},
                             {"running", running},
                             {"next", next},
                             {"last", last}});
}

HttpResponse Api::Impl::helper_enable(const std::string& name, bool enable) {
  auto r = enable ? engine.enable(name) : engine.disable(name);
  if (!r.is_ok()) return status_response(r.status());
  feed.poke();
  return json_response(200, enable ? json{{"helper", name}, {"enabled", true}, {"planned", *r}}
                                   : json{{"helper", name}, {"enabled", false}, {"removed", *r}});
}

HttpResponse Api::Impl::helper_schedule(const std::string& name, const std::string& body) {
  if (engine.config().find_helper(name) == nullptr) {
    return status_response(not_found("unknown helper \"" + name + "\""));
  }
  auto j = body_object(body, false);
  if (!j.is_ok()) return status_response(j.status());
  Fields fields(*j, "");
  fields.only({"schedule"});
  const json* s = fields.get("schedule");
  if (fields.ok() && s == nullptr) fields.fail("schedule", "required");
  if (s != nullptr && !s->is_string() && !s->is_object()) {
    fields.fail("schedule", std::string("expected a TOML inline table string or an object, got ") +
                                json_type(*s));
  }
  if (!fields.ok()) return field_response(fields.error());
  std::string toml;
  if (s->is_string()) {
    toml = s->get<std::string>();
  } else {
    FieldError e;
    auto t = schedule_toml(*s, e);
    if (!t) return field_response(e);
    toml = *t;
  }
  auto r = engine.update_schedule(name, toml);
  if (!r.is_ok()) {
    if (r.status().code() == StatusCode::kInvalidArgument) {
      return field_response(FieldError{"schedule", r.status().message()});
    }
    return status_response(r.status());
  }
  feed.poke();
  HttpResponse shown = helper_show(name);
  json plan = json::parse(shown.body, nullptr, false);
  return json_response(200, {{"helper", name},
                             {"schedule", toml},
                             {"planned", *r},
                             {"next", plan.is_object() ? plan["next"] : json::array()}});
}

HttpResponse Api::Impl::helper_run(const std::string& name) {
  return submitted(engine.run_now(name));
}

// PATCH /v1/helpers/NAME: any of schedule, priority and expiry; null puts one back to the
// config's value. Checked as the config file checks them, with its messages, all before
// anything changes.
HttpResponse Api::Impl::helper_update(const std::string& name, const std::string& body) {
  if (engine.config().find_helper(name) == nullptr) {
    return status_response(not_found("unknown helper \"" + name + "\""));
  }
  auto j = body_object(body, false);
  if (!j.is_ok()) return status_response(j.status());
  Fields fields(*j, "");
  fields.only({"schedule", "priority", "expiry"});
  if (!fields.ok()) return field_response(fields.error());
  if (j->empty()) {
    return field_response(FieldError{"schedule",
                                     "give schedule, priority or expiry (null puts one back to the "
                                     "config's value)"});
  }
  HelperUpdate update;
  if (auto it = j->find("schedule"); it != j->end()) {
    if (it->is_null()) {
      update.schedule = std::optional<std::string>();
    } else if (it->is_string()) {
      update.schedule = it->get<std::string>();
    } else if (it->is_object()) {
      FieldError e;
      auto t = schedule_toml(*it, e);
      if (!t) return field_response(e);
      update.schedule = *t;
    } else {
      return field_response(FieldError{
          "schedule", std::string("schedule: expected a TOML inline table string or an object, "
                                  "got ") +
                          json_type(*it)});
    }
  }
  if (auto it = j->find("priority"); it != j->end()) {
    if (it->is_null()) {
      update.priority = std::optional<int>();
    } else if (!it->is_number_integer()) {
      return field_response(
          FieldError{"priority", std::string("priority: expected integer, got ") + json_type(*it)});
    } else if (const int64_t p = it->get<int64_t>(); p < 1 || p > 5) {
      return field_response(
          FieldError{"priority", fmt::format("priority: {} is out of range 1-5", p)});
    } else {
      update.priority = static_cast<int>(p);
    }
  }
  if (auto it = j->find("expiry"); it != j->end()) {
    if (it->is_null()) {
      update.expiry = std::optional<std::chrono::milliseconds>();
    } else if (!it->is_string()) {
      return field_response(
          FieldError{"expiry", std::string("expiry: expected a duration string such as "
                                           "\"90s\", got ") +
                                   json_type(*it)});
    } else {
      const std::string text = it->get<std::string>();
      auto d = parse_duration(text);
      if (!d.is_ok())
        return field_response(FieldError{"expiry", "expiry: " + d.status().message()});
      if (d->count() <= 0) {
        return field_response(
            FieldError{"expiry", "expiry: must be greater than 0 (got \"" + text + "\")"});
      }
      update.expiry = *d;
    }
  }
  auto r = engine.update_helper(name, update);
  if (!r.is_ok()) {
    if (r.status().code() == StatusCode::kInvalidArgument) {
      return field_response(FieldError{field_of(r.status().message()), r.status().message()});
    }
    return status_response(r.status());
  }
  feed.poke();
  HttpResponse shown = helper_show(name);
  json out = json::parse(shown.body, nullptr, false);
  if (!out.is_object()) return shown;
  out["planned"] = *r;
  return json_response(200, out);
}

}  // namespace schedd::api
