#include "common/time.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace bao {
namespace {

class RealClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::system_clock::now(); }
};

bool ParseDigits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

}  // namespace

const Clock& SystemClock() {
  static const RealClock clock;
  return clock;
}

TimePoint ManualClock::Now() const {
  std::lock_guard<std::mutex> lock(mu_);
  return now_;
}

void ManualClock::Set(TimePoint t) {
  std::lock_guard<std::mutex> lock(mu_);
  now_ = t;
}

void ManualClock::Advance(Duration d) {
  std::lock_guard<std::mutex> lock(mu_);
  now_ += d;
}

// Howard Hinnant's civil-date algorithms.
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

std::string FormatRfc3339(TimePoint t, bool millis) {
  using namespace std::chrono;
  int64_t ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
  int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
  int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
  int64_t rem = secs - days * 86400;
  int64_t y;
  unsigned mo, d;
  CivilFromDays(days, &y, &mo, &d);
  char buf[48];
  if (millis) {
    std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ",
                  static_cast<long long>(y), mo, d, static_cast<int>(rem / 3600),
                  static_cast<int>(rem / 60 % 60), static_cast<int>(rem % 60),
                  static_cast<int>(ms - secs * 1000));
  } else {
    std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02d:%02d:%02dZ", static_cast<long long>(y),
                  mo, d, static_cast<int>(rem / 3600), static_cast<int>(rem / 60 % 60),
                  static_cast<int>(rem % 60));
  }
  return buf;
}

Result<TimePoint> ParseRfc3339(std::string_view s) {
  auto bad = [&]() {
    return InvalidArgument("\"" + std::string(s) +
                           "\" is not an RFC 3339 time (expected e.g. 2025-01-15T03:00:00Z)");
  };
  int y, mo, d, h = 0, mi = 0, sec = 0;
  if (!ParseDigits(s, 0, 4, &y) || s.size() < 10 || s[4] != '-' || !ParseDigits(s, 5, 2, &mo) ||
      s[7] != '-' || !ParseDigits(s, 8, 2, &d)) {
    return bad();
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return bad();
  int64_t offset_secs = 0;
  int64_t frac_ms = 0;
  if (s.size() > 10) {
    if ((s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !ParseDigits(s, 11, 2, &h) ||
        s.size() < 19 || s[13] != ':' || !ParseDigits(s, 14, 2, &mi) || s[16] != ':' ||
        !ParseDigits(s, 17, 2, &sec)) {
      return bad();
    }
    if (h > 23 || mi > 59 || sec > 60) return bad();
    size_t pos = 19;
    if (pos < s.size() && s[pos] == '.') {
      ++pos;
      int64_t scale = 100;
      size_t start = pos;
      while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
        frac_ms += (s[pos] - '0') * scale;
        scale /= 10;
        ++pos;
      }
      if (pos == start) return bad();
    }
    if (pos >= s.size()) return bad();
    if (s[pos] == 'Z' || s[pos] == 'z') {
      ++pos;
    } else if (s[pos] == '+' || s[pos] == '-') {
      int oh, om;
      if (!ParseDigits(s, pos + 1, 2, &oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
          !ParseDigits(s, pos + 4, 2, &om)) {
        return bad();
      }
      offset_secs = (oh * 3600 + om * 60) * (s[pos] == '+' ? 1 : -1);
      pos += 6;
    } else {
      return bad();
    }
    if (pos != s.size()) return bad();
  }
  // A TimePoint counts nanoseconds in 64 bits: 1677-09-21 to 2262-04-11.
  auto out_of_range = [&] {
    return InvalidArgument("\"" + std::string(s) + "\" is outside the supported range (years " +
                           std::to_string(kMinYear) + " to " + std::to_string(kMaxYear) + ")");
  };
  if (y < kMinYear || y > kMaxYear) return out_of_range();
  int64_t days = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_secs;
  // The instant too, in UTC: an offset or a leap second can carry it past the first or last
  // year, and FormatRfc3339 would print a time that does not parse back.
  if (secs < DaysFromCivil(kMinYear, 1, 1) * 86400 ||
      secs >= DaysFromCivil(kMaxYear + 1, 1, 1) * 86400) {
    return out_of_range();
  }
  return TimePoint(std::chrono::milliseconds(secs * 1000 + frac_ms));
}

namespace {
std::string FormatDays(Duration d) {
  return std::to_string(d.count() / 86400000) + "d";
}
}  // namespace

Result<Duration> ParseDuration(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("invalid duration \"" + std::string(text) + "\": " + why +
                           " (use forms like 90m, 1h30m, 168h or 7d)");
  };
  if (text.empty()) return bad("empty");
  if (text == "0") return Duration(0);
  double total_ms = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t start = pos;
    while (pos < text.size() &&
           (std::isdigit(static_cast<unsigned char>(text[pos])) || text[pos] == '.')) {
      ++pos;
    }
    if (pos == start)
      return bad("expected a number at \"" + std::string(text.substr(start)) + "\"");
    std::string number(text.substr(start, pos - start));
    if (number.find('.') != number.rfind('.') || number == ".") return bad("malformed number");
    size_t unit_start = pos;
    while (pos < text.size() && std::isalpha(static_cast<unsigned char>(text[pos]))) ++pos;
    std::string_view unit = text.substr(unit_start, pos - unit_start);
    double scale;
    if (unit == "ms")
      scale = 1;
    else if (unit == "s")
      scale = 1000;
    else if (unit == "m")
      scale = 60e3;
    else if (unit == "h")
      scale = 3600e3;
    else if (unit == "d")
      scale = 86400e3;
    else if (unit.empty())
      return bad("missing unit after " + number);
    else
      return bad("unknown unit \"" + std::string(unit) + "\"");
    double value = 0;
    auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
    if (ec != std::errc() || end != number.data() + number.size()) return bad("number too large");
    total_ms += value * scale;
    if (total_ms > static_cast<double>(kMaxDuration.count())) {
      return bad("longer than the longest supported duration, " + FormatDays(kMaxDuration));
    }
  }
  return Duration(static_cast<int64_t>(std::llround(total_ms)));
}

std::string FormatDuration(Duration d) {
  int64_t ms = d.count();
  if (ms < 1000) return std::to_string(ms) + "ms";
  int64_t secs = ms / 1000;
  int64_t h = secs / 3600, m = secs / 60 % 60, s = secs % 60;
  std::string out;
  if (h > 0) out += std::to_string(h) + "h";
  if (h > 0 || m > 0) out += std::to_string(m) + "m";
  out += std::to_string(s) + "s";
  return out;
}

}  // namespace bao
