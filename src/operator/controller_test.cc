#include "operator/controller.h"

#include <gtest/gtest.h>

namespace bao::op {
namespace {

TEST(ParseBindAddressTest, HostPortPortOnlyAndDisabled) {
  Result<BindAddress> a = ParseBindAddress(":8080");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "0.0.0.0");
  EXPECT_EQ(a->port, 8080);
  a = ParseBindAddress("127.0.0.1:9090");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 9090);
  a = ParseBindAddress("[::1]:9090");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "::1");
  for (const char* off : {"0", ""}) {
    a = ParseBindAddress(off);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->port, 0);
  }
  for (const char* bad : {"8080", "host:", ":70000", ":-1", ":80x", "h:8080:"}) {
    a = ParseBindAddress(bad);
    ASSERT_FALSE(a.ok()) << bad;
    EXPECT_NE(a.status().message().find("--metrics-bind-address"), std::string::npos);
  }
}

}  // namespace
}  // namespace bao::op
