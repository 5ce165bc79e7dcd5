#include "storage/part_writer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

namespace bao::storage {
namespace {

using Sums = ParallelPartWriter::PartSums;
constexpr auto kNoSum = ParallelPartWriter::PartSum::kNone;

TEST(ParallelPartWriterTest, CutsPartsInOrderWithBoundedConcurrency) {
  std::mutex mu;
  std::map<int, std::string> parts;
  std::atomic<int> active{0}, peak{0};
  ParallelPartWriter w(
      Context(), 4, 2, kNoSum,
      [&](const Context&, int n, std::string_view data, const Sums&) -> Result<std::string> {
        int now = ++active;
        int p = peak.load();
        while (now > p && !peak.compare_exchange_weak(p, now)) {
        }
        {
          std::lock_guard<std::mutex> lock(mu);
          parts[n] = std::string(data);
        }
        --active;
        return "id" + std::to_string(n);
      });
  ASSERT_TRUE(w.Append(Context(), "abcdefghij").ok());
  ASSERT_TRUE(w.Append(Context(), "klm").ok());
  Result<std::vector<std::string>> ids = w.Finish(Context());
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  EXPECT_EQ(*ids, (std::vector<std::string>{"id1", "id2", "id3", "id4"}));
  EXPECT_EQ(parts[1], "abcd");
  EXPECT_EQ(parts[2], "efgh");
  EXPECT_EQ(parts[3], "ijkl");
  EXPECT_EQ(parts[4], "m");
  EXPECT_LE(peak.load(), 2);
}

// Uploads that start and then hold until released: a store slower than the stream.
struct HeldUploads {
  std::atomic<int> started{0};
  std::atomic<bool> release{false};

  ParallelPartWriter::UploadFn Fn() {
    return [this](const Context&, int n, std::string_view, const Sums&) -> Result<std::string> {
      ++started;
      while (!release.load()) std::this_thread::yield();
      return "id" + std::to_string(n);
    };
  }
  // Polls until `n` uploads have started (10 s at most); true when they have.
  bool WaitStarted(int n) {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (started.load() < n && std::chrono::steady_clock::now() < until) {
      std::this_thread::yield();
    }
    return started.load() >= n;
  }
};

// A context that ends a wait that should not happen, so that the test fails instead of hanging.
Context Bounded() {
  return Context().WithDeadline(std::chrono::steady_clock::now() + std::chrono::seconds(10));
}

// At most `concurrency` parts are in memory, the one filling included: with all of them
// uploading, Append() waits for one to finish before it fills another.
TEST(ParallelPartWriterTest, HoldsAtMostConcurrencyParts) {
  HeldUploads uploads;
  ParallelPartWriter w(Context(), 2, 3, kNoSum, uploads.Fn());
  ASSERT_TRUE(w.Append(Bounded(), "abcdef").ok());  // parts 1 and 2 uploading, "ef" filled
  std::atomic<bool> returned{false};
  std::thread producer([&] {
    EXPECT_TRUE(w.Append(Bounded(), "g").ok());  // dispatches part 3, then waits to fill part 4
    returned = true;
  });
  ASSERT_TRUE(uploads.WaitStarted(3));
  EXPECT_FALSE(returned.load());  // no upload has finished, so no part may fill
  uploads.release = true;
  producer.join();
  Result<std::vector<std::string>> ids = w.Finish(Context());
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  EXPECT_EQ(*ids, (std::vector<std::string>{"id1", "id2", "id3", "id4"}));
}

// With concurrency 1, one part uploads while the next fills.
TEST(ParallelPartWriterTest, ConcurrencyOneStillFillsBesideTheUpload) {
  HeldUploads uploads;
  ParallelPartWriter w(Context(), 2, 1, kNoSum, uploads.Fn());
  ASSERT_TRUE(w.Append(Bounded(), "abcd").ok());  // part 1 uploading, "cd" filled beside it
  ASSERT_TRUE(uploads.WaitStarted(1));
  EXPECT_EQ(w.Buffered(), "cd");
  uploads.release = true;
  Result<std::vector<std::string>> ids = w.Finish(Context());
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  EXPECT_EQ(*ids, (std::vector<std::string>{"id1", "id2"}));
}

// Each part's checksum, computed while appending, is that of the part's bytes, however the
// appends cut across part boundaries; the upload function gets only the one it asked for.
TEST(ParallelPartWriterTest, PartSumsMatchEachPartsBytes) {
  using PartSum = ParallelPartWriter::PartSum;
  for (PartSum sum : {PartSum::kCrc32c, PartSum::kMd5}) {
    std::mutex mu;
    std::map<int, std::pair<std::string, ParallelPartWriter::PartSums>> parts;
    ParallelPartWriter w(Context(), 5, 2, sum,
                         [&](const Context&, int n, std::string_view data,
                             const ParallelPartWriter::PartSums& sums) -> Result<std::string> {
                           std::lock_guard<std::mutex> lock(mu);
                           parts[n] = {std::string(data), sums};
                           return std::string("id");
                         });
    for (std::string_view piece : {"ab", "cdefgh", "", "i", "jklmnopq"}) {
      ASSERT_TRUE(w.Append(Context(), piece).ok());
    }
    ASSERT_TRUE(w.Finish(Context()).ok());
    ASSERT_EQ(parts.size(), 4u);
    for (const auto& [n, part] : parts) {
      const auto& [data, sums] = part;
      if (sum == PartSum::kCrc32c) {
        EXPECT_EQ(sums.crc32c, crypto::Crc32c(0, data)) << "part " << n;
        EXPECT_TRUE(sums.md5_base64.empty());
      } else {
        EXPECT_EQ(sums.md5_base64, crypto::Md5Base64(data)) << "part " << n;
        EXPECT_EQ(sums.crc32c, 0u);
      }
    }
    EXPECT_EQ(parts[4].first, "pq");
  }
}

TEST(ParallelPartWriterTest, ExactMultipleHasNoEmptyTrailingPart) {
  std::atomic<int> calls{0};
  ParallelPartWriter w(
      Context(), 4, 1, kNoSum,
      [&](const Context&, int, std::string_view data, const Sums&) -> Result<std::string> {
        EXPECT_EQ(data.size(), 4u);
        ++calls;
        return std::string("x");
      });
  ASSERT_TRUE(w.Append(Context(), "abcdefgh").ok());
  ASSERT_TRUE(w.Finish(Context()).ok());
  EXPECT_EQ(calls.load(), 2);
}

TEST(ParallelPartWriterTest, SmallObjectStaysBuffered) {
  ParallelPartWriter w(
      Context(), 16, 3, kNoSum,
      [&](const Context&, int, std::string_view, const Sums&) -> Result<std::string> {
        ADD_FAILURE() << "nothing should be uploaded";
        return std::string();
      });
  ASSERT_TRUE(w.Append(Context(), "hello").ok());
  EXPECT_TRUE(w.NothingDispatched());
  EXPECT_EQ(w.Buffered(), "hello");
  w.Cancel();
}

// Drain() waits for the dispatched parts and leaves the last one to the caller; an upload
// error reaches it.
TEST(ParallelPartWriterTest, DrainWaitsForDispatchedPartsAndKeepsTheLast) {
  std::mutex mu;
  std::vector<std::string> uploaded;
  ParallelPartWriter w(
      Context(), 3, 1, kNoSum,
      [&](const Context&, int n, std::string_view data, const Sums&) -> Result<std::string> {
        std::this_thread::sleep_for(
            std::chrono::milliseconds(20));  // still going when Drain() starts
        std::lock_guard<std::mutex> lock(mu);
        uploaded.emplace_back(data);
        if (n == 3) return Unavailable("part 3 refused");
        return std::string("id");
      });
  ASSERT_TRUE(w.Append(Context(), "abcdefg").ok());
  ASSERT_TRUE(w.Drain(Context()).ok());
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(uploaded, (std::vector<std::string>{"abc", "def"}));
  }
  EXPECT_EQ(w.Buffered(), "g");
  EXPECT_EQ(w.bytes_appended(), 7u);
  ASSERT_TRUE(w.Append(Context(), "hijk").ok());  // dispatches "ghi", part 3
  Status s = w.Drain(Context());
  EXPECT_EQ(s.message(), "part 3 refused");
  EXPECT_EQ(w.Buffered(), "jk");
  w.Cancel();
}

TEST(ParallelPartWriterTest, FirstErrorStopsTheUpload) {
  std::atomic<int> calls{0};
  ParallelPartWriter w(
      Context(), 2, 1, kNoSum,
      [&](const Context&, int n, std::string_view, const Sums&) -> Result<std::string> {
        ++calls;
        if (n == 2) return Unavailable("part 2 refused");
        return std::string("ok");
      });
  Status s;
  for (int i = 0; i < 100 && s.ok(); ++i) s = w.Append(Context(), "ab");
  Result<std::vector<std::string>> r = w.Finish(Context());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "part 2 refused");
  EXPECT_LE(calls.load(), 4);
}

TEST(ParallelPartWriterTest, CancelWaitsAndRejectsLaterAppends) {
  ParallelPartWriter w(Context(), 2, 2, kNoSum,
                       [&](const Context&, int, std::string_view,
                           const Sums&) -> Result<std::string> { return std::string("ok"); });
  ASSERT_TRUE(w.Append(Context(), "abcdef").ok());
  w.Cancel();
  EXPECT_FALSE(w.Append(Context(), "x").ok());
  EXPECT_FALSE(w.Finish(Context()).ok());
}

// An upload that only ends when its context does: what a hung endpoint looks like to a part.
Result<std::string> HangUntilDone(const Context& ctx, std::atomic<int>* started) {
  ++*started;
  while (!ctx.done()) std::this_thread::yield();
  return ctx.Check("part");
}

TEST(ParallelPartWriterTest, CancelStopsHungUploadsPromptly) {
  std::atomic<int> started{0};
  ParallelPartWriter w(Context(), 2, 3, kNoSum,
                       [&](const Context& ctx, int, std::string_view, const Sums&) {
                         return HangUntilDone(ctx, &started);
                       });
  ASSERT_TRUE(w.Append(Context(), "abcde").ok());  // two parts in flight, one buffered
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (started.load() < 2 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  auto start = std::chrono::steady_clock::now();
  w.Cancel();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(started.load(), 2);
  EXPECT_EQ(w.Append(Context(), "x").code(), Code::kAborted);
}

TEST(ParallelPartWriterTest, TheWritersContextReachesThePartsAndTheWaits) {
  CancelSource source;
  std::atomic<int> started{0};
  ParallelPartWriter w(Context(&source), 2, 1, kNoSum,
                       [&](const Context& ctx, int, std::string_view, const Sums&) {
                         return HangUntilDone(ctx, &started);
                       });
  ASSERT_TRUE(w.Append(Context(&source), "abc").ok());  // part 1 in flight
  std::thread canceller([&] {
    while (started.load() == 0) std::this_thread::yield();
    source.Cancel();
  });
  // Part 2 waits for room: the cancellation ends the wait, and part 1's upload.
  Status s = w.Append(Context(&source), "defgh");
  canceller.join();
  EXPECT_EQ(s.code(), Code::kAborted) << s.ToString();
  EXPECT_EQ(s.reason(), Reason::kCancelled);
  Result<std::vector<std::string>> r = w.Finish(Context());
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), Reason::kCancelled);
}

TEST(ParallelPartWriterTest, PartsCarryTheWritersDeadline) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::hours(1);
  std::atomic<bool> seen{false};
  ParallelPartWriter w(
      Context().WithDeadline(deadline), 2, 1, kNoSum,
      [&](const Context& ctx, int, std::string_view, const Sums&) -> Result<std::string> {
        seen = ctx.deadline().has_value() && *ctx.deadline() == deadline;
        return std::string("ok");
      });
  ASSERT_TRUE(w.Append(Context(), "abc").ok());
  ASSERT_TRUE(w.Finish(Context()).ok());
  EXPECT_TRUE(seen.load());
}

}  // namespace
}  // namespace bao::storage
