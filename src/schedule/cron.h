// Cron schedules: the classic five-field syntax (Vixie cron) evaluated in UTC or in an IANA
// time zone. Shared by the standalone scheduler and the Kubernetes operator. The accepted
// syntax and the daylight-saving rules are documented in docs/cron.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "schedule/tz.h"

namespace bao {

// An immutable, parsed cron schedule. Copyable; all methods are const and thread-safe.
class CronSchedule {
 public:
  // Returned by Next() when no run exists within the search horizon (about 50 years). Parse
  // rejects expressions that can never fire, so this only happens at the end of time.
  static constexpr TimePoint kNever = TimePoint::max();

  // Parses "[CRON_TZ=<zone>|TZ=<zone>] <minute> <hour> <day-of-month> <month> <day-of-week>"
  // or "[CRON_TZ=<zone>|TZ=<zone>] @macro". Without a zone the schedule runs in UTC.
  // kInvalidArgument with a message naming the expression and the offending field, e.g.
  //   cron expression "61 * * * *": minute field "61": value 61 out of range 0-59
  // also for an unknown zone and for expressions that can never fire ("0 0 30 2 *").
  // Zones are read from the system zone database when parsing (see TimeZone::Load).
  static Result<CronSchedule> Parse(std::string_view expr);

  // The first run strictly after `after` (run times are whole local minutes), or kNever.
  TimePoint Next(TimePoint after) const;

  // Up to `n` consecutive runs strictly after `after`, ascending (fewer only at kNever).
  std::vector<TimePoint> NextN(TimePoint after, int n) const;

  // The most recent run at or before `at_or_before`, or nullopt when there was none within
  // the search horizon (about 50 years back).
  std::optional<TimePoint> Previous(TimePoint at_or_before) const;

  // The expression with white space normalized, zone prefix included ("CRON_TZ=Europe/Paris
  // 30 2 * * *", "@daily").
  std::string ToString() const { return text_; }

  // The zone the schedule is evaluated in (UTC by default).
  const TimeZone& zone() const { return zone_; }

 private:
  CronSchedule() : zone_(TimeZone::Utc()) {}

  bool DayMatches(int64_t y, unsigned m, unsigned d) const;
  std::optional<int64_t> NextLocal(int64_t from, int64_t to) const;
  std::optional<int64_t> PrevLocal(int64_t to, int64_t from) const;
  bool Allowed(int64_t local, int64_t instant) const;

  std::string text_;
  TimeZone zone_;
  uint64_t minutes_ = 0;    // bit i: minute i
  uint32_t hours_ = 0;      // bit i: hour i
  uint32_t doms_ = 0;       // bit i: day of month i (1-31)
  uint32_t months_ = 0;     // bit i: month i (1-12)
  uint32_t dows_ = 0;       // bit i: weekday i (0 = Sunday)
  bool dom_star_ = false;   // the day-of-month field starts with '*'
  bool dow_star_ = false;   // the day-of-week field starts with '*'
  bool hour_star_ = false;  // the hour field starts with '*'
};

}  // namespace bao
