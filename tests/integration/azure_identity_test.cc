// The Azure ambient identities (AKS workload identity, IMDS managed identity) against small
// stand-ins run by the test: a token endpoint that checks the request it receives, and a blob
// endpoint that checks the bearer token the store then presents. (Azurite accepts bearer
// tokens only over HTTPS with OAuth enabled, so the token paths are proven here instead.)
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "common/redact.h"
#include "storage/azure_auth.h"
#include "storage/azure_store.h"
#include "support/testing.h"

namespace bao {
namespace {

constexpr const char* kListXml =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults ServiceEndpoint=\"x\" "
    "ContainerName=\"backups\"><Blobs><Blob><Name>a/one.snap</Name><Properties>"
    "<Last-Modified>Wed, 15 Jan 2025 03:00:00 GMT</Last-Modified><Content-Length>42"
    "</Content-Length></Properties><Metadata><sha256>abc</sha256></Metadata></Blob></Blobs>"
    "<NextMarker /></EnumerationResults>";

class StandIn {
 public:
  StandIn() {
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~StandIn() {
    server_.stop();
    thread_.join();
  }
  httplib::Server& server() { return server_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Records a problem with a request; the test fails on any.
  void Problem(const std::string& p) {
    std::lock_guard<std::mutex> lock(mu_);
    problems_ += p + "\n";
  }
  std::string problems() {
    std::lock_guard<std::mutex> lock(mu_);
    return problems_;
  }

  // A blob endpoint for account "acct", container "backups", that wants `token`.
  void ServeBlobs(const std::string& token) {
    server_.Get("/acct/backups", [this, token](const httplib::Request& req,
                                               httplib::Response& res) {
      blob_requests++;
      if (req.get_header_value("Authorization") != "Bearer " + token) {
        Problem("blob request without the bearer token");
        res.status = 401;
        res.set_header("x-ms-error-code", "InvalidAuthenticationInfo");
        return;
      }
      if (req.get_header_value("x-ms-version").empty()) Problem("no x-ms-version");
      if (req.get_param_value("restype") != "container" || req.get_param_value("comp") != "list") {
        Problem("unexpected blob request " + req.target);
      }
      res.set_content(kListXml, "application/xml");
    });
  }

  std::atomic<int> token_requests{0};
  std::atomic<int> blob_requests{0};

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::string problems_;
};

class AzureIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : {"AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_ID", "AZURE_TENANT_ID",
                          "AZURE_AUTHORITY_HOST", "AZURE_POD_IDENTITY_AUTHORITY_HOST"}) {
      unsetenv(v);
    }
  }
  void TearDown() override { SetUp(); }

  storage::TargetConfig Target(const std::string& endpoint) {
    storage::TargetConfig t;
    t.provider = "azure";
    t.bucket = "backups";
    t.azure_storage_account = "acct";
    t.endpoint = endpoint + "/acct";
    return t;
  }

  // Lists through the store twice; the token must be fetched once.
  void ListTwice(StandIn& s) {
    storage::AzureOptions o;
    o.retry.max_attempts = 1;
    auto store = storage::OpenAzureStore(Target(s.url()), o);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    for (int i = 0; i < 2; ++i) {
      std::vector<storage::ObjectInfo> seen;
      Status st = (*store)->List(Context(), "a/", [&](const storage::ObjectInfo& info) {
        seen.push_back(info);
        return Status::Ok();
      });
      ASSERT_TRUE(st.ok()) << st.ToString();
      ASSERT_EQ(seen.size(), 1u);
      EXPECT_EQ(seen[0].key, "a/one.snap");
      EXPECT_EQ(seen[0].size, 42u);
      EXPECT_EQ(seen[0].sha256, "abc");
    }
    auto writer = (*store)->NewWriter(Context(), "a/two.snap");
    EXPECT_TRUE(writer.ok()) << writer.status().ToString();
    EXPECT_EQ(s.blob_requests.load(), 3);
    EXPECT_EQ(s.token_requests.load(), 1) << "the token is cached";
    EXPECT_EQ(s.problems(), "");
  }

  testing::TempDir dir_;
};

TEST_F(AzureIdentityTest, WorkloadIdentityExchangesTheFederatedToken) {
  StandIn s;
  const std::string jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJl";
  s.server().Post("/tenant-1/oauth2/v2.0/token", [&](const httplib::Request& req,
                                                     httplib::Response& res) {
    s.token_requests++;
    auto want = [&](const char* name, const std::string& value) {
      if (req.get_param_value(name) != value) {
        s.Problem(std::string(name) + " is \"" + req.get_param_value(name) + "\"");
      }
    };
    want("grant_type", "client_credentials");
    want("client_id", "client-1");
    want("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    want("client_assertion", jwt);
    want("scope", "https://storage.azure.com/.default");
    if (req.get_header_value("Content-Type") != "application/x-www-form-urlencoded") {
      s.Problem("token request is not form-encoded");
    }
    res.set_content(R"({"token_type":"Bearer","expires_in":3599,"access_token":"wi-token-123"})",
                    "application/json");
  });
  s.ServeBlobs("wi-token-123");
  testing::WriteText(dir_.File("token"), jwt + "\n");
  setenv("AZURE_FEDERATED_TOKEN_FILE", dir_.File("token").c_str(), 1);
  setenv("AZURE_CLIENT_ID", "client-1", 1);
  setenv("AZURE_TENANT_ID", "tenant-1", 1);
  setenv("AZURE_AUTHORITY_HOST", (s.url() + "/").c_str(), 1);
  ListTwice(s);
}

TEST_F(AzureIdentityTest, ImdsManagedIdentitySendsMetadataHeader) {
  StandIn s;
  s.server().Get(
      "/metadata/identity/oauth2/token", [&](const httplib::Request& req, httplib::Response& res) {
        s.token_requests++;
        if (req.get_header_value("Metadata") != "true") s.Problem("no Metadata: true header");
        if (req.get_param_value("resource") != "https://storage.azure.com/") {
          s.Problem("resource is " + req.get_param_value("resource"));
        }
        if (req.get_param_value("api-version").empty()) s.Problem("no api-version");
        if (req.get_param_value("client_id") != "user-assigned-1") s.Problem("no client_id");
        res.set_content(
            R"({"access_token":"imds-token-456","expires_in":"86399","token_type":"Bearer"})",
            "application/json");
      });
  s.ServeBlobs("imds-token-456");
  setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", s.url().c_str(), 1);
  setenv("AZURE_CLIENT_ID", "user-assigned-1", 1);
  ListTwice(s);
}

TEST_F(AzureIdentityTest, ShortLivedTokensAreFetchedAgain) {
  StandIn s;
  s.server().Get(
      "/metadata/identity/oauth2/token", [&](const httplib::Request&, httplib::Response& res) {
        s.token_requests++;
        res.set_content(R"({"access_token":"short-lived-789","expires_in":0})", "application/json");
      });
  auto source = storage::azure::NewImdsTokenSource(s.url(), "");
  for (int i = 0; i < 3; ++i) {
    auto token = source->Token(Context());
    ASSERT_TRUE(token.ok()) << token.status().ToString();
    EXPECT_EQ(*token, "short-lived-789");
  }
  EXPECT_EQ(s.token_requests.load(), 3);
  EXPECT_EQ(Redact("short-lived-789"), "[REDACTED]");
}

TEST_F(AzureIdentityTest, RefusedTokenIsUnauthenticatedAndNamesTheEndpoint) {
  StandIn s;
  s.server().Post("/tenant-1/oauth2/v2.0/token", [&](const httplib::Request&,
                                                     httplib::Response& res) {
    res.status = 401;
    res.set_content(
        R"({"error":"invalid_client","error_description":"AADSTS700211: No matching federated identity record found"})",
        "application/json");
  });
  s.ServeBlobs("never");
  testing::WriteText(dir_.File("token"), "some.federated.jwt");
  setenv("AZURE_FEDERATED_TOKEN_FILE", dir_.File("token").c_str(), 1);
  setenv("AZURE_CLIENT_ID", "client-1", 1);
  setenv("AZURE_TENANT_ID", "tenant-1", 1);
  setenv("AZURE_AUTHORITY_HOST", s.url().c_str(), 1);
  auto store = storage::OpenAzureStore(Target(s.url()));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto writer = (*store)->NewWriter(Context(), "a/x.snap");
  ASSERT_FALSE(writer.ok());
  EXPECT_EQ(writer.status().code(), Code::kUnauthenticated) << writer.status().ToString();
  EXPECT_NE(writer.status().message().find("AADSTS700211"), std::string::npos);
  EXPECT_NE(writer.status().message().find(s.url()), std::string::npos);
  EXPECT_EQ(writer.status().message().find("some.federated.jwt"), std::string::npos);
  EXPECT_EQ(s.blob_requests.load(), 0);
}

TEST_F(AzureIdentityTest, NoIdentityEndpointIsUnavailableWithAHint) {
  setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST",
         ("http://127.0.0.1:" + std::to_string(testing::FreePort())).c_str(), 1);
  storage::AzureOptions o;
  o.retry.max_attempts = 1;
  auto store = storage::OpenAzureStore(Target("http://127.0.0.1:1"), o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto st = (*store)->Stat(Context(), "a/x.snap");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().code(), Code::kUnavailable);
  EXPECT_NE(st.status().message().find("managed identity"), std::string::npos)
      << st.status().message();
}

}  // namespace
}  // namespace bao
