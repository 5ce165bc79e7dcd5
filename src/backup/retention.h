// Retention: which backups to keep. Only objects that parse as this cluster's backups are
// ever candidates; the newest backup and the newest pre-upgrade backup are always kept.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "backup/naming.h"
#include "common/status.h"
#include "common/time.h"

namespace bao::backup {

// The file-name prefix of the backups the operator takes before an upgrade
// (`bao-backup backup --file-prefix pre-upgrade-`): the newest of them is never pruned.
constexpr const char* kPreUpgradePrefix = "pre-upgrade-";

struct RetentionPolicy {
  int64_t max_count = 0;  // keep the N newest; 0 = no limit
  Duration max_age{0};    // delete backups older than this; 0 = no limit
  // Calendar rules (beyond the contract, like restic's): keep the newest backup of each of the
  // last N days / ISO weeks / months (UTC) that have backups. 0 = rule off.
  int keep_daily = 0;
  int keep_weekly = 0;
  int keep_monthly = 0;

  bool empty() const {
    return max_count == 0 && max_age.count() == 0 && keep_daily == 0 && keep_weekly == 0 &&
           keep_monthly == 0;
  }
};

// Parses spec.backup.retention ({maxCount, maxAge, keepDaily, keepWeekly, keepMonthly}).
Result<RetentionPolicy> ParseRetention(const nlohmann::json& j, const std::string& path);

struct RetentionDecision {
  ParsedKey backup;
  bool keep = false;
  std::string reason;  // why kept ("newest", "within maxCount", "daily", ...) or deleted
};

// Decides, at `now`, for each of `backups` (any order) whether it is kept. The result is
// sorted newest first.
//
// Rules: the newest backup is always kept, and so is the newest pre-upgrade backup (file name
// starting with kPreUpgradePrefix), whatever the count, age and calendar rules say: it is the
// recovery point of the last upgrade. When calendar rules are set, a backup is kept when
// any calendar rule keeps it, and additionally when both count and age allow it. Otherwise a
// backup is kept when it is among the `max_count` newest (if set) and not older than `max_age`
// (if set). An empty policy keeps everything.
//
// Only verifiable backups count: the keys in `unverifiable` (no recorded checksum, e.g. a
// commit cut short) are neither "the newest backup" (nor the newest pre-upgrade one) nor counted
// toward max_count or a calendar period, so they never cost a verifiable backup its place; they
// are deleted only by max_age.
std::vector<RetentionDecision> PlanRetention(const std::vector<ParsedKey>& backups,
                                             const RetentionPolicy& policy, TimePoint now,
                                             const std::set<std::string>& unverifiable = {});

}  // namespace bao::backup
