// Backup object names, per the contract:
//   <pathPrefix>/<namespace>/<cluster>/[<filePrefix>]<timestamp>-<id>.snap
// where <timestamp> is UTC RFC 3339 with ':' replaced by '-' (2025-01-15T03-00-00Z) and <id>
// is 8 random lower-case hex characters. Without a path prefix the key starts at <namespace>.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/time.h"

namespace bao::backup {

// "<pathPrefix>/<namespace>/<cluster>/" (the directory holding one cluster's backups).
std::string ClusterPrefix(std::string_view path_prefix, std::string_view ns,
                          std::string_view cluster);

// The timestamp part for `t` (whole seconds, UTC): "2025-01-15T03-00-00Z".
std::string KeyTimestamp(TimePoint t);

// A new key for a backup taken at `t` with a fresh random id.
std::string NewBackupKey(std::string_view path_prefix, std::string_view ns,
                         std::string_view cluster, TimePoint t, std::string_view file_prefix = "");

struct ParsedKey {
  std::string key;
  std::string file_prefix;  // "" or e.g. "pre-upgrade-"
  TimePoint time;
  std::string id;
};

// Parses `key` as one of this cluster's backups: it must sit directly under ClusterPrefix()
// and have the exact file-name shape. Anything else (other clusters, foreign files, checksum
// side files, names with a bad timestamp) is nullopt.
std::optional<ParsedKey> ParseBackupKey(std::string_view key, std::string_view path_prefix,
                                        std::string_view ns, std::string_view cluster);

// True when `name` is a valid Kubernetes-style name segment for namespace/cluster
// (lower-case alphanumerics and '-', 1..63, starting and ending alphanumeric).
bool IsValidNameSegment(std::string_view name);

}  // namespace bao::backup
