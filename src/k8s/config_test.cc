#include "k8s/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "common/redact.h"
#include "crypto/crypto.h"
#include "support/testing.h"

namespace bao::k8s {
namespace {

using bao::testing::TempDir;
using bao::testing::WriteText;

TEST(KubeconfigTest, CurrentContextWithInlineCaAndToken) {
  TempDir dir;
  std::string ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  WriteText(dir.File("config"), R"(apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: devcluster
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority-data: )" + crypto::Base64Encode(ca) +
                                    R"(
- name: other
  cluster:
    server: https://other:6443
    insecure-skip-tls-verify: true
contexts:
- name: dev
  context: {cluster: devcluster, user: alice, namespace: team-a}
- name: prod
  context: {cluster: other, user: bob}
users:
- name: alice
  user:
    token: kubeconfig-token-abcdef
- name: bob
  user:
    tokenFile: bob.token
)");
  auto c = LoadKubeconfig(dir.File("config"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->server, "https://127.0.0.1:6443");
  EXPECT_EQ(c->tls.ca_pem, ca);
  EXPECT_FALSE(c->tls.insecure_skip_verify);
  EXPECT_EQ(c->token, "kubeconfig-token-abcdef");
  EXPECT_EQ(c->default_namespace, "team-a");
  EXPECT_EQ(Redact("x kubeconfig-token-abcdef"), "x [REDACTED]");

  auto p = LoadKubeconfig(dir.File("config"), "prod");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->server, "https://other:6443");
  EXPECT_TRUE(p->tls.insecure_skip_verify);
  EXPECT_EQ(p->token_file, dir.File("bob.token"));  // relative to the kubeconfig
  EXPECT_EQ(p->default_namespace, "default");
}

TEST(KubeconfigTest, MergesSeveralFilesFirstWins) {
  TempDir dir;
  WriteText(dir.File("a"), R"(current-context: one
contexts:
- name: one
  context: {cluster: c, user: u}
)");
  WriteText(dir.File("b"), R"(current-context: two
clusters:
- name: c
  cluster: {server: "http://127.0.0.1:1", certificate-authority: ca.pem}
users:
- name: u
  user: {token: merged-token-123456}
)");
  auto c = LoadKubeconfig(dir.File("a") + ":" + dir.File("missing") + ":" + dir.File("b"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->server, "http://127.0.0.1:1");
  EXPECT_EQ(c->tls.ca_file, dir.File("ca.pem"));
  EXPECT_EQ(c->token, "merged-token-123456");
}

TEST(KubeconfigTest, ClearErrors) {
  TempDir dir;
  auto missing = LoadKubeconfig(dir.File("nope"));
  EXPECT_EQ(missing.status().code(), Code::kNotFound);

  WriteText(dir.File("bad"), "clusters: [unclosed");
  auto bad = LoadKubeconfig(dir.File("bad"));
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);

  WriteText(dir.File("noctx"), "current-context: x\n");
  auto noctx = LoadKubeconfig(dir.File("noctx"));
  EXPECT_EQ(noctx.status().code(), Code::kInvalidArgument);
  EXPECT_NE(noctx.status().message().find("\"x\""), std::string::npos);

  WriteText(dir.File("cert"), R"(current-context: a
clusters: [{name: c, cluster: {server: "https://h"}}]
contexts: [{name: a, context: {cluster: c, user: u}}]
users: [{name: u, user: {client-certificate-data: AAAA, client-key-data: BBBB}}]
)");
  auto cert = LoadKubeconfig(dir.File("cert"));
  EXPECT_EQ(cert.status().code(), Code::kInvalidArgument);
  EXPECT_NE(cert.status().message().find("client certificate"), std::string::npos);
}

TEST(InClusterConfigTest, ReadsServiceAccountFilesAndRotatesToken) {
  TempDir dir;
  InClusterPaths paths{dir.File("token"), dir.File("ca.crt"), dir.File("namespace")};
  unsetenv("KUBERNETES_SERVICE_HOST");
  EXPECT_EQ(InClusterConfig(paths).status().code(), Code::kFailedPrecondition);

  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  EXPECT_EQ(InClusterConfig(paths).status().code(), Code::kNotFound);  // no token yet
  WriteText(dir.File("token"), "sa-token-one-123456\n");
  WriteText(dir.File("ca.crt"), "pem");
  WriteText(dir.File("namespace"), "openbao-system\n");
  auto c = InClusterConfig(paths);
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->tls.ca_file, dir.File("ca.crt"));
  EXPECT_EQ(c->default_namespace, "openbao-system");
  EXPECT_EQ(Redact("sa-token-one-123456"), "[REDACTED]");

  TokenSource tokens(*c);
  auto t1 = tokens.Token();
  ASSERT_TRUE(t1.ok());
  EXPECT_EQ(*t1, "sa-token-one-123456");
  // Rotation: kubelet swaps the file; the next request uses the new token.
  WriteText(dir.File("token.new"), "sa-token-two-7890123");
  ASSERT_EQ(rename(dir.File("token.new").c_str(), dir.File("token").c_str()), 0);
  auto t2 = tokens.Token();
  ASSERT_TRUE(t2.ok());
  EXPECT_EQ(*t2, "sa-token-two-7890123");
  EXPECT_EQ(Redact("sa-token-two-7890123"), "[REDACTED]");
}

}  // namespace
}  // namespace bao::k8s
