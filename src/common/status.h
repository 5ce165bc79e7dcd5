// Status and Result<T>: how every module reports failure. No exception crosses a module
// boundary; a function that can fail returns one of these, and its message names the problem
// in words an operator can act on (never a secret).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace bao {

enum class Code {
  kOk = 0,
  kInvalidArgument,     // the caller's input is wrong (config, flags, malformed data)
  kNotFound,            // the named thing does not exist
  kAlreadyExists,       // a create found the name taken
  kPermissionDenied,    // authenticated, but not allowed
  kUnauthenticated,     // credentials missing, wrong or expired
  kUnavailable,         // transient: unreachable, 5xx, throttled; a retry may succeed
  kDataLoss,            // data is truncated or corrupt
  kFailedPrecondition,  // the system is not in a state to do this (sealed, no leader)
  kAborted,             // cancelled on request (signal, caller)
  kDeadlineExceeded,    // ran out of time
  kInternal,            // a bug or an unexpected answer
};

// Returns the canonical lower-case name of `code` ("not found", "unavailable", ...).
const char* CodeName(Code code);

// Which step of an operation failed. The pipeline that knows the step sets it (see
// Status::InStage); the executor's exit code is derived from it (backup/exit_code.h).
enum class Stage {
  kUnspecified = 0,
  kConfig,    // flags, files, configuration: wrong before any network call
  kAuth,      // logging in to OpenBao
  kLeader,    // finding the active node
  kSnapshot,  // reading (or, for a restore, sending) the snapshot
  kStorage,   // the object store
  kVerify,    // checking what was stored
};

// "config", "auth", "leader", "snapshot", "storage", "verify", or "" when unspecified.
const char* StageName(Stage stage);

// Why, in a word a program can act on; finer than Code. The layer that sees the cause sets it.
enum class Reason {
  kUnspecified = 0,
  kNotFound,           // the object, bucket, key, file or resource does not exist
  kConflict,           // taken already, or changed meanwhile (write-once keys, 409)
  kPermissionDenied,   // 403, or a file mode
  kUnauthenticated,    // credentials missing, refused or expired (401)
  kNoCredentials,      // nothing to authenticate with was configured
  kTimeout,            // a deadline passed
  kStalled,            // a transfer moved no byte for the stall time
  kCancelled,          // a signal or the caller asked to stop
  kThrottled,          // 429 / SlowDown
  kServerError,        // 5xx
  kUnreachable,        // DNS, connection refused or reset
  kTlsVerification,    // the peer's certificate was not accepted
  kInvalidValue,       // a configuration value or flag is malformed
  kCrossNamespace,     // a reference outside the resource's namespace
  kBadResponse,        // the peer answered something unexpected or malformed
  kChecksumMismatch,   // stored bytes differ from the recorded checksum or size
  kLocked,             // an operation lock or object lock is held
};

// "NotFound", "Conflict", ... (CamelCase, as Kubernetes reasons), or "" when unspecified.
const char* ReasonName(Reason reason);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // Machine-readable detail, in the manner of Abseil's status payloads. Decisions are made on
  // these and on code(), never on the message text.
  Stage stage() const { return stage_; }
  Reason reason() const { return reason_; }
  int http_status() const { return http_status_; }  // 0 when no HTTP answer is involved
  // Named extra facts ("openbaoUnchanged" -> "true"); nullptr when absent.
  const std::string* payload(const std::string& key) const;

  // Copies with one detail set (overwriting). No-ops on an ok Status.
  Status WithStage(Stage stage) const;
  Status WithReason(Reason reason) const;
  Status WithHttpStatus(int http_status) const;
  Status WithPayload(const std::string& key, std::string value) const;
  // Sets the stage only when none is set yet: an error keeps the stage of its origin (a
  // malformed credentials file stays kConfig when the storage step reports it).
  Status InStage(Stage stage) const;

  // Returns a copy whose message is "<context>: <message>"; code and detail are kept.
  Status WithContext(const std::string& context) const;

  // "<code name>: <message>", or "ok".
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
  Stage stage_ = Stage::kUnspecified;
  Reason reason_ = Reason::kUnspecified;
  int http_status_ = 0;
  std::vector<std::pair<std::string, std::string>> payload_;
};

// Shorthand: `code` with `reason`, e.g. Error(Code::kNotFound, Reason::kNotFound, "...").
inline Status Error(Code code, Reason reason, std::string message) {
  return Status(code, std::move(message)).WithReason(reason);
}

inline Status InvalidArgument(std::string m) {
  return {Code::kInvalidArgument, std::move(m)};
}
inline Status NotFound(std::string m) {
  return {Code::kNotFound, std::move(m)};
}
inline Status AlreadyExists(std::string m) {
  return {Code::kAlreadyExists, std::move(m)};
}
inline Status PermissionDenied(std::string m) {
  return {Code::kPermissionDenied, std::move(m)};
}
inline Status Unauthenticated(std::string m) {
  return {Code::kUnauthenticated, std::move(m)};
}
inline Status Unavailable(std::string m) {
  return {Code::kUnavailable, std::move(m)};
}
inline Status DataLoss(std::string m) {
  return {Code::kDataLoss, std::move(m)};
}
inline Status FailedPrecondition(std::string m) {
  return {Code::kFailedPrecondition, std::move(m)};
}
inline Status Aborted(std::string m) {
  return {Code::kAborted, std::move(m)};
}
inline Status DeadlineExceeded(std::string m) {
  return {Code::kDeadlineExceeded, std::move(m)};
}
inline Status Internal(std::string m) {
  return {Code::kInternal, std::move(m)};
}

// Result<T> holds either a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {
    if (status_.ok()) status_ = Internal("Result constructed from an ok Status without a value");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace bao

#define BAO_CONCAT_INNER(a, b) a##b
#define BAO_CONCAT(a, b) BAO_CONCAT_INNER(a, b)

// Returns from the enclosing function when `expr` (a Status) is not ok.
#define BAO_RETURN_IF_ERROR(expr)              \
  do {                                         \
    ::bao::Status bao_status_ = (expr);        \
    if (!bao_status_.ok()) return bao_status_; \
  } while (0)

// `lhs = value of expr` (a Result<T>), or returns its Status from the enclosing function.
#define BAO_ASSIGN_OR_RETURN(lhs, expr) \
  BAO_ASSIGN_OR_RETURN_IMPL(BAO_CONCAT(bao_result_, __LINE__), lhs, expr)
#define BAO_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
