#include "storage/gcs_store.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/files.h"
#include "common/log.h"
#include "common/numbers.h"
#include "common/redact.h"
#include "common/retry.h"
#include "crypto/crypto.h"
#include "http/client.h"
#include "storage/errors.h"
#include "storage/google_auth.h"
#include "storage/part_writer.h"
#include "storage/resumable_read.h"
#include "storage/upload.h"

namespace bao::storage {
namespace {

using nlohmann::json;

constexpr char kDefaultEndpoint[] = "https://storage.googleapis.com";
constexpr char kSha256Metadata[] = "sha256";

std::string Getenv(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// The machine-readable reason of a GCS JSON error ({"error": {"errors": [{"reason": ...}]}}),
// or "".
std::string ErrorReason(const http::Response& resp) {
  json j = json::parse(resp.body, nullptr, false);
  if (!j.is_object() || !j.contains("error") || !j["error"].is_object()) return "";
  const json& e = j["error"];
  if (!e.contains("errors") || !e["errors"].is_array() || e["errors"].empty()) return "";
  const json& first = e["errors"][0];
  if (!first.is_object() || !first.contains("reason") || !first["reason"].is_string()) return "";
  return first["reason"].get<std::string>();
}

RetryPolicy CleanupPolicy(const RetryPolicy& base) {
  RetryPolicy p = base;
  p.max_attempts = std::min(p.max_attempts, kCleanupAttempts);
  return p;
}

// What every request needs; shared by the store and its writers.
struct GcsShared {
  std::string base;  // API base URL, no trailing '/'
  std::string bucket;
  std::string project;
  std::string kms_key_name;  // target.gcs.kmsKeyName: CMEK of new objects ("" bucket default)
  std::string lock_mode;     // objectLock.mode as GCS names it: "Unlocked" / "Locked", or ""
  int retain_days = 0;       // objectLock.retainDays
  http::TlsOptions tls;
  std::unique_ptr<TokenSource> auth;
  GcsOptions options;
  mutable http::ClientPool pool;  // connections reused across requests, threads and writers

  std::string Where() const { return UrlForDisplay(base); }
  std::string ObjectName(const std::string& key) const { return "gs://" + bucket + "/" + key; }
  std::string ObjectUrl(const std::string& key) const {
    return base + "/storage/v1/b/" + http::UrlEncode(bucket) + "/o/" + http::UrlEncode(key);
  }

  // Performs `req` under `ctx` with authentication, TLS and the stall timeout. A 401 forgets
  // the cached token so the next request fetches a fresh one.
  Result<http::Response> Do(const Context& ctx, http::Request req) const {
    Result<std::string> authz = auth->AuthorizationHeader(ctx);
    if (!authz.ok()) {
      return authz.status().WithContext("cannot get a GCS token from " + auth->Describe());
    }
    if (!authz->empty()) req.headers.emplace_back("Authorization", *authz);
    req.tls = tls;
    req.ctx = ctx;
    req.stall_time = options.stall_time;
    Result<http::Response> resp = pool.Do(req);
    if (!resp.ok()) return resp.status().WithContext("GCS at " + Where());
    if (resp->status == 401) auth->Invalidate();
    return resp;
  }

  // The storage error for a non-2xx answer about `what` (e.g. "upload of gs://b/k"), decided on
  // the HTTP status and the error's machine-readable reason.
  Status ErrorFor(const http::Response& resp, const std::string& what) const {
    const std::string reason = ErrorReason(resp);
    std::string detail = " (HTTP " + std::to_string(resp.status) +
                         (reason.empty() ? "" : ", " + reason) + " from " + Where() +
                         "): " + http::ErrorSummary(resp);
    long s = resp.status;
    auto error = [&](Code code, Reason r, const std::string& message) {
      return StorageError(code, r, message, s);
    };
    if (s == 401) {
      return error(Code::kUnauthenticated, Reason::kUnauthenticated,
                   "GCS rejected the credentials (" + auth->Describe() + ") for " + what + detail);
    }
    if (s == 403 && (reason == "rateLimitExceeded" || reason == "userRateLimitExceeded")) {
      return error(Code::kUnavailable, Reason::kThrottled, what + " was throttled" + detail);
    }
    if (s == 403) {
      return error(Code::kPermissionDenied, Reason::kPermissionDenied,
                   "permission denied for " + what + " as " + auth->Describe() + detail);
    }
    if (s == 404) return error(Code::kNotFound, Reason::kNotFound, what + ": not found" + detail);
    if (s == 408) return error(Code::kUnavailable, Reason::kTimeout, what + " failed" + detail);
    if (s == 429 || s == 503) {
      return error(Code::kUnavailable, Reason::kThrottled, what + " failed" + detail);
    }
    if (s >= 500) return error(Code::kUnavailable, Reason::kServerError, what + " failed" + detail);
    if (s == 409 || s == 412) {
      return error(Code::kFailedPrecondition, Reason::kConflict,
                   what + ": precondition failed" + detail);
    }
    if (s == 400) {
      return error(Code::kInvalidArgument, Reason::kBadResponse, what + " was rejected" + detail);
    }
    return error(Code::kInternal, Reason::kBadResponse, what + ": unexpected answer" + detail);
  }

  Status BucketMissing(long http_status) const {
    std::string hint = project.empty() ? "" : " (create it in project \"" + project + "\")";
    return StorageError(Code::kNotFound, Reason::kNotFound,
                        "GCS bucket \"" + bucket + "\" does not exist at " + Where() + hint,
                        http_status);
  }

  // Whether the bucket exists, asked after a 404 about an object: the JSON API answers the
  // same for a missing object and a missing bucket. False only on a 404 for the bucket itself;
  // true when it exists or cannot be told (the identity may not read bucket metadata, or the
  // question failed).
  bool BucketExists(const Context& ctx) const {
    http::Request req;
    req.url = base + "/storage/v1/b/" + http::UrlEncode(bucket) + "?fields=name";
    req.timeout = std::chrono::seconds(60);
    Result<http::Response> resp = Do(ctx, req);
    return !(resp.ok() && resp->status == 404);
  }

  // kNotFound after a 404 about object `key`, naming the bucket when that is what is missing.
  Status NotFoundFor(const Context& ctx, const std::string& key) const {
    if (!BucketExists(ctx)) return BucketMissing(404);
    return StorageError(Code::kNotFound, Reason::kNotFound,
                        "GCS object " + ObjectName(key) + " does not exist at " + Where(), 404);
  }
};

Result<json> ParseObject(const http::Response& resp, const std::string& what) {
  json j = json::parse(resp.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return StorageError(Code::kInternal, Reason::kBadResponse,
                        what + ": the server's answer is not a JSON object", resp.status);
  }
  return j;
}

std::string StringField(const json& j, const char* name) {
  if (j.contains(name) && j[name].is_string()) return j[name].get<std::string>();
  return "";
}

}  // namespace

namespace gcs_internal {

Result<ObjectInfo> ObjectInfoFromResource(const json& j, const std::string& what) {
  auto bad = [&](const std::string& why) {
    return StorageError(Code::kInternal, Reason::kBadResponse, what + ": " + why);
  };
  if (!j.is_object()) return bad("the object resource is not a JSON object");
  ObjectInfo info;
  info.key = StringField(j, "name");
  if (j.contains("size")) {
    if (j["size"].is_string()) {
      const std::string s = j["size"].get<std::string>();
      std::optional<uint64_t> size = ParseInteger<uint64_t>(s, 0, UINT64_MAX);
      if (!size) return bad("bad object size \"" + s + "\"");
      info.size = *size;
    } else if (j["size"].is_number_unsigned()) {
      info.size = j["size"].get<uint64_t>();
    } else {
      return bad("the object resource has no usable size");
    }
  } else {
    return bad("the object resource has no size");
  }
  std::string updated = StringField(j, "updated");
  if (!updated.empty()) {
    auto t = ParseRfc3339(updated);
    if (t.ok()) info.modified = *t;
  }
  if (j.contains("metadata") && j["metadata"].is_object()) {
    info.sha256 = StringField(j["metadata"], kSha256Metadata);
  }
  if (j.contains("retention") && j["retention"].is_object()) {
    info.lock_mode = StringField(j["retention"], "mode");
    auto until = ParseRfc3339(StringField(j["retention"], "retainUntilTime"));
    if (until.ok()) info.locked_until = *until;
  }
  return info;
}

}  // namespace gcs_internal

namespace {

using gcs_internal::ObjectInfoFromResource;

// Writes the checksum side object of `key` (store.h) in one request, write-once
// (ifGenerationMatch=0: a 412 means it exists).
Status PutChecksum(const Context& ctx, const GcsShared& gcs, const std::string& key,
                   const std::string& sha256) {
  const std::string what = "recording the SHA-256 of " + gcs.ObjectName(key);
  http::Request req;
  req.method = "POST";
  req.url = gcs.base + "/upload/storage/v1/b/" + http::UrlEncode(gcs.bucket) +
            "/o?uploadType=media&ifGenerationMatch=0&name=" + http::UrlEncode(ChecksumKey(key));
  if (!gcs.kms_key_name.empty()) req.url += "&kmsKeyName=" + http::UrlEncode(gcs.kms_key_name);
  req.headers = {{"Content-Type", "text/plain"}};
  req.body = ChecksumFileContent(key, sha256);
  req.timeout = std::chrono::seconds(60);
  return Retry(ctx, gcs.options.retry, "GCS checksum upload", [&]() -> Status {
    BAO_ASSIGN_OR_RETURN(http::Response resp, gcs.Do(ctx, req));
    if (resp.status == 412) {
      return StorageError(Code::kAlreadyExists, Reason::kConflict,
                          what +
                              ": a checksum for this key exists already; backups are "
                              "write-once",
                          412);
    }
    return resp.ok() ? Status::Ok() : gcs.ErrorFor(resp, what);
  });
}

// The SHA-256 in the checksum side object of `key`, "" when there is none.
Result<std::string> ReadChecksum(const Context& ctx, const GcsShared& gcs, const std::string& key) {
  http::Request req;
  req.url = gcs.ObjectUrl(ChecksumKey(key)) + "?alt=media";
  req.timeout = std::chrono::seconds(60);
  std::string sha;
  BAO_RETURN_IF_ERROR(Retry(ctx, gcs.options.retry, "GCS checksum read", [&]() -> Status {
    BAO_ASSIGN_OR_RETURN(http::Response resp, gcs.Do(ctx, req));
    if (resp.status == 404) return Status::Ok();
    if (!resp.ok()) return gcs.ErrorFor(resp, "reading the SHA-256 of " + gcs.ObjectName(key));
    sha = ParseChecksumFile(resp.body);
    return Status::Ok();
  }));
  return sha;
}

// Deletes one generation of an object under a cleanup context (kCleanupBudget, at most
// kCleanupAttempts tries), logging (not returning) problems: used to take back an object that
// failed its checks, also after the caller's context ended.
void DeleteGeneration(const GcsShared& gcs, const std::string& key, const std::string& generation) {
  http::Request req;
  req.method = "DELETE";
  req.url = gcs.ObjectUrl(key);
  if (!generation.empty()) req.url += "?ifGenerationMatch=" + generation;
  req.timeout = std::chrono::seconds(60);
  Context cleanup = Context::ForCleanup(kCleanupBudget);
  Status st = Retry(cleanup, CleanupPolicy(gcs.options.retry), "GCS delete of a rejected upload",
                    [&]() -> Status {
                      BAO_ASSIGN_OR_RETURN(http::Response resp, gcs.Do(cleanup, req));
                      if (resp.ok() || resp.status == 404 || resp.status == 412) {
                        return Status::Ok();
                      }
                      return gcs.ErrorFor(resp, "delete of " + gcs.ObjectName(key));
                    });
  if (!st.ok()) {
    log::Error("could not delete a rejected GCS object; delete it by hand",
               {{"object", gcs.ObjectName(key)}, {"error", st.ToString()}});
    return;
  }
  http::Request side;
  side.method = "DELETE";
  side.url = gcs.ObjectUrl(ChecksumKey(key));
  side.timeout = std::chrono::seconds(60);
  Result<http::Response> resp = gcs.Do(cleanup, side);
  if (!resp.ok() || (!resp->ok() && resp->status != 404)) {
    log::Warn("could not delete the checksum of a rejected GCS object",
              {{"object", gcs.ObjectName(ChecksumKey(key))}});
  }
}

// The GCS protocol of one object upload: a resumable session (the writer's shared mechanics
// are in upload.h).
class GcsUpload final : public Upload {
 public:
  // Chunks upload under `writer_ctx` (see ParallelPartWriter): one is sent while the next fills,
  // as a session takes its chunks strictly in order.
  GcsUpload(std::shared_ptr<const GcsShared> gcs, std::string key, std::string session_url,
            uint64_t chunk_size, const Context& writer_ctx)
      : gcs_(std::move(gcs)),
        key_(std::move(key)),
        session_url_(std::move(session_url)),
        chunk_size_(chunk_size),
        chunks_(
            writer_ctx, chunk_size, 1, ParallelPartWriter::PartSum::kNone,
            [this](const Context& ctx, int number, std::string_view data,
                   const ParallelPartWriter::PartSums&) -> Result<std::string> {
              BAO_RETURN_IF_ERROR(SendChunk(ctx, (number - 1) * chunk_size_, data, false).status());
              return std::string();
            }) {}

  Status Append(const Context& ctx, std::string_view data) override {
    crc_ = crypto::Crc32c(crc_, data);
    return chunks_.Append(ctx, data);
  }

  Result<ObjectInfo> Commit(const Context& ctx, const CommitInfo& info) override {
    // The caller's size was checked against the bytes appended (upload.cc); its SHA-256 is the
    // one the pipeline computed over the same bytes, so it is recorded as given rather than
    // computed a second time here. What GCS stored is checked below by CRC32C.
    const uint64_t total = chunks_.bytes_appended();
    BAO_RETURN_IF_ERROR(chunks_.Drain(ctx));
    // The checksum is recorded before the object becomes visible (store.h).
    BAO_RETURN_IF_ERROR(PutChecksum(ctx, *gcs_, key_, info.sha256));
    const std::string_view last = chunks_.Buffered();
    Result<json> finalized = SendChunk(ctx, total - last.size(), last, true);
    if (!finalized.ok()) {
      // The outcome is unknown when an answer to the final chunk was lost: the session may
      // have finalized the object behind it. The object under the key decides; without that,
      // the error stands (and Abort() cancels the session).
      if (!final_answer_lost_ || ctx.done()) return finalized.status();
      finalized = FindFinalized(ctx, total, finalized.status());
      if (!finalized.ok()) return finalized.status();
    }
    json obj = std::move(finalized).value();
    session_url_.clear();  // finalized: nothing left to cancel
    chunks_.Cancel();      // frees the chunk buffers
    const std::string generation = StringField(obj, "generation");
    auto stored = ObjectInfoFromResource(obj, "upload of " + Name());
    if (!stored.ok()) {
      DeleteGeneration(*gcs_, key_, generation);
      return stored.status();
    }
    const std::string want_crc = crypto::Crc32cBase64(crc_);
    const std::string got_crc = StringField(obj, "crc32c");
    if (stored->size != total || (!got_crc.empty() && got_crc != want_crc)) {
      DeleteGeneration(*gcs_, key_, generation);
      return StorageError(Code::kDataLoss, Reason::kChecksumMismatch,
                          "GCS stored " + Name() + " with " + std::to_string(stored->size) +
                              " bytes and CRC32C " + got_crc + ", but " + std::to_string(total) +
                              " bytes with CRC32C " + want_crc +
                              " were sent; the object was deleted again");
    }
    if (got_crc.empty()) {
      log::Warn("GCS reported no CRC32C for the uploaded object; only its size was checked",
                {{"object", Name()}});
    }
    // What the target asked of the object: its CMEK (GCS reports the key with its version,
    // ".../cryptoKeys/K/cryptoKeyVersions/N") and its retention.
    const std::string got_key = StringField(obj, "kmsKeyName");
    std::string unmet;
    if (!gcs_->kms_key_name.empty() && got_key != gcs_->kms_key_name &&
        !got_key.starts_with(gcs_->kms_key_name + "/")) {
      unmet = "its kmsKeyName is \"" + got_key + "\", " + gcs_->kms_key_name + " was requested";
    } else if (!gcs_->lock_mode.empty() && stored->lock_mode != gcs_->lock_mode) {
      unmet = "its retention mode is \"" + stored->lock_mode + "\", " + gcs_->lock_mode +
              " was requested";
    }
    if (!unmet.empty()) {
      DeleteGeneration(*gcs_, key_, generation);
      return StorageError(Code::kFailedPrecondition, Reason::kBadResponse,
                          "GCS stored " + Name() + " but " + unmet +
                              "; the object was deleted again (if it could be)");
    }
    stored->key = key_;
    stored->sha256 = info.sha256;
    return *stored;
  }

  void Abort(const Context& cleanup) override {
    chunks_.Cancel();  // no chunk is being sent after this
    if (session_url_.empty()) return;
    http::Request req;
    req.method = "DELETE";
    req.url = session_url_;
    req.timeout = std::chrono::seconds(30);
    session_url_.clear();
    Status st = Retry(
        cleanup, CleanupPolicy(gcs_->options.retry), "GCS upload cancellation", [&]() -> Status {
          BAO_ASSIGN_OR_RETURN(http::Response resp, gcs_->Do(cleanup, req));
          // GCS answers a cancelled session with 499.
          if (resp.ok() || resp.status == 499 || resp.status == 404 || resp.status == 410) {
            return Status::Ok();
          }
          return gcs_->ErrorFor(resp, "cancelling the upload of " + Name());
        });
    if (!st.ok()) {
      log::Warn("could not cancel the GCS upload session; it expires on its own within a week",
                {{"object", Name()}, {"error", st.ToString()}});
    }
  }

 private:
  std::string Name() const { return gcs_->ObjectName(key_); }

  // A request to the session for bytes [from, end) of the object declaring `total`; the chunk
  // being sent, `chunk`, holds the bytes from offset `start`.
  http::Request ChunkRequest(uint64_t start, std::string_view chunk, uint64_t from, uint64_t end,
                             std::optional<uint64_t> total) {
    http::Request req;
    req.method = "PUT";
    req.url = session_url_;
    req.headers = {{"Content-Range", gcs_internal::ContentRange(from, end - from, total)},
                   {"Content-Type", "application/octet-stream"}};
    req.timeout = std::chrono::minutes(10);
    if (end > from) {
      size_t off = from - start;
      req.body_length = end - from;
      req.body_reader = [chunk, off](char* out, size_t len) mutable -> Result<size_t> {
        size_t n = std::min(len, chunk.size() - off);
        std::memcpy(out, chunk.data() + off, n);
        off += n;
        return n;
      };
    }
    return req;
  }

  // After a final chunk whose answer was lost (`failure` being how SendChunk() ended): the
  // object resource when the object now under the key is this upload's (its size and CRC32C
  // are those of the bytes sent); kAlreadyExists with Reason::kConflict when another object is
  // there (left as it is); `failure` when there is none or it cannot be looked up.
  Result<json> FindFinalized(const Context& ctx, uint64_t total, const Status& failure) {
    const std::string what = "metadata of " + Name();
    http::Request req;
    req.url = gcs_->ObjectUrl(key_);
    req.timeout = std::chrono::seconds(60);
    json found;
    bool absent = false;
    Status st = Retry(ctx, gcs_->options.retry, "GCS stat", [&]() -> Status {
      BAO_ASSIGN_OR_RETURN(http::Response resp, gcs_->Do(ctx, req));
      if (resp.status == 404) {
        absent = true;
        return Status::Ok();
      }
      if (!resp.ok()) return gcs_->ErrorFor(resp, what);
      BAO_ASSIGN_OR_RETURN(found, ParseObject(resp, what));
      return Status::Ok();
    });
    if (absent) return failure;  // not finalized: the error as it is
    if (!st.ok()) {
      return failure.WithContext(Name() + " could not be looked up after the answer was lost (" +
                                 st.message() + ")");
    }
    Result<ObjectInfo> info = ObjectInfoFromResource(found, what);
    const std::string want_crc = crypto::Crc32cBase64(crc_);
    const std::string got_crc = StringField(found, "crc32c");
    if (!info.ok() || info->size != total || got_crc != want_crc) {
      return StorageError(
          Code::kAlreadyExists, Reason::kConflict,
          "upload of " + Name() +
              ": the answer to the final chunk was lost, and the object now under the key is "
              "not provably this upload's (" +
              (info.ok() ? std::to_string(info->size) : std::string("unknown")) +
              " bytes with CRC32C \"" + got_crc + "\", this upload sent " + std::to_string(total) +
              " bytes with CRC32C " + want_crc + "); it was left as it is");
    }
    log::Warn(
        "the answer to the final chunk of a GCS upload was lost; the object under the key "
        "is this upload's (its size and CRC32C match), so the upload counts as finalized",
        {{"object", Name()}, {"generation", StringField(found, "generation")}});
    return found;
  }

  // The session finalized (200/201) although more bytes were due: delete what it created.
  Status Premature(const http::Response& resp, uint64_t expected) {
    std::string generation;
    uint64_t size = 0;
    auto obj = ParseObject(resp, "upload");
    if (obj.ok()) {
      generation = StringField(*obj, "generation");
      auto info = ObjectInfoFromResource(*obj, "upload");
      if (info.ok()) size = info->size;
    }
    DeleteGeneration(*gcs_, key_, generation);
    return StorageError(
        Code::kFailedPrecondition, Reason::kBadResponse,
        "GCS finalized the upload of " + Name() + " at " + std::to_string(size) + " of " +
            std::to_string(expected) +
            "+ bytes without being asked to (real GCS never does; fake-gcs-server does on a "
            "status query, its issue #2354); the partial object was deleted",
        resp.status);
  }

  // Sends `chunk`, the object's bytes from offset `start`. Not final: returns once the session
  // has persisted all of it (on a chunk writer's worker thread). Final: declares the total and
  // returns the finalized object resource (on the committing thread, after Drain()).
  Result<json> SendChunk(const Context& ctx, uint64_t start, std::string_view chunk, bool final) {
    const uint64_t end = start + chunk.size();
    const std::optional<uint64_t> total = final ? std::optional<uint64_t>(end) : std::nullopt;
    uint64_t persisted = start;
    bool need_query = false;
    json done;
    Status fatal;
    const std::string what = "upload of " + Name();

    // Applies a session answer that carries the persisted offset (308).
    auto take_offset = [&](const http::Response& resp) -> Status {
      BAO_ASSIGN_OR_RETURN(uint64_t p, gcs_internal::PersistedOffset(resp.Header("range")));
      if (p < start || p > end) {
        fatal = StorageError(Code::kDataLoss, Reason::kBadResponse,
                             what + ": the upload session reports " + std::to_string(p) +
                                 " bytes persisted, outside the " + std::to_string(start) + ".." +
                                 std::to_string(end) + " the writer still holds",
                             resp.status);
        return fatal;
      }
      persisted = p;
      return Status::Ok();
    };
    auto take_final = [&](const http::Response& resp) -> Status {
      if (!final) {
        fatal = Premature(resp, end);
        return fatal;
      }
      auto obj = ParseObject(resp, what);
      if (!obj.ok()) {
        final_answer_lost_ = true;  // finalized, but the resource is unreadable
        fatal = obj.status();
        return fatal;
      }
      done = std::move(*obj);
      return Status::Ok();
    };
    auto session_error = [&](const http::Response& resp) -> Status {
      if (resp.status == 404 || resp.status == 410) {
        fatal = StorageError(Code::kFailedPrecondition, Reason::kNotFound,
                             what + ": the upload session no longer exists (HTTP " +
                                 std::to_string(resp.status) + "); the upload must start over",
                             resp.status);
        return fatal;
      }
      Status st = gcs_->ErrorFor(resp, what);
      if (IsRetryable(st)) {
        need_query = true;
      } else {
        fatal = st;
      }
      return st;
    };

    // A request declaring the total whose answer was lost may have finalized the object.
    auto note_lost = [&](const Status& transport) {
      if (final && IsRetryable(transport) && !ctx.done()) final_answer_lost_ = true;
    };

    Status st = Retry(ctx, gcs_->options.retry, "GCS chunk upload", [&]() -> Status {
      if (need_query) {
        http::Request q = ChunkRequest(start, chunk, end, end, total);  // "bytes */T": a query
        q.timeout = std::chrono::seconds(60);
        Result<http::Response> answer = gcs_->Do(ctx, q);
        if (!answer.ok()) {
          note_lost(answer.status());
          return answer.status();
        }
        const http::Response& resp = *answer;
        if (resp.status == 308) {
          BAO_RETURN_IF_ERROR(take_offset(resp));
          need_query = false;
          if (!final && persisted == end) return Status::Ok();
        } else if (resp.ok()) {
          return take_final(resp);
        } else {
          return session_error(resp);
        }
      }
      while (true) {
        uint64_t before = persisted;
        auto resp = gcs_->Do(ctx, ChunkRequest(start, chunk, persisted, end, total));
        if (!resp.ok()) {
          note_lost(resp.status());
          if (IsRetryable(resp.status())) {
            need_query = true;
          } else {
            fatal = resp.status();
          }
          return resp.status();
        }
        if (resp->status == 308) {
          BAO_RETURN_IF_ERROR(take_offset(*resp));
          if (!final && persisted == end) return Status::Ok();
          if (persisted == before) {
            return StorageError(Code::kUnavailable, Reason::kServerError,
                                what + ": the session persisted nothing of the last request",
                                resp->status);
          }
          continue;  // the session kept only part of it: send the rest
        }
        if (resp->ok()) return take_final(*resp);
        return session_error(*resp);
      }
    });
    if (!st.ok()) return fatal.ok() ? st : fatal;
    if (final) return done;
    return json();
  }

  std::shared_ptr<const GcsShared> gcs_;
  std::string key_;
  std::string session_url_;
  uint64_t chunk_size_;
  // An answer to a request declaring the total (the final chunk, or a status query after it)
  // was lost: the session may have finalized the object. Set and read on the committing thread.
  bool final_answer_lost_ = false;
  uint32_t crc_ = 0;           // of every byte appended, for the final check
  ParallelPartWriter chunks_;  // last: its worker stops before the members above go
};

// A resumable session cannot be listed, so the writer records it: a small marker object beside
// the key, "<key>" + kSessionMarkerSuffix, holding the session URL (a bearer of the upload: it
// is never logged). Commit() and Abort() delete it; CleanUpLeftovers() finds those a crash left.
// List() does not show markers.
constexpr const char* kSessionMarkerSuffix = ".bao-upload-session";

bool IsSessionMarker(const std::string& key) {
  return key.ends_with(kSessionMarkerSuffix);
}

Status WriteSessionMarker(const GcsShared& gcs, const Context& ctx, const std::string& key,
                          const std::string& session) {
  const std::string marker = key + kSessionMarkerSuffix;
  http::Request req;
  req.method = "POST";
  req.url = gcs.base + "/upload/storage/v1/b/" + http::UrlEncode(gcs.bucket) +
            "/o?uploadType=media&name=" + http::UrlEncode(marker);
  req.headers = {{"Content-Type", "text/plain"}};
  req.body = session;
  req.timeout = std::chrono::seconds(60);
  return Retry(ctx, gcs.options.retry, "GCS upload session marker", [&]() -> Status {
    BAO_ASSIGN_OR_RETURN(http::Response resp, gcs.Do(ctx, req));
    if (!resp.ok()) {
      return gcs.ErrorFor(resp, "recording the upload session of " + gcs.ObjectName(key));
    }
    return Status::Ok();
  });
}

// Cancels a resumable session (DELETE on its URL); an answer saying it is gone (499, 404, 410)
// counts as cancelled.
Status CancelSession(const GcsShared& gcs, const Context& ctx, const RetryPolicy& policy,
                     const std::string& session, const std::string& key) {
  http::Request req;
  req.method = "DELETE";
  req.url = session;
  req.timeout = std::chrono::seconds(30);
  return Retry(ctx, policy, "GCS upload cancellation", [&]() -> Status {
    BAO_ASSIGN_OR_RETURN(http::Response resp, gcs.Do(ctx, req));
    if (resp.ok() || resp.status == 499 || resp.status == 404 || resp.status == 410) {
      return Status::Ok();
    }
    return gcs.ErrorFor(resp, "cancelling the upload of " + gcs.ObjectName(key));
  });
}

// Deletes the marker of `key`'s session (absent counts as deleted).
Status DeleteSessionMarker(const GcsShared& gcs, const Context& ctx, const RetryPolicy& policy,
                           const std::string& key) {
  http::Request req;
  req.method = "DELETE";
  req.url = gcs.ObjectUrl(key + kSessionMarkerSuffix);
  req.timeout = std::chrono::seconds(60);
  return Retry(ctx, policy, "GCS delete of an upload session marker", [&]() -> Status {
    BAO_ASSIGN_OR_RETURN(http::Response resp, gcs.Do(ctx, req));
    if (resp.ok() || resp.status == 404) return Status::Ok();
    return gcs.ErrorFor(resp, "delete of the upload session marker of " + gcs.ObjectName(key));
  });
}

// The upload with its session marker: forwards to the GcsUpload and removes the marker once
// the session is finalized (Commit, whatever its outcome: the session is then gone) or
// cancelled (Abort). A marker that cannot be removed is logged; the next cleanup removes it.
class MarkedUpload final : public Upload {
 public:
  MarkedUpload(std::shared_ptr<const GcsShared> gcs, std::string key, std::unique_ptr<Upload> base)
      : gcs_(std::move(gcs)), key_(std::move(key)), base_(std::move(base)) {}

  Status Append(const Context& ctx, std::string_view data) override {
    return base_->Append(ctx, data);
  }
  Result<ObjectInfo> Commit(const Context& ctx, const CommitInfo& info) override {
    Result<ObjectInfo> r = base_->Commit(ctx, info);
    if (r.ok()) RemoveMarker();
    return r;
  }
  void Abort(const Context& cleanup) override {
    base_->Abort(cleanup);
    RemoveMarker();
  }

 private:
  void RemoveMarker() {
    Status st = DeleteSessionMarker(*gcs_, Context::ForCleanup(kCleanupBudget),
                                    CleanupPolicy(gcs_->options.retry), key_);
    if (!st.ok()) {
      log::Warn("could not delete the GCS upload session marker; the next cleanup removes it",
                {{"object", gcs_->ObjectName(key_)}, {"error", st.ToString()}});
    }
  }

  std::shared_ptr<const GcsShared> gcs_;
  std::string key_;
  std::unique_ptr<Upload> base_;
};

class GcsStore : public Store {
 public:
  GcsStore(std::shared_ptr<const GcsShared> gcs, uint64_t chunk_size)
      : gcs_(std::move(gcs)), chunk_size_(chunk_size) {}

  std::string Describe() const override { return "gs://" + gcs_->bucket; }

  Result<std::unique_ptr<ObjectWriter>> NewWriter(const Context& ctx,
                                                  const std::string& key) override {
    BAO_RETURN_IF_ERROR(InStorage(ValidateKey(key)));
    const std::string what = "starting the upload of " + gcs_->ObjectName(key);
    http::Request req;
    req.method = "POST";
    req.url = gcs_->base + "/upload/storage/v1/b/" + http::UrlEncode(gcs_->bucket) +
              "/o?uploadType=resumable&name=" + http::UrlEncode(key);
    if (!gcs_->kms_key_name.empty()) {
      req.url += "&kmsKeyName=" + http::UrlEncode(gcs_->kms_key_name);
    }
    req.headers = {{"Content-Type", "application/json; charset=UTF-8"},
                   {"X-Upload-Content-Type", "application/octet-stream"}};
    json resource = {{"name", key}, {"contentType", "application/octet-stream"}};
    if (!gcs_->lock_mode.empty()) {
      resource["retention"] = {
          {"mode", gcs_->lock_mode},
          {"retainUntilTime",
           FormatRfc3339(SystemClock().Now() + std::chrono::hours(24) * gcs_->retain_days)}};
    }
    req.body = resource.dump();
    req.timeout = std::chrono::seconds(60);
    std::string session;
    Status st = Retry(ctx, gcs_->options.retry, "GCS upload session", [&]() -> Status {
      BAO_ASSIGN_OR_RETURN(http::Response resp, gcs_->Do(ctx, req));
      if (resp.status == 404) return gcs_->BucketMissing(resp.status);  // a bucket-level URL
      if (!resp.ok()) return gcs_->ErrorFor(resp, what);
      session = resp.Header("location");
      if (session.empty()) {
        return StorageError(Code::kInternal, Reason::kBadResponse,
                            what + ": the server returned no session URL", resp.status);
      }
      return Status::Ok();
    });
    if (!st.ok()) return InStorage(st);
    if (Status m = WriteSessionMarker(*gcs_, ctx, key, session); !m.ok()) {
      Context cleanup = Context::ForCleanup(kCleanupBudget);
      (void)CancelSession(*gcs_, cleanup, CleanupPolicy(gcs_->options.retry), session, key);
      return InStorage(m);
    }
    return NewObjectWriter(
        gcs_->ObjectName(key), ctx,
        std::make_unique<MarkedUpload>(
            gcs_, key, std::make_unique<GcsUpload>(gcs_, key, session, chunk_size_, ctx)));
  }

  Status Read(const Context& ctx, const std::string& key, uint64_t offset,
              const ByteSink& sink) override {
    BAO_RETURN_IF_ERROR(InStorage(ValidateKey(key)));
    const std::string what = "download of " + gcs_->ObjectName(key);
    ResumableRead progress(sink, offset);
    std::string generation;
    bool past_end = false;
    Status st = Retry(ctx, gcs_->options.retry, "GCS download", [&]() -> Status {
      http::Request req;
      req.url = gcs_->ObjectUrl(key) + "?alt=media";
      if (!generation.empty()) req.url += "&generation=" + generation;
      const uint64_t asked = progress.position();
      if (asked > 0) req.headers.emplace_back("Range", progress.Range());
      req.on_body = [&](std::string_view chunk) { return progress.Deliver(chunk); };
      auto resp = gcs_->Do(ctx, req);
      if (progress.reader_failed()) return Aborted("stopped by the reader");
      if (!resp.ok()) return resp.status();
      if (resp->status == 416) {
        past_end = true;
        return Status::Ok();
      }
      if (resp->status == 404) return gcs_->NotFoundFor(ctx, key);
      if (!resp->ok()) return gcs_->ErrorFor(*resp, what);
      if (asked > 0 && resp->status != 206) {
        return StorageError(Code::kInternal, Reason::kBadResponse,
                            what + ": the server ignored the byte range (HTTP " +
                                std::to_string(resp->status) + ")",
                            resp->status);
      }
      if (generation.empty()) generation = resp->Header("x-goog-generation");
      return Status::Ok();
    });
    if (progress.reader_failed()) return progress.reader_error();  // the sink's, unchanged
    BAO_RETURN_IF_ERROR(InStorage(st));
    if (past_end) {
      BAO_ASSIGN_OR_RETURN(ObjectInfo info, Stat(ctx, key));
      if (progress.position() != info.size) {
        return StorageError(Code::kInvalidArgument, Reason::kInvalidValue,
                            what + ": offset " + std::to_string(progress.position()) +
                                " is beyond the object's " + std::to_string(info.size) + " bytes",
                            416);
      }
    }
    return Status::Ok();
  }

  Result<ObjectInfo> Stat(const Context& ctx, const std::string& key) override {
    BAO_RETURN_IF_ERROR(InStorage(ValidateKey(key)));
    const std::string what = "metadata of " + gcs_->ObjectName(key);
    http::Request req;
    req.url = gcs_->ObjectUrl(key);
    req.timeout = std::chrono::seconds(60);
    ObjectInfo info;
    Status st = Retry(ctx, gcs_->options.retry, "GCS stat", [&]() -> Status {
      BAO_ASSIGN_OR_RETURN(http::Response resp, gcs_->Do(ctx, req));
      if (resp.status == 404) return gcs_->NotFoundFor(ctx, key);
      if (!resp.ok()) return gcs_->ErrorFor(resp, what);
      BAO_ASSIGN_OR_RETURN(json j, ParseObject(resp, what));
      BAO_ASSIGN_OR_RETURN(info, ObjectInfoFromResource(j, what));
      return Status::Ok();
    });
    if (!st.ok()) return InStorage(st);
    info.key = key;
    if (info.sha256.empty()) {
      Result<std::string> sha = ReadChecksum(ctx, *gcs_, key);
      if (!sha.ok()) return InStorage(sha.status());
      info.sha256 = *sha;
    }
    return info;
  }

  // Every object under `prefix`, the provider's own (side objects, session markers) included,
  // with its resource; all pages.
  Status ListItems(const Context& ctx, const std::string& prefix,
                   const std::function<Status(const json& item, const ObjectInfo&)>& fn) {
    const std::string what = "listing of gs://" + gcs_->bucket + "/" + prefix;
    std::string page_token;
    do {
      http::Request req;
      req.url = gcs_->base + "/storage/v1/b/" + http::UrlEncode(gcs_->bucket) +
                "/o?prefix=" + http::UrlEncode(prefix);
      if (gcs_->options.list_page_size > 0) {
        req.url += "&maxResults=" + std::to_string(gcs_->options.list_page_size);
      }
      if (!page_token.empty()) req.url += "&pageToken=" + http::UrlEncode(page_token);
      req.timeout = std::chrono::seconds(120);
      json page;
      Status st = Retry(ctx, gcs_->options.retry, "GCS list", [&]() -> Status {
        BAO_ASSIGN_OR_RETURN(http::Response resp, gcs_->Do(ctx, req));
        if (resp.status == 404) return gcs_->BucketMissing(resp.status);  // a bucket-level URL
        if (!resp.ok()) return gcs_->ErrorFor(resp, what);
        BAO_ASSIGN_OR_RETURN(page, ParseObject(resp, what));
        return Status::Ok();
      });
      BAO_RETURN_IF_ERROR(InStorage(st));
      if (page.contains("items")) {
        if (!page["items"].is_array()) {
          return StorageError(Code::kInternal, Reason::kBadResponse,
                              what + ": \"items\" is not a list");
        }
        for (const json& item : page["items"]) {
          if (!item.is_object()) {
            return StorageError(Code::kInternal, Reason::kBadResponse,
                                what + ": an item is not an object");
          }
          Result<ObjectInfo> info = ObjectInfoFromResource(item, what);
          if (!info.ok()) return InStorage(info.status());
          if (info->key.compare(0, prefix.size(), prefix) != 0) continue;
          BAO_RETURN_IF_ERROR(fn(item, *info));  // the callback's error, as it is
        }
      }
      page_token = StringField(page, "nextPageToken");
    } while (!page_token.empty());
    return Status::Ok();
  }

  Status List(const Context& ctx, const std::string& prefix,
              const std::function<Status(const ObjectInfo&)>& fn) override {
    return ListItems(ctx, prefix, [&](const json&, const ObjectInfo& info) {
      if (IsChecksumKey(info.key) || IsSessionMarker(info.key)) return Status::Ok();  // internal
      return fn(info);
    });
  }

  Status Delete(const Context& ctx, const std::string& key) override {
    BAO_RETURN_IF_ERROR(InStorage(ValidateKey(key)));
    http::Request req;
    req.method = "DELETE";
    req.url = gcs_->ObjectUrl(key);
    req.timeout = std::chrono::seconds(60);
    Status st = Retry(ctx, gcs_->options.retry, "GCS delete", [&]() -> Status {
      BAO_ASSIGN_OR_RETURN(http::Response resp, gcs_->Do(ctx, req));
      if (resp.ok()) return Status::Ok();
      if (resp.status == 404) {
        // Deleting an absent object succeeds; a missing bucket does not.
        return gcs_->BucketExists(ctx) ? Status::Ok() : gcs_->BucketMissing(404);
      }
      Status refused = gcs_->ErrorFor(resp, "delete of " + gcs_->ObjectName(key));
      if (resp.status == 403 || resp.status == 412) {
        // Refused: a retention that has not ended says why (decided on the object's metadata).
        Result<ObjectInfo> info = Stat(ctx, key);
        if (info.ok() && info->LockedAt(SystemClock().Now())) {
          std::string until = FormatRfc3339(info->locked_until);
          return StorageError(Code::kFailedPrecondition, Reason::kLocked,
                              "delete of " + gcs_->ObjectName(key) + ": it is under retention (" +
                                  info->lock_mode + ") until " + until +
                                  "; it can be deleted after that",
                              resp.status)
              .WithPayload("lockedUntil", until);
        }
      }
      return refused;
    });
    if (!st.ok()) return InStorage(st);
    // The object first, then its checksum: a failure in between leaves an orphan side object
    // (hidden, removed by leftover cleanup), never an object without its checksum.
    return InStorage(DeleteChecksum(ctx, key));
  }

  // Deletes the checksum side object of `key`; an absent one counts as deleted.
  Status DeleteChecksum(const Context& ctx, const std::string& key) {
    http::Request req;
    req.method = "DELETE";
    req.url = gcs_->ObjectUrl(ChecksumKey(key));
    req.timeout = std::chrono::seconds(60);
    return Retry(ctx, gcs_->options.retry, "GCS delete", [&]() -> Status {
      BAO_ASSIGN_OR_RETURN(http::Response resp, gcs_->Do(ctx, req));
      if (resp.ok() || resp.status == 404) return Status::Ok();
      return gcs_->ErrorFor(resp, "delete of " + gcs_->ObjectName(ChecksumKey(key)));
    });
  }

  // Session markers under the prefix older than the threshold: cancel the session they name,
  // then delete the marker. Then checksum side objects older than the threshold whose object
  // does not exist (a crash between writing one and publishing its object, or between deleting
  // an object and its checksum). A published object is never touched.
  Result<std::vector<Leftover>> CleanUpLeftovers(const Context& ctx, const std::string& prefix,
                                                 TimePoint older_than) override {
    const std::string what = "listing of gs://" + gcs_->bucket + "/" + prefix;
    std::vector<Leftover> old;
    std::vector<ObjectInfo> all;
    BAO_RETURN_IF_ERROR(ListItems(ctx, prefix, [&](const json& item, const ObjectInfo& info) {
      all.push_back(info);
      if (!IsSessionMarker(info.key)) return Status::Ok();
      Result<TimePoint> created = ParseRfc3339(StringField(item, "timeCreated"));
      if (!created.ok()) created = ParseRfc3339(StringField(item, "updated"));
      if (!created.ok()) {
        return StorageError(Code::kInternal, Reason::kBadResponse,
                            what + ": \"" + info.key + "\" has no creation time");
      }
      std::string key = info.key.substr(0, info.key.size() - std::strlen(kSessionMarkerSuffix));
      if (*created < older_than) old.push_back({"resumable-session", key, *created});
      return Status::Ok();
    }));

    std::vector<Leftover> removed;
    for (const Leftover& l : old) {
      const std::string marker = l.key + kSessionMarkerSuffix;
      std::string session;
      Status read = Read(ctx, marker, 0, [&](std::string_view chunk) {
        if (session.size() + chunk.size() > 8192) {
          return StorageError(
              Code::kInternal, Reason::kBadResponse,
              "the upload session marker of " + gcs_->ObjectName(l.key) + " is too large");
        }
        session.append(chunk);
        return Status::Ok();
      });
      if (read.code() == Code::kNotFound) continue;  // removed meanwhile: its writer finished
      BAO_RETURN_IF_ERROR(read);
      if (session.starts_with("http://") || session.starts_with("https://")) {
        BAO_RETURN_IF_ERROR(
            InStorage(CancelSession(*gcs_, ctx, gcs_->options.retry, session, l.key)));
      }
      BAO_RETURN_IF_ERROR(InStorage(DeleteSessionMarker(*gcs_, ctx, gcs_->options.retry, l.key)));
      removed.push_back(l);
    }
    for (const Leftover& orphan : OrphanChecksums(all, older_than)) {
      BAO_RETURN_IF_ERROR(InStorage(DeleteChecksum(ctx, orphan.key)));
      removed.push_back(orphan);
    }
    return removed;
  }

 private:
  std::shared_ptr<const GcsShared> gcs_;
  uint64_t chunk_size_;
};

Result<std::unique_ptr<TokenSource>> ServiceAccountFrom(const std::string& path,
                                                        const std::string& source) {
  auto text = ReadFile(path, 1 << 20);
  if (!text.ok()) return AsConfigError(text.status(), "reading the GCS " + source);
  Result<ServiceAccountKey> key = ParseServiceAccountKey(*text, path);
  if (!key.ok()) return AsConfigError(key.status(), "");
  return NewServiceAccountTokenSource(std::move(key).value());
}

bool IsGoogleHost(const std::string& base) {
  std::string host = base.substr(base.find("://") == std::string::npos ? 0 : base.find("://") + 3);
  host = host.substr(0, host.find_first_of("/:"));
  const std::string suffix = "googleapis.com";
  return host.size() >= suffix.size() &&
         host.compare(host.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

namespace gcs_internal {

uint64_t ChunkSize(uint64_t part_size, int concurrency) {
  const uint64_t budget = part_size * static_cast<uint64_t>(std::max(concurrency, 1) + 1);
  if (part_size == kDefaultPartSize && 2 * kDefaultChunkSize <= budget) return kDefaultChunkSize;
  uint64_t n = part_size / kChunkGranularity * kChunkGranularity;
  return std::max(n, kChunkGranularity);
}

std::string ContentRange(uint64_t start, uint64_t length, std::optional<uint64_t> total) {
  std::string t = total ? std::to_string(*total) : "*";
  if (length == 0) return "bytes */" + t;
  return "bytes " + std::to_string(start) + "-" + std::to_string(start + length - 1) + "/" + t;
}

Result<uint64_t> PersistedOffset(std::string_view range) {
  if (range.empty()) return uint64_t{0};
  const std::string_view prefix = "bytes=0-";
  std::optional<uint64_t> last;
  if (range.substr(0, prefix.size()) == prefix) {
    last = ParseInteger<uint64_t>(range.substr(prefix.size()), 0, UINT64_MAX - 1);
  }
  if (!last) {
    return StorageError(
        Code::kInternal, Reason::kBadResponse,
        "unexpected Range header \"" + std::string(range) + "\" from the upload session");
  }
  return *last + 1;
}

std::string ResolveEndpoint(const std::string& endpoint, const std::string& emulator_host) {
  std::string base = !endpoint.empty()        ? endpoint
                     : !emulator_host.empty() ? emulator_host
                                              : std::string(kDefaultEndpoint);
  if (base.find("://") == std::string::npos) {
    base = (endpoint.empty() ? "http://" : "https://") + base;
  }
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base;
}

}  // namespace gcs_internal

namespace {

// Whether this machine says it is a Google Compute Engine VM (GKE nodes included), the way
// Google's client libraries tell: the DMI product name. Read before any request is made.
bool OnGoogleCloud(const std::string& product_name_file) {
  Result<std::optional<std::string>> name = ReadOptionalTrimmed(product_name_file);
  return name.ok() && name->has_value() && (**name).find("Google") != std::string::npos;
}

}  // namespace

Result<std::unique_ptr<Store>> OpenGcsStore(const TargetConfig& target, const GcsOptions& options) {
  if (target.bucket.empty()) {
    return ConfigError(Reason::kInvalidValue, "target.bucket: required for gcs");
  }
  auto gcs = std::make_shared<GcsShared>();
  const std::string emulator_host = Getenv("STORAGE_EMULATOR_HOST");
  gcs->base = gcs_internal::ResolveEndpoint(target.endpoint, emulator_host);
  gcs->bucket = target.bucket;
  gcs->kms_key_name = target.gcs_kms_key_name;
  gcs->lock_mode = UnlockedOrLocked(target.object_lock_mode);
  gcs->retain_days = target.object_lock_retain_days;
  gcs->project = target.gcs_project;
  gcs->options = options;
  gcs->tls.insecure_skip_verify = target.insecure_skip_verify;

  const std::string dir = target.credentials_dir;
  if (!dir.empty() && FileExists(dir + "/caCert")) gcs->tls.ca_file = dir + "/caCert";

  const std::string adc = Getenv("GOOGLE_APPLICATION_CREDENTIALS");
  if (!dir.empty() && FileExists(dir + "/credentials.json")) {
    BAO_ASSIGN_OR_RETURN(gcs->auth,
                         ServiceAccountFrom(dir + "/credentials.json", "credentials.json"));
  } else if (!adc.empty()) {
    BAO_ASSIGN_OR_RETURN(gcs->auth,
                         ServiceAccountFrom(adc, "key named by GOOGLE_APPLICATION_CREDENTIALS"));
  } else if (!emulator_host.empty()) {
    gcs->auth = NewNoAuthTokenSource();
  } else if (!Getenv("GCE_METADATA_HOST").empty()) {
    gcs->auth = NewMetadataTokenSource(Getenv("GCE_METADATA_HOST"));
  } else if (!IsGoogleHost(gcs->base)) {
    gcs->auth = NewNoAuthTokenSource();  // an emulator endpoint without credentials
  } else if (OnGoogleCloud(options.gce_product_name_file)) {
    gcs->auth = NewMetadataTokenSource("");
  } else {
    return ConfigError(
        Reason::kNoCredentials,
        "no GCS credentials: no credentials.json in the credentials directory" +
            (dir.empty() ? std::string() : " (" + dir + ")") +
            ", GOOGLE_APPLICATION_CREDENTIALS is not set, and this machine is not a Google "
            "Cloud VM with a metadata server (set GCE_METADATA_HOST to use one anyway)");
  }
  const uint64_t chunk = gcs_internal::ChunkSize(target.part_size, target.concurrency);
  return std::unique_ptr<Store>(std::make_unique<GcsStore>(std::move(gcs), chunk));
}

}  // namespace bao::storage
