#include "backup/backup.h"

#include "backup/naming.h"
#include "common/async_sink.h"
#include "common/log.h"
#include "common/redact.h"
#include "snapshot/archive_checker.h"

namespace bao::backup {

const char* StageName(ExitCode code) {
  switch (code) {
    case ExitCode::kOk: return "ok";
    case ExitCode::kConfig: return "config";
    case ExitCode::kAuth: return "auth";
    case ExitCode::kLeaderDiscovery: return "leader";
    case ExitCode::kSnapshotRead: return "snapshot";
    case ExitCode::kStorage: return "storage";
    case ExitCode::kVerification: return "verification";
  }
  return "unknown";
}

nlohmann::json BackupResult::ToJson() const {
  return {{"key", key},
          {"size", size},
          {"sha256", sha256},
          {"startTime", FormatRfc3339(started)},
          // When the object was stored and verified (the operator's lastBackupTime).
          {"finishedAt", FormatRfc3339(started + duration)},
          {"duration", FormatDuration(duration)},
          {"durationSeconds", static_cast<double>(duration.count()) / 1000.0},
          {"raftIndex", raft_index},
          {"raftTerm", raft_term},
          {"leader", leader},
          {"store", store}};
}

nlohmann::json FailureToJson(const Failure& failure) {
  nlohmann::json j = {{"error", Redact(failure.status.message())},
                      {"stage", StageName(failure.code)},
                      {"exitCode", static_cast<int>(failure.code)}};
  if (failure.openbao_unchanged) j["openbaoUnchanged"] = *failure.openbao_unchanged;
  return j;
}

namespace {

ExitCode StorageStage(const Status& s) {
  return s.code() == Code::kDataLoss ? ExitCode::kVerification : ExitCode::kStorage;
}

}  // namespace

Result<BackupResult> RunBackup(const Context& ctx, const BackupRequest& req, storage::Store* store,
                               Failure* failure) {
  const Clock& clock = req.clock != nullptr ? *req.clock : SystemClock();
  auto fail = [&](ExitCode code, Status s) -> Status {
    *failure = Fail(code, s);
    return s;
  };

  BackupResult result;
  result.started = clock.Now();
  result.store = store->Describe();
  auto steady_start = std::chrono::steady_clock::now();
  if (!req.key.empty()) {
    result.key = req.key;
  } else {
    if (!IsValidNameSegment(req.ns) || !IsValidNameSegment(req.cluster)) {
      return fail(ExitCode::kConfig,
                  InvalidArgument("namespace \"" + req.ns + "\" and cluster \"" + req.cluster +
                                  "\" must be lower-case DNS labels (a-z, 0-9, '-')"));
    }
    result.key =
        NewBackupKey(req.target.path_prefix, req.ns, req.cluster, result.started, req.file_prefix);
  }
  if (Status s = storage::ValidateKey(result.key); !s.ok()) return fail(ExitCode::kConfig, s);
  if (!req.key.empty()) {
    // Backups are write-once, on every provider: an explicit key that exists is refused before
    // OpenBao is contacted.
    Result<storage::ObjectInfo> existing = store->Stat(ctx, result.key);
    if (existing.ok()) {
      return fail(ExitCode::kConfig,
                  AlreadyExists("--key " + result.key +
                                ": an object with this key already exists "
                                "in " +
                                result.store +
                                "; backups are write-once: choose another key, or delete that "
                                "one first"));
    }
    if (existing.status().code() != Code::kNotFound) {
      return fail(StorageStage(existing.status()),
                  existing.status().WithContext("checking that " + result.key + " is free"));
    }
  }

  openbao::Client bao(req.connection, ctx);
  Result<std::string> leader = bao.FindLeader();
  if (!leader.ok()) {
    ExitCode code = leader.status().code() == Code::kInvalidArgument ? ExitCode::kConfig
                                                                     : ExitCode::kLeaderDiscovery;
    return fail(code, leader.status().WithContext("leader discovery"));
  }
  result.leader = *leader;
  log::Info("found the active OpenBao node", {{"leader", *leader}});

  if (Status s = bao.Login(*leader, req.auth); !s.ok()) {
    bool no_creds =
        s.code() == Code::kInvalidArgument && s.message().starts_with("no OpenBao credentials");
    return fail(no_creds ? ExitCode::kConfig : ExitCode::kAuth, s.WithContext("authentication"));
  }

  Result<std::unique_ptr<storage::ObjectWriter>> writer = store->NewWriter(ctx, result.key);
  if (!writer.ok()) {
    return fail(writer.status().code() == Code::kAlreadyExists ? ExitCode::kConfig
                                                               : StorageStage(writer.status()),
                writer.status().WithContext("opening " + result.key + " in " + result.store));
  }

  // Three threads: this one receives the stream and copies it once into blocks that two more
  // threads consume, each at its own pace: one checks the archive (inflate, tar, and the
  // SHA-256 of the archive itself and of its members, the two large ones computed together),
  // one appends to the store.
  snapshot::ArchiveChecker checker;
  storage::ObjectWriter* out = writer->get();
  constexpr size_t kCheckerStage = 0;
  AsyncSink stages({[&checker](std::string_view block) { return checker.Update(block); },
                    [out, &ctx](std::string_view block) { return out->Append(ctx, block); }},
                   1 << 20, 4);
  auto stage_failure = [&](const Status& s) {
    return stages.failed_consumer() == kCheckerStage
               ? Fail(ExitCode::kVerification, s.WithContext("the snapshot archive is damaged"))
               : Fail(StorageStage(s), s.WithContext("writing " + result.key));
  };
  auto abandon = [&] {
    stages.Stop();  // no Append() runs any more
    out->Abort();
  };
  uint64_t bytes = 0;
  uint64_t next_progress = 64ull << 20;
  Failure sink_failure;
  log::Info("streaming snapshot", {{"key", result.key}, {"store", result.store}});
  Status stream = bao.StreamSnapshot(*leader, [&](std::string_view chunk) -> Status {
    if (ctx.cancelled()) {
      sink_failure = Fail(ExitCode::kSnapshotRead, Aborted("cancelled by signal"));
      return sink_failure.status;
    }
    if (Status s = stages.Push(chunk); !s.ok()) {
      sink_failure = stage_failure(s);
      return sink_failure.status;
    }
    bytes += chunk.size();
    if (bytes >= next_progress) {
      next_progress += 64ull << 20;
      if (req.on_progress) req.on_progress(bytes);
    }
    return Status::Ok();
  });
  if (!stream.ok()) {
    abandon();
    if (sink_failure.code != ExitCode::kOk) {
      *failure = sink_failure;
      return sink_failure.status;
    }
    switch (stream.code()) {
      case Code::kPermissionDenied:
      case Code::kUnauthenticated: return fail(ExitCode::kAuth, stream);
      case Code::kFailedPrecondition: return fail(ExitCode::kLeaderDiscovery, stream);
      default: {
        std::string now = bao.LeaderChangedFrom(*leader);
        if (!now.empty()) {
          stream = Unavailable("the OpenBao leader changed from " + *leader + " to " + now +
                               " during the snapshot; the partial snapshot was discarded (" +
                               stream.message() + ")");
        }
        return fail(ExitCode::kSnapshotRead, stream);
      }
    }
  }
  if (Status s = stages.Finish(); !s.ok()) {
    abandon();
    *failure = stage_failure(s);
    return failure->status;
  }
  Result<snapshot::ArchiveReport> report = checker.Finish();
  if (!report.ok()) {
    out->Abort();
    return fail(ExitCode::kVerification,
                report.status().WithContext("the snapshot archive is damaged"));
  }
  result.size = bytes;
  result.sha256 = report->sha256;
  result.raft_index = report->meta.index;
  result.raft_term = report->meta.term;

  Result<storage::ObjectInfo> stored = (*writer)->Commit(ctx, {result.size, result.sha256});
  if (!stored.ok()) {
    return fail(StorageStage(stored.status()),
                stored.status().WithContext("committing " + result.key));
  }
  if (stored->size != result.size || (!stored->sha256.empty() && stored->sha256 != result.sha256)) {
    if (Status d = store->Delete(Context::ForCleanup(storage::kCleanupBudget), result.key);
        !d.ok()) {
      log::Warn("could not delete a mismatching object",
                {{"key", result.key}, {"error", d.message()}});
    }
    return fail(ExitCode::kVerification,
                DataLoss("the stored object " + result.key + " does not match what was sent"));
  }
  result.duration =
      std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - steady_start);
  return result;
}

}  // namespace bao::backup
