#include "common/async_sink.h"

#include <gtest/gtest.h>

namespace bao {
namespace {

TEST(AsyncSinkTest, ConsumesEveryChunkInOrder) {
  std::string got;
  AsyncSink sink(
      [&](std::string_view c) {
        got.append(c);
        return Status::Ok();
      },
      16, 2);
  std::string sent;
  for (int i = 0; i < 500; ++i) {
    std::string c = std::to_string(i) + ";";
    sent += c;
    ASSERT_TRUE(sink.Push(c).ok());
  }
  ASSERT_TRUE(sink.Finish().ok());
  EXPECT_EQ(got, sent);
}

TEST(AsyncSinkTest, ReportsTheFirstErrorAndStopsConsuming) {
  int calls = 0;
  AsyncSink sink(
      [&](std::string_view block) {
        ++calls;
        return block.find('x') != std::string_view::npos ? DataLoss("bad block") : Status::Ok();
      },
      4, 1);
  ASSERT_TRUE(sink.Push("abcd").ok());
  Status s = sink.Push("xyzw");
  for (int i = 0; i < 100 && s.ok(); ++i) s = sink.Push("more");
  Status done = sink.Finish();
  ASSERT_FALSE(done.ok());
  EXPECT_EQ(done.message(), "bad block");
  EXPECT_FALSE(s.ok());
  EXPECT_LE(calls, 4);
}

TEST(AsyncSinkTest, BlocksAreAlignedAndFullUntilTheLast) {
  std::vector<size_t> sizes;
  bool aligned = true;
  AsyncSink sink(
      [&](std::string_view block) {
        sizes.push_back(block.size());
        aligned = aligned && reinterpret_cast<uintptr_t>(block.data()) %
                                     AsyncSink::kBlockAlignment ==
                                 0;
        return Status::Ok();
      },
      8192, 2);
  std::string chunk(3000, 'a');
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(sink.Push(chunk).ok());  // 21000 bytes
  ASSERT_TRUE(sink.Finish().ok());
  EXPECT_TRUE(aligned);
  EXPECT_EQ(sizes, (std::vector<size_t>{8192, 8192, 4616}));
}

}  // namespace
}  // namespace bao
