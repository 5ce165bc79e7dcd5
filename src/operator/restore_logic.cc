#include "operator/restore_logic.h"

#include "backup/exit_code.h"
#include "backup/spec.h"
#include "common/json_fields.h"
#include "crypto/crypto.h"
#include "operator/backup_logic.h"

namespace bao::op {

using nlohmann::json;

namespace {

// "<prefix><name><suffix>", the name part shortened with a hash so the whole stays <= 63.
std::string DnsLabel(const std::string& prefix, const std::string& name,
                     const std::string& suffix) {
  const size_t room = 63 - prefix.size() - suffix.size();
  std::string part = name;
  if (part.size() > room)
    part = part.substr(0, room - 9) + "-" + crypto::Sha256Hex(name).substr(0, 8);
  return prefix + part + suffix;
}

json RestoreLabels(const RestoreRequest& request, const char* component) {
  return {{kLabelCluster, ClusterLabelValue(request.cluster)},
          {kLabelComponent, component},
          {kLabelManagedBy, kManagedBy},
          {"app.kubernetes.io/name", "bao-backup"}};
}

json RestoreAnnotations(const json& restore, const RestoreRequest& request) {
  return {{kAnnotationCluster, request.cluster},
          {kAnnotationRestore, restore["metadata"].value("name", "")}};
}

}  // namespace

Result<RestoreRequest> ParseRestoreSpec(const json& spec) {
  if (!spec.is_object()) return InvalidArgument("spec: must be an object");
  BAO_RETURN_IF_ERROR(CheckKnownFields(spec, "spec",
                                       {"cluster", "source", "jwtAuthRole", "tokenSecretRef",
                                        "image", "force", "overrideOperationLock"}));
  RestoreRequest r;
  BAO_RETURN_IF_ERROR(GetString(spec, "cluster", "spec", &r.cluster));
  if (r.cluster.empty())
    return InvalidArgument("spec.cluster: required (the OpenBaoCluster to restore into)");
  const json& source = spec.contains("source") ? spec["source"] : json();
  if (!source.is_object()) return InvalidArgument("spec.source: required (target and key)");
  BAO_RETURN_IF_ERROR(CheckKnownFields(source, "spec.source", {"target", "key"}));
  BAO_RETURN_IF_ERROR(GetString(source, "key", "spec.source", &r.key));
  if (r.key.empty()) return InvalidArgument("spec.source.key: required (the backup's object key)");
  if (!source.contains("target")) return InvalidArgument("spec.source.target: required");
  BAO_ASSIGN_OR_RETURN(r.target,
                       storage::ParseTarget(source["target"], "spec.source.target", "s3"));
  BAO_RETURN_IF_ERROR(
      backup::CheckEndpointHasNoCredentials(r.target.endpoint, "spec.source.target"));
  BAO_RETURN_IF_ERROR(storage::ValidateTarget(r.target, "spec.source.target"));
  BAO_RETURN_IF_ERROR(GetString(spec, "jwtAuthRole", "spec", &r.jwt_auth_role));
  if (spec.contains("tokenSecretRef") && !spec["tokenSecretRef"].is_null()) {
    const json& ref = spec["tokenSecretRef"];
    if (!ref.is_object())
      return InvalidArgument("spec.tokenSecretRef: must be an object with a name");
    if (ref.contains("namespace")) {
      return Error(Code::kInvalidArgument, Reason::kCrossNamespace,
                   "spec.tokenSecretRef.namespace: cross-namespace Secret references are not "
                   "allowed; the Secret must be in the restore's namespace");
    }
    BAO_RETURN_IF_ERROR(CheckKnownFields(ref, "spec.tokenSecretRef", {"name"}));
    BAO_RETURN_IF_ERROR(GetString(ref, "name", "spec.tokenSecretRef", &r.token_secret));
  }
  BAO_RETURN_IF_ERROR(GetString(spec, "image", "spec", &r.image));
  BAO_RETURN_IF_ERROR(GetBool(spec, "force", "spec", &r.force));
  BAO_RETURN_IF_ERROR(GetBool(spec, "overrideOperationLock", "spec", &r.override_lock));
  if (r.override_lock && !r.force) {
    return InvalidArgument(
        "spec.overrideOperationLock: only honoured together with force: true (a restore that "
        "takes the lock from a running backup or upgrade must also be a forced restore); set "
        "force: true or remove overrideOperationLock");
  }
  return r;
}

Result<ExecutorAuth> RestoreAuth(const RestoreRequest& request, const json& cluster) {
  ExecutorAuth auth;
  auth.jwt_role = request.jwt_auth_role;
  if (auth.jwt_role.empty() && At(cluster, {"spec", "selfInit", "oidc", "enabled"}) == json(true)) {
    auth.jwt_role = kOidcRestoreRole;
  }
  if (auth.jwt_role.empty()) auth.token_secret = request.token_secret;
  if (auth.jwt_role.empty() && auth.token_secret.empty()) {
    return FailedPrecondition(
        "no OpenBao auth for the restore: set spec.jwtAuthRole, or spec.tokenSecretRef.name (a "
        "Secret with key token), or enable spec.selfInit.oidc on the cluster (role " +
        std::string(kOidcRestoreRole) + ")");
  }
  return auth;
}

std::string RestoreServiceAccountName(const std::string& cluster) {
  return cluster + "-restore-serviceaccount";
}

std::string RestoreVerifyJobName(const std::string& restore) {
  return DnsLabel("restore-verify-", restore, "");
}

std::string RestoreJobName(const std::string& restore, int attempt) {
  return DnsLabel("restore-", restore, "-" + std::to_string(attempt));
}

std::string RestoreLockHolder(const std::string& restore) {
  return kRestoreLockHolderPrefix + restore;
}

json BuildRestoreVerifyJob(const json& restore, const json& cluster, const RestoreRequest& request,
                           const JobSettings& settings) {
  json args = json::array({"--log-format", "json", "verify", "--key", request.key});
  for (const json& a : TargetArgs(request.target)) args.push_back(a);
  args.push_back("--result-file");
  args.push_back(kResultFile);
  json pod =
      ExecutorPodSpec(cluster, request.target, std::nullopt,
                      RestoreServiceAccountName(request.cluster), request.image, args, settings);
  pod["containers"][0]["name"] = "verify";
  const std::string name = restore["metadata"].value("name", "");
  return ExecutorJob(restore, RestoreVerifyJobName(name),
                     RestoreLabels(request, kComponentRestoreVerify),
                     RestoreAnnotations(restore, request), pod, settings);
}

json BuildRestoreJob(const json& restore, const json& cluster, const RestoreRequest& request,
                     const ExecutorAuth& auth, int attempt, const JobSettings& settings) {
  json args = json::array({"--log-format", "json", "restore", "--key", request.key});
  for (const json& a : OpenBaoArgs(cluster, auth)) args.push_back(a);
  for (const json& a : TargetArgs(request.target)) args.push_back(a);
  if (request.force) args.push_back("--force");
  for (const char* a : {"--yes", "--result-file", kResultFile}) args.push_back(a);
  json pod =
      ExecutorPodSpec(cluster, request.target, auth, RestoreServiceAccountName(request.cluster),
                      request.image, args, settings);
  pod["containers"][0]["name"] = "restore";
  const std::string name = restore["metadata"].value("name", "");
  json annotations = RestoreAnnotations(restore, request);
  annotations["openbao.org/restore-attempt"] = std::to_string(attempt);
  return ExecutorJob(restore, RestoreJobName(name, attempt),
                     RestoreLabels(request, kComponentRestore), annotations, pod, settings);
}

RestoreVerdict JudgeRestoreJob(bool complete, const json& result, int attempt,
                               const std::string& job_failure) {
  RestoreVerdict v;
  if (complete && result.is_object() && !Str(result, "restored").empty()) {
    v.kind = RestoreVerdict::Kind::kSucceeded;
    v.size = result.value("size", json(0)).is_number_integer() ? result["size"].get<int64_t>() : 0;
    v.duration = Str(result, "duration");
    v.sealed = result.value("sealed", json(false)) == json(true);
    v.message = "restored " + Str(result, "restored") + " (" + std::to_string(v.size) +
                " bytes in " + v.duration + ")" +
                (v.sealed ? "; OpenBao is sealed: unseal it with the unseal (or recovery) keys "
                            "of the cluster the snapshot came from"
                          : "");
    return v;
  }
  if (!result.is_object() || !result.contains("error")) {
    v.message =
        (complete ? std::string("the restore Job completed without a result") : job_failure) +
        "; whether OpenBao applied the snapshot is not known: check the cluster "
        "before restoring again";
    return v;
  }
  const std::string stage = Str(result, "stage");
  v.message = (stage.empty() ? "" : stage + ": ") + Str(result, "error");
  const json& code = result.value("exitCode", json(0));
  const bool unchanged = result.value("openbaoUnchanged", json(false)) == json(true);
  const bool passing = code == json(static_cast<int>(backup::ExitCode::kLeaderDiscovery)) ||
                       code == json(static_cast<int>(backup::ExitCode::kStorage));
  if (unchanged && passing && attempt < kMaxRestoreAttempts) {
    v.kind = RestoreVerdict::Kind::kRetry;
    v.message = "attempt " + std::to_string(attempt) +
                " failed before OpenBao accepted the "
                "snapshot (" +
                v.message + "); retrying";
  }
  return v;
}

}  // namespace bao::op
