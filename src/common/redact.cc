#include "common/redact.h"

#include <algorithm>
#include <mutex>
#include <vector>

namespace bao {
namespace {

struct Registry {
  std::mutex mu;
  std::vector<std::string> secrets;  // longest first, so overlapping secrets mask fully
};

Registry& GetRegistry() {
  static Registry* registry = new Registry();
  return *registry;
}

}  // namespace

void RegisterSecret(std::string_view secret) {
  if (secret.size() < 6) return;
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  if (std::find(r.secrets.begin(), r.secrets.end(), secret) != r.secrets.end()) return;
  r.secrets.emplace_back(secret);
  std::sort(r.secrets.begin(), r.secrets.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::string Redact(std::string_view text) {
  std::string out(text);
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  for (const std::string& secret : r.secrets) {
    size_t pos = 0;
    while ((pos = out.find(secret, pos)) != std::string::npos) {
      out.replace(pos, secret.size(), "[REDACTED]");
      pos += 10;
    }
  }
  return out;
}

std::string UrlForDisplay(std::string_view url) {
  std::string out(url.substr(0, url.find_first_of("?#")));
  size_t scheme = out.find("://");
  size_t host_start = scheme == std::string::npos ? 0 : scheme + 3;
  size_t path_start = out.find('/', host_start);
  size_t at = out.find('@', host_start);
  if (at != std::string::npos && (path_start == std::string::npos || at < path_start)) {
    out.erase(host_start, at + 1 - host_start);
  }
  return out;
}

}  // namespace bao
