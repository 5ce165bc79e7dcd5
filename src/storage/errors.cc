#include "storage/errors.h"

namespace bao::storage {

Status AsConfigError(const Status& status, const std::string& context) {
  if (status.ok()) return status;
  Reason reason = status.reason() != Reason::kUnspecified ? status.reason()
                  : status.code() == Code::kNotFound     ? Reason::kNotFound
                                                         : Reason::kInvalidValue;
  return ConfigError(reason, context.empty() ? status.message()
                                             : context + ": " + status.message());
}

HttpClass ClassifyHttpStatus(long s) {
  if (s == 401) return {Code::kUnauthenticated, Reason::kUnauthenticated};
  if (s == 403) return {Code::kPermissionDenied, Reason::kPermissionDenied};
  if (s == 404 || s == 410) return {Code::kNotFound, Reason::kNotFound};
  if (s == 409 || s == 412) return {Code::kFailedPrecondition, Reason::kConflict};
  if (s == 408) return {Code::kUnavailable, Reason::kTimeout};
  if (s == 429) return {Code::kUnavailable, Reason::kThrottled};
  if (s >= 500) return {Code::kUnavailable, Reason::kServerError};
  return {Code::kFailedPrecondition, Reason::kBadResponse};
}

}  // namespace bao::storage
