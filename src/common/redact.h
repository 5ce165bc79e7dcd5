// A process-wide registry of secret values (tokens, JWTs, keys). Everything the program prints
// (logs, results, error messages written to status) passes through Redact(), so a secret that
// slipped into a message is replaced before it leaves the process. Thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace bao {

// Registers `secret` so that later Redact() calls hide it. Values shorter than 6 characters
// are ignored (they would mask ordinary words). Safe to call many times with the same value.
void RegisterSecret(std::string_view secret);

// Returns `text` with every registered secret replaced by "[REDACTED]", and every URL's
// user-info and query string ("scheme://user:pass@host/p?sig=x") replaced as well.
std::string Redact(std::string_view text);

// Returns `url` without its query string and user-info, which can carry credentials
// (pre-signed URLs, SAS tokens). Used in every message that names a URL.
std::string UrlForDisplay(std::string_view url);

// Where the authority (user-info, host, port) of `url` begins: just after a leading
// "scheme://" (a letter, then letters, digits, '+', '-' or '.'), else at 0 ("host:port/path").
// A "://" further on (in a path or query) does not start the authority.
size_t UrlAuthorityStart(std::string_view url);

}  // namespace bao
