#include "backup/restore.h"

#include <algorithm>
#include <thread>

#include "backup/verify.h"
#include "common/log.h"
#include "common/pipe.h"

namespace bao::backup {

nlohmann::json RestoreResult::ToJson() const {
  nlohmann::json out = {{"restored", key},
                        {"size", size},
                        {"sha256", sha256},
                        {"leader", leader},
                        {"force", forced},
                        {"duration", FormatDuration(duration)},
                        {"uploadDuration", FormatDuration(upload_duration)},
                        {"settled", settled},
                        {"sealed", sealed},
                        {"clusterIdBefore", cluster_id_before},
                        {"clusterIdAfter", nullptr}};
  if (!cluster_id_after.empty()) out["clusterIdAfter"] = cluster_id_after;
  nlohmann::json& n = out["nodes"] = nlohmann::json::array();
  for (const openbao::NodeState& s : nodes) {
    n.push_back({{"address", s.address}, {"state", s.Describe()}});
  }
  return out;
}

bool RestoreSettled(const openbao::NodeState& before, const openbao::NodeState& now) {
  if (!now.reachable) return false;
  if (now.sealed) return true;
  return now.leader_answered && now.applied_index > before.applied_index;
}

RestoreOutcome JudgeRestore(const openbao::NodeState& before, const openbao::NodeState& after,
                            bool settled, const std::vector<openbao::NodeState>& others) {
  if (!settled) return RestoreOutcome::kNotSettled;
  if (!after.sealed) return RestoreOutcome::kApplied;
  for (const openbao::NodeState& o : others) {
    if (o.address != after.address && o.active() && !before.cluster_id.empty() &&
        o.cluster_id == before.cluster_id) {
      return RestoreOutcome::kReachedStandby;
    }
  }
  return RestoreOutcome::kSealed;
}

namespace {

constexpr std::chrono::milliseconds kProbeTimeout{3000};

// Polls the node the snapshot went to until RestoreSettled() or `timeout`.
openbao::NodeState WaitUntilSettled(const Context& ctx, openbao::Client* bao,
                                    const openbao::NodeState& before, std::chrono::seconds timeout,
                                    bool* settled) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  openbao::NodeState now;
  while (true) {
    now = bao->Probe(before.address, /*with_leader=*/true, kProbeTimeout);
    *settled = RestoreSettled(before, now);
    if (*settled || ctx.cancelled() || std::chrono::steady_clock::now() >= deadline) return now;
    (void)ctx.SleepFor(std::chrono::milliseconds(250));
  }
}

}  // namespace

Result<RestoreResult> RunRestore(const Context& ctx, const RestoreRequest& req,
                                 storage::Store* store, Failure* failure) {
  // Until the POST succeeded, OpenBao is as it was: nothing was sent, or it refused the
  // snapshot, or the upload stopped before its end.
  auto fail = [&](ExitCode code, Status s, bool unchanged = true) -> Status {
    *failure = Fail(code, s);
    failure->openbao_unchanged = unchanged;
    return s;
  };
  auto start = std::chrono::steady_clock::now();
  Result<storage::ObjectInfo> info = store->Stat(ctx, req.key);
  if (!info.ok()) return fail(ExitCode::kStorage, info.status());
  if (req.verify_first) {
    log::Info("verifying the backup before contacting OpenBao", {{"key", req.key}});
    Result<VerifyReport> v = VerifyBackup(ctx, store, req.key, failure);
    failure->openbao_unchanged = true;
    if (!v.ok()) return v.status();
  }

  openbao::Client bao(req.connection, ctx);
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

  // The node must be the active one right before the POST: a standby answers a restore with
  // 204, restores nothing and seals itself.
  openbao::NodeState before = bao.Probe(*leader, /*with_leader=*/true, kProbeTimeout);
  if (!before.active() || !before.is_self) {
    return fail(
        ExitCode::kLeaderDiscovery,
        FailedPrecondition("leader discovery: " + *leader + " is no longer the active node (" +
                           before.Describe() + "); nothing was sent, run the restore again"));
  }

  // Producer: read the object, check it, and push it into the pipe, always holding back the
  // latest chunk until the next one arrives or every check has passed. A failed push only
  // means the consumer (the POST) stopped; its own result says why.
  BytePipe pipe(4 << 20);
  StreamVerifier verifier(req.key, info->sha256, info->size);
  Failure producer_failure;
  std::thread producer([&] {
    std::string held;
    Status check, pushed;
    Status read = store->Read(ctx, req.key, 0, [&](std::string_view chunk) -> Status {
      check = verifier.Update(chunk);
      if (!check.ok()) return check;
      if (!held.empty()) {
        pushed = pipe.Write(held);
        if (!pushed.ok()) return pushed;
      }
      held.assign(chunk.data(), chunk.size());
      return Status::Ok();
    });
    if (!check.ok()) {
      producer_failure = Fail(ExitCode::kVerification, check);
    } else if (!pushed.ok()) {
      // The POST ended early; its outcome is reported below.
    } else if (!read.ok()) {
      producer_failure =
          Fail(read.code() == Code::kAborted ? ExitCode::kSnapshotRead : ExitCode::kStorage,
               read.WithContext("reading " + req.key));
    } else if (Result<snapshot::ArchiveReport> r = verifier.Finish(); !r.ok()) {
      producer_failure = Fail(ExitCode::kVerification, r.status());
    } else {
      static_cast<void>(pipe.Write(held));  // a failure here is the POST's to report
    }
    pipe.CloseWrite(producer_failure.status);
  });

  log::Info("restoring",
            {{"key", req.key}, {"leader", *leader}, {"force", req.force ? "true" : "false"}});
  auto upload_start = std::chrono::steady_clock::now();
  Status posted =
      bao.Restore(*leader, req.force, [&](char* buf, size_t len) { return pipe.Read(buf, len); });
  auto upload_end = std::chrono::steady_clock::now();
  pipe.CloseRead();
  producer.join();
  if (producer_failure.code != ExitCode::kOk) {
    *failure = producer_failure;
    failure->openbao_unchanged = true;
    return failure->status.WithContext(
        "the restore was aborted before OpenBao received the whole "
        "snapshot");
  }
  if (!posted.ok()) {
    ExitCode code =
        posted.code() == Code::kPermissionDenied || posted.code() == Code::kUnauthenticated
            ? ExitCode::kAuth
        : posted.code() == Code::kFailedPrecondition ? ExitCode::kLeaderDiscovery
        : posted.code() == Code::kInvalidArgument || posted.code() == Code::kDataLoss
            ? ExitCode::kVerification
            : ExitCode::kSnapshotRead;
    // A refusal left OpenBao as it was; a transfer that broke off may have ended after the
    // last byte, so whether OpenBao applied it is not known.
    return fail(code, posted, code != ExitCode::kSnapshotRead);
  }

  log::Info("OpenBao accepted the snapshot; waiting for it to apply",
            {{"node", *leader}, {"timeout", std::to_string(req.settle_timeout.count()) + "s"}});
  RestoreResult out;
  openbao::NodeState after =
      WaitUntilSettled(ctx, &bao, before, req.settle_timeout, &out.settled);
  for (const std::string& address : bao.addresses()) {
    out.nodes.push_back(address == after.address
                            ? after
                            : bao.Probe(address, /*with_leader=*/false, kProbeTimeout));
  }
  if (std::none_of(out.nodes.begin(), out.nodes.end(),
                   [&](const openbao::NodeState& n) { return n.address == after.address; })) {
    out.nodes.insert(out.nodes.begin(), after);
  }
  for (const openbao::NodeState& n : out.nodes) {
    log::Info("node after the restore", {{"node", n.address}, {"state", n.Describe()}});
  }
  out.key = req.key;
  out.size = info->size;
  out.sha256 = verifier.computed_sha256();
  out.leader = *leader;
  out.forced = req.force;
  out.sealed = after.reachable && after.sealed;
  out.cluster_id_before = before.cluster_id;
  out.cluster_id_after = after.sealed ? "" : after.cluster_id;
  out.duration = std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - start);
  out.upload_duration = std::chrono::duration_cast<Duration>(upload_end - upload_start);
  switch (JudgeRestore(before, after, out.settled, out.nodes)) {
    case RestoreOutcome::kReachedStandby:
      return fail(
          ExitCode::kLeaderDiscovery,
          FailedPrecondition("the restore reached a standby; nothing was restored (" + *leader +
                             " sealed itself while another node stayed active; "
                             "unseal it with this cluster's keys and run the restore "
                             "again)"),
          /*unchanged=*/false);  // the node sealed itself
    case RestoreOutcome::kSealed:
      log::Warn(
          "the cluster is sealed after the restore: unseal it with the unseal keys (or recovery "
          "keys) of the cluster the snapshot came from; its old root token no longer works",
          {{"node", *leader}});
      break;
    case RestoreOutcome::kNotSettled:
      log::Warn(
          "the restore was accepted but the node had not finished applying it within the "
          "wait; check its state before using it",
          {{"node", *leader}, {"state", after.Describe()}});
      break;
    case RestoreOutcome::kApplied: break;
  }
  return out;
}

}  // namespace bao::backup
