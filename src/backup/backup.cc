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
  if (!copies.empty()) {
    nlohmann::json targets = nlohmann::json::array();
    targets.push_back({{"name", "primary"}, {"key", key}, {"size", size}, {"ok", true}});
    size_t failed = 0;
    for (const CopyResult& c : copies) {
      nlohmann::json t = {{"name", c.name}, {"key", c.key}, {"size", c.size}, {"ok", c.ok()}};
      if (!c.ok()) {
        ++failed;
        // The result is also the Job's termination message (4096 bytes at most): the error is
        // cut short here; the log has it in full.
        std::string error = c.error.message();
        if (error.size() > 300) error = error.substr(0, 297) + "...";
        t["error"] = error;
        t["stage"] = StageName(c.error.stage());
        t["reason"] = ReasonName(c.error.reason());
      }
      if (c.pruned) {
        t["pruned"] = c.prune.deleted.size();
        t["kept"] = c.prune.kept();
        if (!c.prune_error.ok()) t["retentionError"] = c.prune_error.message().substr(0, 300);
      }
      targets.push_back(std::move(t));
    }
    out["targets"] = std::move(targets);
    out["copiesFailed"] = failed;
  }
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

// Checks what Commit() reported for `key` against the size and SHA-256 that were sent; an object
// that does not match is deleted again. kDataLoss/kChecksumMismatch (Stage::kVerify) naming
// `what` when it does not match.
Status CheckStored(storage::Store* store, const std::string& key, const storage::ObjectInfo& stored,
                   const BackupResult& sent, const std::string& what) {
  if (stored.size == sent.size && (stored.sha256.empty() || stored.sha256 == sent.sha256)) {
    return Status::Ok();
  }
  if (Status d = store->Delete(Context::ForCleanup(std::chrono::seconds(30)), key); !d.ok()) {
    log::Warn("could not delete a mismatching object", {{"key", key}, {"error", d.message()}});
  }
  return Error(Code::kDataLoss, Reason::kChecksumMismatch, what + " does not match what was sent")
      .WithStage(Stage::kVerify);
}

// An extra copy on its way: its writer, fed by its own consumer of the stream. `error` is set by
// that consumer's thread until the stream ends, and read after.
struct CopyWriter {
  CopyResult* result;
  storage::Store* store;
  std::unique_ptr<storage::ObjectWriter> writer;

  bool live() const { return writer != nullptr && result->error.ok(); }
  void Fail(const Status& s) {
    if (result->error.ok()) result->error = s;
    if (writer != nullptr) writer->Abort();
  }
};

// The key of a copy: the primary key's name below the copy target's own prefix (the same
// explicit key, when one was given), so every copy of a backup has the same name.
std::string CopyKey(const BackupRequest& req, const std::string& primary_key,
                    const std::string& copy_prefix) {
  if (!req.key.empty()) return req.key;
  std::string relative = primary_key;
  const std::string& prefix = req.target.path_prefix;
  if (!prefix.empty() && relative.starts_with(prefix + "/")) {
    relative.erase(0, prefix.size() + 1);
  }
  return copy_prefix.empty() ? relative : copy_prefix + "/" + relative;
}

// Names each copy's key and opens its writer; a copy that cannot start is recorded as failed.
// An explicit key that exists in a copy's store is refused there, as for the primary.
std::vector<CopyWriter> OpenCopies(const Context& ctx, const BackupRequest& req, TimePoint started,
                                   BackupResult* result) {
  std::vector<CopyWriter> copies;
  result->copies.resize(req.copies.size());
  for (size_t i = 0; i < req.copies.size(); ++i) {
    const BackupCopy& spec = req.copies[i];
    CopyResult& r = result->copies[i];
    r.name = spec.name;
    r.store = spec.store != nullptr ? spec.store->Describe() : std::string("(not opened)");
    r.key = CopyKey(req, result->key, spec.path_prefix);
    CopyWriter& copy = copies.emplace_back(CopyWriter{&r, spec.store, nullptr});
    if (spec.store == nullptr) {
      copy.Fail(spec.open_error.InStage(Stage::kConfig));
      log::Warn("the copy \"" + r.name + "\" is not written: its target cannot be opened",
                {{"error", r.error.message()}});
      continue;
    }
    auto failed = [&](const Status& s, const std::string& what) {
      copy.Fail(s.WithContext(what + " " + r.key + " in " + r.store)
                    .InStage(s.stage() == Stage::kUnspecified ? Stage::kStorage : s.stage()));
      log::Warn("the copy \"" + r.name + "\" is not written",
                {{"store", r.store}, {"error", r.error.message()}});
    };
    if (Status s = storage::ValidateKey(r.key); !s.ok()) {
      failed(s.InStage(Stage::kConfig), "naming");
      continue;
    }
    if (!req.key.empty()) {
      Result<storage::ObjectInfo> existing = spec.store->Stat(ctx, r.key);
      if (existing.ok()) {
        failed(Error(Code::kAlreadyExists, Reason::kConflict,
                     "an object with this key already exists; backups are write-once")
                   .WithStage(Stage::kConfig),
               "checking that the key is free:");
        continue;
      }
      if (existing.status().code() != Code::kNotFound) {
        failed(existing.status(), "checking that the key is free:");
        continue;
      }
    }
    if (req.cleanup && IsValidNameSegment(req.ns) && IsValidNameSegment(req.cluster)) {
      r.cleanup =
          CleanUpLeftovers(ctx, spec.store, ClusterPrefix(spec.path_prefix, req.ns, req.cluster),
                           req.cleanup_older_than, started);
      if (!r.cleanup.error.ok()) {
        log::Warn("could not clean up crashed uploads in a copy target; the backup goes on",
                  {{"target", r.name}, {"error", r.cleanup.error.message()}});
      }
    }
    Result<std::unique_ptr<storage::ObjectWriter>> w = spec.store->NewWriter(ctx, r.key);
    if (!w.ok()) {
      failed(w.status(), "opening");
      continue;
    }
    copy.writer = std::move(w).value();
  }
  return copies;
}

// Commits each copy that is still live, checks it like the primary object, and records the
// outcome. Called once the primary object is stored.
void CommitCopies(const Context& ctx, const BackupResult& primary,
                  std::vector<CopyWriter>& copies) {
  for (CopyWriter& copy : copies) {
    CopyResult& r = *copy.result;
    if (!copy.live()) {
      if (copy.writer != nullptr) copy.writer->Abort();
      continue;
    }
    Result<storage::ObjectInfo> stored = copy.writer->Commit(ctx, {primary.size, primary.sha256});
    if (!stored.ok()) {
      copy.Fail(
          StorageFailure(stored.status().WithContext("committing " + r.key + " in " + r.store)));
    } else if (Status s = CheckStored(copy.store, r.key, *stored, primary,
                                      "the stored copy " + r.key + " in " + r.store);
               !s.ok()) {
      copy.Fail(s);
    } else {
      r.size = stored->size;
      log::Info("copy stored and verified",
                {{"target", r.name}, {"key", r.key}, {"store", r.store}});
      continue;
    }
    log::Warn("the copy \"" + r.name + "\" failed; the primary backup is stored",
              {{"store", r.store}, {"error", r.error.message()}});
  }
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
      return StorageFailure(
          existing.status().WithContext("checking that " + result.key + " is free"));
    }
  }

  // Before this run starts its own upload: what earlier runs of this cluster left when they
  // were killed mid-upload. A failure here is reported, never fatal.
  if (req.cleanup && IsValidNameSegment(req.ns) && IsValidNameSegment(req.cluster)) {
    result.cleanup =
        CleanUpLeftovers(ctx, store, ClusterPrefix(req.target.path_prefix, req.ns, req.cluster),
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
  // Each extra copy is one more consumer, which never stops the others: its first error is
  // recorded and it skips the rest of the stream.
  std::vector<CopyWriter> copies = OpenCopies(ctx, req, result.started, &result);
  snapshot::ArchiveChecker checker;
  storage::ObjectWriter* out = writer->get();
  constexpr size_t kCheckerStage = 0;
  std::vector<AsyncSink::Consumer> consumers = {
      [&checker](std::string_view block) { return checker.Update(block); },
      [out, &ctx](std::string_view block) { return out->Append(ctx, block); }};
  for (CopyWriter& copy : copies) {
    if (!copy.live()) continue;
    consumers.push_back([&copy, &ctx](std::string_view block) {
      if (!copy.result->error.ok()) return Status::Ok();
      if (Status s = copy.writer->Append(ctx, block); !s.ok()) {
        copy.Fail(StorageFailure(
            s.WithContext("writing " + copy.result->key + " in " + copy.result->store)));
        log::Warn("the copy \"" + copy.result->name + "\" failed; the primary backup goes on",
                  {{"error", copy.result->error.message()}});
      }
      return Status::Ok();
    });
  }
  // Blocks of 1 MiB, two queued besides the one gathering (3 MiB): four queued were no faster
  // into a directory, MinIO or Azurite and cost 2 MiB more (docs/benchmarks.md).
  AsyncSink stages(std::move(consumers), 1 << 20, 2);
  auto stage_failure = [&](const Status& s) {
    return stages.failed_consumer() == kCheckerStage
               ? s.WithContext("the snapshot archive is damaged").InStage(Stage::kVerify)
               : StorageFailure(s.WithContext("writing " + result.key));
  };
  auto abort_copies = [&] {
    for (CopyWriter& copy : copies) {
      if (copy.writer != nullptr) copy.writer->Abort();
    }
  };
  auto abandon = [&] {
    stages.Stop();  // no Append() runs any more
    out->Abort();
    abort_copies();
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
        stream = Status(stream.code(), "the OpenBao leader changed from " + *leader + " to " + now +
                                           " during the snapshot; the partial snapshot "
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
    abort_copies();
    return report.status().WithContext("the snapshot archive is damaged").InStage(Stage::kVerify);
  }
  result.size = bytes;
  result.sha256 = report->sha256;
  result.raft_index = report->meta.index;
  result.raft_term = report->meta.term;

  Result<storage::ObjectInfo> stored = (*writer)->Commit(ctx, {result.size, result.sha256});
  if (!stored.ok()) {
    abort_copies();
    return StorageFailure(stored.status().WithContext("committing " + result.key));
  }
  if (Status s = CheckStored(store, result.key, *stored, result, "the stored object " + result.key);
      !s.ok()) {
    abort_copies();
    return s;
  }
  CommitCopies(ctx, result, copies);
  result.duration =
      std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - steady_start);
  return result;
}

CopyTargets OpenCopyTargets(const std::vector<ExtraTarget>& targets,
                            const storage::StoreOptions& options) {
  CopyTargets out;
  for (const ExtraTarget& t : targets) {
    BackupCopy copy;
    copy.name = t.name;
    copy.path_prefix = t.target.path_prefix;
    Result<std::unique_ptr<storage::Store>> store = storage::OpenStore(t.target, options);
    if (store.ok()) {
      copy.store = store->get();
      out.stores.push_back(std::move(store).value());
    } else {
      copy.open_error = store.status().WithContext("extra target \"" + t.name + "\"");
      out.stores.push_back(nullptr);
    }
    out.copies.push_back(std::move(copy));
  }
  return out;
}

void PruneCopies(const Context& ctx, const std::vector<ExtraTarget>& targets,
                 const CopyTargets& opened, const std::string& ns, const std::string& cluster,
                 const RetentionPolicy& policy, TimePoint now, Duration cleanup_older_than,
                 BackupResult* result) {
  for (size_t i = 0; i < result->copies.size() && i < targets.size(); ++i) {
    CopyResult& c = result->copies[i];
    storage::Store* store = opened.stores[i].get();
    if (!c.ok() || store == nullptr) continue;
    c.pruned = true;
    c.prune_error = Prune(ctx, store, targets[i].target.path_prefix, ns, cluster, policy, now,
                          /*dry_run=*/false, &c.prune, cleanup_older_than, c.key);
    if (!c.prune_error.ok()) {
      log::Error("retention failed in an extra target after a successful backup",
                 {{"target", c.name}, {"error", c.prune_error.message()}});
    }
  }
}

}  // namespace bao::backup
