#include "common/status.h"

#include <gtest/gtest.h>

namespace bao {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgument(std::to_string(x) + " is odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  BAO_ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST(StatusTest, OkAndErrors) {
  EXPECT_TRUE(Status::Ok().ok());
  Status s = NotFound("no such key");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.ToString(), "not found: no such key");
  EXPECT_EQ(s.WithContext("reading x").message(), "reading x: no such key");
  EXPECT_EQ(s.WithContext("reading x").code(), Code::kNotFound);
}

TEST(StatusTest, DetailTravelsWithTheStatusAndNeverTouchesOk) {
  Status s = Error(Code::kNotFound, Reason::kNotFound, "no bucket b")
                 .WithHttpStatus(404)
                 .WithPayload("k8sReason", "NotFound");
  Status wrapped = s.WithContext("listing").InStage(Stage::kStorage).InStage(Stage::kConfig);
  EXPECT_EQ(wrapped.message(), "listing: no bucket b");
  EXPECT_EQ(wrapped.stage(), Stage::kStorage) << "InStage keeps the first stage";
  EXPECT_EQ(wrapped.WithStage(Stage::kVerify).stage(), Stage::kVerify);
  EXPECT_EQ(wrapped.reason(), Reason::kNotFound);
  EXPECT_EQ(wrapped.http_status(), 404);
  ASSERT_NE(wrapped.payload("k8sReason"), nullptr);
  EXPECT_EQ(*wrapped.payload("k8sReason"), "NotFound");
  EXPECT_EQ(wrapped.payload("other"), nullptr);
  EXPECT_EQ(*wrapped.WithPayload("k8sReason", "Gone").payload("k8sReason"), "Gone");
  Status ok = Status::Ok().WithStage(Stage::kAuth).WithReason(Reason::kTimeout).WithHttpStatus(1);
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.stage(), Stage::kUnspecified);
  EXPECT_EQ(ok.http_status(), 0);
  EXPECT_STREQ(StageName(Stage::kVerify), "verify");
  EXPECT_STREQ(ReasonName(Reason::kCancelled), "Cancelled");
}

TEST(StatusTest, ResultPropagates) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "3 is odd");
  Result<int> from_ok_status = Status::Ok();
  EXPECT_FALSE(from_ok_status.ok());
  EXPECT_EQ(from_ok_status.status().code(), Code::kInternal);
}

}  // namespace
}  // namespace bao
