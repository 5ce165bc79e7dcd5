// The S3 REST API's XML bodies (ListObjectsV2, multipart upload, DeleteObjects, errors) and the
// mapping of S3 error answers to Status codes. Pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "storage/store.h"

namespace bao::storage::s3 {

// An <Error> body: <Code>, <Message>. `found` is false when the body is not an S3 error.
struct ErrorBody {
  bool found = false;
  std::string code;
  std::string message;
};
ErrorBody ParseError(std::string_view body);

// Where a request went, for messages: "PUT object \"a/b.snap\"", bucket and endpoint shown.
struct RequestContext {
  std::string what;
  std::string bucket;
  std::string endpoint;  // shown through UrlForDisplay
  // The credential the request was signed with, for refusals: "access key AKIA... (from the
  // credentials directory /x)". Never a secret.
  std::string credential;
};

// Maps an S3 failure (HTTP status and error body; the body is empty for HEAD) to a storage
// error (Stage::kStorage, the HTTP status, a Reason), deciding on the status and the body's
// <Code> only:
//  - bad credentials or signature (SignatureDoesNotMatch, InvalidAccessKeyId, ExpiredToken, ...,
//    or 401) -> kUnauthenticated/kUnauthenticated: "S3 rejected the credentials: <credential>
//    was refused (...)";
//  - AccessDenied, AllAccessDisabled, AccountProblem, 403 -> kPermissionDenied, naming the
//    credential;
//  - NoSuchBucket -> kNotFound naming bucket and endpoint; NoSuchKey, NoSuchUpload, 404 ->
//    kNotFound (Reason::kNotFound);
//  - wrong region or endpoint (AuthorizationHeaderMalformed, PermanentRedirect, 301) ->
//    kFailedPrecondition/kInvalidValue;
//  - 409, PreconditionFailed (412) -> kFailedPrecondition/kConflict;
//  - retryable kUnavailable: SlowDown, ServiceUnavailable, 429, 503 -> kThrottled; InternalError
//    and other 5xx -> kServerError; RequestTimeout -> kTimeout; a corrupted payload
//    (XAmzContentSHA256Mismatch, BadDigest, XAmzContentChecksumMismatch, IncompleteBody) ->
//    kChecksumMismatch; RequestTimeTooSkewed -> kInvalidValue (the local clock);
//  - other answers -> kFailedPrecondition/kBadResponse.
// Never includes header values or secrets.
Status MapError(long http_status, std::string_view body, const RequestContext& context);

// One page of ListObjectsV2. Keys are decoded when the listing used encoding-type=url.
struct ListPage {
  std::vector<ObjectInfo> objects;
  bool truncated = false;
  std::string next_continuation_token;
};
Result<ListPage> ParseListObjectsV2(std::string_view body);

// One page of ListMultipartUploads: the unfinished uploads, keys decoded when the listing used
// encoding-type=url. An upload without a valid <Initiated> time is kInternal/kBadResponse
// (never guessed: cleanup decides on that time).
struct MultipartUpload {
  std::string key;
  std::string upload_id;
  TimePoint initiated{};
};
struct UploadsPage {
  std::vector<MultipartUpload> uploads;
  bool truncated = false;
  std::string next_key_marker;
  std::string next_upload_id_marker;
};
Result<UploadsPage> ParseListMultipartUploads(std::string_view body);

// <InitiateMultipartUploadResult><UploadId>: the upload id, or kInternal for other bodies.
Result<std::string> ParseInitiateMultipartUpload(std::string_view body);

// The CompleteMultipartUpload request body for parts 1..N with these ETags and, when
// `crc32c` is not empty (then it has one entry per part), each part's base64 CRC-32C.
std::string CompleteMultipartUploadBody(const std::vector<std::string>& etags,
                                        const std::vector<std::string>& crc32c = {});

// A CompleteMultipartUpload / CopyObject / UploadPartCopy answer that came with HTTP 200: the
// ETag of the result, or the error it carries (S3 may report failure inside a 200 body),
// mapped as MapError(500-class for InternalError/SlowDown, else by code) with HTTP status 200;
// an unreadable body is kUnavailable/kBadResponse (retried).
Result<std::string> ParseCompleteOrCopyResult(std::string_view body, const RequestContext& context);

// The DeleteObjects request body (quiet mode) for up to 1000 keys.
std::string DeleteObjectsBody(const std::vector<std::string>& keys);
// The keys a DeleteObjects answer reports as failed, as "key: Code message" lines.
Result<std::vector<std::string>> ParseDeleteObjectsErrors(std::string_view body);

// Parses an HTTP date ("Wed, 12 Oct 2009 17:50:00 GMT"); kInvalidArgument otherwise.
Result<TimePoint> ParseHttpDate(std::string_view text);

// Decodes S3's encoding-type=url form (percent-encoding, '+' for space).
std::string UrlDecode(std::string_view text);

}  // namespace bao::storage::s3
