#include "cli/commands.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "backup/backup.h"
#include "backup/catalog.h"
#include "backup/prune.h"
#include "backup/restore.h"
#include "backup/verify.h"
#include "common/cancel.h"
#include "common/files.h"
#include "common/log.h"
#include "common/progress.h"
#include "common/redact.h"
#include "schedule/cron.h"
#include "schedule/metrics.h"
#include "schedule/scheduler.h"

namespace bao::cli {
namespace {

using backup::ExitCode;

// Prints `j` as the last line of stdout and, when asked, writes it to `result_file`.
void EmitResult(const nlohmann::json& j, const std::string& result_file) {
  std::string line = Redact(j.dump());
  log::Out(line);
  if (!result_file.empty()) {
    FILE* f = std::fopen(result_file.c_str(), "w");
    if (f == nullptr) {
      log::Warn("cannot write the result file", {{"path", result_file}});
      return;
    }
    std::fputs(line.c_str(), f);
    std::fclose(f);
  }
}

// Every failed command ends here: one error line in the log, the result JSON (error, stage,
// reason, exitCode) on stdout and in the result file, and the exit code from the one table.
int Finish(const Status& failure, const std::string& result_file) {
  log::Error(failure.message(),
             {{"stage", StageName(failure.stage())}, {"reason", ReasonName(failure.reason())}});
  EmitResult(backup::ErrorToJson(failure), result_file);
  return static_cast<int>(backup::ExitCodeFor(failure));
}

Status ConfigFailure(const Status& s) {
  return s.InStage(Stage::kConfig);
}

}  // namespace

int RunBackupCommand(const Context& ctx, const Flags& flags, const CommandOptions& opts) {
  Result<Settings> settings = ResolveSettings(flags, ProcessEnv());
  if (!settings.ok()) return Finish(ConfigFailure(settings.status()), opts.result_file);
  if (Status s = ValidateTargetSettings(*settings); !s.ok()) {
    return Finish(ConfigFailure(s), opts.result_file);
  }
  if (opts.key.empty() && settings->cluster.empty()) {
    return Finish(ConfigFailure(InvalidArgument("--cluster is required to name the backup (or "
                                                "give --key)")),
                  opts.result_file);
  }
  if (flags.target_name && *flags.target_name != "primary") {
    return Finish(ConfigFailure(InvalidArgument(
                      "--target: a backup writes to the primary target and every extra target; "
                      "--target is for list, verify, restore and prune")),
                  opts.result_file);
  }
  // Everything that can be checked without the network, before the store is created.
  if (Status s = openbao::ValidateConnection(settings->connection); !s.ok()) {
    return Finish(ConfigFailure(s), opts.result_file);
  }
  Result<Duration> cleanup_age = ParseDuration(opts.cleanup_older_than);
  if (!cleanup_age.ok()) {
    return Finish(ConfigFailure(cleanup_age.status().WithContext("--cleanup-older-than")),
                  opts.result_file);
  }
  Result<std::unique_ptr<storage::Store>> store =
      storage::OpenStore(settings->spec.target, settings->store);
  if (!store.ok()) return Finish(store.status(), opts.result_file);

  backup::CopyTargets copies =
      backup::OpenCopyTargets(settings->spec.extra_targets, settings->store);

  backup::BackupRequest req;
  req.copies = copies.copies;
  req.cleanup_older_than = *cleanup_age;
  req.connection = settings->connection;
  req.auth = settings->auth;
  req.target = settings->spec.target;
  req.ns = settings->ns;
  req.cluster = settings->cluster;
  req.key = opts.key;
  req.file_prefix = opts.file_prefix;
  ProgressReporter progress("backup", std::nullopt, opts.progress_interval);
  req.on_progress = [&progress](uint64_t bytes) { progress.Update(bytes); };
  Result<backup::BackupResult> result = backup::RunBackup(ctx, req, store->get());
  if (!result.ok()) return Finish(result.status(), opts.result_file);
  log::Info("backup stored and verified", {{"key", result->key},
                                           {"size", std::to_string(result->size)},
                                           {"sha256", result->sha256},
                                           {"duration", FormatDuration(result->duration)}});
  if (!settings->spec.retention.empty() && !settings->cluster.empty()) {
    backup::PruneCopies(ctx, settings->spec.extra_targets, copies, settings->ns, settings->cluster,
                        settings->spec.retention, SystemClock().Now(), *cleanup_age, &*result);
  }
  nlohmann::json out = result->ToJson();
  if (!settings->spec.retention.empty() && !settings->cluster.empty()) {
    backup::PruneResult pruned;
    Status s = backup::Prune(ctx, store->get(), settings->spec.target.path_prefix, settings->ns,
                             settings->cluster, settings->spec.retention, SystemClock().Now(),
                             /*dry_run=*/false, &pruned, *cleanup_age, result->key);
    // Counts only: this line is the Job's termination message, which the kubelet cuts at 4096
    // bytes. Prune() logged each kept and deleted key.
    const backup::RetentionDecision* oldest = pruned.oldest_kept();
    out["pruned"] = pruned.deleted.size();
    out["kept"] = pruned.kept();
    out["oldestKept"] = oldest != nullptr ? nlohmann::json(oldest->backup.key) : nullptr;
    if (!s.ok()) {
      // The backup itself succeeded; a retention failure is reported, not hidden.
      log::Error("retention failed after a successful backup", {{"error", s.message()}});
      out["retentionError"] = s.message();
    }
  }
  EmitResult(out, opts.result_file);
  return 0;
}

}  // namespace bao::cli

namespace bao::cli {
namespace {

using backup::ExitCode;

// Settings resolved and the store opened.
struct Opened {
  Settings settings;
  std::unique_ptr<storage::Store> store;
};

// Resolves settings (and, with `need_openbao`, checks the OpenBao connection settings) and
// opens the store; on failure returns the exit code via `code`.
std::optional<Opened> Open(const Flags& flags, const std::string& result_file, bool need_cluster,
                           bool need_openbao, int* code) {
  Result<Settings> settings = ResolveSettings(flags, ProcessEnv());
  Status s = settings.ok() ? ValidateTargetSettings(*settings) : settings.status();
  if (s.ok()) s = SelectTarget(flags.target_name.value_or(""), &*settings);
  if (s.ok() && need_cluster && settings->cluster.empty()) {
    s = InvalidArgument("--cluster is required to find this cluster's backups");
  }
  if (s.ok() && need_openbao) s = openbao::ValidateConnection(settings->connection);
  if (!s.ok()) {
    *code = Finish(ConfigFailure(s), result_file);
    return std::nullopt;
  }
  Result<std::unique_ptr<storage::Store>> store =
      storage::OpenStore(settings->spec.target, settings->store);
  if (!store.ok()) {
    *code = Finish(store.status(), result_file);
    return std::nullopt;
  }
  return Opened{std::move(*settings), std::move(store).value()};
}

Result<std::string> ChooseKey(const Context& ctx, Opened& o, const CommandOptions& opts,
                              bool verifiable_only = false) {
  backup::Selector sel;
  sel.key = opts.key;
  sel.latest = opts.latest;
  sel.verifiable_only = verifiable_only;
  if (!opts.before.empty()) {
    Result<TimePoint> t = ParseRfc3339(opts.before);
    if (!t.ok()) return ConfigFailure(InvalidArgument("--before: " + t.status().message()));
    sel.before = *t;
  }
  if (opts.key.empty() && o.settings.cluster.empty()) {
    return ConfigFailure(InvalidArgument("--latest and --before need --cluster (and --namespace)"));
  }
  return backup::SelectBackup(ctx, o.store.get(), o.settings.spec.target.path_prefix, o.settings.ns,
                              o.settings.cluster, sel);
}

bool ConfirmOnTerminal(const std::string& question) {
  if (!isatty(STDIN_FILENO)) return false;
  log::Err(question);
  std::fputs("Type \"yes\" to continue: ", stderr);
  std::fflush(stderr);
  char answer[16] = {0};
  if (std::fgets(answer, sizeof answer, stdin) == nullptr) return false;
  return std::string(answer) == "yes\n";
}

}  // namespace

int RunListCommand(const Context& ctx, const Flags& flags, const CommandOptions& opts) {
  int code = 0;
  std::optional<Opened> o = Open(flags, "", true, false, &code);
  if (!o) return code;
  Result<std::vector<backup::BackupEntry>> entries =
      backup::ListBackups(ctx, o->store.get(), o->settings.spec.target.path_prefix, o->settings.ns,
                          o->settings.cluster, true);
  if (!entries.ok()) return Finish(entries.status(), "");
  if (opts.output == "json") {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& e : *entries) {
      // "lock": the object's lock as the store reports it (null: none, or not reported).
      nlohmann::json lock = nullptr;
      if (!e.info.lock_mode.empty()) {
        lock = {{"mode", e.info.lock_mode}, {"until", FormatRfc3339(e.info.locked_until)}};
      }
      arr.push_back({{"key", e.name.key},
                     {"time", FormatRfc3339(e.name.time)},
                     {"size", e.info.size},
                     {"sha256", e.info.sha256},
                     {"lock", lock}});
    }
    log::Out(arr.dump(2));
    return 0;
  }
  if (entries->empty()) {
    log::Out("no backups of " + o->settings.ns + "/" + o->settings.cluster + " in " +
             o->store->Describe());
    return 0;
  }
  auto row = [](const std::string& time, const std::string& size, const std::string& sha,
                const std::string& key) {
    char line[512];
    std::snprintf(line, sizeof line, "%-20s  %10s  %-64s  ", time.c_str(), size.c_str(),
                  sha.c_str());
    log::Out(line + key);
  };
  row("TIME", "SIZE", "SHA256", "KEY");
  for (const auto& e : *entries) {
    row(FormatRfc3339(e.name.time), FormatBytes(e.info.size),
        e.info.sha256.empty() ? "(none recorded)" : e.info.sha256, e.name.key);
  }
  return 0;
}

int RunVerifyCommand(const Context& ctx, const Flags& flags, const CommandOptions& opts) {
  int code = 0;
  std::optional<Opened> o = Open(flags, opts.result_file, false, false, &code);
  if (!o) return code;
  Result<std::string> key = ChooseKey(ctx, *o, opts);
  if (!key.ok()) return Finish(key.status(), opts.result_file);
  std::optional<uint64_t> size;
  if (Result<storage::ObjectInfo> info = o->store->Stat(ctx, *key); info.ok()) size = info->size;
  ProgressReporter progress("verify", size, opts.progress_interval);
  Result<backup::VerifyReport> report = backup::VerifyBackup(
      ctx, o->store.get(), *key, [&progress](uint64_t bytes) { progress.Update(bytes); });
  if (!report.ok()) return Finish(report.status(), opts.result_file);
  log::Info("backup verified", {{"key", *key}, {"sha256", report->sha256}});
  nlohmann::json out = report->ToJson();
  for (const auto& check : out["checks"]) {
    log::Err("  ok  " + check.get<std::string>());
  }
  EmitResult(out, opts.result_file);
  return 0;
}

int RunRestoreCommand(const Context& ctx, const Flags& flags, const CommandOptions& opts) {
  int code = 0;
  std::optional<Opened> o = Open(flags, opts.result_file, false, true, &code);
  if (!o) return code;
  Result<Duration> settle = ParseDuration(opts.settle_timeout);
  if (!settle.ok()) {
    return Finish(ConfigFailure(InvalidArgument("--settle-timeout: " + settle.status().message())),
                  opts.result_file);
  }
  Result<std::string> key = ChooseKey(ctx, *o, opts, /*verifiable_only=*/true);
  if (!key.ok()) return Finish(key.status(), opts.result_file);
  if (!opts.yes) {
    std::string question =
        "Restoring " + *key + " replaces ALL data of the OpenBao cluster at " +
        (o->settings.connection.addresses.empty() ? std::string("(no address)")
                                                  : o->settings.connection.addresses.front()) +
        (opts.force ? " (forced: also into a cluster with other keys)." : ".");
    if (!isatty(STDIN_FILENO)) {
      return Finish(ConfigFailure(InvalidArgument("a restore replaces all data; pass --yes to "
                                                  "confirm when not running on a terminal")),
                    opts.result_file);
    }
    if (!ConfirmOnTerminal(question)) {
      return Finish(ConfigFailure(Aborted("restore not confirmed")), opts.result_file);
    }
  }
  backup::RestoreRequest req;
  req.connection = o->settings.connection;
  req.auth = o->settings.auth;
  req.key = *key;
  req.force = opts.force;
  req.verify_first = opts.verify_first;
  req.settle_timeout = std::chrono::duration_cast<std::chrono::seconds>(*settle);
  std::optional<uint64_t> size;
  if (Result<storage::ObjectInfo> info = o->store->Stat(ctx, *key); info.ok()) size = info->size;
  ProgressReporter progress("restore", size, opts.progress_interval);
  Result<backup::RestoreResult> result = backup::RunRestore(
      ctx, req, o->store.get(), [&progress](uint64_t bytes) { progress.Update(bytes); });
  if (!result.ok()) return Finish(result.status(), opts.result_file);
  log::Info("restore completed", {{"key", *key},
                                  {"leader", result->leader},
                                  {"sealed", result->sealed ? "true" : "false"},
                                  {"clusterIdBefore", result->cluster_id_before},
                                  {"clusterIdAfter", result->cluster_id_after}});
  EmitResult(result->ToJson(), opts.result_file);
  return 0;
}

int RunPruneCommand(const Context& ctx, const Flags& flags, const CommandOptions& opts) {
  int code = 0;
  std::optional<Opened> o = Open(flags, opts.result_file, true, false, &code);
  if (!o) return code;
  if (o->settings.spec.retention.empty()) {
    return Finish(ConfigFailure(InvalidArgument("no retention rule given: use --max-count, "
                                                "--max-age or --keep-daily/weekly/monthly")),
                  opts.result_file);
  }
  Result<Duration> cleanup_age = ParseDuration(opts.cleanup_older_than);
  if (!cleanup_age.ok()) {
    return Finish(ConfigFailure(cleanup_age.status().WithContext("--cleanup-older-than")),
                  opts.result_file);
  }
  backup::PruneResult result;
  Status s = backup::Prune(ctx, o->store.get(), o->settings.spec.target.path_prefix, o->settings.ns,
                           o->settings.cluster, o->settings.spec.retention, SystemClock().Now(),
                           opts.dry_run, &result, *cleanup_age);
  // The plan (each key: kept, deleted or would be, and why) was logged by Prune(); the result
  // holds counts only, whatever the number of backups.
  nlohmann::json out = result.ToJson();
  if (!s.ok()) {
    // What was deleted before the failure is reported beside the error, never as a success.
    log::Error(s.message(), {{"stage", StageName(s.stage())}, {"reason", ReasonName(s.reason())}});
    out.update(backup::ErrorToJson(s));
    EmitResult(out, opts.result_file);
    return static_cast<int>(backup::ExitCodeFor(s));
  }
  EmitResult(out, opts.result_file);
  return 0;
}

int RunScheduleNextCommand(const ScheduleOptions& opts) {
  Result<CronSchedule> cron = CronSchedule::Parse(opts.next);
  if (!cron.ok()) {
    log::Err("bao-backup: " + cron.status().message());
    return static_cast<int>(ExitCode::kConfig);
  }
  TimePoint after = SystemClock().Now();
  if (!opts.after.empty()) {
    Result<TimePoint> t = ParseRfc3339(opts.after);
    if (!t.ok()) {
      log::Err("bao-backup: --after: " + t.status().message());
      return static_cast<int>(ExitCode::kConfig);
    }
    after = *t;
  }
  if (opts.count < 1 || opts.count > 10000) {
    log::Err("bao-backup: --count must be between 1 and 10000");
    return static_cast<int>(ExitCode::kConfig);
  }
  for (TimePoint t : cron->NextN(after, opts.count)) {
    if (t == CronSchedule::kNever) break;
    log::Out(FormatRfc3339(t));
  }
  return 0;
}

int RunScheduleCommand(const ScheduleOptions& opts) {
  Result<schedule::SchedulerConfig> cfg = schedule::LoadSchedulerConfig(opts.config);
  if (!cfg.ok()) {
    log::Err("bao-backup: " + cfg.status().message());
    return static_cast<int>(ExitCode::kConfig);
  }
  if (opts.status) {
    Result<schedule::SchedulerState> state = schedule::LoadState(cfg->state_file);
    if (!state.ok()) {
      log::Err("bao-backup: " + state.status().message());
      return static_cast<int>(ExitCode::kConfig);
    }
    nlohmann::json out = {{"stateFile", cfg->state_file}, {"clusters", nlohmann::json::array()}};
    if (!state->metrics_address.empty()) out["metricsAddress"] = state->metrics_address;
    for (const schedule::ClusterConfig& c : cfg->clusters) {
      auto it = state->clusters.find(c.Key());
      out["clusters"].push_back({{"namespace", c.ns},
                                 {"name", c.name},
                                 {"schedule", c.schedule.ToString()},
                                 {"status", it == state->clusters.end() ? nlohmann::json::object()
                                                                        : it->second.ToJson()}});
    }
    log::Out(out.dump(2));
    return 0;
  }

  // Signals are taken by a dedicated thread (blocked everywhere else, including in the threads
  // started below), so the first one can grant running uploads their grace period instead of
  // cancelling them at once. A second signal cancels at once.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  schedule::Scheduler scheduler(*cfg, &SystemClock(), schedule::DefaultHooks(&SystemClock()));
  if (Status s = scheduler.Start(); !s.ok()) {
    log::Err("bao-backup: " + s.message());
    return static_cast<int>(ExitCode::kConfig);
  }
  schedule::MetricsServer metrics([&scheduler] { return scheduler.Snapshot(); });
  if (!cfg->metrics_address.empty()) {
    Result<std::string> bound = metrics.Start(cfg->metrics_address);
    if (!bound.ok()) {
      log::Err("bao-backup: " + bound.status().message());
      return static_cast<int>(ExitCode::kConfig);
    }
    scheduler.SetMetricsAddress(*bound);
  }
  log::Info("scheduler running",
            {{"clusters", std::to_string(cfg->clusters.size())}, {"stateFile", cfg->state_file}});

  std::atomic<bool> done{false};
  std::thread shutdown_thread;
  std::thread signal_thread([&] {
    int received = 0;
    timespec poll = {0, 200 * 1000 * 1000};
    while (!done) {
      int sig = sigtimedwait(&signals, nullptr, &poll);
      if (sig < 0) continue;
      if (++received == 1) {
        log::Info("signal received: stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
        shutdown_thread = std::thread([&scheduler] { scheduler.Shutdown(); });
      } else {
        log::Warn("second signal: cancelling running backups now");
        scheduler.CancelAll();
      }
    }
  });
  scheduler.Run();
  done = true;
  signal_thread.join();
  if (shutdown_thread.joinable()) shutdown_thread.join();
  metrics.Stop();
  log::Info("scheduler stopped");
  return 0;
}

}  // namespace bao::cli
