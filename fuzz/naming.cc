// Backup object names (backup/naming.h). Input: 8 bytes choosing a time, then lines: path
// prefix, namespace, cluster, file prefix, and a key.
//
// Properties: a key made by NewBackupKey (file prefix empty or ending in '-', without '/';
// a time ParseRfc3339 accepts) parses back (ParseBackupKey) to the same time to the second,
// file prefix and key; any key that parses is exactly the name made from its parts.
#include "backup/naming.h"

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "check.h"
#include "crypto/crypto.h"

namespace {

std::vector<std::string_view> Lines(std::string_view text, size_t n) {
  std::vector<std::string_view> lines;
  while (lines.size() + 1 < n) {
    size_t nl = text.find('\n');
    if (nl == std::string_view::npos) break;
    lines.push_back(text.substr(0, nl));
    text.remove_prefix(nl + 1);
  }
  lines.push_back(text);
  lines.resize(n);
  return lines;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bao::backup;
  if (size < 8) return 0;
  uint64_t pick;
  std::memcpy(&pick, data, 8);
  std::vector<std::string_view> f =
      Lines(std::string_view(reinterpret_cast<const char*>(data + 8), size - 8), 5);
  std::string_view prefix = f[0], ns = f[1], cluster = f[2], file_prefix = f[3], key = f[4];

  std::optional<ParsedKey> parsed = ParseBackupKey(key, prefix, ns, cluster);
  if (parsed) {
    FUZZ_CHECK(parsed->key == key);
    FUZZ_CHECK(parsed->file_prefix.empty() || parsed->file_prefix.ends_with('-'));
    FUZZ_CHECK(bao::crypto::IsLowerHex(parsed->id, 8));
    FUZZ_CHECK(ClusterPrefix(prefix, ns, cluster) + parsed->file_prefix +
                   KeyTimestamp(parsed->time) + "-" + parsed->id + ".snap" ==
               key);
  }
  (void)IsValidNameSegment(ns);

  // Times from kMinYear-01-01 to the end of kMaxYear, in milliseconds.
  const int64_t first = bao::DaysFromCivil(bao::kMinYear, 1, 1) * 86400000;
  const int64_t end = bao::DaysFromCivil(bao::kMaxYear + 1, 1, 1) * 86400000;
  const bao::TimePoint t(std::chrono::milliseconds(
      first + static_cast<int64_t>(pick % static_cast<uint64_t>(end - first))));
  if (!(file_prefix.empty() || file_prefix.ends_with('-')) ||
      file_prefix.find('/') != std::string_view::npos) {
    return 0;
  }
  std::string made = NewBackupKey(prefix, ns, cluster, t, file_prefix);
  std::optional<ParsedKey> back = ParseBackupKey(made, prefix, ns, cluster);
  FUZZ_CHECK(back.has_value());
  FUZZ_CHECK(back->key == made && back->file_prefix == file_prefix);
  FUZZ_CHECK(back->time == std::chrono::floor<std::chrono::seconds>(t));
  return 0;
}
