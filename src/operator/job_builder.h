// Builds the backup Job for one OpenBaoCluster: its name (derived from the slot, so a repeated
// reconcile names the same Job), the executor's arguments, mounts and security settings as
// fixed by the contract (docs/operator.md lists them). Pure functions; thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "backup/spec.h"
#include "common/time.h"

namespace bao::op {

// Paths the executor sees inside the Job's container (contract "Paths the anchor mounts").
constexpr const char* kJwtTokenPath = "/var/run/secrets/tokens/openbao-token";
constexpr const char* kTokenDir = "/etc/bao/backup/token";
constexpr const char* kCredentialsDir = "/etc/bao/backup/credentials";
constexpr const char* kTlsDir = "/etc/bao/tls";
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

// The executor's argv after the program name, for `spec` of cluster `cluster` (the whole
// OpenBaoCluster object: name, namespace, spec.replicas are read). `jwt_role` is the effective
// JWT role ("" = token Secret).
nlohmann::json BackupArgs(const nlohmann::json& cluster, const backup::BackupSpec& spec,
                          const std::string& jwt_role);

// The whole batch/v1 Job, owned by `cluster` (controller owner reference).
nlohmann::json BuildBackupJob(const nlohmann::json& cluster, const backup::BackupSpec& spec,
                              const std::string& jwt_role, TimePoint slot, bool triggered,
                              const JobSettings& settings);

}  // namespace bao::op
