#include "common/time.h"

#include <gtest/gtest.h>

namespace bao {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

TEST(TimeTest, FormatsAndParsesRfc3339) {
  TimePoint t = TimePoint(seconds(1736910000));  // 2025-01-15T03:00:00Z
  EXPECT_EQ(FormatRfc3339(t), "2025-01-15T03:00:00Z");
  EXPECT_EQ(FormatRfc3339(t + milliseconds(42), true), "2025-01-15T03:00:00.042Z");
  EXPECT_EQ(*ParseRfc3339("2025-01-15T03:00:00Z"), t);
  EXPECT_EQ(*ParseRfc3339("2025-01-15T04:30:00+01:30"), t);
  EXPECT_EQ(*ParseRfc3339("2025-01-15T03:00:00.042Z"), t + milliseconds(42));
  EXPECT_EQ(*ParseRfc3339("2025-01-15"), t - hours(3));
  EXPECT_EQ(*ParseRfc3339("2024-02-29T00:00:00Z"), TimePoint(seconds(1709164800)));
  EXPECT_EQ(FormatRfc3339(TimePoint(seconds(-1))), "1969-12-31T23:59:59Z");
}

TEST(TimeTest, RejectsMalformedTimes) {
  for (const char* bad : {"", "2025", "2025-13-01", "2025-01-15T03:00:00", "2025-01-15T25:00:00Z",
                          "2025-01-15T03:00:00Zjunk", "yesterday", "2025-01-15T03:00:00.Z"}) {
    Result<TimePoint> r = ParseRfc3339(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("RFC 3339"), std::string::npos);
    }
  }
}

TEST(TimeTest, ParsesDurations) {
  EXPECT_EQ(*ParseDuration("168h"), hours(168));
  EXPECT_EQ(*ParseDuration("90m"), minutes(90));
  EXPECT_EQ(*ParseDuration("1h30m"), minutes(90));
  EXPECT_EQ(*ParseDuration("7d"), hours(168));
  EXPECT_EQ(*ParseDuration("2d12h"), hours(60));
  EXPECT_EQ(*ParseDuration("1.5h"), minutes(90));
  EXPECT_EQ(*ParseDuration("45s"), seconds(45));
  EXPECT_EQ(*ParseDuration("300ms"), milliseconds(300));
  EXPECT_EQ(*ParseDuration("0"), milliseconds(0));
}

TEST(TimeTest, RejectsBadDurations) {
  for (const char* bad : {"", "7", "h", "-1h", "1w", "1h30", "1..5h", "one hour", "1y"}) {
    Result<Duration> r = ParseDuration(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("invalid duration"), std::string::npos);
    }
  }
}

TEST(TimeTest, RejectsDurationsAndTimesOutOfRange) {
  // A 400-digit number threw std::out_of_range out of ParseDuration (prune aborted).
  std::string huge(400, '9');
  for (const std::string& bad : {huge + "h", huge + "." + huge + "s", std::string("3000000h"),
                                 std::string("36501d"), std::string("1e400h")}) {
    Result<Duration> r = ParseDuration(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("invalid duration"), std::string::npos);
    }
  }
  EXPECT_EQ(*ParseDuration("36500d"), kMaxDuration);
  // 9999-12-31 wrapped to 1816 before; both ends of what a TimePoint holds are refused by name.
  for (const char* bad : {"9999-12-31T00:00:00Z", "1600-01-01", "2262-05-01T00:00:00Z"}) {
    Result<TimePoint> r = ParseRfc3339(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("outside the supported range (years 1678 to 2261)"),
              std::string::npos)
        << r.status().message();
  }
  // Found by fuzz/time.cc: the year as written was in range, the instant (UTC) was not, and
  // FormatRfc3339 printed a time that does not parse back.
  for (const char* bad :
       {"2261-12-31T23:59:60.999Z", "2261-12-31T23:30:00-01:00", "1678-01-01T00:00:00+00:01"}) {
    EXPECT_FALSE(ParseRfc3339(bad).ok()) << bad;
  }
  EXPECT_EQ(FormatRfc3339(*ParseRfc3339("1678-01-01T01:00:00+01:00")), "1678-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(*ParseRfc3339("2261-12-31T23:59:59Z")), "2261-12-31T23:59:59Z");
  EXPECT_EQ(FormatRfc3339(*ParseRfc3339("1678-01-01T00:00:00Z")), "1678-01-01T00:00:00Z");
}

TEST(TimeTest, FormatsDurationsLikeGo) {
  EXPECT_EQ(FormatDuration(seconds(45)), "45s");
  EXPECT_EQ(FormatDuration(seconds(90)), "1m30s");
  EXPECT_EQ(FormatDuration(seconds(7205)), "2h0m5s");
  EXPECT_EQ(FormatDuration(milliseconds(850)), "850ms");
}

TEST(TimeTest, ManualClockMovesOnlyWhenTold) {
  ManualClock clock(TimePoint(seconds(100)));
  EXPECT_EQ(clock.Now(), TimePoint(seconds(100)));
  clock.Advance(seconds(5));
  EXPECT_EQ(clock.Now(), TimePoint(seconds(105)));
  clock.Set(TimePoint(seconds(7)));
  EXPECT_EQ(clock.Now(), TimePoint(seconds(7)));
}

}  // namespace
}  // namespace bao
