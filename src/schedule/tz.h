// IANA time zones read from the system zone database (TZif files), because GCC 12's libstdc++
// has no std::chrono::tzdb. Used by the cron engine to evaluate schedules in local time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace bao {

// An immutable time zone: the UTC offset in force at every instant. Instants and local times
// are whole seconds: an instant is seconds since 1970-01-01T00:00:00Z; a "local time" is the
// wall-clock reading expressed as seconds since 1970-01-01T00:00:00 on that wall clock (so
// local = instant + offset).
//
// Copies are cheap (shared immutable data) and all methods are thread-safe.
class TimeZone {
 public:
  // The built-in UTC zone; needs no zone database.
  static TimeZone Utc();

  // Loads the IANA zone `name` ("Europe/Amsterdam") from the zone directory: $ZONEINFO when
  // set and non-empty, else /usr/share/zoneinfo. "UTC" is built in and never read from disk.
  // kInvalidArgument: the name is empty, absolute, contains a ".." component or characters
  // other than letters, digits and "/_+-.", or the file is not a valid TZif file.
  // kNotFound: no such zone in the database (the message names the file looked for).
  static Result<TimeZone> Load(std::string_view name);

  // Parses TZif data (RFC 8536, versions 1 to 4) given the zone's display name. Uses the 64-bit
  // section of v2+ files and the POSIX TZ footer rule for instants after the last transition.
  // Files with leap-second records ("right/" zones) are rejected. kInvalidArgument on any
  // malformed or truncated data, naming the zone and the problem.
  static Result<TimeZone> FromTzif(std::string_view name, std::string_view data);

  // The name given to Load/FromTzif, or "UTC".
  const std::string& name() const;

  // Seconds east of UTC in force at `instant`.
  int64_t OffsetAt(int64_t instant) const;

  // The smallest instant > `instant` at which the offset changes, if any.
  std::optional<int64_t> NextTransition(int64_t instant) const;

  // The largest instant <= `instant` at which the offset changes (the offset in force at
  // `instant` starts there), if any.
  std::optional<int64_t> PrevTransition(int64_t instant) const;

  // Every instant whose wall-clock reading is `local`, ascending: none when the local time is
  // skipped (spring forward), two when it is repeated (fall back), else one.
  std::vector<int64_t> InstantsAt(int64_t local) const;

  struct Data;  // implementation detail, public only for the .cc's helpers

 private:
  explicit TimeZone(std::shared_ptr<const Data> data) : data_(std::move(data)) {}
  std::shared_ptr<const Data> data_;
};

}  // namespace bao
