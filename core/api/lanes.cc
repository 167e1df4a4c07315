// The lanes: GET /v1/lanes, and their size and pause at run time (docs/api.md "Lanes").
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <fstream>

#include "core/api/api_internal.h"

namespace schedd::api {

std::vector<Api::Impl::Route> Api::Impl::lane_routes() {
  using C = const Call&;
  return {
      {"GET", "/v1/lanes", true, [](Impl& a, C) { return a.lanes(); }},
      {"GET", "/v1/lanes/{lane}/workers", true,
       [](Impl& a, C c) { return a.lane_workers(c.args[0]); }},
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

// Resident memory of process `pid` in bytes, from /proc/PID/statm; null when it is gone.
json rss_of(int64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/statm");
  uint64_t size = 0;
  uint64_t resident = 0;
  if (!(in >> size >> resident)) return json();
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

json worker_run_json(const Dispatcher::WorkerRun& run) {
  const Execution& e = run.execution;
  const ExecTemplate& s = *e.spec;
  json j = {{"id", e.id},
            {"origin", origin_name(s.origin)},
            {"name", s.name},
            {"executor", s.executor},
            {"key", e.key()},
            {"attempt", e.attempt},
            {"since", opt_time(e.started)},
            {"deadline", opt_time(run.deadline)},
            {"stop_requested", run.stop_requested}};
  if (s.origin == ExecOrigin::kHelper) j["helper"] = s.name;
  if (s.origin == ExecOrigin::kTicket) {
    j["project"] = e.key();
    j["ticket"] = s.name;
  }
  const RunProgress& p = run.progress;
  const bool reported = p.fraction >= 0 || !p.message.empty();
  j["progress"] = reported ? json{{"fraction", p.fraction >= 0 ? json(p.fraction) : json()},
                                  {"message", p.message},
                                  {"at", time_text(p.at)}}
                           : json();
  if (run.runner) {
    j["runner"] = {{"pid", run.runner->pid},
                   {"plugin", run.runner->plugin},
                   {"version", run.runner->version},
                   {"rss_bytes", rss_of(run.runner->pid)},
                   {"runs_served", run.runner->runs}};
  } else {
    j["runner"] = json();
  }
  return j;
}

}  // namespace

// Each worker of one lane: idle since when, or what it runs (docs/api.md "Lanes"). Reads the
// dispatcher's snapshot and, for runs out of process, each runner's /proc/PID/statm.
HttpResponse Api::Impl::lane_workers(const std::string& lane) {
  auto view = engine.dispatcher().lane_workers(lane);
  if (!view) return status_response(not_found("unknown lane \"" + lane + "\""));
  std::size_t size = 0;
  bool paused = false;
  for (const auto& l : engine.dispatcher().lanes()) {
    if (l.name != lane) continue;
    size = l.workers;
    paused = l.paused;
  }
  json workers = json::array();
  std::size_t busy = 0;
  for (const auto& w : view->workers) {
    json j = {{"worker", w.number}};
    if (w.runs.empty()) {
      j["state"] = "idle";
      j["idle_since"] = time_text(w.idle_since);
      j["execution"] = json();
    } else {
      ++busy;
      j["state"] = w.written_off ? "written_off" : "running";
      j["idle_since"] = json();
      j["execution"] = worker_run_json(w.runs.front());
      // A batch: the runs after the first, in the order the runner takes them.
      if (w.runs.size() > 1) {
        json more = json::array();
        for (std::size_t i = 1; i < w.runs.size(); ++i) more.push_back(w.runs[i].execution.id);
        j["batch"] = more;
      }
    }
    workers.push_back(std::move(j));
  }
  return json_response(200, {{"lane", lane},
                             {"size", size},
                             {"paused", paused},
                             {"busy", busy},
                             {"waiting", view->waiting},
                             {"workers", workers}});
}

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
