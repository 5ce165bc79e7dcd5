#include "schedule/tz.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "common/time.h"

namespace bao {
namespace {

int64_t At(const char* rfc3339) {
  Result<TimePoint> t = ParseRfc3339(rfc3339);
  EXPECT_TRUE(t.ok()) << rfc3339;
  return std::chrono::duration_cast<std::chrono::seconds>(t->time_since_epoch()).count();
}

TimeZone MustLoad(const char* name) {
  Result<TimeZone> z = TimeZone::Load(name);
  EXPECT_TRUE(z.ok()) << z.status().ToString();
  return z.ok() ? *z : TimeZone::Utc();
}

void PutInt(std::string* out, int64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

struct Tzif {
  char version = '2';
  std::vector<std::pair<int64_t, int>> transitions;  // instant, type index
  std::vector<int32_t> offsets = {0};
  std::string footer;
  int leapcnt = 0;

  std::string Block(int time_bytes) const {
    std::string b = "TZif";
    b.push_back(version);
    b.append(15, '\0');
    for (int64_t c :
         {int64_t{0}, int64_t{0}, int64_t{leapcnt}, static_cast<int64_t>(transitions.size()),
          static_cast<int64_t>(offsets.size()), int64_t{4}}) {
      PutInt(&b, c, 4);
    }
    for (auto& [t, i] : transitions) PutInt(&b, t, time_bytes);
    for (auto& [t, i] : transitions) b.push_back(static_cast<char>(i));
    for (int32_t off : offsets) {
      PutInt(&b, off, 4);
      b.push_back(0);
      b.push_back(0);
    }
    b.append("ABC", 4);
    for (int i = 0; i < leapcnt; ++i) {  // a leap record: occurrence time, then correction
      PutInt(&b, 0, time_bytes);
      PutInt(&b, 0, 4);
    }
    return b;
  }
  std::string Bytes() const {
    if (version == '\0') return Block(4);
    return Block(4) + Block(8) + "\n" + footer + "\n";
  }
};

TEST(TimeZoneTest, UtcIsBuiltIn) {
  TimeZone utc = TimeZone::Utc();
  EXPECT_EQ(utc.name(), "UTC");
  EXPECT_EQ(utc.OffsetAt(At("2026-07-01T00:00:00Z")), 0);
  EXPECT_FALSE(utc.NextTransition(0).has_value());
  EXPECT_FALSE(utc.PrevTransition(0).has_value());
  EXPECT_EQ(utc.InstantsAt(1000), std::vector<int64_t>{1000});
  Result<TimeZone> loaded = TimeZone::Load("UTC");
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->OffsetAt(12345), 0);
}

TEST(TimeZoneTest, AmsterdamOffsetsAndTransitions2026) {
  TimeZone ams = MustLoad("Europe/Amsterdam");
  EXPECT_EQ(ams.name(), "Europe/Amsterdam");
  int64_t spring = At("2026-03-29T01:00:00Z");
  int64_t fall = At("2026-10-25T01:00:00Z");
  EXPECT_EQ(ams.OffsetAt(spring - 1), 3600);
  EXPECT_EQ(ams.OffsetAt(spring), 7200);
  EXPECT_EQ(ams.OffsetAt(fall - 1), 7200);
  EXPECT_EQ(ams.OffsetAt(fall), 3600);
  EXPECT_EQ(ams.NextTransition(At("2026-01-01T00:00:00Z")), spring);
  EXPECT_EQ(ams.NextTransition(spring), fall);
  EXPECT_EQ(ams.PrevTransition(fall), fall);
  EXPECT_EQ(ams.PrevTransition(fall - 1), spring);
}

TEST(TimeZoneTest, FooterRuleAppliesFarInTheFuture) {
  // Beyond any transition table: computed from the POSIX footer. Expected values from
  // Python's zoneinfo.
  TimeZone ams = MustLoad("Europe/Amsterdam");
  EXPECT_EQ(ams.NextTransition(At("2100-01-01T00:00:00Z")), At("2100-03-28T01:00:00Z"));
  EXPECT_EQ(ams.NextTransition(At("2100-03-28T01:00:00Z")), At("2100-10-31T01:00:00Z"));
  EXPECT_EQ(ams.PrevTransition(At("2100-12-31T00:00:00Z")), At("2100-10-31T01:00:00Z"));
  EXPECT_EQ(ams.OffsetAt(At("2100-07-01T00:00:00Z")), 7200);

  struct Case {
    const char* zone;
    int64_t jan_offset;
    const char* first;
    int64_t first_offset;
    const char* second;
    int64_t second_offset;
  } cases[] = {
      {"America/New_York", -18000, "2060-03-14T07:00:00Z", -14400, "2060-11-07T06:00:00Z", -18000},
      {"Asia/Jerusalem", 7200, "2060-03-26T00:00:00Z", 10800, "2060-10-30T23:00:00Z", 7200},
      {"America/Nuuk", -7200, "2060-03-28T01:00:00Z", -3600, "2060-10-31T01:00:00Z", -7200},
      {"Australia/Sydney", 39600, "2060-04-03T16:00:00Z", 36000, "2060-10-02T16:00:00Z", 39600},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.zone);
    TimeZone z = MustLoad(c.zone);
    EXPECT_EQ(z.OffsetAt(At("2060-01-01T00:00:00Z")), c.jan_offset);
    EXPECT_EQ(z.NextTransition(At("2060-01-01T00:00:00Z")), At(c.first));
    EXPECT_EQ(z.OffsetAt(At(c.first)), c.first_offset);
    EXPECT_EQ(z.OffsetAt(At(c.first) - 1), c.jan_offset);
    EXPECT_EQ(z.NextTransition(At(c.first)), At(c.second));
    EXPECT_EQ(z.OffsetAt(At(c.second)), c.second_offset);
  }
}

TEST(TimeZoneTest, ZoneWithoutDaylightSaving) {
  TimeZone tokyo = MustLoad("Asia/Tokyo");
  EXPECT_EQ(tokyo.OffsetAt(At("2026-01-01T00:00:00Z")), 9 * 3600);
  EXPECT_EQ(tokyo.OffsetAt(At("2026-07-01T00:00:00Z")), 9 * 3600);
  EXPECT_EQ(tokyo.OffsetAt(At("2200-07-01T00:00:00Z")), 9 * 3600);
  EXPECT_FALSE(tokyo.NextTransition(At("2026-01-01T00:00:00Z")).has_value());
}

TEST(TimeZoneTest, InstantsAtSkippedAndRepeatedLocalTimes) {
  TimeZone ams = MustLoad("Europe/Amsterdam");
  // Wall clock readings written as if UTC: 02:30 on the change days.
  EXPECT_TRUE(ams.InstantsAt(At("2026-03-29T02:30:00Z")).empty());
  EXPECT_EQ(ams.InstantsAt(At("2026-10-25T02:30:00Z")),
            (std::vector<int64_t>{At("2026-10-25T00:30:00Z"), At("2026-10-25T01:30:00Z")}));
  EXPECT_EQ(ams.InstantsAt(At("2026-10-25T03:00:00Z")),
            std::vector<int64_t>{At("2026-10-25T02:00:00Z")});
  TimeZone ny = MustLoad("America/New_York");
  EXPECT_TRUE(ny.InstantsAt(At("2026-03-08T02:00:00Z")).empty());
  EXPECT_EQ(ny.InstantsAt(At("2026-03-08T03:00:00Z")),
            std::vector<int64_t>{At("2026-03-08T07:00:00Z")});
  EXPECT_EQ(ny.InstantsAt(At("2026-11-01T01:59:00Z")),
            (std::vector<int64_t>{At("2026-11-01T05:59:00Z"), At("2026-11-01T06:59:00Z")}));
}

TEST(TimeZoneTest, InstantsAtInvertsOffsetAt) {
  std::mt19937_64 rng(7);
  for (const char* name : {"Europe/Amsterdam", "America/New_York", "Australia/Sydney"}) {
    TimeZone z = MustLoad(name);
    for (int i = 0; i < 2000; ++i) {
      int64_t t = At("2020-01-01T00:00:00Z") + static_cast<int64_t>(rng() % (40LL * 365 * 86400));
      std::vector<int64_t> all = z.InstantsAt(t + z.OffsetAt(t));
      EXPECT_NE(std::find(all.begin(), all.end(), t), all.end()) << name << " " << t;
    }
  }
}

TEST(TimeZoneTest, RejectsBadZoneNames) {
  for (const char* name :
       {"", "../etc/passwd", "Europe/../../etc/passwd", "/etc/localtime", "Europe//Amsterdam",
        "Europe/Amsterdam/", "Europe/Am sterdam", "./UTC", "Europe\\Amsterdam"}) {
    Result<TimeZone> z = TimeZone::Load(name);
    ASSERT_FALSE(z.ok()) << name;
    EXPECT_EQ(z.status().code(), Code::kInvalidArgument) << name;
    EXPECT_NE(z.status().message().find("invalid time zone name"), std::string::npos);
  }
}

TEST(TimeZoneTest, UnknownZoneIsNotFound) {
  for (const char* name : {"Mars/Olympus_Mons", "Europe"}) {
    Result<TimeZone> z = TimeZone::Load(name);
    ASSERT_FALSE(z.ok()) << name;
    EXPECT_EQ(z.status().code(), Code::kNotFound);
    EXPECT_NE(z.status().message().find(std::string("unknown time zone \"") + name + "\""),
              std::string::npos)
        << z.status().message();
  }
}

class ZoneinfoDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("bao-tz-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_ / "Test");
    ::setenv("ZONEINFO", dir_.c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("ZONEINFO");
    std::filesystem::remove_all(dir_);
  }
  void Write(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ / name, std::ios::binary) << bytes;
  }
  std::filesystem::path dir_;
};

TEST_F(ZoneinfoDirTest, ZoneinfoEnvironmentOverridesDirectory) {
  Tzif tz;
  tz.offsets = {3600, 7200};
  tz.transitions = {{1000000, 1}};
  tz.footer = "<+02>-2";
  Write("Test/Zone", tz.Bytes());
  TimeZone z = MustLoad("Test/Zone");
  EXPECT_EQ(z.OffsetAt(999999), 3600);
  EXPECT_EQ(z.OffsetAt(1000000), 7200);
  EXPECT_EQ(z.OffsetAt(At("2100-01-01T00:00:00Z")), 7200);
  EXPECT_FALSE(TimeZone::Load("Europe/Amsterdam").ok());  // not in the override directory
  Write("Test/Junk", "not a zone file");
  Result<TimeZone> junk = TimeZone::Load("Test/Junk");
  ASSERT_FALSE(junk.ok());
  EXPECT_EQ(junk.status().code(), Code::kInvalidArgument);
  EXPECT_NE(junk.status().message().find("not a valid TZif"), std::string::npos);
}

TEST(TimeZoneTest, MissingDatabaseSaysSo) {
  ::setenv("ZONEINFO", "/nonexistent-zoneinfo-dir", 1);
  Result<TimeZone> z = TimeZone::Load("Europe/Amsterdam");
  ::unsetenv("ZONEINFO");
  ASSERT_FALSE(z.ok());
  EXPECT_NE(z.status().message().find("tzdata"), std::string::npos) << z.status().message();
}

TEST(TimeZoneTest, ParsesVersion1Files) {
  Tzif tz;
  tz.version = '\0';
  tz.offsets = {0, -18000};
  tz.transitions = {{-100, 1}, {500, 0}};
  Result<TimeZone> z = TimeZone::FromTzif("V1", tz.Bytes());
  ASSERT_TRUE(z.ok()) << z.status().ToString();
  EXPECT_EQ(z->OffsetAt(-101), 0);
  EXPECT_EQ(z->OffsetAt(-100), -18000);
  EXPECT_EQ(z->OffsetAt(499), -18000);
  EXPECT_EQ(z->OffsetAt(At("2100-01-01T00:00:00Z")), 0);
  EXPECT_EQ(z->NextTransition(-1000), -100);
  EXPECT_EQ(z->NextTransition(-100), 500);
  EXPECT_FALSE(z->NextTransition(500).has_value());
}

TEST(TimeZoneTest, FooterOnlyRules) {
  struct Case {
    const char* footer;
    const char* when;
    int64_t offset;
  } cases[] = {
      {"<+0330>-3:30", "2040-06-01T00:00:00Z", 12600},
      {"EST5EDT", "2040-07-01T00:00:00Z", -14400},  // no rule given: US default
      {"EST5EDT", "2040-12-01T00:00:00Z", -18000},
      {"AEST-10AEDT,M10.1.0,M4.1.0/3", "2040-01-15T00:00:00Z", 39600},
      {"AEST-10AEDT,M10.1.0,M4.1.0/3", "2040-07-15T00:00:00Z", 36000},
      {"XXX3XXY,J60/0,J61/0", "2040-03-01T04:00:00Z", -7200},  // J counts no Feb 29
      {"XXX3XXY,J60/0,J61/0", "2040-02-29T04:00:00Z", -10800},
      {"XXX3XXY,59/0,60/0", "2040-02-29T04:00:00Z", -7200},          // zero-based counts it
      {"<-04>4<-03>,J1/0,J365/25", "2040-06-01T00:00:00Z", -10800},  // always daylight time
      {"<-04>4<-03>,J1/0,J365/25", "2040-01-01T02:00:00Z", -10800},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.footer);
    Tzif tz;
    tz.footer = c.footer;
    Result<TimeZone> z = TimeZone::FromTzif("Footer", tz.Bytes());
    ASSERT_TRUE(z.ok()) << z.status().ToString();
    EXPECT_EQ(z->OffsetAt(At(c.when)), c.offset);
  }
  Tzif permanent;
  permanent.footer = "<-04>4<-03>,J1/0,J365/25";
  Result<TimeZone> z = TimeZone::FromTzif("Permanent", permanent.Bytes());
  ASSERT_TRUE(z.ok());
  EXPECT_FALSE(z->NextTransition(At("2040-06-01T00:00:00Z")).has_value());
}

// Found by fuzz/tzif.cc: a footer rule that disagrees with the last transition's offset made
// the hand-over from the table to the rule an unreported change of offset (InstantsAt then
// missed instants). RFC 8536 3.3 requires them to agree.
TEST(TimeZoneTest, RejectsAFooterThatDisagreesWithTheLastTransition) {
  Tzif tz;
  tz.offsets = {0, -18000};
  tz.transitions = {{At("2007-11-04T06:00:00Z"), 1}};
  tz.footer = "EST5EDT,M3.2.0,M11.1.0";
  ASSERT_TRUE(TimeZone::FromTzif("agrees", tz.Bytes()).ok());
  tz.footer = "EST6";  // -6 h where the last transition says -5 h
  Result<TimeZone> z = TimeZone::FromTzif("disagrees", tz.Bytes());
  ASSERT_FALSE(z.ok());
  EXPECT_NE(z.status().message().find("disagrees with the last transition"), std::string::npos)
      << z.status().message();
}

TEST(TimeZoneTest, RejectsMalformedTzif) {
  Tzif good;
  good.offsets = {0, 3600};
  good.transitions = {{10, 0}, {20, 1}};  // ends in CET, as the footer has it in January
  good.footer = "CET-1CEST,M3.5.0,M10.5.0/3";
  ASSERT_TRUE(TimeZone::FromTzif("good", good.Bytes()).ok());
  std::string bytes = good.Bytes();

  Tzif leap = good;
  leap.leapcnt = 1;
  Tzif bad_index = good;
  bad_index.transitions = {{10, 5}};
  Tzif unordered = good;
  unordered.transitions = {{20, 1}, {10, 0}};
  Tzif bad_footer = good;
  bad_footer.footer = "CET-1CEST,M13.5.0,M10.5.0/3";
  Tzif bad_offset = good;
  bad_offset.offsets = {0, 100000};

  struct Case {
    std::string data;
    const char* expect;
  } cases[] = {
      {"", "TZif header"},
      {"TZjf" + bytes.substr(4), "TZif header"},
      {bytes.substr(0, 60), "truncated"},
      {bytes.substr(0, bytes.size() - 1), "footer"},
      {leap.Bytes(), "leap seconds"},
      {bad_index.Bytes(), "unknown local time type"},
      {unordered.Bytes(), "not ascending"},
      {bad_footer.Bytes(), "POSIX TZ rule"},
      {bad_offset.Bytes(), "offset out of range"},
  };
  for (const Case& c : cases) {
    Result<TimeZone> z = TimeZone::FromTzif("Bad/Zone", c.data);
    ASSERT_FALSE(z.ok()) << c.expect;
    EXPECT_EQ(z.status().code(), Code::kInvalidArgument);
    EXPECT_NE(z.status().message().find("time zone \"Bad/Zone\""), std::string::npos);
    EXPECT_NE(z.status().message().find(c.expect), std::string::npos) << z.status().message();
  }
}

}  // namespace
}  // namespace bao
