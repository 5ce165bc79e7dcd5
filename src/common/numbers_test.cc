#include "common/numbers.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace bao {
namespace {

TEST(ParseInteger, TakesOnlyAWholeNumberInRange) {
  EXPECT_EQ(ParseInteger<uint64_t>("18446744073709551615", 0, UINT64_MAX), UINT64_MAX);
  EXPECT_EQ(ParseInteger<int>("65535", 0, 65535), 65535);
  EXPECT_EQ(ParseInteger<int>("ff", 0, 255, 16), 255);
  EXPECT_EQ(ParseInteger<int64_t>("-5", -10, 10), -5);
  for (const char* bad : {"", " 1", "1 ", "+1", "1x", "0x10", "65536", "-1", "1.5"}) {
    EXPECT_FALSE(ParseInteger<int>(bad, 0, 65535).has_value()) << bad;
  }
  std::string huge(400, '9');
  EXPECT_FALSE(ParseInteger<uint64_t>(huge, 0, UINT64_MAX).has_value());
  EXPECT_FALSE(ParseInteger<uint64_t>("18446744073709551616", 0, UINT64_MAX).has_value());
  EXPECT_FALSE(ParseInteger<uint64_t>("-1", 0, UINT64_MAX).has_value());
}

}  // namespace
}  // namespace bao
