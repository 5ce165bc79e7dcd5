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
//     annotated openbao.org/result-recorded) is never counted again.
// The exact rules are in docs/operator.md.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"
#include "common/time.h"
#include "k8s/client.h"
#include "k8s/events.h"
#include "operator/backup_logic.h"
#include "operator/job_builder.h"

namespace bao::op {

constexpr const char* kConditionBackupConfigured = "BackupConfigured";
constexpr const char* kAnnotationRecorded = "openbao.org/result-recorded";
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

// Per-cluster numbers for /metrics.
struct ClusterMetrics {
  double last_success_unix = 0;
  int64_t consecutive_failures = 0;
  double last_duration_seconds = 0;
  int64_t last_size_bytes = 0;
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
  Result<ReconcileResult> Reconcile(const std::string& ns, const std::string& name);

  // Prometheus text of the per-cluster metrics and the reconcile counters.
  std::string MetricsText() const;

 private:
  struct View;  // what one reconcile read
  Result<ReconcileResult> ReconcileCluster(View& v);
  Status SetConfigured(View& v, bool ok, const std::string& reason, const std::string& message);
  Status EnsureServiceAccount(const View& v);
  Status RecordFinishedJobs(View& v);
  Status RecordResult(View& v, const nlohmann::json& job, bool succeeded);
  Status Skip(View& v, TimePoint slot, bool triggered, const std::string& reason,
              const std::string& message);
  Status RemoveTrigger(View& v);
  Status Refresh(View& v);

  k8s::Client* client_;
  k8s::EventRecorder* events_;
  ManagerOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, ClusterMetrics> metrics_;  // by "<ns>/<name>"
  int64_t reconciles_ = 0;
  int64_t reconcile_errors_ = 0;
};

}  // namespace bao::op
