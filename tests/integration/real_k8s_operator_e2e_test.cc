// The backup manager end to end against a real kube-apiserver v1.33 + etcd, with the chart's
// CRDs and RBAC and the manager authenticated as the chart's ServiceAccount; the executor runs
// for real against the OpenBao test server and MinIO (see operator_fixture.h). Label real-k8s.
#include "operator_fixture.h"

namespace bao::testing {
namespace {

class OperatorE2E : public OperatorFixture {
 protected:
  OperatorE2E() : OperatorFixture(true) {}
};

TEST_F(OperatorE2E, ScheduledBackupEndToEndWithRestartsFailureAndRetention) {
  StartBackends();
  CreateCluster("bao", BackupSpec());

  // First look: no slot has passed since the controller saw the cluster.
  EXPECT_EQ(Reconcile("bao").outcome, "idle");
  EXPECT_TRUE(Jobs().empty());
  EXPECT_EQ(BackupStatus("bao")["nextScheduledBackup"], "2025-01-15T03:01:00Z");
  ASSERT_TRUE(client_->Get(k8s::kServiceAccounts, kNs, "bao-backup-serviceaccount").ok());

  // The slot 03:01 passes; a restarted controller reconciles twice: one Job.
  clock_.Set(At("2025-01-15T03:01:05Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "created");
  EXPECT_EQ(Reconcile("bao").outcome, "running");
  std::vector<json> jobs = Jobs();
  ASSERT_EQ(jobs.size(), 1u);
  const json& job = jobs[0];
  EXPECT_EQ(job["metadata"]["name"], "backup-bao-20250115-030100");
  EXPECT_EQ(job["metadata"]["ownerReferences"][0]["kind"], "OpenBaoCluster");
  const json& pod = job["spec"]["template"]["spec"];
  EXPECT_EQ(pod["serviceAccountName"], "bao-backup-serviceaccount");
  const json& c = pod["containers"][0];
  EXPECT_EQ(c["image"], "bao-backup:test");
  EXPECT_EQ(c["securityContext"]["readOnlyRootFilesystem"], true);
  EXPECT_EQ(c["securityContext"]["runAsNonRoot"], true);
  EXPECT_EQ(c["securityContext"]["capabilities"]["drop"][0], "ALL");
  EXPECT_EQ(c["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
  std::string args = c["args"].dump();
  EXPECT_NE(args.find("\"https://bao-2.bao.ns1.svc:8200\""), std::string::npos) << args;
  EXPECT_NE(args.find("\"--result-file\",\"/dev/termination-log\""), std::string::npos);
  EXPECT_NE(args.find("\"--bao-token-file\",\"/etc/bao/backup/token/token\""), std::string::npos);
  EXPECT_NE(args.find("\"--max-count\",\"1\""), std::string::npos);
  EXPECT_EQ(job["spec"]["backoffLimit"], 0);
  EXPECT_TRUE(job["spec"].contains("activeDeadlineSeconds"));
  EXPECT_TRUE(job["spec"].contains("ttlSecondsAfterFinished"));
  json lock = Cluster("bao")["status"]["operationLock"];
  EXPECT_EQ(lock["operation"], "Backup");

  // The executor runs; the status fills in; the lock is released.
  ASSERT_EQ(RunJob(job), 0) << last_run_.err;
  clock_.Set(At("2025-01-15T03:01:40Z"));
  Reconcile("bao");
  Reconcile("bao");  // repeated: nothing counted twice
  json b = BackupStatus("bao");
  EXPECT_TRUE(b["lastBackupName"].get<std::string>().starts_with("prod/ns1/bao/")) << b;
  EXPECT_GT(b["lastBackupSize"].get<int64_t>(), 0);
  EXPECT_FALSE(b["lastBackupDuration"].get<std::string>().empty());
  EXPECT_EQ(b["consecutiveFailures"], 0);
  EXPECT_EQ(b["lastAttemptScheduledTime"], "2025-01-15T03:01:00Z");
  EXPECT_FALSE(Cluster("bao")["status"].contains("operationLock"));
  EXPECT_EQ(Cluster("bao")["spec"]["unknownVendorField"]["keep"], "me");
  EXPECT_TRUE(HasEvent("BackupSucceeded", "bao"));
  EXPECT_EQ(CountObjects(), 1);

  // 03:02: OpenBao fails; the failure is counted once.
  ASSERT_TRUE(bao_->SetFaults({{"fail_status", 500}, {"count", 100}}).ok());
  clock_.Set(At("2025-01-15T03:02:01Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "created");
  jobs = Jobs();
  ASSERT_EQ(jobs.size(), 2u);
  json failing = jobs[0]["metadata"]["name"] == "backup-bao-20250115-030200" ? jobs[0] : jobs[1];
  EXPECT_NE(RunJob(failing), 0);
  Reconcile("bao");
  Reconcile("bao");
  b = BackupStatus("bao");
  EXPECT_EQ(b["consecutiveFailures"], 1) << b;
  EXPECT_FALSE(b["lastFailureReason"].get<std::string>().empty());
  EXPECT_TRUE(HasEvent("BackupFailed", "bao"));

  // 03:03: success again resets the count; retention (maxCount 1) pruned the older object.
  ASSERT_TRUE(bao_->ClearFaults().ok());
  clock_.Set(At("2025-01-15T03:03:02Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "created");
  for (const json& j : Jobs()) {
    if (j["metadata"]["name"] == "backup-bao-20250115-030300") {
      ASSERT_EQ(RunJob(j), 0) << last_run_.err;
    }
  }
  Reconcile("bao");
  b = BackupStatus("bao");
  EXPECT_EQ(b["consecutiveFailures"], 0) << b;
  EXPECT_EQ(CountObjects(), 1);
  EXPECT_EQ(Jobs().size(), 3u);
}

TEST_F(OperatorE2E, InterruptedAfterTakingTheLockResumesTheSameJob) {
  StartBackends();
  CreateCluster("bao", BackupSpec());
  Reconcile("bao");
  clock_.Set(At("2025-01-15T03:01:05Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "created");
  // Pretend the controller died between the lock and the Job creation.
  // Background propagation: Jobs default to orphaning, which leaves the Job (with a
  // deletionTimestamp) for the garbage collector that no test server runs.
  k8s::DeleteOptions background;
  background.propagation_policy = "Background";
  ASSERT_TRUE(client_->Delete(k8s::kJobs, kNs, "backup-bao-20250115-030100", background).ok());
  clock_.Set(At("2025-01-15T03:01:20Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "resumed");
  std::vector<json> jobs = Jobs();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0]["metadata"]["name"], "backup-bao-20250115-030100");
  ASSERT_EQ(RunJob(jobs[0]), 0) << last_run_.err;
  Reconcile("bao");
  EXPECT_EQ(BackupStatus("bao")["consecutiveFailures"], 0);
  EXPECT_FALSE(Cluster("bao")["status"].contains("operationLock"));
}

TEST_F(OperatorE2E, PreconditionsSkipTheSlotWithAReason) {
  CreateSecret("s3-creds", {{"accessKeyId", "a"}, {"secretAccessKey", "b"}});
  CreateSecret("bao-token", {{"token", kToken}});
  struct Case {
    std::string name, reason;
    json status;
    json spec;
  };
  std::vector<Case> cases = {
      {"notrunning", "ClusterNotRunning", {{"phase", "Initializing"}}, {}},
      {"upgrading", "UpgradeInProgress", {{"upgrade", {{"targetVersion", "2.2.0"}}}}, {}},
      {"pending", "UpgradePending", {}, {{"version", "2.2.0"}}},
      {"restoring", "RestoreInProgress", {}, {}},
      {"locked",
       "OperationLocked",
       {{"operationLock", {{"operation", "Upgrade"}, {"holder", "x"}}}},
       {}},
  };
  for (const Case& c : cases) {
    CreateCluster(c.name, BackupSpec(), c.spec);
    if (!c.status.empty()) SetStatus(c.name, c.status);
    Reconcile(c.name);
  }
  json restore = {
      {"apiVersion", "openbao.org/v1alpha1"},
      {"kind", "OpenBaoRestore"},
      {"metadata", {{"name", "r1"}, {"namespace", kNs}}},
      {"spec",
       {{"cluster", "restoring"},
        {"source", {{"target", {{"bucket", "backups"}}}, {"key", "ns1/restoring/a.snap"}}}}}};
  ASSERT_TRUE(client_->Create(k8s::kOpenBaoRestores, kNs, restore).ok());
  clock_.Set(At("2025-01-15T03:01:05Z"));
  for (const Case& c : cases) {
    op::ReconcileResult r = Reconcile(c.name);
    EXPECT_EQ(r.outcome, "skipped:" + c.reason) << c.name;
    json b = BackupStatus(c.name);
    EXPECT_EQ(b["lastSkippedScheduledTime"], "2025-01-15T03:01:00Z") << c.name;
    EXPECT_TRUE(b["lastSkipReason"].get<std::string>().starts_with(c.reason)) << b;
    EXPECT_TRUE(HasEvent("BackupSkipped", c.name)) << c.name;
    // The slot is consumed: no retry within it.
    EXPECT_EQ(Reconcile(c.name).outcome, "idle") << c.name;
  }
  EXPECT_TRUE(Jobs().empty());
}

TEST_F(OperatorE2E, BackupRunningSkipsTheNextSlotAndTriggerIsOneShot) {
  StartBackends();
  CreateCluster("bao", BackupSpec());
  Reconcile("bao");
  clock_.Set(At("2025-01-15T03:01:05Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "created");
  clock_.Set(At("2025-01-15T03:02:05Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "skipped:BackupRunning");
  EXPECT_EQ(Jobs().size(), 1u);
  ASSERT_EQ(RunJob(Jobs()[0]), 0) << last_run_.err;
  Reconcile("bao");

  // Manual trigger: one Job now, the annotation removed, no second Job on the next reconcile.
  ASSERT_TRUE(client_
                  ->MergePatch(k8s::kOpenBaoClusters, kNs, "bao",
                               {{"metadata", {{"annotations", {{op::kAnnotationTrigger, "now"}}}}}})
                  .ok());
  clock_.Set(At("2025-01-15T03:02:30Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "created");
  EXPECT_FALSE(Cluster("bao")["metadata"]
                   .value("annotations", json::object())
                   .contains(op::kAnnotationTrigger));
  EXPECT_EQ(Reconcile("bao").outcome, "running");
  EXPECT_EQ(Jobs().size(), 2u);
  bool found = false;
  for (const json& j : Jobs()) found |= j["metadata"]["name"] == "backup-bao-20250115-030230";
  EXPECT_TRUE(found);
}

TEST_F(OperatorE2E, BadInputsBecomeConditionsAndEventsAndOthersAreStillServed) {
  CreateSecret("s3-creds", {{"accessKeyId", "a"}, {"secretAccessKey", "b"}});
  CreateSecret("bao-token", {{"token", kToken}});
  json cron = BackupSpec();
  cron["schedule"] = "61 * * * *";
  json missing = BackupSpec();
  missing["target"]["credentialsSecretRef"]["name"] = "nope";
  json cross = BackupSpec();
  cross["tokenSecretRef"]["namespace"] = "other";
  json none = BackupSpec();
  none.erase("tokenSecretRef");
  json bad_part = BackupSpec();
  bad_part["target"]["partSize"] = 1024;
  struct Case {
    std::string name, reason, field;
    json spec;
  };
  std::vector<Case> cases = {
      {"badcron", "InvalidSchedule", "spec.backup.schedule", cron},
      {"missing", "SecretNotFound", "spec.backup.target.credentialsSecretRef.name", missing},
      {"cross", "CrossNamespaceReference", "spec.backup.tokenSecretRef.namespace", cross},
      {"none", "NoBackupToken", "tokenSecretRef", none},
      {"badpart", "InvalidSpec", "spec.backup.target.partSize", bad_part},
  };
  // What the CRD's schema already refuses never reaches the operator: the API server answers
  // the user with 422 (the same rule as the parser's, see real_k8s_operator_test.cc).
  Result<json> refused = TryCreateCluster("badpart", bad_part, {});
  EXPECT_EQ(k8s::HttpCodeOf(refused.status()), 422) << refused.status().ToString();
  cases.pop_back();
  for (const Case& c : cases) CreateCluster(c.name, c.spec);
  CreateCluster("good", BackupSpec());
  // OIDC implies the JWT role: no token needed.
  json oidc = BackupSpec();
  oidc.erase("tokenSecretRef");
  CreateCluster("oidc", oidc, {{"selfInit", {{"oidc", {{"enabled", true}}}}}});
  for (int round = 0; round < 2; ++round) {
    for (const Case& c : cases) EXPECT_EQ(Reconcile(c.name).outcome, "invalid") << c.name;
    Reconcile("good");
    Reconcile("oidc");
    clock_.Set(At("2025-01-15T03:01:05Z"));
  }
  for (const Case& c : cases) {
    json cond = Condition(c.name);
    ASSERT_TRUE(cond.is_object()) << c.name;
    EXPECT_EQ(cond["status"], "False") << c.name;
    EXPECT_EQ(cond["reason"], c.reason) << c.name << cond;
    EXPECT_NE(cond["message"].get<std::string>().find(c.field), std::string::npos) << cond;
    EXPECT_TRUE(HasEvent(c.reason, c.name)) << c.name;
  }
  std::vector<std::string> names;
  for (const json& j : Jobs()) names.push_back(j["metadata"]["name"]);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"backup-good-20250115-030100",
                                             "backup-oidc-20250115-030100"}));
  EXPECT_EQ(Condition("good")["status"], "True");
  // The OIDC cluster's Job logs in with the implied role and the projected token.
  for (const json& j : Jobs()) {
    if (j["metadata"]["name"] != "backup-oidc-20250115-030100") continue;
    std::string args = j["spec"]["template"]["spec"]["containers"][0]["args"].dump();
    EXPECT_NE(args.find("\"--jwt-role\",\"openbao-operator-backup\""), std::string::npos);
    std::string volumes = j["spec"]["template"]["spec"]["volumes"].dump();
    EXPECT_NE(volumes.find("\"audience\":\"openbao-internal\""), std::string::npos) << volumes;
  }
}

TEST_F(OperatorE2E, MissingTlsCaSecretIsAConditionNotAFailingJob) {
  CreateTokenSecrets();
  CreateCluster("bao", BackupSpec());
  ASSERT_TRUE(client_->Delete(k8s::kSecrets, kNs, "bao-tls-ca").ok());
  EXPECT_EQ(Reconcile("bao").outcome, "invalid");
  clock_.Set(At("2025-01-15T03:01:05Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "invalid");
  json cond = Condition("bao");
  ASSERT_TRUE(cond.is_object());
  EXPECT_EQ(cond["status"], "False");
  EXPECT_EQ(cond["reason"], "TlsCaSecretNotFound");
  EXPECT_NE(cond["message"].get<std::string>().find("\"bao-tls-ca\""), std::string::npos) << cond;
  EXPECT_TRUE(HasEvent("TlsCaSecretNotFound", "bao"));
  EXPECT_TRUE(Jobs().empty());

  CreateSecret("bao-tls-ca", {{"tls.crt", "not the CA"}});
  EXPECT_EQ(Reconcile("bao").outcome, "invalid");
  cond = Condition("bao");
  EXPECT_EQ(cond["reason"], "TlsCaSecretKeyMissing");
  EXPECT_NE(cond["message"].get<std::string>().find("\"ca.crt\""), std::string::npos) << cond;
  EXPECT_TRUE(Jobs().empty());

  ASSERT_TRUE(client_->Delete(k8s::kSecrets, kNs, "bao-tls-ca").ok());
  CreateSecret("bao-tls-ca", {{"ca.crt", "test CA"}});
  // Fixed: configured, and (seen valid for the first time) backed up from the next slot on.
  clock_.Set(At("2025-01-15T03:02:05Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "idle");
  EXPECT_EQ(Condition("bao")["status"], "True");
  clock_.Set(At("2025-01-15T03:03:05Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "created");
}

TEST_F(OperatorE2E, RunningBackupRenewsItsLockThrottled) {
  CreateTokenSecrets();
  CreateCluster("bao", BackupSpec());
  Reconcile("bao");
  clock_.Set(At("2025-01-15T03:01:05Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "created");
  json lock = Cluster("bao")["status"]["operationLock"];
  EXPECT_EQ(lock["acquiredAt"], "2025-01-15T03:01:05Z");
  EXPECT_EQ(lock["renewedAt"], "2025-01-15T03:01:05Z");
  clock_.Set(At("2025-01-15T03:01:20Z"));
  op::ReconcileResult r = Reconcile("bao");
  EXPECT_EQ(r.outcome, "running");
  EXPECT_LE(r.requeue_at, clock_.Now() + op::kLockRenewInterval);
  EXPECT_EQ(Cluster("bao")["status"]["operationLock"]["renewedAt"], "2025-01-15T03:01:05Z");
  clock_.Set(At("2025-01-15T03:01:40Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "running");
  lock = Cluster("bao")["status"]["operationLock"];
  EXPECT_EQ(lock["renewedAt"], "2025-01-15T03:01:40Z");
  EXPECT_EQ(lock["acquiredAt"], "2025-01-15T03:01:05Z");
  EXPECT_EQ(lock["holder"], "bao-backup-operator/job/backup-bao-20250115-030100");
  // Once the Job ended the lock goes, and is not brought back by a renewal.
  FinishJob("backup-bao-20250115-030100", 0, R"({"key":"prod/ns1/bao/a.snap","size":7})");
  clock_.Set(At("2025-01-15T03:01:59Z"));
  Reconcile("bao");
  Reconcile("bao");
  EXPECT_FALSE(Cluster("bao")["status"].contains("operationLock"));
}

TEST_F(OperatorE2E, OnlyTheLeaseHolderActs) {
  CreateSecret("s3-creds", {{"accessKeyId", "a"}, {"secretAccessKey", "b"}});
  CreateSecret("bao-token", {{"token", kToken}});
  CreateCluster("bao", BackupSpec());
  auto elector = [&](const std::string& id) {
    k8s::LeaderElectionConfig c;
    c.ns = kNs;
    c.name = "bao-backup-operator";
    c.identity = id;
    c.clock = &clock_;
    return std::make_unique<k8s::LeaderElector>(client_.get(), c);
  };
  auto a = elector("replica-a");
  auto b = elector("replica-b");
  ASSERT_TRUE(*a->TryAcquireOrRenew());
  ASSERT_FALSE(*b->TryAcquireOrRenew());
  // Each replica runs the controller loop body: reconcile only while leading.
  int acted_a = 0, acted_b = 0;
  auto replica = [&](k8s::LeaderElector* e, int* acted) {
    if (!e->IsLeader()) return;
    Reconcile("bao");
    ++*acted;
  };
  for (const char* t : {"2025-01-15T03:00:31Z", "2025-01-15T03:01:05Z", "2025-01-15T03:01:06Z"}) {
    clock_.Set(At(t));
    ASSERT_TRUE(*a->TryAcquireOrRenew());
    ASSERT_FALSE(*b->TryAcquireOrRenew());
    replica(a.get(), &acted_a);
    replica(b.get(), &acted_b);
  }
  EXPECT_EQ(acted_a, 3);
  EXPECT_EQ(acted_b, 0);
  EXPECT_EQ(Jobs().size(), 1u);
}

TEST_F(OperatorE2E, OperatorProcessServesProbesAndReconciles) {
  CreateSecret("s3-creds", {{"accessKeyId", "a"}, {"secretAccessKey", "b"}});
  CreateSecret("bao-token", {{"token", kToken}});
  CreateCluster("bao", BackupSpec());
  TempDir dir;
  WriteText(dir.File("kubeconfig"), OperatorKubeconfig());
  int port = FreePort();
  Process p;
  std::string error;
  ASSERT_TRUE(p.Start(
      {BuildBinary("bao-backup"), "--log-format", "json", "operator", "--kubeconfig",
       dir.File("kubeconfig"), "--lease-namespace", "bao-backup-system", "--metrics-bind-address",
       "127.0.0.1:" + std::to_string(port), "--image", "bao-backup:test"},
      {}, &error))
      << error;
  std::string base = "http://127.0.0.1:" + std::to_string(port);
  ASSERT_TRUE(WaitForHttp(base + "/healthz", 10s)) << p.Stderr();
  // The real clock: the cluster gets its nextScheduledBackup and its ServiceAccount.
  EXPECT_TRUE(WaitUntil([&] { return BackupStatus("bao").contains("nextScheduledBackup"); }, 15s))
      << p.Stderr();
  EXPECT_TRUE(client_->Get(k8s::kServiceAccounts, kNs, "bao-backup-serviceaccount").ok());
  RunResult metrics = testing::Run({"curl", "-s", base + "/metrics"}, {}, 10s);
  EXPECT_NE(metrics.out.find("bao_operator_reconcile_total"), std::string::npos) << metrics.out;
  EXPECT_NE(metrics.out.find("bao_operator_leader 1"), std::string::npos) << metrics.out;
  RunResult ready = testing::Run(
      {"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", base + "/readyz"}, {}, 10s);
  EXPECT_EQ(ready.out, "200");
  EXPECT_EQ(p.Stop(), 0) << p.Stderr();
}

}  // namespace
}  // namespace bao::testing
