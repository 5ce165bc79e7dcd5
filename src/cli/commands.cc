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
  std::fprintf(stdout, "%s\n", line.c_str());
  std::fflush(stdout);
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

int Finish(const backup::Failure& failure, const std::string& result_file) {
  log::Error(failure.status.message(), {{"stage", backup::StageName(failure.code)}});
  EmitResult(backup::FailureToJson(failure), result_file);
  return static_cast<int>(failure.code);
}

}  // namespace

int RunBackupCommand(const Flags& flags, const CommandOptions& opts) {
  Result<Settings> settings = ResolveSettings(flags, ProcessEnv());
  if (!settings.ok()) {
    return Finish(backup::Fail(ExitCode::kConfig, settings.status()), opts.result_file);
  }
  if (Status s = ValidateTargetSettings(*settings); !s.ok()) {
    return Finish(backup::Fail(ExitCode::kConfig, s), opts.result_file);
  }
  if (opts.key.empty() && settings->cluster.empty()) {
    return Finish(backup::Fail(ExitCode::kConfig,
                               InvalidArgument("--cluster is required to name the backup (or "
                                               "give --key)")),
                  opts.result_file);
  }
  Result<std::unique_ptr<storage::Store>> store = storage::OpenStore(settings->spec.target);
  if (!store.ok()) {
    ExitCode code = store.status().code() == Code::kInvalidArgument ||
                            store.status().code() == Code::kFailedPrecondition
                        ? ExitCode::kConfig
                        : ExitCode::kStorage;
    return Finish(backup::Fail(code, store.status()), opts.result_file);
  }

  backup::BackupRequest req;
  req.connection = settings->connection;
  req.auth = settings->auth;
  req.target = settings->spec.target;
  req.ns = settings->ns;
  req.cluster = settings->cluster;
  req.key = opts.key;
  req.file_prefix = opts.file_prefix;
  auto start = std::chrono::steady_clock::now();
  req.on_progress = [start](uint64_t bytes) {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    char line[128];
    std::snprintf(line, sizeof line, "streamed %s (%.0f MiB/s)", FormatBytes(bytes).c_str(),
                  secs > 0 ? static_cast<double>(bytes) / (1 << 20) / secs : 0.0);
    log::Progress(line);
  };
  backup::Failure failure;
  // Cancelled by SIGTERM/SIGINT through the process-wide flag (InstallCancelSignalHandlers).
  bao::Context run_ctx(ProcessCancelSource());
  Result<backup::BackupResult> result = backup::RunBackup(run_ctx, req, store->get(), &failure);
  log::ProgressDone();
  if (!result.ok()) return Finish(failure, opts.result_file);
  log::Info("backup stored and verified", {{"key", result->key},
                                           {"size", std::to_string(result->size)},
                                           {"sha256", result->sha256},
                                           {"duration", FormatDuration(result->duration)}});
  nlohmann::json out = result->ToJson();
  if (!settings->spec.retention.empty() && !settings->cluster.empty()) {
    backup::PruneResult pruned;
    Status s = backup::Prune(run_ctx, store->get(), settings->spec.target.path_prefix,
                             settings->ns, settings->cluster, settings->spec.retention,
                             SystemClock().Now(), /*dry_run=*/false, &pruned);
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

// Resolves settings and opens the store; on failure returns the exit code via `code`.
struct Context {
  Settings settings;
  std::unique_ptr<storage::Store> store;
};

std::optional<Context> OpenContext(const Flags& flags, const std::string& result_file,
                                   bool need_cluster, int* code) {
  Result<Settings> settings = ResolveSettings(flags, ProcessEnv());
  Status s = settings.ok() ? ValidateTargetSettings(*settings) : settings.status();
  if (s.ok() && need_cluster && settings->cluster.empty()) {
    s = InvalidArgument("--cluster is required to find this cluster's backups");
  }
  if (!s.ok()) {
    *code = Finish(backup::Fail(ExitCode::kConfig, s), result_file);
    return std::nullopt;
  }
  Result<std::unique_ptr<storage::Store>> store = storage::OpenStore(settings->spec.target);
  if (!store.ok()) {
    ExitCode c = store.status().code() == Code::kInvalidArgument ||
                         store.status().code() == Code::kFailedPrecondition
                     ? ExitCode::kConfig
                     : ExitCode::kStorage;
    *code = Finish(backup::Fail(c, store.status()), result_file);
    return std::nullopt;
  }
  return Context{std::move(*settings), std::move(store).value()};
}

Result<std::string> ChooseKey(Context& ctx, const CommandOptions& opts,
                              bool verifiable_only = false) {
  backup::Selector sel;
  sel.key = opts.key;
  sel.latest = opts.latest;
  sel.verifiable_only = verifiable_only;
  if (!opts.before.empty()) {
    Result<TimePoint> t = ParseRfc3339(opts.before);
    if (!t.ok()) return InvalidArgument("--before: " + t.status().message());
    sel.before = *t;
  }
  if (opts.key.empty() && ctx.settings.cluster.empty()) {
    return InvalidArgument("--latest and --before need --cluster (and --namespace)");
  }
  return backup::SelectBackup(bao::Context(ProcessCancelSource()), ctx.store.get(),
                              ctx.settings.spec.target.path_prefix, ctx.settings.ns,
                              ctx.settings.cluster, sel);
}

int KeyFailure(const Status& s, const std::string& result_file) {
  // A selector that matches nothing is a usage problem; a listing that failed (a missing
  // bucket included) is a storage failure.
  ExitCode code = s.code() == Code::kInvalidArgument || s.code() == Code::kFailedPrecondition
                      ? ExitCode::kConfig
                      : ExitCode::kStorage;
  return Finish(backup::Fail(code, s), result_file);
}

bool ConfirmOnTerminal(const std::string& question) {
  if (!isatty(STDIN_FILENO)) return false;
  std::fprintf(stderr, "%s\nType \"yes\" to continue: ", question.c_str());
  std::fflush(stderr);
  char answer[16] = {0};
  if (std::fgets(answer, sizeof answer, stdin) == nullptr) return false;
  return std::string(answer) == "yes\n";
}

}  // namespace

int RunListCommand(const Flags& flags, const CommandOptions& opts) {
  int code = 0;
  std::optional<Context> ctx = OpenContext(flags, "", true, &code);
  if (!ctx) return code;
  Result<std::vector<backup::BackupEntry>> entries =
      backup::ListBackups(bao::Context(ProcessCancelSource()), ctx->store.get(),
                          ctx->settings.spec.target.path_prefix, ctx->settings.ns,
                          ctx->settings.cluster, true);
  if (!entries.ok()) return Finish(backup::Fail(ExitCode::kStorage, entries.status()), "");
  if (opts.output == "json") {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& e : *entries) {
      arr.push_back({{"key", e.name.key},
                     {"time", FormatRfc3339(e.name.time)},
                     {"size", e.info.size},
                     {"sha256", e.info.sha256}});
    }
    std::printf("%s\n", arr.dump(2).c_str());
    return 0;
  }
  if (entries->empty()) {
    std::printf("no backups of %s/%s in %s\n", ctx->settings.ns.c_str(),
                ctx->settings.cluster.c_str(), ctx->store->Describe().c_str());
    return 0;
  }
  std::printf("%-20s  %10s  %-64s  %s\n", "TIME", "SIZE", "SHA256", "KEY");
  for (const auto& e : *entries) {
    std::printf("%-20s  %10s  %-64s  %s\n", FormatRfc3339(e.name.time).c_str(),
                FormatBytes(e.info.size).c_str(),
                e.info.sha256.empty() ? "(none recorded)" : e.info.sha256.c_str(),
                e.name.key.c_str());
  }
  return 0;
}

int RunVerifyCommand(const Flags& flags, const CommandOptions& opts) {
  int code = 0;
  std::optional<Context> ctx = OpenContext(flags, opts.result_file, false, &code);
  if (!ctx) return code;
  Result<std::string> key = ChooseKey(*ctx, opts);
  if (!key.ok()) return KeyFailure(key.status(), opts.result_file);
  backup::Failure failure;
  Result<backup::VerifyReport> report =
      backup::VerifyBackup(bao::Context(ProcessCancelSource()), ctx->store.get(), *key, &failure);
  if (!report.ok()) return Finish(failure, opts.result_file);
  log::Info("backup verified", {{"key", *key}, {"sha256", report->sha256}});
  nlohmann::json out = report->ToJson();
  for (const auto& check : out["checks"]) {
    std::fprintf(stderr, "  ok  %s\n", check.get<std::string>().c_str());
  }
  EmitResult(out, opts.result_file);
  return 0;
}

int RunRestoreCommand(const Flags& flags, const CommandOptions& opts) {
  int code = 0;
  std::optional<Context> ctx = OpenContext(flags, opts.result_file, false, &code);
  if (!ctx) return code;
  Result<Duration> settle = ParseDuration(opts.settle_timeout);
  if (!settle.ok()) {
    return Finish(backup::Fail(ExitCode::kConfig,
                               InvalidArgument("--settle-timeout: " + settle.status().message())),
                  opts.result_file);
  }
  Result<std::string> key = ChooseKey(*ctx, opts, /*verifiable_only=*/true);
  if (!key.ok()) return KeyFailure(key.status(), opts.result_file);
  if (!opts.yes) {
    std::string question =
        "Restoring " + *key + " replaces ALL data of the OpenBao cluster at " +
        (ctx->settings.connection.addresses.empty() ? std::string("(no address)")
                                                    : ctx->settings.connection.addresses.front()) +
        (opts.force ? " (forced: also into a cluster with other keys)." : ".");
    if (!isatty(STDIN_FILENO)) {
      return Finish(backup::Fail(ExitCode::kConfig,
                                 InvalidArgument("a restore replaces all data; pass --yes to "
                                                 "confirm when not running on a terminal")),
                    opts.result_file);
    }
    if (!ConfirmOnTerminal(question)) {
      return Finish(backup::Fail(ExitCode::kConfig, Aborted("restore not confirmed")),
                    opts.result_file);
    }
  }
  backup::RestoreRequest req;
  req.connection = ctx->settings.connection;
  req.auth = ctx->settings.auth;
  req.key = *key;
  req.force = opts.force;
  req.verify_first = opts.verify_first;
  req.settle_timeout = std::chrono::duration_cast<std::chrono::seconds>(*settle);
  backup::Failure failure;
  Result<backup::RestoreResult> result =
      backup::RunRestore(bao::Context(ProcessCancelSource()), req, ctx->store.get(), &failure);
  if (!result.ok()) return Finish(failure, opts.result_file);
  log::Info("restore completed", {{"key", *key},
                                  {"leader", result->leader},
                                  {"sealed", result->sealed ? "true" : "false"},
                                  {"clusterIdBefore", result->cluster_id_before},
                                  {"clusterIdAfter", result->cluster_id_after}});
  EmitResult(result->ToJson(), opts.result_file);
  return 0;
}

int RunPruneCommand(const Flags& flags, const CommandOptions& opts) {
  int code = 0;
  std::optional<Context> ctx = OpenContext(flags, opts.result_file, true, &code);
  if (!ctx) return code;
  if (ctx->settings.spec.retention.empty()) {
    return Finish(backup::Fail(ExitCode::kConfig,
                               InvalidArgument("no retention rule given: use --max-count, "
                                               "--max-age or --keep-daily/weekly/monthly")),
                  opts.result_file);
  }
  backup::PruneResult result;
  Status s = backup::Prune(bao::Context(ProcessCancelSource()), ctx->store.get(),
                           ctx->settings.spec.target.path_prefix, ctx->settings.ns,
                           ctx->settings.cluster, ctx->settings.spec.retention,
                           SystemClock().Now(), opts.dry_run, &result);
  // The plan (each key: kept, deleted or would be, and why) was logged by Prune(); the result
  // holds counts only, whatever the number of backups.
  nlohmann::json out = result.ToJson();
  if (!s.ok()) {
    // What was deleted before the failure is reported beside the error, never as a success.
    backup::Failure failure = backup::Fail(ExitCode::kStorage, s);
    log::Error(s.message(), {{"stage", backup::StageName(failure.code)}});
    out.update(backup::FailureToJson(failure));
    EmitResult(out, opts.result_file);
    return static_cast<int>(failure.code);
  }
  EmitResult(out, opts.result_file);
  return 0;
}

int RunScheduleNextCommand(const ScheduleOptions& opts) {
  Result<CronSchedule> cron = CronSchedule::Parse(opts.next);
  if (!cron.ok()) {
    std::fprintf(stderr, "bao-backup: %s\n", cron.status().message().c_str());
    return static_cast<int>(ExitCode::kConfig);
  }
  TimePoint after = SystemClock().Now();
  if (!opts.after.empty()) {
    Result<TimePoint> t = ParseRfc3339(opts.after);
    if (!t.ok()) {
      std::fprintf(stderr, "bao-backup: --after: %s\n", t.status().message().c_str());
      return static_cast<int>(ExitCode::kConfig);
    }
    after = *t;
  }
  if (opts.count < 1 || opts.count > 10000) {
    std::fprintf(stderr, "bao-backup: --count must be between 1 and 10000\n");
    return static_cast<int>(ExitCode::kConfig);
  }
  for (TimePoint t : cron->NextN(after, opts.count)) {
    if (t == CronSchedule::kNever) break;
    std::printf("%s\n", FormatRfc3339(t).c_str());
  }
  return 0;
}

int RunScheduleCommand(const ScheduleOptions& opts) {
  Result<schedule::SchedulerConfig> cfg = schedule::LoadSchedulerConfig(opts.config);
  if (!cfg.ok()) {
    std::fprintf(stderr, "bao-backup: %s\n", cfg.status().message().c_str());
    return static_cast<int>(ExitCode::kConfig);
  }
  if (opts.status) {
    Result<schedule::SchedulerState> state = schedule::LoadState(cfg->state_file);
    if (!state.ok()) {
      std::fprintf(stderr, "bao-backup: %s\n", state.status().message().c_str());
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
    std::printf("%s\n", Redact(out.dump(2)).c_str());
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
    std::fprintf(stderr, "bao-backup: %s\n", s.message().c_str());
    return static_cast<int>(ExitCode::kConfig);
  }
  schedule::MetricsServer metrics([&scheduler] { return scheduler.Snapshot(); });
  if (!cfg->metrics_address.empty()) {
    Result<std::string> bound = metrics.Start(cfg->metrics_address);
    if (!bound.ok()) {
      std::fprintf(stderr, "bao-backup: %s\n", bound.status().message().c_str());
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
        RequestCancel();
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
