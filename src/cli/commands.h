// The subcommands, each returning the process exit code.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "cli/settings.h"
#include "common/context.h"

namespace bao::cli {

struct CommandOptions {
  std::string key;
  std::string file_prefix;
  std::string result_file;
  bool latest = false;
  std::string before;  // RFC 3339
  bool force = false;
  bool verify_first = false;
  std::string settle_timeout = "60s";  // restore: how long to wait for OpenBao to apply it
  bool yes = false;
  bool dry_run = false;
  // backup, prune: remove crashed uploads' leftovers older than this (ParseDuration; 0s = all).
  std::string cleanup_older_than = "24h";
  std::string output = "text";  // list: text or json
  // How often backup, verify and restore log a progress line.
  std::chrono::milliseconds progress_interval{5000};
};

struct ScheduleOptions {
  std::string next;   // cron expression
  std::string after;  // RFC 3339; default now
  int count = 1;
  std::string config;   // the standalone scheduler's YAML configuration
  bool status = false;  // with config: print the persisted status and exit
};

// The one-shot commands run under `ctx`: cancelled by SIGTERM/SIGINT, bounded by --timeout.
// A failure prints its result JSON (backup::ErrorToJson) and returns backup::ExitCodeFor().

// `bao-backup backup`: one backup; prints the result JSON as the last stdout line.
int RunBackupCommand(const Context& ctx, const Flags& flags, const CommandOptions& opts);
// `bao-backup list`: this cluster's backups, newest first.
int RunListCommand(const Context& ctx, const Flags& flags, const CommandOptions& opts);
// `bao-backup verify`: checksum and archive checks of one stored backup.
int RunVerifyCommand(const Context& ctx, const Flags& flags, const CommandOptions& opts);
// `bao-backup restore`: stream one backup into OpenBao.
int RunRestoreCommand(const Context& ctx, const Flags& flags, const CommandOptions& opts);
// `bao-backup prune`: apply retention.
int RunPruneCommand(const Context& ctx, const Flags& flags, const CommandOptions& opts);
// `bao-backup schedule --next`: the next run times of a cron expression.
int RunScheduleNextCommand(const ScheduleOptions& opts);
// `bao-backup schedule --config FILE [--status]`: the standalone scheduler (docs/scheduler.md)
// until SIGTERM/SIGINT, or with --status the persisted status of every configured cluster.
int RunScheduleCommand(const ScheduleOptions& opts);

}  // namespace bao::cli

namespace bao::cli {

struct OperatorOptions {
  std::vector<std::string> watch_namespaces;  // empty = all namespaces
  std::string lease_namespace;                // default $POD_NAMESPACE, else the config's namespace
  std::string lease_name = "bao-backup-operator";
  std::string metrics_bind_address = ":8080";
  std::vector<std::string> controllers = {"backup", "restore"};
  std::string image;       // default executor image; default $BAO_BACKUP_IMAGE
  std::string kubeconfig;  // "" = in-cluster, $KUBECONFIG or ~/.kube/config
};

// `bao-backup operator`: the backup manager until SIGTERM/SIGINT (cli/operator_command.cc).
int RunOperatorCommand(const Context& ctx, const OperatorOptions& opts);

}  // namespace bao::cli
