#include "operator/backup_logic.h"

#include <algorithm>
#include <iomanip>
#include <sstream>
#include <utility>

namespace bao::op {

using nlohmann::json;

std::string Str(const json& j, const char* field) {
  return j.is_object() && j.contains(field) && j[field].is_string() ? j[field].get<std::string>()
                                                                    : "";
}

const json& At(const json& j, std::initializer_list<const char*> path) {
  static const json kNull;
  const json* cur = &j;
  for (const char* p : path) {
    if (!cur->is_object() || !cur->contains(p)) return kNull;
    cur = &(*cur)[p];
  }
  return *cur;
}

std::string JobFinished(const json& job) {
  const json& conds = At(job, {"status", "conditions"});
  if (!conds.is_array()) return "";
  for (const json& c : conds) {
    std::string type = Str(c, "type");
    if ((type == "Complete" || type == "Failed") && Str(c, "status") == "True") return type;
  }
  return "";
}

std::string JobFailureMessage(const json& job) {
  const json& conds = At(job, {"status", "conditions"});
  if (conds.is_array()) {
    for (const json& c : conds) {
      if (Str(c, "type") == "Failed") {
        return "Job failed: " + Str(c, "reason") + (Str(c, "message").empty() ? "" : ": ") +
               Str(c, "message");
      }
    }
  }
  return "Job failed without a result";
}

json ParseResult(const std::string& message) {
  std::string last;
  std::istringstream in(message);
  for (std::string line; std::getline(in, line);) {
    if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
  }
  json j = json::parse(last, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return nullptr;
  return j;
}

json NewestResult(const std::vector<json>& pods, std::string* finished_at) {
  json result;
  std::string newest;
  for (const json& pod : pods) {
    const json& statuses = At(pod, {"status", "containerStatuses"});
    if (!statuses.is_array()) continue;
    for (const json& cs : statuses) {
      const json& term = At(cs, {"state", "terminated"});
      if (!term.is_object()) continue;
      std::string finished = Str(term, "finishedAt");
      json parsed = ParseResult(Str(term, "message"));
      if (!parsed.is_null() && (result.is_null() || finished >= newest)) {
        result = parsed;
        newest = finished;
      }
    }
  }
  if (finished_at) *finished_at = newest;
  return result;
}

bool IsOurLock(const json& lock) {
  return lock.is_object() && Str(lock, "operation") == "Backup" &&
         Str(lock, "holder").rfind(kLockHolderPrefix, 0) == 0;
}

std::string LockJobName(const json& lock) {
  return IsOurLock(lock) ? Str(lock, "holder").substr(std::string(kLockHolderPrefix).size()) : "";
}

bool LockNeedsRenewal(const json& lock, TimePoint now) {
  if (!IsOurLock(lock)) return false;
  auto renewed = ParseRfc3339(Str(lock, "renewedAt"));
  // Not `now - *renewed`: times from 1678 to 2261 are valid, and their difference can
  // overflow the nanoseconds a duration holds.
  return !renewed.ok() || *renewed <= now - kLockRenewInterval;
}

SlotDecision DecideSlot(const CronSchedule& cron, TimePoint now, const json& backup_status) {
  auto time_of = [&](const char* field) -> std::optional<TimePoint> {
    auto t = ParseRfc3339(Str(backup_status, field));
    if (!t.ok()) return std::nullopt;
    return *t;
  };
  SlotDecision d;
  d.previous = cron.Previous(now);
  d.next = cron.Next(now);
  std::optional<TimePoint> consumed = time_of("lastAttemptScheduledTime");
  std::optional<TimePoint> last_skip = time_of("lastSkippedScheduledTime");
  std::optional<TimePoint> next_recorded = time_of("nextScheduledBackup");
  if (last_skip && (!consumed || *last_skip > *consumed)) consumed = last_skip;
  if (d.previous) {
    d.due = consumed ? *d.previous > *consumed
                     : next_recorded.has_value() && *d.previous >= *next_recorded;
  }
  d.next_changed = !next_recorded || *next_recorded != d.next;
  return d;
}

namespace {

std::optional<SkipReason> Preconditions(const json& cluster, const std::vector<json>& restores,
                                        bool job_running, bool pre_upgrade) {
  const std::string name = Str(At(cluster, {"metadata"}), "name");
  const std::string phase = Str(At(cluster, {"status"}), "phase");
  const json& spec_version = At(cluster, {"spec", "version"});
  const json& cur_version = At(cluster, {"status", "currentVersion"});
  const json& upgrade = At(cluster, {"status", "upgrade"});
  if (phase != "Running") {
    return SkipReason{"ClusterNotRunning", "status.phase is \"" + phase + "\", not \"Running\""};
  }
  if (!upgrade.is_null() && !(upgrade.is_object() && upgrade.empty())) {
    return SkipReason{"UpgradeInProgress", "an upgrade is in progress (status.upgrade is set)"};
  }
  if (!pre_upgrade && spec_version.is_string() && cur_version.is_string() &&
      spec_version != cur_version) {
    return SkipReason{"UpgradePending", "spec.version " + spec_version.get<std::string>() +
                                            " differs from status.currentVersion " +
                                            cur_version.get<std::string>()};
  }
  for (const json& r : restores) {
    if (Str(At(r, {"spec"}), "cluster") != name) continue;
    std::string rphase = Str(At(r, {"status"}), "phase");
    if (rphase != "Completed" && rphase != "Failed") {
      return SkipReason{"RestoreInProgress", "OpenBaoRestore \"" +
                                                 Str(At(r, {"metadata"}), "name") + "\" is " +
                                                 (rphase.empty() ? "Pending" : rphase)};
    }
  }
  if (job_running) {
    return SkipReason{"BackupRunning", "another backup Job of this cluster is running"};
  }
  const json& lock = At(cluster, {"status", "operationLock"});
  if (lock.is_object() && !lock.empty()) {
    return SkipReason{"OperationLocked", "status.operationLock is held for " +
                                             Str(lock, "operation") + " by " + Str(lock, "holder")};
  }
  return std::nullopt;
}

}  // namespace

std::optional<SkipReason> CheckPreconditions(const json& cluster, const std::vector<json>& restores,
                                             bool job_running) {
  return Preconditions(cluster, restores, job_running, false);
}

std::optional<SkipReason> CheckPreUpgradePreconditions(const json& cluster,
                                                       const std::vector<json>& restores,
                                                       bool job_running) {
  return Preconditions(cluster, restores, job_running, true);
}

std::string PreUpgradeTargetVersion(const json& cluster) {
  if (At(cluster, {"spec", "upgrade", "preUpgradeSnapshot"}) != json(true)) return "";
  const std::string target = Str(At(cluster, {"spec"}), "version");
  const std::string current = Str(At(cluster, {"status"}), "currentVersion");
  if (target.empty() || current.empty() || target == current) return "";
  return target;
}

PreUpgradeDecision DecidePreUpgrade(const json& cluster, const std::vector<json>& restores,
                                    const std::string& running_job, bool triggered) {
  PreUpgradeDecision d;
  d.version = PreUpgradeTargetVersion(cluster);
  if (d.version.empty()) return d;
  const json& backup = At(cluster, {"status", "backup"});
  if (Str(At(backup, {"lastPreUpgradeBackup"}), "version") == d.version) {
    d.action = PreUpgradeAction::kReady;
    return d;
  }
  const json& attempt = At(backup, {"lastPreUpgradeAttempt"});
  const bool attempted = Str(attempt, "version") == d.version;
  if (attempted) {
    d.job = Str(attempt, "job");
    const json& n = At(attempt, {"attempt"});
    d.attempt = n.is_number_integer() && n.get<int64_t>() > 0 ? n.get<int64_t>() : 1;
    const std::string locked = LockJobName(At(cluster, {"status", "operationLock"}));
    if (!d.job.empty() && (running_job == d.job || locked == d.job)) {
      d.action = PreUpgradeAction::kRunning;
      return d;
    }
  }
  d.blocked = CheckPreUpgradePreconditions(cluster, restores, !running_job.empty());
  if (attempted && (!triggered || d.blocked)) {
    d.action = PreUpgradeAction::kFailed;
    return d;
  }
  if (d.blocked) {
    d.action = PreUpgradeAction::kWait;
    return d;
  }
  d.action = PreUpgradeAction::kStart;
  d.attempt = attempted ? d.attempt + 1 : 1;
  return d;
}

namespace {

// status.backup.targets after a Job: see EvaluateFinishedJob().
json TargetStatuses(const json& result, bool succeeded, const std::string& finished_at,
                    const std::string& failure, const json& previous,
                    std::vector<std::string>* copy_failures) {
  auto previous_of = [&](const std::string& name) -> json {
    if (previous.is_array()) {
      for (const json& p : previous) {
        if (p.is_object() && Str(p, "name") == name) return p;
      }
    }
    return json::object();
  };
  auto failures_of = [](const json& p) {
    return p.contains("consecutiveFailures") && p["consecutiveFailures"].is_number_integer()
               ? p["consecutiveFailures"].get<int64_t>()
               : int64_t{0};
  };
  if (!succeeded) {
    if (!previous.is_array()) return nullptr;  // nothing listed: leave it so
    json out = json::array();
    for (json p : previous) {
      if (!p.is_object()) continue;
      p["consecutiveFailures"] = failures_of(p) + 1;
      p["lastFailureReason"] = failure;
      out.push_back(std::move(p));
    }
    return out;
  }
  const json& targets = At(result, {"targets"});
  if (!targets.is_array()) return nullptr;
  json out = json::array();
  for (const json& t : targets) {
    if (!t.is_object() || Str(t, "name").empty()) continue;
    json entry = previous_of(Str(t, "name"));
    entry["name"] = Str(t, "name");
    const bool ok = t.contains("ok") && t["ok"].is_boolean() && t["ok"].get<bool>();
    if (ok) {
      entry["key"] = Str(t, "key");
      entry["size"] = t.contains("size") && t["size"].is_number_integer() ? t["size"].get<int64_t>()
                                                                          : int64_t{0};
      entry["lastSuccess"] = finished_at;
      entry["consecutiveFailures"] = 0;
      entry.erase("lastFailureReason");
    } else {
      std::string reason =
          Str(t, "stage").empty() ? Str(t, "error") : Str(t, "stage") + ": " + Str(t, "error");
      entry["consecutiveFailures"] = failures_of(entry) + 1;
      entry["lastFailureReason"] = reason;
      copy_failures->push_back("the copy of backup " + Str(result, "key") + " to target " +
                               Str(t, "name") + " failed (the backup itself is stored): " + reason);
    }
    out.push_back(std::move(entry));
  }
  return out;
}

}  // namespace

JobOutcome EvaluateFinishedJob(const json& job, bool complete, const std::vector<json>& pods,
                               const json& backup_status, TimePoint now) {
  const std::string job_name = Str(At(job, {"metadata"}), "name");
  std::string newest;  // finishedAt of the container the result came from
  const json result = NewestResult(pods, &newest);
  JobOutcome out;
  out.succeeded = complete && result.is_object() && !Str(result, "key").empty();
  const json& failures = At(backup_status, {"consecutiveFailures"});
  out.consecutive_failures = failures.is_number_integer() ? failures.get<int64_t>() : 0;
  json& b = out.backup_patch;
  b["lastRecordedJob"] = job_name;
  if (out.succeeded) {
    // When the backup ended: the executor's own end time, else the container's, else the
    // Job's completionTime; `now` (when the operator noticed) only when none is known.
    std::string finished_at = Str(result, "finishedAt");
    if (!ParseRfc3339(finished_at).ok()) finished_at = newest;
    if (!ParseRfc3339(finished_at).ok()) finished_at = Str(At(job, {"status"}), "completionTime");
    if (!ParseRfc3339(finished_at).ok()) finished_at = FormatRfc3339(now);
    b["lastBackupTime"] = finished_at;
    b["lastBackupName"] = result["key"];
    int64_t size = result.contains("size") && result["size"].is_number_integer()
                       ? result["size"].get<int64_t>()
                       : 0;
    b["lastBackupSize"] = size;
    std::string duration = Str(result, "duration");
    if (duration.empty() && result.contains("durationSeconds") &&
        result["durationSeconds"].is_number()) {
      duration = FormatDuration(
          Duration(static_cast<int64_t>(result["durationSeconds"].get<double>() * 1000)));
    }
    b["lastBackupDuration"] = duration;
    b["consecutiveFailures"] = 0;
    out.consecutive_failures = 0;
    out.message = "backup " + Str(result, "key") + " stored (" + std::to_string(size) + " bytes, " +
                  duration + ") by Job " + job_name;
    b["targets"] = TargetStatuses(result, true, finished_at, "", At(backup_status, {"targets"}),
                                  &out.copy_failures);
    if (!out.copy_failures.empty()) {
      out.message += "; " + std::to_string(out.copy_failures.size()) + " of " +
                     std::to_string(At(result, {"targets"}).size() - 1) + " extra copies failed";
    }
  } else {
    std::string reason;
    if (result.is_object() && result.contains("error")) {
      reason = Str(result, "stage").empty() ? Str(result, "error")
                                            : Str(result, "stage") + ": " + Str(result, "error");
    } else if (complete) {
      reason = "Job completed without a result naming the stored object";
    } else {
      reason = JobFailureMessage(job);
    }
    b["consecutiveFailures"] = ++out.consecutive_failures;
    b["lastFailureReason"] = reason;
    json targets = TargetStatuses(result, false, "", reason, At(backup_status, {"targets"}),
                                  &out.copy_failures);
    if (!targets.is_null()) b["targets"] = targets;
    out.message = "backup Job " + job_name + " failed: " + reason;
  }
  return out;
}

json PreUpgradeBackupRecord(const JobOutcome& outcome, const std::string& version) {
  if (!outcome.succeeded) return nullptr;
  return {{"key", outcome.backup_patch.value("lastBackupName", "")},
          {"version", version},
          {"time", outcome.backup_patch.value("lastBackupTime", "")}};
}

bool SetCondition(json& conditions, const std::string& type, bool ok, const std::string& reason,
                  const std::string& message, TimePoint now, const json& generation,
                  bool* verdict_changed) {
  if (!conditions.is_array()) conditions = json::array();
  const std::string status = ok ? "True" : "False";
  json* existing = nullptr;
  for (json& c : conditions) {
    if (Str(c, "type") == type) existing = &c;
  }
  const bool same = existing && Str(*existing, "status") == status &&
                    Str(*existing, "reason") == reason && Str(*existing, "message") == message;
  if (verdict_changed) *verdict_changed = !same;
  if (same && existing->value("observedGeneration", json(0)) == generation) return false;
  json cond = {{"type", type},
               {"status", status},
               {"reason", reason},
               {"message", message},
               {"lastTransitionTime", FormatRfc3339(now)},
               {"observedGeneration", generation}};
  if (existing) {
    if (Str(*existing, "status") == status && existing->contains("lastTransitionTime")) {
      cond["lastTransitionTime"] = (*existing)["lastTransitionTime"];
    }
    *existing = cond;
  } else {
    conditions.push_back(cond);
  }
  return true;
}

const json& FindCondition(const json& cluster, const std::string& type) {
  static const json kNull;
  const json& conds = At(cluster, {"status", "conditions"});
  if (!conds.is_array()) return kNull;
  for (const json& c : conds) {
    if (Str(c, "type") == type) return c;
  }
  return kNull;
}

std::string ClusterGaugesText(const std::vector<json>& clusters) {
  struct Gauge {
    const char* name;
    const char* help;
    const char* field;  // in status.backup
    bool is_time;       // an RFC 3339 time, reported as Unix seconds
  };
  static const Gauge kGauges[] = {
      {"bao_backup_last_success_timestamp_seconds",
       "Unix time the last successful backup finished (status.backup.lastBackupTime).",
       "lastBackupTime", true},
      {"bao_backup_consecutive_failures", "Backup failures since the last success.",
       "consecutiveFailures", false},
      {"bao_backup_last_duration_seconds", "Duration of the last successful backup.",
       "lastBackupDuration", false},
      {"bao_backup_last_size_bytes", "Size of the last successful backup.", "lastBackupSize",
       false},
      {"bao_backup_next_scheduled_timestamp_seconds", "Unix time of the next scheduled backup.",
       "nextScheduledBackup", true},
  };
  std::vector<std::pair<std::string, const json*>> rows;  // labels, status.backup
  for (const json& c : clusters) {
    const json& backup = At(c, {"status", "backup"});
    if (At(c, {"spec", "backup"}).is_null() || !backup.is_object()) continue;
    rows.emplace_back("{namespace=\"" + Str(At(c, {"metadata"}), "namespace") + "\",cluster=\"" +
                          Str(At(c, {"metadata"}), "name") + "\"}",
                      &backup);
  }
  std::sort(rows.begin(), rows.end());
  std::ostringstream o;
  o << std::setprecision(15);  // Unix seconds and byte counts print whole
  for (const Gauge& g : kGauges) {
    o << "# HELP " << g.name << " " << g.help << "\n# TYPE " << g.name << " gauge\n";
    for (const auto& [labels, backup] : rows) {
      const json& v = At(*backup, {g.field});
      double value = 0;
      if (g.is_time) {
        auto t = ParseRfc3339(v.is_string() ? v.get<std::string>() : "");
        if (!t.ok()) continue;
        value = std::chrono::duration<double>(t->time_since_epoch()).count();
      } else if (v.is_number()) {
        value = v.get<double>();
      } else if (v.is_string()) {
        auto d = ParseDuration(v.get<std::string>());
        if (!d.ok()) continue;
        value = std::chrono::duration<double>(*d).count();
      } else {
        continue;
      }
      o << g.name << labels << " " << value << "\n";
    }
  }
  return o.str();
}

}  // namespace bao::op
