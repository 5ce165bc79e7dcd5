// Durations and RFC 3339 times (common/time.h). Input: the text, given to both parsers.
//
// Properties: an accepted duration is within 0..kMaxDuration and its FormatDuration() parses
// back to it (to whole seconds from one second up, as FormatDuration prints); an accepted time
// formats (with milliseconds) to text that parses back to the same instant, and without
// milliseconds to the same instant rounded down to the second.
#include "common/time.h"

#include <chrono>
#include <cstdint>
#include <string_view>

#include "check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using std::chrono::milliseconds;
  std::string_view text(reinterpret_cast<const char*>(data), size);

  bao::Result<bao::Duration> d = bao::ParseDuration(text);
  if (d.ok()) {
    FUZZ_CHECK(d->count() >= 0 && *d <= bao::kMaxDuration);
    bao::Result<bao::Duration> back = bao::ParseDuration(bao::FormatDuration(*d));
    FUZZ_CHECK(back.ok());
    bao::Duration want = *d < milliseconds(1000) ? *d : milliseconds(d->count() / 1000 * 1000);
    FUZZ_CHECK(*back == want);
  } else {
    FUZZ_CHECK(d.status().code() == bao::Code::kInvalidArgument);
  }

  bao::Result<bao::TimePoint> t = bao::ParseRfc3339(text);
  if (t.ok()) {
    bao::Result<bao::TimePoint> back = bao::ParseRfc3339(bao::FormatRfc3339(*t, true));
    FUZZ_CHECK(back.ok());
    FUZZ_CHECK(*back == *t);
    bao::Result<bao::TimePoint> secs = bao::ParseRfc3339(bao::FormatRfc3339(*t));
    FUZZ_CHECK(secs.ok());
    FUZZ_CHECK(*secs == std::chrono::floor<std::chrono::seconds>(*t));
  } else {
    FUZZ_CHECK(t.status().code() == bao::Code::kInvalidArgument);
  }
  return 0;
}
