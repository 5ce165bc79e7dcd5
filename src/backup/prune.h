// Applying retention to one cluster's backups in a store.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backup/retention.h"
#include "common/status.h"
#include "storage/store.h"

namespace bao::backup {

// What CleanUpLeftovers() did.
struct CleanupResult {
  size_t removed = 0;  // leftovers removed
  Status error;        // the first failure; then `removed` counts what went before it
};

// The default age above which a crashed upload's leftovers are removed (--cleanup-older-than).
inline constexpr Duration kDefaultCleanupAge = std::chrono::hours(24);

// Removes what crashed uploads left under `cluster_prefix` (Store::CleanUpLeftovers) that
// started more than `older_than` before `now`; a zero `older_than` removes all of them (also
// an upload of this cluster that is running right now elsewhere: 0s is for when none is).
// Each removal is logged (info: kind and key); a failure is returned in the result, and
// logged by the caller. Never fails the caller.
CleanupResult CleanUpLeftovers(const Context& ctx, storage::Store* store,
                               const std::string& cluster_prefix, Duration older_than,
                               TimePoint now);

// At most this many locked backups are listed by key in PruneResult::ToJson() (all are logged).
inline constexpr size_t kMaxLockedInJson = 5;

struct PruneResult {
  std::vector<RetentionDecision> plan;  // newest first
  std::vector<std::string> deleted;
  std::vector<std::string> failed;  // "key: error" for deletes that failed
  // Backups the plan drops whose object lock has not expired yet (Reason::kLocked from
  // Store::Delete): kept for now, not a failure; a later prune deletes them once it expired.
  struct Locked {
    std::string key;
    std::string until;  // RFC 3339, as the store reported it ("" when it did not)
  };
  std::vector<Locked> locked;
  size_t unverifiable = 0;  // backups without a recorded checksum or whose bytes do not match it
  std::string verified;     // the newest kept backup, read and checked before deleting; "" if
                            // nothing was deleted or none verifies
  bool dry_run = false;
  CleanupResult cleanup;  // when Prune() ran the cleanup (not in a dry run)

  size_t kept() const;
  // The oldest backup the plan keeps; nullptr when it keeps none.
  const RetentionDecision* oldest_kept() const;
  // Counts only, never one entry per backup: this is (part of) the result JSON that a
  // Kubernetes Job leaves as its termination message, which the kubelet cuts at 4096 bytes.
  // Each decision is logged by Prune() instead.
  // {"dryRun", "backups", "unverifiable", "kept", "toDelete", "deleted", "failed", "oldestKept",
  //  "verified", "cleanedUp", "locked"} ("locked": how many were kept by their object lock),
  // "lockedKeys" ([{key, until}], the first kMaxLockedInJson of them) when any was, and
  // "cleanupError" when the cleanup failed.
  nlohmann::json ToJson() const;
};

// Lists this cluster's backups, plans with PlanRetention(policy, now) and, unless `dry_run`,
// deletes what the plan drops. Every decision is logged (info; a failed delete as an error),
// one line per backup. A backup whose object lock has not expired (Delete() answers
// Reason::kLocked) is skipped and recorded in `locked` ("locked until T" in the log), never a
// failure. A failed delete is recorded and the rest continue; the Status is an
// error only when listing fails or some delete failed (then the result is still filled, see
// `failed`). Failures are Stage::kStorage. Cancelling `ctx` stops before the next delete.
// Unless `dry_run`, the cluster's leftovers older than `cleanup_older_than` are removed first
// (CleanUpLeftovers); a cleanup failure is reported like a failed delete: in `cleanup.error`,
// and the Status is then an error too (after the retention itself ran).
// Before the first delete, the newest backup the plan keeps is read and verified (VerifyBackup);
// one whose bytes do not match its recorded checksum or are no snapshot archive counts as
// unverifiable and the plan is made again, so a prune never deletes the newest backup that
// verifies (see `verified`). `just_stored`, when given, is a backup this process has just
// stored and checked in flight (RunBackup): it counts as verified without being read again.
// When that read fails otherwise (Stage::kStorage, kAborted on
// cancellation), nothing is deleted and that error is returned.
Status Prune(const Context& ctx, storage::Store* store, const std::string& path_prefix,
             const std::string& ns, const std::string& cluster, const RetentionPolicy& policy,
             TimePoint now, bool dry_run, PruneResult* result,
             Duration cleanup_older_than = kDefaultCleanupAge, const std::string& just_stored = "");

}  // namespace bao::backup
