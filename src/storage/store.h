// The one streaming interface every storage provider implements (local directory, S3, GCS,
// Azure Blob). The backup pipeline, verify, restore and retention only ever see a Store, in
// the way LevelDB's code only sees an Env.
//
// Keys are '/'-separated, relative, never start with '/' and never contain "." or ".."
// segments; ValidateKey() checks this and every provider calls it.
//
// Contexts. Every method that can block takes a `const Context& ctx` first. Once `ctx` is
// cancelled the call returns kAborted with Reason::kCancelled promptly (within about a second,
// whatever the network does); once its deadline passes it returns kDeadlineExceeded with
// Reason::kTimeout. A call never starts a request after either. A write that ends this way
// leaves nothing under its key.
//
// Errors are data. Every error a Store or ObjectWriter returns carries a Stage and a Reason
// (common/status.h), and the HTTP status where the provider answered one; callers decide on
// code(), reason(), stage() and http_status(), never on the message:
//  - stage: Stage::kStorage, except for a local configuration problem found while opening
//    (a malformed credentials file, a missing key file, no credentials at all), which is
//    Stage::kConfig with kInvalidArgument;
//  - reason: kNotFound (object, bucket, container), kConflict (write-once refusals, 409/412),
//    kPermissionDenied (403, file modes), kUnauthenticated (401, credentials refused; the
//    message names which credential, never a secret), kThrottled (429, SlowDown, 503 busy),
//    kServerError (other 5xx), kChecksumMismatch (read-back differs), and the transport
//    reasons of http::Client: kUnreachable, kStalled, kTimeout, kTlsVerification, kCancelled.
// Network providers retry transient failures (kUnavailable, kDeadlineExceeded) a bounded
// number of times with backoff, each request with a stall timeout; the codes listed below are
// what comes back once the retries are spent.
//
// Thread safety: a Store may be called from several threads at once. An ObjectWriter is used
// by one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/context.h"
#include "common/status.h"
#include "common/time.h"

namespace bao::storage {

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  TimePoint modified{};
  // The object's SHA-256 (lower-case hex) as recorded at upload, or "" when unknown. List()
  // may leave it empty where the provider's listing does not carry metadata; Stat() fills it
  // whenever the object has one.
  std::string sha256;
  // The object's lock (immutable backups, objectLock in target.h): "" when it has none, else
  // the provider's mode ("GOVERNANCE" / "COMPLIANCE" on S3, "Unlocked" / "Locked" on GCS and
  // Azure), and `locked_until` when its retention ends (it may be past: then it no longer
  // protects the object). Stat() fills it; List() where the provider's listing reports it
  // (GCS, Azure; not S3's).
  std::string lock_mode;
  TimePoint locked_until{};
  // True while a lock protects the object at `now`.
  bool LockedAt(TimePoint now) const { return !lock_mode.empty() && locked_until > now; }
};

// What the writer of an object knows once all bytes have been appended.
struct CommitInfo {
  uint64_t size = 0;   // bytes appended
  std::string sha256;  // SHA-256 of those bytes, lower-case hex
};

// Something a crashed writer left behind, removed by Store::CleanUpLeftovers().
struct Leftover {
  // "multipart-upload" (S3), "uncommitted-blob" (Azure), "resumable-session" (GCS),
  // "temporary-file" (file store), "orphan-checksum" (file store, S3, GCS: a checksum whose
  // object does not exist).
  std::string kind;
  std::string key;      // the object key the leftover was for (or its own key, for a file)
  TimePoint started{};  // when the upload started (or the file was last modified)
};

// Called with each chunk of an object, in order. Returning an error stops the read and makes
// Read() return that error, unchanged (its stage and reason are the sink's).
using ByteSink = std::function<Status(std::string_view chunk)>;

// How long ObjectWriter::Abort() (and a writer's own cleanup after a failure) may spend on
// provider-side cleanup, in at most kCleanupAttempts requests per step: a hung endpoint cannot
// hold the process after cancellation. Cleanup runs under Context::ForCleanup(), so it is not
// itself cancelled by the caller's context.
inline constexpr std::chrono::milliseconds kCleanupBudget{10000};
inline constexpr int kCleanupAttempts = 2;

// How long a network provider's request may move no byte before it fails as stalled
// (kUnavailable with Reason::kStalled, retried like a dropped connection), unless its options
// say otherwise (S3Options, GcsOptions, AzureOptions::stall_time; StoreOptions in target.h).
inline constexpr std::chrono::milliseconds kDefaultStallTime{60000};

// Writes one new object. Nothing is visible under the key until Commit() succeeds: no partial
// object, ever. Destroying a writer that was not committed aborts it.
//
// The context given to Store::NewWriter() governs the writer's work in the background (parts
// uploading between calls); each call's own `ctx` bounds that call. Callers normally pass the
// same context to both; cancelling either stops the upload. The CancelSource behind that
// context must outlive the writer.
class ObjectWriter {
 public:
  virtual ~ObjectWriter() = default;

  // Appends `data` (copied or written before returning; the caller may reuse its buffer). May
  // block while earlier parts are in flight (back-pressure bounds memory).
  // Errors: kAborted/kCancelled or kDeadlineExceeded/kTimeout from `ctx` (or the writer's
  // context); kUnavailable (endpoint unreachable, stalled, throttled or failing after the
  // retries); kPermissionDenied, kUnauthenticated, kNotFound (bucket gone) as answered; and
  // kFailedPrecondition after a successful Commit(). An error is final: the upload is aborted
  // (as Abort() does), and every later Append() or Commit() returns that same first error.
  virtual Status Append(const Context& ctx, std::string_view data) = 0;

  // Makes the object visible under its key with `info.sha256` recorded beside it, then reads
  // back what the store holds and checks it against `info` (size always; the checksum where
  // the store can report it). Returns the stored object's description.
  // Unknown outcome: when the request that publishes the object gets no usable answer after
  // its retries (the connection dropped or reset, a head without its body; for S3 also a
  // retried CompleteMultipartUpload that finds the upload gone), the store may have published
  // it all the same. The writer then looks the object up before deciding: an object under the
  // key that is provably this writer's (the provider's header says how it tells) counts as
  // published, with a warning in the log, and the read-back checks go on; no object there
  // leaves the error as it was.
  // Errors (nothing of this writer's is then left under the key; a mismatch found after
  // publication deletes the object again): kInvalidArgument when `info.size` differs from the
  // bytes appended; kDataLoss with Reason::kChecksumMismatch when the read-back does not
  // match; kAlreadyExists with Reason::kConflict where the store refuses to replace an object
  // (write-once stores), and when, after an unknown outcome, the object under the key is not
  // provably this writer's (it is never deleted then); the storage and context errors listed
  // for Append(). An error is final, as for Append(); after Abort() every call returns
  // kAborted with Reason::kCancelled; a second Commit() after success, or an Append() after
  // it, is kFailedPrecondition.
  virtual Result<ObjectInfo> Commit(const Context& ctx, const CommitInfo& info) = 0;

  // Discards everything written so far and releases provider-side resources (temporary files,
  // multipart uploads, upload sessions, uncommitted blocks), within kCleanupBudget and at most
  // kCleanupAttempts tries per request, whatever the caller's context says. Idempotent; a
  // no-op after a successful Commit(). Never fails loudly: problems are logged (providers
  // keep nothing that their own expiry or a lifecycle rule does not eventually remove).
  virtual void Abort() = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // A short human description for messages, e.g. "file:///srv/backups" or "s3://bucket".
  // Never contains credentials. Does not block.
  virtual std::string Describe() const = 0;

  // Starts writing the object `key`; `ctx` then also governs the writer (see ObjectWriter).
  // Errors that can be detected before any byte is written are returned here: kInvalidArgument
  // for a bad key; kNotFound for a missing bucket or container; kUnauthenticated /
  // kPermissionDenied when the credentials are refused; kAlreadyExists (Reason::kConflict)
  // where the store is write-once and the key is taken; kUnavailable when the endpoint cannot
  // be reached after the retries; kAborted / kDeadlineExceeded from `ctx`. Providers that are
  // not write-once replace an existing object at Commit(), atomically where the store can.
  virtual Result<std::unique_ptr<ObjectWriter>> NewWriter(const Context& ctx,
                                                          const std::string& key) = 0;

  // Streams bytes [offset, end) of object `key` to `sink`, in order, on the calling thread.
  // A dropped connection is resumed from the last delivered byte where the provider can;
  // `sink` never sees a byte twice or out of order. Errors: the sink's own error, unchanged;
  // kNotFound (object or bucket absent); kInvalidArgument for an offset beyond the object's
  // size; kFailedPrecondition when the object changed while it was read; the storage and
  // context errors above. On cancellation the sink may have seen part of the object.
  virtual Status Read(const Context& ctx, const std::string& key, uint64_t offset,
                      const ByteSink& sink) = 0;

  // Describes object `key`, including its recorded checksum. kNotFound when absent (object or
  // bucket); storage and context errors as above.
  virtual Result<ObjectInfo> Stat(const Context& ctx, const std::string& key) = 0;

  // Calls `fn` for every object whose key starts with `prefix` (all pages), in ascending key
  // order, on the calling thread. Provider-internal objects (temporary files, checksum side
  // files) are not listed. An error from `fn` stops the listing and is returned unchanged.
  // kNotFound when the bucket (or directory root) does not exist; storage and context errors
  // as above.
  virtual Status List(const Context& ctx, const std::string& prefix,
                      const std::function<Status(const ObjectInfo&)>& fn) = 0;

  // Deletes object `key` (and anything the provider keeps beside it). Deleting an object that
  // does not exist succeeds; a missing bucket is kNotFound. An object whose lock has not
  // expired (ObjectInfo::lock_mode) is kFailedPrecondition with Reason::kLocked, its payload
  // "lockedUntil" the RFC 3339 end of the retention, and is left as it is. Storage and context
  // errors as above. When it fails otherwise, the object may or may not still exist.
  virtual Status Delete(const Context& ctx, const std::string& key) = 0;

  // Removes what writers that never finished (a process killed mid-upload) left under
  // `prefix`, if it was started before `older_than`, and returns what was removed: unfinished
  // multipart uploads (S3), blobs that hold only uncommitted blocks (Azure), resumable
  // sessions recorded by their marker object (GCS), temporary files and checksum side files
  // without their object (file store). Never removes a committed object, nor anything whose
  // key does not start with `prefix`; a writer of this process that is still open is only
  // safe when it started after `older_than`. Something already gone meanwhile counts as
  // removed. Errors: kNotFound for a missing bucket or container (a missing directory root is
  // not an error: nothing to clean); the storage errors above when listing or a removal
  // fails (the first such error; the removals before it are not reported then); kAborted /
  // kDeadlineExceeded from `ctx`, checked before every request.
  virtual Result<std::vector<Leftover>> CleanUpLeftovers(const Context& ctx,
                                                         const std::string& prefix,
                                                         TimePoint older_than) = 0;
};

// Checks the key rules above; kInvalidArgument naming the problem. Keys ending in ".sha256" are
// refused too: they are reserved for checksum side objects (below).
Status ValidateKey(std::string_view key);

// Checksum side objects. Where a provider cannot publish an object together with its recorded
// SHA-256 (an S3 multipart upload or a GCS resumable upload takes metadata only when it starts,
// before the checksum is known), the checksum is written first, write-once, as the side object
// "<key>.sha256" holding "<sha256 hex>  <base name>\n" (sha256sum's format), and only then is
// the object published. So an object is never visible without its checksum; a crash in between
// leaves at most an orphan side object, which listings hide and leftover cleanup removes.
inline constexpr std::string_view kChecksumSuffix = ".sha256";
inline std::string ChecksumKey(const std::string& key) {
  return key + std::string(kChecksumSuffix);
}
inline bool IsChecksumKey(std::string_view key) {
  return key.ends_with(kChecksumSuffix);
}

// Of a listing that includes checksum side objects (`all`, in any order), the side objects
// last modified before `older_than` whose object is not in the listing, as leftovers of kind
// "orphan-checksum" keyed by the object they were for.
std::vector<Leftover> OrphanChecksums(const std::vector<ObjectInfo>& all, TimePoint older_than);
// The side object's content for `key` with checksum `sha256`.
std::string ChecksumFileContent(std::string_view key, std::string_view sha256);
// The checksum a side object's content records, or "" when it records none.
std::string ParseChecksumFile(std::string_view content);

// A Store that forwards every call to another. Tests derive from it and override the one call
// they want to break; decorators (logging, metrics) can do the same. Does not own `base`.
class ForwardingStore : public Store {
 public:
  explicit ForwardingStore(Store* base) : base_(base) {}
  std::string Describe() const override { return base_->Describe(); }
  Result<std::unique_ptr<ObjectWriter>> NewWriter(const Context& ctx,
                                                  const std::string& key) override {
    return base_->NewWriter(ctx, key);
  }
  Status Read(const Context& ctx, const std::string& key, uint64_t offset,
              const ByteSink& sink) override {
    return base_->Read(ctx, key, offset, sink);
  }
  Result<ObjectInfo> Stat(const Context& ctx, const std::string& key) override {
    return base_->Stat(ctx, key);
  }
  Status List(const Context& ctx, const std::string& prefix,
              const std::function<Status(const ObjectInfo&)>& fn) override {
    return base_->List(ctx, prefix, fn);
  }
  Status Delete(const Context& ctx, const std::string& key) override {
    return base_->Delete(ctx, key);
  }
  Result<std::vector<Leftover>> CleanUpLeftovers(const Context& ctx, const std::string& prefix,
                                                 TimePoint older_than) override {
    return base_->CleanUpLeftovers(ctx, prefix, older_than);
  }

 protected:
  Store* base() const { return base_; }

 private:
  Store* base_;
};

// An ObjectWriter that forwards to another; the same idea for writers.
class ForwardingWriter : public ObjectWriter {
 public:
  explicit ForwardingWriter(std::unique_ptr<ObjectWriter> base) : base_(std::move(base)) {}
  Status Append(const Context& ctx, std::string_view data) override {
    return base_->Append(ctx, data);
  }
  Result<ObjectInfo> Commit(const Context& ctx, const CommitInfo& info) override {
    return base_->Commit(ctx, info);
  }
  void Abort() override { base_->Abort(); }

 protected:
  ObjectWriter* base() const { return base_.get(); }

 private:
  std::unique_ptr<ObjectWriter> base_;
};

}  // namespace bao::storage
