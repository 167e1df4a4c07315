#include "client.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace schedctl {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

void set_timeouts(tcp::socket& s, std::chrono::seconds t) {
  timeval tv{static_cast<time_t>(t.count()), 0};
  setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

}  // namespace

ApiClient::ApiClient(std::string address, std::optional<std::string> token,
                     std::chrono::seconds timeout)
    : token_(std::move(token)), timeout_(timeout) {
  if (address.rfind("http://", 0) == 0) address = address.substr(7);
  while (!address.empty() && address.back() == '/') address.pop_back();
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) {
    host_ = address;
    port_ = "7878";
  } else {
    host_ = address.substr(0, colon);
    port_ = address.substr(colon + 1);
  }
  if (host_.size() >= 2 && host_.front() == '[' && host_.back() == ']') {
    host_ = host_.substr(1, host_.size() - 2);
  }
}

HttpResult ApiClient::call(const std::string& method, const std::string& target,
                           const std::string& body) {
  HttpResult r;
  try {
    net::io_context ioc;
    tcp::resolver resolver(ioc);
    tcp::socket sock(ioc);
    net::connect(sock, resolver.resolve(host_, port_));
    set_timeouts(sock, timeout_);
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, host_);
    req.set(http::field::user_agent, "schedctl");
    if (token_) req.set(http::field::authorization, "Bearer " + *token_);
    if (!body.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
    }
    req.prepare_payload();
    http::write(sock, req);
    beast::flat_buffer buffer;
    // No body limit (Beast's default is 8 MB): a store backup is as large as the store.
    http::response_parser<http::string_body> parser;
    parser.body_limit(boost::none);
    http::read(sock, buffer, parser);
    http::response<http::string_body> res = parser.release();
    r.status = res.result_int();
    r.body = std::move(res.body());
    for (const auto& f : res) r.headers[std::string(f.name_string())] = std::string(f.value());
  } catch (const std::exception& e) {
    r.status = 0;
    r.error = "cannot reach " + host_ + ":" + port_ + ": " + e.what();
  }
  return r;
}

std::string ApiClient::stream(
    const std::string& target,
    const std::function<bool(const std::string&, const std::string&)>& on_event) {
  try {
    net::io_context ioc;
    tcp::resolver resolver(ioc);
    tcp::socket sock(ioc);
    net::connect(sock, resolver.resolve(host_, port_));
    set_timeouts(sock, timeout_);
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, host_);
    req.set(http::field::accept, "text/event-stream");
    if (token_) req.set(http::field::authorization, "Bearer " + *token_);
    http::write(sock, req);
    beast::flat_buffer buffer;
    http::response_parser<http::empty_body> parser;
    std::string text;
    std::function<std::size_t(std::uint64_t, beast::string_view, beast::error_code&)> on_chunk =
        [&](std::uint64_t, beast::string_view data, beast::error_code&) {
          text.append(data.data(), data.size());
          return data.size();
        };
    parser.on_chunk_body(on_chunk);
    http::read_header(sock, buffer, parser);
    if (parser.get().result_int() != 200) {
      return "HTTP " + std::to_string(parser.get().result_int()) + " from " + target;
    }
    for (;;) {
      for (auto end = text.find("\n\n"); end != std::string::npos; end = text.find("\n\n")) {
        const std::string block = text.substr(0, end);
        text.erase(0, end + 2);
        std::string name = "message", data;
        std::size_t pos = 0;
        while (pos < block.size()) {
          std::size_t nl = block.find('\n', pos);
          if (nl == std::string::npos) nl = block.size();
          const std::string line = block.substr(pos, nl - pos);
          pos = nl + 1;
          if (line.rfind("event:", 0) == 0)
            name = line.substr(line.size() > 6 && line[6] == ' ' ? 7 : 6);
          if (line.rfind("data:", 0) == 0) {
            if (!data.empty()) data += "\n";
            data += line.substr(line.size() > 5 && line[5] == ' ' ? 6 : 5);
          }
        }
        if (data.empty()) continue;  // a comment or retry line
        if (!on_event(name, data)) return "";
      }
      http::read_some(sock, buffer, parser);
      if (parser.is_done()) return "the server ended the stream";
    }
  } catch (const std::exception& e) {
    return "stream from " + host_ + ":" + port_ + ": " + e.what();
  }
}

}  // namespace schedctl
