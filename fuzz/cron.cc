// Cron schedules (schedule/cron.h), zones from the system zone database.
//
// Input: 4 bytes choosing a reference time (2000 to 2100), then the expression.
// Properties: an accepted schedule prints an expression that parses to the same text and the
// same runs; Next() is strictly later and a run (Previous() of it is itself); Previous() is not
// later and the next run after it is past the reference time; NextN() ascends.
#include "schedule/cron.h"

#include <cstdint>
#include <cstring>
#include <string_view>

#include "check.h"

using bao::CronSchedule;
using bao::TimePoint;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  uint32_t pick;
  std::memcpy(&pick, data, 4);
  std::string_view expr(reinterpret_cast<const char*>(data + 4), size - 4);
  // 2000-01-01T00:00:00Z plus up to about 136 years, in seconds.
  const TimePoint at = TimePoint(std::chrono::seconds(946684800LL + pick));

  bao::Result<CronSchedule> parsed = CronSchedule::Parse(expr);
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == bao::Code::kInvalidArgument);
    return 0;
  }
  const CronSchedule& s = *parsed;
  bao::Result<CronSchedule> again = CronSchedule::Parse(s.ToString());
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->ToString() == s.ToString());
  FUZZ_CHECK(again->zone().name() == s.zone().name());

  TimePoint next = s.Next(at);
  FUZZ_CHECK(next > at);
  FUZZ_CHECK(again->Next(at) == next);
  if (next != CronSchedule::kNever) {
    std::optional<TimePoint> self = s.Previous(next);
    FUZZ_CHECK(self.has_value() && *self == next);
  }
  std::optional<TimePoint> prev = s.Previous(at);
  if (prev) {
    FUZZ_CHECK(*prev <= at);
    FUZZ_CHECK(s.Next(*prev) > at);
  }
  std::vector<TimePoint> runs = s.NextN(at, 4);
  FUZZ_CHECK(!runs.empty() && runs.size() <= 4);
  FUZZ_CHECK(runs[0] == next);
  for (size_t i = 1; i < runs.size(); ++i) FUZZ_CHECK(runs[i] > runs[i - 1]);
  return 0;
}
