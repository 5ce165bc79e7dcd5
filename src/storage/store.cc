#include "storage/store.h"

#include <algorithm>
#include <set>

namespace bao::storage {

Status ValidateKey(std::string_view key) {
  auto bad = [&](const char* why) {
    return Error(Code::kInvalidArgument, Reason::kInvalidValue,
                 "object key \"" + std::string(key) + "\" " + why);
  };
  if (key.empty()) return bad("is empty");
  if (key.size() > 1024) return bad("is longer than 1024 bytes");
  if (key.front() == '/') return bad("starts with '/'");
  if (key.back() == '/') return bad("ends with '/'");
  size_t start = 0;
  while (start <= key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string_view::npos) end = key.size();
    std::string_view seg = key.substr(start, end - start);
    if (seg.empty()) return bad("has an empty path segment");
    if (seg == "." || seg == "..") return bad("has a '.' or '..' segment");
    start = end + 1;
  }
  for (char c : key) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return bad("has a control character");
  }
  if (IsChecksumKey(key)) {
    return bad("ends in \".sha256\", which is reserved for checksum side objects");
  }
  return Status::Ok();
}

std::string ChecksumFileContent(std::string_view key, std::string_view sha256) {
  size_t slash = key.rfind('/');
  std::string_view base = slash == std::string_view::npos ? key : key.substr(slash + 1);
  return std::string(sha256) + "  " + std::string(base) + "\n";
}

std::string ParseChecksumFile(std::string_view content) {
  std::string_view hex = content.substr(0, std::min<size_t>(64, content.size()));
  if (hex.size() != 64) return "";
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return "";
  }
  return std::string(hex);
}

std::vector<Leftover> OrphanChecksums(const std::vector<ObjectInfo>& all, TimePoint older_than) {
  std::set<std::string_view> objects;
  for (const ObjectInfo& o : all) {
    if (!IsChecksumKey(o.key)) objects.insert(o.key);
  }
  std::vector<Leftover> orphans;
  for (const ObjectInfo& o : all) {
    if (!IsChecksumKey(o.key) || o.modified >= older_than) continue;
    std::string object = o.key.substr(0, o.key.size() - kChecksumSuffix.size());
    if (!objects.contains(object)) orphans.push_back({"orphan-checksum", object, o.modified});
  }
  return orphans;
}

}  // namespace bao::storage
