// HttpServer: the HTTP/1.1 transport of the control API, on Boost.Beast and Boost.Asio. A
// small pool of threads runs every connection asynchronously, so a server-sent-event client
// or an idle keep-alive connection holds no thread. Handlers run on a separate pool, so a
// request that waits for the store (a durable submission) never holds up other connections'
// I/O, and many such requests can share one commit. Requests are parsed by Beast with limits
// on header and body size; a request must arrive within `read_timeout` (idle keep-alive
// connections are closed after it too), and every write must finish within `write_timeout`,
// so a client that stops reading is dropped instead of holding memory.
//
// Errors of the transport itself (too large, malformed, unsupported) are answered with the
// API's JSON error body. This header does not include Beast.
//
// Thread-safety: start, address and port are thread-safe; stop (or the destructor) must not
// be called from a handler.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/api/http.h"
#include "core/common/status.h"

namespace schedd::api {

struct HttpServerOptions {
  // "HOST:PORT" with an IP address or "localhost"; IPv6 as "[::1]:7878". Port 0 picks a
  // free port (see HttpServer::port()).
  std::string listen = "127.0.0.1:0";
  // Refuse to listen on an address that is not loopback (set when no token is configured).
  bool require_loopback = false;
  // I/O threads. Default: 2
  std::size_t threads = 2;
  // Threads that run handlers that may block (operator changes waiting for a commit, a
  // Redis round trip, long listings). Durable submissions do not hold one while they wait
  // (DeferredResponse). Idle threads cost ~8 KiB of RSS each. Default: 64
  std::size_t handler_threads = 64;
  // Largest request body. Default: 1 MiB
  std::size_t body_limit = 1 << 20;
  // Largest request line plus headers. Default: 16 KiB
  std::size_t header_limit = 16 << 10;
  // Time allowed for a whole request to arrive, also the idle keep-alive timeout.
  // Default: 30 s
  std::chrono::milliseconds read_timeout = std::chrono::seconds(30);
  // Time allowed for each write. Default: 30 s
  std::chrono::milliseconds write_timeout = std::chrono::seconds(30);
  // A stream whose unsent data grows beyond this (the client does not read) is closed.
  // Default: 256 KiB
  std::size_t stream_backlog = 256 << 10;
  // Connections beyond this are closed as soon as they are accepted. Default: 1024
  std::size_t max_connections = 1024;
  // Requests for which this returns true are handled on the I/O thread that read them,
  // saving two thread hops; their handlers must never block. Unset: every request goes to
  // the handler pool.
  HttpInlinePredicate run_inline;
  // Called once per answered request, on an I/O thread, as its response (a stream's header)
  // is about to be written: the response's `route`, its status, and the time since the
  // request was read (unset for the transport's own errors: malformed, too large). For
  // request metrics; must be cheap and must not throw. Unset: nothing is called.
  std::function<void(int route, int status, std::optional<std::chrono::nanoseconds> elapsed)>
      on_response;
};

class HttpServer {
 public:
  // Binds and starts serving. kInvalidArgument for a bad `listen`, kUnavailable when the
  // address cannot be bound (in use, not local), kFailedPrecondition when
  // `require_loopback` refuses it.
  static StatusOr<std::unique_ptr<HttpServer>> start(HttpServerOptions options,
                                                     HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Stops accepting, closes every connection (ending streams) and joins the threads.
  // Idempotent.
  void stop();

  // The bound address: "127.0.0.1:41234" ("[::1]:41234" for IPv6).
  std::string address() const;
  uint16_t port() const;

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace schedd::api
