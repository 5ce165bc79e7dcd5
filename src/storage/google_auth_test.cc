#include "storage/google_auth.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <nlohmann/json.hpp>

#include "common/redact.h"
#include "crypto/crypto.h"

namespace bao::storage {
namespace {

using nlohmann::json;

// A fresh 2048-bit RSA key as {private PEM (PKCS#8), public PEM}.
std::pair<std::string, std::string> NewRsaKey() {
  EVP_PKEY* pkey = EVP_RSA_gen(2048);
  EXPECT_NE(pkey, nullptr);
  auto to_string = [](BIO* bio) {
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    std::string s(data, static_cast<size_t>(n));
    BIO_free(bio);
    return s;
  };
  BIO* priv = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(priv, pkey, nullptr, nullptr, 0, nullptr, nullptr);
  BIO* pub = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(pub, pkey);
  EVP_PKEY_free(pkey);
  return {to_string(priv), to_string(pub)};
}

json KeyJson(const std::string& pem) {
  return {{"type", "service_account"},
          {"project_id", "proj"},
          {"private_key_id", "kid-1"},
          {"private_key", pem},
          {"client_email", "backup@proj.iam.gserviceaccount.com"},
          {"token_uri", "http://127.0.0.1:1/token"}};
}

json DecodePart(const std::string& part) {
  auto raw = crypto::Base64Decode(part);
  EXPECT_TRUE(raw.ok());
  return json::parse(*raw, nullptr, false);
}

TEST(GoogleAuthTest, JwtAssertionHasClaimsAndVerifiableSignature) {
  auto [priv, pub] = NewRsaKey();
  auto key = ParseServiceAccountKey(KeyJson(priv).dump(), "credentials.json");
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  TimePoint now = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
  auto jwt = BuildJwtAssertion(*key, kGcsScope, now);
  ASSERT_TRUE(jwt.ok()) << jwt.status().ToString();

  size_t d1 = jwt->find('.'), d2 = jwt->rfind('.');
  ASSERT_NE(d1, d2);
  json header = DecodePart(jwt->substr(0, d1));
  json claims = DecodePart(jwt->substr(d1 + 1, d2 - d1 - 1));
  EXPECT_EQ(header["alg"], "RS256");
  EXPECT_EQ(header["typ"], "JWT");
  EXPECT_EQ(header["kid"], "kid-1");
  EXPECT_EQ(claims["iss"], "backup@proj.iam.gserviceaccount.com");
  EXPECT_EQ(claims["aud"], "http://127.0.0.1:1/token");
  EXPECT_EQ(claims["scope"], std::string(kGcsScope));
  EXPECT_EQ(claims["iat"], 1700000000);
  EXPECT_EQ(claims["exp"], 1700003600);

  auto sig = crypto::Base64Decode(jwt->substr(d2 + 1));
  ASSERT_TRUE(sig.ok());
  auto ok = crypto::RsaSha256Verify(pub, jwt->substr(0, d2), *sig);
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(*ok);
  // A changed claim no longer verifies.
  auto bad = crypto::RsaSha256Verify(pub, jwt->substr(0, d2) + "x", *sig);
  EXPECT_FALSE(bad.ok() && *bad);
}

TEST(GoogleAuthTest, KeyFileErrorsNameTheProblemWithoutTheKey) {
  auto [priv, pub] = NewRsaKey();
  auto not_json = ParseServiceAccountKey("{nope", "/creds/credentials.json");
  EXPECT_EQ(not_json.status().code(), Code::kInvalidArgument);
  EXPECT_NE(not_json.status().message().find("/creds/credentials.json"), std::string::npos);

  json j = KeyJson(priv);
  j.erase("client_email");
  auto no_email = ParseServiceAccountKey(j.dump(), "k.json");
  EXPECT_NE(no_email.status().message().find("client_email"), std::string::npos);

  j = KeyJson("-----BEGIN PRIVATE KEY-----\nAAAAsecretmaterial\n-----END PRIVATE KEY-----\n");
  auto bad_key = ParseServiceAccountKey(j.dump(), "k.json");
  EXPECT_EQ(bad_key.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(bad_key.status().message().find("secretmaterial"), std::string::npos);
  EXPECT_EQ(Redact(j["private_key"].get<std::string>()), "[REDACTED]");

  j = KeyJson(priv);
  j["type"] = "authorized_user";
  auto user = ParseServiceAccountKey(j.dump(), "k.json");
  EXPECT_NE(user.status().message().find("authorized_user"), std::string::npos);

  j = KeyJson(priv);
  j.erase("token_uri");
  auto defaulted = ParseServiceAccountKey(j.dump(), "k.json");
  ASSERT_TRUE(defaulted.ok());
  EXPECT_EQ(defaulted->token_uri, "https://oauth2.googleapis.com/token");
}

}  // namespace
}  // namespace bao::storage
