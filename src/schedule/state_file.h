// The standalone scheduler's persisted state: per cluster, the contract's status.backup fields
// plus the bookkeeping the scheduler needs to keep "at most one attempt per slot" across
// restarts, and the attempt counters behind /metrics. Stored as one JSON file written with
// WriteFileAtomic, so a crash leaves either the old or the new state, never a mix.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/status.h"
#include "common/time.h"

namespace bao::schedule {

// Attempt outcomes counted per cluster (label values of bao_backup_attempts_total).
constexpr const char* kOutcomeSuccess = "success";
constexpr const char* kOutcomeFailure = "failure";
constexpr const char* kOutcomeMissed = "missed";
constexpr const char* kOutcomeCancelled = "cancelled";

struct ClusterStatus {
  // The contract's status.backup.
  std::optional<TimePoint> last_backup_time;
  std::optional<TimePoint> last_attempt_time;
  std::optional<TimePoint> last_attempt_scheduled_time;
  uint64_t last_backup_size = 0;
  std::optional<Duration> last_backup_duration;
  std::string last_backup_name;
  std::optional<TimePoint> next_scheduled_backup;
  int64_t consecutive_failures = 0;
  std::string last_failure_reason;
  // Beyond the contract.
  std::optional<TimePoint> last_decided_slot;  // newest slot run or recorded as missed
  std::optional<TimePoint> last_missed_slot;
  std::string last_retention_error;          // "" when the last retention run succeeded
  std::string schedule;                      // the cron expression the slots above belong to
  bool running = false;                      // an attempt is in progress (informational)
  std::map<std::string, uint64_t> attempts;  // outcome -> count

  // The status as JSON with the contract's field names (times RFC 3339 UTC, duration "45s");
  // unset fields are omitted.
  nlohmann::json ToJson() const;
  // Inverse of ToJson. kInvalidArgument naming `path` and the field when a value has the
  // wrong type or does not parse; unknown fields are ignored.
  static Result<ClusterStatus> FromJson(const nlohmann::json& j, const std::string& path);
};

struct SchedulerState {
  std::map<std::string, ClusterStatus> clusters;  // key "<namespace>/<name>"
  std::string metrics_address;                    // the address actually listened on, if any
  std::optional<TimePoint> updated;

  nlohmann::json ToJson() const;
};

// Reads the state file. A missing file is an empty state (first start). kInvalidArgument when
// the file is not valid state JSON (the message names the file), or the read error.
Result<SchedulerState> LoadState(const std::string& path);

// Writes the state atomically (WriteFileAtomic). Errors name the file.
Status SaveState(const std::string& path, const SchedulerState& state);

}  // namespace bao::schedule
