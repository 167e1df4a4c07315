// The only translation unit that includes Beast (it costs ~15 s to compile).
#include "core/api/http_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "core/common/thread_name.h"

namespace schedd::api {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

std::string error_body(std::string_view code, std::string_view message) {
  nlohmann::json j = {{"error", {{"code", code}, {"message", message}}}};
  return j.dump();
}

std::string endpoint_text(const tcp::endpoint& ep) {
  const std::string host = ep.address().to_string();
  return (ep.address().is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(ep.port());
}

StatusOr<tcp::endpoint> parse_listen(net::io_context& ioc, const std::string& listen) {
  const std::string bad = "listen: \"" + listen + "\" is not HOST:PORT, e.g. \"127.0.0.1:7878\"";
  const std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return invalid_argument(bad);
  std::string host = listen.substr(0, colon);
  const std::string port_text = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port_text) > 65535) {
    return invalid_argument(bad);
  }
  const auto port = static_cast<uint16_t>(std::stoul(port_text));
  beast::error_code ec;
  net::ip::address address = net::ip::make_address(host, ec);
  if (ec) {
    tcp::resolver resolver(ioc);
    auto results = resolver.resolve(host, port_text, ec);
    if (ec || results.empty()) {
      return invalid_argument("listen: cannot resolve \"" + host +
                              "\": " + (ec ? ec.message() : std::string("no address")));
    }
    address = results.begin()->endpoint().address();
  }
  return tcp::endpoint(address, port);
}

class Session;

// Sessions waiting for a deferred response. The store calls back from its own thread, maybe
// after the server stopped, so the callback reaches the session only through this hub, which
// outlives the server and refuses once it stopped.
struct DeferredHub {
  std::mutex mu;
  bool stopped = false;
  std::map<const Session*, std::shared_ptr<Session>> waiting;
};

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpHandler handler;
  std::unique_ptr<net::io_context> ioc;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::vector<std::thread> threads;
  std::unique_ptr<net::thread_pool> handlers;  // runs HttpHandler calls
  tcp::endpoint bound;
  std::atomic<std::size_t> connections{0};
  bool stopped = false;
  std::mutex stop_mu;  // serializes stop()

  // Streaming sessions, so that stop() can end their streams before the io_context goes.
  std::mutex streams_mu;
  std::map<const void*, std::weak_ptr<Session>> streams;

  std::shared_ptr<DeferredHub> deferred = std::make_shared<DeferredHub>();

  // Out of file descriptors (EMFILE, ENFILE): accept() would fail at once again and again
  // while the connection waits in the backlog, spinning an I/O thread and flooding the log.
  // Instead the acceptor pauses `kAcceptPause` between tries, spends the spare descriptor
  // held for this to answer the waiting clients with a 503 that names the limit, and logs
  // once when the shortage starts and once when it ends. Touched only by the accept chain
  // (one async_accept or timer wait at a time).
  static constexpr std::chrono::milliseconds kAcceptPause{50};
  std::unique_ptr<net::steady_timer> accept_timer;
  int spare_fd = -1;
  std::optional<std::chrono::steady_clock::time_point> short_since;   // the shortage began
  std::optional<std::chrono::steady_clock::time_point> short_logged;  // its first log line
  std::size_t short_refused = 0;  // connections answered 503 since the last log line

  void accept();
  // Accepts the connections waiting in the backlog (up to 64) one at a time with the spare
  // descriptor, answers each 503 naming the limit, and closes it.
  void refuse_waiting();
};

namespace {

// One connection. Every handler runs on the connection's strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer::Impl& server)
      : stream_(std::move(socket)), server_(server) {
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = endpoint_text(ep);
  }
  ~Session() {
    end_stream();
    if (streaming_) {
      std::lock_guard lock(server_.streams_mu);
      server_.streams.erase(this);
    }
    --server_.connections;
  }

  void run() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
  }

  // Ends the stream's subscription once: from the destructor, an abort, or stop().
  void end_stream() {
    if (stream_closed_.exchange(true)) return;
    if (on_close_) {
      auto f = std::move(on_close_);
      on_close_ = nullptr;
      f();
    }
  }

 private:
  const HttpServerOptions& options() const { return server_.options; }

  void read() {
    parser_.emplace();
    parser_->body_limit(options().body_limit);
    parser_->header_limit(static_cast<std::uint32_t>(options().header_limit));
    stream_.expires_after(options().read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream) return shutdown();
    if (ec) {
      if (ec == http::error::body_limit) {
        return reply_error(413, "body_too_large",
                           fmt::format("request body exceeds {} bytes", options().body_limit));
      }
      if (ec == http::error::header_limit) {
        return reply_error(431, "headers_too_large",
                           fmt::format("request headers exceed {} bytes", options().header_limit));
      }
      if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
          ec != http::error::partial_message) {
        return reply_error(400, "bad_request", "malformed HTTP request: " + ec.message());
      }
      return abort();  // timeout, reset, or a request cut short
    }
    auto& req = parser_->get();
    HttpRequest r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    if (auto it = req.find(http::field::authorization); it != req.end()) {
      r.authorization = std::string(it->value());
    }
    r.body = std::move(req.body());
    r.remote = remote_;
    read_at_ = std::chrono::steady_clock::now();
    route_ = -1;
    const bool keep_alive = req.keep_alive();
    version_ = req.version();
    head_ = req.method() == http::verb::head;
    // A handler that never blocks runs here, on the connection's strand. Others may block (an
    // operator change waits for its commit, a Redis round trip), so they run on the handler
    // pool and the I/O threads only move bytes.
    if (options().run_inline && options().run_inline(r)) {
      return respond(call_handler(r), keep_alive);
    }
    net::post(*server_.handlers, [self = shared_from_this(), r = std::move(r), keep_alive] {
      HttpResponse res = self->call_handler(r);
      net::post(self->stream_.get_executor(), [self, res = std::move(res), keep_alive]() mutable {
        self->respond(std::move(res), keep_alive);
      });
    });
  }

  // On the strand.
  void respond(HttpResponse res, bool keep_alive) {
    if (res.route >= 0) route_ = res.route;
    if (res.deferred) return wait_deferred(std::move(res.deferred), keep_alive);
    if (options().on_response) {
      options().on_response(route_, res.status, std::chrono::steady_clock::now() - read_at_);
    }
    if (head_) return write_head(std::move(res), keep_alive);
    if (res.stream) return start_stream(std::move(res));
    write(std::move(res), keep_alive);
  }

  // Parks the session in the hub until the handler resolves its response (from any thread),
  // then writes it on the strand. If the server stops first, the response goes nowhere.
  void wait_deferred(std::shared_ptr<DeferredResponse> deferred, bool keep_alive) {
    auto hub = server_.deferred;
    {
      std::lock_guard lock(hub->mu);
      if (hub->stopped) return;
      hub->waiting[this] = shared_from_this();
    }
    const Session* key = this;
    deferred->on_resolved([hub, key, keep_alive](HttpResponse res) {
      std::lock_guard lock(hub->mu);
      if (hub->stopped) return;
      auto it = hub->waiting.find(key);
      if (it == hub->waiting.end()) return;
      std::shared_ptr<Session> s = std::move(it->second);
      hub->waiting.erase(it);
      // Posted under the hub's lock, holding the only reference: stop() cannot destroy the
      // io_context in between, and nothing here outlives it.
      auto executor = s->stream_.get_executor();
      net::post(executor, [s = std::move(s), res = std::move(res), keep_alive]() mutable {
        s->respond(std::move(res), keep_alive);
      });
    });
  }

  HttpResponse call_handler(const HttpRequest& r) {
    HttpResponse res;
    try {
      res = server_.handler(r);
    } catch (const std::exception& e) {
      spdlog::error("api: {} {}: handler threw: {}", r.method, r.target, e.what());
      res = HttpResponse{};
      res.status = 500;
      res.body = error_body("internal", e.what());
    } catch (...) {
      res = HttpResponse{};
      res.status = 500;
      res.body = error_body("internal", "unknown exception");
    }
    return res;
  }

  void reply_error(int status, std::string_view code, std::string_view message) {
    HttpResponse res;
    res.status = status;
    res.body = error_body(code, message);
    if (options().on_response) options().on_response(-1, status, std::nullopt);
    unread_ = true;
    head_ = parser_ && parser_->is_header_done() && parser_->get().method() == http::verb::head;
    if (head_) return write_head(std::move(res), /*keep_alive=*/false);
    write(std::move(res), /*keep_alive=*/false);
  }

  // The answer to a HEAD: the header GET would get, with the Content-Length of the body GET
  // would send, and no body, whatever the status (RFC 9110 §9.3.2), so a keep-alive client
  // reads the next answer from the right byte. A stream's header has no length; the
  // connection closes after it.
  void write_head(HttpResponse res, bool keep_alive) {
    auto msg = std::make_shared<http::response<http::empty_body>>(
        static_cast<http::status>(res.status), version_);
    msg->set(http::field::server, "schedd");
    msg->set(http::field::content_type, res.content_type);
    if (res.stream) msg->set(http::field::cache_control, "no-cache");
    for (auto& [name, value] : res.headers) msg->set(name, value);
    if (res.stream) {
      keep_alive = false;
    } else {
      msg->content_length(res.body.size());
    }
    msg->keep_alive(keep_alive);
    auto serializer = std::make_shared<http::response_serializer<http::empty_body>>(*msg);
    stream_.expires_after(options().write_timeout);
    http::async_write_header(stream_, *serializer,
                             [self = shared_from_this(), msg, serializer, keep_alive](
                                 beast::error_code ec, std::size_t) {
                               if (ec) return self->abort();
                               if (!keep_alive) return self->shutdown();
                               self->read();
                             });
  }

  void write(HttpResponse res, bool keep_alive) {
    auto msg = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(res.status), version_);
    msg->set(http::field::server, "schedd");
    msg->set(http::field::content_type, res.content_type);
    for (auto& [name, value] : res.headers) msg->set(name, value);
    msg->body() = std::move(res.body);
    msg->keep_alive(keep_alive);
    msg->prepare_payload();
    stream_.expires_after(options().write_timeout);
    http::async_write(stream_, *msg,
                      [self = shared_from_this(), msg](beast::error_code ec, std::size_t) {
                        if (ec) return self->abort();
                        if (msg->need_eof())
                          return self->unread_ ? self->linger() : self->shutdown();
                        self->read();
                      });
  }

  // After an answer to a request that was not read whole (413, 431, 400), the client may still
  // be sending. Closing with its bytes unread would make the kernel answer them with a reset,
  // which can discard our answer in the client's receive queue before it reads it. So: half
  // close, then read and drop what still comes, for at most kLingerTime in all, and close when
  // the client does (as web servers' "lingering close").
  static constexpr std::chrono::seconds kLingerTime{2};
  void linger() {
    shutdown();
    stream_.expires_after(kLingerTime);
    drain(std::make_shared<std::array<char, 16384>>());
  }
  void drain(std::shared_ptr<std::array<char, 16384>> sink) {
    stream_.async_read_some(net::buffer(*sink),
                            [self = shared_from_this(), sink](beast::error_code ec, std::size_t) {
                              if (ec)
                                return self->abort();  // the client closed, or kLingerTime is up
                              self->drain(sink);
                            });
  }

  void start_stream(HttpResponse res) {
    streaming_ = true;
    {
      std::lock_guard lock(server_.streams_mu);
      server_.streams[this] = weak_from_this();
    }
    chunked_ = version_ >= 11;
    header_ = std::make_unique<http::response<http::empty_body>>(
        static_cast<http::status>(res.status), version_);
    header_->set(http::field::server, "schedd");
    header_->set(http::field::content_type, res.content_type);
    header_->set(http::field::cache_control, "no-cache");
    for (auto& [name, value] : res.headers) header_->set(name, value);
    if (chunked_) {
      header_->chunked(true);
    } else {
      header_->keep_alive(false);
    }
    serializer_ = std::make_unique<http::response_serializer<http::empty_body>>(*header_);
    stream_.expires_after(options().write_timeout);
    http::async_write_header(stream_, *serializer_,
                             [self = shared_from_this(), open = std::move(res.stream)](
                                 beast::error_code ec, std::size_t) {
                               if (ec) return self->abort();
                               self->stream_.expires_never();
                               self->watch_disconnect();
                               std::weak_ptr<Session> weak = self;
                               auto executor = self->stream_.get_executor();
                               StreamPush push = [weak, executor](std::string chunk) -> bool {
                                 auto s = weak.lock();
                                 if (!s || s->stream_closed_) return false;
                                 net::post(executor, [s, chunk = std::move(chunk)]() mutable {
                                   s->enqueue(std::move(chunk));
                                 });
                                 return true;
                               };
                               auto on_close = open(push);
                               if (self->stream_closed_) {
                                 if (on_close) on_close();
                               } else {
                                 self->on_close_ = std::move(on_close);
                               }
                             });
  }

  // The client sends nothing more on a stream; a read that ends means it went away.
  void watch_disconnect() {
    stream_.socket().async_read_some(
        net::buffer(discard_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
          if (ec) return self->abort();
          self->watch_disconnect();
        });
  }

  void enqueue(std::string chunk) {
    if (stream_closed_ || chunk.empty()) return;
    backlog_ += chunk.size();
    if (backlog_ > options().stream_backlog) {
      spdlog::warn("api: stream to {} closed: client is {} bytes behind", remote_, backlog_);
      return abort();
    }
    out_.push_back(std::move(chunk));
    if (!writing_) write_next();
  }

  void write_next() {
    if (out_.empty() || stream_closed_) {
      writing_ = false;
      return;
    }
    writing_ = true;
    auto data = std::make_shared<std::string>(std::move(out_.front()));
    out_.pop_front();
    stream_.expires_after(options().write_timeout);
    auto done = [self = shared_from_this(), data](beast::error_code ec, std::size_t) {
      self->backlog_ -= data->size();
      if (ec) return self->abort();
      self->write_next();
    };
    if (chunked_) {
      net::async_write(stream_, http::make_chunk(net::buffer(*data)), std::move(done));
    } else {
      net::async_write(stream_, net::buffer(*data), std::move(done));
    }
  }

  void shutdown() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  void abort() {
    end_stream();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  HttpServer::Impl& server_;
  std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  unsigned version_ = 11;
  bool head_ = false;    // the request being answered is a HEAD
  bool unread_ = false;  // reply_error: the request was not read whole (see linger)
  // For on_response: when the request being answered was read, and its route (-1: none yet).
  std::chrono::steady_clock::time_point read_at_{};
  int route_ = -1;
  // Streaming state.
  bool streaming_ = false;
  bool chunked_ = true;
  std::atomic<bool> stream_closed_{false};
  std::function<void()> on_close_;
  std::unique_ptr<http::response<http::empty_body>> header_;
  std::unique_ptr<http::response_serializer<http::empty_body>> serializer_;
  std::deque<std::string> out_;
  std::size_t backlog_ = 0;
  bool writing_ = false;
  std::array<char, 512> discard_{};
};

}  // namespace

namespace {
std::string nofile_limit_text() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return "unlimited";
  return std::to_string(rl.rlim_cur);
}
}  // namespace

void HttpServer::Impl::refuse_waiting() {
  // The listening socket is non-blocking (asio made it so for async_accept), so accept4
  // returns at once when no client waits.
  for (int i = 0; i < 64; ++i) {
    if (spare_fd < 0) spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (spare_fd < 0) return;
    ::close(spare_fd);
    spare_fd = -1;
    const int fd = ::accept4(acceptor->native_handle(), nullptr, nullptr, SOCK_CLOEXEC);
    spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    const std::string body = error_body("out_of_file_descriptors",
                                        "the daemon is out of file descriptors (RLIMIT_NOFILE " +
                                            nofile_limit_text() + "); try again shortly");
    const std::string reply = fmt::format(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        "Retry-After: 1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{}",
        body.size(), body);
    // Best effort and never blocking: a fresh socket's send buffer takes this at once. The
    // request already received is read first, so that close() sends FIN, not a reset that
    // would discard the answer at the client.
    char discard[4096];
    while (::recv(fd, discard, sizeof discard, MSG_DONTWAIT) > 0) {
    }
    [[maybe_unused]] ssize_t n =
        ::send(fd, reply.data(), reply.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    ::shutdown(fd, SHUT_WR);
    ::close(fd);
    ++short_refused;
  }
}

void HttpServer::Impl::accept() {
  acceptor->async_accept(net::make_strand(*ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor->is_open()) return;
      const bool no_fds = ec == net::error::no_descriptors || ec.value() == ENFILE ||
                          ec == net::error::no_buffer_space || ec == net::error::no_memory;
      if (!no_fds) {
        spdlog::warn("api: accept failed: {}", ec.message());
        accept();
        return;
      }
      const auto now = std::chrono::steady_clock::now();
      // Once per shortage, and at most once per 10 s when the daemon hovers at its limit.
      if (!short_since && (!short_logged || now - *short_logged >= std::chrono::seconds(10))) {
        short_since = now;
        short_logged = now;
        spdlog::error(
            "api: cannot accept connections: {} (RLIMIT_NOFILE {}); answering 503 and retrying "
            "every {} ms until descriptors free up",
            ec.message(), nofile_limit_text(), kAcceptPause.count());
      }
      refuse_waiting();
      accept_timer->expires_after(kAcceptPause);
      accept_timer->async_wait([this](beast::error_code wait_ec) {
        if (wait_ec || !acceptor->is_open()) return;
        accept();
      });
      return;
    }
    if (short_since) {
      spdlog::warn(
          "api: accepting connections again after {} ms out of file descriptors ({} "
          "connections answered 503)",
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                *short_since)
              .count(),
          short_refused);
      short_since.reset();
      short_refused = 0;
    }
    if (connections.load() >= options.max_connections) {
      beast::error_code ignored;
      socket.close(ignored);
    } else {
      ++connections;
      std::make_shared<Session>(std::move(socket), *this)->run();
    }
    accept();
  });
}

StatusOr<std::unique_ptr<HttpServer>> HttpServer::start(HttpServerOptions options,
                                                        HttpHandler handler) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->handler = std::move(handler);
  impl->ioc = std::make_unique<net::io_context>(static_cast<int>(impl->options.threads));
  auto endpoint = parse_listen(*impl->ioc, impl->options.listen);
  if (!endpoint.is_ok()) return endpoint.status();
  if (impl->options.require_loopback && !endpoint->address().is_loopback()) {
    return failed_precondition("refusing to listen on " + endpoint_text(*endpoint) +
                               ", which is not a loopback address, without an API token "
                               "([api] token_file or token_env)");
  }
  impl->acceptor = std::make_unique<tcp::acceptor>(*impl->ioc);
  beast::error_code ec;
  impl->acceptor->open(endpoint->protocol(), ec);
  if (!ec) impl->acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor->bind(*endpoint, ec);
  if (!ec) impl->acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec) return unavailable("cannot listen on " + endpoint_text(*endpoint) + ": " + ec.message());
  impl->bound = impl->acceptor->local_endpoint(ec);
  if (ec) return unavailable("cannot read the bound address: " + ec.message());
  impl->handlers =
      std::make_unique<net::thread_pool>(std::max<std::size_t>(1, impl->options.handler_threads));
  impl->accept_timer = std::make_unique<net::steady_timer>(*impl->ioc);
  impl->spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  impl->accept();
  const std::size_t threads = std::max<std::size_t>(1, impl->options.threads);
  for (std::size_t i = 0; i < threads; ++i) {
    impl->threads.emplace_back([ioc = impl->ioc.get()] {
      name_this_thread("schedd-http");
      for (;;) {
        try {
          ioc->run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("api: I/O thread: {}", e.what());
        }
      }
    });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::stop() {
  std::lock_guard lock(impl_->stop_mu);
  if (impl_->stopped) return;
  impl_->stopped = true;
  net::post(*impl_->ioc, [impl = impl_.get()] {
    beast::error_code ec;
    impl->acceptor->close(ec);
  });
  impl_->ioc->stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  // Handlers in progress finish; their responses go nowhere.
  impl_->handlers->stop();
  impl_->handlers->join();
  // Sessions waiting for a deferred response are dropped here, before the io_context; a
  // store that resolves them later finds the hub stopped.
  std::map<const Session*, std::shared_ptr<Session>> waiting;
  {
    std::lock_guard g(impl_->deferred->mu);
    impl_->deferred->stopped = true;
    waiting.swap(impl_->deferred->waiting);
  }
  waiting.clear();
  // No handler runs now. End every stream's subscription before the io_context (and with it
  // every connection) goes, so that no publisher reaches a connection afterwards.
  std::vector<std::shared_ptr<Session>> streams;
  {
    std::lock_guard g(impl_->streams_mu);
    for (auto& [key, weak] : impl_->streams) {
      if (auto s = weak.lock()) streams.push_back(std::move(s));
    }
  }
  for (auto& s : streams) s->end_stream();
  streams.clear();
  beast::error_code ec;
  impl_->acceptor->close(ec);
  impl_->acceptor.reset();
  impl_->accept_timer.reset();
  if (impl_->spare_fd >= 0) ::close(impl_->spare_fd);
  impl_->spare_fd = -1;
  impl_->handlers.reset();  // before the io_context: abandoned calls hold connections
  impl_->ioc.reset();       // destroys the connections still waiting on I/O
}

std::string HttpServer::address() const { return endpoint_text(impl_->bound); }
uint16_t HttpServer::port() const { return impl_->bound.port(); }

}  // namespace schedd::api
