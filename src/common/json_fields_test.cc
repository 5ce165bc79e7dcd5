#include "common/json_fields.h"

#include <gtest/gtest.h>

namespace bao {
namespace {

TEST(JsonFieldsTest, MissingAndNullLeaveTheDefaultWrongTypesNameThePath) {
  nlohmann::json j = {{"s", "x"}, {"b", true}, {"i", 7}, {"n", nullptr}};
  std::string s = "default";
  bool b = false;
  int64_t i = 1;
  EXPECT_TRUE(GetString(j, "s", "spec", &s).ok());
  EXPECT_TRUE(GetBool(j, "b", "spec", &b).ok());
  EXPECT_TRUE(GetInt(j, "i", "spec", &i).ok());
  EXPECT_EQ(s, "x");
  EXPECT_TRUE(b);
  EXPECT_EQ(i, 7);
  s = "default";
  EXPECT_TRUE(GetString(j, "n", "spec", &s).ok());
  EXPECT_TRUE(GetString(j, "missing", "spec", &s).ok());
  EXPECT_EQ(s, "default");
  Status wrong = GetString(j, "i", "spec.target", &s);
  EXPECT_EQ(wrong.code(), Code::kInvalidArgument);
  EXPECT_EQ(wrong.message(), "spec.target.i: must be a string");
  EXPECT_EQ(GetBool(j, "s", "spec", &b).message(), "spec.s: must be true or false");
  EXPECT_EQ(GetInt(j, "b", "spec", &i).message(), "spec.b: must be a whole number");
}

}  // namespace
}  // namespace bao

namespace bao {
namespace {

TEST(JsonFieldsTest, UnknownFieldsAreRefusedWithAGuess) {
  nlohmann::json j = {{"schedule", "x"}, {"retenton", {{"maxCount", 1}}}};
  Status s = CheckKnownFields(j, "config", {"schedule", "target", "retention"});
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "config.retenton: unknown field; did you mean \"retention\"? (known: schedule, "
            "target, retention)");
  s = CheckKnownFields({{"zzzzzz", 1}}, "spec", {"schedule", "target"});
  EXPECT_EQ(s.message(), "spec.zzzzzz: unknown field (known: schedule, target)");
  EXPECT_TRUE(CheckKnownFields({{"target", 1}}, "spec", {"schedule", "target"}).ok());
  EXPECT_TRUE(CheckKnownFields(nlohmann::json::array(), "spec", {"target"}).ok());
}

}  // namespace
}  // namespace bao
