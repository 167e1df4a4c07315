// Engine::reload: applies a new config to a running engine (docs/operations.md "Reload").
#include <spdlog/spdlog.h>

#include <functional>
#include <map>

#include "core/common/duration.h"
#include "core/control/engine.h"
#include "core/runner/plugin_loader.h"

namespace schedd {
namespace {

bool same_schedule(const ScheduleConfig& a, const ScheduleConfig& b) {
  return a.cron == b.cron && a.time == b.time && a.days == b.days && a.every == b.every &&
         a.anchor == b.anchor && a.tz == b.tz && a.jitter == b.jitter && a.dst == b.dst &&
         a.dst_gap_set == b.dst_gap_set && a.dst_overlap_set == b.dst_overlap_set;
}

bool same_template(const ExecTemplate& a, const ExecTemplate& b) {
  return a.origin == b.origin && a.name == b.name && a.executor == b.executor && a.key == b.key &&
         a.lane == b.lane && a.priority == b.priority && a.expiry == b.expiry &&
         a.timeout == b.timeout && a.max_attempts == b.max_attempts &&
         a.retry_delays == b.retry_delays && a.overlap == b.overlap && a.params == b.params;
}

// What about helper `name` differs between the two configs, in words; empty when nothing
// that planning or running depends on does.
std::string helper_change(const HelperConfig& was, const Config& before, const HelperConfig& is,
                          const Config& after) {
  std::vector<std::string> what;
  const bool zone_moved = !is.schedule.tz && before.timezone != after.timezone;
  if (!same_schedule(was.schedule, is.schedule) || zone_moved) what.emplace_back("schedule");
  if (was.enabled != is.enabled) what.emplace_back(is.enabled ? "enabled" : "disabled");
  if (was.catch_up != is.catch_up) what.emplace_back("catch_up");
  const auto a = template_of(was, before);
  const auto b = template_of(is, after);
  if (a->executor != b->executor) what.emplace_back("executor");
  if (a->priority != b->priority) what.emplace_back("priority");
  if (a->expiry != b->expiry) what.emplace_back("expiry");
  if (a->params != b->params) what.emplace_back("params");
  if (what.empty() && !same_template(*a, *b)) what.emplace_back("run settings");
  std::string out;
  for (const auto& w : what) out += (out.empty() ? "" : ", ") + w;
  return out;
}

std::string ms_text(std::chrono::milliseconds d) { return format_duration(d); }

}  // namespace

StatusOr<ReloadReport> Engine::reload(std::shared_ptr<const Config> next,
                                      std::shared_ptr<const PluginHost> plugins) {
  if (!next) return invalid_argument("reload: no config");
  std::lock_guard lock(mu_);
  const Config& old = config();
  ReloadReport report;

  // Settings only a restart can change keep their running values.
  auto merged = std::make_shared<Config>(*next);
  auto keep = [&](const char* name, const std::string& was, const std::string& is,
                  const std::function<void()>& restore) {
    if (was == is) return;
    report.needs_restart.push_back(std::string(name) + ": " + was + " -> " + is);
    restore();
  };
  Config& m = *merged;
  keep("listen", old.listen, m.listen, [&] { m.listen = old.listen; });
  keep("store", old.store, m.store, [&] {
    m.store = old.store;
    m.store_path = old.store_path;
  });
  keep("durability", old.durability, m.durability, [&] { m.durability = old.durability; });
  keep("durability_window", ms_text(old.durability_window), ms_text(m.durability_window),
       [&] { m.durability_window = old.durability_window; });
  keep("node_id", old.node_id, m.node_id, [&] { m.node_id = old.node_id; });
  keep("lookahead", ms_text(old.lookahead), ms_text(m.lookahead),
       [&] { m.lookahead = old.lookahead; });
  keep("expand_every", ms_text(old.expand_every), ms_text(m.expand_every),
       [&] { m.expand_every = old.expand_every; });
  keep("shutdown_grace", ms_text(old.shutdown_grace), ms_text(m.shutdown_grace),
       [&] { m.shutdown_grace = old.shutdown_grace; });
  keep("kill_grace", ms_text(old.kill_grace), ms_text(m.kill_grace),
       [&] { m.kill_grace = old.kill_grace; });
  keep("runner", old.runner.string(), m.runner.string(), [&] { m.runner = old.runner; });
  keep("log_format", old.log_format, m.log_format, [&] { m.log_format = old.log_format; });
  keep("redis.namespace", old.redis.ns, m.redis.ns, [&] { m.redis.ns = old.redis.ns; });
  keep("redis.lease", ms_text(old.redis.lease), ms_text(m.redis.lease),
       [&] { m.redis.lease = old.redis.lease; });
  keep("redis.command_timeout", ms_text(old.redis.command_timeout),
       ms_text(m.redis.command_timeout),
       [&] { m.redis.command_timeout = old.redis.command_timeout; });
  keep("redis.connect_timeout", ms_text(old.redis.connect_timeout),
       ms_text(m.redis.connect_timeout),
       [&] { m.redis.connect_timeout = old.redis.connect_timeout; });
  keep("redis.lane_capacity",
       old.redis.lane_capacity == RedisConfig::LaneCapacity::kNode ? "node" : "cluster",
       m.redis.lane_capacity == RedisConfig::LaneCapacity::kNode ? "node" : "cluster",
       [&] { m.redis.lane_capacity = old.redis.lane_capacity; });
  keep("redis.claim_ahead", std::to_string(old.redis.claim_ahead),
       std::to_string(m.redis.claim_ahead), [&] { m.redis.claim_ahead = old.redis.claim_ahead; });
  // A lane removed from the file keeps running until a restart: executions queued in it
  // would otherwise wait for ever.
  for (const auto& lane : old.lanes) {
    if (m.find_lane(lane.name) != nullptr) continue;
    report.needs_restart.push_back("lane " + lane.name + ": removed from the config (it keeps " +
                                   std::to_string(lane.workers) + " workers until a restart)");
    m.lanes.push_back(lane);
  }

  // Helpers: what to plan, forget or re-plan, decided before anything changes.
  std::vector<std::string> removed;
  std::vector<std::string> added;
  std::vector<std::pair<std::string, std::string>> changed;  // name, what
  for (const auto& h : old.helpers) {
    if (m.find_helper(h.name) == nullptr) removed.push_back(h.name);
  }
  for (const auto& h : m.helpers) {
    const HelperConfig* was = old.find_helper(h.name);
    if (was == nullptr) {
      added.push_back(h.name);
    } else if (std::string what = helper_change(*was, old, h, m); !what.empty()) {
      changed.emplace_back(h.name, what);
    }
  }

  // Install the new config and plugins. Runs in flight keep the executors they started with
  // (the old host stays loaded); its idle runners are let go.
  const PluginHost* old_host = plugins_.load(std::memory_order_acquire);
  configs_.push_back(merged);
  config_.store(merged.get(), std::memory_order_release);
  if (plugins && plugins.get() != old_host) {
    {
      std::lock_guard hosts(hosts_mu_);
      hosts_.push_back(plugins);
      all_hosts_.push_back(plugins.get());
    }
    plugins_.store(plugins.get(), std::memory_order_release);
    // Runs claimed before the swap may still start on the old executors: retire, not close.
    for (const auto& pool : runner::runner_pools(*old_host)) pool->retire();
    std::map<std::string, std::string> before;  // name -> version
    for (const auto& p : old_host->plugins()) before[p.name] = p.version;
    for (const auto& p : plugins->plugins()) {
      auto was = before.find(p.name);
      if (was != before.end() && was->second == p.version) continue;
      const Executor* first = p.executors.empty() ? nullptr : plugins->find(p.executors[0]);
      if (was != before.end() && first != nullptr && first->isolation() == Isolation::kInProcess) {
        // The dynamic loader hands back the library already loaded from that path: the old
        // code would go on running under the new version's name.
        report.needs_restart.push_back("plugin " + p.name + ": " + was->second + " -> " +
                                       p.version +
                                       " runs in process; its new version loads at a restart");
        continue;
      }
      report.changes.push_back("plugin " + p.name + " " + p.version + ": loaded from " +
                               p.file.string() +
                               (was == before.end() ? "" : " (was " + was->second + ")"));
    }
  }

  // Lanes the file added or resized. A size changed at run time (API) and not in the file
  // stays as it is.
  for (const auto& lane : m.lanes) {
    const LaneConfig* was = old.find_lane(lane.name);
    if (was != nullptr && was->workers == lane.workers) continue;
    auto before = dispatcher_->set_lane_workers(lane.name, lane.workers);
    if (!before.is_ok()) return before.status();
    report.changes.push_back(was == nullptr
                                 ? "lane " + lane.name + ": added with " +
                                       std::to_string(lane.workers) + " workers"
                                 : "lane " + lane.name + ": " + std::to_string(*before) + " -> " +
                                       std::to_string(lane.workers) + " workers");
  }

  const TimePoint now = clock_.now();
  for (const auto& name : removed) {
    planner_->remove_helper(name);
    auto n = store_.remove_planned(name, TimePoint::min());
    if (!n.is_ok()) return n.status();
    report.changes.push_back("helper " + name + ": removed (" + std::to_string(*n) +
                             " queued executions removed)");
  }
  for (const auto& name : added) {
    const HelperConfig& h = *m.find_helper(name);
    if (Status s = apply_state(h); !s.is_ok()) return s;
    auto planned = planner_->plan_helper(name, now);
    if (!planned.is_ok()) return planned.status();
    report.changes.push_back("helper " + name + ": added (" + std::to_string(planned->created) +
                             " executions planned)");
  }
  for (const auto& [name, what] : changed) {
    const HelperConfig& h = *m.find_helper(name);
    // The planner has the new helper before the old plan goes: a planning round in between
    // plans with the new one (or finds the old plan still there), never the old one again.
    if (Status s = apply_state(h); !s.is_ok()) return s;
    if (Status s = planner_->reset_watermark(name); !s.is_ok()) return s;
    auto n = store_.remove_planned(name, now);
    if (!n.is_ok()) return n.status();
    auto planned = planner_->plan_helper(name, now);
    if (!planned.is_ok()) return planned.status();
    report.changes.push_back("helper " + name + ": " + what + " changed (" + std::to_string(*n) +
                             " queued executions not yet due replaced by " +
                             std::to_string(planned->created) + ")");
  }
  // History retention applies at once: the dispatcher prunes with it on its next turn.
  if (const HistoryRetention was = history_retention_of(old), is = history_retention_of(m);
      was != is) {
    dispatcher_->set_history_retention(is);
    report.changes.push_back("history_retention: " + describe_retention(was) + " -> " +
                             describe_retention(is));
  }
  dispatcher_->poke();
  for (const auto& c : report.changes) spdlog::info("reload: {}", c);
  for (const auto& r : report.needs_restart) spdlog::warn("reload: needs a restart: {}", r);
  return report;
}

}  // namespace schedd
