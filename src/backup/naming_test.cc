#include "backup/naming.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace bao::backup {
namespace {

TimePoint At(const char* rfc) {
  return *ParseRfc3339(rfc);
}

TEST(NamingTest, FormatsKeysPerContract) {
  std::string key = NewBackupKey("backups", "prod", "bao", At("2025-01-15T03:00:00Z"));
  ASSERT_EQ(key.size(), std::string("backups/prod/bao/2025-01-15T03-00-00Z-12345678.snap").size());
  EXPECT_TRUE(key.starts_with("backups/prod/bao/2025-01-15T03-00-00Z-"));
  EXPECT_TRUE(key.ends_with(".snap"));
  EXPECT_EQ(ClusterPrefix("", "prod", "bao"), "prod/bao/");
  EXPECT_TRUE(NewBackupKey("", "prod", "bao", At("2025-01-15T03:00:00Z")).starts_with("prod/bao/"));
  EXPECT_TRUE(NewBackupKey("", "prod", "bao", At("2025-01-15T03:00:00Z"), "pre-upgrade-")
                  .starts_with("prod/bao/pre-upgrade-2025-01-15T03-00-00Z-"));
  EXPECT_EQ(KeyTimestamp(At("2025-01-15T03:00:00.999Z")), "2025-01-15T03-00-00Z");
}

TEST(NamingTest, IdsAreRandom) {
  TimePoint t = At("2025-01-15T03:00:00Z");
  EXPECT_NE(NewBackupKey("", "a", "b", t), NewBackupKey("", "a", "b", t));
}

TEST(NamingTest, ParsesBackOwnKeysOnly) {
  TimePoint t = At("2025-01-15T03:00:00Z");
  std::string key = NewBackupKey("p", "ns", "c", t, "pre-upgrade-");
  auto parsed = ParseBackupKey(key, "p", "ns", "c");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->time, t);
  EXPECT_EQ(parsed->file_prefix, "pre-upgrade-");
  EXPECT_EQ(parsed->id.size(), 8u);

  EXPECT_FALSE(ParseBackupKey(key, "p", "ns", "other"));
  EXPECT_FALSE(ParseBackupKey(key, "", "ns", "c"));
  for (const char* foreign :
       {"p/ns/c/notes.txt", "p/ns/c/2025-01-15T03-00-00Z-1234567.snap",
        "p/ns/c/2025-01-15T03-00-00Z-1234567G.snap",
        "p/ns/c/2025-01-15T03-00-00Z-12345678.snap.sha256",
        "p/ns/c/2025-13-15T03-00-00Z-12345678.snap", "p/ns/c/2025-01-15T03:00:00Z-12345678.snap",
        "p/ns/c/sub/2025-01-15T03-00-00Z-12345678.snap",
        "p/ns/c/x2025-01-15T03-00-00Z-12345678.snap",
        "p/ns/c/2025-02-30T03-00-00Z-12345678.snap"}) {
    EXPECT_FALSE(ParseBackupKey(foreign, "p", "ns", "c")) << foreign;
  }
  EXPECT_TRUE(ParseBackupKey("p/ns/c/2025-01-15T03-00-00Z-0123abcd.snap", "p", "ns", "c"));
}

TEST(NamingTest, KeysSortByTime) {
  std::vector<std::string> keys;
  for (const char* t : {"2025-03-01T00:00:00Z", "2024-12-31T23:59:59Z", "2025-01-15T03:00:00Z",
                        "2025-01-15T02:59:59Z"}) {
    keys.push_back(NewBackupKey("", "ns", "c", At(t)));
  }
  std::vector<std::string> by_key = keys;
  std::sort(by_key.begin(), by_key.end());
  std::vector<std::string> by_time = keys;
  std::sort(by_time.begin(), by_time.end(), [](const std::string& a, const std::string& b) {
    return ParseBackupKey(a, "", "ns", "c")->time < ParseBackupKey(b, "", "ns", "c")->time;
  });
  EXPECT_EQ(by_key, by_time);
}

TEST(NamingTest, NameSegments) {
  EXPECT_TRUE(IsValidNameSegment("openbao-prod"));
  EXPECT_FALSE(IsValidNameSegment(""));
  EXPECT_FALSE(IsValidNameSegment("Prod"));
  EXPECT_FALSE(IsValidNameSegment("a/b"));
  EXPECT_FALSE(IsValidNameSegment("-a"));
  EXPECT_FALSE(IsValidNameSegment(std::string(64, 'a')));
}

}  // namespace
}  // namespace bao::backup
