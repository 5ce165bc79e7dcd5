// OAuth2 access tokens as the Google and Azure identities hand them out, cached in one way:
// a token is reused until shortly before it expires, concurrent callers share one fetch, and
// every token is registered with RegisterSecret() the moment it is parsed, so it never appears
// in a log line or message. Used by google_auth.h and azure_auth.h.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "common/context.h"
#include "common/status.h"
#include "http/client.h"

namespace bao::storage {

struct AccessToken {
  std::string token;
  std::chrono::seconds expires_in{0};  // lifetime from when it was issued
};

// The longest lifetime accepted in `expires_in` (ten years): more is a malformed answer.
inline constexpr int64_t kMaxTokenLifetimeSeconds = int64_t{10} * 365 * 86400;

// Parses a token endpoint's JSON answer {"access_token": "...", "expires_in": N}. `expires_in`
// may be a JSON integer or a string of decimal digits (IMDS sends one), within
// [0, kMaxTokenLifetimeSeconds], parsed whole (common/numbers.h); absent means 3600 s. The
// token is registered as a secret. Errors: kInternal with Reason::kBadResponse naming `who`
// (never the body) when the answer is not JSON, has no non-empty access_token, or has an
// unusable expires_in.
Result<AccessToken> ParseAccessTokenResponse(std::string_view body, const std::string& who);

// A request to a token endpoint, without method, URL, headers or body: the answers are small,
// so the whole request is bounded to 30 s and fails as stalled after 15 s without a byte;
// `ctx` cancels it.
http::Request TokenRequest(const Context& ctx);

// The Status for a token endpoint that answered non-2xx: 408/429/5xx are kUnavailable
// (retryable: kTimeout/kThrottled/kServerError), anything else means the identity was refused:
// kUnauthenticated with Reason::kUnauthenticated. `what` names the endpoint and identity; the
// endpoint's own reason (http::ErrorSummary, redacted) is appended. The HTTP status is kept.
Status TokenEndpointError(const http::Response& response, const std::string& what);

// Caches one token source's tokens. Thread-safe.
class TokenCache {
 public:
  // Obtains a fresh token; called by at most one thread at a time.
  using Fetch = std::function<Result<AccessToken>(const Context& ctx)>;
  using Now = std::function<SteadyTime()>;

  // A token is used until `refresh_margin` before it expires, or for half its lifetime when it
  // lives shorter than twice the margin (so a token of 0 s is fetched again every time).
  explicit TokenCache(
      Fetch fetch, std::chrono::seconds refresh_margin = std::chrono::minutes(5),
      Now now = [] { return std::chrono::steady_clock::now(); });

  // The cached token while it is fresh, else one from `fetch(ctx)` (whose error is returned and
  // nothing cached). While another caller fetches, waits for that fetch, giving up with
  // ctx.Check()'s error when `ctx` is done first.
  Result<std::string> Get(const Context& ctx);

  // Forgets the cached token (after the service answered 401), so the next Get() fetches.
  void Invalidate();

  // Successful fetches so far.
  int fetches() const;

 private:
  const Fetch fetch_;
  const std::chrono::seconds margin_;
  const Now now_;
  mutable std::mutex mu_;
  std::condition_variable fetched_;
  bool fetching_ = false;
  std::string token_;
  SteadyTime refresh_at_{};
  int fetches_ = 0;
};

}  // namespace bao::storage
