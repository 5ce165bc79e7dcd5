#include "storage/google_auth.h"

#include <nlohmann/json.hpp>

#include "common/numbers.h"
#include "common/redact.h"
#include "crypto/crypto.h"

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

class ServiceAccountTokenSource : public CachingTokenSource {
 public:
  ServiceAccountTokenSource(ServiceAccountKey key, http::TlsOptions tls)
      : key_(std::move(key)), tls_(std::move(tls)) {}

  std::string Describe() const override { return "service account " + key_.client_email; }

 protected:
  Result<Token> Fetch() override {
    BAO_ASSIGN_OR_RETURN(std::string assertion,
                         BuildJwtAssertion(key_, kGcsScope, SystemClock().Now()));
    RegisterSecret(assertion);
    http::Request req;
    req.method = "POST";
    req.url = key_.token_uri;
    req.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
    req.body = "grant_type=" + http::UrlEncode("urn:ietf:params:oauth:grant-type:jwt-bearer") +
               "&assertion=" + http::UrlEncode(assertion);
    req.timeout = std::chrono::seconds(30);
    req.tls = tls_;
    const std::string who = "token endpoint " + UrlForDisplay(key_.token_uri);
    http::Client client;
    BAO_ASSIGN_OR_RETURN(http::Response resp, client.Do(req));
    if (!resp.ok()) {
      std::string reason = http::ErrorSummary(resp);
      std::string msg = who + " refused the token exchange for service account " +
                        key_.client_email + " (HTTP " + std::to_string(resp.status) +
                        "): " + reason;
      if (resp.status >= 500 || resp.status == 429) return Unavailable(msg);
      return Unauthenticated(msg);
    }
    Token t;
    BAO_ASSIGN_OR_RETURN(t.access_token, ParseAccessToken(resp.body, who, &t.expires_in));
    return t;
  }

 private:
  ServiceAccountKey key_;
  http::TlsOptions tls_;
};

class MetadataTokenSource : public CachingTokenSource {
 public:
  explicit MetadataTokenSource(std::string host) : host_(std::move(host)) {
    if (host_.empty()) host_ = "metadata.google.internal";
  }

  std::string Describe() const override { return "metadata server " + host_; }

 protected:
  Result<Token> Fetch() override {
    http::Request req;
    req.url = "http://" + host_ + "/computeMetadata/v1/instance/service-accounts/default/token";
    req.headers = {{"Metadata-Flavor", "Google"}};
    req.connect_timeout = std::chrono::seconds(5);
    req.timeout = std::chrono::seconds(30);
    const std::string who = "metadata server " + host_;
    http::Client client;
    auto resp = client.Do(req);
    if (!resp.ok()) {
      return resp.status().WithContext(
          "no GCS credentials: no credentials.json in the credentials directory, "
          "GOOGLE_APPLICATION_CREDENTIALS is not set, and the " +
          who + " is not reachable");
    }
    if (!resp->ok()) {
      std::string msg = who + " did not issue a token (HTTP " + std::to_string(resp->status) +
                        "): " + http::ErrorSummary(*resp);
      if (resp->status >= 500 || resp->status == 429) return Unavailable(msg);
      return Unauthenticated(msg);
    }
    Token t;
    BAO_ASSIGN_OR_RETURN(t.access_token, ParseAccessToken(resp->body, who, &t.expires_in));
    return t;
  }

 private:
  std::string host_;
};

class NoAuthTokenSource : public TokenSource {
 public:
  Result<std::string> AuthorizationHeader() override { return std::string(); }
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

Result<std::string> ParseAccessToken(std::string_view body, const std::string& who,
                                     std::chrono::seconds* expires_in) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("access_token") ||
      !j["access_token"].is_string() || j["access_token"].get<std::string>().empty()) {
    return Internal(who + " answered without an access_token");
  }
  std::string token = j["access_token"].get<std::string>();
  RegisterSecret(token);
  *expires_in = std::chrono::seconds(3600);
  if (j.contains("expires_in")) {
    if (j["expires_in"].is_number_integer()) {
      *expires_in = std::chrono::seconds(j["expires_in"].get<int64_t>());
    } else if (j["expires_in"].is_string()) {
      std::optional<int64_t> n =
          ParseInteger<int64_t>(j["expires_in"].get<std::string>(), 0, 10LL * 365 * 86400);
      if (!n) return Internal("the token endpoint answered an expires_in that is not a number");
      *expires_in = std::chrono::seconds(*n);
    }
  }
  return token;
}

Result<std::string> CachingTokenSource::AuthorizationHeader() {
  std::lock_guard<std::mutex> lock(mu_);
  auto now = std::chrono::steady_clock::now();
  if (!header_.empty() && now < expiry_) return header_;
  BAO_ASSIGN_OR_RETURN(Token t, Fetch());
  header_ = "Bearer " + t.access_token;
  // A token that lives shorter than the margin is used for half its life.
  std::chrono::seconds usable =
      t.expires_in > 2 * refresh_margin_ ? t.expires_in - refresh_margin_ : t.expires_in / 2;
  expiry_ = now + usable;
  return header_;
}

void CachingTokenSource::Invalidate() {
  std::lock_guard<std::mutex> lock(mu_);
  header_.clear();
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
