#include "backup/catalog.h"

#include <algorithm>

#include "common/log.h"

namespace bao::backup {

Result<std::vector<BackupEntry>> ListBackups(const Context& ctx, storage::Store* store,
                                             const std::string& path_prefix,
                                             const std::string& ns, const std::string& cluster,
                                             bool with_checksums) {
  std::vector<BackupEntry> out;
  Status s = store->List(
      ctx, ClusterPrefix(path_prefix, ns, cluster), [&](const storage::ObjectInfo& info) -> Status {
        std::optional<ParsedKey> parsed = ParseBackupKey(info.key, path_prefix, ns, cluster);
        if (parsed) out.push_back({*parsed, info});
        return Status::Ok();
      });
  if (!s.ok()) {
    return s.WithContext("listing backups in " + store->Describe()).InStage(Stage::kStorage);
  }
  std::sort(out.begin(), out.end(), [](const BackupEntry& a, const BackupEntry& b) {
    return a.name.time != b.name.time ? a.name.time > b.name.time : a.name.key > b.name.key;
  });
  if (with_checksums) {
    for (BackupEntry& e : out) {
      if (!e.info.sha256.empty()) continue;
      Result<storage::ObjectInfo> info = store->Stat(ctx, e.name.key);
      if (info.ok()) {
        e.info.sha256 = info->sha256;
        e.info.lock_mode = info->lock_mode;  // such listings lack the lock too (S3)
        e.info.locked_until = info->locked_until;
      } else if (info.status().code() != Code::kNotFound)
        return info.status().InStage(Stage::kStorage);
    }
  }
  return out;
}

Result<std::string> SelectBackup(const Context& ctx, storage::Store* store,
                                 const std::string& path_prefix,
                                 const std::string& ns, const std::string& cluster,
                                 const Selector& selector) {
  int given = (!selector.key.empty()) + selector.latest + selector.before.has_value();
  if (given != 1) {
    return InvalidArgument("choose the backup with exactly one of --key, --latest or --before")
        .WithStage(Stage::kConfig);
  }
  if (!selector.key.empty()) return selector.key;
  BAO_ASSIGN_OR_RETURN(std::vector<BackupEntry> entries,
                       ListBackups(ctx, store, path_prefix, ns, cluster, selector.verifiable_only));
  if (selector.verifiable_only) {
    std::erase_if(entries, [](const BackupEntry& e) {
      if (!e.info.sha256.empty()) return false;
      log::Warn("skipping a backup without a recorded checksum", {{"key", e.name.key}});
      return true;
    });
  }
  std::string where = store->Describe() + "/" + ClusterPrefix(path_prefix, ns, cluster);
  if (selector.latest) {
    if (entries.empty())
      return Error(Code::kFailedPrecondition, Reason::kNotFound,
                   "no backups of cluster " + ns + "/" + cluster + " in " + where)
          .WithStage(Stage::kConfig);
    return entries.front().name.key;
  }
  for (const BackupEntry& e : entries) {
    if (e.name.time < *selector.before) return e.name.key;
  }
  return Error(Code::kFailedPrecondition, Reason::kNotFound,
               "no backup of cluster " + ns + "/" + cluster + " older than " +
                   FormatRfc3339(*selector.before) + " in " + where +
                   (entries.empty() ? " (there are no backups at all)"
                                    : " (the oldest is from " +
                                          FormatRfc3339(entries.back().name.time) + ")"))
      .WithStage(Stage::kConfig);
}

}  // namespace bao::backup
