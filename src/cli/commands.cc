#include "cli/commands.h"

#include <cstdio>

#include "backup/backup.h"
#include "common/files.h"
#include "common/log.h"
#include "common/redact.h"

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
  Result<backup::BackupResult> result = backup::RunBackup(req, store->get(), &failure);
  log::ProgressDone();
  if (!result.ok()) return Finish(failure, opts.result_file);
  log::Info("backup stored and verified", {{"key", result->key},
                                           {"size", std::to_string(result->size)},
                                           {"sha256", result->sha256},
                                           {"duration", FormatDuration(result->duration)}});
  EmitResult(result->ToJson(), opts.result_file);
  return 0;
}

}  // namespace bao::cli
