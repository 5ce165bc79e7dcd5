// The backup manager against the project's Kubernetes API imitation, for what a real API
// server cannot be made to do on demand: a request that fails between two writes, as when the
// operator crashes there (/_test/faults). Everything else runs against a real kube-apiserver
// in real_k8s_operator_e2e_test.cc; the fixture (operator_fixture.h) is shared.
#include "operator_fixture.h"

namespace bao::testing {
namespace {

class OperatorFaultTest : public OperatorFixture {
 protected:
  OperatorFaultTest() : OperatorFixture(false) {}
};

TEST_F(OperatorFaultTest, CrashAfterTheLockBeforeTheJobResumesExactlyOneJob) {
  CreateTokenSecrets();
  CreateCluster("bao", BackupSpec());
  Reconcile("bao");
  clock_.Set(At("2025-01-15T03:01:05Z"));
  FailNext("POST", "/namespaces/ns1/jobs");
  EXPECT_FALSE(NewManager()->Reconcile(kNs, "bao").ok());  // lock taken, Job creation cut off
  json lock = Cluster("bao")["status"]["operationLock"];
  EXPECT_EQ(lock["holder"], "bao-backup-operator/job/backup-bao-20250115-030100");
  EXPECT_TRUE(Jobs().empty());
  clock_.Set(At("2025-01-15T03:01:30Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "resumed");
  EXPECT_EQ(Reconcile("bao").outcome, "running");
  clock_.Set(At("2025-01-15T03:02:10Z"));  // the next slot finds the Job still running
  EXPECT_EQ(Reconcile("bao").outcome, "skipped:BackupRunning");
  std::vector<json> jobs = Jobs();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0]["metadata"]["name"], "backup-bao-20250115-030100");
  FinishJob("backup-bao-20250115-030100", 0, R"({"key":"prod/ns1/bao/a.snap","size":7})");
  Reconcile("bao");
  EXPECT_EQ(BackupStatus("bao")["lastBackupName"], "prod/ns1/bao/a.snap");
  EXPECT_FALSE(Cluster("bao")["status"].contains("operationLock"));
  EXPECT_EQ(Jobs().size(), 1u);
}

TEST_F(OperatorFaultTest, CrashBeforeRemovingTheTriggerResumesOneManualJob) {
  CreateTokenSecrets();
  CreateCluster("bao", BackupSpec());
  Reconcile("bao");
  ASSERT_TRUE(client_
                  ->MergePatch(k8s::kOpenBaoClusters, kNs, "bao",
                               {{"metadata", {{"annotations", {{op::kAnnotationTrigger, "now"}}}}}})
                  .ok());
  clock_.Set(At("2025-01-15T03:00:40Z"));
  FailNext("PATCH", "/namespaces/ns1/openbaoclusters/bao");  // removing the annotation
  EXPECT_FALSE(NewManager()->Reconcile(kNs, "bao").ok());
  EXPECT_TRUE(Cluster("bao")["status"].contains("operationLock"));
  EXPECT_TRUE(Jobs().empty());
  clock_.Set(At("2025-01-15T03:00:50Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "resumed");
  EXPECT_FALSE(Cluster("bao")["metadata"]
                   .value("annotations", json::object())
                   .contains(op::kAnnotationTrigger));
  EXPECT_EQ(Reconcile("bao").outcome, "running");
  std::vector<json> jobs = Jobs();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0]["metadata"]["name"], "backup-bao-20250115-030040");  // the trigger's time
  EXPECT_EQ(jobs[0]["metadata"]["annotations"][op::kAnnotationTrigger], "true");
}

TEST_F(OperatorFaultTest, CrashAfterTheJobEndedIsRecordedExactlyOnce) {
  CreateTokenSecrets();
  CreateCluster("bao", BackupSpec());
  Reconcile("bao");
  // 03:01 succeeds; the status write is cut off, then the restarted manager records it.
  clock_.Set(At("2025-01-15T03:01:05Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "created");
  FinishJob("backup-bao-20250115-030100", 0,
            R"({"key":"prod/ns1/bao/one.snap","size":11,"duration":"2s"})");
  clock_.Set(At("2025-01-15T03:01:30Z"));
  FailNext("PATCH", "/namespaces/ns1/openbaoclusters/bao/status");
  EXPECT_FALSE(NewManager()->Reconcile(kNs, "bao").ok());
  EXPECT_FALSE(BackupStatus("bao").contains("lastBackupName"));
  EXPECT_TRUE(Cluster("bao")["status"].contains("operationLock"));
  Reconcile("bao");
  Reconcile("bao");
  json b = BackupStatus("bao");
  EXPECT_EQ(b["lastBackupName"], "prod/ns1/bao/one.snap");
  EXPECT_EQ(b["lastBackupSize"], 11);
  EXPECT_EQ(b["consecutiveFailures"], 0);
  EXPECT_FALSE(Cluster("bao")["status"].contains("operationLock"));
  EXPECT_EQ(EventCount("BackupSucceeded", "bao"), 1);

  // 03:02 fails; the crash falls between the status write and marking the Job.
  clock_.Set(At("2025-01-15T03:02:05Z"));
  EXPECT_EQ(Reconcile("bao").outcome, "created");
  FinishJob("backup-bao-20250115-030200", 6, R"({"error":"checksum mismatch","stage":"verify"})");
  FailNext("PATCH", "/namespaces/ns1/jobs/backup-bao-20250115-030200");
  EXPECT_FALSE(NewManager()->Reconcile(kNs, "bao").ok());
  EXPECT_EQ(BackupStatus("bao")["consecutiveFailures"], 1);
  Reconcile("bao");
  Reconcile("bao");
  b = BackupStatus("bao");
  EXPECT_EQ(b["consecutiveFailures"], 1) << b;
  EXPECT_EQ(b["lastFailureReason"], "verify: checksum mismatch");
  EXPECT_EQ(EventCount("BackupFailed", "bao"), 1);
  for (const json& j : Jobs()) {
    EXPECT_EQ(j["metadata"]["annotations"].value(op::kAnnotationRecorded, ""), "true")
        << j["metadata"]["name"];
  }
  EXPECT_EQ(Jobs().size(), 2u);
}

}  // namespace
}  // namespace bao::testing
