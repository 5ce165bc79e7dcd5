// Web identity (IRSA) against moto's STS: AssumeRoleWithWebIdentity yields temporary
// credentials, and the S3 store signs with them (checked on the wire through a recording
// proxy in front of moto's own S3, which accepts them).
#include <gtest/gtest.h>

#include <atomic>

#include "crypto/crypto.h"
#include "storage/aws_credentials.h"
#include "storage/s3_store.h"
#include "support/minio.h"
#include "support/moto.h"
#include "support/testing.h"

namespace bao::storage {
namespace {

using bao::testing::MotoServer;
using bao::testing::TcpProxy;
using bao::testing::TempDir;

std::string FakeJwt() {
  return crypto::Base64UrlEncode(R"({"alg":"RS256","typ":"JWT"})") + "." +
         crypto::Base64UrlEncode(
             R"({"iss":"https://oidc.example","sub":"system:serviceaccount:ns:c-backup",)"
             R"("aud":"sts.amazonaws.com","exp":4102444800})") +
         "." + crypto::Base64UrlEncode(crypto::RandomBytes(64));
}

TEST(S3WebIdentity, SignsWithTemporaryCredentialsFromSts) {
  MotoServer moto;
  std::string error;
  ASSERT_TRUE(moto.Start(&error)) << error;
  std::map<std::string, std::string> cli_env = {
      {"AWS_ACCESS_KEY_ID", "testing"},    {"AWS_SECRET_ACCESS_KEY", "testing"},
      {"AWS_DEFAULT_REGION", "us-east-1"}, {"AWS_EC2_METADATA_DISABLED", "true"},
      {"AWS_CONFIG_FILE", "/dev/null"},    {"AWS_SHARED_CREDENTIALS_FILE", "/dev/null"}};
  testing::RunResult mb = testing::Run({"aws", "--endpoint-url", moto.endpoint(), "s3api",
                                        "create-bucket", "--bucket", "wi-backups"},
                                       cli_env);
  ASSERT_EQ(mb.exit_code, 0) << mb.err;

  TempDir dir;
  std::string jwt = FakeJwt();
  testing::WriteText(dir.File("token"), jwt);
  std::map<std::string, std::string> env = {{"AWS_WEB_IDENTITY_TOKEN_FILE", dir.File("token")},
                                            {"AWS_ENDPOINT_URL_STS", moto.endpoint()},
                                            {"AWS_ROLE_SESSION_NAME", "bao-backup-test"}};
  S3Options options;
  options.env = [&](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  TcpProxy proxy(moto.port());
  TargetConfig t;
  t.provider = "s3";
  t.endpoint = proxy.endpoint();
  t.bucket = "wi-backups";
  t.use_path_style = true;
  t.role_arn = "arn:aws:iam::123456789012:role/openbao-backup";
  t.part_size = 5 << 20;
  Result<std::unique_ptr<S3Store>> store = OpenS3StoreWithOptions(t, options);
  ASSERT_TRUE(store.ok()) << store.status().ToString();

  std::string data = crypto::RandomBytes((5 << 20) + 4321);  // two parts
  Result<std::unique_ptr<ObjectWriter>> w = (*store)->NewWriter(Context(), "ns/c/wi.snap");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_TRUE((*w)->Append(Context(), data).ok());
  Result<ObjectInfo> info =
      (*w)->Commit(Context(), CommitInfo{data.size(), crypto::Sha256Hex(data)});
  ASSERT_TRUE(info.ok()) << info.status().ToString();

  std::string wire = proxy.Captured();
  // Temporary STS credentials: an ASIA key id and the session token on every request.
  EXPECT_NE(wire.find("Credential=ASIA"), std::string::npos) << wire.substr(0, 2000);
  EXPECT_NE(wire.find("x-amz-security-token: "), std::string::npos);
  EXPECT_EQ(wire.find(jwt), std::string::npos) << "the JWT went to S3";

  std::string back;
  ASSERT_TRUE((*store)
                  ->Read(Context(), "ns/c/wi.snap", 0,
                         [&](std::string_view c) {
                           back.append(c);
                           return Status::Ok();
                         })
                  .ok());
  EXPECT_TRUE(back == data);
  Result<ObjectInfo> stat = (*store)->Stat(Context(), "ns/c/wi.snap");
  ASSERT_TRUE(stat.ok()) << stat.status().ToString();
  EXPECT_EQ(stat->sha256, crypto::Sha256Hex(data));
}

class SettableClock : public Clock {
 public:
  TimePoint Now() const override { return SystemClock().Now() + offset.load(); }
  std::atomic<std::chrono::seconds> offset{std::chrono::seconds(0)};
};

// The temporary credentials are reused while fresh and renewed from STS once they expire
// within five minutes.
TEST(S3WebIdentity, RenewsTemporaryCredentialsBeforeTheyExpire) {
  MotoServer moto;
  std::string error;
  ASSERT_TRUE(moto.Start(&error)) << error;
  TempDir dir;
  testing::WriteText(dir.File("token"), FakeJwt());
  std::map<std::string, std::string> env = {{"AWS_WEB_IDENTITY_TOKEN_FILE", dir.File("token")},
                                            {"AWS_ENDPOINT_URL_STS", moto.endpoint()}};
  TargetConfig t;
  t.provider = "s3";
  t.endpoint = moto.endpoint();
  t.bucket = "wi-backups";
  t.role_arn = "arn:aws:iam::123456789012:role/openbao-backup";
  SettableClock clock;
  Result<AwsSetup> setup = ResolveAwsCredentials(
      t,
      [&](const std::string& name) -> std::optional<std::string> {
        auto it = env.find(name);
        if (it == env.end()) return std::nullopt;
        return it->second;
      },
      clock);
  ASSERT_TRUE(setup.ok()) << setup.status().ToString();
  Result<AwsCredentials> first = setup->credentials->Get(Context());
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_GT(first->expiration, SystemClock().Now());
  Result<AwsCredentials> again = setup->credentials->Get(Context());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->access_key_id, first->access_key_id);  // still fresh: no STS call
  clock.offset = std::chrono::duration_cast<std::chrono::seconds>(
      first->expiration - SystemClock().Now() - std::chrono::minutes(4));
  Result<AwsCredentials> renewed = setup->credentials->Get(Context());
  ASSERT_TRUE(renewed.ok()) << renewed.status().ToString();
  EXPECT_NE(renewed->access_key_id, first->access_key_id);
  EXPECT_NE(renewed->session_token, first->session_token);
}

TEST(S3WebIdentity, MissingTokenFileFailsAtOpenByName) {
  TargetConfig t;
  t.provider = "s3";
  t.endpoint = "http://127.0.0.1:1";
  t.bucket = "wi-backups";
  t.role_arn = "arn:aws:iam::123456789012:role/openbao-backup";
  S3Options options;
  options.env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "AWS_WEB_IDENTITY_TOKEN_FILE") return "/nonexistent/token";
    return std::nullopt;
  };
  Result<std::unique_ptr<S3Store>> store = OpenS3StoreWithOptions(t, options);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("/nonexistent/token"), std::string::npos)
      << store.status().ToString();
}

}  // namespace
}  // namespace bao::storage
