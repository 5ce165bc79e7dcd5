#include "common/retry.h"

#include <algorithm>
#include <random>
#include <thread>

#include "common/log.h"

namespace bao {

bool IsRetryable(const Status& status) {
  return status.code() == Code::kUnavailable || status.code() == Code::kDeadlineExceeded;
}

Status Retry(const RetryPolicy& policy, std::string_view what,
             const std::function<Status()>& attempt, const std::atomic<bool>* cancel) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  Status last;
  auto bound = policy.initial_backoff;
  for (int n = 1; n <= policy.max_attempts; ++n) {
    if (cancel != nullptr && cancel->load()) return Aborted(std::string(what) + ": cancelled");
    last = attempt();
    if (last.ok() || !IsRetryable(last)) return last;
    if (n == policy.max_attempts) break;
    std::uniform_int_distribution<int64_t> dist(0, bound.count());
    auto wait = std::chrono::milliseconds(dist(rng));
    log::Warn("transient failure, retrying", {{"what", std::string(what)},
                                              {"attempt", std::to_string(n)},
                                              {"backoff", std::to_string(wait.count()) + "ms"},
                                              {"error", last.message()}});
    auto until = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < until) {
      if (cancel != nullptr && cancel->load()) return Aborted(std::string(what) + ": cancelled");
      std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(
          std::chrono::milliseconds(50), std::chrono::duration_cast<std::chrono::milliseconds>(
                                             until - std::chrono::steady_clock::now())));
    }
    bound = std::min(bound * 2, policy.max_backoff);
  }
  return last.WithContext(std::string(what) + " failed after " +
                          std::to_string(policy.max_attempts) + " attempts");
}

}  // namespace bao
