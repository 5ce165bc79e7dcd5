// The standalone scheduler's YAML configuration (`bao-backup schedule --config FILE`): which
// OpenBao clusters to back up, how to reach them, and each one's `backup` section in the shape
// of the contract's spec.backup. The schema is documented in docs/scheduler.md.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backup/spec.h"
#include "common/status.h"
#include "openbao/client.h"
#include "schedule/cron.h"

namespace bao::schedule {

struct ClusterConfig {
  std::string name;            // cluster segment of backup names; required
  std::string ns = "default";  // namespace segment
  openbao::ConnectionConfig connection;
  openbao::AuthConfig auth;  // token already read when `token_file` is empty
  std::string token_file;    // re-read before every attempt (rotated tokens) when set
  backup::BackupSpec backup;
  CronSchedule schedule = *CronSchedule::Parse("@daily");  // parsed backup.schedule

  std::string Key() const { return ns + "/" + name; }
};

struct SchedulerConfig {
  std::vector<ClusterConfig> clusters;
  std::string state_file;       // default: "<config file>.state.json"
  std::string metrics_address;  // "host:port" (port 0: any free port); "" = no HTTP endpoint
  std::chrono::seconds starting_deadline{300};
  std::chrono::seconds shutdown_grace{30};
};

// Parses the configuration; `config_path` names the file in messages and locates the default
// state file. Validates every cluster's target and schedule and that (namespace, name) pairs
// are unique. kInvalidArgument naming the field ("clusters[1].backup.schedule: ...").
// An inline `token` is registered with Redact().
Result<SchedulerConfig> ParseSchedulerConfig(const nlohmann::json& j,
                                             const std::string& config_path);

// Reads the YAML file and parses it as above.
Result<SchedulerConfig> LoadSchedulerConfig(const std::string& path);

}  // namespace bao::schedule
