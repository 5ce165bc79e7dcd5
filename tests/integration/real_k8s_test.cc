// The real-Kubernetes test helper (support/kube_apiserver.h) against etcd + kube-apiserver
// v1.33: the chart's CRDs apply and serve, ServiceAccount tokens from the TokenRequest API are
// held to their RBAC rules, and OwnerReferencesPermissionEnforcement really guards
// blockOwnerDeletion. Label real-k8s (ctest -L real-k8s).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "backup/spec.h"
#include "crypto/crypto.h"
#include "k8s/client.h"
#include "k8s/informer.h"
#include "support/kube_apiserver.h"

namespace bao::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// RBAC rules reach the authorizer through an informer: a binding made a moment ago may not
// be in force yet, so first uses poll for this long.
constexpr auto kRbacPropagation = 15s;

bool InCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && *ci != '\0' && std::string(ci) != "false";
}

class RealK8s : public ::testing::Test {
 protected:
  void SetUp() override {
    if (RealKubeApiServer::Binary().empty()) {
      std::string why = "kube-apiserver (" + PeerBinary("kube-apiserver") +
                        ") or etcd is not installed: run scripts/setup.sh --peers";
      // On CI the peers are part of the set-up: missing there is a failure, not a skip.
      if (InCi()) FAIL() << why;
      GTEST_SKIP() << why;
    }
    auto start = std::chrono::steady_clock::now();
    Status s = server_.Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - start)
                  .count();
    RecordProperty("startup_ms", std::to_string(ms));
    std::cout << "[ real-k8s ] etcd + kube-apiserver ready in " << ms << " ms\n";
  }

  void TearDown() override {
    long rss = server_.PeakRssKiB();
    if (rss > 0) {
      RecordProperty("peak_rss_kib", std::to_string(rss));
      std::cout << "[ real-k8s ] peak RSS etcd + kube-apiserver: " << rss / 1024 << " MiB\n";
    }
  }

  // Applies every CRD of the Helm chart (whatever the chart holds right now).
  void ApplyChartCrds() {
    std::vector<std::string> files;
    for (const auto& e : std::filesystem::directory_iterator(std::string(BAO_SOURCE_DIR) +
                                                             "/deploy/helm/bao-backup/crds")) {
      if (e.path().extension() == ".yaml") files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
    ASSERT_FALSE(files.empty());
    for (const std::string& f : files) {
      Status s = server_.ApplyFile(f);
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
  }

  static json Cluster(const std::string& name) {
    return {{"apiVersion", "openbao.org/v1alpha1"},
            {"kind", "OpenBaoCluster"},
            {"metadata", {{"name", name}}},
            {"spec",
             {{"replicas", 3},
              {"backup", {{"schedule", "0 3 * * *"}, {"target", {{"bucket", "backups"}}}}}}}};
  }

  RealKubeApiServer server_;
};

// The claims of a JWT (its middle part).
json JwtClaims(const std::string& jwt) {
  size_t a = jwt.find('.'), b = jwt.rfind('.');
  if (a == std::string::npos || a == b) return nullptr;
  Result<std::string> payload = crypto::Base64Decode(jwt.substr(a + 1, b - a - 1));
  return payload.ok() ? json::parse(*payload, nullptr, false) : json();
}

TEST_F(RealK8s, CrdsRbacAndServiceAccountTokens) {
  ApplyChartCrds();
  ASSERT_TRUE(server_
                  .Apply(R"(apiVersion: v1
kind: Namespace
metadata: {name: team}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: reader}
---
# Only `get` on ConfigMaps.
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: configmap-get}
rules:
  - {apiGroups: [""], resources: [configmaps], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader-configmap-get}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: configmap-get}
subjects:
  - {kind: ServiceAccount, name: reader, namespace: team}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: "strict"}
---
apiVersion: v1
kind: Secret
metadata: {name: hidden}
stringData: {password: hunter2}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: skipped}
spec: {}
)",
                         "team")
                  .ok());

  Result<std::string> token = server_.ServiceAccountToken("team", "reader");
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  json claims = JwtClaims(*token);
  EXPECT_EQ(claims["iss"], "https://kubernetes.default.svc") << claims;
  EXPECT_EQ(claims["sub"], "system:serviceaccount:team:reader") << claims;
  EXPECT_EQ(claims["aud"], json::array({"https://kubernetes.default.svc"})) << claims;

  k8s::Client reader(server_.ConfigFor(*token, "team"));
  Result<json> cm = NotFound("not read yet");
  WaitUntil(
      [&] {
        cm = reader.Get(k8s::kConfigMaps, "team", "settings");
        return cm.ok();
      },
      kRbacPropagation);
  ASSERT_TRUE(cm.ok()) << cm.status().ToString();
  EXPECT_EQ((*cm)["data"]["mode"], "strict");

  Result<k8s::ObjectList> secrets = reader.List(k8s::kSecrets, "team");
  ASSERT_FALSE(secrets.ok());
  EXPECT_EQ(k8s::HttpCodeOf(secrets.status()), 403) << secrets.status().ToString();
  EXPECT_EQ(secrets.status().code(), Code::kPermissionDenied);
  EXPECT_NE(secrets.status().message().find("system:serviceaccount:team:reader"), std::string::npos)
      << secrets.status().ToString();
  // `get` only, and only in its own namespace.
  Result<k8s::ObjectList> list = reader.List(k8s::kConfigMaps, "team");
  EXPECT_EQ(k8s::HttpCodeOf(list.status()), 403) << list.status().ToString();
  Result<json> other = reader.Get(k8s::kConfigMaps, "default", "kube-root-ca.crt");
  EXPECT_EQ(k8s::HttpCodeOf(other.status()), 403) << other.status().ToString();

  // An invalid token is not a user at all.
  k8s::Client stranger(server_.ConfigFor("not-a-valid-token-at-all", "team"));
  Result<json> denied = stranger.Get(k8s::kConfigMaps, "team", "settings");
  EXPECT_EQ(k8s::HttpCodeOf(denied.status()), 401) << denied.status().ToString();

  // The custom resources are served and keep what was written.
  k8s::Client admin(server_.AdminConfig());
  Result<json> created = admin.Create(k8s::kOpenBaoClusters, "team", Cluster("bao"));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  Result<json> got = admin.Get(k8s::kOpenBaoClusters, "team", "bao");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ((*got)["metadata"]["uid"], (*created)["metadata"]["uid"]);
  EXPECT_EQ((*got)["spec"]["replicas"], 3);
  EXPECT_EQ((*got)["spec"]["backup"]["target"]["bucket"], "backups");
  // The reader has no rights on them.
  Result<json> forbidden = reader.Get(k8s::kOpenBaoClusters, "team", "bao");
  EXPECT_EQ(k8s::HttpCodeOf(forbidden.status()), 403) << forbidden.status().ToString();
}

// spec.backup.extraTargets as the chart's CRD defines it: each item a BackupTarget with the
// target's defaults and an optional name; names unique (CEL), at most 4.
TEST_F(RealK8s, TheCrdValidatesExtraTargets) {
  ApplyChartCrds();
  k8s::Client admin(server_.AdminConfig());
  json cluster = Cluster("copies");
  cluster["spec"]["backup"]["extraTargets"] =
      json::array({{{"name", "dr"},
                    {"provider", "azure"},
                    {"bucket", "copies"},
                    {"azure", {{"storageAccount", "acct"}}},
                    {"credentialsSecretRef", {{"name", "azure-creds"}}}},
                   {{"provider", "gcs"}, {"bucket", "g"}}});
  Result<json> created = admin.Create(k8s::kOpenBaoClusters, "default", cluster);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const json& extra = (*created)["spec"]["backup"]["extraTargets"];
  ASSERT_EQ(extra.size(), 2u);
  EXPECT_EQ(extra[0]["name"], "dr");
  EXPECT_EQ(extra[1]["partSize"], 10485760) << "the target's defaults apply: " << extra.dump();
  EXPECT_EQ(extra[1]["concurrency"], 3);
  // And the operator's own parser takes what the server stored.
  Result<backup::BackupSpec> spec =
      backup::ParseBackupSpec((*created)["spec"]["backup"], "spec.backup", true, false);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->extra_targets[1].name, "extra-2");

  json same = Cluster("same-names");
  same["spec"]["backup"]["extraTargets"] =
      json::array({{{"name", "dr"}, {"bucket", "a"}}, {{"name", "dr"}, {"bucket", "b"}}});
  Result<json> refused = admin.Create(k8s::kOpenBaoClusters, "default", same);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(k8s::HttpCodeOf(refused.status()), 422) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("extraTargets names must be unique"), std::string::npos)
      << refused.status().ToString();

  json many = Cluster("many");
  for (int i = 0; i < 5; ++i) many["spec"]["backup"]["extraTargets"].push_back({{"bucket", "b"}});
  refused = admin.Create(k8s::kOpenBaoClusters, "default", many);
  EXPECT_EQ(k8s::HttpCodeOf(refused.status()), 422) << refused.status().ToString();

  json bad_name = Cluster("bad-name");
  bad_name["spec"]["backup"]["extraTargets"] =
      json::array({{{"name", "Not_A_Label"}, {"bucket", "b"}}});
  refused = admin.Create(k8s::kOpenBaoClusters, "default", bad_name);
  EXPECT_EQ(k8s::HttpCodeOf(refused.status()), 422) << refused.status().ToString();
}

TEST_F(RealK8s, ApplyReportsTheServersErrors) {
  // An unknown field is an error, with the server's message (HTTP 500 "failed to create typed
  // patch object" from server-side apply, kubernetes/kubernetes#122480; mapped to
  // kInvalidArgument).
  Status s = server_.Apply(R"(apiVersion: v1
kind: ConfigMap
metadata: {name: typo}
dataa: {a: b}
)");
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("ConfigMap default/typo"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find(".dataa: field not declared in schema"), std::string::npos)
      << s.ToString();

  s = server_.Apply("apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g}\n");
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString();

  // Applying twice is a no-op; the object is visible to a client.
  const char* yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\ndata: {a: b}\n";
  ASSERT_TRUE(server_.Apply(yaml).ok());
  ASSERT_TRUE(server_.Apply(yaml).ok());
  k8s::Client admin(server_.AdminConfig());
  Result<json> cm = admin.Get(k8s::kConfigMaps, "default", "ok");
  ASSERT_TRUE(cm.ok()) << cm.status().ToString();
  EXPECT_EQ((*cm)["metadata"]["managedFields"][0]["manager"], "bao-backup-tests");
}

// A ConfigMap owned by OpenBaoCluster `owner`, optionally blocking its deletion.
json OwnedConfigMap(const std::string& name, const json& owner, bool block) {
  json ref = {{"apiVersion", "openbao.org/v1alpha1"},
              {"kind", "OpenBaoCluster"},
              {"name", owner["metadata"]["name"]},
              {"uid", owner["metadata"]["uid"]}};
  if (block) ref["blockOwnerDeletion"] = true;
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"ownerReferences", json::array({ref})}}},
          {"data", {{"k", "v"}}}};
}

TEST_F(RealK8s, OwnerReferencesPermissionEnforcement) {
  ApplyChartCrds();
  // Setting ownerReferences at all needs `delete` on the object (the plugin's first rule);
  // blockOwnerDeletion needs `update` on the owner's finalizers subresource.
  ASSERT_TRUE(server_
                  .Apply(R"(apiVersion: v1
kind: Namespace
metadata: {name: own}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: plain}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: finalizer}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: plain}
rules:
  - {apiGroups: [""], resources: [configmaps], verbs: [create, get, delete]}
  - {apiGroups: [openbao.org], resources: [openbaoclusters], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: finalizer}
rules:
  - {apiGroups: [""], resources: [configmaps], verbs: [create, get, delete]}
  - {apiGroups: [openbao.org], resources: [openbaoclusters], verbs: [get]}
  - {apiGroups: [openbao.org], resources: [openbaoclusters/finalizers], verbs: [update]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: plain}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: plain}
subjects: [{kind: ServiceAccount, name: plain, namespace: own}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: finalizer}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: finalizer}
subjects: [{kind: ServiceAccount, name: finalizer, namespace: own}]
)",
                         "own")
                  .ok());
  k8s::Client admin(server_.AdminConfig());
  Result<json> owner = admin.Create(k8s::kOpenBaoClusters, "own", Cluster("bao"));
  ASSERT_TRUE(owner.ok()) << owner.status().ToString();

  Result<std::string> plain_token = server_.ServiceAccountToken("own", "plain");
  Result<std::string> finalizer_token = server_.ServiceAccountToken("own", "finalizer");
  ASSERT_TRUE(plain_token.ok()) << plain_token.status().ToString();
  ASSERT_TRUE(finalizer_token.ok()) << finalizer_token.status().ToString();
  k8s::Client plain(server_.ConfigFor(*plain_token, "own"));
  k8s::Client finalizer(server_.ConfigFor(*finalizer_token, "own"));

  // With the finalizers permission, blockOwnerDeletion is accepted (polled: the RoleBinding and
  // the CRD's REST mapping reach the authorizer and the admission plugin asynchronously).
  Result<json> blocking = NotFound("not created yet");
  WaitUntil(
      [&] {
        blocking =
            finalizer.Create(k8s::kConfigMaps, "own", OwnedConfigMap("blocking", *owner, true));
        return blocking.ok();
      },
      kRbacPropagation);
  ASSERT_TRUE(blocking.ok()) << blocking.status().ToString();
  EXPECT_EQ((*blocking)["metadata"]["ownerReferences"][0]["blockOwnerDeletion"], true);

  // Without it, an ownerReference is fine (create + delete on ConfigMaps suffice) ...
  Result<json> weak = NotFound("not created yet");
  WaitUntil(
      [&] {
        weak = plain.Create(k8s::kConfigMaps, "own", OwnedConfigMap("weak", *owner, false));
        return weak.ok();
      },
      kRbacPropagation);
  ASSERT_TRUE(weak.ok()) << weak.status().ToString();

  // ... but blockOwnerDeletion is refused by OwnerReferencesPermissionEnforcement.
  Result<json> refused =
      plain.Create(k8s::kConfigMaps, "own", OwnedConfigMap("refused", *owner, true));
  ASSERT_FALSE(refused.ok());
  int code = k8s::HttpCodeOf(refused.status());
  EXPECT_TRUE(code == 403 || code == 422) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("blockOwnerDeletion"), std::string::npos)
      << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("finalizers"), std::string::npos)
      << refused.status().ToString();
  EXPECT_TRUE(k8s::IsNotFound(admin.Get(k8s::kConfigMaps, "own", "refused").status()));
}

// Writes name bao-backup as their field manager (User-Agent and ?fieldManager=); the informer's
// cache leaves metadata.managedFields out.
TEST_F(RealK8s, WritesNameTheirManagerAndTheInformerCacheIsSlim) {
  k8s::Config config = server_.AdminConfig();
  config.user_agent = "bao-backup-operator";
  k8s::Client client(config);
  Result<json> created = client.Create(k8s::kConfigMaps, "default",
                                       {{"apiVersion", "v1"},
                                        {"kind", "ConfigMap"},
                                        {"metadata", {{"name", "managed"}}},
                                        {"data", {{"a", "b"}}}});
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  ASSERT_TRUE((*created)["metadata"].contains("managedFields"));
  EXPECT_EQ((*created)["metadata"]["managedFields"][0]["manager"], "bao-backup-operator");

  k8s::InformerOptions o;
  o.resource = k8s::kConfigMaps;
  o.ns = "default";
  k8s::Informer informer(&client, o, nullptr);
  informer.Start();
  ASSERT_TRUE(WaitUntil([&] { return informer.Get("default", "managed").has_value(); }, 10s));
  json cached = *informer.Get("default", "managed");
  EXPECT_EQ(cached["data"]["a"], "b");
  EXPECT_FALSE(cached["metadata"].contains("managedFields")) << cached.dump();
  // Also for what arrives through the watch.
  ASSERT_TRUE(
      client.MergePatch(k8s::kConfigMaps, "default", "managed", {{"data", {{"a", "c"}}}}).ok());
  ASSERT_TRUE(
      WaitUntil([&] { return (*informer.Get("default", "managed"))["data"]["a"] == "c"; }, 10s));
  EXPECT_FALSE((*informer.Get("default", "managed"))["metadata"].contains("managedFields"));
  informer.Stop();
}

}  // namespace
}  // namespace bao::testing
