// The restore controller's decisions, as pure functions of what one reconcile read (no API
// calls, no clock): what an OpenBaoRestore asks for and whether it is valid on its own, the
// names of its Jobs, the executor arguments, and what a finished Job means. Thread-safe (no
// shared state).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "operator/job_builder.h"
#include "storage/target.h"

namespace bao::op {

constexpr const char* kOidcRestoreRole = "openbao-operator-restore";
// Keeps a deleted OpenBaoRestore until its lock is released and its Jobs are gone.
constexpr const char* kRestoreFinalizer = "openbao.org/restore-cleanup";
constexpr const char* kRestoreLockHolderPrefix = "bao-backup-operator/restore/";
constexpr const char* kComponentRestore = "restore";
constexpr const char* kComponentRestoreVerify = "restore-verify";
// On restore Jobs: the OpenBaoRestore's full name.
constexpr const char* kAnnotationRestore = "openbao.org/restore";
// Restore attempts in all when a failure left OpenBao unchanged (see RestoreVerdict).
constexpr int kMaxRestoreAttempts = 3;

// The phases of status.phase.
constexpr const char* kPhasePending = "Pending";
constexpr const char* kPhaseValidating = "Validating";
constexpr const char* kPhaseRunning = "Running";
constexpr const char* kPhaseCompleted = "Completed";
constexpr const char* kPhaseFailed = "Failed";

// An OpenBaoRestore's spec, parsed.
struct RestoreRequest {
  std::string cluster;
  storage::TargetConfig target;
  std::string key;
  std::string jwt_auth_role;
  std::string token_secret;  // tokenSecretRef.name
  std::string image;
  bool force = false;
  bool override_lock = false;
};

// Parses and checks `spec` on its own: types, the target's rules, local Secret references,
// overrideOperationLock only with force. kInvalidArgument naming the field (spec.…) otherwise.
Result<RestoreRequest> ParseRestoreSpec(const nlohmann::json& spec);

// The auth the restore Job uses: the explicit JWT role, else `openbao-operator-restore` when
// the cluster has spec.selfInit.oidc.enabled, else the token Secret. kFailedPrecondition
// naming the fields when none applies.
Result<ExecutorAuth> RestoreAuth(const RestoreRequest& request, const nlohmann::json& cluster);

// "<cluster>-restore-serviceaccount".
std::string RestoreServiceAccountName(const std::string& cluster);
// The verification Job "restore-verify-<restore>" and attempt `attempt` (1, 2, ...) of the
// restore Job "restore-<restore>-<attempt>"; the restore part is shortened with a hash so each
// name stays a DNS label of <= 63 characters.
std::string RestoreVerifyJobName(const std::string& restore);
std::string RestoreJobName(const std::string& restore, int attempt);
// The lock holder naming this restore.
std::string RestoreLockHolder(const std::string& restore);

// The Jobs. Both are owned by the OpenBaoRestore `restore`, run as the restore ServiceAccount
// with the backup Jobs' security settings; the verification Job mounts only the storage
// credentials (`bao-backup verify --key`), the restore Job also the TLS CA and the OpenBao
// token (`bao-backup restore --key … [--force] --yes`).
nlohmann::json BuildRestoreVerifyJob(const nlohmann::json& restore, const nlohmann::json& cluster,
                                     const RestoreRequest& request, const JobSettings& settings);
nlohmann::json BuildRestoreJob(const nlohmann::json& restore, const nlohmann::json& cluster,
                               const RestoreRequest& request, const ExecutorAuth& auth, int attempt,
                               const JobSettings& settings);

// What a finished restore Job means.
struct RestoreVerdict {
  enum class Kind { kSucceeded, kRetry, kFailed } kind = Kind::kFailed;
  std::string message;   // for status.message and the Event
  int64_t size = 0;      // bytes restored (kSucceeded)
  std::string duration;  // of the restore (kSucceeded)
  bool sealed = false;   // OpenBao sealed after the restore (kSucceeded)
};
// `complete` is the Job's Complete condition, `result` the executor's result (or null),
// `attempt` the attempt that ran. A failure is retried (kRetry) only when the executor reports
// OpenBao unchanged (openbaoUnchanged: true), the cause may pass (leader discovery, storage),
// and attempts remain; never after OpenBao accepted the snapshot.
RestoreVerdict JudgeRestoreJob(bool complete, const nlohmann::json& result, int attempt,
                               const std::string& job_failure);

}  // namespace bao::op
