#include "common/context.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "common/retry.h"

namespace bao {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

milliseconds Since(steady_clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(steady_clock::now() - start);
}

TEST(ContextTest, ABackgroundContextIsNeverDone) {
  Context ctx;
  EXPECT_FALSE(ctx.done());
  EXPECT_TRUE(ctx.Check("x").ok());
  EXPECT_FALSE(ctx.deadline().has_value());
  EXPECT_EQ(ctx.Remaining(milliseconds(1234)).count(), 1234);
}

TEST(ContextTest, CheckReportsCancellationAndDeadlineAsData) {
  CancelSource source;
  Context ctx(&source);
  EXPECT_TRUE(ctx.Check().ok());
  source.Cancel();
  Status s = ctx.Check("reading the snapshot");
  EXPECT_EQ(s.code(), Code::kAborted);
  EXPECT_EQ(s.reason(), Reason::kCancelled);
  EXPECT_EQ(s.message(), "reading the snapshot: cancelled");

  Context late = Context().WithDeadline(steady_clock::now() - milliseconds(1));
  Status d = late.Check();
  EXPECT_EQ(d.code(), Code::kDeadlineExceeded);
  EXPECT_EQ(d.reason(), Reason::kTimeout);
  EXPECT_EQ(late.Remaining(milliseconds(500)).count(), 0);
}

TEST(ContextTest, WithDeadlinePicksTheEarlier) {
  auto now = steady_clock::now();
  Context a = Context().WithDeadline(now + std::chrono::seconds(10));
  Context b = a.WithDeadline(now + std::chrono::seconds(20));
  EXPECT_EQ(*b.deadline(), now + std::chrono::seconds(10));
  Context c = a.WithDeadline(now + std::chrono::seconds(5));
  EXPECT_EQ(*c.deadline(), now + std::chrono::seconds(5));
  EXPECT_EQ(*a.deadline(), now + std::chrono::seconds(10));  // a value: a is unchanged
  EXPECT_LE(c.Remaining(milliseconds(60000)).count(), 5000);
  EXPECT_LE(c.Remaining(milliseconds(100), /*cap=*/true).count(), 100);
}

TEST(ContextTest, DerivedContextsKeepTheCancellation) {
  CancelSource source;
  Context ctx = Context(&source).WithTimeout(std::chrono::hours(1));
  source.Cancel();
  EXPECT_TRUE(ctx.cancelled());
  EXPECT_EQ(ctx.Check().reason(), Reason::kCancelled);  // cancellation wins over time left
}

TEST(ContextTest, AChildSourceIsCancelledByItsParentButNotTheOtherWay) {
  CancelSource parent;
  CancelSource child(&parent);
  CancelSource other_child(&parent);
  child.Cancel();
  EXPECT_TRUE(child.cancelled());
  EXPECT_FALSE(parent.cancelled());
  EXPECT_FALSE(other_child.cancelled());
  parent.Cancel();
  EXPECT_TRUE(other_child.cancelled());
  EXPECT_TRUE(Context(&other_child).done());
}

TEST(ContextTest, ForCleanupIgnoresTheCancellationButIsBounded) {
  Context cleanup = Context::ForCleanup(milliseconds(10000));
  EXPECT_FALSE(cleanup.cancelled());
  ASSERT_TRUE(cleanup.deadline().has_value());
  EXPECT_LE(cleanup.Remaining(milliseconds(0)).count(), 10000);
  EXPECT_GT(cleanup.Remaining(milliseconds(0)).count(), 9000);
}

TEST(ContextTest, SleepForWakesOnCancel) {
  CancelSource source;
  Context ctx(&source);
  std::thread canceller([&] { source.Cancel(); });
  auto start = steady_clock::now();
  Status s = ctx.SleepFor(std::chrono::seconds(30), "waiting");
  canceller.join();
  EXPECT_EQ(s.code(), Code::kAborted);
  EXPECT_EQ(s.reason(), Reason::kCancelled);
  EXPECT_LT(Since(start).count(), 2000);
}

TEST(ContextTest, SleepForEndsAtTheDeadline) {
  Context ctx = Context().WithTimeout(milliseconds(100));
  auto start = steady_clock::now();
  Status s = ctx.SleepFor(std::chrono::seconds(30));
  EXPECT_EQ(s.code(), Code::kDeadlineExceeded);
  EXPECT_GE(Since(start).count(), 90);
  EXPECT_LT(Since(start).count(), 2000);
  EXPECT_TRUE(Context().SleepFor(milliseconds(1)).ok());
}

RetryPolicy Quick(int attempts) {
  RetryPolicy p;
  p.max_attempts = attempts;
  p.initial_backoff = milliseconds(1);
  p.max_backoff = milliseconds(2);
  return p;
}

TEST(RetryTest, RetriesTransientFailuresAndSaysHowOften) {
  int calls = 0;
  Status s = Retry(Context(), Quick(3), "fetching", [&] {
    ++calls;
    return Error(Code::kUnavailable, Reason::kServerError, "503").WithHttpStatus(503);
  });
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_EQ(s.reason(), Reason::kServerError);
  EXPECT_EQ(s.http_status(), 503);
  EXPECT_EQ(s.message(), "fetching failed after 3 attempts: 503");
}

TEST(RetryTest, StopsAtTheFirstPermanentError) {
  int calls = 0;
  Status s = Retry(Context(), Quick(5), "x", [&] {
    ++calls;
    return calls == 1 ? Unavailable("flaky") : PermissionDenied("no");
  });
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  EXPECT_EQ(s.message(), "no");
}

TEST(RetryTest, StopsWhenCancelled) {
  CancelSource source;
  int calls = 0;
  Status s = Retry(Context(&source), Quick(5), "uploading", [&] {
    ++calls;
    source.Cancel();
    return Unavailable("reset");
  });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(s.code(), Code::kAborted);
  EXPECT_EQ(s.reason(), Reason::kCancelled);
  EXPECT_NE(s.message().find("reset"), std::string::npos) << s.message();

  source.Cancel();
  calls = 0;
  s = Retry(Context(&source), Quick(5), "x", [&] {
    ++calls;
    return Status::Ok();
  });
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(s.reason(), Reason::kCancelled);
}

TEST(RetryTest, ABackoffDoesNotSleepPastTheDeadline) {
  RetryPolicy slow;
  slow.max_attempts = 5;
  slow.initial_backoff = std::chrono::seconds(30);
  slow.max_backoff = std::chrono::seconds(30);
  int calls = 0;
  auto start = steady_clock::now();
  Status s = Retry(Context().WithTimeout(milliseconds(200)), slow, "x", [&] {
    ++calls;
    return Unavailable("down");
  });
  EXPECT_LT(Since(start).count(), 5000);
  EXPECT_GE(calls, 1);
  // Either the random backoff was short enough for more attempts or the deadline ended it.
  if (s.code() == Code::kDeadlineExceeded) {
    EXPECT_EQ(s.reason(), Reason::kTimeout);
  }
}

}  // namespace
}  // namespace bao
