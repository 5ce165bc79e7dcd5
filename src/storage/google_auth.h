// OAuth2 access tokens for Google Cloud Storage: a service-account key (an RS256 JWT assertion
// exchanged at the key's token_uri, RFC 7523), the GCE/GKE metadata server (Workload
// Identity), or no authentication at all for emulators.
//
// Tokens are registered with RegisterSecret() the moment they are received, and the private
// key the moment it is parsed; neither ever appears in a message.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "common/context.h"
#include "common/status.h"
#include "common/time.h"
#include "http/client.h"

namespace bao::storage {

// The OAuth2 scope asked for: read and write objects.
inline constexpr std::string_view kGcsScope =
    "https://www.googleapis.com/auth/devstorage.read_write";

// The fields of a service-account key file that the token exchange needs.
struct ServiceAccountKey {
  std::string client_email;
  std::string private_key;  // PEM
  std::string private_key_id;
  std::string token_uri;  // defaults to https://oauth2.googleapis.com/token
  std::string project_id;
};

// Parses a service-account key file's JSON. `source` names the file in messages. Errors are
// kInvalidArgument saying which field is missing or wrong (never the key material).
Result<ServiceAccountKey> ParseServiceAccountKey(std::string_view json_text,
                                                 const std::string& source);

// Builds the signed JWT assertion: header {"alg":"RS256","typ":"JWT","kid":private_key_id},
// claims {iss: client_email, scope, aud: token_uri, iat: now, exp: now + 1h}.
// kInvalidArgument when the private key cannot be used.
Result<std::string> BuildJwtAssertion(const ServiceAccountKey& key, std::string_view scope,
                                      TimePoint now);

// Supplies the value for the Authorization header. Thread-safe.
class TokenSource {
 public:
  virtual ~TokenSource() = default;
  // "Bearer <token>" (cached as token_cache.h describes), or "" when requests go
  // unauthenticated (emulators). Errors: kUnauthenticated when the token server refuses (its
  // reason included); kUnavailable when it cannot be reached or answers 408/429/5xx;
  // kInternal (Reason::kBadResponse) for an unreadable answer; kAborted / kDeadlineExceeded
  // from `ctx`. Blocks for at most one token request (with its stall timeout) per call.
  virtual Result<std::string> AuthorizationHeader(const Context& ctx) = 0;
  // Forgets a cached token (after a 401) so that the next call fetches a fresh one.
  virtual void Invalidate() = 0;
  // "service account x@y", "metadata server", "no authentication (emulator)".
  virtual std::string Describe() const = 0;
};

// Exchanges a JWT assertion at key.token_uri.
std::unique_ptr<TokenSource> NewServiceAccountTokenSource(ServiceAccountKey key,
                                                          http::TlsOptions tls = {});

// Asks the metadata server at `host` ("metadata.google.internal" when empty, or host:port)
// with the header Metadata-Flavor: Google.
std::unique_ptr<TokenSource> NewMetadataTokenSource(std::string host);

// Sends no Authorization header.
std::unique_ptr<TokenSource> NewNoAuthTokenSource();

}  // namespace bao::storage
