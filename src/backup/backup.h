// One backup: find the Raft leader, authenticate, stream the snapshot into the store while
// checking it as an OpenBao archive and hashing it, commit the object, confirm what was
// stored. Nothing is buffered to disk; memory stays bounded whatever the snapshot size.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backup/exit_code.h"
#include "backup/prune.h"
#include "backup/spec.h"
#include "common/context.h"
#include "common/time.h"
#include "openbao/client.h"
#include "storage/store.h"
#include "storage/target.h"

namespace bao::backup {

// A further copy of the same backup (extraTargets, --extra-target): the snapshot is read from
// OpenBao once and streamed into the primary store and every copy at the same time.
struct BackupCopy {
  std::string name;                 // as reported in the result
  std::string path_prefix;          // the copy target's pathPrefix, used for naming its key
  storage::Store* store = nullptr;  // not owned; must outlive RunBackup. Null: `open_error`
  Status open_error;  // why the store could not be opened; the copy then fails with it
};

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
  // Extra copies. Each is written with its own ObjectWriter beside the primary one, from the same
  // blocks (one more consumer thread each); the slowest target sets the pace. Memory: the
  // pipeline's blocks plus each target's own upload buffers (within partSize x (concurrency + 1)
  // for a network provider).
  std::vector<BackupCopy> copies;
};

// What became of one extra copy.
struct CopyResult {
  std::string name;
  std::string key;
  std::string store;  // the store's description
  uint64_t size = 0;  // stored bytes, when ok
  Status error;       // ok: committed and checked like the primary object
  CleanupResult cleanup;
  // Retention in this target after the backup (PruneCopies), when it ran.
  bool pruned = false;
  PruneResult prune;
  Status prune_error;
  bool ok() const { return error.ok(); }
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
  std::string store;      // the store's description
  CleanupResult cleanup;  // the leftovers removed before the backup (never fails the backup)
  std::vector<CopyResult> copies;  // one per BackupRequest::copies, in order
  // Also "cleanedUp": N, and "cleanupError" when the cleanup failed; with copies, "targets":
  // [{name, key, size, ok, error?, reason?}], the primary first (name "primary"), and
  // "copiesFailed": N.
  nlohmann::json ToJson() const;
};

// Takes one backup into `store` (not owned). On failure nothing is left under the final key,
// and the Status's stage says which step failed (ExitCodeFor() gives the exit code): kConfig
// for a bad key or request, and for an explicit `key` that exists (backups are write-once; it
// is refused before OpenBao is contacted); kLeader, kAuth, kSnapshot, kStorage, kVerify for
// the steps of the run. `ctx` bounds the whole run: once it is cancelled, the run stops within
// about a second with kAborted/Reason::kCancelled and aborts the upload; past its deadline it
// fails with kDeadlineExceeded in the step it reached.
// Copies never fail the backup: a copy that cannot be opened, written or committed is aborted
// (nothing is left under its key; an existing object under an explicit key is never replaced)
// and its error is returned in `BackupResult::copies`, while the primary goes on. When the
// primary fails, every copy is aborted too: a copy is only committed after the whole stream was
// checked, and only once the primary object is stored.
Result<BackupResult> RunBackup(const Context& ctx, const BackupRequest& request,
                               storage::Store* store);

// The stores of a spec's extra targets, opened for RunBackup and PruneCopies.
struct CopyTargets {
  std::vector<std::unique_ptr<storage::Store>> stores;  // null where opening failed
  std::vector<BackupCopy> copies;                       // for BackupRequest::copies
};
// Opens each extra target's store with `options` (OpenStore: no request is sent). One that
// cannot be opened (a configuration error, such as missing credentials) becomes a copy that
// fails with that error, so the primary backup still runs. Never fails.
CopyTargets OpenCopyTargets(const std::vector<ExtraTarget>& targets,
                            const storage::StoreOptions& options);

// Retention in each extra target that `result` shows committed (failed copies are left as they
// are: a target that cannot be written is not pruned either), with the same policy and
// settings as Prune(); the copy just stored counts as verified. The outcome goes into each
// CopyResult (pruned, prune, prune_error) and is logged; never fails the caller.
void PruneCopies(const Context& ctx, const std::vector<ExtraTarget>& targets,
                 const CopyTargets& opened, const std::string& ns, const std::string& cluster,
                 const RetentionPolicy& policy, TimePoint now, Duration cleanup_older_than,
                 BackupResult* result);

}  // namespace bao::backup
