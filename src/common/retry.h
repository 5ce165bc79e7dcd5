// Retries with exponential backoff and full jitter, bounded in attempts.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string_view>

#include "common/status.h"

namespace bao {

struct RetryPolicy {
  int max_attempts = 5;                            // including the first
  std::chrono::milliseconds initial_backoff{200};  // before the second attempt (upper bound)
  std::chrono::milliseconds max_backoff{10000};    // cap of the growing bound
};

// Transient failures worth another try: kUnavailable and kDeadlineExceeded.
bool IsRetryable(const Status& status);

// Calls `attempt` until it succeeds, fails with a non-retryable error, the attempts run out,
// or `*cancel` becomes true (then kAborted). Between attempts it sleeps a random duration in
// [0, min(max_backoff, initial_backoff * 2^(n-1))]. Each retry is logged with `what`. Returns
// the last attempt's status; after exhausting attempts its message says how many were made.
Status Retry(const RetryPolicy& policy, std::string_view what,
             const std::function<Status()>& attempt, const std::atomic<bool>* cancel = nullptr);

}  // namespace bao
