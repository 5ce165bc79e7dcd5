// Builds the backup Job for one OpenBaoCluster: its name (derived from the slot, so a repeated
// reconcile names the same Job), the executor's arguments, mounts and security settings as
// fixed by the contract (docs/operator.md lists them). Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "backup/spec.h"
#include "common/time.h"

namespace bao::op {

// Paths the executor sees inside the Job's container (contract "Paths the anchor mounts").
constexpr const char* kJwtTokenPath = "/var/run/secrets/tokens/openbao-token";
constexpr const char* kTokenDir = "/etc/bao/backup/token";
constexpr const char* kCredentialsDir = "/etc/bao/backup/credentials";
constexpr const char* kTlsDir = "/etc/bao/tls";
// spec.backup.extraTargets: target N's BackupTarget (JSON) is the Pod annotation
// kAnnotationExtraTargetPrefix + N, projected by a downwardAPI volume into
// kExtraTargetsDir/N.json (the executor's --extra-target file); its credentials Secret is
// mounted at kExtraCredentialsDir/N.
constexpr const char* kExtraTargetsDir = "/etc/bao/backup/extra-targets";
constexpr const char* kExtraCredentialsDir = "/etc/bao/backup/extra-credentials";
constexpr const char* kAnnotationExtraTargetPrefix = "openbao.org/extra-target-";
constexpr const char* kResultFile = "/dev/termination-log";
// IRSA (target.roleArn): the projected token EKS would mount, with the audience STS expects.
constexpr const char* kAwsTokenDir = "/var/run/secrets/eks.amazonaws.com/serviceaccount";
constexpr const char* kAwsTokenFile = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token";
constexpr const char* kAwsAudience = "sts.amazonaws.com";

// Labels put on every backup Job (and its Pods through the template).
constexpr const char* kLabelCluster = "openbao.org/cluster";
constexpr const char* kLabelComponent = "app.kubernetes.io/component";
constexpr const char* kLabelManagedBy = "app.kubernetes.io/managed-by";
constexpr const char* kComponentBackup = "backup";
constexpr const char* kManagedBy = "bao-backup-operator";
// The cluster's full name on Jobs (the label value may be shortened, see ClusterLabelValue).
constexpr const char* kAnnotationCluster = "openbao.org/cluster";
// Job annotations: the slot (RFC 3339) the Job serves and whether it was a manual trigger.
constexpr const char* kAnnotationSlot = "openbao.org/backup-slot";
constexpr const char* kAnnotationTrigger = "openbao.org/trigger-backup";
// On a pre-upgrade backup Job: the spec.version it is the recovery point for.
constexpr const char* kAnnotationPreUpgradeVersion = "openbao.org/pre-upgrade-version";

struct JobSettings {
  std::string default_image;                      // used when spec.backup.image is empty
  std::string jwt_audience = "openbao-internal";  // OPENBAO_JWT_AUDIENCE
  int backoff_limit = 0;  // the operator retries at the next slot, not inside the Job
  int active_deadline_seconds = 3600;
  int ttl_seconds_after_finished = 86400;
};

// "backup-<cluster>-<yyyymmdd-hhmmss>" for the slot (UTC). The cluster part is shortened (with
// a hash suffix keeping names distinct) so the name stays a DNS-1123 label of <= 63 characters.
std::string BackupJobName(const std::string& cluster, TimePoint slot);

// The pre-upgrade backup Job for target `version`: "backup-<cluster>-pre-<8 hex of the
// version's SHA-256>", and for a retry (attempt >= 2) "...-<attempt>". It derives only from
// the cluster, the version and the attempt, so a repeated reconcile names the same Job. The
// cluster part is shortened with a hash past 36 characters: the name stays a DNS-1123 label of
// <= 63 characters for attempts up to 99999.
std::string PreUpgradeJobName(const std::string& cluster, const std::string& version,
                              int64_t attempt = 1);

// The value of kLabelCluster for `cluster`: the name itself when it fits a label value (<= 63
// characters), else its first 54 characters, "-" and 8 hex digits of its SHA-256, so long
// names stay distinct and every value is a valid label value.
std::string ClusterLabelValue(const std::string& cluster);

// The label selector that finds the backup Jobs of `cluster`.
std::string BackupJobSelector(const std::string& cluster);

// The longest cluster name whose derived object names (the ServiceAccount
// "<cluster>-backup-serviceaccount") are valid; longer names are refused with a condition.
constexpr size_t kMaxClusterNameLength = 253 - 22;

// "<cluster>-tls-ca": the Secret with the CA of the cluster's TLS certificates, key kTlsCaKey.
std::string TlsCaSecretName(const std::string& cluster);
constexpr const char* kTlsCaKey = "ca.crt";

// "<cluster>-backup-serviceaccount".
std::string BackupServiceAccountName(const std::string& cluster);

// The controller owner reference to `cluster` (blockOwnerDeletion: the operator's RBAC needs
// update on openbaoclusters/finalizers for that, where OwnerReferencesPermissionEnforcement
// is enabled).
nlohmann::json OwnerReference(const nlohmann::json& cluster);

// How an executor Job authenticates to OpenBao: a JWT role (projected token) or, when empty, a
// token Secret.
struct ExecutorAuth {
  std::string jwt_role;
  std::string token_secret;
};

// The OpenBao part of an executor's argv: --bao-addr for each replica of `cluster` (the whole
// OpenBaoCluster object: name, namespace, spec.replicas are read), --bao-cacert, and the auth
// flags.
nlohmann::json OpenBaoArgs(const nlohmann::json& cluster, const ExecutorAuth& auth);

// The storage part: provider, endpoint, bucket, credentials directory and the provider options.
nlohmann::json TargetArgs(const storage::TargetConfig& target);

// The backup executor's argv after the program name, for `spec` of cluster `cluster`.
// `jwt_role` is the effective JWT role ("" = token Secret); a `file_prefix` ("pre-upgrade-")
// goes before the timestamp of the object's name (--file-prefix).
nlohmann::json BackupArgs(const nlohmann::json& cluster, const backup::BackupSpec& spec,
                          const std::string& jwt_role, const std::string& file_prefix = "");

// The Pod spec every executor Job shares: `service_account`, no automounted API token, the
// restricted security context, /tmp, the storage credentials Secret of `target` (and IRSA for
// target.roleArn); with `auth` also the cluster's TLS CA and the OpenBao token (projected or
// Secret). One container running /usr/local/bin/bao-backup `args`, its termination message
// read from kResultFile. `image` "" = settings.default_image.
nlohmann::json ExecutorPodSpec(const nlohmann::json& cluster, const storage::TargetConfig& target,
                               const std::optional<ExecutorAuth>& auth,
                               const std::string& service_account, const std::string& image,
                               const nlohmann::json& args, const JobSettings& settings);

// A batch/v1 Job running `pod_spec`, owned by `owner` (controller reference), with the limits of
// `settings`; `labels` go on the Job and its Pods.
nlohmann::json ExecutorJob(const nlohmann::json& owner, const std::string& job_name,
                           const nlohmann::json& labels, const nlohmann::json& annotations,
                           const nlohmann::json& pod_spec, const JobSettings& settings);

// The whole backup Job, owned by `cluster`.
nlohmann::json BuildBackupJob(const nlohmann::json& cluster, const backup::BackupSpec& spec,
                              const std::string& jwt_role, TimePoint slot, bool triggered,
                              const JobSettings& settings);

// The pre-upgrade backup Job for target `version` (attempt `attempt`, started at `started`):
// the backup Job's shape, named PreUpgradeJobName(), annotated kAnnotationPreUpgradeVersion,
// its object named "pre-upgrade-<timestamp>-<id>.snap" (--file-prefix), retention as usual.
nlohmann::json BuildPreUpgradeBackupJob(const nlohmann::json& cluster,
                                        const backup::BackupSpec& spec, const std::string& jwt_role,
                                        const std::string& version, int64_t attempt,
                                        TimePoint started, bool triggered,
                                        const JobSettings& settings);

}  // namespace bao::op
