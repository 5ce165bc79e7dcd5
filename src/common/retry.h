// Retries with exponential backoff and full jitter, bounded in attempts and by a Context.
#pragma once

#include <chrono>
#include <functional>
#include <string_view>

#include "common/context.h"
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
// or `ctx` is done. Between attempts it sleeps a random duration in
// [0, min(max_backoff, initial_backoff * 2^(n-1))] through ctx.SleepFor(), so a cancellation
// or the deadline ends the wait at once. Each retry is logged with `what`.
//
// Returns:
//  - ok when an attempt succeeded;
//  - the first non-retryable error, unchanged (code, reason, HTTP status, stage);
//  - after `max_attempts` retryable failures, the last one (detail kept) with its message
//    prefixed by "<what> failed after N attempts";
//  - when `ctx` is cancelled or past its deadline before an attempt or during a backoff:
//    kAborted with Reason::kCancelled, or kDeadlineExceeded with Reason::kTimeout, naming
//    `what` and the last error seen. No attempt starts once `ctx` is done.
// `attempt` runs on the calling thread. Cancellation inside an attempt is the attempt's own
// business (pass `ctx` to what it calls).
Status Retry(const Context& ctx, const RetryPolicy& policy, std::string_view what,
             const std::function<Status()>& attempt);

}  // namespace bao
