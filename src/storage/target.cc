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
  BAO_RETURN_IF_ERROR(
      CheckKnownFields(j, path,
                       {"provider", "endpoint", "bucket", "pathPrefix", "credentialsSecretRef",
                        "partSize", "concurrency", "region", "roleArn", "usePathStyle",
                        "insecureSkipVerify", "gcs", "azure", "credentialsDir"}));
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
  if (j.contains("gcs") && !j["gcs"].is_null()) {
    if (!j["gcs"].is_object()) return WrongType(path + ".gcs", "an object");
    BAO_RETURN_IF_ERROR(CheckKnownFields(j["gcs"], path + ".gcs", {"project"}));
    BAO_RETURN_IF_ERROR(GetString(j["gcs"], "project", path + ".gcs", &t.gcs_project));
  }
  if (j.contains("azure") && !j["azure"].is_null()) {
    if (!j["azure"].is_object()) return WrongType(path + ".azure", "an object");
    BAO_RETURN_IF_ERROR(
        CheckKnownFields(j["azure"], path + ".azure", {"storageAccount", "container"}));
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
  return Status::Ok();
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
  if (!t.gcs_project.empty()) j["gcs"] = {{"project", t.gcs_project}};
  if (!t.azure_storage_account.empty() || !t.azure_container.empty()) {
    j["azure"] = json::object();
    if (!t.azure_storage_account.empty()) j["azure"]["storageAccount"] = t.azure_storage_account;
    if (!t.azure_container.empty()) j["azure"]["container"] = t.azure_container;
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
