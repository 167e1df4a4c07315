#include "core/runner/protocol.h"

#include <errno.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

namespace schedd::runner {
namespace {

// Appends little-endian fields to a frame under construction; finish() writes the length.
class Writer {
 public:
  Writer(std::string& out, FrameType type) : out_(out), start_(out.size()) {
    out_.append(4, '\0');
    out_.push_back(static_cast<char>(type));
  }
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  void i32(int32_t v) { u32(static_cast<uint32_t>(v)); }
  void i64(int64_t v) { u64(static_cast<uint64_t>(v)); }
  void f64(double v) {
    uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    u64(bits);
  }
  void str(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    out_.append(s.data(), s.size());
  }
  void finish() {
    uint32_t len = static_cast<uint32_t>(out_.size() - start_ - 4);
    for (int i = 0; i < 4; ++i) out_[start_ + i] = static_cast<char>((len >> (8 * i)) & 0xff);
  }

 private:
  std::string& out_;
  std::size_t start_;
};

// Reads fields back; the first short read or bad value makes ok() false for good.
class Reader {
 public:
  Reader(std::string_view in, const char* frame) : in_(in), frame_(frame) {}
  uint8_t u8() {
    if (!need(1)) return 0;
    return static_cast<uint8_t>(in_[pos_++]);
  }
  uint32_t u32() {
    if (!need(4)) return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i)
      v |= static_cast<uint32_t>(static_cast<uint8_t>(in_[pos_++])) << (8 * i);
    return v;
  }
  uint64_t u64() {
    if (!need(8)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
      v |= static_cast<uint64_t>(static_cast<uint8_t>(in_[pos_++])) << (8 * i);
    return v;
  }
  int32_t i32() { return static_cast<int32_t>(u32()); }
  int64_t i64() { return static_cast<int64_t>(u64()); }
  double f64() {
    uint64_t bits = u64();
    double v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }
  std::string str() {
    uint32_t n = u32();
    if (!need(n)) return {};
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  // A count of items that each take at least `min_item` bytes: refuses counts the payload
  // cannot hold, so a garbage count never drives a huge allocation.
  uint32_t count(std::size_t min_item) {
    uint32_t n = u32();
    if (ok_ && n > (in_.size() - pos_) / std::max<std::size_t>(min_item, 1)) {
      fail("a count of " + std::to_string(n) + " does not fit the frame");
      return 0;
    }
    return n;
  }
  void fail(std::string why) {
    if (ok_) error_ = std::move(why);
    ok_ = false;
  }
  // The decoded value, or the first error; trailing bytes are an error too.
  template <typename T>
  StatusOr<T> done(T value) {
    if (ok_ && pos_ != in_.size()) fail(std::to_string(in_.size() - pos_) + " trailing bytes");
    if (!ok_) return invalid_argument(std::string("bad ") + frame_ + " frame: " + error_);
    return value;
  }
  bool ok() const { return ok_; }

 private:
  bool need(std::size_t n) {
    if (!ok_) return false;
    if (in_.size() - pos_ < n) {
      fail("truncated");
      return false;
    }
    return true;
  }
  std::string_view in_;
  const char* frame_;
  std::size_t pos_ = 0;
  bool ok_ = true;
  std::string error_;
};

void write_param(Writer& w, const std::string& name, const ParamValue& v) {
  w.str(name);
  w.i32(static_cast<int32_t>(v.type));
  switch (v.type) {
    case ParamType::kString:
      w.str(std::get<std::string>(v.value));
      break;
    case ParamType::kInt:
      w.i64(std::get<int64_t>(v.value));
      break;
    case ParamType::kDouble:
      w.f64(std::get<double>(v.value));
      break;
    case ParamType::kBool:
      w.u8(std::get<bool>(v.value) ? 1 : 0);
      break;
    case ParamType::kDuration:
      w.i64(std::get<std::chrono::milliseconds>(v.value).count());
      break;
    case ParamType::kStringList: {
      const auto& l = std::get<StringList>(v.value);
      w.u32(static_cast<uint32_t>(l.size()));
      for (const auto& s : l) w.str(s);
      break;
    }
    case ParamType::kStringMap: {
      const auto& m = std::get<StringMap>(v.value);
      w.u32(static_cast<uint32_t>(m.size()));
      for (const auto& [k, s] : m) {
        w.str(k);
        w.str(s);
      }
      break;
    }
  }
}

std::optional<std::pair<std::string, ParamValue>> read_param(Reader& r) {
  std::string name = r.str();
  int32_t type = r.i32();
  ParamValue v;
  switch (static_cast<ParamType>(type)) {
    case ParamType::kString:
      v = ParamValue::string(r.str());
      break;
    case ParamType::kInt:
      v = ParamValue::integer(r.i64());
      break;
    case ParamType::kDouble:
      v = ParamValue::number(r.f64());
      break;
    case ParamType::kBool:
      v = ParamValue::boolean(r.u8() != 0);
      break;
    case ParamType::kDuration:
      v = ParamValue::duration(std::chrono::milliseconds(r.i64()));
      break;
    case ParamType::kStringList: {
      StringList l;
      uint32_t n = r.count(4);
      for (uint32_t i = 0; i < n && r.ok(); ++i) l.push_back(r.str());
      v = ParamValue::list(std::move(l));
      break;
    }
    case ParamType::kStringMap: {
      StringMap m;
      uint32_t n = r.count(8);
      for (uint32_t i = 0; i < n && r.ok(); ++i) {
        std::string k = r.str();
        m[std::move(k)] = r.str();
      }
      v = ParamValue::map(std::move(m));
      break;
    }
    default:
      r.fail("param \"" + name + "\" has unknown type " + std::to_string(type));
      return std::nullopt;
  }
  if (!r.ok()) return std::nullopt;
  return std::make_pair(std::move(name), std::move(v));
}

}  // namespace

void encode(const Hello& m, std::string& out) {
  Writer w(out, FrameType::kHello);
  w.u32(m.protocol);
  w.i64(m.pid);
  w.str(m.plugin_name);
  w.str(m.plugin_version);
  w.i64(m.load_time.count());
  w.u32(static_cast<uint32_t>(m.executors.size()));
  for (const auto& e : m.executors) {
    w.str(e.name);
    w.str(e.description);
    w.u32(static_cast<uint32_t>(e.params.size()));
    for (const auto& p : e.params) {
      w.str(p.name);
      w.i32(static_cast<int32_t>(p.type));
      w.u8(p.required ? 1 : 0);
      w.u8(p.default_toml ? 1 : 0);
      w.str(p.default_toml.value_or(""));
      w.str(p.description);
    }
  }
  w.finish();
}

void encode_load_error(std::string_view message, std::string& out) {
  Writer w(out, FrameType::kLoadError);
  w.str(message);
  w.finish();
}

void encode(const RunFrame& m, std::string& out) {
  Writer w(out, FrameType::kRun);
  w.u64(m.seq);
  w.str(m.executor);
  w.str(m.execution_id);
  w.i32(m.origin);
  w.str(m.name);
  w.str(m.key);
  w.str(m.lane);
  w.u32(m.attempt);
  w.i64(m.due_unix_ms);
  w.i64(m.deadline_unix_ms);
  w.u64(m.fence);
  w.i64(m.hard_deadline_ns);
  w.u32(static_cast<uint32_t>(m.params.size()));
  for (const auto& [name, value] : m.params) write_param(w, name, value);
  w.finish();
}

void encode(const LogFrame& m, std::string& out) {
  Writer w(out, FrameType::kLog);
  w.u64(m.seq);
  w.i32(m.level);
  w.str(m.message);
  w.finish();
}

void encode(const ProgressFrame& m, std::string& out) {
  Writer w(out, FrameType::kProgress);
  w.u64(m.seq);
  w.f64(m.fraction);
  w.str(m.message);
  w.finish();
}

void encode(const ResultFrame& m, std::string& out) {
  Writer w(out, FrameType::kResult);
  w.u64(m.seq);
  w.i32(m.status);
  w.str(m.message);
  w.str(m.output);
  w.i64(m.duration_ns);
  w.u64(m.output_bytes);
  w.finish();
}

void encode(const StopFrame& m, std::string& out) {
  Writer w(out, FrameType::kStop);
  w.u64(m.seq);
  w.finish();
}

void encode(const ExtendFrame& m, std::string& out) {
  Writer w(out, FrameType::kExtend);
  w.u64(m.seq);
  w.i64(m.hard_deadline_ns);
  w.finish();
}

StatusOr<Hello> decode_hello(std::string_view payload) {
  Reader r(payload, "HELLO");
  Hello m;
  m.protocol = r.u32();
  // Check the version before the rest: a runner of another version lays the rest out
  // differently, and its version is what the operator needs to hear about.
  if (r.ok() && m.protocol != kProtocolVersion) {
    return failed_precondition("the runner speaks protocol " + std::to_string(m.protocol) +
                               ", this daemon speaks " + std::to_string(kProtocolVersion));
  }
  m.pid = r.i64();
  m.plugin_name = r.str();
  m.plugin_version = r.str();
  m.load_time = std::chrono::microseconds(r.i64());
  uint32_t n = r.count(12);
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    ExecutorInfo e;
    e.name = r.str();
    e.description = r.str();
    uint32_t np = r.count(18);
    for (uint32_t j = 0; j < np && r.ok(); ++j) {
      ParamSpec p;
      p.name = r.str();
      const int32_t type = r.i32();
      // The loader refuses unknown types in a manifest, so one here is a corrupt frame; the
      // daemon must not hold a schema it cannot validate params against.
      if (r.ok() && (type < static_cast<int32_t>(ParamType::kString) ||
                     type > static_cast<int32_t>(ParamType::kStringMap))) {
        r.fail("param \"" + p.name + "\" has unknown type " + std::to_string(type));
      }
      p.type = static_cast<ParamType>(type);
      p.required = r.u8() != 0;
      bool has_default = r.u8() != 0;
      std::string def = r.str();
      if (has_default) p.default_toml = std::move(def);
      p.description = r.str();
      e.params.push_back(std::move(p));
    }
    e.plugin_name = m.plugin_name;
    e.plugin_version = m.plugin_version;
    m.executors.push_back(std::move(e));
  }
  return r.done(std::move(m));
}

StatusOr<std::string> decode_load_error(std::string_view payload) {
  Reader r(payload, "LOAD_ERROR");
  std::string message = r.str();
  return r.done(std::move(message));
}

StatusOr<RunFrame> decode_run(std::string_view payload) {
  Reader r(payload, "RUN");
  RunFrame m;
  m.seq = r.u64();
  m.executor = r.str();
  m.execution_id = r.str();
  m.origin = r.i32();
  m.name = r.str();
  m.key = r.str();
  m.lane = r.str();
  m.attempt = r.u32();
  m.due_unix_ms = r.i64();
  m.deadline_unix_ms = r.i64();
  m.fence = r.u64();
  m.hard_deadline_ns = r.i64();
  uint32_t n = r.count(8);
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    auto p = read_param(r);
    if (p) m.params.push_back(std::move(*p));
  }
  return r.done(std::move(m));
}

StatusOr<LogFrame> decode_log(std::string_view payload) {
  Reader r(payload, "LOG");
  LogFrame m;
  m.seq = r.u64();
  m.level = r.i32();
  m.message = r.str();
  return r.done(std::move(m));
}

StatusOr<ProgressFrame> decode_progress(std::string_view payload) {
  Reader r(payload, "PROGRESS");
  ProgressFrame m;
  m.seq = r.u64();
  m.fraction = r.f64();
  m.message = r.str();
  return r.done(std::move(m));
}

StatusOr<ResultFrame> decode_result(std::string_view payload) {
  Reader r(payload, "RESULT");
  ResultFrame m;
  m.seq = r.u64();
  m.status = r.i32();
  m.message = r.str();
  m.output = r.str();
  m.duration_ns = r.i64();
  m.output_bytes = r.u64();
  return r.done(std::move(m));
}

StatusOr<StopFrame> decode_stop(std::string_view payload) {
  Reader r(payload, "STOP");
  StopFrame m;
  m.seq = r.u64();
  return r.done(m);
}

StatusOr<ExtendFrame> decode_extend(std::string_view payload) {
  Reader r(payload, "EXTEND");
  ExtendFrame m;
  m.seq = r.u64();
  m.hard_deadline_ns = r.i64();
  return r.done(m);
}

StatusOr<std::optional<Frame>> FrameReader::next() {
  std::size_t avail = buf_.size() - pos_;
  if (avail < 5) return std::optional<Frame>();
  const auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + pos_);
  uint32_t len = static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
                 (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
  if (len == 0) return invalid_argument("a frame of length 0 (no type)");
  if (len > kMaxFrame) {
    return invalid_argument("a frame of " + std::to_string(len) + " bytes (the limit is " +
                            std::to_string(kMaxFrame) + ")");
  }
  if (avail - 4 < len) return std::optional<Frame>();
  Frame f;
  f.type = static_cast<FrameType>(p[4]);
  f.payload.assign(buf_.data() + pos_ + 5, len - 1);
  pos_ += 4 + len;
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > (1u << 16)) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  return std::optional<Frame>(std::move(f));
}

StatusOr<std::size_t> FrameReader::fill() {
  char tmp[64 * 1024];
  while (true) {
    ssize_t n = ::read(fd_, tmp, sizeof tmp);
    if (n > 0) {
      buf_.append(tmp, static_cast<std::size_t>(n));
      return static_cast<std::size_t>(n);
    }
    if (n == 0) {
      return unavailable(buf_.size() > pos_ ? "closed in the middle of a frame" : "closed");
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::size_t{0};
    return unavailable(std::string("read: ") + std::strerror(errno));
  }
}

Status write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return unavailable(std::string("write: ") + std::strerror(errno));
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return Status::ok();
}

int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace schedd::runner
