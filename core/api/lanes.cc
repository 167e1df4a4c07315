// The lanes: GET /v1/lanes.
#include "core/api/api_internal.h"

namespace schedd::api {

std::vector<Api::Impl::Route> Api::Impl::lane_routes() {
  using C = const Call&;
  return {
      {"GET", "/v1/lanes", true, [](Impl& a, C) { return a.lanes(); }},
  };
}

HttpResponse Api::Impl::lanes() {
  json stats = stats_json();
  json out = json::array();
  for (const auto& lane : engine.config().lanes) {
    const json& l = stats["lanes"][lane.name];
    out.push_back({{"name", lane.name},
                   {"workers", lane.workers},
                   {"timeout", lane.timeout ? json(format_duration(*lane.timeout)) : json()},
                   {"running", l["running"]},
                   {"queued", l["queued"]}});
  }
  return json_response(200, {{"lanes", out}});
}

}  // namespace schedd::api
