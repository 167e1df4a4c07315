// HttpClient: a small synchronous HTTP/1.1 client (Boost.Beast) for tests that talk to a real
// daemon: one keep-alive connection, reconnecting when the server closed it. Errors (refused,
// reset, killed server) come back as status 0 with the error text in `body`, never as
// exceptions. `open_stream` turns the connection into a server-sent-events stream that stays
// open until `close()` or destruction. Not thread-safe; one per thread.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
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

  // Sees every answer send() receives (method, target, status, headers, body), when set: the
  // test binary checks each against docs/openapi.yaml (api_test.cc). Set it before any client
  // sends; it is called from the sending thread.
  using Observer = std::function<void(const std::string& method, const std::string& target,
                                      int status, const std::map<std::string, std::string>& headers,
                                      const std::string& body)>;
  static Observer& observer() {
    static Observer o;
    return o;
  }

  Response get(const std::string& target) {
    return send(boost::beast::http::verb::get, target, "");
  }
  Response post(const std::string& target, const std::string& body) {
    return send(boost::beast::http::verb::post, target, body);
  }

  // GET `target` as a stream (server-sent events): reads the response header and body data
  // until `until` appears in it (or `timeout` passes), then keeps the connection open. The
  // result's body is the data read so far. The client must not send requests afterwards.
  Response open_stream(const std::string& target, const std::string& until = "\n\n",
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    namespace http = boost::beast::http;
    boost::beast::error_code ec;
    stream_.reset();
    stream_.emplace(io_);
    stream_->expires_after(timeout);
    boost::asio::ip::tcp::endpoint ep(boost::asio::ip::make_address(host_), port_);
    stream_->connect(ep, ec);
    if (ec) return fail(ec);
    http::request<http::empty_body> req(http::verb::get, target, 11);
    req.set(http::field::host, host_);
    if (token_) req.set(http::field::authorization, "Bearer " + *token_);
    http::write(*stream_, req, ec);
    if (ec) return fail(ec);
    stream_text_.clear();
    stream_buffer_.clear();
    stream_parser_.emplace();
    stream_parser_->body_limit(boost::none);
    stream_on_chunk_ = [this](std::uint64_t, boost::beast::string_view data,
                              boost::beast::error_code&) {
      stream_text_.append(data.data(), data.size());
      return data.size();
    };
    stream_parser_->on_chunk_body(stream_on_chunk_);
    http::read_header(*stream_, stream_buffer_, *stream_parser_, ec);
    if (ec) return fail(ec);
    Response r{static_cast<int>(stream_parser_->get().result_int()), "", ""};
    while (r.status == 200 && stream_text_.find(until) == std::string::npos) {
      http::read_some(*stream_, stream_buffer_, *stream_parser_, ec);
      if (ec) return fail(ec);
    }
    stream_->expires_never();
    r.body = stream_text_;
    return r;
  }

  // Closes the connection (a stream, or an idle keep-alive connection).
  void close() {
    stream_parser_.reset();
    stream_.reset();
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
      if (observer()) {
        std::map<std::string, std::string> headers;
        for (const auto& f : res) headers[std::string(f.name_string())] = std::string(f.value());
        observer()(std::string(http::to_string(method)), target, r.status, headers, r.body);
      }
      if (!res.keep_alive()) stream_.reset();
      return r;
    }
    return {0, "unreachable", ""};
  }

 private:
  Response fail(const boost::beast::error_code& ec) {
    close();
    return {0, ec.message(), ""};
  }

  std::string host_;
  uint16_t port_;
  std::optional<std::string> token_;
  boost::asio::io_context io_;
  std::optional<boost::beast::tcp_stream> stream_;
  // open_stream's state: the parser keeps reading chunks into stream_text_.
  boost::beast::flat_buffer stream_buffer_;
  std::optional<boost::beast::http::response_parser<boost::beast::http::empty_body>> stream_parser_;
  std::function<std::size_t(std::uint64_t, boost::beast::string_view, boost::beast::error_code&)>
      stream_on_chunk_;
  std::string stream_text_;
};

}  // namespace schedd::testing
