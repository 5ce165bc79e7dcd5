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

struct JobOutcome {
  bool succeeded = false;  // Job Complete and the result names the stored object
  nlohmann::json backup_patch = nlohmann::json::object();  // status.backup fields to merge
  int64_t consecutive_failures = 0;                        // after this Job
  std::string message;                                     // for the Event and the log
};
// What the finished Job `job` (Complete when `complete`, else Failed) means for status.backup,
// given its Pods (the newest terminated container's message is the executor's result), the
// current status.backup and `now` (used when the result carries no finish time). Success
// resets consecutiveFailures to 0 and fills lastBackupTime/Name/Size/Duration; failure
// increments it and sets lastFailureReason ("stage: error" from the executor, else the Job's
// Failed condition). Always sets lastRecordedJob to the Job's name.
JobOutcome EvaluateFinishedJob(const nlohmann::json& job, bool complete,
                               const std::vector<nlohmann::json>& pods,
                               const nlohmann::json& backup_status, TimePoint now);

// Prometheus gauges per cluster with spec.backup, computed from status.backup of `clusters`
// (the informer's cache): last success time, failures in a row, last duration and size, next
// slot. A field that is missing or unparsable leaves that cluster out of that gauge.
std::string ClusterGaugesText(const std::vector<nlohmann::json>& clusters);

}  // namespace bao::op
