#include "cli/app.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>

#include "backup/backup.h"
#include "cli/commands.h"
#include "cli/settings.h"
#include "common/cancel.h"
#include "common/log.h"
#include "common/time.h"

namespace bao::cli {
namespace {

template <typename T>
void Opt(CLI::App* app, const std::string& name, std::optional<T>* target,
         const std::string& help) {
  app->add_option_function<T>(
      name, [target](const T& v) { *target = v; }, help);
}

void Flag(CLI::App* app, const std::string& name, std::optional<bool>* target,
          const std::string& help) {
  app->add_flag_function(
      name, [target](int64_t n) { *target = n > 0; }, help);
}

void AddConnectionFlags(CLI::App* app, Flags* f) {
  app->add_option("--bao-addr", f->bao_addr,
                  "OpenBao node address(es) to ask for the leader; repeatable or comma-separated "
                  "(env BAO_ADDR)")
      ->group("OpenBao");
  Opt(app, "--bao-cacert", &f->bao_cacert,
      "CA bundle for OpenBao's TLS certificate (env BAO_CACERT)");
  Flag(app, "--bao-skip-verify", &f->bao_skip_verify,
       "do not verify OpenBao's TLS certificate (env BAO_SKIP_VERIFY; testing only)");
  Opt(app, "--bao-token", &f->bao_token, "static OpenBao token (env BAO_TOKEN)");
  Opt(app, "--bao-token-file", &f->bao_token_file, "file holding a static OpenBao token");
  Opt(app, "--jwt-role", &f->jwt_role, "log in with JWT auth using this role");
  Opt(app, "--jwt-token-file", &f->jwt_token_file,
      std::string("the JWT (projected ServiceAccount token); default ") +
          openbao::kDefaultJwtTokenFile);
  Opt(app, "--jwt-mount", &f->jwt_mount,
      std::string("JWT auth mount; default ") + openbao::kDefaultJwtMount);
  Opt(app, "--leader-wait", &f->leader_wait,
      "how long to wait for an active node, e.g. 60s (default 60s)");
  Opt(app, "--source-stall-timeout", &f->source_stall_timeout,
      "the snapshot stream fails as stalled when no byte arrives for this long (default 60s)");
}

void AddTargetFlags(CLI::App* app, Flags* f) {
  app->add_option("--config", f->config_file, "YAML file in the shape of spec.backup");
  Opt(app, "--provider", &f->provider, "file (default without --config), s3, gcs or azure");
  Opt(app, "--endpoint", &f->endpoint, "storage endpoint URL");
  Opt(app, "--bucket", &f->bucket, "bucket, Azure container, or root directory for file");
  Opt(app, "--path-prefix", &f->path_prefix, "key prefix");
  Opt(app, "--credentials-dir", &f->credentials_dir,
      "directory with credential files named after the Secret keys (accessKeyId, ...)");
  Opt(app, "--part-size", &f->part_size, "bytes per multipart part (default 10485760)");
  Opt(app, "--concurrency", &f->concurrency, "parts in flight, 1..10 (default 3)");
  Opt(app, "--region", &f->region, "S3 region (default us-east-1)");
  Opt(app, "--role-arn", &f->role_arn, "S3: assume this role with web identity");
  Flag(app, "--use-path-style", &f->use_path_style, "S3: path-style addressing (MinIO, Ceph)");
  Opt(app, "--gcs-project", &f->gcs_project, "GCS project");
  Opt(app, "--storage-account", &f->storage_account, "Azure storage account");
  Opt(app, "--container", &f->container, "Azure container (default: --bucket)");
  Flag(app, "--insecure-skip-verify", &f->insecure_skip_verify,
       "do not verify the storage endpoint's TLS certificate (emulators only)");
  app->add_option("--extra-target", f->extra_target_files,
                  "backup: also write each backup to the target in this YAML file (one "
                  "BackupTarget, with name and credentialsDir); repeatable");
  Opt(app, "--target", &f->target_name,
      "list, verify, restore, prune: use this target (primary, the default, or an extra "
      "target's name)");
  Opt(app, "--sse", &f->sse, "S3 server-side encryption: AES256 or aws:kms");
  Opt(app, "--kms-key-id", &f->kms_key_id, "S3: the KMS key of --sse aws:kms");
  Opt(app, "--kms-key-name", &f->kms_key_name, "GCS: the Cloud KMS key (CMEK) of new objects");
  Opt(app, "--encryption-scope", &f->encryption_scope, "Azure: the encryption scope of new blobs");
  Opt(app, "--object-lock-mode", &f->object_lock_mode,
      "lock every backup written: GOVERNANCE or COMPLIANCE (GCS/Azure: also Unlocked, Locked)");
  Opt(app, "--object-lock-retain-days", &f->object_lock_retain_days,
      "days each backup stays locked after it is written (with --object-lock-mode)");
  Opt(app, "--namespace", &f->ns, "namespace segment of backup names (default \"default\")");
  Opt(app, "--cluster", &f->cluster, "cluster segment of backup names");
}

void AddRetentionFlags(CLI::App* app, Flags* f) {
  Opt(app, "--max-count", &f->max_count, "keep the N newest backups (0 = unlimited)");
  Opt(app, "--max-age", &f->max_age, "delete backups older than this (e.g. 168h, 7d)");
  Opt(app, "--keep-daily", &f->keep_daily, "keep the newest backup of each of the last N days");
  Opt(app, "--keep-weekly", &f->keep_weekly, "keep the newest backup of each of the last N weeks");
  Opt(app, "--keep-monthly", &f->keep_monthly,
      "keep the newest backup of each of the last N months");
}

// CLI11's parse errors quote the command line (a mistyped "--bao-tokn s.123" is echoed whole):
// every value given on it is replaced by "<value>" (option and subcommand names stay).
std::string WithoutArgumentValues(std::string message, int argc, char** argv, const CLI::App& app) {
  std::vector<std::string> values;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    size_t eq = arg.find('=');
    if (arg.starts_with("-")) {
      if (eq != std::string::npos) values.push_back(arg.substr(eq + 1));
      continue;
    }
    bool subcommand = false;
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
      subcommand = subcommand || sub->get_name() == arg;
    }
    if (!subcommand) values.push_back(arg);
  }
  // Longest first, so that a value containing a shorter one is replaced whole.
  std::sort(values.begin(), values.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const std::string& v : values) {
    if (v.empty()) continue;
    for (size_t at = message.find(v); at != std::string::npos; at = message.find(v, at + 7)) {
      message.replace(at, v.size(), "<value>");
    }
  }
  return message;
}

void AddSelectorFlags(CLI::App* app, CommandOptions* o) {
  app->add_option("--key", o->key, "the backup's object key");
  app->add_flag("--latest", o->latest, "the newest backup of --namespace/--cluster");
  app->add_option("--before", o->before,
                  "the newest backup strictly older than this RFC 3339 time");
}

}  // namespace

int RunCli(int argc, char** argv) {
  CLI::App app{"bao-backup: backups and disaster recovery for OpenBao Raft clusters"};
  app.require_subcommand(1);
  app.fallthrough();  // --log-format, --timeout & co. also after the subcommand
  app.set_version_flag("--version", "bao-backup 0.1.0");
  Flags flags;
  std::string log_format = "text", log_level = "info";
  std::string timeout = "12h", shutdown_grace = "20s", progress_interval = "5s";
  app.add_option("--progress-interval", progress_interval,
                 "how often backup, verify and restore log their progress (default 5s)");
  app.add_option("--timeout", timeout,
                 "the whole command's deadline; past it the run fails in the step it reached "
                 "(default 12h)");
  app.add_option("--shutdown-grace", shutdown_grace,
                 "after SIGTERM/SIGINT, in-flight work is aborted and the process exits within "
                 "this time (exit code 7; default 20s)");
  Opt(&app, "--storage-stall-timeout", &flags.storage_stall_timeout,
      "a storage request (S3, GCS, Azure) fails as stalled, and is retried, when no byte moves "
      "for this long (default 60s; backup, restore, verify, list, prune)");
  app.add_option("--log-format", log_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--log-level", log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));

  CommandOptions opts;

  CLI::App* backup_cmd = app.add_subcommand("backup", "take one snapshot and store it");
  AddConnectionFlags(backup_cmd, &flags);
  AddTargetFlags(backup_cmd, &flags);
  AddRetentionFlags(backup_cmd, &flags);
  backup_cmd->add_option("--key", opts.key, "object key to write instead of the generated name");
  backup_cmd->add_option("--file-prefix", opts.file_prefix,
                         "file-name prefix before the timestamp, e.g. pre-upgrade-");
  backup_cmd->add_option("--result-file", opts.result_file,
                         "also write the result JSON here (e.g. /dev/termination-log)");
  backup_cmd->add_option("--cleanup-older-than", opts.cleanup_older_than,
                         "first remove this cluster's leftovers of crashed uploads started longer "
                         "ago than this (default 24h; 0s = all of them)");

  CLI::App* restore_cmd =
      app.add_subcommand("restore", "restore a backup into OpenBao (replaces all data)");
  AddConnectionFlags(restore_cmd, &flags);
  AddTargetFlags(restore_cmd, &flags);
  AddSelectorFlags(restore_cmd, &opts);
  restore_cmd->add_flag("--force", opts.force,
                        "use snapshot-force: restore into a new or rebuilt cluster (other keys)");
  restore_cmd->add_flag("--verify-first", opts.verify_first,
                        "verify the whole backup before contacting OpenBao");
  restore_cmd->add_option("--settle-timeout", opts.settle_timeout,
                          "after OpenBao accepts the snapshot, how long to wait for it to apply "
                          "it (or seal) before reporting the cluster's state (default 60s)");
  restore_cmd->add_flag("-y,--yes", opts.yes, "do not ask for confirmation");
  restore_cmd->add_option("--result-file", opts.result_file, "also write the result JSON here");

  CLI::App* verify_cmd =
      app.add_subcommand("verify", "check a stored backup (checksum and archive)");
  AddTargetFlags(verify_cmd, &flags);
  AddSelectorFlags(verify_cmd, &opts);
  verify_cmd->add_option("--result-file", opts.result_file, "also write the result JSON here");

  CLI::App* list_cmd = app.add_subcommand("list", "list this cluster's backups, newest first");
  AddTargetFlags(list_cmd, &flags);
  list_cmd->add_option("-o,--output", opts.output, "text or json")
      ->check(CLI::IsMember({"text", "json"}));

  CLI::App* prune_cmd = app.add_subcommand("prune", "apply retention to this cluster's backups");
  AddTargetFlags(prune_cmd, &flags);
  AddRetentionFlags(prune_cmd, &flags);
  prune_cmd->add_flag("--dry-run", opts.dry_run, "print the plan, delete nothing");
  prune_cmd->add_option("--result-file", opts.result_file, "also write the result JSON here");
  prune_cmd->add_option("--cleanup-older-than", opts.cleanup_older_than,
                        "also remove this cluster's leftovers of crashed uploads started longer "
                        "ago than this (default 24h; 0s = all of them; not with --dry-run)");

  ScheduleOptions sched;
  CLI::App* schedule_cmd =
      app.add_subcommand("schedule", "check cron schedules, or run the standalone scheduler");
  schedule_cmd->add_option("--next", sched.next,
                           "print the next run times of this cron expression and exit");
  schedule_cmd->add_option("--after", sched.after, "with --next: start after this RFC 3339 time");
  schedule_cmd->add_option("--count", sched.count, "with --next: how many run times (default 1)");
  schedule_cmd->add_option("--config", sched.config,
                           "run the standalone scheduler with this YAML file (docs/scheduler.md)");
  schedule_cmd->add_flag("--status", sched.status,
                         "with --config: print each cluster's persisted status and exit");
  CLI::App* operator_cmd = app.add_subcommand("operator", "run the Kubernetes backup manager");
  OperatorOptions op_opts;
  operator_cmd->add_option("--watch-namespace", op_opts.watch_namespaces,
                           "only this namespace's OpenBaoClusters; repeat for several (default: "
                           "all namespaces)");
  operator_cmd->add_option("--lease-namespace", op_opts.lease_namespace,
                           "namespace of the leader-election Lease (default $POD_NAMESPACE)");
  operator_cmd->add_option("--lease-name", op_opts.lease_name, "leader-election Lease name");
  operator_cmd->add_option("--metrics-bind-address", op_opts.metrics_bind_address,
                           "HOST:PORT or :PORT of /metrics, /healthz and /readyz (0 = none; "
                           "default :8080)");
  operator_cmd
      ->add_option("--controllers", op_opts.controllers,
                   "which controllers run: backup (spec.backup of OpenBaoClusters), restore "
                   "(OpenBaoRestores); comma-separated (default backup,restore)")
      ->delimiter(',')
      ->check(CLI::IsMember({"backup", "restore"}));
  operator_cmd->add_option("--image", op_opts.image,
                           "default executor image for backup Jobs (env BAO_BACKUP_IMAGE)");
  operator_cmd->add_option("--kubeconfig", op_opts.kubeconfig,
                           "kubeconfig file (default: in-cluster, $KUBECONFIG, ~/.kube/config)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    log::Err("bao-backup: " + WithoutArgumentValues(e.what(), argc, argv, app) +
             "\nRun with --help for more information.");
    return static_cast<int>(backup::ExitCode::kConfig);
  }
  Result<Duration> deadline = ParseDuration(timeout);
  Result<Duration> grace = ParseDuration(shutdown_grace);
  Result<Duration> interval = ParseDuration(progress_interval);
  if (!deadline.ok() || deadline->count() == 0 || !grace.ok() || !interval.ok()) {
    log::Err("bao-backup: " + (!deadline.ok() ? "--timeout: " + deadline.status().message()
                               : !grace.ok()  ? "--shutdown-grace: " + grace.status().message()
                               : !interval.ok()
                                   ? "--progress-interval: " + interval.status().message()
                                   : std::string("--timeout: must be more than 0s")));
    return static_cast<int>(backup::ExitCode::kConfig);
  }
  opts.progress_interval = *interval;
  log::Level level = log::Level::kInfo;
  log::ParseLevel(log_level, &level);
  log::SetLevel(level);
  log::SetFormat(log_format == "json" ? log::Format::kJson : log::Format::kText);
  if (flags.bao_token) {
    log::Warn(
        "--bao-token on the command line is visible to every user of this machine (ps); "
        "prefer --bao-token-file or the BAO_TOKEN environment variable");
  }
  if (flags.storage_stall_timeout && (*schedule_cmd || *operator_cmd)) {
    // Their stores are opened from their own configuration, with the default stall time.
    log::Err(
        "bao-backup: --storage-stall-timeout applies to backup, restore, verify, list and "
        "prune, not to " +
        std::string(*schedule_cmd ? "schedule" : "operator"));
    return static_cast<int>(backup::ExitCode::kConfig);
  }
  if (*schedule_cmd) {  // the scheduler takes its signals itself (graceful drain)
    if (!sched.next.empty()) return RunScheduleNextCommand(sched);
    if (!sched.config.empty()) return RunScheduleCommand(sched);
    log::Err("bao-backup schedule: give --next EXPR or --config FILE");
    return static_cast<int>(backup::ExitCode::kConfig);
  }
  // The root of every context: SIGTERM/SIGINT cancel it; the process ends at the latest
  // --shutdown-grace later, with the cancellation exit code.
  static CancelSource root;
  HandleTerminationSignals(&root, *grace, static_cast<int>(backup::ExitCode::kCancelled));
  if (*operator_cmd) return RunOperatorCommand(Context(&root), op_opts);
  const Context ctx = Context(&root).WithTimeout(*deadline);
  if (*backup_cmd) return RunBackupCommand(ctx, flags, opts);
  if (*restore_cmd) return RunRestoreCommand(ctx, flags, opts);
  if (*verify_cmd) return RunVerifyCommand(ctx, flags, opts);
  if (*list_cmd) return RunListCommand(ctx, flags, opts);
  if (*prune_cmd) return RunPruneCommand(ctx, flags, opts);
  return static_cast<int>(backup::ExitCode::kConfig);
}

}  // namespace bao::cli
