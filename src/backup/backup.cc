#include "backup/backup.h"

#include "backup/naming.h"
#include "common/async_sink.h"
#include "common/log.h"
#include "common/redact.h"
#include "snapshot/archive_checker.h"

namespace bao::backup {

nlohmann::json BackupResult::ToJson() const {
  nlohmann::json out = {{"key", key},
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
          {"store", store},
          {"cleanedUp", cleanup.removed}};
  if (!cleanup.error.ok()) out["cleanupError"] = cleanup.error.message();
  return out;
}

namespace {

// Storage failures are exit 5, except a read-back that does not match what was sent (6).
Status StorageFailure(const Status& s) {
  return s.InStage(s.code() == Code::kDataLoss ? Stage::kVerify : Stage::kStorage);
}

// Worth another snapshot request: the source answered 5xx or could not be reached, and no
// byte of the stream arrived.
bool SourceRetryable(const Status& s) {
  if (s.http_status() >= 500) return true;
  return s.reason() == Reason::kUnreachable || s.reason() == Reason::kServerError ||
         s.reason() == Reason::kThrottled;
}

}  // namespace

Result<BackupResult> RunBackup(const Context& ctx, const BackupRequest& req,
                               storage::Store* store) {
  const Clock& clock = req.clock != nullptr ? *req.clock : SystemClock();
  BackupResult result;
  result.started = clock.Now();
  result.store = store->Describe();
  auto steady_start = std::chrono::steady_clock::now();
  if (!req.key.empty()) {
    result.key = req.key;
  } else {
    if (!IsValidNameSegment(req.ns) || !IsValidNameSegment(req.cluster)) {
      return Error(Code::kInvalidArgument, Reason::kInvalidValue,
                   "namespace \"" + req.ns + "\" and cluster \"" + req.cluster +
                       "\" must be lower-case DNS labels (a-z, 0-9, '-')")
          .WithStage(Stage::kConfig);
    }
    result.key =
        NewBackupKey(req.target.path_prefix, req.ns, req.cluster, result.started, req.file_prefix);
  }
  if (Status s = storage::ValidateKey(result.key); !s.ok()) return s.InStage(Stage::kConfig);
  if (!req.key.empty()) {
    // Backups are write-once, on every provider: an explicit key that exists is refused before
    // OpenBao is contacted.
    Result<storage::ObjectInfo> existing = store->Stat(ctx, result.key);
    if (existing.ok()) {
      return Error(Code::kAlreadyExists, Reason::kConflict,
                   "--key " + result.key + ": an object with this key already exists in " +
                       result.store +
                       "; backups are write-once: choose another key, or delete that one first")
          .WithStage(Stage::kConfig);
    }
    if (existing.status().code() != Code::kNotFound) {
      return StorageFailure(existing.status().WithContext("checking that " + result.key +
                                                          " is free"));
    }
  }

  // Before this run starts its own upload: what earlier runs of this cluster left when they
  // were killed mid-upload. A failure here is reported, never fatal.
  if (req.cleanup && IsValidNameSegment(req.ns) && IsValidNameSegment(req.cluster)) {
    result.cleanup = CleanUpLeftovers(ctx, store,
                                      ClusterPrefix(req.target.path_prefix, req.ns, req.cluster),
                                      req.cleanup_older_than, clock.Now());
    if (!result.cleanup.error.ok()) {
      if (result.cleanup.error.reason() == Reason::kCancelled) return result.cleanup.error;
      log::Warn("could not clean up crashed uploads; the backup goes on",
                {{"error", result.cleanup.error.message()}});
    }
  }

  openbao::Client bao(req.connection);
  Result<std::string> leader = bao.FindLeader(ctx);
  if (!leader.ok()) return leader.status().WithContext("leader discovery").InStage(Stage::kLeader);
  result.leader = *leader;
  if (Status s = bao.Login(ctx, *leader, req.auth); !s.ok()) {
    return s.WithContext("authentication").InStage(Stage::kAuth);
  }

  Result<std::unique_ptr<storage::ObjectWriter>> writer = store->NewWriter(ctx, result.key);
  if (!writer.ok()) {
    const Status& s = writer.status();
    Status opened = s.WithContext("opening " + result.key + " in " + result.store);
    return s.code() == Code::kAlreadyExists ? opened.InStage(Stage::kConfig)
                                            : StorageFailure(opened);
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
               ? s.WithContext("the snapshot archive is damaged").InStage(Stage::kVerify)
               : StorageFailure(s.WithContext("writing " + result.key));
  };
  auto abandon = [&] {
    stages.Stop();  // no Append() runs any more
    out->Abort();
  };
  uint64_t bytes = 0;
  Status sink_failure;
  auto sink = [&](std::string_view chunk) -> Status {
    if (Status s = ctx.Check("reading the snapshot"); !s.ok()) {
      sink_failure = s;
      return s;
    }
    if (Status s = stages.Push(chunk); !s.ok()) {
      sink_failure = stage_failure(s);
      return sink_failure;
    }
    bytes += chunk.size();
    if (req.on_progress) req.on_progress(bytes);
    return Status::Ok();
  };
  log::Info("streaming snapshot", {{"key", result.key}, {"store", result.store}});
  Status stream = bao.StreamSnapshot(ctx, *leader, sink);
  std::chrono::milliseconds backoff = req.source_backoff;
  for (int attempt = 2; !stream.ok() && sink_failure.ok() && bytes == 0 &&
                        attempt <= req.source_attempts && SourceRetryable(stream);
       ++attempt) {
    log::Warn("the snapshot request failed before any byte arrived; retrying",
              {{"attempt", std::to_string(attempt) + "/" + std::to_string(req.source_attempts)},
               {"backoff", FormatDuration(backoff)},
               {"error", stream.message()}});
    if (Status s = ctx.SleepFor(backoff, "waiting to retry the snapshot"); !s.ok()) {
      stream = s;
      break;
    }
    backoff *= 2;
    Result<std::string> again = bao.FindLeader(ctx);
    if (!again.ok()) {
      stream = again.status().WithContext("leader discovery").InStage(Stage::kLeader);
      break;
    }
    if (*again != *leader) {
      leader = again;
      result.leader = *leader;
      if (Status s = bao.Login(ctx, *leader, req.auth); !s.ok()) {
        stream = s.WithContext("authentication").InStage(Stage::kAuth);
        break;
      }
    }
    stream = bao.StreamSnapshot(ctx, *leader, sink);
  }
  if (!stream.ok()) {
    abandon();
    if (!sink_failure.ok()) return sink_failure;
    if (stream.reason() == Reason::kCancelled) return stream;
    if (stream.stage() == Stage::kUnspecified) {
      std::string now = bao.LeaderChangedFrom(ctx, *leader);
      if (!now.empty()) {
        stream = Status(stream.code(), "the OpenBao leader changed from " + *leader + " to " +
                                           now + " during the snapshot; the partial snapshot "
                                           "was discarded (" +
                                           stream.message() + ")")
                     .WithReason(stream.reason())
                     .WithHttpStatus(stream.http_status());
      }
    }
    return stream.InStage(Stage::kSnapshot);
  }
  if (Status s = stages.Finish(); !s.ok()) {
    abandon();
    return stage_failure(s);
  }
  Result<snapshot::ArchiveReport> report = checker.Finish();
  if (!report.ok()) {
    out->Abort();
    return report.status().WithContext("the snapshot archive is damaged").InStage(Stage::kVerify);
  }
  result.size = bytes;
  result.sha256 = report->sha256;
  result.raft_index = report->meta.index;
  result.raft_term = report->meta.term;

  Result<storage::ObjectInfo> stored = (*writer)->Commit(ctx, {result.size, result.sha256});
  if (!stored.ok()) {
    return StorageFailure(stored.status().WithContext("committing " + result.key));
  }
  if (stored->size != result.size || (!stored->sha256.empty() && stored->sha256 != result.sha256)) {
    if (Status d = store->Delete(Context::ForCleanup(std::chrono::seconds(30)), result.key);
        !d.ok()) {
      log::Warn("could not delete a mismatching object",
                {{"key", result.key}, {"error", d.message()}});
    }
    return Error(Code::kDataLoss, Reason::kChecksumMismatch,
                 "the stored object " + result.key + " does not match what was sent")
        .WithStage(Stage::kVerify);
  }
  result.duration =
      std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - steady_start);
  return result;
}

}  // namespace bao::backup
