// Azure Blob Storage authentication: SharedKey request signing, connection strings, and the
// ambient identities (AKS workload identity, instance metadata service) that hand out bearer
// tokens. Used by the Azure store (azure_store.h); exposed for tests.
//
// Every key, SAS token and bearer token read or fetched here is passed to RegisterSecret()
// before anything else happens with it, and no message produced here contains one.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/context.h"
#include "common/status.h"
#include "common/time.h"
#include "storage/target.h"
#include "storage/token_cache.h"

namespace bao::storage::azure {

// The service version every request states (x-ms-version).
constexpr const char* kApiVersion = "2021-08-06";
// The emulator's published development account and key.
constexpr const char* kDevAccountName = "devstoreaccount1";
constexpr const char* kDevAccountKey =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

using Headers = std::vector<std::pair<std::string, std::string>>;

// The SharedKey string-to-sign (service version 2015-02-21 and later) for a request: the verb,
// the standard headers in the documented order (Content-Length empty when 0), the
// canonicalized x-ms-* headers (lower-case names, sorted, values with runs of white space
// folded), and the canonicalized resource "/<account><encoded path>" followed by one
// "\n<lower-case name>:<decoded values, sorted, comma-joined>" per query parameter, sorted.
// `url` is the full request URL as sent (scheme://host[:port]/path?query).
std::string SharedKeyStringToSign(std::string_view account, std::string_view method,
                                  std::string_view url, const Headers& headers);

// "SharedKey <account>:<base64 HMAC-SHA256 of the string-to-sign>". `key` is the decoded
// (binary) account key.
std::string SharedKeyAuthorization(std::string_view account, std::string_view key,
                                   std::string_view method, std::string_view url,
                                   const Headers& headers);

// Decodes %XX escapes (and '+' as space, as the service does for query values).
std::string UrlDecode(std::string_view text);

// RFC 1123 date as used in x-ms-date: "Wed, 15 Jan 2025 03:00:00 GMT"; and its parser
// (kInvalidArgument naming the text on anything else).
std::string FormatRfc1123(TimePoint t);
Result<TimePoint> ParseRfc1123(std::string_view text);

// The parts of an Azure Storage connection string we understand. Keys are matched without
// regard to case; unknown keys (QueueEndpoint, ...) are ignored.
struct ConnectionString {
  std::string account_name;
  std::string account_key;           // base64 text as given
  std::string blob_endpoint;         // BlobEndpoint, without trailing '/'
  std::string protocol;              // DefaultEndpointsProtocol
  std::string endpoint_suffix;       // EndpointSuffix
  std::string sas;                   // SharedAccessSignature, without a leading '?'
  bool development_storage = false;  // UseDevelopmentStorage=true

  // The blob endpoint this string implies: BlobEndpoint, else
  // <protocol>://<account>.blob.<suffix> (https, core.windows.net by default), else for
  // development storage http://127.0.0.1:10000/devstoreaccount1.
  std::string BlobEndpoint() const;
};

// Parses "Key=Value;Key=Value". Values may contain '=' (base64, SAS). kInvalidArgument naming
// the problem (never the value) for a malformed entry, or when neither an account key, a SAS
// nor UseDevelopmentStorage is present. Registers AccountKey and SharedAccessSignature as
// secrets.
Result<ConnectionString> ParseConnectionString(std::string_view text);

// A source of OAuth bearer tokens for https://storage.azure.com, cached by the shared
// TokenCache (token_cache.h: reused until 5 minutes before expiry, or half the lifetime for
// short-lived tokens; concurrent callers share one fetch). Thread-safe.
class TokenSource {
 public:
  TokenSource();
  virtual ~TokenSource() = default;
  TokenSource(const TokenSource&) = delete;
  TokenSource& operator=(const TokenSource&) = delete;
  // A valid access token, fetching a new one when needed. Errors: kUnauthenticated when the
  // identity provider refuses; kUnavailable when it cannot be reached or answers 408/429/5xx;
  // kInternal (Reason::kBadResponse) for an unreadable answer; kAborted / kDeadlineExceeded
  // from `ctx`.
  Result<std::string> Token(const Context& ctx);
  // Forgets the cached token (after the service refused it), so the next Token() fetches.
  void Invalidate();
  // How tokens are obtained, for messages ("AKS workload identity (client ...)").
  virtual std::string Describe() const = 0;
  // Number of successful fetches so far (tests check the cache with it).
  int fetches() const;

 protected:
  virtual Result<AccessToken> Fetch(const Context& ctx) = 0;

 private:
  TokenCache cache_;
};

// AKS workload identity: client-credentials grant at
// <authority_host>/<tenant>/oauth2/v2.0/token with the projected federated token (re-read on
// every fetch, it rotates) as client_assertion and scope https://storage.azure.com/.default.
std::unique_ptr<TokenSource> NewWorkloadIdentityTokenSource(std::string token_file,
                                                            std::string client_id,
                                                            std::string tenant_id,
                                                            std::string authority_host);

// Managed identity via the instance metadata service at `endpoint` (e.g.
// http://169.254.169.254): GET /metadata/identity/oauth2/token with "Metadata: true",
// api-version 2018-02-01, resource https://storage.azure.com/, and client_id when non-empty
// (user-assigned identity).
std::unique_ptr<TokenSource> NewImdsTokenSource(std::string endpoint, std::string client_id);

// How requests to the account are authorised.
struct Credentials {
  enum class Kind { kSharedKey, kSas, kBearer };
  Kind kind = Kind::kSharedKey;
  std::string account;
  std::string key;                      // kSharedKey: decoded account key bytes
  std::string sas;                      // kSas: query string without '?'
  std::shared_ptr<TokenSource> tokens;  // kBearer
  std::string endpoint;  // blob endpoint without trailing '/', e.g. http://127.0.0.1:10000/acct
  std::string source;    // where the credentials came from, for messages
};

// Resolves the target's credentials and endpoint:
//  - credentials_dir/accountKey: SharedKey for azure.storageAccount;
//  - credentials_dir/connectionString: its key, SAS or development storage (its AccountName
//    must match azure.storageAccount when both are given);
//  - no credentials_dir: AKS workload identity when AZURE_FEDERATED_TOKEN_FILE,
//    AZURE_CLIENT_ID and AZURE_TENANT_ID are set (AZURE_AUTHORITY_HOST, default
//    https://login.microsoftonline.com/), otherwise managed identity through IMDS at
//    AZURE_POD_IDENTITY_AUTHORITY_HOST (default http://169.254.169.254).
// The endpoint is target.endpoint when set, else the connection string's, else
// https://<account>.blob.core.windows.net. kInvalidArgument / kNotFound naming the file or
// variable that is missing or malformed. No network access.
Result<Credentials> ResolveCredentials(const TargetConfig& target);

}  // namespace bao::storage::azure
