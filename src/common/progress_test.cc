#include "common/progress.h"

#include <gtest/gtest.h>

namespace bao {
namespace {

TEST(ProgressReporterTest, LogsOncePerInterval) {
  SteadyTime t{};
  ProgressReporter p("backup", 100, std::chrono::seconds(5), [&] { return t; });
  p.Update(10);
  EXPECT_EQ(p.lines(), 0);  // nothing is due at the start
  t += std::chrono::seconds(4);
  p.Update(20);
  EXPECT_EQ(p.lines(), 0);
  t += std::chrono::seconds(1);
  p.Update(30);
  EXPECT_EQ(p.lines(), 1);
  p.Update(40);
  EXPECT_EQ(p.lines(), 1);  // the next one is 5 s after the last line
  t += std::chrono::seconds(6);
  p.Update(50);
  EXPECT_EQ(p.lines(), 2);
}

}  // namespace
}  // namespace bao
