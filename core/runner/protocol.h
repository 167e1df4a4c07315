// The runner protocol: what the daemon and a schedd-runner process say to each other over
// two socketpairs (docs/sdk.md "Out of process").
//
//   data socket     daemon -> runner: RUN
//                   runner -> daemon: HELLO or LOAD_ERROR (once, first), then per run LOG*,
//                                     PROGRESS*, RESULT
//   control socket  daemon -> runner: STOP, EXTEND (read by the runner's watchdog thread, so
//                                     they arrive while the plugin's code holds the runner's
//                                     main thread)
//
// A frame is a 4-byte little-endian length (of what follows), a 1-byte type and the payload.
// Payload fields are little-endian integers, IEEE doubles and strings as a 4-byte length
// and the bytes. A frame longer than kMaxFrame, a truncated one, an unknown type or a payload
// that does not decode is a protocol error: the receiver drops the connection (the daemon
// kills that runner and fails the attempt naming the plugin), and never trusts the rest.
//
// Thread-safety: the codec functions are pure; FrameReader is used by one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/params.h"
#include "core/common/status.h"

namespace schedd::runner {

// Bumped on any change of a frame below. Checked at the handshake in both directions: the
// daemon passes its version on the runner's command line, the runner answers it in HELLO.
inline constexpr uint32_t kProtocolVersion = 1;
// Longest frame either side accepts: a run's params, or a result with its output tail.
inline constexpr uint32_t kMaxFrame = 16u << 20;

enum class FrameType : uint8_t {
  kHello = 1,      // runner: protocol, pid, the plugin's manifest as read by the loader
  kLoadError = 2,  // runner: the plugin was refused (the loader's message)
  kLog = 3,        // runner: a log line of the current run
  kProgress = 4,   // runner: a progress report of the current run
  kResult = 5,     // runner: the current run ended
  kRun = 16,       // daemon: run one attempt
  kStop = 32,      // daemon (control): stop the run with this sequence number
  kExtend = 33,    // daemon (control): the run may go on until this steady-clock instant
};

struct Hello {
  uint32_t protocol = kProtocolVersion;
  int64_t pid = 0;
  std::string plugin_name;
  std::string plugin_version;
  std::chrono::microseconds load_time{0};
  std::vector<ExecutorInfo> executors;  // plugin_file is not sent: the daemon knows it
};

struct RunFrame {
  uint64_t seq = 0;  // the runner's run number, echoed by LOG, PROGRESS, RESULT
  std::string executor;
  std::string execution_id;
  int32_t origin = 1;
  std::string name;
  std::string key;
  std::string lane;
  uint32_t attempt = 1;
  int64_t due_unix_ms = 0;
  int64_t deadline_unix_ms = 0;  // the timeout, as the plugin sees it; 0: none
  uint64_t fence = 0;
  // CLOCK_MONOTONIC nanoseconds (shared by every process on the machine) at which the
  // runner ends the run by exiting if it has not ended; 0: none.
  int64_t hard_deadline_ns = 0;
  ParamList params;
};

struct LogFrame {
  uint64_t seq = 0;
  int32_t level = 2;
  std::string message;
};

struct ProgressFrame {
  uint64_t seq = 0;
  double fraction = -1;
  std::string message;
};

struct ResultFrame {
  uint64_t seq = 0;
  int32_t status = 1;  // a schedd_status
  std::string message;
  std::string output;
  int64_t duration_ns = 0;
  uint64_t output_bytes = 0;  // what the run wrote to stdout/stderr, kept or not
};

struct StopFrame {
  uint64_t seq = 0;
};

struct ExtendFrame {
  uint64_t seq = 0;
  int64_t hard_deadline_ns = 0;
};

// Encoders append one whole frame (length, type, payload) to `out`.
void encode(const Hello& m, std::string& out);
void encode_load_error(std::string_view message, std::string& out);
void encode(const RunFrame& m, std::string& out);
void encode(const LogFrame& m, std::string& out);
void encode(const ProgressFrame& m, std::string& out);
void encode(const ResultFrame& m, std::string& out);
void encode(const StopFrame& m, std::string& out);
void encode(const ExtendFrame& m, std::string& out);

// Decoders read a frame's payload; kInvalidArgument naming the frame and what is wrong.
StatusOr<Hello> decode_hello(std::string_view payload);
StatusOr<std::string> decode_load_error(std::string_view payload);
StatusOr<RunFrame> decode_run(std::string_view payload);
StatusOr<LogFrame> decode_log(std::string_view payload);
StatusOr<ProgressFrame> decode_progress(std::string_view payload);
StatusOr<ResultFrame> decode_result(std::string_view payload);
StatusOr<StopFrame> decode_stop(std::string_view payload);
StatusOr<ExtendFrame> decode_extend(std::string_view payload);

struct Frame {
  FrameType type;
  std::string payload;
};

// Reads frames from a blocking or non-blocking stream socket. Not thread-safe.
class FrameReader {
 public:
  explicit FrameReader(int fd) : fd_(fd) {}
  // The next whole frame when one is buffered (no read), else nullopt.
  StatusOr<std::optional<Frame>> next();
  // Reads what the socket has (one read call). kUnavailable "closed" at end of stream (with
  // "in the middle of a frame" when a partial frame was buffered); kUnavailable on errors
  // other than EAGAIN/EINTR. Returns the bytes read (0 on EAGAIN).
  StatusOr<std::size_t> fill();

 private:
  int fd_;
  std::string buf_;
  std::size_t pos_ = 0;
};

// Writes all of `bytes` to a blocking socket (retrying on EINTR, never raising SIGPIPE).
// kUnavailable when the peer is gone.
Status write_all(int fd, std::string_view bytes);

// The protocol's clock: CLOCK_MONOTONIC in nanoseconds.
int64_t monotonic_ns();

}  // namespace schedd::runner
