// Errors that carry an actionable message: what went wrong, where, what to do.
// Untrusted input returns a Status; programmer bugs assert.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace loupe {

enum class ErrorCode {
  kOk,
  kInvalidArgument,  // bad CLI argument, bad request field
  kNotFound,         // missing file, key or tensor
  kIo,               // the OS refused a read or write
  kCorrupt,          // a file's bytes contradict its format
  kUnsupported,      // valid but not implemented here
  kOutOfRange,       // a limit was exceeded (context, size)
  kUnavailable,      // busy right now (a full request queue): retry later
  kInternal,
  kCount
};

const char* error_code_name(ErrorCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok_status() { return Status(); }
  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy whose message is prefixed with `context: `.
  Status with_context(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, context + ": " + message_);
  }

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

template <typename... Args>
Status make_error(ErrorCode code, fmt::format_string<Args...> f, Args&&... args) {
  return Status(code, fmt::format(f, std::forward<Args>(args)...));
}

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}
  Expected(Status status) : v_(std::move(status)) {
    assert(!std::get<Status>(v_).ok() && "Expected built from an ok Status");
  }

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Status& status() const {
    static const Status kOk;
    return has_value() ? kOk : std::get<Status>(v_);
  }

 private:
  std::variant<T, Status> v_;
};

}  // namespace loupe

#define LOUPE_CONCAT_INNER(a, b) a##b
#define LOUPE_CONCAT(a, b) LOUPE_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function if `expr` failed.
#define LOUPE_TRY(expr)                                  \
  do {                                                   \
    ::loupe::Status loupe_status_ = (expr);              \
    if (!loupe_status_.ok()) return loupe_status_;       \
  } while (0)

// `LOUPE_ASSIGN_OR_RETURN(auto x, f())` unwraps an Expected or returns its Status.
#define LOUPE_ASSIGN_OR_RETURN(lhs, expr)                                    \
  auto LOUPE_CONCAT(loupe_expected_, __LINE__) = (expr);                     \
  if (!LOUPE_CONCAT(loupe_expected_, __LINE__).has_value())                  \
    return LOUPE_CONCAT(loupe_expected_, __LINE__).status();                 \
  lhs = std::move(LOUPE_CONCAT(loupe_expected_, __LINE__)).value()
