#include "storage/target.h"

#include "common/json_fields.h"
#include "storage/azure_store.h"
#include "storage/errors.h"
#include "storage/file_store.h"
#include "storage/gcs_store.h"
#include "storage/s3_store.h"

namespace bao::storage {
namespace {

using nlohmann::json;

// A malformed target: a configuration error (Stage::kConfig, Reason::kInvalidValue).
Status Invalid(std::string message) {
  return ConfigError(Reason::kInvalidValue, std::move(message));
}

Status WrongType(const std::string& path, const char* want) {
  return Invalid(path + ": must be " + want);
}

std::string StripSlashes(std::string s) {
  while (!s.empty() && s.front() == '/') s.erase(s.begin());
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

}  // namespace

std::string TargetConfig::FullKey(const std::string& relative) const {
  return path_prefix.empty() ? relative : path_prefix + "/" + relative;
}

Result<TargetConfig> ParseTarget(const json& j, const std::string& path,
                                 const std::string& default_provider) {
  if (!j.is_object()) return WrongType(path, "an object");
  // credentialsDir: local credentials (the standalone scheduler, --config, --extra-target).
  BAO_RETURN_IF_ERROR(CheckKnownFields(
      j, path,
      {"provider", "endpoint", "bucket", "pathPrefix", "credentialsSecretRef", "partSize",
       "concurrency", "region", "roleArn", "usePathStyle", "insecureSkipVerify", "gcs", "azure",
       "credentialsDir", "sse", "kmsKeyId", "objectLock"}));
  TargetConfig t;
  t.provider = default_provider;
  BAO_RETURN_IF_ERROR(GetString(j, "provider", path, &t.provider));
  BAO_RETURN_IF_ERROR(GetString(j, "endpoint", path, &t.endpoint));
  BAO_RETURN_IF_ERROR(GetString(j, "bucket", path, &t.bucket));
  BAO_RETURN_IF_ERROR(GetString(j, "pathPrefix", path, &t.path_prefix));
  BAO_RETURN_IF_ERROR(GetString(j, "credentialsDir", path, &t.credentials_dir));
  t.path_prefix = StripSlashes(t.path_prefix);
  if (j.contains("credentialsSecretRef") && !j["credentialsSecretRef"].is_null()) {
    const json& ref = j["credentialsSecretRef"];
    if (!ref.is_object()) return WrongType(path + ".credentialsSecretRef", "an object");
    BAO_RETURN_IF_ERROR(
        GetString(ref, "name", path + ".credentialsSecretRef", &t.credentials_secret));
    if (ref.contains("namespace")) {
      return Invalid(path +
                     ".credentialsSecretRef.namespace: cross-namespace Secret references "
                     "are not allowed; the Secret must be in the resource's namespace")
          .WithReason(Reason::kCrossNamespace);
    }
    BAO_RETURN_IF_ERROR(CheckKnownFields(ref, path + ".credentialsSecretRef", {"name"}));
  }
  int64_t part_size = static_cast<int64_t>(t.part_size);
  BAO_RETURN_IF_ERROR(GetInt(j, "partSize", path, &part_size));
  if (part_size < 0) return Invalid(path + ".partSize: must not be negative");
  t.part_size = static_cast<uint64_t>(part_size);
  int64_t concurrency = t.concurrency;
  BAO_RETURN_IF_ERROR(GetInt(j, "concurrency", path, &concurrency));
  if (concurrency < 0 || concurrency > 1000) {
    return Invalid(path + ".concurrency: must be between 1 and 10");
  }
  t.concurrency = static_cast<int>(concurrency);
  BAO_RETURN_IF_ERROR(GetString(j, "region", path, &t.region));
  BAO_RETURN_IF_ERROR(GetString(j, "roleArn", path, &t.role_arn));
  BAO_RETURN_IF_ERROR(GetBool(j, "usePathStyle", path, &t.use_path_style));
  BAO_RETURN_IF_ERROR(GetBool(j, "insecureSkipVerify", path, &t.insecure_skip_verify));
  BAO_RETURN_IF_ERROR(GetString(j, "sse", path, &t.sse));
  BAO_RETURN_IF_ERROR(GetString(j, "kmsKeyId", path, &t.kms_key_id));
  if (j.contains("objectLock") && !j["objectLock"].is_null()) {
    const json& lock = j["objectLock"];
    const std::string where = path + ".objectLock";
    if (!lock.is_object()) return WrongType(where, "an object");
    BAO_RETURN_IF_ERROR(CheckKnownFields(lock, where, {"mode", "retainDays"}));
    BAO_RETURN_IF_ERROR(GetString(lock, "mode", where, &t.object_lock_mode));
    int64_t days = 0;
    BAO_RETURN_IF_ERROR(GetInt(lock, "retainDays", where, &days));
    if (days < 0 || days > kMaxRetainDays) {
      return Invalid(where + ".retainDays: " + std::to_string(days) + " is outside 1.." +
                     std::to_string(kMaxRetainDays));
    }
    t.object_lock_retain_days = static_cast<int>(days);
  }
  if (j.contains("gcs") && !j["gcs"].is_null()) {
    if (!j["gcs"].is_object()) return WrongType(path + ".gcs", "an object");
    BAO_RETURN_IF_ERROR(CheckKnownFields(j["gcs"], path + ".gcs", {"project", "kmsKeyName"}));
    BAO_RETURN_IF_ERROR(GetString(j["gcs"], "project", path + ".gcs", &t.gcs_project));
    BAO_RETURN_IF_ERROR(GetString(j["gcs"], "kmsKeyName", path + ".gcs", &t.gcs_kms_key_name));
  }
  if (j.contains("azure") && !j["azure"].is_null()) {
    if (!j["azure"].is_object()) return WrongType(path + ".azure", "an object");
    BAO_RETURN_IF_ERROR(CheckKnownFields(j["azure"], path + ".azure",
                                         {"storageAccount", "container", "encryptionScope"}));
    BAO_RETURN_IF_ERROR(
        GetString(j["azure"], "encryptionScope", path + ".azure", &t.azure_encryption_scope));
    BAO_RETURN_IF_ERROR(
        GetString(j["azure"], "storageAccount", path + ".azure", &t.azure_storage_account));
    BAO_RETURN_IF_ERROR(GetString(j["azure"], "container", path + ".azure", &t.azure_container));
  }
  return t;
}

Status ValidateTarget(const TargetConfig& t, const std::string& path) {
  if (t.provider != "file" && t.provider != "s3" && t.provider != "gcs" && t.provider != "azure") {
    return Invalid(path + ".provider: \"" + t.provider +
                   "\" is not one of s3, gcs, azure (or file for local directories)");
  }
  if (t.provider == "azure") {
    if (t.azure_storage_account.empty()) {
      return Invalid(path + ".azure.storageAccount: required for the azure provider");
    }
    if (t.bucket.empty() && t.azure_container.empty()) {
      return Invalid(path + ".bucket: required (the Azure container), or set " + path +
                     ".azure.container");
    }
  } else if (t.bucket.empty()) {
    return Invalid(path + ".bucket: required" +
                   std::string(t.provider == "file" ? " (the root directory)" : ""));
  }
  if (t.provider == "s3" && t.endpoint.empty()) {
    return Invalid(path +
                   ".endpoint: required for the s3 provider (e.g. "
                   "https://s3.amazonaws.com or a MinIO URL)");
  }
  if (t.part_size < kMinPartSize) {
    return Invalid(path + ".partSize: " + std::to_string(t.part_size) +
                   " is below the minimum of " + std::to_string(kMinPartSize));
  }
  if (t.concurrency < 1 || t.concurrency > 10) {
    return Invalid(path + ".concurrency: " + std::to_string(t.concurrency) + " is outside 1..10");
  }
  if (!t.sse.empty()) {
    if (t.provider != "s3") {
      return Invalid(path + ".sse: only for the s3 provider (use " +
                     (t.provider == "gcs"     ? path + ".gcs.kmsKeyName"
                      : t.provider == "azure" ? path + ".azure.encryptionScope"
                                              : std::string("nothing: the file provider")) +
                     " instead)");
    }
    if (t.sse != "AES256" && t.sse != "aws:kms") {
      return Invalid(path + ".sse: \"" + t.sse + "\" is not AES256 or aws:kms");
    }
  }
  if (!t.kms_key_id.empty() && t.sse != "aws:kms") {
    return Invalid(path + ".kmsKeyId: needs " + path + ".sse: aws:kms (set it, or drop " + path +
                   ".kmsKeyId)");
  }
  if (!t.gcs_kms_key_name.empty() && t.provider != "gcs") {
    return Invalid(path + ".gcs.kmsKeyName: only for the gcs provider" +
                   std::string(t.provider == "s3" ? " (use sse and kmsKeyId for s3)" : ""));
  }
  if (!t.azure_encryption_scope.empty() && t.provider != "azure") {
    return Invalid(path + ".azure.encryptionScope: only for the azure provider" +
                   std::string(t.provider == "s3" ? " (use sse and kmsKeyId for s3)" : ""));
  }
  if (!t.object_lock_mode.empty() || t.object_lock_retain_days != 0) {
    const std::string where = path + ".objectLock";
    if (t.provider == "file") {
      return Invalid(where + ": not supported by the file provider (use s3, gcs or azure)");
    }
    if (S3LockMode(t.object_lock_mode).empty()) {
      return Invalid(where + ".mode: \"" + t.object_lock_mode +
                     "\" is not GOVERNANCE or COMPLIANCE (or Unlocked / Locked)");
    }
    if (t.object_lock_retain_days < 1 || t.object_lock_retain_days > kMaxRetainDays) {
      return Invalid(where + ".retainDays: " + std::to_string(t.object_lock_retain_days) +
                     " is outside 1.." + std::to_string(kMaxRetainDays) +
                     " (required with a mode)");
    }
  }
  return Status::Ok();
}

std::string S3LockMode(const std::string& mode) {
  if (mode == "GOVERNANCE" || mode == "Unlocked") return "GOVERNANCE";
  if (mode == "COMPLIANCE" || mode == "Locked") return "COMPLIANCE";
  return "";
}

std::string UnlockedOrLocked(const std::string& mode) {
  std::string s3 = S3LockMode(mode);
  if (s3 == "GOVERNANCE") return "Unlocked";
  if (s3 == "COMPLIANCE") return "Locked";
  return "";
}

json TargetToJson(const TargetConfig& t) {
  json j;
  j["provider"] = t.provider;
  if (!t.endpoint.empty()) j["endpoint"] = t.endpoint;
  j["bucket"] = t.bucket;
  if (!t.path_prefix.empty()) j["pathPrefix"] = t.path_prefix;
  if (!t.credentials_secret.empty()) j["credentialsSecretRef"] = {{"name", t.credentials_secret}};
  j["partSize"] = t.part_size;
  j["concurrency"] = t.concurrency;
  if (!t.region.empty()) j["region"] = t.region;
  if (!t.role_arn.empty()) j["roleArn"] = t.role_arn;
  if (t.use_path_style) j["usePathStyle"] = true;
  if (!t.gcs_project.empty() || !t.gcs_kms_key_name.empty()) {
    j["gcs"] = json::object();
    if (!t.gcs_project.empty()) j["gcs"]["project"] = t.gcs_project;
    if (!t.gcs_kms_key_name.empty()) j["gcs"]["kmsKeyName"] = t.gcs_kms_key_name;
  }
  if (!t.azure_storage_account.empty() || !t.azure_container.empty()) {
    j["azure"] = json::object();
    if (!t.azure_storage_account.empty()) j["azure"]["storageAccount"] = t.azure_storage_account;
    if (!t.azure_container.empty()) j["azure"]["container"] = t.azure_container;
  }
  if (!t.azure_encryption_scope.empty()) {
    if (!j.contains("azure")) j["azure"] = json::object();
    j["azure"]["encryptionScope"] = t.azure_encryption_scope;
  }
  if (!t.sse.empty()) j["sse"] = t.sse;
  if (!t.kms_key_id.empty()) j["kmsKeyId"] = t.kms_key_id;
  if (!t.object_lock_mode.empty() || t.object_lock_retain_days != 0) {
    j["objectLock"] = {{"mode", t.object_lock_mode}, {"retainDays", t.object_lock_retain_days}};
  }
  if (t.insecure_skip_verify) j["insecureSkipVerify"] = true;
  return j;
}

Result<std::unique_ptr<Store>> OpenStore(const TargetConfig& target, const StoreOptions& options) {
  BAO_RETURN_IF_ERROR(ValidateTarget(target, "target"));
  if (target.provider == "file") return OpenFileStore(target.bucket);
  if (target.provider == "gcs") {
    GcsOptions gcs;
    gcs.stall_time = options.stall_time;
    return OpenGcsStore(target, gcs);
  }
  if (target.provider == "s3") {
    S3Options s3;
    s3.stall_time = options.stall_time;
    BAO_ASSIGN_OR_RETURN(std::unique_ptr<S3Store> store, OpenS3StoreWithOptions(target, s3));
    return std::unique_ptr<Store>(std::move(store));
  }
  if (target.provider == "azure") {
    AzureOptions azure;
    azure.stall_time = options.stall_time;
    return OpenAzureStore(target, azure);
  }
  return FailedPrecondition("the " + target.provider +
                            " provider is not available in this build yet");
}

}  // namespace bao::storage
