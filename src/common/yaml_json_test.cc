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

// Found by fuzz/config.cc: bytes that are not UTF-8 (here made by yaml-cpp from a stream it
// took for UTF-32) came through, and writing the JSON out later threw.
TEST(YamlJsonTest, RefusesTextThatIsNotUtf8) {
  for (std::string text : {std::string("name: caf\xe9\n"), std::string("c\0\0\0\0ers: [\n", 12)}) {
    Result<nlohmann::json> j = YamlToJson(text);
    ASSERT_FALSE(j.ok());
    EXPECT_EQ(j.status().code(), Code::kInvalidArgument);
  }
  EXPECT_TRUE(YamlToJson("name: caf\xc3\xa9\n").ok());
}

// Found by fuzz/config.cc: an alias inside the node it names recursed until the stack ran out;
// aliases of aliases expand without bound.
TEST(YamlJsonTest, RefusesCyclesAndExplosionsOfAliases) {
  Result<nlohmann::json> cycle = YamlToJson("a: &d\n  b: {c: *d}\n");
  ASSERT_FALSE(cycle.ok());
  EXPECT_NE(cycle.status().message().find("alias"), std::string::npos);
  std::string laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'h'; ++c) {
    std::string prev(1, static_cast<char>(c - 1));
    laughs += std::string(1, c) + ": &" + c + " [*" + prev + ", *" + prev + ", *" + prev + ", *" +
              prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev +
              ", *" + prev + "]\n";
  }
  EXPECT_FALSE(YamlToJson(laughs).ok());  // 10^8 values
  EXPECT_TRUE(YamlToJson("a: &a {x: 1}\nb: *a\nc: [*a, *a]\n").ok());
}

TEST(YamlJsonTest, SyntaxErrorsNameTheLine) {
  Result<nlohmann::json> j = YamlToJson("a: 1\nb: [unclosed\n");
  ASSERT_FALSE(j.ok());
  EXPECT_NE(j.status().message().find("line"), std::string::npos);
}

}  // namespace
}  // namespace bao
