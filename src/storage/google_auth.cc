#include "storage/google_auth.h"

#include <nlohmann/json.hpp>

#include "common/redact.h"
#include "crypto/crypto.h"
#include "storage/token_cache.h"

namespace bao::storage {
namespace {

using nlohmann::json;

constexpr char kDefaultTokenUri[] = "https://oauth2.googleapis.com/token";

Status RequireString(const json& j, const char* field, const std::string& source,
                     std::string* out) {
  if (!j.contains(field) || !j[field].is_string() || j[field].get<std::string>().empty()) {
    return InvalidArgument(source + ": the service-account key has no \"" + field + "\" field");
  }
  *out = j[field].get<std::string>();
  return Status::Ok();
}

// A TokenSource whose tokens come from Fetch() through the shared TokenCache.
class CachedTokenSource : public TokenSource {
 public:
  CachedTokenSource() : cache_([this](const Context& ctx) { return Fetch(ctx); }) {}

  Result<std::string> AuthorizationHeader(const Context& ctx) override {
    BAO_ASSIGN_OR_RETURN(std::string token, cache_.Get(ctx));
    return "Bearer " + token;
  }
  void Invalidate() override { cache_.Invalidate(); }

 protected:
  virtual Result<AccessToken> Fetch(const Context& ctx) = 0;

 private:
  TokenCache cache_;
};

class ServiceAccountTokenSource : public CachedTokenSource {
 public:
  ServiceAccountTokenSource(ServiceAccountKey key, http::TlsOptions tls)
      : key_(std::move(key)), tls_(std::move(tls)) {}

  std::string Describe() const override { return "service account " + key_.client_email; }

 protected:
  Result<AccessToken> Fetch(const Context& ctx) override {
    BAO_ASSIGN_OR_RETURN(std::string assertion,
                         BuildJwtAssertion(key_, kGcsScope, SystemClock().Now()));
    RegisterSecret(assertion);
    http::Request req = TokenRequest(ctx);
    req.method = "POST";
    req.url = key_.token_uri;
    req.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
    req.body = "grant_type=" + http::UrlEncode("urn:ietf:params:oauth:grant-type:jwt-bearer") +
               "&assertion=" + http::UrlEncode(assertion);
    req.tls = tls_;
    const std::string who = "token endpoint " + UrlForDisplay(key_.token_uri);
    http::Client client;
    Result<http::Response> resp = client.Do(req);
    if (!resp.ok()) return resp.status().WithContext("cannot reach the GCS " + who);
    if (!resp->ok()) {
      return TokenEndpointError(
          *resp, who + " refused the token exchange for service account " + key_.client_email);
    }
    return ParseAccessTokenResponse(resp->body, who);
  }

 private:
  ServiceAccountKey key_;
  http::TlsOptions tls_;
};

class MetadataTokenSource : public CachedTokenSource {
 public:
  explicit MetadataTokenSource(std::string host) : host_(std::move(host)) {
    if (host_.empty()) host_ = "metadata.google.internal";
  }

  std::string Describe() const override { return "metadata server " + host_; }

 protected:
  Result<AccessToken> Fetch(const Context& ctx) override {
    http::Request req = TokenRequest(ctx);
    req.url = "http://" + host_ + "/computeMetadata/v1/instance/service-accounts/default/token";
    req.headers = {{"Metadata-Flavor", "Google"}};
    req.connect_timeout = std::chrono::seconds(5);
    const std::string who = "metadata server " + host_;
    http::Client client;
    auto resp = client.Do(req);
    if (!resp.ok()) {
      return resp.status().WithContext(
          "no GCS credentials: no credentials.json in the credentials directory, "
          "GOOGLE_APPLICATION_CREDENTIALS is not set, and the " +
          who + " is not reachable");
    }
    if (!resp->ok()) return TokenEndpointError(*resp, who + " did not issue a token");
    return ParseAccessTokenResponse(resp->body, who);
  }

 private:
  std::string host_;
};

class NoAuthTokenSource : public TokenSource {
 public:
  Result<std::string> AuthorizationHeader(const Context&) override { return std::string(); }
  void Invalidate() override {}
  std::string Describe() const override { return "no authentication (emulator)"; }
};

}  // namespace

Result<ServiceAccountKey> ParseServiceAccountKey(std::string_view json_text,
                                                 const std::string& source) {
  json j = json::parse(json_text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgument(source + ": not a JSON object (expected a service-account key file)");
  }
  // Register the key material before anything can fail and mention it.
  if (j.contains("private_key") && j["private_key"].is_string()) {
    RegisterSecret(j["private_key"].get<std::string>());
  }
  if (j.contains("type") && j["type"].is_string() &&
      j["type"].get<std::string>() != "service_account") {
    return InvalidArgument(source + ": credentials of type \"" + j["type"].get<std::string>() +
                           "\" are not supported; use a service-account key "
                           "(\"type\": \"service_account\")");
  }
  ServiceAccountKey key;
  BAO_RETURN_IF_ERROR(RequireString(j, "client_email", source, &key.client_email));
  BAO_RETURN_IF_ERROR(RequireString(j, "private_key", source, &key.private_key));
  if (j.contains("private_key_id") && j["private_key_id"].is_string()) {
    key.private_key_id = j["private_key_id"].get<std::string>();
  }
  if (j.contains("project_id") && j["project_id"].is_string()) {
    key.project_id = j["project_id"].get<std::string>();
  }
  key.token_uri = kDefaultTokenUri;
  if (j.contains("token_uri")) {
    if (!j["token_uri"].is_string()) {
      return InvalidArgument(source + ": \"token_uri\" must be a string");
    }
    key.token_uri = j["token_uri"].get<std::string>();
  }
  // Fail now, not at the first request, when the key cannot sign.
  auto probe = crypto::RsaSha256Sign(key.private_key, "probe");
  if (!probe.ok()) {
    return InvalidArgument(source + ": \"private_key\" is not a usable PEM RSA private key");
  }
  return key;
}

Result<std::string> BuildJwtAssertion(const ServiceAccountKey& key, std::string_view scope,
                                      TimePoint now) {
  json header = {{"alg", "RS256"}, {"typ", "JWT"}};
  if (!key.private_key_id.empty()) header["kid"] = key.private_key_id;
  int64_t iat = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  json claims = {{"iss", key.client_email},
                 {"scope", std::string(scope)},
                 {"aud", key.token_uri},
                 {"iat", iat},
                 {"exp", iat + 3600}};
  std::string signing_input =
      crypto::Base64UrlEncode(header.dump()) + "." + crypto::Base64UrlEncode(claims.dump());
  auto sig = crypto::RsaSha256Sign(key.private_key, signing_input);
  if (!sig.ok()) {
    return InvalidArgument("cannot sign the token request for service account " + key.client_email +
                           ": the private key is not usable");
  }
  return signing_input + "." + crypto::Base64UrlEncode(*sig);
}

std::unique_ptr<TokenSource> NewServiceAccountTokenSource(ServiceAccountKey key,
                                                          http::TlsOptions tls) {
  return std::make_unique<ServiceAccountTokenSource>(std::move(key), std::move(tls));
}

std::unique_ptr<TokenSource> NewMetadataTokenSource(std::string host) {
  return std::make_unique<MetadataTokenSource>(std::move(host));
}

std::unique_ptr<TokenSource> NewNoAuthTokenSource() {
  return std::make_unique<NoAuthTokenSource>();
}

}  // namespace bao::storage
