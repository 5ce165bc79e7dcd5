#include "common/yaml_json.h"

#include <gtest/gtest.h>

namespace bao {
namespace {

TEST(YamlJsonTest, ScalarsFollowTheCoreSchema) {
  Result<nlohmann::json> j = YamlToJson(R"(
int: 42
neg: -7
float: 1.5
exp: 2e3
quoted: "42"
bool: true
null_value: ~
text: 0 3 * * *
dotted: 1.2.3
list: [a, 2]
map: {k: v}
)");
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ((*j)["int"], 42);
  EXPECT_EQ((*j)["neg"], -7);
  EXPECT_EQ((*j)["float"], 1.5);
  EXPECT_EQ((*j)["exp"], 2000.0);
  EXPECT_EQ((*j)["quoted"], "42");
  EXPECT_EQ((*j)["bool"], true);
  EXPECT_TRUE((*j)["null_value"].is_null());
  EXPECT_EQ((*j)["text"], "0 3 * * *");
  EXPECT_EQ((*j)["dotted"], "1.2.3");
  EXPECT_EQ((*j)["list"], nlohmann::json::parse(R"(["a", 2])"));
  EXPECT_EQ((*j)["map"]["k"], "v");
}

TEST(YamlJsonTest, SyntaxErrorsNameTheLine) {
  Result<nlohmann::json> j = YamlToJson("a: 1\nb: [unclosed\n");
  ASSERT_FALSE(j.ok());
  EXPECT_NE(j.status().message().find("line"), std::string::npos);
}

}  // namespace
}  // namespace bao
