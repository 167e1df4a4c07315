#include "core/store/redis_client.h"

#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <future>

#include "core/common/thread_name.h"

namespace schedd {

RedisValue redis_value(const redisReply& reply) {
  const redisReply* r = &reply;
  RedisValue v;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      v.type = RedisValue::Type::kString;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      v.type = RedisValue::Type::kStatus;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      v.type = RedisValue::Type::kError;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      v.type = RedisValue::Type::kInteger;
      v.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      v.type = RedisValue::Type::kArray;
      v.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i)
        v.elements.push_back(redis_value(*r->element[i]));
      break;
    default:
      break;  // nil
  }
  return v;
}

namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

RedisValue convert(const redisReply* r) { return redis_value(*r); }

struct ReplyDeleter {
  void operator()(void* r) const {
    if (r != nullptr) freeReplyObject(r);
  }
};
using ReplyPtr = std::unique_ptr<void, ReplyDeleter>;

void append(redisContext* c, const RedisArgv& argv) {
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  ptrs.reserve(argv.size());
  lens.reserve(argv.size());
  for (const auto& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  redisAppendCommandArgv(c, static_cast<int>(argv.size()), ptrs.data(), lens.data());
}

// A command on a fresh connection during set-up; the error names the address.
Status setup_command(redisContext* c, const RedisConnectOptions& o, const RedisArgv& argv,
                     const char* what) {
  append(c, argv);
  void* raw = nullptr;
  if (redisGetReply(c, &raw) != REDIS_OK) {
    return unavailable(fmt::format("{}: {}: {}", o.address.to_string(), what, c->errstr));
  }
  ReplyPtr reply(raw);
  auto* r = static_cast<redisReply*>(raw);
  if (r->type == REDIS_REPLY_ERROR) {
    return unavailable(
        fmt::format("{}: {}: {}", o.address.to_string(), what, std::string(r->str, r->len)));
  }
  return Status::ok();
}

}  // namespace

StatusOr<redisContext*> redis_connect(const RedisConnectOptions& o) {
  redisContext* c = redisConnectWithTimeout(o.address.host.c_str(), o.address.port,
                                            to_timeval(o.connect_timeout));
  if (c == nullptr || c->err != 0) {
    std::string why = c != nullptr ? c->errstr : "out of memory";
    if (c != nullptr) redisFree(c);
    return unavailable(fmt::format("{}: cannot connect: {}", o.address.to_string(), why));
  }
  redisSetTimeout(c, to_timeval(o.command_timeout));
  redisEnableKeepAlive(c);
  Status s = Status::ok();
  if (!o.password.empty()) s = setup_command(c, o, {"AUTH", o.password}, "authentication failed");
  if (s.is_ok() && o.address.db != 0) {
    s = setup_command(c, o, {"SELECT", std::to_string(o.address.db)}, "cannot select database");
  }
  if (!s.is_ok()) {
    redisFree(c);
    return s;
  }
  return c;
}

// ---- RedisClient ----------------------------------------------------------------------------

StatusOr<std::unique_ptr<RedisClient>> RedisClient::connect(RedisConnectOptions options) {
  auto c = redis_connect(options);
  if (!c.is_ok()) return c.status();
  return std::unique_ptr<RedisClient>(new RedisClient(std::move(options), *c));
}

RedisClient::RedisClient(RedisConnectOptions options, redisContext* ctx)
    : options_(std::move(options)), ctx_(ctx) {
  io_ = std::thread([this] {
    name_this_thread("schedd-redis");
    io_loop();
  });
}

RedisClient::~RedisClient() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  io_.join();
  if (ctx_ != nullptr) redisFree(ctx_);
}

void RedisClient::set_on_connect(std::function<void()> fn) {
  std::lock_guard lock(mu_);
  on_connect_ = std::move(fn);
}

std::string RedisClient::last_error() const {
  std::lock_guard lock(mu_);
  return last_error_;
}

StatusOr<RedisValue> RedisClient::call(RedisArgv argv) {
  std::vector<RedisArgv> commands;
  commands.push_back(std::move(argv));
  auto replies = call_many(std::move(commands));
  if (!replies.is_ok()) return replies.status();
  return std::move(replies->front());
}

StatusOr<std::vector<RedisValue>> RedisClient::call_many(std::vector<RedisArgv> commands) {
  auto req = std::make_shared<Request>();
  req->commands = std::move(commands);
  {
    std::unique_lock lock(mu_);
    if (!enqueue_locked(req)) return not_connected_locked();
    done_cv_.wait(lock, [&] { return req->done; });
  }
  if (!req->status.is_ok()) return req->status;
  return std::move(req->replies);
}

void RedisClient::send(RedisArgv command, Done done) {
  auto req = std::make_shared<Request>();
  req->commands.push_back(std::move(command));
  req->callback = std::move(done);
  Status failed;
  {
    std::lock_guard lock(mu_);
    if (enqueue_locked(req)) return;
    failed = not_connected_locked();
  }
  req->callback(std::move(failed));
}

void RedisClient::send_batched(const RedisArgv& prefix, RedisArgv args, Done done) {
  auto req = std::make_shared<Request>();
  Status failed;
  {
    std::lock_guard lock(mu_);
    if (connected_.load() && !stop_ && !queue_.empty()) {
      Request& last = *queue_.back();
      // At most kMaxBatchParts per call, so that one script never holds Redis for long.
      constexpr std::size_t kMaxBatchParts = 512;
      if (last.prefix_size == prefix.size() && last.parts.size() < kMaxBatchParts &&
          last.commands.size() == 1 &&
          std::equal(prefix.begin(), prefix.end(), last.commands[0].begin())) {
        auto& cmd = last.commands[0];
        cmd.insert(cmd.end(), std::make_move_iterator(args.begin()),
                   std::make_move_iterator(args.end()));
        last.parts.push_back(std::move(done));
        requests_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
    }
    RedisArgv cmd = prefix;
    cmd.insert(cmd.end(), std::make_move_iterator(args.begin()),
               std::make_move_iterator(args.end()));
    req->commands.push_back(std::move(cmd));
    req->prefix_size = prefix.size();
    req->parts.push_back(std::move(done));
    if (enqueue_locked(req)) return;
    failed = not_connected_locked();
  }
  req->parts.front()(std::move(failed));
}

bool RedisClient::enqueue_locked(std::shared_ptr<Request> req) {
  if (!connected_.load() || stop_) return false;
  requests_.fetch_add(1, std::memory_order_relaxed);
  queue_.push_back(std::move(req));
  cv_.notify_one();
  return true;
}

Status RedisClient::not_connected_locked() const {
  return unavailable(fmt::format("{}: not connected ({})", options_.address.to_string(),
                                 last_error_.empty() ? "closing" : last_error_));
}

std::vector<std::shared_ptr<RedisClient::Request>> RedisClient::fail_all(
    std::deque<std::shared_ptr<Request>>& batch, const std::string& why) {
  std::vector<std::shared_ptr<Request>> callbacks;
  for (auto& r : batch) {
    if (r->done) continue;
    r->status = unavailable(fmt::format("{}: {}", options_.address.to_string(), why));
    r->done = true;
    if (r->has_callback()) callbacks.push_back(r);
  }
  batch.clear();
  done_cv_.notify_all();
  return callbacks;
}

void RedisClient::run_callbacks(std::vector<std::shared_ptr<Request>>& done) {
  for (auto& r : done) {
    if (!r->parts.empty()) {
      const std::size_t n = r->parts.size();
      for (std::size_t i = 0; i < n; ++i) {
        if (!r->status.is_ok()) {
          r->parts[i](r->status);
        } else if (r->replies.empty()) {
          r->parts[i](internal_error("no reply"));
        } else if (RedisValue& v = r->replies.front();
                   v.type == RedisValue::Type::kArray && v.elements.size() == n) {
          r->parts[i](std::move(v.elements[i]));
        } else {
          r->parts[i](v);  // an error reply (or a malformed one) goes to every part
        }
      }
      continue;
    }
    if (!r->status.is_ok()) {
      r->callback(r->status);
    } else if (r->replies.empty()) {
      r->callback(internal_error("no reply"));
    } else {
      r->callback(std::move(r->replies.front()));
    }
  }
  done.clear();
}

void RedisClient::io_loop() {
  using namespace std::chrono_literals;
  std::unique_lock lock(mu_);
  auto backoff = 100ms;
  while (true) {
    if (ctx_ == nullptr) {
      auto failed = fail_all(queue_, "not connected (" + last_error_ + ")");
      if (!failed.empty()) {
        lock.unlock();
        run_callbacks(failed);
        lock.lock();
      }
      if (stop_) return;
      cv_.wait_for(lock, backoff, [&] { return stop_; });
      if (stop_) return;
      lock.unlock();
      auto c = redis_connect(options_);
      lock.lock();
      if (!c.is_ok()) {
        last_error_ = c.status().message();
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, 2s);
        continue;
      }
      ctx_ = *c;
      backoff = 100ms;
      spdlog::info("redis {}: reconnected", options_.address.to_string());
      reconnects_.fetch_add(1, std::memory_order_relaxed);
      auto fn = on_connect_;
      lock.unlock();
      if (fn) fn();
      lock.lock();
      connected_ = true;
      continue;
    }
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stop_
    std::deque<std::shared_ptr<Request>> batch;
    batch.swap(queue_);
    lock.unlock();
    const auto sent = std::chrono::steady_clock::now();
    for (auto& r : batch) {
      for (const auto& cmd : r->commands) append(ctx_, cmd);
    }
    std::string error;
    std::size_t answered = 0;
    for (auto& r : batch) {
      r->replies.reserve(r->commands.size());
      for (std::size_t i = 0; i < r->commands.size() && error.empty(); ++i) {
        void* raw = nullptr;
        if (redisGetReply(ctx_, &raw) != REDIS_OK) {
          error = ctx_->errstr[0] != '\0' ? ctx_->errstr : "connection lost";
          break;
        }
        ReplyPtr reply(raw);
        r->replies.push_back(convert(static_cast<redisReply*>(raw)));
      }
      if (!error.empty()) break;
      ++answered;
    }
    if (error.empty()) {
      round_trip_seconds_.observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count());
    }
    lock.lock();
    std::vector<std::shared_ptr<Request>> callbacks;
    for (std::size_t i = 0; i < answered; ++i) {
      batch[i]->done = true;
      if (batch[i]->has_callback()) callbacks.push_back(batch[i]);
    }
    if (!error.empty()) {
      spdlog::warn("redis {}: connection lost: {}", options_.address.to_string(), error);
      losses_.fetch_add(1, std::memory_order_relaxed);
      redisFree(ctx_);
      ctx_ = nullptr;
      connected_ = false;
      last_error_ = error;
      auto failed = fail_all(batch, "connection lost: " + error);
      callbacks.insert(callbacks.end(), failed.begin(), failed.end());
    }
    done_cv_.notify_all();
    if (!callbacks.empty()) {
      lock.unlock();
      run_callbacks(callbacks);
      lock.lock();
    }
  }
}

void RedisClient::write_metrics(std::string& out) const {
  metric_family(out, "schedd_redis_round_trip_seconds", "histogram",
                "Time from sending a pipelined group of Redis commands to reading its last reply.");
  round_trip_seconds_.write(out, "schedd_redis_round_trip_seconds");
  metric_family(out, "schedd_redis_connected", "gauge",
                "1 while the Redis store's connection is up, 0 while it reconnects.");
  out += fmt::format("schedd_redis_connected {}\n", connected_.load() ? 1 : 0);
  metric_family(out, "schedd_redis_reconnects_total", "counter",
                "Successful reconnects to Redis after a lost connection.");
  out += fmt::format("schedd_redis_reconnects_total {}\n", reconnects_.load());
  metric_family(out, "schedd_redis_connection_losses_total", "counter",
                "Redis connections lost (a command failed on the socket).");
  out += fmt::format("schedd_redis_connection_losses_total {}\n", losses_.load());
}

// ---- RedisSubscriber ------------------------------------------------------------------------

RedisSubscriber::RedisSubscriber(RedisConnectOptions options, std::vector<std::string> channels,
                                 OnMessages on_messages)
    : options_(std::move(options)),
      channels_(std::move(channels)),
      on_messages_(std::move(on_messages)) {
  thread_ = std::thread([this] {
    name_this_thread("schedd-redis-sub");
    loop();
  });
}

RedisSubscriber::~RedisSubscriber() {
  stop_ = true;
  {
    std::lock_guard lock(fd_mu_);
    if (fd_ >= 0) shutdown(fd_, SHUT_RDWR);
  }
  thread_.join();
}

void RedisSubscriber::loop() {
  using namespace std::chrono_literals;
  auto backoff = 100ms;
  bool first = true;
  while (!stop_) {
    auto c = redis_connect(options_);
    if (!c.is_ok()) {
      for (auto waited = 0ms; waited < backoff && !stop_; waited += 50ms) {
        std::this_thread::sleep_for(50ms);
      }
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, 2s);
      continue;
    }
    backoff = 100ms;
    redisContext* ctx = *c;
    {
      std::lock_guard lock(fd_mu_);
      fd_ = ctx->fd;
      if (stop_) shutdown(fd_, SHUT_RDWR);
    }
    RedisArgv sub{"SUBSCRIBE"};
    sub.insert(sub.end(), channels_.begin(), channels_.end());
    append(ctx, sub);
    bool ok = true;
    bool announced = false;
    bool missed = false;  // a reconnect: tell the callback, even without messages
    std::vector<std::pair<std::string, std::string>> burst;
    while (!stop_ && ok) {
      // Drain every complete reply already read, then wait for more (poll, so that stop_ is
      // seen within 100 ms; hiredis' own read timeout would close the connection).
      while (true) {
        void* raw = nullptr;
        if (redisGetReplyFromReader(ctx, &raw) != REDIS_OK) {
          ok = false;
          break;
        }
        if (raw == nullptr) break;
        ReplyPtr reply(raw);
        RedisValue v = convert(static_cast<redisReply*>(raw));
        if (v.type != RedisValue::Type::kArray || v.elements.size() < 3) continue;
        if (v.elements[0].str == "message") {
          burst.emplace_back(v.elements[1].str, v.elements[2].str);
        } else if (v.elements[0].str == "subscribe" && !announced) {
          announced = true;
          // Subscribed: anything published while we were away is missed, so say so.
          missed = !first;
          first = false;
        }
      }
      if (!burst.empty() || missed) {
        on_messages_(burst);
        burst.clear();
        missed = false;
      }
      if (!ok) break;
      // Flush the SUBSCRIBE command if it is still buffered.
      int done = 0;
      while (done == 0) {
        if (redisBufferWrite(ctx, &done) != REDIS_OK) {
          ok = false;
          break;
        }
      }
      pollfd p{ctx->fd, POLLIN, 0};
      int n = poll(&p, 1, 100);
      if (n < 0 && errno != EINTR) ok = false;
      if (n > 0 && redisBufferRead(ctx) != REDIS_OK) ok = false;
    }
    {
      std::lock_guard lock(fd_mu_);
      fd_ = -1;
    }
    redisFree(ctx);
    if (!stop_) {
      spdlog::warn("redis {}: subscription lost; reconnecting", options_.address.to_string());
    }
  }
}

}  // namespace schedd
