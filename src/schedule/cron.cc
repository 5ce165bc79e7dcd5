#include "schedule/cron.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <chrono>

#include "common/numbers.h"

namespace bao {
namespace {

constexpr int64_t kDay = 86400;
constexpr int64_t kHorizon = 50 * 366 * kDay;
constexpr int64_t kRepeatWindow = 27 * 3600;  // a repeated local time lies this close to a change

int64_t FloorDiv(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

unsigned DaysInMonth(int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return kDays[m - 1] + ((m == 2 && leap) ? 1 : 0);
}

constexpr const char* kMonthNames[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                       "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr const char* kMonthFull[] = {"January",   "February", "March",    "April",
                                      "May",       "June",     "July",     "August",
                                      "September", "October",  "November", "December"};
constexpr const char* kDayNames[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

struct FieldSpec {
  const char* name;
  int min, max;
  const char* const* names;  // names for min.. (nullptr when the field has none)
  int name_count;
  const char* name_hint;
};

constexpr FieldSpec kFields[] = {
    {"minute", 0, 59, nullptr, 0, nullptr},         {"hour", 0, 23, nullptr, 0, nullptr},
    {"day-of-month", 1, 31, nullptr, 0, nullptr},   {"month", 1, 12, kMonthNames, 12, "JAN-DEC"},
    {"day-of-week", 0, 7, kDayNames, 7, "SUN-SAT"},
};

Result<int> ParseValue(std::string_view tok, const FieldSpec& spec) {
  if (tok.empty()) return InvalidArgument("missing value");
  if (std::isdigit(static_cast<unsigned char>(tok.front()))) {
    int64_t v = 0;
    for (char c : tok) {
      if (!std::isdigit(static_cast<unsigned char>(c))) {
        return InvalidArgument("\"" + std::string(tok) + "\" is not a number");
      }
      v = std::min<int64_t>(v * 10 + (c - '0'), 1000000);
    }
    if (v < spec.min || v > spec.max) {
      return InvalidArgument("value " + std::string(tok) + " out of range " +
                             std::to_string(spec.min) + "-" + std::to_string(spec.max));
    }
    return static_cast<int>(v);
  }
  if (spec.names != nullptr && tok.size() == 3) {
    std::string upper;
    for (char c : tok) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    for (int i = 0; i < spec.name_count; ++i) {
      if (upper == spec.names[i]) return spec.min + i;
    }
  }
  if (spec.names != nullptr) {
    return InvalidArgument("unknown name \"" + std::string(tok) + "\" (expected " + spec.name_hint +
                           " or a number)");
  }
  return InvalidArgument("\"" + std::string(tok) + "\" is not a number");
}

// Parses one field into a bit set (bit v for value v). Errors are phrased without the field.
Status ParseField(std::string_view text, const FieldSpec& spec, uint64_t* bits) {
  *bits = 0;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string_view item = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (item.empty()) return InvalidArgument("empty item in list");
    std::string_view range = item;
    int step = 1;
    size_t slash = item.find('/');
    if (slash != std::string_view::npos) {
      range = item.substr(0, slash);
      std::string_view step_text = item.substr(slash + 1);
      int max_step = spec.max;
      std::optional<int> parsed = ParseInteger<int>(step_text, 1, max_step);
      if (!parsed) {
        return InvalidArgument("bad step \"" + std::string(step_text) + "\" in \"" +
                               std::string(item) + "\" (expected a number from 1 to " +
                               std::to_string(max_step) + ")");
      }
      step = *parsed;
    }
    int lo, hi;
    if (range == "*") {
      lo = spec.min;
      hi = spec.max;
    } else {
      size_t dash = range.find('-');
      auto lo_r = ParseValue(range.substr(0, dash), spec);
      if (!lo_r.ok()) return lo_r.status();
      lo = *lo_r;
      if (dash != std::string_view::npos) {
        auto hi_r = ParseValue(range.substr(dash + 1), spec);
        if (!hi_r.ok()) return hi_r.status();
        hi = *hi_r;
        if (spec.names == kDayNames && hi == 0 && lo > 0) hi = 7;  // "FRI-SUN"
        if (lo > hi) {
          return InvalidArgument("range \"" + std::string(range) +
                                 "\" is backwards (start is greater than end)");
        }
      } else {
        hi = slash != std::string_view::npos ? spec.max : lo;  // "5/15" means 5-max/15
      }
    }
    for (int v = lo; v <= hi; v += step) *bits |= uint64_t{1} << v;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return Status::Ok();
}

int NextBit(uint64_t bits, int from, int max) {
  for (int i = from; i <= max; ++i) {
    if (bits >> i & 1) return i;
  }
  return -1;
}

int PrevBit(uint64_t bits, int from) {
  for (int i = from; i >= 0; --i) {
    if (bits >> i & 1) return i;
  }
  return -1;
}

int64_t ToSeconds(TimePoint t) {
  return std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
}

TimePoint FromSeconds(int64_t s) {
  return TimePoint(std::chrono::seconds(s));
}

struct Cursor {
  int64_t y;
  unsigned mo, d;
  int h, mi;

  explicit Cursor(int64_t local) {
    int64_t days = FloorDiv(local, kDay);
    CivilFromDays(days, &y, &mo, &d);
    int64_t sod = local - days * kDay;
    h = static_cast<int>(sod / 3600);
    mi = static_cast<int>(sod % 3600 / 60);
  }
  int64_t Seconds() const { return DaysFromCivil(y, mo, d) * kDay + h * 3600 + mi * 60; }
  void NextMonth() {
    if (++mo > 12) {
      mo = 1;
      ++y;
    }
    d = 1;
    h = 0;
    mi = 0;
  }
  void NextDay() {
    if (++d > DaysInMonth(y, mo)) {
      NextMonth();
    }
    h = 0;
    mi = 0;
  }
  void PrevMonth() {
    if (--mo < 1) {
      mo = 12;
      --y;
    }
    d = DaysInMonth(y, mo);
    h = 23;
    mi = 59;
  }
  void PrevDay() {
    if (--d < 1) {
      PrevMonth();
    }
    h = 23;
    mi = 59;
  }
};

}  // namespace

Result<CronSchedule> CronSchedule::Parse(std::string_view expr) {
  std::vector<std::string> tokens;
  {
    size_t i = 0;
    while (i < expr.size()) {
      while (i < expr.size() && std::isspace(static_cast<unsigned char>(expr[i]))) ++i;
      size_t begin = i;
      while (i < expr.size() && !std::isspace(static_cast<unsigned char>(expr[i]))) ++i;
      if (i > begin) tokens.emplace_back(expr.substr(begin, i - begin));
    }
  }
  std::string text;
  for (const std::string& t : tokens) text += (text.empty() ? "" : " ") + t;
  std::string prefix = "cron expression \"" + text + "\": ";

  CronSchedule s;
  s.text_ = text;
  size_t first = 0;
  if (!tokens.empty()) {
    std::string_view tz;
    if (tokens[0].rfind("CRON_TZ=", 0) == 0) tz = std::string_view(tokens[0]).substr(8);
    if (tokens[0].rfind("TZ=", 0) == 0) tz = std::string_view(tokens[0]).substr(3);
    if (tz.data() != nullptr) {
      if (tz.empty()) return InvalidArgument(prefix + "empty time zone name after \"=\"");
      Result<TimeZone> zone = TimeZone::Load(tz);
      if (!zone.ok()) return InvalidArgument(prefix + zone.status().message());
      s.zone_ = *zone;
      first = 1;
    }
  }
  std::vector<std::string> fields(tokens.begin() + static_cast<std::ptrdiff_t>(first),
                                  tokens.end());
  if (fields.size() == 1 && !fields[0].empty() && fields[0][0] == '@') {
    std::string macro;
    for (char c : fields[0])
      macro += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const char* expansion = nullptr;
    if (macro == "@yearly" || macro == "@annually") expansion = "0 0 1 1 *";
    if (macro == "@monthly") expansion = "0 0 1 * *";
    if (macro == "@weekly") expansion = "0 0 * * 0";
    if (macro == "@daily" || macro == "@midnight") expansion = "0 0 * * *";
    if (macro == "@hourly") expansion = "0 * * * *";
    if (expansion == nullptr) {
      return InvalidArgument(prefix + "unknown macro \"" + fields[0] +
                             "\" (expected @yearly, @annually, @monthly, @weekly, @daily, "
                             "@midnight or @hourly)");
    }
    fields.clear();
    std::string_view rest = expansion;
    while (!rest.empty()) {
      size_t sp = rest.find(' ');
      fields.emplace_back(rest.substr(0, sp));
      rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
    }
  }
  if (fields.size() != 5) {
    return InvalidArgument(prefix + "expected 5 fields (minute hour day-of-month month " +
                           "day-of-week) or a macro such as @daily, got " +
                           std::to_string(fields.size()));
  }
  std::array<uint64_t, 5> bits;
  for (size_t i = 0; i < 5; ++i) {
    Status st = ParseField(fields[i], kFields[i], &bits[i]);
    if (!st.ok()) {
      return InvalidArgument(prefix + kFields[i].name + " field \"" + fields[i] +
                             "\": " + st.message());
    }
  }
  s.minutes_ = bits[0];
  s.hours_ = static_cast<uint32_t>(bits[1]);
  s.doms_ = static_cast<uint32_t>(bits[2]);
  s.months_ = static_cast<uint32_t>(bits[3]);
  s.dows_ = static_cast<uint32_t>((bits[4] | (bits[4] >> 7)) & 0x7f);  // 7 is Sunday too
  s.hour_star_ = fields[1][0] == '*';
  s.dom_star_ = fields[2][0] == '*';
  s.dow_star_ = fields[4][0] == '*';

  // With both day fields restricted either may match, so any month has a matching day. Else
  // the day of month must exist in some selected month (every existing date falls on every
  // weekday in some year, so the day of week cannot make it impossible on its own).
  if (s.dom_star_ || s.dow_star_) {
    bool possible = false;
    for (unsigned m = 1; m <= 12; ++m) {
      if (!(s.months_ >> m & 1)) continue;
      unsigned max_days = m == 2 ? 29 : DaysInMonth(2001, m);
      for (unsigned d = 1; d <= max_days; ++d) possible |= (s.doms_ >> d & 1) != 0;
    }
    if (!possible) {
      std::string why = prefix + "never fires: day-of-month field \"" + fields[2] +
                        "\" selects no day that exists in month field \"" + fields[3] + "\"";
      if (std::popcount(s.months_) == 1) {
        unsigned m = static_cast<unsigned>(std::countr_zero(s.months_));
        why += std::string(" (") + kMonthFull[m - 1] + " has at most " +
               std::to_string(m == 2 ? 29 : DaysInMonth(2001, m)) + " days)";
      }
      return InvalidArgument(why);
    }
  }
  return s;
}

bool CronSchedule::DayMatches(int64_t y, unsigned m, unsigned d) const {
  int64_t days = DaysFromCivil(y, m, d);
  int wday = static_cast<int>(((days % 7) + 7 + 4) % 7);  // 1970-01-01 was a Thursday
  bool dom = (doms_ >> d & 1) != 0;
  bool dow = (dows_ >> wday & 1) != 0;
  return (dom_star_ || dow_star_) ? (dom && dow) : (dom || dow);
}

// Smallest whole-minute local time in [from, to] matching the fields.
std::optional<int64_t> CronSchedule::NextLocal(int64_t from, int64_t to) const {
  Cursor c(FloorDiv(from + 59, 60) * 60);
  while (true) {
    if (c.Seconds() > to) return std::nullopt;
    if (!(months_ >> c.mo & 1)) {
      c.NextMonth();
      continue;
    }
    if (!DayMatches(c.y, c.mo, c.d)) {
      c.NextDay();
      continue;
    }
    int h = NextBit(hours_, c.h, 23);
    if (h < 0) {
      c.NextDay();
      continue;
    }
    if (h != c.h) {
      c.h = h;
      c.mi = 0;
    }
    int mi = NextBit(minutes_, c.mi, 59);
    if (mi < 0) {
      if (++c.h > 23) c.NextDay();
      c.mi = 0;
      continue;
    }
    c.mi = mi;
    if (c.Seconds() > to) return std::nullopt;
    return c.Seconds();
  }
}

// Largest whole-minute local time in [from, to] matching the fields.
std::optional<int64_t> CronSchedule::PrevLocal(int64_t to, int64_t from) const {
  Cursor c(FloorDiv(to, 60) * 60);
  while (true) {
    if (c.Seconds() < from) return std::nullopt;
    if (!(months_ >> c.mo & 1)) {
      c.PrevMonth();
      continue;
    }
    if (!DayMatches(c.y, c.mo, c.d)) {
      c.PrevDay();
      continue;
    }
    int h = PrevBit(hours_, c.h);
    if (h < 0) {
      c.PrevDay();
      continue;
    }
    if (h != c.h) {
      c.h = h;
      c.mi = 59;
    }
    int mi = PrevBit(minutes_, c.mi);
    if (mi < 0) {
      if (--c.h < 0) c.PrevDay();
      c.mi = 59;
      continue;
    }
    c.mi = mi;
    if (c.Seconds() < from) return std::nullopt;
    return c.Seconds();
  }
}

// A wall-clock time repeated by a fall-back change runs only at its first occurrence, unless
// the hour field starts with '*' (then it runs on every real hour, as classic cron does).
bool CronSchedule::Allowed(int64_t local, int64_t instant) const {
  if (hour_star_) return true;
  std::optional<int64_t> change = zone_.PrevTransition(instant);
  if (!change || instant - *change > kRepeatWindow) return true;
  std::vector<int64_t> all = zone_.InstantsAt(local);
  return all.empty() || all.front() == instant;
}

TimePoint CronSchedule::Next(TimePoint after) const {
  if (after >= kNever - std::chrono::seconds(2 * kHorizon)) return kNever;
  int64_t t = ToSeconds(after) + 1;  // earliest acceptable instant
  int64_t limit = t + kHorizon;
  while (t <= limit) {
    int64_t off = zone_.OffsetAt(t);
    std::optional<int64_t> end = zone_.NextTransition(t);  // this offset holds until *end
    int64_t last = std::min(end ? *end - 1 : limit, limit);
    std::optional<int64_t> local = NextLocal(t + off, last + off);
    while (local) {
      if (Allowed(*local, *local - off)) return FromSeconds(*local - off);
      local = NextLocal(*local + 60, last + off);
    }
    if (!end) break;
    t = *end;
  }
  return kNever;
}

std::vector<TimePoint> CronSchedule::NextN(TimePoint after, int n) const {
  std::vector<TimePoint> out;
  for (int i = 0; i < n; ++i) {
    after = Next(after);
    if (after == kNever) break;
    out.push_back(after);
  }
  return out;
}

std::optional<TimePoint> CronSchedule::Previous(TimePoint at_or_before) const {
  if (at_or_before <= TimePoint::min() + std::chrono::seconds(2 * kHorizon)) return std::nullopt;
  int64_t t = ToSeconds(at_or_before);  // latest acceptable instant
  int64_t limit = t - kHorizon;
  while (t >= limit) {
    int64_t off = zone_.OffsetAt(t);
    std::optional<int64_t> begin = zone_.PrevTransition(t);  // this offset holds from *begin
    int64_t first = std::max(begin ? *begin : limit, limit);
    std::optional<int64_t> local = PrevLocal(t + off, first + off);
    while (local) {
      if (Allowed(*local, *local - off)) return FromSeconds(*local - off);
      local = PrevLocal(*local - 60, first + off);
    }
    if (!begin) break;
    t = *begin - 1;
  }
  return std::nullopt;
}

}  // namespace bao
