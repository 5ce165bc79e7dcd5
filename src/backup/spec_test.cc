#include "backup/spec.h"

#include <gtest/gtest.h>

namespace bao::backup {
namespace {

TEST(SpecTest, AnEndpointCarryingCredentialsIsRefusedWithoutEchoingThem) {
  for (const char* endpoint : {"https://s3.example.com", "http://127.0.0.1:9000/base",
                               "minio.local:9000", "minio.local:9000/p@th", ""}) {
    EXPECT_TRUE(CheckEndpointHasNoCredentials(endpoint, "spec.backup.target").ok()) << endpoint;
  }
  for (const char* endpoint : {
           "https://u:pass-x1@s3.example.com",
           "https://s3.example.com/?sig=pass-x1",
           "https://s3.example.com/#pass-x1",
           "u:pass-x1@minio.local:9000",
           // Only a leading scheme starts the authority: a "://" in the query or path does not
           // hide the query or the user-info before it.
           "minio.local:9000/?sig=pass-x1&next=https://x",
           "u:pass-x1@minio.local:9000/x://y",
       }) {
    Status s = CheckEndpointHasNoCredentials(endpoint, "spec.backup.target");
    ASSERT_FALSE(s.ok()) << endpoint;
    EXPECT_EQ(s.code(), Code::kInvalidArgument);
    EXPECT_NE(s.message().find("spec.backup.target.endpoint: "), std::string::npos);
    EXPECT_EQ(s.message().find("pass-x1"), std::string::npos) << s.message();
  }
}

}  // namespace
}  // namespace bao::backup
