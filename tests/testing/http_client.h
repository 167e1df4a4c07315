// HttpClient: a small synchronous HTTP/1.1 client (Boost.Beast) for tests that talk to a real
// daemon: one keep-alive connection, reconnecting when the server closed it. Errors (refused,
// reset, killed server) come back as status 0 with the error text in `body`, never as
// exceptions. Not thread-safe; one per thread.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace schedd::testing {

class HttpClient {
 public:
  struct Response {
    int status = 0;  // 0: no response (the error is in body)
    std::string body;
    std::string retry_after;
  };

  HttpClient(std::string host, uint16_t port, std::optional<std::string> token = std::nullopt)
      : host_(std::move(host)), port_(port), token_(std::move(token)) {}

  Response get(const std::string& target) {
    return send(boost::beast::http::verb::get, target, "");
  }
  Response post(const std::string& target, const std::string& body) {
    return send(boost::beast::http::verb::post, target, body);
  }

  Response send(boost::beast::http::verb method, const std::string& target,
                const std::string& body) {
    namespace http = boost::beast::http;
    for (int attempt = 0; attempt < 2; ++attempt) {
      boost::beast::error_code ec;
      if (!stream_) {
        stream_.emplace(io_);
        stream_->expires_after(std::chrono::seconds(10));
        boost::asio::ip::tcp::endpoint ep(boost::asio::ip::make_address(host_), port_);
        stream_->connect(ep, ec);
        if (ec) {
          stream_.reset();
          return {0, ec.message(), ""};
        }
      }
      http::request<http::string_body> req(method, target, 11);
      req.set(http::field::host, host_);
      req.set(http::field::content_type, "application/json");
      if (token_) req.set(http::field::authorization, "Bearer " + *token_);
      req.keep_alive(true);
      req.body() = body;
      req.prepare_payload();
      stream_->expires_after(std::chrono::seconds(10));
      http::write(*stream_, req, ec);
      boost::beast::flat_buffer buffer;
      http::response<http::string_body> res;
      if (!ec) http::read(*stream_, buffer, res, ec);
      if (ec) {
        stream_.reset();
        // A keep-alive connection the server closed meanwhile: one fresh try. Not for a
        // request that may have been received (a POST whose answer was lost stays lost).
        if (attempt == 0 && method == http::verb::get) continue;
        return {0, ec.message(), ""};
      }
      Response r{static_cast<int>(res.result_int()), res.body(), ""};
      if (auto it = res.find(http::field::retry_after); it != res.end()) {
        r.retry_after = std::string(it->value());
      }
      if (!res.keep_alive()) stream_.reset();
      return r;
    }
    return {0, "unreachable", ""};
  }

 private:
  std::string host_;
  uint16_t port_;
  std::optional<std::string> token_;
  boost::asio::io_context io_;
  std::optional<boost::beast::tcp_stream> stream_;
};

}  // namespace schedd::testing
