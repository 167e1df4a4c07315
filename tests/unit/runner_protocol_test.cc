// The runner protocol at the codec level (core/runner/protocol.h): every frame round-trips
// through a real socketpair and FrameReader; hand-built payloads (written here byte by byte,
// not with the codec under test) check the wire layout and that every malformed input is
// refused with a message rather than trusted. No processes.
#include "core/runner/protocol.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace schedd::runner {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;

// Little-endian payload bytes, built independently of the codec under test.
class Bytes {
 public:
  Bytes& u8(uint8_t v) {
    s_.push_back(static_cast<char>(v));
    return *this;
  }
  Bytes& u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) s_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return *this;
  }
  Bytes& u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) s_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return *this;
  }
  Bytes& i32(int32_t v) { return u32(static_cast<uint32_t>(v)); }
  Bytes& i64(int64_t v) { return u64(static_cast<uint64_t>(v)); }
  Bytes& str(std::string_view v) {
    u32(static_cast<uint32_t>(v.size()));
    s_.append(v);
    return *this;
  }
  const std::string& get() const { return s_; }

 private:
  std::string s_;
};

// length (of type + payload), type, payload.
std::string frame_bytes(uint8_t type, std::string_view payload) {
  std::string out = Bytes().u32(static_cast<uint32_t>(payload.size() + 1)).u8(type).get();
  out.append(payload);
  return out;
}

// The payload of a whole encoded frame (the codec's encoders append length and type).
std::string payload_of(const std::string& frame) { return frame.substr(5); }

// A connected pair of stream sockets, closed on destruction.
class SocketPair {
 public:
  SocketPair() {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) std::abort();
    reader_ = fds[0];
    writer_ = fds[1];
  }
  ~SocketPair() {
    close(reader_);
    close_writer();
  }
  int reader() const { return reader_; }
  void write(std::string_view bytes) { ASSERT_TRUE(write_all(writer_, bytes).is_ok()); }
  void close_writer() {
    if (writer_ >= 0) close(writer_);
    writer_ = -1;
  }

 private:
  int reader_ = -1;
  int writer_ = -1;
};

// Sends `bytes` through a socketpair and reads exactly one frame back with FrameReader.
Frame through_socket(const std::string& bytes) {
  SocketPair sp;
  // From another thread: a frame larger than the socket's buffer blocks its writer until
  // the reader below drains it.
  std::thread writer([&] {
    sp.write(bytes);
    sp.close_writer();
  });
  struct Join {
    std::thread& t;
    int fd;
    ~Join() {
      // An early return below: unblock the writer before joining it.
      shutdown(fd, SHUT_RD);
      t.join();
    }
  } join{writer, sp.reader()};
  FrameReader reader(sp.reader());
  while (true) {
    auto next = reader.next();
    EXPECT_TRUE(next.is_ok()) << next.status().message();
    if (!next.is_ok()) return Frame{};
    if (next->has_value()) {
      Frame f = std::move(**next);
      // Exactly one frame: nothing buffered behind it, and the stream ends cleanly.
      auto more = reader.next();
      EXPECT_TRUE(more.is_ok() && !more->has_value());
      auto end = reader.fill();
      EXPECT_FALSE(end.is_ok());
      EXPECT_EQ(end.status().message(), "closed");
      return f;
    }
    auto filled = reader.fill();
    EXPECT_TRUE(filled.is_ok()) << filled.status().message();
    if (!filled.is_ok()) return Frame{};
  }
}

// Params of every ParamType, with edge values (empty strings, empty containers, extremes).
ParamList every_param_type() {
  return {
      {"s", ParamValue::string("hello \xe2\x9c\x93 with\0nul"s)},
      {"empty", ParamValue::string("")},
      {"", ParamValue::string("an empty name")},
      {"i", ParamValue::integer(std::numeric_limits<int64_t>::min())},
      {"i_max", ParamValue::integer(std::numeric_limits<int64_t>::max())},
      {"d", ParamValue::number(-1.5e-300)},
      {"d_inf", ParamValue::number(std::numeric_limits<double>::infinity())},
      {"t", ParamValue::boolean(true)},
      {"f", ParamValue::boolean(false)},
      {"dur", ParamValue::duration(90s)},
      {"dur_neg", ParamValue::duration(-5ms)},
      {"list", ParamValue::list({"a", "", "c c"})},
      {"empty_list", ParamValue::list({})},
      {"map", ParamValue::map({{"k", "v"}, {"", "empty key"}, {"empty value", ""}})},
      {"empty_map", ParamValue::map({})},
  };
}

TEST(RunnerProtocolTest, HelloRoundTripsWithExecutorsAndParamSpecs) {
  Hello h;
  h.pid = 123456789012;
  h.plugin_name = "acme";
  h.plugin_version = "";
  h.load_time = 1234567us;
  ExecutorInfo sync;
  sync.name = "sync";
  sync.description = "";
  const ParamType types[] = {ParamType::kString,   ParamType::kInt,      ParamType::kDouble,
                             ParamType::kBool,     ParamType::kDuration, ParamType::kStringList,
                             ParamType::kStringMap};
  for (ParamType t : types) {
    ParamSpec p;
    p.name = std::string("p") + param_type_name(t);
    p.type = t;
    p.required = static_cast<int>(t) % 2 == 0;
    if (t == ParamType::kString) p.default_toml = "";  // present but empty: not "no default"
    if (t == ParamType::kInt) p.default_toml = "42";
    p.description = t == ParamType::kBool ? "" : "about " + p.name;
    sync.params.push_back(p);
  }
  ExecutorInfo bare;
  bare.name = "bare";
  bare.description = "no params";
  h.executors = {sync, bare};

  std::string bytes;
  encode(h, bytes);
  Frame f = through_socket(bytes);
  ASSERT_EQ(f.type, FrameType::kHello);
  auto got = decode_hello(f.payload);
  ASSERT_TRUE(got.is_ok()) << got.status().message();
  EXPECT_EQ(got->protocol, kProtocolVersion);
  EXPECT_EQ(got->pid, 123456789012);
  EXPECT_EQ(got->plugin_name, "acme");
  EXPECT_EQ(got->plugin_version, "");
  EXPECT_EQ(got->load_time, 1234567us);
  ASSERT_EQ(got->executors.size(), 2u);
  const ExecutorInfo& e = got->executors[0];
  EXPECT_EQ(e.name, "sync");
  EXPECT_EQ(e.description, "");
  // The decoder fills in the plugin from the HELLO; the file is the daemon's to know.
  EXPECT_EQ(e.plugin_name, "acme");
  EXPECT_EQ(e.plugin_version, "");
  EXPECT_EQ(e.plugin_file, "");
  ASSERT_EQ(e.params.size(), std::size(types));
  for (std::size_t i = 0; i < e.params.size(); ++i) {
    SCOPED_TRACE(e.params[i].name);
    EXPECT_EQ(e.params[i].name, sync.params[i].name);
    EXPECT_EQ(e.params[i].type, sync.params[i].type);
    EXPECT_EQ(e.params[i].required, sync.params[i].required);
    EXPECT_EQ(e.params[i].default_toml, sync.params[i].default_toml);
    EXPECT_EQ(e.params[i].description, sync.params[i].description);
  }
  EXPECT_EQ(got->executors[1].name, "bare");
  EXPECT_EQ(got->executors[1].description, "no params");
  EXPECT_TRUE(got->executors[1].params.empty());
}

TEST(RunnerProtocolTest, LoadErrorRoundTripsIncludingAnEmptyMessage) {
  for (std::string message : {std::string("manifest refused: abi 7"), std::string()}) {
    std::string bytes;
    encode_load_error(message, bytes);
    Frame f = through_socket(bytes);
    ASSERT_EQ(f.type, FrameType::kLoadError);
    auto got = decode_load_error(f.payload);
    ASSERT_TRUE(got.is_ok()) << got.status().message();
    EXPECT_EQ(*got, message);
  }
}

TEST(RunnerProtocolTest, RunRoundTripsWithParamsOfEveryType) {
  RunFrame m;
  m.seq = std::numeric_limits<uint64_t>::max();
  m.executor = "sync";
  m.execution_id = "";
  m.origin = 3;
  m.name = "nightly";
  m.key = "";
  m.lane = "slow";
  m.attempt = 7;
  m.due_unix_ms = -1;  // before the epoch: still an exact round trip
  m.deadline_unix_ms = 1700000000123;
  m.fence = 1ull << 63;
  m.hard_deadline_ns = std::numeric_limits<int64_t>::max();
  m.params = every_param_type();

  std::string bytes;
  encode(m, bytes);
  Frame f = through_socket(bytes);
  ASSERT_EQ(f.type, FrameType::kRun);
  auto got = decode_run(f.payload);
  ASSERT_TRUE(got.is_ok()) << got.status().message();
  EXPECT_EQ(got->seq, m.seq);
  EXPECT_EQ(got->executor, "sync");
  EXPECT_EQ(got->execution_id, "");
  EXPECT_EQ(got->origin, 3);
  EXPECT_EQ(got->name, "nightly");
  EXPECT_EQ(got->key, "");
  EXPECT_EQ(got->lane, "slow");
  EXPECT_EQ(got->attempt, 7u);
  EXPECT_EQ(got->due_unix_ms, -1);
  EXPECT_EQ(got->deadline_unix_ms, 1700000000123);
  EXPECT_EQ(got->fence, 1ull << 63);
  EXPECT_EQ(got->hard_deadline_ns, std::numeric_limits<int64_t>::max());
  ASSERT_EQ(got->params.size(), m.params.size());
  for (std::size_t i = 0; i < m.params.size(); ++i) {
    SCOPED_TRACE(m.params[i].first);
    EXPECT_EQ(got->params[i].first, m.params[i].first);
    EXPECT_EQ(got->params[i].second, m.params[i].second);  // type and value
  }
}

TEST(RunnerProtocolTest, NanDoubleParamAndProgressKeepTheirBits) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  RunFrame m;
  m.params = {{"n", ParamValue::number(nan)}};
  std::string bytes;
  encode(m, bytes);
  auto run = decode_run(payload_of(bytes));
  ASSERT_TRUE(run.is_ok()) << run.status().message();
  ASSERT_EQ(run->params.size(), 1u);
  EXPECT_EQ(run->params[0].second.type, ParamType::kDouble);
  EXPECT_TRUE(std::isnan(std::get<double>(run->params[0].second.value)));

  bytes.clear();
  encode(ProgressFrame{1, nan, ""}, bytes);
  auto progress = decode_progress(payload_of(bytes));
  ASSERT_TRUE(progress.is_ok()) << progress.status().message();
  EXPECT_TRUE(std::isnan(progress->fraction));
}

TEST(RunnerProtocolTest, LogProgressResultStopExtendRoundTrip) {
  {
    for (const LogFrame& m : {LogFrame{9, 4, "disk full"}, LogFrame{0, -1, ""}}) {
      std::string bytes;
      encode(m, bytes);
      Frame f = through_socket(bytes);
      ASSERT_EQ(f.type, FrameType::kLog);
      auto got = decode_log(f.payload);
      ASSERT_TRUE(got.is_ok()) << got.status().message();
      EXPECT_EQ(got->seq, m.seq);
      EXPECT_EQ(got->level, m.level);
      EXPECT_EQ(got->message, m.message);
    }
  }
  {
    for (const ProgressFrame& m : {ProgressFrame{3, 0.25, "a quarter"}, ProgressFrame{4, -1, ""}}) {
      std::string bytes;
      encode(m, bytes);
      Frame f = through_socket(bytes);
      ASSERT_EQ(f.type, FrameType::kProgress);
      auto got = decode_progress(f.payload);
      ASSERT_TRUE(got.is_ok()) << got.status().message();
      EXPECT_EQ(got->seq, m.seq);
      EXPECT_EQ(got->fraction, m.fraction);
      EXPECT_EQ(got->message, m.message);
    }
  }
  {
    // An output of a few MiB with every byte value: the tail a runner sends back.
    std::string output(3 << 20, '\0');
    for (std::size_t i = 0; i < output.size(); ++i) output[i] = static_cast<char>(i * 7);
    for (const ResultFrame& m : {ResultFrame{5, 3, "stopped", output, 987654321, 1ull << 40},
                                 ResultFrame{6, 0, "", "", 0, 0}}) {
      std::string bytes;
      encode(m, bytes);
      Frame f = through_socket(bytes);
      ASSERT_EQ(f.type, FrameType::kResult);
      auto got = decode_result(f.payload);
      ASSERT_TRUE(got.is_ok()) << got.status().message();
      EXPECT_EQ(got->seq, m.seq);
      EXPECT_EQ(got->status, m.status);
      EXPECT_EQ(got->message, m.message);
      EXPECT_TRUE(got->output == m.output) << "output of " << got->output.size() << " bytes";
      EXPECT_EQ(got->duration_ns, m.duration_ns);
      EXPECT_EQ(got->output_bytes, m.output_bytes);
    }
  }
  {
    std::string bytes;
    encode(StopFrame{77}, bytes);
    Frame f = through_socket(bytes);
    ASSERT_EQ(f.type, FrameType::kStop);
    auto got = decode_stop(f.payload);
    ASSERT_TRUE(got.is_ok()) << got.status().message();
    EXPECT_EQ(got->seq, 77u);
  }
  {
    std::string bytes;
    encode(ExtendFrame{78, -5}, bytes);
    Frame f = through_socket(bytes);
    ASSERT_EQ(f.type, FrameType::kExtend);
    auto got = decode_extend(f.payload);
    ASSERT_TRUE(got.is_ok()) << got.status().message();
    EXPECT_EQ(got->seq, 78u);
    EXPECT_EQ(got->hard_deadline_ns, -5);
  }
}

TEST(RunnerProtocolTest, WireLayoutIsLittleEndianLengthTypePayload) {
  // Pinned bytes: a change of layout must come with a protocol version bump.
  std::string bytes;
  encode(ExtendFrame{0x0102030405060708ull, -2}, bytes);
  EXPECT_EQ(bytes, Bytes().u32(17).u8(33).u64(0x0102030405060708ull).i64(-2).get());
  bytes.clear();
  encode(LogFrame{1, 3, "hi"}, bytes);
  EXPECT_EQ(bytes, frame_bytes(3, Bytes().u64(1).i32(3).str("hi").get()));
  // Encoders append: two frames in one buffer, each whole.
  std::string two;
  encode(StopFrame{1}, two);
  encode(StopFrame{2}, two);
  EXPECT_EQ(two, frame_bytes(32, Bytes().u64(1).get()) + frame_bytes(32, Bytes().u64(2).get()));
  EXPECT_EQ(static_cast<int>(FrameType::kHello), 1);
  EXPECT_EQ(static_cast<int>(FrameType::kRun), 16);
  EXPECT_EQ(kMaxFrame, 16u << 20);
}

TEST(RunnerProtocolTest, FrameReaderReassemblesAFrameFromOneByteWrites) {
  std::string bytes;
  encode(LogFrame{42, 2, "split into one-byte writes"}, bytes);
  SocketPair sp;
  FrameReader reader(sp.reader());
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    sp.write(bytes.substr(i, 1));
    auto filled = reader.fill();
    ASSERT_TRUE(filled.is_ok()) << filled.status().message();
    ASSERT_EQ(*filled, 1u);
    auto next = reader.next();
    ASSERT_TRUE(next.is_ok()) << next.status().message();
    if (i + 1 < bytes.size()) {
      ASSERT_FALSE(next->has_value())
          << "a frame returned after " << i + 1 << " of " << bytes.size() << " bytes";
      continue;
    }
    ASSERT_TRUE(next->has_value());
    EXPECT_EQ((*next)->type, FrameType::kLog);
    auto log = decode_log((*next)->payload);
    ASSERT_TRUE(log.is_ok()) << log.status().message();
    EXPECT_EQ(log->seq, 42u);
    EXPECT_EQ(log->message, "split into one-byte writes");
  }
}

TEST(RunnerProtocolTest, FrameReaderReturnsTwoFramesFromOneWrite) {
  std::string bytes;
  encode(ProgressFrame{1, 0.5, "half"}, bytes);
  encode(ResultFrame{1, 0, "done", "out", 10, 3}, bytes);
  SocketPair sp;
  sp.write(bytes);
  FrameReader reader(sp.reader());
  auto filled = reader.fill();
  ASSERT_TRUE(filled.is_ok()) << filled.status().message();
  ASSERT_EQ(*filled, bytes.size());  // one read took both

  auto first = reader.next();
  ASSERT_TRUE(first.is_ok() && first->has_value());
  EXPECT_EQ((*first)->type, FrameType::kProgress);
  EXPECT_EQ(decode_progress((*first)->payload)->message, "half");
  auto second = reader.next();
  ASSERT_TRUE(second.is_ok() && second->has_value());
  EXPECT_EQ((*second)->type, FrameType::kResult);
  EXPECT_EQ(decode_result((*second)->payload)->message, "done");
  auto third = reader.next();
  ASSERT_TRUE(third.is_ok());
  EXPECT_FALSE(third->has_value());
}

TEST(RunnerProtocolTest, FrameReaderRefusesAFrameLongerThanTheLimit) {
  SocketPair sp;
  // Only the header: the reader must refuse from the length alone, not wait for 16 MiB.
  sp.write(Bytes().u32(kMaxFrame + 1).u8(5).get());
  FrameReader reader(sp.reader());
  ASSERT_TRUE(reader.fill().is_ok());
  auto next = reader.next();
  ASSERT_FALSE(next.is_ok());
  EXPECT_EQ(next.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(next.status().message(), "a frame of 16777217 bytes (the limit is 16777216)");

  // A 100 MB length, and the largest length there is.
  for (uint32_t len : {100000000u, 0xffffffffu}) {
    SocketPair s;
    s.write(Bytes().u32(len).u8(5).get());
    FrameReader r(s.reader());
    ASSERT_TRUE(r.fill().is_ok());
    auto n = r.next();
    ASSERT_FALSE(n.is_ok());
    EXPECT_NE(n.status().message().find(std::to_string(len) + " bytes"), std::string::npos)
        << n.status().message();
    EXPECT_NE(n.status().message().find("16777216"), std::string::npos) << n.status().message();
  }
}

TEST(RunnerProtocolTest, FrameReaderAcceptsAFrameOfExactlyTheLimit) {
  std::string payload(kMaxFrame - 1, 'x');
  std::string bytes = frame_bytes(3, payload);
  SocketPair sp;
  std::thread writer([&] { sp.write(bytes); });
  struct Join {
    std::thread& t;
    int fd;
    ~Join() {
      // A failed assertion below returns early: unblock the writer before joining it.
      shutdown(fd, SHUT_RD);
      t.join();
    }
  } join{writer, sp.reader()};
  FrameReader reader(sp.reader());
  std::optional<Frame> got;
  while (!got) {
    auto next = reader.next();
    ASSERT_TRUE(next.is_ok()) << next.status().message();
    if (next->has_value()) {
      got = std::move(**next);
      break;
    }
    ASSERT_TRUE(reader.fill().is_ok());
  }
  EXPECT_EQ(got->type, FrameType::kLog);
  EXPECT_EQ(got->payload.size(), kMaxFrame - 1);
}

TEST(RunnerProtocolTest, FrameReaderRefusesALengthOfZero) {
  SocketPair sp;
  std::string stop;
  encode(StopFrame{1}, stop);
  sp.write(Bytes().u32(0).get() + stop);
  FrameReader reader(sp.reader());
  ASSERT_TRUE(reader.fill().is_ok());
  auto next = reader.next();
  ASSERT_FALSE(next.is_ok());
  EXPECT_EQ(next.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(next.status().message(), "a frame of length 0 (no type)");
}

TEST(RunnerProtocolTest, FrameReaderSaysClosedInTheMiddleOfAFrame) {
  std::string bytes;
  encode(ResultFrame{1, 0, "message", "output", 1, 2}, bytes);
  // Cut inside the header and inside the payload.
  for (std::size_t cut : {std::size_t{2}, std::size_t{4}, std::size_t{5}, bytes.size() - 1}) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    SocketPair sp;
    sp.write(bytes.substr(0, cut));
    sp.close_writer();
    FrameReader reader(sp.reader());
    auto filled = reader.fill();
    ASSERT_TRUE(filled.is_ok());
    EXPECT_EQ(*filled, cut);
    auto next = reader.next();
    ASSERT_TRUE(next.is_ok());
    EXPECT_FALSE(next->has_value());
    auto eof = reader.fill();
    ASSERT_FALSE(eof.is_ok());
    EXPECT_EQ(eof.status().code(), StatusCode::kUnavailable);
    EXPECT_EQ(eof.status().message(), "closed in the middle of a frame");
  }
  // At a frame boundary the end of the stream is just "closed", and the frame is kept.
  SocketPair sp;
  sp.write(bytes);
  sp.close_writer();
  FrameReader reader(sp.reader());
  ASSERT_TRUE(reader.fill().is_ok());
  auto whole = reader.next();
  ASSERT_TRUE(whole.is_ok() && whole->has_value());
  auto eof = reader.fill();
  ASSERT_FALSE(eof.is_ok());
  EXPECT_EQ(eof.status().message(), "closed");
}

TEST(RunnerProtocolTest, FrameReaderReturnsZeroWhenANonBlockingSocketIsEmpty) {
  SocketPair sp;
  int fl = fcntl(sp.reader(), F_GETFL);
  ASSERT_EQ(fcntl(sp.reader(), F_SETFL, fl | O_NONBLOCK), 0);
  FrameReader reader(sp.reader());
  auto filled = reader.fill();
  ASSERT_TRUE(filled.is_ok()) << filled.status().message();
  EXPECT_EQ(*filled, 0u);
}

// Every decoder with every strict prefix of a valid payload, and with a byte too many.
TEST(RunnerProtocolTest, DecodersRefuseTruncatedPayloadsAndTrailingBytes) {
  struct Case {
    const char* frame;
    std::string payload;
    std::function<Status(std::string_view)> decode;
  };
  auto status_of = [](auto r) { return r.status(); };
  std::vector<Case> cases;
  {
    Hello h;
    h.plugin_name = "p";
    ExecutorInfo e;
    e.name = "x";
    e.params.push_back(ParamSpec{"a", ParamType::kInt, true, "1", "d"});
    h.executors.push_back(e);
    std::string b;
    encode(h, b);
    cases.push_back({"HELLO", payload_of(b), [&](auto p) { return status_of(decode_hello(p)); }});
  }
  {
    std::string b;
    encode_load_error("no", b);
    cases.push_back(
        {"LOAD_ERROR", payload_of(b), [&](auto p) { return status_of(decode_load_error(p)); }});
  }
  {
    RunFrame m;
    m.executor = "x";
    m.params = every_param_type();
    std::string b;
    encode(m, b);
    cases.push_back({"RUN", payload_of(b), [&](auto p) { return status_of(decode_run(p)); }});
  }
  {
    std::string b;
    encode(LogFrame{1, 2, "m"}, b);
    cases.push_back({"LOG", payload_of(b), [&](auto p) { return status_of(decode_log(p)); }});
  }
  {
    std::string b;
    encode(ProgressFrame{1, 0.5, "m"}, b);
    cases.push_back(
        {"PROGRESS", payload_of(b), [&](auto p) { return status_of(decode_progress(p)); }});
  }
  {
    std::string b;
    encode(ResultFrame{1, 0, "m", "o", 1, 1}, b);
    cases.push_back({"RESULT", payload_of(b), [&](auto p) { return status_of(decode_result(p)); }});
  }
  {
    std::string b;
    encode(StopFrame{1}, b);
    cases.push_back({"STOP", payload_of(b), [&](auto p) { return status_of(decode_stop(p)); }});
  }
  {
    std::string b;
    encode(ExtendFrame{1, 2}, b);
    cases.push_back({"EXTEND", payload_of(b), [&](auto p) { return status_of(decode_extend(p)); }});
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.frame);
    ASSERT_TRUE(c.decode(c.payload).is_ok()) << c.decode(c.payload).message();
    for (std::size_t n = 0; n < c.payload.size(); ++n) {
      Status s = c.decode(std::string_view(c.payload).substr(0, n));
      ASSERT_FALSE(s.is_ok()) << "a prefix of " << n << " of " << c.payload.size()
                              << " bytes decoded";
      EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
      const std::string head = std::string("bad ") + c.frame + " frame: ";
      EXPECT_EQ(s.message().substr(0, head.size()), head) << s.message();
      // Either a field or a count ran past the end.
      EXPECT_TRUE(s.message().find("truncated") != std::string::npos ||
                  s.message().find("does not fit") != std::string::npos)
          << s.message();
    }
    Status trailing = c.decode(c.payload + "!");
    ASSERT_FALSE(trailing.is_ok());
    EXPECT_EQ(trailing.message(), std::string("bad ") + c.frame + " frame: 1 trailing bytes");
  }
}

// A RUN payload up to its param count, with `count` as that count.
Bytes run_head(uint32_t count) {
  Bytes b;
  b.u64(1).str("x").str("id").i32(1).str("n").str("k").str("l").u32(1).i64(0).i64(0).u64(0).i64(0);
  b.u32(count);
  return b;
}

TEST(RunnerProtocolTest, DecodersRefuseUnknownParamTypes) {
  for (int32_t type : {0, 8, 99, -1}) {
    SCOPED_TRACE(type);
    Bytes b = run_head(1);
    b.str("mystery").i32(type).u64(0);
    auto run = decode_run(b.get());
    ASSERT_FALSE(run.is_ok());
    EXPECT_EQ(run.status().message(),
              "bad RUN frame: param \"mystery\" has unknown type " + std::to_string(type));
  }
  // In a HELLO's param schema too: the daemon must not hold a type it cannot validate.
  for (int32_t type : {0, 8, 99}) {
    SCOPED_TRACE(type);
    Bytes b;
    b.u32(kProtocolVersion).i64(1).str("p").str("1").i64(0);
    b.u32(1).str("x").str("").u32(1);
    b.str("mystery").i32(type).u8(0).u8(0).str("").str("");
    auto hello = decode_hello(b.get());
    ASSERT_FALSE(hello.is_ok()) << "a param of type " << type << " was accepted";
    EXPECT_EQ(hello.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(hello.status().message().find("unknown type " + std::to_string(type)),
              std::string::npos)
        << hello.status().message();
  }
}

TEST(RunnerProtocolTest, DecodersRefuseCountsThatCannotFitWithoutAllocating) {
  const uint32_t huge = 1u << 31;
  const auto started = std::chrono::steady_clock::now();
  {
    // A string list of 2^31 items, then nothing.
    Bytes b = run_head(1);
    b.str("l").i32(static_cast<int32_t>(ParamType::kStringList)).u32(huge);
    auto run = decode_run(b.get());
    ASSERT_FALSE(run.is_ok());
    EXPECT_EQ(run.status().message(),
              "bad RUN frame: a count of 2147483648 does not fit the frame");
  }
  {
    // A string map of 2^31 pairs, followed by 12 bytes: still far too few.
    Bytes b = run_head(1);
    b.str("m").i32(static_cast<int32_t>(ParamType::kStringMap)).u32(huge).u32(0).u32(0).u32(0);
    auto run = decode_run(b.get());
    ASSERT_FALSE(run.is_ok());
    EXPECT_EQ(run.status().message(),
              "bad RUN frame: a count of 2147483648 does not fit the frame");
  }
  {
    // 2^31 params.
    auto run = decode_run(run_head(huge).get());
    ASSERT_FALSE(run.is_ok());
    EXPECT_EQ(run.status().message(),
              "bad RUN frame: a count of 2147483648 does not fit the frame");
  }
  {
    // A HELLO of 32 bytes claiming 2^31 executors, and one claiming 2^31 params.
    Bytes b;
    b.u32(kProtocolVersion).i64(1).str("").str("").i64(0).u32(huge);
    ASSERT_EQ(b.get().size(), 32u);
    auto hello = decode_hello(b.get());
    ASSERT_FALSE(hello.is_ok());
    EXPECT_EQ(hello.status().message(),
              "bad HELLO frame: a count of 2147483648 does not fit the frame");
    Bytes p;
    p.u32(kProtocolVersion).i64(1).str("").str("").i64(0).u32(1).str("e").str("").u32(huge);
    hello = decode_hello(p.get());
    ASSERT_FALSE(hello.is_ok());
    EXPECT_EQ(hello.status().message(),
              "bad HELLO frame: a count of 2147483648 does not fit the frame");
  }
  {
    // A 20-byte LOG payload whose message claims 2^31 bytes.
    Bytes b;
    b.u64(1).i32(2).u32(huge).u32(0);
    ASSERT_EQ(b.get().size(), 20u);
    auto log = decode_log(b.get());
    ASSERT_FALSE(log.is_ok());
    EXPECT_EQ(log.status().message(), "bad LOG frame: truncated");
  }
  {
    // The largest count that fits is accepted: one more is not.
    Bytes b = run_head(1);
    b.str("l").i32(static_cast<int32_t>(ParamType::kStringList)).u32(3);
    b.str("").str("").str("");
    EXPECT_TRUE(decode_run(b.get()).is_ok());
    Bytes c = run_head(1);
    c.str("l").i32(static_cast<int32_t>(ParamType::kStringList)).u32(4);
    c.str("").str("").str("");
    EXPECT_FALSE(decode_run(c.get()).is_ok());
  }
  // Nothing above may have walked or allocated for 2^31 items: all of it is instant.
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
}

TEST(RunnerProtocolTest, HelloOfAnotherProtocolVersionIsRefusedNamingBoth) {
  Hello h;
  h.protocol = 999;
  h.plugin_name = "p";
  std::string b;
  encode(h, b);
  auto got = decode_hello(payload_of(b));
  ASSERT_FALSE(got.is_ok());
  EXPECT_EQ(got.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(got.status().message(), "the runner speaks protocol 999, this daemon speaks " +
                                        std::to_string(kProtocolVersion));
  // Only the version: a runner of another version lays out the rest differently, and the
  // version is still what is reported.
  auto bare = decode_hello(Bytes().u32(0).get());
  ASSERT_FALSE(bare.is_ok());
  EXPECT_EQ(bare.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(bare.status().message(),
            "the runner speaks protocol 0, this daemon speaks " + std::to_string(kProtocolVersion));
}

TEST(RunnerProtocolTest, WriteAllReportsAGonePeerWithoutSigpipe) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  close(fds[0]);
  // Without MSG_NOSIGNAL this would kill the test process.
  Status s = write_all(fds[1], "bytes");
  close(fds[1]);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("write"), std::string::npos) << s.message();
}

TEST(RunnerProtocolTest, MonotonicNsIsClockMonotonic) {
  timespec ts{};
  const int64_t a = monotonic_ns();
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const int64_t b = monotonic_ns();
  const int64_t mid = static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  EXPECT_LE(a, mid);
  EXPECT_LE(mid, b);
}

}  // namespace
}  // namespace schedd::runner
