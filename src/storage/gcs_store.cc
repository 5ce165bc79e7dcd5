#include "storage/gcs_store.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/files.h"
#include "common/log.h"
#include "common/redact.h"
#include "crypto/crypto.h"
#include "http/client.h"
#include "storage/google_auth.h"
#include "storage/resumable_read.h"

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

// What every request needs; shared by the store and its writers.
struct GcsContext {
  std::string base;  // API base URL, no trailing '/'
  std::string bucket;
  std::string project;
  http::TlsOptions tls;
  std::unique_ptr<TokenSource> auth;
  GcsOptions options;

  std::string Where() const { return UrlForDisplay(base); }
  std::string ObjectName(const std::string& key) const { return "gs://" + bucket + "/" + key; }
  std::string ObjectUrl(const std::string& key) const {
    return base + "/storage/v1/b/" + http::UrlEncode(bucket) + "/o/" + http::UrlEncode(key);
  }

  // Performs `req` with authentication and TLS. A 401 forgets the cached token so the next
  // request fetches a fresh one.
  Result<http::Response> Do(http::Client& client, http::Request req) const {
    BAO_ASSIGN_OR_RETURN(std::string authz, auth->AuthorizationHeader());
    if (!authz.empty()) req.headers.emplace_back("Authorization", authz);
    req.tls = tls;
    BAO_ASSIGN_OR_RETURN(http::Response resp, client.Do(req));
    if (resp.status == 401) auth->Invalidate();
    return resp;
  }

  // The Status for a non-2xx answer about `what` (e.g. "upload of gs://b/k").
  Status ErrorFor(const http::Response& resp, const std::string& what) const {
    std::string detail = " (HTTP " + std::to_string(resp.status) + " from " + Where() +
                         "): " + http::ErrorSummary(resp);
    long s = resp.status;
    if (s == 401) {
      return Unauthenticated("GCS rejected the credentials (" + auth->Describe() + ") for " + what +
                             detail);
    }
    if (s == 403) {
      return PermissionDenied("permission denied for " + what + " as " + auth->Describe() + detail);
    }
    if (s == 404) return NotFound(what + ": not found" + detail);
    if (s == 408 || s == 429 || s >= 500) return Unavailable(what + " failed" + detail);
    if (s == 412) return FailedPrecondition(what + ": precondition failed" + detail);
    if (s == 400) return InvalidArgument(what + " was rejected" + detail);
    return Internal(what + ": unexpected answer" + detail);
  }

  Status BucketMissing() const {
    std::string hint = project.empty() ? "" : " (create it in project \"" + project + "\")";
    return NotFound("GCS bucket \"" + bucket + "\" does not exist at " + Where() + hint);
  }
};

bool IsBucketMissing(const http::Response& resp) {
  if (resp.status != 404) return false;
  std::string summary = http::ErrorSummary(resp);
  std::transform(summary.begin(), summary.end(), summary.begin(), ::tolower);
  return summary.find("bucket") != std::string::npos;
}

Result<json> ParseObject(const http::Response& resp, const std::string& what) {
  json j = json::parse(resp.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Internal(what + ": the server's answer is not a JSON object");
  }
  return j;
}

std::string StringField(const json& j, const char* name) {
  if (j.contains(name) && j[name].is_string()) return j[name].get<std::string>();
  return "";
}

Result<ObjectInfo> InfoFromResource(const json& j, const std::string& what) {
  ObjectInfo info;
  info.key = StringField(j, "name");
  if (j.contains("size")) {
    if (j["size"].is_string()) {
      const std::string s = j["size"].get<std::string>();
      char* end = nullptr;
      info.size = std::strtoull(s.c_str(), &end, 10);
      if (s.empty() || *end != '\0') return Internal(what + ": bad object size \"" + s + "\"");
    } else if (j["size"].is_number_unsigned()) {
      info.size = j["size"].get<uint64_t>();
    } else {
      return Internal(what + ": the object resource has no usable size");
    }
  } else {
    return Internal(what + ": the object resource has no size");
  }
  std::string updated = StringField(j, "updated");
  if (!updated.empty()) {
    auto t = ParseRfc3339(updated);
    if (t.ok()) info.modified = *t;
  }
  if (j.contains("metadata") && j["metadata"].is_object()) {
    info.sha256 = StringField(j["metadata"], kSha256Metadata);
  }
  return info;
}

// Deletes one generation of an object, logging (not returning) problems: used to take back an
// object that failed its checks.
void DeleteGeneration(const GcsContext& ctx, http::Client& client, const std::string& key,
                      const std::string& generation) {
  http::Request req;
  req.method = "DELETE";
  req.url = ctx.ObjectUrl(key);
  if (!generation.empty()) req.url += "?ifGenerationMatch=" + generation;
  req.timeout = std::chrono::seconds(60);
  Status st = Retry(ctx.options.retry, "GCS delete of a rejected upload", [&]() -> Status {
    BAO_ASSIGN_OR_RETURN(http::Response resp, ctx.Do(client, req));
    if (resp.ok() || resp.status == 404 || resp.status == 412) return Status::Ok();
    return ctx.ErrorFor(resp, "delete of " + ctx.ObjectName(key));
  });
  if (!st.ok()) {
    log::Error("could not delete a rejected GCS object; delete it by hand",
               {{"object", ctx.ObjectName(key)}, {"error", st.ToString()}});
  }
}

class GcsWriter : public ObjectWriter {
 public:
  GcsWriter(std::shared_ptr<const GcsContext> ctx, std::string key, std::string session_url,
            uint64_t chunk_size)
      : ctx_(std::move(ctx)),
        key_(std::move(key)),
        session_url_(std::move(session_url)),
        chunk_size_(chunk_size) {
    buf_.reserve(chunk_size_);
  }

  ~GcsWriter() override { Abort(); }

  Status Append(std::string_view data) override {
    if (!error_.ok()) return FailedPrecondition("upload already failed: " + error_.message());
    if (committed_) return FailedPrecondition("upload of " + Name() + " is already committed");
    while (!data.empty()) {
      if (buf_.size() == chunk_size_) {
        auto sent = SendChunk(false);
        if (!sent.ok()) return Fail(sent.status());
      }
      size_t n = std::min<size_t>(chunk_size_ - buf_.size(), data.size());
      std::string_view piece = data.substr(0, n);
      buf_.append(piece);
      crc_ = crypto::Crc32c(crc_, piece);
      sha_.Update(piece);
      data.remove_prefix(n);
    }
    return Status::Ok();
  }

  Result<ObjectInfo> Commit(const CommitInfo& info) override {
    if (!error_.ok()) return FailedPrecondition("upload already failed: " + error_.message());
    if (committed_) return FailedPrecondition("upload of " + Name() + " is already committed");
    const uint64_t total = flushed_ + buf_.size();
    const std::string sha = sha_.FinishHex();
    if (info.size != total || info.sha256 != sha) {
      return Fail(DataLoss("upload of " + Name() + ": the caller reports " +
                           std::to_string(info.size) + " bytes with SHA-256 " + info.sha256 +
                           ", but the writer received " + std::to_string(total) +
                           " bytes with SHA-256 " + sha));
    }
    auto final_obj = SendChunk(true);
    if (!final_obj.ok()) return Fail(final_obj.status());
    session_url_.clear();  // finalized: nothing left to cancel
    const json& obj = *final_obj;
    const std::string generation = StringField(obj, "generation");
    auto stored = InfoFromResource(obj, "upload of " + Name());
    if (!stored.ok()) {
      DeleteGeneration(*ctx_, client_, key_, generation);
      return Fail(stored.status());
    }
    const std::string want_crc = crypto::Crc32cBase64(crc_);
    const std::string got_crc = StringField(obj, "crc32c");
    if (stored->size != total || (!got_crc.empty() && got_crc != want_crc)) {
      DeleteGeneration(*ctx_, client_, key_, generation);
      return Fail(DataLoss("GCS stored " + Name() + " with " + std::to_string(stored->size) +
                           " bytes and CRC32C " + got_crc + ", but " + std::to_string(total) +
                           " bytes with CRC32C " + want_crc +
                           " were sent; the object was deleted again"));
    }
    if (got_crc.empty()) {
      log::Warn("GCS reported no CRC32C for the uploaded object; only its size was checked",
                {{"object", Name()}});
    }
    // Record the SHA-256 beside the object, on exactly the generation just written.
    http::Request patch;
    patch.method = "PATCH";
    patch.url = ctx_->ObjectUrl(key_);
    if (!generation.empty()) patch.url += "?ifGenerationMatch=" + generation;
    patch.headers = {{"Content-Type", "application/json"}};
    patch.body = json{{"metadata", {{kSha256Metadata, sha}}}}.dump();
    patch.timeout = std::chrono::seconds(60);
    json patched;
    Status st = Retry(ctx_->options.retry, "GCS metadata update", [&]() -> Status {
      BAO_ASSIGN_OR_RETURN(http::Response resp, ctx_->Do(client_, patch));
      if (!resp.ok()) return ctx_->ErrorFor(resp, "recording the SHA-256 of " + Name());
      BAO_ASSIGN_OR_RETURN(patched, ParseObject(resp, "metadata update of " + Name()));
      return Status::Ok();
    });
    if (!st.ok()) {
      DeleteGeneration(*ctx_, client_, key_, generation);
      return Fail(st.WithContext("the object was deleted again"));
    }
    auto result = InfoFromResource(patched, "metadata update of " + Name());
    if (!result.ok() || result->sha256 != sha || result->size != total) {
      DeleteGeneration(*ctx_, client_, key_, generation);
      return Fail(DataLoss("GCS did not keep the SHA-256 metadata of " + Name() +
                           "; the object was deleted again"));
    }
    committed_ = true;
    result->key = key_;
    return *result;
  }

  void Abort() override {
    if (committed_ || session_url_.empty()) return;
    http::Request req;
    req.method = "DELETE";
    req.url = session_url_;
    req.timeout = std::chrono::seconds(30);
    session_url_.clear();
    buf_.clear();
    buf_.shrink_to_fit();
    auto resp = ctx_->Do(client_, req);
    // GCS answers a cancelled session with 499.
    if (!resp.ok()) {
      log::Warn("could not cancel the GCS upload session; it expires on its own within a week",
                {{"object", Name()}, {"error", resp.status().ToString()}});
    } else if (!resp->ok() && resp->status != 499 && resp->status != 404 && resp->status != 410) {
      log::Warn("GCS refused to cancel the upload session; it expires on its own within a week",
                {{"object", Name()}, {"status", std::to_string(resp->status)}});
    }
  }

 private:
  std::string Name() const { return ctx_->ObjectName(key_); }

  Status Fail(Status st) {
    if (error_.ok()) error_ = st;
    Abort();
    return st;
  }

  // A request to the session for `buf_[from - flushed_, end)` declaring `total`.
  http::Request ChunkRequest(uint64_t from, uint64_t end, std::optional<uint64_t> total) {
    http::Request req;
    req.method = "PUT";
    req.url = session_url_;
    req.headers = {{"Content-Range", gcs_internal::ContentRange(from, end - from, total)},
                   {"Content-Type", "application/octet-stream"}};
    req.timeout = std::chrono::minutes(10);
    if (end > from) {
      size_t off = from - flushed_;
      req.body_length = end - from;
      req.body_reader = [this, off](char* out, size_t len) mutable -> Result<size_t> {
        size_t n = std::min(len, buf_.size() - off);
        std::memcpy(out, buf_.data() + off, n);
        off += n;
        return n;
      };
    }
    return req;
  }

  // The session finalized (200/201) although more bytes were due: delete what it created.
  Status Premature(const http::Response& resp, uint64_t expected) {
    std::string generation;
    uint64_t size = 0;
    auto obj = ParseObject(resp, "upload");
    if (obj.ok()) {
      generation = StringField(*obj, "generation");
      auto info = InfoFromResource(*obj, "upload");
      if (info.ok()) size = info->size;
    }
    DeleteGeneration(*ctx_, client_, key_, generation);
    return FailedPrecondition(
        "GCS finalized the upload of " + Name() + " at " + std::to_string(size) + " of " +
        std::to_string(expected) +
        "+ bytes without being asked to (real GCS never does; fake-gcs-server does on a status "
        "query, its issue #2354); the partial object was deleted");
  }

  // Sends `buf_` (bytes [flushed_, flushed_ + buf_.size())). Not final: returns once the
  // session has persisted all of it, then empties the buffer. Final: declares the total and
  // returns the finalized object resource.
  Result<json> SendChunk(bool final) {
    const uint64_t start = flushed_;
    const uint64_t end = flushed_ + buf_.size();
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
        fatal = DataLoss(what + ": the upload session reports " + std::to_string(p) +
                         " bytes persisted, outside the " + std::to_string(start) + ".." +
                         std::to_string(end) + " the writer still holds");
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
        fatal = obj.status();
        return fatal;
      }
      done = std::move(*obj);
      return Status::Ok();
    };
    auto session_error = [&](const http::Response& resp) -> Status {
      if (resp.status == 404 || resp.status == 410) {
        fatal = FailedPrecondition(what + ": the upload session no longer exists (HTTP " +
                                   std::to_string(resp.status) + "); the upload must start over");
        return fatal;
      }
      Status st = ctx_->ErrorFor(resp, what);
      if (IsRetryable(st)) {
        need_query = true;
      } else {
        fatal = st;
      }
      return st;
    };

    Status st = Retry(ctx_->options.retry, "GCS chunk upload", [&]() -> Status {
      if (need_query) {
        http::Request q = ChunkRequest(end, end, total);  // "bytes */T": a status query
        q.timeout = std::chrono::seconds(60);
        BAO_ASSIGN_OR_RETURN(http::Response resp, ctx_->Do(client_, q));
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
        auto resp = ctx_->Do(client_, ChunkRequest(persisted, end, total));
        if (!resp.ok()) {
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
            return Unavailable(what + ": the session persisted nothing of the last request");
          }
          continue;  // the session kept only part of it: send the rest
        }
        if (resp->ok()) return take_final(*resp);
        return session_error(*resp);
      }
    });
    if (!st.ok()) return fatal.ok() ? st : fatal;
    if (final) return done;
    flushed_ = end;
    buf_.clear();
    return json();
  }

  std::shared_ptr<const GcsContext> ctx_;
  std::string key_;
  std::string session_url_;
  uint64_t chunk_size_;
  http::Client client_;
  std::string buf_;
  uint64_t flushed_ = 0;  // bytes the session has persisted before buf_
  uint32_t crc_ = 0;
  crypto::Sha256 sha_;
  Status error_;
  bool committed_ = false;
};

class GcsStore : public Store {
 public:
  GcsStore(std::shared_ptr<const GcsContext> ctx, uint64_t chunk_size)
      : ctx_(std::move(ctx)), chunk_size_(chunk_size) {}

  std::string Describe() const override { return "gs://" + ctx_->bucket; }

  Result<std::unique_ptr<ObjectWriter>> NewWriter(const std::string& key) override {
    BAO_RETURN_IF_ERROR(ValidateKey(key));
    const std::string what = "starting the upload of " + ctx_->ObjectName(key);
    http::Client client;
    http::Request req;
    req.method = "POST";
    req.url = ctx_->base + "/upload/storage/v1/b/" + http::UrlEncode(ctx_->bucket) +
              "/o?uploadType=resumable&name=" + http::UrlEncode(key);
    req.headers = {{"Content-Type", "application/json; charset=UTF-8"},
                   {"X-Upload-Content-Type", "application/octet-stream"}};
    req.body = json{{"name", key}, {"contentType", "application/octet-stream"}}.dump();
    req.timeout = std::chrono::seconds(60);
    std::string session;
    BAO_RETURN_IF_ERROR(Retry(ctx_->options.retry, "GCS upload session", [&]() -> Status {
      BAO_ASSIGN_OR_RETURN(http::Response resp, ctx_->Do(client, req));
      if (resp.status == 404) return ctx_->BucketMissing();
      if (!resp.ok()) return ctx_->ErrorFor(resp, what);
      session = resp.Header("location");
      if (session.empty()) return Internal(what + ": the server returned no session URL");
      return Status::Ok();
    }));
    return std::unique_ptr<ObjectWriter>(
        std::make_unique<GcsWriter>(ctx_, key, session, chunk_size_));
  }

  Status Read(const std::string& key, uint64_t offset, const ByteSink& sink) override {
    BAO_RETURN_IF_ERROR(ValidateKey(key));
    const std::string what = "download of " + ctx_->ObjectName(key);
    http::Client client;
    ResumableRead progress(sink, offset);
    std::string generation;
    bool past_end = false;
    Status st = Retry(ctx_->options.retry, "GCS download", [&]() -> Status {
      http::Request req;
      req.url = ctx_->ObjectUrl(key) + "?alt=media";
      if (!generation.empty()) req.url += "&generation=" + generation;
      const uint64_t asked = progress.position();
      if (asked > 0) req.headers.emplace_back("Range", progress.Range());
      req.stall_time = std::chrono::seconds(60);
      req.on_body = [&](std::string_view chunk) { return progress.Deliver(chunk); };
      auto resp = ctx_->Do(client, req);
      if (progress.reader_failed()) return Aborted("stopped by the reader");
      if (!resp.ok()) return resp.status();
      if (resp->status == 416) {
        past_end = true;
        return Status::Ok();
      }
      if (resp->status == 404) {
        if (IsBucketMissing(*resp)) return ctx_->BucketMissing();
        return NotFound("GCS object " + ctx_->ObjectName(key) + " does not exist at " +
                        ctx_->Where());
      }
      if (!resp->ok()) return ctx_->ErrorFor(*resp, what);
      if (asked > 0 && resp->status != 206) {
        return Internal(what + ": the server ignored the byte range (HTTP " +
                        std::to_string(resp->status) + ")");
      }
      if (generation.empty()) generation = resp->Header("x-goog-generation");
      return Status::Ok();
    });
    if (progress.reader_failed()) return progress.reader_error();
    BAO_RETURN_IF_ERROR(st);
    if (past_end) {
      BAO_ASSIGN_OR_RETURN(ObjectInfo info, Stat(key));
      if (progress.position() != info.size) {
        return InvalidArgument(what + ": offset " + std::to_string(progress.position()) +
                               " is beyond the object's " + std::to_string(info.size) + " bytes");
      }
    }
    return Status::Ok();
  }

  Result<ObjectInfo> Stat(const std::string& key) override {
    BAO_RETURN_IF_ERROR(ValidateKey(key));
    const std::string what = "metadata of " + ctx_->ObjectName(key);
    http::Client client;
    http::Request req;
    req.url = ctx_->ObjectUrl(key);
    req.timeout = std::chrono::seconds(60);
    ObjectInfo info;
    BAO_RETURN_IF_ERROR(Retry(ctx_->options.retry, "GCS stat", [&]() -> Status {
      BAO_ASSIGN_OR_RETURN(http::Response resp, ctx_->Do(client, req));
      if (resp.status == 404) {
        if (IsBucketMissing(resp)) return ctx_->BucketMissing();
        return NotFound("GCS object " + ctx_->ObjectName(key) + " does not exist at " +
                        ctx_->Where());
      }
      if (!resp.ok()) return ctx_->ErrorFor(resp, what);
      BAO_ASSIGN_OR_RETURN(json j, ParseObject(resp, what));
      BAO_ASSIGN_OR_RETURN(info, InfoFromResource(j, what));
      return Status::Ok();
    }));
    info.key = key;
    return info;
  }

  Status List(const std::string& prefix,
              const std::function<Status(const ObjectInfo&)>& fn) override {
    const std::string what = "listing of gs://" + ctx_->bucket + "/" + prefix;
    http::Client client;
    std::string page_token;
    do {
      http::Request req;
      req.url = ctx_->base + "/storage/v1/b/" + http::UrlEncode(ctx_->bucket) +
                "/o?prefix=" + http::UrlEncode(prefix);
      if (ctx_->options.list_page_size > 0) {
        req.url += "&maxResults=" + std::to_string(ctx_->options.list_page_size);
      }
      if (!page_token.empty()) req.url += "&pageToken=" + http::UrlEncode(page_token);
      req.timeout = std::chrono::seconds(120);
      json page;
      BAO_RETURN_IF_ERROR(Retry(ctx_->options.retry, "GCS list", [&]() -> Status {
        BAO_ASSIGN_OR_RETURN(http::Response resp, ctx_->Do(client, req));
        if (resp.status == 404) return ctx_->BucketMissing();
        if (!resp.ok()) return ctx_->ErrorFor(resp, what);
        BAO_ASSIGN_OR_RETURN(page, ParseObject(resp, what));
        return Status::Ok();
      }));
      if (page.contains("items")) {
        if (!page["items"].is_array()) return Internal(what + ": \"items\" is not a list");
        for (const json& item : page["items"]) {
          if (!item.is_object()) return Internal(what + ": an item is not an object");
          BAO_ASSIGN_OR_RETURN(ObjectInfo info, InfoFromResource(item, what));
          if (info.key.compare(0, prefix.size(), prefix) != 0) continue;
          BAO_RETURN_IF_ERROR(fn(info));
        }
      }
      page_token = StringField(page, "nextPageToken");
    } while (!page_token.empty());
    return Status::Ok();
  }

  Status Delete(const std::string& key) override {
    BAO_RETURN_IF_ERROR(ValidateKey(key));
    http::Client client;
    http::Request req;
    req.method = "DELETE";
    req.url = ctx_->ObjectUrl(key);
    req.timeout = std::chrono::seconds(60);
    return Retry(ctx_->options.retry, "GCS delete", [&]() -> Status {
      BAO_ASSIGN_OR_RETURN(http::Response resp, ctx_->Do(client, req));
      if (resp.ok()) return Status::Ok();
      if (resp.status == 404) {
        return IsBucketMissing(resp) ? ctx_->BucketMissing() : Status::Ok();
      }
      return ctx_->ErrorFor(resp, "delete of " + ctx_->ObjectName(key));
    });
  }

 private:
  std::shared_ptr<const GcsContext> ctx_;
  uint64_t chunk_size_;
};

Result<std::unique_ptr<TokenSource>> ServiceAccountFrom(const std::string& path,
                                                        const std::string& source) {
  auto text = ReadFile(path, 1 << 20);
  if (!text.ok()) return text.status().WithContext("reading the GCS " + source);
  BAO_ASSIGN_OR_RETURN(ServiceAccountKey key, ParseServiceAccountKey(*text, path));
  return NewServiceAccountTokenSource(std::move(key));
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

uint64_t ChunkSize(uint64_t part_size) {
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
  if (range.substr(0, prefix.size()) != prefix || range.size() == prefix.size()) {
    return Internal("unexpected Range header \"" + std::string(range) +
                    "\" from the upload session");
  }
  uint64_t last = 0;
  for (char c : range.substr(prefix.size())) {
    if (c < '0' || c > '9') {
      return Internal("unexpected Range header \"" + std::string(range) +
                      "\" from the upload session");
    }
    last = last * 10 + static_cast<uint64_t>(c - '0');
  }
  return last + 1;
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

Result<std::unique_ptr<Store>> OpenGcsStore(const TargetConfig& target, const GcsOptions& options) {
  if (target.bucket.empty()) return InvalidArgument("target.bucket: required for gcs");
  auto ctx = std::make_shared<GcsContext>();
  const std::string emulator_host = Getenv("STORAGE_EMULATOR_HOST");
  ctx->base = gcs_internal::ResolveEndpoint(target.endpoint, emulator_host);
  ctx->bucket = target.bucket;
  ctx->project = target.gcs_project;
  ctx->options = options;
  ctx->tls.insecure_skip_verify = target.insecure_skip_verify;

  const std::string dir = target.credentials_dir;
  if (!dir.empty() && FileExists(dir + "/caCert")) ctx->tls.ca_file = dir + "/caCert";

  const std::string adc = Getenv("GOOGLE_APPLICATION_CREDENTIALS");
  if (!dir.empty() && FileExists(dir + "/credentials.json")) {
    BAO_ASSIGN_OR_RETURN(ctx->auth,
                         ServiceAccountFrom(dir + "/credentials.json", "credentials.json"));
  } else if (!adc.empty()) {
    BAO_ASSIGN_OR_RETURN(ctx->auth,
                         ServiceAccountFrom(adc, "key named by GOOGLE_APPLICATION_CREDENTIALS"));
  } else if (!emulator_host.empty()) {
    ctx->auth = NewNoAuthTokenSource();
  } else if (!Getenv("GCE_METADATA_HOST").empty()) {
    ctx->auth = NewMetadataTokenSource(Getenv("GCE_METADATA_HOST"));
  } else if (!IsGoogleHost(ctx->base)) {
    ctx->auth = NewNoAuthTokenSource();  // an emulator endpoint without credentials
  } else {
    ctx->auth = NewMetadataTokenSource("");
  }
  const uint64_t chunk = gcs_internal::ChunkSize(target.part_size);
  return std::unique_ptr<Store>(std::make_unique<GcsStore>(std::move(ctx), chunk));
}

}  // namespace bao::storage
