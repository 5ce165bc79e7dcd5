#include "storage/s3_xml.h"

#include <cstdint>
#include <ctime>
#include <optional>
#include <pugixml.hpp>

#include "common/numbers.h"
#include "common/redact.h"
#include "storage/errors.h"

namespace bao::storage::s3 {
namespace {

std::string XmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      case '\r': out += "&#13;"; break;  // a raw CR reaches the server as LF (XML 1.0 2.11)
      default: out.push_back(c);
    }
  }
  return out;
}

bool Load(pugi::xml_document* doc, std::string_view body) {
  return doc->load_buffer(body.data(), body.size()).status == pugi::status_ok;
}

// An answer that is not what the S3 API documents.
Status BadAnswer(std::string message) {
  return StorageError(Code::kInternal, Reason::kBadResponse, std::move(message));
}

std::string Where(const RequestContext& c) {
  return " (bucket \"" + c.bucket + "\" at " + UrlForDisplay(c.endpoint) + ")";
}

}  // namespace

ErrorBody ParseError(std::string_view body) {
  ErrorBody out;
  pugi::xml_document doc;
  if (body.empty() || !Load(&doc, body)) return out;
  pugi::xml_node error = doc.child("Error");
  if (!error) return out;
  out.found = true;
  out.code = error.child_value("Code");
  out.message = Redact(error.child_value("Message"));
  return out;
}

Status MapError(long status, std::string_view body, const RequestContext& c) {
  ErrorBody e = ParseError(body);
  std::string detail = e.code.empty() ? "HTTP " + std::to_string(status)
                                      : e.code + (e.message.empty() ? "" : ": " + e.message);
  std::string prefix = c.what + ": ";
  std::string credential = c.credential.empty() ? "the credentials" : c.credential;
  const std::string& code = e.code;
  auto error = [&](Code code, Reason reason, const std::string& message) {
    return StorageError(code, reason, prefix + message, status);
  };
  if (code == "SignatureDoesNotMatch" || code == "InvalidAccessKeyId" || code == "ExpiredToken" ||
      code == "InvalidToken" || code == "InvalidTokenId" || code == "TokenRefreshRequired" ||
      code == "InvalidSecurity" || (code.empty() && status == 401)) {
    return error(Code::kUnauthenticated, Reason::kUnauthenticated,
                 "S3 rejected the credentials: " + credential + " was refused (" + detail +
                     "); check accessKeyId/secretAccessKey/sessionToken" + Where(c));
  }
  if (code == "NoSuchBucket") {
    return error(Code::kNotFound, Reason::kNotFound,
                 "S3 bucket \"" + c.bucket + "\" does not exist at " + UrlForDisplay(c.endpoint));
  }
  if (code == "AccessDenied" || code == "AllAccessDisabled" || code == "AccountProblem" ||
      (code.empty() && status == 403)) {
    return error(Code::kPermissionDenied, Reason::kPermissionDenied,
                 "S3 denied access to " + credential + " (" + detail + ")" + Where(c));
  }
  if (code == "NoSuchKey" || code == "NoSuchUpload" || (code.empty() && status == 404)) {
    return error(Code::kNotFound, Reason::kNotFound, "not found (" + detail + ")" + Where(c));
  }
  if (code == "AuthorizationHeaderMalformed" || code == "PermanentRedirect" ||
      code == "IllegalLocationConstraintException" || status == 301) {
    return error(Code::kFailedPrecondition, Reason::kInvalidValue,
                 "the bucket is in another region or needs another endpoint; set "
                 "region/endpoint accordingly (" +
                     detail + ")" + Where(c));
  }
  std::string answered = "S3 answered " + detail + Where(c);
  if (code == "SlowDown" || code == "ServiceUnavailable" || status == 429 || status == 503) {
    return error(Code::kUnavailable, Reason::kThrottled, answered);
  }
  if (code == "XAmzContentSHA256Mismatch" || code == "BadDigest" ||
      code == "XAmzContentChecksumMismatch" || code == "IncompleteBody") {
    return error(Code::kUnavailable, Reason::kChecksumMismatch, answered);
  }
  if (code == "RequestTimeout") return error(Code::kUnavailable, Reason::kTimeout, answered);
  if (code == "RequestTimeTooSkewed") {
    return error(Code::kUnavailable, Reason::kInvalidValue,
                 answered + "; check this machine's clock");
  }
  if (status >= 500 || code == "InternalError") {
    return error(Code::kUnavailable, Reason::kServerError, answered);
  }
  if (status == 409 || status == 412 || code == "PreconditionFailed") {
    return error(Code::kFailedPrecondition, Reason::kConflict,
                 "S3 refused the request (" + detail + ")" + Where(c));
  }
  return error(Code::kFailedPrecondition, Reason::kBadResponse,
               "S3 refused the request (" + detail + ")" + Where(c));
}

Result<ListPage> ParseListObjectsV2(std::string_view body) {
  pugi::xml_document doc;
  if (!Load(&doc, body)) return BadAnswer("S3 returned an unreadable ListObjectsV2 answer");
  pugi::xml_node root = doc.child("ListBucketResult");
  if (!root) return BadAnswer("S3 returned a ListObjectsV2 answer without ListBucketResult");
  bool url_encoded = std::string_view(root.child_value("EncodingType")) == "url";
  ListPage page;
  page.truncated = std::string_view(root.child_value("IsTruncated")) == "true";
  page.next_continuation_token = root.child_value("NextContinuationToken");
  for (pugi::xml_node c = root.child("Contents"); c; c = c.next_sibling("Contents")) {
    ObjectInfo info;
    info.key = c.child_value("Key");
    if (url_encoded) info.key = UrlDecode(info.key);
    std::optional<uint64_t> size = ParseInteger<uint64_t>(c.child_value("Size"), 0, UINT64_MAX);
    if (!size) return BadAnswer("S3 listed \"" + info.key + "\" without a valid size");
    info.size = *size;
    auto modified = ParseRfc3339(c.child_value("LastModified"));
    if (modified.ok()) info.modified = *modified;
    page.objects.push_back(std::move(info));
  }
  if (page.truncated && page.next_continuation_token.empty()) {
    return BadAnswer("S3 returned a truncated listing without a continuation token");
  }
  return page;
}

Result<UploadsPage> ParseListMultipartUploads(std::string_view body) {
  pugi::xml_document doc;
  if (!Load(&doc, body)) return BadAnswer("S3 returned an unreadable ListMultipartUploads answer");
  pugi::xml_node root = doc.child("ListMultipartUploadsResult");
  if (!root) {
    return BadAnswer(
        "S3 returned a ListMultipartUploads answer without ListMultipartUploadsResult");
  }
  bool url_encoded = std::string_view(root.child_value("EncodingType")) == "url";
  UploadsPage page;
  page.truncated = std::string_view(root.child_value("IsTruncated")) == "true";
  page.next_key_marker = root.child_value("NextKeyMarker");
  page.next_upload_id_marker = root.child_value("NextUploadIdMarker");
  if (url_encoded) page.next_key_marker = UrlDecode(page.next_key_marker);
  for (pugi::xml_node u = root.child("Upload"); u; u = u.next_sibling("Upload")) {
    MultipartUpload up;
    up.key = u.child_value("Key");
    if (url_encoded) up.key = UrlDecode(up.key);
    up.upload_id = u.child_value("UploadId");
    Result<TimePoint> initiated = ParseRfc3339(u.child_value("Initiated"));
    if (up.upload_id.empty() || !initiated.ok()) {
      return BadAnswer("S3 listed an upload of \"" + up.key + "\" without an id or start time");
    }
    up.initiated = *initiated;
    page.uploads.push_back(std::move(up));
  }
  if (page.truncated && page.next_key_marker.empty() && page.next_upload_id_marker.empty()) {
    return BadAnswer("S3 returned a truncated upload listing without markers");
  }
  return page;
}

Result<std::string> ParseInitiateMultipartUpload(std::string_view body) {
  pugi::xml_document doc;
  if (!Load(&doc, body)) return BadAnswer("S3 returned an unreadable CreateMultipartUpload answer");
  std::string id = doc.child("InitiateMultipartUploadResult").child_value("UploadId");
  if (id.empty()) return BadAnswer("S3 returned a CreateMultipartUpload answer without UploadId");
  return id;
}

std::string CompleteMultipartUploadBody(const std::vector<std::string>& etags,
                                        const std::vector<std::string>& crc32c) {
  std::string out = "<CompleteMultipartUpload>";
  for (size_t i = 0; i < etags.size(); ++i) {
    out += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" +
           XmlEscape(etags[i]) + "</ETag>";
    if (i < crc32c.size()) out += "<ChecksumCRC32C>" + XmlEscape(crc32c[i]) + "</ChecksumCRC32C>";
    out += "</Part>";
  }
  out += "</CompleteMultipartUpload>";
  return out;
}

Result<std::string> ParseCompleteOrCopyResult(std::string_view body, const RequestContext& c) {
  pugi::xml_document doc;
  if (!Load(&doc, body)) {
    return StorageError(Code::kUnavailable, Reason::kBadResponse,
                        c.what + ": S3 returned an unreadable answer", 200);
  }
  if (doc.child("Error")) {
    ErrorBody e = ParseError(body);
    bool transient = e.code == "InternalError" || e.code == "SlowDown" ||
                     e.code == "ServiceUnavailable" || e.code.empty();
    return MapError(transient ? 500 : 400, body, c).WithHttpStatus(200);
  }
  for (const char* name : {"CompleteMultipartUploadResult", "CopyObjectResult", "CopyPartResult"}) {
    pugi::xml_node root = doc.child(name);
    if (root) return std::string(root.child_value("ETag"));
  }
  return StorageError(Code::kInternal, Reason::kBadResponse,
                      c.what + ": S3 returned an unexpected answer", 200);
}

std::string DeleteObjectsBody(const std::vector<std::string>& keys) {
  std::string out = "<Delete><Quiet>true</Quiet>";
  for (const std::string& key : keys) out += "<Object><Key>" + XmlEscape(key) + "</Key></Object>";
  out += "</Delete>";
  return out;
}

Result<std::vector<std::string>> ParseDeleteObjectsErrors(std::string_view body) {
  pugi::xml_document doc;
  if (!Load(&doc, body)) return BadAnswer("S3 returned an unreadable DeleteObjects answer");
  pugi::xml_node root = doc.child("DeleteResult");
  if (!root) return BadAnswer("S3 returned a DeleteObjects answer without DeleteResult");
  std::vector<std::string> failed;
  for (pugi::xml_node e = root.child("Error"); e; e = e.next_sibling("Error")) {
    failed.push_back(std::string(e.child_value("Key")) + ": " + e.child_value("Code") + " " +
                     Redact(e.child_value("Message")));
  }
  return failed;
}

Result<TimePoint> ParseHttpDate(std::string_view text) {
  std::tm tm{};
  std::string s(text);
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return InvalidArgument("not an HTTP date: \"" + s + "\"");
  // strptime takes years up to 9999, and a TimePoint holds kMinYear..kMaxYear (common/time.h);
  // the instant is checked, so that a leap second does not carry it past the last year either.
  const int64_t t = static_cast<int64_t>(timegm(&tm));
  if (t < DaysFromCivil(kMinYear, 1, 1) * 86400 || t >= DaysFromCivil(kMaxYear + 1, 1, 1) * 86400) {
    return InvalidArgument("HTTP date out of range (years " + std::to_string(kMinYear) + " to " +
                           std::to_string(kMaxYear) + "): \"" + s + "\"");
  }
  return std::chrono::system_clock::from_time_t(static_cast<std::time_t>(t));
}

std::string UrlDecode(std::string_view text) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out.push_back(' ');
    } else if (text[i] == '%' && i + 2 < text.size() && hex(text[i + 1]) >= 0 &&
               hex(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2])));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

}  // namespace bao::storage::s3
