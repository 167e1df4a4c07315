// libFuzzer target for the runner protocol (core/runner/protocol.h): the input is the byte
// stream one side of a runner's socket sends, read with FrameReader from a socketpair and
// every frame decoded by its type, as the daemon decodes a runner's HELLO, LOAD_ERROR, LOG,
// PROGRESS and RESULT, and the runner the daemon's RUN, STOP and EXTEND.
//
// Any stream must decode or fail with a message (a protocol error: the receiver drops the
// connection); a frame that decodes must encode back to a frame that decodes to the same
// encoding (re-encoding is stable). Never crashes, hangs or asserts.
//
// Built as `runner_protocol_fuzz` (fuzz preset) and `runner_protocol_fuzz_replay` (every
// build); see tests/fuzz/CMakeLists.txt.
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/runner/protocol.h"
#include "fuzz_check.h"

namespace {

using namespace schedd::runner;

// Decodes `payload` as a frame of `type`; on success returns its encoding, else "" (with the
// error's message checked). Unknown types are a protocol error too (returns "").
template <typename Decoded, typename Encode>
std::string reencode(const schedd::StatusOr<Decoded>& decoded, Encode encode,
                     std::string_view input) {
  if (!decoded.is_ok()) {
    FUZZ_CHECK("runner_protocol_fuzz", !decoded.status().message().empty(),
               "a decode error without a message", input);
    return "";
  }
  std::string out;
  encode(*decoded, out);
  return out;
}

std::string decode_and_encode(FrameType type, std::string_view payload, std::string_view input) {
  switch (type) {
    case FrameType::kHello:
      return reencode(
          decode_hello(payload), [](const Hello& m, std::string& o) { encode(m, o); }, input);
    case FrameType::kLoadError:
      return reencode(
          decode_load_error(payload),
          [](const std::string& m, std::string& o) { encode_load_error(m, o); }, input);
    case FrameType::kLog:
      return reencode(
          decode_log(payload), [](const LogFrame& m, std::string& o) { encode(m, o); }, input);
    case FrameType::kProgress:
      return reencode(
          decode_progress(payload), [](const ProgressFrame& m, std::string& o) { encode(m, o); },
          input);
    case FrameType::kResult:
      return reencode(
          decode_result(payload), [](const ResultFrame& m, std::string& o) { encode(m, o); },
          input);
    case FrameType::kRun:
      return reencode(
          decode_run(payload), [](const RunFrame& m, std::string& o) { encode(m, o); }, input);
    case FrameType::kStop:
      return reencode(
          decode_stop(payload), [](const StopFrame& m, std::string& o) { encode(m, o); }, input);
    case FrameType::kExtend:
      return reencode(
          decode_extend(payload), [](const ExtendFrame& m, std::string& o) { encode(m, o); },
          input);
  }
  return "";  // an unknown type: the receiver drops the connection
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The whole stream fits the socket's buffer, so one thread writes it all and then reads.
  if (size > 64 * 1024) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  int fds[2];
  FUZZ_CHECK("runner_protocol_fuzz", ::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0,
             "socketpair() failed", input);
  FUZZ_CHECK("runner_protocol_fuzz", write_all(fds[1], input).is_ok(), "write_all failed", input);
  ::close(fds[1]);

  FrameReader reader(fds[0]);
  for (int frames = 0;; ++frames) {
    auto frame = reader.next();
    if (!frame.is_ok()) {
      FUZZ_CHECK("runner_protocol_fuzz", !frame.status().message().empty(),
                 "a framing error without a message", input);
      break;  // a protocol error: the receiver drops the connection
    }
    if (!frame->has_value()) {
      auto filled = reader.fill();
      if (!filled.is_ok()) break;  // closed (maybe in the middle of a frame)
      continue;
    }
    const Frame& f = **frame;
    const std::string once = decode_and_encode(f.type, f.payload, input);
    if (once.empty()) break;  // does not decode: the receiver drops the connection
    FUZZ_CHECK("runner_protocol_fuzz",
               once.size() >= 5 && static_cast<uint8_t>(once[4]) == static_cast<uint8_t>(f.type),
               "an encoding with another type", input);
    const std::string twice = decode_and_encode(f.type, std::string_view(once).substr(5), input);
    FUZZ_CHECK("runner_protocol_fuzz", twice == once, "re-encoding a decoded frame is not stable",
               input);
  }
  ::close(fds[0]);
  return 0;
}
