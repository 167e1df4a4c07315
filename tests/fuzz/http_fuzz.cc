// libFuzzer target for the HTTP transport (core/api/http_server.cc): the bytes of the input
// are what a client sends on one connection to a real HttpServer on 127.0.0.1 port 0, then
// the client half-closes and reads until the server closes. This fuzzes Beast's request
// parser with the settings the server gives it (body and header limits, made small here so
// that inputs reach them), the 400/413/431 answers, keep-alive and pipelining. The handler
// answers 200 with the request's method, target and body size.
//
// Every answer must be an HTTP/1.x response with a status the server can give (200 from the
// handler, 400 malformed, 413 body too large, 431 headers too large); the handler never sees
// a body over the limit; the server answers or closes within 10 s; never a crash.
//
// Built as `http_fuzz` (fuzz preset) and `http_fuzz_replay` (every build); see
// tests/fuzz/CMakeLists.txt.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "core/api/http_server.h"
#include "fuzz_check.h"

namespace {

using schedd::api::HttpRequest;
using schedd::api::HttpResponse;
using schedd::api::HttpServer;
using schedd::api::HttpServerOptions;

constexpr std::size_t kBodyLimit = 1024;
constexpr std::size_t kHeaderLimit = 512;

HttpServer* start_server() {
  HttpServerOptions options;
  options.listen = "127.0.0.1:0";
  options.threads = 1;
  options.handler_threads = 1;
  options.body_limit = kBodyLimit;
  options.header_limit = kHeaderLimit;
  options.read_timeout = std::chrono::seconds(5);
  options.write_timeout = std::chrono::seconds(5);
  // Half the requests inline, as the API runs its non-blocking ones.
  options.run_inline = [](const HttpRequest& r) { return r.target.size() % 2 == 0; };
  auto server = HttpServer::start(options, [](const HttpRequest& r) {
    if (r.body.size() > kBodyLimit) {
      schedd::fuzz::fail("http_fuzz", "the handler got a body over the limit", r.body);
    }
    HttpResponse res;
    res.content_type = "text/plain";
    res.body = r.method + " " + r.target + " " + std::to_string(r.body.size());
    return res;
  });
  if (!server.is_ok()) {
    schedd::fuzz::fail("http_fuzz", "the server did not start", server.status().message());
  }
  return std::move(server).value().release();  // never freed: serves every input
}

// connect(), finishing a connection that a signal interrupted (libFuzzer's -timeout alarm
// fires every second): it goes on in the background, so wait until it is writable.
bool connect_to(int fd, const sockaddr_in& addr) {
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) return true;
  if (errno != EINTR && errno != EINPROGRESS) return false;
  pollfd p{fd, POLLOUT, 0};
  while (::poll(&p, 1, 10000) < 0 && errno == EINTR) {
  }
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return false;
  errno = err;
  return err == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Quiet: errors come back as statuses and answers; the log would only slow the fuzzer.
  static const bool quiet = (spdlog::set_level(spdlog::level::off), true);
  (void)quiet;
  static HttpServer* const server = start_server();
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  FUZZ_CHECK("http_fuzz", fd >= 0, "socket() failed", input);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  // Each connection from its own loopback source address (127.1.x.y): the server closes
  // first, so each connection leaves a TIME_WAIT that holds its 4-tuple for a minute, and a
  // fixed source address runs out of ports after ~28,000 inputs.
  static uint32_t connections = 0;
  ++connections;
  sockaddr_in source{};
  source.sin_family = AF_INET;
  source.sin_addr.s_addr = htonl((127u << 24) | (1u << 16) | (connections & 0xffffu));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&source), sizeof source) != 0) {
    const std::string what = std::string("bind() failed: ") + std::strerror(errno);
    schedd::fuzz::fail("http_fuzz", what.c_str(), input);
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (!connect_to(fd, addr)) {
    const std::string what = std::string("connect() failed: ") + std::strerror(errno);
    schedd::fuzz::fail("http_fuzz", what.c_str(), input);
  }

  // The server may answer (and close) before it read everything: a failed send is fine.
  std::size_t sent = 0;
  while (sent < size) {
    const ssize_t n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);

  std::string answer;
  char buf[4096];
  bool timed_out = false;
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      answer.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    timed_out = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    break;  // closed (or reset after an early answer)
  }
  ::close(fd);
  FUZZ_CHECK("http_fuzz", !timed_out, "the server neither answered nor closed within 10 s", input);

  // Every response in the answer starts with a status line the server can give. A response
  // to HEAD has a Content-Length but no body, so the walk stops where the next response is
  // not where the previous one's length says.
  std::size_t pos = 0;
  bool first = true;
  while (pos < answer.size()) {
    const std::string_view rest = std::string_view(answer).substr(pos);
    const bool is_response = rest.size() >= 12 && rest.substr(0, 7) == "HTTP/1.";
    if (!first && !is_response) break;
    FUZZ_CHECK("http_fuzz", is_response, "an answer that is not an HTTP/1.x response", input);
    first = false;
    const std::string_view code = rest.substr(9, 3);
    FUZZ_CHECK("http_fuzz", code == "200" || code == "400" || code == "413" || code == "431",
               "a status the server should not give", input);
    const std::size_t headers_end = rest.find("\r\n\r\n");
    FUZZ_CHECK("http_fuzz", headers_end != std::string_view::npos, "a truncated response", input);
    const std::string_view headers = rest.substr(0, headers_end);
    const std::size_t cl = headers.find("Content-Length: ");
    FUZZ_CHECK("http_fuzz", cl != std::string_view::npos, "a response without Content-Length",
               input);
    const std::size_t length =
        std::strtoull(std::string(headers.substr(cl + 16, 12)).c_str(), nullptr, 10);
    pos += headers_end + 4 + length;
  }
  return 0;
}
