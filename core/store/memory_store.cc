#include "core/store/memory_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <memory_resource>
#include <new>
#include <set>
#include <tuple>
#include <unordered_map>
#include <utility>

namespace schedd {

// The indexes. Every execution lives in one Record, allocated from `pool` and owned through
// `by_id`; the other indexes hold Record pointers, which stay valid until the record is
// destroyed (pruned, removed, or replaced by a new submission of its id). Ordered indexes compare
// fields of the record, so a record leaves an index before any field that index orders by changes.
//
// Per key, `queue` holds its queued executions by (due, seq); the first is the head, the
// only one that may start. A head has exactly one slot:
//   - kPending: the key is free; in `pending`, by not_before. claim() promotes those whose
//     not_before has come to their lane's `ready`.
//   - kReady: the key is free and not_before has come; in `lanes[lane].ready`, by
//     (priority, due, seq). claim() pops from there.
//   - kWatch: the key is running an execution of the same helper and the head's overlap is
//     skip (or replace, not yet requested for this run); in `watch`, by not_before. claim()
//     skips it, or reports the running one for replacement, once not_before has come.
//   - kNone: the key is running and the head just waits for it.
// Not thread-safe: MemoryStore calls it under its mutex.
struct MemoryStore::State {
  struct Record;
  struct KeyState;
  struct LaneState;

  struct ByDueSeq {
    bool operator()(const Record* a, const Record* b) const {
      return std::tie(a->exec.due, a->exec.seq) < std::tie(b->exec.due, b->exec.seq);
    }
  };
  struct ByNotBefore {
    bool operator()(const Record* a, const Record* b) const {
      return std::tie(a->exec.not_before, a->exec.seq) < std::tie(b->exec.not_before, b->exec.seq);
    }
  };
  struct ByPriority {
    bool operator()(const Record* a, const Record* b) const {
      return std::make_tuple(a->exec.priority(), a->exec.due, a->exec.seq) <
             std::make_tuple(b->exec.priority(), b->exec.due, b->exec.seq);
    }
  };
  struct ByFinished {
    bool operator()(const Record* a, const Record* b) const {
      return std::tie(*a->exec.finished, a->exec.seq) < std::tie(*b->exec.finished, b->exec.seq);
    }
  };

  // Every node of every index, and every Record, comes from one pool: fewer calls to malloc
  // and better locality on the hot path. The pool keeps freed blocks for reuse.
  template <typename Compare>
  using RecordSet = std::pmr::set<Record*, Compare>;
  using KeyQueue = RecordSet<ByDueSeq>;
  using TimeSet = RecordSet<ByNotBefore>;
  using ReadySet = RecordSet<ByPriority>;
  // Time-bucketed indexes: many executions share an instant (every helper due on the minute),
  // so these maps have few entries and stay in cache. An expiry bucket is an intrusive list.
  using ExpiryIndex = std::pmr::map<TimePoint, Record*>;       // expires -> first of the bucket
  using DueHistogram = std::pmr::map<TimePoint, std::size_t>;  // not_before -> queued count
  using HistorySet = RecordSet<ByFinished>;
  using IdIndex = std::pmr::map<std::string_view, Record*>;

  enum class Slot : uint8_t { kNone, kPending, kReady, kWatch };

  // Links of an intrusive list through Records (see link() and unlink()).
  struct Links {
    Record* prev = nullptr;
    Record* next = nullptr;
  };

  // The queued planned executions of one helper, as an intrusive list: remove_planned's index.
  struct NameState {
    Record* first = nullptr;
  };

  struct Record {
    explicit Record(Execution e) : exec(std::move(e)) {}
    Execution exec;
    LaneState* lane = nullptr;
    KeyState* key = nullptr;    // while queued or running
    NameState* name = nullptr;  // while queued, for planned (kHelper) executions only
    Links list;                 // NameState's list while queued, `running_first`'s while running
    Links expiry_links;         // its expiry bucket's list while in_expiry
    Slot slot = Slot::kNone;    // heads only
    bool in_expiry = false;
    TimePoint expires_at{};             // valid while in_expiry
    IdIndex::iterator ids_it{};         // always valid
    KeyQueue::iterator queue_it{};      // valid while queued
    DueHistogram::iterator due_it{};    // valid while queued
    ExpiryIndex::iterator expiry_it{};  // valid while in_expiry
    HistorySet::iterator history_it{};  // valid while terminal
  };

  struct KeyState {
    explicit KeyState(std::pmr::memory_resource* pool) : queue(pool) {}
    const std::string* name = nullptr;  // the key of `keys` this state is stored under
    KeyQueue queue;
    Record* running = nullptr;
    bool replace_requested = false;  // reported the running one for overlap = replace
  };

  struct LaneState {
    explicit LaneState(std::pmr::memory_resource* pool) : ready(pool), due(pool) {}
    const std::string* name = nullptr;  // the key of `lanes`
    ReadySet ready;
    std::size_t running = 0;
    DueHistogram due;            // queued executions of the lane by not_before
    std::size_t queued_due = 0;  // of those, not_before <= watermark
  };

  // ---- storage ------------------------------------------------------------------------------

  std::pmr::unsynchronized_pool_resource pool;  // first: outlives everything allocated from it
  std::pmr::unordered_map<std::string_view, Record*> by_id{&pool};  // owns; views of exec.id
  IdIndex ids{&pool};                                               // list() order
  std::pmr::unordered_map<std::string, KeyState> keys{&pool};       // keys queued on or running
  std::map<std::string, LaneState, std::less<>> lanes;  // every lane ever seen; never erased
  std::unordered_map<std::string, NameState> names;     // every helper name seen; never erased
  TimeSet pending{&pool};
  TimeSet watch{&pool};
  ExpiryIndex expiry{&pool};               // queued first attempts with an expiry
  TimePoint watermark = TimePoint::min();  // queued_due counts not_before <= watermark
  std::size_t queued_due = 0;              // over all lanes
  Record* running_first = nullptr;         // running executions, linked through `list`
  // Terminal executions by status, each by finished: pruning per status (HistoryCutoffs)
  // walks only what it drops. A record's status does not change while it is in history.
  std::array<HistorySet, kExecStatusCount> history =
      make_histories(&pool, std::make_index_sequence<kExecStatusCount>{});
  std::map<std::string, HelperState, std::less<>> helper_states;
  uint64_t last_seq = 0;
  uint64_t last_fence = 0;

  template <std::size_t... I>
  static std::array<HistorySet, sizeof...(I)> make_histories(std::pmr::memory_resource* pool,
                                                             std::index_sequence<I...>) {
    return {{((void)I, HistorySet{pool})...}};
  }
  HistorySet& history_of(ExecStatus s) { return history[static_cast<std::size_t>(s)]; }
  // Puts a record that just became terminal into its status's history.
  void add_history(Record* r) {
    HistorySet& h = history_of(r->exec.status);
    r->history_it = h.insert(h.end(), r);  // finished mostly increases: O(1)
  }

  State() = default;
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  ~State() {
    for (auto& [id, r] : by_id) free_record(r);
  }

  Record* new_record(Execution e) {
    void* mem = pool.allocate(sizeof(Record), alignof(Record));
    return new (mem) Record(std::move(e));
  }
  void free_record(Record* r) {
    std::destroy_at(r);
    pool.deallocate(r, sizeof(Record), alignof(Record));
  }

  template <Links Record::*L>
  static void link(Record*& first, Record* r) {
    (r->*L).prev = nullptr;
    (r->*L).next = first;
    if (first != nullptr) (first->*L).prev = r;
    first = r;
  }
  template <Links Record::*L>
  static void unlink(Record*& first, Record* r) {
    Links& l = r->*L;
    (l.prev != nullptr ? (l.prev->*L).next : first) = l.next;
    if (l.next != nullptr) (l.next->*L).prev = l.prev;
    l = Links{};
  }

  // ---- lookups ------------------------------------------------------------------------------

  Record* find(std::string_view id) const {
    auto it = by_id.find(id);
    return it == by_id.end() ? nullptr : it->second;
  }

  LaneState& lane_state(const std::string& name) {
    auto it = lanes.find(name);
    if (it == lanes.end()) {
      it = lanes.try_emplace(name, &pool).first;
      it->second.name = &it->first;
    }
    return it->second;
  }

  KeyState& key_state(const std::string& name) {
    auto [it, inserted] = keys.try_emplace(name, &pool);
    if (inserted) it->second.name = &it->first;
    return it->second;
  }

  void drop_key_if_idle(KeyState* ks) {
    if (!ks->queue.empty() || ks->running != nullptr) return;
    keys.erase(keys.find(*ks->name));
  }

  // 1-based position in the key's queue, walking from whichever end is nearer: O(1) for the
  // usual submission at the back.
  static std::size_t rank(const Record* r) {
    const KeyQueue& q = r->key->queue;
    auto front = q.begin();
    auto back = q.end();
    std::size_t from_front = 1;
    std::size_t from_back = 0;
    while (true) {
      if (front == r->queue_it) return from_front;
      --back;
      ++from_back;
      if (back == r->queue_it) return q.size() - from_back + 1;
      ++front;
      ++from_front;
    }
  }

  // ---- head placement -----------------------------------------------------------------------

  void unplace(Record* r) {
    switch (r->slot) {
      case Slot::kNone:
        return;
      case Slot::kPending:
        pending.erase(r);
        break;
      case Slot::kReady:
        r->lane->ready.erase(r);
        break;
      case Slot::kWatch:
        watch.erase(r);
        break;
    }
    r->slot = Slot::kNone;
  }

  static bool watches(const KeyState& ks, const Record& head) {
    const ExecTemplate& spec = *head.exec.spec;
    // Overlap applies to new runs only; a retry continues its execution.
    if (head.exec.attempt != 1) return false;
    bool applies = spec.overlap == OverlapPolicy::kSkip ||
                   (spec.overlap == OverlapPolicy::kReplace && !ks.replace_requested);
    return applies && ks.running->exec.spec->name == spec.name;
  }

  // Places the head of a non-empty key queue; the head must be unplaced.
  void place_head(KeyState& ks) {
    Record* head = *ks.queue.begin();
    assert(head->slot == Slot::kNone);  // callers unplace the previous head first
    if (ks.running == nullptr) {
      pending.insert(head);
      head->slot = Slot::kPending;
    } else if (watches(ks, *head)) {
      watch.insert(head);
      head->slot = Slot::kWatch;
    }
  }

  void reseat_head(KeyState& ks) {
    if (ks.queue.empty()) return;
    unplace(*ks.queue.begin());
    place_head(ks);
  }

  // ---- queued-and-due counting --------------------------------------------------------------

  void add_due(LaneState& lane, std::size_t n) {
    lane.queued_due += n;
    queued_due += n;
  }
  void remove_due(LaneState& lane, std::size_t n) {
    lane.queued_due -= n;
    queued_due -= n;
  }

  // Moves the watermark to `now`, walking each lane's histogram between the old watermark and
  // `now`: amortized O(1) per distinct not_before for a clock that moves forward.
  void advance(TimePoint now) {
    for (auto& [name, lane] : lanes) {
      auto it = lane.due.upper_bound(watermark);  // first not_before > watermark
      if (now > watermark) {
        for (; it != lane.due.end() && it->first <= now; ++it) add_due(lane, it->second);
      } else {
        while (it != lane.due.begin() && std::prev(it)->first > now) {
          --it;
          remove_due(lane, it->second);
        }
      }
    }
    watermark = now;
  }

  // ---- queue membership ---------------------------------------------------------------------

  // Adds a record (status kQueued; lane and key set) to its key's queue and the indexes.
  void enqueue(Record* r) {
    KeyState& ks = *r->key;
    Record* old_head = ks.queue.empty() ? nullptr : *ks.queue.begin();
    r->queue_it = ks.queue.insert(ks.queue.end(), r);  // planned in due order: O(1)
    if (ks.queue.begin() == r->queue_it) {
      if (old_head != nullptr) unplace(old_head);
      place_head(ks);
    }
    r->due_it = r->lane->due.try_emplace(r->exec.not_before, 0).first;
    ++r->due_it->second;
    if (r->exec.not_before <= watermark) add_due(*r->lane, 1);
    if (r->exec.attempt == 1 && r->exec.spec->expiry) {
      // Capped, not wrapped, for a due near the end of TimePoint (2262): the API refuses
      // such a pair, but a store must not index a wrapped instant whatever it is given.
      r->expires_at = add_capped(r->exec.due, *r->exec.spec->expiry);
      r->expiry_it = expiry.try_emplace(r->expires_at, nullptr).first;
      link<&Record::expiry_links>(r->expiry_it->second, r);
      r->in_expiry = true;
    }
    if (r->exec.spec->origin == ExecOrigin::kHelper) {
      if (r->name == nullptr) r->name = &names[r->exec.spec->name];
      link<&Record::list>(r->name->first, r);
    }
  }

  // Takes a queued record out of its key's queue and every queued index; the next head, if
  // the record was the head, is placed. The record keeps its key pointer.
  void dequeue(Record* r) {
    KeyState& ks = *r->key;
    bool was_head = ks.queue.begin() == r->queue_it;
    unplace(r);
    ks.queue.erase(r->queue_it);
    if (--r->due_it->second == 0) r->lane->due.erase(r->due_it);
    if (r->exec.not_before <= watermark) remove_due(*r->lane, 1);
    if (r->in_expiry) {
      unlink<&Record::expiry_links>(r->expiry_it->second, r);
      if (r->expiry_it->second == nullptr) expiry.erase(r->expiry_it);
      r->in_expiry = false;
    }
    if (r->name != nullptr) unlink<&Record::list>(r->name->first, r);
    if (was_head && !ks.queue.empty()) place_head(ks);
  }

  // Queued -> a terminal status at `now`.
  Execution finish_queued(Record* r, ExecStatus status, TimePoint now, std::string message) {
    KeyState* ks = r->key;
    dequeue(r);
    r->key = nullptr;
    r->exec.status = status;
    r->exec.finished = now;
    r->exec.message = std::move(message);
    add_history(r);
    drop_key_if_idle(ks);
    return r->exec;
  }

  // Running -> not running: frees the key and places its head.
  void release(Record* r) {
    KeyState& ks = *r->key;
    ks.running = nullptr;
    ks.replace_requested = false;
    --r->lane->running;
    unlink<&Record::list>(running_first, r);
    reseat_head(ks);
  }

  // Running -> terminal (r released already).
  void finish_released(Record* r) {
    KeyState* ks = r->key;
    r->key = nullptr;
    add_history(r);
    drop_key_if_idle(ks);
  }

  // Running -> queued as the next attempt (r released already). Same due and seq, so it
  // keeps its place in the key's queue.
  void requeue(Record* r, TimePoint not_before) {
    r->exec.status = ExecStatus::kQueued;
    r->exec.attempt += 1;
    r->exec.not_before = not_before;
    r->exec.started.reset();
    r->exec.finished.reset();
    r->exec.node.clear();
    enqueue(r);
  }

  // Takes a terminal or just-dequeued record out of storage and frees it.
  void destroy(Record* r) {
    if (is_terminal(r->exec.status)) history_of(r->exec.status).erase(r->history_it);
    ids.erase(r->ids_it);
    by_id.erase(by_id.find(r->exec.id));
    free_record(r);
  }

  // Stores a new queued execution, unless its id is taken: then nullptr and nothing changes.
  // `hint`: where in `ids` it probably goes (see plan()).
  Record* insert(Execution execution, TimePoint now, IdIndex::iterator hint) {
    Record* r = new_record(std::move(execution));
    // One hash lookup on the planning path: the record is built first, for its id to key on.
    if (!by_id.try_emplace(std::string_view(r->exec.id), r).second) {
      free_record(r);
      return nullptr;
    }
    Execution& e = r->exec;
    e.seq = ++last_seq;
    e.created = now;
    e.status = ExecStatus::kQueued;
    e.fence = 0;
    e.started.reset();
    e.finished.reset();
    if (e.attempt == 0) e.attempt = 1;
    r->ids_it = ids.emplace_hint(hint, std::string_view(r->exec.id), r);
    r->lane = &lane_state(r->exec.lane());
    r->key = &key_state(r->exec.key());
    enqueue(r);
    return r;
  }

  static Status validate(const Execution& e) {
    if (e.id.empty()) return invalid_argument("execution without an id");
    if (!e.spec) return invalid_argument(fmt::format("execution {} has no template", e.id));
    return Status::ok();
  }

  // ---- claim steps --------------------------------------------------------------------------

  void expire(TimePoint now, std::vector<Execution>& out) {
    while (!expiry.empty() && expiry.begin()->first <= now) {
      Record* r = expiry.begin()->second;
      out.push_back(finish_queued(r, ExecStatus::kExpired, now, "not started by due + expiry"));
    }
  }

  void apply_overlap(TimePoint now, ClaimResult& out) {
    while (!watch.empty() && (*watch.begin())->exec.not_before <= now) {
      Record* r = *watch.begin();
      watch.erase(watch.begin());
      r->slot = Slot::kNone;
      KeyState& ks = *r->key;
      if (r->exec.spec->overlap == OverlapPolicy::kSkip) {
        // The next head, if any, is placed by dequeue and handled by this same loop.
        out.skipped.push_back(
            finish_queued(r, ExecStatus::kSkipped, now,
                          fmt::format("skipped: {} was still running", ks.running->exec.id)));
      } else {
        ks.replace_requested = true;
        out.replace.push_back(ks.running->exec.id);
      }
    }
  }

  // Moves heads whose not_before is at or before `now` to their lane's ready set. Returns
  // the instant to claim at: `now`, or a later instant an earlier call promoted with. Callers
  // read the clock before they take the lock, so a claim can arrive with an older `now` than
  // a next_event that already made heads ready; claiming those at the older `now` would start
  // them "before" their not_before. The store's time never goes back.
  TimePoint promote(TimePoint now) {
    now = observe(now);
    while (!pending.empty() && (*pending.begin())->exec.not_before <= now) {
      Record* r = *pending.begin();
      pending.erase(pending.begin());
      r->lane->ready.insert(r);
      r->slot = Slot::kReady;
    }
    return now;
  }
  // The later of `now` and every instant observed before.
  TimePoint observe(TimePoint now) {
    if (now < promoted_until) return promoted_until;
    promoted_until = now;
    return now;
  }
  TimePoint promoted_until{};  // the latest `now` promote() saw

  void start(Record* r, TimePoint now, std::string_view node) {
    KeyState& ks = *r->key;
    ks.running = r;  // before dequeue, so the next head is placed behind a running key
    dequeue(r);
    r->exec.status = ExecStatus::kRunning;
    r->exec.started = now;
    r->exec.fence = ++last_fence;
    r->exec.node = std::string(node);
    ++r->lane->running;
    link<&Record::list>(running_first, r);
  }
};

MemoryStore::MemoryStore() : state_(std::make_unique<State>()) {}
MemoryStore::~MemoryStore() = default;

StatusOr<std::size_t> MemoryStore::plan(std::vector<Execution> executions, TimePoint now) {
  return plan(std::move(executions), now, nullptr);
}

StatusOr<std::size_t> MemoryStore::plan(std::vector<Execution> executions, TimePoint now,
                                        std::vector<Execution>* created_out) {
  for (const auto& e : executions) {
    if (Status s = State::validate(e); !s.is_ok()) return s;
  }
  std::lock_guard lock(mu_);
  State& st = *state_;
  std::size_t created = 0;
  // A planner's batch comes helper by helper in due order, so its ids ("name@epoch") mostly
  // ascend: each goes right after the one before, an O(1) insertion into `ids`.
  auto hint = st.ids.end();
  // One rehash for a large batch instead of several; growth stays geometric for small ones.
  if (std::size_t needed = st.by_id.size() + executions.size();
      needed > st.by_id.bucket_count() * st.by_id.max_load_factor()) {
    st.by_id.reserve(std::max(needed, 2 * st.by_id.size()));
  }
  for (auto& e : executions) {
    // The planner records catch-up decisions (skipped) as planned executions that are
    // terminal from the start.
    const ExecStatus preset = e.status;
    std::string message = is_terminal(preset) ? e.message : std::string();
    State::Record* r = st.insert(std::move(e), now, hint);
    if (r == nullptr) continue;  // planned before: idempotent
    hint = std::next(r->ids_it);
    ++created;
    if (is_terminal(preset)) st.finish_queued(r, preset, now, std::move(message));
    if (created_out != nullptr) created_out->push_back(r->exec);
  }
  return created;
}

StatusOr<std::pair<Execution, std::size_t>> MemoryStore::submit(Execution execution, TimePoint now,
                                                                std::size_t capacity_queued) {
  if (Status s = State::validate(execution); !s.is_ok()) return s;
  std::lock_guard lock(mu_);
  State& st = *state_;
  State::Record* old = st.find(execution.id);
  if (old != nullptr && old->exec.status == ExecStatus::kQueued) {
    return Status(
        StatusCode::kAlreadyExists,
        fmt::format("execution {} already queued at position {}", execution.id, State::rank(old)));
  }
  if (old != nullptr && old->exec.status == ExecStatus::kRunning) {
    return Status(StatusCode::kAlreadyExists,
                  fmt::format("execution {} already running", execution.id));
  }
  st.advance(now);
  if (st.queued_due >= capacity_queued) {
    return Status(
        StatusCode::kResourceExhausted,
        fmt::format("queue full: {} queued of capacity {}", st.queued_due, capacity_queued));
  }
  if (old != nullptr) st.destroy(old);  // terminal: the new submission takes its id
  State::Record* r = st.insert(std::move(execution), now, st.ids.end());  // id free by now
  return std::make_pair(r->exec, State::rank(r));
}

StatusOr<ClaimResult> MemoryStore::claim(std::string_view lane, std::size_t max, TimePoint now,
                                         std::string_view node) {
  std::lock_guard lock(mu_);
  State& st = *state_;
  ClaimResult out;
  now = st.observe(now);  // see promote(): never earlier than an instant already promoted
  if (lease_) out.lease_until = now + *lease_;
  st.expire(now, out.expired);
  st.apply_overlap(now, out);
  st.promote(now);
  auto lane_it = st.lanes.find(lane);
  if (lane_it != st.lanes.end()) {
    State::ReadySet& ready = lane_it->second.ready;
    while (out.claimed.size() < max && !ready.empty()) {
      State::Record* r = *ready.begin();
      ready.erase(ready.begin());
      r->slot = State::Slot::kNone;
      st.start(r, now, node);
      out.claimed.push_back(r->exec);
    }
  }
  // The runs just started may have made due skip/replace heads of their keys.
  st.apply_overlap(now, out);
  return out;
}

Status MemoryStore::complete(std::string_view id, uint64_t fence, const Completion& c) {
  return complete(id, fence, c, nullptr);
}

Status MemoryStore::complete(std::string_view id, uint64_t fence, const Completion& c,
                             Execution* after) {
  if (!is_terminal(c.status)) {
    return invalid_argument(fmt::format("execution {}: completion with non-terminal status {}", id,
                                        exec_status_name(c.status)));
  }
  std::lock_guard lock(mu_);
  State& st = *state_;
  State::Record* r = st.find(id);
  if (r == nullptr) return not_found(fmt::format("execution {} not found", id));
  if (r->exec.status != ExecStatus::kRunning || r->exec.fence != fence) {
    return failed_precondition(
        fmt::format("execution {} is not running under fence {} (it is {}, fence {})", id, fence,
                    exec_status_name(r->exec.status), r->exec.fence));
  }
  st.release(r);
  r->exec.message = c.message;
  r->exec.output = c.output;
  if (c.retry) {
    st.requeue(r, c.retry_at);
  } else {
    r->exec.status = c.status;
    r->exec.finished = c.finished;
    st.finish_released(r);
  }
  if (after != nullptr) *after = r->exec;
  return Status::ok();
}

std::optional<TimePoint> MemoryStore::next_event(TimePoint now) {
  std::lock_guard lock(mu_);
  State& st = *state_;
  // Heads already ready are not events (a completion frees the worker they wait for): move
  // them out of `pending` so that its first entry is the next one to become ready.
  now = st.promote(now);
  std::optional<TimePoint> next;
  auto consider = [&next](TimePoint t) {
    if (!next || t < *next) next = t;
  };
  if (!st.pending.empty()) consider((*st.pending.begin())->exec.not_before);
  for (const State::Record* r : st.watch) {
    if (r->exec.not_before > now) {
      consider(r->exec.not_before);
      break;
    }
  }
  if (auto it = st.expiry.upper_bound(now); it != st.expiry.end()) consider(it->first);
  return next;
}

StatusOr<Execution> MemoryStore::cancel(std::string_view id, TimePoint now) {
  std::lock_guard lock(mu_);
  State& st = *state_;
  State::Record* r = st.find(id);
  if (r == nullptr) return not_found(fmt::format("execution {} not found", id));
  switch (r->exec.status) {
    case ExecStatus::kQueued:
      return st.finish_queued(r, ExecStatus::kCancelled, now, "cancelled while queued");
    case ExecStatus::kRunning:
      return failed_precondition(
          fmt::format("execution {} is running; request a stop to cancel it", id));
    default:
      return Status(StatusCode::kAlreadyExists,
                    fmt::format("execution {} already {}", id, exec_status_name(r->exec.status)));
  }
}

StatusOr<std::size_t> MemoryStore::remove_planned(std::string_view name, TimePoint due_after) {
  return remove_planned(name, due_after, nullptr);
}

StatusOr<std::size_t> MemoryStore::remove_planned(std::string_view name, TimePoint due_after,
                                                  std::vector<std::string>* removed) {
  std::lock_guard lock(mu_);
  State& st = *state_;
  auto it = st.names.find(std::string(name));
  if (it == st.names.end()) return std::size_t{0};
  std::vector<State::Record*> victims;  // collected first: dequeue unlinks them
  for (State::Record* r = it->second.first; r != nullptr; r = r->list.next) {
    if (r->exec.due > due_after) victims.push_back(r);
  }
  for (State::Record* r : victims) {
    State::KeyState* ks = r->key;
    st.dequeue(r);
    r->key = nullptr;
    st.drop_key_if_idle(ks);
    if (removed != nullptr) removed->push_back(r->exec.id);
    st.destroy(r);
  }
  return victims.size();
}

std::optional<Execution> MemoryStore::get(std::string_view id) {
  std::lock_guard lock(mu_);
  const State::Record* r = state_->find(id);
  if (r == nullptr) return std::nullopt;
  return r->exec;
}

std::vector<Execution> MemoryStore::list(const ExecutionFilter& filter) {
  std::lock_guard lock(mu_);
  const State& st = *state_;
  std::vector<Execution> out;
  if (filter.order == ExecutionFilter::Order::kDue) return list_by_due(filter);
  auto it = filter.after_id.empty() ? st.ids.begin()
                                    : st.ids.upper_bound(std::string_view(filter.after_id));
  for (; it != st.ids.end() && out.size() < filter.limit; ++it) {
    const Execution& e = it->second->exec;
    if (filter.status && e.status != *filter.status) continue;
    if (filter.name && e.spec->name != *filter.name) continue;
    if (filter.key && e.key() != *filter.key) continue;
    if (filter.lane && e.lane() != *filter.lane) continue;
    if (filter.priority && e.priority() != *filter.priority) continue;
    if (!filter.statuses.empty() && std::find(filter.statuses.begin(), filter.statuses.end(),
                                              e.status) == filter.statuses.end()) {
      continue;
    }
    if (filter.due_after && e.due <= *filter.due_after) continue;
    out.push_back(e);
  }
  return out;
}

// Queued executions by (due, seq): a merge of the keys' queues, each already in that order,
// from the cursor on. Called with mu_ held.
std::vector<Execution> MemoryStore::list_by_due(const ExecutionFilter& filter) {
  const State& st = *state_;
  using It = State::KeyQueue::const_iterator;
  struct Head {
    It it, end;
  };
  auto later = [](const Head& a, const Head& b) {  // a min-heap on (due, seq)
    return State::ByDueSeq()(*b.it, *a.it);
  };
  std::vector<Head> heads;
  // Start after the cursor, or after every execution due by `due_after`, whichever is later.
  std::optional<std::pair<TimePoint, uint64_t>> from = filter.after_due;
  if (filter.due_after) {
    const std::pair<TimePoint, uint64_t> bound{*filter.due_after,
                                               std::numeric_limits<uint64_t>::max()};
    if (!from || *from < bound) from = bound;
  }
  State::Record probe{Execution{}};
  if (from) {
    probe.exec.due = from->first;
    probe.exec.seq = from->second;
  }
  auto add = [&](const State::KeyState& ks) {
    It it = from ? ks.queue.upper_bound(&probe) : ks.queue.begin();
    if (it != ks.queue.end()) heads.push_back(Head{it, ks.queue.end()});
  };
  if (filter.key) {
    if (auto k = st.keys.find(*filter.key); k != st.keys.end()) add(k->second);
  } else {
    heads.reserve(st.keys.size());
    for (const auto& [name, ks] : st.keys) add(ks);
  }
  std::make_heap(heads.begin(), heads.end(), later);
  std::vector<Execution> out;
  while (!heads.empty() && out.size() < filter.limit) {
    std::pop_heap(heads.begin(), heads.end(), later);
    Head& h = heads.back();
    const Execution& e = (*h.it)->exec;
    const bool match = (!filter.name || e.spec->name == *filter.name) &&
                       (!filter.lane || e.lane() == *filter.lane) &&
                       (!filter.priority || e.priority() == *filter.priority);
    if (match) out.push_back(e);
    if (++h.it == h.end) {
      heads.pop_back();
    } else {
      std::push_heap(heads.begin(), heads.end(), later);
    }
  }
  return out;
}

std::optional<std::size_t> MemoryStore::position(std::string_view id) {
  std::lock_guard lock(mu_);
  const State::Record* r = state_->find(id);
  if (r == nullptr || r->exec.status != ExecStatus::kQueued) return std::nullopt;
  return State::rank(r);
}

std::vector<Execution> MemoryStore::key_queue(std::string_view key) {
  std::lock_guard lock(mu_);
  std::vector<Execution> out;
  auto it = state_->keys.find(std::string(key));
  if (it == state_->keys.end()) return out;
  out.reserve(it->second.queue.size());
  for (const State::Record* r : it->second.queue) out.push_back(r->exec);
  return out;
}

std::size_t MemoryStore::prune_history(const HistoryCutoffs& cutoffs) {
  return prune_history(cutoffs, nullptr);
}

std::size_t MemoryStore::prune_history(const HistoryCutoffs& cutoffs,
                                       std::vector<std::string>* pruned_ids) {
  std::lock_guard lock(mu_);
  State& st = *state_;
  std::size_t pruned = 0;
  for (ExecStatus s : kTerminalStatuses) {
    const TimePoint before = cutoffs.before(s);
    State::HistorySet& h = st.history_of(s);
    while (!h.empty() && *(*h.begin())->exec.finished < before) {
      if (pruned_ids != nullptr) pruned_ids->push_back((*h.begin())->exec.id);
      st.destroy(*h.begin());
      ++pruned;
    }
  }
  return pruned;
}

std::vector<LaneCounts> MemoryStore::counts(TimePoint now) {
  std::lock_guard lock(mu_);
  State& st = *state_;
  st.advance(now);
  std::vector<LaneCounts> out;
  out.reserve(st.lanes.size());
  for (const auto& [name, lane] : st.lanes) {
    out.push_back(LaneCounts{name, lane.running, lane.queued_due});
  }
  return out;
}

std::optional<HelperState> MemoryStore::helper_state(std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = state_->helper_states.find(name);
  if (it == state_->helper_states.end()) return std::nullopt;
  return it->second;
}

Status MemoryStore::put_helper_state(const HelperState& state) {
  if (state.name.empty()) return invalid_argument("helper state without a helper name");
  std::lock_guard lock(mu_);
  state_->helper_states.insert_or_assign(state.name, state);
  return Status::ok();
}

std::vector<Execution> MemoryStore::recover(TimePoint now) { return recover(now, nullptr); }

std::vector<Execution> MemoryStore::recover(TimePoint now, std::vector<Execution>* after) {
  std::lock_guard lock(mu_);
  State& st = *state_;
  std::vector<State::Record*> interrupted;  // collected first: release unlinks them
  for (State::Record* r = st.running_first; r != nullptr; r = r->list.next) {
    interrupted.push_back(r);
  }
  std::sort(
      interrupted.begin(), interrupted.end(),
      [](const State::Record* a, const State::Record* b) { return a->exec.seq < b->exec.seq; });
  std::vector<Execution> out;
  out.reserve(interrupted.size());
  for (State::Record* r : interrupted) {
    out.push_back(r->exec);
    st.release(r);
    std::string message =
        fmt::format("attempt {} interrupted: its daemon stopped while it ran", r->exec.attempt);
    r->exec.message = std::move(message);
    if (r->exec.spec->max_attempts > r->exec.attempt) {
      st.requeue(r, now);
    } else {
      r->exec.status = ExecStatus::kInterrupted;
      r->exec.finished = now;
      st.finish_released(r);
    }
    if (after != nullptr) after->push_back(r->exec);
  }
  return out;
}

Status MemoryStore::restore(std::vector<Execution> executions, std::vector<HelperState> states) {
  for (const auto& e : executions) {
    if (Status s = State::validate(e); !s.is_ok()) return s;
  }
  std::lock_guard lock(mu_);
  State& st = *state_;
  if (!st.by_id.empty() || !st.helper_states.empty()) {
    return failed_precondition("restore into a store that is not empty");
  }
  // Running first (they hold their keys), then queued in (due, seq) order, so that each
  // record goes to the back of its key queue, then history in finish order.
  auto rank = [](const Execution& e) {
    return e.status == ExecStatus::kRunning ? 0 : e.status == ExecStatus::kQueued ? 1 : 2;
  };
  std::sort(executions.begin(), executions.end(), [&](const Execution& a, const Execution& b) {
    int ra = rank(a);
    int rb = rank(b);
    if (ra != rb) return ra < rb;
    if (ra == 2) return std::tie(*a.finished, a.seq) < std::tie(*b.finished, b.seq);
    return std::tie(a.due, a.seq) < std::tie(b.due, b.seq);
  });
  st.by_id.reserve(executions.size());
  for (auto& e : executions) {
    if (is_terminal(e.status) && !e.finished) e.finished = e.created;
    State::Record* r = st.new_record(std::move(e));
    if (!st.by_id.try_emplace(std::string_view(r->exec.id), r).second) {
      std::string id = r->exec.id;
      st.free_record(r);
      return invalid_argument(fmt::format("execution {} stored twice", id));
    }
    const Execution& x = r->exec;
    st.last_seq = std::max(st.last_seq, x.seq);
    st.last_fence = std::max(st.last_fence, x.fence);
    r->ids_it = st.ids.emplace(std::string_view(x.id), r).first;
    r->lane = &st.lane_state(x.lane());
    if (x.status == ExecStatus::kRunning) {
      r->key = &st.key_state(x.key());
      if (r->key->running != nullptr) {
        return invalid_argument(fmt::format("executions {} and {} both running on key {}",
                                            r->key->running->exec.id, x.id, x.key()));
      }
      r->key->running = r;
      ++r->lane->running;
      State::link<&State::Record::list>(st.running_first, r);
    } else if (x.status == ExecStatus::kQueued) {
      r->key = &st.key_state(x.key());
      st.enqueue(r);
    } else {
      st.add_history(r);
    }
  }
  for (auto& h : states) {
    std::string name = h.name;
    st.helper_states.insert_or_assign(std::move(name), std::move(h));
  }
  return Status::ok();
}

}  // namespace schedd
