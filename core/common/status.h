// Status and StatusOr: the one error type of core. Libraries that throw (toml++, Boost.DLL,
// the HTTP server) are called from small adapters that catch and convert on the spot.
// Thread-safety: values; safe to copy between threads.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace schedd {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // bad input: config, API body, schedule (HTTP 400)
  kNotFound,            // unknown helper, execution, executor (HTTP 404)
  kAlreadyExists,       // idempotent duplicate (HTTP 409 or 200 by endpoint)
  kFailedPrecondition,  // wrong state: cancel a running execution (HTTP 409)
  kResourceExhausted,   // capacity.queued reached (HTTP 429 + Retry-After)
  kUnavailable,         // store unreachable (HTTP 503)
  kDeadlineExceeded,
  kCancelled,
  kAborted,  // a concurrent change won; re-read and retry (HTTP 409)
  kInternal,
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }
  bool is_ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "invalid_argument: <message>", or "ok".
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status invalid_argument(std::string m) {
  return Status(StatusCode::kInvalidArgument, std::move(m));
}
inline Status not_found(std::string m) { return Status(StatusCode::kNotFound, std::move(m)); }
inline Status failed_precondition(std::string m) {
  return Status(StatusCode::kFailedPrecondition, std::move(m));
}
inline Status internal_error(std::string m) { return Status(StatusCode::kInternal, std::move(m)); }
inline Status unavailable(std::string m) { return Status(StatusCode::kUnavailable, std::move(m)); }
inline Status aborted(std::string m) { return Status(StatusCode::kAborted, std::move(m)); }

template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  StatusOr(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    // An ok Status carries no value; constructing from one is a programming error.
    assert(!std::get<Status>(v_).is_ok());
  }

  bool is_ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace schedd
