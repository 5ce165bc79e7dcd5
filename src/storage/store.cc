#include "storage/store.h"

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
  return Status::Ok();
}

}  // namespace bao::storage
