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

struct PruneResult {
  std::vector<RetentionDecision> plan;  // newest first
  std::vector<std::string> deleted;
  std::vector<std::string> failed;  // "key: error" for deletes that failed
  size_t unverifiable = 0;          // backups without a recorded checksum
  bool dry_run = false;

  size_t kept() const;
  // The oldest backup the plan keeps; nullptr when it keeps none.
  const RetentionDecision* oldest_kept() const;
  // Counts only, never one entry per backup: this is (part of) the result JSON that a
  // Kubernetes Job leaves as its termination message, which the kubelet cuts at 4096 bytes.
  // Each decision is logged by Prune() instead.
  // {"dryRun", "backups", "unverifiable", "kept", "toDelete", "deleted", "failed", "oldestKept"}
  nlohmann::json ToJson() const;
};

// Lists this cluster's backups, plans with PlanRetention(policy, now) and, unless `dry_run`,
// deletes what the plan drops. Every decision is logged (info; a failed delete as an error),
// one line per backup. A failed delete is recorded and the rest continue; the Status is an
// error only when listing fails or some delete failed (then the result is still filled, see
// `failed`).
Status Prune(const Context& ctx, storage::Store* store, const std::string& path_prefix,
             const std::string& ns, const std::string& cluster, const RetentionPolicy& policy,
             TimePoint now, bool dry_run, PruneResult* result);

}  // namespace bao::backup
