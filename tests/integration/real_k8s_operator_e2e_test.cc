// The backup manager end to end against a real kube-apiserver v1.33 + etcd, with the chart's
// CRDs and RBAC and the manager authenticated as the chart's ServiceAccount (see
// operator_fixture.h). The first tests run the executor for real against the OpenBao test
// server and MinIO; the later ones are the defects a real server showed and the imitation could
// not (RBAC and admission refusals, CRD schema pruning and validation, label value limits,
// Event aggregation, printer columns, a namespaced install). Label real-k8s.
#include <functional>
#include <map>

#include "backup/spec.h"
#include "operator_fixture.h"

namespace bao::testing {
namespace {

class OperatorE2E : public OperatorFixture {
 protected:
  OperatorE2E() : OperatorFixture(true) {}
};

const std::string kNsName = kNs;

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

// extraTargets through the whole path: the Job carries each target as a projected file with
// its own credentials; the executor writes the copies from one snapshot read; status.backup
// .targets records each target, and a copy that failed (its credentials Secret does not exist)
// is a BackupCopyFailed Warning Event while the backup itself succeeded.
TEST_F(OperatorE2E, ExtraTargetsAreCopiedAndEachTargetIsRecorded) {
  StartBackends();
  std::string error;
  ASSERT_TRUE(minio_.CreateBucket("copies", &error)) << error;
  json backup = BackupSpec();
  json dr = backup["target"];
  dr["name"] = "dr";
  dr["bucket"] = "copies";
  dr["pathPrefix"] = "dr";
  json far = dr;
  far["name"] = "far";
  far["pathPrefix"] = "far";
  far["credentialsSecretRef"]["name"] = "absent-creds";
  backup["extraTargets"] = json::array({dr, far});
  CreateCluster("bao", backup);
  Reconcile("bao");
  clock_.Set(At("2025-01-15T03:01:05Z"));
  ASSERT_EQ(Reconcile("bao").outcome, "created");
  std::vector<json> jobs = Jobs();
  ASSERT_EQ(jobs.size(), 1u);
  ASSERT_EQ(RunJob(jobs[0]), 0) << last_run_.err;
  clock_.Set(At("2025-01-15T03:01:40Z"));
  Reconcile("bao");
  Reconcile("bao");
  json b = BackupStatus("bao");
  EXPECT_EQ(b["consecutiveFailures"], 0) << b;
  const std::string key = b["lastBackupName"];
  ASSERT_EQ(b["targets"].size(), 3u) << b;
  EXPECT_EQ(b["targets"][0]["name"], "primary");
  EXPECT_EQ(b["targets"][0]["key"], key);
  EXPECT_EQ(b["targets"][1]["name"], "dr");
  EXPECT_EQ(b["targets"][1]["key"], "dr/" + key.substr(std::string("prod/").size())) << b;
  EXPECT_EQ(b["targets"][1]["size"], b["lastBackupSize"]);
  EXPECT_EQ(b["targets"][1]["consecutiveFailures"], 0);
  EXPECT_EQ(b["targets"][2]["name"], "far");
  EXPECT_EQ(b["targets"][2]["consecutiveFailures"], 1) << b;
  EXPECT_TRUE(b["targets"][2]["lastFailureReason"].get<std::string>().starts_with("config: ")) << b;
  EXPECT_EQ(EventTypes("BackupCopyFailed", "bao"), std::set<std::string>{"Warning"});
  EXPECT_TRUE(HasEvent("BackupSucceeded", "bao"));
  // The copy in the second bucket is the same bytes.
  TempDir got;
  ASSERT_EQ(minio_.Aws({"s3", "cp", "s3://backups/" + key, got.File("a")}).exit_code, 0);
  ASSERT_EQ(minio_
                .Aws({"s3", "cp", "s3://copies/" + b["targets"][1]["key"].get<std::string>(),
                      got.File("b")})
                .exit_code,
            0);
  EXPECT_EQ(ReadText(got.File("a")), ReadText(got.File("b")));
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

// Items 1, 4 and 5: the whole scheduled flow as the chart's ServiceAccount (the owner
// references with blockOwnerDeletion need openbaoclusters/finalizers), the condition following
// spec changes, and lastBackupTime from when the backup ended.
TEST_F(OperatorE2E, ScheduledBackupAsTheChartsServiceAccount) {
  CreateTokenSecrets();
  CreateCluster("bao", BackupSpec());
  EXPECT_EQ(Reconcile("bao").outcome, "idle");
  Result<json> sa = client_->Get(k8s::kServiceAccounts, kNsName, "bao-backup-serviceaccount");
  ASSERT_TRUE(sa.ok()) << sa.status().ToString();
  EXPECT_EQ((*sa)["metadata"]["ownerReferences"][0]["blockOwnerDeletion"], true);
  json cond = Condition("bao");
  EXPECT_EQ(cond["status"], "True") << cond;
  EXPECT_EQ(cond["observedGeneration"], 1);

  clock_.Set(At("2025-01-15T03:01:05Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "created");
  std::vector<json> jobs = Jobs();
  ASSERT_EQ(jobs.size(), 1u);
  const json job = jobs[0];
  EXPECT_EQ(job["metadata"]["ownerReferences"][0]["blockOwnerDeletion"], true);

  // The Job ran from 03:01:06 to 03:01:20; the operator only looks again at 03:01:50.
  const std::string result =
      R"({"key":"ns/bao/2025-01-15T03-01-06Z-01234567.snap","size":4096,"duration":"14s"})";
  Status finished = testing::FinishJob(*client_, job, true, result, At("2025-01-15T03:01:06Z"),
                                       At("2025-01-15T03:01:20Z"));
  ASSERT_TRUE(finished.ok()) << finished.ToString();
  clock_.Set(At("2025-01-15T03:01:50Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "idle");
  json backup = Cluster("bao")["status"]["backup"];
  EXPECT_EQ(backup["lastBackupTime"], "2025-01-15T03:01:20Z") << backup;
  EXPECT_EQ(backup["lastBackupSize"], 4096);
  EXPECT_EQ(backup["consecutiveFailures"], 0);
  EXPECT_TRUE(Cluster("bao")["status"]["operationLock"].is_null());
  EXPECT_EQ(Events("BackupSucceeded", "bao").first, 1);

  // A spec change: the condition says it looked at the new generation (kubectl wait
  // --for=condition=BackupConfigured works).
  Result<json> patched = client_->MergePatch(k8s::kOpenBaoClusters, kNsName, "bao",
                                             {{"spec", {{"backup", {{"schedule", "0 3 * * *"}}}}}});
  ASSERT_TRUE(patched.ok());
  ASSERT_EQ((*patched)["metadata"]["generation"], 2);
  Reconcile("bao");
  cond = Condition("bao");
  EXPECT_EQ(cond["observedGeneration"], 2) << cond;
  EXPECT_EQ(cond["message"], "backups run on schedule \"0 3 * * *\"");
}

// Item 1: writes the server refuses (here: RBAC without openbaoclusters/finalizers, so
// OwnerReferencesPermissionEnforcement refuses blockOwnerDeletion with 403) are a condition and
// a Warning Event, not only a log line, and clear once the cause is fixed.
TEST_F(OperatorE2E, RefusedWritesAreAConditionAndAWarningEvent) {
  // The chart's rules, less update on openbaoclusters/finalizers.
  Status applied = real_server_->Apply(R"(apiVersion: v1
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
                                       kNsName);
  ASSERT_TRUE(applied.ok()) << applied.ToString();
  Result<std::string> token = real_server_->ServiceAccountToken(kNsName, "weak");
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  k8s::Client weak(real_server_->ConfigFor(*token, kNsName));
  ASSERT_TRUE(WaitUntil([&] { return weak.List(k8s::kOpenBaoClusters, kNsName).ok(); }, 20s));
  CreateTokenSecrets();
  CreateCluster("bao", BackupSpec(), {}, {{op::kAnnotationTrigger, "now"}});

  // The ServiceAccount is refused.
  Result<op::ReconcileResult> r = TryReconcile("bao", &weak);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(k8s::HttpCodeOf(r.status()), 403) << r.status().ToString();
  json cond = Condition("bao");
  EXPECT_EQ(cond["status"], "False") << cond;
  EXPECT_EQ(cond["reason"], op::kReasonServiceAccountCreateFailed);
  EXPECT_NE(cond["message"].get<std::string>().find("blockOwnerDeletion"), std::string::npos)
      << cond;
  EXPECT_EQ(Events(op::kReasonServiceAccountCreateFailed, "bao").first, 1);

  // Someone creates it by hand: now the Job is refused, for the same reason.
  ASSERT_TRUE(client_
                  ->Create(k8s::kServiceAccounts, kNsName,
                           {{"apiVersion", "v1"},
                            {"kind", "ServiceAccount"},
                            {"metadata", {{"name", op::BackupServiceAccountName("bao")}}}})
                  .ok());
  r = TryReconcile("bao", &weak);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(k8s::HttpCodeOf(r.status()), 403) << r.status().ToString();
  cond = Condition("bao");
  EXPECT_EQ(cond["reason"], op::kReasonJobCreateFailed) << cond;
  EXPECT_EQ(Events(op::kReasonJobCreateFailed, "bao").first, 1);
  // Retrying does not flip the condition back and forth (the one Configured so far is from
  // when the ServiceAccount appeared).
  const int configured = Events("Configured", "bao").second;
  EXPECT_EQ(configured, 1);
  EXPECT_FALSE(TryReconcile("bao", &weak).ok());
  EXPECT_EQ(Condition("bao")["reason"], op::kReasonJobCreateFailed);
  EXPECT_EQ(Events("Configured", "bao").second, configured);
  EXPECT_TRUE(Jobs().empty());

  // The RBAC is fixed: the held lock's Job is created, the condition is True again.
  applied = real_server_->Apply(R"(apiVersion: rbac.authorization.k8s.io/v1
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
                                kNsName);
  ASSERT_TRUE(applied.ok()) << applied.ToString();
  EXPECT_TRUE(WaitUntil([&] { return TryReconcile("bao", &weak).ok(); }, 20s));
  EXPECT_EQ(Jobs().size(), 1u);
  EXPECT_EQ(Condition("bao")["status"], "True");
  EXPECT_EQ(Events("Configured", "bao").second, configured + 1);
}

// Item 3: every field the parser reads survives the real CRD schema unchanged (no pruning,
// strict field validation), and what the parser refuses the schema refuses too.
TEST_F(OperatorE2E, CrdSchemaAndParserAgreeFieldByField) {
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
  // An extra target takes every field of the target, and a name.
  every["extraTargets"] = json::array({every["target"]});
  every["extraTargets"][0]["name"] = "dr";
  auto create = [&](const std::string& name, const json& backup) {
    return real_server_->Call("POST",
                              "/apis/openbao.org/v1alpha1/namespaces/" + kNsName +
                                  "/openbaoclusters?fieldValidation=Strict",
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
  ASSERT_EQ(parsed->extra_targets.size(), 1u);
  EXPECT_EQ(parsed->extra_targets[0].name, "dr");
  EXPECT_EQ(parsed->extra_targets[0].target.part_size, 16777216u);

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
  EXPECT_EQ(Reconcile("cross").outcome, "invalid");
  json cond = Condition("cross");
  EXPECT_EQ(cond["reason"], "CrossNamespaceReference") << cond;
  EXPECT_NE(cond["message"].get<std::string>().find("credentialsSecretRef.namespace"),
            std::string::npos);
}

// Items 6 and 7: a cluster name longer than a label value and target.roleArn (IRSA): the real
// server accepts the Job, which carries the projected STS token and the AWS variables.
TEST_F(OperatorE2E, LongClusterNameAndRoleArnMakeAJobTheServerAccepts) {
  const std::string name = "payments-eu-west-1-production-openbao-cluster-primary-with-long-name";
  ASSERT_GT(name.size(), 63u);
  json backup = BackupSpec();
  backup["target"].erase("credentialsSecretRef");
  backup["target"]["roleArn"] = "arn:aws:iam::123456789012:role/bao-backup";
  CreateTokenSecrets();
  CreateCluster(name, backup, {}, {{op::kAnnotationTrigger, "now"}});
  EXPECT_EQ(Reconcile(name).outcome, "created");
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
  EXPECT_EQ(Reconcile(name).outcome, "running");
}

// Item 10: skipped slots aggregate into one Event with a count, and the printer column shows
// whether backups are configured.
TEST_F(OperatorE2E, SkippedSlotsAggregateAndPrinterColumnsShowTheCondition) {
  CreateTokenSecrets();
  CreateCluster("bao", BackupSpec());
  SetStatus("bao", {{"phase", "Upgrading"}});
  EXPECT_EQ(Reconcile("bao").outcome, "idle");
  for (const char* t : {"2025-01-15T03:01:05Z", "2025-01-15T03:02:05Z", "2025-01-15T03:03:05Z"}) {
    clock_.Set(At(t));
    EXPECT_EQ(Reconcile("bao").outcome, "skipped:ClusterNotRunning");
  }
  auto [objects, count] = Events("BackupSkipped", "bao");
  EXPECT_EQ(objects, 1);
  EXPECT_EQ(count, 3);

  // What `kubectl get openbaoclusters` shows: the server's Table rendering.
  http::Client http;
  http::Request req;
  req.url =
      real_server_->url() + "/apis/openbao.org/v1alpha1/namespaces/" + kNsName + "/openbaoclusters";
  req.tls = real_server_->Tls();
  req.headers = {{"Authorization", "Bearer " + real_server_->admin_token()},
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
TEST_F(OperatorE2E, NamespacedInstallRunsTheOperatorProcess) {
  CreateTokenSecrets();
  CreateCluster("bao", BackupSpec());
  SetStatus("bao", {{"backup",
                     {{"lastBackupTime", "2025-01-15T03:01:20Z"},
                      {"consecutiveFailures", 2},
                      {"lastBackupSize", 4096}}}});
  const std::string release_ns = "scoped-" + kNsName;
  Result<std::string> rendered =
      RenderChart("scoped", release_ns,
                  {"--set", "rbac.scope=namespaced", "--set", "watchNamespaces={" + kNsName + "}"});
  ASSERT_TRUE(rendered.ok()) << rendered.status().ToString();
  ASSERT_EQ(rendered->find("kind: ClusterRole"), std::string::npos) << *rendered;
  Result<std::string> token = InstallChart(
      *real_server_, "scoped", release_ns,
      {"--set", "rbac.scope=namespaced", "--set", "watchNamespaces={" + kNsName + "}"}, kNsName);
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  k8s::Client scoped(real_server_->ConfigFor(*token, kNsName));
  // Least privilege: nothing outside the watched namespace, no Secret listing inside it.
  EXPECT_EQ(k8s::HttpCodeOf(scoped.List(k8s::kOpenBaoClusters, "").status()), 403);
  EXPECT_EQ(k8s::HttpCodeOf(scoped.List(k8s::kSecrets, kNsName).status()), 403);
  EXPECT_EQ(k8s::HttpCodeOf(scoped.Get(k8s::kSecrets, "default", "x").status()), 403);

  TempDir dir;
  WriteText(dir.File("kubeconfig"), Kubeconfig(*real_server_, *token, kNsName));
  int port = FreePort();
  Process p;
  std::string error;
  ASSERT_TRUE(p.Start(
      {BuildBinary("bao-backup"), "--log-format", "json", "operator", "--kubeconfig",
       dir.File("kubeconfig"), "--watch-namespace", kNsName, "--lease-namespace", release_ns,
       "--metrics-bind-address", "127.0.0.1:" + std::to_string(port), "--image", "bao-backup:test"},
      {}, &error))
      << error;
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  ASSERT_TRUE(WaitForHttp(base + "/healthz", 10s)) << p.Stderr();
  std::string metrics;
  EXPECT_TRUE(WaitUntil(
      [&] {
        metrics = testing::Run({"curl", "-s", base + "/metrics"}, {}, 10s).out;
        return metrics.find("bao_backup_consecutive_failures{namespace=\"" + kNsName +
                            "\",cluster=\"bao\"} 2") != std::string::npos;
      },
      15s))
      << metrics;
  EXPECT_NE(metrics.find("bao_backup_last_success_timestamp_seconds{namespace=\"" + kNsName +
                         "\",cluster=\"bao\"} 1736910080"),
            std::string::npos)
      << metrics;

  // A manual trigger becomes a Job, made by the process as the namespaced ServiceAccount.
  ASSERT_TRUE(client_
                  ->MergePatch(k8s::kOpenBaoClusters, kNsName, "bao",
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

// Issue 14: a recovery point before every upgrade. spec.upgrade.preUpgradeSnapshot and a version
// bump: exactly one pre-upgrade-<timestamp>-<id>.snap for the target version (repeated
// reconciles by new managers while its Job runs, slots passing meanwhile), under the lock,
// reported in the condition and status.backup.lastPreUpgradeBackup; scheduled slots stay
// skipped until status.currentVersion catches up; retention keeps it afterwards.
TEST_F(OperatorE2E, PreUpgradeBackupIsTakenOncePerTargetVersion) {
  StartBackends();
  CreateCluster("bao", BackupSpec(), {{"upgrade", {{"preUpgradeSnapshot", true}}}});
  EXPECT_EQ(Reconcile("bao").outcome, "idle");
  EXPECT_TRUE(Jobs().empty());
  EXPECT_TRUE(ConditionOf("bao", op::kConditionPreUpgradeBackupReady).is_null());

  ASSERT_TRUE(
      client_->MergePatch(k8s::kOpenBaoClusters, kNs, "bao", {{"spec", {{"version", "2.2.0"}}}})
          .ok());
  EXPECT_EQ(Reconcile("bao").outcome, "created:pre-upgrade");
  const std::string job_name = op::PreUpgradeJobName("bao", "2.2.0");
  std::vector<json> jobs = Jobs();
  ASSERT_EQ(jobs.size(), 1u);
  json job = jobs[0];
  EXPECT_EQ(job["metadata"]["name"], job_name);
  EXPECT_EQ(job["metadata"]["annotations"][op::kAnnotationPreUpgradeVersion], "2.2.0");
  EXPECT_NE(job["spec"]["template"]["spec"]["containers"][0]["args"].dump().find(
                "\"--file-prefix\",\"pre-upgrade-\""),
            std::string::npos);
  json st = Cluster("bao")["status"];
  EXPECT_EQ(st["operationLock"]["holder"], std::string(op::kLockHolderPrefix) + job_name) << st;
  EXPECT_EQ(st["operationLock"]["operation"], "Backup");
  EXPECT_EQ(st["backup"]["lastPreUpgradeAttempt"]["version"], "2.2.0") << st;
  json cond = ConditionOf("bao", op::kConditionPreUpgradeBackupReady);
  EXPECT_EQ(cond["status"], "False") << cond;
  EXPECT_EQ(cond["reason"], op::kReasonPreUpgradeBackupRunning);
  EXPECT_TRUE(HasEvent("BackupStarted", "bao"));

  // While it runs: new managers, a slot passing (skipped as UpgradePending, not started).
  EXPECT_EQ(Reconcile("bao").outcome, "running");
  clock_.Set(At("2025-01-15T03:01:05Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "skipped:UpgradePending");
  EXPECT_EQ(Reconcile("bao").outcome, "running");
  EXPECT_EQ(Jobs().size(), 1u);
  EXPECT_EQ(BackupStatus("bao")["lastSkippedScheduledTime"], "2025-01-15T03:01:00Z");

  ASSERT_EQ(RunJob(job), 0) << last_run_.err;
  clock_.Set(At("2025-01-15T03:01:40Z"));
  Reconcile("bao");
  Reconcile("bao");
  json b = BackupStatus("bao");
  const json pre = b["lastPreUpgradeBackup"];
  ASSERT_TRUE(pre.is_object()) << b;
  const std::string key = pre["key"];
  EXPECT_TRUE(key.starts_with("prod/ns1/bao/pre-upgrade-")) << pre;
  EXPECT_EQ(pre["version"], "2.2.0");
  EXPECT_TRUE(ParseRfc3339(pre["time"].get<std::string>()).ok()) << pre;
  // Recorded like any backup, but not as a scheduled slot's attempt.
  EXPECT_EQ(b["lastBackupName"], key);
  EXPECT_EQ(b["consecutiveFailures"], 0);
  EXPECT_FALSE(b.contains("lastAttemptScheduledTime")) << b;
  EXPECT_FALSE(Cluster("bao")["status"].contains("operationLock"));
  cond = ConditionOf("bao", op::kConditionPreUpgradeBackupReady);
  EXPECT_EQ(cond["status"], "True") << cond;
  EXPECT_EQ(cond["reason"], op::kReasonPreUpgradeBackupSucceeded);
  EXPECT_NE(cond["message"].get<std::string>().find(key), std::string::npos) << cond;
  EXPECT_EQ(EventTypes(op::kReasonPreUpgradeBackupSucceeded, "bao"),
            std::set<std::string>{"Normal"});
  EXPECT_EQ(ObjectKeys(), std::vector<std::string>{key});

  // Until the upgrade is done: no second pre-upgrade backup, scheduled slots skipped.
  clock_.Set(At("2025-01-15T03:02:05Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "skipped:UpgradePending");
  EXPECT_EQ(Reconcile("bao").outcome, "idle");
  EXPECT_EQ(Jobs().size(), 1u);
  EXPECT_EQ(ObjectKeys().size(), 1u);

  // The upgrade is done: scheduled backups again. Retention (maxCount 1) keeps the newest
  // scheduled backup and the pre-upgrade one.
  SetStatus("bao", {{"currentVersion", "2.2.0"}});
  clock_.Set(At("2025-01-15T03:03:05Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "created");
  bool ran = false;
  for (const json& j : Jobs()) {
    if (j["metadata"]["name"] == "backup-bao-20250115-030300") {
      ASSERT_EQ(RunJob(j), 0) << last_run_.err;
      ran = true;
    }
  }
  ASSERT_TRUE(ran);
  clock_.Set(At("2025-01-15T03:03:30Z"));
  Reconcile("bao");
  b = BackupStatus("bao");
  EXPECT_EQ(b["lastAttemptScheduledTime"], "2025-01-15T03:03:00Z") << b;
  EXPECT_NE(b["lastBackupName"], key);
  EXPECT_EQ(b["lastPreUpgradeBackup"]["key"], key);
  std::vector<std::string> keys = ObjectKeys();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(std::count(keys.begin(), keys.end(), key), 1) << keys[0] << " " << keys[1];
  EXPECT_EQ(Jobs().size(), 2u);
}

// A failing executor: PreUpgradeBackupFailed with its error and a Warning Event; not retried on
// its own (the slots go on being skipped), retried once when the trigger annotation is set.
TEST_F(OperatorE2E, FailedPreUpgradeBackupIsReportedAndRetriedOnlyOnTrigger) {
  StartBackends();
  CreateCluster("bao", BackupSpec(), {{"upgrade", {{"preUpgradeSnapshot", true}}}});
  EXPECT_EQ(Reconcile("bao").outcome, "idle");
  ASSERT_TRUE(bao_->SetFaults({{"fail_status", 500}, {"count", 100}}).ok());
  ASSERT_TRUE(
      client_->MergePatch(k8s::kOpenBaoClusters, kNs, "bao", {{"spec", {{"version", "2.2.0"}}}})
          .ok());
  EXPECT_EQ(Reconcile("bao").outcome, "created:pre-upgrade");
  ASSERT_EQ(Jobs().size(), 1u);
  EXPECT_NE(RunJob(Jobs()[0]), 0);
  clock_.Set(At("2025-01-15T03:00:50Z"));
  Reconcile("bao");
  Reconcile("bao");
  json b = BackupStatus("bao");
  EXPECT_EQ(b["consecutiveFailures"], 1) << b;
  EXPECT_FALSE(b.contains("lastPreUpgradeBackup")) << b;
  const std::string reason = b["lastFailureReason"];
  EXPECT_FALSE(reason.empty());
  json cond = ConditionOf("bao", op::kConditionPreUpgradeBackupReady);
  EXPECT_EQ(cond["status"], "False") << cond;
  EXPECT_EQ(cond["reason"], op::kReasonPreUpgradeBackupFailed);
  EXPECT_NE(cond["message"].get<std::string>().find(reason), std::string::npos) << cond;
  EXPECT_NE(cond["message"].get<std::string>().find(op::kAnnotationTrigger), std::string::npos);
  EXPECT_EQ(EventTypes(op::kReasonPreUpgradeBackupFailed, "bao"), std::set<std::string>{"Warning"});
  EXPECT_FALSE(Cluster("bao")["status"].contains("operationLock"));

  // No automatic retry.
  ASSERT_TRUE(bao_->ClearFaults().ok());
  for (const char* t : {"2025-01-15T03:01:05Z", "2025-01-15T03:02:05Z"}) {
    clock_.Set(At(t));
    EXPECT_EQ(Reconcile("bao").outcome, "skipped:UpgradePending") << t;
    EXPECT_EQ(Reconcile("bao").outcome, "idle") << t;
  }
  EXPECT_EQ(Jobs().size(), 1u);
  EXPECT_EQ(ConditionOf("bao", op::kConditionPreUpgradeBackupReady)["reason"],
            op::kReasonPreUpgradeBackupFailed);

  // The user retries: one more Job (the next attempt's name), the annotation removed.
  ASSERT_TRUE(client_
                  ->MergePatch(k8s::kOpenBaoClusters, kNs, "bao",
                               {{"metadata", {{"annotations", {{op::kAnnotationTrigger, "now"}}}}}})
                  .ok());
  clock_.Set(At("2025-01-15T03:02:20Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "created:pre-upgrade");
  EXPECT_EQ(Reconcile("bao").outcome, "running");
  EXPECT_FALSE(Cluster("bao")["metadata"]
                   .value("annotations", json::object())
                   .contains(op::kAnnotationTrigger));
  std::vector<json> jobs = Jobs();
  ASSERT_EQ(jobs.size(), 2u);
  json retry;
  for (const json& j : jobs) {
    if (j["metadata"]["name"] == op::PreUpgradeJobName("bao", "2.2.0", 2)) retry = j;
  }
  ASSERT_TRUE(retry.is_object());
  ASSERT_EQ(RunJob(retry), 0) << last_run_.err;
  clock_.Set(At("2025-01-15T03:02:40Z"));
  Reconcile("bao");
  Reconcile("bao");
  b = BackupStatus("bao");
  EXPECT_EQ(b["consecutiveFailures"], 0) << b;
  EXPECT_EQ(b["lastPreUpgradeBackup"]["version"], "2.2.0") << b;
  cond = ConditionOf("bao", op::kConditionPreUpgradeBackupReady);
  EXPECT_EQ(cond["status"], "True") << cond;
  EXPECT_NE(cond["message"].get<std::string>().find(b["lastPreUpgradeBackup"]["key"]),
            std::string::npos);
  EXPECT_EQ(Jobs().size(), 2u);
  std::vector<std::string> keys = ObjectKeys();
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_TRUE(keys[0].starts_with("prod/ns1/bao/pre-upgrade-")) << keys[0];
}

// Without the flag (absent or false) nothing is taken, as before; the CRD types the flag; the
// cluster with it set, beside them, gets its backup.
TEST_F(OperatorE2E, PreUpgradeBackupOnlyWithTheFlag) {
  CreateTokenSecrets();
  Result<json> refused =
      TryCreateCluster("typo", BackupSpec(), {{"upgrade", {{"preUpgradeSnapshot", "yes"}}}});
  EXPECT_EQ(k8s::HttpCodeOf(refused.status()), 422) << refused.status().ToString();
  CreateCluster("plain", BackupSpec());
  CreateCluster("off", BackupSpec(),
                {{"upgrade", {{"preUpgradeSnapshot", false}, {"vendorOption", "kept"}}}});
  CreateCluster("on", BackupSpec(),
                {{"upgrade", {{"preUpgradeSnapshot", true}, {"vendorOption", "kept"}}}});
  const std::vector<std::string> names = {"plain", "off", "on"};
  for (const std::string& n : names) {
    EXPECT_EQ(Reconcile(n).outcome, "idle") << n;
    ASSERT_TRUE(
        client_->MergePatch(k8s::kOpenBaoClusters, kNs, n, {{"spec", {{"version", "2.2.0"}}}})
            .ok());
  }
  EXPECT_EQ(Cluster("off")["spec"]["upgrade"]["vendorOption"], "kept");
  for (const char* t : {"2025-01-15T03:00:40Z", "2025-01-15T03:01:05Z", "2025-01-15T03:02:05Z"}) {
    clock_.Set(At(t));
    for (const std::string& n : names) Reconcile(n);
  }
  std::vector<json> jobs = Jobs();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0]["metadata"]["name"], op::PreUpgradeJobName("on", "2.2.0"));
  for (const char* n : {"plain", "off"}) {
    EXPECT_TRUE(ConditionOf(n, op::kConditionPreUpgradeBackupReady).is_null()) << n;
    json b = BackupStatus(n);
    EXPECT_FALSE(b.contains("lastPreUpgradeAttempt")) << b;
    EXPECT_EQ(b["lastSkippedScheduledTime"], "2025-01-15T03:02:00Z") << b;
    EXPECT_TRUE(b["lastSkipReason"].get<std::string>().starts_with("UpgradePending")) << b;
  }
  EXPECT_EQ(ConditionOf("on", op::kConditionPreUpgradeBackupReady)["reason"],
            op::kReasonPreUpgradeBackupRunning);
  // The slots of "on" are skipped too while its version change is pending.
  EXPECT_TRUE(
      BackupStatus("on")["lastSkipReason"].get<std::string>().starts_with("UpgradePending"));
}

// A scheduled backup running when the version changes: the pre-upgrade backup waits for it
// (and says so), then starts in the reconcile that records it. The operator dying between the
// lock and the Job: the same Job, rebuilt from the status, is created by the next reconcile.
TEST_F(OperatorE2E, PreUpgradeBackupWaitsForARunningBackupAndResumesAfterACrash) {
  CreateTokenSecrets();
  CreateCluster("bao", BackupSpec(), {{"upgrade", {{"preUpgradeSnapshot", true}}}});
  Reconcile("bao");
  clock_.Set(At("2025-01-15T03:01:05Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "created");
  ASSERT_TRUE(
      client_->MergePatch(k8s::kOpenBaoClusters, kNs, "bao", {{"spec", {{"version", "2.2.0"}}}})
          .ok());
  clock_.Set(At("2025-01-15T03:01:10Z"));
  op::ReconcileResult r = Reconcile("bao");
  EXPECT_EQ(r.outcome, "running");
  EXPECT_LE(r.requeue_at, clock_.Now() + op::kLockRenewInterval);
  ASSERT_EQ(Jobs().size(), 1u);
  json cond = ConditionOf("bao", op::kConditionPreUpgradeBackupReady);
  EXPECT_EQ(cond["reason"], op::kReasonPreUpgradeBackupWaiting) << cond;
  EXPECT_NE(cond["message"].get<std::string>().find("BackupRunning"), std::string::npos) << cond;

  FinishJob("backup-bao-20250115-030100", 0, R"({"key":"prod/ns1/bao/a.snap","size":7})");
  clock_.Set(At("2025-01-15T03:01:20Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "created:pre-upgrade");
  const std::string job_name = op::PreUpgradeJobName("bao", "2.2.0");
  ASSERT_EQ(Jobs().size(), 2u);

  // Pretend the Job creation never happened (see InterruptedAfterTakingTheLockResumesTheSameJob).
  k8s::DeleteOptions background;
  background.propagation_policy = "Background";
  ASSERT_TRUE(client_->Delete(k8s::kJobs, kNs, job_name, background).ok());
  clock_.Set(At("2025-01-15T03:01:30Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "resumed");
  json resumed;
  for (const json& j : Jobs()) {
    if (j["metadata"]["name"] == job_name) resumed = j;
  }
  ASSERT_TRUE(resumed.is_object());
  EXPECT_EQ(resumed["metadata"]["annotations"][op::kAnnotationPreUpgradeVersion], "2.2.0");
  EXPECT_NE(resumed["spec"]["template"]["spec"]["containers"][0]["args"].dump().find(
                "\"--file-prefix\",\"pre-upgrade-\""),
            std::string::npos);
  EXPECT_EQ(Reconcile("bao").outcome, "running");
  EXPECT_EQ(Jobs().size(), 2u);

  const std::string key = "prod/ns1/bao/pre-upgrade-2025-01-15T03-01-31Z-0123abcd.snap";
  FinishJob(job_name, 0, R"({"key":")" + key + R"(","size":9,"duration":"1s"})");
  clock_.Set(At("2025-01-15T03:01:50Z"));
  Reconcile("bao");
  EXPECT_EQ(BackupStatus("bao")["lastPreUpgradeBackup"]["key"], key);
  cond = ConditionOf("bao", op::kConditionPreUpgradeBackupReady);
  EXPECT_EQ(cond["status"], "True") << cond;
  EXPECT_FALSE(Cluster("bao")["status"].contains("operationLock"));
  clock_.Set(At("2025-01-15T03:02:05Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "skipped:UpgradePending");
  EXPECT_EQ(Jobs().size(), 2u);
}

}  // namespace
}  // namespace bao::testing
