// The lanes: GET /v1/lanes, and their size and pause at run time (docs/api.md "Lanes").
#include <spdlog/spdlog.h>

#include "core/api/api_internal.h"

namespace schedd::api {

std::vector<Api::Impl::Route> Api::Impl::lane_routes() {
  using C = const Call&;
  return {
      {"GET", "/v1/lanes", true, [](Impl& a, C) { return a.lanes(); }},
      {"POST", "/v1/lanes/{lane}/scale", false,
       [](Impl& a, C c) { return a.lane_scale(c.args[0], c.req.body); }},
      {"POST", "/v1/lanes/{lane}/pause", false,
       [](Impl& a, C c) { return a.lane_pause(c.args[0], true); }},
      {"POST", "/v1/lanes/{lane}/resume", false,
       [](Impl& a, C c) { return a.lane_pause(c.args[0], false); }},
  };
}

namespace {

json lane_json(const Dispatcher::LaneStatus& l, const Config& cfg, const json& counts) {
  const LaneConfig* configured = cfg.find_lane(l.name);
  return {{"name", l.name},
          {"workers", l.workers},
          {"configured_workers", configured != nullptr ? json(configured->workers) : json()},
          {"threads", l.threads},
          {"paused", l.paused},
          {"timeout", configured != nullptr && configured->timeout
                          ? json(format_duration(*configured->timeout))
                          : json()},
          {"running", counts.value("running", 0)},
          {"queued", counts.value("queued", 0)}};
}

}  // namespace

HttpResponse Api::Impl::lanes() {
  json stats = stats_json();
  json out = json::array();
  for (const auto& l : engine.dispatcher().lanes()) {
    json counts = stats["lanes"].contains(l.name) ? stats["lanes"][l.name] : json::object();
    out.push_back(lane_json(l, engine.config(), counts));
  }
  return json_response(200, {{"lanes", out}, {"drain", drain_json()}});
}

HttpResponse Api::Impl::lane_scale(const std::string& lane, const std::string& body) {
  auto j = body_object(body, false);
  if (!j.is_ok()) return status_response(j.status());
  Fields fields(*j, "");
  fields.only({"workers"});
  auto workers = fields.integer("workers");
  if (fields.ok() && !workers) fields.fail("workers", "required");
  if (fields.ok() && (*workers < 1 || *workers > static_cast<int64_t>(Dispatcher::kMaxWorkers))) {
    fields.fail("workers",
                fmt::format("{} is out of range 1-{}", *workers, Dispatcher::kMaxWorkers));
  }
  if (!fields.ok()) return field_response(fields.error());
  // Only lanes the daemon has: a typo must not create a lane nothing runs in.
  bool known = false;
  for (const auto& l : engine.dispatcher().lanes()) known = known || l.name == lane;
  if (!known) return status_response(not_found("unknown lane \"" + lane + "\""));
  auto before = engine.dispatcher().set_lane_workers(lane, static_cast<std::size_t>(*workers));
  if (!before.is_ok()) return status_response(before.status());
  spdlog::info("lane {}: {} -> {} workers (over the API)", lane, *before, *workers);
  auto out = lane_state(lane);
  if (!out) return status_response(not_found("unknown lane \"" + lane + "\""));
  (*out)["previous_workers"] = *before;
  return json_response(200, *out);
}

HttpResponse Api::Impl::lane_pause(const std::string& lane, bool paused) {
  if (Status s = engine.dispatcher().set_lane_paused(lane, paused); !s.is_ok()) {
    return status_response(s);
  }
  spdlog::info("lane {}: {} (over the API)", lane, paused ? "paused" : "resumed");
  auto out = lane_state(lane);
  if (!out) return status_response(not_found("unknown lane \"" + lane + "\""));
  return json_response(200, *out);
}

std::optional<json> Api::Impl::lane_state(const std::string& lane) {
  for (const auto& l : engine.dispatcher().lanes()) {
    if (l.name != lane) continue;
    json stats = stats_json();
    json counts = stats["lanes"].contains(lane) ? stats["lanes"][lane] : json::object();
    return lane_json(l, engine.config(), counts);
  }
  return std::nullopt;
}

}  // namespace schedd::api
