#include "backup/prune.h"

#include <set>

#include "backup/catalog.h"
#include "backup/naming.h"
#include "backup/verify.h"
#include "common/log.h"

namespace bao::backup {

size_t PruneResult::kept() const {
  size_t n = 0;
  for (const RetentionDecision& d : plan) n += d.keep ? 1 : 0;
  return n;
}

const RetentionDecision* PruneResult::oldest_kept() const {
  for (auto it = plan.rbegin(); it != plan.rend(); ++it) {
    if (it->keep) return &*it;
  }
  return nullptr;
}

nlohmann::json PruneResult::ToJson() const {
  const RetentionDecision* oldest = oldest_kept();
  nlohmann::json out = {
      {"dryRun", dry_run},
      {"backups", plan.size()},
      {"unverifiable", unverifiable},
      {"kept", kept()},
      {"toDelete", plan.size() - kept()},
      {"deleted", deleted.size()},
      {"failed", failed.size()},
      {"oldestKept", oldest != nullptr ? nlohmann::json(oldest->backup.key) : nullptr},
      {"verified", verified.empty() ? nlohmann::json(nullptr) : nlohmann::json(verified)},
      {"cleanedUp", cleanup.removed},
      {"locked", locked.size()}};
  if (!locked.empty()) {
    nlohmann::json keys = nlohmann::json::array();
    for (size_t i = 0; i < locked.size() && i < kMaxLockedInJson; ++i) {
      keys.push_back({{"key", locked[i].key}, {"until", locked[i].until}});
    }
    out["lockedKeys"] = keys;
  }
  if (!cleanup.error.ok()) out["cleanupError"] = cleanup.error.message();
  return out;
}

CleanupResult CleanUpLeftovers(const Context& ctx, storage::Store* store,
                               const std::string& cluster_prefix, Duration older_than,
                               TimePoint now) {
  CleanupResult result;
  TimePoint threshold = older_than.count() <= 0 ? TimePoint::max() : now - older_than;
  Result<std::vector<storage::Leftover>> removed =
      store->CleanUpLeftovers(ctx, cluster_prefix, threshold);
  if (!removed.ok()) {
    result.error = removed.status().InStage(Stage::kStorage);
    return result;
  }
  for (const storage::Leftover& l : *removed) {
    log::Info("removed a crashed upload's leftover",
              {{"kind", l.kind}, {"key", l.key}, {"started", FormatRfc3339(l.started)}});
  }
  result.removed = removed->size();
  return result;
}

namespace {

// The newest backup the plan keeps that is not known to be unverifiable.
const RetentionDecision* NewestKeptVerifiable(const std::vector<RetentionDecision>& plan,
                                              const std::set<std::string>& unverifiable) {
  for (const RetentionDecision& d : plan) {  // newest first
    if (d.keep && !unverifiable.contains(d.backup.key)) return &d;
  }
  return nullptr;
}

bool DeletesAny(const std::vector<RetentionDecision>& plan) {
  for (const RetentionDecision& d : plan) {
    if (!d.keep) return true;
  }
  return false;
}

// A recorded checksum says what the bytes were, not that they still are: before a plan
// deletes anything, the newest backup it keeps is read and checked. One that fails the check
// (Stage::kVerify) no longer counts as verifiable and the plan is made again, until the
// newest kept backup verifies or none is left. Any other failure to read it stops the prune
// before a delete.
Status AnchorOnTheNewestVerifiable(const Context& ctx, storage::Store* store,
                                   const std::vector<ParsedKey>& names,
                                   const RetentionPolicy& policy, TimePoint now, bool dry_run,
                                   const std::string& just_stored,
                                   std::set<std::string>* unverifiable, PruneResult* result) {
  while (!dry_run && DeletesAny(result->plan)) {
    const RetentionDecision* anchor = NewestKeptVerifiable(result->plan, *unverifiable);
    if (anchor == nullptr) return Status::Ok();
    const std::string key = anchor->backup.key;
    if (key == just_stored) {
      result->verified = key;
      return Status::Ok();
    }
    Result<VerifyReport> checked = VerifyBackup(ctx, store, key);
    if (checked.ok()) {
      log::Info("the newest backup kept verifies", {{"key", key}});
      result->verified = key;
      return Status::Ok();
    }
    if (checked.status().stage() != Stage::kVerify) {
      return checked.status().WithContext("checking the newest backup kept, " + key +
                                          ", before deleting any");
    }
    log::Warn("the newest backup kept does not verify; it no longer counts toward retention",
              {{"key", key}, {"error", checked.status().message()}});
    unverifiable->insert(key);
    result->plan = PlanRetention(names, policy, now, *unverifiable);
  }
  return Status::Ok();
}

}  // namespace

Status Prune(const Context& ctx, storage::Store* store, const std::string& path_prefix,
             const std::string& ns, const std::string& cluster, const RetentionPolicy& policy,
             TimePoint now, bool dry_run, PruneResult* result, Duration cleanup_older_than,
             const std::string& just_stored) {
  *result = PruneResult();
  result->dry_run = dry_run;
  if (!dry_run) {
    result->cleanup = CleanUpLeftovers(ctx, store, ClusterPrefix(path_prefix, ns, cluster),
                                       cleanup_older_than, now);
    if (!result->cleanup.error.ok()) {
      log::Error("cleaning up crashed uploads failed",
                 {{"error", result->cleanup.error.message()}});
    }
  }
  // With checksums: a backup counts toward what is kept only when it can be verified.
  BAO_ASSIGN_OR_RETURN(std::vector<BackupEntry> entries,
                       ListBackups(ctx, store, path_prefix, ns, cluster, /*with_checksums=*/true));
  std::vector<ParsedKey> names;
  std::set<std::string> unverifiable;
  for (const BackupEntry& e : entries) {
    names.push_back(e.name);
    if (e.info.sha256.empty()) unverifiable.insert(e.name.key);
  }
  result->plan = PlanRetention(names, policy, now, unverifiable);
  BAO_RETURN_IF_ERROR(AnchorOnTheNewestVerifiable(ctx, store, names, policy, now, dry_run,
                                                  just_stored, &unverifiable, result));
  result->unverifiable = unverifiable.size();
  for (const RetentionDecision& d : result->plan) {
    if (d.keep) {
      log::Info("kept", {{"key", d.backup.key}, {"reason", d.reason}});
      continue;
    }
    if (dry_run) {
      log::Info("would delete", {{"key", d.backup.key}, {"reason", d.reason}});
      continue;
    }
    if (Status s = ctx.Check("pruning"); !s.ok()) return s;
    Status s = store->Delete(ctx, d.backup.key);
    if (s.ok()) {
      log::Info("deleted", {{"key", d.backup.key}, {"reason", d.reason}});
      result->deleted.push_back(d.backup.key);
    } else if (s.reason() == Reason::kLocked) {
      const std::string* until = s.payload("lockedUntil");
      std::string when = until != nullptr ? *until : "";
      log::Info("locked until " + (when.empty() ? std::string("a later time") : when) +
                    "; kept until then, deleted by a later prune",
                {{"key", d.backup.key}, {"reason", d.reason}, {"lockedUntil", when}});
      result->locked.push_back({d.backup.key, when});
    } else {
      log::Error("delete failed", {{"key", d.backup.key}, {"error", s.message()}});
      result->failed.push_back(d.backup.key + ": " + s.message());
    }
  }
  if (!result->failed.empty()) {
    return Unavailable(std::to_string(result->failed.size()) + " of " +
                       std::to_string(result->failed.size() + result->deleted.size()) +
                       " deletes failed; first: " + result->failed.front())
        .WithStage(Stage::kStorage);
  }
  if (!result->cleanup.error.ok()) {
    return result->cleanup.error.WithContext("cleaning up crashed uploads");
  }
  return Status::Ok();
}

}  // namespace bao::backup
