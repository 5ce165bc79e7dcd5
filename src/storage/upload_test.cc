// The writer skeleton every provider shares (upload.h): first error wins and sticks, cleanup
// exactly once under a cleanup context, abort on destruction, the context checked per call.
#include "storage/upload.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace bao::storage {
namespace {

struct Log {
  std::vector<std::string> calls;
  Context cleanup;
};

class FakeUpload : public Upload {
 public:
  explicit FakeUpload(Log* log) : log_(log) {}
  Status Append(const Context&, std::string_view data) override {
    log_->calls.push_back("append " + std::string(data));
    if (data == "bad") return Error(Code::kUnavailable, Reason::kServerError, "refused");
    return Status::Ok();
  }
  Result<ObjectInfo> Commit(const Context&, const CommitInfo& info) override {
    log_->calls.push_back("commit " + std::to_string(info.size));
    if (info.sha256 == "mismatch") {
      return Error(Code::kDataLoss, Reason::kChecksumMismatch, "read-back differs");
    }
    ObjectInfo out;
    out.size = info.size;
    out.sha256 = info.sha256;
    return out;
  }
  void Abort(const Context& cleanup) override {
    log_->calls.push_back("abort");
    log_->cleanup = cleanup;
  }

 private:
  Log* log_;
};

std::unique_ptr<ObjectWriter> Writer(Log* log, const Context& ctx = Context()) {
  return NewObjectWriter("object \"k\"", ctx, std::make_unique<FakeUpload>(log));
}

TEST(UploadTest, TheFirstErrorWinsSticksAndCleansUpOnce) {
  Log log;
  auto w = Writer(&log);
  ASSERT_TRUE(w->Append(Context(), "ab").ok());
  Status first = w->Append(Context(), "bad");
  EXPECT_EQ(first.code(), Code::kUnavailable);
  EXPECT_EQ(first.reason(), Reason::kServerError);
  EXPECT_EQ(first.stage(), Stage::kStorage);
  Status later = w->Append(Context(), "cd");
  EXPECT_EQ(later.message(), first.message());
  EXPECT_EQ(w->Commit(Context(), {2, "x"}).status().message(), first.message());
  w->Abort();
  w.reset();
  EXPECT_EQ(log.calls, (std::vector<std::string>{"append ab", "append bad", "abort"}));
  // The cleanup ran under a fresh, bounded context.
  ASSERT_TRUE(log.cleanup.deadline().has_value());
  EXPECT_LE(log.cleanup.Remaining(std::chrono::milliseconds(0)), kCleanupBudget);
  EXPECT_FALSE(log.cleanup.cancelled());
}

TEST(UploadTest, ACommitThatFailsIsCleanedUpAndACommitThatSucceedsIsNot) {
  Log failed;
  {
    auto w = Writer(&failed);
    ASSERT_TRUE(w->Append(Context(), "abc").ok());
    Result<ObjectInfo> r = w->Commit(Context(), {3, "mismatch"});
    EXPECT_EQ(r.status().code(), Code::kDataLoss);
    EXPECT_EQ(r.status().stage(), Stage::kStorage);
  }
  EXPECT_EQ(failed.calls, (std::vector<std::string>{"append abc", "commit 3", "abort"}));

  Log done;
  {
    auto w = Writer(&done);
    ASSERT_TRUE(w->Append(Context(), "abc").ok());
    ASSERT_TRUE(w->Commit(Context(), {3, "sum"}).ok());
    EXPECT_EQ(w->Append(Context(), "x").code(), Code::kFailedPrecondition);
    EXPECT_EQ(w->Commit(Context(), {3, "sum"}).status().code(), Code::kFailedPrecondition);
    w->Abort();  // a no-op after a successful commit
  }
  EXPECT_EQ(done.calls, (std::vector<std::string>{"append abc", "commit 3"}));
}

TEST(UploadTest, ASizeThatDiffersFromTheAppendedBytesIsRefusedBeforeTheProvider) {
  Log log;
  auto w = Writer(&log);
  ASSERT_TRUE(w->Append(Context(), "abc").ok());
  Result<ObjectInfo> r = w->Commit(Context(), {4, "sum"});
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(log.calls, (std::vector<std::string>{"append abc", "abort"}));
}

TEST(UploadTest, DestroyingAnOpenWriterAborts) {
  Log log;
  (void)Writer(&log)->Append(Context(), "abc");  // the writer dies at the end of the line
  EXPECT_EQ(log.calls, (std::vector<std::string>{"append abc", "abort"}));
}

TEST(UploadTest, AbortIsFinalAndIdempotent) {
  Log log;
  auto w = Writer(&log);
  w->Abort();
  w->Abort();
  Status s = w->Append(Context(), "abc");
  EXPECT_EQ(s.code(), Code::kAborted);
  EXPECT_EQ(s.reason(), Reason::kCancelled);
  EXPECT_EQ(log.calls, (std::vector<std::string>{"abort"}));
}

TEST(UploadTest, EitherContextEndingFailsTheWriterBeforeTheProviderIsCalled) {
  Log log;
  CancelSource call;
  auto w = Writer(&log);
  call.Cancel();
  Status s = w->Append(Context(&call), "abc");
  EXPECT_EQ(s.code(), Code::kAborted);
  EXPECT_EQ(s.reason(), Reason::kCancelled);
  EXPECT_EQ(s.stage(), Stage::kStorage);
  EXPECT_EQ(log.calls, (std::vector<std::string>{"abort"}));

  Log expired;
  auto late = Writer(&expired, Context().WithTimeout(std::chrono::milliseconds(-1)));
  Status d = late->Append(Context(), "abc");
  EXPECT_EQ(d.code(), Code::kDeadlineExceeded);
  EXPECT_EQ(d.reason(), Reason::kTimeout);
  EXPECT_EQ(expired.calls, (std::vector<std::string>{"abort"}));
}

}  // namespace
}  // namespace bao::storage
