#include "operator/restore_manager.h"

#include <algorithm>

#include "common/log.h"
#include "operator/backup_logic.h"

namespace bao::op {

using nlohmann::json;

namespace {

// How often an unfinished restore is looked at even without a Job event: the lock wait and
// lock renewal.
constexpr std::chrono::seconds kRestorePoll{10};

bool Refused(const Status& s) {
  int code = k8s::HttpCodeOf(s);
  return code == 400 || code == 403 || code == 422;
}

}  // namespace

struct RestoreManager::View {
  std::string ns, name;
  json restore;
  json cluster;  // null when not read (or gone)
  RestoreRequest request;
  ExecutorAuth auth;
  TimePoint now;
  ReconcileResult result;

  const json& Status() const { return At(restore, {"status"}); }
  std::string Phase() const { return Str(Status(), "phase"); }
  int Attempt() const {
    const json& a = At(restore, {"status", "attempts"});
    return a.is_number_integer() ? std::max(1, a.get<int>()) : 1;
  }
  json Generation() const {
    const json& g = At(restore, {"metadata", "generation"});
    return g.is_number() ? g : json(1);
  }
  std::string Key() const { return ns + "/" + name; }
};

RestoreManager::RestoreManager(k8s::Client* client, k8s::EventRecorder* events,
                               ManagerOptions options)
    : client_(client), events_(events), options_(std::move(options)) {}

Result<ReconcileResult> RestoreManager::Reconcile(const std::string& ns, const std::string& name) {
  View v;
  v.ns = ns;
  v.name = name;
  v.now = options_.clock->Now();
  Result<json> restore = client_->Get(k8s::kOpenBaoRestores, ns, name);
  if (!restore.ok()) {
    if (k8s::IsNotFound(restore.status())) return ReconcileResult{};
    return restore.status();
  }
  v.restore = std::move(*restore);
  return ReconcileRestore(v);
}

Result<ReconcileResult> RestoreManager::ReconcileRestore(View& v) {
  for (auto step :
       {&RestoreManager::Finalize, &RestoreManager::EnsureFinalizer,
        &RestoreManager::SettleFinished, &RestoreManager::CheckRequest,
        &RestoreManager::AcquireLock, &RestoreManager::VerifyObject, &RestoreManager::RunRestore}) {
    BAO_ASSIGN_OR_RETURN(bool go_on, (this->*step)(v));
    if (!go_on) break;
  }
  return v.result;
}

void RestoreManager::Event(const View& v, bool warning, const std::string& reason,
                           const std::string& message) {
  Status e = warning ? events_->Warning(v.restore, reason, message)
                     : events_->Normal(v.restore, reason, message);
  if (!e.ok()) log::Warn("could not record event", {{"error", e.ToString()}});
}

Status RestoreManager::SetCondition(View& v, const std::string& type, bool status,
                                    const std::string& reason, const std::string& message) {
  json conds = At(v.restore, {"status", "conditions"});
  if (!op::SetCondition(conds, type, status, reason, message, v.now, v.Generation())) {
    return Status::Ok();
  }
  BAO_ASSIGN_OR_RETURN(v.restore, client_->PatchStatus(k8s::kOpenBaoRestores, v.ns, v.name,
                                                       {{"status", {{"conditions", conds}}}}));
  return Status::Ok();
}

Status RestoreManager::SetPhase(View& v, const std::string& phase, const std::string& message,
                                json fields, bool warning, const std::string& reason) {
  const bool changed = v.Phase() != phase;
  if (!changed && Str(v.Status(), "message") == message && fields.empty()) return Status::Ok();
  fields["phase"] = phase;
  fields["message"] = message;
  BAO_ASSIGN_OR_RETURN(
      v.restore, client_->PatchStatus(k8s::kOpenBaoRestores, v.ns, v.name, {{"status", fields}}));
  const bool done = phase == kPhaseCompleted || phase == kPhaseFailed;
  BAO_RETURN_IF_ERROR(SetCondition(v, kConditionProgressing, !done, reason, message));
  if (changed) {
    Event(v, warning, reason, message);
    log::Info("restore " + phase, {{"restore", v.Key()}, {"message", message}});
  }
  return Status::Ok();
}

Status RestoreManager::Fail(View& v, const std::string& reason, const std::string& message) {
  json fields = {{"completionTime", FormatRfc3339(v.now)}};
  if (Str(v.Status(), "startTime").empty()) fields["startTime"] = FormatRfc3339(v.now);
  BAO_RETURN_IF_ERROR(SetPhase(v, kPhaseFailed, message, fields, true, reason));
  v.result.outcome = "failed:" + reason;
  return ReleaseLock(v);
}

// Releases the cluster's lock if this restore holds it (resourceVersion precondition, so a
// lock someone else took meanwhile stays).
Status RestoreManager::ReleaseLock(View& v) {
  if (v.request.cluster.empty()) {
    v.request.cluster = Str(At(v.restore, {"spec"}), "cluster");
    if (v.request.cluster.empty()) return Status::Ok();
  }
  Result<json> cluster = client_->Get(k8s::kOpenBaoClusters, v.ns, v.request.cluster);
  if (!cluster.ok()) return k8s::IsNotFound(cluster.status()) ? Status::Ok() : cluster.status();
  v.cluster = std::move(*cluster);
  if (Str(At(v.cluster, {"status", "operationLock"}), "holder") != RestoreLockHolder(v.name)) {
    return Status::Ok();
  }
  BAO_ASSIGN_OR_RETURN(
      v.cluster, client_->PatchStatus(
                     k8s::kOpenBaoClusters, v.ns, v.request.cluster,
                     {{"metadata", {{"resourceVersion", v.cluster["metadata"]["resourceVersion"]}}},
                      {"status", {{"operationLock", nullptr}}}}));
  log::Info("restore released the operation lock",
            {{"restore", v.Key()}, {"cluster", v.request.cluster}});
  return Status::Ok();
}

Result<bool> RestoreManager::KeepLock(View& v) {
  const json& lock = At(v.cluster, {"status", "operationLock"});
  if (Str(lock, "holder") != RestoreLockHolder(v.name)) {
    // Another restore took it (overrideOperationLock), or it was cleared by hand.
    BAO_RETURN_IF_ERROR(Fail(v, "LockLost",
                             "the cluster's operation lock is no longer this restore's (now: " +
                                 (lock.is_object() && !lock.empty()
                                      ? Str(lock, "operation") + " by " + Str(lock, "holder")
                                      : std::string("nobody")) +
                                 "); stopped before starting anything more"));
    return false;
  }
  auto renewed = ParseRfc3339(Str(lock, "renewedAt"));
  if (renewed.ok() && *renewed > v.now - kLockRenewInterval) return true;  // no overflow
  Result<json> patched = client_->PatchStatus(
      k8s::kOpenBaoClusters, v.ns, v.request.cluster,
      {{"metadata", {{"resourceVersion", v.cluster["metadata"]["resourceVersion"]}}},
       {"status", {{"operationLock", {{"renewedAt", FormatRfc3339(v.now)}}}}}});
  if (patched.ok()) v.cluster = std::move(*patched);
  if (!patched.ok() && !k8s::IsConflict(patched.status())) return patched.status();
  return true;
}

// 1. Deleted: release the lock, delete the Jobs, then let the object go.
Result<bool> RestoreManager::Finalize(View& v) {
  const json& meta = v.restore["metadata"];
  if (Str(meta, "deletionTimestamp").empty()) return true;
  json finalizers = meta.value("finalizers", json::array());
  auto ours = std::find(finalizers.begin(), finalizers.end(), json(kRestoreFinalizer));
  if (ours == finalizers.end()) {
    v.result.outcome = "deleted";
    return false;
  }
  BAO_RETURN_IF_ERROR(ReleaseLock(v));
  k8s::ListOptions lo;
  lo.label_selector = std::string(kLabelManagedBy) + "=" + kManagedBy + "," + kLabelComponent +
                      " in (" + kComponentRestore + "," + kComponentRestoreVerify + ")";
  BAO_ASSIGN_OR_RETURN(k8s::ObjectList jobs, client_->List(k8s::kJobs, v.ns, lo));
  k8s::DeleteOptions background;
  background.propagation_policy = "Background";  // the Pods go too
  for (const json& job : jobs.items) {
    if (Str(At(job, {"metadata", "annotations"}), kAnnotationRestore) != v.name) continue;
    Status d = client_->Delete(k8s::kJobs, v.ns, Str(job["metadata"], "name"), background);
    if (!d.ok() && !k8s::IsNotFound(d)) return d;
  }
  finalizers.erase(ours);
  BAO_ASSIGN_OR_RETURN(
      v.restore,
      client_->MergePatch(
          k8s::kOpenBaoRestores, v.ns, v.name,
          {{"metadata",
            {{"resourceVersion", meta["resourceVersion"]}, {"finalizers", finalizers}}}}));
  log::Info("restore deleted: lock released, Jobs deleted", {{"restore", v.Key()}});
  v.result.outcome = "finalized";
  return false;
}

// 2. The finalizer, before anything is taken that must be given back.
Result<bool> RestoreManager::EnsureFinalizer(View& v) {
  const std::string phase = v.Phase();
  if (phase == kPhaseCompleted || phase == kPhaseFailed) return true;
  json finalizers = At(v.restore, {"metadata", "finalizers"});
  if (!finalizers.is_array()) finalizers = json::array();
  if (std::find(finalizers.begin(), finalizers.end(), json(kRestoreFinalizer)) !=
      finalizers.end()) {
    return true;
  }
  finalizers.push_back(kRestoreFinalizer);
  BAO_ASSIGN_OR_RETURN(
      v.restore,
      client_->MergePatch(k8s::kOpenBaoRestores, v.ns, v.name,
                          {{"metadata",
                            {{"resourceVersion", v.restore["metadata"]["resourceVersion"]},
                             {"finalizers", finalizers}}}}));
  return true;
}

// 3. Finished: nothing to do but make sure the lock is not still held (a crash between the
// last status write and the release).
Result<bool> RestoreManager::SettleFinished(View& v) {
  const std::string phase = v.Phase();
  if (phase != kPhaseCompleted && phase != kPhaseFailed) return true;
  BAO_RETURN_IF_ERROR(ReleaseLock(v));
  v.result.outcome = phase == kPhaseCompleted ? "completed" : "failed";
  return false;
}

// 4. The request: immutable, valid on its own, its cluster, Secrets and auth exist. Checked in
// full while Pending; later phases only re-read the cluster.
Result<bool> RestoreManager::CheckRequest(View& v) {
  if (v.Generation() != json(1)) {
    BAO_RETURN_IF_ERROR(Fail(v, "SpecChanged",
                             "the spec of an OpenBaoRestore cannot change after creation; "
                             "delete it and create a new one"));
    return false;
  }
  Result<RestoreRequest> request = ParseRestoreSpec(At(v.restore, {"spec"}));
  if (!request.ok()) {
    BAO_RETURN_IF_ERROR(Fail(v, "InvalidSpec", request.status().message()));
    return false;
  }
  v.request = *request;
  if (v.Phase().empty()) {
    BAO_RETURN_IF_ERROR(SetPhase(v, kPhasePending, "accepted; checking the request", json::object(),
                                 false, kPhasePending));
  }
  Result<json> cluster = client_->Get(k8s::kOpenBaoClusters, v.ns, v.request.cluster);
  if (!cluster.ok()) {
    if (!k8s::IsNotFound(cluster.status())) return cluster.status();
    BAO_RETURN_IF_ERROR(Fail(v, "ClusterNotFound",
                             "spec.cluster: OpenBaoCluster \"" + v.request.cluster +
                                 "\" not found in namespace \"" + v.ns + "\""));
    return false;
  }
  v.cluster = std::move(*cluster);
  Result<ExecutorAuth> auth = RestoreAuth(v.request, v.cluster);
  if (!auth.ok()) {
    BAO_RETURN_IF_ERROR(Fail(v, "NoRestoreAuth", auth.status().message()));
    return false;
  }
  v.auth = *auth;
  if (v.Phase() != kPhasePending) return true;
  struct Needed {
    std::string secret, what, key, reason;
  };
  std::vector<Needed> needed;
  if (!v.request.target.credentials_secret.empty()) {
    needed.push_back({v.request.target.credentials_secret,
                      "spec.source.target.credentialsSecretRef.name", "", "SecretNotFound"});
  }
  if (v.auth.jwt_role.empty()) {
    needed.push_back({v.auth.token_secret, "spec.tokenSecretRef.name", "token", "SecretNotFound"});
  }
  needed.push_back({TlsCaSecretName(v.request.cluster), "the cluster's TLS CA", kTlsCaKey,
                    "TlsCaSecretNotFound"});
  for (const Needed& n : needed) {
    Result<json> s = client_->Get(k8s::kSecrets, v.ns, n.secret);
    if (!s.ok() && !k8s::IsNotFound(s.status())) return s.status();
    if (!s.ok() || (!n.key.empty() && !At(*s, {"data"}).contains(n.key))) {
      BAO_RETURN_IF_ERROR(Fail(v, n.reason,
                               n.what + ": Secret \"" + n.secret + "\"" +
                                   (s.ok() ? " has no key \"" + n.key + "\""
                                           : " not found in namespace \"" + v.ns + "\"")));
      return false;
    }
  }
  return true;
}

// 5. The cluster's operation lock: wait while someone else holds it, unless told to override.
Result<bool> RestoreManager::AcquireLock(View& v) {
  if (v.Phase() != kPhasePending) return true;
  const json lock = At(v.cluster, {"status", "operationLock"});
  const std::string holder = Str(lock, "holder");
  const bool held = lock.is_object() && !lock.empty() && holder != RestoreLockHolder(v.name);
  if (held && !v.request.override_lock) {
    const std::string message =
        "waiting for the cluster's operation lock, held for " + Str(lock, "operation") + " by " +
        holder + (Str(lock, "message").empty() ? "" : " (" + Str(lock, "message") + ")");
    if (Str(v.Status(), "message") != message) Event(v, false, "WaitingForLock", message);
    BAO_RETURN_IF_ERROR(
        SetPhase(v, kPhasePending, message, json::object(), false, "WaitingForLock"));
    v.result.outcome = "waiting";
    v.result.requeue_at = v.now + kRestorePoll;
    return false;
  }
  json patch = {{"metadata", {{"resourceVersion", v.cluster["metadata"]["resourceVersion"]}}},
                {"status",
                 {{"operationLock",
                   {{"operation", "Restore"},
                    {"holder", RestoreLockHolder(v.name)},
                    {"message", "OpenBaoRestore " + v.name + " restores " + v.request.key},
                    {"acquiredAt", FormatRfc3339(v.now)},
                    {"renewedAt", FormatRfc3339(v.now)}}}}}};
  if (held) patch["status"]["operationLock"]["slot"] = nullptr;
  Result<json> taken = client_->PatchStatus(k8s::kOpenBaoClusters, v.ns, v.request.cluster, patch);
  if (!taken.ok()) {
    if (!k8s::IsConflict(taken.status())) return taken.status();
    v.result.outcome = "lock-conflict";  // the cluster changed meanwhile: look again soon
    v.result.requeue_at = v.now;
    return false;
  }
  v.cluster = std::move(*taken);
  if (held) {
    const std::string message = "took the cluster's operation lock from " + holder + " (" +
                                Str(lock, "operation") +
                                ") because overrideOperationLock and force are set";
    Event(v, true, kConditionLockOverridden, message);
    BAO_RETURN_IF_ERROR(SetCondition(v, kConditionLockOverridden, true, "Overridden", message));
  }
  BAO_RETURN_IF_ERROR(
      SetPhase(v, kPhaseValidating, "checking that " + v.request.key + " exists and is intact",
               {{"startTime", FormatRfc3339(v.now)}, {"snapshotKey", v.request.key}}, false,
               kPhaseValidating));
  return true;
}

Result<bool> RestoreManager::EnsureServiceAccount(View& v) {
  const std::string sa = RestoreServiceAccountName(v.request.cluster);
  Result<json> got = client_->Get(k8s::kServiceAccounts, v.ns, sa);
  if (got.ok()) return true;
  if (!k8s::IsNotFound(got.status())) return got.status();
  Result<json> created = client_->Create(
      k8s::kServiceAccounts, v.ns,
      {{"apiVersion", "v1"},
       {"kind", "ServiceAccount"},
       {"metadata",
        {{"name", sa},
         {"namespace", v.ns},
         {"labels",
          {{kLabelCluster, ClusterLabelValue(v.request.cluster)}, {kLabelManagedBy, kManagedBy}}},
         {"ownerReferences", json::array({OwnerReference(v.cluster)})}}}});
  if (created.ok() || k8s::IsAlreadyExists(created.status())) return true;
  if (!Refused(created.status())) return created.status();
  BAO_RETURN_IF_ERROR(
      Fail(v, "ServiceAccountCreateFailed",
           "cannot create ServiceAccount " + sa + ": " + created.status().message()));
  return false;
}

Result<json> RestoreManager::EnsureJob(View& v, const json& job) {
  const std::string name = job["metadata"]["name"];
  Result<json> got = client_->Get(k8s::kJobs, v.ns, name);
  if (got.ok()) return *got;
  if (!k8s::IsNotFound(got.status())) return got.status();
  Result<json> created = client_->Create(k8s::kJobs, v.ns, job);
  if (created.ok()) {
    Event(v, false, "JobCreated", "created Job " + name);
    return *created;
  }
  if (k8s::IsAlreadyExists(created.status())) return client_->Get(k8s::kJobs, v.ns, name);
  if (!Refused(created.status())) return created.status();
  BAO_RETURN_IF_ERROR(
      Fail(v, "JobCreateFailed", "cannot create Job " + name + ": " + created.status().message()));
  return json();
}

Result<json> RestoreManager::JobResult(View& v, const std::string& job_name) {
  k8s::ListOptions lo;
  lo.label_selector = "job-name=" + job_name;
  BAO_ASSIGN_OR_RETURN(k8s::ObjectList pods, client_->List(k8s::kPods, v.ns, lo));
  return NewestResult(pods.items, nullptr);
}

// 6. Validating: the verification Job says whether the object exists and is an intact backup.
Result<bool> RestoreManager::VerifyObject(View& v) {
  if (v.Phase() != kPhaseValidating) return true;
  BAO_ASSIGN_OR_RETURN(bool locked, KeepLock(v));
  if (!locked) return false;
  BAO_ASSIGN_OR_RETURN(bool sa, EnsureServiceAccount(v));
  if (!sa) return false;
  BAO_ASSIGN_OR_RETURN(
      json job, EnsureJob(v, BuildRestoreVerifyJob(v.restore, v.cluster, v.request, options_.job)));
  if (job.is_null()) return false;
  const std::string finished = JobFinished(job);
  if (finished.empty()) {
    v.result.outcome = "validating";
    v.result.requeue_at = v.now + kRestorePoll;
    return false;
  }
  BAO_ASSIGN_OR_RETURN(json result, JobResult(v, job["metadata"]["name"]));
  if (finished != "Complete" || !result.is_object() || Str(result, "key") != v.request.key) {
    std::string why = result.is_object() && result.contains("error")
                          ? (Str(result, "stage").empty() ? "" : Str(result, "stage") + ": ") +
                                Str(result, "error")
                          : JobFailureMessage(job);
    BAO_RETURN_IF_ERROR(Fail(v, "BackupNotRestorable",
                             "spec.source: " + v.request.key +
                                 " is not an intact backup in the given target, so OpenBao was "
                                 "not touched: " +
                                 why));
    return false;
  }
  json fields = {{"attempts", 1}};
  if (result.contains("size") && result["size"].is_number_integer()) {
    fields["snapshotSize"] = result["size"];
  }
  BAO_RETURN_IF_ERROR(SetPhase(v, kPhaseRunning,
                               "restoring " + v.request.key + " into " + v.request.cluster +
                                   (v.request.force ? " (forced)" : ""),
                               fields, false, kPhaseRunning));
  return true;
}

// 7. Running: the restore Job, attempt by attempt; its result finishes the restore.
Result<bool> RestoreManager::RunRestore(View& v) {
  if (v.Phase() != kPhaseRunning) return true;
  BAO_ASSIGN_OR_RETURN(bool locked, KeepLock(v));
  if (!locked) return false;
  BAO_ASSIGN_OR_RETURN(bool sa, EnsureServiceAccount(v));
  if (!sa) return false;
  const int attempt = v.Attempt();
  BAO_ASSIGN_OR_RETURN(json job, EnsureJob(v, BuildRestoreJob(v.restore, v.cluster, v.request,
                                                              v.auth, attempt, options_.job)));
  if (job.is_null()) return false;
  const std::string finished = JobFinished(job);
  if (finished.empty()) {
    v.result.outcome = "running";
    v.result.requeue_at = v.now + kRestorePoll;
    return false;
  }
  BAO_ASSIGN_OR_RETURN(json result, JobResult(v, job["metadata"]["name"]));
  RestoreVerdict verdict =
      JudgeRestoreJob(finished == "Complete", result, attempt, JobFailureMessage(job));
  switch (verdict.kind) {
    case RestoreVerdict::Kind::kRetry:
      Event(v, true, "RestoreRetrying", verdict.message);
      BAO_RETURN_IF_ERROR(SetPhase(v, kPhaseRunning, verdict.message, {{"attempts", attempt + 1}},
                                   true, "RestoreRetrying"));
      v.result.outcome = "retrying";
      v.result.requeue_at = v.now;
      return false;
    case RestoreVerdict::Kind::kFailed:
      BAO_RETURN_IF_ERROR(Fail(v, "RestoreFailed", verdict.message));
      return false;
    case RestoreVerdict::Kind::kSucceeded: break;
  }
  if (verdict.sealed) {
    BAO_RETURN_IF_ERROR(SetCondition(
        v, kConditionSealedAfterRestore, true, "Sealed",
        "OpenBao is sealed after the restore: unseal it with the unseal (or recovery) keys of the "
        "cluster the snapshot came from; its old root token no longer works"));
    Event(v, true, kConditionSealedAfterRestore,
          "cluster " + v.request.cluster +
              " is sealed after the restore: unseal it with the keys of the cluster the "
              "snapshot came from");
  }
  json fields = {{"completionTime", FormatRfc3339(v.now)},
                 {"restoreDuration", verdict.duration},
                 {"sealed", verdict.sealed}};
  if (verdict.size > 0) fields["snapshotSize"] = verdict.size;
  BAO_RETURN_IF_ERROR(
      SetPhase(v, kPhaseCompleted, verdict.message, fields, false, kPhaseCompleted));
  BAO_RETURN_IF_ERROR(ReleaseLock(v));
  v.result.outcome = "completed";
  return false;
}

}  // namespace bao::op
