// spec.backup (backup/spec.h ParseBackupSpec) and its target (storage/target.h).
//
// Input: one flags byte (bit 0: require the schedule, bit 1: validate the target), then the
// JSON of spec.backup.
// Properties: errors are kInvalidArgument; what is accepted with a check is accepted without
// it, the same; the retention is ParseRetention's; an accepted endpoint has nothing that
// UrlForDisplay (common/redact.h) would hide as a credential (user-info, a query, a fragment);
// the target survives TargetToJson and
// ParseTarget unchanged (the operator passes it to its Jobs that way).
#include <cstdint>
#include <string_view>

#include "backup/spec.h"
#include "check.h"
#include "common/redact.h"
#include "storage/target.h"

namespace {

using bao::storage::TargetConfig;

bool SameTarget(const TargetConfig& a, const TargetConfig& b) {
  return a.provider == b.provider && a.endpoint == b.endpoint && a.bucket == b.bucket &&
         a.path_prefix == b.path_prefix && a.credentials_secret == b.credentials_secret &&
         a.part_size == b.part_size && a.concurrency == b.concurrency && a.region == b.region &&
         a.role_arn == b.role_arn && a.use_path_style == b.use_path_style &&
         a.gcs_project == b.gcs_project && a.azure_storage_account == b.azure_storage_account &&
         a.azure_container == b.azure_container && a.insecure_skip_verify == b.insecure_skip_verify;
}

bool SameRetention(const bao::backup::RetentionPolicy& a, const bao::backup::RetentionPolicy& b) {
  return a.max_count == b.max_count && a.max_age == b.max_age && a.keep_daily == b.keep_daily &&
         a.keep_weekly == b.keep_weekly && a.keep_monthly == b.keep_monthly;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool require_schedule = data[0] & 1, validate_target = data[0] & 2;
  nlohmann::json j = nlohmann::json::parse(
      std::string_view(reinterpret_cast<const char*>(data + 1), size - 1), nullptr, false);
  if (j.is_discarded()) return 0;
  const std::string path = "spec.backup";
  bao::Result<bao::backup::BackupSpec> spec =
      bao::backup::ParseBackupSpec(j, path, require_schedule, validate_target);
  if (!spec.ok()) {
    FUZZ_CHECK(spec.status().code() == bao::Code::kInvalidArgument);
    return 0;
  }
  bao::Result<bao::backup::BackupSpec> loose = bao::backup::ParseBackupSpec(j, path, false, false);
  FUZZ_CHECK(loose.ok());
  FUZZ_CHECK(loose->schedule == spec->schedule && SameTarget(loose->target, spec->target) &&
             SameRetention(loose->retention, spec->retention) &&
             loose->jwt_auth_role == spec->jwt_auth_role &&
             loose->token_secret_name == spec->token_secret_name && loose->image == spec->image);
  if (require_schedule) FUZZ_CHECK(!spec->schedule.empty());
  if (j.contains("retention")) {
    bao::Result<bao::backup::RetentionPolicy> r =
        bao::backup::ParseRetention(j["retention"], path + ".retention");
    FUZZ_CHECK(r.ok() && SameRetention(*r, spec->retention));
  }
  (void)bao::backup::EffectiveJwtRole(*spec, true);
  FUZZ_CHECK(bao::UrlForDisplay(spec->target.endpoint) == spec->target.endpoint);

  nlohmann::json target_json = bao::storage::TargetToJson(spec->target);
  bao::Result<TargetConfig> target = bao::storage::ParseTarget(target_json, path + ".target");
  FUZZ_CHECK(target.ok());
  FUZZ_CHECK(SameTarget(*target, spec->target));
  if (validate_target) {
    FUZZ_CHECK(bao::storage::ValidateTarget(*target, path + ".target").ok());
  }
  return 0;
}
