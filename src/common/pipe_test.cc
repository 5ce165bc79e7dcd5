#include "common/pipe.h"

#include <gtest/gtest.h>

#include <thread>

namespace bao {
namespace {

TEST(BytePipeTest, MovesBytesInOrderWithBoundedBuffer) {
  BytePipe pipe(7);
  std::string sent;
  for (int i = 0; i < 1000; ++i) sent += std::to_string(i) + ",";
  std::thread producer([&] {
    for (size_t i = 0; i < sent.size(); i += 13) {
      ASSERT_TRUE(pipe.Write(std::string_view(sent).substr(i, 13)).ok());
    }
    pipe.CloseWrite();
  });
  std::string got;
  char buf[5];
  while (true) {
    Result<size_t> n = pipe.Read(buf, sizeof buf);
    ASSERT_TRUE(n.ok());
    if (*n == 0) break;
    got.append(buf, *n);
  }
  producer.join();
  EXPECT_EQ(got, sent);
}

TEST(BytePipeTest, ProducerErrorReachesConsumerAfterData) {
  BytePipe pipe(64);
  ASSERT_TRUE(pipe.Write("abc").ok());
  pipe.CloseWrite(DataLoss("checksum mismatch"));
  char buf[8];
  Result<size_t> n = pipe.Read(buf, sizeof buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 3u);
  n = pipe.Read(buf, sizeof buf);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().message(), "checksum mismatch");
}

TEST(BytePipeTest, ConsumerGivingUpUnblocksProducer) {
  BytePipe pipe(4);
  std::thread consumer([&] { pipe.CloseRead(); });
  Status s = pipe.Write("more than four bytes");
  consumer.join();
  EXPECT_EQ(s.code(), Code::kAborted);
}

}  // namespace
}  // namespace bao
