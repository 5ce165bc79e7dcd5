#include "common/context.h"

#include <algorithm>
#include <string>
#include <thread>

namespace bao {

Context Context::WithDeadline(SteadyTime deadline) const {
  Context c = *this;
  if (!c.deadline_.has_value() || deadline < *c.deadline_) c.deadline_ = deadline;
  return c;
}

Context Context::WithTimeout(std::chrono::milliseconds timeout) const {
  return WithDeadline(std::chrono::steady_clock::now() + timeout);
}

Context Context::ForCleanup(std::chrono::milliseconds budget) {
  return Context().WithTimeout(budget);
}

Status Context::Check(std::string_view what) const {
  std::string prefix = what.empty() ? "" : std::string(what) + ": ";
  if (cancelled()) {
    return Error(Code::kAborted, Reason::kCancelled, prefix + "cancelled");
  }
  if (expired()) {
    return Error(Code::kDeadlineExceeded, Reason::kTimeout, prefix + "deadline exceeded");
  }
  return Status::Ok();
}

std::chrono::milliseconds Context::Remaining(std::chrono::milliseconds fallback, bool cap) const {
  if (!deadline_.has_value()) return fallback;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      *deadline_ - std::chrono::steady_clock::now());
  left = std::max(left, std::chrono::milliseconds(0));
  return cap ? std::min(left, fallback) : left;
}

Status Context::SleepFor(std::chrono::milliseconds d, std::string_view what) const {
  const SteadyTime until = std::chrono::steady_clock::now() + d;
  while (!done()) {
    SteadyTime now = std::chrono::steady_clock::now();
    if (now >= until) break;
    auto step = std::min<std::chrono::steady_clock::duration>(until - now,
                                                              std::chrono::milliseconds(20));
    std::this_thread::sleep_for(step);
  }
  return Check(what);
}

}  // namespace bao
