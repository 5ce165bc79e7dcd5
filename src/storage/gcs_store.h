// The Google Cloud Storage provider ("gcs"), over the JSON API.
//
// Writes use one resumable upload session per object, opened by NewWriter() (so a missing
// bucket or refused credentials fail there). Appended bytes are buffered into one chunk (a
// multiple of 256 KiB derived from partSize) and each full chunk is PUT with
// "Content-Range: bytes S-E/*" once more data follows; Commit() sends the last chunk with the
// total size, which finalizes the object. After a failed chunk the writer asks the session for
// the persisted offset ("Content-Range: bytes */*") and resends from there. Memory: one chunk.
//
// The SHA-256 is only known at Commit(): it is written first, write-once, as the checksum side
// object "<key>.sha256" (store.h), and only then is the last chunk sent. Size and CRC32C
// reported by the server for the finalized object are compared with what was sent; a mismatch
// deletes that generation again. When the final chunk gets no usable answer after its retries
// (a lost answer, then a session that is gone or answers nothing), the object under the key
// decides (store.h, "Unknown outcome"): it is this upload's when its size and CRC32C equal
// those of the bytes sent; another object is kAlreadyExists with Reason::kConflict and is left
// as it is; no object, the error stands. Abort() cancels the session (DELETE), so a failed
// upload leaves no object.
//
// Protection (target.gcs.kmsKeyName, objectLock): the session and the checksum side object are
// created with the kmsKeyName parameter, the session's resource with retention {mode,
// retainUntilTime}; after the upload the object must report that key (GCS appends
// "/cryptoKeyVersions/N") and retention mode, else it is deleted again and the commit fails
// (kFailedPrecondition, Reason::kBadResponse). A delete refused (403/412) while the object's
// retention has not ended is kFailedPrecondition with Reason::kLocked ("lockedUntil").
//
// Authentication, first match wins: <credentials_dir>/credentials.json (service-account key),
// the key file named by GOOGLE_APPLICATION_CREDENTIALS, none when STORAGE_EMULATOR_HOST is set,
// the metadata server at GCE_METADATA_HOST when that is set, none when `endpoint` is outside
// googleapis.com (an emulator), else the metadata server at metadata.google.internal when the
// machine is a Google Cloud VM (its DMI product name says "Google"). Otherwise opening fails at
// once: no credentials are configured. See docs/storage-gcs.md.
//
// Errors follow store.h. GCS answers a 404 alike for a missing object and a missing bucket; on
// a 404 about an object the store asks for the bucket (GET b/<bucket>) to tell which. Every
// request is retried on transient failures (GcsOptions::retry) and fails as stalled when no byte
// moves for GcsOptions::stall_time. HTTP connections are shared through a pool.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/retry.h"
#include "common/status.h"
#include "storage/store.h"
#include "storage/target.h"

namespace bao::storage {

// Knobs tests turn; production uses the defaults.
struct GcsOptions {
  RetryPolicy retry;
  // maxResults per listing page; 0 leaves it to the server (1000).
  int list_page_size = 0;
  // A request moving no byte for this long fails as stalled (kUnavailable, Reason::kStalled,
  // retried).
  std::chrono::milliseconds stall_time = kDefaultStallTime;
  // Where the machine's DMI product name is read ("Google Compute Engine" on GCE and GKE).
  std::string gce_product_name_file = "/sys/class/dmi/id/product_name";
};

// Opens the GCS store for `target` (provider "gcs"). Reads credentials now and contacts no
// server: a bad or unreadable key file is a configuration error (Stage::kConfig,
// kInvalidArgument) naming the file; no credentials at all (none of the sources above, and not
// a Google Cloud VM) is Stage::kConfig, kInvalidArgument, Reason::kNoCredentials.
Result<std::unique_ptr<Store>> OpenGcsStore(const TargetConfig& target,
                                            const GcsOptions& options = {});

namespace gcs_internal {

constexpr uint64_t kChunkGranularity = 256 * 1024;
// The chunk size taken for the contract's default part size (kDefaultPartSize, which is also
// what an unset one reads as): 16 MiB, the default of Google's client libraries. Fewer chunks
// mean fewer round trips on GCS, and on fake-gcs-server, which re-hashes the whole object
// received so far on every chunk, quadratically less work (docs/benchmarks.md).
constexpr uint64_t kDefaultChunkSize = 16 * 1024 * 1024;

// The upload chunk size for `part_size` and `concurrency`. A writer holds two chunks (one sent
// while the next fills), which must fit the memory of part_size x (concurrency + 1): so
// kDefaultChunkSize for kDefaultPartSize when two of them fit (concurrency >= 3), otherwise
// `part_size` rounded down to a multiple of 256 KiB, at least 256 KiB.
uint64_t ChunkSize(uint64_t part_size, int concurrency);

// "bytes S-E/T" for `length` bytes at `start` (length > 0), T = total or "*";
// "bytes */T" when length is 0.
std::string ContentRange(uint64_t start, uint64_t length, std::optional<uint64_t> total);

// The offset after the bytes a session has persisted, from a 308 answer's Range header
// ("bytes=0-N" -> N+1; absent -> 0). kInternal for anything else.
Result<uint64_t> PersistedOffset(std::string_view range_header);

// The API base from the configured endpoint and STORAGE_EMULATOR_HOST (`emulator_host`, may be
// empty): "https://storage.googleapis.com" by default, a scheme added when missing, no
// trailing '/'.
std::string ResolveEndpoint(const std::string& endpoint, const std::string& emulator_host);

// The ObjectInfo of a JSON object resource (the answer to an upload or a metadata request, or
// an item of a listing): name, size (a string of decimal digits, or an unsigned JSON number),
// updated (when it parses as RFC 3339), metadata.sha256 and retention (mode and
// retainUntilTime, as lock_mode / locked_until). kInternal/kBadResponse
// (Stage::kStorage) naming `what` when the resource is not an object or its size is missing or
// not such a number.
Result<ObjectInfo> ObjectInfoFromResource(const nlohmann::json& resource, const std::string& what);

}  // namespace gcs_internal
}  // namespace bao::storage
