// ApiClient: a small synchronous HTTP/1.1 client of the control API (docs/api.md) for
// schedctl, on Boost.Beast. One request per connection; every read and write is bounded by
// a timeout. Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace schedctl {

struct HttpResult {
  int status = 0;     // 0: no response; `error` says why
  std::string error;  // connection error text
  std::string body;
  std::map<std::string, std::string> headers;
};

class ApiClient {
 public:
  // `address` is "HOST:PORT" or "http://HOST:PORT".
  ApiClient(std::string address, std::optional<std::string> token,
            std::chrono::seconds timeout = std::chrono::seconds(30));

  HttpResult call(const std::string& method, const std::string& target,
                  const std::string& body = "");

  // Reads server-sent events from `target`, calling `on_event(name, data)` for each until it
  // returns false. Returns "" when stopped by on_event, else the error (HTTP status, closed
  // stream, timeout).
  std::string stream(const std::string& target,
                     const std::function<bool(const std::string&, const std::string&)>& on_event);

 private:
  std::string host_;
  std::string port_;
  std::optional<std::string> token_;
  std::chrono::seconds timeout_;
};

}  // namespace schedctl
