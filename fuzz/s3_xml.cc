// The S3 REST API's XML bodies (storage/s3_xml.h), STS AssumeRoleWithWebIdentity answers
// (storage/aws_credentials.h) and checksum side objects (storage/store.h). Input: one byte
// choosing the HTTP status for MapError (300 + the byte) and for STS (200 below 128, else
// 300 + the byte), then a body given to every parser; the body split at NUL bytes is also the
// list of keys for the request bodies.
//
// Properties: nothing crashes or throws; a listing's sizes are the decimal numbers the body
// gives; a truncated listing has a continuation token, a truncated upload listing a marker,
// and every listed upload an id; error answers map to errors; STS credentials come complete
// and only with a 2xx status; an accepted HTTP date prints (RFC 1123) to a date that parses
// back to it; UrlDecode undoes UrlEncode; DeleteObjects and CompleteMultipartUpload bodies
// carry the keys and ETags given; a checksum read from a side object is 64 lower-case hex
// digits, and one written is read back.
#include "storage/s3_xml.h"

#include <cstdint>
#include <pugixml.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "check.h"
#include "common/numbers.h"
#include "crypto/crypto.h"
#include "http/client.h"
#include "storage/aws_credentials.h"
#include "storage/azure_auth.h"
#include "storage/store.h"

namespace s3 = bao::storage::s3;

namespace {

std::vector<std::string> Split(std::string_view text, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t end = text.find(sep, start);
    out.emplace_back(text.substr(start, end == std::string_view::npos ? text.npos : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return out;
}

// How a conforming XML parser (S3's) reads a body: with white-space-only text kept, and line
// ends normalized.
constexpr unsigned kXml = pugi::parse_default | pugi::parse_ws_pcdata;

// XML 1.0 cannot carry these characters at all, escaped or not.
bool XmlCanCarry(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const long status = 300 + data[0];  // 300 .. 555
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  s3::RequestContext ctx{"PUT object \"a/b.snap\"", "bucket", "https://s3.example:9000/?x=1"};

  s3::ErrorBody e = s3::ParseError(body);
  (void)e;
  FUZZ_CHECK(!s3::MapError(status, body, ctx).ok());

  bao::Result<s3::ListPage> page = s3::ParseListObjectsV2(body);
  if (page.ok()) {
    FUZZ_CHECK(!page->truncated || !page->next_continuation_token.empty());
    pugi::xml_document doc;
    FUZZ_CHECK(doc.load_buffer(body.data(), body.size()));
    size_t i = 0;
    for (pugi::xml_node c = doc.child("ListBucketResult").child("Contents"); c;
         c = c.next_sibling("Contents"), ++i) {
      FUZZ_CHECK(i < page->objects.size());
      std::optional<uint64_t> want =
          bao::ParseInteger<uint64_t>(c.child_value("Size"), 0, UINT64_MAX);
      FUZZ_CHECK(want.has_value() && *want == page->objects[i].size);
    }
    FUZZ_CHECK(i == page->objects.size());
  }
  bao::Result<s3::UploadsPage> uploads = s3::ParseListMultipartUploads(body);
  if (uploads.ok()) {
    FUZZ_CHECK(!uploads->truncated || !uploads->next_key_marker.empty() ||
               !uploads->next_upload_id_marker.empty());
    for (const s3::MultipartUpload& u : uploads->uploads) FUZZ_CHECK(!u.upload_id.empty());
  } else {
    FUZZ_CHECK(uploads.status().code() == bao::Code::kInternal);
  }

  const long sts_status = data[0] < 128 ? 200 : status;
  bao::Result<bao::storage::AwsCredentials> sts =
      bao::storage::ParseAssumeRoleWithWebIdentity(sts_status, body, "arn:aws:iam::1:role/r");
  if (sts.ok()) {
    FUZZ_CHECK(sts_status == 200);
    FUZZ_CHECK(!sts->access_key_id.empty() && !sts->secret_access_key.empty() &&
               !sts->session_token.empty());
  } else if (sts_status == 200) {
    FUZZ_CHECK(sts.status().code() == bao::Code::kInternal);
  } else {
    FUZZ_CHECK(sts.status().code() == bao::Code::kUnauthenticated ||
               sts.status().code() == bao::Code::kUnavailable);
  }

  std::string sum = bao::storage::ParseChecksumFile(body);
  FUZZ_CHECK(sum.empty() || bao::crypto::IsLowerHex(sum, 64));
  const std::string sha = bao::crypto::Sha256Hex(body);
  FUZZ_CHECK(bao::storage::ParseChecksumFile(
                 bao::storage::ChecksumFileContent(std::string(body), sha)) == sha);

  (void)s3::ParseInitiateMultipartUpload(body);
  bao::Result<std::string> completed = s3::ParseCompleteOrCopyResult(body, ctx);
  if (e.found) FUZZ_CHECK(!completed.ok());
  (void)s3::ParseDeleteObjectsErrors(body);

  bao::Result<bao::TimePoint> date = s3::ParseHttpDate(body);
  if (date.ok()) {
    bao::Result<bao::TimePoint> back = s3::ParseHttpDate(bao::storage::azure::FormatRfc1123(*date));
    FUZZ_CHECK(back.ok() && *back == *date);
  }
  FUZZ_CHECK(s3::UrlDecode(bao::http::UrlEncode(body)) == body);
  (void)s3::UrlDecode(body);

  // The request bodies carry exactly the keys (ETags, checksums) given.
  std::vector<std::string> keys = Split(body, '\0');
  if (keys.size() > 1000) return 0;
  bool representable = true;
  for (const std::string& k : keys) representable = representable && XmlCanCarry(k);
  if (!representable) return 0;
  pugi::xml_document del;
  std::string del_body = s3::DeleteObjectsBody(keys);
  FUZZ_CHECK(del.load_buffer(del_body.data(), del_body.size(), kXml));
  size_t n = 0;
  for (pugi::xml_node o : del.child("Delete").children("Object")) {
    FUZZ_CHECK(n < keys.size() && o.child_value("Key") == keys[n]);
    ++n;
  }
  FUZZ_CHECK(n == keys.size());
  pugi::xml_document complete;
  std::string complete_body = s3::CompleteMultipartUploadBody(keys, keys);
  FUZZ_CHECK(complete.load_buffer(complete_body.data(), complete_body.size(), kXml));
  n = 0;
  for (pugi::xml_node p : complete.child("CompleteMultipartUpload").children("Part")) {
    FUZZ_CHECK(n < keys.size() && p.child_value("ETag") == keys[n] &&
               p.child_value("ChecksumCRC32C") == keys[n] &&
               p.child("PartNumber").text().as_ullong() == n + 1);
    ++n;
  }
  FUZZ_CHECK(n == keys.size());
  return 0;
}
