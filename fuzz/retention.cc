// Retention (backup/retention.h): ParseRetention and PlanRetention.
//
// Input lines: the retention policy as JSON; the time "now" (RFC 3339; when it does not parse
// or lies outside 1800..2200, 2026-01-31T03:00:00Z); then object keys, each read as a backup of
// cluster ns/bao when it parses as one (ParseBackupKey), a leading '?' marking it as having no
// recorded checksum.
//
// Properties (the contract in retention.h): one decision per backup, newest first, the same
// whatever the input order; an empty policy keeps all; the newest backup with a checksum and
// the newest such pre-upgrade backup are kept; a backup without a checksum is deleted only
// when older than maxAge; without calendar rules, at most maxCount backups with a checksum are
// kept, plus the pre-upgrade one.
#include "backup/retention.h"

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "backup/naming.h"
#include "check.h"

namespace {

using bao::TimePoint;
using bao::backup::ParsedKey;
using bao::backup::RetentionDecision;
using bao::backup::RetentionPolicy;

std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    lines.push_back(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return lines;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string_view> lines =
      Lines(std::string_view(reinterpret_cast<const char*>(data), size));
  if (lines.size() < 2) return 0;
  nlohmann::json j = nlohmann::json::parse(lines[0], nullptr, false);
  if (j.is_discarded()) return 0;
  bao::Result<RetentionPolicy> parsed = bao::backup::ParseRetention(j, "spec.backup.retention");
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == bao::Code::kInvalidArgument);
    return 0;
  }
  const RetentionPolicy& policy = *parsed;
  FUZZ_CHECK(policy.max_count >= 0 && policy.max_age.count() >= 0);
  FUZZ_CHECK(policy.max_age <= bao::kMaxDuration);
  FUZZ_CHECK(policy.keep_daily >= 0 && policy.keep_weekly >= 0 && policy.keep_monthly >= 0);

  TimePoint now = *bao::ParseRfc3339("2026-01-31T03:00:00Z");
  bao::Result<TimePoint> given = bao::ParseRfc3339(lines[1]);
  if (given.ok() && *given >= *bao::ParseRfc3339("1800-01-01") &&
      *given <= *bao::ParseRfc3339("2200-01-01")) {
    now = *given;
  }
  std::vector<ParsedKey> backups;
  std::set<std::string> unverifiable;
  for (size_t i = 2; i < lines.size(); ++i) {
    std::string_view key = lines[i];
    bool no_sum = key.starts_with('?');
    if (no_sum) key.remove_prefix(1);
    std::optional<ParsedKey> k = bao::backup::ParseBackupKey(key, "", "ns", "bao");
    if (!k) continue;
    if (no_sum) unverifiable.insert(k->key);
    backups.push_back(*k);
  }

  std::vector<RetentionDecision> plan =
      bao::backup::PlanRetention(backups, policy, now, unverifiable);
  std::vector<ParsedKey> reversed(backups.rbegin(), backups.rend());
  std::vector<RetentionDecision> plan2 =
      bao::backup::PlanRetention(reversed, policy, now, unverifiable);
  FUZZ_CHECK(plan.size() == backups.size() && plan2.size() == plan.size());

  const bool calendar = policy.keep_daily > 0 || policy.keep_weekly > 0 || policy.keep_monthly > 0;
  bool seen_verifiable = false, seen_pre_upgrade = false;
  int64_t kept_verifiable = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    const RetentionDecision& d = plan[i];
    FUZZ_CHECK(d.backup.key == plan2[i].backup.key && d.keep == plan2[i].keep);
    FUZZ_CHECK(!d.reason.empty());
    if (i > 0) FUZZ_CHECK(plan[i - 1].backup.time >= d.backup.time);
    if (policy.empty()) FUZZ_CHECK(d.keep);
    if (unverifiable.contains(d.backup.key)) {
      // Both are whole milliseconds, and in milliseconds their difference cannot overflow.
      auto ms = [](TimePoint t) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
      };
      bool too_old =
          policy.max_age.count() > 0 && ms(now) - ms(d.backup.time) > policy.max_age.count();
      FUZZ_CHECK(d.keep == !too_old);
      continue;
    }
    if (d.keep) ++kept_verifiable;
    if (!seen_verifiable) FUZZ_CHECK(d.keep);
    seen_verifiable = true;
    if (d.backup.file_prefix.starts_with(bao::backup::kPreUpgradePrefix)) {
      if (!seen_pre_upgrade) FUZZ_CHECK(d.keep);
      seen_pre_upgrade = true;
    }
  }
  if (!calendar && policy.max_count > 0) FUZZ_CHECK(kept_verifiable <= policy.max_count + 1);
  return 0;
}
