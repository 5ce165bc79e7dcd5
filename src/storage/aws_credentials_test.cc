#include "storage/aws_credentials.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "common/redact.h"

namespace bao::storage {
namespace {

class AwsCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("bao-aws-creds-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    target_.provider = "s3";
    target_.bucket = "b";
    target_.endpoint = "http://127.0.0.1:1";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& name, const std::string& value) {
    std::ofstream(dir_ / name) << value;
  }
  EnvLookup Env() {
    return [this](const std::string& n) -> std::optional<std::string> {
      auto it = env_.find(n);
      if (it == env_.end()) return std::nullopt;
      return it->second;
    };
  }
  std::filesystem::path dir_;
  TargetConfig target_;
  std::map<std::string, std::string> env_;
};

TEST_F(AwsCredentialsTest, CredentialsDirectoryComesFirst) {
  Write("accessKeyId", "AKIADIR\n");
  Write("secretAccessKey", "dir-secret-value\n");
  Write("sessionToken", "dir-session-token\n");
  Write("region", "eu-west-3\n");
  Write("caCert", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
  target_.credentials_dir = dir_.string();
  env_ = {{"AWS_ACCESS_KEY_ID", "AKIAENV"}, {"AWS_SECRET_ACCESS_KEY", "env-secret-value"}};
  Result<AwsSetup> setup = ResolveAwsCredentials(target_, Env());
  ASSERT_TRUE(setup.ok()) << setup.status().ToString();
  Result<AwsCredentials> creds = setup->credentials->Get(Context());
  ASSERT_TRUE(creds.ok());
  EXPECT_EQ(creds->access_key_id, "AKIADIR");
  EXPECT_EQ(creds->secret_access_key, "dir-secret-value");
  EXPECT_EQ(creds->session_token, "dir-session-token");
  EXPECT_EQ(setup->region, "eu-west-3");
  EXPECT_NE(setup->ca_pem.find("BEGIN CERTIFICATE"), std::string::npos);
  EXPECT_EQ(Redact("x dir-secret-value dir-session-token"), "x [REDACTED] [REDACTED]");
}

TEST_F(AwsCredentialsTest, EnvironmentWhenTheDirectoryHasNoKeys) {
  Write("region", "ap-south-1");
  target_.credentials_dir = dir_.string();
  env_ = {{"AWS_ACCESS_KEY_ID", "AKIAENV"},
          {"AWS_SECRET_ACCESS_KEY", "env-secret-value"},
          {"AWS_SESSION_TOKEN", "env-session-token"},
          {"AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r"},
          {"AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent"}};
  Result<AwsSetup> setup = ResolveAwsCredentials(target_, Env());
  ASSERT_TRUE(setup.ok()) << setup.status().ToString();
  EXPECT_EQ(setup->region, "ap-south-1");
  Result<AwsCredentials> creds = setup->credentials->Get(Context());
  ASSERT_TRUE(creds.ok());
  EXPECT_EQ(creds->access_key_id, "AKIAENV");
  EXPECT_EQ(creds->session_token, "env-session-token");
  EXPECT_NE(setup->credentials->Source().find("environment"), std::string::npos);
}

TEST_F(AwsCredentialsTest, WebIdentityLast) {
  Write("token", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln");
  env_ = {{"AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r"},
          {"AWS_WEB_IDENTITY_TOKEN_FILE", (dir_ / "token").string()}};
  Result<AwsSetup> setup = ResolveAwsCredentials(target_, Env());
  ASSERT_TRUE(setup.ok()) << setup.status().ToString();
  EXPECT_EQ(setup->credentials->Source(), "web identity (role arn:aws:iam::123456789012:role/r)");
  // The target's roleArn wins over AWS_ROLE_ARN.
  target_.role_arn = "arn:aws:iam::123456789012:role/from-target";
  setup = ResolveAwsCredentials(target_, Env());
  ASSERT_TRUE(setup.ok());
  EXPECT_NE(setup->credentials->Source().find("from-target"), std::string::npos);
  // A token file that disappears later is reported on first use, by name, as configuration.
  std::filesystem::remove(dir_ / "token");
  Result<AwsCredentials> creds = setup->credentials->Get(Context());
  EXPECT_EQ(creds.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(creds.status().stage(), Stage::kConfig);
  EXPECT_NE(creds.status().message().find((dir_ / "token").string()), std::string::npos);
  // A token file missing from the start fails the resolution, before any request.
  setup = ResolveAwsCredentials(target_, Env());
  EXPECT_EQ(setup.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(setup.status().stage(), Stage::kConfig);
  EXPECT_EQ(setup.status().reason(), Reason::kNoCredentials);
  EXPECT_NE(setup.status().message().find((dir_ / "token").string()), std::string::npos);
}

TEST_F(AwsCredentialsTest, HalfConfiguredSourcesAreNamed) {
  Write("accessKeyId", "AKIADIR");
  target_.credentials_dir = dir_.string();
  Result<AwsSetup> setup = ResolveAwsCredentials(target_, Env());
  EXPECT_EQ(setup.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(setup.status().stage(), Stage::kConfig);
  EXPECT_EQ(setup.status().reason(), Reason::kInvalidValue);
  EXPECT_NE(setup.status().message().find("secretAccessKey is missing"), std::string::npos);

  target_.credentials_dir.clear();
  env_ = {{"AWS_ACCESS_KEY_ID", "AKIAENV"}};
  setup = ResolveAwsCredentials(target_, Env());
  EXPECT_NE(setup.status().message().find("AWS_SECRET_ACCESS_KEY is not set"), std::string::npos);

  env_ = {};
  target_.role_arn = "arn:aws:iam::1:role/r";
  setup = ResolveAwsCredentials(target_, Env());
  EXPECT_NE(setup.status().message().find("AWS_WEB_IDENTITY_TOKEN_FILE"), std::string::npos);

  // Nothing configured at all: a configuration error, found without any request.
  target_.role_arn.clear();
  setup = ResolveAwsCredentials(target_, Env());
  EXPECT_EQ(setup.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(setup.status().stage(), Stage::kConfig);
  EXPECT_EQ(setup.status().reason(), Reason::kNoCredentials);
  EXPECT_NE(setup.status().message().find("no S3 credentials"), std::string::npos);
}

TEST(AssumeRoleWithWebIdentity, ParsesCredentialsAndErrors) {
  const char* ok =
      R"(<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>ASIATEMPKEY</AccessKeyId>
      <SecretAccessKey>temporary-secret-key</SecretAccessKey>
      <SessionToken>temporary-session-token</SessionToken>
      <Expiration>2025-01-15T04:00:00Z</Expiration>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>)";
  Result<AwsCredentials> c = ParseAssumeRoleWithWebIdentity(200, ok, "arn:r");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "ASIATEMPKEY");
  EXPECT_EQ(c->session_token, "temporary-session-token");
  EXPECT_EQ(FormatRfc3339(c->expiration), "2025-01-15T04:00:00Z");
  EXPECT_EQ(Redact("temporary-secret-key"), "[REDACTED]");

  const char* denied = R"(<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>
    <Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message></Error>
    </ErrorResponse>)";
  Result<AwsCredentials> d = ParseAssumeRoleWithWebIdentity(403, denied, "arn:r");
  EXPECT_EQ(d.status().code(), Code::kUnauthenticated);
  EXPECT_EQ(d.status().reason(), Reason::kUnauthenticated);
  EXPECT_EQ(d.status().http_status(), 403);
  EXPECT_NE(d.status().message().find("AccessDenied"), std::string::npos);
  Status busy = ParseAssumeRoleWithWebIdentity(503, "", "arn:r").status();
  EXPECT_EQ(busy.code(), Code::kUnavailable);
  EXPECT_EQ(busy.reason(), Reason::kServerError);
}

}  // namespace
}  // namespace bao::storage
