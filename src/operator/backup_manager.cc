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
  backup::BackupSpec spec;
  std::string jwt_role;
  std::vector<json> jobs;  // this cluster's backup Jobs
  ReconcileResult result;

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
};

namespace {

std::string Reason(const Status& s) {
  const std::string& m = s.message();
  if (m.find("cross-namespace") != std::string::npos) return "CrossNamespaceReference";
  return "InvalidSpec";
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
    if (r.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      metrics_.erase(ns + "/" + name);
    }
  } else {
    v.cluster = std::move(*cluster);
    r = ReconcileCluster(v);
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++reconciles_;
  if (!r.ok()) ++reconcile_errors_;
  return r;
}

Status BackupManager::Refresh(View& v) {
  BAO_ASSIGN_OR_RETURN(v.cluster, client_->Get(k8s::kOpenBaoClusters, v.ns, v.name));
  return Status::Ok();
}

Status BackupManager::SetConfigured(View& v, bool ok, const std::string& reason,
                                    const std::string& message) {
  json conds = At(v.cluster, {"status", "conditions"});
  if (!conds.is_array()) conds = json::array();
  const std::string status = ok ? "True" : "False";
  json* existing = nullptr;
  for (json& c : conds) {
    if (Str(c, "type") == kConditionBackupConfigured) existing = &c;
  }
  if (existing && Str(*existing, "status") == status && Str(*existing, "reason") == reason &&
      Str(*existing, "message") == message) {
    return Status::Ok();
  }
  json cond = {{"type", kConditionBackupConfigured},
               {"status", status},
               {"reason", reason},
               {"message", message},
               {"lastTransitionTime", FormatRfc3339(v.now)},
               {"observedGeneration", At(v.cluster, {"metadata", "generation"}).is_number()
                                          ? At(v.cluster, {"metadata", "generation"})
                                          : json(0)}};
  if (existing) {
    if (Str(*existing, "status") == status)
      cond["lastTransitionTime"] = (*existing)["lastTransitionTime"];
    *existing = cond;
  } else {
    conds.push_back(cond);
  }
  BAO_ASSIGN_OR_RETURN(v.cluster, client_->PatchStatus(k8s::kOpenBaoClusters, v.ns, v.name,
                                                       {{"status", {{"conditions", conds}}}}));
  Status e = ok ? events_->Normal(v.cluster, reason, message)
                : events_->Warning(v.cluster, reason, message);
  if (!e.ok()) log::Warn("could not record event", {{"error", e.ToString()}});
  return Status::Ok();
}

Status BackupManager::EnsureServiceAccount(const View& v) {
  const json& meta = v.cluster["metadata"];
  json sa = {{"apiVersion", "v1"},
             {"kind", "ServiceAccount"},
             {"metadata",
              {{"name", BackupServiceAccountName(v.name)},
               {"namespace", v.ns},
               {"labels", {{kLabelCluster, v.name}, {kLabelManagedBy, kManagedBy}}},
               {"ownerReferences", json::array({{{"apiVersion", "openbao.org/v1alpha1"},
                                                 {"kind", "OpenBaoCluster"},
                                                 {"name", v.name},
                                                 {"uid", Str(meta, "uid")},
                                                 {"controller", true},
                                                 {"blockOwnerDeletion", true}}})}}}};
  Result<json> got = client_->Get(k8s::kServiceAccounts, v.ns, BackupServiceAccountName(v.name));
  if (got.ok()) return Status::Ok();
  if (!k8s::IsNotFound(got.status())) return got.status();
  Result<json> created = client_->Create(k8s::kServiceAccounts, v.ns, sa);
  if (!created.ok() && !k8s::IsAlreadyExists(created.status())) return created.status();
  return Status::Ok();
}

Status BackupManager::RecordResult(View& v, const json& job, bool succeeded) {
  const std::string job_name = job["metadata"].value("name", "");
  k8s::ListOptions lo;
  lo.label_selector = "job-name=" + job_name;
  BAO_ASSIGN_OR_RETURN(k8s::ObjectList pods, client_->List(k8s::kPods, v.ns, lo));
  JobOutcome outcome = EvaluateFinishedJob(job, succeeded, pods.items, v.Backup(), v.now);
  const bool ok = outcome.succeeded;
  const json& patch_backup = outcome.backup_patch;
  const std::string& message = outcome.message;
  const int64_t failures = outcome.consecutive_failures;
  json patch = {{"metadata", {{"resourceVersion", v.cluster["metadata"]["resourceVersion"]}}},
                {"status", {{"backup", patch_backup}}}};
  if (LockJobName(At(v.cluster, {"status", "operationLock"})) == job_name) {
    patch["status"]["operationLock"] = nullptr;
  }
  BAO_ASSIGN_OR_RETURN(v.cluster, client_->PatchStatus(k8s::kOpenBaoClusters, v.ns, v.name, patch));
  Status e = ok ? events_->Normal(v.cluster, "BackupSucceeded", message)
                : events_->Warning(v.cluster, "BackupFailed", message);
  if (!e.ok()) log::Warn("could not record event", {{"error", e.ToString()}});
  log::Info(ok ? "backup succeeded" : "backup failed",
            {{"cluster", v.ns + "/" + v.name}, {"job", job_name}, {"message", message}});
  {
    std::lock_guard<std::mutex> l(mu_);
    ClusterMetrics& m = metrics_[v.ns + "/" + v.name];
    m.consecutive_failures = failures;
    if (ok) {
      ++m.successes;
      m.last_success_unix = std::chrono::duration<double>(v.now.time_since_epoch()).count();
      m.last_size_bytes = patch_backup["lastBackupSize"].get<int64_t>();
      auto d = ParseDuration(patch_backup["lastBackupDuration"].get<std::string>());
      if (d.ok()) m.last_duration_seconds = d->count() / 1000.0;
    } else {
      ++m.failures;
    }
  }
  // Mark the Job too (a cache for humans and tools; status.lastRecordedJob is what counts).
  Result<json> marked =
      client_->MergePatch(k8s::kJobs, v.ns, job_name,
                          {{"metadata", {{"annotations", {{kAnnotationRecorded, "true"}}}}}});
  if (!marked.ok() && !k8s::IsNotFound(marked.status())) return marked.status();
  return Status::Ok();
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
      Result<json> marked =
          client_->MergePatch(k8s::kJobs, v.ns, job_name,
                              {{"metadata", {{"annotations", {{kAnnotationRecorded, "true"}}}}}});
      if (!marked.ok() && !k8s::IsNotFound(marked.status())) return marked.status();
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

Status BackupManager::Skip(View& v, TimePoint slot, bool triggered, const std::string& reason,
                           const std::string& message) {
  json b = {{"lastSkipReason", reason + ": " + message}};
  if (!triggered) b["lastSkippedScheduledTime"] = FormatRfc3339(slot);
  BAO_ASSIGN_OR_RETURN(v.cluster, client_->PatchStatus(k8s::kOpenBaoClusters, v.ns, v.name,
                                                       {{"status", {{"backup", b}}}}));
  if (triggered) BAO_RETURN_IF_ERROR(RemoveTrigger(v));
  std::string what = triggered ? "triggered backup" : "backup slot " + FormatRfc3339(slot);
  Status e = events_->Warning(v.cluster, "BackupSkipped", what + " skipped: " + message);
  if (!e.ok()) log::Warn("could not record event", {{"error", e.ToString()}});
  log::Info("backup skipped",
            {{"cluster", v.ns + "/" + v.name}, {"reason", reason}, {"message", message}});
  std::lock_guard<std::mutex> l(mu_);
  ++metrics_[v.ns + "/" + v.name].skipped;
  v.result.outcome = "skipped:" + reason;
  return Status::Ok();
}

Result<ReconcileResult> BackupManager::ReconcileCluster(View& v) {
  const json& backup_spec = At(v.cluster, {"spec", "backup"});
  if (backup_spec.is_null()) {
    v.result.outcome = "disabled";
    return v.result;
  }
  // 1. Validate.
  auto invalid = [&](const std::string& reason, const std::string& message) -> Status {
    BAO_RETURN_IF_ERROR(SetConfigured(v, false, reason, message));
    v.result.outcome = "invalid";
    return Status::Ok();
  };
  Result<backup::BackupSpec> spec = backup::ParseBackupSpec(backup_spec, "spec.backup", true, true);
  if (!spec.ok()) {
    BAO_RETURN_IF_ERROR(invalid(Reason(spec.status()), spec.status().message()));
    return v.result;
  }
  v.spec = *spec;
  Result<CronSchedule> cron = CronSchedule::Parse(v.spec.schedule);
  if (!cron.ok()) {
    BAO_RETURN_IF_ERROR(
        invalid("InvalidSchedule", "spec.backup.schedule: " + cron.status().message()));
    return v.result;
  }
  v.jwt_role = backup::EffectiveJwtRole(
      v.spec, At(v.cluster, {"spec", "selfInit", "oidc", "enabled"}) == json(true));
  if (v.jwt_role.empty() && v.spec.token_secret_name.empty()) {
    BAO_RETURN_IF_ERROR(invalid(
        "NoBackupToken",
        "spec.backup: neither jwtAuthRole (nor spec.selfInit.oidc.enabled) nor "
        "tokenSecretRef.name is set; backups need one of them (root tokens are never used)"));
    return v.result;
  }
  // A Secret the Job mounts: missing (or without `key`) means a Job that can only fail, so the
  // cluster gets a condition instead. Returns false when it set one.
  auto check_secret = [&](const std::string& secret, const std::string& what, const char* key,
                          const std::string& reason_prefix) -> Result<bool> {
    Result<json> s = client_->Get(k8s::kSecrets, v.ns, secret);
    if (!s.ok()) {
      if (!k8s::IsNotFound(s.status())) return s.status();
      BAO_RETURN_IF_ERROR(
          invalid(reason_prefix + "SecretNotFound",
                  what + ": Secret \"" + secret + "\" not found in namespace \"" + v.ns + "\""));
      return false;
    }
    if (key && !At(*s, {"data"}).contains(key) && !At(*s, {"stringData"}).contains(key)) {
      BAO_RETURN_IF_ERROR(invalid(reason_prefix + "SecretKeyMissing",
                                  what + ": Secret \"" + secret + "\" has no key \"" + key + "\""));
      return false;
    }
    return true;
  };
  if (!v.spec.target.credentials_secret.empty()) {
    BAO_ASSIGN_OR_RETURN(bool found,
                         check_secret(v.spec.target.credentials_secret,
                                      "spec.backup.target.credentialsSecretRef.name", nullptr, ""));
    if (!found) return v.result;
  }
  if (v.jwt_role.empty()) {
    BAO_ASSIGN_OR_RETURN(bool found, check_secret(v.spec.token_secret_name,
                                                  "spec.backup.tokenSecretRef.name", "token", ""));
    if (!found) return v.result;
  }
  // OpenBao's API is always TLS (contract: "API on port 8200 over TLS"); the Job verifies it
  // with the CA the cluster keeps in <cluster>-tls-ca, key ca.crt.
  BAO_ASSIGN_OR_RETURN(bool ca_found,
                       check_secret(TlsCaSecretName(v.name),
                                    "the cluster's TLS CA (mounted at " + std::string(kTlsDir) +
                                        "/ to verify OpenBao's certificate)",
                                    kTlsCaKey, "TlsCa"));
  if (!ca_found) return v.result;
  BAO_RETURN_IF_ERROR(
      SetConfigured(v, true, "Configured", "backups run on schedule \"" + cron->ToString() + "\""));
  BAO_RETURN_IF_ERROR(EnsureServiceAccount(v));

  // 2. Jobs: record the finished ones.
  k8s::ListOptions lo;
  lo.label_selector =
      std::string(kLabelCluster) + "=" + v.name + "," + kLabelComponent + "=" + kComponentBackup;
  BAO_ASSIGN_OR_RETURN(k8s::ObjectList jobs, client_->List(k8s::kJobs, v.ns, lo));
  v.jobs = std::move(jobs.items);
  BAO_RETURN_IF_ERROR(RecordFinishedJobs(v));
  std::string running_job;
  for (const json& job : v.jobs) {
    if (JobFinished(job).empty()) running_job = Str(At(job, {"metadata"}), "name");
  }
  const bool job_running = !running_job.empty();

  // 3. The lock: resume a Job whose creation was interrupted, or drop a lost one; renew the
  // lock of a running Job.
  const json lock = At(v.cluster, {"status", "operationLock"});
  if (std::string job_name = LockJobName(lock); !job_name.empty()) {
    bool exists = std::any_of(v.jobs.begin(), v.jobs.end(), [&](const json& j) {
      return j["metadata"].value("name", "") == job_name;
    });
    if (!exists && v.BackupString("lastRecordedJob") != job_name) {
      auto acquired = ParseRfc3339(Str(lock, "acquiredAt"));
      auto slot = ParseRfc3339(Str(lock, "slot"));
      if (acquired.ok() && slot.ok() && v.now - *acquired < kResumeWindow) {
        json job = BuildBackupJob(v.cluster, v.spec, v.jwt_role, *slot,
                                  Str(lock, "message").rfind("manual", 0) == 0, options_.job);
        Result<json> created = client_->Create(k8s::kJobs, v.ns, job);
        if (!created.ok() && !k8s::IsAlreadyExists(created.status())) return created.status();
        BAO_RETURN_IF_ERROR(RemoveTrigger(v));
        Status e = events_->Normal(v.cluster, "BackupStarted",
                                   "created backup Job " + job_name + " (resumed after a restart)");
        if (!e.ok()) log::Warn("could not record event", {{"error", e.ToString()}});
        v.result.outcome = "resumed";
        v.result.requeue_at = v.now + kLockRenewInterval;
        return v.result;
      }
      BAO_ASSIGN_OR_RETURN(
          v.cluster,
          client_->PatchStatus(
              k8s::kOpenBaoClusters, v.ns, v.name,
              {{"metadata", {{"resourceVersion", v.cluster["metadata"]["resourceVersion"]}}},
               {"status",
                {{"operationLock", nullptr},
                 {"backup",
                  {{"lastRecordedJob", job_name},
                   {"lastFailureReason", "backup Job " + job_name + " was lost before it ran"},
                   {"consecutiveFailures",
                    v.Backup().value("consecutiveFailures", int64_t{0}) + 1}}}}}}));
      Status e = events_->Warning(v.cluster, "BackupFailed",
                                  "backup Job " + job_name + " was lost; lock released");
      if (!e.ok()) log::Warn("could not record event", {{"error", e.ToString()}});
    } else if (job_name == running_job && LockNeedsRenewal(lock, v.now)) {
      // The resourceVersion precondition keeps a lock released meanwhile from coming back as
      // a bare {renewedAt}; on a conflict the change that caused it brings another reconcile.
      Result<json> renewed = client_->PatchStatus(
          k8s::kOpenBaoClusters, v.ns, v.name,
          {{"metadata", {{"resourceVersion", v.cluster["metadata"]["resourceVersion"]}}},
           {"status", {{"operationLock", {{"renewedAt", FormatRfc3339(v.now)}}}}}});
      if (renewed.ok()) {
        v.cluster = std::move(*renewed);
      } else if (!k8s::IsConflict(renewed.status())) {
        return renewed.status();
      }
    }
  }

  // 4. The slot.
  SlotDecision slot_state = DecideSlot(*cron, v.now, v.Backup());
  bool triggered = At(v.cluster, {"metadata", "annotations"}).contains(kAnnotationTrigger);
  if (slot_state.next_changed) {
    BAO_ASSIGN_OR_RETURN(
        v.cluster,
        client_->PatchStatus(
            k8s::kOpenBaoClusters, v.ns, v.name,
            {{"status", {{"backup", {{"nextScheduledBackup", FormatRfc3339(slot_state.next)}}}}}}));
  }
  const TimePoint next = slot_state.next;
  v.result.requeue_at = next;
  if (job_running) v.result.requeue_at = std::min(next, v.now + kLockRenewInterval);
  if (!slot_state.due && !triggered) {
    if (v.result.outcome.empty()) v.result.outcome = job_running ? "running" : "idle";
    return v.result;
  }
  TimePoint slot = triggered ? v.now : *slot_state.previous;

  // 5. Preconditions.
  std::vector<json> restores;
  if (At(v.cluster, {"status", "phase"}) == json("Running")) {
    BAO_ASSIGN_OR_RETURN(k8s::ObjectList list, client_->List(k8s::kOpenBaoRestores, v.ns));
    restores = std::move(list.items);
  }
  if (std::optional<SkipReason> skip = CheckPreconditions(v.cluster, restores, job_running)) {
    BAO_RETURN_IF_ERROR(Skip(v, slot, triggered, skip->reason, skip->message));
    return v.result;
  }

  // 6. Lock, then the Job.
  json job = BuildBackupJob(v.cluster, v.spec, v.jwt_role, slot, triggered, options_.job);
  std::string job_name = job["metadata"]["name"];
  json backup_status = {{"lastAttemptTime", FormatRfc3339(v.now)}};
  if (!triggered) backup_status["lastAttemptScheduledTime"] = FormatRfc3339(slot);
  json patch = {
      {"metadata", {{"resourceVersion", v.cluster["metadata"]["resourceVersion"]}}},
      {"status",
       {{"backup", backup_status},
        {"operationLock",
         {{"operation", "Backup"},
          {"holder", kLockHolderPrefix + job_name},
          {"message", (triggered ? "manual backup Job " : "scheduled backup Job ") + job_name},
          {"slot", FormatRfc3339(slot)},
          {"acquiredAt", FormatRfc3339(v.now)},
          {"renewedAt", FormatRfc3339(v.now)}}}}}};
  BAO_ASSIGN_OR_RETURN(v.cluster, client_->PatchStatus(k8s::kOpenBaoClusters, v.ns, v.name, patch));
  if (triggered) BAO_RETURN_IF_ERROR(RemoveTrigger(v));
  Result<json> created = client_->Create(k8s::kJobs, v.ns, job);
  if (!created.ok() && !k8s::IsAlreadyExists(created.status())) return created.status();
  Status e = events_->Normal(v.cluster, "BackupStarted", "created backup Job " + job_name);
  if (!e.ok()) log::Warn("could not record event", {{"error", e.ToString()}});
  log::Info("backup Job created", {{"cluster", v.ns + "/" + v.name}, {"job", job_name}});
  v.result.outcome = "created";
  v.result.requeue_at = std::min(next, v.now + kLockRenewInterval);
  return v.result;
}

std::string BackupManager::MetricsText() const {
  std::lock_guard<std::mutex> l(mu_);
  std::ostringstream o;
  auto family = [&](const char* name, const char* type, const char* help) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  };
  auto per_cluster = [&](const char* name, const char* type, const char* help, auto getter) {
    family(name, type, help);
    for (const auto& [key, m] : metrics_) {
      size_t slash = key.find('/');
      o << name << "{namespace=\"" << key.substr(0, slash) << "\",cluster=\""
        << key.substr(slash + 1) << "\"} " << getter(m) << "\n";
    }
  };
  per_cluster("bao_backup_last_success_timestamp_seconds", "gauge",
              "Unix time of the last successful backup.",
              [](const ClusterMetrics& m) { return m.last_success_unix; });
  per_cluster("bao_backup_consecutive_failures", "gauge", "Backup failures since the last success.",
              [](const ClusterMetrics& m) { return static_cast<double>(m.consecutive_failures); });
  per_cluster("bao_backup_last_duration_seconds", "gauge",
              "Duration of the last successful backup.",
              [](const ClusterMetrics& m) { return m.last_duration_seconds; });
  per_cluster("bao_backup_last_size_bytes", "gauge", "Size of the last successful backup.",
              [](const ClusterMetrics& m) { return static_cast<double>(m.last_size_bytes); });
  per_cluster("bao_backup_success_total", "counter", "Successful backups recorded.",
              [](const ClusterMetrics& m) { return static_cast<double>(m.successes); });
  per_cluster("bao_backup_failure_total", "counter", "Failed backups recorded.",
              [](const ClusterMetrics& m) { return static_cast<double>(m.failures); });
  per_cluster("bao_backup_skipped_total", "counter", "Backup slots skipped by a precondition.",
              [](const ClusterMetrics& m) { return static_cast<double>(m.skipped); });
  family("bao_operator_reconcile_total", "counter", "Reconciles run.");
  o << "bao_operator_reconcile_total " << reconciles_ << "\n";
  family("bao_operator_reconcile_errors_total", "counter", "Reconciles that failed (retried).");
  o << "bao_operator_reconcile_errors_total " << reconcile_errors_ << "\n";
  return o.str();
}

}  // namespace bao::op
