#include "core/store/redis_store.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <span>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "core/common/thread_name.h"
#include "core/store/codec.h"
#include "core/store/redis_client.h"
#include "core/store/redis_scripts.h"

namespace schedd {
namespace {

using redis_lua::ScriptId;

int64_t to_us(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}
std::string ns_str(TimePoint t) { return std::to_string(codec::to_ns(t)); }
std::string us_str(TimePoint t) { return std::to_string(to_us(t)); }

int64_t parse_i64(const std::string& s) {
  int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

std::string fnv1a_hex(std::string_view s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return fmt::format("{:016x}", h);
}

// A template id of a shape (docs/redis.md): the template of a ticket or ad-hoc submission
// without its name and params, which its execution hash keeps ('name', 'pa'). Ids of whole
// templates are 16 hex digits.
bool is_shape_id(std::string_view tid) { return tid.starts_with('s'); }

// The value of a string or integer reply as text.
std::string text(const RedisValue& v) {
  return v.type == RedisValue::Type::kInteger ? std::to_string(v.integer) : v.str;
}

Status script_error(const char* script, const RedisValue& v) {
  return internal_error(fmt::format("redis script {}: {}", script, v.str));
}

// OK when a script's reply `r` is an array of at least `n` elements, so that its elements can
// be read by index; otherwise a decode error naming the script (never std::out_of_range from
// a malformed reply: another version's script, a proxy, a fuzzer).
Status reply_has(const RedisValue& r, std::size_t n, std::string_view script) {
  if (r.type == RedisValue::Type::kArray && r.elements.size() >= n) return Status::ok();
  return internal_error(fmt::format(
      "redis: malformed reply to {}: {} where an array of at least {} elements belongs", script,
      r.type == RedisValue::Type::kArray ? fmt::format("{} elements", r.elements.size())
                                         : std::string("not an array"),
      n));
}

// An execution's fields as the scripts answer them: an HGETALL array (name, value, ...), or,
// with `names`, the values of those fields in that order (the claim's positional reply).
struct Fields {
  const RedisValue& h;
  std::span<const std::string_view> names;
  std::size_t size() const {
    return names.empty() ? h.elements.size() / 2 : std::min(names.size(), h.elements.size());
  }
  std::string_view name(std::size_t i) const {
    return names.empty() ? std::string_view(h.elements[2 * i].str) : names[i];
  }
  const RedisValue& value(std::size_t i) const {
    return names.empty() ? h.elements[2 * i + 1] : h.elements[i];
  }
};

}  // namespace

StatusOr<Execution> decode_execution(const RedisValue& hash,
                                     std::span<const std::string_view> names,
                                     const RedisTemplateLookup& find_template) {
  const Fields fields{hash, names};
  Execution e;
  std::string tid;
  // A ticket's or ad-hoc submission's own name and params, over the shape it shares.
  std::string name, pa;
  // The key, from the hash: it wins over a shape's (the same, or none in a shape without one).
  std::string key;
  int st = 0;
  // The first integer field whose value is not an integer, named in the error.
  std::optional<std::string> bad_field;
  bool bad = false;  // the current field's value did not parse
  // An empty value (nil, or absent in a positional reply) keeps the default, as before.
  auto parse_i64 = [&bad](const std::string& v) -> int64_t {
    int64_t out = 0;
    if (v.empty()) return out;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    if (ec != std::errc() || end != v.data() + v.size()) bad = true;
    return out;
  };
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const std::string_view f = fields.name(i);
    const std::string v = text(fields.value(i));
    bad = false;
    if (f == "id") {
      e.id = v;
    } else if (f == "tpl") {
      tid = v;
    } else if (f == "due") {
      e.due = codec::from_ns(parse_i64(v));
    } else if (f == "nb") {
      e.not_before = codec::from_ns(parse_i64(v));
    } else if (f == "seq") {
      e.seq = static_cast<uint64_t>(parse_i64(v));
    } else if (f == "att") {
      e.attempt = static_cast<uint32_t>(parse_i64(v));
    } else if (f == "st") {
      st = static_cast<int>(parse_i64(v));
    } else if (f == "fence") {
      e.fence = static_cast<uint64_t>(parse_i64(v));
    } else if (f == "cr") {
      e.created = codec::from_ns(parse_i64(v));
    } else if (f == "sa") {
      if (!v.empty()) e.started = codec::from_ns(parse_i64(v));
    } else if (f == "fi") {
      if (!v.empty()) e.finished = codec::from_ns(parse_i64(v));
    } else if (f == "msg") {
      e.message = v;
    } else if (f == "out") {
      e.output = v;
    } else if (f == "node") {
      e.node = v;
    } else if (f == "name") {
      name = v;
    } else if (f == "key") {
      key = v;
    } else if (f == "pa") {
      pa = v;
    }
    if (bad && !bad_field) {
      bad_field = fmt::format("field {} is not an integer: \"{}\"", f, v.substr(0, 40));
    }
  }
  if (bad_field) {
    return internal_error(fmt::format("redis: execution {}: {}", e.id, *bad_field));
  }
  auto status = codec::status_from_code(st);
  if (!status) return internal_error(fmt::format("redis: execution {} has status {}", e.id, st));
  e.status = *status;
  std::shared_ptr<const ExecTemplate> spec = find_template(tid);
  if (!spec) {
    return internal_error(fmt::format("redis: execution {} names unknown template {}", e.id, tid));
  }
  if (is_shape_id(tid)) {
    auto own = std::make_shared<ExecTemplate>(*spec);
    own->name = std::move(name);
    if (!key.empty()) own->key = std::move(key);
    if (!pa.empty()) {
      try {
        own->params = codec::params_from_body(pa);
      } catch (const std::exception& ex) {
        return internal_error(
            fmt::format("redis: execution {} has malformed params: {}", e.id, ex.what()));
      }
    }
    spec = std::move(own);
  }
  e.spec = std::move(spec);
  return e;
}

struct RedisStore::Impl {
  RedisOptions o;
  std::string prefix;
  std::unique_ptr<RedisClient> client;
  std::unique_ptr<RedisSubscriber> subscriber;
  std::string shas[redis_lua::kScriptCount];
  Clock* clock = nullptr;

  std::mutex mu;
  // Templates: by body hash, and the hash of live templates by address (the planner reuses one
  // template for all executions of a helper).
  std::unordered_map<std::string, std::shared_ptr<const ExecTemplate>> templates;
  struct Known {
    std::weak_ptr<const ExecTemplate> t;
    std::string tid;
    std::string body;
  };
  std::unordered_map<const ExecTemplate*, Known> by_address;
  // Runs claimed through this store and not yet completed: id -> fence (lease renewal).
  std::unordered_map<std::string, uint64_t> held;
  // Completions that could not be recorded (Redis unreachable), replayed in order.
  struct Pending {
    std::string id;
    uint64_t fence;
    Completion c;
  };
  std::deque<Pending> replay;
  StoreEvents events;
  bool stopping = false;
  bool kick = false;  // the lease thread should run now (a reconnect)
  // Scripts that answered an error other than NOSCRIPT, LOADING or BUSY (/metrics).
  std::atomic<uint64_t> script_errors{0};
  // Pub/sub deliveries so far (another daemon may have changed what is next).
  std::atomic<uint64_t> wakes{0};
  // The next events a claim answered (kClaim), for a next_event() at the same `now` made
  // while client->requests() and wakes are still as they were right after that claim was
  // queued (the dispatcher asks right after its claims): saves next_event's round trip.
  struct NextCache {
    TimePoint now;
    uint64_t requests;
    uint64_t wakes;
    RedisValue reply;
  };
  std::optional<NextCache> next_cache;  // mu
  std::optional<TimePoint> next_from(const RedisValue& r, TimePoint now);
  std::condition_variable cv;
  std::thread lease_thread;

  // ---- scripts ------------------------------------------------------------------------------

  Status load_scripts() {
    for (int i = 0; i < redis_lua::kScriptCount; ++i) {
      std::string body(redis_lua::kPrelude);
      body += redis_lua::kScripts[i].body;
      auto r = client->call({"SCRIPT", "LOAD", body});
      if (!r.is_ok()) return r.status();
      if (r->is_error() && (r->str.starts_with("LOADING") || r->str.starts_with("BUSY"))) {
        return unavailable(fmt::format("redis: {}", r->str));
      }
      if (r->is_error()) {
        return internal_error(
            fmt::format("redis script {} does not load: {}", redis_lua::kScripts[i].name, r->str));
      }
      // Set once, at open() before any other thread runs; a reload after a Redis restart
      // (from any thread, several at once) gets the same SHA1 of the same body and only
      // compares, so the calls reading shas meanwhile never race with a write.
      if (shas[i].empty()) {
        shas[i] = r->str;
      } else if (shas[i] != r->str) {
        return internal_error(fmt::format("redis script {} loaded as {}, not {}",
                                          redis_lua::kScripts[i].name, r->str, shas[i]));
      }
    }
    return Status::ok();
  }

  // Runs a script; reloads the scripts once when Redis forgot them (a restart).
  StatusOr<RedisValue> eval(ScriptId id, std::vector<std::string> args) {
    RedisArgv argv;
    argv.reserve(args.size() + 4);
    argv.emplace_back("EVALSHA");
    argv.push_back(shas[id]);
    argv.emplace_back("0");
    argv.push_back(prefix);
    for (auto& a : args) argv.push_back(std::move(a));
    auto r = client->call(argv);
    if (r.is_ok() && r->is_error() && r->str.starts_with("NOSCRIPT")) {
      if (Status s = load_scripts(); !s.is_ok()) return s;
      argv[1] = shas[id];
      r = client->call(std::move(argv));
    }
    if (r.is_ok() && r->is_error()) {
      // A restarted Redis answers LOADING until its dataset is read back, and a busy one BUSY:
      // the call did nothing and may be made again (a kept completion stays kept).
      if (r->str.starts_with("LOADING") || r->str.starts_with("BUSY")) {
        return unavailable(fmt::format("redis: {}", r->str));
      }
      script_errors.fetch_add(1, std::memory_order_relaxed);
      return script_error(redis_lua::kScripts[id].name, *r);
    }
    return r;
  }

  // ---- encoding -----------------------------------------------------------------------------

  // The template's id and body, cached by address.
  std::pair<std::string, std::string> template_of(const std::shared_ptr<const ExecTemplate>& t) {
    std::lock_guard lock(mu);
    auto it = by_address.find(t.get());
    if (it != by_address.end() && it->second.t.lock() == t) {
      return {it->second.tid, it->second.body};
    }
    std::string body = codec::template_to_body(*t);
    std::string tid = fnv1a_hex(body);
    by_address[t.get()] = Known{t, tid, body};
    templates.try_emplace(tid, t);
    return {tid, body};
  }

  // Shapes of tickets' and ad-hoc submissions' templates: shape_key -> (tid, body).
  std::unordered_map<std::string, std::pair<std::string, std::string>> by_shape;

  // The id and body of the shape of `t` (a ticket's or ad-hoc submission's template): `t`
  // without its name and params, shared by every submission of that shape; found by its
  // fields, without encoding it. It keeps the key, although each execution's hash has it
  // ('key') and decoding takes it from there: a schedd before 2026-12-07 takes it from the
  // shape, and a rolling upgrade runs both (docs/redis.md). A later version can leave it
  // out, one shape for every project.
  std::pair<std::string, std::string> shape_of(const ExecTemplate& t) {
    std::string key = codec::shape_key(t);
    std::lock_guard lock(mu);
    if (auto it = by_shape.find(key); it != by_shape.end()) return it->second;
    auto shape = std::make_shared<ExecTemplate>(t);
    shape->name.clear();
    shape->params.clear();
    std::string body = codec::template_to_body(*shape);
    std::string tid = "s" + fnv1a_hex(body);
    templates.try_emplace(tid, std::move(shape));
    if (by_shape.size() > 100000) by_shape.clear();  // a cache: a miss only encodes again
    return by_shape.emplace(std::move(key), std::make_pair(tid, std::move(body))).first->second;
  }

  // Appends one submission's kSubmitArgs values for the submit script. With `bodies`, the
  // template ids whose body this call already carries: a repeated one goes as '' (the script
  // stores a template from its first submission of the call).
  void append_submission(const Execution& e, TimePoint now, std::size_t capacity,
                         std::vector<std::string>& args,
                         std::unordered_set<std::string>* bodies = nullptr) {
    args.push_back(ns_str(now));
    args.push_back(us_str(now));
    args.push_back(std::to_string(capacity));
    auto [tid, body] =
        e.spec->origin == ExecOrigin::kHelper ? template_of(e.spec) : shape_of(*e.spec);
    if (bodies != nullptr && !bodies->insert(tid).second) body.clear();
    args.push_back(tid);
    args.push_back(std::move(body));
    if (e.spec->origin == ExecOrigin::kHelper || e.spec->params.empty()) {
      args.emplace_back();
    } else {
      args.push_back(codec::params_to_body(e.spec->params));
    }
    append_fields(e, tid, args);
  }

  // Appends `tid body` pairs for the distinct templates of `executions`, with their count first.
  void append_templates(const std::vector<const Execution*>& executions,
                        std::vector<std::string>& args) {
    std::vector<std::pair<std::string, std::string>> distinct;
    std::unordered_set<const ExecTemplate*> seen;
    for (const Execution* e : executions) {
      if (!seen.insert(e->spec.get()).second) continue;
      distinct.push_back(template_of(e->spec));
    }
    args.push_back(std::to_string(distinct.size()));
    for (auto& [tid, body] : distinct) {
      args.push_back(tid);
      args.push_back(body);
    }
  }

  // The 16 insert fields of an execution stored against template `tid` (redis_scripts.cc).
  void append_fields(const Execution& e, const std::string& tid, std::vector<std::string>& args) {
    const ExecTemplate& t = *e.spec;
    args.push_back(e.id);
    args.push_back(tid);
    args.push_back(e.key());
    args.push_back(t.lane);
    args.push_back(std::to_string(std::clamp(t.priority, 1, 5)));
    args.push_back(std::to_string(static_cast<int>(t.origin)));
    args.push_back(t.name);
    args.push_back(std::to_string(static_cast<int>(t.overlap)));
    if (t.expiry) {
      TimePoint expires = add_capped(e.due, *t.expiry);  // never wraps past 2262
      args.push_back(us_str(expires));
      args.push_back(ns_str(expires));
    } else {
      args.emplace_back();
      args.emplace_back();
    }
    args.push_back(std::to_string(t.max_attempts));
    args.push_back(ns_str(e.due));
    args.push_back(us_str(e.due));
    args.push_back(ns_str(e.not_before));
    args.push_back(us_str(e.not_before));
    args.push_back(std::to_string(e.attempt));
  }

  // Templates named by `hashes` that are not cached yet, fetched in one call.
  Status fetch_templates(const std::vector<const RedisValue*>& hashes,
                         std::span<const std::string_view> names) {
    std::vector<std::string> missing;
    {
      std::lock_guard lock(mu);
      for (const RedisValue* h : hashes) {
        const Fields f{*h, names};
        for (std::size_t i = 0; i < f.size(); ++i) {
          if (f.name(i) != "tpl") continue;
          if (!templates.contains(f.value(i).str)) missing.push_back(f.value(i).str);
          break;
        }
      }
    }
    if (missing.empty()) return Status::ok();
    std::sort(missing.begin(), missing.end());
    missing.erase(std::unique(missing.begin(), missing.end()), missing.end());
    RedisArgv argv{"MGET"};
    for (const auto& tid : missing) argv.push_back(prefix + "t:" + tid);
    auto r = client->call(std::move(argv));
    if (!r.is_ok()) return r.status();
    std::lock_guard lock(mu);
    for (std::size_t i = 0; i < missing.size() && i < r->elements.size(); ++i) {
      if (r->elements[i].is_nil()) {
        return internal_error(fmt::format("redis: template {} is missing", missing[i]));
      }
      try {
        templates.emplace(missing[i], codec::template_from_body(r->elements[i].str));
      } catch (const std::exception& ex) {
        return internal_error(
            fmt::format("redis: template {} is malformed: {}", missing[i], ex.what()));
      }
    }
    return Status::ok();
  }

  // An execution from its fields (templates fetched first).
  StatusOr<Execution> decode(const Fields& fields) {
    return decode_execution(fields.h, fields.names, [this](const std::string& tid) {
      std::lock_guard lock(mu);
      auto it = templates.find(tid);
      return it == templates.end() ? nullptr : it->second;
    });
  }

  // Decodes a list of HGETALL arrays, or of positional values of `names` (skipping empty
  // ones: gone meanwhile).
  StatusOr<std::vector<Execution>> decode_all(const std::vector<const RedisValue*>& hashes,
                                              std::span<const std::string_view> names = {}) {
    if (Status s = fetch_templates(hashes, names); !s.is_ok()) return s;
    std::vector<Execution> out;
    out.reserve(hashes.size());
    for (const RedisValue* h : hashes) {
      if (h->elements.empty()) continue;
      auto e = decode(Fields{*h, names});
      if (!e.is_ok()) return e.status();
      out.push_back(std::move(e).value());
    }
    return out;
  }
  StatusOr<std::vector<Execution>> decode_array(const RedisValue& array,
                                                std::span<const std::string_view> names = {}) {
    std::vector<const RedisValue*> hashes;
    for (const auto& h : array.elements) hashes.push_back(&h);
    return decode_all(hashes, names);
  }

  // Executions by id, in one round trip.
  StatusOr<std::vector<Execution>> fetch(const std::vector<std::string>& ids) {
    if (ids.empty()) return std::vector<Execution>{};
    std::vector<RedisArgv> cmds;
    cmds.reserve(ids.size());
    for (const auto& id : ids) cmds.push_back({"HGETALL", prefix + "e:" + id});
    auto r = client->call_many(std::move(cmds));
    if (!r.is_ok()) return r.status();
    std::vector<const RedisValue*> hashes;
    for (const auto& h : *r) hashes.push_back(&h);
    return decode_all(hashes);
  }

  // ---- submissions ----------------------------------------------------------------------------

  // Runs the submit script for one submission (kSubmitArgs values), merged with the
  // submissions of other threads queued while a round trip is out (RedisClient::send_batched):
  // one script call and one wake-up for all of them. Returns this submission's reply.
  StatusOr<RedisValue> submit_batched(std::vector<std::string> args) {
    struct Wait {
      std::mutex mu;
      std::condition_variable cv;
      std::optional<StatusOr<RedisValue>> reply;
    };
    auto w = std::make_shared<Wait>();
    client->send_batched({"EVALSHA", shas[redis_lua::kSubmit], "0", prefix}, args,
                         [w](StatusOr<RedisValue> r) {
                           std::lock_guard lock(w->mu);
                           w->reply = std::move(r);
                           w->cv.notify_one();
                         });
    StatusOr<RedisValue> r = [&] {
      std::unique_lock lock(w->mu);
      w->cv.wait(lock, [&] { return w->reply.has_value(); });
      return std::move(*w->reply);
    }();
    if (r.is_ok() && r->is_error() && r->str.starts_with("NOSCRIPT")) {
      // Redis forgot the scripts (a restart): eval() reloads them and runs this one alone.
      auto again = eval(redis_lua::kSubmit, std::move(args));
      if (!again.is_ok()) return again.status();
      if (Status s = reply_has(*again, 1, "submit"); !s.is_ok()) return s;
      return std::move(again->elements[0]);
    }
    if (r.is_ok() && r->is_error()) {
      if (r->str.starts_with("LOADING") || r->str.starts_with("BUSY")) {
        return unavailable(fmt::format("redis: {}", r->str));
      }
      script_errors.fetch_add(1, std::memory_order_relaxed);
      return script_error(redis_lua::kScripts[redis_lua::kSubmit].name, *r);
    }
    return r;
  }

  // What the submit script's reply `r` to the submission of `e` at `now` means: the stored
  // execution (as the script wrote it) and its position, or why it was not stored.
  static StatusOr<std::pair<Execution, std::size_t>> submitted(Execution e, TimePoint now,
                                                               std::size_t capacity,
                                                               const RedisValue& r) {
    if (Status s = reply_has(r, 1, "submit"); !s.is_ok()) return s;
    const std::string& tag = r.elements[0].str;
    if (tag != "ok" && tag != "queued" && tag != "running" && tag != "full") {
      return internal_error(fmt::format("redis: submit of {} answered \"{}\"", e.id, tag));
    }
    if (tag != "running") {
      if (Status s = reply_has(r, tag == "ok" ? 3 : 2, "submit"); !s.is_ok()) return s;
    }
    if (tag == "queued") {
      return Status(
          StatusCode::kAlreadyExists,
          fmt::format("execution {} already queued at position {}", e.id, r.elements[1].integer));
    }
    if (tag == "running") {
      return Status(StatusCode::kAlreadyExists, fmt::format("execution {} already running", e.id));
    }
    if (tag == "full") {
      return Status(
          StatusCode::kResourceExhausted,
          fmt::format("queue full: {} queued of capacity {}", r.elements[1].integer, capacity));
    }
    // As the script stored it (redis_scripts.cc insert).
    e.seq = static_cast<uint64_t>(r.elements[1].integer);
    e.attempt = std::max<uint32_t>(1, e.attempt);
    e.status = ExecStatus::kQueued;
    e.fence = 0;
    e.created = codec::from_ns(codec::to_ns(now));
    e.started.reset();
    e.finished.reset();
    e.message.clear();
    e.output.clear();
    e.node.clear();
    return std::make_pair(std::move(e), static_cast<std::size_t>(r.elements[2].integer));
  }

  // ---- leases and replay ----------------------------------------------------------------------

  TimePoint now() const { return clock != nullptr ? clock->now() : SystemClock::instance().now(); }

  // Returns the ids whose lease was lost (see kRenew).
  StatusOr<std::vector<std::string>> renew() {
    std::vector<std::string> args;
    // Read before the call: the lease Redis records is at least this far from any instant
    // the call could have reached it.
    const TimePoint until = now() + o.lease;
    {
      std::lock_guard lock(mu);
      if (held.empty()) return std::vector<std::string>{};
      args.push_back(us_str(until));
      for (const auto& [id, fence] : held) {
        args.push_back(id);
        args.push_back(std::to_string(fence));
      }
    }
    std::vector<std::string> sent;
    for (std::size_t i = 1; i < args.size(); i += 2) sent.push_back(args[i]);
    auto r = eval(redis_lua::kRenew, std::move(args));
    if (!r.is_ok()) return r.status();
    std::vector<std::string> lost_ids;
    std::function<void(const std::vector<std::string>&, TimePoint)> renewed;
    {
      std::lock_guard lock(mu);
      for (const auto& lost : r->elements) {
        if (held.erase(lost.str) > 0) {
          spdlog::warn(
              "exec {}: lease lost (its run was re-queued by another daemon); its completion "
              "will not be recorded",
              lost.str);
          lost_ids.push_back(lost.str);
        }
      }
      renewed = events.leases_renewed;
    }
    if (renewed) {
      std::erase_if(sent, [&](const std::string& id) {
        return std::find(lost_ids.begin(), lost_ids.end(), id) != lost_ids.end();
      });
      if (!sent.empty()) renewed(sent, until);
    }
    return lost_ids;
  }

  static std::vector<std::string> complete_args(const std::string& id, uint64_t fence,
                                                const Completion& c) {
    return {id,
            std::to_string(fence),
            std::to_string(codec::status_code(c.status)),
            c.retry ? "1" : "0",
            ns_str(c.retry_at),
            us_str(c.retry_at),
            ns_str(c.finished),
            us_str(c.finished),
            c.message,
            c.output};
  }

  Status record(const std::string& id, uint64_t fence, const Completion& c) {
    auto r = eval(redis_lua::kComplete, complete_args(id, fence, c));
    if (!r.is_ok()) return r.status();
    if (r->elements.size() != 1) return internal_error("redis: complete answered no reply");
    return complete_result(id, fence, std::move(r->elements[0]));
  }

  // What the complete script's reply `r` means.
  static Status complete_result(const std::string& id, uint64_t fence,
                                const StatusOr<RedisValue>& r) {
    if (!r.is_ok()) return r.status();
    if (Status s = reply_has(*r, 1, "complete"); !s.is_ok()) return s;
    const std::string& tag = r->elements[0].str;
    if (tag == "nf") return not_found(fmt::format("execution {} not found", id));
    if (tag == "stale") {
      if (Status s = reply_has(*r, 3, "complete"); !s.is_ok()) return s;
      auto st = codec::status_from_code(static_cast<int>(r->elements[1].integer));
      return failed_precondition(
          fmt::format("execution {} is not running under fence {} (it is {}, fence {})", id, fence,
                      st ? exec_status_name(*st) : "unknown", text(r->elements[2])));
    }
    return Status::ok();
  }

  void replay_pending() {
    while (true) {
      Pending p;
      {
        std::lock_guard lock(mu);
        if (replay.empty()) return;
        p = replay.front();
      }
      Status s = record(p.id, p.fence, p.c);
      if (s.code() == StatusCode::kUnavailable) return;  // still away: next round
      {
        std::lock_guard lock(mu);
        replay.pop_front();
        held.erase(p.id);
      }
      if (s.is_ok()) {
        spdlog::info("exec {}: completion recorded after the outage", p.id);
      } else {
        spdlog::warn("exec {}: completion after the outage not recorded: {}", p.id, s.message());
      }
    }
  }

  void lease_loop() {
    std::unique_lock lock(mu);
    const auto every =
        std::max<std::chrono::milliseconds>(o.lease / 5, std::chrono::milliseconds(10));
    while (!stopping) {
      cv.wait_for(lock, every, [&] { return stopping || kick; });
      if (stopping) return;
      kick = false;
      lock.unlock();
      if (client->connected()) {
        replay_pending();
        if (auto r = renew(); !r.is_ok() && r.status().code() != StatusCode::kUnavailable) {
          spdlog::warn("redis: lease renewal: {}", r.status().message());
        }
      }
      lock.lock();
    }
  }

  // Whether the lines after the first of `payload` include `node`.
  static bool names_node(std::string_view payload, std::string_view node) {
    std::size_t pos = payload.find('\n');
    while (pos != std::string_view::npos) {
      const std::size_t end = payload.find('\n', pos + 1);
      if (payload.substr(pos + 1, end == std::string_view::npos ? end : end - pos - 1) == node) {
        return true;
      }
      pos = end;
    }
    return false;
  }

  void on_messages(const std::vector<std::pair<std::string, std::string>>& burst) {
    wakes.fetch_add(1, std::memory_order_relaxed);
    StoreEvents ev;
    {
      std::lock_guard lock(mu);
      ev = events;
      if (burst.empty()) kick = true;  // reconnected: replay and renew now
    }
    if (burst.empty()) cv.notify_all();
    bool wake = burst.empty();
    std::unordered_set<std::string> helpers;
    for (const auto& [channel, payload] : burst) {
      if (channel == prefix + "helper") {
        helpers.insert(payload);
      } else if (payload.starts_with("free\n")) {
        // Capacity freed for the daemons named, one a line (the complete script).
        wake = wake || names_node(payload, o.node_id);
      } else {
        wake = true;
      }
    }
    for (const auto& h : helpers) {
      if (ev.helper_changed) ev.helper_changed(h);
    }
    if (wake && ev.wake) ev.wake();
  }
};

RedisStore::RedisStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StatusOr<std::unique_ptr<RedisStore>> RedisStore::open(RedisOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->o = std::move(options);
  impl->prefix = "schedd:" + impl->o.ns + ":";
  impl->clock = impl->o.clock;
  RedisConnectOptions co;
  co.address = impl->o.address;
  co.password = impl->o.password.empty() ? impl->o.address.password : impl->o.password;
  co.connect_timeout = impl->o.connect_timeout;
  co.command_timeout = impl->o.command_timeout;
  auto client = RedisClient::connect(co);
  if (!client.is_ok()) return client.status();
  impl->client = std::move(client).value();
  // Redis 6.2 or newer: ZADD XX with scores, ZRANGE ... BYSCORE semantics used by the scripts.
  auto info = impl->client->call({"INFO", "server"});
  if (!info.is_ok()) return info.status();
  if (info->is_error()) {
    return unavailable(fmt::format("{}: INFO refused: {}", impl->o.address.to_string(), info->str));
  }
  auto pos = info->str.find("redis_version:");
  if (pos != std::string::npos) {
    int major = std::atoi(info->str.c_str() + pos + 14);
    if (major < 6) {
      return failed_precondition(fmt::format("{}: Redis {} is too old (6.2 or newer needed)",
                                             impl->o.address.to_string(), major));
    }
  }
  if (Status s = impl->load_scripts(); !s.is_ok()) return s;
  // Executions queued by a schedd older than the `dq` index (list in due order) join it once.
  if (auto r = impl->eval(redis_lua::kIndexDue, {}); !r.is_ok()) return r.status();
  Impl* raw = impl.get();
  impl->client->set_on_connect([raw] {
    {
      std::lock_guard lock(raw->mu);
      raw->kick = true;
    }
    raw->cv.notify_all();
  });
  impl->subscriber = std::make_unique<RedisSubscriber>(
      co, std::vector<std::string>{impl->prefix + "wake", impl->prefix + "helper"},
      [raw](const auto& burst) { raw->on_messages(burst); });
  impl->lease_thread = std::thread([raw] {
    name_this_thread("schedd-lease");
    raw->lease_loop();
  });
  return std::unique_ptr<RedisStore>(new RedisStore(std::move(impl)));
}

RedisStore::~RedisStore() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->lease_thread.joinable()) impl_->lease_thread.join();
  impl_->subscriber.reset();
  impl_->client.reset();
}

void RedisStore::subscribe(StoreEvents events) {
  std::lock_guard lock(impl_->mu);
  impl_->events = std::move(events);
}

std::size_t RedisStore::claim_ahead() const { return impl_->o.claim_ahead; }

std::string RedisStore::describe() const {
  return fmt::format("{} (namespace {})", impl_->o.address.to_string(), impl_->o.ns);
}

void RedisStore::write_metrics(std::string& out) const {
  impl_->client->write_metrics(out);
  metric_family(out, "schedd_redis_script_errors_total", "counter",
                "Redis store scripts that answered an error (not a lost connection).");
  out += fmt::format("schedd_redis_script_errors_total {}\n", impl_->script_errors.load());
}

Status RedisStore::health() const {
  if (impl_->client->connected()) return Status::ok();
  return unavailable(fmt::format("{}: not connected ({})", impl_->o.address.to_string(),
                                 impl_->client->last_error()));
}

StatusOr<std::size_t> RedisStore::plan(std::vector<Execution> executions, TimePoint now) {
  return plan_from(HelperState{}, std::move(executions), now);
}

StatusOr<std::size_t> RedisStore::plan_from(const HelperState& seen,
                                            std::vector<Execution> executions, TimePoint now) {
  for (const auto& e : executions) {
    if (e.id.empty()) return invalid_argument("execution without an id");
    if (!e.spec) return invalid_argument(fmt::format("execution {} has no template", e.id));
  }
  // One script per chunk: a script holds Redis (every daemon's claims and renewals) until it
  // returns, and one of tens of thousands of executions took seconds, beyond the command
  // timeout. Each chunk checks `seen` again, so a change by another daemon between chunks
  // stops the plan there; the caller re-applies the state and plans again (idempotent).
  std::size_t created = 0;
  for (std::size_t begin = 0; begin < executions.size(); begin += kPlanChunk) {
    const std::size_t end = std::min(executions.size(), begin + kPlanChunk);
    std::vector<std::string> args{ns_str(now), us_str(now), seen.name};
    args.push_back(seen.enabled ? (*seen.enabled ? "1" : "0") : "");
    args.push_back(seen.schedule_override ? "1" : "0");
    args.push_back(seen.schedule_override.value_or(""));
    args.push_back(seen.priority_override ? std::to_string(*seen.priority_override) : "");
    args.push_back(seen.expiry_override ? std::to_string(seen.expiry_override->count()) : "");
    std::vector<const Execution*> ptrs;
    for (std::size_t i = begin; i < end; ++i) ptrs.push_back(&executions[i]);
    impl_->append_templates(ptrs, args);
    for (const Execution* e : ptrs) {
      impl_->append_fields(*e, impl_->template_of(e->spec).first, args);
      args.push_back(is_terminal(e->status) ? std::to_string(codec::status_code(e->status)) : "0");
      args.push_back(is_terminal(e->status) ? e->message : "");
    }
    auto r = impl_->eval(redis_lua::kPlan, std::move(args));
    if (!r.is_ok()) return r.status();
    if (Status s = reply_has(*r, 1, "plan"); !s.is_ok()) return s;
    const long long n = r->elements[0].integer;
    if (n < 0) {
      return aborted(fmt::format("helper {}: its state was changed by another daemon", seen.name));
    }
    created += static_cast<std::size_t>(n);
  }
  return created;
}

StatusOr<std::pair<Execution, std::size_t>> RedisStore::submit(Execution execution, TimePoint now,
                                                               std::size_t capacity_queued) {
  if (execution.id.empty()) return invalid_argument("execution without an id");
  if (!execution.spec) {
    return invalid_argument(fmt::format("execution {} has no template", execution.id));
  }
  std::vector<std::string> args;
  args.reserve(redis_lua::kSubmitArgs);
  impl_->append_submission(execution, now, capacity_queued, args);
  auto r = impl_->submit_batched(std::move(args));
  if (!r.is_ok()) return r.status();
  return Impl::submitted(std::move(execution), now, capacity_queued, *r);
}

std::vector<StatusOr<std::pair<Execution, std::size_t>>> RedisStore::submit_many(
    std::vector<Execution> executions, TimePoint now, std::size_t capacity_queued) {
  std::vector<StatusOr<std::pair<Execution, std::size_t>>> out;
  out.reserve(executions.size());
  // One script call per chunk: it holds Redis (every daemon's claims) while it runs, and one of
  // 1,000 outlasted the 2 s command timeout on a loaded machine (the connection is dropped
  // and every call on it fails).
  constexpr std::size_t kSubmitChunk = 250;
  for (std::size_t begin = 0; begin < executions.size(); begin += kSubmitChunk) {
    const std::size_t end = std::min(executions.size(), begin + kSubmitChunk);
    std::vector<std::string> args;
    std::vector<std::size_t> sent;           // indexes of the executions in this call
    std::unordered_set<std::string> bodies;  // templates whose body the call carries
    for (std::size_t i = begin; i < end; ++i) {
      const Execution& e = executions[i];
      if (e.id.empty()) {
        out.push_back(invalid_argument("execution without an id"));
      } else if (!e.spec) {
        out.push_back(invalid_argument(fmt::format("execution {} has no template", e.id)));
      } else {
        out.push_back(internal_error("not submitted"));  // replaced below
        sent.push_back(i);
        impl_->append_submission(e, now, capacity_queued, args, &bodies);
      }
    }
    if (sent.empty()) continue;
    auto r = impl_->eval(redis_lua::kSubmit, std::move(args));
    Status bad = r.is_ok() ? reply_has(*r, sent.size(), "submit") : r.status();
    for (std::size_t j = 0; j < sent.size(); ++j) {
      const std::size_t i = sent[j];
      out[i] = bad.is_ok()
                   ? Impl::submitted(std::move(executions[i]), now, capacity_queued, r->elements[j])
                   : StatusOr<std::pair<Execution, std::size_t>>(bad);
    }
  }
  return out;
}

StatusOr<ClaimResult> RedisStore::claim(std::string_view lane, std::size_t max, TimePoint now,
                                        std::string_view node) {
  long long cap = -1;
  if (auto it = impl_->o.lane_capacity.find(lane); it != impl_->o.lane_capacity.end()) {
    cap = static_cast<long long>(it->second);
  }
  // The lease runs on this store's clock, as its renewals do, never from a caller's `now`,
  // which may be older than the call.
  const TimePoint lease_deadline = std::max(now, impl_->now()) + impl_->o.lease;
  const uint64_t requests = impl_->client->requests();
  const uint64_t wakes = impl_->wakes.load();
  // A daemon waiting for the lane's cluster capacity claims again on each wake, and at least
  // once per rescan (a lease by default): one not seen for two leases has gone.
  const TimePoint wait_stale = now - 2 * impl_->o.lease;
  const TimePoint wait_refresh = now - impl_->o.lease / 2;
  auto r = impl_->eval(
      redis_lua::kClaim,
      {std::string(lane), std::to_string(max), ns_str(now), us_str(now), std::string(node),
       us_str(lease_deadline), std::to_string(cap), us_str(wait_stale), us_str(wait_refresh)});
  if (!r.is_ok()) return r.status();
  if (Status s = reply_has(*r, 5, "claim"); !s.is_ok()) return s;
  const auto& el = r->elements;
  ClaimResult out;
  out.lease_until = lease_deadline;
  // Claimed executions come as the values of kClaimReplyFields, in that order.
  for (const auto& values : el[0].elements) {
    if (values.elements.size() != std::size(redis_lua::kClaimReplyFields)) {
      return internal_error(fmt::format("redis: a claimed execution came with {} fields, not {}",
                                        values.elements.size(),
                                        std::size(redis_lua::kClaimReplyFields)));
    }
  }
  auto claimed = impl_->decode_array(el[0], redis_lua::kClaimReplyFields);
  if (!claimed.is_ok()) return claimed.status();
  out.claimed = std::move(claimed).value();
  auto expired = impl_->decode_array(el[1]);
  if (!expired.is_ok()) return expired.status();
  out.expired = std::move(expired).value();
  auto skipped = impl_->decode_array(el[2]);
  if (!skipped.is_ok()) return skipped.status();
  out.skipped = std::move(skipped).value();
  for (const auto& id : el[3].elements) out.replace.push_back(id.str);
  auto reaped = impl_->decode_array(el[4]);
  if (reaped.is_ok()) {
    for (const auto& e : *reaped) {
      spdlog::warn(
          "exec {} [{}]: the lease of node {} lapsed while it ran: interrupted (attempt {} of {})",
          e.id, e.key(), e.node, e.attempt, e.spec->max_attempts);
    }
  }
  std::lock_guard lock(impl_->mu);
  for (const auto& e : out.claimed) impl_->held[e.id] = e.fence;
  // A claim that ran dry answers the next events (kClaim): valid for next_event(now) while
  // this claim stays the latest request and no wake-up came.
  if (el.size() >= 6 && el[5].type == RedisValue::Type::kArray) {
    impl_->next_cache = Impl::NextCache{now, requests + 1, wakes, std::move(r->elements[5])};
  }
  return out;
}

void RedisStore::complete_async(std::string_view id, uint64_t fence, const Completion& c,
                                std::function<void(Status)> done) {
  if (!is_terminal(c.status)) {
    done(invalid_argument(fmt::format("execution {}: completion with non-terminal status {}", id,
                                      exec_status_name(c.status))));
    return;
  }
  // Completions sent while the connection's round trip is out go together in one script call
  // (RedisClient::send_batched), still ahead of any later claim.
  std::string sid(id);
  Impl* impl = impl_.get();
  impl->client->send_batched(
      {"EVALSHA", impl_->shas[redis_lua::kComplete], "0", impl_->prefix},
      Impl::complete_args(sid, fence, c),
      [impl, sid, fence, c, done = std::move(done)](StatusOr<RedisValue> r) {
        Status s = r.is_ok() && r->is_error()
                       ? (r->str.starts_with("NOSCRIPT")
                              ? unavailable("the scripts are gone (Redis restarted)")
                              : script_error(redis_lua::kScripts[redis_lua::kComplete].name, *r))
                       : Impl::complete_result(sid, fence, r);
        if (r.is_ok() && r->is_error() && !r->str.starts_with("NOSCRIPT")) {
          impl->script_errors.fetch_add(1, std::memory_order_relaxed);
        }
        {
          std::lock_guard lock(impl->mu);
          if (s.code() == StatusCode::kUnavailable) {
            // Kept, its lease renewed, and recorded by the lease thread (which reloads the
            // scripts) once Redis answers again (docs/redis.md).
            impl->replay.push_back(Impl::Pending{sid, fence, c});
            impl->kick = true;
          } else {
            impl->held.erase(sid);
          }
        }
        if (s.code() == StatusCode::kUnavailable) {
          impl->cv.notify_all();
          spdlog::warn("exec {}: completion kept for when Redis is back: {}", sid, s.message());
          s = Status::ok();
        }
        done(std::move(s));
      });
}

Status RedisStore::complete(std::string_view id, uint64_t fence, const Completion& c) {
  if (!is_terminal(c.status)) {
    return invalid_argument(fmt::format("execution {}: completion with non-terminal status {}", id,
                                        exec_status_name(c.status)));
  }
  std::string sid(id);
  Status s = impl_->record(sid, fence, c);
  if (s.code() == StatusCode::kUnavailable) {
    // Kept, with its lease renewed, and recorded once Redis is back (docs/redis.md).
    std::lock_guard lock(impl_->mu);
    impl_->replay.push_back(Impl::Pending{sid, fence, c});
    spdlog::warn("exec {}: completion kept for when Redis is back: {}", sid, s.message());
    return Status::ok();
  }
  std::lock_guard lock(impl_->mu);
  impl_->held.erase(sid);
  return s;
}

std::optional<TimePoint> RedisStore::next_event(TimePoint now) {
  {
    // The answer of this store's latest claim at this `now`, when nothing was sent since.
    std::lock_guard lock(impl_->mu);
    auto& c = impl_->next_cache;
    if (c && c->now == now && c->requests == impl_->client->requests() &&
        c->wakes == impl_->wakes.load()) {
      RedisValue v = std::move(c->reply);
      c.reset();
      return impl_->next_from(v, now);
    }
  }
  auto r = impl_->eval(redis_lua::kNextEvent, {us_str(now)});
  if (!r.is_ok()) return std::nullopt;
  std::lock_guard lock(impl_->mu);
  return impl_->next_from(*r, now);
}

// The earliest of the next events in `r` (next_events in the scripts), the rescan bound and
// other daemons' leases. mu held.
std::optional<TimePoint> RedisStore::Impl::next_from(const RedisValue& r, TimePoint now) {
  if (Status s = reply_has(r, 4, "next_event"); !s.is_ok()) {
    spdlog::warn("{}", s.message());
    return std::nullopt;
  }
  const auto& el = r.elements;
  std::optional<TimePoint> next;
  auto consider = [&](TimePoint t) {
    if (!next || t < *next) next = t;
  };
  for (int i = 0; i < 3; ++i) {
    if (el[i].type == RedisValue::Type::kString) {
      consider(codec::from_ns(parse_i64(el[i].str)));
    }
  }
  const auto rescan = o.rescan.value_or(o.lease);
  if (rescan.count() > 0) consider(now + rescan);
  // Other daemons' leases: a lapse frees a key. Own leases are renewed, not events.
  const auto& leases = el[3].elements;
  for (std::size_t i = 0; i + 1 < leases.size(); i += 2) {
    if (held.contains(leases[i].str)) continue;
    consider(TimePoint(std::chrono::microseconds(parse_i64(leases[i + 1].str))));
    break;
  }
  return next;
}

StatusOr<Execution> RedisStore::cancel(std::string_view id, TimePoint now) {
  auto r = impl_->eval(redis_lua::kCancel, {std::string(id), ns_str(now), us_str(now)});
  if (!r.is_ok()) return r.status();
  if (Status s = reply_has(*r, 1, "cancel"); !s.is_ok()) return s;
  const std::string& tag = r->elements[0].str;
  if (tag == "nf") return not_found(fmt::format("execution {} not found", id));
  if (tag == "running") {
    return failed_precondition(
        fmt::format("execution {} is running; request a stop to cancel it", id));
  }
  if (Status s = reply_has(*r, 2, "cancel"); !s.is_ok()) return s;
  auto e = impl_->decode_all({&r->elements[1]});
  if (!e.is_ok()) return e.status();
  if (e->empty())
    return internal_error(fmt::format("redis: cancel of {} answered no execution", id));
  if (tag == "terminal") {
    return Status(StatusCode::kAlreadyExists,
                  fmt::format("execution {} already {}", id, exec_status_name(e->front().status)));
  }
  return std::move(e->front());
}

StatusOr<std::size_t> RedisStore::remove_planned(std::string_view name, TimePoint due_after) {
  auto r = impl_->eval(
      redis_lua::kRemovePlanned,
      {std::string(name),
       due_after == TimePoint::min() ? std::string() : std::to_string(to_us(due_after))});
  if (!r.is_ok()) return r.status();
  return r->elements.size();
}

std::optional<Execution> RedisStore::get(std::string_view id) {
  auto r = impl_->fetch({std::string(id)});
  if (!r.is_ok() || r->empty()) return std::nullopt;
  return std::move(r->front());
}

std::vector<std::optional<Execution>> RedisStore::get_many(const std::vector<std::string>& ids) {
  std::vector<std::optional<Execution>> out(ids.size());
  if (ids.empty()) return out;
  // Mostly none exists (a bulk submission's check of its ids): one EXISTS of all of them costs
  // Redis less than reading each; they are read only when some exist.
  RedisArgv exists{"EXISTS"};
  exists.reserve(ids.size() + 1);
  for (const auto& id : ids) exists.push_back(impl_->prefix + "e:" + id);
  if (auto n = impl_->client->call(std::move(exists));
      n.is_ok() && n->type == RedisValue::Type::kInteger && n->integer == 0) {
    return out;
  }
  auto r = impl_->fetch(ids);
  if (!r.is_ok()) return out;
  std::unordered_map<std::string_view, std::size_t> at;
  for (std::size_t i = 0; i < r->size(); ++i) at.emplace((*r)[i].id, i);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (auto it = at.find(ids[i]); it != at.end()) out[i] = (*r)[it->second];
  }
  return out;
}

std::vector<Execution> RedisStore::list(const ExecutionFilter& filter) {
  std::vector<Execution> out;
  if (filter.order == ExecutionFilter::Order::kDue) {
    // Pages of the `dq` index (kListDue), fetched and filtered here, until the page is full.
    // Start after the cursor, or after every execution due by `due_after`, whichever is later.
    std::optional<std::pair<TimePoint, uint64_t>> from = filter.after_due;
    if (filter.due_after) {
      const std::pair<TimePoint, uint64_t> bound{*filter.due_after,
                                                 std::numeric_limits<uint64_t>::max()};
      if (!from || *from < bound) from = bound;
    }
    std::string dus = from ? us_str(from->first) : "";
    std::string seq = from ? fmt::format("{:016x}", from->second) : "";
    constexpr std::size_t kPage = 256;
    while (out.size() < filter.limit) {
      auto r = impl_->eval(redis_lua::kListDue, {dus, seq, std::to_string(kPage)});
      if (!r.is_ok()) {
        spdlog::warn("store {}: list: {}", describe(), r.status().to_string());
        break;
      }
      if (r->elements.empty()) break;
      std::vector<std::string> page;
      for (const auto& v : r->elements) page.push_back(v.str.substr(17));
      auto execs = impl_->fetch(page);
      if (!execs.is_ok()) {
        spdlog::warn("store {}: list: {}", describe(), execs.status().to_string());
        break;
      }
      for (auto& e : *execs) {
        if (out.size() >= filter.limit) break;
        if (e.status != ExecStatus::kQueued) continue;  // started since the script ran
        if (filter.name && e.spec->name != *filter.name) continue;
        if (filter.key && e.key() != *filter.key) continue;
        if (filter.lane && e.lane() != *filter.lane) continue;
        if (filter.priority && e.priority() != *filter.priority) continue;
        if (filter.due_after && e.due <= *filter.due_after) continue;
        out.push_back(std::move(e));
      }
      if (r->elements.size() < kPage) break;
      const std::string& last = r->elements.back().str;
      seq = last.substr(0, 16);
      auto score = impl_->client->call({"ZSCORE", impl_->prefix + "dq", last});
      if (!score.is_ok() || score->is_nil()) break;  // gone meanwhile: the page ends here
      dus = score->str;
    }
    return out;
  }
  std::string from = filter.after_id.empty() ? "-" : "(" + filter.after_id;
  constexpr std::size_t kPage = 256;
  while (out.size() < filter.limit) {
    auto ids = impl_->client->call(
        {"ZRANGEBYLEX", impl_->prefix + "ids", from, "+", "LIMIT", "0", std::to_string(kPage)});
    if (!ids.is_ok()) {
      spdlog::warn("store {}: list: {}", describe(), ids.status().to_string());
      break;
    }
    if (ids->elements.empty()) break;
    std::vector<std::string> page;
    for (const auto& v : ids->elements) page.push_back(v.str);
    auto execs = impl_->fetch(page);
    if (!execs.is_ok()) {
      spdlog::warn("store {}: list: {}", describe(), execs.status().to_string());
      break;
    }
    for (auto& e : *execs) {
      if (out.size() >= filter.limit) break;
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
      out.push_back(std::move(e));
    }
    if (page.size() < kPage) break;
    from = "(" + page.back();
  }
  return out;
}

std::optional<std::size_t> RedisStore::position(std::string_view id) {
  auto r = impl_->client->call({"HMGET", impl_->prefix + "e:" + std::string(id), "st", "key", "m"});
  if (!r.is_ok() || r->elements.size() < 3 || r->elements[0].is_nil()) return std::nullopt;
  if (r->elements[0].str != "0") return std::nullopt;
  auto rank =
      impl_->client->call({"ZRANK", impl_->prefix + "q:" + r->elements[1].str, r->elements[2].str});
  if (!rank.is_ok() || rank->type != RedisValue::Type::kInteger) return std::nullopt;
  return static_cast<std::size_t>(rank->integer + 1);
}

std::vector<Execution> RedisStore::key_queue(std::string_view key) {
  auto r = impl_->client->call({"ZRANGE", impl_->prefix + "q:" + std::string(key), "0", "-1"});
  if (!r.is_ok()) return {};
  std::vector<std::string> ids;
  for (const auto& m : r->elements) ids.push_back(m.str.substr(17));
  auto execs = impl_->fetch(ids);
  if (!execs.is_ok()) return {};
  return std::move(execs).value();
}

std::size_t RedisStore::prune_history(const HistoryCutoffs& cutoffs) {
  constexpr long long kBatch = 1000;
  std::vector<std::string> args = {std::to_string(kBatch), us_str(cutoffs.earliest())};
  for (ExecStatus s : kTerminalStatuses) {
    args.push_back(std::to_string(codec::status_code(s)));
    args.push_back(us_str(cutoffs.before(s)));
  }
  std::size_t total = 0;
  while (true) {
    auto r = impl_->eval(redis_lua::kPrune, args);
    if (!r.is_ok()) break;
    total += static_cast<std::size_t>(r->integer);
    if (r->integer < kBatch) break;
  }
  return total;
}

std::vector<LaneCounts> RedisStore::counts(TimePoint now) {
  auto r = impl_->eval(redis_lua::kCounts, {us_str(now)});
  std::vector<LaneCounts> out;
  if (!r.is_ok()) return out;
  const auto& el = r->elements;
  for (std::size_t i = 0; i + 2 < el.size(); i += 3) {
    out.push_back(LaneCounts{el[i].str, static_cast<std::size_t>(std::max(0LL, el[i + 1].integer)),
                             static_cast<std::size_t>(el[i + 2].integer)});
  }
  std::sort(out.begin(), out.end(),
            [](const LaneCounts& a, const LaneCounts& b) { return a.lane < b.lane; });
  return out;
}

std::optional<HelperState> RedisStore::helper_state(std::string_view name) {
  auto r = impl_->client->call(
      {"HMGET", impl_->prefix + "h:" + std::string(name), "en", "ov", "pu", "pr", "ex"});
  if (!r.is_ok() || r->elements.size() < 5) return std::nullopt;
  const auto& el = r->elements;
  if (std::all_of(el.begin(), el.end(), [](const RedisValue& v) { return v.is_nil(); })) {
    return std::nullopt;
  }
  HelperState s;
  s.name = std::string(name);
  if (!el[0].is_nil()) s.enabled = el[0].str == "1";
  if (!el[1].is_nil()) s.schedule_override = el[1].str;
  if (!el[2].is_nil()) s.planned_until = codec::from_ns(parse_i64(el[2].str));
  if (!el[3].is_nil()) s.priority_override = static_cast<int>(parse_i64(el[3].str));
  if (!el[4].is_nil()) s.expiry_override = std::chrono::milliseconds(parse_i64(el[4].str));
  return s;
}

Status RedisStore::put_helper_state(const HelperState& state) {
  if (state.name.empty()) return invalid_argument("helper state without a helper name");
  auto r =
      impl_->eval(redis_lua::kPutHelper,
                  {state.name, state.enabled ? "1" : "0",
                   state.enabled && *state.enabled ? "1" : "0", state.schedule_override ? "1" : "0",
                   state.schedule_override.value_or(""), state.planned_until ? "1" : "0",
                   state.planned_until ? ns_str(*state.planned_until) : std::string(),
                   state.priority_override ? "1" : "0",
                   state.priority_override ? std::to_string(*state.priority_override) : "",
                   state.expiry_override ? "1" : "0",
                   state.expiry_override ? std::to_string(state.expiry_override->count()) : ""});
  return r.is_ok() ? Status::ok() : r.status();
}

Status RedisStore::put_watermark(const std::string& name, TimePoint planned_until) {
  auto r = impl_->client->call({"HSET", impl_->prefix + "h:" + name, "pu", ns_str(planned_until)});
  if (!r.is_ok()) return r.status();
  if (r->is_error()) return internal_error("redis: " + r->str);
  return Status::ok();
}

std::vector<Execution> RedisStore::recover(TimePoint now) {
  auto r = impl_->eval(redis_lua::kRecover, {ns_str(now), us_str(now), impl_->o.node_id});
  if (!r.is_ok()) {
    spdlog::error("recover: {}", r.status().message());
    return {};
  }
  auto execs = impl_->decode_array(*r);
  if (!execs.is_ok()) {
    spdlog::error("recover: {}", execs.status().message());
    return {};
  }
  std::sort(execs->begin(), execs->end(),
            [](const Execution& a, const Execution& b) { return a.seq < b.seq; });
  std::lock_guard lock(impl_->mu);
  for (const auto& e : *execs) impl_->held.erase(e.id);
  return std::move(execs).value();
}

StatusOr<std::vector<std::string>> RedisStore::renew_leases() { return impl_->renew(); }

Status RedisStore::wipe() {
  std::string cursor = "0";
  do {
    auto r = impl_->client->call({"SCAN", cursor, "MATCH", impl_->prefix + "*", "COUNT", "1000"});
    if (!r.is_ok()) return r.status();
    if (r->elements.size() < 2) return internal_error("redis: SCAN reply");
    cursor = r->elements[0].str;
    if (!r->elements[1].elements.empty()) {
      RedisArgv del{"DEL"};
      for (const auto& k : r->elements[1].elements) del.push_back(k.str);
      auto d = impl_->client->call(std::move(del));
      if (!d.is_ok()) return d.status();
    }
  } while (cursor != "0");
  return Status::ok();
}

}  // namespace schedd
