// schedd plugin SDK: a header-only C++17 wrapper over schedd/abi.h.
//
// A plugin author writes
//
//   #include <schedd/sdk.hpp>
//
//   class Hello final : public schedd::Executor {
//    public:
//     schedd::Result run(schedd::Context& ctx) override {
//       if (ctx.stop_requested()) return schedd::Result::cancelled();
//       ctx.log().info("hello from {}", ctx.execution_id());
//       return schedd::Result::succeeded();
//     }
//   };
//   SCHEDD_PLUGIN("hello", "1.0.0") {
//     registrar.add<Hello>("hello", "Says hello")
//         .optional("greeting", schedd::ParamType::kString, "\"hello\"", "What to say");
//   }
//
// Only the C ABI crosses into the daemon: exceptions thrown by `run` are caught here and
// become a retryable failure carrying the exception's message; no C++ object leaves the
// plugin. Nothing here depends on the daemon's libraries.
//
// Thread-safety: one Executor object serves every execution of its executor, so `run` may be
// called concurrently from several threads; keep per-run state on the stack. A Context is
// used only by the thread running the call it was made for (its stop/progress/log functions
// may be called from helper threads the executor starts, until `run` returns).
#ifndef SCHEDD_SDK_HPP_
#define SCHEDD_SDK_HPP_

#include <schedd/abi.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace schedd {
inline namespace sdk_v1 {

enum class ParamType : int32_t {
  kString = SCHEDD_PARAM_STRING,
  kInt = SCHEDD_PARAM_INT,
  kDouble = SCHEDD_PARAM_DOUBLE,
  kBool = SCHEDD_PARAM_BOOL,
  kDuration = SCHEDD_PARAM_DURATION,
  kStringList = SCHEDD_PARAM_STRING_LIST,
  kStringMap = SCHEDD_PARAM_STRING_MAP,
};

enum class Origin : int32_t {
  kHelper = SCHEDD_ORIGIN_HELPER,
  kTicket = SCHEDD_ORIGIN_TICKET,
  kAdhoc = SCHEDD_ORIGIN_ADHOC,
};

// Thrown by Params accessors when a parameter is absent or has another type. Caught by the
// wrapper like any exception from `run`, so it ends the attempt as a failure naming the param.
class ParamError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Read-only, typed view of the parameters the daemon validated against the schema.
class Params {
 public:
  Params(const schedd_param* params, std::size_t count) : params_(params), count_(count) {}

  bool has(std::string_view name) const { return find(name) != nullptr; }

  std::string string(std::string_view name) const { return get(name, ParamType::kString).text; }
  int64_t integer(std::string_view name) const { return get(name, ParamType::kInt).int_value; }
  double number(std::string_view name) const {
    const schedd_param* p = find(name);
    if (p != nullptr && p->type == SCHEDD_PARAM_INT) return static_cast<double>(p->int_value);
    return get(name, ParamType::kDouble).double_value;
  }
  bool boolean(std::string_view name) const { return get(name, ParamType::kBool).bool_value != 0; }
  std::chrono::milliseconds duration(std::string_view name) const {
    return std::chrono::milliseconds(get(name, ParamType::kDuration).int_value);
  }
  std::vector<std::string> list(std::string_view name) const {
    const schedd_param& p = get(name, ParamType::kStringList);
    return std::vector<std::string>(p.items, p.items + p.item_count);
  }
  std::map<std::string, std::string> map(std::string_view name) const {
    const schedd_param& p = get(name, ParamType::kStringMap);
    std::map<std::string, std::string> out;
    for (std::size_t i = 0; i < p.item_count; ++i) out.emplace(p.item_keys[i], p.items[i]);
    return out;
  }

  // Accessors with a fallback for optional params that have no default in the schema.
  std::string string_or(std::string_view name, std::string fallback) const {
    return has(name) ? string(name) : std::move(fallback);
  }
  int64_t integer_or(std::string_view name, int64_t fallback) const {
    return has(name) ? integer(name) : fallback;
  }
  std::chrono::milliseconds duration_or(std::string_view name,
                                        std::chrono::milliseconds fallback) const {
    return has(name) ? duration(name) : fallback;
  }
  double number_or(std::string_view name, double fallback) const {
    return has(name) ? number(name) : fallback;
  }
  bool boolean_or(std::string_view name, bool fallback) const {
    return has(name) ? boolean(name) : fallback;
  }
  std::vector<std::string> list_or(std::string_view name,
                                   std::vector<std::string> fallback = {}) const {
    return has(name) ? list(name) : std::move(fallback);
  }
  std::map<std::string, std::string> map_or(
      std::string_view name, std::map<std::string, std::string> fallback = {}) const {
    return has(name) ? map(name) : std::move(fallback);
  }

  std::size_t size() const { return count_; }
  const schedd_param& at(std::size_t i) const { return params_[i]; }

 private:
  const schedd_param* find(std::string_view name) const {
    for (std::size_t i = 0; i < count_; ++i) {
      if (name == params_[i].name) return &params_[i];
    }
    return nullptr;
  }
  const schedd_param& get(std::string_view name, ParamType type) const {
    const schedd_param* p = find(name);
    if (p == nullptr) throw ParamError("param \"" + std::string(name) + "\" is not set");
    if (p->type != static_cast<int32_t>(type)) {
      throw ParamError("param \"" + std::string(name) + "\" has another type");
    }
    return *p;
  }

  const schedd_param* params_;
  std::size_t count_;
};

namespace detail {
inline void format_into(std::ostringstream& out, std::string_view fmt) { out << fmt; }
template <typename T, typename... Rest>
void format_into(std::ostringstream& out, std::string_view fmt, const T& first,
                 const Rest&... rest) {
  std::size_t pos = fmt.find("{}");
  if (pos == std::string_view::npos) {
    out << fmt;
    return;
  }
  out << fmt.substr(0, pos) << first;
  format_into(out, fmt.substr(pos + 2), rest...);
}
}  // namespace detail

// Replaces each "{}" in `fmt` with the next argument, streamed with operator<<.
template <typename... Args>
std::string format(std::string_view fmt, const Args&... args) {
  std::ostringstream out;
  detail::format_into(out, fmt, args...);
  return out.str();
}

// Writes to the daemon's log, tagged with the execution.
class Logger {
 public:
  Logger(void* host, const schedd_host_api* api) : host_(host), api_(api) {}
  template <typename... Args>
  void debug(std::string_view fmt, const Args&... args) const {
    write(SCHEDD_LOG_DEBUG, format(fmt, args...));
  }
  template <typename... Args>
  void info(std::string_view fmt, const Args&... args) const {
    write(SCHEDD_LOG_INFO, format(fmt, args...));
  }
  template <typename... Args>
  void warn(std::string_view fmt, const Args&... args) const {
    write(SCHEDD_LOG_WARN, format(fmt, args...));
  }
  template <typename... Args>
  void error(std::string_view fmt, const Args&... args) const {
    write(SCHEDD_LOG_ERROR, format(fmt, args...));
  }

 private:
  void write(schedd_log_level level, const std::string& line) const {
    api_->log(host_, level, line.c_str());
  }
  void* host_;
  const schedd_host_api* api_;
};

// What an executor knows about the execution it runs.
class Context {
 public:
  explicit Context(const schedd_context* c)
      : c_(c), params_(c->params, c->param_count), log_(c->host, c->api) {}

  std::string_view execution_id() const { return c_->execution_id; }
  // The helper's name, or the ticket's name.
  std::string_view name() const { return c_->name; }
  Origin origin() const { return static_cast<Origin>(c_->origin); }
  std::string_view key() const { return c_->key; }
  std::string_view lane() const { return c_->lane; }
  uint32_t attempt() const { return c_->attempt; }
  std::chrono::system_clock::time_point due() const {
    return std::chrono::system_clock::time_point(std::chrono::milliseconds(c_->due_unix_ms));
  }
  // When the timeout will request a stop; nullopt when the execution has no timeout.
  std::optional<std::chrono::system_clock::time_point> deadline() const {
    if (c_->deadline_unix_ms == 0) return std::nullopt;
    return std::chrono::system_clock::time_point(std::chrono::milliseconds(c_->deadline_unix_ms));
  }
  const Params& params() const { return params_; }
  // The claim's fencing token (ABI 1.1): pass it with writes to systems that can refuse a
  // stale attempt's writes. 0 when the store gives none, or when the daemon predates it.
  uint64_t fence() const {
    return has(offsetof(schedd_context, fence), sizeof c_->fence) ? c_->fence : 0;
  }

  bool stop_requested() const { return c_->api->stop_requested(c_->host) != 0; }
  // Waits up to `timeout`; returns true as soon as a stop is requested.
  template <typename Rep, typename Period>
  bool wait_for_stop(std::chrono::duration<Rep, Period> timeout) const {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count();
    return c_->api->wait_for_stop(c_->host, static_cast<int64_t>(ms)) != 0;
  }
  // `fraction` in [0,1], or negative when unknown.
  void progress(double fraction, std::string_view message = {}) const {
    std::string text(message);
    c_->api->progress(c_->host, fraction, message.empty() ? nullptr : text.c_str());
  }
  const Logger& log() const { return log_; }

  // Only the first raw().struct_size bytes exist: read a field added after ABI 1.0 only
  // when struct_size covers it.
  const schedd_context& raw() const { return *c_; }

 private:
  // Whether the daemon's schedd_context has the field at `offset` (fields are only ever added
  // at the end, so an older daemon's struct_size ends before the new ones).
  bool has(std::size_t offset, std::size_t size) const { return c_->struct_size >= offset + size; }

  const schedd_context* c_;
  Params params_;
  Logger log_;
};

// The outcome of one attempt.
class Result {
 public:
  static Result succeeded(std::string output = {}) {
    return Result(SCHEDD_SUCCEEDED, {}, std::move(output));
  }
  // A failure the retry policy may retry.
  static Result failed(std::string message, std::string output = {}) {
    return Result(SCHEDD_FAILED, std::move(message), std::move(output));
  }
  // A failure that is never retried (bad input, a missing resource that will stay missing).
  static Result failed_permanently(std::string message, std::string output = {}) {
    return Result(SCHEDD_FAILED_PERMANENT, std::move(message), std::move(output));
  }
  // Returned after a stop request; the daemon records cancelled or timed_out.
  static Result cancelled(std::string message = {}, std::string output = {}) {
    return Result(SCHEDD_CANCELLED, std::move(message), std::move(output));
  }

  schedd_status status() const { return status_; }
  const std::string& message() const { return message_; }
  const std::string& output() const { return output_; }

 private:
  Result(schedd_status status, std::string message, std::string output)
      : status_(status), message_(std::move(message)), output_(std::move(output)) {}
  schedd_status status_;
  std::string message_;
  std::string output_;
};

class Executor {
 public:
  virtual ~Executor() = default;
  virtual Result run(Context& ctx) = 0;
};

namespace detail {

template <typename E>
void* create_thunk() noexcept {
  try {
    return static_cast<Executor*>(new E());
  } catch (...) {
    return nullptr;
  }
}

inline void destroy_thunk(void* instance) noexcept { delete static_cast<Executor*>(instance); }

inline int32_t run_thunk(void* instance, const schedd_context* raw) noexcept {
  try {
    Context ctx(raw);
    Result r = static_cast<Executor*>(instance)->run(ctx);
    raw->api->set_result_text(raw->host, r.message().c_str(), r.output().c_str());
    return r.status();
  } catch (const ParamError& e) {
    // A missing or mistyped param stays wrong on every retry.
    raw->api->set_result_text(raw->host, e.what(), nullptr);
    return SCHEDD_FAILED_PERMANENT;
  } catch (const std::exception& e) {
    raw->api->set_result_text(raw->host, e.what(), nullptr);
  } catch (...) {
    raw->api->set_result_text(raw->host, "executor threw a non-standard exception", nullptr);
  }
  return SCHEDD_FAILED;
}

}  // namespace detail

// Declares one executor's parameters. Returned by Registrar::add.
class ExecutorBuilder {
 public:
  ExecutorBuilder& required(std::string name, ParamType type, std::string description) {
    return param(std::move(name), type, true, std::nullopt, std::move(description));
  }
  // `default_toml` is the TOML text of the default ("\"text\"", "5", "true", "\"30s\""), or
  // nullopt when the param is simply absent unless set.
  ExecutorBuilder& optional(std::string name, ParamType type,
                            std::optional<std::string> default_toml, std::string description) {
    return param(std::move(name), type, false, std::move(default_toml), std::move(description));
  }

 private:
  friend class Registrar;
  struct Spec {
    std::string name;
    ParamType type;
    bool required;
    std::optional<std::string> default_toml;
    std::string description;
  };
  ExecutorBuilder& param(std::string name, ParamType type, bool required,
                         std::optional<std::string> default_toml, std::string description) {
    specs_.push_back(
        {std::move(name), type, required, std::move(default_toml), std::move(description)});
    return *this;
  }

  std::string name_;
  std::string description_;
  void* (*create_)() = nullptr;
  std::vector<Spec> specs_;
  std::vector<schedd_param_spec> raw_specs_;
};

// Collects the executors a plugin provides; passed to the SCHEDD_PLUGIN body.
class Registrar {
 public:
  template <typename E>
  ExecutorBuilder& add(std::string name, std::string description = {}) {
    static_assert(std::is_base_of_v<Executor, E>, "E must derive from schedd::Executor");
    auto b = std::make_unique<ExecutorBuilder>();
    b->name_ = std::move(name);
    b->description_ = std::move(description);
    b->create_ = &detail::create_thunk<E>;
    builders_.push_back(std::move(b));
    return *builders_.back();
  }

  // Builds the manifest. The registrar must outlive the loaded library's use of it.
  void fill(schedd_manifest& m, const char* plugin_name, const char* plugin_version) {
    defs_.clear();
    for (auto& b : builders_) {
      b->raw_specs_.clear();
      for (const auto& s : b->specs_) {
        b->raw_specs_.push_back({s.name.c_str(), static_cast<int32_t>(s.type), s.required ? 1 : 0,
                                 s.default_toml ? s.default_toml->c_str() : nullptr,
                                 s.description.c_str()});
      }
      defs_.push_back({b->name_.c_str(), b->description_.c_str(), b->raw_specs_.data(),
                       b->raw_specs_.size(), b->create_, &detail::destroy_thunk,
                       &detail::run_thunk});
    }
    m = schedd_manifest{SCHEDD_MANIFEST_HEADER, plugin_name, plugin_version, defs_.data(),
                        defs_.size()};
  }

 private:
  std::vector<std::unique_ptr<ExecutorBuilder>> builders_;
  std::vector<schedd_executor_def> defs_;
};

namespace detail {
// Runs the plugin's registration body when the library is loaded. A body that throws yields a
// manifest with no executors, which the daemon refuses with "provides no executors".
inline schedd_manifest make_manifest(Registrar& registrar, const char* plugin_name,
                                     const char* plugin_version, void (*body)(Registrar&)) {
  schedd_manifest m{SCHEDD_MANIFEST_HEADER, plugin_name, plugin_version, nullptr, 0};
  try {
    body(registrar);
    registrar.fill(m, plugin_name, plugin_version);
  } catch (...) {
    m.executors = nullptr;
    m.executor_count = 0;
  }
  return m;
}
}  // namespace detail

}  // namespace sdk_v1
}  // namespace schedd

// Defines the plugin: its name, its version, and a body that registers executors through
// `registrar`. Use once per plugin, at namespace scope in one source file.
#define SCHEDD_PLUGIN(plugin_name, plugin_version)                                      \
  static void schedd_plugin_register_(::schedd::Registrar& registrar);                  \
  static ::schedd::Registrar schedd_plugin_registrar_;                                  \
  extern "C" SCHEDD_EXPORT schedd_manifest schedd_plugin_manifest;                      \
  schedd_manifest schedd_plugin_manifest = ::schedd::detail::make_manifest(             \
      schedd_plugin_registrar_, plugin_name, plugin_version, &schedd_plugin_register_); \
  static void schedd_plugin_register_(::schedd::Registrar& registrar)

#endif  // SCHEDD_SDK_HPP_
