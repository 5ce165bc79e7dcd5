#include "schedule/cron.h"

#include <gtest/gtest.h>

#include <chrono>
#include <random>

namespace bao {
namespace {

// Expected times were worked out by hand and cross-checked with a brute-force minute-by-minute
// Python reference using zoneinfo (the system tzdata).

TimePoint T(const char* rfc3339) {
  Result<TimePoint> t = ParseRfc3339(rfc3339);
  EXPECT_TRUE(t.ok()) << rfc3339;
  return t.ok() ? *t : TimePoint();
}

CronSchedule MustParse(const std::string& expr) {
  Result<CronSchedule> s = CronSchedule::Parse(expr);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? *s : *CronSchedule::Parse("* * * * *");
}

std::vector<std::string> Format(const std::vector<TimePoint>& times) {
  std::vector<std::string> out;
  for (TimePoint t : times) out.push_back(FormatRfc3339(t));
  return out;
}

struct NextCase {
  const char* expr;
  const char* after;
  std::vector<std::string> want;
};

void CheckNext(const std::vector<NextCase>& cases) {
  for (const NextCase& c : cases) {
    SCOPED_TRACE(std::string(c.expr) + " after " + c.after);
    CronSchedule s = MustParse(c.expr);
    EXPECT_EQ(Format(s.NextN(T(c.after), static_cast<int>(c.want.size()))), c.want);
    EXPECT_EQ(FormatRfc3339(s.Next(T(c.after))), c.want.front());
  }
}

TEST(CronNextTest, MonthEndsLeapYearsAndSteps) {
  CheckNext({
      {"*/15 * * * *",
       "2026-01-31T23:50:00Z",
       {"2026-02-01T00:00:00Z", "2026-02-01T00:15:00Z", "2026-02-01T00:30:00Z"}},
      {"0 0 31 * *",
       "2026-01-31T00:00:00Z",
       {"2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z",
        "2026-08-31T00:00:00Z"}},
      {"0 0 29 2 *", "2026-01-01T00:00:00Z", {"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"}},
      {"0 0 29 2 *", "2096-03-01T00:00:00Z", {"2104-02-29T00:00:00Z"}},  // 2100 is not leap
      {"0 12 28-31 2 *", "2100-02-27T12:00:00Z", {"2100-02-28T12:00:00Z", "2101-02-28T12:00:00Z"}},
      {"0 0 1 * *", "2026-12-31T23:59:59.999Z", {"2027-01-01T00:00:00Z"}},
      {"0 8-18/5 * * *",
       "2026-01-01T00:00:00Z",
       {"2026-01-01T08:00:00Z", "2026-01-01T13:00:00Z", "2026-01-01T18:00:00Z",
        "2026-01-02T08:00:00Z"}},
      {"5/15 * * * *",
       "2026-01-01T00:00:00Z",
       {"2026-01-01T00:05:00Z", "2026-01-01T00:20:00Z", "2026-01-01T00:35:00Z",
        "2026-01-01T00:50:00Z", "2026-01-01T01:05:00Z"}},
      {"0,30 */6 1 jan,JUL *",
       "2026-06-30T00:00:00Z",
       {"2026-07-01T00:00:00Z", "2026-07-01T00:30:00Z", "2026-07-01T06:00:00Z",
        "2026-07-01T06:30:00Z"}},
      {"0 3 * * *", "2026-01-31T03:00:00Z", {"2026-02-01T03:00:00Z", "2026-02-02T03:00:00Z"}},
      {"0 3 * * *", "2026-01-31T02:59:59.5Z", {"2026-01-31T03:00:00Z"}},
      {"* * * * *", "2026-01-31T02:59:00Z", {"2026-01-31T03:00:00Z", "2026-01-31T03:01:00Z"}},
  });
}

TEST(CronNextTest, DayOfMonthAndDayOfWeek) {
  CheckNext({
      // Both restricted: either matches (Fridays and the 13th).
      {"0 0 13 * FRI",
       "2026-01-01T00:00:00Z",
       {"2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z", "2026-01-13T00:00:00Z",
        "2026-01-16T00:00:00Z", "2026-01-23T00:00:00Z"}},
      {"0 0 13 * *",
       "2026-01-01T00:00:00Z",
       {"2026-01-13T00:00:00Z", "2026-02-13T00:00:00Z", "2026-03-13T00:00:00Z"}},
      {"0 0 * * fri",
       "2026-01-01T00:00:00Z",
       {"2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z", "2026-01-16T00:00:00Z"}},
      // A field starting with '*' makes both required: days 1, 11, 21, 31 that are Mondays.
      {"0 0 */10 * MON",
       "2026-01-01T00:00:00Z",
       {"2026-05-11T00:00:00Z", "2026-06-01T00:00:00Z", "2026-08-31T00:00:00Z"}},
      {"0 0 1,15 * */7",
       "2026-01-01T00:00:00Z",
       {"2026-02-01T00:00:00Z", "2026-02-15T00:00:00Z", "2026-03-01T00:00:00Z"}},
  });
}

TEST(CronNextTest, NamesAndSunday) {
  CheckNext({
      {"30 8 * jan-Mar Mon-fri",
       "2026-03-30T00:00:00Z",
       {"2026-03-30T08:30:00Z", "2026-03-31T08:30:00Z"}},
      {"30 8 * jan-Mar Mon-fri", "2026-03-31T09:00:00Z", {"2027-01-01T08:30:00Z"}},
      {"0 9 * * 7", "2026-01-01T00:00:00Z", {"2026-01-04T09:00:00Z", "2026-01-11T09:00:00Z"}},
      {"0 9 * * 0", "2026-01-01T00:00:00Z", {"2026-01-04T09:00:00Z", "2026-01-11T09:00:00Z"}},
      {"0 9 * * sUn", "2026-01-01T00:00:00Z", {"2026-01-04T09:00:00Z", "2026-01-11T09:00:00Z"}},
      {"0 9 * * 5-7",
       "2026-01-01T00:00:00Z",
       {"2026-01-02T09:00:00Z", "2026-01-03T09:00:00Z", "2026-01-04T09:00:00Z",
        "2026-01-09T09:00:00Z"}},
      {"0 9 * * FRI-SUN",
       "2026-01-01T00:00:00Z",
       {"2026-01-02T09:00:00Z", "2026-01-03T09:00:00Z", "2026-01-04T09:00:00Z",
        "2026-01-09T09:00:00Z"}},
      {"0 0 1 dec *", "2026-01-01T00:00:00Z", {"2026-12-01T00:00:00Z"}},
  });
}

TEST(CronNextTest, Macros) {
  CheckNext({
      {"@yearly", "2026-05-05T00:00:00Z", {"2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"}},
      {"@annually", "2026-05-05T00:00:00Z", {"2027-01-01T00:00:00Z"}},
      {"@monthly", "2026-12-15T10:00:00Z", {"2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z"}},
      {"@weekly", "2026-01-01T00:00:00Z", {"2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"}},
      {"@daily", "2026-12-31T23:59:59Z", {"2027-01-01T00:00:00Z", "2027-01-02T00:00:00Z"}},
      {"@midnight", "2026-01-01T00:00:00Z", {"2026-01-02T00:00:00Z"}},
      {"@HOURLY", "2026-01-01T00:00:00Z", {"2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z"}},
      {"CRON_TZ=Europe/Amsterdam @daily", "2026-01-01T00:00:00Z", {"2026-01-01T23:00:00Z"}},
  });
}

TEST(CronNextTest, ZonesAndDaylightSaving) {
  CheckNext({
      {"CRON_TZ=Asia/Tokyo 0 9 * * *",
       "2026-03-08T00:00:00Z",
       {"2026-03-09T00:00:00Z", "2026-03-10T00:00:00Z"}},
      {"CRON_TZ=Asia/Tokyo 30 23 31 12 *", "2026-01-01T00:00:00Z", {"2026-12-31T14:30:00Z"}},
      // 02:30 does not exist on 2026-03-29 in Amsterdam: no run that day.
      {"CRON_TZ=Europe/Amsterdam 30 2 * * *",
       "2026-03-28T00:00:00Z",
       {"2026-03-28T01:30:00Z", "2026-03-30T00:30:00Z"}},
      // 02:30 happens twice on 2026-10-25: one run, at the first (CEST) occurrence.
      {"CRON_TZ=Europe/Amsterdam 30 2 * * *",
       "2026-10-24T00:00:00Z",
       {"2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"}},
      {"CRON_TZ=Europe/Amsterdam 30 2 * * *", "2026-10-25T00:30:00Z", {"2026-10-26T01:30:00Z"}},
      // An hour field starting with '*' runs on every real hour across both changes.
      {"CRON_TZ=Europe/Amsterdam 0 * * * *",
       "2026-03-28T23:30:00Z",
       {"2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z",
        "2026-03-29T03:00:00Z"}},
      {"CRON_TZ=Europe/Amsterdam 0 * * * *",
       "2026-10-24T23:30:00Z",
       {"2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z",
        "2026-10-25T03:00:00Z"}},
      {"CRON_TZ=Europe/Amsterdam 15 2,3 * * *",
       "2026-10-24T23:30:00Z",
       {"2026-10-25T00:15:00Z", "2026-10-25T02:15:00Z", "2026-10-26T01:15:00Z"}},
      {"TZ=Europe/Amsterdam 0 0 * * *",
       "2026-03-28T12:00:00Z",
       {"2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", "2026-03-30T22:00:00Z"}},
      {"TZ=America/New_York 30 2 * * *",
       "2026-03-07T00:00:00Z",
       {"2026-03-07T07:30:00Z", "2026-03-09T06:30:00Z"}},
      {"TZ=America/New_York 30 1 * * *",
       "2026-10-31T00:00:00Z",
       {"2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"}},
      {"TZ=America/New_York 0 * * * *",
       "2026-03-08T05:30:00Z",
       {"2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z",
        "2026-03-08T09:00:00Z"}},
      {"TZ=America/New_York 0 * * * *",
       "2026-11-01T03:30:00Z",
       {"2026-11-01T04:00:00Z", "2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z",
        "2026-11-01T07:00:00Z"}},
      {"TZ=America/New_York */30 1 * * *",
       "2026-11-01T00:00:00Z",
       {"2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:00:00Z"}},
      {"TZ=America/New_York 0 0 1 * *",
       "2026-10-15T00:00:00Z",
       {"2026-11-01T04:00:00Z", "2026-12-01T05:00:00Z"}},
      // Far beyond the transition tables: the zone's POSIX rule (2100-03-28 is the switch).
      {"CRON_TZ=Europe/Amsterdam 30 2 * * *",
       "2100-03-27T00:00:00Z",
       {"2100-03-27T01:30:00Z", "2100-03-29T00:30:00Z"}},
  });
}

TEST(CronNextTest, UtcIsTheDefault) {
  CronSchedule plain = MustParse("0 12 * * *");
  CronSchedule utc = MustParse("CRON_TZ=UTC 0 12 * * *");
  EXPECT_EQ(plain.zone().name(), "UTC");
  EXPECT_EQ(FormatRfc3339(plain.Next(T("2026-07-01T00:00:00Z"))), "2026-07-01T12:00:00Z");
  EXPECT_EQ(plain.Next(T("2026-07-01T00:00:00Z")), utc.Next(T("2026-07-01T00:00:00Z")));
}

TEST(CronNextTest, FarFutureIsNever) {
  CronSchedule s = MustParse("@daily");
  EXPECT_EQ(s.Next(CronSchedule::kNever), CronSchedule::kNever);
  EXPECT_TRUE(s.NextN(CronSchedule::kNever, 3).empty());
  EXPECT_FALSE(s.Previous(TimePoint::min()).has_value());
}

TEST(CronNextTest, IsFastForRareSchedules) {
  // A Sunday Feb 29 (both fields required because day-of-week starts with '*'): 40 years
  // apart around 2100. Field jumps make this cheap.
  CronSchedule s = MustParse("0 0 29 2 */7");
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Format(s.NextN(T("2061-01-01T00:00:00Z"), 3)),
            (std::vector<std::string>{"2088-02-29T00:00:00Z", "2128-02-29T00:00:00Z",
                                      "2156-02-29T00:00:00Z"}));
  EXPECT_EQ(FormatRfc3339(*s.Previous(T("2127-01-01T00:00:00Z"))), "2088-02-29T00:00:00Z");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(200));
}

TEST(CronPreviousTest, MostRecentRunAtOrBefore) {
  struct Case {
    const char* expr;
    const char* at;
    const char* want;
  } cases[] = {
      {"0 0 29 2 *", "2104-01-01T00:00:00Z", "2096-02-29T00:00:00Z"},
      {"0 0 29 2 *", "2028-02-29T00:00:00Z", "2028-02-29T00:00:00Z"},
      {"0 0 29 2 *", "2028-02-28T23:59:59Z", "2024-02-29T00:00:00Z"},
      {"CRON_TZ=Europe/Amsterdam 30 2 * * *", "2026-10-25T01:45:00Z", "2026-10-25T00:30:00Z"},
      {"CRON_TZ=Europe/Amsterdam 30 2 * * *", "2026-03-29T23:00:00Z", "2026-03-28T01:30:00Z"},
      {"TZ=America/New_York 0 * * * *", "2026-11-01T06:59:00Z", "2026-11-01T06:00:00Z"},
      {"TZ=America/New_York 30 1 * * *", "2026-11-01T06:45:00Z", "2026-11-01T05:30:00Z"},
      {"0 0 13 * FRI", "2026-02-12T00:00:00Z", "2026-02-06T00:00:00Z"},
      {"*/15 * * * *", "2026-03-01T00:14:59.999Z", "2026-03-01T00:00:00Z"},
      {"@monthly", "2026-03-01T00:00:00Z", "2026-03-01T00:00:00Z"},
      {"CRON_TZ=Asia/Tokyo 0 9 * * 1", "2026-01-05T00:00:00Z", "2026-01-05T00:00:00Z"},
      {"0 0 31 * *", "2026-05-30T00:00:00Z", "2026-03-31T00:00:00Z"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.expr) + " at " + c.at);
    std::optional<TimePoint> got = MustParse(c.expr).Previous(T(c.at));
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(FormatRfc3339(*got), c.want);
  }
}

TEST(CronPreviousTest, AgreesWithNext) {
  // Previous(t) is a run, no run lies in (Previous(t), t], so Next(Previous(t)) == Next(t).
  std::mt19937_64 rng(42);
  for (const char* expr :
       {"*/7 * * * *", "30 2 * * *", "CRON_TZ=Europe/Amsterdam 30 2 * * *",
        "CRON_TZ=Europe/Amsterdam 0 * * * *", "TZ=America/New_York */20 1,2 * * *",
        "TZ=Australia/Sydney 0 2,3 * * SUN", "0 0 13 * FRI", "0 0 29 2 *", "@weekly"}) {
    CronSchedule s = MustParse(expr);
    for (int i = 0; i < 300; ++i) {
      TimePoint t = T("2025-01-01T00:00:00Z") +
                    std::chrono::seconds(static_cast<int64_t>(rng() % (6LL * 365 * 86400)));
      if (i % 3 == 0) t = s.Next(t);  // exactly on a run
      std::optional<TimePoint> prev = s.Previous(t);
      ASSERT_TRUE(prev.has_value()) << expr;
      EXPECT_LE(*prev, t);
      EXPECT_EQ(s.Next(*prev), s.Next(t)) << expr << " at " << FormatRfc3339(t);
      if (i % 3 == 0) {
        EXPECT_EQ(*prev, t) << expr;
      }
    }
  }
}

TEST(CronParseTest, ToStringNormalizesWhiteSpace) {
  EXPECT_EQ(MustParse("  */5   *\t* * *  ").ToString(), "*/5 * * * *");
  EXPECT_EQ(MustParse("CRON_TZ=Europe/Amsterdam  30 2 * * *").ToString(),
            "CRON_TZ=Europe/Amsterdam 30 2 * * *");
  EXPECT_EQ(MustParse("TZ=Asia/Tokyo @daily").zone().name(), "Asia/Tokyo");
}

TEST(CronParseTest, RejectsInvalidExpressionsNamingTheField) {
  struct Case {
    const char* expr;
    const char* want;  // the whole message, or a distinctive part of it
  } cases[] = {
      {"61 * * * *",
       "cron expression \"61 * * * *\": minute field \"61\": value 61 out of range "
       "0-59"},
      {"* 24 * * *", "hour field \"24\": value 24 out of range 0-23"},
      {"* * 0 * *", "day-of-month field \"0\": value 0 out of range 1-31"},
      {"* * 32 * *", "day-of-month field \"32\": value 32 out of range 1-31"},
      {"* * * 13 *", "month field \"13\": value 13 out of range 1-12"},
      {"* * * * 8", "day-of-week field \"8\": value 8 out of range 0-7"},
      {"* * * *",
       "cron expression \"* * * *\": expected 5 fields (minute hour day-of-month "
       "month day-of-week) or a macro such as @daily, got 4"},
      {"0 * * * * *", "expected 5 fields"},
      {"", "expected 5 fields"},
      {"CRON_TZ=Europe/Amsterdam", "got 0"},
      {"1,,2 * * * *", "minute field \"1,,2\": empty item in list"},
      {"* 1, * * *", "hour field \"1,\": empty item in list"},
      {"*/0 * * * *", "minute field \"*/0\": bad step \"0\""},
      {"*/ * * * *", "minute field \"*/\": bad step \"\""},
      {"* */x * * *", "hour field \"*/x\": bad step \"x\""},
      {"*/60 * * * *", "bad step \"60\" in \"*/60\" (expected a number from 1 to 59)"},
      {"1/2/3 * * * *", "minute field \"1/2/3\": bad step \"2/3\""},
      {"* * * FOO *", "month field \"FOO\": unknown name \"FOO\" (expected JAN-DEC or a number)"},
      {"* * * * MONDAY", "day-of-week field \"MONDAY\": unknown name \"MONDAY\""},
      {"* * * jan-foo *", "month field \"jan-foo\": unknown name \"foo\""},
      {"MON * * * *", "minute field \"MON\": \"MON\" is not a number"},
      {"5x * * * *", "minute field \"5x\": \"5x\" is not a number"},
      {"-5 * * * *", "minute field \"-5\": missing value"},
      {"5- * * * *", "minute field \"5-\": missing value"},
      {"* 10-2 * * *", "hour field \"10-2\": range \"10-2\" is backwards"},
      {"* * L * *", "day-of-month field \"L\": \"L\" is not a number"},
      {"* * ? * *", "day-of-month field \"?\""},
      {"* * * * 1#2", "day-of-week field \"1#2\""},
      {"99999999999 * * * *", "value 99999999999 out of range 0-59"},
      {"@reboot", "unknown macro \"@reboot\""},
      {"@daily 5", "expected 5 fields"},
      {"0 0 30 2 *",
       "cron expression \"0 0 30 2 *\": never fires: day-of-month field \"30\" "
       "selects no day that exists in month field \"2\" (February has at most 29 "
       "days)"},
      {"0 0 31 4,6,9,11 *",
       "never fires: day-of-month field \"31\" selects no day that exists "
       "in month field \"4,6,9,11\""},
      {"0 0 31 apr */7", "never fires"},
      {"CRON_TZ=Mars/Olympus_Mons 0 * * * *",
       "cron expression \"CRON_TZ=Mars/Olympus_Mons 0 * * * *\": unknown time zone "
       "\"Mars/Olympus_Mons\""},
      {"TZ=../../etc/passwd 0 * * * *", "invalid time zone name \"../../etc/passwd\""},
      {"TZ=/etc/localtime 0 * * * *", "invalid time zone name \"/etc/localtime\""},
      {"TZ= 0 * * * *", "empty time zone name"},
  };
  for (const Case& c : cases) {
    Result<CronSchedule> s = CronSchedule::Parse(c.expr);
    ASSERT_FALSE(s.ok()) << c.expr;
    EXPECT_EQ(s.status().code(), Code::kInvalidArgument) << c.expr;
    EXPECT_NE(s.status().message().find(c.want), std::string::npos)
        << c.expr << " -> " << s.status().message();
    EXPECT_EQ(s.status().message().rfind("cron expression \"", 0), 0u) << s.status().message();
  }
}

TEST(CronParseTest, BothDayFieldsRestrictedIsNeverImpossible) {
  // "30 February or any Monday in February" fires on the Mondays.
  CronSchedule s = MustParse("0 0 30 2 MON");
  EXPECT_EQ(FormatRfc3339(s.Next(T("2026-01-01T00:00:00Z"))), "2026-02-02T00:00:00Z");
}

}  // namespace
}  // namespace bao
