#include "core/control/engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "core/common/duration.h"
#include "core/common/thread_name.h"
#include "core/runner/plugin_loader.h"

namespace schedd {
namespace {

OverlapPolicy to_policy(Overlap o) {
  switch (o) {
    case Overlap::kQueue:
      return OverlapPolicy::kQueue;
    case Overlap::kSkip:
      return OverlapPolicy::kSkip;
    case Overlap::kReplace:
      return OverlapPolicy::kReplace;
    case Overlap::kAllow:
      return OverlapPolicy::kAllow;
  }
  return OverlapPolicy::kQueue;
}

CatchUpPolicy to_catch_up(CatchUp c) {
  switch (c) {
    case CatchUp::kAll:
      return CatchUpPolicy::kAll;
    case CatchUp::kLatest:
      return CatchUpPolicy::kLatest;
    case CatchUp::kNone:
      return CatchUpPolicy::kNone;
  }
  return CatchUpPolicy::kAll;
}

int64_t epoch_ms(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

HistoryRetention history_retention_of(const Config& cfg) {
  HistoryRetention r;
  r.fallback = cfg.history_retention;
  for (const auto& [name, d] : cfg.history_retention_by_status) {
    // The config accepts only terminal status names.
    if (auto s = parse_exec_status(name); s && is_terminal(*s)) r.by_status[*s] = d;
  }
  return r;
}

std::string describe_retention(const HistoryRetention& r) {
  std::string out = format_duration(r.fallback);
  std::string per;
  for (const auto& [s, d] : r.by_status) {
    per += (per.empty() ? "" : ", ") + std::string(exec_status_name(s)) + " " + format_duration(d);
  }
  return per.empty() ? out : out + " (" + per + ")";
}

Engine::Engine(const Config& config, Store& store, Clock& clock, const PluginHost& plugins,
               std::string node_id)
    : config_(&config),
      store_(store),
      clock_(clock),
      plugins_(&plugins),
      all_hosts_{&plugins},
      node_id_(std::move(node_id)) {
  planner_ = std::make_unique<Planner>(store_, config.lookahead);
  planner_->set_on_stale([this](const std::string& name) { queue_refresh(name); });
  DispatcherOptions options;
  for (const auto& lane : config.lanes) options.lanes.push_back({lane.name, lane.workers});
  options.node_id = node_id_;
  options.expand_every = config.expand_every;
  options.history_retention = history_retention_of(config);
  options.kill_grace = config.kill_grace;
  // Daemons' clocks may disagree by up to lease / 5 (docs/redis.md): a run stops that much
  // before its lease lapses on this daemon's clock.
  options.lease_margin = config.redis.lease / 5;
  options.on_grace_expired = [this] {
    std::lock_guard lock(hosts_mu_);
    for (const PluginHost* host : all_hosts_) {
      for (const auto& pool : runner::runner_pools(*host)) pool->close(/*kill_busy=*/true);
    }
  };
  dispatcher_ = std::make_unique<Dispatcher>(
      store_, *planner_, clock_,
      [this](std::string_view name) { return this->plugins().find(name); }, std::move(options));
  DispatchObserver fan_out;
  fan_out.on_claim = [this](const Execution& e) {
    std::shared_lock lock(observers_mu_);
    for (auto& [id, o] : observers_) {
      if (o.on_claim) o.on_claim(e);
    }
  };
  fan_out.on_start = [this](const Execution& e) {
    std::shared_lock lock(observers_mu_);
    for (auto& [id, o] : observers_) {
      if (o.on_start) o.on_start(e);
    }
  };
  fan_out.on_finish = [this](const Execution& e, const Completion& c) {
    std::shared_lock lock(observers_mu_);
    for (auto& [id, o] : observers_) {
      if (o.on_finish) o.on_finish(e, c);
    }
  };
  fan_out.on_expired = [this](const Execution& e) {
    std::shared_lock lock(observers_mu_);
    for (auto& [id, o] : observers_) {
      if (o.on_expired) o.on_expired(e);
    }
  };
  fan_out.on_skipped = [this](const Execution& e) {
    std::shared_lock lock(observers_mu_);
    for (auto& [id, o] : observers_) {
      if (o.on_skipped) o.on_skipped(e);
    }
  };
  fan_out.on_progress = [this](const Execution& e, const RunProgress& p) {
    std::shared_lock lock(observers_mu_);
    for (auto& [id, o] : observers_) {
      if (o.on_progress) o.on_progress(e, p);
    }
  };
  dispatcher_->add_observer(std::move(fan_out));
}

uint64_t Engine::add_observer(DispatchObserver observer) {
  std::unique_lock lock(observers_mu_);
  observers_.emplace_back(++next_observer_, std::move(observer));
  return next_observer_;
}

void Engine::remove_observer(uint64_t id) {
  std::unique_lock lock(observers_mu_);
  std::erase_if(observers_, [id](const auto& o) { return o.first == id; });
}

Engine::~Engine() {
  dispatcher_->stop(std::chrono::milliseconds(0));
  store_.subscribe(StoreEvents{});
  {
    std::lock_guard lock(refresh_mu_);
    refresh_stop_ = true;
  }
  refresh_cv_.notify_all();
  if (refresher_.joinable()) refresher_.join();
}

void Engine::queue_refresh(const std::string& name) {
  {
    std::lock_guard lock(refresh_mu_);
    refresh_.insert(name);
  }
  refresh_cv_.notify_all();
}

void Engine::refresh_loop() {
  std::unique_lock lock(refresh_mu_);
  while (true) {
    refresh_cv_.wait(lock, [&] { return refresh_stop_ || !refresh_.empty(); });
    if (refresh_stop_) return;
    std::set<std::string> names;
    names.swap(refresh_);
    lock.unlock();
    for (const auto& name : names) {
      std::lock_guard engine_lock(mu_);
      const HelperConfig* h = config().find_helper(name);
      if (h == nullptr) continue;  // not in this daemon's config
      if (Status s = apply_state(*h); !s.is_ok()) {
        spdlog::error("helper {}: changed on another daemon: {}", name, s.message());
        continue;
      }
      auto p = planner_->helper(name);
      auto report = planner_->plan_helper(name, clock_.now());
      spdlog::info("helper {}: changed on another daemon; now {}, {} planned here", name,
                   p && p->enabled ? "enabled" : "disabled", report.is_ok() ? report->created : 0);
    }
    dispatcher_->poke();
    lock.lock();
  }
}

std::shared_ptr<const ExecTemplate> Engine::make_template(const HelperConfig& h) const {
  return template_of(h, config());
}

std::shared_ptr<ExecTemplate> template_of(const HelperConfig& h, const Config& cfg) {
  auto t = std::make_shared<ExecTemplate>();
  t->origin = ExecOrigin::kHelper;
  t->name = h.name;
  t->executor = h.executor;
  t->overlap = to_policy(h.overlap);
  t->key = h.overlap == Overlap::kAllow ? "" : h.key;
  t->lane = h.lane;
  t->priority = h.priority;
  t->expiry = h.expiry;
  t->timeout = h.timeout;
  if (!t->timeout) {
    if (const LaneConfig* lane = cfg.find_lane(h.lane)) t->timeout = lane->timeout;
  }
  const RetryConfig& retry = h.retry ? *h.retry : cfg.retry;
  t->max_attempts = retry.max_attempts;
  t->retry_delays = retry.delays;
  t->params = h.params;
  return t;
}

StatusOr<Schedule> Engine::effective_schedule(const HelperConfig& h,
                                              const std::optional<HelperState>& state) const {
  ScheduleConfig sc = h.schedule;
  if (state && state->schedule_override) {
    std::vector<ConfigError> errors;
    auto parsed = parse_schedule(*state->schedule_override, "schedule override", errors);
    if (!parsed) {
      return invalid_argument("helper " + h.name + ": stored schedule override is invalid: " +
                              errors.front().to_string());
    }
    sc = *parsed;
  }
  auto schedule = build_schedule(sc, config().timezone, h.name);
  if (!schedule.is_ok()) {
    return invalid_argument("helper " + h.name + ": " + schedule.status().message());
  }
  return schedule;
}

std::vector<LaneView> Engine::lanes() {
  const std::vector<LaneCounts> counts = store_.counts(clock_.now());
  std::vector<LaneView> out;
  for (const auto& lane : dispatcher_->lanes()) {
    LaneView v{.name = lane.name, .workers = lane.workers, .paused = lane.paused};
    for (const auto& c : counts) {
      if (c.lane == lane.name) {
        v.running = c.running;
        v.queued = c.queued;
      }
    }
    out.push_back(std::move(v));
  }
  for (const auto& c : counts) {
    if (std::none_of(out.begin(), out.end(), [&](const LaneView& v) { return v.name == c.lane; })) {
      out.push_back({.name = c.lane, .local = false, .running = c.running, .queued = c.queued});
    }
  }
  return out;
}

std::optional<TimePoint> Engine::next_fire(const HelperConfig& h, TimePoint after) const {
  auto schedule = effective_schedule(h, store_.helper_state(h.name));
  if (!schedule.is_ok()) return std::nullopt;
  return schedule->next_after(after);
}

Status Engine::apply_state(const HelperConfig& h) {
  std::optional<HelperState> state = store_.helper_state(h.name);
  PlannedHelper p;
  p.name = h.name;
  p.spec = helper_template(h, state);
  p.enabled = state && state->enabled ? *state->enabled : h.enabled;
  p.catch_up = to_catch_up(h.catch_up);
  if (state) {
    p.seen = *state;
    p.seen.planned_until.reset();
  }
  auto schedule = effective_schedule(h, state);
  if (!schedule.is_ok()) return schedule.status();
  p.schedule = std::make_shared<const Schedule>(std::move(schedule).value());
  planner_->set_helper(std::move(p));
  return Status::ok();
}

Status Engine::start() {
  const TimePoint now = clock_.now();
  std::vector<Execution> interrupted = store_.recover(now);
  for (const auto& e : interrupted) {
    spdlog::warn("exec {} [{}] was running when the daemon stopped: interrupted (attempt {} of {})",
                 e.id, e.key(), e.attempt, e.spec->max_attempts);
  }
  for (const auto& h : config().helpers) {
    if (Status s = apply_state(h); !s.is_ok()) return s;
  }
  // A shared store reports other daemons' changes: new work wakes the dispatcher, a changed
  // helper is re-applied here.
  refresher_ = std::thread([this] {
    name_this_thread("schedd-refresh");
    refresh_loop();
  });
  store_.subscribe(StoreEvents{
      .wake = [this] { dispatcher_->poke(); },
      .helper_changed = [this](const std::string& name) { queue_refresh(name); },
      .leases_renewed = [this](const std::vector<std::string>& ids,
                               TimePoint until) { dispatcher_->leases_renewed(ids, until); },
  });
  dispatcher_->start();
  return Status::ok();
}

void Engine::stop(std::chrono::milliseconds grace) { dispatcher_->stop(grace); }

StatusOr<std::size_t> Engine::enable(const std::string& helper) {
  std::lock_guard lock(mu_);
  const HelperConfig* h = config().find_helper(helper);
  if (h == nullptr) return not_found("unknown helper \"" + helper + "\"");
  if (Status s = planner_->update_state(helper, [](HelperState& st) { st.enabled = true; });
      !s.is_ok()) {
    return s;
  }
  if (Status s = apply_state(*h); !s.is_ok()) return s;
  auto report = planner_->plan_helper(helper, clock_.now());
  if (!report.is_ok()) return report.status();
  dispatcher_->poke();
  spdlog::info("helper {} enabled: {} executions planned", helper, report->created);
  return report->created;
}

StatusOr<std::size_t> Engine::disable(const std::string& helper) {
  std::lock_guard lock(mu_);
  const HelperConfig* h = config().find_helper(helper);
  if (h == nullptr) return not_found("unknown helper \"" + helper + "\"");
  if (Status s = planner_->update_state(helper,
                                        [](HelperState& st) {
                                          st.enabled = false;
                                          st.planned_until.reset();
                                        });
      !s.is_ok()) {
    return s;
  }
  if (Status s = apply_state(*h); !s.is_ok()) return s;
  auto removed = store_.remove_planned(helper, TimePoint::min());
  if (!removed.is_ok()) return removed.status();
  dispatcher_->poke();
  spdlog::info("helper {} disabled: {} queued executions removed", helper, *removed);
  return *removed;
}

Status Engine::check_schedule(const std::string& helper, const std::string& inline_toml) const {
  std::vector<ConfigError> errors;
  auto parsed = parse_schedule(inline_toml, "schedule", errors);
  if (!parsed) {
    std::string message;
    for (const auto& e : errors) message += (message.empty() ? "" : "; ") + e.to_string();
    return invalid_argument(message);
  }
  auto built = build_schedule(*parsed, config().timezone, helper);
  if (!built.is_ok()) return invalid_argument("schedule: " + built.status().message());
  return Status::ok();
}

StatusOr<std::size_t> Engine::update_schedule(const std::string& helper,
                                              const std::string& inline_toml) {
  std::lock_guard lock(mu_);
  const HelperConfig* h = config().find_helper(helper);
  if (h == nullptr) return not_found("unknown helper \"" + helper + "\"");
  if (Status s = check_schedule(helper, inline_toml); !s.is_ok()) return s;

  if (Status s = planner_->update_state(helper,
                                        [&](HelperState& st) {
                                          st.schedule_override = inline_toml;
                                          st.planned_until.reset();
                                        });
      !s.is_ok()) {
    return s;
  }
  auto removed = store_.remove_planned(helper, TimePoint::min());
  if (!removed.is_ok()) return removed.status();
  if (Status s = apply_state(*h); !s.is_ok()) return s;
  auto report = planner_->plan_helper(helper, clock_.now());
  if (!report.is_ok()) return report.status();
  dispatcher_->poke();
  spdlog::info("helper {} schedule updated to {}: {} queued removed, {} planned", helper,
               inline_toml, *removed, report->created);
  return report->created;
}

StatusOr<SubmitResult> Engine::run_now(const std::string& helper) {
  SubmitRequest req;
  req.helper = helper;
  return submit(std::move(req));
}

StatusOr<SubmitResult> Engine::submit(SubmitRequest req) {
  const TimePoint now = clock_.now();
  auto e = prepare(std::move(req), now);
  if (!e.is_ok()) return e.status();
  auto stored = store_.submit(std::move(*e), now, config().capacity_queued);
  if (!stored.is_ok()) return stored.status();
  dispatcher_->poke_for(stored->first.not_before);
  return SubmitResult{std::move(stored->first), stored->second};
}

std::vector<StatusOr<SubmitResult>> Engine::submit_many(std::vector<SubmitRequest> requests) {
  const TimePoint now = clock_.now();
  std::vector<StatusOr<SubmitResult>> out(requests.size(), internal_error("not submitted"));
  std::vector<Execution> executions;
  std::vector<std::size_t> sent;  // index in `requests` of each of `executions`
  for (std::size_t i = 0; i < requests.size(); ++i) {
    auto e = prepare(std::move(requests[i]), now);
    if (!e.is_ok()) {
      out[i] = e.status();
      continue;
    }
    executions.push_back(std::move(*e));
    sent.push_back(i);
  }
  auto stored = store_.submit_many(std::move(executions), now, config().capacity_queued);
  std::optional<TimePoint> earliest;
  for (std::size_t j = 0; j < stored.size() && j < sent.size(); ++j) {
    if (!stored[j].is_ok()) {
      out[sent[j]] = stored[j].status();
      continue;
    }
    auto& [e, position] = *stored[j];
    if (!earliest || e.not_before < *earliest) earliest = e.not_before;
    out[sent[j]] = SubmitResult{std::move(e), position};
  }
  if (earliest) dispatcher_->poke_for(*earliest);
  return out;
}

StatusOr<SubmitResult> Engine::submit_deferred(SubmitRequest req,
                                               Store::DurableCallback on_durable) {
  const TimePoint now = clock_.now();
  auto e = prepare(std::move(req), now);
  if (!e.is_ok()) return e.status();
  auto stored =
      store_.submit_deferred(std::move(*e), now, config().capacity_queued, std::move(on_durable));
  if (!stored.is_ok()) return stored.status();
  // A claim waits for its own durable token, later than this submission's, so the run
  // cannot start before the submission is on disk.
  dispatcher_->poke_for(stored->first.not_before);
  return SubmitResult{std::move(stored->first), stored->second};
}

StatusOr<Execution> Engine::prepare(SubmitRequest req, TimePoint now) {
  auto t = std::make_shared<ExecTemplate>();
  if (!req.helper.empty()) {
    const HelperConfig* h = config().find_helper(req.helper);
    if (h == nullptr) return not_found("unknown helper \"" + req.helper + "\"");
    *t = *helper_template(*h, store_.helper_state(h->name));
    t->origin = req.origin == ExecOrigin::kTicket ? ExecOrigin::kTicket : ExecOrigin::kHelper;
    if (!req.params.empty()) t->params = req.params;
  } else {
    if (req.executor.empty()) return invalid_argument("executor or helper is required");
    t->origin = req.origin;
    t->executor = req.executor;
    t->name = req.name.empty() ? req.executor : req.name;
    t->params = req.params;
    const RetryConfig& retry = config().retry;
    t->max_attempts = retry.max_attempts;
    t->retry_delays = retry.delays;
    t->expiry.reset();
  }
  if (plugins().find(t->executor) == nullptr) {
    return not_found("unknown executor \"" + t->executor + "\"");
  }
  if (!req.lane.empty()) t->lane = req.lane;
  const LaneConfig* lane = config().find_lane(t->lane);
  if (lane == nullptr) return invalid_argument("unknown lane \"" + t->lane + "\"");
  if (req.priority) {
    if (*req.priority < 1 || *req.priority > 5) {
      return invalid_argument("priority: " + std::to_string(*req.priority) +
                              " is out of range 1-5");
    }
    t->priority = *req.priority;
  }
  if (req.expiry) t->expiry = req.expiry;
  if (req.timeout) t->timeout = req.timeout;
  if (!t->timeout) t->timeout = lane->timeout;

  Execution e;
  if (!req.id.empty()) {
    e.id = req.id;
  } else {
    std::lock_guard lock(mu_);
    e.id = (req.helper.empty() ? t->name : req.helper) + "@run-" + std::to_string(epoch_ms(now)) +
           "-" + std::to_string(++adhoc_counter_);
  }
  if (!req.key.empty()) {
    t->key = req.key;
  } else if (req.helper.empty()) {
    t->key.clear();  // its own id: no serialization with anything else
  }
  e.spec = std::move(t);
  e.due = req.not_before.value_or(now);
  e.not_before = e.due;
  return e;
}

StatusOr<Execution> Engine::cancel(const std::string& id, bool stop_running) {
  // A run of this daemon is running in the store a moment before its worker has it (between
  // the claim and its hand-over) and a moment after (while its completion is recorded). A
  // stop asked in those moments would be lost: look again until the store and the
  // dispatcher agree, a few milliseconds at most.
  constexpr int kTries = 200;
  for (int i = 0;; ++i) {
    auto r = store_.cancel(id, clock_.now());
    if (r.is_ok()) {
      dispatcher_->poke();
      return r;
    }
    if (r.status().code() != StatusCode::kFailedPrecondition || !stop_running) return r.status();
    if (dispatcher_->request_stop(id, ExecStatus::kCancelled)) {
      return failed_precondition("execution " + id +
                                 " is running: a cooperative stop was requested");
    }
    auto e = store_.get(id);
    if (i + 1 >= kTries || !e || e->status != ExecStatus::kRunning || e->node != node_id_) {
      return r.status();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace schedd
