// GCS authentication: the service-account token exchange against a token endpoint run by this
// test, which verifies the RS256 assertion with the public half of a key generated here; the
// metadata-server path against a stand-in that insists on Metadata-Flavor: Google. Storage
// requests go to the real fake-gcs-server through a proxy that records them, so the test can
// see the Authorization header the store sends.
#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <atomic>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/redact.h"
#include "crypto/crypto.h"
#include "storage/gcs_store.h"
#include "support/fake_gcs.h"

namespace bao::storage {
namespace {

using nlohmann::json;
using testing::FakeGcsServer;
using testing::FaultProxy;

struct RsaKey {
  std::string priv, pub;
};

RsaKey NewRsaKey() {
  EVP_PKEY* pkey = EVP_RSA_gen(2048);
  auto drain = [](BIO* bio) {
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    std::string s(data, static_cast<size_t>(n));
    BIO_free(bio);
    return s;
  };
  BIO* a = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(a, pkey, nullptr, nullptr, 0, nullptr, nullptr);
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(b, pkey);
  EVP_PKEY_free(pkey);
  return {drain(a), drain(b)};
}

// An httplib server on a free loopback port, run on its own thread.
class LocalServer {
 public:
  ~LocalServer() {
    server.stop();
    if (thread_.joinable()) thread_.join();
  }
  void Start() {
    port_ = server.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server.listen_after_bind(); });
  }
  int port() const { return port_; }
  httplib::Server server;

 private:
  int port_ = 0;
  std::thread thread_;
};

// A token endpoint that checks the JWT bearer grant the way Google's does, as far as a test
// can: form fields, RS256 signature against `public_pem`, iss, scope, aud, iat/exp.
class TokenEndpoint {
 public:
  TokenEndpoint(std::string public_pem, std::string email)
      : public_pem_(std::move(public_pem)), email_(std::move(email)) {
    srv_.server.Post("/token", [this](const httplib::Request& req, httplib::Response& res) {
      ++calls;
      std::string reason = Check(req);
      if (!reason.empty()) {
        res.status = 400;
        res.set_content(json{{"error", "invalid_grant"}, {"error_description", reason}}.dump(),
                        "application/json");
        return;
      }
      res.set_content(
          json{{"access_token", token}, {"expires_in", 3599}, {"token_type", "Bearer"}}.dump(),
          "application/json");
    });
    srv_.Start();
  }
  std::string uri() const { return "http://127.0.0.1:" + std::to_string(srv_.port()) + "/token"; }

  std::atomic<int> calls{0};
  std::string token = "ya29.c.test-access-token-4711";

 private:
  std::string Check(const httplib::Request& req) const {
    if (req.get_param_value("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer") {
      return "bad grant_type";
    }
    const std::string jwt = req.get_param_value("assertion");
    size_t d1 = jwt.find('.'), d2 = jwt.rfind('.');
    if (d1 == std::string::npos || d1 == d2) return "malformed assertion";
    auto header = crypto::Base64Decode(jwt.substr(0, d1));
    auto claims_raw = crypto::Base64Decode(jwt.substr(d1 + 1, d2 - d1 - 1));
    auto sig = crypto::Base64Decode(jwt.substr(d2 + 1));
    if (!header.ok() || !claims_raw.ok() || !sig.ok()) return "bad base64";
    json h = json::parse(*header, nullptr, false);
    if (h.is_discarded() || h.value("alg", "") != "RS256") return "alg must be RS256";
    auto ok = crypto::RsaSha256Verify(public_pem_, jwt.substr(0, d2), *sig);
    if (!ok.ok() || !*ok) return "Invalid JWT Signature.";
    json c = json::parse(*claims_raw, nullptr, false);
    if (c.is_discarded()) return "claims are not JSON";
    if (c.value("iss", "") != email_) return "wrong issuer";
    if (c.value("scope", "").find("https://www.googleapis.com/auth/devstorage") ==
        std::string::npos) {
      return "scope lacks devstorage";
    }
    if (c.value("aud", "") != uri()) return "wrong audience";
    if (!c.contains("iat") || !c.contains("exp") || !c["iat"].is_number_integer() ||
        !c["exp"].is_number_integer()) {
      return "iat/exp missing";
    }
    int64_t now = std::time(nullptr);
    int64_t iat = c["iat"].get<int64_t>(), exp = c["exp"].get<int64_t>();
    if (iat > now + 60 || iat < now - 300 || exp <= iat || exp - iat > 3600) {
      return "Invalid JWT: Token must be a short-lived token (60 minutes)";
    }
    return "";
  }

  std::string public_pem_, email_;
  LocalServer srv_;
};

class GcsAuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    unsetenv("STORAGE_EMULATOR_HOST");
    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
    unsetenv("GCE_METADATA_HOST");
    server_ = new FakeGcsServer();
    std::string error;
    ASSERT_TRUE(server_->Start(&error)) << error;
    ASSERT_TRUE(server_->CreateBucket("authbucket", &error)) << error;
  }
  static void TearDownTestSuite() { delete server_; }
  void TearDown() override {
    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
    unsetenv("GCE_METADATA_HOST");
  }

  static std::string KeyFile(const std::string& pem, const std::string& token_uri) {
    return json{{"type", "service_account"},
                {"project_id", "p"},
                {"private_key_id", "k1"},
                {"private_key", pem},
                {"client_email", "backup@p.iam.gserviceaccount.com"},
                {"token_uri", token_uri}}
        .dump();
  }

  static TargetConfig Target(const std::string& endpoint, const std::string& creds_dir) {
    TargetConfig t;
    t.provider = "gcs";
    t.endpoint = endpoint;
    t.bucket = "authbucket";
    t.credentials_dir = creds_dir;
    return t;
  }

  static Status UploadSome(Store& store, const std::string& key) {
    BAO_ASSIGN_OR_RETURN(auto w, store.NewWriter(Context(), key));
    BAO_RETURN_IF_ERROR(w->Append(Context(), "auth payload"));
    BAO_ASSIGN_OR_RETURN(auto info, w->Commit(Context(), {12, crypto::Sha256Hex("auth payload")}));
    (void)info;
    return Status::Ok();
  }

  static FakeGcsServer* server_;
};
FakeGcsServer* GcsAuthTest::server_ = nullptr;

TEST_F(GcsAuthTest, ServiceAccountTokenIsSentAndCached) {
  RsaKey key = NewRsaKey();
  TokenEndpoint tokens(key.pub, "backup@p.iam.gserviceaccount.com");
  testing::TempDir dir;
  testing::WriteText(dir.File("credentials.json"), KeyFile(key.priv, tokens.uri()));
  FaultProxy proxy(server_->port());
  auto store = OpenGcsStore(Target(proxy.url(), dir.path()));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE(UploadSome(**store, "a/one").ok());
  ASSERT_TRUE((*store)->Stat(Context(), "a/one").ok());
  ASSERT_TRUE((*store)->List(Context(), "a/", [](const ObjectInfo&) { return Status::Ok(); }).ok());
  EXPECT_EQ(tokens.calls.load(), 1);  // fetched once, then cached
  const std::string sent = proxy.ClientBytes();
  EXPECT_NE(sent.find("Authorization: Bearer " + tokens.token), std::string::npos);
  // The token is registered as a secret, so it cannot leak into output.
  EXPECT_EQ(Redact(tokens.token), "[REDACTED]");
}

TEST_F(GcsAuthTest, GoogleApplicationCredentialsIsUsedWithoutACredentialsDir) {
  RsaKey key = NewRsaKey();
  TokenEndpoint tokens(key.pub, "backup@p.iam.gserviceaccount.com");
  testing::TempDir dir;
  testing::WriteText(dir.File("adc.json"), KeyFile(key.priv, tokens.uri()));
  setenv("GOOGLE_APPLICATION_CREDENTIALS", dir.File("adc.json").c_str(), 1);
  FaultProxy proxy(server_->port());
  auto store = OpenGcsStore(Target(proxy.url(), ""));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE(UploadSome(**store, "adc/one").ok());
  EXPECT_EQ(tokens.calls.load(), 1);
  EXPECT_NE(proxy.ClientBytes().find("Authorization: Bearer " + tokens.token), std::string::npos);
}

TEST_F(GcsAuthTest, RefusedExchangeReportsTheServersReasonWithoutSecrets) {
  RsaKey signer = NewRsaKey();
  RsaKey other = NewRsaKey();
  TokenEndpoint tokens(other.pub, "backup@p.iam.gserviceaccount.com");  // wrong public key
  testing::TempDir dir;
  testing::WriteText(dir.File("credentials.json"), KeyFile(signer.priv, tokens.uri()));
  auto store = OpenGcsStore(Target(server_->url(), dir.path()));
  ASSERT_TRUE(store.ok());
  auto w = (*store)->NewWriter(Context(), "never/there");
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), Code::kUnauthenticated) << w.status().ToString();
  const std::string msg = w.status().message();
  EXPECT_NE(msg.find("Invalid JWT Signature."), std::string::npos) << msg;
  EXPECT_NE(msg.find("backup@p.iam.gserviceaccount.com"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("eyJ"), std::string::npos) << msg;  // no JWT
  EXPECT_EQ(msg.find("PRIVATE KEY"), std::string::npos) << msg;
  EXPECT_EQ(Redact(msg), msg);
}

TEST_F(GcsAuthTest, BadKeyFileFailsAtOpenNamingTheFile) {
  testing::TempDir dir;
  testing::WriteText(dir.File("credentials.json"), "{\"type\":\"service_account\"}");
  auto store = OpenGcsStore(Target(server_->url(), dir.path()));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Code::kInvalidArgument);
  EXPECT_NE(store.status().message().find("credentials.json"), std::string::npos);
  EXPECT_NE(store.status().message().find("client_email"), std::string::npos);
}

TEST_F(GcsAuthTest, MetadataServerTokenWithMetadataFlavorHeader) {
  LocalServer md;
  std::atomic<int> calls{0};
  md.server.Get("/computeMetadata/v1/instance/service-accounts/default/token",
                [&](const httplib::Request& req, httplib::Response& res) {
                  ++calls;
                  if (req.get_header_value("Metadata-Flavor") != "Google") {
                    res.status = 403;
                    res.set_content("Missing Metadata-Flavor:Google header.", "text/plain");
                    return;
                  }
                  res.set_content(R"({"access_token":"ya29.metadata-token-99","expires_in":3000,)"
                                  R"("token_type":"Bearer"})",
                                  "application/json");
                });
  md.Start();
  setenv("GCE_METADATA_HOST", ("127.0.0.1:" + std::to_string(md.port())).c_str(), 1);
  FaultProxy proxy(server_->port());
  auto store = OpenGcsStore(Target(proxy.url(), ""));
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(UploadSome(**store, "md/one").ok());
  ASSERT_TRUE((*store)->Stat(Context(), "md/one").ok());
  EXPECT_EQ(calls.load(), 1);
  EXPECT_NE(proxy.ClientBytes().find("Authorization: Bearer ya29.metadata-token-99"),
            std::string::npos);
}

TEST_F(GcsAuthTest, EmulatorEndpointWithoutCredentialsSendsNoAuthorization) {
  FaultProxy proxy(server_->port());
  auto store = OpenGcsStore(Target(proxy.url(), ""));
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(UploadSome(**store, "anon/one").ok());
  EXPECT_EQ(proxy.ClientBytes().find("Authorization:"), std::string::npos);
}

TEST_F(GcsAuthTest, StorageEmulatorHostIsUsedWhenNoEndpointIsConfigured) {
  FaultProxy proxy(server_->port());
  setenv("STORAGE_EMULATOR_HOST", ("127.0.0.1:" + std::to_string(proxy.port())).c_str(), 1);
  auto store = OpenGcsStore(Target("", ""));
  unsetenv("STORAGE_EMULATOR_HOST");
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(UploadSome(**store, "env/one").ok());
  EXPECT_NE(proxy.ClientBytes().find("uploadType=resumable"), std::string::npos);
  EXPECT_EQ(proxy.ClientBytes().find("Authorization:"), std::string::npos);
}

}  // namespace
}  // namespace bao::storage
