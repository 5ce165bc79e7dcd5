// The backup manager's decisions, as pure functions of what one reconcile read (no API calls,
// no clock), so they can be tested without a server: which cron slot is due, which
// precondition stops a backup, what a finished Job means for status.backup, and when the
// operation lock needs renewing. Thread-safe (no shared state).
#pragma once

#include <chrono>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/time.h"
#include "schedule/cron.h"

namespace bao::op {

// status.operationLock.renewedAt is refreshed at most this often while a backup Job runs; the
// controller looks at running Jobs at this interval, so a lock of a live backup is never older
// than about twice this.
constexpr std::chrono::seconds kLockRenewInterval{30};
constexpr const char* kLockHolderPrefix = "bao-backup-operator/job/";

// The string at `j[field]`, or "" when `j` is not an object or the field is not a string.
std::string Str(const nlohmann::json& j, const char* field);
// The value at the object path, or a null json when any step is missing.
const nlohmann::json& At(const nlohmann::json& j, std::initializer_list<const char*> path);

// "Complete" or "Failed" when the Job has that condition with status True, else "" (running).
std::string JobFinished(const nlohmann::json& job);
// "Job failed: <reason>: <message>" from the Job's Failed condition.
std::string JobFailureMessage(const nlohmann::json& job);
// The executor's result JSON: the last non-empty line of a termination message, or null when
// it is not a JSON object.
nlohmann::json ParseResult(const std::string& termination_message);

// The executor's result in the newest terminated container of `pods` (null when none has a
// JSON result); `finished_at` gets that container's finishedAt.
nlohmann::json NewestResult(const std::vector<nlohmann::json>& pods, std::string* finished_at);

// True when `lock` (status.operationLock) is a backup lock taken by this operator.
bool IsOurLock(const nlohmann::json& lock);
// The Job named by our lock's holder, or "" when the lock is not ours.
std::string LockJobName(const nlohmann::json& lock);
// True when our lock held for a running Job should get a fresh renewedAt at `now` (renewedAt
// missing, unparsable, or at least kLockRenewInterval old). False for anyone else's lock.
bool LockNeedsRenewal(const nlohmann::json& lock, TimePoint now);

struct SlotDecision {
  std::optional<TimePoint> previous;  // latest slot at or before now (nullopt: none)
  TimePoint next{};                   // first slot after now
  bool due = false;                   // `previous` is neither attempted nor skipped yet
  bool next_changed = false;          // status.backup.nextScheduledBackup must be (re)written
};
// Decides from status.backup (`backup_status`, an object or null): a slot is due when it is
// later than the last consumed one (lastAttemptScheduledTime or lastSkippedScheduledTime). A
// cluster never seen before (neither recorded) only becomes due at the first
// nextScheduledBackup written, so no backup is made for slots before the operator saw it.
// Missed slots coalesce into the latest.
SlotDecision DecideSlot(const CronSchedule& cron, TimePoint now,
                        const nlohmann::json& backup_status);

struct SkipReason {
  std::string reason;   // ClusterNotRunning, UpgradeInProgress, UpgradePending,
                        // RestoreInProgress, BackupRunning, OperationLocked
  std::string message;  // names the field or object that stops the backup
};
// The first precondition of the contract that stops a backup of `cluster` now, in the order
// above, or nullopt when a backup may start. `restores` are the OpenBaoRestores of the
// cluster's namespace (those for other clusters are ignored); `job_running` whether one of its
// backup Jobs has not finished.
std::optional<SkipReason> CheckPreconditions(const nlohmann::json& cluster,
                                             const std::vector<nlohmann::json>& restores,
                                             bool job_running);

// The same preconditions for the pre-upgrade backup, which is taken exactly while a version
// change is pending: all of CheckPreconditions() but UpgradePending.
std::optional<SkipReason> CheckPreUpgradePreconditions(const nlohmann::json& cluster,
                                                       const std::vector<nlohmann::json>& restores,
                                                       bool job_running);

// The target version when a pre-upgrade backup is wanted: spec.upgrade.preUpgradeSnapshot is
// true and spec.version differs from status.currentVersion (both non-empty strings); else "".
std::string PreUpgradeTargetVersion(const nlohmann::json& cluster);

enum class PreUpgradeAction {
  kNone,     // none wanted (flag off, or no version change pending)
  kReady,    // status.backup.lastPreUpgradeBackup is for the target version
  kRunning,  // the attempt for the target version is running (its Job, or our lock for it)
  kFailed,   // the attempt for the target version ended without a backup: not retried
  kWait,     // wanted, but a precondition stops it now (`blocked`)
  kStart,    // start attempt `attempt` now
};
struct PreUpgradeDecision {
  PreUpgradeAction action = PreUpgradeAction::kNone;
  std::string version;  // the target version ("" with kNone)
  int64_t attempt = 0;  // kStart: the new attempt's number; else the last one's (0: none)
  std::string job;      // the last attempt's Job (status.backup.lastPreUpgradeAttempt.job)
  std::optional<SkipReason> blocked;  // kWait (or a triggered retry of kFailed): what stops it
};
// Exactly one pre-upgrade backup per target version, decided from status.backup
// (lastPreUpgradeBackup {key, version, time}: the last one stored; lastPreUpgradeAttempt
// {version, job, attempt, time}: written with the lock when an attempt starts) and the running
// backup Job `running_job` ("" = none). An attempt for the target version that ended without a
// backup is retried only when `triggered` (openbao.org/trigger-backup), as attempt + 1.
// `restores` as for CheckPreconditions().
PreUpgradeDecision DecidePreUpgrade(const nlohmann::json& cluster,
                                    const std::vector<nlohmann::json>& restores,
                                    const std::string& running_job, bool triggered);

struct JobOutcome {
  bool succeeded = false;  // Job Complete and the result names the stored object
  nlohmann::json backup_patch = nlohmann::json::object();  // status.backup fields to merge
  int64_t consecutive_failures = 0;                        // after this Job
  std::string message;                                     // for the Event and the log
  // One message per extra target whose copy failed in a Job that succeeded (a Warning Event
  // each, reason BackupCopyFailed).
  std::vector<std::string> copy_failures;
};
// What the finished Job `job` (Complete when `complete`, else Failed) means for status.backup,
// given its Pods (the newest terminated container's message is the executor's result), the
// current status.backup and `now` (used when the result carries no finish time). Success
// resets consecutiveFailures to 0 and fills lastBackupTime/Name/Size/Duration; failure
// increments it and sets lastFailureReason ("stage: error" from the executor, else the Job's
// Failed condition). Always sets lastRecordedJob to the Job's name.
// With extra targets (the result's "targets"), status.backup.targets is the list of every
// target, the primary first: name, key and size of its last stored copy, lastSuccess,
// consecutiveFailures (its own count: a failed copy does not fail the backup) and
// lastFailureReason; a failed Job counts as a failure for every target already listed.
// Without, status.backup.targets is removed.
JobOutcome EvaluateFinishedJob(const nlohmann::json& job, bool complete,
                               const std::vector<nlohmann::json>& pods,
                               const nlohmann::json& backup_status, TimePoint now);

// status.backup.lastPreUpgradeBackup for a finished pre-upgrade Job of target `version`:
// {key, version, time} (the time the backup ended, as lastBackupTime), or null when `outcome`
// is not a success.
nlohmann::json PreUpgradeBackupRecord(const JobOutcome& outcome, const std::string& version);

// Sets the condition `type` in `conditions` (status.conditions: an array, or null for none
// yet) to status True/False (`ok`), `reason`, `message`, observedGeneration `generation`;
// lastTransitionTime is `now` when the status changes, else kept. Returns false (and changes
// nothing) when the condition already says exactly that at that generation. `*verdict_changed`
// (optional) tells whether status, reason or message changed (a generation bump alone is not
// news).
bool SetCondition(nlohmann::json& conditions, const std::string& type, bool ok,
                  const std::string& reason, const std::string& message, TimePoint now,
                  const nlohmann::json& generation, bool* verdict_changed = nullptr);
// The condition `type` of `cluster` (status.conditions), or null.
const nlohmann::json& FindCondition(const nlohmann::json& cluster, const std::string& type);

// Prometheus gauges per cluster with spec.backup, computed from status.backup of `clusters`
// (the informer's cache): last success time, failures in a row, last duration and size, next
// slot. A field that is missing or unparsable leaves that cluster out of that gauge.
std::string ClusterGaugesText(const std::vector<nlohmann::json>& clusters);

}  // namespace bao::op
