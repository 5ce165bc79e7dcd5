// The backup manager against a real kube-apiserver v1.33 + etcd (support/kube_apiserver.h):
// the chart's CRDs and RBAC as shipped (helm template), the manager authenticated as the
// chart's ServiceAccount with a TokenRequest token, RBAC enforced, and admission including
// OwnerReferencesPermissionEnforcement. Nothing runs Jobs here: the test plays the Job
// controller and the kubelet with status shapes the real server accepts (a Pod made from the
// Job's template, terminated with the executor's result; the Job's startTime, then
// SuccessCriteriaMet/FailureTarget, then Complete/Failed with completionTime). The executor's
// own behaviour is tested against real OpenBao elsewhere; its result here is written by the
// test. Label real-k8s.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "backup/spec.h"
#include "crypto/crypto.h"
#include "http/client.h"
#include "k8s/client.h"
#include "k8s/events.h"
#include "operator/backup_manager.h"
#include "operator/job_builder.h"
#include "support/k8s_operator.h"
#include "support/kube_apiserver.h"
#include "support/testing.h"

namespace bao::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

TimePoint At(const char* rfc3339) {
  return *ParseRfc3339(rfc3339);
}

bool InCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && *ci != '\0' && std::string(ci) != "false";
}

// One API server for the whole program: every test works in a namespace of its own.
struct Shared {
  std::unique_ptr<RealKubeApiServer> server;
  std::string error;           // set when the set-up failed
  std::string operator_token;  // the chart's ServiceAccount (cluster-wide install)
};
Shared* shared = nullptr;

class RealK8sOperator : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    shared = new Shared;
    if (RealKubeApiServer::Binary().empty() || PeerBinary("helm").empty()) return;
    shared->server = std::make_unique<RealKubeApiServer>();
    RealKubeApiServer& s = *shared->server;
    if (Status st = s.Start(); !st.ok()) {
      shared->error = "start: " + st.ToString();
      return;
    }
    Result<std::string> token = InstallChart(s, "bao-backup", "bao-backup-system");
    if (!token.ok()) {
      shared->error = "chart: " + token.status().ToString() + "\n" + s.Logs();
      return;
    }
    shared->operator_token = *token;
  }
  static void TearDownTestSuite() {
    delete shared;
    shared = nullptr;
  }

  void SetUp() override {
    if (!shared->server) {
      std::string why = "kube-apiserver, etcd or helm is not installed (" +
                        PeerBinary("kube-apiserver") + "): run scripts/setup.sh --peers";
      if (InCi()) FAIL() << why;  // on CI the peers are part of the set-up
      GTEST_SKIP() << why;
    }
    ASSERT_TRUE(shared->error.empty()) << shared->error;
    ns_ = "t-" + crypto::RandomHex(6);
    admin_ = std::make_unique<k8s::Client>(shared->server->AdminConfig());
    Result<json> created = admin_->Create(
        k8s::kNamespaces, "",
        {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns_}}}});
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    operator_ =
        std::make_unique<k8s::Client>(shared->server->ConfigFor(shared->operator_token, ns_));
    events_ = std::make_unique<k8s::EventRecorder>(operator_.get(), "bao-backup-operator", &clock_);
  }

  // A reconcile by a fresh manager (as after a restart), as the operator's ServiceAccount.
  // `as` = another identity's client (its Events are recorded as that identity too).
  Result<op::ReconcileResult> Reconcile(const std::string& name, k8s::Client* as = nullptr) {
    op::ManagerOptions o;
    o.clock = &clock_;
    o.job.default_image = "bao-backup:test";
    k8s::Client* client = as ? as : operator_.get();
    k8s::EventRecorder events(client, "bao-backup-operator", &clock_);
    op::BackupManager manager(client, as ? &events : events_.get(), o);
    return manager.Reconcile(ns_, name);
  }
  std::string Outcome(const std::string& name) {
    Result<op::ReconcileResult> r = Reconcile(name);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->outcome : "error: " + r.status().ToString();
  }

  void CreateSecret(const std::string& name, const std::map<std::string, std::string>& data) {
    json d = json::object();
    for (const auto& [k, v] : data) d[k] = crypto::Base64Encode(v);
    Result<json> r = admin_->Create(k8s::kSecrets, ns_,
                                    {{"apiVersion", "v1"},
                                     {"kind", "Secret"},
                                     {"metadata", {{"name", name}, {"namespace", ns_}}},
                                     {"data", d}});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  static json BackupSpec() {
    return {{"schedule", "* * * * *"},
            {"target",
             {{"provider", "s3"},
              {"endpoint", "https://s3.example.com"},
              {"bucket", "backups"},
              {"credentialsSecretRef", {{"name", "s3-creds"}}}}},
            {"tokenSecretRef", {{"name", "bao-token"}}},
            {"retention", {{"maxCount", 3}}}};
  }

  // A Running cluster with the Secrets its Jobs mount.
  void CreateCluster(const std::string& name, const json& backup, const json& annotations = {}) {
    CreateSecret("s3-creds", {{"accessKeyId", "a"}, {"secretAccessKey", "b"}});
    CreateSecret("bao-token", {{"token", "s.backup"}});
    CreateSecret(op::TlsCaSecretName(name), {{"ca.crt", "a CA"}});
    json meta = {{"name", name}, {"namespace", ns_}};
    if (annotations.is_object()) meta["annotations"] = annotations;
    Result<json> c =
        admin_->Create(k8s::kOpenBaoClusters, ns_,
                       {{"apiVersion", "openbao.org/v1alpha1"},
                        {"kind", "OpenBaoCluster"},
                        {"metadata", meta},
                        {"spec", {{"version", "2.7.2"}, {"replicas", 3}, {"backup", backup}}}});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    SetStatus(name, {{"phase", "Running"}, {"currentVersion", "2.7.2"}});
  }
  void SetStatus(const std::string& name, const json& status) {
    Result<json> r = admin_->PatchStatus(k8s::kOpenBaoClusters, ns_, name, {{"status", status}});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  json Cluster(const std::string& name) {
    Result<json> c = admin_->Get(k8s::kOpenBaoClusters, ns_, name);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? *c : json::object();
  }
  json Condition(const std::string& name) {
    json c = Cluster(name);
    for (const json& cond : c["status"].value("conditions", json::array())) {
      if (cond["type"] == op::kConditionBackupConfigured) return cond;
    }
    return nullptr;
  }
  std::vector<json> Jobs() {
    Result<k8s::ObjectList> l = admin_->List(k8s::kJobs, ns_);
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    return l.ok() ? l->items : std::vector<json>{};
  }
  // Events about `involved` with `reason`: how many objects, and their summed count.
  std::pair<int, int> Events(const std::string& reason, const std::string& involved) {
    Result<k8s::ObjectList> l = admin_->List(k8s::kEvents, ns_);
    int objects = 0, count = 0;
    for (const json& e : l.ok() ? l->items : std::vector<json>{}) {
      if (e.value("reason", "") == reason && e["involvedObject"].value("name", "") == involved) {
        ++objects;
        count += e.value("count", 1);
      }
    }
    return {objects, count};
  }

  ManualClock clock_{At("2025-01-15T03:00:30Z")};
  std::string ns_;
  std::unique_ptr<k8s::Client> admin_, operator_;
  std::unique_ptr<k8s::EventRecorder> events_;
};

// Items 1, 4 and 5: the whole scheduled flow as the chart's ServiceAccount (the owner
// references with blockOwnerDeletion need openbaoclusters/finalizers), the condition following
// spec changes, and lastBackupTime from when the backup ended.
TEST_F(RealK8sOperator, ScheduledBackupAsTheChartsServiceAccount) {
  CreateCluster("bao", BackupSpec());
  EXPECT_EQ(Outcome("bao"), "idle");
  Result<json> sa = admin_->Get(k8s::kServiceAccounts, ns_, "bao-backup-serviceaccount");
  ASSERT_TRUE(sa.ok()) << sa.status().ToString();
  EXPECT_EQ((*sa)["metadata"]["ownerReferences"][0]["blockOwnerDeletion"], true);
  json cond = Condition("bao");
  EXPECT_EQ(cond["status"], "True") << cond;
  EXPECT_EQ(cond["observedGeneration"], 1);

  clock_.Set(At("2025-01-15T03:01:05Z"));
  EXPECT_EQ(Outcome("bao"), "created");
  std::vector<json> jobs = Jobs();
  ASSERT_EQ(jobs.size(), 1u);
  const json job = jobs[0];
  EXPECT_EQ(job["metadata"]["ownerReferences"][0]["blockOwnerDeletion"], true);

  // The Job ran from 03:01:06 to 03:01:20; the operator only looks again at 03:01:50.
  const std::string result =
      R"({"key":"ns/bao/2025-01-15T03-01-06Z-01234567.snap","size":4096,"duration":"14s"})";
  Status finished =
      FinishJob(*admin_, job, true, result, At("2025-01-15T03:01:06Z"), At("2025-01-15T03:01:20Z"));
  ASSERT_TRUE(finished.ok()) << finished.ToString();
  clock_.Set(At("2025-01-15T03:01:50Z"));
  EXPECT_EQ(Outcome("bao"), "idle");
  json backup = Cluster("bao")["status"]["backup"];
  EXPECT_EQ(backup["lastBackupTime"], "2025-01-15T03:01:20Z") << backup;
  EXPECT_EQ(backup["lastBackupSize"], 4096);
  EXPECT_EQ(backup["consecutiveFailures"], 0);
  EXPECT_TRUE(Cluster("bao")["status"]["operationLock"].is_null());
  EXPECT_EQ(Events("BackupSucceeded", "bao").first, 1);

  // A spec change: the condition says it looked at the new generation (kubectl wait
  // --for=condition=BackupConfigured works).
  Result<json> patched = admin_->MergePatch(k8s::kOpenBaoClusters, ns_, "bao",
                                            {{"spec", {{"backup", {{"schedule", "0 3 * * *"}}}}}});
  ASSERT_TRUE(patched.ok());
  ASSERT_EQ((*patched)["metadata"]["generation"], 2);
  Outcome("bao");
  cond = Condition("bao");
  EXPECT_EQ(cond["observedGeneration"], 2) << cond;
  EXPECT_EQ(cond["message"], "backups run on schedule \"0 3 * * *\"");
}

// Item 1: writes the server refuses (here: RBAC without openbaoclusters/finalizers, so
// OwnerReferencesPermissionEnforcement refuses blockOwnerDeletion with 403) are a condition and
// a Warning Event, not only a log line, and clear once the cause is fixed.
TEST_F(RealK8sOperator, RefusedWritesAreAConditionAndAWarningEvent) {
  // The chart's rules, less update on openbaoclusters/finalizers.
  Status applied = shared->server->Apply(R"(apiVersion: v1
kind: ServiceAccount
metadata: {name: weak}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: weak}
rules:
  - {apiGroups: [openbao.org], resources: [openbaoclusters], verbs: [get, list, watch, patch]}
  - {apiGroups: [openbao.org], resources: [openbaoclusters/status], verbs: [patch]}
  - {apiGroups: [openbao.org], resources: [openbaorestores], verbs: [list]}
  - {apiGroups: [batch], resources: [jobs], verbs: [get, list, watch, create, patch]}
  - {apiGroups: [""], resources: [pods], verbs: [list]}
  - {apiGroups: [""], resources: [secrets], verbs: [get]}
  - {apiGroups: [""], resources: [serviceaccounts], verbs: [get, create]}
  - {apiGroups: [""], resources: [events], verbs: [create, patch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: weak}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: weak}
subjects: [{kind: ServiceAccount, name: weak}]
)",
                                         ns_);
  ASSERT_TRUE(applied.ok()) << applied.ToString();
  Result<std::string> token = shared->server->ServiceAccountToken(ns_, "weak");
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  k8s::Client weak(shared->server->ConfigFor(*token, ns_));
  ASSERT_TRUE(WaitUntil([&] { return weak.List(k8s::kOpenBaoClusters, ns_).ok(); }, 20s));
  CreateCluster("bao", BackupSpec(), {{op::kAnnotationTrigger, "now"}});

  // The ServiceAccount is refused.
  Result<op::ReconcileResult> r = Reconcile("bao", &weak);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(k8s::HttpCodeOf(r.status()), 403) << r.status().ToString();
  json cond = Condition("bao");
  EXPECT_EQ(cond["status"], "False") << cond;
  EXPECT_EQ(cond["reason"], op::kReasonServiceAccountCreateFailed);
  EXPECT_NE(cond["message"].get<std::string>().find("blockOwnerDeletion"), std::string::npos)
      << cond;
  EXPECT_EQ(Events(op::kReasonServiceAccountCreateFailed, "bao").first, 1);

  // Someone creates it by hand: now the Job is refused, for the same reason.
  ASSERT_TRUE(admin_
                  ->Create(k8s::kServiceAccounts, ns_,
                           {{"apiVersion", "v1"},
                            {"kind", "ServiceAccount"},
                            {"metadata", {{"name", op::BackupServiceAccountName("bao")}}}})
                  .ok());
  r = Reconcile("bao", &weak);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(k8s::HttpCodeOf(r.status()), 403) << r.status().ToString();
  cond = Condition("bao");
  EXPECT_EQ(cond["reason"], op::kReasonJobCreateFailed) << cond;
  EXPECT_EQ(Events(op::kReasonJobCreateFailed, "bao").first, 1);
  // Retrying does not flip the condition back and forth (the one Configured so far is from
  // when the ServiceAccount appeared).
  const int configured = Events("Configured", "bao").second;
  EXPECT_EQ(configured, 1);
  EXPECT_FALSE(Reconcile("bao", &weak).ok());
  EXPECT_EQ(Condition("bao")["reason"], op::kReasonJobCreateFailed);
  EXPECT_EQ(Events("Configured", "bao").second, configured);
  EXPECT_TRUE(Jobs().empty());

  // The RBAC is fixed: the held lock's Job is created, the condition is True again.
  applied = shared->server->Apply(R"(apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: weak-finalizers}
rules:
  - {apiGroups: [openbao.org], resources: [openbaoclusters/finalizers], verbs: [update]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: weak-finalizers}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: weak-finalizers}
subjects: [{kind: ServiceAccount, name: weak}]
)",
                                  ns_);
  ASSERT_TRUE(applied.ok()) << applied.ToString();
  EXPECT_TRUE(WaitUntil([&] { return Reconcile("bao", &weak).ok(); }, 20s));
  EXPECT_EQ(Jobs().size(), 1u);
  EXPECT_EQ(Condition("bao")["status"], "True");
  EXPECT_EQ(Events("Configured", "bao").second, configured + 1);
}

// Item 3: every field the parser reads survives the real CRD schema unchanged (no pruning,
// strict field validation), and what the parser refuses the schema refuses too.
TEST_F(RealK8sOperator, CrdSchemaAndParserAgreeFieldByField) {
  json every = {{"schedule", "0 3 * * *"},
                {"target",
                 {{"provider", "s3"},
                  {"endpoint", "https://s3.example.com"},
                  {"bucket", "backups"},
                  {"pathPrefix", "prod/eu"},
                  {"credentialsSecretRef", {{"name", "s3-creds"}}},
                  {"partSize", 16777216},
                  {"concurrency", 4},
                  {"region", "eu-west-1"},
                  {"roleArn", "arn:aws:iam::123456789012:role/backup"},
                  {"usePathStyle", true},
                  {"insecureSkipVerify", false},
                  {"gcs", {{"project", "p"}}},
                  {"azure", {{"storageAccount", "acct"}, {"container", "c"}}}}},
                {"jwtAuthRole", "backup"},
                {"tokenSecretRef", {{"name", "bao-token"}}},
                {"retention",
                 {{"maxCount", 7},
                  {"maxAge", "720h"},
                  {"keepDaily", 7},
                  {"keepWeekly", 4},
                  {"keepMonthly", 12}}},
                {"image", "registry.example.com/bao-backup:1.2.3"}};
  auto create = [&](const std::string& name, const json& backup) {
    return shared->server->Call(
        "POST",
        "/apis/openbao.org/v1alpha1/namespaces/" + ns_ + "/openbaoclusters?fieldValidation=Strict",
        {{"apiVersion", "openbao.org/v1alpha1"},
         {"kind", "OpenBaoCluster"},
         {"metadata", {{"name", name}}},
         {"spec", {{"backup", backup}}}});
  };
  Result<KubeReply> r = create("every", every);
  ASSERT_TRUE(r.ok() && r->ok()) << (r.ok() ? r->Describe() : r.status().ToString());
  json stored = Cluster("every")["spec"]["backup"];
  EXPECT_EQ(stored, every) << "the CRD pruned or changed fields:\n" << stored.dump(2);
  Result<backup::BackupSpec> parsed = backup::ParseBackupSpec(stored, "spec.backup", true, true);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->retention.keep_monthly, 12);
  EXPECT_EQ(parsed->target.role_arn, "arn:aws:iam::123456789012:role/backup");

  // Refused by both: the server with 422, the parser with an error.
  struct Bad {
    const char* what;
    json backup;
  };
  auto with = [&](const std::function<void(json&)>& change) {
    json b = every;
    change(b);
    return b;
  };
  std::vector<Bad> bad = {
      {"maxAge unit", with([](json& b) { b["retention"]["maxAge"] = "5y"; })},
      {"maxAge no unit", with([](json& b) { b["retention"]["maxAge"] = "10"; })},
      {"maxAge nanoseconds", with([](json& b) { b["retention"]["maxAge"] = "10ns"; })},
      {"maxAge length",
       with([](json& b) { b["retention"]["maxAge"] = std::string(40, '1') + "h"; })},
      {"keepDaily negative", with([](json& b) { b["retention"]["keepDaily"] = -1; })},
      {"keepWeekly too many", with([](json& b) { b["retention"]["keepWeekly"] = 100001; })},
      {"partSize", with([](json& b) { b["target"]["partSize"] = 1024; })},
      {"concurrency", with([](json& b) { b["target"]["concurrency"] = 11; })},
      {"provider", with([](json& b) { b["target"]["provider"] = "ftp"; })},
      {"no bucket", with([](json& b) {
         b["target"].erase("bucket");
         b["target"].erase("azure");
       })},
  };
  int n = 0;
  for (const Bad& b : bad) {
    Result<KubeReply> refused = create("bad-" + std::to_string(n++), b.backup);
    ASSERT_TRUE(refused.ok());
    EXPECT_EQ(refused->status, 422) << b.what << ": " << refused->Describe();
    EXPECT_FALSE(backup::ParseBackupSpec(b.backup, "spec.backup", true, true).ok()) << b.what;
  }

  // A cross-namespace Secret reference is kept by the schema so that the operator can refuse it
  // with a condition that names the field.
  json cross = with([](json& b) { b["target"]["credentialsSecretRef"]["namespace"] = "other"; });
  Result<KubeReply> kept = create("cross", cross);
  ASSERT_TRUE(kept.ok() && kept->ok()) << (kept.ok() ? kept->Describe() : "");
  EXPECT_EQ(Outcome("cross"), "invalid");
  json cond = Condition("cross");
  EXPECT_EQ(cond["reason"], "CrossNamespaceReference") << cond;
  EXPECT_NE(cond["message"].get<std::string>().find("credentialsSecretRef.namespace"),
            std::string::npos);
}

// Items 6 and 7: a cluster name longer than a label value and target.roleArn (IRSA): the real
// server accepts the Job, which carries the projected STS token and the AWS variables.
TEST_F(RealK8sOperator, LongClusterNameAndRoleArnMakeAJobTheServerAccepts) {
  const std::string name = "payments-eu-west-1-production-openbao-cluster-primary-with-long-name";
  ASSERT_GT(name.size(), 63u);
  json backup = BackupSpec();
  backup["target"].erase("credentialsSecretRef");
  backup["target"]["roleArn"] = "arn:aws:iam::123456789012:role/bao-backup";
  CreateCluster(name, backup, {{op::kAnnotationTrigger, "now"}});
  EXPECT_EQ(Outcome(name), "created");
  std::vector<json> jobs = Jobs();
  ASSERT_EQ(jobs.size(), 1u);
  const json& meta = jobs[0]["metadata"];
  EXPECT_EQ(meta["labels"][op::kLabelCluster], op::ClusterLabelValue(name));
  EXPECT_EQ(meta["annotations"][op::kAnnotationCluster], name);
  json env = jobs[0]["spec"]["template"]["spec"]["containers"][0]["env"];
  EXPECT_NE(env.dump().find("AWS_WEB_IDENTITY_TOKEN_FILE"), std::string::npos) << env;
  EXPECT_NE(jobs[0]["spec"]["template"]["spec"]["volumes"].dump().find("sts.amazonaws.com"),
            std::string::npos);
  EXPECT_EQ(Condition(name)["status"], "True");
  // The next reconcile finds the Job through the shortened label: it is running, not lost.
  clock_.Advance(std::chrono::seconds(5));
  EXPECT_EQ(Outcome(name), "running");
}

// Item 10: skipped slots aggregate into one Event with a count, and the printer column shows
// whether backups are configured.
TEST_F(RealK8sOperator, SkippedSlotsAggregateAndPrinterColumnsShowTheCondition) {
  CreateCluster("bao", BackupSpec());
  SetStatus("bao", {{"phase", "Upgrading"}});
  EXPECT_EQ(Outcome("bao"), "idle");
  for (const char* t : {"2025-01-15T03:01:05Z", "2025-01-15T03:02:05Z", "2025-01-15T03:03:05Z"}) {
    clock_.Set(At(t));
    EXPECT_EQ(Outcome("bao"), "skipped:ClusterNotRunning");
  }
  auto [objects, count] = Events("BackupSkipped", "bao");
  EXPECT_EQ(objects, 1);
  EXPECT_EQ(count, 3);

  // What `kubectl get openbaoclusters` shows: the server's Table rendering.
  http::Client http;
  http::Request req;
  req.url =
      shared->server->url() + "/apis/openbao.org/v1alpha1/namespaces/" + ns_ + "/openbaoclusters";
  req.tls = shared->server->Tls();
  req.headers = {{"Authorization", "Bearer " + shared->server->admin_token()},
                 {"Accept", "application/json;as=Table;v=v1;g=meta.k8s.io"}};
  Result<http::Response> t = http.Do(req);
  ASSERT_TRUE(t.ok() && t->status == 200) << (t.ok() ? t->body : t.status().ToString());
  json table = json::parse(t->body);
  int column = -1;
  const json& columns = table["columnDefinitions"];
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i]["name"] == "Backups") column = static_cast<int>(i);
  }
  ASSERT_GE(column, 0) << columns;
  EXPECT_EQ(table["rows"][0]["cells"][column], "Configured") << table["rows"];
}

// Items 8, 9 and 10 with the real binary: a namespaced install (Roles only in the watched
// namespace), `bao-backup operator --watch-namespace` as that ServiceAccount, the metrics
// listener on --metrics-bind-address with per-cluster gauges computed from status (so a
// replica that recorded nothing serves them), "became leader" logged once.
TEST_F(RealK8sOperator, NamespacedInstallRunsTheOperatorProcess) {
  CreateCluster("bao", BackupSpec());
  SetStatus("bao", {{"backup",
                     {{"lastBackupTime", "2025-01-15T03:01:20Z"},
                      {"consecutiveFailures", 2},
                      {"lastBackupSize", 4096}}}});
  const std::string release_ns = "scoped-" + ns_;
  Result<std::string> rendered =
      RenderChart("scoped", release_ns,
                  {"--set", "rbac.scope=namespaced", "--set", "watchNamespaces={" + ns_ + "}"});
  ASSERT_TRUE(rendered.ok()) << rendered.status().ToString();
  ASSERT_EQ(rendered->find("kind: ClusterRole"), std::string::npos) << *rendered;
  Result<std::string> token = InstallChart(
      *shared->server, "scoped", release_ns,
      {"--set", "rbac.scope=namespaced", "--set", "watchNamespaces={" + ns_ + "}"}, ns_);
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  k8s::Client scoped(shared->server->ConfigFor(*token, ns_));
  // Least privilege: nothing outside the watched namespace, no Secret listing inside it.
  EXPECT_EQ(k8s::HttpCodeOf(scoped.List(k8s::kOpenBaoClusters, "").status()), 403);
  EXPECT_EQ(k8s::HttpCodeOf(scoped.List(k8s::kSecrets, ns_).status()), 403);
  EXPECT_EQ(k8s::HttpCodeOf(scoped.Get(k8s::kSecrets, "default", "x").status()), 403);

  TempDir dir;
  WriteText(dir.File("kubeconfig"), Kubeconfig(*shared->server, *token, ns_));
  int port = FreePort();
  Process p;
  std::string error;
  ASSERT_TRUE(p.Start(
      {BuildBinary("bao-backup"), "--log-format", "json", "operator", "--kubeconfig",
       dir.File("kubeconfig"), "--watch-namespace", ns_, "--lease-namespace", release_ns,
       "--metrics-bind-address", "127.0.0.1:" + std::to_string(port), "--image", "bao-backup:test"},
      {}, &error))
      << error;
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  ASSERT_TRUE(WaitForHttp(base + "/healthz", 10s)) << p.Stderr();
  std::string metrics;
  EXPECT_TRUE(WaitUntil(
      [&] {
        metrics = testing::Run({"curl", "-s", base + "/metrics"}, {}, 10s).out;
        return metrics.find("bao_backup_consecutive_failures{namespace=\"" + ns_ +
                            "\",cluster=\"bao\"} 2") != std::string::npos;
      },
      15s))
      << metrics;
  EXPECT_NE(metrics.find("bao_backup_last_success_timestamp_seconds{namespace=\"" + ns_ +
                         "\",cluster=\"bao\"} 1736910080"),
            std::string::npos)
      << metrics;

  // A manual trigger becomes a Job, made by the process as the namespaced ServiceAccount.
  ASSERT_TRUE(admin_
                  ->MergePatch(k8s::kOpenBaoClusters, ns_, "bao",
                               {{"metadata", {{"annotations", {{op::kAnnotationTrigger, "now"}}}}}})
                  .ok());
  EXPECT_TRUE(WaitUntil([&] { return !Jobs().empty(); }, 20s)) << p.Stderr();
  EXPECT_EQ(p.Stop(), 0) << p.Stderr();
  std::string log = p.Stderr() + p.Stdout();
  size_t first = log.find("became leader");
  EXPECT_NE(first, std::string::npos) << log;
  EXPECT_EQ(log.find("became leader", first + 1), std::string::npos) << log;
  EXPECT_EQ(log.find("forbidden"), std::string::npos) << log;
}

}  // namespace
}  // namespace bao::testing
