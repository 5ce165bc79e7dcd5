#include "common/redact.h"

#include <gtest/gtest.h>

namespace bao {
namespace {

TEST(RedactTest, HidesRegisteredSecrets) {
  RegisterSecret("s.verysecrettoken");
  RegisterSecret("abc");  // too short to register
  EXPECT_EQ(Redact("token s.verysecrettoken was refused"), "token [REDACTED] was refused");
  EXPECT_EQ(Redact("abc stays"), "abc stays");
  EXPECT_EQ(Redact("s.verysecrettokens.verysecrettoken"), "[REDACTED][REDACTED]");
}

TEST(RedactTest, UrlForDisplayDropsQueryAndUserInfo) {
  EXPECT_EQ(UrlForDisplay("https://acct.blob.core.windows.net/c/k?sv=2020&sig=SECRET"),
            "https://acct.blob.core.windows.net/c/k");
  EXPECT_EQ(UrlForDisplay("https://user:pass@host:9000/b/k"), "https://host:9000/b/k");
  EXPECT_EQ(UrlForDisplay("http://127.0.0.1:8200/v1/sys/leader"),
            "http://127.0.0.1:8200/v1/sys/leader");
}

}  // namespace
}  // namespace bao
