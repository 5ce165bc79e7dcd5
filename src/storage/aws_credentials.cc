#include "storage/aws_credentials.h"

#include <cstdlib>
#include <pugixml.hpp>

#include "common/files.h"
#include "common/log.h"
#include "common/redact.h"
#include "common/retry.h"
#include "crypto/crypto.h"
#include "http/client.h"
#include "storage/errors.h"

namespace bao::storage {
namespace {

constexpr auto kRefreshMargin = std::chrono::minutes(5);

class StaticProvider : public AwsCredentialsProvider {
 public:
  StaticProvider(AwsCredentials creds, std::string source)
      : creds_(std::move(creds)), source_(std::move(source)) {}
  Result<AwsCredentials> Get(const Context&) override { return creds_; }
  std::string Source() const override { return source_; }

 private:
  const AwsCredentials creds_;
  const std::string source_;
};

class WebIdentityProvider : public AwsCredentialsProvider {
 public:
  WebIdentityProvider(std::string role_arn, std::string token_file, std::string sts_endpoint,
                      std::string session_name, const Clock& clock)
      : role_arn_(std::move(role_arn)),
        token_file_(std::move(token_file)),
        sts_endpoint_(std::move(sts_endpoint)),
        session_name_(std::move(session_name)),
        clock_(clock) {}

  Result<AwsCredentials> Get(const Context& ctx) override {
    std::lock_guard<std::mutex> lock(mu_);
    TimePoint now = clock_.Now();
    if (have_ && creds_.expiration - kRefreshMargin > now) return creds_;
    Result<AwsCredentials> fresh = Fetch(ctx);
    if (!fresh.ok()) {
      if (have_ && creds_.expiration > now) {
        log::Warn("could not renew the web identity credentials; using the current ones",
                  {{"error", fresh.status().message()}});
        return creds_;
      }
      return fresh.status();
    }
    creds_ = *fresh;
    have_ = true;
    log::Debug("obtained temporary S3 credentials via web identity",
               {{"role", role_arn_}, {"expires", FormatRfc3339(creds_.expiration)}});
    return creds_;
  }

  std::string Source() const override { return "web identity (role " + role_arn_ + ")"; }

 private:
  Result<AwsCredentials> Fetch(const Context& ctx) {
    Result<std::string> read = ReadFile(token_file_, 1 << 20);
    if (!read.ok()) {
      return AsConfigError(read.status(),
                           "the web identity token file (AWS_WEB_IDENTITY_TOKEN_FILE)");
    }
    std::string token = Trim(*read);
    if (token.empty()) {
      return ConfigError(Reason::kNoCredentials,
                         "the web identity token file " + token_file_ + " is empty");
    }
    RegisterSecret(token);
    http::Request req;
    req.method = "POST";
    req.url = sts_endpoint_;
    req.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                   {"Accept", "application/xml"}};
    req.body = "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=" +
               http::UrlEncode(role_arn_) + "&RoleSessionName=" + http::UrlEncode(session_name_) +
               "&WebIdentityToken=" + http::UrlEncode(token);
    req.timeout = std::chrono::seconds(30);
    req.stall_time = std::chrono::seconds(15);
    req.ctx = ctx;
    Result<AwsCredentials> out = Unavailable("no attempt made");
    Status st = Retry(ctx, RetryPolicy{}, "STS AssumeRoleWithWebIdentity", [&]() -> Status {
      Result<http::Response> resp = client_.Do(req);
      if (!resp.ok()) {
        out = resp.status().WithContext("cannot reach STS at " + UrlForDisplay(sts_endpoint_));
        return out.status();
      }
      out = ParseAssumeRoleWithWebIdentity(resp->status, resp->body, role_arn_);
      return out.ok() ? Status::Ok() : out.status();
    });
    if (!st.ok()) return st;
    return out;
  }

  const std::string role_arn_, token_file_, sts_endpoint_, session_name_;
  const Clock& clock_;
  std::mutex mu_;
  http::Client client_;  // guarded by mu_
  AwsCredentials creds_;
  bool have_ = false;
};

Result<std::optional<std::string>> ReadSecretFile(const std::string& dir, const char* name) {
  BAO_ASSIGN_OR_RETURN(std::optional<std::string> value, ReadOptionalTrimmed(dir + "/" + name));
  if (value && value->empty()) value.reset();
  return value;
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
}

namespace {

Result<AwsSetup> Resolve(const TargetConfig& target, const EnvLookup& env, const Clock& clock) {
  AwsSetup setup;
  const std::string& dir = target.credentials_dir;
  if (!dir.empty()) {
    BAO_ASSIGN_OR_RETURN(auto key_id, ReadSecretFile(dir, "accessKeyId"));
    BAO_ASSIGN_OR_RETURN(auto secret, ReadSecretFile(dir, "secretAccessKey"));
    BAO_ASSIGN_OR_RETURN(auto token, ReadSecretFile(dir, "sessionToken"));
    BAO_ASSIGN_OR_RETURN(auto region, ReadSecretFile(dir, "region"));
    BAO_ASSIGN_OR_RETURN(auto ca, ReadOptionalTrimmed(dir + "/caCert"));
    if (region) setup.region = *region;
    if (ca) setup.ca_pem = *ca + "\n";
    if (key_id.has_value() != secret.has_value()) {
      return ConfigError(Reason::kInvalidValue,
                         "credentials directory " + dir + ": " +
                             (key_id ? "secretAccessKey" : "accessKeyId") +
                             " is missing (both accessKeyId and secretAccessKey are needed)");
    }
    if (key_id) {
      RegisterSecret(*secret);
      if (token) RegisterSecret(*token);
      AwsCredentials creds{*key_id, *secret, token.value_or(""), {}};
      setup.credentials =
          std::make_shared<StaticProvider>(std::move(creds), "credentials directory " + dir);
      return setup;
    }
  }
  auto env_key = env("AWS_ACCESS_KEY_ID");
  auto env_secret = env("AWS_SECRET_ACCESS_KEY");
  if (env_key.has_value() != env_secret.has_value()) {
    return ConfigError(Reason::kInvalidValue,
                       std::string(env_key ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID") +
                           " is not set (both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are "
                           "needed)");
  }
  if (env_key) {
    auto env_token = env("AWS_SESSION_TOKEN");
    RegisterSecret(*env_secret);
    if (env_token) RegisterSecret(*env_token);
    AwsCredentials creds{*env_key, *env_secret, env_token.value_or(""), {}};
    setup.credentials =
        std::make_shared<StaticProvider>(std::move(creds), "environment (AWS_ACCESS_KEY_ID)");
    return setup;
  }
  std::string role = target.role_arn.empty() ? env("AWS_ROLE_ARN").value_or("") : target.role_arn;
  auto token_file = env("AWS_WEB_IDENTITY_TOKEN_FILE");
  if (!role.empty() && !token_file) {
    return ConfigError(Reason::kInvalidValue,
                       "roleArn " + role +
                           " is set, but AWS_WEB_IDENTITY_TOKEN_FILE (the projected service "
                           "account token) is not");
  }
  if (!role.empty()) {
    // The token is read (and exchanged) at the first request; that it exists is checked now.
    Result<std::optional<std::string>> token = ReadOptionalTrimmed(*token_file);
    if (!token.ok()) {
      return AsConfigError(token.status(), "AWS_WEB_IDENTITY_TOKEN_FILE " + *token_file);
    }
    if (!token->has_value()) {
      return ConfigError(Reason::kNoCredentials,
                         "AWS_WEB_IDENTITY_TOKEN_FILE names " + *token_file +
                             ", which does not exist (is the service account token projected?)");
    }
    std::string region = !target.region.empty()  ? target.region
                         : !setup.region.empty() ? setup.region
                                                 : env("AWS_REGION").value_or("us-east-1");
    std::string sts =
        env("AWS_ENDPOINT_URL_STS").value_or("https://sts." + region + ".amazonaws.com");
    std::string session =
        env("AWS_ROLE_SESSION_NAME").value_or("bao-backup-" + crypto::RandomHex(8));
    setup.credentials =
        std::make_shared<WebIdentityProvider>(role, *token_file, sts, session, clock);
    return setup;
  }
  return ConfigError(
      Reason::kNoCredentials,
      "no S3 credentials: provide accessKeyId and secretAccessKey in the credentials "
      "directory" +
          (dir.empty() ? std::string() : " (" + dir + ")") +
          ", or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or roleArn/AWS_ROLE_ARN with "
          "AWS_WEB_IDENTITY_TOKEN_FILE for web identity");
}

}  // namespace

Result<AwsSetup> ResolveAwsCredentials(const TargetConfig& target, const EnvLookup& env,
                                       const Clock& clock) {
  Result<AwsSetup> setup = Resolve(target, env, clock);
  if (!setup.ok()) return AsConfigError(setup.status(), "");  // file read errors included
  return setup;
}

Result<AwsCredentials> ParseAssumeRoleWithWebIdentity(long http_status, std::string_view body,
                                                      const std::string& role_arn) {
  pugi::xml_document doc;
  bool parsed = doc.load_buffer(body.data(), body.size()).status == pugi::status_ok;
  std::string what = "STS AssumeRoleWithWebIdentity for role " + role_arn;
  if (http_status < 200 || http_status >= 300) {
    std::string code, message;
    if (parsed) {
      pugi::xml_node e = doc.child("ErrorResponse").child("Error");
      if (!e) e = doc.child("Error");
      code = e.child_value("Code");
      message = Redact(e.child_value("Message"));
    }
    std::string detail = code.empty() ? "HTTP " + std::to_string(http_status)
                                      : code + (message.empty() ? "" : ": " + message);
    int status = static_cast<int>(http_status);
    if (http_status == 429 || code == "Throttling") {
      return Error(Code::kUnavailable, Reason::kThrottled, what + " failed (" + detail + ")")
          .WithHttpStatus(status);
    }
    if (http_status >= 500 || code == "IDPCommunicationError") {
      return Error(Code::kUnavailable, Reason::kServerError, what + " failed (" + detail + ")")
          .WithHttpStatus(status);
    }
    return Error(Code::kUnauthenticated, Reason::kUnauthenticated,
                 what + " was refused (" + detail + ")")
        .WithHttpStatus(status);
  }
  if (!parsed) {
    return Error(Code::kInternal, Reason::kBadResponse,
                 what + ": STS returned an unreadable answer");
  }
  pugi::xml_node c = doc.child("AssumeRoleWithWebIdentityResponse")
                         .child("AssumeRoleWithWebIdentityResult")
                         .child("Credentials");
  AwsCredentials creds{c.child_value("AccessKeyId"),
                       c.child_value("SecretAccessKey"),
                       c.child_value("SessionToken"),
                       {}};
  if (creds.access_key_id.empty() || creds.secret_access_key.empty() ||
      creds.session_token.empty()) {
    return Error(Code::kInternal, Reason::kBadResponse,
                 what + ": STS answered without credentials");
  }
  RegisterSecret(creds.secret_access_key);
  RegisterSecret(creds.session_token);
  Result<TimePoint> expiration = ParseRfc3339(c.child_value("Expiration"));
  if (!expiration.ok()) {
    return Error(Code::kInternal, Reason::kBadResponse,
                 what + ": STS answered without a valid Expiration");
  }
  creds.expiration = *expiration;
  return creds;
}

}  // namespace bao::storage
