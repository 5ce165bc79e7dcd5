#include "operator/backup_logic.h"

#include <gtest/gtest.h>

#include <functional>

namespace bao::op {
namespace {

using nlohmann::json;

TimePoint At(const char* rfc3339) {
  return *ParseRfc3339(rfc3339);
}

CronSchedule Cron(const char* expr) {
  return *CronSchedule::Parse(expr);
}

TEST(DecideSlotTest, AClusterNeverSeenStartsAtItsFirstRecordedNextSlot) {
  CronSchedule cron = Cron("0 3 * * *");
  SlotDecision d = DecideSlot(cron, At("2025-01-15T10:00:00Z"), nullptr);
  EXPECT_FALSE(d.due);  // 03:00 passed before the operator saw the cluster
  EXPECT_TRUE(d.next_changed);
  EXPECT_EQ(FormatRfc3339(d.next), "2025-01-16T03:00:00Z");
  ASSERT_TRUE(d.previous.has_value());
  EXPECT_EQ(FormatRfc3339(*d.previous), "2025-01-15T03:00:00Z");

  json status = {{"nextScheduledBackup", "2025-01-16T03:00:00Z"}};
  d = DecideSlot(cron, At("2025-01-15T23:00:00Z"), status);
  EXPECT_FALSE(d.due);
  EXPECT_FALSE(d.next_changed);
  d = DecideSlot(cron, At("2025-01-16T03:00:05Z"), status);
  EXPECT_TRUE(d.due);
  EXPECT_EQ(FormatRfc3339(*d.previous), "2025-01-16T03:00:00Z");
  EXPECT_TRUE(d.next_changed);
}

TEST(DecideSlotTest, AConsumedSlotIsNotDueAgainAndMissedSlotsCoalesce) {
  CronSchedule cron = Cron("*/15 * * * *");
  json status = {{"lastAttemptScheduledTime", "2025-01-15T03:00:00Z"},
                 {"nextScheduledBackup", "2025-01-15T03:15:00Z"}};
  EXPECT_FALSE(DecideSlot(cron, At("2025-01-15T03:14:59Z"), status).due);
  // Skipped slots count as consumed too.
  json skipped = {{"lastAttemptScheduledTime", "2025-01-15T02:00:00Z"},
                  {"lastSkippedScheduledTime", "2025-01-15T03:00:00Z"}};
  EXPECT_FALSE(DecideSlot(cron, At("2025-01-15T03:10:00Z"), skipped).due);
  // The operator was down for an hour: one backup for the latest slot, not four.
  SlotDecision d = DecideSlot(cron, At("2025-01-15T04:05:00Z"), status);
  EXPECT_TRUE(d.due);
  EXPECT_EQ(FormatRfc3339(*d.previous), "2025-01-15T04:00:00Z");
  // Garbage in status is ignored, not fatal.
  json bad = {{"lastAttemptScheduledTime", 5}, {"nextScheduledBackup", "yesterday"}};
  d = DecideSlot(cron, At("2025-01-15T04:05:00Z"), bad);
  EXPECT_FALSE(d.due);
  EXPECT_TRUE(d.next_changed);
}

json RunningCluster() {
  return {{"metadata", {{"name", "bao"}}},
          {"spec", {{"version", "2.1.0"}}},
          {"status", {{"phase", "Running"}, {"currentVersion", "2.1.0"}}}};
}

TEST(PreconditionsTest, EachReasonInOrder) {
  EXPECT_FALSE(CheckPreconditions(RunningCluster(), {}, false).has_value());

  json c = RunningCluster();
  c["status"]["phase"] = "Initializing";
  c["status"]["upgrade"] = {{"targetVersion", "2.2.0"}};  // ClusterNotRunning comes first
  auto skip = CheckPreconditions(c, {}, true);
  ASSERT_TRUE(skip.has_value());
  EXPECT_EQ(skip->reason, "ClusterNotRunning");
  EXPECT_NE(skip->message.find("\"Initializing\""), std::string::npos) << skip->message;

  c = RunningCluster();
  c["status"]["upgrade"] = {{"targetVersion", "2.2.0"}};
  EXPECT_EQ(CheckPreconditions(c, {}, false)->reason, "UpgradeInProgress");
  c["status"]["upgrade"] = json::object();  // an empty object is no upgrade
  EXPECT_FALSE(CheckPreconditions(c, {}, false).has_value());

  c = RunningCluster();
  c["spec"]["version"] = "2.2.0";
  skip = CheckPreconditions(c, {}, false);
  ASSERT_TRUE(skip.has_value());
  EXPECT_EQ(skip->reason, "UpgradePending");
  EXPECT_NE(skip->message.find("2.2.0"), std::string::npos);

  json other = {{"metadata", {{"name", "r0"}}}, {"spec", {{"cluster", "other"}}}};
  json done = {{"metadata", {{"name", "r1"}}},
               {"spec", {{"cluster", "bao"}}},
               {"status", {{"phase", "Completed"}}}};
  json failed = {{"metadata", {{"name", "r2"}}},
                 {"spec", {{"cluster", "bao"}}},
                 {"status", {{"phase", "Failed"}}}};
  EXPECT_FALSE(CheckPreconditions(RunningCluster(), {other, done, failed}, false).has_value());
  json pending = {{"metadata", {{"name", "r3"}}}, {"spec", {{"cluster", "bao"}}}};
  skip = CheckPreconditions(RunningCluster(), {other, done, pending}, false);
  ASSERT_TRUE(skip.has_value());
  EXPECT_EQ(skip->reason, "RestoreInProgress");
  EXPECT_EQ(skip->message, "OpenBaoRestore \"r3\" is Pending");

  EXPECT_EQ(CheckPreconditions(RunningCluster(), {}, true)->reason, "BackupRunning");

  c = RunningCluster();
  c["status"]["operationLock"] = {{"operation", "Restore"}, {"holder", "restore/r9"}};
  skip = CheckPreconditions(c, {}, false);
  ASSERT_TRUE(skip.has_value());
  EXPECT_EQ(skip->reason, "OperationLocked");
  EXPECT_NE(skip->message.find("Restore by restore/r9"), std::string::npos) << skip->message;
}

json UpgradingCluster() {
  json c = RunningCluster();
  c["spec"]["version"] = "2.2.0";
  c["spec"]["upgrade"] = {{"preUpgradeSnapshot", true}, {"strategy", "RollingUpdate"}};
  return c;
}

TEST(PreUpgradeTest, WantedOnlyWithTheFlagWhileAVersionChangeIsPending) {
  EXPECT_EQ(PreUpgradeTargetVersion(UpgradingCluster()), "2.2.0");
  json c = UpgradingCluster();
  c["spec"]["upgrade"]["preUpgradeSnapshot"] = false;
  EXPECT_EQ(PreUpgradeTargetVersion(c), "");
  c["spec"].erase("upgrade");
  EXPECT_EQ(PreUpgradeTargetVersion(c), "");
  EXPECT_EQ(DecidePreUpgrade(c, {}, "", false).action, PreUpgradeAction::kNone);
  c = UpgradingCluster();
  c["spec"]["version"] = "2.1.0";  // done (or never asked)
  EXPECT_EQ(DecidePreUpgrade(c, {}, "", false).action, PreUpgradeAction::kNone);
  c = UpgradingCluster();
  c["status"].erase("currentVersion");  // not installed yet: nothing to protect
  EXPECT_EQ(DecidePreUpgrade(c, {}, "", true).action, PreUpgradeAction::kNone);
}

TEST(PreUpgradeTest, ExactlyOneAttemptPerTargetVersion) {
  // Nothing yet: the first attempt starts.
  json c = UpgradingCluster();
  PreUpgradeDecision d = DecidePreUpgrade(c, {}, "", false);
  EXPECT_EQ(d.action, PreUpgradeAction::kStart);
  EXPECT_EQ(d.version, "2.2.0");
  EXPECT_EQ(d.attempt, 1);

  // Started (attempt recorded with the lock): running while its Job runs or its lock is held,
  // whatever a repeated reconcile or a new process sees.
  c["status"]["backup"]["lastPreUpgradeAttempt"] = {
      {"version", "2.2.0"}, {"job", "backup-bao-pre-1"}, {"attempt", 1}};
  d = DecidePreUpgrade(c, {}, "backup-bao-pre-1", false);
  EXPECT_EQ(d.action, PreUpgradeAction::kRunning);
  EXPECT_EQ(d.job, "backup-bao-pre-1");
  json locked = c;
  locked["status"]["operationLock"] = {
      {"operation", "Backup"}, {"holder", std::string(kLockHolderPrefix) + "backup-bao-pre-1"}};
  EXPECT_EQ(DecidePreUpgrade(locked, {}, "", false).action, PreUpgradeAction::kRunning);
  EXPECT_EQ(DecidePreUpgrade(locked, {}, "", true).action, PreUpgradeAction::kRunning);

  // Ended without a backup: failed, and not retried on its own.
  d = DecidePreUpgrade(c, {}, "", false);
  EXPECT_EQ(d.action, PreUpgradeAction::kFailed);
  EXPECT_EQ(d.attempt, 1);
  // The trigger annotation retries it, as the next attempt (another Job).
  d = DecidePreUpgrade(c, {}, "", true);
  EXPECT_EQ(d.action, PreUpgradeAction::kStart);
  EXPECT_EQ(d.attempt, 2);
  // ... but not through a precondition: it stays failed.
  json stopped = c;
  stopped["status"]["phase"] = "Degraded";
  d = DecidePreUpgrade(stopped, {}, "", true);
  EXPECT_EQ(d.action, PreUpgradeAction::kFailed);
  ASSERT_TRUE(d.blocked.has_value());
  EXPECT_EQ(d.blocked->reason, "ClusterNotRunning");

  // Stored: ready, also when triggered (the trigger then is an ordinary, skipped, trigger).
  c["status"]["backup"]["lastPreUpgradeBackup"] = {
      {"key", "p/ns/bao/pre-upgrade-2025-01-15T03-00-00Z-0123abcd.snap"},
      {"version", "2.2.0"},
      {"time", "2025-01-15T03:00:09Z"}};
  EXPECT_EQ(DecidePreUpgrade(c, {}, "", false).action, PreUpgradeAction::kReady);
  EXPECT_EQ(DecidePreUpgrade(c, {}, "", true).action, PreUpgradeAction::kReady);

  // Another target version: a new first attempt, whatever happened for the previous one.
  c["spec"]["version"] = "2.3.0";
  d = DecidePreUpgrade(c, {}, "", false);
  EXPECT_EQ(d.action, PreUpgradeAction::kStart);
  EXPECT_EQ(d.version, "2.3.0");
  EXPECT_EQ(d.attempt, 1);
}

TEST(PreUpgradeTest, WaitsForTheSamePreconditionsButTheVersionChange) {
  EXPECT_FALSE(CheckPreUpgradePreconditions(UpgradingCluster(), {}, false).has_value());
  EXPECT_EQ(CheckPreconditions(UpgradingCluster(), {}, false)->reason, "UpgradePending");
  struct Case {
    const char* reason;
    std::function<void(json&)> change;
    bool job_running = false;
    std::vector<json> restores = {};
  };
  std::vector<Case> cases = {
      {"ClusterNotRunning", [](json& c) { c["status"]["phase"] = "Initializing"; }},
      {"UpgradeInProgress",
       [](json& c) {
         c["status"]["upgrade"] = {{"targetVersion", "2.2.0"}};
       }},
      {"RestoreInProgress",
       [](json&) {},
       false,
       {{{"metadata", {{"name", "r"}}}, {"spec", {{"cluster", "bao"}}}}}},
      {"BackupRunning", [](json&) {}, true},
      {"OperationLocked",
       [](json& c) {
         c["status"]["operationLock"] = {{"operation", "Upgrade"}, {"holder", "upgrader"}};
       }},
  };
  for (const Case& k : cases) {
    json c = UpgradingCluster();
    k.change(c);
    auto skip = CheckPreUpgradePreconditions(c, k.restores, k.job_running);
    ASSERT_TRUE(skip.has_value()) << k.reason;
    EXPECT_EQ(skip->reason, k.reason);
    PreUpgradeDecision d =
        DecidePreUpgrade(c, k.restores, k.job_running ? "backup-bao-20250115-030000" : "", false);
    EXPECT_EQ(d.action, PreUpgradeAction::kWait) << k.reason;
    ASSERT_TRUE(d.blocked.has_value());
    EXPECT_EQ(d.blocked->reason, k.reason);
  }
}

TEST(PreUpgradeTest, ConditionsKeepTheirTransitionTimeAndSayWhenTheyChanged) {
  json conds;  // none yet
  bool news = false;
  EXPECT_TRUE(SetCondition(conds, "PreUpgradeBackupReady", false, "PreUpgradeBackupRunning",
                           "Job j", At("2025-01-15T03:00:00Z"), 2, &news));
  EXPECT_TRUE(news);
  ASSERT_EQ(conds.size(), 1u);
  EXPECT_EQ(conds[0]["status"], "False");
  EXPECT_EQ(conds[0]["observedGeneration"], 2);
  // Same words, same generation: nothing to write.
  EXPECT_FALSE(SetCondition(conds, "PreUpgradeBackupReady", false, "PreUpgradeBackupRunning",
                            "Job j", At("2025-01-15T03:05:00Z"), 2, &news));
  EXPECT_FALSE(news);
  // A generation bump alone is written but is no news.
  EXPECT_TRUE(SetCondition(conds, "PreUpgradeBackupReady", false, "PreUpgradeBackupRunning",
                           "Job j", At("2025-01-15T03:05:00Z"), 3, &news));
  EXPECT_FALSE(news);
  // Another reason with the same status keeps the transition time; a new status moves it.
  SetCondition(conds, "PreUpgradeBackupReady", false, "PreUpgradeBackupFailed", "boom",
               At("2025-01-15T03:06:00Z"), 3, &news);
  EXPECT_TRUE(news);
  EXPECT_EQ(conds[0]["lastTransitionTime"], "2025-01-15T03:00:00Z");
  SetCondition(conds, "PreUpgradeBackupReady", true, "PreUpgradeBackupSucceeded", "k",
               At("2025-01-15T03:07:00Z"), 3);
  EXPECT_EQ(conds[0]["lastTransitionTime"], "2025-01-15T03:07:00Z");
  // Other conditions are left alone.
  json two = json::array({{{"type", "BackupConfigured"}, {"status", "True"}}});
  SetCondition(two, "PreUpgradeBackupReady", true, "PreUpgradeBackupSucceeded", "k",
               At("2025-01-15T03:07:00Z"), 1);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0]["type"], "BackupConfigured");
  json cluster = {{"status", {{"conditions", two}}}};
  EXPECT_EQ(FindCondition(cluster, "PreUpgradeBackupReady")["reason"], "PreUpgradeBackupSucceeded");
  EXPECT_TRUE(FindCondition(cluster, "Nope").is_null());
}

json FinishedJob(const char* name, const char* condition) {
  return {
      {"metadata", {{"name", name}}},
      {"status",
       {{"conditions", json::array({{{"type", condition},
                                     {"status", "True"},
                                     {"reason", "BackoffLimitExceeded"},
                                     {"message", "Job has reached the specified backoff"}}})}}}};
}

json Pod(const std::string& message, const char* finished_at) {
  return {{"status",
           {{"containerStatuses",
             json::array(
                 {{{"state",
                    {{"terminated", {{"message", message}, {"finishedAt", finished_at}}}}}}})}}}};
}

TEST(EvaluateFinishedJobTest, SuccessRecordsTheResultAndResetsFailures) {
  json job = FinishedJob("backup-bao-20250115-030000", "Complete");
  std::string result =
      R"({"key":"p/ns/bao/2025-01-15T03-00-00Z-0123abcd.snap","size":1234,"duration":"12s",)"
      R"("finishedAt":"2025-01-15T03:00:12Z"})";
  // Log lines before the result and an older Pod's result are ignored.
  std::vector<json> pods = {Pod("starting\n" + result + "\n\n", "2025-01-15T03:00:12Z"),
                            Pod(R"({"key":"old","size":1})", "2025-01-15T02:00:00Z")};
  JobOutcome o = EvaluateFinishedJob(job, true, pods, {{"consecutiveFailures", 4}},
                                     At("2025-01-15T03:01:00Z"));
  EXPECT_TRUE(o.succeeded);
  EXPECT_EQ(o.consecutive_failures, 0);
  const json& b = o.backup_patch;
  EXPECT_EQ(b["lastRecordedJob"], "backup-bao-20250115-030000");
  EXPECT_EQ(b["lastBackupName"], "p/ns/bao/2025-01-15T03-00-00Z-0123abcd.snap");
  EXPECT_EQ(b["lastBackupSize"], 1234);
  EXPECT_EQ(b["lastBackupDuration"], "12s");
  EXPECT_EQ(b["lastBackupTime"], "2025-01-15T03:00:12Z");
  EXPECT_EQ(b["consecutiveFailures"], 0);
  EXPECT_FALSE(b.contains("lastFailureReason"));
  EXPECT_NE(o.message.find("1234 bytes"), std::string::npos) << o.message;
}

// With extra targets every target has its own line in status.backup.targets: a failed copy
// counts against that target only (the backup succeeded) and is one Warning Event; a failed Job
// counts against every target listed.
TEST(EvaluateFinishedJobTest, EachTargetKeepsItsOwnRecordAndFailureCount) {
  json job = FinishedJob("backup-bao-20250115-030000", "Complete");
  std::string result =
      R"({"key":"p/ns/bao/k.snap","size":100,"finishedAt":"2025-01-15T03:00:12Z","targets":[)"
      R"({"name":"primary","key":"p/ns/bao/k.snap","size":100,"ok":true},)"
      R"({"name":"dr","key":"dr/ns/bao/k.snap","size":100,"ok":true},)"
      R"({"name":"far","key":"f/ns/bao/k.snap","size":0,"ok":false,"stage":"storage",)"
      R"("error":"writing: stalled"}]})";
  json previous = {{"consecutiveFailures", 0},
                   {"targets", json::array({{{"name", "far"},
                                             {"key", "f/ns/bao/old.snap"},
                                             {"size", 90},
                                             {"lastSuccess", "2025-01-14T03:00:10Z"},
                                             {"consecutiveFailures", 2}}})}};
  JobOutcome o = EvaluateFinishedJob(job, true, {Pod(result, "2025-01-15T03:00:12Z")}, previous,
                                     At("2025-01-15T03:01:00Z"));
  ASSERT_TRUE(o.succeeded);
  const json& t = o.backup_patch["targets"];
  ASSERT_EQ(t.size(), 3u) << t.dump();
  EXPECT_EQ(t[0]["name"], "primary");
  EXPECT_EQ(t[1]["key"], "dr/ns/bao/k.snap");
  EXPECT_EQ(t[1]["lastSuccess"], "2025-01-15T03:00:12Z");
  EXPECT_EQ(t[1]["consecutiveFailures"], 0);
  // The failed copy keeps its last good copy and counts on.
  EXPECT_EQ(t[2]["key"], "f/ns/bao/old.snap");
  EXPECT_EQ(t[2]["lastSuccess"], "2025-01-14T03:00:10Z");
  EXPECT_EQ(t[2]["consecutiveFailures"], 3);
  EXPECT_EQ(t[2]["lastFailureReason"], "storage: writing: stalled");
  ASSERT_EQ(o.copy_failures.size(), 1u);
  EXPECT_NE(o.copy_failures[0].find("target far failed (the backup itself is stored)"),
            std::string::npos)
      << o.copy_failures[0];
  EXPECT_NE(o.message.find("1 of 2 extra copies failed"), std::string::npos) << o.message;
  EXPECT_EQ(o.backup_patch["consecutiveFailures"], 0);

  // The next Job fails: every listed target counts it.
  JobOutcome failed = EvaluateFinishedJob(FinishedJob("backup-bao-20250116-030000", "Failed"),
                                          false, {}, {{"targets", t}}, At("2025-01-16T03:05:00Z"));
  const json& after = failed.backup_patch["targets"];
  ASSERT_EQ(after.size(), 3u);
  EXPECT_EQ(after[0]["consecutiveFailures"], 1);
  EXPECT_EQ(after[2]["consecutiveFailures"], 4);
  EXPECT_TRUE(failed.copy_failures.empty());

  // Extra targets removed from the spec: the list goes away with the next success.
  JobOutcome plain = EvaluateFinishedJob(
      job, true, {Pod(R"({"key":"p/ns/bao/k2.snap","size":1})", "2025-01-17T03:00:12Z")},
      {{"targets", t}}, At("2025-01-17T03:01:00Z"));
  EXPECT_TRUE(plain.backup_patch["targets"].is_null());
}

TEST(EvaluateFinishedJobTest, LastBackupTimeIsWhenTheBackupEndedNotWhenItWasNoticed) {
  json job = FinishedJob("backup-bao-20250115-030000", "Complete");
  job["status"]["completionTime"] = "2025-01-15T03:00:20Z";
  const TimePoint noticed = At("2025-01-15T04:30:00Z");  // the operator was down for a while
  const std::string result = R"({"key":"k.snap","size":1,"duration":"12s"})";
  // No finishedAt in the result: the container's end.
  JobOutcome o = EvaluateFinishedJob(job, true, {Pod(result, "2025-01-15T03:00:13Z")}, {}, noticed);
  EXPECT_EQ(o.backup_patch["lastBackupTime"], "2025-01-15T03:00:13Z");
  // No usable container time either: the Job's completionTime.
  o = EvaluateFinishedJob(job, true, {Pod(result, "")}, {}, noticed);
  EXPECT_EQ(o.backup_patch["lastBackupTime"], "2025-01-15T03:00:20Z");
  // Nothing known at all: when it was noticed.
  job["status"].erase("completionTime");
  o = EvaluateFinishedJob(job, true, {Pod(result, "")}, {}, noticed);
  EXPECT_EQ(o.backup_patch["lastBackupTime"], "2025-01-15T04:30:00Z");
}

TEST(ClusterGaugesTest, ComputedFromStatusOfEveryClusterWithBackups) {
  std::vector<json> clusters = {
      {{"metadata", {{"namespace", "b"}, {"name", "two"}}},
       {"spec", {{"backup", {{"schedule", "@daily"}}}}},
       {"status",
        {{"backup",
          {{"lastBackupTime", "2025-01-15T03:00:12Z"},
           {"consecutiveFailures", 0},
           {"lastBackupDuration", "1m30s"},
           {"lastBackupSize", 4096},
           {"nextScheduledBackup", "2025-01-16T03:00:00Z"}}}}}},
      {{"metadata", {{"namespace", "a"}, {"name", "one"}}},
       {"spec", {{"backup", {{"schedule", "@daily"}}}}},
       {"status", {{"backup", {{"consecutiveFailures", 3}, {"lastBackupTime", "garbage"}}}}}},
      {{"metadata", {{"namespace", "a"}, {"name", "nobackup"}}},
       {"status", {{"backup", {{"consecutiveFailures", 9}}}}}},
  };
  std::string text = ClusterGaugesText(clusters);
  EXPECT_NE(text.find("bao_backup_last_success_timestamp_seconds{namespace=\"b\",cluster=\"two\"} "
                      "1736910012\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("bao_backup_consecutive_failures{namespace=\"a\",cluster=\"one\"} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("bao_backup_last_duration_seconds{namespace=\"b\",cluster=\"two\"} 90\n"),
            std::string::npos);
  EXPECT_NE(text.find("bao_backup_last_size_bytes{namespace=\"b\",cluster=\"two\"} 4096\n"),
            std::string::npos);
  // An unparsable time leaves the cluster out of that gauge; no spec.backup, out of all.
  EXPECT_EQ(text.find("bao_backup_last_success_timestamp_seconds{namespace=\"a\""),
            std::string::npos);
  EXPECT_EQ(text.find("nobackup"), std::string::npos);
  // Sorted: a/one before b/two.
  EXPECT_LT(text.find("cluster=\"one\"} 3"), text.find("cluster=\"two\"} 0"));
}

TEST(EvaluateFinishedJobTest, FailuresCountUpWithTheExecutorsReason) {
  json job = FinishedJob("backup-bao-20250115-030000", "Failed");
  std::vector<json> pods = {
      Pod(R"({"error":"permission denied on sys/storage/raft/snapshot","stage":"snapshot"})",
          "2025-01-15T03:00:12Z")};
  JobOutcome o = EvaluateFinishedJob(job, false, pods, {{"consecutiveFailures", 2}},
                                     At("2025-01-15T03:01:00Z"));
  EXPECT_FALSE(o.succeeded);
  EXPECT_EQ(o.consecutive_failures, 3);
  EXPECT_EQ(o.backup_patch["consecutiveFailures"], 3);
  EXPECT_EQ(o.backup_patch["lastFailureReason"],
            "snapshot: permission denied on sys/storage/raft/snapshot");
  EXPECT_FALSE(o.backup_patch.contains("lastBackupName"));

  // No result at all (Pod never started): the Job's Failed condition; first failure counts 1.
  o = EvaluateFinishedJob(job, false, {}, nullptr, At("2025-01-15T03:01:00Z"));
  EXPECT_EQ(o.consecutive_failures, 1);
  EXPECT_EQ(o.backup_patch["lastFailureReason"],
            "Job failed: BackoffLimitExceeded: Job has reached the specified backoff");

  // A Job that completed without naming its object is a failure, not a success.
  o = EvaluateFinishedJob(FinishedJob("j", "Complete"), true, {Pod("not json", "x")},
                          {{"consecutiveFailures", 0}}, At("2025-01-15T03:01:00Z"));
  EXPECT_FALSE(o.succeeded);
  EXPECT_EQ(o.consecutive_failures, 1);
}

// The pre-upgrade backup's result is recorded like any backup's, and also as the recovery
// point of its version.
TEST(EvaluateFinishedJobTest, PreUpgradeRecordNamesKeyVersionAndTime) {
  json job = FinishedJob("backup-bao-pre-0123abcd", "Complete");
  std::string result =
      R"({"key":"p/ns/bao/pre-upgrade-2025-01-15T03-00-00Z-0123abcd.snap","size":9,)"
      R"("duration":"2s","finishedAt":"2025-01-15T03:00:02Z"})";
  JobOutcome o = EvaluateFinishedJob(job, true, {Pod(result, "2025-01-15T03:00:02Z")},
                                     {{"consecutiveFailures", 1}}, At("2025-01-15T03:01:00Z"));
  ASSERT_TRUE(o.succeeded);
  EXPECT_EQ(o.backup_patch["consecutiveFailures"], 0);
  EXPECT_EQ(PreUpgradeBackupRecord(o, "2.2.0"),
            json({{"key", "p/ns/bao/pre-upgrade-2025-01-15T03-00-00Z-0123abcd.snap"},
                  {"version", "2.2.0"},
                  {"time", "2025-01-15T03:00:02Z"}}));
  o = EvaluateFinishedJob(FinishedJob("backup-bao-pre-0123abcd", "Failed"), false,
                          {Pod(R"({"error":"boom","stage":"snapshot"})", "x")}, nullptr,
                          At("2025-01-15T03:01:00Z"));
  EXPECT_TRUE(PreUpgradeBackupRecord(o, "2.2.0").is_null());
}

TEST(JobStateTest, FinishedAndResultParsing) {
  EXPECT_EQ(JobFinished(FinishedJob("j", "Complete")), "Complete");
  EXPECT_EQ(JobFinished(FinishedJob("j", "Failed")), "Failed");
  json running = {{"status", {{"active", 1}}}};
  EXPECT_EQ(JobFinished(running), "");
  json suspended = {
      {"status", {{"conditions", json::array({{{"type", "Failed"}, {"status", "False"}}})}}}};
  EXPECT_EQ(JobFinished(suspended), "");
  EXPECT_TRUE(ParseResult("").is_null());
  EXPECT_TRUE(ParseResult("[1,2]").is_null());
  EXPECT_EQ(ParseResult("log\n{\"key\":\"k\"}\n  \n")["key"], "k");
}

TEST(LockTest, OnlyOurBackupLockIsRecognizedAndRenewedWhenStale) {
  json ours = {{"operation", "Backup"},
               {"holder", std::string(kLockHolderPrefix) + "backup-bao-20250115-030000"},
               {"renewedAt", "2025-01-15T03:00:00Z"}};
  EXPECT_TRUE(IsOurLock(ours));
  EXPECT_EQ(LockJobName(ours), "backup-bao-20250115-030000");
  EXPECT_FALSE(LockNeedsRenewal(ours, At("2025-01-15T03:00:29Z")));
  EXPECT_TRUE(LockNeedsRenewal(ours, At("2025-01-15T03:00:30Z")));
  json no_renewed = ours;
  no_renewed.erase("renewedAt");
  EXPECT_TRUE(LockNeedsRenewal(no_renewed, At("2025-01-15T03:00:01Z")));
  // Any time a status may hold (1678..2261): the difference to now does not fit a duration of
  // nanoseconds, and is never computed (UBSan would report the overflow).
  json ancient = ours;
  ancient["renewedAt"] = "1680-01-01T00:00:00Z";
  EXPECT_TRUE(LockNeedsRenewal(ancient, At("2025-01-15T03:00:00Z")));
  json future = ours;
  future["renewedAt"] = "2261-12-31T00:00:00Z";
  EXPECT_FALSE(LockNeedsRenewal(future, At("1970-01-01T00:00:00Z")));

  json upgrade = {{"operation", "Upgrade"}, {"holder", "upgrade-manager"}};
  EXPECT_FALSE(IsOurLock(upgrade));
  EXPECT_EQ(LockJobName(upgrade), "");
  EXPECT_FALSE(LockNeedsRenewal(upgrade, At("2030-01-01T00:00:00Z")));
  json foreign_backup = {{"operation", "Backup"}, {"holder", "someone-else"}};
  EXPECT_FALSE(IsOurLock(foreign_backup));
  EXPECT_FALSE(IsOurLock(nullptr));
}

}  // namespace
}  // namespace bao::op
