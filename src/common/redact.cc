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

namespace {

bool UrlChar(char c) {
  return c > ' ' && c != '"' && c != '\'' && c != '<' && c != '>' && c != '\\' && c != ')' &&
         c != ']' && c != ',';
}

// Every URL in `text` loses its user-info and its query string's values (they can carry
// passwords, SAS signatures, pre-signed credentials): "https://u:p@h/x?sig=1" becomes
// "https://[REDACTED]@h/x?[REDACTED]".
void RedactUrls(std::string* text) {
  size_t pos = 0;
  while ((pos = text->find("://", pos)) != std::string::npos) {
    size_t start = pos + 3;
    size_t end = start;
    while (end < text->size() && UrlChar((*text)[end])) ++end;
    std::string_view url(text->data() + start, end - start);
    size_t slash = url.find_first_of("/?#");
    size_t at = url.substr(0, slash).rfind('@');
    std::string rebuilt;
    if (at != std::string_view::npos) {
      rebuilt = "[REDACTED]@";
      url.remove_prefix(at + 1);
    }
    size_t query = url.find('?');
    if (query != std::string_view::npos && query + 1 < url.size()) {
      rebuilt += std::string(url.substr(0, query)) + "?[REDACTED]";
    } else {
      rebuilt += std::string(url);
    }
    text->replace(start, end - start, rebuilt);
    pos = start + rebuilt.size();
  }
}

}  // namespace

std::string Redact(std::string_view text) {
  std::string out(text);
  RedactUrls(&out);
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

size_t UrlAuthorityStart(std::string_view url) {
  size_t scheme = url.find("://");
  if (scheme == std::string_view::npos || scheme == 0) return 0;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!alpha(url[0])) return 0;
  for (char c : url.substr(0, scheme)) {
    if (!alpha(c) && !(c >= '0' && c <= '9') && c != '+' && c != '-' && c != '.') return 0;
  }
  return scheme + 3;
}

std::string UrlForDisplay(std::string_view url) {
  std::string out(url.substr(0, url.find_first_of("?#")));
  size_t host_start = UrlAuthorityStart(out);
  size_t path_start = out.find('/', host_start);
  size_t at = out.find('@', host_start);
  if (at != std::string::npos && (path_start == std::string::npos || at < path_start)) {
    out.erase(host_start, at + 1 - host_start);
  }
  return out;
}

}  // namespace bao
