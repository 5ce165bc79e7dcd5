#include "backup/restore.h"

#include <thread>

#include "backup/verify.h"
#include "common/log.h"
#include "common/pipe.h"

namespace bao::backup {

nlohmann::json RestoreResult::ToJson() const {
  return {{"restored", key},  {"size", size},    {"sha256", sha256},
          {"leader", leader}, {"force", forced}, {"duration", FormatDuration(duration)}};
}

Result<RestoreResult> RunRestore(const RestoreRequest& req, storage::Store* store,
                                 Failure* failure) {
  auto fail = [&](ExitCode code, Status s) -> Status {
    *failure = Fail(code, s);
    return s;
  };
  auto start = std::chrono::steady_clock::now();
  Result<storage::ObjectInfo> info = store->Stat(req.key);
  if (!info.ok()) return fail(ExitCode::kStorage, info.status());
  if (req.verify_first) {
    log::Info("verifying the backup before contacting OpenBao", {{"key", req.key}});
    Result<VerifyReport> v = VerifyBackup(store, req.key, failure);
    if (!v.ok()) return v.status();
  }

  openbao::Client bao(req.connection);
  Result<std::string> leader = bao.FindLeader();
  if (!leader.ok()) {
    return fail(leader.status().code() == Code::kInvalidArgument ? ExitCode::kConfig
                                                                 : ExitCode::kLeaderDiscovery,
                leader.status().WithContext("leader discovery"));
  }
  if (Status s = bao.Login(*leader, req.auth); !s.ok()) {
    bool no_creds =
        s.code() == Code::kInvalidArgument && s.message().starts_with("no OpenBao credentials");
    return fail(no_creds ? ExitCode::kConfig : ExitCode::kAuth, s.WithContext("authentication"));
  }

  // Producer: read the object, check it, and push it into the pipe, always holding back the
  // latest chunk until the next one arrives or every check has passed.
  BytePipe pipe(4 << 20);
  StreamVerifier verifier(req.key, info->sha256, info->size);
  Failure producer_failure;
  std::thread producer([&] {
    std::string held;
    Status check;
    Status read = store->Read(req.key, 0, [&](std::string_view chunk) -> Status {
      check = verifier.Update(chunk);
      if (!check.ok()) return check;
      if (!held.empty()) BAO_RETURN_IF_ERROR(pipe.Write(held));
      held.assign(chunk.data(), chunk.size());
      return Status::Ok();
    });
    if (!check.ok()) {
      producer_failure = Fail(ExitCode::kVerification, check);
    } else if (!read.ok()) {
      producer_failure =
          Fail(read.code() == Code::kAborted ? ExitCode::kSnapshotRead : ExitCode::kStorage,
               read.WithContext("reading " + req.key));
    } else if (Result<snapshot::ArchiveReport> r = verifier.Finish(); !r.ok()) {
      producer_failure = Fail(ExitCode::kVerification, r.status());
    } else {
      Status w = pipe.Write(held);
      if (!w.ok()) producer_failure = Fail(ExitCode::kSnapshotRead, w);
    }
    pipe.CloseWrite(producer_failure.status);
  });

  log::Info("restoring",
            {{"key", req.key}, {"leader", *leader}, {"force", req.force ? "true" : "false"}});
  Status posted =
      bao.Restore(*leader, req.force, [&](char* buf, size_t len) { return pipe.Read(buf, len); });
  pipe.CloseRead();
  producer.join();
  if (producer_failure.code != ExitCode::kOk) {
    *failure = producer_failure;
    return failure->status.WithContext(
        "the restore was aborted before OpenBao received the whole "
        "snapshot");
  }
  if (!posted.ok()) {
    ExitCode code =
        posted.code() == Code::kPermissionDenied || posted.code() == Code::kUnauthenticated
            ? ExitCode::kAuth
        : posted.code() == Code::kFailedPrecondition ? ExitCode::kLeaderDiscovery
                                                     : ExitCode::kSnapshotRead;
    return fail(code, posted);
  }
  RestoreResult out;
  out.key = req.key;
  out.size = info->size;
  out.sha256 = verifier.computed_sha256();
  out.leader = *leader;
  out.forced = req.force;
  out.duration = std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - start);
  return out;
}

}  // namespace bao::backup
