#include "backup/spec.h"

#include <limits>
#include <string_view>

#include "backup/naming.h"
#include "common/json_fields.h"
#include "common/redact.h"

namespace bao::backup {

using nlohmann::json;

namespace {

Status GetRefName(const json& j, const char* name, const std::string& path, std::string* out) {
  if (!j.contains(name) || j[name].is_null()) return Status::Ok();
  std::string field = path + "." + name;
  if (!j[name].is_object()) return InvalidArgument(field + ": must be an object with a name");
  if (j[name].contains("namespace")) {
    return Error(Code::kInvalidArgument, Reason::kCrossNamespace,
                 field +
                     ".namespace: cross-namespace Secret references are not "
                     "allowed; the Secret must be in the resource's namespace");
  }
  BAO_RETURN_IF_ERROR(CheckKnownFields(j[name], field, {"name"}));
  return GetString(j[name], "name", field, out);
}

}  // namespace

Result<RetentionPolicy> ParseRetention(const json& j, const std::string& path) {
  RetentionPolicy p;
  if (j.is_null()) return p;
  if (!j.is_object()) return InvalidArgument(path + ": must be an object");
  BAO_RETURN_IF_ERROR(
      CheckKnownFields(j, path, {"maxCount", "maxAge", "keepDaily", "keepWeekly", "keepMonthly"}));
  auto get_count = [&](const char* name, int64_t max, int64_t* out) -> Status {
    if (!j.contains(name) || j[name].is_null()) return Status::Ok();
    if (!j[name].is_number_integer() || j[name].get<int64_t>() < 0 ||
        j[name].get<int64_t>() > max) {
      return InvalidArgument(path + "." + name + ": must be a whole number from 0 to " +
                             std::to_string(max));
    }
    *out = j[name].get<int64_t>();
    return Status::Ok();
  };
  BAO_RETURN_IF_ERROR(get_count("maxCount", std::numeric_limits<int64_t>::max(), &p.max_count));
  int64_t daily = 0, weekly = 0, monthly = 0;
  BAO_RETURN_IF_ERROR(get_count("keepDaily", kMaxKeepPerPeriod, &daily));
  BAO_RETURN_IF_ERROR(get_count("keepWeekly", kMaxKeepPerPeriod, &weekly));
  BAO_RETURN_IF_ERROR(get_count("keepMonthly", kMaxKeepPerPeriod, &monthly));
  p.keep_daily = static_cast<int>(daily);
  p.keep_weekly = static_cast<int>(weekly);
  p.keep_monthly = static_cast<int>(monthly);
  std::string max_age;
  BAO_RETURN_IF_ERROR(GetString(j, "maxAge", path, &max_age));
  if (!max_age.empty()) {
    Result<Duration> d = ParseDuration(max_age);
    if (!d.ok()) return InvalidArgument(path + ".maxAge: " + d.status().message());
    p.max_age = *d;
  }
  return p;
}

Result<BackupSpec> ParseBackupSpec(const json& j, const std::string& path, bool require_schedule,
                                   bool validate_target, const std::string& default_provider) {
  if (!j.is_object()) return InvalidArgument(path + ": must be an object");
  BAO_RETURN_IF_ERROR(CheckKnownFields(j, path,
                                       {"schedule", "target", "extraTargets", "jwtAuthRole",
                                        "tokenSecretRef", "retention", "image"}));
  BackupSpec spec;
  BAO_RETURN_IF_ERROR(GetString(j, "schedule", path, &spec.schedule));
  if (require_schedule && spec.schedule.empty()) {
    return InvalidArgument(path + ".schedule: required (a cron expression such as \"0 3 * * *\")");
  }
  if (j.contains("target") && !j["target"].is_null()) {
    BAO_ASSIGN_OR_RETURN(spec.target,
                         storage::ParseTarget(j["target"], path + ".target", default_provider));
  } else if (validate_target) {
    return InvalidArgument(path + ".target: required");
  } else {
    spec.target.provider = default_provider;
  }
  BAO_RETURN_IF_ERROR(CheckEndpointHasNoCredentials(spec.target.endpoint, path + ".target"));
  if (validate_target) {
    BAO_RETURN_IF_ERROR(storage::ValidateTarget(spec.target, path + ".target"));
  }
  if (j.contains("extraTargets") && !j["extraTargets"].is_null()) {
    const json& list = j["extraTargets"];
    const std::string list_path = path + ".extraTargets";
    if (!list.is_array()) return InvalidArgument(list_path + ": must be a list of targets");
    for (size_t i = 0; i < list.size(); ++i) {
      BAO_ASSIGN_OR_RETURN(
          ExtraTarget extra,
          ParseExtraTarget(list[i], list_path + "[" + std::to_string(i) + "]", i, validate_target));
      spec.extra_targets.push_back(std::move(extra));
    }
    BAO_RETURN_IF_ERROR(CheckExtraTargets(spec.extra_targets, list_path));
  }
  BAO_RETURN_IF_ERROR(GetString(j, "jwtAuthRole", path, &spec.jwt_auth_role));
  BAO_RETURN_IF_ERROR(GetRefName(j, "tokenSecretRef", path, &spec.token_secret_name));
  BAO_RETURN_IF_ERROR(GetString(j, "image", path, &spec.image));
  if (j.contains("retention")) {
    BAO_ASSIGN_OR_RETURN(spec.retention, ParseRetention(j["retention"], path + ".retention"));
  }
  return spec;
}

Result<ExtraTarget> ParseExtraTarget(const json& j, const std::string& path, size_t index,
                                     bool validate_target) {
  if (!j.is_object()) return InvalidArgument(path + ": must be an object (a BackupTarget)");
  ExtraTarget extra;
  json target = j;
  BAO_RETURN_IF_ERROR(GetString(j, "name", path, &extra.name));
  target.erase("name");
  if (extra.name.empty()) extra.name = "extra-" + std::to_string(index + 1);
  if (!IsValidNameSegment(extra.name) || extra.name == "primary") {
    return InvalidArgument(path + ".name: \"" + extra.name +
                           "\" must be a lower-case DNS label (a-z, 0-9, '-', at most 63) other "
                           "than \"primary\"");
  }
  // An extra target's provider is always explicit: there is no useful default for a second place.
  if (!target.contains("provider")) {
    return InvalidArgument(path + ".provider: required (file, s3, gcs or azure)");
  }
  BAO_ASSIGN_OR_RETURN(extra.target, storage::ParseTarget(target, path));
  BAO_RETURN_IF_ERROR(CheckEndpointHasNoCredentials(extra.target.endpoint, path));
  if (validate_target) BAO_RETURN_IF_ERROR(storage::ValidateTarget(extra.target, path));
  return extra;
}

Status CheckExtraTargets(const std::vector<ExtraTarget>& targets, const std::string& path) {
  if (targets.size() > kMaxExtraTargets) {
    return InvalidArgument(path + ": at most " + std::to_string(kMaxExtraTargets) +
                           " extra targets (" + std::to_string(targets.size()) + " given)");
  }
  for (size_t i = 0; i < targets.size(); ++i) {
    for (size_t k = 0; k < i; ++k) {
      if (targets[i].name == targets[k].name) {
        return InvalidArgument(path + "[" + std::to_string(i) + "].name: \"" + targets[i].name +
                               "\" is already the name of target " + std::to_string(k) +
                               "; give each extra target its own name");
      }
    }
  }
  return Status::Ok();
}

Status CheckEndpointHasNoCredentials(const std::string& endpoint, const std::string& target_path) {
  // A query or fragment anywhere, and user-info in the authority (common/redact.h: what
  // UrlForDisplay hides). Only a leading scheme starts the authority: in
  // "h/?sig=x&u=https://y" the "://" is part of the query.
  const size_t start = UrlAuthorityStart(endpoint);
  const size_t end = endpoint.find_first_of("/?#", start);
  std::string_view authority = std::string_view(endpoint).substr(
      start, end == std::string::npos ? std::string::npos : end - start);
  const bool user_info = authority.find('@') != std::string_view::npos;
  const bool query = endpoint.find_first_of("?#") != std::string::npos;
  if (!user_info && !query) return Status::Ok();
  return InvalidArgument(target_path + ".endpoint: must be scheme://host[:port][/path] without " +
                         (user_info ? "user-info (user:password@)" : "a query or fragment") +
                         ", which can carry credentials; give credentials in the credentials "
                         "Secret (or directory), not in the URL");
}

std::string EffectiveJwtRole(const BackupSpec& spec, bool oidc_enabled) {
  if (!spec.jwt_auth_role.empty()) return spec.jwt_auth_role;
  return oidc_enabled ? kOidcBackupRole : "";
}

}  // namespace bao::backup
