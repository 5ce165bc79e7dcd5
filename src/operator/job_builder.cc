#include "operator/job_builder.h"

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

}  // namespace

std::string BackupJobName(const std::string& cluster, TimePoint slot) {
  // "backup-" (7) + cluster + "-" (1) + stamp (15) <= 63  =>  cluster <= 40.
  std::string part = cluster;
  if (part.size() > 40) {
    part = part.substr(0, 31) + "-" + crypto::Sha256Hex(cluster).substr(0, 8);
  }
  return "backup-" + part + "-" + SlotStamp(slot);
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

json BackupArgs(const json& cluster, const backup::BackupSpec& spec, const std::string& jwt_role) {
  const std::string name = cluster["metadata"].value("name", "");
  const std::string ns = cluster["metadata"].value("namespace", "default");
  int64_t replicas = 1;
  if (cluster.contains("spec") && cluster["spec"].contains("replicas") &&
      cluster["spec"]["replicas"].is_number_integer()) {
    replicas = std::max<int64_t>(1, cluster["spec"]["replicas"].get<int64_t>());
  }
  json args = json::array({"--log-format", "json", "backup"});
  for (int64_t i = 0; i < replicas; ++i) {
    args.push_back("--bao-addr");
    args.push_back("https://" + name + "-" + std::to_string(i) + "." + name + "." + ns +
                   ".svc:8200");
  }
  args.push_back("--bao-cacert");
  args.push_back(std::string(kTlsDir) + "/" + kTlsCaKey);
  if (!jwt_role.empty()) {
    for (const char* a : {"--jwt-role", jwt_role.c_str(), "--jwt-token-file", kJwtTokenPath,
                          "--jwt-mount", openbao::kDefaultJwtMount}) {
      args.push_back(a);
    }
  } else {
    args.push_back("--bao-token-file");
    args.push_back(std::string(kTokenDir) + "/token");
  }
  const storage::TargetConfig& t = spec.target;
  auto opt = [&](const char* flag, const std::string& value) {
    if (value.empty()) return;
    args.push_back(flag);
    args.push_back(value);
  };
  opt("--provider", t.provider);
  opt("--endpoint", t.endpoint);
  opt("--bucket", t.bucket);
  opt("--path-prefix", t.path_prefix);
  if (!t.credentials_secret.empty()) opt("--credentials-dir", kCredentialsDir);
  opt("--part-size", std::to_string(t.part_size));
  opt("--concurrency", std::to_string(t.concurrency));
  opt("--region", t.region);
  opt("--role-arn", t.role_arn);
  if (t.use_path_style) args.push_back("--use-path-style");
  opt("--gcs-project", t.gcs_project);
  opt("--storage-account", t.azure_storage_account);
  opt("--container", t.azure_container);
  if (t.insecure_skip_verify) args.push_back("--insecure-skip-verify");
  opt("--namespace", ns);
  opt("--cluster", name);
  if (spec.retention.max_count > 0) opt("--max-count", std::to_string(spec.retention.max_count));
  if (spec.retention.max_age.count() > 0) opt("--max-age", FormatDuration(spec.retention.max_age));
  if (spec.retention.keep_daily > 0) opt("--keep-daily", std::to_string(spec.retention.keep_daily));
  if (spec.retention.keep_weekly > 0) {
    opt("--keep-weekly", std::to_string(spec.retention.keep_weekly));
  }
  if (spec.retention.keep_monthly > 0) {
    opt("--keep-monthly", std::to_string(spec.retention.keep_monthly));
  }
  opt("--result-file", kResultFile);
  return args;
}

json BuildBackupJob(const json& cluster, const backup::BackupSpec& spec,
                    const std::string& jwt_role, TimePoint slot, bool triggered,
                    const JobSettings& settings) {
  const json& meta = cluster["metadata"];
  const std::string name = meta.value("name", "");
  const std::string ns = meta.value("namespace", "default");
  json labels = {{kLabelCluster, ClusterLabelValue(name)},
                 {kLabelComponent, kComponentBackup},
                 {kLabelManagedBy, kManagedBy},
                 {"app.kubernetes.io/name", "bao-backup"}};
  json mounts = json::array({{{"name", "tls-ca"}, {"mountPath", kTlsDir}, {"readOnly", true}},
                             {{"name", "tmp"}, {"mountPath", "/tmp"}}});
  json volumes = json::array({SecretVolume("tls-ca", TlsCaSecretName(name)),
                              {{"name", "tmp"}, {"emptyDir", {{"sizeLimit", "64Mi"}}}}});
  if (!jwt_role.empty()) {
    mounts.push_back(
        {{"name", "openbao-token"}, {"mountPath", "/var/run/secrets/tokens"}, {"readOnly", true}});
    volumes.push_back({{"name", "openbao-token"},
                       {"projected",
                        {{"sources", json::array({{{"serviceAccountToken",
                                                    {{"audience", settings.jwt_audience},
                                                     {"expirationSeconds", 3600},
                                                     {"path", "openbao-token"}}}}})}}}});
  } else {
    mounts.push_back({{"name", "bao-token"}, {"mountPath", kTokenDir}, {"readOnly", true}});
    volumes.push_back(SecretVolume("bao-token", spec.token_secret_name));
  }
  if (!spec.target.credentials_secret.empty()) {
    mounts.push_back(
        {{"name", "storage-credentials"}, {"mountPath", kCredentialsDir}, {"readOnly", true}});
    volumes.push_back(SecretVolume("storage-credentials", spec.target.credentials_secret));
  }
  json env = json::array();
  if (!spec.target.role_arn.empty()) {
    // IRSA as EKS's webhook sets it up: a projected token for STS and the two variables the
    // AWS SDKs (and the executor) read.
    mounts.push_back({{"name", "aws-iam-token"}, {"mountPath", kAwsTokenDir}, {"readOnly", true}});
    volumes.push_back({{"name", "aws-iam-token"},
                       {"projected",
                        {{"sources", json::array({{{"serviceAccountToken",
                                                    {{"audience", kAwsAudience},
                                                     {"expirationSeconds", 86400},
                                                     {"path", "token"}}}}})}}}});
    env.push_back({{"name", "AWS_ROLE_ARN"}, {"value", spec.target.role_arn}});
    env.push_back({{"name", "AWS_WEB_IDENTITY_TOKEN_FILE"}, {"value", kAwsTokenFile}});
  }
  json container = {
      {"name", "backup"},
      {"image", spec.image.empty() ? settings.default_image : spec.image},
      {"imagePullPolicy", "IfNotPresent"},
      {"command", json::array({"/usr/local/bin/bao-backup"})},
      {"args", BackupArgs(cluster, spec, jwt_role)},
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
  json job = {{"apiVersion", "batch/v1"},
              {"kind", "Job"},
              {"metadata",
               {{"name", BackupJobName(name, slot)},
                {"namespace", ns},
                {"labels", labels},
                {"annotations",
                 {{kAnnotationCluster, name},
                  {kAnnotationSlot, FormatRfc3339(slot)},
                  {kAnnotationTrigger, triggered ? "true" : "false"}}},
                {"ownerReferences", json::array({OwnerReference(cluster)})}}},
              {"spec",
               {{"backoffLimit", settings.backoff_limit},
                {"activeDeadlineSeconds", settings.active_deadline_seconds},
                {"ttlSecondsAfterFinished", settings.ttl_seconds_after_finished},
                {"template",
                 {{"metadata", {{"labels", labels}}},
                  {"spec",
                   {{"serviceAccountName", BackupServiceAccountName(name)},
                    {"automountServiceAccountToken", false},
                    {"restartPolicy", "Never"},
                    {"securityContext",
                     {{"runAsNonRoot", true},
                      {"runAsUser", 65532},
                      {"runAsGroup", 65532},
                      {"fsGroup", 65532},
                      {"seccompProfile", {{"type", "RuntimeDefault"}}}}},
                    {"containers", json::array({container})},
                    {"volumes", volumes}}}}}}}};
  return job;
}

}  // namespace bao::op
