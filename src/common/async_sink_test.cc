#include "common/async_sink.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace bao {
namespace {

TEST(AsyncSinkTest, ConsumesEveryChunkInOrder) {
  std::string got;
  AsyncSink sink({[&](std::string_view c) {
                   got.append(c);
                   return Status::Ok();
                 }},
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
  AsyncSink sink({[&](std::string_view block) {
                   ++calls;
                   return block.find('x') != std::string_view::npos ? DataLoss("bad block")
                                                                    : Status::Ok();
                 }},
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
  AsyncSink sink({[&](std::string_view block) {
                   sizes.push_back(block.size());
                   aligned =
                       aligned &&
                       reinterpret_cast<uintptr_t>(block.data()) % AsyncSink::kBlockAlignment == 0;
                   return Status::Ok();
                 }},
                 8192, 2);
  std::string chunk(3000, 'a');
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(sink.Push(chunk).ok());  // 21000 bytes
  ASSERT_TRUE(sink.Finish().ok());
  EXPECT_TRUE(aligned);
  EXPECT_EQ(sizes, (std::vector<size_t>{8192, 8192, 4616}));
}

TEST(AsyncSinkTest, EveryConsumerSeesEveryBlockInOrderOnItsOwnThread) {
  std::string a, b;
  std::thread::id ta, tb;
  AsyncSink sink({[&](std::string_view c) {
                    ta = std::this_thread::get_id();
                    a.append(c);
                    return Status::Ok();
                  },
                  [&](std::string_view c) {
                    tb = std::this_thread::get_id();
                    b.append(c);
                    return Status::Ok();
                  }},
                 64, 3);
  std::string sent;
  for (int i = 0; i < 2000; ++i) {
    std::string c = std::to_string(i * 7919) + ",";
    sent += c;
    ASSERT_TRUE(sink.Push(c).ok());
  }
  ASSERT_TRUE(sink.Finish().ok());
  EXPECT_EQ(a, sent);
  EXPECT_EQ(b, sent);
  EXPECT_NE(ta, tb);
  EXPECT_NE(ta, std::this_thread::get_id());
}

TEST(AsyncSinkTest, NamesTheConsumerThatFailedAndStopEndsTheOthers) {
  std::atomic<int> second_calls{0};
  AsyncSink sink({[](std::string_view) { return Status::Ok(); },
                  [&](std::string_view) {
                    ++second_calls;
                    return Unavailable("disk full");
                  }},
                 8, 2);
  Status s = Status::Ok();
  for (int i = 0; i < 100 && s.ok(); ++i) s = sink.Push("0123456789");
  if (s.ok()) s = sink.Finish();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "disk full");
  EXPECT_EQ(sink.failed_consumer(), 1u);
  sink.Stop();
  int calls = second_calls.load();
  EXPECT_FALSE(sink.Push("more bytes than one block").ok());
  EXPECT_EQ(second_calls.load(), calls);
}

TEST(AsyncSinkTest, StopWithoutFinishDropsQueuedBlocks) {
  std::atomic<int> calls{0};
  AsyncSink sink({[&](std::string_view) {
                   ++calls;
                   return Status::Ok();
                 }},
                 4, 8);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(sink.Push("abcd").ok());
  sink.Stop();
  int after = calls.load();
  EXPECT_LE(after, 8);
  EXPECT_FALSE(sink.Finish().ok());
  EXPECT_EQ(calls.load(), after);
}

}  // namespace
}  // namespace bao
