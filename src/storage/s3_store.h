// The S3 provider ("s3"): Amazon S3 and S3-compatible servers (MinIO, Ceph RGW), signed with
// AWS Signature Version 4. See docs/storage-s3.md for the user-facing description.
//
// Upload: an object smaller than one part goes up with a single PutObject carrying its
// SHA-256 as payload hash (the server verifies it) and as user metadata x-amz-meta-sha256.
// Larger objects use a multipart upload driven by ParallelPartWriter (part_size bytes per part,
// at most max(2, concurrency) parts in memory, the one filling included), created with
// x-amz-checksum-algorithm CRC32C and x-amz-checksum-type FULL_OBJECT. Each part carries its
// CRC-32C in x-amz-checksum-crc32c, a signed header the server checks against the body, so a
// part whose bytes changed on the way is rejected (and retried). The part body itself is sent
// as UNSIGNED-PAYLOAD unless S3Options::sign_part_payloads: SigV4 still authenticates the
// request and its checksum header, CRC-32C catches accidental corruption, and a SHA-256 per
// part would be a third SHA-256 pass on the client (and another on the server) over every
// byte. CompleteMultipartUpload lists the part CRCs and sends the full-object CRC-32C (combined
// from the parts' CRCs), which the server checks against what it assembled. Since the object's
// SHA-256 is only known at Commit(), it is written first, write-once (If-None-Match: *), as the
// checksum side object "<key>.sha256" (store.h), and only then is the upload completed: the
// object is never visible without its checksum, and a versioned bucket gets one version (no
// self-copy). When CompleteMultipartUpload gets no usable answer after its retries (a lost
// answer, or NoSuchUpload on a retry: an earlier try may have completed it), the object under
// the key decides (store.h, "Unknown outcome"): it is this upload's when its ETag equals the
// one S3 gives an object completed from this upload's parts (s3_internal::MultipartETag of the
// part ETags UploadPart answered); another ETag, or part ETags that are not MD5s, is
// kAlreadyExists with Reason::kConflict and the object is left as it is; no object, the error
// stands and the upload is aborted. A HEAD (with x-amz-checksum-mode ENABLED) then checks size,
// SHA-256 record and,
// where the server reports one, the full-object CRC-32C; a mismatch deletes the object and its
// checksum (kDataLoss). Stat() reads the side object when the object has no x-amz-meta-sha256;
// List() hides side objects; Delete() removes the object, then its side object. Every request is
// retried on transient failures (5xx, 429/SlowDown, timeouts, resets, stalls, checksum mismatches)
// with exponential backoff and full jitter, S3Options::retry.max_attempts times at most, each
// attempt failing as stalled when no byte moves for S3Options::stall_time. On failure, Abort(),
// cancellation or the deadline of the Context, the multipart upload is aborted (within
// kCleanupBudget, at most kCleanupAttempts tries, whatever the caller's context), so no object and
// no unfinished upload remain.
//
// Encryption at rest (target.sse, kmsKeyId): CreateMultipartUpload, PutObject and the checksum
// side object carry x-amz-server-side-encryption (and -aws-kms-key-id); the read-back HEAD
// checks that the object reports that encryption (and key, where one was named), else the
// object is deleted and the commit fails (kFailedPrecondition, Reason::kBadResponse). Under
// SSE-KMS, part ETags are not MD5s, so the lost-answer lookup above cannot prove an object
// is this upload's: it reports kAlreadyExists/kConflict and leaves the object.
// Object lock (target.objectLock): the same requests carry x-amz-object-lock-mode and
// x-amz-object-lock-retain-until-date (options.clock's now + retainDays), PutObject with its
// Content-MD5; the read-back checks the object reports the lock. A bucket without Object Lock
// (the upload answered InvalidRequest and GET ?object-lock answers
// ObjectLockConfigurationNotFoundError) is kFailedPrecondition with Reason::kInvalidValue,
// payload "bucketObjectLock" = "disabled". Stat() reports an object's lock from its HEAD;
// List() does not (S3's listing lacks it). Delete() HEADs the object first; when it reports a
// lock (or objectLock is set) it removes the current version itself (DELETE ?versionId=), not
// by a delete marker that would only hide a locked version; a refusal while the HEAD reported
// an unexpired lock is kFailedPrecondition with Reason::kLocked and payload "lockedUntil". CleanUpLeftovers()
// deletes orphan checksums the same way and skips (logs, does not report) one still locked: a
// later cleanup removes it.
//
// Read resumes a dropped GET with a ranged request pinned to the object's ETag (If-Match).
// List uses ListObjectsV2 with continuation tokens (1000 keys per page).
//
// Errors follow store.h; refusals of the credentials name the access key id and where it came
// from (never the secret key or session token).
//
// Thread safety: as Store (any thread); HTTP connections are shared through a pool.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/retry.h"
#include "common/status.h"
#include "storage/aws_credentials.h"
#include "storage/store.h"
#include "storage/target.h"

namespace bao::storage {

struct S3Options {
  RetryPolicy retry;  // per request (and per part)
  // A transfer moving no byte for this long counts as a dropped connection (kUnavailable with
  // Reason::kStalled, retried).
  std::chrono::milliseconds stall_time = kDefaultStallTime;
  // Also sign each part's SHA-256 as its payload hash (x-amz-content-sha256), on top of the
  // CRC-32C header: end-to-end protection of part bodies against deliberate tampering on a
  // plain-HTTP path, for one more SHA-256 pass per byte on the client and on the server.
  bool sign_part_payloads = false;
  EnvLookup env = ProcessEnv();
  // Where object lock retain-until dates start (now + objectLock.retainDays); nullptr:
  // SystemClock(). Tests set a clock of theirs to get locks that end in seconds.
  const Clock* clock = nullptr;
};

class S3Store : public Store {
 public:
  ~S3Store() override = default;
  // Deletes `keys` with DeleteObjects, 1000 per request. Keys that do not exist count as
  // deleted. Returns the first failure; kUnavailable lists keys S3 reported as not deleted.
  // Storage and context errors as store.h describes.
  virtual Status DeleteMany(const Context& ctx, const std::vector<std::string>& keys) = 0;
};

// Opens the store `target` describes (target.provider must be "s3"). Resolves the
// credentials (aws_credentials.h) now, so missing or half-configured credentials fail here
// with a configuration error (Stage::kConfig, kInvalidArgument; Reason::kNoCredentials when
// none is configured at all). Sends no request: web identity credentials are fetched at the
// first operation, under its context.
Result<std::unique_ptr<S3Store>> OpenS3StoreWithOptions(const TargetConfig& target,
                                                        const S3Options& options);
Result<std::unique_ptr<Store>> OpenS3Store(const TargetConfig& target);

namespace s3_internal {

// `etag` without the double quotes S3 puts around it.
std::string Unquoted(std::string_view etag);

// The ETag S3 gives an object completed from parts whose UploadPart answers carried
// `part_etags` (in part order, quoted or not): the hex MD5 of the concatenated binary part
// MD5s, then "-" and the number of parts. nullopt when there are no parts or a part's ETag is
// not a hex MD5 (the object's ETag cannot be predicted then).
std::optional<std::string> MultipartETag(const std::vector<std::string>& part_etags);

}  // namespace s3_internal

}  // namespace bao::storage
