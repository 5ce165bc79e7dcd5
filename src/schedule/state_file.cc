#include "schedule/state_file.h"

#include "common/files.h"

namespace bao::schedule {
namespace {

void PutTime(nlohmann::json* j, const char* name, const std::optional<TimePoint>& t) {
  if (t) (*j)[name] = FormatRfc3339(*t);
}

Status GetTime(const nlohmann::json& j, const std::string& path, const char* name,
               std::optional<TimePoint>* out) {
  if (!j.contains(name) || j[name].is_null()) return Status::Ok();
  if (!j[name].is_string()) return InvalidArgument(path + "." + name + ": not a string");
  Result<TimePoint> t = ParseRfc3339(j[name].get<std::string>());
  if (!t.ok()) return InvalidArgument(path + "." + name + ": " + t.status().message());
  *out = *t;
  return Status::Ok();
}

Status GetString(const nlohmann::json& j, const std::string& path, const char* name,
                 std::string* out) {
  if (!j.contains(name) || j[name].is_null()) return Status::Ok();
  if (!j[name].is_string()) return InvalidArgument(path + "." + name + ": not a string");
  *out = j[name].get<std::string>();
  return Status::Ok();
}

template <typename T>
Status GetCount(const nlohmann::json& j, const std::string& path, const std::string& name, T* out) {
  if (!j.contains(name) || j[name].is_null()) return Status::Ok();
  if (!j[name].is_number_integer() || j[name].get<int64_t>() < 0) {
    return InvalidArgument(path + "." + name + ": not a non-negative integer");
  }
  *out = static_cast<T>(j[name].get<int64_t>());
  return Status::Ok();
}

}  // namespace

nlohmann::json ClusterStatus::ToJson() const {
  nlohmann::json j = nlohmann::json::object();
  PutTime(&j, "lastBackupTime", last_backup_time);
  PutTime(&j, "lastAttemptTime", last_attempt_time);
  PutTime(&j, "lastAttemptScheduledTime", last_attempt_scheduled_time);
  if (last_backup_time) j["lastBackupSize"] = last_backup_size;
  if (last_backup_duration) j["lastBackupDuration"] = FormatDuration(*last_backup_duration);
  if (!last_backup_name.empty()) j["lastBackupName"] = last_backup_name;
  PutTime(&j, "nextScheduledBackup", next_scheduled_backup);
  j["consecutiveFailures"] = consecutive_failures;
  if (!last_failure_reason.empty()) j["lastFailureReason"] = last_failure_reason;
  PutTime(&j, "lastDecidedSlot", last_decided_slot);
  PutTime(&j, "lastMissedSlot", last_missed_slot);
  if (!last_retention_error.empty()) j["lastRetentionError"] = last_retention_error;
  if (!schedule.empty()) j["schedule"] = schedule;
  j["running"] = running;
  j["attempts"] = nlohmann::json::object();
  for (const auto& [outcome, n] : attempts) j["attempts"][outcome] = n;
  return j;
}

Result<ClusterStatus> ClusterStatus::FromJson(const nlohmann::json& j, const std::string& path) {
  if (!j.is_object()) return InvalidArgument(path + ": not an object");
  ClusterStatus s;
  BAO_RETURN_IF_ERROR(GetTime(j, path, "lastBackupTime", &s.last_backup_time));
  BAO_RETURN_IF_ERROR(GetTime(j, path, "lastAttemptTime", &s.last_attempt_time));
  BAO_RETURN_IF_ERROR(GetTime(j, path, "lastAttemptScheduledTime", &s.last_attempt_scheduled_time));
  BAO_RETURN_IF_ERROR(GetCount(j, path, "lastBackupSize", &s.last_backup_size));
  std::string duration;
  BAO_RETURN_IF_ERROR(GetString(j, path, "lastBackupDuration", &duration));
  if (!duration.empty()) {
    Result<Duration> d = ParseDuration(duration);
    if (!d.ok()) return InvalidArgument(path + ".lastBackupDuration: " + d.status().message());
    s.last_backup_duration = *d;
  }
  BAO_RETURN_IF_ERROR(GetString(j, path, "lastBackupName", &s.last_backup_name));
  BAO_RETURN_IF_ERROR(GetTime(j, path, "nextScheduledBackup", &s.next_scheduled_backup));
  BAO_RETURN_IF_ERROR(GetCount(j, path, "consecutiveFailures", &s.consecutive_failures));
  BAO_RETURN_IF_ERROR(GetString(j, path, "lastFailureReason", &s.last_failure_reason));
  BAO_RETURN_IF_ERROR(GetTime(j, path, "lastDecidedSlot", &s.last_decided_slot));
  BAO_RETURN_IF_ERROR(GetTime(j, path, "lastMissedSlot", &s.last_missed_slot));
  BAO_RETURN_IF_ERROR(GetString(j, path, "lastRetentionError", &s.last_retention_error));
  BAO_RETURN_IF_ERROR(GetString(j, path, "schedule", &s.schedule));
  if (j.contains("attempts")) {
    if (!j["attempts"].is_object()) return InvalidArgument(path + ".attempts: not an object");
    for (const auto& [outcome, n] : j["attempts"].items()) {
      BAO_RETURN_IF_ERROR(
          GetCount(j["attempts"], path + ".attempts", outcome, &s.attempts[outcome]));
    }
  }
  // `running` is not restored: no attempt survives the process that ran it.
  return s;
}

nlohmann::json SchedulerState::ToJson() const {
  nlohmann::json j = {{"version", 1}};
  if (!metrics_address.empty()) j["metricsAddress"] = metrics_address;
  PutTime(&j, "updated", updated);
  j["clusters"] = nlohmann::json::object();
  for (const auto& [key, status] : clusters) j["clusters"][key] = status.ToJson();
  return j;
}

Result<SchedulerState> LoadState(const std::string& path) {
  SchedulerState state;
  Result<std::string> text = ReadFile(path);
  if (!text.ok()) {
    if (text.status().code() == Code::kNotFound) return state;
    return text.status();
  }
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgument("scheduler state file " + path +
                           " is not a JSON object (remove it to start afresh)");
  }
  std::string where = "state file " + path;
  BAO_RETURN_IF_ERROR(GetString(j, where, "metricsAddress", &state.metrics_address));
  BAO_RETURN_IF_ERROR(GetTime(j, where, "updated", &state.updated));
  if (j.contains("clusters")) {
    if (!j["clusters"].is_object()) return InvalidArgument(where + ".clusters: not an object");
    for (const auto& [key, value] : j["clusters"].items()) {
      BAO_ASSIGN_OR_RETURN(ClusterStatus s,
                           ClusterStatus::FromJson(value, where + ".clusters[" + key + "]"));
      state.clusters[key] = std::move(s);
    }
  }
  return state;
}

Status SaveState(const std::string& path, const SchedulerState& state) {
  Status s = WriteFileAtomic(path, state.ToJson().dump(2) + "\n");
  if (!s.ok()) return s.WithContext("writing the scheduler state file " + path);
  return s;
}

}  // namespace bao::schedule
