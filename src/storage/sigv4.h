// AWS Signature Version 4 for request headers (the Authorization header form), as used by S3
// and STS. Pure functions of their inputs: no clock, no I/O, thread-safe.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/time.h"

namespace bao::storage {

// A set of AWS credentials. `session_token` is set for temporary credentials (STS) and goes
// into the X-Amz-Security-Token header. `expiration` is the epoch for credentials that never
// expire.
struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;
  TimePoint expiration{};
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// What is signed. `canonical_uri` is the already URI-encoded absolute path ("/bucket/a%20b");
// `query` holds decoded name/value pairs (encoded and sorted while signing); `headers` are the
// headers to sign, which must include "host" and "x-amz-date" (names in any case, values as
// sent). `payload_hash` is the hex SHA-256 of the body or "UNSIGNED-PAYLOAD".
struct SigningInput {
  std::string method;
  std::string canonical_uri;
  HeaderList query;
  HeaderList headers;
  std::string payload_hash;
};

// "20150830T123600Z" for `t` (UTC).
std::string AmzDate(TimePoint t);

// The canonical query string: names and values RFC 3986 encoded, sorted by name then value.
std::string CanonicalQuery(const HeaderList& query);

// The canonical request and the semicolon-separated list of signed header names.
std::string CanonicalRequest(const SigningInput& input, std::string* signed_headers);

// The string to sign for `canonical_request` at `amz_date` in `region`/`service`.
std::string StringToSign(const std::string& canonical_request, const std::string& amz_date,
                         const std::string& region, const std::string& service);

// The hex signature and the full Authorization header value for `input` signed at `amz_date`.
struct Signature {
  std::string signature;
  std::string authorization;
};
Signature SignV4(const SigningInput& input, const AwsCredentials& credentials,
                 const std::string& amz_date, const std::string& region,
                 const std::string& service);

// Adds "x-amz-date", "x-amz-content-sha256" (S3 only), "x-amz-security-token" (when the
// credentials carry one) to `headers`, signs them together with the headers already present,
// and appends "Authorization". `host` is the Host header value the request will carry (it is
// added to `headers` as well, so the transport sends exactly what was signed).
void SignHeaders(const std::string& method, const std::string& host,
                 const std::string& canonical_uri, const HeaderList& query,
                 const std::string& payload_hash, const AwsCredentials& credentials,
                 const std::string& region, const std::string& service, TimePoint now,
                 HeaderList* headers);

}  // namespace bao::storage
