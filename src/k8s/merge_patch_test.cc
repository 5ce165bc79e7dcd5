#include "k8s/merge_patch.h"

#include <gtest/gtest.h>

namespace bao::k8s {
namespace {

using json = nlohmann::json;

// The examples from RFC 7386, appendix A.
TEST(MergePatchTest, Rfc7386Examples) {
  struct Case {
    const char *target, *patch, *result;
  } cases[] = {
      {R"({"a":"b"})", R"({"a":"c"})", R"({"a":"c"})"},
      {R"({"a":"b"})", R"({"b":"c"})", R"({"a":"b","b":"c"})"},
      {R"({"a":"b"})", R"({"a":null})", R"({})"},
      {R"({"a":"b","b":"c"})", R"({"a":null})", R"({"b":"c"})"},
      {R"({"a":["b"]})", R"({"a":"c"})", R"({"a":"c"})"},
      {R"({"a":"c"})", R"({"a":["b"]})", R"({"a":["b"]})"},
      {R"({"a":{"b":"c"}})", R"({"a":{"b":"d","c":null}})", R"({"a":{"b":"d"}})"},
      {R"({"a":[{"b":"c"}]})", R"({"a":[1]})", R"({"a":[1]})"},
      {R"(["a","b"])", R"(["c","d"])", R"(["c","d"])"},
      {R"({"a":"b"})", R"(["c"])", R"(["c"])"},
      {R"({"a":"foo"})", "null", "null"},
      {R"({"a":"foo"})", R"("bar")", R"("bar")"},
      {R"({"e":null})", R"({"a":1})", R"({"e":null,"a":1})"},
      {R"([1,2])", R"({"a":"b","c":null})", R"({"a":"b"})"},
      {R"({})", R"({"a":{"bb":{"ccc":null}}})", R"({"a":{"bb":{}}})"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(ApplyMergePatch(json::parse(c.target), json::parse(c.patch)), json::parse(c.result))
        << c.target << " + " << c.patch;
  }
}

TEST(MergePatchTest, CreateMergePatchRoundTrips) {
  json original = json::parse(R"({"metadata":{"name":"x","labels":{"a":"1","b":"2"}},
      "spec":{"list":[1,2],"keep":true,"nested":{"x":1,"y":2}}})");
  json modified = json::parse(R"({"metadata":{"name":"x","labels":{"a":"1","c":"3"}},
      "spec":{"list":[3],"keep":true,"nested":{"x":1,"y":5}},"status":{"phase":"Running"}})");
  json patch = CreateMergePatch(original, modified);
  EXPECT_EQ(patch, json::parse(R"({"metadata":{"labels":{"b":null,"c":"3"}},
      "spec":{"list":[3],"nested":{"y":5}},"status":{"phase":"Running"}})"));
  EXPECT_EQ(ApplyMergePatch(original, patch), modified);
  EXPECT_EQ(CreateMergePatch(original, original), json::object());
}

}  // namespace
}  // namespace bao::k8s
