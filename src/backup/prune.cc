#include "backup/prune.h"

#include <set>

#include "backup/catalog.h"
#include "common/log.h"

namespace bao::backup {

nlohmann::json PruneResult::ToJson() const {
  nlohmann::json plan_json = nlohmann::json::array();
  for (const RetentionDecision& d : plan) {
    plan_json.push_back({{"key", d.backup.key},
                         {"time", FormatRfc3339(d.backup.time)},
                         {"keep", d.keep},
                         {"reason", d.reason}});
  }
  return {{"dryRun", dry_run}, {"plan", plan_json}, {"deleted", deleted}, {"failed", failed}};
}

Status Prune(storage::Store* store, const std::string& path_prefix, const std::string& ns,
             const std::string& cluster, const RetentionPolicy& policy, TimePoint now, bool dry_run,
             PruneResult* result) {
  *result = PruneResult();
  result->dry_run = dry_run;
  // With checksums: a backup counts toward what is kept only when it can be verified.
  BAO_ASSIGN_OR_RETURN(std::vector<BackupEntry> entries,
                       ListBackups(store, path_prefix, ns, cluster, /*with_checksums=*/true));
  std::vector<ParsedKey> names;
  std::set<std::string> unverifiable;
  for (const BackupEntry& e : entries) {
    names.push_back(e.name);
    if (e.info.sha256.empty()) unverifiable.insert(e.name.key);
  }
  result->plan = PlanRetention(names, policy, now, unverifiable);
  for (const RetentionDecision& d : result->plan) {
    if (d.keep) continue;
    if (dry_run) {
      log::Info("would delete", {{"key", d.backup.key}, {"reason", d.reason}});
      continue;
    }
    Status s = store->Delete(d.backup.key);
    if (s.ok()) {
      log::Info("deleted", {{"key", d.backup.key}, {"reason", d.reason}});
      result->deleted.push_back(d.backup.key);
    } else {
      log::Error("delete failed", {{"key", d.backup.key}, {"error", s.message()}});
      result->failed.push_back(d.backup.key + ": " + s.message());
    }
  }
  if (!result->failed.empty()) {
    return Unavailable(std::to_string(result->failed.size()) + " of " +
                       std::to_string(result->failed.size() + result->deleted.size()) +
                       " deletes failed; first: " + result->failed.front());
  }
  return Status::Ok();
}

}  // namespace bao::backup
