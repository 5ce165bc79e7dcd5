#include "cli/settings.h"

#include <cstdlib>

#include "common/redact.h"
#include "common/yaml_json.h"

namespace bao::cli {
namespace {

std::vector<std::string> SplitCommas(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string part = text.substr(start, comma - start);
    while (!part.empty() && part.front() == ' ') part.erase(part.begin());
    while (!part.empty() && part.back() == ' ') part.pop_back();
    if (!part.empty()) out.push_back(part);
    start = comma + 1;
  }
  return out;
}

Result<bool> ParseBoolEnv(const std::string& name, const std::string& value) {
  if (value == "1" || value == "true" || value == "TRUE" || value == "True") return true;
  if (value == "0" || value == "false" || value == "FALSE" || value == "False" || value.empty()) {
    return false;
  }
  return InvalidArgument("environment variable " + name + "=\"" + value +
                         "\" is not a boolean (use true or false)");
}

template <typename T>
void Override(const std::optional<T>& flag, T* field) {
  if (flag.has_value()) *field = *flag;
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

Result<Settings> ResolveSettings(const Flags& flags, const EnvLookup& env) {
  Settings s;
  // 1. Defaults and the config file (shape of spec.backup).
  if (!flags.config_file.empty()) {
    BAO_ASSIGN_OR_RETURN(nlohmann::json j, ReadYamlFile(flags.config_file));
    if (j.is_null()) j = nlohmann::json::object();
    Result<backup::BackupSpec> spec =
        backup::ParseBackupSpec(j, "config", /*require_schedule=*/false,
                                /*validate_target=*/false, /*default_provider=*/"s3");
    if (!spec.ok()) return spec.status().WithContext(flags.config_file);
    s.spec = *spec;
    if (!j.contains("target")) s.spec.target.provider = "file";
  } else {
    s.spec.target.provider = "file";
  }
  s.auth.jwt_role = s.spec.jwt_auth_role;

  // 2. Environment.
  if (auto v = env("BAO_ADDR")) s.connection.addresses = SplitCommas(*v);
  if (auto v = env("BAO_CACERT")) s.connection.tls.ca_file = *v;
  if (auto v = env("BAO_SKIP_VERIFY")) {
    BAO_ASSIGN_OR_RETURN(s.connection.tls.insecure_skip_verify,
                         ParseBoolEnv("BAO_SKIP_VERIFY", *v));
  }
  if (auto v = env("BAO_TOKEN"); v && !v->empty()) {
    RegisterSecret(*v);
    s.auth.token = *v;
  }

  // 3. Flags.
  if (!flags.bao_addr.empty()) {
    s.connection.addresses.clear();
    for (const std::string& a : flags.bao_addr) {
      for (std::string& part : SplitCommas(a)) s.connection.addresses.push_back(part);
    }
  }
  Override(flags.bao_cacert, &s.connection.tls.ca_file);
  Override(flags.bao_skip_verify, &s.connection.tls.insecure_skip_verify);
  if (flags.bao_token_file) {
    BAO_ASSIGN_OR_RETURN(s.auth.token,
                         openbao::ReadSecretFile(*flags.bao_token_file, "--bao-token-file token"));
  }
  if (flags.bao_token) {
    RegisterSecret(*flags.bao_token);
    s.auth.token = *flags.bao_token;
  }
  Override(flags.jwt_role, &s.auth.jwt_role);
  Override(flags.jwt_token_file, &s.auth.jwt_token_file);
  Override(flags.jwt_mount, &s.auth.jwt_mount);
  if (flags.leader_wait) {
    Result<Duration> d = ParseDuration(*flags.leader_wait);
    if (!d.ok()) return InvalidArgument("--leader-wait: " + d.status().message());
    s.connection.leader_wait = *d;
  }
  if (flags.source_stall_timeout) {
    Result<Duration> d = ParseDuration(*flags.source_stall_timeout);
    if (!d.ok() || *d < std::chrono::seconds(1)) {
      return InvalidArgument("--source-stall-timeout: " +
                             (d.ok() ? std::string("must be at least 1s") : d.status().message()));
    }
    s.connection.stall_timeout = std::chrono::duration_cast<std::chrono::seconds>(*d);
  }
  if (flags.storage_stall_timeout) {
    Result<Duration> d = ParseDuration(*flags.storage_stall_timeout);
    if (!d.ok() || *d < std::chrono::seconds(1)) {
      return InvalidArgument("--storage-stall-timeout: " +
                             (d.ok() ? std::string("must be at least 1s") : d.status().message()));
    }
    s.store.stall_time = *d;
  }
  // The contract: a token is used only when no JWT role applies.
  if (!s.auth.jwt_role.empty()) s.auth.token.clear();

  storage::TargetConfig& t = s.spec.target;
  Override(flags.provider, &t.provider);
  Override(flags.endpoint, &t.endpoint);
  Override(flags.bucket, &t.bucket);
  if (flags.path_prefix) {
    t.path_prefix = *flags.path_prefix;
    while (!t.path_prefix.empty() && t.path_prefix.front() == '/') t.path_prefix.erase(0, 1);
    while (!t.path_prefix.empty() && t.path_prefix.back() == '/') t.path_prefix.pop_back();
  }
  Override(flags.credentials_dir, &t.credentials_dir);
  Override(flags.part_size, &t.part_size);
  Override(flags.concurrency, &t.concurrency);
  Override(flags.region, &t.region);
  Override(flags.role_arn, &t.role_arn);
  Override(flags.use_path_style, &t.use_path_style);
  Override(flags.gcs_project, &t.gcs_project);
  Override(flags.storage_account, &t.azure_storage_account);
  Override(flags.container, &t.azure_container);
  Override(flags.insecure_skip_verify, &t.insecure_skip_verify);
  Override(flags.sse, &t.sse);
  Override(flags.kms_key_id, &t.kms_key_id);
  Override(flags.kms_key_name, &t.gcs_kms_key_name);
  Override(flags.encryption_scope, &t.azure_encryption_scope);
  Override(flags.object_lock_mode, &t.object_lock_mode);
  Override(flags.object_lock_retain_days, &t.object_lock_retain_days);
  Override(flags.ns, &s.ns);
  Override(flags.cluster, &s.cluster);
  if (!flags.extra_target_files.empty()) {
    s.spec.extra_targets.clear();
    for (const std::string& file : flags.extra_target_files) {
      Result<nlohmann::json> j = ReadYamlFile(file);
      if (!j.ok()) return j.status().WithContext("--extra-target");
      Result<backup::ExtraTarget> extra = backup::ParseExtraTarget(
          *j, "target", s.spec.extra_targets.size(), /*validate_target=*/false);
      if (!extra.ok()) return extra.status().WithContext("--extra-target " + file);
      s.spec.extra_targets.push_back(std::move(extra).value());
    }
    BAO_RETURN_IF_ERROR(backup::CheckExtraTargets(s.spec.extra_targets, "--extra-target"));
  }

  backup::RetentionPolicy& r = s.spec.retention;
  Override(flags.max_count, &r.max_count);
  if (r.max_count < 0) return InvalidArgument("--max-count: must be >= 0");
  if (flags.max_age) {
    Result<Duration> d = ParseDuration(*flags.max_age);
    if (!d.ok()) return InvalidArgument("--max-age: " + d.status().message());
    r.max_age = *d;
  }
  Override(flags.keep_daily, &r.keep_daily);
  Override(flags.keep_weekly, &r.keep_weekly);
  Override(flags.keep_monthly, &r.keep_monthly);
  if (r.keep_daily < 0 || r.keep_weekly < 0 || r.keep_monthly < 0) {
    return InvalidArgument("--keep-daily, --keep-weekly and --keep-monthly must be >= 0");
  }
  return s;
}

Status ValidateTargetSettings(const Settings& settings) {
  // --endpoint too (a --config file's endpoint was checked when parsed).
  if (Status s = backup::CheckEndpointHasNoCredentials(settings.spec.target.endpoint, "target");
      !s.ok()) {
    return s;
  }
  Status s = storage::ValidateTarget(settings.spec.target, "target");
  if (!s.ok()) {
    return InvalidArgument(s.message() +
                           " (set it with the matching flag, e.g. --bucket, or in --config)");
  }
  for (const backup::ExtraTarget& extra : settings.spec.extra_targets) {
    const std::string path = "extra target \"" + extra.name + "\"";
    BAO_RETURN_IF_ERROR(backup::CheckEndpointHasNoCredentials(extra.target.endpoint, path));
    BAO_RETURN_IF_ERROR(storage::ValidateTarget(extra.target, path));
  }
  return Status::Ok();
}

Status SelectTarget(const std::string& name, Settings* settings) {
  if (name.empty() || name == "primary") return Status::Ok();
  std::string names = "primary";
  for (backup::ExtraTarget& extra : settings->spec.extra_targets) {
    if (extra.name == name) {
      settings->spec.target = std::move(extra.target);
      settings->spec.extra_targets.clear();
      return Status::Ok();
    }
    names += ", " + extra.name;
  }
  return InvalidArgument("--target " + name + ": no target has this name (there are: " + names +
                         "; extra targets come from --config's extraTargets or --extra-target)");
}

}  // namespace bao::cli
