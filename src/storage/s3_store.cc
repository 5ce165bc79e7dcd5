#include "storage/s3_store.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstring>
#include <mutex>
#include <optional>

#include "common/log.h"
#include "common/numbers.h"
#include "common/redact.h"
#include "common/retry.h"
#include "common/time.h"
#include "crypto/crypto.h"
#include "http/client.h"
#include "storage/errors.h"
#include "storage/part_writer.h"
#include "storage/resumable_read.h"
#include "storage/s3_xml.h"
#include "storage/sigv4.h"
#include "storage/upload.h"

namespace bao::storage {
namespace {

constexpr const char* kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr const char* kUnsignedPayload = "UNSIGNED-PAYLOAD";
constexpr const char* kShaMeta = "x-amz-meta-sha256";
constexpr const char* kCrcHeader = "x-amz-checksum-crc32c";
constexpr size_t kDeleteBatch = 1000;
constexpr int kMaxParts = 10000;  // S3's limit per multipart upload
constexpr const char* kSseHeader = "x-amz-server-side-encryption";
constexpr const char* kKmsKeyHeader = "x-amz-server-side-encryption-aws-kms-key-id";
constexpr const char* kLockModeHeader = "x-amz-object-lock-mode";
constexpr const char* kLockUntilHeader = "x-amz-object-lock-retain-until-date";

// The lock a HEAD answer reports, into `info`.
void LockFromHead(const http::Response& r, ObjectInfo* info) {
  info->lock_mode = r.Header(kLockModeHeader);
  info->locked_until = TimePoint{};
  if (info->lock_mode.empty()) return;
  Result<TimePoint> until = ParseRfc3339(r.Header(kLockUntilHeader));
  if (until.ok()) info->locked_until = *until;
}

// Whether the KMS key id an answer reports names the key `want` (servers answer the id
// itself, an ARN ending in ":<id>" or "/<id>", or "arn:aws:kms:<id>" (MinIO)).
bool KmsKeyMatches(const std::string& got, const std::string& want) {
  if (got == want) return true;
  for (const char* sep : {":", "/"}) {
    std::string tail = sep + want;
    if (got.size() > tail.size() && got.ends_with(tail)) return true;
  }
  return false;
}

// One S3 request before signing.
struct Call {
  std::string method = "GET";
  std::string key;  // "" for bucket-level requests
  HeaderList query;
  HeaderList headers;
  std::string body;
  std::string_view body_view;  // streamed from memory when set (part uploads)
  bool use_body_view = false;
  std::string payload_hash = kEmptySha256;
  std::function<Status(std::string_view)> on_body;
};

struct Endpoint {
  std::string scheme;  // "http" or "https"
  std::string host;    // host[:port]
  std::string base;    // path prefix of the endpoint, without trailing '/'
};

Result<Endpoint> ParseEndpoint(const std::string& url) {
  Endpoint e;
  size_t sep = url.find("://");
  if (sep == std::string::npos) {
    return ConfigError(Reason::kInvalidValue, "target.endpoint: \"" + UrlForDisplay(url) +
                                                  "\" needs a scheme (https:// or http://)");
  }
  e.scheme = url.substr(0, sep);
  if (e.scheme != "http" && e.scheme != "https") {
    return ConfigError(Reason::kInvalidValue,
                       "target.endpoint: scheme \"" + e.scheme + "\" is not http or https");
  }
  std::string rest = url.substr(sep + 3);
  size_t slash = rest.find('/');
  e.host = rest.substr(0, slash);
  if (slash != std::string::npos) e.base = rest.substr(slash);
  while (!e.base.empty() && e.base.back() == '/') e.base.pop_back();
  if (e.host.empty() || e.host.find('@') != std::string::npos ||
      e.base.find('?') != std::string::npos) {
    return ConfigError(Reason::kInvalidValue,
                       "target.endpoint: \"" + UrlForDisplay(url) +
                           "\" must be scheme://host[:port][/path] without user or query");
  }
  return e;
}

class S3StoreImpl;

// The S3 protocol of one object upload (the writer's shared mechanics are in upload.h).
class S3Upload final : public Upload {
 public:
  S3Upload(S3StoreImpl* store, std::string key, const Context& writer_ctx, uint64_t part_size,
           int concurrency);
  Status Append(const Context& ctx, std::string_view data) override;
  Result<ObjectInfo> Commit(const Context& ctx, const CommitInfo& info) override;
  void Abort(const Context& cleanup) override;

 private:
  // Uploads part `number` whose CRC-32C is `crc` (computed as the part filled).
  Result<std::string> UploadPart(const Context& ctx, int number, std::string_view data,
                                 uint32_t crc);
  // After a CompleteMultipartUpload whose outcome is unknown (`failure`: its answer was lost,
  // or a retry found the upload gone): ok when the object now under the key is this upload's,
  // its ETag being the one S3 gives an object completed from `part_etags`; kAlreadyExists with
  // Reason::kConflict when another object is there (left as it is); `failure` when there is
  // none, or when the object cannot be looked up.
  Status FindCompleted(const Context& ctx, const std::vector<std::string>& part_etags,
                       const Status& failure);
  // The CRC-32C of the whole object from the parts' CRCs (parts 1..n, all uploaded).
  uint32_t ObjectCrc32c() const;

  S3StoreImpl* store_;
  const std::string key_;
  const uint64_t part_size_;
  std::string upload_id_;  // of the multipart upload while one is open
  struct PartCrc {
    uint32_t crc = 0;
    uint64_t size = 0;
  };
  mutable std::mutex crc_mu_;
  std::vector<PartCrc> part_crcs_;  // index = part number - 1; written by the upload workers
  ParallelPartWriter parts_;        // last: its workers stop before the members above go
};

class S3StoreImpl : public S3Store {
 public:
  S3StoreImpl(TargetConfig target, S3Options options, AwsSetup setup, Endpoint endpoint,
              std::string region)
      : target_(std::move(target)),
        options_(std::move(options)),
        setup_(std::move(setup)),
        endpoint_(std::move(endpoint)),
        region_(std::move(region)) {}

  std::string Describe() const override {
    return "s3://" + target_.bucket + " at " + UrlForDisplay(target_.endpoint);
  }

  Result<std::unique_ptr<ObjectWriter>> NewWriter(const Context& ctx,
                                                  const std::string& key) override {
    BAO_RETURN_IF_ERROR(InStorage(ValidateKey(key)));
    BAO_RETURN_IF_ERROR(InStorage(CheckBucket(ctx)));
    return NewObjectWriter(
        "S3 object " + Quoted(key), ctx,
        std::make_unique<S3Upload>(this, key, ctx, target_.part_size, target_.concurrency));
  }

  Status Read(const Context& ctx, const std::string& key, uint64_t offset,
              const ByteSink& sink) override;
  Result<ObjectInfo> Stat(const Context& ctx, const std::string& key) override {
    Result<ObjectInfo> r = DoStat(ctx, key);
    if (!r.ok()) return InStorage(r.status());
    return r;
  }
  Status List(const Context& ctx, const std::string& prefix,
              const std::function<Status(const ObjectInfo&)>& fn) override;
  // As List, with the checksum side objects.
  Status ListAll(const Context& ctx, const std::string& prefix,
                 const std::function<Status(const ObjectInfo&)>& fn);
  Status Delete(const Context& ctx, const std::string& key) override {
    return InStorage(DoDelete(ctx, key));
  }
  Status DeleteMany(const Context& ctx, const std::vector<std::string>& keys) override {
    return InStorage(DoDeleteMany(ctx, keys));
  }
  Result<std::vector<Leftover>> CleanUpLeftovers(const Context& ctx, const std::string& prefix,
                                                 TimePoint older_than) override;

  // --- used by S3Upload ---
  s3::RequestContext Where(const std::string& what, const std::string& credential = "") const {
    return s3::RequestContext{what, target_.bucket, target_.endpoint, credential};
  }
  // Sends `call` once: the response (any status) or a transport error. `*credential` (when not
  // null) receives the description of the credential it was signed with.
  Result<http::Response> SendOnce(const Context& ctx, const Call& call, const std::string& what,
                                  std::string* credential = nullptr);
  // Sends `call` with retries under `policy` (the store's by default); returns the 2xx response
  // or the mapped error. `accept` lets a caller take some non-2xx answers as they are (e.g. 404
  // on DELETE).
  Result<http::Response> Send(const Context& ctx, const Call& call, const std::string& what,
                              const std::function<bool(long)>& accept = nullptr,
                              const RetryPolicy* policy = nullptr);
  std::string Quoted(const std::string& key) const { return "\"" + key + "\""; }
  std::string CopySource(const std::string& key) const {
    return "/" + target_.bucket + "/" + http::UrlEncode(key, /*keep_slash=*/true);
  }
  // HEADs `key` and checks size, recorded SHA-256 and, when `crc32c` is set and the server
  // reports a full-object CRC-32C, that checksum too. A mismatch deletes the object (under a
  // cleanup context).
  Status VerifyAfterWrite(const Context& ctx, const std::string& key, const CommitInfo& info,
                          std::optional<uint32_t> crc32c, ObjectInfo* out,
                          const std::string& composite_crc = "");
  // Writes the checksum side object of `key` (store.h), write-once (If-None-Match: *).
  Status PutChecksum(const Context& ctx, const std::string& key, const std::string& sha256);
  // The SHA-256 recorded for `key`: its x-amz-meta-sha256 (objects uploaded in one request) or
  // its checksum side object (multipart uploads); "" when neither records one.
  Result<std::string> RecordedSha256(const Context& ctx, const std::string& key,
                                     const http::Response& head);
  // Aborts a multipart upload under `cleanup`, at most kCleanupAttempts tries; logs failures.
  void AbortUpload(const Context& cleanup, const std::string& key, const std::string& upload_id);
  // Deletes an object that failed its checks, under a cleanup context; logs failures.
  void TakeBack(const std::string& key);
  // The object's current ETag ("" when the server sends none); kNotFound when absent.
  Result<std::string> ETag(const Context& ctx, const std::string& key);
  const S3Options& options() const { return options_; }
  const TargetConfig& target() const { return target_; }
  const Clock& clock() const { return options_.clock != nullptr ? *options_.clock : SystemClock(); }
  // The encryption and object lock headers of a request that creates an object (PutObject,
  // CreateMultipartUpload, the checksum side object), from the target; none when it sets
  // neither.
  HeaderList ObjectHeaders() const;
  // `st`, the failure of a request carrying object lock headers, or, when the bucket has no
  // Object Lock configuration (GET ?object-lock answers ObjectLockConfigurationNotFoundError),
  // the error that says so (kFailedPrecondition, Reason::kInvalidValue).
  Status ExplainLockRefusal(const Context& ctx, const Status& st);

 private:
  Status CheckBucket(const Context& ctx);
  Result<ObjectInfo> DoStat(const Context& ctx, const std::string& key);
  Status DoDelete(const Context& ctx, const std::string& key);
  Status DoDeleteMany(const Context& ctx, const std::vector<std::string>& keys);
  // Deletes `key`: HEAD, then DELETE, of the current version itself (?versionId=) when the
  // object reports a lock or the target sets objectLock.
  Status DeleteVersion(const Context& ctx, const std::string& key, const std::string& what);
  Status ObjectNotFound(const std::string& key, long http_status) const {
    return StorageError(Code::kNotFound, Reason::kNotFound,
                        "S3 object " + Quoted(key) + " does not exist in bucket \"" +
                            target_.bucket + "\" at " + UrlForDisplay(target_.endpoint),
                        http_status);
  }

  const TargetConfig target_;
  const S3Options options_;
  const AwsSetup setup_;
  const Endpoint endpoint_;
  const std::string region_;
  http::ClientPool pool_;
};

RetryPolicy CleanupPolicy(const RetryPolicy& base) {
  RetryPolicy p = base;
  p.max_attempts = std::min(p.max_attempts, kCleanupAttempts);
  return p;
}

Result<http::Response> S3StoreImpl::SendOnce(const Context& ctx, const Call& call,
                                             const std::string& what, std::string* credential) {
  Result<AwsCredentials> got = setup_.credentials->Get(ctx);
  if (!got.ok()) {
    return got.status().WithContext(what + ": cannot get S3 credentials from " +
                                    setup_.credentials->Source());
  }
  const AwsCredentials& creds = *got;
  if (credential != nullptr) {
    *credential =
        "access key " + creds.access_key_id + " (from " + setup_.credentials->Source() + ")";
  }
  std::string host = endpoint_.host;
  std::string path = endpoint_.base;
  if (target_.use_path_style) {
    path += "/" + target_.bucket;
    if (!call.key.empty()) path += "/" + http::UrlEncode(call.key, /*keep_slash=*/true);
  } else {
    host = target_.bucket + "." + host;
    path += "/" + http::UrlEncode(call.key, /*keep_slash=*/true);
  }

  http::Request req;
  req.method = call.method;
  std::string query = CanonicalQuery(call.query);
  req.url = endpoint_.scheme + "://" + host + path + (query.empty() ? "" : "?" + query);
  req.headers = call.headers;
  SignHeaders(call.method, host, path, call.query, call.payload_hash, creds, region_, "s3",
              SystemClock().Now(), &req.headers);
  req.tls.ca_pem = setup_.ca_pem;
  req.tls.insecure_skip_verify = target_.insecure_skip_verify;
  req.stall_time = options_.stall_time;
  req.ctx = ctx;
  req.on_body = call.on_body;
  if (call.use_body_view) {
    auto pos = std::make_shared<size_t>(0);
    std::string_view data = call.body_view;
    req.body_length = data.size();
    req.body_reader = [pos, data](char* buf, size_t len) -> Result<size_t> {
      size_t n = std::min(len, data.size() - *pos);
      std::memcpy(buf, data.data() + *pos, n);
      *pos += n;
      return n;
    };
  } else {
    req.body = call.body;
  }
  Result<http::Response> resp = pool_.Do(req);
  if (!resp.ok()) {
    const Status& st = resp.status();
    if (ctx.done() || st.code() == Code::kAborted) return st.WithContext(what);
    if (st.code() == Code::kUnavailable || st.code() == Code::kDeadlineExceeded) {
      return Error(st.code(), st.reason(),
                   what + ": S3 endpoint " + UrlForDisplay(target_.endpoint) +
                       " is unreachable or dropped the connection (" + st.message() + ")");
    }
    if (st.reason() == Reason::kTlsVerification) {
      return Error(st.code(), st.reason(),
                   what + ": TLS problem with S3 endpoint " + UrlForDisplay(target_.endpoint) +
                       " (set caCert for a private CA): " + st.message());
    }
    return st.WithContext(what);
  }
  return resp;
}

Result<http::Response> S3StoreImpl::Send(const Context& ctx, const Call& call,
                                         const std::string& what,
                                         const std::function<bool(long)>& accept,
                                         const RetryPolicy* policy) {
  Result<http::Response> out = Unavailable(what + ": not attempted");
  Status st = Retry(ctx, policy != nullptr ? *policy : options_.retry, what, [&]() -> Status {
    std::string credential;
    out = SendOnce(ctx, call, what, &credential);
    if (!out.ok()) return out.status();
    if (out->ok() || (accept && accept(out->status))) return Status::Ok();
    out = s3::MapError(out->status, out->body, Where(what, credential));
    return out.status();
  });
  if (!st.ok()) return st;
  return out;
}

Status S3StoreImpl::CheckBucket(const Context& ctx) {
  Call head;
  head.method = "HEAD";
  std::string what = "checking S3 bucket \"" + target_.bucket + "\"";
  Result<http::Response> r =
      Send(ctx, head, what, [](long s) { return s == 403 || s == 404 || s == 400; });
  if (!r.ok()) return r.status();
  if (r->ok()) return Status::Ok();
  if (r->status == 404) {
    return StorageError(
        Code::kNotFound, Reason::kNotFound,
        "S3 bucket \"" + target_.bucket + "\" does not exist at " + UrlForDisplay(target_.endpoint),
        r->status);
  }
  // HEAD has no body: ask a question whose answer names the reason. AccessDenied is fine
  // here (a backup identity may only be allowed to write); bad credentials are not.
  Call list;
  list.query = {{"list-type", "2"}, {"max-keys", "0"}};
  Result<http::Response> l = Send(ctx, list, what);
  if (l.ok() || l.status().code() == Code::kPermissionDenied) return Status::Ok();
  return l.status();
}

Status S3StoreImpl::Read(const Context& ctx, const std::string& key, uint64_t offset,
                         const ByteSink& sink) {
  BAO_RETURN_IF_ERROR(InStorage(ValidateKey(key)));
  // The ETag pins every (resumed) GET to the same object version.
  Result<std::string> etag = ETag(ctx, key);
  if (!etag.ok()) return InStorage(etag.status());
  ResumableRead progress(sink, offset);
  std::string what = "reading S3 object " + Quoted(key);
  Status st = Retry(ctx, options_.retry, what, [&]() -> Status {
    Call call;
    call.key = key;
    if (progress.position() > 0) call.headers.emplace_back("Range", progress.Range());
    if (!etag->empty()) call.headers.emplace_back("If-Match", *etag);
    call.on_body = [&](std::string_view chunk) { return progress.Deliver(chunk); };
    std::string credential;
    Result<http::Response> r = SendOnce(ctx, call, what, &credential);
    if (progress.reader_failed()) return Aborted("stopped by the reader");
    if (!r.ok()) return r.status();
    if (r->status == 416) {
      // Nothing at or after the position: fine when it is the end of the object.
      BAO_ASSIGN_OR_RETURN(ObjectInfo info, DoStat(ctx, key));
      if (info.size == progress.position()) return Status::Ok();
      return StorageError(Code::kInvalidArgument, Reason::kInvalidValue,
                          what + ": offset " + std::to_string(progress.position()) +
                              " is beyond the object's size " + std::to_string(info.size),
                          r->status);
    }
    if (r->status == 412) {
      return StorageError(Code::kFailedPrecondition, Reason::kConflict,
                          what + ": the object changed while it was being read", r->status);
    }
    if (!r->ok()) return s3::MapError(r->status, r->body, Where(what, credential));
    return Status::Ok();
  });
  if (progress.reader_failed()) return progress.reader_error();  // the sink's, unchanged
  return InStorage(st);
}

Result<std::string> S3StoreImpl::ETag(const Context& ctx, const std::string& key) {
  Call call;
  call.method = "HEAD";
  call.key = key;
  std::string what = "reading S3 object " + Quoted(key);
  BAO_ASSIGN_OR_RETURN(http::Response r, Send(ctx, call, what, [](long s) { return s == 404; }));
  if (r.status == 404) return ObjectNotFound(key, r.status);
  return r.Header("etag");
}

Result<ObjectInfo> S3StoreImpl::DoStat(const Context& ctx, const std::string& key) {
  BAO_RETURN_IF_ERROR(ValidateKey(key));
  Call call;
  call.method = "HEAD";
  call.key = key;
  std::string what = "describing S3 object " + Quoted(key);
  BAO_ASSIGN_OR_RETURN(http::Response r, Send(ctx, call, what, [](long s) { return s == 404; }));
  if (r.status == 404) return ObjectNotFound(key, r.status);
  ObjectInfo info;
  info.key = key;
  std::optional<uint64_t> length =
      ParseInteger<uint64_t>(r.Header("content-length"), 0, UINT64_MAX);
  if (!length) {
    return StorageError(Code::kInternal, Reason::kBadResponse,
                        what + ": S3 answered without a valid Content-Length", r.status);
  }
  info.size = *length;
  auto modified = s3::ParseHttpDate(r.Header("last-modified"));
  if (modified.ok()) info.modified = *modified;
  LockFromHead(r, &info);
  BAO_ASSIGN_OR_RETURN(info.sha256, RecordedSha256(ctx, key, r));
  return info;
}

Status S3StoreImpl::List(const Context& ctx, const std::string& prefix,
                         const std::function<Status(const ObjectInfo&)>& fn) {
  return ListAll(ctx, prefix, [&](const ObjectInfo& info) {
    if (IsChecksumKey(info.key)) return Status::Ok();  // provider-internal
    return fn(info);                                   // the callback's error, as it is
  });
}

Status S3StoreImpl::ListAll(const Context& ctx, const std::string& prefix,
                            const std::function<Status(const ObjectInfo&)>& fn) {
  std::string token;
  std::string what = "listing S3 bucket \"" + target_.bucket + "\"";
  while (true) {
    Call call;
    call.query = {{"list-type", "2"}, {"encoding-type", "url"}};
    if (!prefix.empty()) call.query.emplace_back("prefix", prefix);
    if (!token.empty()) call.query.emplace_back("continuation-token", token);
    Result<http::Response> r = Send(ctx, call, what);
    if (!r.ok()) return InStorage(r.status());
    Result<s3::ListPage> page = s3::ParseListObjectsV2(r->body);
    if (!page.ok()) return InStorage(page.status().WithContext(what));
    for (const ObjectInfo& info : page->objects) BAO_RETURN_IF_ERROR(fn(info));
    if (!page->truncated) return Status::Ok();
    token = page->next_continuation_token;
  }
}

Status S3StoreImpl::DoDelete(const Context& ctx, const std::string& key) {
  BAO_RETURN_IF_ERROR(ValidateKey(key));
  Call call;
  call.method = "DELETE";
  call.key = key;
  std::string what = "deleting S3 object " + Quoted(key);
  // The object first, then its checksum: a failure in between leaves an orphan side object
  // (hidden, removed by leftover cleanup), never an object without its checksum.
  BAO_RETURN_IF_ERROR(DeleteVersion(ctx, key, what));
  return DeleteVersion(ctx, ChecksumKey(key), what);
}

Status S3StoreImpl::DeleteVersion(const Context& ctx, const std::string& key,
                                  const std::string& what) {
  Call head;
  head.method = "HEAD";
  head.key = key;
  BAO_ASSIGN_OR_RETURN(http::Response h, Send(ctx, head, what, [](long s) { return s == 404; }));
  Call call;
  call.method = "DELETE";
  call.key = key;
  ObjectInfo lock;
  if (h.status != 404) {
    LockFromHead(h, &lock);
    // A locked object (or any, with objectLock set) lives in a versioned bucket, where a plain
    // DELETE would only hide the locked version behind a delete marker: its version goes.
    std::string version = h.Header("x-amz-version-id");
    if ((!lock.lock_mode.empty() || !target_.object_lock_mode.empty()) && !version.empty() &&
        version != "null") {
      call.query = {{"versionId", version}};
    }
  }
  BAO_ASSIGN_OR_RETURN(http::Response r, Send(ctx, call, what, [](long s) {
                         return s == 404 || s == 400 || s == 403;
                       }));
  if (r.status == 404 && s3::ParseError(r.body).code != "NoSuchBucket") return Status::Ok();
  if (r.status >= 200 && r.status < 300) return Status::Ok();
  if (lock.LockedAt(clock().Now()) || lock.LockedAt(SystemClock().Now())) {
    std::string until = FormatRfc3339(lock.locked_until);
    return StorageError(Code::kFailedPrecondition, Reason::kLocked,
                        what + ": S3 object " + Quoted(key) + " is locked (" + lock.lock_mode +
                            ") until " + until + "; it can be deleted after that",
                        r.status)
        .WithPayload("lockedUntil", until);
  }
  return s3::MapError(r.status, r.body, Where(what));
}

HeaderList S3StoreImpl::ObjectHeaders() const {
  HeaderList h;
  if (!target_.sse.empty()) h.emplace_back(kSseHeader, target_.sse);
  if (!target_.kms_key_id.empty()) h.emplace_back(kKmsKeyHeader, target_.kms_key_id);
  if (!target_.object_lock_mode.empty()) {
    h.emplace_back(kLockModeHeader, S3LockMode(target_.object_lock_mode));
    h.emplace_back(
        kLockUntilHeader,
        FormatRfc3339(clock().Now() + std::chrono::hours(24) * target_.object_lock_retain_days));
  }
  return h;
}

Status S3StoreImpl::ExplainLockRefusal(const Context& ctx, const Status& st) {
  if (target_.object_lock_mode.empty() || st.http_status() != 400) return st;
  Call call;
  call.query = {{"object-lock", ""}};
  std::string what =
      "reading the Object Lock configuration of S3 bucket \"" + target_.bucket + "\"";
  Result<http::Response> r = SendOnce(ctx, call, what);
  if (!r.ok() || r->ok()) return st;
  if (s3::ParseError(r->body).code != "ObjectLockConfigurationNotFoundError") return st;
  return StorageError(Code::kFailedPrecondition, Reason::kInvalidValue,
                      "S3 bucket \"" + target_.bucket + "\" at " + UrlForDisplay(target_.endpoint) +
                          " does not have Object Lock enabled, which objectLock needs: create "
                          "the bucket with Object Lock enabled (e.g. aws s3api create-bucket "
                          "--object-lock-enabled-for-bucket), or drop objectLock from the target",
                      st.http_status())
      .WithPayload("bucketObjectLock", "disabled");
}

Status S3StoreImpl::DoDeleteMany(const Context& ctx, const std::vector<std::string>& keys) {
  for (const std::string& key : keys) BAO_RETURN_IF_ERROR(ValidateKey(key));
  // Each object, then (in the next batch) its checksum side object.
  std::vector<std::string> all;
  for (size_t i = 0; i < keys.size(); i += kDeleteBatch / 2) {
    size_t end = std::min(keys.size(), i + kDeleteBatch / 2);
    all.insert(all.end(), keys.begin() + i, keys.begin() + end);
  }
  std::vector<std::string> sides;
  for (const std::string& key : keys) sides.push_back(ChecksumKey(key));
  all.insert(all.end(), sides.begin(), sides.end());
  for (size_t i = 0; i < all.size(); i += kDeleteBatch) {
    std::vector<std::string> batch(all.begin() + i,
                                   all.begin() + std::min(all.size(), i + kDeleteBatch));
    Call call;
    call.method = "POST";
    call.query = {{"delete", ""}};
    call.body = s3::DeleteObjectsBody(batch);
    call.payload_hash = crypto::Sha256Hex(call.body);
    call.headers = {{"Content-Type", "application/xml"},
                    {"Content-MD5", crypto::Md5Base64(call.body)}};
    std::string what = "deleting " + std::to_string(batch.size()) + " S3 objects";
    BAO_ASSIGN_OR_RETURN(http::Response r, Send(ctx, call, what));
    BAO_ASSIGN_OR_RETURN(std::vector<std::string> failed, s3::ParseDeleteObjectsErrors(r.body));
    if (!failed.empty()) {
      std::string list;
      for (size_t j = 0; j < failed.size() && j < 5; ++j) list += (j ? "; " : "") + failed[j];
      return StorageError(Code::kUnavailable, Reason::kServerError,
                          what + ": S3 did not delete " + std::to_string(failed.size()) +
                              " of them (" + list + ")");
    }
  }
  return Status::Ok();
}

Status S3StoreImpl::PutChecksum(const Context& ctx, const std::string& key,
                                const std::string& sha256) {
  Call call;
  call.method = "PUT";
  call.key = ChecksumKey(key);
  call.body = ChecksumFileContent(key, sha256);
  call.payload_hash = crypto::Sha256Hex(call.body);
  call.headers = {{"Content-Type", "text/plain"}, {"If-None-Match", "*"}};
  for (auto& h : ObjectHeaders()) call.headers.push_back(std::move(h));
  if (!target_.object_lock_mode.empty()) {
    call.headers.emplace_back("Content-MD5", crypto::Md5Base64(call.body));
  }
  std::string what = "recording the SHA-256 of S3 object " + Quoted(key);
  Result<http::Response> r = Send(ctx, call, what, [](long s) { return s == 412; });
  if (!r.ok()) return ExplainLockRefusal(ctx, r.status());
  if (r->status == 412) {
    return StorageError(Code::kAlreadyExists, Reason::kConflict,
                        what + ": a checksum for this key exists already; backups are write-once",
                        412);
  }
  return Status::Ok();
}

Result<std::string> S3StoreImpl::RecordedSha256(const Context& ctx, const std::string& key,
                                                const http::Response& head) {
  std::string sha = head.Header(kShaMeta);
  if (crypto::IsLowerHex(sha, 64)) return sha;
  Call call;
  call.method = "GET";
  call.key = ChecksumKey(key);
  BAO_ASSIGN_OR_RETURN(http::Response r,
                       Send(ctx, call, "reading the SHA-256 of S3 object " + Quoted(key),
                            [](long s) { return s == 404; }));
  return r.status == 404 ? std::string() : ParseChecksumFile(r.body);
}

Status S3StoreImpl::VerifyAfterWrite(const Context& ctx, const std::string& key,
                                     const CommitInfo& info, std::optional<uint32_t> crc32c,
                                     ObjectInfo* out, const std::string& composite_crc) {
  Call call;
  call.method = "HEAD";
  call.key = key;
  if (crc32c) call.headers = {{"x-amz-checksum-mode", "ENABLED"}};
  std::string what = "checking the uploaded S3 object " + Quoted(key);
  Result<http::Response> head = Send(ctx, call, what);
  if (!head.ok()) {
    TakeBack(key);  // published but unchecked: nothing may stay under the key
    return head.status();
  }
  const http::Response& r = *head;
  std::string length = r.Header("content-length");
  Result<std::string> recorded = RecordedSha256(ctx, key, r);
  if (!recorded.ok()) {
    TakeBack(key);
    return recorded.status();
  }
  const std::string& sha = *recorded;
  // Only a checksum the server declares full-object is comparable: a composite one (a CRC of
  // the part CRCs) is not, and servers without checksum support send none. (moto's CopyObject
  // keeps a composite value but drops its type.) Those cases leave the size and SHA-256 checks.
  std::string stored_crc =
      r.Header("x-amz-checksum-type") == "FULL_OBJECT" ? r.Header(kCrcHeader) : "";
  std::string want_crc = crc32c ? crypto::Crc32cBase64(*crc32c) : "";
  std::string problem;
  if (length != std::to_string(info.size)) {
    problem = "S3 holds " + (length.empty() ? std::string("an unknown number of") : length) +
              " bytes, " + std::to_string(info.size) + " were written";
  } else if (sha != info.sha256) {
    problem = "its recorded SHA-256 is \"" + sha + "\", expected " + info.sha256;
  } else if (crc32c && !stored_crc.empty() && stored_crc != want_crc &&
             stored_crc.substr(0, stored_crc.find('-')) != composite_crc) {
    // (Some servers (moto) report the composite CRC of the part CRCs as FULL_OBJECT: it
    // still vouches for every part, so it is accepted when it matches.)
    problem = "S3 computed the CRC-32C " + stored_crc + " over the stored bytes, " + want_crc +
              " was sent";
  }
  if (!problem.empty()) {
    TakeBack(key);
    return StorageError(Code::kDataLoss, Reason::kChecksumMismatch,
                        what + ": " + problem + "; the object was deleted");
  }
  // What the target asked the server to do to the object: encryption at rest, a lock.
  std::string sse = r.Header(kSseHeader);
  std::string kms_key = r.Header(kKmsKeyHeader);
  std::string lock_mode = r.Header(kLockModeHeader);
  if (!target_.sse.empty() && sse != target_.sse) {
    problem = "S3 reports its encryption as \"" + sse + "\", " + target_.sse + " was requested";
  } else if (!target_.kms_key_id.empty() && !KmsKeyMatches(kms_key, target_.kms_key_id)) {
    problem =
        "S3 reports its KMS key as \"" + kms_key + "\", " + target_.kms_key_id + " was requested";
  } else if (!target_.object_lock_mode.empty() &&
             lock_mode != S3LockMode(target_.object_lock_mode)) {
    problem = "S3 reports its object lock mode as \"" + lock_mode + "\", " +
              S3LockMode(target_.object_lock_mode) + " was requested";
  }
  if (!problem.empty()) {
    TakeBack(key);
    return StorageError(Code::kFailedPrecondition, Reason::kBadResponse,
                        what + ": " + problem + "; the object was deleted (if it could be)",
                        r.status);
  }
  LockFromHead(r, out);
  out->key = key;
  out->size = info.size;
  out->sha256 = info.sha256;
  auto modified = s3::ParseHttpDate(r.Header("last-modified"));
  out->modified = modified.ok() ? *modified : SystemClock().Now();
  return Status::Ok();
}

void S3StoreImpl::TakeBack(const std::string& key) {
  Call call;
  call.method = "DELETE";
  call.key = key;
  RetryPolicy policy = CleanupPolicy(options_.retry);
  Context cleanup = Context::ForCleanup(kCleanupBudget);
  Result<http::Response> r = Send(
      cleanup, call, "deleting S3 object " + Quoted(key), [](long s) { return s == 404; }, &policy);
  if (r.ok()) {
    call.key = ChecksumKey(key);
    r = Send(
        cleanup, call, "deleting the checksum of S3 object " + Quoted(key),
        [](long s) { return s == 404; }, &policy);
  }
  if (!r.ok()) {
    log::Error("could not delete an S3 object that failed its checks; delete it by hand",
               {{"key", key}, {"error", r.status().message()}});
  }
}

// ListMultipartUploads under the prefix (all pages), then AbortMultipartUpload for each one
// initiated before the threshold. A 404 (NoSuchUpload) on the abort counts as gone. Then the
// checksum side objects modified before the threshold whose object does not exist (a crash
// between writing one and completing its upload) are deleted.
Result<std::vector<Leftover>> S3StoreImpl::CleanUpLeftovers(const Context& ctx,
                                                            const std::string& prefix,
                                                            TimePoint older_than) {
  std::string what = "listing the unfinished uploads of S3 bucket \"" + target_.bucket + "\"";
  std::vector<s3::MultipartUpload> old;
  // MinIO lists with a prefix only the uploads of exactly that key (and all of them without
  // one): when the prefixed listing finds nothing, the whole bucket's is filtered here.
  bool found = false;
  for (bool with_prefix : {true, false}) {
    if (!with_prefix && (found || prefix.empty())) break;
    std::string key_marker, id_marker;
    while (true) {
      Call call;
      call.query = {{"uploads", ""}, {"encoding-type", "url"}};
      if (with_prefix && !prefix.empty()) call.query.emplace_back("prefix", prefix);
      if (!key_marker.empty()) call.query.emplace_back("key-marker", key_marker);
      if (!id_marker.empty()) call.query.emplace_back("upload-id-marker", id_marker);
      Result<http::Response> r = Send(ctx, call, what);
      if (!r.ok()) return InStorage(r.status());
      Result<s3::UploadsPage> page = s3::ParseListMultipartUploads(r->body);
      if (!page.ok()) return InStorage(page.status().WithContext(what));
      for (s3::MultipartUpload& u : page->uploads) {
        if (!u.key.starts_with(prefix)) continue;
        found = true;
        if (u.initiated < older_than) old.push_back(std::move(u));
      }
      if (!page->truncated) break;
      key_marker = page->next_key_marker;
      id_marker = page->next_upload_id_marker;
    }
  }
  std::vector<Leftover> removed;
  for (const s3::MultipartUpload& u : old) {
    Call call;
    call.method = "DELETE";
    call.key = u.key;
    call.query = {{"uploadId", u.upload_id}};
    Result<http::Response> r =
        Send(ctx, call, "aborting the unfinished multipart upload of S3 object " + Quoted(u.key),
             [](long s) { return s == 404; });
    if (!r.ok()) return InStorage(r.status());
    removed.push_back({"multipart-upload", u.key, u.initiated});
  }
  std::vector<ObjectInfo> all;
  BAO_RETURN_IF_ERROR(ListAll(ctx, prefix, [&](const ObjectInfo& info) {
    all.push_back(info);
    return Status::Ok();
  }));
  for (const Leftover& orphan : OrphanChecksums(all, older_than)) {
    // As Delete() does: a locked side object (objectLock) stays until its lock ends and a later
    // cleanup removes it; that is not a failure.
    const std::string side = ChecksumKey(orphan.key);
    Status st = DeleteVersion(ctx, side, "deleting the orphan checksum " + Quoted(side));
    if (st.reason() == Reason::kLocked) {
      const std::string* until = st.payload("lockedUntil");
      log::Info("an orphan checksum is locked; a later cleanup removes it",
                {{"key", side}, {"lockedUntil", until != nullptr ? *until : ""}});
      continue;
    }
    if (!st.ok()) return InStorage(st);
    removed.push_back(orphan);
  }
  return removed;
}

void S3StoreImpl::AbortUpload(const Context& cleanup, const std::string& key,
                              const std::string& upload_id) {
  Call call;
  call.method = "DELETE";
  call.key = key;
  call.query = {{"uploadId", upload_id}};
  RetryPolicy policy = CleanupPolicy(options_.retry);
  Result<http::Response> r = Send(
      cleanup, call, "aborting the multipart upload of S3 object " + Quoted(key),
      [](long s) { return s == 404; }, &policy);
  if (!r.ok()) {
    log::Error(
        "could not abort an S3 multipart upload; a bucket lifecycle rule for incomplete "
        "uploads will clean it up",
        {{"key", key}, {"error", r.status().message()}});
  }
}

S3Upload::S3Upload(S3StoreImpl* store, std::string key, const Context& writer_ctx,
                   uint64_t part_size, int concurrency)
    : store_(store),
      key_(std::move(key)),
      part_size_(part_size),
      parts_(writer_ctx, part_size, concurrency, ParallelPartWriter::PartSum::kCrc32c,
             [this](const Context& ctx, int number, std::string_view data,
                    const ParallelPartWriter::PartSums& sums) {
               return UploadPart(ctx, number, data, sums.crc32c);
             }) {}

Result<std::string> S3Upload::UploadPart(const Context& ctx, int number, std::string_view data,
                                         uint32_t crc) {
  if (number > kMaxParts) {
    return StorageError(Code::kFailedPrecondition, Reason::kInvalidValue,
                        "S3 object \"" + key_ + "\" needs more than " + std::to_string(kMaxParts) +
                            " parts of " + std::to_string(part_size_) +
                            " bytes (S3's limit); raise partSize");
  }
  Call call;
  call.method = "PUT";
  call.key = key_;
  call.query = {{"partNumber", std::to_string(number)}, {"uploadId", upload_id_}};
  call.body_view = data;
  call.use_body_view = true;
  // The server verifies the (signed) CRC-32C header against the body; see s3_store.h for why
  // the body itself is not hashed into the signature by default.
  call.headers = {{kCrcHeader, crypto::Crc32cBase64(crc)}};
  call.payload_hash =
      store_->options().sign_part_payloads ? crypto::Sha256Hex(data) : kUnsignedPayload;
  std::string what = "uploading part " + std::to_string(number) + " of S3 object \"" + key_ + "\"";
  BAO_ASSIGN_OR_RETURN(http::Response r, store_->Send(ctx, call, what));
  std::string etag = r.Header("etag");
  if (etag.empty()) {
    return StorageError(Code::kInternal, Reason::kBadResponse,
                        what + ": S3 answered without an ETag", r.status);
  }
  std::lock_guard<std::mutex> lock(crc_mu_);
  if (part_crcs_.size() < static_cast<size_t>(number)) part_crcs_.resize(number);
  part_crcs_[number - 1] = PartCrc{crc, data.size()};
  return etag;
}

uint32_t S3Upload::ObjectCrc32c() const {
  std::lock_guard<std::mutex> lock(crc_mu_);
  uint32_t crc = 0;
  for (const PartCrc& p : part_crcs_) crc = crypto::Crc32cCombine(crc, p.crc, p.size);
  return crc;
}

Status S3Upload::Append(const Context& ctx, std::string_view data) {
  if (upload_id_.empty() && parts_.bytes_appended() + data.size() > part_size_) {
    // The first part is about to be dispatched: start the multipart upload.
    Call call;
    call.method = "POST";
    call.key = key_;
    call.query = {{"uploads", ""}};
    call.headers = {{"Content-Type", "application/octet-stream"},
                    {"x-amz-checksum-algorithm", "CRC32C"},
                    {"x-amz-checksum-type", "FULL_OBJECT"}};
    for (auto& h : store_->ObjectHeaders()) call.headers.push_back(std::move(h));
    Result<http::Response> r =
        store_->Send(ctx, call, "starting the multipart upload of S3 object \"" + key_ + "\"");
    if (!r.ok()) return store_->ExplainLockRefusal(ctx, r.status());
    BAO_ASSIGN_OR_RETURN(upload_id_, s3::ParseInitiateMultipartUpload(r->body));
  }
  return parts_.Append(ctx, data);
}

Result<ObjectInfo> S3Upload::Commit(const Context& ctx, const CommitInfo& info) {
  std::optional<uint32_t> object_crc;
  std::string composite_crc;
  if (upload_id_.empty()) {
    std::string_view body = parts_.Buffered();
    if (crypto::Sha256Hex(body) != info.sha256) {
      return StorageError(
          Code::kDataLoss, Reason::kChecksumMismatch,
          "the bytes of S3 object \"" + key_ + "\" do not match the SHA-256 given at commit");
    }
    Call call;
    call.method = "PUT";
    call.key = key_;
    call.body_view = body;
    call.use_body_view = true;
    call.payload_hash = info.sha256;
    // Write-once where the server supports conditional writes (others ignore the header).
    call.headers = {{"Content-Type", "application/octet-stream"},
                    {kShaMeta, info.sha256},
                    {"If-None-Match", "*"}};
    for (auto& h : store_->ObjectHeaders()) call.headers.push_back(std::move(h));
    // S3 takes a PutObject with a retention only with a Content-MD5 (or x-amz-checksum-*).
    if (!store_->target().object_lock_mode.empty()) {
      call.headers.emplace_back("Content-MD5", crypto::Md5Base64(body));
    }
    const std::string what = "uploading S3 object \"" + key_ + "\"";
    Result<http::Response> sent = store_->Send(ctx, call, what, [](long st) { return st == 412; });
    if (!sent.ok()) return store_->ExplainLockRefusal(ctx, sent.status());
    const http::Response& put = *sent;
    if (put.status == 412) {
      return StorageError(Code::kAlreadyExists, Reason::kConflict,
                          what + ": the key exists already; backups are write-once", 412);
    }
  } else {
    BAO_ASSIGN_OR_RETURN(std::vector<std::string> etags, parts_.Finish(ctx));
    std::string what = "completing the multipart upload of S3 object \"" + key_ + "\"";
    std::vector<std::string> crcs;
    {
      std::lock_guard<std::mutex> lock(crc_mu_);
      for (const PartCrc& p : part_crcs_) crcs.push_back(crypto::Crc32cBase64(p.crc));
    }
    object_crc = ObjectCrc32c();
    std::string part_crcs_be;
    {
      std::lock_guard<std::mutex> lock(crc_mu_);
      for (const PartCrc& p : part_crcs_) {
        for (int shift = 24; shift >= 0; shift -= 8) {
          part_crcs_be.push_back(static_cast<char>((p.crc >> shift) & 0xff));
        }
      }
    }
    composite_crc = crypto::Crc32cBase64(crypto::Crc32c(0, part_crcs_be));
    // The checksum is recorded before the object becomes visible (store.h).
    if (Status st = store_->PutChecksum(ctx, key_, info.sha256); !st.ok()) return st;
    Call call;
    call.method = "POST";
    call.key = key_;
    call.query = {{"uploadId", upload_id_}};
    call.body = s3::CompleteMultipartUploadBody(etags, crcs);
    call.payload_hash = crypto::Sha256Hex(call.body);
    call.headers = {{"Content-Type", "application/xml"},
                    {kCrcHeader, crypto::Crc32cBase64(*object_crc)},
                    {"x-amz-checksum-type", "FULL_OBJECT"}};
    int attempt = 0;
    bool answer_lost = false;    // an attempt may have reached S3, its answer did not arrive
    bool gone_on_retry = false;  // a retry found the upload gone (completed, or aborted)
    Status completed = Retry(ctx, store_->options().retry, what, [&]() -> Status {
      ++attempt;
      std::string credential;
      Result<http::Response> r = store_->SendOnce(ctx, call, what, &credential);
      if (!r.ok()) {
        answer_lost = answer_lost || (IsRetryable(r.status()) && !ctx.done());
        return r.status();
      }
      if (!r->ok()) {
        Status st = s3::MapError(r->status, r->body, store_->Where(what, credential));
        if (attempt > 1 && s3::ParseError(r->body).code == "NoSuchUpload") gone_on_retry = true;
        return st;
      }
      Result<std::string> done = s3::ParseCompleteOrCopyResult(r->body, store_->Where(what));
      // A 200 whose body cannot be read says nothing about the outcome either.
      if (!done.ok() && done.status().reason() == Reason::kBadResponse) answer_lost = true;
      return done.status();
    });
    if (!completed.ok()) {
      // The outcome is unknown: S3 may have completed the upload behind a lost answer. The
      // object under the key decides; without that, the error stands (and Abort() aborts the
      // upload).
      if (!(answer_lost || gone_on_retry) || ctx.done()) return completed;
      BAO_RETURN_IF_ERROR(FindCompleted(ctx, etags, completed));
    }
    upload_id_.clear();  // completed: nothing to abort any more, the object is visible
  }
  ObjectInfo out;
  BAO_RETURN_IF_ERROR(store_->VerifyAfterWrite(ctx, key_, info, object_crc, &out, composite_crc));
  return out;
}

Status S3Upload::FindCompleted(const Context& ctx, const std::vector<std::string>& part_etags,
                               const Status& failure) {
  Result<std::string> etag = store_->ETag(ctx, key_);
  if (!etag.ok()) {
    if (etag.status().code() == Code::kNotFound) return failure;  // not completed: as it is
    return failure.WithContext("the S3 object \"" + key_ +
                               "\" could not be looked up after the answer was lost (" +
                               etag.status().message() + ")");
  }
  // Under SSE-KMS the part ETags are not MD5s: the object's ETag cannot be predicted.
  const std::optional<std::string> ours =
      store_->target().sse == "aws:kms" ? std::nullopt : s3_internal::MultipartETag(part_etags);
  std::string found = s3_internal::Unquoted(*etag);
  std::transform(found.begin(), found.end(), found.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (!ours || found != *ours) {
    return StorageError(
        Code::kAlreadyExists, Reason::kConflict,
        "completing the multipart upload of S3 object \"" + key_ +
            "\": its answer was lost, and the object now under the key is not provably this "
            "upload's (ETag \"" +
            found + "\", this upload's would be " +
            (ours ? "\"" + *ours + "\"" : std::string("unknown: the parts' ETags are not MD5s")) +
            "); it was left as it is");
  }
  log::Warn(
      "the answer to CompleteMultipartUpload was lost; the object under the key is this "
      "upload's (its ETag matches the parts), so the upload counts as completed",
      {{"key", key_}, {"etag", found}});
  return Status::Ok();
}

void S3Upload::Abort(const Context& cleanup) {
  parts_.Cancel();
  if (!upload_id_.empty()) {
    store_->AbortUpload(cleanup, key_, upload_id_);
    upload_id_.clear();
  }
}

}  // namespace

namespace s3_internal {

std::string Unquoted(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return std::string(etag);
}

std::optional<std::string> MultipartETag(const std::vector<std::string>& part_etags) {
  if (part_etags.empty()) return std::nullopt;
  std::string md5s;
  for (const std::string& quoted : part_etags) {
    std::string hex = Unquoted(quoted);
    std::transform(hex.begin(), hex.end(), hex.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (!crypto::IsLowerHex(hex, 32)) return std::nullopt;
    Result<std::string> md5 = crypto::HexDecode(hex);
    if (!md5.ok()) return std::nullopt;
    md5s += *md5;
  }
  Result<std::string> digest = crypto::Base64Decode(crypto::Md5Base64(md5s));
  if (!digest.ok()) return std::nullopt;
  return crypto::HexEncode(*digest) + "-" + std::to_string(part_etags.size());
}

}  // namespace s3_internal

Result<std::unique_ptr<S3Store>> OpenS3StoreWithOptions(const TargetConfig& target,
                                                        const S3Options& options) {
  if (Status s = ValidateTarget(target, "target"); !s.ok()) return AsConfigError(s, "");
  if (target.provider != "s3") {
    return ConfigError(Reason::kInvalidValue,
                       "target.provider: \"" + target.provider + "\" is not s3");
  }
  BAO_ASSIGN_OR_RETURN(Endpoint endpoint, ParseEndpoint(target.endpoint));
  BAO_ASSIGN_OR_RETURN(AwsSetup setup, ResolveAwsCredentials(target, options.env));
  std::string region = !target.region.empty()  ? target.region
                       : !setup.region.empty() ? setup.region
                                               : "us-east-1";
  return std::unique_ptr<S3Store>(
      new S3StoreImpl(target, options, std::move(setup), std::move(endpoint), std::move(region)));
}

Result<std::unique_ptr<Store>> OpenS3Store(const TargetConfig& target) {
  BAO_ASSIGN_OR_RETURN(std::unique_ptr<S3Store> store, OpenS3StoreWithOptions(target, S3Options{}));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace bao::storage
