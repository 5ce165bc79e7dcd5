// The executor's exit codes (fixed by the contract, plus one for cancellation) and the one
// table that maps a failure to its exit code and its result JSON, used by every command.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>

#include "common/status.h"

namespace bao::backup {

enum class ExitCode : int {
  kOk = 0,
  kConfig = 1,           // flags, configuration, local files; before any network call
  kAuth = 2,             // OpenBao refused the login or the token
  kLeaderDiscovery = 3,  // no active OpenBao node
  kSnapshotRead = 4,     // the snapshot stream (or, restoring, the upload) failed
  kStorage = 5,          // the object store failed or refused the credentials
  kVerification = 6,     // the snapshot or the stored object is not what it should be
  kCancelled = 7,        // stopped by SIGTERM/SIGINT (a run past its deadline fails in its stage)
};

// The table: ok -> 0; cancelled (kAborted with Reason::kCancelled) -> 7; otherwise by the
// stage the failure was tagged with (config 1, auth 2, leader 3, snapshot 4, storage 5,
// verify 6); a failure without a stage is 1 (it can only come from the command's own setup).
ExitCode ExitCodeFor(const Status& status);

// The payload key a restore sets on its failures: "true" when OpenBao is certainly as it was
// before (nothing sent, or the snapshot refused or cut off before its end), "false" when that
// is not known. The operator retries a restore only when it is "true".
inline constexpr const char* kOpenBaoUnchanged = "openbaoUnchanged";
std::optional<bool> OpenBaoUnchanged(const Status& status);

// The JSON printed for a failure: {"error", "stage", "reason", "httpStatus", "exitCode"} and
// "openbaoUnchanged" when set; the message redacted. Fields without a value are left out.
nlohmann::json ErrorToJson(const Status& status);

}  // namespace bao::backup
