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

// The years a TimePoint (64-bit nanoseconds since 1970) holds whole.
constexpr int kMinYear = 1678;
constexpr int kMaxYear = 2261;
// The longest duration accepted: 100 years (365-day), so that now minus it stays a TimePoint.
constexpr Duration kMaxDuration{36500LL * 86400 * 1000};

// Parses RFC 3339 with "Z" or a numeric offset and optional fractional seconds; also accepts
// a bare date "2025-01-15" (midnight UTC). Anything else, and years outside kMinYear..kMaxYear
// (as written, and in UTC), is kInvalidArgument naming the text.
Result<TimePoint> ParseRfc3339(std::string_view text);

// Parses a Go duration ("300ms", "90m", "1h30m", "168h", "1.5h") or days ("7d", "2d12h").
// Negative, empty, malformed durations, and ones longer than kMaxDuration, are
// kInvalidArgument; no input makes it throw.
Result<Duration> ParseDuration(std::string_view text);

// Formats like Go's time.Duration.String() for whole seconds and above: "45s", "1m30s",
// "2h0m5s"; below one second "850ms".
std::string FormatDuration(Duration d);

// Days since 1970-01-01 for a civil date, and back (proleptic Gregorian).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d);
void CivilFromDays(int64_t days, int64_t* y, unsigned* m, unsigned* d);

}  // namespace bao
