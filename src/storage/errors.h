// How storage providers turn what they see into a Status with machine-readable detail (see
// store.h, "Errors are data"): Stage::kStorage, a Reason, and the HTTP status when there was
// one. Decisions are made on HTTP statuses and on the providers' machine-readable error codes
// (S3 <Code>, Azure x-ms-error-code, GCS error reasons), never on message text.
#pragma once

#include <string>

#include "common/status.h"

namespace bao::storage {

// `status` as a storage error: Stage::kStorage unless it already has a stage (a configuration
// error stays Stage::kConfig). Ok stays ok.
inline Status InStorage(const Status& status) {
  return status.InStage(Stage::kStorage);
}

// A storage error: `code` and `reason`, Stage::kStorage, and `http_status` when not 0.
inline Status StorageError(Code code, Reason reason, std::string message, long http_status = 0) {
  Status s = Error(code, reason, std::move(message)).WithStage(Stage::kStorage);
  return http_status != 0 ? s.WithHttpStatus(static_cast<int>(http_status)) : s;
}

// A local configuration problem found while opening a store: kInvalidArgument with `reason`
// (kInvalidValue, kNoCredentials, kNotFound for a missing file), Stage::kConfig.
inline Status ConfigError(Reason reason, std::string message) {
  return Error(Code::kInvalidArgument, reason, std::move(message)).WithStage(Stage::kConfig);
}

// `status` (from reading a credentials or CA file, or parsing one) as a configuration error:
// Stage::kConfig, kInvalidArgument, its reason when it has one, else Reason::kNotFound for
// kNotFound and kInvalidValue otherwise; the message prefixed with "<context>: " unless
// `context` is empty. Ok stays ok.
Status AsConfigError(const Status& status, const std::string& context);

// The code and reason for an HTTP status a storage service answered, when the provider's own
// error code says nothing more specific: 401 kUnauthenticated, 403 kPermissionDenied, 404/410
// kNotFound, 409/412 kFailedPrecondition with Reason::kConflict, 408 kUnavailable/kTimeout,
// 429 kUnavailable/kThrottled, 5xx kUnavailable/kServerError, anything else
// kFailedPrecondition/kBadResponse.
struct HttpClass {
  Code code;
  Reason reason;
};
HttpClass ClassifyHttpStatus(long http_status);

// A storage error for a non-2xx answer classified as above.
inline Status HttpStatusError(long http_status, std::string message) {
  HttpClass c = ClassifyHttpStatus(http_status);
  return StorageError(c.code, c.reason, std::move(message), http_status);
}

}  // namespace bao::storage
