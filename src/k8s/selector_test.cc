#include "k8s/selector.h"

#include <gtest/gtest.h>

namespace bao::k8s {
namespace {

using Labels = std::map<std::string, std::string>;

bool Match(const std::string& selector, const Labels& labels) {
  auto s = LabelSelector::Parse(selector);
  EXPECT_TRUE(s.ok()) << selector << ": " << s.status().ToString();
  return s.ok() && s->Matches(labels);
}

TEST(LabelSelectorTest, EqualityAndInequality) {
  Labels l = {{"app", "bao"}, {"tier", "db"}};
  EXPECT_TRUE(Match("app=bao", l));
  EXPECT_TRUE(Match("app==bao", l));
  EXPECT_FALSE(Match("app=other", l));
  EXPECT_TRUE(Match("app!=other", l));
  EXPECT_FALSE(Match("app!=bao", l));
  EXPECT_TRUE(Match("missing!=x", l));  // != matches an absent label
  EXPECT_TRUE(Match("app=bao,tier=db", l));
  EXPECT_FALSE(Match("app=bao,tier=web", l));
}

TEST(LabelSelectorTest, SetsAndExistence) {
  Labels l = {{"env", "prod"}, {"team", "a"}};
  EXPECT_TRUE(Match("env in (prod, staging)", l));
  EXPECT_FALSE(Match("env in (dev)", l));
  EXPECT_TRUE(Match("env notin (dev,qa)", l));
  EXPECT_FALSE(Match("env notin (prod)", l));
  EXPECT_TRUE(Match("x notin (prod)", l));
  EXPECT_TRUE(Match("team", l));
  EXPECT_FALSE(Match("other", l));
  EXPECT_TRUE(Match("!other", l));
  EXPECT_FALSE(Match("!team", l));
  EXPECT_TRUE(Match(" env in (prod) , team , !gone , team!=b ", l));
}

TEST(LabelSelectorTest, GreaterLessAndPrefixedKeys) {
  Labels l = {{"replicas", "3"}, {"openbao.org/cluster", "c1"}};
  EXPECT_TRUE(Match("replicas>2", l));
  EXPECT_FALSE(Match("replicas<3", l));
  EXPECT_TRUE(Match("openbao.org/cluster=c1", l));
}

TEST(LabelSelectorTest, EmptySelectorMatchesEverything) {
  EXPECT_TRUE(Match("", {}));
  EXPECT_TRUE(Match("  ", {{"a", "b"}}));
}

TEST(LabelSelectorTest, RejectsMalformed) {
  for (const char* bad :
       {"a in b", "a in (b", "=b", "a=b=c", "-a=b", "a b", "a>x", "a in ()", "a,,b",
        "a="
        "(x)"}) {
    auto s = LabelSelector::Parse(bad);
    EXPECT_FALSE(s.ok()) << bad;
    if (!s.ok()) {
      EXPECT_EQ(s.status().code(), Code::kInvalidArgument);
    }
  }
}

TEST(LabelSelectorTest, RoundTripsThroughToString) {
  auto s = LabelSelector::Parse("a=b,c!=d,e in (x,y),!f,g,h notin (z)");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->ToString(), "a=b,c!=d,e in (x,y),!f,g,h notin (z)");
  auto again = LabelSelector::Parse(s->ToString());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->ToString(), s->ToString());
  EXPECT_EQ(LabelSelector::FromMap({{"k", "v"}, {"a", "b"}}).ToString(), "a=b,k=v");
}

// Found by fuzz/selector.cc: empty set values printed as "()", which does not parse.
TEST(LabelSelectorTest, EmptySetValuesRoundTrip) {
  for (const char* text : {"env notin (,)", "env in (,a)", "env in (a,,b)", "env in (a,)"}) {
    Result<LabelSelector> s = LabelSelector::Parse(text);
    ASSERT_TRUE(s.ok()) << text;
    Result<LabelSelector> again = LabelSelector::Parse(s->ToString());
    ASSERT_TRUE(again.ok()) << text << " printed as " << s->ToString();
    EXPECT_EQ(again->requirements()[0].values, s->requirements()[0].values) << text;
  }
  EXPECT_EQ(LabelSelector::Parse("env notin (,)")->ToString(), "env notin (,)");
}

TEST(LabelSelectorTest, MatchesJsonLabels) {
  auto s = LabelSelector::Parse("a=b");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->Matches(nlohmann::json{{"a", "b"}}));
  EXPECT_FALSE(s->Matches(nlohmann::json()));
  EXPECT_FALSE(s->Matches(nlohmann::json{{"a", 1}}));
}

}  // namespace
}  // namespace bao::k8s
