// RedisClient: one hiredis connection behind a small RAII wrapper, shared by many threads.
// Callers hand in commands and block for their replies; one I/O thread writes every command
// waiting at that moment and then reads their replies, so concurrent callers share one round
// trip (group pipelining). When the connection is lost, waiting and new calls fail at once with
// kUnavailable, and the I/O thread reconnects with backoff (100 ms doubling to 2 s), calling
// `on_connect` after each successful reconnect.
//
// RedisSubscriber: a second connection in SUBSCRIBE mode with its own thread, reconnecting the
// same way; delivers each burst of messages to one callback call.
//
// Thread-safety: both are thread-safe; callbacks run on their own threads.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/common/metrics.h"
#include "core/common/status.h"
#include "core/store/redis_store.h"

struct redisContext;
struct redisReply;

namespace schedd {

// A reply, copied out of hiredis.
struct RedisValue {
  enum class Type { kNil, kInteger, kString, kArray, kStatus, kError };
  Type type = Type::kNil;
  long long integer = 0;
  std::string str;  // kString, kStatus, kError
  std::vector<RedisValue> elements;

  bool is_nil() const { return type == Type::kNil; }
  bool is_error() const { return type == Type::kError; }
};

// The RedisValue of a hiredis reply tree (nil for a type it does not know).
RedisValue redis_value(const redisReply& reply);

// An execution from its fields as the store's scripts answer them: an HGETALL array (name,
// value, ...), or, with `names`, the values of those fields in that order (the claim's
// positional reply; missing trailing values are left at their defaults). `find_template`
// resolves the `tpl` field, nullptr when unknown. Errors (kInternal) name the execution: an
// unknown status or template. Defined in redis_store.cc; exposed for tests/fuzz.
using RedisTemplateLookup = std::function<std::shared_ptr<const ExecTemplate>(const std::string&)>;
StatusOr<Execution> decode_execution(const RedisValue& fields,
                                     std::span<const std::string_view> names,
                                     const RedisTemplateLookup& find_template);

using RedisArgv = std::vector<std::string>;

struct RedisConnectOptions {
  RedisAddress address;
  std::string password;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds command_timeout{2000};
};

// Connects (AUTH, SELECT); kUnavailable naming the address when it cannot.
StatusOr<redisContext*> redis_connect(const RedisConnectOptions& o);

class RedisClient {
 public:
  // Connects once; kUnavailable when that fails (start-up refuses).
  static StatusOr<std::unique_ptr<RedisClient>> connect(RedisConnectOptions options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // One command. A Redis error reply is a value (is_error()), not a failed status; the status
  // fails only when the connection does (kUnavailable).
  StatusOr<RedisValue> call(RedisArgv argv);
  // Several commands in one round trip, replies in order.
  StatusOr<std::vector<RedisValue>> call_many(std::vector<RedisArgv> commands);
  // One command without waiting: it goes out with the next round trip, after every command
  // queued before it (so a later call() on this client is processed by Redis after it), and
  // `done` is called once with its reply, on the client's I/O thread (or on the caller's, at
  // once, when not connected). `done` must be cheap and must not call this client.
  using Done = std::function<void(StatusOr<RedisValue>)>;
  void send(RedisArgv command, Done done);
  // As send() of `prefix` + `args`, but merged into the command queued just before it when
  // that one was sent the same way with the same prefix and has not gone out yet: one command
  // `prefix args1 args2 ...` whose reply must be an array of one reply per part, handed to
  // each part's `done` in order (an error reply or a failure goes to every part); at most 512
  // parts per command. For a script that handles any number of argument groups (the batched
  // completion).
  void send_batched(const RedisArgv& prefix, RedisArgv args, Done done);

  // Runs after every successful reconnect, on the I/O thread, before queued calls are sent
  // (which it must not wait for); set before any outage.
  void set_on_connect(std::function<void()> fn);

  bool connected() const { return connected_.load(); }
  // How many requests were queued so far (call, call_many, send, send_batched: each once):
  // equal values before and after something mean nothing was sent in between.
  uint64_t requests() const { return requests_.load(std::memory_order_relaxed); }
  std::string last_error() const;
  // Appends the client's metrics (round-trip time, reconnects, connection losses) to `out`
  // in the Prometheus text format (docs/monitoring.md).
  void write_metrics(std::string& out) const;
  const RedisConnectOptions& options() const { return options_; }

 private:
  struct Request {
    std::vector<RedisArgv> commands;
    std::vector<RedisValue> replies;
    Status status;
    bool done = false;
    Done callback;  // send(): called instead of waking a caller
    // send_batched(): the prefix's length and each part's callback (instead of callback).
    std::size_t prefix_size = 0;
    std::vector<Done> parts;
    bool has_callback() const { return callback || !parts.empty(); }
  };

  explicit RedisClient(RedisConnectOptions options, redisContext* ctx);
  void io_loop();
  // Queues `req` for the I/O thread (mu_ held); false when not connected or stopping.
  bool enqueue_locked(std::shared_ptr<Request> req);
  // kUnavailable naming the address and why (mu_ held).
  Status not_connected_locked() const;
  // Fails every request of `batch` (mu_ held); returns those sent with a callback, which the
  // caller runs once it released mu_ (run_callbacks).
  std::vector<std::shared_ptr<Request>> fail_all(std::deque<std::shared_ptr<Request>>& batch,
                                                 const std::string& why);
  static void run_callbacks(std::vector<std::shared_ptr<Request>>& done);

  const RedisConnectOptions options_;
  redisContext* ctx_;  // I/O thread only (after construction)
  std::atomic<bool> connected_{true};
  mutable std::mutex mu_;
  std::condition_variable cv_;       // I/O thread waits for requests
  std::condition_variable done_cv_;  // callers wait for replies
  std::deque<std::shared_ptr<Request>> queue_;
  std::string last_error_;
  std::function<void()> on_connect_;
  bool stop_ = false;
  // One per write-and-read of the I/O thread (however many commands it carried).
  AtomicHistogram round_trip_seconds_;
  std::atomic<uint64_t> reconnects_{0};
  std::atomic<uint64_t> losses_{0};
  std::atomic<uint64_t> requests_{0};
  std::thread io_;
};

class RedisSubscriber {
 public:
  using OnMessages = std::function<void(const std::vector<std::pair<std::string, std::string>>&)>;
  // Subscribes to `channels`; messages (channel, payload) arrive in bursts on its thread. After
  // a reconnect the callback is called with an empty burst (something may have been missed).
  RedisSubscriber(RedisConnectOptions options, std::vector<std::string> channels,
                  OnMessages on_messages);
  ~RedisSubscriber();
  RedisSubscriber(const RedisSubscriber&) = delete;
  RedisSubscriber& operator=(const RedisSubscriber&) = delete;

 private:
  void loop();

  const RedisConnectOptions options_;
  const std::vector<std::string> channels_;
  const OnMessages on_messages_;
  std::atomic<bool> stop_{false};
  std::mutex fd_mu_;
  int fd_ = -1;  // the live connection's socket, shut down to stop at once (fd_mu_)
  std::thread thread_;
};

}  // namespace schedd
