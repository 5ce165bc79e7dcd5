#include "operator/backup_manager.h"

#include <algorithm>
#include <optional>
#include <sstream>
#include <vector>

#include "backup/spec.h"
#include "common/log.h"
#include "operator/backup_logic.h"
#include "schedule/cron.h"

namespace bao::op {

using nlohmann::json;

struct BackupManager::View {
  std::string ns, name;
  json cluster;
  TimePoint now;
  // Filled by the steps, in order.
  backup::BackupSpec spec;
  std::optional<CronSchedule> cron;
  std::string jwt_role;
  std::vector<json> jobs;   // this cluster's backup Jobs
  std::string running_job;  // the one that has not finished, if any
  bool triggered = false;   // openbao.org/trigger-backup is set
  bool poll = false;        // look again soon (a pre-upgrade backup runs or waits)
  std::optional<std::vector<json>> restores;  // listed once, when needed
  TimePoint slot{};                           // the slot a new backup serves (now when triggered)
  TimePoint next{};                           // the next cron slot after now
  ReconcileResult result;

  std::string Key() const { return ns + "/" + name; }
  const json& Status() const {
    static const json kEmpty = json::object();
    return cluster.contains("status") && cluster["status"].is_object() ? cluster["status"] : kEmpty;
  }
  json Backup() const {
    const json& s = Status();
    return s.contains("backup") && s["backup"].is_object() ? s["backup"] : json::object();
  }
  std::string BackupString(const char* field) const {
    json b = Backup();
    return b.contains(field) && b[field].is_string() ? b[field].get<std::string>() : "";
  }
  json Generation() const {
    const json& g = At(cluster, {"metadata", "generation"});
    return g.is_number() ? g : json(0);
  }
  const json* Condition() const {
    const json& conds = At(cluster, {"status", "conditions"});
    if (!conds.is_array()) return nullptr;
    for (const json& c : conds) {
      if (Str(c, "type") == kConditionBackupConfigured) return &c;
    }
    return nullptr;
  }
  json ResourceVersionPrecondition() const {
    return {{"resourceVersion", cluster["metadata"]["resourceVersion"]}};
  }
};

namespace {

// What started the Job holding a lock, recorded in the lock (status.operationLock.trigger) so
// that a restarted operator can rebuild the Job it was about to create.
constexpr const char* kTriggerSchedule = "schedule";
constexpr const char* kTriggerManual = "manual";
constexpr const char* kTriggerPreUpgrade = "pre-upgrade";

std::string SpecReason(const Status& s) {
  return s.reason() == bao::Reason::kCrossNamespace ? "CrossNamespaceReference" : "InvalidSpec";
}

// A write the API server refused for good (validation, admission, RBAC): retrying the same
// request cannot help until someone changes the spec or the RBAC, so the user must see it.
bool RefusedWrite(const Status& s) {
  int code = k8s::HttpCodeOf(s);
  return code == 400 || code == 403 || code == 422;
}

bool HasTrigger(const json& cluster) {
  return At(cluster, {"metadata", "annotations"}).contains(kAnnotationTrigger);
}

// The PreUpgradeBackupReady messages; the same words whichever step writes them, so a
// repeated write is a no-op.
std::string PreUpgradeReadyMessage(const json& record) {
  return "pre-upgrade backup " + Str(record, "key") + " for version " + Str(record, "version") +
         " stored at " + Str(record, "time");
}
std::string PreUpgradeRunningMessage(const std::string& job, const std::string& version) {
  return "pre-upgrade backup Job " + job + " for version " + version + " is running";
}
std::string PreUpgradeFailedMessage(const std::string& job, const std::string& version,
                                    const std::string& reason) {
  return "pre-upgrade backup Job " + job + " for version " + version + " failed: " + reason +
         "; not retried automatically: set the annotation " + kAnnotationTrigger +
         " on the cluster to retry";
}

}  // namespace

BackupManager::BackupManager(k8s::Client* client, k8s::EventRecorder* events,
                             ManagerOptions options)
    : client_(client), events_(events), options_(std::move(options)) {}

Result<ReconcileResult> BackupManager::Reconcile(const std::string& ns, const std::string& name) {
  View v;
  v.ns = ns;
  v.name = name;
  v.now = options_.clock->Now();
  Result<json> cluster = client_->Get(k8s::kOpenBaoClusters, ns, name);
  Result<ReconcileResult> r = ReconcileResult{};
  if (!cluster.ok()) {
    if (!k8s::IsNotFound(cluster.status())) r = cluster.status();
  } else {
    v.cluster = std::move(*cluster);
    r = ReconcileCluster(v);
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++reconciles_;
  if (!r.ok()) ++reconcile_errors_;
  return r;
}

// The reconcile, as a list of steps; each step may end it (see the header).
Result<ReconcileResult> BackupManager::ReconcileCluster(View& v) {
  if (At(v.cluster, {"spec", "backup"}).is_null()) {
    v.result.outcome = "disabled";
    return v.result;
  }
  for (auto step : {&BackupManager::ValidateSpec, &BackupManager::CheckSecrets,
                    &BackupManager::EnsureServiceAccount}) {
    BAO_ASSIGN_OR_RETURN(bool go_on, (this->*step)(v));
    if (!go_on) return v.result;
  }
  BAO_RETURN_IF_ERROR(MarkConfigured(v));
  BAO_RETURN_IF_ERROR(ObserveJobs(v));
  for (auto step : {&BackupManager::MaintainLock, &BackupManager::PreUpgradeBackup,
                    &BackupManager::DecideDueSlot, &BackupManager::CheckBackupPreconditions}) {
    BAO_ASSIGN_OR_RETURN(bool go_on, (this->*step)(v));
    if (!go_on) return v.result;
  }
  BAO_RETURN_IF_ERROR(StartBackup(v));
  return v.result;
}

void BackupManager::Event(const View& v, bool normal, const std::string& reason,
                          const std::string& message) {
  Status e = normal ? events_->Normal(v.cluster, reason, message)
                    : events_->Warning(v.cluster, reason, message);
  if (!e.ok()) log::Warn("could not record event", {{"error", e.ToString()}});
}

Status BackupManager::SetConfigured(View& v, bool ok, const std::string& reason,
                                    const std::string& message) {
  json conds = At(v.cluster, {"status", "conditions"});
  bool news = false;
  if (!SetCondition(conds, kConditionBackupConfigured, ok, reason, message, v.now, v.Generation(),
                    &news)) {
    return Status::Ok();
  }
  BAO_ASSIGN_OR_RETURN(v.cluster, client_->PatchStatus(k8s::kOpenBaoClusters, v.ns, v.name,
                                                       {{"status", {{"conditions", conds}}}}));
  // Only a new state is news; a generation bump with the same verdict is not.
  if (news) Event(v, ok, reason, message);
  return Status::Ok();
}

// PreUpgradeBackupReady. Its Events are sent where the state changes (a Job's result), not here.
Status BackupManager::SetPreUpgradeCondition(View& v, bool ok, const std::string& reason,
                                             const std::string& message) {
  json conds = At(v.cluster, {"status", "conditions"});
  if (!SetCondition(conds, kConditionPreUpgradeBackupReady, ok, reason, message, v.now,
                    v.Generation())) {
    return Status::Ok();
  }
  BAO_ASSIGN_OR_RETURN(v.cluster, client_->PatchStatus(k8s::kOpenBaoClusters, v.ns, v.name,
                                                       {{"status", {{"conditions", conds}}}}));
  return Status::Ok();
}

Result<const std::vector<json>*> BackupManager::Restores(View& v) {
  if (!v.restores) {
    // Only a Running cluster gets that far in the preconditions (ClusterNotRunning is first).
    std::vector<json> restores;
    if (At(v.cluster, {"status", "phase"}) == json("Running")) {
      BAO_ASSIGN_OR_RETURN(k8s::ObjectList list, client_->List(k8s::kOpenBaoRestores, v.ns));
      restores = std::move(list.items);
    }
    v.restores = std::move(restores);
  }
  return &*v.restores;
}

// 1. The spec: parses, has a valid schedule, a name that fits, and a way to authenticate.
Result<bool> BackupManager::ValidateSpec(View& v) {
  auto invalid = [&](const std::string& reason, const std::string& message) -> Result<bool> {
    BAO_RETURN_IF_ERROR(SetConfigured(v, false, reason, message));
    v.result.outcome = "invalid";
    return false;
  };
  if (v.name.size() > kMaxClusterNameLength) {
    return invalid("NameTooLong", "metadata.name: " + std::to_string(v.name.size()) +
                                      " characters; backups need a cluster name of at most " +
                                      std::to_string(kMaxClusterNameLength) +
                                      " characters (the ServiceAccount \"<name>-backup-"
                                      "serviceaccount\" must be a valid object name)");
  }
  Result<backup::BackupSpec> spec =
      backup::ParseBackupSpec(At(v.cluster, {"spec", "backup"}), "spec.backup", true, true);
  if (!spec.ok()) return invalid(SpecReason(spec.status()), spec.status().message());
  v.spec = *spec;
  Result<CronSchedule> cron = CronSchedule::Parse(v.spec.schedule);
  if (!cron.ok()) {
    return invalid("InvalidSchedule", "spec.backup.schedule: " + cron.status().message());
  }
  v.cron = *cron;
  v.jwt_role = backup::EffectiveJwtRole(
      v.spec, At(v.cluster, {"spec", "selfInit", "oidc", "enabled"}) == json(true));
  if (v.jwt_role.empty() && v.spec.token_secret_name.empty()) {
    return invalid(
        "NoBackupToken",
        "spec.backup: neither jwtAuthRole (nor spec.selfInit.oidc.enabled) nor "
        "tokenSecretRef.name is set; backups need one of them (root tokens are never used)");
  }
  return true;
}

// A Secret the Job mounts: missing (or without `key`) means a Job that can only fail, so the
// cluster gets a condition instead. False when it set one.
Result<bool> BackupManager::CheckSecret(View& v, const std::string& secret, const std::string& what,
                                        const char* key, const std::string& reason_prefix) {
  Result<json> s = client_->Get(k8s::kSecrets, v.ns, secret);
  std::string problem;
  if (!s.ok()) {
    if (!k8s::IsNotFound(s.status())) return s.status();
    problem = "SecretNotFound";
    BAO_RETURN_IF_ERROR(SetConfigured(
        v, false, reason_prefix + problem,
        what + ": Secret \"" + secret + "\" not found in namespace \"" + v.ns + "\""));
  } else if (key && !At(*s, {"data"}).contains(key) && !At(*s, {"stringData"}).contains(key)) {
    problem = "SecretKeyMissing";
    BAO_RETURN_IF_ERROR(
        SetConfigured(v, false, reason_prefix + problem,
                      what + ": Secret \"" + secret + "\" has no key \"" + key + "\""));
  }
  if (problem.empty()) return true;
  v.result.outcome = "invalid";
  return false;
}

// 2. The Secrets the Job mounts exist: storage credentials, the OpenBao token (without a JWT
// role) and the cluster's TLS CA (OpenBao's API is always TLS; the Job verifies it with
// <cluster>-tls-ca, key ca.crt).
Result<bool> BackupManager::CheckSecrets(View& v) {
  if (!v.spec.target.credentials_secret.empty()) {
    BAO_ASSIGN_OR_RETURN(bool found,
                         CheckSecret(v, v.spec.target.credentials_secret,
                                     "spec.backup.target.credentialsSecretRef.name", nullptr, ""));
    if (!found) return false;
  }
  if (v.jwt_role.empty()) {
    BAO_ASSIGN_OR_RETURN(bool found, CheckSecret(v, v.spec.token_secret_name,
                                                 "spec.backup.tokenSecretRef.name", "token", ""));
    if (!found) return false;
  }
  return CheckSecret(v, TlsCaSecretName(v.name),
                     "the cluster's TLS CA (mounted at " + std::string(kTlsDir) +
                         "/ to verify OpenBao's certificate)",
                     kTlsCaKey, "TlsCa");
}

// 3. The Jobs' ServiceAccount, owned by the cluster.
Result<bool> BackupManager::EnsureServiceAccount(View& v) {
  const std::string sa_name = BackupServiceAccountName(v.name);
  Result<json> got = client_->Get(k8s::kServiceAccounts, v.ns, sa_name);
  if (got.ok()) return true;
  if (!k8s::IsNotFound(got.status())) return got.status();
  json sa = {
      {"apiVersion", "v1"},
      {"kind", "ServiceAccount"},
      {"metadata",
       {{"name", sa_name},
        {"namespace", v.ns},
        {"labels", {{kLabelCluster, ClusterLabelValue(v.name)}, {kLabelManagedBy, kManagedBy}}},
        {"ownerReferences", json::array({OwnerReference(v.cluster)})}}}};
  Result<json> created = client_->Create(k8s::kServiceAccounts, v.ns, sa);
  if (created.ok() || k8s::IsAlreadyExists(created.status())) return true;
  if (RefusedWrite(created.status())) {
    BAO_RETURN_IF_ERROR(SetConfigured(
        v, false, kReasonServiceAccountCreateFailed,
        "cannot create ServiceAccount " + sa_name + ": " + created.status().message()));
  }
  return created.status();
}

// 4. Configured. A refused Job creation stays visible (at this generation) until a Job is
// created; anything else that was wrong has been fixed if the reconcile got here.
Status BackupManager::MarkConfigured(View& v) {
  const json* c = v.Condition();
  if (c && Str(*c, "reason") == kReasonJobCreateFailed &&
      c->value("observedGeneration", json(0)) == v.Generation()) {
    return Status::Ok();
  }
  return SetConfigured(v, true, "Configured",
                       "backups run on schedule \"" + v.cron->ToString() + "\"");
}

// 5. The Jobs: record the finished ones, note the running one.
Status BackupManager::ObserveJobs(View& v) {
  k8s::ListOptions lo;
  lo.label_selector = BackupJobSelector(v.name);
  BAO_ASSIGN_OR_RETURN(k8s::ObjectList jobs, client_->List(k8s::kJobs, v.ns, lo));
  v.jobs = std::move(jobs.items);
  BAO_RETURN_IF_ERROR(RecordFinishedJobs(v));
  for (const json& job : v.jobs) {
    if (JobFinished(job).empty()) v.running_job = Str(At(job, {"metadata"}), "name");
  }
  return Status::Ok();
}

// 6. The lock: resume a Job whose creation was interrupted, or drop a lost one; renew the
// lock of a running Job. False when it resumed a Job (nothing else to do now).
Result<bool> BackupManager::MaintainLock(View& v) {
  const json lock = At(v.cluster, {"status", "operationLock"});
  const std::string job_name = LockJobName(lock);
  if (job_name.empty()) return true;
  bool exists = std::any_of(v.jobs.begin(), v.jobs.end(), [&](const json& j) {
    return j["metadata"].value("name", "") == job_name;
  });
  if (!exists && v.BackupString("lastRecordedJob") != job_name) {
    auto acquired = ParseRfc3339(Str(lock, "acquiredAt"));
    auto slot = ParseRfc3339(Str(lock, "slot"));
    // A pre-upgrade attempt is rebuilt from status.backup.lastPreUpgradeAttempt, written in the
    // same patch as the lock; what started the Job is in the lock's `trigger`.
    const std::string trigger = Str(lock, "trigger");
    const bool pre_upgrade = trigger == kTriggerPreUpgrade;
    const json attempt = v.Backup().value("lastPreUpgradeAttempt", json::object());
    const std::string version = Str(attempt, "version");
    const json& na = At(attempt, {"attempt"});
    const int64_t n = na.is_number_integer() && na.get<int64_t>() > 0 ? na.get<int64_t>() : 1;
    const bool rebuildable = !pre_upgrade || (!version.empty() && Str(attempt, "job") == job_name &&
                                              PreUpgradeJobName(v.name, version, n) == job_name);
    if (acquired.ok() && slot.ok() && *acquired > v.now - kResumeWindow && rebuildable) {
      json job = pre_upgrade ? BuildPreUpgradeBackupJob(v.cluster, v.spec, v.jwt_role, version, n,
                                                        *slot, n > 1, options_.job)
                             : BuildBackupJob(v.cluster, v.spec, v.jwt_role, *slot,
                                              trigger == kTriggerManual, options_.job);
      BAO_RETURN_IF_ERROR(
          CreateJob(v, job, "created backup Job " + job_name + " (resumed after a restart)"));
      BAO_RETURN_IF_ERROR(RemoveTrigger(v));
      v.result.outcome = "resumed";
      v.result.requeue_at = v.now + kLockRenewInterval;
      return false;
    }
    const std::string reason = "backup Job " + job_name + " was lost before it ran";
    json patch = {
        {"metadata", v.ResourceVersionPrecondition()},
        {"status",
         {{"operationLock", nullptr},
          {"backup",
           {{"lastRecordedJob", job_name},
            {"lastFailureReason", reason},
            {"consecutiveFailures", v.Backup().value("consecutiveFailures", int64_t{0}) + 1}}}}}};
    if (pre_upgrade) {
      json conds = At(v.cluster, {"status", "conditions"});
      SetCondition(conds, kConditionPreUpgradeBackupReady, false, kReasonPreUpgradeBackupFailed,
                   PreUpgradeFailedMessage(job_name, version, reason), v.now, v.Generation());
      patch["status"]["conditions"] = conds;
    }
    BAO_ASSIGN_OR_RETURN(v.cluster,
                         client_->PatchStatus(k8s::kOpenBaoClusters, v.ns, v.name, patch));
    Event(v, false, pre_upgrade ? kReasonPreUpgradeBackupFailed : "BackupFailed",
          (pre_upgrade ? "pre-upgrade backup Job " : "backup Job ") + job_name +
              " was lost; lock released");
  } else if (job_name == v.running_job && LockNeedsRenewal(lock, v.now)) {
    // The resourceVersion precondition keeps a lock released meanwhile from coming back as
    // a bare {renewedAt}; on a conflict the change that caused it brings another reconcile.
    Result<json> renewed = client_->PatchStatus(
        k8s::kOpenBaoClusters, v.ns, v.name,
        {{"metadata", v.ResourceVersionPrecondition()},
         {"status", {{"operationLock", {{"renewedAt", FormatRfc3339(v.now)}}}}}});
    if (renewed.ok()) {
      v.cluster = std::move(*renewed);
    } else if (!k8s::IsConflict(renewed.status())) {
      return renewed.status();
    }
  }
  return true;
}

// 7. Before an upgrade (spec.upgrade.preUpgradeSnapshot and spec.version != currentVersion):
// exactly one backup for the target version, holding the lock; the condition
// PreUpgradeBackupReady follows status.backup and the Jobs. Never ends the reconcile: slots go
// on being consumed (and skipped as UpgradePending) meanwhile.
Result<bool> BackupManager::PreUpgradeBackup(View& v) {
  if (PreUpgradeTargetVersion(v.cluster).empty()) return true;
  BAO_ASSIGN_OR_RETURN(const std::vector<json>* restores, Restores(v));
  PreUpgradeDecision d =
      DecidePreUpgrade(v.cluster, *restores, v.running_job, HasTrigger(v.cluster));
  switch (d.action) {
    case PreUpgradeAction::kNone: break;
    case PreUpgradeAction::kReady:
      BAO_RETURN_IF_ERROR(
          SetPreUpgradeCondition(v, true, kReasonPreUpgradeBackupSucceeded,
                                 PreUpgradeReadyMessage(At(v.Backup(), {"lastPreUpgradeBackup"}))));
      break;
    case PreUpgradeAction::kRunning:
      v.poll = true;
      BAO_RETURN_IF_ERROR(SetPreUpgradeCondition(v, false, kReasonPreUpgradeBackupRunning,
                                                 PreUpgradeRunningMessage(d.job, d.version)));
      break;
    case PreUpgradeAction::kFailed:
      // Written with the Job's result; only filled in here when that did not happen (a lock
      // released as lost, a status written by an older operator).
      if (Str(FindCondition(v.cluster, kConditionPreUpgradeBackupReady), "reason") !=
          kReasonPreUpgradeBackupFailed) {
        BAO_RETURN_IF_ERROR(SetPreUpgradeCondition(
            v, false, kReasonPreUpgradeBackupFailed,
            PreUpgradeFailedMessage(d.job, d.version, v.BackupString("lastFailureReason"))));
      }
      break;
    case PreUpgradeAction::kWait:
      v.poll = true;
      BAO_RETURN_IF_ERROR(SetPreUpgradeCondition(v, false, kReasonPreUpgradeBackupWaiting,
                                                 "pre-upgrade backup for version " + d.version +
                                                     " waits: " + d.blocked->reason + ": " +
                                                     d.blocked->message));
      break;
    case PreUpgradeAction::kStart: BAO_RETURN_IF_ERROR(StartPreUpgradeBackup(v, d)); break;
  }
  return true;
}

// Lock (with the attempt and the condition, one patch), then the Job. A trigger present now is
// served by this backup (and removed).
Status BackupManager::StartPreUpgradeBackup(View& v, const PreUpgradeDecision& d) {
  const bool triggered = HasTrigger(v.cluster);
  json job = BuildPreUpgradeBackupJob(v.cluster, v.spec, v.jwt_role, d.version, d.attempt, v.now,
                                      triggered, options_.job);
  const std::string job_name = job["metadata"]["name"];
  json conds = At(v.cluster, {"status", "conditions"});
  SetCondition(conds, kConditionPreUpgradeBackupReady, false, kReasonPreUpgradeBackupRunning,
               PreUpgradeRunningMessage(job_name, d.version), v.now, v.Generation());
  const std::string what = "pre-upgrade backup Job " + job_name + " for version " + d.version;
  json patch = {{"metadata", v.ResourceVersionPrecondition()},
                {"status",
                 {{"backup",
                   {{"lastAttemptTime", FormatRfc3339(v.now)},
                    {"lastPreUpgradeAttempt",
                     {{"version", d.version},
                      {"job", job_name},
                      {"attempt", d.attempt},
                      {"time", FormatRfc3339(v.now)}}}}},
                  {"operationLock",
                   {{"operation", "Backup"},
                    {"holder", kLockHolderPrefix + job_name},
                    {"message", what},
                    {"trigger", kTriggerPreUpgrade},
                    {"slot", FormatRfc3339(v.now)},
                    {"acquiredAt", FormatRfc3339(v.now)},
                    {"renewedAt", FormatRfc3339(v.now)}}},
                  {"conditions", conds}}}};
  BAO_ASSIGN_OR_RETURN(v.cluster, client_->PatchStatus(k8s::kOpenBaoClusters, v.ns, v.name, patch));
  if (triggered) BAO_RETURN_IF_ERROR(RemoveTrigger(v));
  BAO_RETURN_IF_ERROR(CreateJob(v, job, "created " + what));
  log::Info("pre-upgrade backup Job created",
            {{"cluster", v.Key()}, {"job", job_name}, {"version", d.version}});
  v.running_job = job_name;
  v.poll = true;
  v.result.outcome = "created:pre-upgrade";
  return Status::Ok();
}

// 8. The slot: records the next one; true when a slot is due or a backup was triggered.
Result<bool> BackupManager::DecideDueSlot(View& v) {
  SlotDecision slot_state = DecideSlot(*v.cron, v.now, v.Backup());
  v.triggered = HasTrigger(v.cluster);
  if (slot_state.next_changed) {
    BAO_ASSIGN_OR_RETURN(
        v.cluster,
        client_->PatchStatus(
            k8s::kOpenBaoClusters, v.ns, v.name,
            {{"status", {{"backup", {{"nextScheduledBackup", FormatRfc3339(slot_state.next)}}}}}}));
  }
  v.next = slot_state.next;
  v.result.requeue_at = v.next;
  if (!v.running_job.empty() || v.poll) {
    v.result.requeue_at = std::min(v.next, v.now + kLockRenewInterval);
  }
  if (!slot_state.due && !v.triggered) {
    if (v.result.outcome.empty()) v.result.outcome = v.running_job.empty() ? "idle" : "running";
    return false;
  }
  v.slot = v.triggered ? v.now : *slot_state.previous;
  return true;
}

// 9. The contract's preconditions (running, no upgrade, no restore, no other backup, no lock).
Result<bool> BackupManager::CheckBackupPreconditions(View& v) {
  BAO_ASSIGN_OR_RETURN(const std::vector<json>* restores, Restores(v));
  std::optional<SkipReason> skip = CheckPreconditions(v.cluster, *restores, !v.running_job.empty());
  if (!skip) return true;
  BAO_RETURN_IF_ERROR(Skip(v, skip->reason, skip->message));
  return false;
}

// 10. Lock, then the Job.
Status BackupManager::StartBackup(View& v) {
  json job = BuildBackupJob(v.cluster, v.spec, v.jwt_role, v.slot, v.triggered, options_.job);
  std::string job_name = job["metadata"]["name"];
  json backup_status = {{"lastAttemptTime", FormatRfc3339(v.now)}};
  if (!v.triggered) backup_status["lastAttemptScheduledTime"] = FormatRfc3339(v.slot);
  json patch = {
      {"metadata", v.ResourceVersionPrecondition()},
      {"status",
       {{"backup", backup_status},
        {"operationLock",
         {{"operation", "Backup"},
          {"holder", kLockHolderPrefix + job_name},
          {"message", (v.triggered ? "manual backup Job " : "scheduled backup Job ") + job_name},
          {"trigger", v.triggered ? kTriggerManual : kTriggerSchedule},
          {"slot", FormatRfc3339(v.slot)},
          {"acquiredAt", FormatRfc3339(v.now)},
          {"renewedAt", FormatRfc3339(v.now)}}}}}};
  BAO_ASSIGN_OR_RETURN(v.cluster, client_->PatchStatus(k8s::kOpenBaoClusters, v.ns, v.name, patch));
  if (v.triggered) BAO_RETURN_IF_ERROR(RemoveTrigger(v));
  BAO_RETURN_IF_ERROR(CreateJob(v, job, "created backup Job " + job_name));
  log::Info("backup Job created", {{"cluster", v.Key()}, {"job", job_name}});
  v.result.outcome = "created";
  v.result.requeue_at = std::min(v.next, v.now + kLockRenewInterval);
  return Status::Ok();
}

Status BackupManager::CreateJob(View& v, const json& job, const std::string& event_message) {
  const std::string job_name = job["metadata"]["name"];
  Result<json> created = client_->Create(k8s::kJobs, v.ns, job);
  if (!created.ok() && !k8s::IsAlreadyExists(created.status())) {
    if (RefusedWrite(created.status())) {
      BAO_RETURN_IF_ERROR(SetConfigured(
          v, false, kReasonJobCreateFailed,
          "cannot create backup Job " + job_name + ": " + created.status().message()));
    }
    return created.status();
  }
  const json* c = v.Condition();
  if (c && Str(*c, "reason") == kReasonJobCreateFailed) {
    BAO_RETURN_IF_ERROR(SetConfigured(v, true, "Configured",
                                      "backups run on schedule \"" + v.cron->ToString() + "\""));
  }
  Event(v, true, "BackupStarted", event_message);
  return Status::Ok();
}

Status BackupManager::MarkRecorded(View& v, const std::string& job_name) {
  // A cache for humans and tools; status.backup.lastRecordedJob is what counts.
  Result<json> marked =
      client_->MergePatch(k8s::kJobs, v.ns, job_name,
                          {{"metadata", {{"annotations", {{kAnnotationRecorded, "true"}}}}}});
  if (!marked.ok() && !k8s::IsNotFound(marked.status())) return marked.status();
  return Status::Ok();
}

Status BackupManager::RecordResult(View& v, const json& job, bool succeeded) {
  const std::string job_name = job["metadata"].value("name", "");
  k8s::ListOptions lo;
  lo.label_selector = "job-name=" + job_name;
  BAO_ASSIGN_OR_RETURN(k8s::ObjectList pods, client_->List(k8s::kPods, v.ns, lo));
  JobOutcome outcome = EvaluateFinishedJob(job, succeeded, pods.items, v.Backup(), v.now);
  json patch = {{"metadata", v.ResourceVersionPrecondition()},
                {"status", {{"backup", outcome.backup_patch}}}};
  if (LockJobName(At(v.cluster, {"status", "operationLock"})) == job_name) {
    patch["status"]["operationLock"] = nullptr;
  }
  // A pre-upgrade backup is recorded like any backup (lastBackup*, consecutiveFailures), and
  // also as the recovery point of its version, with the condition in the same patch (unless the
  // target has changed meanwhile: the next step speaks for the new one).
  const std::string pre_upgrade =
      Str(At(job, {"metadata", "annotations"}), kAnnotationPreUpgradeVersion);
  std::string event_reason = outcome.succeeded ? "BackupSucceeded" : "BackupFailed";
  std::string event_message = outcome.message;
  if (!pre_upgrade.empty()) {
    json record = PreUpgradeBackupRecord(outcome, pre_upgrade);
    if (!record.is_null()) patch["status"]["backup"]["lastPreUpgradeBackup"] = record;
    if (Str(At(v.cluster, {"spec"}), "version") == pre_upgrade) {
      json conds = At(v.cluster, {"status", "conditions"});
      SetCondition(
          conds, kConditionPreUpgradeBackupReady, outcome.succeeded,
          outcome.succeeded ? kReasonPreUpgradeBackupSucceeded : kReasonPreUpgradeBackupFailed,
          outcome.succeeded
              ? PreUpgradeReadyMessage(record)
              : PreUpgradeFailedMessage(job_name, pre_upgrade,
                                        Str(outcome.backup_patch, "lastFailureReason")),
          v.now, v.Generation());
      patch["status"]["conditions"] = conds;
    }
    event_reason =
        outcome.succeeded ? kReasonPreUpgradeBackupSucceeded : kReasonPreUpgradeBackupFailed;
    event_message = "pre-upgrade " + outcome.message + " (for version " + pre_upgrade + ")";
  }
  BAO_ASSIGN_OR_RETURN(v.cluster, client_->PatchStatus(k8s::kOpenBaoClusters, v.ns, v.name, patch));
  Event(v, outcome.succeeded, event_reason, event_message);
  for (const std::string& failure : outcome.copy_failures) {
    Event(v, false, "BackupCopyFailed", failure);
  }
  log::Info(outcome.succeeded ? "backup succeeded" : "backup failed",
            {{"cluster", v.Key()}, {"job", job_name}, {"message", event_message}});
  {
    std::lock_guard<std::mutex> l(mu_);
    ClusterCounters& c = counters_[v.Key()];
    ++(outcome.succeeded ? c.successes : c.failures);
  }
  return MarkRecorded(v, job_name);
}

Status BackupManager::RecordFinishedJobs(View& v) {
  std::sort(v.jobs.begin(), v.jobs.end(), [](const json& a, const json& b) {
    return Str(At(a, {"metadata", "annotations"}), kAnnotationSlot) <
           Str(At(b, {"metadata", "annotations"}), kAnnotationSlot);
  });
  for (json& job : v.jobs) {
    std::string finished = JobFinished(job);
    if (finished.empty()) continue;
    const std::string job_name = job["metadata"].value("name", "");
    if (Str(At(job, {"metadata", "annotations"}), kAnnotationRecorded) == "true") continue;
    if (v.BackupString("lastRecordedJob") == job_name) {
      // Status was written but the Job not marked yet: only mark it.
      BAO_RETURN_IF_ERROR(MarkRecorded(v, job_name));
      continue;
    }
    BAO_RETURN_IF_ERROR(RecordResult(v, job, finished == "Complete"));
    job["metadata"]["annotations"][kAnnotationRecorded] = "true";
  }
  return Status::Ok();
}

Status BackupManager::RemoveTrigger(View& v) {
  if (!At(v.cluster, {"metadata", "annotations"}).contains(kAnnotationTrigger)) {
    return Status::Ok();
  }
  BAO_ASSIGN_OR_RETURN(
      v.cluster,
      client_->MergePatch(k8s::kOpenBaoClusters, v.ns, v.name,
                          {{"metadata", {{"annotations", {{kAnnotationTrigger, nullptr}}}}}}));
  return Status::Ok();
}

Status BackupManager::Skip(View& v, const std::string& reason, const std::string& message) {
  json b = {{"lastSkipReason", reason + ": " + message}};
  if (!v.triggered) b["lastSkippedScheduledTime"] = FormatRfc3339(v.slot);
  BAO_ASSIGN_OR_RETURN(v.cluster, client_->PatchStatus(k8s::kOpenBaoClusters, v.ns, v.name,
                                                       {{"status", {{"backup", b}}}}));
  if (v.triggered) BAO_RETURN_IF_ERROR(RemoveTrigger(v));
  // The slot's time is in status.backup.lastSkippedScheduledTime; leaving it out of the message
  // lets repeated skips for one reason aggregate into one Event with a count.
  Event(
      v, false, "BackupSkipped",
      std::string(v.triggered ? "triggered backup" : "scheduled backup") + " skipped: " + message);
  log::Info("backup skipped", {{"cluster", v.Key()},
                               {"slot", FormatRfc3339(v.slot)},
                               {"reason", reason},
                               {"message", message}});
  std::lock_guard<std::mutex> l(mu_);
  ++counters_[v.Key()].skipped;
  v.result.outcome = "skipped:" + reason;
  return Status::Ok();
}

std::string BackupManager::MetricsText() const {
  std::lock_guard<std::mutex> l(mu_);
  std::ostringstream o;
  auto family = [&](const char* name, const char* type, const char* help) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  };
  auto per_cluster = [&](const char* name, const char* help, int64_t ClusterCounters::*field) {
    family(name, "counter", help);
    for (const auto& [key, c] : counters_) {
      size_t slash = key.find('/');
      o << name << "{namespace=\"" << key.substr(0, slash) << "\",cluster=\""
        << key.substr(slash + 1) << "\"} " << c.*field << "\n";
    }
  };
  per_cluster("bao_backup_success_total", "Successful backups recorded by this process.",
              &ClusterCounters::successes);
  per_cluster("bao_backup_failure_total", "Failed backups recorded by this process.",
              &ClusterCounters::failures);
  per_cluster("bao_backup_skipped_total", "Backup slots skipped by a precondition (this process).",
              &ClusterCounters::skipped);
  family("bao_operator_reconcile_total", "counter", "Reconciles run.");
  o << "bao_operator_reconcile_total " << reconciles_ << "\n";
  family("bao_operator_reconcile_errors_total", "counter", "Reconciles that failed (retried).");
  o << "bao_operator_reconcile_errors_total " << reconcile_errors_ << "\n";
  return o.str();
}

}  // namespace bao::op
