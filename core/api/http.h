// Transport-neutral HTTP request and response, shared by the Beast transport
// (http_server.cc) and the routing layer (api.cc), so that only one translation unit
// includes Beast. Values; thread-safe to copy.
#pragma once

#include <functional>
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

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  std::string body;
  // When set, the response is an endless stream: after the header is sent, the transport
  // calls `stream(push)` once, and calls the function it returns once when the connection
  // ends (client gone, write timeout, server stop). `body` is ignored.
  std::function<std::function<void()>(StreamPush push)> stream;
};

// Maps a request to a response. Called on the transport's threads, concurrently; must not
// throw (the transport answers 500 if it does).
using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

}  // namespace schedd::api
