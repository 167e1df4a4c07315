// The daemon itself: liveness and readiness, /v1/status, who the caller is, and the live
// stats (GET /v1/stats, the SSE stream /v1/stats/stream and the StatsFeed behind it).
#include <fmt/format.h>
#include <schedd/abi.h>
#include <spdlog/spdlog.h>

#include "core/api/api_internal.h"

namespace schedd::api {

namespace {
// POST /v1/store/backup: a consistent copy of the store's file, as the response body
// (docs/api.md). A POST, so that it needs the full token when tokens are set: the copy holds
// every execution's params. The daemon writes no file anywhere; the client saves the bytes.
HttpResponse store_backup(Engine& engine) {
  auto copy = engine.store().backup();
  if (!copy.is_ok()) return status_response(copy.status());
  spdlog::info("store {}: backup taken over the API ({} bytes)", engine.store().describe(),
               copy->size());
  HttpResponse r;
  r.content_type = "application/vnd.sqlite3";
  r.headers.emplace_back("Content-Disposition", "attachment; filename=\"schedd-backup.db\"");
  r.body = std::move(*copy);
  return r;
}
}  // namespace

std::vector<Api::Impl::Route> Api::Impl::system_routes() {
  using C = const Call&;
  return {
      {"GET", "/healthz", true,
       [](Impl&, C) {
         return json_response(200, {{"status", "ok"}});
       }},
      {"GET", "/readyz", true, [](Impl& a, C) { return a.readyz(); }},
      {"GET", "/v1/status", true, [](Impl& a, C) { return a.status(); }},
      {"GET", "/v1/whoami", true, [](Impl& a, C c) { return a.whoami(c); }},
      {"GET", "/v1/stats", true, [](Impl& a, C) { return json_response(200, a.stats_json()); }},
      {"GET", "/v1/stats/stream", false, [](Impl& a, C) { return a.stats_stream(); }},
      {"POST", "/v1/system/reload", false, [](Impl& a, C) { return a.reload(); }},
      {"GET", "/v1/system/drain", true,
       [](Impl& a, C) { return json_response(200, a.drain_json()); }},
      {"POST", "/v1/system/drain", false, [](Impl& a, C) { return a.drain(true); }},
      {"POST", "/v1/system/undrain", false, [](Impl& a, C) { return a.drain(false); }},
      {"POST", "/v1/store/backup", false, [](Impl& a, C) { return store_backup(a.engine); }},
  };
}

HttpResponse Api::Impl::reload() {
  if (!options.reload) {
    return error_response(501, "not_implemented", "this server was started without live reload");
  }
  ReloadReport r = options.reload();
  json body = {{"applied", r.applied},
               {"changes", r.changes},
               {"needs_restart", r.needs_restart},
               {"errors", r.errors}};
  if (r.applied) return json_response(200, body);
  std::string message = "the config was not reloaded: " + std::to_string(r.errors.size()) +
                        (r.errors.size() == 1 ? " error" : " errors") +
                        "; the daemon keeps running on the config it had";
  return error_response(422, "invalid_config", message, body);
}

json Api::Impl::drain_json() {
  const bool draining = engine.dispatcher().draining();
  const std::size_t running = engine.dispatcher().running();
  return {{"draining", draining}, {"running", running}, {"drained", engine.dispatcher().drained()}};
}

HttpResponse Api::Impl::drain(bool on) {
  engine.dispatcher().set_draining(on);
  spdlog::info("{} (over the API)",
               on ? "draining: no more claims; what runs finishes" : "drain ended: claiming again");
  return json_response(200, drain_json());
}

json Api::Impl::stats_json() {
  const Config& cfg = engine.config();
  std::size_t running = 0, queued = 0, workers = 0;
  json lanes = json::object();
  // The lanes as they run now (their size may have changed since start: scale, reload), and
  // those only the store knows (another daemon's, in distributed mode), with capacity 0.
  for (const LaneView& lane : engine.lanes()) {
    running += lane.running;
    queued += lane.queued;
    workers += lane.workers;
    lanes[lane.name] = {{"running", lane.running},
                        {"runningCapacity", lane.workers},
                        {"queued", lane.queued},
                        {"paused", lane.paused}};
  }
  return {{"running", running},
          {"runningCapacity", workers},
          {"queued", queued},
          {"queuedCapacity", cfg.capacity_queued},
          {"draining", engine.dispatcher().draining()},
          {"lanes", lanes}};
}

HttpResponse Api::Impl::status() {
  const Config& cfg = engine.config();
  json stats = stats_json();
  std::size_t enabled = 0;
  for (const auto& h : cfg.helpers) {
    auto state = engine.store().helper_state(h.name);
    if (state && state->enabled ? *state->enabled : h.enabled) ++enabled;
  }
  json lanes = json::array();
  for (auto& [name, l] : stats["lanes"].items()) {
    lanes.push_back({{"name", name},
                     {"workers", l["runningCapacity"]},
                     {"running", l["running"]},
                     {"queued", l["queued"]}});
  }
  const auto uptime = std::chrono::steady_clock::now() - started;
  return json_response(
      200, {{"version", SCHEDD_VERSION},
            {"plugin_abi", SCHEDD_ABI_VERSION},
            {"node", engine.node_id()},
            {"store", cfg.store},
            {"uptime_seconds", std::chrono::duration_cast<std::chrono::seconds>(uptime).count()},
            {"time", time_text(engine.clock().now())},
            {"dispatcher", {{"state", "running"}, {"running", engine.dispatcher().running()}}},
            {"helpers", {{"total", cfg.helpers.size()}, {"enabled", enabled}}},
            {"running", stats["running"]},
            {"queued", stats["queued"]},
            {"capacity", {{"running", stats["runningCapacity"]}, {"queued", cfg.capacity_queued}}},
            {"lanes", lanes},
            {"executors", engine.plugins().executors().size()},
            {"stream_clients", feed.clients()},
            {"recent", metrics.recent(engine.clock().now())}});
}

HttpResponse Api::Impl::readyz() {
  json checks = json::object();
  bool ready = true;
  try {
    // A store can answer reads and still refuse writes (Redis unreachable, a full disk).
    const Status health = engine.store().health();
    (void)engine.store().counts(engine.clock().now());
    checks["store"] = health.is_ok() ? "ok" : "unavailable: " + health.message();
    ready = ready && health.is_ok();
  } catch (const std::exception& e) {
    checks["store"] = std::string("unreachable: ") + e.what();
    ready = false;
  }
  const std::size_t executors = engine.plugins().executors().size();
  checks["plugins"] = fmt::format("{} executors", executors);
  if (executors == 0) ready = false;
  return json_response(ready ? 200 : 503, {{"ready", ready}, {"checks", checks}});
}

HttpResponse Api::Impl::whoami(const Call& c) {
  // What the caller may do: the dashboard disables its buttons for a read-only token.
  const Tokens t = tokens();
  const bool has_tokens = t.token || t.read_token;
  const char* access = !has_tokens ? "full" : !c.full ? "anonymous" : *c.full ? "full" : "read";
  return json_response(200, {{"access", access}, {"tokens", has_tokens}});
}

HttpResponse Api::Impl::stats_stream() {
  HttpResponse r;
  r.content_type = "text/event-stream";
  r.headers.emplace_back("X-Accel-Buffering", "no");
  r.stream = [this](StreamPush push) { return feed.subscribe(std::move(push)); };
  return r;
}

// ---------------------------------------------------------------------------------------
// StatsFeed

StatsFeed::StatsFeed(std::function<std::string()> snapshot, const ApiOptions& options)
    : snapshot_(std::move(snapshot)), options_(options), thread_([this] { run(); }) {}

StatsFeed::~StatsFeed() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::function<void()> StatsFeed::subscribe(StreamPush push) {
  std::lock_guard sampling(sample_mu_);
  std::string snap = snapshot_();
  std::lock_guard lock(mu_);
  if (!push(": schedd live stats\nretry: 1000\n\n" + stats_event(snap))) return [] {};
  const uint64_t id = ++next_id_;
  subscribers_.emplace(id, Subscriber{std::move(push), std::move(snap)});
  cv_.notify_all();
  return [this, id] {
    std::lock_guard l(mu_);
    subscribers_.erase(id);
  };
}

void StatsFeed::poke() {
  std::lock_guard lock(mu_);
  if (dirty_) return;
  dirty_ = true;
  if (!subscribers_.empty()) cv_.notify_all();
}

void StatsFeed::publish(const char* name, const std::string& data) {
  std::lock_guard lock(mu_);
  if (subscribers_.empty()) return;
  broadcast(event(name, data));
}

std::size_t StatsFeed::clients() {
  std::lock_guard lock(mu_);
  return subscribers_.size();
}

std::string StatsFeed::event(const char* name, const std::string& data) {
  return fmt::format("event: {}\ndata: {}\n\n", name, data);
}

std::string StatsFeed::stats_event(const std::string& stats) {
  return fmt::format("event: stats\ndata: {0}\n\ndata: {0}\n\n", stats);
}

bool StatsFeed::broadcast(const std::string& chunk, const std::string* stats) {
  bool sent = false;
  for (auto it = subscribers_.begin(); it != subscribers_.end();) {
    Subscriber& sub = it->second;
    bool alive = true;
    if (stats == nullptr) {
      alive = sub.push(chunk);
    } else if (sub.last != *stats) {
      alive = sub.push(chunk);
      sub.last = *stats;
      sent = true;
    }
    if (alive) {
      ++it;
    } else {
      it = subscribers_.erase(it);
    }
  }
  return sent;
}

void StatsFeed::run() {
  using clock = std::chrono::steady_clock;
  std::unique_lock lock(mu_);
  clock::time_point last_sent{};
  clock::time_point last_check{};
  clock::time_point last_heartbeat = clock::now();
  while (!stop_) {
    if (subscribers_.empty()) {
      cv_.wait(lock, [&] { return stop_ || !subscribers_.empty(); });
      last_heartbeat = clock::now();
      continue;
    }
    const auto now = clock::now();
    if (now >= last_heartbeat + options_.heartbeat) {
      broadcast(
          event("heartbeat", json{{"time", time_text(std::chrono::system_clock::now())}}.dump()));
      last_heartbeat = now;
    }
    const auto check_at =
        dirty_ ? last_sent + options_.stats_min_interval : last_check + options_.stats_check;
    if (now >= check_at) {
      dirty_ = false;
      last_check = now;
      lock.unlock();
      std::lock_guard sampling(sample_mu_);
      std::string snap = snapshot_();
      lock.lock();
      if (broadcast(stats_event(snap), &snap)) last_sent = now;
      continue;
    }
    cv_.wait_until(lock, std::min(check_at, last_heartbeat + options_.heartbeat));
  }
}

}  // namespace schedd::api
