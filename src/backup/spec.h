// The contract's `spec.backup` (OpenBaoCluster), parsed from JSON (Kubernetes) or from YAML
// converted to JSON (CLI --config, the standalone scheduler).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backup/retention.h"
#include "common/status.h"
#include "storage/target.h"

namespace bao::backup {

constexpr const char* kOidcBackupRole = "openbao-operator-backup";
// The largest retention.keepDaily/keepWeekly/keepMonthly (the CRD has the same maximum).
constexpr int64_t kMaxKeepPerPeriod = 100000;

// The most extraTargets a backup may name.
constexpr size_t kMaxExtraTargets = 4;

// One of spec.backup.extraTargets: a BackupTarget with an optional name (default "extra-N", N
// counting from 1), by which results, status and events report it.
struct ExtraTarget {
  std::string name;
  storage::TargetConfig target;
};

struct BackupSpec {
  std::string schedule;
  storage::TargetConfig target;
  std::vector<ExtraTarget> extra_targets;  // further copies of every backup
  std::string jwt_auth_role;
  std::string token_secret_name;  // tokenSecretRef.name
  RetentionPolicy retention;
  std::string image;
};

// Parses `j` (the object at `path`, e.g. "spec.backup"). Checks types and the contract's
// rules for each field it finds (retention.maxCount >= 0, retention.maxAge a duration, an
// endpoint without credentials, the target's rules when `validate_target`); the schedule is
// required when `require_schedule`. Errors are kInvalidArgument naming the field path.
Result<BackupSpec> ParseBackupSpec(const nlohmann::json& j, const std::string& path,
                                   bool require_schedule, bool validate_target,
                                   const std::string& default_provider = "s3");

// Parses one extra target (an element of extraTargets, or the YAML file of --extra-target) at
// `path`; `index` (from 0) gives the default name. Checks the name (a lower-case DNS label, not
// "primary") and, when `validate_target`, the target's rules. kInvalidArgument naming the field.
Result<ExtraTarget> ParseExtraTarget(const nlohmann::json& j, const std::string& path, size_t index,
                                     bool validate_target);

// Checks a list of extra targets together: at most kMaxExtraTargets, names unique. `path` names
// the list.
Status CheckExtraTargets(const std::vector<ExtraTarget>& targets, const std::string& path);

// Refuses a storage endpoint that carries credentials: user-info ("https://user:password@host")
// or a query or fragment (a SAS, a pre-signed signature). Such a URL would be copied wherever
// the endpoint goes (the operator's Job arguments, messages); credentials belong in the
// credentials Secret or directory. The error names `target_path`.endpoint, never the value.
// An empty endpoint is fine.
Status CheckEndpointHasNoCredentials(const std::string& endpoint, const std::string& target_path);

// The JWT role that applies: the explicit one, else the OIDC-implied default when
// `oidc_enabled`, else "".
std::string EffectiveJwtRole(const BackupSpec& spec, bool oidc_enabled);

}  // namespace bao::backup
