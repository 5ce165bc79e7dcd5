#include "schedule/tz.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <limits>

#include "common/files.h"
#include "common/time.h"

namespace bao {
namespace {

constexpr int64_t kDay = 86400;
constexpr const char* kDefaultZoneDir = "/usr/share/zoneinfo";

int64_t FloorDiv(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

bool IsLeap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int64_t YearOf(int64_t local) {
  int64_t y;
  unsigned m, d;
  CivilFromDays(FloorDiv(local, kDay), &y, &m, &d);
  return y;
}

// One date of a POSIX TZ rule ("M3.5.0/3", "J60", "59/-1").
struct RuleDate {
  enum Kind { kJulianNoLeap, kZeroBased, kMonthWeekDay } kind = kMonthWeekDay;
  int n = 0;                          // day for kJulianNoLeap (1-365) and kZeroBased (0-365)
  int month = 0, week = 0, wday = 0;  // for kMonthWeekDay
  int64_t time = 7200;                // local seconds after midnight, may be negative or > 24h
};

// A POSIX TZ rule such as "CET-1CEST,M3.5.0,M10.5.0/3".
struct PosixRule {
  int64_t std_off = 0;  // seconds east of UTC
  bool has_dst = false;
  int64_t dst_off = 0;
  RuleDate start, end;
};

// Local seconds (on the clock in force before the change) at which `date` falls in `year`.
int64_t RuleLocal(int64_t year, const RuleDate& date) {
  int64_t days = DaysFromCivil(year, 1, 1);
  switch (date.kind) {
    case RuleDate::kJulianNoLeap:
      days += date.n - 1 + ((IsLeap(year) && date.n >= 60) ? 1 : 0);
      break;
    case RuleDate::kZeroBased: days += date.n; break;
    case RuleDate::kMonthWeekDay: {
      static constexpr int kMonthDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
      int mdays = kMonthDays[date.month - 1] + ((date.month == 2 && IsLeap(year)) ? 1 : 0);
      int64_t first = DaysFromCivil(year, date.month, 1);
      int first_wday = static_cast<int>(((first % 7) + 7 + 4) % 7);  // 1970-01-01 was a Thursday
      int day = 1 + (date.wday - first_wday + 7) % 7 + (date.week - 1) * 7;
      while (day > mdays) day -= 7;
      days = first + day - 1;
      break;
    }
  }
  return days * kDay + date.time;
}

// The two offset changes of `rule` in `year`, as instants: {dst start, dst end}.
std::pair<int64_t, int64_t> RuleTransitions(const PosixRule& rule, int64_t year) {
  return {RuleLocal(year, rule.start) - rule.std_off, RuleLocal(year, rule.end) - rule.dst_off};
}

int64_t RuleOffset(const PosixRule& rule, int64_t instant) {
  if (!rule.has_dst) return rule.std_off;
  auto [start, end] = RuleTransitions(rule, YearOf(instant + rule.std_off));
  bool dst =
      start < end ? (instant >= start && instant < end) : !(instant >= end && instant < start);
  return dst ? rule.dst_off : rule.std_off;
}

// Parser for the POSIX TZ footer (RFC 8536 section 3.3, with its extensions).
class PosixParser {
 public:
  explicit PosixParser(std::string_view s) : s_(s) {}

  bool Parse(PosixRule* rule) {
    if (!Name() || !Offset(24, &rule->std_off)) return false;
    rule->std_off = -rule->std_off;
    if (Done()) return true;
    rule->has_dst = true;
    if (!Name()) return false;
    rule->dst_off = rule->std_off + 3600;
    if (!Done() && Peek() != ',') {
      if (!Offset(24, &rule->dst_off)) return false;
      rule->dst_off = -rule->dst_off;
    }
    if (Done()) {  // no rule given: the historical US default
      rule->start = {RuleDate::kMonthWeekDay, 0, 3, 2, 0, 7200};
      rule->end = {RuleDate::kMonthWeekDay, 0, 11, 1, 0, 7200};
      return true;
    }
    if (!Eat(',') || !Date(&rule->start) || !Eat(',') || !Date(&rule->end)) return false;
    return Done();
  }

 private:
  bool Done() const { return pos_ >= s_.size(); }
  char Peek() const { return Done() ? '\0' : s_[pos_]; }
  bool Eat(char c) {
    if (Peek() != c) return false;
    ++pos_;
    return true;
  }
  bool Name() {
    size_t begin = pos_;
    if (Eat('<')) {
      while (!Done() && Peek() != '>') ++pos_;
      return Eat('>') && pos_ - begin >= 5;
    }
    while (!Done() && std::isalpha(static_cast<unsigned char>(Peek()))) ++pos_;
    return pos_ - begin >= 3;
  }
  bool Number(int max, int* out) {
    size_t begin = pos_;
    int64_t v = 0;
    while (!Done() && std::isdigit(static_cast<unsigned char>(Peek())) && pos_ - begin < 4) {
      v = v * 10 + (Peek() - '0');
      ++pos_;
    }
    if (pos_ == begin || v > max) return false;
    *out = static_cast<int>(v);
    return true;
  }
  // [+-]hh[:mm[:ss]] in seconds, sign as written.
  bool Offset(int max_hours, int64_t* out) {
    int64_t sign = 1;
    if (Eat('-')) {
      sign = -1;
    } else {
      Eat('+');
    }
    int h = 0, m = 0, sec = 0;
    if (!Number(max_hours, &h)) return false;
    if (Eat(':')) {
      if (!Number(59, &m)) return false;
      if (Eat(':') && !Number(59, &sec)) return false;
    }
    *out = sign * (h * 3600 + m * 60 + sec);
    return true;
  }
  bool Date(RuleDate* date) {
    if (Eat('M')) {
      date->kind = RuleDate::kMonthWeekDay;
      if (!Number(12, &date->month) || date->month < 1 || !Eat('.') || !Number(5, &date->week) ||
          date->week < 1 || !Eat('.') || !Number(6, &date->wday)) {
        return false;
      }
    } else if (Eat('J')) {
      date->kind = RuleDate::kJulianNoLeap;
      if (!Number(365, &date->n) || date->n < 1) return false;
    } else {
      date->kind = RuleDate::kZeroBased;
      if (!Number(365, &date->n)) return false;
    }
    date->time = 7200;
    if (Eat('/')) return Offset(167, &date->time);
    return true;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool Has(size_t n) const { return data_.size() - pos_ >= n; }
  size_t pos() const { return pos_; }
  void Skip(size_t n) { pos_ += n; }
  int64_t Int(int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(data_[pos_++]);
    if (bytes == 4) return static_cast<int32_t>(static_cast<uint32_t>(v));
    return static_cast<int64_t>(v);
  }
  uint8_t Byte() { return static_cast<unsigned char>(data_[pos_++]); }
  std::string_view Rest() const { return data_.substr(pos_); }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

struct Header {
  char version = 0;
  int64_t isutcnt = 0, isstdcnt = 0, leapcnt = 0, timecnt = 0, typecnt = 0, charcnt = 0;
  size_t BodySize(int time_bytes) const {
    return timecnt * time_bytes + timecnt + typecnt * 6 + charcnt + leapcnt * (time_bytes + 4) +
           isstdcnt + isutcnt;
  }
};

bool ReadHeader(Reader* r, Header* h) {
  if (!r->Has(44) || r->Rest().substr(0, 4) != "TZif") return false;
  r->Skip(4);
  h->version = static_cast<char>(r->Byte());
  r->Skip(15);
  int64_t* counts[] = {&h->isutcnt, &h->isstdcnt, &h->leapcnt,
                       &h->timecnt, &h->typecnt,  &h->charcnt};
  for (int64_t* c : counts) {
    *c = r->Int(4);
    if (*c < 0 || *c > (1 << 20)) return false;
  }
  return true;
}

bool ValidZoneName(std::string_view name) {
  if (name.empty() || name.size() > 255 || name.front() == '/' || name.back() == '/') return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '/' && c != '_' && c != '+' &&
        c != '-' && c != '.') {
      return false;
    }
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t slash = name.find('/', start);
    if (slash == std::string_view::npos) slash = name.size();
    std::string_view part = name.substr(start, slash - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = slash + 1;
  }
  return true;
}

}  // namespace

struct TimeZone::Data {
  std::string name;
  int64_t initial_off = 0;         // before the first transition
  std::vector<int64_t> trans;      // instants where the offset changes, ascending
  std::vector<int64_t> trans_off;  // offset from trans[i] on
  int64_t rule_from = std::numeric_limits<int64_t>::min();  // footer applies after this
  std::optional<PosixRule> rule;
};

TimeZone TimeZone::Utc() {
  static const auto* utc = [] {
    auto d = std::make_shared<Data>();
    d->name = "UTC";
    return new std::shared_ptr<const Data>(std::move(d));
  }();
  return TimeZone(*utc);
}

Result<TimeZone> TimeZone::FromTzif(std::string_view name, std::string_view data) {
  std::string where = "time zone \"" + std::string(name) + "\": ";
  auto bad = [&](const std::string& why) {
    return InvalidArgument(where + "not a valid TZif time-zone file: " + why);
  };
  Reader r(data);
  Header h;
  if (!ReadHeader(&r, &h)) return bad("missing or truncated TZif header");
  int time_bytes = 4;
  if (h.version != 0) {
    if (h.version < '2' || h.version > '9') return bad("unknown version");
    if (!r.Has(h.BodySize(4))) return bad("truncated version 1 data");
    r.Skip(h.BodySize(4));
    if (!ReadHeader(&r, &h)) return bad("missing or truncated version 2+ header");
    time_bytes = 8;
  }
  if (!r.Has(h.BodySize(time_bytes))) return bad("truncated data");
  if (h.leapcnt != 0) {
    return InvalidArgument(where +
                           "zone files with leap seconds (\"right/\" zones) are not "
                           "supported; use the zone without the \"right/\" prefix");
  }
  if (h.typecnt < 1 || h.charcnt < 1 || (h.isstdcnt != 0 && h.isstdcnt != h.typecnt) ||
      (h.isutcnt != 0 && h.isutcnt != h.typecnt)) {
    return bad("inconsistent counts in header");
  }
  std::vector<int64_t> times(h.timecnt);
  for (auto& t : times) t = r.Int(time_bytes);
  std::vector<uint8_t> idx(h.timecnt);
  for (auto& i : idx) i = r.Byte();
  std::vector<int64_t> offsets(h.typecnt);
  for (auto& off : offsets) {
    off = r.Int(4);
    r.Skip(2);  // isdst, abbreviation index
    if (off <= -90000 || off >= 93600) return bad("UTC offset out of range");
  }
  r.Skip(h.charcnt + h.isstdcnt + h.isutcnt);

  auto d = std::make_shared<Data>();
  d->name = std::string(name);
  d->initial_off = offsets[0];
  int64_t prev_off = d->initial_off;
  for (size_t i = 0; i < times.size(); ++i) {
    if (idx[i] >= offsets.size()) return bad("transition refers to an unknown local time type");
    if (i > 0 && times[i] <= times[i - 1]) return bad("transition times are not ascending");
    if (offsets[idx[i]] != prev_off) {
      d->trans.push_back(times[i]);
      d->trans_off.push_back(offsets[idx[i]]);
      prev_off = offsets[idx[i]];
    }
  }
  if (!times.empty()) d->rule_from = times.back();
  if (time_bytes == 8) {
    std::string_view rest = r.Rest();
    if (rest.empty() || rest.front() != '\n') return bad("missing footer");
    size_t end = rest.find('\n', 1);
    if (end == std::string_view::npos) return bad("unterminated footer");
    std::string_view footer = rest.substr(1, end - 1);
    if (!footer.empty()) {
      PosixRule rule;
      if (!PosixParser(footer).Parse(&rule)) {
        return bad("unsupported POSIX TZ rule \"" + std::string(footer) + "\"");
      }
      // RFC 8536 section 3.3: the rule agrees with the last transition's local time type.
      // Otherwise the hand-over from the table to the rule would change the offset where no
      // transition says so (and InstantsAt would miss instants).
      if (!times.empty() && RuleOffset(rule, times.back()) != prev_off) {
        return bad("the POSIX TZ rule \"" + std::string(footer) +
                   "\" disagrees with the last transition");
      }
      d->rule = rule;
    }
  }
  return TimeZone(std::move(d));
}

Result<TimeZone> TimeZone::Load(std::string_view name) {
  if (name == "UTC") return Utc();
  if (!ValidZoneName(name)) {
    return InvalidArgument("invalid time zone name \"" + std::string(name) +
                           "\": expected an IANA zone such as \"Europe/Amsterdam\" (letters, "
                           "digits, \"/_+-.\", no \"..\" and not an absolute path)");
  }
  const char* env = std::getenv("ZONEINFO");
  std::string dir = (env != nullptr && *env != '\0') ? env : kDefaultZoneDir;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return NotFound("time zone database " + dir +
                    " not found (install the tzdata package or set ZONEINFO to its directory)");
  }
  std::string path = dir + "/" + std::string(name);
  if (!std::filesystem::is_regular_file(path, ec)) {
    return NotFound("unknown time zone \"" + std::string(name) + "\": no such zone in " + dir);
  }
  Result<std::string> data = ReadFile(path, 1 << 20);
  if (!data.ok()) return data.status().WithContext("time zone \"" + std::string(name) + "\"");
  return FromTzif(name, *data);
}

const std::string& TimeZone::name() const {
  return data_->name;
}

int64_t TimeZone::OffsetAt(int64_t instant) const {
  const Data& d = *data_;
  if (d.rule && instant > d.rule_from) return RuleOffset(*d.rule, instant);
  auto it = std::upper_bound(d.trans.begin(), d.trans.end(), instant);
  if (it == d.trans.begin()) return d.initial_off;
  return d.trans_off[it - d.trans.begin() - 1];
}

std::optional<int64_t> TimeZone::NextTransition(int64_t instant) const {
  const Data& d = *data_;
  auto it = std::upper_bound(d.trans.begin(), d.trans.end(), instant);
  if (it != d.trans.end()) return *it;
  if (!d.rule || !d.rule->has_dst) return std::nullopt;
  int64_t floor = std::max(instant, d.rule_from);
  int64_t year = YearOf(floor + d.rule->std_off);
  std::optional<int64_t> best;
  for (int64_t y = year - 1; y <= year + 2; ++y) {
    auto [a, b] = RuleTransitions(*d.rule, y);
    for (int64_t c : {a, b}) {
      if (c > floor && (!best || c < *best) && OffsetAt(c - 1) != OffsetAt(c)) best = c;
    }
  }
  return best;
}

std::optional<int64_t> TimeZone::PrevTransition(int64_t instant) const {
  const Data& d = *data_;
  if (d.rule && d.rule->has_dst && instant > d.rule_from) {
    int64_t year = YearOf(instant + d.rule->std_off);
    std::optional<int64_t> best;
    for (int64_t y = year - 2; y <= year + 1; ++y) {
      auto [a, b] = RuleTransitions(*d.rule, y);
      for (int64_t c : {a, b}) {
        if (c > d.rule_from && c <= instant && (!best || c > *best) &&
            OffsetAt(c - 1) != OffsetAt(c)) {
          best = c;
        }
      }
    }
    if (best) return best;
  }
  auto it = std::upper_bound(d.trans.begin(), d.trans.end(), instant);
  if (it == d.trans.begin()) return std::nullopt;
  return *(it - 1);
}

std::vector<int64_t> TimeZone::InstantsAt(int64_t local) const {
  // Offsets are within +-26h, so every instant showing `local` lies in this window; collect
  // each offset in force somewhere in it and keep those that map back onto `local`.
  constexpr int64_t kWindow = 27 * 3600;
  std::vector<int64_t> offsets = {OffsetAt(local - kWindow)};
  std::optional<int64_t> t = NextTransition(local - kWindow);
  while (t && *t <= local + kWindow) {
    offsets.push_back(OffsetAt(*t));
    t = NextTransition(*t);
  }
  std::vector<int64_t> out;
  for (int64_t off : offsets) {
    if (OffsetAt(local - off) == off) out.push_back(local - off);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace bao
