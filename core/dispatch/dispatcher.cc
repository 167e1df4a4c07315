#include "core/dispatch/dispatcher.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <utility>

#include "core/common/thread_name.h"
#include "core/common/thread_slice.h"

namespace schedd {
namespace {

Origin to_origin(ExecOrigin o) {
  switch (o) {
    case ExecOrigin::kHelper:
      return Origin::kHelper;
    case ExecOrigin::kTicket:
      return Origin::kTicket;
    case ExecOrigin::kAdhoc:
      return Origin::kAdhoc;
  }
  return Origin::kAdhoc;
}

// The dispatcher loop's CPU slice (the kernel's minimum): a turn of the loop takes tens of
// microseconds.
constexpr std::chrono::microseconds kLoopSlice{100};

double ms_between(TimePoint a, TimePoint b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string format_ms(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

}  // namespace

Dispatcher::Dispatcher(Store& store, Planner& planner, Clock& clock, ExecutorLookup executors,
                       DispatcherOptions options)
    : store_(store),
      planner_(planner),
      clock_(clock),
      executors_(std::move(executors)),
      options_(std::move(options)),
      claim_ahead_(store.claim_ahead()) {
  retention_ = options_.history_retention;
  for (const auto& spec : options_.lanes) {
    auto lane = std::make_unique<Lane>();
    lane->spec = spec;
    if (lane->spec.workers == 0) lane->spec.workers = 1;
    lanes_[spec.name] = std::move(lane);
  }
  if (!lanes_.contains("default")) {
    auto lane = std::make_unique<Lane>();
    lane->spec = {"default", 4};
    lanes_["default"] = std::move(lane);
  }
}

Dispatcher::~Dispatcher() {
  if (started_) stop(std::chrono::milliseconds(0));
}

void Dispatcher::add_observer(DispatchObserver observer) {
  observers_.push_back(std::move(observer));
}

void Dispatcher::start() {
  std::lock_guard lock(mu_);
  if (started_) return;
  started_ = true;
  for (auto& [name, lane] : lanes_) {
    for (std::size_t i = 0; i < lane->spec.workers; ++i) add_worker_locked(*lane);
  }
  loop_thread_ = std::thread([this] {
    name_this_thread("schedd-dispatch");
    // The loop wakes at due instants and must then claim at once: a short slice lets its
    // wake-up preempt a CPU-bound process (core/common/thread_slice.h).
    request_short_slice(kLoopSlice);
    loop();
  });
  guard_exit_ = false;
  guard_thread_ = std::thread([this] {
    name_this_thread("schedd-lease");
    lease_guard();
  });
}

void Dispatcher::add_worker_locked(Lane& lane) {
  Lane* l = &lane;
  // Workers that left after a scale down have returned (they mark themselves under mu_ as
  // their last step): join them here, so that scaling up and down keeps no dead threads.
  if (!l->exited.empty()) {
    std::erase_if(l->threads, [&](std::thread& t) {
      const std::thread::id id = t.get_id();
      if (std::find(l->exited.begin(), l->exited.end(), id) == l->exited.end()) {
        return false;
      }
      t.join();
      std::erase_if(l->slots, [&](const WorkerSlot& w) { return w.id == id; });
      return true;
    });
    l->exited.clear();
  }
  ++l->live;
  WorkerSlot* slot = &l->slots.emplace_back();
  slot->number = ++l->next_number;
  slot->idle_since = clock_.now();
  l->threads.emplace_back([this, l, slot] {
    name_this_thread("schedd-w-" + l->spec.name);
    worker(*l, *slot);
  });
}

std::optional<Dispatcher::LaneWorkers> Dispatcher::lane_workers(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto lane_it = lanes_.find(name);
  if (lane_it == lanes_.end()) return std::nullopt;
  const Lane& lane = *lane_it->second;
  LaneWorkers out;
  out.waiting = lane.queue.size();
  // The lane's started runs by the thread running them: one pass over the runs in flight
  // (bounded by the workers of every lane plus what they claimed ahead).
  std::map<std::thread::id, std::vector<const Running*>> on;
  for (const auto& [id, r] : running_) {
    if (r.execution.started && r.execution.lane() == name) on[r.worker].push_back(&r);
  }
  for (const WorkerSlot& slot : lane.slots) {
    if (slot.left) continue;
    WorkerView w;
    w.number = slot.number;
    w.idle_since = slot.idle_since;
    if (auto it = on.find(slot.id); it != on.end()) {
      for (const Running* r : it->second) {
        WorkerRun run;
        run.execution = r->execution;
        run.execution.output.clear();
        run.deadline = r->deadline;
        run.stop_requested = r->stop_at.has_value();
        run.progress.fraction = r->progress.fraction;
        run.progress.message = r->progress.message;
        run.progress.at = r->progress.at;
        run.runner = r->runner;
        w.written_off = w.written_off || r->written_off;
        w.runs.push_back(std::move(run));
      }
    }
    out.workers.push_back(std::move(w));
  }
  return out;
}

void Dispatcher::request_stop_locked(Running& r, ExecStatus as, TimePoint now) {
  if (!r.stop_reason) r.stop_reason = as;
  (void)now;
  if (!r.stop_at) {
    r.stop_at = std::chrono::steady_clock::now();
    ++with_stop_;
  }
  r.stop.request_stop();
  // The loop looks again at kill_grace from now (an in-process run's write-off).
  poke_locked();
}

void Dispatcher::set_hard_deadline_locked(Running& r, TimePoint now) {
  if (!r.lease_until) return;
  const TimePoint hard =
      *r.lease_until - std::chrono::duration_cast<TimePoint::duration>(options_.lease_margin);
  const auto mono = std::chrono::steady_clock::now().time_since_epoch() +
                    std::chrono::duration_cast<std::chrono::steady_clock::duration>(hard - now);
  r.hard_deadline_ns.store(std::chrono::duration_cast<std::chrono::nanoseconds>(mono).count());
}

void Dispatcher::leases_renewed(const std::vector<std::string>& ids, TimePoint until) {
  std::lock_guard lock(mu_);
  const TimePoint now = clock_.now();
  for (const auto& id : ids) {
    auto it = running_.find(id);
    if (it == running_.end() || !it->second.lease_until) continue;
    Running& r = it->second;
    if (until <= *r.lease_until) continue;
    r.lease_until = until;
    set_hard_deadline_locked(r, now);
    r.stop.wake();  // a worker waiting on a runner sends it the new deadline
  }
}

void Dispatcher::poke() {
  std::lock_guard lock(mu_);
  poke_locked();
}

void Dispatcher::poke_locked() {
  poked_ = true;
  loop_idle_ = false;
  loop_cv_.notify_all();
}

void Dispatcher::poke_for(TimePoint not_before) {
  std::lock_guard lock(mu_);
  if (loop_idle_ && !poked_ && not_before >= wake_at_) return;
  poke_locked();
}

bool Dispatcher::request_stop(const std::string& id, ExecStatus as) {
  std::lock_guard lock(mu_);
  auto it = running_.find(id);
  if (it == running_.end()) return false;
  request_stop_locked(it->second, as, clock_.now());
  return true;
}

std::string Dispatcher::debug_state() const {
  std::lock_guard lock(mu_);
  std::string out =
      "loop_idle=" + std::to_string(loop_idle_) + " poked=" + std::to_string(poked_) +
      " completing=" + std::to_string(completing_) + " refilling=" + std::to_string(refilling_) +
      " idle_at_behind_ms=" +
      std::to_string(
          std::chrono::duration_cast<std::chrono::milliseconds>(clock_.now() - idle_at_).count());
  for (const auto& [name, lane] : lanes_) {
    out += " lane " + name + " busy=" + std::to_string(lane->busy) +
           " queue=" + std::to_string(lane->queue.size());
  }
  for (const auto& [id, r] : running_) {
    out += " running " + id +
           (r.stop_reason ? std::string(" stop=") + exec_status_name(*r.stop_reason) : "");
  }
  return out;
}

uint64_t Dispatcher::idle_wakeups() const {
  std::lock_guard g(mu_);
  return idle_wakeups_;
}

std::optional<RunProgress> Dispatcher::progress(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = running_.find(id);
  if (it == running_.end()) return std::nullopt;
  return it->second.progress;
}

std::size_t Dispatcher::running() const {
  std::lock_guard lock(mu_);
  return running_.size();
}

bool Dispatcher::drained() const {
  std::lock_guard lock(mu_);
  if (!draining_ || !running_.empty() || completing_ > 0) return false;
  return std::all_of(lanes_.begin(), lanes_.end(),
                     [](const auto& l) { return l.second->busy == 0; });
}

std::vector<Dispatcher::LaneStatus> Dispatcher::lanes() const {
  std::lock_guard lock(mu_);
  std::vector<LaneStatus> out;
  out.reserve(lanes_.size());
  for (const auto& [name, lane] : lanes_) {
    out.push_back({name, lane->spec.workers, started_ ? lane->live : 0, lane->busy, lane->paused});
  }
  return out;
}

StatusOr<std::size_t> Dispatcher::set_lane_workers(const std::string& name, std::size_t workers) {
  if (workers < 1 || workers > kMaxWorkers) {
    return invalid_argument("workers: " + std::to_string(workers) + " is out of range 1-" +
                            std::to_string(kMaxWorkers));
  }
  std::lock_guard lock(mu_);
  auto it = lanes_.find(name);
  std::size_t before = 0;
  if (it == lanes_.end()) {
    it = lanes_.emplace(name, std::make_unique<Lane>()).first;
    it->second->spec = {name, workers};
  } else {
    before = it->second->spec.workers;
  }
  Lane& lane = *it->second;
  lane.spec.workers = workers;
  if (started_ && !stopping_) {
    while (lane.live < workers) add_worker_locked(lane);
    lane.cv.notify_all();  // extra workers leave when free
  }
  poke_locked();  // a bigger lane claims more at once
  return before;
}

Status Dispatcher::set_lane_paused(const std::string& name, bool paused) {
  std::lock_guard lock(mu_);
  auto it = lanes_.find(name);
  if (it == lanes_.end()) return not_found("unknown lane \"" + name + "\"");
  it->second->paused = paused;
  poke_locked();
  return Status::ok();
}

void Dispatcher::set_draining(bool on) {
  std::lock_guard lock(mu_);
  draining_ = on;
  poke_locked();
}

bool Dispatcher::draining() const {
  std::lock_guard lock(mu_);
  return draining_;
}

bool Dispatcher::wait_idle(std::chrono::milliseconds timeout) {
  return wait_quiet(timeout, [](const Execution&) { return false; });
}

bool Dispatcher::wait_quiet(std::chrono::milliseconds timeout,
                            const std::function<bool(const Execution&)>& keeps_running) {
  std::unique_lock lock(mu_);
  return idle_cv_.wait_for(lock, timeout, [&] {
    // `busy` also counts claims in flight (reserved before the store call returns).
    std::size_t busy = 0;
    for (const auto& [name, lane] : lanes_) busy += lane->busy;
    if (!loop_idle_ || poked_ || completing_ > 0 || refilling_ > 0 ||
        busy != running_.size() + completing_ || idle_at_ < clock_.now()) {
      return false;
    }
    return std::all_of(running_.begin(), running_.end(), [&](const auto& r) {
      return !r.second.stop_reason && keeps_running(r.second.execution);
    });
  });
}

void Dispatcher::log_claim_result(const ClaimResult& r) {
  for (const auto& e : r.expired) {
    if (options_.log_transitions) {
      spdlog::warn("exec {} [{}] queued -> expired (not started by due + expiry)", e.id, e.key());
    }
    for (const auto& o : observers_) {
      if (o.on_expired) o.on_expired(e);
    }
  }
  for (const auto& e : r.skipped) {
    if (options_.log_transitions) {
      spdlog::info("exec {} [{}] queued -> skipped (overlap = skip: previous run still running)",
                   e.id, e.key());
    }
    for (const auto& o : observers_) {
      if (o.on_skipped) o.on_skipped(e);
    }
  }
}

void Dispatcher::check_leases_locked(TimePoint now, std::optional<TimePoint>& next_deadline) {
  if (with_lease_ == 0) return;
  const auto margin = std::chrono::duration_cast<TimePoint::duration>(options_.lease_margin);
  const auto stop_before = std::chrono::duration_cast<TimePoint::duration>(
      std::min(options_.kill_grace, 2 * options_.lease_margin));
  for (auto& [id, r] : running_) {
    if (!r.lease_until || !r.execution.started) continue;
    // A lease that is not being renewed (Redis unreachable, this daemon too slow): the run
    // must be over before another daemon may take its key.
    const TimePoint hard = *r.lease_until - margin;
    const TimePoint soft = hard - stop_before;
    if (now >= hard && r.in_process && !r.breached) {
      r.breached = true;
      spdlog::critical(
          "exec {} [{}]: its lease ends now and its in-process run has not returned; ending "
          "the daemon so that it does not overlap the run another daemon may start (run "
          "executor {} with isolation = \"process\" to have only the run killed)",
          id, r.execution.key(), r.execution.spec->executor);
      if (options_.on_lease_breach) {
        options_.on_lease_breach(id);
      } else {
        spdlog::shutdown();
        std::_Exit(70);
      }
    }
    if (now >= soft && !r.stop_at) {
      spdlog::warn(
          "exec {} [{}]: lease not renewed (it ends in {:.0f} ms on this clock, less a margin "
          "of {} ms): stop requested",
          id, r.execution.key(), ms_between(now, *r.lease_until), options_.lease_margin.count());
      request_stop_locked(r, ExecStatus::kInterrupted, now);
    }
    const TimePoint next = now < soft ? soft : hard;
    if (next > now && (!next_deadline || next < *next_deadline)) next_deadline = next;
  }
}

// The loop checks leases too, but it waits in store calls (a Redis command may take up to
// command_timeout while Redis is unreachable, which is when leases run out). This thread
// never calls the store: it holds mu_ only to read the leases, so a run's stop request, and
// the daemon's end under an in-process run, come on time whatever the store does.
void Dispatcher::lease_guard() {
  std::unique_lock lock(mu_);
  while (!guard_exit_) {
    const TimePoint now = clock_.now();
    std::optional<TimePoint> next;
    check_leases_locked(now, next);
    if (with_lease_ == 0) {
      guard_cv_.wait(lock, [&] { return guard_exit_ || with_lease_ > 0; });
      continue;
    }
    // Renewals move deadlines later, so waking at the old one is early, never late.
    const TimePoint wake = next ? *next : now + std::chrono::seconds(1);
    clock_.wait_until(guard_cv_, lock, wake, now);
  }
}

void Dispatcher::set_history_retention(HistoryRetention retention) {
  std::lock_guard lock(mu_);
  retention_ = std::move(retention);
  prune_now_ = true;
  poke_locked();
}

HistoryRetention Dispatcher::history_retention() const {
  std::lock_guard lock(mu_);
  return retention_;
}

void Dispatcher::prune_history(TimePoint now) {
  HistoryCutoffs cutoffs(now);
  {
    std::lock_guard lock(mu_);
    cutoffs = retention_.cutoffs(now);
  }
  std::size_t pruned = store_.prune_history(cutoffs);
  if (pruned > 0) spdlog::debug("history: pruned {} executions", pruned);
}

void Dispatcher::loop() {
  TimePoint next_plan = clock_.now();  // plan at once on start
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (wedged_) {
      loop_cv_.wait(lock, [&] { return !wedged_ || stopping_; });
      continue;
    }
    heartbeat_.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                     std::memory_order_release);
    poked_ = false;
    loop_idle_ = false;
    const bool prune_now = std::exchange(prune_now_, false);
    lock.unlock();
    TimePoint now = clock_.now();

    if (now >= next_plan) {
      auto report = planner_.plan_all(now);
      if (!report.is_ok()) {
        spdlog::error("planner: {}", report.status().to_string());
      } else if (report->created > 0 || report->skipped > 0) {
        spdlog::debug("planner: {} executions planned, {} skipped", report->created,
                      report->skipped);
      }
      prune_history(now);
      next_plan = now + std::chrono::duration_cast<TimePoint::duration>(options_.expand_every);
      // A planning round on a shared store can take a second or more: claim at the time it
      // is now, not when the round began, or the claims' leases start out already old.
      now = clock_.now();
    } else if (prune_now) {
      prune_history(now);
    }

    bool claimed_any = false;
    for (auto& [name, lane] : lanes_) {
      if (claim_for(*lane, now, /*housekeeping=*/true) > 0) claimed_any = true;
    }

    // Timeouts, and the earliest one still ahead; in-process runs that did not stop within
    // kill_grace of their stop request get their worker written off.
    std::optional<TimePoint> next_deadline;
    {
      std::lock_guard g(mu_);
      const auto real_now = std::chrono::steady_clock::now();
      const auto steady_now = clock_.steady_now();
      // A real-time instant as a wake-up on the injected clock.
      auto on_clock = [&](std::chrono::steady_clock::time_point t) {
        return now + std::chrono::duration_cast<TimePoint::duration>(t - real_now);
      };
      // Skipped when no run has a timeout or a stop request: with claim-ahead, running_
      // holds hundreds of short runs, and this round comes after most completions.
      check_leases_locked(now, next_deadline);
      for (auto& [id, r] : running_) {
        if (with_deadline_ == 0 && with_stop_ == 0) break;
        if (r.stop_at) {
          if (!r.in_process || r.written_off || !r.execution.started) continue;
          auto write_off_at = *r.stop_at + options_.kill_grace;
          if (real_now >= write_off_at) {
            r.written_off = true;
            Lane& lane = *lanes_.at(r.execution.lane());
            ++lane.written_off;
            --lane.live;  // its thread is the run's until it returns
            add_worker_locked(lane);
            spdlog::error(
                "exec {} [{}]: in-process executor {} did not return within kill_grace {} of "
                "its stop request; its worker is written off and lane {} gets a new one (the "
                "run keeps its key until it returns; run the plugin with isolation = "
                "\"process\" to have it killed)",
                id, r.execution.key(), r.execution.spec->executor, format_ms(options_.kill_grace),
                lane.spec.name);
          } else if (!next_deadline || on_clock(write_off_at) < *next_deadline) {
            next_deadline = on_clock(write_off_at);
          }
          continue;
        }
        if (!r.timeout_at) continue;
        if (*r.timeout_at <= steady_now) {
          request_stop_locked(r, ExecStatus::kTimedOut, now);
          if (options_.log_transitions) spdlog::warn("exec {}: timeout, stop requested", id);
          if (r.in_process) {
            TimePoint write_off_at = on_clock(real_now + options_.kill_grace);
            if (!next_deadline || write_off_at < *next_deadline) next_deadline = write_off_at;
          }
        } else if (const TimePoint at = now + std::chrono::duration_cast<TimePoint::duration>(
                                                  *r.timeout_at - steady_now);
                   !next_deadline || at < *next_deadline) {
          next_deadline = at;
        }
      }
    }

    TimePoint wake = next_plan;
    if (auto ev = store_.next_event(now); ev && *ev > now && *ev < wake) wake = *ev;
    if (next_deadline && *next_deadline < wake) wake = *next_deadline;

    lock.lock();
    if (poked_ || stopping_ || claimed_any) continue;
    loop_idle_ = true;
    idle_at_ = now;
    wake_at_ = wake;
    idle_cv_.notify_all();
    clock_.wait_until(loop_cv_, lock, wake, now);
  }
}

// A durable store makes each claim wait for a disk write before the run starts. A lane of
// short runs (under 1 ms on average, over its last runs) therefore claims up to
// `claim_ahead_` more than its free workers, so that one write carries many claims; the
// claimed-ahead runs wait in the lane's queue for a worker, in claim order (priority, due,
// submission). Lanes of longer runs claim only for free workers, so that an execution that
// arrives later with a better priority never waits behind more than the running ones.
std::size_t Dispatcher::ahead_for(const Lane& lane) const {
  constexpr uint64_t kMinRuns = 16;
  constexpr double kShortRunUs = 1000;
  // Out of process, a batch of short runs costs one round trip to a runner.
  constexpr std::size_t kBatchAhead = 128;
  const std::size_t ahead = std::max(claim_ahead_, lane.batchable ? kBatchAhead : 0);
  if (ahead == 0 || lane.runs < kMinRuns || lane.mean_run_us >= kShortRunUs) return 0;
  return ahead;
}

std::size_t Dispatcher::claim_for(Lane& lane, TimePoint now, bool housekeeping) {
  std::unique_lock lock(mu_);
  return claim_for_locked(lane, now, housekeeping, lock);
}

std::size_t Dispatcher::claim_for_locked(Lane& lane, TimePoint now, bool housekeeping,
                                         std::unique_lock<std::mutex>& lock) {
  const std::string& name = lane.spec.name;
  // Reserve the free workers first, so that the loop and workers claiming at the same time
  // never exceed the lane's size.
  if (stopping_) return 0;
  const std::size_t limit =
      lane.paused || draining_ ? 0 : lane.spec.workers + lane.written_off + ahead_for(lane);
  const std::size_t reserved = limit - std::min(limit, lane.busy);
  lane.busy += reserved;
  // A full lane still gets a claim of 0 from the loop: expiry and skip/replace decisions
  // are due on time even when no worker is free.
  if (reserved == 0 && !housekeeping) return 0;
  lock.unlock();
  auto result = store_.claim(name, reserved, now, options_.node_id);
  std::size_t claimed = result.is_ok() ? result->claimed.size() : 0;
  if (!result.is_ok()) {
    spdlog::error("claim for lane {}: {}", name, result.status().to_string());
  } else {
    log_claim_result(*result);
    for (const auto& id : result->replace) {
      if (request_stop(id, ExecStatus::kCancelled) && options_.log_transitions) {
        spdlog::info("exec {}: stop requested (overlap = replace: a newer run is due)", id);
      }
    }
    for (const auto& e : result->claimed) {
      if (options_.log_transitions) {
        spdlog::info("exec {} [{}] queued -> running (lane {}, attempt {}, {:.1f} ms after due)",
                     e.id, e.key(), name, e.attempt, ms_between(e.not_before, now));
      }
      for (const auto& o : observers_) {
        if (o.on_claim) o.on_claim(e);
      }
    }
  }
  lock.lock();
  lane.busy -= reserved - claimed;
  if (claimed == 0) return 0;
  const auto steady_now = clock_.steady_now();
  for (auto& e : result->claimed) {
    // The store claims an id only while it is not running, and a worker takes its attempt
    // out of running_ before recording the completion: the id is not in running_.
    auto [it, inserted] = running_.try_emplace(e.id);
    assert(inserted);
    Running& r = it->second;
    if (e.spec->timeout) {
      r.deadline = now + std::chrono::duration_cast<TimePoint::duration>(*e.spec->timeout);
      r.timeout_at = steady_now + *e.spec->timeout;
      ++with_deadline_;
    }
    const Executor* executor = executors_(e.spec->executor);
    r.executor = executor;
    r.in_process = executor != nullptr && executor->isolation() == Isolation::kInProcess;
    r.execution = std::move(e);
    r.durable_token = result->durable_token;
    if (result->lease_until) {
      r.lease_until = result->lease_until;
      set_hard_deadline_locked(r, now);
      if (with_lease_++ == 0) guard_cv_.notify_all();
    }
    lane.queue.push_back(it);
  }
  // One worker is woken; a worker that takes work from the queue and leaves some wakes the
  // next (worker()). Waking them all made every idle worker of the lane take the lock for
  // nothing when one worker takes a whole batch of a batching executor's runs.
  lane.cv.notify_one();
  return claimed;
}

void Dispatcher::worker(Lane& lane, WorkerSlot& slot) {
  std::unique_lock lock(mu_);
  slot.id = std::this_thread::get_id();
  // Every return below is this thread leaving: lane_workers() no longer lists it.
  struct Leave {
    WorkerSlot& slot;
    ~Leave() { slot.left = true; }  // mu_ held: every return happens with the lock taken
  } leave{slot};
  while (true) {
    bool woken = false;  // the predicate's first call is before any wait
    lane.cv.wait(lock, [&] {
      const bool go = !lane.queue.empty() || workers_exit_ || lane.live > lane.spec.workers;
      if (!go && std::exchange(woken, true)) ++idle_wakeups_;
      return go;
    });
    if (lane.live > lane.spec.workers && !workers_exit_) {
      // Scaled down: this worker leaves; another one takes what is queued.
      --lane.live;
      lane.exited.push_back(std::this_thread::get_id());
      if (!lane.queue.empty()) lane.cv.notify_one();
      idle_cv_.notify_all();
      return;
    }
    if (lane.queue.empty()) return;  // workers_exit_
    RunningMap::iterator it = lane.queue.front();
    lane.queue.pop_front();
    const Executor* executor = it->second.executor;
    const void* key = executor != nullptr ? executor->batch_key() : nullptr;
    lane.batchable = key != nullptr;
    // Claimed-ahead runs of the same batching executor go with it, in claim order.
    std::vector<RunningMap::iterator> batch;
    if (key != nullptr && !lane.queue.empty() && lane.mean_run_us < 1000) {
      constexpr std::size_t kMaxBatch = 64;
      batch.push_back(it);
      while (batch.size() < kMaxBatch && !lane.queue.empty()) {
        const Executor* x = lane.queue.front()->second.executor;
        if (x == nullptr || x->batch_key() != key) break;
        batch.push_back(lane.queue.front());
        lane.queue.pop_front();
      }
    }
    // More left than this worker takes: the next idle worker takes it (claim_for woke one).
    if (!lane.queue.empty()) lane.cv.notify_one();
    // A run with no durable write to wait for starts under the lock that took it: one lock
    // round trip less per run.
    std::optional<bool> begun;
    if (batch.size() <= 1 && it->second.durable_token == 0) {
      begun = begin_run_locked(it->second, false);
    }
    lock.unlock();
    bool written_off = false;
    double run_us = 0;
    std::size_t ran = 1;
    if (batch.size() > 1) {
      ran = batch.size();
      run_us = std::chrono::duration<double, std::micro>(run_batch(batch)).count() /
               static_cast<double>(ran);
    } else {
      run_us = std::chrono::duration<double, std::micro>(run_one(it, written_off, begun)).count();
    }
    lock.lock();
    slot.idle_since = clock_.now();
    lane.busy -= ran;
    completing_ -= ran;
    // The loop recomputes its wake-up (a freed key may have a head due later), and this
    // worker claims its lane's next execution itself instead of waiting for the loop.
    poke_locked();
    if (written_off) {
      // The lane already has this worker's replacement: this thread leaves.
      --lane.written_off;
      idle_cv_.notify_all();
      return;
    }
    lane.mean_run_us = lane.runs == 0 ? run_us : 0.9 * lane.mean_run_us + 0.1 * run_us;
    lane.runs += ran;
    // With claim-ahead, refill once half the lane's queue has drained, so that the next
    // claims are being written while the queue still has work.
    // `refilling_` covers the gap between giving back this worker's slot (busy) and claim_for
    // reserving it again: without it, the loop could go idle in that gap, wait_quiet would
    // report quiet, and this claim would still happen afterwards, at a `now` read before the
    // test moved the clock on.
    if (lane.queue.size() <= ahead_for(lane) / 2 && !stopping_) {
      ++refilling_;
      claim_for_locked(lane, clock_.now(), /*housekeeping=*/false, lock);
      --refilling_;
    }
    idle_cv_.notify_all();
  }
}

Completion Dispatcher::finish(const Running& r, const RunOutcome& outcome, TimePoint now) const {
  const Execution& e = r.execution;
  Completion c;
  c.finished = now;
  c.message = outcome.message;
  c.output = outcome.output;
  bool retryable = false;
  switch (outcome.status) {
    case RunStatus::kSucceeded:
      c.status = ExecStatus::kSucceeded;
      break;
    case RunStatus::kFailedPermanent:
      c.status = ExecStatus::kFailed;
      break;
    case RunStatus::kFailed:
    case RunStatus::kCancelled:
      if (r.stop_reason == ExecStatus::kTimedOut) {
        c.status = ExecStatus::kTimedOut;
        retryable = true;
      } else if (r.stop_reason == ExecStatus::kInterrupted) {
        c.status = ExecStatus::kInterrupted;
        retryable = true;
      } else if (r.stop_reason == ExecStatus::kCancelled) {
        // Cancelled (API, overlap = replace): a plugin that reports the stop as a failure
        // is not retried; the cancel wins.
        c.status = ExecStatus::kCancelled;
      } else if (outcome.status == RunStatus::kFailed) {
        c.status = ExecStatus::kFailed;
        retryable = true;
      } else {
        c.status = ExecStatus::kCancelled;
      }
      break;
  }
  if (retryable && e.attempt < e.spec->max_attempts) {
    c.retry = true;
    c.retry_at =
        now + std::chrono::duration_cast<TimePoint::duration>(retry_delay(*e.spec, e.attempt + 1));
  }
  return c;
}

bool Dispatcher::begin_run(Running& r) {
  // A claim may start only once the store has it on disk (a durable store's group commit).
  bool shutting_down = r.durable_token != 0 && !store_.wait_durable(r.durable_token);
  std::lock_guard g(mu_);
  return begin_run_locked(r, shutting_down);
}

bool Dispatcher::begin_run_locked(Running& r, bool shutting_down) {
  shutting_down = shutting_down || workers_exit_;
  if (!shutting_down) r.execution.started = clock_.now();
  if (r.lease_until) guard_cv_.notify_all();  // the lease guard watches started runs
  r.worker = std::this_thread::get_id();
  if (shutting_down) r.stop_reason = ExecStatus::kInterrupted;
  return !shutting_down;
}

void Dispatcher::fill_request(Running& r, RunRequest& req) {
  const Execution& e = r.execution;
  req.execution_id = e.id;
  req.origin = to_origin(e.spec->origin);
  req.name = e.spec->name;
  req.key = e.key();
  req.lane = e.lane();
  req.attempt = e.attempt;
  req.due = e.due;
  req.deadline = r.deadline;
  req.params = e.spec->params;
  req.fence = e.fence;
  req.hard_deadline_ns = &r.hard_deadline_ns;
  req.on_runner = [this, &r](const RunnerInfo& runner) {
    std::lock_guard g(mu_);
    r.runner = runner;
  };
  // Progress and log lines reach the API (GET /v1/executions/ID) and the live stream,
  // in process and out of process alike.
  req.on_progress = [this, &r](double fraction, std::string_view message) {
    std::optional<RunProgress> notify;
    {
      std::lock_guard g(mu_);
      r.progress.fraction = fraction;
      r.progress.message = std::string(message);
      r.progress.at = clock_.now();
      const auto real_now = std::chrono::steady_clock::now();
      if (real_now - r.progress_sent >= std::chrono::milliseconds(50) || fraction >= 1) {
        r.progress_sent = real_now;
        notify = r.progress;
      }
    }
    if (notify) {
      for (const auto& o : observers_) {
        if (o.on_progress) o.on_progress(r.execution, *notify);
      }
    }
  };
  // Both closures hold two pointers, which std::function keeps without allocating.
  req.on_log = [this, &r](int level, std::string_view message) {
    static const char* const kLevels[] = {"DEBUG", "DEBUG", "INFO", "WARN", "ERROR"};
    const char* name = kLevels[std::clamp(level, 0, 4)];
    std::string cut;
    if (message.size() > RunProgress::kLogLineBytes) {
      std::size_t n = RunProgress::kLogLineBytes;
      while (n > 0 && (static_cast<unsigned char>(message[n]) & 0xC0) == 0x80) --n;  // UTF-8
      cut = fmt::format("{}... (cut: {} bytes, more than {})", message.substr(0, n), message.size(),
                        RunProgress::kLogLineBytes);
      message = cut;
    }
    uint64_t dropped = 0;
    {
      std::lock_guard g(mu_);
      if (!r.log_rate.admit(std::chrono::steady_clock::now(), &dropped)) return;
      auto& log = r.progress.log;
      if (log.size() >= RunProgress::kLogLines) log.erase(log.begin());
      log.push_back(std::string(name) + " " + std::string(message));
    }
    if (dropped > 0) log_dropped(r.execution, dropped);
    auto lvl = level >= 4   ? spdlog::level::err
               : level == 3 ? spdlog::level::warn
               : level <= 1 ? spdlog::level::debug
                            : spdlog::level::info;
    spdlog::log(lvl, "[{}] {}: {}", r.execution.id, r.execution.spec->executor, message);
  };
}

void Dispatcher::log_dropped(const Execution& e, uint64_t dropped) {
  spdlog::warn("[{}] {}: {} log lines dropped (more than {} a second)", e.id, e.spec->executor,
               dropped, RunProgress::kLogRate);
}

std::chrono::nanoseconds Dispatcher::run_one(RunningMap::iterator it, bool& written_off,
                                             std::optional<bool> begun) {
  // `it` stays valid until end_run erases it (see Running). Its execution and deadline are
  // read without mu_: nothing writes them once the attempt is queued for a worker, except
  // `started`, written under mu_.
  Running& r = it->second;
  RunOutcome outcome;
  if (!(begun ? *begun : begin_run(r))) {
    // Claimed but never started before shutdown: back to the queue.
    outcome.status = RunStatus::kCancelled;
    outcome.message = "not started: daemon shutting down";
  } else {
    for (const auto& o : observers_) {
      if (o.on_start) o.on_start(r.execution);
    }
    if (r.executor == nullptr) {
      outcome.status = RunStatus::kFailedPermanent;
      outcome.message = "unknown executor \"" + r.execution.spec->executor + "\"";
    } else {
      RunRequest req;
      fill_request(r, req);
      outcome = r.executor->run(req, r.stop);
    }
  }
  end_run(it, outcome, written_off);
  return outcome.duration;
}

std::chrono::nanoseconds Dispatcher::run_batch(const std::vector<RunningMap::iterator>& its) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<RunRequest> requests(its.size());
  std::vector<BatchItem> items;
  std::vector<RunningMap::iterator> started;
  items.reserve(its.size());
  for (std::size_t i = 0; i < its.size(); ++i) {
    Running& r = its[i]->second;
    bool unused = false;
    if (!begin_run(r)) {
      RunOutcome outcome;
      outcome.status = RunStatus::kCancelled;
      outcome.message = "not started: daemon shutting down";
      end_run(its[i], outcome, unused);
      continue;
    }
    for (const auto& o : observers_) {
      if (o.on_start) o.on_start(r.execution);
    }
    fill_request(r, requests[i]);
    items.push_back({&requests[i], &r.stop});
    started.push_back(its[i]);
  }
  if (!items.empty()) {
    // All share one batching executor (the worker grouped them by batch_key()).
    started.front()->second.executor->run_batch(items, [&](std::size_t i, RunOutcome outcome) {
      bool unused = false;
      end_run(started[i], outcome, unused);
    });
  }
  return std::chrono::steady_clock::now() - t0;
}

void Dispatcher::end_run(RunningMap::iterator it, const RunOutcome& outcome, bool& written_off) {
  Running& r = it->second;
  uint64_t dropped = 0;
  const TimePoint now = clock_.now();
  Completion c;
  Execution e;
  {
    // Leave running_ before the store re-queues a retry under the same id, which another
    // worker may then claim at once; `completing_` keeps wait_idle honest meanwhile.
    std::lock_guard g(mu_);
    dropped = r.log_rate.take_dropped();
    written_off = r.written_off;
    if (r.abandoned) {
      // stop() recorded it and gave up on this thread; the process is exiting.
      if (r.deadline) --with_deadline_;
      if (r.stop_at) --with_stop_;
      if (r.lease_until) --with_lease_;
      running_.erase(it);
      ++completing_;
      return;
    }
    c = finish(r, outcome, now);
    e = std::move(r.execution);
    if (r.deadline) --with_deadline_;
    if (r.stop_at) --with_stop_;
    if (r.lease_until) --with_lease_;
    running_.erase(it);
    ++completing_;
  }
  if (dropped > 0) log_dropped(e, dropped);
  const std::string& id = e.id;
  // Observers first: once the store has the completion, the key is free and the next
  // execution of it may start on another worker.
  for (const auto& o : observers_) {
    if (o.on_finish) o.on_finish(e, c);
  }
  // Recorded before this worker's next claim (complete_async orders it ahead); a remote store
  // does not hold the worker for its round trip.
  store_.complete_async(id, e.fence, c, [id](Status s) {
    if (!s.is_ok()) spdlog::error("exec {}: completion not recorded: {}", id, s.to_string());
  });
  if (options_.log_transitions) {
    std::string tail = c.message.empty() ? "" : ": " + c.message;
    if (c.retry) {
      spdlog::warn("exec {} [{}] running -> {} after {:.1f} ms{}; retry as attempt {} in {:.0f} s",
                   id, e.key(), exec_status_name(c.status),
                   std::chrono::duration<double, std::milli>(outcome.duration).count(), tail,
                   e.attempt + 1, std::chrono::duration<double>(c.retry_at - now).count());
    } else {
      auto level = c.status == ExecStatus::kSucceeded ? spdlog::level::info : spdlog::level::warn;
      spdlog::log(level, "exec {} [{}] running -> {} after {:.1f} ms{}", id, e.key(),
                  exec_status_name(c.status),
                  std::chrono::duration<double, std::milli>(outcome.duration).count(), tail);
    }
  }
}

void Dispatcher::wedge_loop_for_test(bool on) {
  std::lock_guard g(mu_);
  wedged_ = on;
  loop_cv_.notify_all();
}

void Dispatcher::stop(std::chrono::milliseconds grace) {
  {
    std::lock_guard g(mu_);
    if (!started_) return;
    stopping_ = true;
    loop_cv_.notify_all();
  }
  if (loop_thread_.joinable()) loop_thread_.join();
  std::unique_lock lock(mu_);
  // Every run is asked to stop at once; `grace` bounds the whole wait.
  const TimePoint now = clock_.now();
  for (auto& [id, r] : running_) request_stop_locked(r, ExecStatus::kInterrupted, now);
  if (!running_.empty()) {
    spdlog::info("stop requested of {} running executions; waiting up to {} ms", running_.size(),
                 grace.count());
    idle_cv_.wait_for(lock, grace, [&] { return running_.empty(); });
  }
  if (!running_.empty() && options_.on_grace_expired) {
    spdlog::warn("{} executions still running after the shutdown grace: ending them",
                 running_.size());
    lock.unlock();
    options_.on_grace_expired();
    lock.lock();
  }
  // Out of process, killed runners return at once; a second covers a loaded machine.
  idle_cv_.wait_for(lock, std::chrono::seconds(1), [&] { return running_.empty(); });
  std::vector<std::thread::id> stuck;
  for (auto& [id, r] : running_) {
    if (r.abandoned) continue;
    // An in-process run that will not return: record it as interrupted now (re-queued per
    // its retry policy) and leave its thread behind.
    r.abandoned = true;
    stuck.push_back(r.worker);
    RunOutcome outcome;
    outcome.status = RunStatus::kCancelled;
    Completion c = finish(r, outcome, clock_.now());
    c.message = "did not stop within the shutdown grace; left running as the daemon exited";
    spdlog::error("exec {} [{}]: {} (executor {} runs in process)", id, r.execution.key(),
                  c.message, r.execution.spec->executor);
    store_.complete_async(id, r.execution.fence, c, [id = id](Status s) {
      if (!s.is_ok()) spdlog::error("exec {}: completion not recorded: {}", id, s.to_string());
    });
  }
  workers_exit_ = true;
  for (auto& [name, lane] : lanes_) lane->cv.notify_all();
  lock.unlock();
  for (auto& [name, lane] : lanes_) {
    for (auto& t : lane->threads) {
      if (std::find(stuck.begin(), stuck.end(), t.get_id()) != stuck.end()) {
        t.detach();
      } else if (t.joinable()) {
        t.join();
      }
    }
    lane->threads.clear();
  }
  {
    std::lock_guard g(mu_);
    guard_exit_ = true;
    guard_cv_.notify_all();
  }
  if (guard_thread_.joinable()) guard_thread_.join();
  std::lock_guard g(mu_);
  started_ = false;
}

}  // namespace schedd
