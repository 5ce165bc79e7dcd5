#include "backup/retention.h"

#include <algorithm>
#include <set>

namespace bao::backup {
namespace {

int64_t DayNumber(TimePoint t) {
  int64_t secs = std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
  return secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
}

// ISO week number key: days since the Monday of 1970-01-01's ISO week, divided by 7.
int64_t WeekNumber(TimePoint t) {
  int64_t day = DayNumber(t) + 3;  // 1970-01-01 was a Thursday; shift so weeks start Monday
  return day >= 0 ? day / 7 : (day - 6) / 7;
}

int64_t MonthNumber(TimePoint t) {
  int64_t y;
  unsigned m, d;
  CivilFromDays(DayNumber(t), &y, &m, &d);
  return y * 12 + (m - 1);
}

// Marks the newest backup of each of the `n` most recent periods that hold backups.
// Backups without a recorded checksum are not candidates.
void KeepPerPeriod(const std::vector<ParsedKey>& newest_first,
                   const std::set<std::string>& unverifiable, int n, int64_t (*period)(TimePoint),
                   const char* label, std::vector<RetentionDecision>* out) {
  if (n <= 0) return;
  std::set<int64_t> seen;
  for (size_t i = 0; i < newest_first.size() && static_cast<int>(seen.size()) < n; ++i) {
    if (unverifiable.contains(newest_first[i].key)) continue;
    int64_t p = period(newest_first[i].time);
    if (seen.insert(p).second && !(*out)[i].keep) {
      (*out)[i].keep = true;
      (*out)[i].reason = label;
    }
  }
}

}  // namespace

std::vector<RetentionDecision> PlanRetention(const std::vector<ParsedKey>& backups,
                                             const RetentionPolicy& policy, TimePoint now,
                                             const std::set<std::string>& unverifiable) {
  std::vector<ParsedKey> sorted = backups;
  // Newest first; ties broken by key so the plan is deterministic.
  std::sort(sorted.begin(), sorted.end(), [](const ParsedKey& a, const ParsedKey& b) {
    return a.time != b.time ? a.time > b.time : a.key > b.key;
  });
  std::vector<RetentionDecision> out(sorted.size());
  bool calendar = policy.keep_daily > 0 || policy.keep_weekly > 0 || policy.keep_monthly > 0;
  bool limits = policy.max_count > 0 || policy.max_age.count() > 0;
  int64_t rank = 0;  // among the backups with a recorded checksum, newest first
  for (size_t i = 0; i < sorted.size(); ++i) {
    RetentionDecision& d = out[i];
    d.backup = sorted[i];
    // Not `now - time > max_age`: a key may carry any time from 1678 to 2261, and the
    // difference of two such times overflows a TimePoint's 64-bit nanoseconds.
    bool too_old = policy.max_age.count() > 0 && sorted[i].time < now - policy.max_age;
    if (unverifiable.contains(sorted[i].key)) {
      // Not counted toward what is kept, so it can never push a verifiable backup out; it
      // goes only by age.
      d.keep = !too_old;
      d.reason = too_old
                     ? "no recorded checksum, older than maxAge " + FormatDuration(policy.max_age)
                     : "no recorded checksum: not counted";
      continue;
    }
    bool over_count = policy.max_count > 0 && rank >= policy.max_count;
    if (rank++ == 0) {
      d.keep = true;
      d.reason = "newest backup";
    } else if (!limits && !calendar) {
      d.keep = true;
      d.reason = "no retention policy";
    } else if (limits && !over_count && !too_old) {
      d.keep = true;
      d.reason = "within maxCount and maxAge";
    } else {
      d.keep = false;
      d.reason = over_count ? "beyond maxCount " + std::to_string(policy.max_count)
                 : too_old  ? "older than maxAge " + FormatDuration(policy.max_age)
                            : "kept by no rule";
    }
  }
  // The recovery point of the last upgrade: the newest verifiable pre-upgrade backup stays
  // (it also counted above like any backup; this only overrides a "delete").
  for (RetentionDecision& d : out) {
    if (unverifiable.contains(d.backup.key) ||
        !d.backup.file_prefix.starts_with(kPreUpgradePrefix)) {
      continue;
    }
    if (!d.keep) {
      d.keep = true;
      d.reason = "newest pre-upgrade backup";
    }
    break;
  }
  KeepPerPeriod(sorted, unverifiable, policy.keep_daily, DayNumber, "keepDaily", &out);
  KeepPerPeriod(sorted, unverifiable, policy.keep_weekly, WeekNumber, "keepWeekly", &out);
  KeepPerPeriod(sorted, unverifiable, policy.keep_monthly, MonthNumber, "keepMonthly", &out);
  return out;
}

}  // namespace bao::backup
