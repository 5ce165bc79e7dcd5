// An operation's cancellation and deadline, passed as an argument through every call that can
// block (HTTP requests, Store and ObjectWriter methods, the OpenBao client, retries), in the
// way Go passes a context.Context. There is no process-global cancel flag: the CLI turns
// SIGTERM into CancelSource::Cancel() on the source at the root of its contexts, and the
// scheduler gives each attempt a child source so that one attempt can be cancelled alone.
#pragma once

#include <atomic>
#include <chrono>
#include <optional>
#include <string_view>

#include "common/status.h"

namespace bao {

using SteadyTime = std::chrono::steady_clock::time_point;

// Owns a cancellation flag. Cancel() is async-signal-safe and may be called from any thread.
// A source with a parent is cancelled when its parent is. A source must outlive every Context
// made from it (and its children).
class CancelSource {
 public:
  CancelSource() = default;
  explicit CancelSource(const CancelSource* parent) : parent_(parent) {}
  CancelSource(const CancelSource&) = delete;
  CancelSource& operator=(const CancelSource&) = delete;

  void Cancel() { flag_.store(true, std::memory_order_relaxed); }
  bool cancelled() const {
    return flag_.load(std::memory_order_relaxed) || (parent_ != nullptr && parent_->cancelled());
  }

 private:
  std::atomic<bool> flag_{false};
  const CancelSource* parent_ = nullptr;
};

// A cheap value (a pointer and a time): copy it freely. Thread-safe to read.
class Context {
 public:
  // Never cancelled and without a deadline.
  Context() = default;
  // Cancelled when `source` (not owned, may be null) is; no deadline.
  explicit Context(const CancelSource* source) : source_(source) {}

  // The same cancellation with a deadline; the earlier of an existing deadline and this one
  // wins.
  Context WithDeadline(SteadyTime deadline) const;
  Context WithTimeout(std::chrono::milliseconds timeout) const;

  // For cleanup once this context is cancelled or expired (aborting an upload, deleting a
  // temporary object): not cancelled by the source, and bounded by `budget` from now.
  static Context ForCleanup(std::chrono::milliseconds budget);

  bool cancelled() const { return source_ != nullptr && source_->cancelled(); }
  // The source this context is cancelled by (null when none), for deriving a child source that
  // cancels with it: CancelSource child(ctx.source()).
  const CancelSource* source() const { return source_; }
  bool expired() const { return deadline_.has_value() && std::chrono::steady_clock::now() >= *deadline_; }
  bool done() const { return cancelled() || expired(); }
  const std::optional<SteadyTime>& deadline() const { return deadline_; }

  // Ok while neither cancelled nor past the deadline; otherwise kAborted with
  // Reason::kCancelled, or kDeadlineExceeded with Reason::kTimeout. `what` names the operation
  // in the message ("reading the snapshot").
  Status Check(std::string_view what = {}) const;

  // Time left before the deadline (zero once passed), or `fallback` without a deadline; never
  // more than `fallback` when `cap` is true.
  std::chrono::milliseconds Remaining(std::chrono::milliseconds fallback, bool cap = false) const;

  // Sleeps for `d`, waking early (within ~20 ms) when cancelled or at the deadline. Returns
  // Check() afterwards.
  Status SleepFor(std::chrono::milliseconds d, std::string_view what = {}) const;

 private:
  const CancelSource* source_ = nullptr;
  std::optional<SteadyTime> deadline_;
};

}  // namespace bao
