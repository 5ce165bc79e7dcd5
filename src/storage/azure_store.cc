#include "storage/azure_store.h"

#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <pugixml.hpp>
#include <vector>

#include "common/cancel.h"
#include "common/files.h"
#include "common/log.h"
#include "common/numbers.h"
#include "common/redact.h"
#include "crypto/crypto.h"
#include "http/client.h"
#include "storage/azure_auth.h"
#include "storage/part_writer.h"
#include "storage/resumable_read.h"

namespace bao::storage {
namespace {

using azure::Credentials;

// Reuses connections across requests; one client per concurrent caller.
class ClientPool {
 public:
  class Lease {
   public:
    Lease(ClientPool* pool, std::unique_ptr<http::Client> client)
        : pool_(pool), client_(std::move(client)) {}
    ~Lease() { pool_->Release(std::move(client_)); }
    http::Client* operator->() { return client_.get(); }

   private:
    ClientPool* pool_;
    std::unique_ptr<http::Client> client_;
  };

  Lease Acquire() {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.empty()) return Lease(this, std::make_unique<http::Client>());
    auto c = std::move(free_.back());
    free_.pop_back();
    return Lease(this, std::move(c));
  }

 private:
  void Release(std::unique_ptr<http::Client> c) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(std::move(c));
  }
  std::mutex mu_;
  std::vector<std::unique_ptr<http::Client>> free_;
};

bool IsOneOf(const std::string& code, std::initializer_list<const char*> codes) {
  for (const char* c : codes) {
    if (code == c) return true;
  }
  return false;
}

std::string ErrorCode(const http::Response& r) {
  std::string code = r.Header("x-ms-error-code");
  if (!code.empty()) return code;
  pugi::xml_document doc;
  if (doc.load_buffer(r.body.data(), r.body.size())) {
    return doc.child("Error").child("Code").text().get();
  }
  return "";
}

class AzureStore;

class AzureWriter final : public ObjectWriter {
 public:
  AzureWriter(AzureStore* store, std::string key, uint64_t part_size, int concurrency);
  ~AzureWriter() override { Abort(); }

  Status Append(std::string_view data) override;
  Result<ObjectInfo> Commit(const CommitInfo& info) override;
  void Abort() override;

 private:
  Status Fail(Status s) {
    if (error_.ok()) error_ = s;
    parts_.Cancel();
    return s;
  }
  std::string BlockId(int number) const;

  AzureStore* store_;
  std::string key_;
  std::string upload_id_;
  ParallelPartWriter parts_;
  Status error_;
  bool done_ = false;  // committed or aborted
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

  std::string Describe() const override { return "azure://" + creds_.account + "/" + container_; }

  std::string ContainerUrl() const { return creds_.endpoint + "/" + http::UrlEncode(container_); }
  std::string BlobUrl(const std::string& key) const {
    return ContainerUrl() + "/" + http::UrlEncode(key, /*keep_slash=*/true);
  }

  // Signs and sends one request (no retry). Transport errors name the endpoint.
  Result<http::Response> Send(http::Request req) {
    req.tls = tls_;
    req.cancel = CancelFlag();
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
        Result<std::string> token = creds_.tokens->Token();
        if (!token.ok()) {
          return token.status().WithContext("cannot get a token for Azure storage account \"" +
                                            creds_.account + "\" via " + creds_.source);
        }
        req.headers.emplace_back("Authorization", "Bearer " + *token);
        break;
      }
    }
    ClientPool::Lease client = pool_.Acquire();
    Result<http::Response> r = client->Do(req);
    if (!r.ok()) {
      return r.status().WithContext("Azure storage account \"" + creds_.account + "\" at " +
                                    UrlForDisplay(creds_.endpoint));
    }
    return r;
  }

  // Maps a non-2xx answer to a Status. `key` is "" for container-level requests.
  Status ErrorFor(const http::Response& r, const std::string& what, const std::string& key) {
    std::string code = ErrorCode(r);
    std::string where =
        "Azure storage account \"" + creds_.account + "\" at " + UrlForDisplay(creds_.endpoint);
    std::string detail =
        " (HTTP " + std::to_string(r.status) + (code.empty() ? "" : ", " + code) + ")";
    std::string summary = r.body.empty() ? "" : ": " + http::ErrorSummary(r);
    // Azurite reports a bad signature as AuthorizationFailure with the service's
    // "failed to authenticate" message, where Azure says AuthenticationFailed.
    bool bad_signature = code == "AuthorizationFailure" &&
                         r.body.find("failed to authenticate") != std::string::npos;
    if (IsOneOf(code, {"AuthenticationFailed", "InvalidAuthenticationInfo",
                       "NoAuthenticationInformation"}) ||
        bad_signature || (code.empty() && r.status == 401)) {
      return Unauthenticated(what + ": " + where + " rejected the credentials (" + creds_.source +
                             ")" + detail + summary);
    }
    if (code == "ContainerNotFound" || (code.empty() && r.status == 404 && key.empty())) {
      return NotFound(what + ": Azure container \"" + container_ +
                      "\" does not exist in storage account \"" + creds_.account + "\" at " +
                      UrlForDisplay(creds_.endpoint));
    }
    if (code == "BlobNotFound" || (code.empty() && r.status == 404)) {
      return NotFound(what + ": no object \"" + key + "\" in " + Describe());
    }
    if (code.starts_with("Authorization") || code == "InsufficientAccountPermissions" ||
        r.status == 403) {
      return PermissionDenied(what + ": " + where + " denied access to container \"" + container_ +
                              "\" for " + creds_.source + detail + summary);
    }
    if (r.status == 408 || r.status == 429 || r.status >= 500) {
      return Unavailable(what + ": " + where + " is unavailable" + detail + summary);
    }
    if (r.status == 412) {
      return FailedPrecondition(what + ": the object changed while being read" + detail);
    }
    return Internal(what + ": unexpected answer from " + where + detail + summary);
  }

  // Sends the request built by `make` until it succeeds or fails for good; `*out` receives the
  // 2xx response.
  Status Call(const std::string& what, const std::string& key,
              const std::function<http::Request()>& make, http::Response* out) {
    return Retry(
        options_.retry, what,
        [&]() -> Status {
          BAO_ASSIGN_OR_RETURN(http::Response r, Send(make()));
          if (!r.ok()) return ErrorFor(r, what, key);
          if (out != nullptr) *out = std::move(r);
          return Status::Ok();
        },
        CancelFlag());
  }

  struct Props {
    ObjectInfo info;
    std::string etag;
  };

  Result<Props> Properties(const std::string& key) {
    http::Response r;
    BAO_RETURN_IF_ERROR(Call(
        "reading the properties of \"" + key + "\" in " + Describe(), key,
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
      return Internal("the properties of \"" + key + "\" in " + Describe() +
                      " carry no valid Content-Length");
    }
    info.size = *length;
    Result<TimePoint> modified = azure::ParseRfc1123(r.Header("last-modified"));
    if (modified.ok()) info.modified = *modified;
    info.sha256 = r.Header("x-ms-meta-sha256");
    p.etag = r.Header("etag");
    return p;
  }

  Result<std::unique_ptr<ObjectWriter>> NewWriter(const std::string& key) override {
    BAO_RETURN_IF_ERROR(ValidateKey(key));
    // Catches a missing container and refused credentials before any byte is sent. A
    // permission error here is not final: write-only credentials may not list.
    Status s = Call(
        "checking container \"" + container_ + "\"", "",
        [&] {
          http::Request req;
          req.url = ContainerUrl() + "?restype=container&comp=list&maxresults=1";
          return req;
        },
        nullptr);
    if (!s.ok() && s.code() != Code::kPermissionDenied) return s;
    return std::unique_ptr<ObjectWriter>(new AzureWriter(this, key, part_size_, concurrency_));
  }

  Status PutBlock(const std::string& key, const std::string& block_id, std::string_view data) {
    std::string md5 = crypto::Md5Base64(data);
    return Call(
        "uploading block of \"" + key + "\" to " + Describe(), key,
        [&] {
          http::Request req;
          req.method = "PUT";
          req.url = BlobUrl(key) + "?comp=block&blockid=" + http::UrlEncode(block_id);
          req.headers = {{"Content-Type", "application/octet-stream"}, {"Content-MD5", md5}};
          auto pos = std::make_shared<size_t>(0);
          req.body_length = data.size();
          req.body_reader = [data, pos](char* buf, size_t len) -> Result<size_t> {
            size_t n = std::min(len, data.size() - *pos);
            std::memcpy(buf, data.data() + *pos, n);
            *pos += n;
            return n;
          };
          req.stall_time = std::chrono::seconds(60);
          return req;
        },
        nullptr);
  }

  Status PutBlob(const std::string& key, std::string_view data, const std::string& sha256) {
    std::string md5 = crypto::Md5Base64(data);
    return Call(
        "uploading \"" + key + "\" to " + Describe(), key,
        [&] {
          http::Request req;
          req.method = "PUT";
          req.url = BlobUrl(key);
          req.headers = {{"Content-Type", "application/octet-stream"},
                         {"Content-MD5", md5},
                         {"x-ms-blob-type", "BlockBlob"},
                         {"x-ms-blob-content-type", "application/octet-stream"},
                         {"x-ms-meta-sha256", sha256}};
          req.body = std::string(data);
          return req;
        },
        nullptr);
  }

  Status PutBlockList(const std::string& key, const std::vector<std::string>& ids,
                      const std::string& sha256) {
    std::string body = "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>";
    for (const std::string& id : ids) body += "<Latest>" + id + "</Latest>";
    body += "</BlockList>";
    std::string md5 = crypto::Md5Base64(body);
    return Call(
        "committing the block list of \"" + key + "\" in " + Describe(), key,
        [&] {
          http::Request req;
          req.method = "PUT";
          req.url = BlobUrl(key) + "?comp=blocklist";
          req.headers = {{"Content-Type", "application/xml"},
                         {"Content-MD5", md5},
                         {"x-ms-blob-content-type", "application/octet-stream"},
                         {"x-ms-meta-sha256", sha256}};
          req.body = body;
          return req;
        },
        nullptr);
  }

  Status Read(const std::string& key, uint64_t offset, const ByteSink& sink) override {
    BAO_RETURN_IF_ERROR(ValidateKey(key));
    BAO_ASSIGN_OR_RETURN(Props props, Properties(key));
    const ObjectInfo& info = props.info;
    if (offset > info.size) {
      return InvalidArgument("read of \"" + key + "\" from offset " + std::to_string(offset) +
                             " beyond its size " + std::to_string(info.size));
    }
    ResumableRead progress(sink, offset);
    std::string what = "downloading \"" + key + "\" from " + Describe();
    Status s = Retry(
        options_.retry, what,
        [&]() -> Status {
          if (progress.position() == info.size) return Status::Ok();
          http::Request req;
          req.url = BlobUrl(key);
          if (progress.position() > 0) req.headers.emplace_back("x-ms-range", progress.Range());
          if (!props.etag.empty()) req.headers.emplace_back("If-Match", props.etag);
          req.on_body = [&](std::string_view chunk) { return progress.Deliver(chunk); };
          Result<http::Response> r = Send(std::move(req));
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
            return Unavailable(what + ": the transfer ended at byte " +
                               std::to_string(progress.position()) + " of " +
                               std::to_string(info.size));
          }
          return Status::Ok();
        },
        CancelFlag());
    if (progress.reader_failed()) return progress.reader_error();
    return s;
  }

  Result<ObjectInfo> Stat(const std::string& key) override {
    BAO_RETURN_IF_ERROR(ValidateKey(key));
    BAO_ASSIGN_OR_RETURN(Props props, Properties(key));
    return props.info;
  }

  Status List(const std::string& prefix,
              const std::function<Status(const ObjectInfo&)>& fn) override {
    std::string marker;
    do {
      http::Response r;
      BAO_RETURN_IF_ERROR(Call(
          "listing \"" + prefix + "\" in " + Describe(), "",
          [&] {
            http::Request req;
            req.url = ContainerUrl() + "?restype=container&comp=list&include=metadata&maxresults=" +
                      std::to_string(options_.list_page_size);
            if (!prefix.empty()) req.url += "&prefix=" + http::UrlEncode(prefix);
            if (!marker.empty()) req.url += "&marker=" + http::UrlEncode(marker);
            return req;
          },
          &r));
      pugi::xml_document doc;
      if (!doc.load_buffer(r.body.data(), r.body.size())) {
        return Internal("listing " + Describe() + ": the answer is not XML");
      }
      pugi::xml_node root = doc.child("EnumerationResults");
      if (!root) return Internal("listing " + Describe() + ": no EnumerationResults element");
      for (pugi::xml_node blob : root.child("Blobs").children("Blob")) {
        ObjectInfo info;
        info.key = blob.child("Name").text().get();
        pugi::xml_node props = blob.child("Properties");
        info.size = props.child("Content-Length").text().as_ullong();
        Result<TimePoint> modified = azure::ParseRfc1123(props.child("Last-Modified").text().get());
        if (modified.ok()) info.modified = *modified;
        for (pugi::xml_node m : blob.child("Metadata").children()) {
          std::string name = m.name();
          for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          if (name == "sha256") info.sha256 = m.text().get();
        }
        if (info.key.empty() || !info.key.starts_with(prefix)) continue;
        BAO_RETURN_IF_ERROR(fn(info));
      }
      marker = root.child("NextMarker").text().get();
    } while (!marker.empty());
    return Status::Ok();
  }

  Status Delete(const std::string& key) override {
    BAO_RETURN_IF_ERROR(ValidateKey(key));
    Status s = Call(
        "deleting \"" + key + "\" from " + Describe(), key,
        [&] {
          http::Request req;
          req.method = "DELETE";
          req.url = BlobUrl(key);
          return req;
        },
        nullptr);
    if (s.code() == Code::kNotFound && s.message().find("no object") != std::string::npos) {
      return Status::Ok();
    }
    return s;
  }

 private:
  Credentials creds_;
  std::string container_;
  http::TlsOptions tls_;
  uint64_t part_size_;
  int concurrency_;
  AzureOptions options_;
  ClientPool pool_;
};

AzureWriter::AzureWriter(AzureStore* store, std::string key, uint64_t part_size, int concurrency)
    : store_(store),
      key_(std::move(key)),
      upload_id_(crypto::RandomHex(16)),
      parts_(part_size, concurrency,
             [this](int number, std::string_view data) -> Result<std::string> {
               std::string id = BlockId(number);
               BAO_RETURN_IF_ERROR(store_->PutBlock(key_, id, data));
               return id;
             }) {}

std::string AzureWriter::BlockId(int number) const {
  char digits[16];
  std::snprintf(digits, sizeof digits, "%06d", number);
  // Same length for every block of the blob, as the service requires.
  return crypto::Base64Encode(upload_id_ + "-" + digits);
}

Status AzureWriter::Append(std::string_view data) {
  if (!error_.ok()) return error_;
  if (done_) return FailedPrecondition("the writer for \"" + key_ + "\" is closed");
  Status s = parts_.Append(data);
  if (!s.ok()) return Fail(s);
  return s;
}

Result<ObjectInfo> AzureWriter::Commit(const CommitInfo& info) {
  if (!error_.ok()) return error_;
  if (done_) return FailedPrecondition("the writer for \"" + key_ + "\" is closed");
  if (info.size != parts_.bytes_appended()) {
    return Fail(Internal("commit of \"" + key_ + "\" claims " + std::to_string(info.size) +
                         " bytes but " + std::to_string(parts_.bytes_appended()) +
                         " were appended"));
  }
  Status s;
  if (parts_.NothingDispatched()) {
    s = store_->PutBlob(key_, parts_.Buffered(), info.sha256);
    parts_.Cancel();
  } else {
    Result<std::vector<std::string>> ids = parts_.Finish();
    s = ids.ok() ? store_->PutBlockList(key_, *ids, info.sha256) : ids.status();
  }
  done_ = true;
  if (!s.ok()) {
    error_ = s;
    return s;
  }
  auto stored = store_->Properties(key_);
  if (stored.ok() && (stored->info.size != info.size || stored->info.sha256 != info.sha256)) {
    s = DataLoss(key_ + " in " + store_->Describe() + " reads back as " +
                 std::to_string(stored->info.size) + " bytes with checksum \"" +
                 stored->info.sha256 + "\" after writing " + std::to_string(info.size) +
                 " bytes with checksum \"" + info.sha256 + "\"");
  } else if (!stored.ok()) {
    s = stored.status().WithContext("checking \"" + key_ + "\" after the commit");
  }
  if (!s.ok()) {
    Status d = store_->Delete(key_);
    if (!d.ok()) log::Warn("could not delete the unverified blob", {{"error", d.message()}});
    error_ = s;
    return s;
  }
  return stored->info;
}

void AzureWriter::Abort() {
  if (done_) return;
  done_ = true;
  parts_.Cancel();
  // Uncommitted blocks are invisible and discarded by the service (after a week at most);
  // nothing to delete.
  if (parts_.parts_dispatched() > 0) {
    log::Debug("abandoned uncommitted Azure blocks", {{"key", key_}});
  }
}

}  // namespace

Result<std::unique_ptr<Store>> OpenAzureStore(const TargetConfig& target,
                                              const AzureOptions& options) {
  BAO_RETURN_IF_ERROR(ValidateTarget(target, "target"));
  BAO_ASSIGN_OR_RETURN(Credentials creds, azure::ResolveCredentials(target));
  std::string container = target.azure_container.empty() ? target.bucket : target.azure_container;
  http::TlsOptions tls;
  tls.insecure_skip_verify = target.insecure_skip_verify;
  if (!target.credentials_dir.empty()) {
    BAO_ASSIGN_OR_RETURN(std::optional<std::string> ca,
                         ReadOptionalTrimmed(target.credentials_dir + "/caCert"));
    if (ca) tls.ca_pem = *ca + "\n";
  }
  return std::unique_ptr<Store>(new AzureStore(std::move(creds), std::move(container),
                                               std::move(tls), target.part_size, target.concurrency,
                                               options));
}

}  // namespace bao::storage
