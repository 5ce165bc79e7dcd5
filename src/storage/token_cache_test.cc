#include "storage/token_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "common/redact.h"

namespace bao::storage {
namespace {

using std::chrono::seconds;

TEST(TokenResponseTest, ParsesTokenAndLifetimeAndRegistersTheToken) {
  auto t =
      ParseAccessTokenResponse(R"({"access_token":"ya29.unit-token-1","expires_in":1200})", "x");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->token, "ya29.unit-token-1");
  EXPECT_EQ(t->expires_in, seconds(1200));
  EXPECT_EQ(Redact("Bearer ya29.unit-token-1"), "Bearer [REDACTED]");

  auto imds =
      ParseAccessTokenResponse(R"({"access_token":"imds-token-2","expires_in":"86399"})", "x");
  ASSERT_TRUE(imds.ok());
  EXPECT_EQ(imds->expires_in, seconds(86399));
  auto absent = ParseAccessTokenResponse(R"({"access_token":"tok-without-expiry"})", "x");
  ASSERT_TRUE(absent.ok());
  EXPECT_EQ(absent->expires_in, seconds(3600));
  auto longest =
      ParseAccessTokenResponse(R"({"access_token":"tok-ten-years","expires_in":315360000})", "x");
  ASSERT_TRUE(longest.ok());
  EXPECT_EQ(longest->expires_in, seconds(kMaxTokenLifetimeSeconds));
  auto zero = ParseAccessTokenResponse(R"({"access_token":"tok-zero","expires_in":"0"})", "x");
  ASSERT_TRUE(zero.ok());
  EXPECT_EQ(zero->expires_in, seconds(0));
}

TEST(TokenResponseTest, RefusesMalformedAnswersWithoutEchoingThem) {
  for (const char* body : {R"({"token_type":"Bearer"})", "<html>", R"({"access_token":""})",
                           R"({"access_token":"t-secret-1","expires_in":-5})",
                           R"({"access_token":"t-secret-2","expires_in":"12x"})",
                           R"({"access_token":"t-secret-3","expires_in":" 12"})",
                           R"({"access_token":"t-secret-4","expires_in":"99999999999999"})",
                           R"({"access_token":"t-secret-5","expires_in":1.5})",
                           // Added to clock readings: beyond ten years is malformed, and
                           // these would overflow there.
                           R"({"access_token":"t-secret-6","expires_in":315360001})",
                           R"({"access_token":"t-secret-7","expires_in":9223372036854775807})",
                           R"({"access_token":"t-secret-8","expires_in":18446744073709551615})",
                           R"({"access_token":"t-secret-9","expires_in":-9223372036854775808})",
                           R"({"access_token":"t-secret-a","expires_in":"315360001"})"}) {
    SCOPED_TRACE(body);
    auto t = ParseAccessTokenResponse(body, "the token endpoint");
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), Code::kInternal);
    EXPECT_EQ(t.status().reason(), Reason::kBadResponse);
    EXPECT_EQ(t.status().message().find("t-secret"), std::string::npos);
    EXPECT_NE(t.status().message().find("the token endpoint"), std::string::npos);
  }
}

TEST(TokenEndpointErrorTest, RefusalIsUnauthenticatedAndOverloadIsRetryable) {
  http::Response r;
  r.status = 400;
  r.body = R"({"error":"invalid_grant","error_description":"Invalid JWT Signature."})";
  Status refused = TokenEndpointError(r, "token endpoint x");
  EXPECT_EQ(refused.code(), Code::kUnauthenticated);
  EXPECT_EQ(refused.reason(), Reason::kUnauthenticated);
  EXPECT_EQ(refused.http_status(), 400);
  EXPECT_NE(refused.message().find("Invalid JWT Signature."), std::string::npos);
  r.status = 503;
  EXPECT_EQ(TokenEndpointError(r, "x").reason(), Reason::kServerError);
  r.status = 429;
  EXPECT_EQ(TokenEndpointError(r, "x").reason(), Reason::kThrottled);
  EXPECT_EQ(TokenEndpointError(r, "x").code(), Code::kUnavailable);
}

TEST(TokenRequestTest, IsBoundedAndCarriesTheContext) {
  CancelSource cancel;
  http::Request req = TokenRequest(Context(&cancel));
  EXPECT_EQ(req.timeout, std::chrono::seconds(30));
  EXPECT_EQ(req.stall_time, std::chrono::seconds(15));
  EXPECT_TRUE(req.ctx.Check("x").ok());
  cancel.Cancel();
  EXPECT_FALSE(req.ctx.Check("x").ok());
}

// A cache over a fetch that hands out "t1", "t2", ... with `life`, on a settable clock.
struct Fixture {
  explicit Fixture(seconds life)
      : cache(
            [this, life](const Context&) -> Result<AccessToken> {
              return AccessToken{"t" + std::to_string(++calls), life};
            },
            seconds(300), [this] { return now; }) {}
  std::atomic<int> calls{0};
  SteadyTime now{};
  TokenCache cache;
};

TEST(TokenCacheTest, ReusesATokenUntilTheMarginBeforeItExpires) {
  Fixture f(seconds(3600));
  EXPECT_EQ(*f.cache.Get(Context()), "t1");
  f.now += seconds(3600 - 301);
  EXPECT_EQ(*f.cache.Get(Context()), "t1");
  f.now += seconds(2);  // within 5 minutes of expiry
  EXPECT_EQ(*f.cache.Get(Context()), "t2");
  EXPECT_EQ(f.cache.fetches(), 2);
}

TEST(TokenCacheTest, ShortLivedTokensAreUsedForHalfTheirLife) {
  Fixture f(seconds(100));
  EXPECT_EQ(*f.cache.Get(Context()), "t1");
  f.now += seconds(49);
  EXPECT_EQ(*f.cache.Get(Context()), "t1");
  f.now += seconds(1);
  EXPECT_EQ(*f.cache.Get(Context()), "t2");

  Fixture zero(seconds(0));
  EXPECT_EQ(*zero.cache.Get(Context()), "t1");
  EXPECT_EQ(*zero.cache.Get(Context()), "t2");  // a token of 0 s is never reused
}

TEST(TokenCacheTest, InvalidateForcesAFetchAndErrorsAreNotCached) {
  int calls = 0;
  bool fail = true;
  TokenCache cache([&](const Context&) -> Result<AccessToken> {
    ++calls;
    if (fail) return Error(Code::kUnavailable, Reason::kUnreachable, "down");
    return AccessToken{"tok-" + std::to_string(calls), seconds(3600)};
  });
  EXPECT_EQ(cache.Get(Context()).status().reason(), Reason::kUnreachable);
  fail = false;
  EXPECT_EQ(*cache.Get(Context()), "tok-2");
  EXPECT_EQ(*cache.Get(Context()), "tok-2");
  cache.Invalidate();
  EXPECT_EQ(*cache.Get(Context()), "tok-3");
  EXPECT_EQ(cache.fetches(), 2);
}

TEST(TokenCacheTest, ConcurrentCallersShareOneFetch) {
  std::atomic<int> calls{0};
  std::atomic<bool> release{false};
  TokenCache cache([&](const Context&) -> Result<AccessToken> {
    ++calls;
    while (!release.load()) std::this_thread::yield();
    return AccessToken{"shared", seconds(3600)};
  });
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      if (cache.Get(Context()).ok()) ++ok;
    });
  }
  while (calls.load() == 0) std::this_thread::yield();
  release = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(ok.load(), 4);
}

TEST(TokenCacheTest, AWaiterGivesUpWhenItsContextEnds) {
  std::atomic<bool> release{false};
  std::atomic<bool> fetching{false};
  TokenCache cache([&](const Context&) -> Result<AccessToken> {
    fetching = true;
    while (!release.load()) std::this_thread::yield();
    return AccessToken{"late", seconds(3600)};
  });
  std::thread fetcher([&] { (void)cache.Get(Context()); });
  while (!fetching.load()) std::this_thread::yield();
  CancelSource source;
  source.Cancel();
  Result<std::string> waited = cache.Get(Context(&source));
  EXPECT_EQ(waited.status().reason(), Reason::kCancelled);
  release = true;
  fetcher.join();
}

}  // namespace
}  // namespace bao::storage
