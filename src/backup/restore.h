// Restoring a stored backup into OpenBao. The archive is checked while it streams; the last
// chunk is held back until every check has passed, so when a check fails the request is
// aborted before it is complete and OpenBao never applies a damaged snapshot.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "backup/exit_code.h"
#include "openbao/client.h"
#include "storage/store.h"

namespace bao::backup {

struct RestoreRequest {
  openbao::ConnectionConfig connection;
  openbao::AuthConfig auth;
  std::string key;
  bool force = false;         // snapshot-force: into a new or rebuilt cluster
  bool verify_first = false;  // full verification before OpenBao is contacted at all
  // OpenBao answers 204 and applies the snapshot afterwards: how long to wait for the node to
  // finish (it blocks requests meanwhile, or seals itself) before reporting what state it is in.
  std::chrono::seconds settle_timeout{60};
};

struct RestoreResult {
  std::string key;
  uint64_t size = 0;
  std::string sha256;
  std::string leader;
  bool forced = false;
  Duration duration{0};         // the whole command, waiting for the apply included
  Duration upload_duration{0};  // until OpenBao answered the POST (accepted the snapshot)
  // After OpenBao accepted the snapshot:
  bool settled = false;  // the node finished applying it (or sealed) within settle_timeout
  bool sealed = false;   // the node it was restored to is sealed
  std::string cluster_id_before, cluster_id_after;  // after: "" while sealed or unknown
  std::vector<openbao::NodeState> nodes;            // every given address, after settling
  nlohmann::json ToJson() const;
};

// How a restore that OpenBao answered with 204 ended, judged from the target node's state
// before the POST (`before`, active), once it settled (`after`), and every other node's.
enum class RestoreOutcome {
  kApplied,         // the target is unsealed and applied the snapshot
  kSealed,          // the target sealed itself: a snapshot from another cluster (forced), whose
                    // unseal keys it now needs
  kReachedStandby,  // the target sealed while another node stayed active with the old
                    // cluster_id: it was a standby, and nothing was restored
  kNotSettled,      // still applying (or unreachable) when the wait ended
};

// True once `now` shows the restore applied on the node `before` described: sealed, or
// answering sys/leader with a Raft index past the one before the POST.
bool RestoreSettled(const openbao::NodeState& before, const openbao::NodeState& now);

RestoreOutcome JudgeRestore(const openbao::NodeState& before, const openbao::NodeState& after,
                            bool settled, const std::vector<openbao::NodeState>& others);

// Every OpenBao and storage call runs under `ctx`.
Result<RestoreResult> RunRestore(const Context& ctx, const RestoreRequest& request,
                                 storage::Store* store, Failure* failure);

}  // namespace bao::backup
