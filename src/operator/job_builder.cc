#include "operator/job_builder.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "crypto/crypto.h"
#include "openbao/client.h"

namespace bao::op {

using nlohmann::json;

namespace {

std::string SlotStamp(TimePoint slot) {
  std::time_t t = std::chrono::system_clock::to_time_t(slot);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d%02d%02d-%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

json SecretVolume(const std::string& name, const std::string& secret) {
  return {{"name", name}, {"secret", {{"secretName", secret}, {"defaultMode", 0440}}}};
}

// IRSA's projected ServiceAccount token for STS (as EKS's webhook mounts it) and its mount.
json AwsTokenVolume() {
  return {{"name", "aws-iam-token"},
          {"projected",
           {{"sources", json::array({{{"serviceAccountToken",
                                       {{"audience", kAwsAudience},
                                        {"expirationSeconds", 86400},
                                        {"path", "token"}}}}})}}}};
}
json AwsTokenMount() {
  return {{"name", "aws-iam-token"}, {"mountPath", kAwsTokenDir}, {"readOnly", true}};
}

}  // namespace

std::string BackupJobName(const std::string& cluster, TimePoint slot) {
  // "backup-" (7) + cluster + "-" (1) + stamp (15) <= 63  =>  cluster <= 40.
  std::string part = cluster;
  if (part.size() > 40) {
    part = part.substr(0, 31) + "-" + crypto::Sha256Hex(cluster).substr(0, 8);
  }
  return "backup-" + part + "-" + SlotStamp(slot);
}

std::string PreUpgradeJobName(const std::string& cluster, const std::string& version,
                              int64_t attempt) {
  // "backup-" (7) + cluster + "-pre-" (5) + hash (8) + "-<attempt>" (<= 6) <= 63  =>
  // cluster <= 37; 36 leaves the same room as the slot names' shortening.
  std::string part = cluster;
  if (part.size() > 36) {
    part = part.substr(0, 27) + "-" + crypto::Sha256Hex(cluster).substr(0, 8);
  }
  std::string name = "backup-" + part + "-pre-" + crypto::Sha256Hex(version).substr(0, 8);
  if (attempt > 1) name += "-" + std::to_string(std::min<int64_t>(attempt, 99999));
  return name;
}

std::string ClusterLabelValue(const std::string& cluster) {
  if (cluster.size() <= 63) return cluster;
  return cluster.substr(0, 54) + "-" + crypto::Sha256Hex(cluster).substr(0, 8);
}

std::string BackupJobSelector(const std::string& cluster) {
  return std::string(kLabelCluster) + "=" + ClusterLabelValue(cluster) + "," + kLabelComponent +
         "=" + kComponentBackup;
}

std::string TlsCaSecretName(const std::string& cluster) {
  return cluster + "-tls-ca";
}

std::string BackupServiceAccountName(const std::string& cluster) {
  return cluster + "-backup-serviceaccount";
}

json OwnerReference(const json& cluster) {
  const json& meta = cluster["metadata"];
  return {{"apiVersion", cluster.value("apiVersion", "openbao.org/v1alpha1")},
          {"kind", cluster.value("kind", "OpenBaoCluster")},
          {"name", meta.value("name", "")},
          {"uid", meta.value("uid", "")},
          {"controller", true},
          {"blockOwnerDeletion", true}};
}

namespace {

void AddOpt(json& args, const char* flag, const std::string& value) {
  if (value.empty()) return;
  args.push_back(flag);
  args.push_back(value);
}

}  // namespace

json OpenBaoArgs(const json& cluster, const ExecutorAuth& auth) {
  const std::string name = cluster["metadata"].value("name", "");
  const std::string ns = cluster["metadata"].value("namespace", "default");
  int64_t replicas = 1;
  if (cluster.contains("spec") && cluster["spec"].contains("replicas") &&
      cluster["spec"]["replicas"].is_number_integer()) {
    replicas = std::max<int64_t>(1, cluster["spec"]["replicas"].get<int64_t>());
  }
  json args = json::array();
  for (int64_t i = 0; i < replicas; ++i) {
    args.push_back("--bao-addr");
    args.push_back("https://" + name + "-" + std::to_string(i) + "." + name + "." + ns +
                   ".svc:8200");
  }
  args.push_back("--bao-cacert");
  args.push_back(std::string(kTlsDir) + "/" + kTlsCaKey);
  if (!auth.jwt_role.empty()) {
    for (const char* a : {"--jwt-role", auth.jwt_role.c_str(), "--jwt-token-file", kJwtTokenPath,
                          "--jwt-mount", openbao::kDefaultJwtMount}) {
      args.push_back(a);
    }
  } else {
    args.push_back("--bao-token-file");
    args.push_back(std::string(kTokenDir) + "/token");
  }
  return args;
}

json TargetArgs(const storage::TargetConfig& t) {
  json args = json::array();
  AddOpt(args, "--provider", t.provider);
  AddOpt(args, "--endpoint", t.endpoint);
  AddOpt(args, "--bucket", t.bucket);
  AddOpt(args, "--path-prefix", t.path_prefix);
  if (!t.credentials_secret.empty()) AddOpt(args, "--credentials-dir", kCredentialsDir);
  AddOpt(args, "--part-size", std::to_string(t.part_size));
  AddOpt(args, "--concurrency", std::to_string(t.concurrency));
  AddOpt(args, "--region", t.region);
  AddOpt(args, "--role-arn", t.role_arn);
  if (t.use_path_style) args.push_back("--use-path-style");
  AddOpt(args, "--gcs-project", t.gcs_project);
  AddOpt(args, "--storage-account", t.azure_storage_account);
  AddOpt(args, "--container", t.azure_container);
  if (t.insecure_skip_verify) args.push_back("--insecure-skip-verify");
  AddOpt(args, "--sse", t.sse);
  AddOpt(args, "--kms-key-id", t.kms_key_id);
  AddOpt(args, "--kms-key-name", t.gcs_kms_key_name);
  AddOpt(args, "--encryption-scope", t.azure_encryption_scope);
  if (!t.object_lock_mode.empty()) {
    AddOpt(args, "--object-lock-mode", t.object_lock_mode);
    AddOpt(args, "--object-lock-retain-days", std::to_string(t.object_lock_retain_days));
  }
  return args;
}

json BackupArgs(const json& cluster, const backup::BackupSpec& spec, const std::string& jwt_role,
                const std::string& file_prefix) {
  ExecutorAuth auth;
  auth.jwt_role = jwt_role;
  auth.token_secret = spec.token_secret_name;
  json args = json::array({"--log-format", "json", "backup"});
  for (const json& a : OpenBaoArgs(cluster, auth)) args.push_back(a);
  for (const json& a : TargetArgs(spec.target)) args.push_back(a);
  AddOpt(args, "--namespace", cluster["metadata"].value("namespace", "default"));
  AddOpt(args, "--cluster", cluster["metadata"].value("name", ""));
  AddOpt(args, "--file-prefix", file_prefix);
  for (size_t i = 0; i < spec.extra_targets.size(); ++i) {
    AddOpt(args, "--extra-target",
           std::string(kExtraTargetsDir) + "/" + std::to_string(i) + ".json");
  }
  const backup::RetentionPolicy& r = spec.retention;
  if (r.max_count > 0) AddOpt(args, "--max-count", std::to_string(r.max_count));
  if (r.max_age.count() > 0) AddOpt(args, "--max-age", FormatDuration(r.max_age));
  if (r.keep_daily > 0) AddOpt(args, "--keep-daily", std::to_string(r.keep_daily));
  if (r.keep_weekly > 0) AddOpt(args, "--keep-weekly", std::to_string(r.keep_weekly));
  if (r.keep_monthly > 0) AddOpt(args, "--keep-monthly", std::to_string(r.keep_monthly));
  AddOpt(args, "--result-file", kResultFile);
  return args;
}

json ExecutorPodSpec(const json& cluster, const storage::TargetConfig& target,
                     const std::optional<ExecutorAuth>& auth, const std::string& service_account,
                     const std::string& image, const json& args, const JobSettings& settings) {
  const std::string name = cluster["metadata"].value("name", "");
  json mounts = json::array({{{"name", "tmp"}, {"mountPath", "/tmp"}}});
  json volumes = json::array({{{"name", "tmp"}, {"emptyDir", {{"sizeLimit", "64Mi"}}}}});
  if (auth) {
    mounts.push_back({{"name", "tls-ca"}, {"mountPath", kTlsDir}, {"readOnly", true}});
    volumes.push_back(SecretVolume("tls-ca", TlsCaSecretName(name)));
    if (!auth->jwt_role.empty()) {
      mounts.push_back({{"name", "openbao-token"},
                        {"mountPath", "/var/run/secrets/tokens"},
                        {"readOnly", true}});
      volumes.push_back({{"name", "openbao-token"},
                         {"projected",
                          {{"sources", json::array({{{"serviceAccountToken",
                                                      {{"audience", settings.jwt_audience},
                                                       {"expirationSeconds", 3600},
                                                       {"path", "openbao-token"}}}}})}}}});
    } else {
      mounts.push_back({{"name", "bao-token"}, {"mountPath", kTokenDir}, {"readOnly", true}});
      volumes.push_back(SecretVolume("bao-token", auth->token_secret));
    }
  }
  if (!target.credentials_secret.empty()) {
    mounts.push_back(
        {{"name", "storage-credentials"}, {"mountPath", kCredentialsDir}, {"readOnly", true}});
    volumes.push_back(SecretVolume("storage-credentials", target.credentials_secret));
  }
  json env = json::array();
  if (!target.role_arn.empty()) {
    // IRSA as EKS's webhook sets it up: a projected token for STS and the two variables the
    // AWS SDKs (and the executor) read.
    mounts.push_back(AwsTokenMount());
    volumes.push_back(AwsTokenVolume());
    env.push_back({{"name", "AWS_ROLE_ARN"}, {"value", target.role_arn}});
    env.push_back({{"name", "AWS_WEB_IDENTITY_TOKEN_FILE"}, {"value", kAwsTokenFile}});
  }
  json container = {
      {"name", "bao-backup"},
      {"image", image.empty() ? settings.default_image : image},
      {"imagePullPolicy", "IfNotPresent"},
      {"command", json::array({"/usr/local/bin/bao-backup"})},
      {"args", args},
      {"terminationMessagePath", kResultFile},
      {"terminationMessagePolicy", "File"},
      {"volumeMounts", mounts},
      {"resources",
       {{"requests", {{"cpu", "100m"}, {"memory", "64Mi"}}}, {"limits", {{"memory", "256Mi"}}}}},
      {"securityContext",
       {{"runAsNonRoot", true},
        {"readOnlyRootFilesystem", true},
        {"allowPrivilegeEscalation", false},
        {"capabilities", {{"drop", json::array({"ALL"})}}},
        {"seccompProfile", {{"type", "RuntimeDefault"}}}}}};
  if (!env.empty()) container["env"] = env;
  return {{"serviceAccountName", service_account},
          {"automountServiceAccountToken", false},
          {"restartPolicy", "Never"},
          {"securityContext",
           {{"runAsNonRoot", true},
            {"runAsUser", 65532},
            {"runAsGroup", 65532},
            {"fsGroup", 65532},
            {"seccompProfile", {{"type", "RuntimeDefault"}}}}},
          {"containers", json::array({container})},
          {"volumes", volumes}};
}

json ExecutorJob(const json& owner, const std::string& job_name, const json& labels,
                 const json& annotations, const json& pod_spec, const JobSettings& settings) {
  return {{"apiVersion", "batch/v1"},
          {"kind", "Job"},
          {"metadata",
           {{"name", job_name},
            {"namespace", owner["metadata"].value("namespace", "default")},
            {"labels", labels},
            {"annotations", annotations},
            {"ownerReferences", json::array({OwnerReference(owner)})}}},
          {"spec",
           {{"backoffLimit", settings.backoff_limit},
            {"activeDeadlineSeconds", settings.active_deadline_seconds},
            {"ttlSecondsAfterFinished", settings.ttl_seconds_after_finished},
            {"template", {{"metadata", {{"labels", labels}}}, {"spec", pod_spec}}}}}};
}

namespace {

// The extra targets' files and credentials (see kExtraTargetsDir): annotations on the Pod
// template, a downwardAPI volume, one Secret volume per target with credentials, and IRSA's
// projected token when only an extra target names a role.
void AddExtraTargets(const std::vector<backup::ExtraTarget>& extras,
                     const std::string& primary_role, json& job) {
  if (extras.empty()) return;
  json& pod = job["spec"]["template"]["spec"];
  json& container = pod["containers"][0];
  json& annotations = job["spec"]["template"]["metadata"]["annotations"];
  json items = json::array();
  bool needs_aws_token = false;
  for (size_t i = 0; i < extras.size(); ++i) {
    const std::string n = std::to_string(i);
    json t = storage::TargetToJson(extras[i].target);
    t["name"] = extras[i].name;
    t.erase("credentialsSecretRef");
    if (!extras[i].target.credentials_secret.empty()) {
      const std::string dir = std::string(kExtraCredentialsDir) + "/" + n;
      t["credentialsDir"] = dir;
      container["volumeMounts"].push_back(
          {{"name", "extra-credentials-" + n}, {"mountPath", dir}, {"readOnly", true}});
      // Optional: a missing Secret costs this copy only (its credentials are missing, a
      // BackupCopyFailed event), where a required one would keep the Pod, and so the primary
      // backup, from starting.
      json volume = SecretVolume("extra-credentials-" + n, extras[i].target.credentials_secret);
      volume["secret"]["optional"] = true;
      pod["volumes"].push_back(std::move(volume));
    }
    needs_aws_token = needs_aws_token || !extras[i].target.role_arn.empty();
    annotations[kAnnotationExtraTargetPrefix + n] = t.dump();
    items.push_back({{"path", n + ".json"},
                     {"fieldRef",
                      {{"fieldPath", "metadata.annotations['" +
                                         std::string(kAnnotationExtraTargetPrefix) + n + "']"}}}});
  }
  container["volumeMounts"].push_back(
      {{"name", "extra-targets"}, {"mountPath", kExtraTargetsDir}, {"readOnly", true}});
  pod["volumes"].push_back({{"name", "extra-targets"}, {"downwardAPI", {{"items", items}}}});
  if (needs_aws_token && primary_role.empty()) {
    container["volumeMounts"].push_back(AwsTokenMount());
    pod["volumes"].push_back(AwsTokenVolume());
    container["env"].push_back({{"name", "AWS_WEB_IDENTITY_TOKEN_FILE"}, {"value", kAwsTokenFile}});
  }
}

json BackupJob(const json& cluster, const backup::BackupSpec& spec, const std::string& jwt_role,
               const std::string& job_name, json annotations, const std::string& file_prefix,
               const JobSettings& settings) {
  const std::string name = cluster["metadata"].value("name", "");
  json labels = {{kLabelCluster, ClusterLabelValue(name)},
                 {kLabelComponent, kComponentBackup},
                 {kLabelManagedBy, kManagedBy},
                 {"app.kubernetes.io/name", "bao-backup"}};
  annotations[kAnnotationCluster] = name;
  ExecutorAuth auth;
  auth.jwt_role = jwt_role;
  auth.token_secret = spec.token_secret_name;
  json pod = ExecutorPodSpec(cluster, spec.target, auth, BackupServiceAccountName(name), spec.image,
                             BackupArgs(cluster, spec, jwt_role, file_prefix), settings);
  pod["containers"][0]["name"] = "backup";
  json job = ExecutorJob(cluster, job_name, labels, annotations, pod, settings);
  AddExtraTargets(spec.extra_targets, spec.target.role_arn, job);
  return job;
}

}  // namespace

json BuildBackupJob(const json& cluster, const backup::BackupSpec& spec,
                    const std::string& jwt_role, TimePoint slot, bool triggered,
                    const JobSettings& settings) {
  const std::string name = cluster["metadata"].value("name", "");
  json annotations = {{kAnnotationSlot, FormatRfc3339(slot)},
                      {kAnnotationTrigger, triggered ? "true" : "false"}};
  return BackupJob(cluster, spec, jwt_role, BackupJobName(name, slot), annotations, "", settings);
}

json BuildPreUpgradeBackupJob(const json& cluster, const backup::BackupSpec& spec,
                              const std::string& jwt_role, const std::string& version,
                              int64_t attempt, TimePoint started, bool triggered,
                              const JobSettings& settings) {
  const std::string name = cluster["metadata"].value("name", "");
  json annotations = {{kAnnotationSlot, FormatRfc3339(started)},
                      {kAnnotationTrigger, triggered ? "true" : "false"},
                      {kAnnotationPreUpgradeVersion, version}};
  return BackupJob(cluster, spec, jwt_role, PreUpgradeJobName(name, version, attempt), annotations,
                   backup::kPreUpgradePrefix, settings);
}

}  // namespace bao::op
