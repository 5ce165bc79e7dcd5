#include "storage/part_writer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>

namespace bao::storage {
namespace {

TEST(ParallelPartWriterTest, CutsPartsInOrderWithBoundedConcurrency) {
  std::mutex mu;
  std::map<int, std::string> parts;
  std::atomic<int> active{0}, peak{0};
  ParallelPartWriter w(4, 2, [&](int n, std::string_view data) -> Result<std::string> {
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
  ASSERT_TRUE(w.Append("abcdefghij").ok());
  ASSERT_TRUE(w.Append("klm").ok());
  Result<std::vector<std::string>> ids = w.Finish();
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  EXPECT_EQ(*ids, (std::vector<std::string>{"id1", "id2", "id3", "id4"}));
  EXPECT_EQ(parts[1], "abcd");
  EXPECT_EQ(parts[2], "efgh");
  EXPECT_EQ(parts[3], "ijkl");
  EXPECT_EQ(parts[4], "m");
  EXPECT_LE(peak.load(), 2);
}

TEST(ParallelPartWriterTest, ExactMultipleHasNoEmptyTrailingPart) {
  std::atomic<int> calls{0};
  ParallelPartWriter w(4, 1, [&](int, std::string_view data) -> Result<std::string> {
    EXPECT_EQ(data.size(), 4u);
    ++calls;
    return std::string("x");
  });
  ASSERT_TRUE(w.Append("abcdefgh").ok());
  ASSERT_TRUE(w.Finish().ok());
  EXPECT_EQ(calls.load(), 2);
}

TEST(ParallelPartWriterTest, SmallObjectStaysBuffered) {
  ParallelPartWriter w(16, 3, [&](int, std::string_view) -> Result<std::string> {
    ADD_FAILURE() << "nothing should be uploaded";
    return std::string();
  });
  ASSERT_TRUE(w.Append("hello").ok());
  EXPECT_TRUE(w.NothingDispatched());
  EXPECT_EQ(w.Buffered(), "hello");
  w.Cancel();
}

TEST(ParallelPartWriterTest, FirstErrorStopsTheUpload) {
  std::atomic<int> calls{0};
  ParallelPartWriter w(2, 1, [&](int n, std::string_view) -> Result<std::string> {
    ++calls;
    if (n == 2) return Unavailable("part 2 refused");
    return std::string("ok");
  });
  Status s;
  for (int i = 0; i < 100 && s.ok(); ++i) s = w.Append("ab");
  Result<std::vector<std::string>> r = w.Finish();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "part 2 refused");
  EXPECT_LE(calls.load(), 4);
}

TEST(ParallelPartWriterTest, CancelWaitsAndRejectsLaterAppends) {
  ParallelPartWriter w(
      2, 2, [&](int, std::string_view) -> Result<std::string> { return std::string("ok"); });
  ASSERT_TRUE(w.Append("abcdef").ok());
  w.Cancel();
  EXPECT_FALSE(w.Append("x").ok());
  EXPECT_FALSE(w.Finish().ok());
}

}  // namespace
}  // namespace bao::storage
