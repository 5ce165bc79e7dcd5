#include "common/retry.h"

#include <algorithm>
#include <random>
#include <string>

#include "common/log.h"

namespace bao {
namespace {

// The context's own error, naming `what` and the last attempt's failure when there was one.
Status ContextDone(const Context& ctx, std::string_view what, const Status& last) {
  Status done = ctx.Check(what);
  if (last.ok()) return done;
  return Error(done.code(), done.reason(), done.message() + " (last error: " + last.message() + ")");
}

}  // namespace

bool IsRetryable(const Status& status) {
  return status.code() == Code::kUnavailable || status.code() == Code::kDeadlineExceeded;
}

Status Retry(const Context& ctx, const RetryPolicy& policy, std::string_view what,
             const std::function<Status()>& attempt) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  Status last;
  auto bound = policy.initial_backoff;
  const int attempts = std::max(1, policy.max_attempts);
  for (int n = 1; n <= attempts; ++n) {
    if (ctx.done()) return ContextDone(ctx, what, last);
    last = attempt();
    if (last.ok() || !IsRetryable(last)) return last;
    if (ctx.done()) return ContextDone(ctx, what, last);
    if (n == attempts) break;
    std::uniform_int_distribution<int64_t> dist(0, std::max<int64_t>(0, bound.count()));
    auto wait = std::chrono::milliseconds(dist(rng));
    log::Warn("transient failure, retrying", {{"what", std::string(what)},
                                              {"attempt", std::to_string(n)},
                                              {"backoff", std::to_string(wait.count()) + "ms"},
                                              {"error", last.message()}});
    if (!ctx.SleepFor(wait).ok()) return ContextDone(ctx, what, last);
    bound = std::min(bound * 2, policy.max_backoff);
  }
  return last.WithContext(std::string(what) + " failed after " + std::to_string(attempts) +
                          " attempts");
}

}  // namespace bao
