// TZif zone data (schedule/tz.h TimeZone::FromTzif). Input: the TZif file.
//
// Properties, at instants spread over 1900 to 2100 and around every transition found: an
// instant is among the instants of its own wall-clock reading (InstantsAt(t + OffsetAt(t))),
// which ascend and all read that wall-clock time; NextTransition() is later and
// PrevTransition() not later than the instant asked about, and the offset changes there.
#include <cstdint>
#include <string_view>

#include "check.h"
#include "schedule/tz.h"

namespace {

void CheckInstant(const bao::TimeZone& tz, int64_t t) {
  int64_t local = t + tz.OffsetAt(t);
  std::vector<int64_t> instants = tz.InstantsAt(local);
  bool found = false;
  for (size_t i = 0; i < instants.size(); ++i) {
    if (i > 0) FUZZ_CHECK(instants[i] > instants[i - 1]);
    FUZZ_CHECK(instants[i] + tz.OffsetAt(instants[i]) == local);
    found = found || instants[i] == t;
  }
  FUZZ_CHECK(found);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  bao::Result<bao::TimeZone> parsed = bao::TimeZone::FromTzif("Fuzz/Zone", text);
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == bao::Code::kInvalidArgument);
    return 0;
  }
  const bao::TimeZone& tz = *parsed;
  FUZZ_CHECK(tz.name() == "Fuzz/Zone");
  constexpr int64_t k1900 = -2208988800, k2100 = 4102444800;
  constexpr int64_t kStep = (k2100 - k1900) / 97;  // not a whole number of days
  for (int64_t t = k1900; t < k2100; t += kStep) CheckInstant(tz, t);
  // Walk the transitions forward from 1900, a bounded number of them.
  int64_t t = k1900;
  for (int i = 0; i < 64; ++i) {
    std::optional<int64_t> next = tz.NextTransition(t);
    if (!next || *next > k2100) break;
    FUZZ_CHECK(*next > t);
    FUZZ_CHECK(tz.OffsetAt(*next) != tz.OffsetAt(*next - 1));
    std::optional<int64_t> prev = tz.PrevTransition(*next);
    FUZZ_CHECK(prev.has_value() && *prev == *next);
    CheckInstant(tz, *next - 1);
    CheckInstant(tz, *next);
    t = *next;
  }
  std::optional<int64_t> prev = tz.PrevTransition(k2100);
  if (prev) FUZZ_CHECK(*prev <= k2100);
  return 0;
}
