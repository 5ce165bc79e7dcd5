// The restore controller (OpenBaoRestore) against a real kube-apiserver v1.33 + etcd with the
// chart installed (the controller runs as the chart's ServiceAccount), real OpenBao 2.7.2
// clusters and MinIO; the test plays the kubelet by running each Job's executor with its
// arguments (operator_fixture.h). Label real-k8s.
#include <gtest/gtest.h>

#include "operator/restore_manager.h"
#include "operator_fixture.h"
#include "support/openbao.h"

namespace bao::testing {
namespace {

constexpr const char* kRestorePolicy =
    "path \"sys/storage/raft/snapshot\" { capabilities = [\"update\"] }\n"
    "path \"sys/storage/raft/snapshot-force\" { capabilities = [\"update\"] }";

class RestoreE2E : public OperatorFixture {
 protected:
  RestoreE2E() : OperatorFixture(true) {}

  // A restore reconcile by a fresh controller (a restart), as the chart's ServiceAccount.
  op::ReconcileResult ReconcileRestore(const std::string& name) {
    op::ManagerOptions o;
    o.clock = &clock_;
    o.job.default_image = "bao-backup:test";
    k8s::EventRecorder events(op_client_.get(), "bao-backup-operator", &clock_);
    Result<op::ReconcileResult> r =
        op::RestoreManager(op_client_.get(), &events, o).Reconcile(kNs, name);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : op::ReconcileResult{};
  }

  json RestoreObject(const std::string& name) {
    Result<json> r = client_->Get(k8s::kOpenBaoRestores, kNs, name);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : json::object();
  }
  std::string Phase(const std::string& name) {
    return RestoreObject(name).value("status", json::object()).value("phase", "");
  }
  std::string Message(const std::string& name) {
    return RestoreObject(name).value("status", json::object()).value("message", "");
  }
  json RestoreCondition(const std::string& name, const std::string& type) {
    json st = RestoreObject(name).value("status", json::object());
    for (const json& c : st.value("conditions", json::array())) {
      if (c.value("type", "") == type) return c;
    }
    return nullptr;
  }

  json RestoreSpec(const std::string& cluster, const std::string& key, bool force = true) {
    return {{"cluster", cluster},
            {"source", {{"target", BackupSpec()["target"]}, {"key", key}}},
            {"tokenSecretRef", {{"name", "restore-token"}}},
            {"force", force}};
  }
  void CreateRestore(const std::string& name, const json& spec) {
    Result<json> r = client_->Create(k8s::kOpenBaoRestores, kNs,
                                     {{"apiVersion", "openbao.org/v1alpha1"},
                                      {"kind", "OpenBaoRestore"},
                                      {"metadata", {{"name", name}, {"namespace", kNs}}},
                                      {"spec", spec}});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  // The Jobs of restore `name`, by name.
  std::map<std::string, json> RestoreJobs(const std::string& name) {
    std::map<std::string, json> out;
    for (const json& j : Jobs()) {
      if (op::At(j, {"metadata", "annotations"}).value(op::kAnnotationRestore, "") == name) {
        out[j["metadata"]["name"]] = j;
      }
    }
    return out;
  }
  json Job(const std::string& name) {
    Result<json> j = client_->Get(k8s::kJobs, kNs, name);
    EXPECT_TRUE(j.ok()) << name << ": " << j.status().ToString();
    return j.ok() ? *j : json::object();
  }
  json Lock(const std::string& cluster) {
    return Cluster(cluster).value("status", json::object()).value("operationLock", json());
  }

  // MinIO with the bucket and its Secret; restore-token and bao-token hold `restore_token`
  // and `backup_token`.
  void StartStorage(const std::string& backup_token = "s.none",
                    const std::string& restore_token = "s.none") {
    std::string error;
    ASSERT_TRUE(minio_.Start(&error)) << error;
    ASSERT_TRUE(minio_.CreateBucket("backups", &error)) << error;
    CreateSecret("s3-creds",
                 {{"accessKeyId", minio_.access_key()}, {"secretAccessKey", minio_.secret_key()}});
    CreateSecret("bao-token", {{"token", backup_token}});
    CreateSecret("restore-token", {{"token", restore_token}});
  }
  // Puts `data` under `key` in the bucket (a planted object, with a checksum file when given).
  void PutObject(const std::string& key, const std::string& data) {
    TempDir d;
    WriteText(d.File("obj"), data);
    RunResult r = minio_.Aws({"s3", "cp", d.File("obj"), "s3://backups/" + key});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
};

// The full drill: cluster A backed up by the operator's Job, restored by an OpenBaoRestore
// (force) into cluster B; B is unsealed with A's key and every node serves A's secrets.
TEST_F(RestoreE2E, DisasterRecoveryDrillThroughTheController) {
  RealBaoCluster a({.nodes = 3, .tls = true});
  RealBaoCluster b({.nodes = 3, .tls = true});
  Status started = a.Start();
  ASSERT_TRUE(started.ok()) << started.ToString();
  started = b.Start();
  ASSERT_TRUE(started.ok()) << started.ToString();
  ASSERT_TRUE(a.PutSecret("app", {{"password", "from-a"}}).ok());
  ASSERT_TRUE(b.PutSecret("app", {{"password", "b-before"}}).ok());
  ASSERT_TRUE(a.PutPolicy("snapshot-read",
                          "path \"sys/storage/raft/snapshot\" { capabilities = [\"read\"] }")
                  .ok());
  ASSERT_TRUE(b.PutPolicy("restore", kRestorePolicy).ok());
  Result<std::string> reader = a.CreateToken({"snapshot-read"});
  Result<std::string> restorer = b.CreateToken({"restore"});
  ASSERT_TRUE(reader.ok() && restorer.ok());
  StartStorage(*reader, *restorer);
  bao_urls_ = {{"a", a.Urls()}, {"b", b.Urls()}};
  tls_ca_ = {{"a", ReadText(a.ca_file())}, {"b", ReadText(b.ca_file())}};
  CreateCluster("a", BackupSpec(), {}, {{op::kAnnotationTrigger, "now"}});
  CreateCluster("b", BackupSpec());

  // The scheduled (here: triggered) backup of A by the operator's Job.
  EXPECT_EQ(Reconcile("a").outcome, "created");
  ASSERT_EQ(Jobs().size(), 1u);
  ASSERT_EQ(RunJob(Jobs()[0]), 0) << last_run_.err;
  Reconcile("a");
  const std::string key = BackupStatus("a").value("lastBackupName", "");
  ASSERT_FALSE(key.empty()) << BackupStatus("a");

  CreateRestore("r1", RestoreSpec("b", key));
  std::vector<std::string> phases;
  auto step = [&] {
    ReconcileRestore("r1");
    std::string p = Phase("r1");
    if (phases.empty() || phases.back() != p) phases.push_back(p);
  };
  step();  // Pending -> lock -> Validating: the verification Job
  EXPECT_EQ(Lock("b").value("holder", ""), "bao-backup-operator/restore/r1");
  EXPECT_EQ(Lock("b").value("operation", ""), "Restore");
  json verify = Job("restore-verify-r1");
  ASSERT_EQ(RunJob(verify), 0) << last_run_.err;
  step();  // -> Running: the restore Job
  json restore_job = Job("restore-r1-1");
  ASSERT_EQ(RunJob(restore_job), 0) << last_run_.err;
  step();  // -> Completed
  EXPECT_EQ(phases, (std::vector<std::string>{"Validating", "Running", "Completed"}));
  for (const char* reason : {"Pending", "Validating", "Running", "Completed"}) {
    EXPECT_TRUE(HasEvent(reason, "r1")) << reason;
  }
  json st = RestoreObject("r1")["status"];
  EXPECT_EQ(st.value("snapshotKey", ""), key);
  EXPECT_GT(st.value("snapshotSize", 0), 0);
  EXPECT_FALSE(st.value("startTime", "").empty());
  EXPECT_FALSE(st.value("completionTime", "").empty());
  EXPECT_EQ(st.value("sealed", false), true) << st;  // B now holds A's keyring
  EXPECT_EQ(RestoreCondition("r1", op::kConditionSealedAfterRestore).value("status", ""), "True");
  EXPECT_TRUE(HasEvent(op::kConditionSealedAfterRestore, "r1"));
  EXPECT_TRUE(Lock("b").is_null()) << Lock("b");
  EXPECT_EQ(RestoreJobs("r1").size(), 2u);

  ASSERT_TRUE(b.UnsealAll(a.unseal_key()).ok());
  // A restore's own wait for the apply is up to 60 s; a loaded machine may need longer here.
  Status serves = b.EveryNodeServes("app", {{"password", "from-a"}}, a.root_token(), 90s);
  EXPECT_TRUE(serves.ok()) << serves.ToString();
  // Done is done: more reconciles change nothing.
  ReconcileRestore("r1");
  EXPECT_EQ(Phase("r1"), "Completed");
  EXPECT_EQ(RestoreJobs("r1").size(), 2u);
}

// A restore waits while a backup holds the lock, then proceeds; overrideOperationLock with
// force takes it at once (Warning); override without force is refused.
TEST_F(RestoreE2E, TheOperationLockIsWaitedForOrOverridden) {
  StartStorage();
  CreateCluster("bao", BackupSpec(), {}, {{op::kAnnotationTrigger, "now"}});
  EXPECT_EQ(Reconcile("bao").outcome, "created");  // a backup Job holds the lock
  ASSERT_EQ(Lock("bao").value("operation", ""), "Backup");

  CreateRestore("waits", RestoreSpec("bao", "prod/ns1/bao/x.snap"));
  EXPECT_EQ(ReconcileRestore("waits").outcome, "waiting");
  EXPECT_EQ(Phase("waits"), "Pending");
  EXPECT_NE(Message("waits").find("held for Backup"), std::string::npos) << Message("waits");
  EXPECT_TRUE(HasEvent("WaitingForLock", "waits"));
  ReconcileRestore("waits");
  EXPECT_EQ(EventCount("WaitingForLock", "waits"), 1);  // said once, not at every look
  // While the restore is unfinished, no backup starts.
  clock_.Set(At("2025-01-15T03:01:05Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "skipped:RestoreInProgress");

  json no_force = RestoreSpec("bao", "prod/ns1/bao/x.snap", false);
  no_force["overrideOperationLock"] = true;
  CreateRestore("noforce", no_force);
  ReconcileRestore("noforce");
  EXPECT_EQ(Phase("noforce"), "Failed");
  EXPECT_NE(Message("noforce").find("overrideOperationLock: only honoured together with force"),
            std::string::npos)
      << Message("noforce");
  EXPECT_TRUE(RestoreJobs("noforce").empty());

  // The backup ends: its result releases the lock, and the restore takes it.
  const std::string backup_job = Jobs()[0]["metadata"]["name"];
  FinishJob(backup_job, 0, R"({"key":"prod/ns1/bao/y.snap","size":7})");
  Reconcile("bao");
  ASSERT_TRUE(Lock("bao").is_null()) << Lock("bao");
  ReconcileRestore("waits");
  EXPECT_EQ(Phase("waits"), "Validating");
  EXPECT_EQ(Lock("bao").value("holder", ""), "bao-backup-operator/restore/waits");

  // Another restore with override + force takes the lock from the first.
  json override_spec = RestoreSpec("bao", "prod/ns1/bao/x.snap");
  override_spec["overrideOperationLock"] = true;
  CreateRestore("takes", override_spec);
  ReconcileRestore("takes");
  EXPECT_EQ(Phase("takes"), "Validating");
  EXPECT_EQ(Lock("bao").value("holder", ""), "bao-backup-operator/restore/takes");
  EXPECT_TRUE(HasEvent(op::kConditionLockOverridden, "takes"));
  EXPECT_EQ(RestoreCondition("takes", op::kConditionLockOverridden).value("status", ""), "True");
  // The restore that lost the lock stops instead of restoring beside the other one.
  ReconcileRestore("waits");
  EXPECT_EQ(Phase("waits"), "Failed");
  EXPECT_NE(Message("waits").find("no longer this restore's (now: Restore by "
                                  "bao-backup-operator/restore/takes)"),
            std::string::npos)
      << Message("waits");
  EXPECT_EQ(Lock("bao").value("holder", ""), "bao-backup-operator/restore/takes");
}

// Bad requests end Failed with a message that says what to fix; OpenBao is never contacted
// (the verification Job has no OpenBao address at all, and the others never get a Job).
TEST_F(RestoreE2E, BadRequestsFailWithAPreciseMessage) {
  StartStorage();
  CreateCluster("bao", BackupSpec());
  PutObject("prod/ns1/bao/damaged.snap", "not a snapshot at all");
  struct Case {
    std::string name;
    json spec;
    std::string message;
    bool verify_job;  // decided by the verification Job
  };
  json no_auth = RestoreSpec("bao", "prod/ns1/bao/any.snap");
  no_auth.erase("tokenSecretRef");
  json missing_secret = RestoreSpec("bao", "prod/ns1/bao/any.snap");
  missing_secret["tokenSecretRef"]["name"] = "nope";
  json cross = RestoreSpec("bao", "prod/ns1/bao/any.snap");
  cross["tokenSecretRef"]["namespace"] = "other";
  std::vector<Case> cases = {
      {"nocluster", RestoreSpec("ghost", "prod/ns1/bao/any.snap"),
       "OpenBaoCluster \"ghost\" not found in namespace \"ns1\"", false},
      {"noauth", no_auth, "no OpenBao auth for the restore: set spec.jwtAuthRole", false},
      {"nosecret", missing_secret, "spec.tokenSecretRef.name: Secret \"nope\" not found", false},
      {"cross", cross, "spec.tokenSecretRef.namespace: cross-namespace Secret references", false},
      {"missing", RestoreSpec("bao", "prod/ns1/bao/missing.snap"), "is not an intact backup", true},
      {"damaged", RestoreSpec("bao", "prod/ns1/bao/damaged.snap"), "is not an intact backup", true},
  };
  for (const Case& c : cases) {
    CreateRestore(c.name, c.spec);
    ReconcileRestore(c.name);
    if (c.verify_job) {
      json verify = Job(op::RestoreVerifyJobName(c.name));
      std::string args = verify["spec"]["template"]["spec"]["containers"][0]["args"].dump();
      EXPECT_EQ(args.find("--bao-addr"), std::string::npos) << args;
      EXPECT_NE(RunJob(verify), 0) << c.name;
      ReconcileRestore(c.name);
      // Another controller restart changes nothing.
      ReconcileRestore(c.name);
    }
    EXPECT_EQ(Phase(c.name), "Failed") << c.name;
    EXPECT_NE(Message(c.name).find(c.message), std::string::npos)
        << c.name << ": " << Message(c.name);
    if (c.verify_job) {
      EXPECT_TRUE(HasEvent("BackupNotRestorable", c.name)) << c.name;
    }
    for (const auto& [job, _] : RestoreJobs(c.name)) {
      EXPECT_TRUE(job.starts_with("restore-verify-")) << c.name << " ran " << job;
    }
    EXPECT_TRUE(Lock("bao").is_null()) << c.name << ": " << Lock("bao");
  }
}

// The spec cannot change (the real API server refuses it); deleting a restore mid-way releases
// the lock and removes its Jobs, then the object goes.
TEST_F(RestoreE2E, ImmutableSpecAndDeletionMidwayCleansUp) {
  StartStorage();
  CreateCluster("bao", BackupSpec());
  CreateRestore("r1", RestoreSpec("bao", "prod/ns1/bao/x.snap"));
  ReconcileRestore("r1");
  ASSERT_EQ(Phase("r1"), "Validating");
  Result<json> changed =
      client_->MergePatch(k8s::kOpenBaoRestores, kNs, "r1", {{"spec", {{"force", false}}}});
  ASSERT_FALSE(changed.ok());
  EXPECT_EQ(k8s::HttpCodeOf(changed.status()), 422) << changed.status().ToString();
  EXPECT_NE(changed.status().message().find("spec is immutable"), std::string::npos);

  EXPECT_EQ(RestoreObject("r1")["metadata"]["finalizers"][0], op::kRestoreFinalizer);
  ASSERT_EQ(RestoreJobs("r1").size(), 1u);
  ASSERT_TRUE(client_->Delete(k8s::kOpenBaoRestores, kNs, "r1").ok());
  EXPECT_EQ(ReconcileRestore("r1").outcome, "finalized");
  EXPECT_TRUE(Lock("bao").is_null()) << Lock("bao");
  EXPECT_TRUE(RestoreJobs("r1").empty());
  EXPECT_TRUE(k8s::IsNotFound(client_->Get(k8s::kOpenBaoRestores, kNs, "r1").status()));
}

// A restore Job that failed while OpenBao stayed unchanged is tried again (bounded); one that
// may have reached OpenBao is not.
TEST_F(RestoreE2E, RetriesOnlyWhileOpenBaoIsUnchanged) {
  StartStorage();
  CreateCluster("bao", BackupSpec());
  const std::string key = "prod/ns1/bao/2025-01-15T03-00-00Z-01234567.snap";
  CreateRestore("r1", RestoreSpec("bao", key));
  ReconcileRestore("r1");
  FinishJob("restore-verify-r1", 0, json{{"key", key}, {"size", 4096}}.dump());
  ReconcileRestore("r1");
  ASSERT_EQ(Phase("r1"), "Running");
  FinishJob("restore-r1-1", 3,
            R"({"error":"leader discovery: no active node","stage":"leader","exitCode":3,)"
            R"("openbaoUnchanged":true})");
  EXPECT_EQ(ReconcileRestore("r1").outcome, "retrying");
  EXPECT_EQ(RestoreObject("r1")["status"]["attempts"], 2);
  EXPECT_TRUE(HasEvent("RestoreRetrying", "r1"));
  EXPECT_EQ(ReconcileRestore("r1").outcome, "running");
  ASSERT_EQ(RestoreJobs("r1").count("restore-r1-2"), 1u);
  FinishJob("restore-r1-2", 4,
            R"({"error":"connection reset after the last byte","stage":"snapshot","exitCode":4,)"
            R"("openbaoUnchanged":false})");
  ReconcileRestore("r1");
  EXPECT_EQ(Phase("r1"), "Failed");
  EXPECT_NE(Message("r1").find("connection reset after the last byte"), std::string::npos)
      << Message("r1");
  EXPECT_EQ(RestoreJobs("r1").size(), 3u);  // the verification and two attempts, no third
  EXPECT_TRUE(Lock("bao").is_null()) << Lock("bao");
}

// The controller process killed (SIGKILL) in every phase converges, with exactly one Job of
// each kind.
TEST_F(RestoreE2E, ControllerKilledInEveryPhaseMakesOneJobOfEachKind) {
  RealBaoCluster a({.nodes = 1, .tls = true});
  Status started = a.Start();
  ASSERT_TRUE(started.ok()) << started.ToString();
  ASSERT_TRUE(a.PutSecret("app", {{"password", "kept"}}).ok());
  ASSERT_TRUE(a.PutPolicy("restore", kRestorePolicy).ok());
  ASSERT_TRUE(a.PutPolicy("snapshot-read",
                          "path \"sys/storage/raft/snapshot\" { capabilities = [\"read\"] }")
                  .ok());
  Result<std::string> reader = a.CreateToken({"snapshot-read"});
  Result<std::string> restorer = a.CreateToken({"restore"});
  ASSERT_TRUE(reader.ok() && restorer.ok());
  StartStorage(*reader, *restorer);
  bao_urls_ = {{"bao", a.Urls()}};
  tls_ca_ = {{"bao", ReadText(a.ca_file())}};
  CreateCluster("bao", BackupSpec(), {}, {{op::kAnnotationTrigger, "now"}});
  EXPECT_EQ(Reconcile("bao").outcome, "created");
  ASSERT_EQ(RunJob(Jobs()[0]), 0) << last_run_.err;
  Reconcile("bao");
  const std::string key = BackupStatus("bao").value("lastBackupName", "");
  ASSERT_FALSE(key.empty());

  TempDir dir;
  WriteText(dir.File("kubeconfig"), OperatorKubeconfig());
  auto start_operator = [&](Process* p) {
    std::string error;
    ASSERT_TRUE(
        p->Start({BuildBinary("bao-backup"), "operator", "--kubeconfig", dir.File("kubeconfig"),
                  "--lease-namespace", "bao-backup-system", "--metrics-bind-address", "0",
                  "--controllers", "restore", "--image", "bao-backup:test"},
                 {}, &error))
        << error;
  };
  auto kill = [](Process* p) {
    p->Signal(SIGKILL);
    p->Wait(std::chrono::seconds(10));
  };
  CreateRestore("r1", RestoreSpec("bao", key));
  {
    Process p;
    start_operator(&p);
    ASSERT_TRUE(WaitUntil([&] { return !RestoreJobs("r1").empty(); }, 30s)) << p.Stderr();
    kill(&p);
  }
  EXPECT_EQ(Phase("r1"), "Validating");
  ASSERT_EQ(RunJob(Job("restore-verify-r1")), 0) << last_run_.err;
  {
    Process p;  // a new Lease holder once the old Lease expires
    start_operator(&p);
    ASSERT_TRUE(WaitUntil([&] { return RestoreJobs("r1").count("restore-r1-1") > 0; }, 60s))
        << p.Stderr();
    kill(&p);
  }
  EXPECT_EQ(Phase("r1"), "Running");
  {
    Process p;  // restarted while the restore Job runs: no second Job
    start_operator(&p);
    ASSERT_TRUE(
        WaitUntil([&] { return p.Stderr().find("became leader") != std::string::npos; }, 60s))
        << p.Stderr();
    EXPECT_EQ(RestoreJobs("r1").size(), 2u);
    ASSERT_EQ(RunJob(Job("restore-r1-1")), 0) << last_run_.err;
    EXPECT_TRUE(WaitUntil([&] { return Phase("r1") == "Completed" && Lock("bao").is_null(); }, 60s))
        << p.Stderr();
    kill(&p);
  }
  EXPECT_EQ(RestoreJobs("r1").size(), 2u);
  EXPECT_TRUE(Lock("bao").is_null()) << Lock("bao");
  Status serves = a.EveryNodeServes("app", {{"password", "kept"}});
  EXPECT_TRUE(serves.ok()) << serves.ToString();
}

}  // namespace
}  // namespace bao::testing
