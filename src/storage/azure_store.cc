#include "storage/azure_store.h"

#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <pugixml.hpp>
#include <set>
#include <vector>

#include "common/files.h"
#include "common/log.h"
#include "common/numbers.h"
#include "common/redact.h"
#include "common/retry.h"
#include "crypto/crypto.h"
#include "http/client.h"
#include "storage/azure_auth.h"
#include "storage/errors.h"
#include "storage/part_writer.h"
#include "storage/resumable_read.h"
#include "storage/upload.h"

namespace bao::storage {
namespace {

using azure::Credentials;

bool IsOneOf(const std::string& code, std::initializer_list<const char*> codes) {
  for (const char* c : codes) {
    if (code == c) return true;
  }
  return false;
}

// The service's machine-readable error code: the x-ms-error-code header, else the body's
// <Error><Code>.
std::string ErrorCode(const http::Response& r) {
  std::string code = r.Header("x-ms-error-code");
  if (!code.empty()) return code;
  pugi::xml_document doc;
  if (doc.load_buffer(r.body.data(), r.body.size())) {
    return doc.child("Error").child("Code").text().get();
  }
  return "";
}

// Metadata of the empty blob that discarding uncommitted blocks commits for a moment (see
// DiscardUncommitted): List never shows such a blob, CleanUpLeftovers deletes it.
constexpr char kAbandonedMeta[] = "baobackupabandoned";

// Whether a listed <Blob> carries kAbandonedMeta (metadata names are case-insensitive).
bool IsAbandoned(const pugi::xml_node& blob) {
  for (pugi::xml_node m : blob.child("Metadata").children()) {
    std::string name = m.name();
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name == kAbandonedMeta) return true;
  }
  return false;
}

RetryPolicy CleanupPolicy(const RetryPolicy& base) {
  RetryPolicy p = base;
  p.max_attempts = std::min(p.max_attempts, kCleanupAttempts);
  return p;
}

class AzureStore;

// The Azure protocol of one object upload: Put Blob, or Put Block + Put Block List (the
// writer's shared mechanics are in upload.h).
class AzureUpload final : public Upload {
 public:
  AzureUpload(AzureStore* store, std::string key, const Context& writer_ctx, uint64_t part_size,
              int concurrency);

  Status Append(const Context& ctx, std::string_view data) override;
  Result<ObjectInfo> Commit(const Context& ctx, const CommitInfo& info) override;
  void Abort(const Context& cleanup) override;

 private:
  std::string BlockId(int number) const;

  AzureStore* store_;
  std::string key_;
  std::string upload_id_;
  ParallelPartWriter parts_;
};

class AzureStore final : public Store {
 public:
  AzureStore(Credentials creds, std::string container, http::TlsOptions tls, uint64_t part_size,
             int concurrency, AzureOptions options)
      : creds_(std::move(creds)),
        container_(std::move(container)),
        tls_(std::move(tls)),
        part_size_(part_size),
        concurrency_(concurrency),
        options_(options) {}

  // The target's encryption scope and immutability policy (azure.encryptionScope,
  // objectLock), applied to every blob written.
  void SetObjectSettings(std::string encryption_scope, std::string lock_mode, int retain_days) {
    encryption_scope_ = std::move(encryption_scope);
    lock_mode_ = std::move(lock_mode);
    retain_days_ = retain_days;
  }
  // x-ms-encryption-scope, for Put Block, Put Block List and Put Blob.
  void AddScope(http::Request* req) const {
    if (!encryption_scope_.empty()) {
      req->headers.emplace_back("x-ms-encryption-scope", encryption_scope_);
    }
  }
  // The immutability policy headers, for Put Block List and Put Blob.
  void AddPolicy(http::Request* req) const {
    if (lock_mode_.empty()) return;
    req->headers.emplace_back(
        "x-ms-immutability-policy-until-date",
        azure::FormatRfc1123(SystemClock().Now() + std::chrono::hours(24) * retain_days_));
    req->headers.emplace_back("x-ms-immutability-policy-mode", lock_mode_);
  }
  const std::string& encryption_scope() const { return encryption_scope_; }
  const std::string& lock_mode() const { return lock_mode_; }

  std::string Describe() const override { return "azure://" + creds_.account + "/" + container_; }

  std::string ContainerUrl() const { return creds_.endpoint + "/" + http::UrlEncode(container_); }
  std::string BlobUrl(const std::string& key) const {
    return ContainerUrl() + "/" + http::UrlEncode(key, /*keep_slash=*/true);
  }
  std::string Where() const {
    return "Azure storage account \"" + creds_.account + "\" at " + UrlForDisplay(creds_.endpoint);
  }

  // Signs and sends one request under `ctx` (no retry). Transport errors name the endpoint.
  Result<http::Response> Send(const Context& ctx, http::Request req) {
    req.tls = tls_;
    req.ctx = ctx;
    req.stall_time = options_.stall_time;
    req.headers.emplace_back("x-ms-date", azure::FormatRfc1123(SystemClock().Now()));
    req.headers.emplace_back("x-ms-version", azure::kApiVersion);
    switch (creds_.kind) {
      case Credentials::Kind::kSharedKey: {
        azure::Headers signed_headers = req.headers;
        uint64_t length = req.body_reader ? req.body_length.value_or(0) : req.body.size();
        if (length > 0) signed_headers.emplace_back("Content-Length", std::to_string(length));
        req.headers.emplace_back(
            "Authorization", azure::SharedKeyAuthorization(creds_.account, creds_.key, req.method,
                                                           req.url, signed_headers));
        break;
      }
      case Credentials::Kind::kSas:
        req.url += (req.url.find('?') == std::string::npos ? "?" : "&") + creds_.sas;
        break;
      case Credentials::Kind::kBearer: {
        Result<std::string> token = creds_.tokens->Token(ctx);
        if (!token.ok()) {
          return token.status().WithContext("cannot get a token for Azure storage account \"" +
                                            creds_.account + "\" via " + creds_.source);
        }
        req.headers.emplace_back("Authorization", "Bearer " + *token);
        break;
      }
    }
    Result<http::Response> r = pool_.Do(req);
    if (!r.ok()) return r.status().WithContext(Where());
    if (r->status == 401 && creds_.kind == Credentials::Kind::kBearer) creds_.tokens->Invalidate();
    return r;
  }

  // Maps a non-2xx answer to a storage error, on the HTTP status and the service's error code.
  // `key` is "" for container-level requests.
  Status ErrorFor(const http::Response& r, const std::string& what, const std::string& key) {
    std::string code = ErrorCode(r);
    std::string detail =
        " (HTTP " + std::to_string(r.status) + (code.empty() ? "" : ", " + code) + ")";
    std::string summary = r.body.empty() ? "" : ": " + http::ErrorSummary(r);
    auto error = [&](Code c, Reason reason, const std::string& message) {
      return StorageError(c, reason, what + ": " + message, r.status);
    };
    // With an account key every operation is allowed, so an authorization failure means the
    // signature was not accepted (Azurite's answer to a wrong key) or a network rule of the
    // account refuses this client.
    bool key_refused =
        code == "AuthorizationFailure" && creds_.kind == Credentials::Kind::kSharedKey;
    if (IsOneOf(code, {"AuthenticationFailed", "InvalidAuthenticationInfo",
                       "NoAuthenticationInformation"}) ||
        key_refused || (code.empty() && r.status == 401)) {
      std::string or_rule =
          key_refused ? " or a network rule of the account refuses this client" : "";
      return error(Code::kUnauthenticated, Reason::kUnauthenticated,
                   Where() + " rejected the credentials (" + creds_.source + ")" + or_rule +
                       detail + summary);
    }
    if (code == "ContainerNotFound" || (code.empty() && r.status == 404 && key.empty())) {
      return error(Code::kNotFound, Reason::kNotFound,
                   "Azure container \"" + container_ + "\" does not exist in storage account \"" +
                       creds_.account + "\" at " + UrlForDisplay(creds_.endpoint));
    }
    if (code == "BlobNotFound" || (code.empty() && r.status == 404)) {
      return error(Code::kNotFound, Reason::kNotFound,
                   "no object \"" + key + "\" in " + Describe());
    }
    if (code.starts_with("Authorization") || code == "InsufficientAccountPermissions" ||
        r.status == 403) {
      return error(Code::kPermissionDenied, Reason::kPermissionDenied,
                   Where() + " denied access to container \"" + container_ + "\" for " +
                       creds_.source + detail + summary);
    }
    if (code == "ServerBusy" || r.status == 429 || r.status == 503) {
      return error(Code::kUnavailable, Reason::kThrottled, Where() + " is busy" + detail + summary);
    }
    if (code == "OperationTimedOut" || r.status == 408) {
      return error(Code::kUnavailable, Reason::kTimeout, Where() + " timed out" + detail + summary);
    }
    if (r.status >= 500) {
      return error(Code::kUnavailable, Reason::kServerError,
                   Where() + " is unavailable" + detail + summary);
    }
    if (r.status == 412 || code == "ConditionNotMet") {
      return error(Code::kFailedPrecondition, Reason::kConflict,
                   "the object changed while being read" + detail);
    }
    if (r.status == 409) {
      return error(Code::kFailedPrecondition, Reason::kConflict,
                   Where() + " refused the request" + detail + summary);
    }
    return error(Code::kInternal, Reason::kBadResponse,
                 "unexpected answer from " + Where() + detail + summary);
  }

  // Sends the request built by `make` until it succeeds or fails for good under `ctx` and
  // `policy` (the store's by default); `*out` receives the 2xx response, or an answer `accept`
  // takes as it is.
  Status Call(const Context& ctx, const std::string& what, const std::string& key,
              const std::function<http::Request()>& make, http::Response* out,
              const std::function<bool(const http::Response&)>& accept = nullptr,
              const RetryPolicy* policy = nullptr) {
    return Retry(ctx, policy != nullptr ? *policy : options_.retry, what, [&]() -> Status {
      BAO_ASSIGN_OR_RETURN(http::Response r, Send(ctx, make()));
      if (!r.ok() && !(accept && accept(r))) return ErrorFor(r, what, key);
      if (out != nullptr) *out = std::move(r);
      return Status::Ok();
    });
  }

  struct Props {
    ObjectInfo info;
    std::string etag;
    std::string encryption_scope;  // x-ms-encryption-scope, "" when not reported
  };

  Result<Props> Properties(const Context& ctx, const std::string& key) {
    http::Response r;
    BAO_RETURN_IF_ERROR(Call(
        ctx, "reading the properties of \"" + key + "\" in " + Describe(), key,
        [&] {
          http::Request req;
          req.method = "HEAD";
          req.url = BlobUrl(key);
          return req;
        },
        &r));
    Props p;
    ObjectInfo& info = p.info;
    info.key = key;
    std::optional<uint64_t> length =
        ParseInteger<uint64_t>(r.Header("content-length"), 0, UINT64_MAX);
    if (!length) {
      return StorageError(
          Code::kInternal, Reason::kBadResponse,
          "the properties of \"" + key + "\" in " + Describe() + " carry no valid Content-Length",
          r.status);
    }
    info.size = *length;
    Result<TimePoint> modified = azure::ParseRfc1123(r.Header("last-modified"));
    if (modified.ok()) info.modified = *modified;
    info.sha256 = r.Header("x-ms-meta-sha256");
    p.etag = r.Header("etag");
    p.encryption_scope = r.Header("x-ms-encryption-scope");
    info.lock_mode = r.Header("x-ms-immutability-policy-mode");
    if (!info.lock_mode.empty()) {
      Result<TimePoint> until =
          azure::ParseRfc1123(r.Header("x-ms-immutability-policy-until-date"));
      if (until.ok()) info.locked_until = *until;
    }
    return p;
  }

  Result<std::unique_ptr<ObjectWriter>> NewWriter(const Context& ctx,
                                                  const std::string& key) override {
    BAO_RETURN_IF_ERROR(InStorage(ValidateKey(key)));
    // Catches a missing container and refused credentials before any byte is sent. A
    // permission error here is not final: write-only credentials may not list.
    Status s = Call(
        ctx, "checking container \"" + container_ + "\"", "",
        [&] {
          http::Request req;
          req.url = ContainerUrl() + "?restype=container&comp=list&maxresults=1";
          return req;
        },
        nullptr);
    if (!s.ok() && s.code() != Code::kPermissionDenied) return InStorage(s);
    return NewObjectWriter("\"" + key + "\" in " + Describe(), ctx,
                           std::make_unique<AzureUpload>(this, key, ctx, part_size_, concurrency_));
  }

  // `md5` is the block's Content-MD5 (base64), computed by the caller.
  Status PutBlock(const Context& ctx, const std::string& key, const std::string& block_id,
                  std::string_view data, const std::string& md5) {
    return Call(
        ctx, "uploading block of \"" + key + "\" to " + Describe(), key,
        [&] {
          http::Request req;
          req.method = "PUT";
          req.url = BlobUrl(key) + "?comp=block&blockid=" + http::UrlEncode(block_id);
          req.headers = {{"Content-Type", "application/octet-stream"}, {"Content-MD5", md5}};
          AddScope(&req);
          auto pos = std::make_shared<size_t>(0);
          req.body_length = data.size();
          req.body_reader = [data, pos](char* buf, size_t len) -> Result<size_t> {
            size_t n = std::min(len, data.size() - *pos);
            std::memcpy(buf, data.data() + *pos, n);
            *pos += n;
            return n;
          };
          return req;
        },
        nullptr);
  }

  Status PutBlob(const Context& ctx, const std::string& key, std::string_view data,
                 const std::string& sha256) {
    std::string md5 = crypto::Md5Base64(data);
    return Call(
        ctx, "uploading \"" + key + "\" to " + Describe(), key,
        [&] {
          http::Request req;
          req.method = "PUT";
          req.url = BlobUrl(key);
          req.headers = {{"Content-Type", "application/octet-stream"},
                         {"Content-MD5", md5},
                         {"x-ms-blob-type", "BlockBlob"},
                         {"x-ms-blob-content-type", "application/octet-stream"},
                         {"x-ms-meta-sha256", sha256}};
          AddScope(&req);
          AddPolicy(&req);
          req.body = std::string(data);
          return req;
        },
        nullptr);
  }

  Status PutBlockList(const Context& ctx, const std::string& key,
                      const std::vector<std::string>& ids, const std::string& sha256) {
    std::string body = "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>";
    for (const std::string& id : ids) body += "<Latest>" + id + "</Latest>";
    body += "</BlockList>";
    std::string md5 = crypto::Md5Base64(body);
    return Call(
        ctx, "committing the block list of \"" + key + "\" in " + Describe(), key,
        [&] {
          http::Request req;
          req.method = "PUT";
          req.url = BlobUrl(key) + "?comp=blocklist";
          req.headers = {{"Content-Type", "application/xml"},
                         {"Content-MD5", md5},
                         {"x-ms-blob-content-type", "application/octet-stream"},
                         {"x-ms-meta-sha256", sha256}};
          AddScope(&req);
          AddPolicy(&req);
          req.body = body;
          return req;
        },
        nullptr);
  }

  Status Read(const Context& ctx, const std::string& key, uint64_t offset,
              const ByteSink& sink) override {
    BAO_RETURN_IF_ERROR(InStorage(ValidateKey(key)));
    Result<Props> props = Properties(ctx, key);
    if (!props.ok()) return InStorage(props.status());
    const ObjectInfo& info = props->info;
    if (offset > info.size) {
      return StorageError(Code::kInvalidArgument, Reason::kInvalidValue,
                          "read of \"" + key + "\" from offset " + std::to_string(offset) +
                              " beyond its size " + std::to_string(info.size));
    }
    ResumableRead progress(sink, offset);
    std::string what = "downloading \"" + key + "\" from " + Describe();
    Status s = Retry(ctx, options_.retry, what, [&]() -> Status {
      if (progress.position() == info.size) return Status::Ok();
      http::Request req;
      req.url = BlobUrl(key);
      if (progress.position() > 0) req.headers.emplace_back("x-ms-range", progress.Range());
      if (!props->etag.empty()) req.headers.emplace_back("If-Match", props->etag);
      req.on_body = [&](std::string_view chunk) { return progress.Deliver(chunk); };
      Result<http::Response> r = Send(ctx, std::move(req));
      // The reader's own refusal is final, whatever its code: never retried.
      if (progress.reader_failed()) return Aborted("stopped by the reader");
      if (!r.ok()) {
        if (progress.position() > offset) {
          log::Info("download dropped, resuming",
                    {{"key", key}, {"offset", std::to_string(progress.position())}});
        }
        return r.status();
      }
      if (!r->ok()) return ErrorFor(*r, what, key);
      if (progress.position() != info.size) {
        return StorageError(Code::kUnavailable, Reason::kUnreachable,
                            what + ": the transfer ended at byte " +
                                std::to_string(progress.position()) + " of " +
                                std::to_string(info.size));
      }
      return Status::Ok();
    });
    if (progress.reader_failed()) return progress.reader_error();  // the sink's, unchanged
    return InStorage(s);
  }

  Result<ObjectInfo> Stat(const Context& ctx, const std::string& key) override {
    BAO_RETURN_IF_ERROR(InStorage(ValidateKey(key)));
    Result<Props> props = Properties(ctx, key);
    if (!props.ok()) return InStorage(props.status());
    return props->info;
  }

  Status List(const Context& ctx, const std::string& prefix,
              const std::function<Status(const ObjectInfo&)>& fn) override {
    std::string marker;
    do {
      http::Response r;
      BAO_RETURN_IF_ERROR(InStorage(Call(
          ctx, "listing \"" + prefix + "\" in " + Describe(), "",
          [&] {
            http::Request req;
            // The immutability policy too, so that a listing shows each blob's lock.
            req.url = ContainerUrl() +
                      "?restype=container&comp=list&include=metadata,immutabilitypolicy"
                      "&maxresults=" +
                      std::to_string(options_.list_page_size);
            if (!prefix.empty()) req.url += "&prefix=" + http::UrlEncode(prefix);
            if (!marker.empty()) req.url += "&marker=" + http::UrlEncode(marker);
            return req;
          },
          &r)));
      BAO_ASSIGN_OR_RETURN(azure::BlobListPage page,
                           azure::ParseBlobList(r.body, prefix, "listing " + Describe()));
      for (const ObjectInfo& info : page.blobs) {
        BAO_RETURN_IF_ERROR(fn(info));  // the callback's error, as it is
      }
      marker = std::move(page.next_marker);
    } while (!marker.empty());
    return Status::Ok();
  }

  Status Delete(const Context& ctx, const std::string& key) override {
    BAO_RETURN_IF_ERROR(InStorage(ValidateKey(key)));
    Status st = DeleteBlob(ctx, key, nullptr);
    if (!st.ok() && (st.http_status() == 409 || st.http_status() == 403)) {
      // Refused: an immutability policy that has not ended says why (from the blob's
      // properties, not the message).
      Result<Props> props = Properties(ctx, key);
      if (props.ok() && props->info.LockedAt(SystemClock().Now())) {
        std::string until = FormatRfc3339(props->info.locked_until);
        return StorageError(Code::kFailedPrecondition, Reason::kLocked,
                            "deleting \"" + key + "\" from " + Describe() +
                                ": it is under an immutability policy (" + props->info.lock_mode +
                                ") until " + until + "; it can be deleted after that",
                            st.http_status())
            .WithPayload("lockedUntil", until);
      }
    }
    return InStorage(st);
  }

  // Deletes blob `key`; an absent blob counts as deleted, a missing container does not.
  Status DeleteBlob(const Context& ctx, const std::string& key, const RetryPolicy* policy) {
    return Call(
        ctx, "deleting \"" + key + "\" from " + Describe(), key,
        [&] {
          http::Request req;
          req.method = "DELETE";
          req.url = BlobUrl(key);
          return req;
        },
        nullptr,
        [](const http::Response& r) {
          return r.status == 404 && ErrorCode(r) != "ContainerNotFound";
        },
        policy);
  }

  // Discards the uncommitted blocks staged on `key`: the service keeps no blob for them, and
  // deleting such a blob answers 404, so an empty block list is committed (refused with 409 or
  // 412 if a blob was committed meanwhile, If-None-Match: *), marked abandoned in its metadata
  // so that List never shows it, and that exact empty blob is deleted (If-Match its ETag).
  // `etag`, when given, is the ETag of an abandoned blob already committed by an earlier try:
  // only the delete is left. Returns false when a committed blob that is not ours was found.
  Result<bool> DiscardUncommitted(const Context& ctx, const std::string& key, std::string etag) {
    if (etag.empty()) {
      const std::string body = "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList></BlockList>";
      http::Response put;
      BAO_RETURN_IF_ERROR(InStorage(Call(
          ctx, "discarding the uncommitted blocks of \"" + key + "\" in " + Describe(), key,
          [&] {
            http::Request req;
            req.method = "PUT";
            req.url = BlobUrl(key) + "?comp=blocklist";
            req.headers = {{"Content-Type", "application/xml"},
                           {"Content-MD5", crypto::Md5Base64(body)},
                           {"If-None-Match", "*"},
                           {std::string("x-ms-meta-") + kAbandonedMeta, "true"}};
            req.body = body;
            return req;
          },
          &put, [](const http::Response& r) { return r.status == 409 || r.status == 412; })));
      if (put.status == 409 || put.status == 412) return false;  // committed meanwhile
      etag = put.Header("etag");
    }
    http::Response del;
    BAO_RETURN_IF_ERROR(InStorage(Call(
        ctx, "deleting the discarded upload \"" + key + "\" in " + Describe(), key,
        [&] {
          http::Request req;
          req.method = "DELETE";
          req.url = BlobUrl(key);
          if (!etag.empty()) req.headers = {{"If-Match", etag}};
          return req;
        },
        &del,
        [](const http::Response& r) {
          return (r.status == 404 && ErrorCode(r) != "ContainerNotFound") || r.status == 412;
        })));
    return del.status != 412;  // 412: replaced by a committed blob meanwhile, not ours
  }

  // Blobs that exist only as uncommitted blocks (listed with include=uncommittedblobs but not
  // without it), and empty blobs an interrupted discard left marked abandoned. Each is removed
  // by DiscardUncommitted: a committed backup is never touched.
  Result<std::vector<Leftover>> CleanUpLeftovers(const Context& ctx, const std::string& prefix,
                                                 TimePoint older_than) override {
    std::set<std::string> committed;
    BAO_RETURN_IF_ERROR(List(ctx, prefix, [&](const ObjectInfo& info) {
      committed.insert(info.key);
      return Status::Ok();
    }));
    auto bad = [&](const std::string& why) {
      return StorageError(Code::kInternal, Reason::kBadResponse, "listing " + Describe() + why);
    };
    struct Candidate {
      Leftover leftover;
      std::string abandoned_etag;
    };
    std::vector<Candidate> old;
    std::string marker;
    do {
      http::Response r;
      BAO_RETURN_IF_ERROR(InStorage(Call(
          ctx, "listing the uncommitted blobs under \"" + prefix + "\" in " + Describe(), "",
          [&] {
            http::Request req;
            req.url = ContainerUrl() +
                      "?restype=container&comp=list&include=uncommittedblobs,metadata&maxresults=" +
                      std::to_string(options_.list_page_size);
            if (!prefix.empty()) req.url += "&prefix=" + http::UrlEncode(prefix);
            if (!marker.empty()) req.url += "&marker=" + http::UrlEncode(marker);
            return req;
          },
          &r)));
      pugi::xml_document doc;
      if (!doc.load_buffer(r.body.data(), r.body.size())) return bad(": the answer is not XML");
      pugi::xml_node root = doc.child("EnumerationResults");
      if (!root) return bad(": no EnumerationResults element");
      for (pugi::xml_node blob : root.child("Blobs").children("Blob")) {
        std::string key = blob.child("Name").text().get();
        if (key.empty() || !key.starts_with(prefix) || committed.contains(key)) continue;
        pugi::xml_node props = blob.child("Properties");
        Result<TimePoint> started = azure::ParseRfc1123(props.child("Creation-Time").text().get());
        if (!started.ok()) started = azure::ParseRfc1123(props.child("Last-Modified").text().get());
        if (!started.ok()) return bad(": \"" + key + "\" has no creation time");
        std::string abandoned_etag;
        if (IsAbandoned(blob)) {
          abandoned_etag = props.child("Etag").text().get();
          if (abandoned_etag.empty()) return bad(": abandoned \"" + key + "\" has no ETag");
        }
        if (*started < older_than)
          old.push_back({{"uncommitted-blob", key, *started}, abandoned_etag});
      }
      marker = root.child("NextMarker").text().get();
    } while (!marker.empty());

    std::vector<Leftover> removed;
    for (const Candidate& c : old) {
      BAO_ASSIGN_OR_RETURN(bool ours, DiscardUncommitted(ctx, c.leftover.key, c.abandoned_etag));
      if (ours) removed.push_back(c.leftover);
    }
    return removed;
  }

  // Deletes a blob that failed its checks, under a cleanup context; logs failures.
  void TakeBack(const std::string& key) {
    RetryPolicy policy = CleanupPolicy(options_.retry);
    Status d = DeleteBlob(Context::ForCleanup(kCleanupBudget), key, &policy);
    if (!d.ok()) {
      log::Error("could not delete a blob that failed its checks; delete it by hand",
                 {{"key", key}, {"error", d.message()}});
    }
  }

 private:
  Credentials creds_;
  std::string container_;
  http::TlsOptions tls_;
  uint64_t part_size_;
  int concurrency_;
  AzureOptions options_;
  std::string encryption_scope_;
  std::string lock_mode_;  // "Unlocked" / "Locked", or "" for none
  int retain_days_ = 0;
  http::ClientPool pool_;
};

AzureUpload::AzureUpload(AzureStore* store, std::string key, const Context& writer_ctx,
                         uint64_t part_size, int concurrency)
    : store_(store),
      key_(std::move(key)),
      upload_id_(crypto::RandomHex(16)),
      parts_(writer_ctx, part_size, concurrency, ParallelPartWriter::PartSum::kMd5,
             [this](const Context& ctx, int number, std::string_view data,
                    const ParallelPartWriter::PartSums& sums) -> Result<std::string> {
               std::string id = BlockId(number);
               BAO_RETURN_IF_ERROR(store_->PutBlock(ctx, key_, id, data, sums.md5_base64));
               return id;
             }) {}

std::string AzureUpload::BlockId(int number) const {
  char digits[16];
  std::snprintf(digits, sizeof digits, "%06d", number);
  // Same length for every block of the blob, as the service requires.
  return crypto::Base64Encode(upload_id_ + "-" + digits);
}

Status AzureUpload::Append(const Context& ctx, std::string_view data) {
  return parts_.Append(ctx, data);
}

Result<ObjectInfo> AzureUpload::Commit(const Context& ctx, const CommitInfo& info) {
  if (parts_.NothingDispatched()) {
    BAO_RETURN_IF_ERROR(store_->PutBlob(ctx, key_, parts_.Buffered(), info.sha256));
    parts_.Cancel();
  } else {
    BAO_ASSIGN_OR_RETURN(std::vector<std::string> ids, parts_.Finish(ctx));
    BAO_RETURN_IF_ERROR(store_->PutBlockList(ctx, key_, ids, info.sha256));
  }
  // Published: from here on, any failure takes the blob back.
  Result<AzureStore::Props> stored = store_->Properties(ctx, key_);
  Status s;
  if (!stored.ok()) {
    s = stored.status().WithContext("checking \"" + key_ + "\" after the commit");
  } else if (stored->info.size != info.size || stored->info.sha256 != info.sha256) {
    s = StorageError(Code::kDataLoss, Reason::kChecksumMismatch,
                     key_ + " in " + store_->Describe() + " reads back as " +
                         std::to_string(stored->info.size) + " bytes with checksum \"" +
                         stored->info.sha256 + "\" after writing " + std::to_string(info.size) +
                         " bytes with checksum \"" + info.sha256 + "\"");
  } else if (!store_->encryption_scope().empty() &&
             stored->encryption_scope != store_->encryption_scope()) {
    s = StorageError(Code::kFailedPrecondition, Reason::kBadResponse,
                     key_ + " in " + store_->Describe() + " reports the encryption scope \"" +
                         stored->encryption_scope + "\", " + store_->encryption_scope() +
                         " was requested");
  } else if (!store_->lock_mode().empty() && stored->info.lock_mode != store_->lock_mode()) {
    s = StorageError(Code::kFailedPrecondition, Reason::kBadResponse,
                     key_ + " in " + store_->Describe() +
                         " reports the immutability policy mode \"" + stored->info.lock_mode +
                         "\", " + store_->lock_mode() + " was requested");
  }
  if (!s.ok()) {
    store_->TakeBack(key_);
    return s;
  }
  return stored->info;
}

void AzureUpload::Abort(const Context& cleanup) {
  parts_.Cancel();
  // The service would discard the blocks only after a week; a block it took would show the
  // key in listings of uncommitted blobs until then.
  if (parts_.parts_dispatched() == 0) return;
  Result<bool> discarded = store_->DiscardUncommitted(cleanup, key_, "");
  if (!discarded.ok()) {
    log::Warn(
        "could not discard the uncommitted blocks of an aborted upload; the next backup "
        "or prune removes them",
        {{"key", key_}, {"error", discarded.status().message()}});
  }
}

}  // namespace

namespace azure {

Result<BlobListPage> ParseBlobList(std::string_view body, std::string_view prefix,
                                   const std::string& what) {
  auto bad = [&](const std::string& why) {
    return StorageError(Code::kInternal, Reason::kBadResponse, what + ": " + why);
  };
  pugi::xml_document doc;
  if (!doc.load_buffer(body.data(), body.size())) return bad("the answer is not XML");
  pugi::xml_node root = doc.child("EnumerationResults");
  if (!root) return bad("no EnumerationResults element");
  BlobListPage page;
  for (pugi::xml_node blob : root.child("Blobs").children("Blob")) {
    ObjectInfo info;
    info.key = blob.child("Name").text().get();
    if (info.key.empty() || !info.key.starts_with(prefix)) continue;  // not asked for
    if (IsAbandoned(blob)) continue;  // an interrupted discard's empty blob (DiscardUncommitted)
    pugi::xml_node props = blob.child("Properties");
    std::optional<uint64_t> size =
        ParseInteger<uint64_t>(props.child("Content-Length").text().get(), 0, UINT64_MAX);
    if (!size) return bad("\"" + info.key + "\" has no valid Content-Length");
    info.size = *size;
    Result<TimePoint> modified = ParseRfc1123(props.child("Last-Modified").text().get());
    if (modified.ok()) info.modified = *modified;
    // A lock (listed with include=immutabilitypolicy): the mode and its end; a date that does
    // not parse leaves the blob without one, as Stat() does.
    Result<TimePoint> until = ParseRfc1123(props.child("ImmutabilityPolicyUntilDate").text().get());
    std::string mode = props.child("ImmutabilityPolicyMode").text().get();
    if (until.ok() && !mode.empty()) {
      info.lock_mode = mode;
      info.locked_until = *until;
    }
    for (pugi::xml_node m : blob.child("Metadata").children()) {
      std::string name = m.name();
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (name == "sha256") info.sha256 = m.text().get();
    }
    page.blobs.push_back(std::move(info));
  }
  page.next_marker = root.child("NextMarker").text().get();
  return page;
}

}  // namespace azure

Result<std::unique_ptr<Store>> OpenAzureStore(const TargetConfig& target,
                                              const AzureOptions& options) {
  if (Status s = ValidateTarget(target, "target"); !s.ok()) return AsConfigError(s, "");
  BAO_ASSIGN_OR_RETURN(Credentials creds, azure::ResolveCredentials(target));
  std::string container = target.azure_container.empty() ? target.bucket : target.azure_container;
  http::TlsOptions tls;
  tls.insecure_skip_verify = target.insecure_skip_verify;
  if (!target.credentials_dir.empty()) {
    Result<std::optional<std::string>> ca = ReadOptionalTrimmed(target.credentials_dir + "/caCert");
    if (!ca.ok()) return AsConfigError(ca.status(), "reading the CA bundle caCert");
    if (*ca) tls.ca_pem = **ca + "\n";
  }
  auto store = std::make_unique<AzureStore>(std::move(creds), std::move(container), std::move(tls),
                                            target.part_size, target.concurrency, options);
  store->SetObjectSettings(target.azure_encryption_scope, UnlockedOrLocked(target.object_lock_mode),
                           target.object_lock_retain_days);
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace bao::storage
