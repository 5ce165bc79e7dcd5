#include "storage/azure_auth.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>

#include "common/files.h"
#include "common/numbers.h"
#include "common/redact.h"
#include "crypto/crypto.h"
#include "http/client.h"
#include "storage/errors.h"

namespace bao::storage::azure {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Folds runs of white space into one space and trims both ends.
std::string FoldWhitespace(std::string_view value) {
  std::string out;
  bool pending_space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

std::string HeaderValue(const Headers& headers, std::string_view name) {
  std::string want = Lower(name);
  for (const auto& [n, v] : headers) {
    if (Lower(n) == want) return v;
  }
  return "";
}

std::string Getenv(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

std::string StripTrailingSlashes(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

}  // namespace

std::string UrlDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%' && i + 2 < text.size() &&
               std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      out.push_back(static_cast<char>(*ParseInteger<int>(text.substr(i + 1, 2), 0, 255, 16)));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string SharedKeyStringToSign(std::string_view account, std::string_view method,
                                  std::string_view url, const Headers& headers) {
  std::string out(method);
  out += "\n";
  for (const char* name :
       {"Content-Encoding", "Content-Language", "Content-Length", "Content-MD5", "Content-Type",
        "Date", "If-Modified-Since", "If-Match", "If-None-Match", "If-Unmodified-Since", "Range"}) {
    std::string value = HeaderValue(headers, name);
    if (std::string_view(name) == "Content-Length" && value == "0") value.clear();
    out += value + "\n";
  }
  std::map<std::string, std::string> ms;
  for (const auto& [name, value] : headers) {
    std::string lower = Lower(name);
    if (lower.starts_with("x-ms-")) ms[lower] = FoldWhitespace(value);
  }
  for (const auto& [name, value] : ms) out += name + ":" + value + "\n";

  // Canonicalized resource.
  std::string_view rest = url;
  size_t scheme = rest.find("://");
  if (scheme != std::string_view::npos) rest.remove_prefix(scheme + 3);
  size_t slash = rest.find_first_of("/?");
  rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  size_t q = rest.find('?');
  std::string_view path = rest.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view() : rest.substr(q + 1);
  out += "/";
  out += account;
  out += path.empty() ? std::string_view("/") : path;
  std::map<std::string, std::vector<std::string>> params;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    std::string name = Lower(UrlDecode(item.substr(0, eq)));
    std::string value = eq == std::string_view::npos ? "" : UrlDecode(item.substr(eq + 1));
    params[name].push_back(value);
  }
  for (auto& [name, values] : params) {
    std::sort(values.begin(), values.end());
    out += "\n" + name + ":";
    for (size_t i = 0; i < values.size(); ++i) out += (i ? "," : "") + values[i];
  }
  return out;
}

std::string SharedKeyAuthorization(std::string_view account, std::string_view key,
                                   std::string_view method, std::string_view url,
                                   const Headers& headers) {
  auto mac = crypto::HmacSha256(key, SharedKeyStringToSign(account, method, url, headers));
  return "SharedKey " + std::string(account) + ":" +
         crypto::Base64Encode(std::string_view(reinterpret_cast<const char*>(mac.data()), 32));
}

std::string FormatRfc1123(TimePoint t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

Result<TimePoint> ParseRfc1123(std::string_view text) {
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::string s(text);
  char wday[4] = {0}, mon[4] = {0}, zone[4] = {0};
  int day = 0, year = 0, hh = 0, mm = 0, ss = 0;
  if (std::sscanf(s.c_str(), "%3s, %d %3s %d %d:%d:%d %3s", wday, &day, mon, &year, &hh, &mm, &ss,
                  zone) != 8 ||
      std::string(zone) != "GMT") {
    return InvalidArgument("\"" + s + "\" is not an RFC 1123 date");
  }
  int month = -1;
  for (int i = 0; i < 12; ++i) {
    if (std::string(mon) == kMonths[i]) month = i + 1;
  }
  if (month < 0 || day < 1 || day > 31 || hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 ||
      ss > 60) {
    return InvalidArgument("\"" + s + "\" is not an RFC 1123 date");
  }
  // A TimePoint holds kMinYear..kMaxYear (common/time.h); a leap second must not carry the
  // instant past the last year either, or FormatRfc1123 would print a date that does not parse.
  int64_t secs = 0;
  if (year >= kMinYear && year <= kMaxYear) {
    int64_t days = DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
    secs = days * 86400 + hh * 3600 + mm * 60 + ss;
  }
  if (year < kMinYear || year > kMaxYear || secs >= DaysFromCivil(kMaxYear + 1, 1, 1) * 86400) {
    return InvalidArgument("\"" + s + "\" is outside the supported range (years " +
                           std::to_string(kMinYear) + " to " + std::to_string(kMaxYear) + ")");
  }
  return TimePoint(std::chrono::seconds(secs));
}

std::string ConnectionString::BlobEndpoint() const {
  if (!blob_endpoint.empty()) return blob_endpoint;
  if (development_storage && account_name == kDevAccountName) {
    return std::string("http://127.0.0.1:10000/") + kDevAccountName;
  }
  std::string proto = protocol.empty() ? "https" : Lower(protocol);
  std::string suffix = endpoint_suffix.empty() ? "core.windows.net" : endpoint_suffix;
  return proto + "://" + account_name + ".blob." + suffix;
}

Result<ConnectionString> ParseConnectionString(std::string_view text) {
  ConnectionString cs;
  size_t index = 0;
  while (!text.empty()) {
    size_t semi = text.find(';');
    std::string item = Trim(text.substr(0, semi));
    text = semi == std::string_view::npos ? std::string_view() : text.substr(semi + 1);
    ++index;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgument("connection string entry " + std::to_string(index) +
                             " is not of the form Key=Value");
    }
    std::string key = Lower(Trim(item.substr(0, eq)));
    std::string value = Trim(item.substr(eq + 1));
    if (key == "accountname") {
      cs.account_name = value;
    } else if (key == "accountkey") {
      RegisterSecret(value);
      cs.account_key = value;
    } else if (key == "blobendpoint") {
      cs.blob_endpoint = StripTrailingSlashes(value);
    } else if (key == "defaultendpointsprotocol") {
      cs.protocol = value;
    } else if (key == "endpointsuffix") {
      cs.endpoint_suffix = value;
    } else if (key == "sharedaccesssignature") {
      if (!value.empty() && value.front() == '?') value.erase(0, 1);
      RegisterSecret(value);
      cs.sas = value;
    } else if (key == "usedevelopmentstorage") {
      cs.development_storage = Lower(value) == "true";
    }
  }
  if (cs.development_storage) {
    if (cs.account_name.empty()) cs.account_name = kDevAccountName;
    if (cs.account_key.empty() && cs.sas.empty() && cs.account_name == kDevAccountName) {
      cs.account_key = kDevAccountKey;
    }
  }
  if (cs.protocol.size() && Lower(cs.protocol) != "http" && Lower(cs.protocol) != "https") {
    return InvalidArgument(
        "connection string DefaultEndpointsProtocol must be http or https, not \"" + cs.protocol +
        "\"");
  }
  if (cs.account_key.empty() && cs.sas.empty()) {
    return InvalidArgument(
        "connection string has neither AccountKey nor SharedAccessSignature (nor "
        "UseDevelopmentStorage=true)");
  }
  if (cs.account_name.empty() && cs.blob_endpoint.empty()) {
    return InvalidArgument("connection string names neither AccountName nor BlobEndpoint");
  }
  return cs;
}

// ---- Token sources --------------------------------------------------------------------------

TokenSource::TokenSource() : cache_([this](const Context& ctx) { return Fetch(ctx); }) {}

Result<std::string> TokenSource::Token(const Context& ctx) {
  return cache_.Get(ctx);
}

void TokenSource::Invalidate() {
  cache_.Invalidate();
}

int TokenSource::fetches() const {
  return cache_.fetches();
}

namespace {

constexpr const char* kStorageScope = "https://storage.azure.com/.default";
constexpr const char* kStorageResource = "https://storage.azure.com/";

class WorkloadIdentityTokenSource final : public TokenSource {
 public:
  WorkloadIdentityTokenSource(std::string token_file, std::string client_id, std::string tenant_id,
                              std::string authority_host)
      : token_file_(std::move(token_file)),
        client_id_(std::move(client_id)),
        tenant_id_(std::move(tenant_id)),
        authority_host_(StripTrailingSlashes(std::move(authority_host))) {}

  std::string Describe() const override {
    return "AKS workload identity (client " + client_id_ + ", tenant " + tenant_id_ + ")";
  }

 protected:
  Result<AccessToken> Fetch(const Context& ctx) override {
    Result<std::string> assertion = ReadFile(token_file_, 1 << 20);
    if (!assertion.ok()) {
      return assertion.status().WithContext(
          "cannot read the federated token (AZURE_FEDERATED_TOKEN_FILE)");
    }
    std::string jwt = Trim(*assertion);
    RegisterSecret(jwt);
    if (jwt.empty()) {
      return Error(Code::kUnauthenticated, Reason::kNoCredentials,
                   "the federated token file " + token_file_ + " is empty");
    }
    http::Request req = TokenRequest(ctx);
    req.method = "POST";
    req.url = authority_host_ + "/" + http::UrlEncode(tenant_id_) + "/oauth2/v2.0/token";
    req.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                   {"Accept", "application/json"}};
    req.body = "grant_type=client_credentials&client_id=" + http::UrlEncode(client_id_) +
               "&client_assertion_type=" +
               http::UrlEncode("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") +
               "&client_assertion=" + http::UrlEncode(jwt) +
               "&scope=" + http::UrlEncode(kStorageScope);
    std::string what = "the Microsoft Entra token endpoint " + UrlForDisplay(req.url);
    http::Client client;
    BAO_ASSIGN_OR_RETURN(http::Response r, client.Do(req));
    if (!r.ok()) {
      return TokenEndpointError(r, what + " refused the token request for " + Describe());
    }
    return ParseAccessTokenResponse(r.body, what);
  }

 private:
  std::string token_file_, client_id_, tenant_id_, authority_host_;
};

class ImdsTokenSource final : public TokenSource {
 public:
  ImdsTokenSource(std::string endpoint, std::string client_id)
      : endpoint_(StripTrailingSlashes(std::move(endpoint))), client_id_(std::move(client_id)) {}

  std::string Describe() const override {
    return "managed identity from the instance metadata service at " + endpoint_ +
           (client_id_.empty() ? "" : " (client " + client_id_ + ")");
  }

 protected:
  Result<AccessToken> Fetch(const Context& ctx) override {
    http::Request req = TokenRequest(ctx);
    req.url = endpoint_ + "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" +
              http::UrlEncode(kStorageResource);
    if (!client_id_.empty()) req.url += "&client_id=" + http::UrlEncode(client_id_);
    req.headers = {{"Metadata", "true"}};
    req.connect_timeout = std::chrono::seconds(5);
    std::string what = "the instance metadata service " + UrlForDisplay(req.url);
    http::Client client;
    Result<http::Response> r = client.Do(req);
    if (!r.ok()) {
      const Status& s = r.status();
      return Error(s.code(), s.reason(),
                   s.message() +
                       " (no storage credentials were given, so a managed identity was "
                       "expected; set credentialsSecretRef or run on Azure with an identity)");
    }
    if (!r->ok()) return TokenEndpointError(*r, what + " refused the token request");
    return ParseAccessTokenResponse(r->body, what);
  }

 private:
  std::string endpoint_, client_id_;
};

}  // namespace

std::unique_ptr<TokenSource> NewWorkloadIdentityTokenSource(std::string token_file,
                                                            std::string client_id,
                                                            std::string tenant_id,
                                                            std::string authority_host) {
  return std::make_unique<WorkloadIdentityTokenSource>(
      std::move(token_file), std::move(client_id), std::move(tenant_id), std::move(authority_host));
}

std::unique_ptr<TokenSource> NewImdsTokenSource(std::string endpoint, std::string client_id) {
  return std::make_unique<ImdsTokenSource>(std::move(endpoint), std::move(client_id));
}

// ---- Resolution -----------------------------------------------------------------------------

namespace {

Result<Credentials> Resolve(const TargetConfig& target) {
  Credentials c;
  c.account = target.azure_storage_account;
  std::string endpoint = StripTrailingSlashes(target.endpoint);
  std::string default_endpoint = "https://" + c.account + ".blob.core.windows.net";

  if (!target.credentials_dir.empty()) {
    std::string key_path = target.credentials_dir + "/accountKey";
    std::string cs_path = target.credentials_dir + "/connectionString";
    BAO_ASSIGN_OR_RETURN(std::optional<std::string> key, ReadOptionalTrimmed(key_path));
    if (key) {
      RegisterSecret(*key);
      Result<std::string> decoded = crypto::Base64Decode(*key);
      if (!decoded.ok() || decoded->empty()) {
        return InvalidArgument(key_path + " is not a base64 account key");
      }
      c.kind = Credentials::Kind::kSharedKey;
      c.key = std::move(decoded).value();
      RegisterSecret(c.key);
      c.endpoint = endpoint.empty() ? default_endpoint : endpoint;
      c.source = "account key from " + key_path;
      return c;
    }
    BAO_ASSIGN_OR_RETURN(std::optional<std::string> text, ReadOptionalTrimmed(cs_path));
    if (!text) {
      return ConfigError(Reason::kNoCredentials,
                         "no Azure credentials in " + target.credentials_dir +
                             ": expected a file named accountKey or connectionString");
    }
    RegisterSecret(*text);
    Result<ConnectionString> cs = ParseConnectionString(*text);
    if (!cs.ok()) return cs.status().WithContext(cs_path);
    if (!cs->account_name.empty() && cs->account_name != c.account) {
      return InvalidArgument(cs_path + " is for storage account \"" + cs->account_name +
                             "\" but azure.storageAccount is \"" + c.account + "\"");
    }
    if (cs->account_name.empty()) cs->account_name = c.account;
    c.endpoint = endpoint.empty() ? cs->BlobEndpoint() : endpoint;
    if (!cs->account_key.empty()) {
      Result<std::string> decoded = crypto::Base64Decode(cs->account_key);
      if (!decoded.ok() || decoded->empty()) {
        return InvalidArgument(cs_path + ": AccountKey is not base64");
      }
      c.kind = Credentials::Kind::kSharedKey;
      c.key = std::move(decoded).value();
      RegisterSecret(c.key);
    } else {
      c.kind = Credentials::Kind::kSas;
      c.sas = cs->sas;
    }
    c.source = std::string(c.kind == Credentials::Kind::kSas ? "SAS" : "account key") +
               " from the connection string in " + cs_path;
    return c;
  }

  c.endpoint = endpoint.empty() ? default_endpoint : endpoint;
  c.kind = Credentials::Kind::kBearer;
  std::string token_file = Getenv("AZURE_FEDERATED_TOKEN_FILE");
  std::string client_id = Getenv("AZURE_CLIENT_ID");
  std::string tenant_id = Getenv("AZURE_TENANT_ID");
  if (!token_file.empty() && !client_id.empty() && !tenant_id.empty()) {
    std::string authority = Getenv("AZURE_AUTHORITY_HOST");
    if (authority.empty()) authority = "https://login.microsoftonline.com/";
    Result<std::optional<std::string>> jwt = ReadOptionalTrimmed(token_file);
    if (!jwt.ok()) return jwt.status().WithContext("AZURE_FEDERATED_TOKEN_FILE");
    if (!jwt->has_value()) {
      return ConfigError(Reason::kNoCredentials,
                         "AZURE_FEDERATED_TOKEN_FILE names " + token_file +
                             ", which does not exist (is the workload identity webhook active?)");
    }
    c.tokens = NewWorkloadIdentityTokenSource(token_file, client_id, tenant_id, authority);
  } else {
    std::string imds = Getenv("AZURE_POD_IDENTITY_AUTHORITY_HOST");
    if (imds.empty()) imds = "http://169.254.169.254";
    c.tokens = NewImdsTokenSource(imds, client_id);
  }
  c.source = c.tokens->Describe();
  return c;
}

}  // namespace

Result<Credentials> ResolveCredentials(const TargetConfig& target) {
  Result<Credentials> c = Resolve(target);
  if (!c.ok()) return AsConfigError(c.status(), "");
  return c;
}

}  // namespace bao::storage::azure
