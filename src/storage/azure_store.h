// Azure Blob Storage behind the Store interface (block blobs in one container).
//
// Writes: objects smaller than or equal to one part go up in a single Put Blob; larger ones as
// Put Block requests of `part_size` bytes, up to `concurrency` in flight (ParallelPartWriter),
// each carrying Content-MD5 that the service verifies, then one Put Block List. The SHA-256 is
// stored as blob metadata (x-ms-meta-sha256) in that final request, so the blob appears
// complete with its checksum or not at all; uncommitted blocks are invisible and expire on
// their own. After the commit, Get Blob Properties confirms size and checksum (a mismatch
// deletes the blob: kDataLoss).
//
// Protection (target.azure.encryptionScope, objectLock): x-ms-encryption-scope on Put Block,
// Put Block List and Put Blob; x-ms-immutability-policy-until-date and -mode on Put Block List
// and Put Blob. Get Blob Properties after the commit must report both (else the blob is taken
// back: kFailedPrecondition, Reason::kBadResponse); Stat() reports the policy, List() does
// not. A delete refused (409/403) while the policy has not expired is kFailedPrecondition with
// Reason::kLocked ("lockedUntil").
//
// Keys are used as given (the caller applies pathPrefix via TargetConfig::FullKey, as for
// every Store). Transient failures (connection errors, stalls, 408, 429, 5xx) are retried with
// backoff per request (AzureOptions::retry), each request failing as stalled when no byte moves
// for AzureOptions::stall_time. Errors (store.h), decided on the HTTP status and the service's
// error code (x-ms-error-code): AuthenticationFailed, InvalidAuthenticationInfo, 401, and
// AuthorizationFailure for an account key -> kUnauthenticated naming where the credentials came
// from; ContainerNotFound -> kNotFound naming container and account; BlobNotFound -> kNotFound;
// other Authorization* and 403 -> kPermissionDenied; ServerBusy/429/503 -> kUnavailable
// (kThrottled); connection failures name the endpoint. Credentials never appear in messages
// (see azure_auth.h). Abort() abandons uncommitted blocks (the service drops them).
//
// Thread-safe as the Store contract requires; HTTP connections are shared through a pool.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/retry.h"
#include "common/status.h"
#include "storage/store.h"
#include "storage/target.h"

namespace bao::storage {

struct AzureOptions {
  int list_page_size = 5000;  // maxresults of each List Blobs page (tests use small pages)
  RetryPolicy retry;          // per request
  // A request moving no byte for this long fails as stalled (kUnavailable, Reason::kStalled,
  // retried).
  std::chrono::milliseconds stall_time = kDefaultStallTime;
};

// Opens the container the target names (azure.container, else bucket) in
// azure.storageAccount. Resolves credentials and the endpoint now (azure_auth.h
// ResolveCredentials: its errors are configuration errors, Stage::kConfig); no request is sent
// until the first operation. Also reads credentials_dir/caCert as an extra CA bundle when
// present.
Result<std::unique_ptr<Store>> OpenAzureStore(const TargetConfig& target,
                                              const AzureOptions& options = {});

namespace azure {

// One page of a List Blobs answer (XML, include=metadata): the blobs whose names start with
// `prefix` (others are skipped, and so are blobs marked abandoned by an interrupted discard of
// uncommitted blocks), each with its size (Content-Length, a decimal number),
// Last-Modified when it parses, the sha256 metadata and the immutability policy (mode and
// until-date, when both are there and the date parses); and NextMarker ("" on the last page).
// kInternal/kBadResponse (Stage::kStorage) naming `what` for an answer that is not a listing
// or a blob without a valid Content-Length. Public for tests and fuzz targets.
struct BlobListPage {
  std::vector<ObjectInfo> blobs;
  std::string next_marker;
};
Result<BlobListPage> ParseBlobList(std::string_view body, std::string_view prefix,
                                   const std::string& what);

}  // namespace azure
}  // namespace bao::storage
