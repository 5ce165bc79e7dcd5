#include "schedule/config.h"

#include <set>

#include "common/json_fields.h"
#include "common/redact.h"
#include "common/yaml_json.h"

namespace bao::schedule {
namespace {

Status GetString(const nlohmann::json& j, const std::string& path, const char* name,
                 std::string* out) {
  if (!j.contains(name) || j[name].is_null()) return Status::Ok();
  if (!j[name].is_string()) return InvalidArgument(path + "." + name + ": must be a string");
  *out = j[name].get<std::string>();
  return Status::Ok();
}

Status GetSeconds(const nlohmann::json& j, const char* name, std::chrono::seconds* out) {
  if (!j.contains(name) || j[name].is_null()) return Status::Ok();
  // At most kMaxDuration: the scheduler adds these to clock readings and compares them with
  // differences of them, in the clock's nanoseconds.
  const int64_t max = std::chrono::duration_cast<std::chrono::seconds>(kMaxDuration).count();
  if (!j[name].is_number_integer() || j[name].get<int64_t>() < 0 || j[name].get<int64_t>() > max) {
    return InvalidArgument(std::string(name) + ": must be a whole number of seconds from 0 to " +
                           std::to_string(max));
  }
  *out = std::chrono::seconds(j[name].get<int64_t>());
  return Status::Ok();
}

Status ParseOpenBao(const nlohmann::json& j, const std::string& path, ClusterConfig* c) {
  if (!j.is_object()) return InvalidArgument(path + ": must be a mapping");
  BAO_RETURN_IF_ERROR(CheckKnownFields(j, path,
                                       {"addresses", "caCert", "skipVerify", "leaderWait", "token",
                                        "tokenFile", "jwtRole", "jwtTokenFile", "jwtMount"}));
  if (!j.contains("addresses")) return InvalidArgument(path + ".addresses: required");
  const nlohmann::json& a = j["addresses"];
  if (a.is_string()) {
    c->connection.addresses.push_back(a.get<std::string>());
  } else if (a.is_array()) {
    for (const auto& e : a) {
      if (!e.is_string()) return InvalidArgument(path + ".addresses: entries must be strings");
      c->connection.addresses.push_back(e.get<std::string>());
    }
  } else {
    return InvalidArgument(path + ".addresses: must be a list of URLs");
  }
  if (c->connection.addresses.empty()) return InvalidArgument(path + ".addresses: empty");
  BAO_RETURN_IF_ERROR(GetString(j, path, "caCert", &c->connection.tls.ca_file));
  if (j.contains("skipVerify")) {
    if (!j["skipVerify"].is_boolean()) return InvalidArgument(path + ".skipVerify: true/false");
    c->connection.tls.insecure_skip_verify = j["skipVerify"].get<bool>();
  }
  std::string leader_wait;
  BAO_RETURN_IF_ERROR(GetString(j, path, "leaderWait", &leader_wait));
  if (!leader_wait.empty()) {
    Result<Duration> d = ParseDuration(leader_wait);
    if (!d.ok()) return InvalidArgument(path + ".leaderWait: " + d.status().message());
    c->connection.leader_wait = *d;
  }
  BAO_RETURN_IF_ERROR(GetString(j, path, "token", &c->auth.token));
  RegisterSecret(c->auth.token);
  BAO_RETURN_IF_ERROR(GetString(j, path, "tokenFile", &c->token_file));
  if (!c->auth.token.empty() && !c->token_file.empty()) {
    return InvalidArgument(path + ": give token or tokenFile, not both");
  }
  BAO_RETURN_IF_ERROR(GetString(j, path, "jwtRole", &c->auth.jwt_role));
  BAO_RETURN_IF_ERROR(GetString(j, path, "jwtTokenFile", &c->auth.jwt_token_file));
  BAO_RETURN_IF_ERROR(GetString(j, path, "jwtMount", &c->auth.jwt_mount));
  return Status::Ok();
}

Result<ClusterConfig> ParseCluster(const nlohmann::json& j, const std::string& path) {
  if (!j.is_object()) return InvalidArgument(path + ": must be a mapping");
  BAO_RETURN_IF_ERROR(CheckKnownFields(j, path, {"name", "namespace", "openbao", "backup"}));
  ClusterConfig c;
  BAO_RETURN_IF_ERROR(GetString(j, path, "name", &c.name));
  if (c.name.empty()) return InvalidArgument(path + ".name: required");
  BAO_RETURN_IF_ERROR(GetString(j, path, "namespace", &c.ns));
  if (c.ns.empty()) return InvalidArgument(path + ".namespace: must not be empty");
  if (!j.contains("openbao")) return InvalidArgument(path + ".openbao: required");
  BAO_RETURN_IF_ERROR(ParseOpenBao(j["openbao"], path + ".openbao", &c));
  if (!j.contains("backup")) return InvalidArgument(path + ".backup: required");
  BAO_ASSIGN_OR_RETURN(c.backup, backup::ParseBackupSpec(j["backup"], path + ".backup",
                                                         /*require_schedule=*/true,
                                                         /*validate_target=*/true));
  // On a plain machine storage credentials come from a directory of files named after the
  // Secret keys (accessKeyId, secretAccessKey, credentials.json, accountKey, ...): each target's
  // credentialsDir, which ParseTarget reads.
  Result<CronSchedule> cron = CronSchedule::Parse(c.backup.schedule);
  if (!cron.ok()) return InvalidArgument(path + ".backup.schedule: " + cron.status().message());
  c.schedule = *cron;
  // The role from openbao.jwtRole, else the contract's backup.jwtAuthRole.
  if (!c.auth.jwt_role.empty() && !c.backup.jwt_auth_role.empty() &&
      c.auth.jwt_role != c.backup.jwt_auth_role) {
    return InvalidArgument(path + ": openbao.jwtRole and backup.jwtAuthRole disagree");
  }
  if (c.auth.jwt_role.empty()) c.auth.jwt_role = c.backup.jwt_auth_role;
  if (c.auth.jwt_role.empty() && c.auth.token.empty() && c.token_file.empty()) {
    return InvalidArgument(path +
                           ": no way to authenticate: set openbao.tokenFile (or token), or a JWT "
                           "role (backup.jwtAuthRole or openbao.jwtRole)");
  }
  // The contract: a token is used only when no JWT role applies.
  if (!c.auth.jwt_role.empty()) {
    c.auth.token.clear();
    c.token_file.clear();
  }
  return c;
}

}  // namespace

Result<SchedulerConfig> ParseSchedulerConfig(const nlohmann::json& j,
                                             const std::string& config_path) {
  if (!j.is_object()) return InvalidArgument(config_path + ": must be a YAML mapping");
  BAO_RETURN_IF_ERROR(CheckKnownFields(j, "",
                                       {"stateFile", "metricsAddress", "startingDeadlineSeconds",
                                        "shutdownGracePeriodSeconds", "clusters"}));
  SchedulerConfig cfg;
  cfg.state_file = config_path + ".state.json";
  BAO_RETURN_IF_ERROR(GetString(j, "", "stateFile", &cfg.state_file));
  BAO_RETURN_IF_ERROR(GetString(j, "", "metricsAddress", &cfg.metrics_address));
  if (!cfg.metrics_address.empty() && cfg.metrics_address.rfind(':') == std::string::npos) {
    return InvalidArgument("metricsAddress: \"" + cfg.metrics_address +
                           "\" must be host:port, e.g. 127.0.0.1:9090");
  }
  BAO_RETURN_IF_ERROR(GetSeconds(j, "startingDeadlineSeconds", &cfg.starting_deadline));
  BAO_RETURN_IF_ERROR(GetSeconds(j, "shutdownGracePeriodSeconds", &cfg.shutdown_grace));
  if (!j.contains("clusters") || !j["clusters"].is_array() || j["clusters"].empty()) {
    return InvalidArgument("clusters: required, a list of one or more clusters");
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < j["clusters"].size(); ++i) {
    std::string path = "clusters[" + std::to_string(i) + "]";
    BAO_ASSIGN_OR_RETURN(ClusterConfig c, ParseCluster(j["clusters"][i], path));
    if (!seen.insert(c.Key()).second) {
      return InvalidArgument(path + ": cluster " + c.Key() + " is listed twice");
    }
    cfg.clusters.push_back(std::move(c));
  }
  return cfg;
}

Result<SchedulerConfig> LoadSchedulerConfig(const std::string& path) {
  BAO_ASSIGN_OR_RETURN(nlohmann::json j, ReadYamlFile(path));
  Result<SchedulerConfig> cfg = ParseSchedulerConfig(j, path);
  if (!cfg.ok()) return cfg.status().WithContext(path);
  return cfg;
}

}  // namespace bao::schedule
