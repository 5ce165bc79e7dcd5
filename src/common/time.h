// Wall-clock time: an injectable Clock, RFC 3339 formatting and parsing, and Go-style
// durations ("168h", "1h30m", "45s") plus days ("7d").
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <string_view>

#include "common/status.h"

namespace bao {

using TimePoint = std::chrono::system_clock::time_point;
using Duration = std::chrono::milliseconds;

// Source of the current time. Production code uses SystemClock(); tests pass a FakeClock.
// Implementations must be thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
};

// The real clock. Never null, lives forever.
const Clock& SystemClock();

// A clock that moves only when told to, for tests and simulations. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start) : now_(start) {}
  TimePoint Now() const override;
  void Set(TimePoint t);
  void Advance(Duration d);

 private:
  mutable std::mutex mu_;
  TimePoint now_;
};

// "2025-01-15T03:00:00Z" (UTC), with ".123" before the Z when `millis` is true.
std::string FormatRfc3339(TimePoint t, bool millis = false);

// Parses RFC 3339 with "Z" or a numeric offset and optional fractional seconds; also accepts
// a bare date "2025-01-15" (midnight UTC). Anything else is kInvalidArgument naming the text.
Result<TimePoint> ParseRfc3339(std::string_view text);

// Parses a Go duration ("300ms", "90m", "1h30m", "168h", "1.5h") or days ("7d", "2d12h").
// Negative or empty durations are kInvalidArgument.
Result<Duration> ParseDuration(std::string_view text);

// Formats like Go's time.Duration.String() for whole seconds and above: "45s", "1m30s",
// "2h0m5s"; below one second "850ms".
std::string FormatDuration(Duration d);

// Days since 1970-01-01 for a civil date, and back (proleptic Gregorian).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d);
void CivilFromDays(int64_t days, int64_t* y, unsigned* m, unsigned* d);

}  // namespace bao
