// Transport-neutral HTTP request and response, shared by the Beast transport
// (http_server.cc) and the routing layer (api.cc), so that only one translation unit
// includes Beast. Values; thread-safe to copy.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace schedd::api {

struct HttpRequest {
  std::string method;         // "GET", "POST", ...
  std::string target;         // path and query as sent: "/v1/executions?status=queued"
  std::string authorization;  // the Authorization header, "" when absent
  std::string body;
  std::string remote;  // peer address, for logs
};

// Sends one chunk of an endless response (server-sent events). Callable from any thread.
// Returns false once the connection is gone; the caller should stop sending.
using StreamPush = std::function<bool(std::string chunk)>;

struct HttpResponse;

// A response that its handler finishes later, from any thread: a durable submission is
// answered when the store's commit that carries it is on disk, without a thread waiting for
// it. The handler returns an HttpResponse whose `deferred` is set and calls resolve() once;
// the transport calls on_resolved() once. Whichever comes second sends. Thread-safe.
class DeferredResponse {
 public:
  void resolve(HttpResponse response);
  void on_resolved(std::function<void(HttpResponse)> send);

 private:
  std::mutex mu_;
  std::unique_ptr<HttpResponse> response_;
  std::function<void(HttpResponse)> send_;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  std::string body;
  // When set, the response is an endless stream: after the header is sent, the transport
  // calls `stream(push)` once, and calls the function it returns once when the connection
  // ends (client gone, write timeout, server stop). `body` is ignored.
  std::function<std::function<void()>(StreamPush push)> stream;
  // When set, the real response comes through it later; everything else is ignored.
  std::shared_ptr<DeferredResponse> deferred;
  // Which route answered, as the handler numbers its routes (-1: none), passed back to the
  // handler's side through HttpServerOptions::on_response for its request metrics. A deferred
  // response's route is the one of the response that deferred it.
  int route = -1;
};

inline void DeferredResponse::resolve(HttpResponse response) {
  std::unique_lock lock(mu_);
  if (!send_) {
    response_ = std::make_unique<HttpResponse>(std::move(response));
    return;
  }
  auto send = std::move(send_);
  lock.unlock();
  send(std::move(response));
}

inline void DeferredResponse::on_resolved(std::function<void(HttpResponse)> send) {
  std::unique_lock lock(mu_);
  if (!response_) {
    send_ = std::move(send);
    return;
  }
  auto response = std::move(response_);
  lock.unlock();
  send(std::move(*response));
}

// Says whether a request's handler never waits on anything slow (disk, network, another
// request), so the transport may call it on an I/O thread instead of handing it to the
// handler pool. Called on the I/O threads; must be cheap.
using HttpInlinePredicate = std::function<bool(const HttpRequest&)>;

// Maps a request to a response. Called on the transport's threads, concurrently; must not
// throw (the transport answers 500 if it does).
using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

}  // namespace schedd::api
