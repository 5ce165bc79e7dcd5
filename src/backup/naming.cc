#include "backup/naming.h"

#include <cctype>

#include "crypto/crypto.h"

namespace bao::backup {

std::string ClusterPrefix(std::string_view path_prefix, std::string_view ns,
                          std::string_view cluster) {
  std::string out;
  if (!path_prefix.empty()) {
    out.append(path_prefix);
    out.push_back('/');
  }
  out.append(ns);
  out.push_back('/');
  out.append(cluster);
  out.push_back('/');
  return out;
}

std::string KeyTimestamp(TimePoint t) {
  std::string s = FormatRfc3339(t);
  for (char& c : s) {
    if (c == ':') c = '-';
  }
  return s;
}

std::string NewBackupKey(std::string_view path_prefix, std::string_view ns,
                         std::string_view cluster, TimePoint t, std::string_view file_prefix) {
  return ClusterPrefix(path_prefix, ns, cluster) + std::string(file_prefix) + KeyTimestamp(t) +
         "-" + crypto::RandomHex(8) + ".snap";
}

std::optional<ParsedKey> ParseBackupKey(std::string_view key, std::string_view path_prefix,
                                        std::string_view ns, std::string_view cluster) {
  std::string prefix = ClusterPrefix(path_prefix, ns, cluster);
  if (!key.starts_with(prefix)) return std::nullopt;
  std::string_view name = key.substr(prefix.size());
  // <filePrefix><YYYY-MM-DDTHH-MM-SSZ>-<8 hex>.snap ; the fixed tail is 20 + 1 + 8 + 5 = 34.
  constexpr size_t kTail = 34;
  if (name.find('/') != std::string_view::npos || name.size() < kTail || !name.ends_with(".snap")) {
    return std::nullopt;
  }
  std::string_view tail = name.substr(name.size() - kTail);
  std::string_view file_prefix = name.substr(0, name.size() - kTail);
  if (!file_prefix.empty() && !file_prefix.ends_with("-")) return std::nullopt;
  std::string_view stamp = tail.substr(0, 20);
  std::string_view id = tail.substr(21, 8);
  if (tail[20] != '-' || !crypto::IsLowerHex(id, 8)) return std::nullopt;
  // Turn 2025-01-15T03-00-00Z back into RFC 3339, checking the shape strictly.
  std::string rfc(stamp);
  if (rfc.size() != 20 || rfc[10] != 'T' || rfc[13] != '-' || rfc[16] != '-' || rfc[19] != 'Z') {
    return std::nullopt;
  }
  rfc[13] = ':';
  rfc[16] = ':';
  Result<TimePoint> t = ParseRfc3339(rfc);
  if (!t.ok() || KeyTimestamp(*t) != stamp) return std::nullopt;
  ParsedKey out;
  out.key = std::string(key);
  out.file_prefix = std::string(file_prefix);
  out.time = *t;
  out.id = std::string(id);
  return out;
}

bool IsValidNameSegment(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-')) {
      return false;
    }
  }
  return name.front() != '-' && name.back() != '-';
}

}  // namespace bao::backup
