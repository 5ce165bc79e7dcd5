#include "common/status.h"

namespace bao {

const char* CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid argument";
    case Code::kNotFound: return "not found";
    case Code::kAlreadyExists: return "already exists";
    case Code::kPermissionDenied: return "permission denied";
    case Code::kUnauthenticated: return "unauthenticated";
    case Code::kUnavailable: return "unavailable";
    case Code::kDataLoss: return "data loss";
    case Code::kFailedPrecondition: return "failed precondition";
    case Code::kAborted: return "aborted";
    case Code::kDeadlineExceeded: return "deadline exceeded";
    case Code::kInternal: return "internal";
  }
  return "unknown";
}

const char* StageName(Stage stage) {
  switch (stage) {
    case Stage::kUnspecified: return "";
    case Stage::kConfig: return "config";
    case Stage::kAuth: return "auth";
    case Stage::kLeader: return "leader";
    case Stage::kSnapshot: return "snapshot";
    case Stage::kStorage: return "storage";
    case Stage::kVerify: return "verify";
  }
  return "";
}

const char* ReasonName(Reason reason) {
  switch (reason) {
    case Reason::kUnspecified: return "";
    case Reason::kNotFound: return "NotFound";
    case Reason::kConflict: return "Conflict";
    case Reason::kPermissionDenied: return "PermissionDenied";
    case Reason::kUnauthenticated: return "Unauthenticated";
    case Reason::kNoCredentials: return "NoCredentials";
    case Reason::kTimeout: return "Timeout";
    case Reason::kStalled: return "Stalled";
    case Reason::kCancelled: return "Cancelled";
    case Reason::kThrottled: return "Throttled";
    case Reason::kServerError: return "ServerError";
    case Reason::kUnreachable: return "Unreachable";
    case Reason::kTlsVerification: return "TLSVerification";
    case Reason::kInvalidValue: return "InvalidValue";
    case Reason::kCrossNamespace: return "CrossNamespaceReference";
    case Reason::kBadResponse: return "BadResponse";
    case Reason::kChecksumMismatch: return "ChecksumMismatch";
    case Reason::kLocked: return "Locked";
  }
  return "";
}

const std::string* Status::payload(const std::string& key) const {
  for (const auto& [k, v] : payload_) {
    if (k == key) return &v;
  }
  return nullptr;
}

Status Status::WithStage(Stage stage) const {
  Status s = *this;
  if (!s.ok()) s.stage_ = stage;
  return s;
}

Status Status::WithReason(Reason reason) const {
  Status s = *this;
  if (!s.ok()) s.reason_ = reason;
  return s;
}

Status Status::WithHttpStatus(int http_status) const {
  Status s = *this;
  if (!s.ok()) s.http_status_ = http_status;
  return s;
}

Status Status::WithPayload(const std::string& key, std::string value) const {
  Status s = *this;
  if (s.ok()) return s;
  for (auto& [k, v] : s.payload_) {
    if (k == key) {
      v = std::move(value);
      return s;
    }
  }
  s.payload_.emplace_back(key, std::move(value));
  return s;
}

Status Status::InStage(Stage stage) const {
  return stage_ == Stage::kUnspecified ? WithStage(stage) : *this;
}

Status Status::WithContext(const std::string& context) const {
  if (ok()) return *this;
  Status s = *this;
  s.message_ = context + ": " + message_;
  return s;
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(CodeName(code_)) + ": " + message_;
}

}  // namespace bao
