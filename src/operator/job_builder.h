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

// Labels put on every backup Job (and its Pods through the template).
constexpr const char* kLabelCluster = "openbao.org/cluster";
constexpr const char* kLabelComponent = "app.kubernetes.io/component";
constexpr const char* kLabelManagedBy = "app.kubernetes.io/managed-by";
constexpr const char* kComponentBackup = "backup";
constexpr const char* kManagedBy = "bao-backup-operator";
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

// "<cluster>-tls-ca": the Secret with the CA of the cluster's TLS certificates, key kTlsCaKey.
std::string TlsCaSecretName(const std::string& cluster);
constexpr const char* kTlsCaKey = "ca.crt";

// "<cluster>-backup-serviceaccount".
std::string BackupServiceAccountName(const std::string& cluster);

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
