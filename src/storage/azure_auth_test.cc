#include "storage/azure_auth.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/redact.h"
#include "crypto/crypto.h"

namespace bao::storage::azure {
namespace {

// Built by hand from "Authorize with Shared Key" (service version 2015-02-21+): twelve
// standard-header lines, then the canonicalized x-ms-* headers, then the canonicalized
// resource. The emulator's path-style URL repeats the account in the path.
TEST(SharedKeyTest, StringToSignForPutBlockMatchesTheSpec) {
  Headers headers = {{"Content-MD5", "Q2hlY2sgSW50ZWdyaXR5IQ=="},
                     {"X-MS-Version", "2021-08-06"},
                     {"x-ms-date", "Fri, 26 Jun 2015 23:39:12 GMT"},
                     {"Content-Length", "11"},
                     {"x-ms-meta-b", "  two   words "}};
  std::string got = SharedKeyStringToSign(
      "devstoreaccount1", "PUT",
      "http://127.0.0.1:10000/devstoreaccount1/c1/a/b.snap?comp=block&blockid=YWJj%3D%3D", headers);
  std::string want =
      "PUT\n"
      "\n"    // Content-Encoding
      "\n"    // Content-Language
      "11\n"  // Content-Length
      "Q2hlY2sgSW50ZWdyaXR5IQ==\n"
      "\n"        // Content-Type
      "\n"        // Date
      "\n\n\n\n"  // If-Modified-Since, If-Match, If-None-Match, If-Unmodified-Since
      "\n"        // Range
      "x-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\n"
      "x-ms-meta-b:two words\n"
      "x-ms-version:2021-08-06\n"
      "/devstoreaccount1/devstoreaccount1/c1/a/b.snap\n"
      "blockid:YWJj==\n"
      "comp:block";
  EXPECT_EQ(got, want);
}

TEST(SharedKeyTest, ZeroContentLengthIsEmptyAndQueryParametersAreSortedAndMerged) {
  Headers headers = {{"Content-Length", "0"}, {"x-ms-date", "d"}, {"x-ms-version", "v"}};
  std::string got = SharedKeyStringToSign(
      "myaccount", "GET",
      "https://myaccount.blob.core.windows.net/mycontainer?restype=container&comp=list&"
      "Prefix=a%2Fb&include=snapshots&include=metadata",
      headers);
  EXPECT_EQ(got,
            "GET\n\n\n\n\n\n\n\n\n\n\n\n"
            "x-ms-date:d\nx-ms-version:v\n"
            "/myaccount/mycontainer\n"
            "comp:list\ninclude:metadata,snapshots\nprefix:a/b\nrestype:container");
}

// The emulator's published account key and this request's string-to-sign give this signature,
// computed independently with:
//   printf 'GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\n
//   x-ms-version:2021-08-06\n/devstoreaccount1/devstoreaccount1/c1\nrestype:container' |
//   openssl dgst -sha256 -mac HMAC -macopt hexkey:$(base64 -d <<<KEY | xxd -p -c 256) -binary |
//   base64
constexpr const char* kKnownSignature = "qJNlT0lV8IY1x01vFXfqYVXGUYaTWEFJeXnnHZf7pLk=";

TEST(SharedKeyTest, AuthorizationIsBase64HmacOfTheStringToSign) {
  std::string key = *crypto::Base64Decode(kDevAccountKey);
  Headers headers = {{"x-ms-date", "Fri, 26 Jun 2015 23:39:12 GMT"},
                     {"x-ms-version", "2021-08-06"}};
  std::string url = "http://127.0.0.1:10000/devstoreaccount1/c1?restype=container";
  std::string sts = SharedKeyStringToSign("devstoreaccount1", "GET", url, headers);
  auto mac = crypto::HmacSha256(key, sts);
  std::string expected =
      "SharedKey devstoreaccount1:" +
      crypto::Base64Encode(std::string_view(reinterpret_cast<const char*>(mac.data()), 32));
  EXPECT_EQ(SharedKeyAuthorization("devstoreaccount1", key, "GET", url, headers), expected);
  EXPECT_EQ(expected, "SharedKey devstoreaccount1:" + std::string(kKnownSignature));
}

TEST(Rfc1123Test, FormatsAndParses) {
  TimePoint t(std::chrono::seconds(1736910000));  // 2025-01-15T03:00:00Z
  EXPECT_EQ(FormatRfc1123(t), "Wed, 15 Jan 2025 03:00:00 GMT");
  auto parsed = ParseRfc1123("Wed, 15 Jan 2025 03:00:00 GMT");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, t);
  EXPECT_FALSE(ParseRfc1123("2025-01-15T03:00:00Z").ok());
}

// A TimePoint counts nanoseconds in 64 bits: a later year overflowed it (undefined behaviour).
TEST(Rfc1123Test, RefusesDatesATimePointCannotHold) {
  EXPECT_FALSE(ParseRfc1123("Wed, 15 Jan 4050 03:00:00 GMT").ok());
  EXPECT_FALSE(ParseRfc1123("Wed, 15 Jan 1600 03:00:00 GMT").ok());
  EXPECT_FALSE(ParseRfc1123("Wed, 15 Jan 2025 -3:00:00 GMT").ok());
  EXPECT_FALSE(ParseRfc1123("Wed, 15 Jan 2025 03:-1:00 GMT").ok());
  // A leap second would carry it into 2262, which FormatRfc1123 prints and this refuses.
  EXPECT_FALSE(ParseRfc1123("Tue, 31 Dec 2261 23:59:60 GMT").ok());
  Result<TimePoint> last = ParseRfc1123("Tue, 31 Dec 2261 23:59:59 GMT");
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(FormatRfc1123(*last), "Tue, 31 Dec 2261 23:59:59 GMT");
  Result<TimePoint> first = ParseRfc1123("Sat, 01 Jan 1678 00:00:00 GMT");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(FormatRfc3339(*first), "1678-01-01T00:00:00Z");
}

TEST(ConnectionStringTest, ParsesAccountKeyAndDerivesTheEndpoint) {
  auto cs = ParseConnectionString(
      "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5a2V5a2V5==;"
      "EndpointSuffix=core.chinacloudapi.cn");
  ASSERT_TRUE(cs.ok()) << cs.status().ToString();
  EXPECT_EQ(cs->account_name, "acct");
  EXPECT_EQ(cs->account_key, "a2V5a2V5a2V5==");
  EXPECT_EQ(cs->BlobEndpoint(), "https://acct.blob.core.chinacloudapi.cn");
  EXPECT_EQ(Redact("x a2V5a2V5a2V5== y"), "x [REDACTED] y");
}

TEST(ConnectionStringTest, BlobEndpointAndSasWinAndAreCaseInsensitive) {
  auto cs = ParseConnectionString(
      " blobendpoint=http://127.0.0.1:10000/devstoreaccount1/ ; "
      "SharedAccessSignature=?sv=2021-08-06&sig=abc%2Bdef;");
  ASSERT_TRUE(cs.ok()) << cs.status().ToString();
  EXPECT_EQ(cs->BlobEndpoint(), "http://127.0.0.1:10000/devstoreaccount1");
  EXPECT_EQ(cs->sas, "sv=2021-08-06&sig=abc%2Bdef");
  EXPECT_TRUE(cs->account_key.empty());
}

TEST(ConnectionStringTest, DevelopmentStorageUsesTheWellKnownAccount) {
  auto cs = ParseConnectionString("UseDevelopmentStorage=true");
  ASSERT_TRUE(cs.ok()) << cs.status().ToString();
  EXPECT_EQ(cs->account_name, kDevAccountName);
  EXPECT_EQ(cs->account_key, kDevAccountKey);
  EXPECT_EQ(cs->BlobEndpoint(), "http://127.0.0.1:10000/devstoreaccount1");
}

TEST(ConnectionStringTest, RejectsMalformedOrCredentialFreeStrings) {
  auto bad = ParseConnectionString("AccountName=acct;AccountKey");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("entry 2"), std::string::npos);
  auto none = ParseConnectionString("AccountName=acct;EndpointSuffix=core.windows.net");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("neither AccountKey nor SharedAccessSignature"),
            std::string::npos);
  EXPECT_FALSE(ParseConnectionString("AccountName=a;AccountKey=eHh4eHh4;"
                                     "DefaultEndpointsProtocol=ftp")
                   .ok());
}

class ResolveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("azure-auth-test-" + crypto::RandomHex(8));
    std::filesystem::create_directories(dir_);
    target_.provider = "azure";
    target_.bucket = "backups";
    target_.azure_storage_account = "acct";
    for (const char* v : {"AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_ID", "AZURE_TENANT_ID",
                          "AZURE_AUTHORITY_HOST", "AZURE_POD_IDENTITY_AUTHORITY_HOST"}) {
      unsetenv(v);
    }
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }

  std::filesystem::path dir_;
  TargetConfig target_;
};

TEST_F(ResolveTest, AccountKeyFileGivesSharedKeyAndTheDefaultEndpoint) {
  Write("accountKey", std::string(kDevAccountKey) + "\n");
  target_.credentials_dir = dir_.string();
  auto c = ResolveCredentials(target_);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->kind, Credentials::Kind::kSharedKey);
  EXPECT_EQ(c->endpoint, "https://acct.blob.core.windows.net");
  EXPECT_EQ(c->key, *crypto::Base64Decode(kDevAccountKey));
  EXPECT_EQ(Redact(kDevAccountKey), "[REDACTED]");
}

TEST_F(ResolveTest, ExplicitEndpointWinsOverTheConnectionString) {
  Write("connectionString",
        "AccountName=acct;SharedAccessSignature=sv=1&sig=zzzzzzzz;"
        "BlobEndpoint=https://elsewhere.example");
  target_.credentials_dir = dir_.string();
  target_.endpoint = "http://127.0.0.1:1234/acct/";
  auto c = ResolveCredentials(target_);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->kind, Credentials::Kind::kSas);
  EXPECT_EQ(c->endpoint, "http://127.0.0.1:1234/acct");
  EXPECT_EQ(c->sas, "sv=1&sig=zzzzzzzz");
}

TEST_F(ResolveTest, ConnectionStringForAnotherAccountIsRefused) {
  Write("connectionString", "AccountName=other;AccountKey=eHh4eHh4");
  target_.credentials_dir = dir_.string();
  auto c = ResolveCredentials(target_);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(c.status().stage(), Stage::kConfig);
  EXPECT_EQ(c.status().reason(), Reason::kInvalidValue);
  EXPECT_NE(c.status().message().find("\"other\""), std::string::npos);
}

TEST_F(ResolveTest, EmptyCredentialsDirNamesTheExpectedFiles) {
  target_.credentials_dir = dir_.string();
  auto c = ResolveCredentials(target_);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(c.status().stage(), Stage::kConfig);
  EXPECT_EQ(c.status().reason(), Reason::kNoCredentials);
  EXPECT_NE(c.status().message().find("accountKey or connectionString"), std::string::npos);
}

TEST_F(ResolveTest, AmbientIdentityPrefersWorkloadIdentityThenImds) {
  auto imds = ResolveCredentials(target_);
  ASSERT_TRUE(imds.ok()) << imds.status().ToString();
  EXPECT_EQ(imds->kind, Credentials::Kind::kBearer);
  EXPECT_NE(imds->source.find("http://169.254.169.254"), std::string::npos);

  Write("token", "eyJhbGciOi.fake.jwt");
  setenv("AZURE_FEDERATED_TOKEN_FILE", (dir_ / "token").c_str(), 1);
  setenv("AZURE_CLIENT_ID", "client-1", 1);
  setenv("AZURE_TENANT_ID", "tenant-1", 1);
  auto wi = ResolveCredentials(target_);
  ASSERT_TRUE(wi.ok()) << wi.status().ToString();
  EXPECT_NE(wi->source.find("workload identity"), std::string::npos);

  setenv("AZURE_FEDERATED_TOKEN_FILE", (dir_ / "missing").c_str(), 1);
  auto missing = ResolveCredentials(target_);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(missing.status().stage(), Stage::kConfig);
  EXPECT_EQ(missing.status().reason(), Reason::kNoCredentials);
  unsetenv("AZURE_FEDERATED_TOKEN_FILE");
  unsetenv("AZURE_CLIENT_ID");
  unsetenv("AZURE_TENANT_ID");
}

}  // namespace
}  // namespace bao::storage::azure
