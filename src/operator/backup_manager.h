// The backup manager's reconcile step for one OpenBaoCluster: level-triggered and idempotent
// (like a controller-runtime Reconcile). It reads the cluster, its Secrets and its backup Jobs
// from the API, decides, and writes only: the `<cluster>-backup-serviceaccount`, backup Jobs,
// merge patches of `status` (backup, operationLock, conditions), the removal of the
// `openbao.org/trigger-backup` annotation, and Events. Any reconcile may be repeated or cut off
// at any point; the next one converges:
//   - the Job name derives from the slot, so a slot never gets a second Job;
//   - the lock (status.operationLock, holder "bao-backup-operator/job/<job>") is taken with a
//     resourceVersion precondition before the Job is created; a lock whose Job does not exist
//     yet is resumed (Job created) within kResumeWindow, else released as lost;
//   - a finished Job's result is applied in one status patch that also records the Job in
//     status.backup.lastRecordedJob and releases the lock; a Job already recorded there (or
//     annotated openbao.org/result-recorded) is never counted again;
//   - before an upgrade (spec.upgrade.preUpgradeSnapshot), one backup per target version: its
//     Job name derives from the version (and the attempt), and the attempt is recorded in
//     status.backup.lastPreUpgradeAttempt in the same patch that takes the lock.
// The exact rules are in docs/operator.md.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "k8s/client.h"
#include "k8s/events.h"
#include "operator/backup_logic.h"
#include "operator/job_builder.h"
#include "schedule/cron.h"

namespace bao::op {

constexpr const char* kConditionBackupConfigured = "BackupConfigured";
// The backup before an upgrade (spec.upgrade.preUpgradeSnapshot): True once the backup for the
// target spec.version is stored (the message names its object key); False while it waits or
// runs, and when it failed (not retried until openbao.org/trigger-backup is set).
constexpr const char* kConditionPreUpgradeBackupReady = "PreUpgradeBackupReady";
constexpr const char* kReasonPreUpgradeBackupSucceeded = "PreUpgradeBackupSucceeded";
constexpr const char* kReasonPreUpgradeBackupRunning = "PreUpgradeBackupRunning";
constexpr const char* kReasonPreUpgradeBackupWaiting = "PreUpgradeBackupWaiting";
constexpr const char* kReasonPreUpgradeBackupFailed = "PreUpgradeBackupFailed";
constexpr const char* kAnnotationRecorded = "openbao.org/result-recorded";
// Condition reasons of BackupConfigured=False for writes the API server refused.
constexpr const char* kReasonServiceAccountCreateFailed = "ServiceAccountCreateFailed";
constexpr const char* kReasonJobCreateFailed = "JobCreateFailed";
constexpr std::chrono::minutes kResumeWindow{10};

struct ManagerOptions {
  JobSettings job;
  const Clock* clock = &SystemClock();
};

struct ReconcileResult {
  // When this cluster needs looking at again even if nothing changes (next slot, or a short
  // poll while a Job runs). TimePoint::max() when never (no spec.backup, cluster gone).
  TimePoint requeue_at = TimePoint::max();
  std::string outcome;  // short word for logs and tests: "created", "skipped", "invalid", ...
};

// Counters of what this process recorded, for /metrics. Per-cluster gauges (last success,
// failures in a row, ...) are not kept here: they come from status.backup at scrape time
// (ClusterGaugesText in backup_logic.h), so every replica reports them, also after a restart.
struct ClusterCounters {
  int64_t successes = 0;
  int64_t failures = 0;
  int64_t skipped = 0;
};

// Thread-safe for concurrent Reconcile calls on *different* clusters; calls for one cluster
// must be serialized by the caller (the work queue does). `client` and `events` must outlive it.
class BackupManager {
 public:
  BackupManager(k8s::Client* client, k8s::EventRecorder* events, ManagerOptions options);

  // Reconciles the cluster `ns`/`name`. Errors are API failures (the caller retries with
  // backoff); configuration problems are not errors: they end as a condition and an Event.
  // A refused write of the ServiceAccount or the Job (HTTP 400, 403, 422) is both: the
  // condition BackupConfigured=False (ServiceAccountCreateFailed, JobCreateFailed) with a
  // Warning Event, and an error so that it is retried.
  Result<ReconcileResult> Reconcile(const std::string& ns, const std::string& name);

  // Prometheus text of this process's counters (per cluster) and reconcile counts.
  std::string MetricsText() const;

 private:
  struct View;  // what one reconcile read and decided so far
  Result<ReconcileResult> ReconcileCluster(View& v);
  // The steps of ReconcileCluster, in order. A step returning false ended the reconcile
  // (its outcome is in v.result).
  Result<bool> ValidateSpec(View& v);
  Result<bool> CheckSecrets(View& v);
  Result<bool> EnsureServiceAccount(View& v);
  Status MarkConfigured(View& v);
  Status ObserveJobs(View& v);
  Result<bool> MaintainLock(View& v);
  Result<bool> PreUpgradeBackup(View& v);
  Result<bool> DecideDueSlot(View& v);
  Result<bool> CheckBackupPreconditions(View& v);
  Status StartBackup(View& v);

  Status SetConfigured(View& v, bool ok, const std::string& reason, const std::string& message);
  Status SetPreUpgradeCondition(View& v, bool ok, const std::string& reason,
                                const std::string& message);
  Status StartPreUpgradeBackup(View& v, const PreUpgradeDecision& d);
  Result<const std::vector<nlohmann::json>*> Restores(View& v);
  Result<bool> CheckSecret(View& v, const std::string& secret, const std::string& what,
                           const char* key, const std::string& reason_prefix);
  Status CreateJob(View& v, const nlohmann::json& job, const std::string& event_message);
  Status RecordFinishedJobs(View& v);
  Status RecordResult(View& v, const nlohmann::json& job, bool succeeded);
  Status MarkRecorded(View& v, const std::string& job_name);
  Status Skip(View& v, const std::string& reason, const std::string& message);
  Status RemoveTrigger(View& v);
  void Event(const View& v, bool normal, const std::string& reason, const std::string& message);

  k8s::Client* client_;
  k8s::EventRecorder* events_;
  ManagerOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, ClusterCounters> counters_;  // by "<ns>/<name>"
  int64_t reconciles_ = 0;
  int64_t reconcile_errors_ = 0;
};

}  // namespace bao::op
