// One backup: find the Raft leader, authenticate, stream the snapshot into the store while
// checking it as an OpenBao archive and hashing it, commit the object, confirm what was
// stored. Nothing is buffered to disk; memory stays bounded whatever the snapshot size.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "backup/exit_code.h"
#include "backup/prune.h"
#include "common/context.h"
#include "common/time.h"
#include "openbao/client.h"
#include "storage/store.h"
#include "storage/target.h"

namespace bao::backup {

struct BackupRequest {
  openbao::ConnectionConfig connection;
  openbao::AuthConfig auth;
  storage::TargetConfig target;  // path_prefix is used for naming
  std::string ns;                // namespace segment of the key
  std::string cluster;           // cluster segment of the key
  std::string key;               // explicit object key; empty = generated per the contract
  std::string file_prefix;       // optional file-name prefix ("pre-upgrade-")
  const Clock* clock = nullptr;  // defaults to SystemClock()
  // Tries of the snapshot request when OpenBao answers 5xx or cannot be reached before the
  // first byte (the leader is looked up again before each); once bytes flowed, no retry.
  int source_attempts = 4;
  std::chrono::milliseconds source_backoff{1000};  // before the second try; doubles
  // Leftovers of crashed uploads of this cluster (ClusterPrefix of target.path_prefix, ns,
  // cluster) that started longer ago than this are removed before OpenBao is contacted
  // (CleanUpLeftovers); 0 removes all of them. Skipped when ns or cluster is not a valid name
  // (an explicit key without a cluster) or when `cleanup` is false.
  bool cleanup = true;
  Duration cleanup_older_than = kDefaultCleanupAge;
  // Called with the bytes received so far after every chunk (progress reporting; keep it cheap).
  std::function<void(uint64_t bytes)> on_progress;
};

struct BackupResult {
  std::string key;
  uint64_t size = 0;
  std::string sha256;
  TimePoint started{};
  Duration duration{0};
  uint64_t raft_index = 0;
  uint64_t raft_term = 0;
  std::string leader;
  std::string store;  // the store's description
  CleanupResult cleanup;  // the leftovers removed before the backup (never fails the backup)
  // Also "cleanedUp": N, and "cleanupError" when the cleanup failed.
  nlohmann::json ToJson() const;
};

// Takes one backup into `store` (not owned). On failure nothing is left under the final key,
// and the Status's stage says which step failed (ExitCodeFor() gives the exit code): kConfig
// for a bad key or request, and for an explicit `key` that exists (backups are write-once; it
// is refused before OpenBao is contacted); kLeader, kAuth, kSnapshot, kStorage, kVerify for
// the steps of the run. `ctx` bounds the whole run: once it is cancelled, the run stops within
// about a second with kAborted/Reason::kCancelled and aborts the upload; past its deadline it
// fails with kDeadlineExceeded in the step it reached.
Result<BackupResult> RunBackup(const Context& ctx, const BackupRequest& request,
                               storage::Store* store);

}  // namespace bao::backup
