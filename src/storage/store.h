// The one streaming interface every storage provider implements (local directory, S3, GCS,
// Azure Blob). The backup pipeline, verify, restore and retention only ever see a Store, in
// the way LevelDB's code only sees an Env.
//
// Keys are '/'-separated, relative, never start with '/' and never contain "." or ".."
// segments; ValidateKey() checks this and every provider calls it.
//
// Thread safety: a Store may be called from several threads at once. An ObjectWriter is used
// by one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

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
};

// What the writer of an object knows once all bytes have been appended.
struct CommitInfo {
  uint64_t size = 0;   // bytes appended
  std::string sha256;  // SHA-256 of those bytes, lower-case hex
};

// Called with each chunk of an object, in order. Returning an error stops the read and makes
// Read() return that error.
using ByteSink = std::function<Status(std::string_view chunk)>;

// Writes one new object. Nothing is visible under the key until Commit() succeeds: no partial
// object, ever. Destroying a writer that was not committed aborts it.
class ObjectWriter {
 public:
  virtual ~ObjectWriter() = default;

  // Appends `data` (copied or written before returning; the caller may reuse its buffer). May
  // block while earlier parts are in flight (back-pressure bounds memory). An error is final:
  // the upload is aborted, and every later Append() or Commit() returns an error.
  virtual Status Append(std::string_view data) = 0;

  // Makes the object visible under its key with `info.sha256` recorded beside it, then reads
  // back what the store holds and checks it against `info` (size always; the checksum where
  // the store can report it). Returns the stored object's description. On any error nothing
  // is left under the key (a mismatch found after publication deletes the object again) and
  // the error names the cause: kUnavailable/kPermissionDenied/... for storage failures,
  // kDataLoss when the read-back does not match.
  virtual Result<ObjectInfo> Commit(const CommitInfo& info) = 0;

  // Discards everything written so far and releases provider-side resources (temporary files,
  // multipart uploads, uncommitted blocks). Idempotent; a no-op after a successful Commit().
  // Never fails loudly: problems are logged.
  virtual void Abort() = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // A short human description for messages, e.g. "file:///srv/backups" or "s3://bucket".
  // Never contains credentials.
  virtual std::string Describe() const = 0;

  // Starts writing the object `key`. kInvalidArgument for a bad key; kAlreadyExists is never
  // returned (an existing object is replaced at Commit(), atomically where the store can).
  // Errors that can be detected before any byte is written (bucket missing, credentials
  // refused) should be returned here.
  virtual Result<std::unique_ptr<ObjectWriter>> NewWriter(const std::string& key) = 0;

  // Streams bytes [offset, end) of object `key` to `sink`, in order. kNotFound when the object
  // does not exist. A dropped connection is resumed from the last delivered byte where the
  // provider can; `sink` never sees a byte twice or out of order.
  virtual Status Read(const std::string& key, uint64_t offset, const ByteSink& sink) = 0;

  // Describes object `key`, including its recorded checksum. kNotFound when absent.
  virtual Result<ObjectInfo> Stat(const std::string& key) = 0;

  // Calls `fn` for every object whose key starts with `prefix` (all pages), in ascending key
  // order. Provider-internal objects (temporary files, checksum side files) are not listed.
  // An error from `fn` stops the listing and is returned.
  virtual Status List(const std::string& prefix,
                      const std::function<Status(const ObjectInfo&)>& fn) = 0;

  // Deletes object `key` (and anything the provider keeps beside it). Deleting an object that
  // does not exist succeeds.
  virtual Status Delete(const std::string& key) = 0;

  // TRANSITIONAL (replaced by the Context-taking interface on branch h-storage).
  Result<std::unique_ptr<ObjectWriter>> NewWriter(const Context&, const std::string& key) {
    return NewWriter(key);
  }
  Status Read(const Context&, const std::string& key, uint64_t offset, const ByteSink& sink) {
    return Read(key, offset, sink);
  }
  Result<ObjectInfo> Stat(const Context&, const std::string& key) { return Stat(key); }
  Status List(const Context&, const std::string& prefix,
              const std::function<Status(const ObjectInfo&)>& fn) {
    return List(prefix, fn);
  }
  Status Delete(const Context&, const std::string& key) { return Delete(key); }
};

// Checks the key rules above; kInvalidArgument naming the problem.
Status ValidateKey(std::string_view key);

// A Store that forwards every call to another. Tests derive from it and override the one call
// they want to break; decorators (logging, metrics) can do the same. Does not own `base`.
class ForwardingStore : public Store {
 public:
  explicit ForwardingStore(Store* base) : base_(base) {}
  std::string Describe() const override { return base_->Describe(); }
  Result<std::unique_ptr<ObjectWriter>> NewWriter(const std::string& key) override {
    return base_->NewWriter(key);
  }
  Status Read(const std::string& key, uint64_t offset, const ByteSink& sink) override {
    return base_->Read(key, offset, sink);
  }
  Result<ObjectInfo> Stat(const std::string& key) override { return base_->Stat(key); }
  Status List(const std::string& prefix,
              const std::function<Status(const ObjectInfo&)>& fn) override {
    return base_->List(prefix, fn);
  }
  Status Delete(const std::string& key) override { return base_->Delete(key); }

 protected:
  Store* base() const { return base_; }

 private:
  Store* base_;
};

// An ObjectWriter that forwards to another; the same idea for writers.
class ForwardingWriter : public ObjectWriter {
 public:
  explicit ForwardingWriter(std::unique_ptr<ObjectWriter> base) : base_(std::move(base)) {}
  Status Append(std::string_view data) override { return base_->Append(data); }
  Result<ObjectInfo> Commit(const CommitInfo& info) override { return base_->Commit(info); }
  void Abort() override { base_->Abort(); }

 protected:
  ObjectWriter* base() const { return base_.get(); }

 private:
  std::unique_ptr<ObjectWriter> base_;
};

}  // namespace bao::storage
