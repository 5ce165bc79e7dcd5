#include "storage/sigv4.h"

#include <algorithm>
#include <cctype>
#include <ctime>

#include "crypto/crypto.h"
#include "http/client.h"

namespace bao::storage {
namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Trims and collapses runs of spaces, as the canonical header value requires.
std::string CanonicalValue(const std::string& value) {
  std::string out;
  bool space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

std::string HmacRaw(std::string_view key, std::string_view data) {
  auto mac = crypto::HmacSha256(key, data);
  return std::string(reinterpret_cast<const char*>(mac.data()), mac.size());
}

}  // namespace

std::string AmzDate(TimePoint t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string CanonicalQuery(const HeaderList& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query) {
    encoded.emplace_back(http::UrlEncode(name), http::UrlEncode(value));
  }
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out += '&';
    out += name + "=" + value;
  }
  return out;
}

std::string CanonicalRequest(const SigningInput& input, std::string* signed_headers) {
  // Headers with the same name are joined with ',' in the order given.
  std::vector<std::pair<std::string, std::string>> headers;
  for (const auto& [name, value] : input.headers) {
    std::string lname = Lower(name);
    std::string cvalue = CanonicalValue(value);
    auto it = std::find_if(headers.begin(), headers.end(),
                           [&](const auto& h) { return h.first == lname; });
    if (it != headers.end()) {
      it->second += "," + cvalue;
    } else {
      headers.emplace_back(lname, cvalue);
    }
  }
  std::sort(headers.begin(), headers.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string canonical_headers;
  signed_headers->clear();
  for (const auto& [name, value] : headers) {
    canonical_headers += name + ":" + value + "\n";
    if (!signed_headers->empty()) *signed_headers += ';';
    *signed_headers += name;
  }
  return input.method + "\n" + input.canonical_uri + "\n" + CanonicalQuery(input.query) + "\n" +
         canonical_headers + "\n" + *signed_headers + "\n" + input.payload_hash;
}

std::string StringToSign(const std::string& canonical_request, const std::string& amz_date,
                         const std::string& region, const std::string& service) {
  std::string scope = amz_date.substr(0, 8) + "/" + region + "/" + service + "/aws4_request";
  return "AWS4-HMAC-SHA256\n" + amz_date + "\n" + scope + "\n" +
         crypto::Sha256Hex(canonical_request);
}

Signature SignV4(const SigningInput& input, const AwsCredentials& credentials,
                 const std::string& amz_date, const std::string& region,
                 const std::string& service) {
  std::string signed_headers;
  std::string canonical = CanonicalRequest(input, &signed_headers);
  std::string to_sign = StringToSign(canonical, amz_date, region, service);
  std::string date = amz_date.substr(0, 8);
  std::string key = HmacRaw("AWS4" + credentials.secret_access_key, date);
  key = HmacRaw(key, region);
  key = HmacRaw(key, service);
  key = HmacRaw(key, "aws4_request");
  Signature out;
  out.signature = crypto::HexEncode(crypto::HmacSha256(key, to_sign));
  out.authorization =
      "AWS4-HMAC-SHA256 Credential=" + credentials.access_key_id + "/" + date + "/" + region + "/" +
      service + "/aws4_request, SignedHeaders=" + signed_headers + ", Signature=" + out.signature;
  return out;
}

void SignHeaders(const std::string& method, const std::string& host,
                 const std::string& canonical_uri, const HeaderList& query,
                 const std::string& payload_hash, const AwsCredentials& credentials,
                 const std::string& region, const std::string& service, TimePoint now,
                 HeaderList* headers) {
  std::string amz_date = AmzDate(now);
  headers->emplace_back("Host", host);
  headers->emplace_back("x-amz-date", amz_date);
  if (service == "s3") headers->emplace_back("x-amz-content-sha256", payload_hash);
  if (!credentials.session_token.empty()) {
    headers->emplace_back("x-amz-security-token", credentials.session_token);
  }
  SigningInput input{method, canonical_uri, query, *headers, payload_hash};
  headers->emplace_back("Authorization",
                        SignV4(input, credentials, amz_date, region, service).authorization);
}

}  // namespace bao::storage
