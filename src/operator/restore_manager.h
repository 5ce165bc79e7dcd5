// The restore controller's reconcile step for one OpenBaoRestore: level-triggered and
// idempotent, like the backup manager's. A restore is a one-shot request that moves
//   Pending    -> checks the request on its own and against the API (cluster, Secrets, auth),
//                 then takes the cluster's status.operationLock (waiting while a backup or an
//                 upgrade holds it, unless overrideOperationLock with force);
//   Validating -> a short Job runs `bao-backup verify --key` with the storage credentials
//                 mounted (the operator never reads them): the object exists and is intact;
//   Running    -> the restore Job runs `bao-backup restore --key … --yes`; its result (size,
//                 duration, sealed) comes back into status; a failure that left OpenBao
//                 unchanged is retried up to kMaxRestoreAttempts, never one after OpenBao
//                 accepted the snapshot;
//   Completed | Failed -> the lock is released.
// Writes: the OpenBaoRestore's status (merge patches) and its finalizer, the cluster's
// status.operationLock (merge patches with a resourceVersion precondition),
// `<cluster>-restore-serviceaccount` (owned by the cluster), the two Jobs (owned by the
// restore; names derive from the restore and the attempt, so a repeated reconcile never makes a
// second one), and Events. Deleting the OpenBaoRestore releases the lock, deletes its Jobs and
// then drops the finalizer. The exact rules are in docs/restore.md.
#pragma once

#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"
#include "k8s/client.h"
#include "k8s/events.h"
#include "operator/backup_manager.h"
#include "operator/restore_logic.h"

namespace bao::op {

// Condition types on an OpenBaoRestore.
constexpr const char* kConditionProgressing = "Progressing";
constexpr const char* kConditionLockOverridden = "OperationLockOverridden";
constexpr const char* kConditionSealedAfterRestore = "ClusterSealedAfterRestore";

// Thread-safe for concurrent Reconcile calls on different restores; calls for one restore must
// be serialized by the caller. `client` and `events` must outlive it.
class RestoreManager {
 public:
  RestoreManager(k8s::Client* client, k8s::EventRecorder* events, ManagerOptions options);

  // Reconciles the OpenBaoRestore `ns`/`name`. Errors are API failures (the caller retries
  // with backoff); a bad request is not an error: it ends the restore as Failed with a message
  // that says what to fix.
  Result<ReconcileResult> Reconcile(const std::string& ns, const std::string& name);

 private:
  struct View;
  Result<ReconcileResult> ReconcileRestore(View& v);
  // The steps, in order; false ended the reconcile (its outcome is in v.result).
  Result<bool> Finalize(View& v);
  Result<bool> EnsureFinalizer(View& v);
  Result<bool> SettleFinished(View& v);
  Result<bool> CheckRequest(View& v);
  Result<bool> AcquireLock(View& v);
  Result<bool> VerifyObject(View& v);
  Result<bool> RunRestore(View& v);

  Status SetPhase(View& v, const std::string& phase, const std::string& message,
                  nlohmann::json fields, bool warning, const std::string& reason);
  Status Fail(View& v, const std::string& reason, const std::string& message);
  Status SetCondition(View& v, const std::string& type, bool status, const std::string& reason,
                      const std::string& message);
  Status ReleaseLock(View& v);
  // Renews the lock (throttled) while this restore holds it; when it no longer does, fails the
  // restore (false).
  Result<bool> KeepLock(View& v);
  Result<bool> EnsureServiceAccount(View& v);
  // The Job `name`, creating `job` when missing. A refusal ends the restore as Failed
  // (returns null then); other errors are returned.
  Result<nlohmann::json> EnsureJob(View& v, const nlohmann::json& job);
  Result<nlohmann::json> JobResult(View& v, const std::string& job_name);
  void Event(const View& v, bool warning, const std::string& reason, const std::string& message);

  k8s::Client* client_;
  k8s::EventRecorder* events_;
  ManagerOptions options_;
};

}  // namespace bao::op
