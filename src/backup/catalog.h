// Finding one cluster's backups in a store, and choosing one.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "backup/naming.h"
#include "common/status.h"
#include "common/context.h"
#include "storage/store.h"

namespace bao::backup {

struct BackupEntry {
  ParsedKey name;            // key, time, id
  storage::ObjectInfo info;  // size, recorded sha256 (filled by Stat when the listing lacks it)
};

// This cluster's backups in `store`, newest first. Objects under the prefix that do not parse
// as this cluster's backups are skipped. With `with_checksums`, objects whose listing carries
// no checksum are Stat()ed to fetch it (and their lock, which such listings lack too).
// Failures are Stage::kStorage.
Result<std::vector<BackupEntry>> ListBackups(const Context& ctx, storage::Store* store,
                                             const std::string& path_prefix,
                                             const std::string& ns, const std::string& cluster,
                                             bool with_checksums);

struct Selector {
  std::string key;                  // exactly this key
  bool latest = false;              // the newest backup
  std::optional<TimePoint> before;  // the newest backup strictly older than this
  // With latest/before: consider only backups with a recorded checksum (what restore can
  // verify), skipping others with a warning.
  bool verifiable_only = false;
};

// Resolves `selector` to one key. kInvalidArgument when the selector is empty or ambiguous,
// kFailedPrecondition with Reason::kNotFound when nothing matches (the message says what was
// looked for and where), both Stage::kConfig; a failed listing comes back as the store reported
// it, Stage::kStorage (kNotFound for a missing bucket).
Result<std::string> SelectBackup(const Context& ctx, storage::Store* store,
                                 const std::string& path_prefix,
                                 const std::string& ns, const std::string& cluster,
                                 const Selector& selector);

}  // namespace bao::backup
