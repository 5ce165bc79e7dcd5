#include "storage/token_cache.h"

#include <nlohmann/json.hpp>

#include "common/numbers.h"
#include "common/redact.h"

namespace bao::storage {

Result<AccessToken> ParseAccessTokenResponse(std::string_view body, const std::string& who) {
  auto bad = [&](const std::string& why) {
    return Error(Code::kInternal, Reason::kBadResponse, who + " answered " + why);
  };
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return bad("something that is not a JSON object");
  auto token = j.find("access_token");
  if (token == j.end() || !token->is_string() || token->get_ref<const std::string&>().empty()) {
    return bad("without an access_token");
  }
  AccessToken out;
  out.token = token->get<std::string>();
  RegisterSecret(out.token);
  out.expires_in = std::chrono::seconds(3600);
  auto expires = j.find("expires_in");
  if (expires != j.end()) {
    std::optional<int64_t> n;
    if (expires->is_number_unsigned()) {
      uint64_t v = expires->get<uint64_t>();
      if (v <= static_cast<uint64_t>(kMaxTokenLifetimeSeconds)) n = static_cast<int64_t>(v);
    } else if (expires->is_number_integer()) {
      n = std::nullopt;  // negative
    } else if (expires->is_string()) {
      n = ParseInteger<int64_t>(expires->get_ref<const std::string&>(), 0,
                                kMaxTokenLifetimeSeconds);
    }
    if (!n) return bad("an expires_in that is not a number of seconds");
    out.expires_in = std::chrono::seconds(*n);
  }
  return out;
}

http::Request TokenRequest(const Context& ctx) {
  http::Request req;
  req.timeout = std::chrono::seconds(30);
  req.stall_time = std::chrono::seconds(15);
  req.ctx = ctx;
  return req;
}

Status TokenEndpointError(const http::Response& r, const std::string& what) {
  std::string msg = what + " (HTTP " + std::to_string(r.status) + "): " + http::ErrorSummary(r);
  Status s;
  if (r.status == 408) {
    s = Error(Code::kUnavailable, Reason::kTimeout, msg);
  } else if (r.status == 429) {
    s = Error(Code::kUnavailable, Reason::kThrottled, msg);
  } else if (r.status >= 500) {
    s = Error(Code::kUnavailable, Reason::kServerError, msg);
  } else {
    s = Error(Code::kUnauthenticated, Reason::kUnauthenticated, msg);
  }
  return s.WithHttpStatus(static_cast<int>(r.status));
}

TokenCache::TokenCache(Fetch fetch, std::chrono::seconds refresh_margin, Now now)
    : fetch_(std::move(fetch)), margin_(refresh_margin), now_(std::move(now)) {}

Result<std::string> TokenCache::Get(const Context& ctx) {
  std::unique_lock<std::mutex> lock(mu_);
  while (fetching_) {
    BAO_RETURN_IF_ERROR(ctx.Check("waiting for an access token"));
    fetched_.wait_for(lock, std::chrono::milliseconds(50));
  }
  if (!token_.empty() && now_() < refresh_at_) return token_;
  fetching_ = true;
  lock.unlock();
  const SteadyTime asked = now_();
  Result<AccessToken> fresh = fetch_(ctx);
  lock.lock();
  fetching_ = false;
  fetched_.notify_all();
  if (!fresh.ok()) return fresh.status();
  std::chrono::seconds life = fresh->expires_in;
  std::chrono::seconds usable = life > 2 * margin_ ? life - margin_ : life / 2;
  token_ = fresh->token;
  refresh_at_ = asked + usable;
  ++fetches_;
  return token_;
}

void TokenCache::Invalidate() {
  std::lock_guard<std::mutex> lock(mu_);
  token_.clear();
}

int TokenCache::fetches() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fetches_;
}

}  // namespace bao::storage
