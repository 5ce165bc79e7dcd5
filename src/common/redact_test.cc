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
  // Without a scheme the authority starts at once; a "://" further on is no scheme.
  EXPECT_EQ(UrlForDisplay("u:pass@minio.local:9000/b"), "minio.local:9000/b");
  EXPECT_EQ(UrlForDisplay("u:pass@minio.local:9000/x://y"), "minio.local:9000/x://y");
  EXPECT_EQ(UrlForDisplay("h/p@x"), "h/p@x");
}

TEST(RedactTest, UrlAuthorityStartsAfterALeadingSchemeOnly) {
  EXPECT_EQ(UrlAuthorityStart("https://h"), 8u);
  EXPECT_EQ(UrlAuthorityStart("s3+x.y-z://h"), 11u);
  EXPECT_EQ(UrlAuthorityStart("h:9000/p"), 0u);
  EXPECT_EQ(UrlAuthorityStart("://h"), 0u);
  EXPECT_EQ(UrlAuthorityStart("1x://h"), 0u);
  EXPECT_EQ(UrlAuthorityStart("u:p@h/x://y"), 0u);
  EXPECT_EQ(UrlAuthorityStart("h/?next=https://y"), 0u);
}

TEST(RedactTest, UrlsInAnyTextLoseUserInfoAndQuery) {
  EXPECT_EQ(Redact("GET http://u:pa55word@host:8200/v1/x?sig=abc failed"),
            "GET http://[REDACTED]@host:8200/v1/x?[REDACTED] failed");
  EXPECT_EQ(Redact("\"addr\":\"https://bob@h/\""), "\"addr\":\"https://[REDACTED]@h/\"");
  EXPECT_EQ(Redact("see https://h/p?, then"), "see https://h/p?, then");
  EXPECT_EQ(Redact("a (https://h:1/x) b"), "a (https://h:1/x) b");
  EXPECT_EQ(Redact("two: s3://k@b/x and https://y?z=1"),
            "two: s3://[REDACTED]@b/x and https://y?[REDACTED]");
  // A path segment with '@' is not user-info.
  EXPECT_EQ(Redact("https://h/a@b"), "https://h/a@b");
}

}  // namespace
}  // namespace bao
