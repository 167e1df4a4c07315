#include "core/store/memory_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <charconv>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <memory_resource>
#include <new>
#include <set>
#include <span>
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
//
// Compact planned executions (issue #19): a planned execution of a helper (first attempt,
// not_before = due, a key, no expiry) that is not its key's head is no Record but an Entry of
// 24 bytes (due, seq, created) in a Run: the key's compact executions of one template, by
// (due, seq). Its id (planned_id(name, due)) and every other field are derived from the run's
// template. Invariant: a key with compact entries has a Record head that orders before all of
// them; when the head leaves the queue, pull_head() makes the earliest entry a Record, so head
// placement, claim, expiry and the overlap rules only ever see Records. Compact entries are
// counted in their lane's `due` histogram like queued Records; `by_id` and `ids` hold Records
// only, and lookups by id fall back to find_compact() (the helper's runs, by due).
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

  struct Run;
  // The queued planned executions of one helper: its Records as an intrusive list, and its
  // runs of compact entries (remove_planned's and find_compact's index).
  struct NameState {
    Record* first = nullptr;
    std::vector<Run*> runs;
  };

  // A compact planned execution (see the top of this file).
  struct Entry {
    TimePoint due;
    uint64_t seq = 0;
    TimePoint created;
  };
  static bool entry_less(const Entry& a, const Entry& b) {
    return std::tie(a.due, a.seq) < std::tie(b.due, b.seq);
  }
  // One key's compact entries of one template; never empty (dropped when it empties).
  struct Run {
    std::shared_ptr<const ExecTemplate> spec;
    KeyState* key = nullptr;
    LaneState* lane = nullptr;
    NameState* name = nullptr;
    std::vector<Entry> entries;  // live from `begin`, by (due, seq)
    std::size_t begin = 0;

    bool empty() const { return begin == entries.size(); }
    const Entry& front() const { return entries[begin]; }
    std::span<const Entry> live() const { return std::span<const Entry>(entries).subspan(begin); }
  };
  // Where a compact entry is: entries[index] of `run`.
  struct CompactRef {
    Run* run = nullptr;
    std::size_t index = 0;
    explicit operator bool() const { return run != nullptr; }
  };

  // Orders helper names as the prefixes "name@" of their ids order, so that walking names in
  // this order walks the ids of names without '@' (the only ones with compact entries) in id
  // order: no such prefix is a prefix of another.
  struct ByIdPrefix {
    using is_transparent = void;
    static int at(std::string_view s, std::size_t i) {
      return i < s.size() ? static_cast<unsigned char>(s[i]) : '@';
    }
    bool operator()(std::string_view a, std::string_view b) const {
      const std::size_t la = a.size() + 1;
      const std::size_t lb = b.size() + 1;
      for (std::size_t i = 0; i < std::min(la, lb); ++i) {
        if (at(a, i) != at(b, i)) return at(a, i) < at(b, i);
      }
      return la < lb;
    }
    // An id (not a name) against a name's prefix: for upper_bound(RawId{id}).
    struct RawId {
      std::string_view id;
    };
    bool operator()(RawId a, std::string_view b) const {  // a.id < b + "@"
      const std::size_t lb = b.size() + 1;
      for (std::size_t i = 0; i < std::min(a.id.size(), lb); ++i) {
        const int x = static_cast<unsigned char>(a.id[i]);
        if (x != at(b, i)) return x < at(b, i);
      }
      return a.id.size() < lb;
    }
    bool operator()(std::string_view a, RawId b) const {  // a + "@" < b.id
      const std::size_t la = a.size() + 1;
      for (std::size_t i = 0; i < std::min(la, b.id.size()); ++i) {
        const int y = static_cast<unsigned char>(b.id[i]);
        if (at(a, i) != y) return at(a, i) < y;
      }
      return la < b.id.size();
    }
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
    bool replace_requested = false;          // reported the running one for overlap = replace
    std::vector<std::unique_ptr<Run>> runs;  // compact entries, all after the queue's first
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
  std::map<std::string, NameState, ByIdPrefix> names;   // every helper name seen; never erased
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
  // The largest N of a Record id "...@N" ever stored: planned_exists() skips the hash lookup
  // for a later second, which no Record can be (planning ahead, the usual case).
  int64_t record_epoch_max = std::numeric_limits<int64_t>::min();

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
    if (!ks->queue.empty() || ks->running != nullptr || !ks->runs.empty()) return;
    keys.erase(keys.find(*ks->name));
  }

  // 1-based position among the key's queued Records, walking from whichever end is nearer:
  // O(1) for the usual submission at the back. rank() counts compact entries too.
  static std::size_t rank_records(const Record* r) {
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
  // `counted`: it is in its lane's `due` histogram already (a compact entry made a Record).
  void enqueue(Record* r, bool counted = false) {
    KeyState& ks = *r->key;
    Record* old_head = ks.queue.empty() ? nullptr : *ks.queue.begin();
    r->queue_it = ks.queue.insert(ks.queue.end(), r);  // planned in due order: O(1)
    if (ks.queue.begin() == r->queue_it) {
      if (old_head != nullptr) unplace(old_head);
      place_head(ks);
    }
    if (counted) {
      r->due_it = r->lane->due.find(r->exec.not_before);
      assert(r->due_it != r->lane->due.end());
    } else {
      r->due_it = r->lane->due.try_emplace(r->exec.not_before, 0).first;
      ++r->due_it->second;
      if (r->exec.not_before <= watermark) add_due(*r->lane, 1);
    }
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
    // A new first record is placed by enqueue when pull_head makes one.
    if (was_head && !pull_head(ks) && !ks.queue.empty()) place_head(ks);
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
    note_record_id(r->exec.id);
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

  // ---- compact planned executions -----------------------------------------------------------

  static int64_t epoch_seconds(TimePoint t) {
    return std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
  }

  // Whether planned executions of `spec` under id prefix `name` may be kept compact: what an
  // Entry does not hold is the same for all of them (no expiry index, a key of their own).
  static bool compactable(const ExecTemplate& spec, std::string_view name) {
    return spec.origin == ExecOrigin::kHelper && !spec.key.empty() && !spec.expiry &&
           spec.name == name && name.find('@') == std::string_view::npos;
  }
  // Whether `e`, given to plan() or restore(), is exactly what an Entry derives.
  static bool compactable(const Execution& e) {
    return compactable(*e.spec, e.spec->name) && e.status == ExecStatus::kQueued &&
           e.attempt <= 1 && e.fence == 0 && e.not_before == e.due && !e.started && !e.finished &&
           e.message.empty() && e.output.empty() && e.node.empty() &&
           e.id.size() > e.spec->name.size() && e.id[e.spec->name.size()] == '@' &&
           e.id == planned_id(e.spec->name, e.due);
  }

  static Execution make_execution(const Run& run, const Entry& en) {
    Execution e;
    e.id = planned_id(run.spec->name, en.due);
    e.spec = run.spec;
    e.due = en.due;
    e.not_before = en.due;
    e.seq = en.seq;
    e.created = en.created;
    return e;
  }

  NameState& name_state(std::string_view name) {
    auto it = names.find(name);
    if (it == names.end()) it = names.try_emplace(std::string(name)).first;
    return it->second;
  }

  // The run of `ks` for template `spec`, made if there is none.
  Run& run_of(KeyState& ks, LaneState& lane, NameState& ns,
              const std::shared_ptr<const ExecTemplate>& spec) {
    for (auto& run : ks.runs) {
      if (run->spec == spec) return *run;
    }
    auto run = std::make_unique<Run>();
    run->spec = spec;
    run->key = &ks;
    run->lane = &lane;
    run->name = &ns;
    ns.runs.push_back(run.get());
    ks.runs.push_back(std::move(run));
    return *ks.runs.back();
  }

  void drop_run(Run* run) {
    auto& of_name = run->name->runs;
    of_name.erase(std::find(of_name.begin(), of_name.end(), run));
    auto& of_key = run->key->runs;
    of_key.erase(std::find_if(of_key.begin(), of_key.end(),
                              [run](const std::unique_ptr<Run>& p) { return p.get() == run; }));
  }

  // Takes entries[index] out of its run (dropping the run when it empties); the entry stays
  // counted in its lane's histogram.
  void erase_entry(Run* run, std::size_t index) {
    if (index == run->begin) {
      ++run->begin;
      // Claims take entries from the front: give the room back now and then.
      if (run->begin >= 64 && 2 * run->begin >= run->entries.size()) {
        run->entries.erase(run->entries.begin(),
                           run->entries.begin() + static_cast<std::ptrdiff_t>(run->begin));
        run->begin = 0;
      }
    } else {
      run->entries.erase(run->entries.begin() + static_cast<std::ptrdiff_t>(index));
    }
    if (run->empty()) drop_run(run);
  }

  // Takes a compact entry out of the lane's queued-and-due counting (remove_planned).
  void uncount(LaneState& lane, TimePoint due) {
    auto it = lane.due.find(due);
    assert(it != lane.due.end());
    if (--it->second == 0) lane.due.erase(it);
    if (due <= watermark) remove_due(lane, 1);
  }

  // The compact entry of helper `ns` named by second `epoch`, if any.
  static CompactRef find_compact(const NameState& ns, int64_t epoch) {
    // Beyond TimePoint's range (about ±292 years): no entry can be there.
    if (epoch < -9'000'000'000LL || epoch > 9'000'000'000LL) return {};
    const TimePoint from{std::chrono::seconds(epoch)};
    const TimePoint to = from + std::chrono::seconds(1);
    for (Run* run : ns.runs) {
      const auto live = run->live();
      auto p = std::lower_bound(live.begin(), live.end(), from,
                                [](const Entry& x, TimePoint t) { return x.due < t; });
      if (p != live.end() && p->due < to) {
        return CompactRef{run, run->begin + static_cast<std::size_t>(p - live.begin())};
      }
    }
    return {};
  }
  // The compact entry with id `id` ("name@epoch"), if any.
  CompactRef find_compact(std::string_view id) const {
    const std::size_t at = id.rfind('@');
    if (at == std::string_view::npos) return {};
    auto it = names.find(id.substr(0, at));
    if (it == names.end() || it->second.runs.empty()) return {};
    const std::string_view digits = id.substr(at + 1);
    int64_t epoch = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), epoch);
    if (ec != std::errc() || end != digits.data() + digits.size()) return {};
    if (fmt::format_int(epoch).str() != digits) return {};  // "name@007" is not "name@7"
    return find_compact(it->second, epoch);
  }

  // Whether helper `name` has an execution planned at `due` (its id taken), in any state.
  bool planned_exists(const NameState& ns, std::string_view name, TimePoint due) const {
    const int64_t epoch = epoch_seconds(due);
    if (epoch <= record_epoch_max) {
      fmt::memory_buffer id;
      fmt::format_to(std::back_inserter(id), "{}@{}", name, epoch);
      if (by_id.find(std::string_view(id.data(), id.size())) != by_id.end()) return true;
    }
    return static_cast<bool>(find_compact(ns, epoch));
  }
  // Called for every id that goes into `by_id`: keeps record_epoch_max.
  void note_record_id(std::string_view id) {
    const std::size_t at = id.rfind('@');
    if (at == std::string_view::npos) return;
    int64_t epoch = 0;
    auto [end, ec] = std::from_chars(id.data() + at + 1, id.data() + id.size(), epoch);
    if (ec == std::errc() && end == id.data() + id.size()) {
      record_epoch_max = std::max(record_epoch_max, epoch);
    }
  }

  // Makes a compact entry a Record in its key's queue (placed if it is the head).
  Record* materialize(CompactRef ref) {
    Run* run = ref.run;
    Execution e = make_execution(*run, run->entries[ref.index]);
    KeyState* ks = run->key;
    LaneState* lane = run->lane;
    erase_entry(run, ref.index);  // may drop the run
    Record* r = new_record(std::move(e));
    by_id.try_emplace(std::string_view(r->exec.id), r);  // a compact id is no Record's
    note_record_id(r->exec.id);
    r->ids_it = ids.emplace(std::string_view(r->exec.id), r).first;
    r->lane = lane;
    r->key = ks;
    enqueue(r, /*counted=*/true);
    return r;
  }

  // Keeps the invariant after the head left the queue: makes the earliest compact entry a
  // Record when it orders before the first Record (or there is none). Returns whether it did;
  // enqueue placed the new head then.
  bool pull_head(KeyState& ks) {
    Run* best = nullptr;
    for (auto& run : ks.runs) {
      if (best == nullptr || entry_less(run->front(), best->front())) best = run.get();
    }
    if (best == nullptr) return false;
    if (!ks.queue.empty()) {
      const Execution& first = (*ks.queue.begin())->exec;
      if (!entry_less(best->front(), Entry{first.due, first.seq, {}})) return false;
    }
    materialize(CompactRef{best, best->begin});
    return true;
  }

  // Plans helper `name`'s execution of `spec` at `due` unless its id is taken: compact when it
  // would not be its key's head, else a Record. Returns whether it planned. `run` caches the
  // run of (ks, spec) between calls of one batch.
  bool plan_one(NameState& ns, LaneState& lane, KeyState& ks, Run*& run, std::string_view name,
                const std::shared_ptr<const ExecTemplate>& spec, TimePoint due, TimePoint now,
                std::vector<Execution>* created_out) {
    if (planned_exists(ns, name, due)) return false;
    if (ks.queue.empty() || due < (*ks.queue.begin())->exec.due) {
      // Would be the head (a new seq orders after any record of the same due).
      Execution e;
      e.id = planned_id(name, due);
      e.spec = spec;
      e.due = due;
      e.not_before = due;
      Record* r = insert(std::move(e), now, ids.end());
      if (created_out != nullptr) created_out->push_back(r->exec);
      return true;
    }
    if (run == nullptr) run = &run_of(ks, lane, ns, spec);
    const Entry en{due, ++last_seq, now};
    if (run->empty() || entry_less(run->entries.back(), en)) {
      run->entries.push_back(en);
    } else {  // planned again before later ones (a schedule moved back): rare
      auto live = run->entries.begin() + static_cast<std::ptrdiff_t>(run->begin);
      run->entries.insert(std::upper_bound(live, run->entries.end(), en, entry_less), en);
    }
    ++lane.due.try_emplace(due, 0).first->second;
    if (due <= watermark) add_due(lane, 1);
    if (created_out != nullptr) created_out->push_back(make_execution(*run, en));
    return true;
  }

  // 1-based position of a queued execution (a Record or compact entry at (due, seq)) in key
  // `ks`'s queue: the Records and compact entries ordering before it, plus one.
  static std::size_t rank_in(const KeyState& ks, TimePoint due, uint64_t seq) {
    const Entry at{due, seq, {}};
    std::size_t before = 0;
    for (const Record* r : ks.queue) {
      if (!entry_less(Entry{r->exec.due, r->exec.seq, {}}, at)) break;
      ++before;
    }
    for (const auto& run : ks.runs) {
      const auto live = run->live();
      before += static_cast<std::size_t>(
          std::lower_bound(live.begin(), live.end(), at, entry_less) - live.begin());
    }
    return before + 1;
  }
  static std::size_t rank(const Record* r) {
    if (r->key->runs.empty()) return rank_records(r);
    return rank_in(*r->key, r->exec.due, r->exec.seq);
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
    if (st.find_compact(e.id)) continue;  // planned before: idempotent
    if (State::compactable(e)) {
      State::NameState& ns = st.name_state(e.spec->name);
      State::LaneState& lane = st.lane_state(e.spec->lane);
      State::KeyState& ks = st.key_state(e.spec->key);
      State::Run* run = nullptr;
      if (st.plan_one(ns, lane, ks, run, e.spec->name, e.spec, e.due, now, created_out)) {
        ++created;
      }
      continue;
    }
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

StatusOr<std::size_t> MemoryStore::plan_dues(const HelperState& seen, std::string_view name,
                                             const std::shared_ptr<const ExecTemplate>& spec,
                                             std::span<const TimePoint> dues, TimePoint now) {
  if (!spec)
    return invalid_argument(fmt::format("planned executions of {} have no template", name));
  if (!State::compactable(*spec, name)) return Store::plan_dues(seen, name, spec, dues, now);
  std::lock_guard lock(mu_);
  State& st = *state_;
  State::NameState& ns = st.name_state(name);
  State::LaneState& lane = st.lane_state(spec->lane);
  State::KeyState& ks = st.key_state(spec->key);
  State::Run* run = nullptr;
  std::size_t created = 0;
  bool reserved = false;
  for (std::size_t i = 0; i < dues.size(); ++i) {
    if (st.plan_one(ns, lane, ks, run, name, spec, dues[i], now, nullptr)) ++created;
    if (run != nullptr && !reserved) {  // one allocation for the batch, not one per doubling
      run->entries.reserve(run->entries.size() + dues.size() - i);
      reserved = true;
    }
  }
  st.drop_key_if_idle(&ks);
  return created;
}

StatusOr<std::pair<Execution, std::size_t>> MemoryStore::submit(Execution execution, TimePoint now,
                                                                std::size_t capacity_queued) {
  if (Status s = State::validate(execution); !s.is_ok()) return s;
  std::lock_guard lock(mu_);
  State& st = *state_;
  State::Record* old = st.find(execution.id);
  if (State::CompactRef c = old == nullptr ? st.find_compact(execution.id) : State::CompactRef{}) {
    const State::Entry& en = c.run->entries[c.index];
    return Status(StatusCode::kAlreadyExists,
                  fmt::format("execution {} already queued at position {}", execution.id,
                              State::rank_in(*c.run->key, en.due, en.seq)));
  }
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
  if (r == nullptr) {
    State::CompactRef c = st.find_compact(id);
    if (!c) return not_found(fmt::format("execution {} not found", id));
    r = st.materialize(c);  // queued, never the head
  }
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
  auto it = st.names.find(name);
  if (it == st.names.end()) return std::size_t{0};
  // Compact entries first, so that a head removed below pulls only entries that stay. A
  // run is ordered by due, so those after `due_after` are its tail.
  std::size_t compact = 0;
  const std::vector<State::Run*> runs = it->second.runs;  // copied: drop_run edits it
  for (State::Run* run : runs) {
    while (!run->empty() && run->entries.back().due > due_after) {
      const State::Entry en = run->entries.back();
      run->entries.pop_back();
      st.uncount(*run->lane, en.due);
      if (removed != nullptr) removed->push_back(planned_id(name, en.due));
      ++compact;
    }
    if (run->empty()) st.drop_run(run);  // its key keeps its Record head
  }
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
  return compact + victims.size();
}

std::optional<Execution> MemoryStore::get(std::string_view id) {
  std::lock_guard lock(mu_);
  const State::Record* r = state_->find(id);
  if (r != nullptr) return r->exec;
  if (State::CompactRef c = state_->find_compact(id)) {
    return State::make_execution(*c.run, c.run->entries[c.index]);
  }
  return std::nullopt;
}

std::vector<Execution> MemoryStore::list(const ExecutionFilter& filter) {
  std::lock_guard lock(mu_);
  const State& st = *state_;
  std::vector<Execution> out;
  if (filter.order == ExecutionFilter::Order::kDue) return list_by_due(filter);
  auto matches = [&filter](const Execution& e) {
    if (filter.status && e.status != *filter.status) return false;
    if (filter.name && e.spec->name != *filter.name) return false;
    if (filter.key && e.key() != *filter.key) return false;
    if (filter.lane && e.lane() != *filter.lane) return false;
    if (filter.priority && e.priority() != *filter.priority) return false;
    if (!filter.statuses.empty() && std::find(filter.statuses.begin(), filter.statuses.end(),
                                              e.status) == filter.statuses.end()) {
      return false;
    }
    if (filter.due_after && e.due <= *filter.due_after) return false;
    return true;
  };
  const std::string_view after(filter.after_id);
  auto it = after.empty() ? st.ids.begin() : st.ids.upper_bound(after);

  // Compact entries in id order, one helper name at a time (State::ByIdPrefix): the name
  // whose ids `after` is one of, if any, then every name whose prefix "name@" is after it.
  const bool queued_wanted =
      (!filter.status || *filter.status == ExecStatus::kQueued) &&
      (filter.statuses.empty() || std::find(filter.statuses.begin(), filter.statuses.end(),
                                            ExecStatus::kQueued) != filter.statuses.end());
  std::vector<const State::NameState*> names;  // the names still to walk, in reverse
  if (queued_wanted && filter.name) {
    if (auto n = st.names.find(std::string_view(*filter.name)); n != st.names.end()) {
      names.push_back(&n->second);
    }
  }
  auto next_name = st.names.end();
  if (queued_wanted && !filter.name) {
    next_name =
        after.empty() ? st.names.begin() : st.names.upper_bound(State::ByIdPrefix::RawId{after});
    if (const std::size_t at = after.find('@'); at != std::string_view::npos) {
      if (auto n = st.names.find(after.substr(0, at)); n != st.names.end()) {
        names.push_back(&n->second);
      }
    }
  }
  struct Item {
    std::string id;
    const State::Run* run;
    const State::Entry* entry;
  };
  std::vector<Item> chunk;  // the current name's entries after the cursor, in id order
  std::size_t pos = 0;
  auto load = [&](const State::NameState& ns) {
    chunk.clear();
    pos = 0;
    for (const State::Run* run : ns.runs) {
      const ExecTemplate& spec = *run->spec;
      if ((filter.key && spec.key != *filter.key) || (filter.lane && spec.lane != *filter.lane) ||
          (filter.priority && spec.priority != *filter.priority)) {
        continue;
      }
      for (const State::Entry& en : run->live()) {
        if (filter.due_after && en.due <= *filter.due_after) continue;
        std::string id = planned_id(spec.name, en.due);
        if (!after.empty() && id <= after) continue;
        chunk.push_back(Item{std::move(id), run, &en});
      }
    }
    std::sort(chunk.begin(), chunk.end(), [](const Item& a, const Item& b) { return a.id < b.id; });
  };
  auto have_compact = [&]() {
    while (pos == chunk.size()) {
      if (!names.empty()) {
        load(*names.back());
        names.pop_back();
      } else if (next_name != st.names.end()) {
        load(next_name->second);
        ++next_name;
      } else {
        return false;
      }
    }
    return true;
  };
  while (out.size() < filter.limit) {
    while (it != st.ids.end() && !matches(it->second->exec)) ++it;
    const bool compact = have_compact();
    if (it == st.ids.end() && !compact) break;
    if (it != st.ids.end() && (!compact || it->first < chunk[pos].id)) {
      out.push_back(it->second->exec);
      ++it;
    } else {
      out.push_back(State::make_execution(*chunk[pos].run, *chunk[pos].entry));
      ++pos;
    }
  }
  return out;
}

// Queued executions by (due, seq): a merge of the keys' queues, each already in that order,
// from the cursor on. Called with mu_ held.
std::vector<Execution> MemoryStore::list_by_due(const ExecutionFilter& filter) {
  const State& st = *state_;
  using It = State::KeyQueue::const_iterator;
  // One source per key queue and per run of compact entries, each in (due, seq) order.
  struct Head {
    It it, end;                       // a key's Records
    const State::Run* run = nullptr;  // or a run's entries [entry, last)
    const State::Entry* entry = nullptr;
    const State::Entry* last = nullptr;
    std::pair<TimePoint, uint64_t> at() const {
      if (run != nullptr) return {entry->due, entry->seq};
      return {(*it)->exec.due, (*it)->exec.seq};
    }
  };
  auto later = [](const Head& a, const Head& b) { return b.at() < a.at(); };  // a min-heap
  std::vector<Head> heads;
  // Start after the cursor, or after every execution due by `due_after`, whichever is later.
  std::optional<std::pair<TimePoint, uint64_t>> from = filter.after_due;
  if (filter.due_after) {
    const std::pair<TimePoint, uint64_t> bound{*filter.due_after,
                                               std::numeric_limits<uint64_t>::max()};
    if (!from || *from < bound) from = bound;
  }
  State::Record probe{Execution{}};
  State::Entry probe_entry{};
  if (from) {
    probe.exec.due = from->first;
    probe.exec.seq = from->second;
    probe_entry.due = from->first;
    probe_entry.seq = from->second;
  }
  auto add = [&](const State::KeyState& ks) {
    It it = from ? ks.queue.upper_bound(&probe) : ks.queue.begin();
    if (it != ks.queue.end()) heads.push_back(Head{it, ks.queue.end()});
    for (const auto& run : ks.runs) {
      const ExecTemplate& spec = *run->spec;
      if ((filter.name && spec.name != *filter.name) ||
          (filter.lane && spec.lane != *filter.lane) ||
          (filter.priority && spec.priority != *filter.priority)) {
        continue;
      }
      const auto live = run->live();
      auto first = from ? std::upper_bound(live.begin(), live.end(), probe_entry, State::entry_less)
                        : live.begin();
      if (first != live.end()) {
        heads.push_back(Head{{}, {}, run.get(), &*first, live.data() + live.size()});
      }
    }
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
    bool done = false;
    if (h.run != nullptr) {  // matches the filter (checked per run above)
      out.push_back(State::make_execution(*h.run, *h.entry));
      done = ++h.entry == h.last;
    } else {
      const Execution& e = (*h.it)->exec;
      const bool match = (!filter.name || e.spec->name == *filter.name) &&
                         (!filter.lane || e.lane() == *filter.lane) &&
                         (!filter.priority || e.priority() == *filter.priority);
      if (match) out.push_back(e);
      done = ++h.it == h.end;
    }
    if (done) {
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
  if (r == nullptr) {
    if (State::CompactRef c = state_->find_compact(id)) {
      const State::Entry& en = c.run->entries[c.index];
      return State::rank_in(*c.run->key, en.due, en.seq);
    }
    return std::nullopt;
  }
  if (r->exec.status != ExecStatus::kQueued) return std::nullopt;
  return State::rank(r);
}

std::vector<Execution> MemoryStore::key_queue(std::string_view key) {
  std::lock_guard lock(mu_);
  std::vector<Execution> out;
  auto it = state_->keys.find(std::string(key));
  if (it == state_->keys.end()) return out;
  const State::KeyState& ks = it->second;
  for (const State::Record* r : ks.queue) out.push_back(r->exec);
  for (const auto& run : ks.runs) {
    for (const State::Entry& en : run->live()) out.push_back(State::make_execution(*run, en));
  }
  if (!ks.runs.empty()) {
    std::sort(out.begin(), out.end(), [](const Execution& a, const Execution& b) {
      return std::tie(a.due, a.seq) < std::tie(b.due, b.seq);
    });
  }
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
    if (State::compactable(e)) {
      // Behind a queued Record of its key (they come in (due, seq) order): compact.
      State::KeyState& ks = st.key_state(e.spec->key);
      if (!ks.queue.empty()) {
        State::NameState& ns = st.name_state(e.spec->name);
        if (st.planned_exists(ns, e.spec->name, e.due)) {
          return invalid_argument(fmt::format("execution {} stored twice", e.id));
        }
        State::LaneState& lane = st.lane_state(e.spec->lane);
        State::Run& run = st.run_of(ks, lane, ns, e.spec);
        run.entries.push_back(State::Entry{e.due, e.seq, e.created});
        ++lane.due.try_emplace(e.due, 0).first->second;
        if (e.due <= st.watermark) st.add_due(lane, 1);
        st.last_seq = std::max(st.last_seq, e.seq);
        continue;
      }
    }
    if (st.find_compact(e.id))
      return invalid_argument(fmt::format("execution {} stored twice", e.id));
    State::Record* r = st.new_record(std::move(e));
    if (!st.by_id.try_emplace(std::string_view(r->exec.id), r).second) {
      std::string id = r->exec.id;
      st.free_record(r);
      return invalid_argument(fmt::format("execution {} stored twice", id));
    }
    st.note_record_id(r->exec.id);
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
