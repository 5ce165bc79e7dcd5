// Executor exit codes fixed by the contract, and how a failure maps to one.
#pragma once

#include <optional>

#include "common/status.h"

namespace bao::backup {

enum class ExitCode : int {
  kOk = 0,
  kConfig = 1,
  kAuth = 2,
  kLeaderDiscovery = 3,
  kSnapshotRead = 4,
  kStorage = 5,
  kVerification = 6,
};

// A failed operation: what went wrong and which stage it belongs to.
struct Failure {
  ExitCode code = ExitCode::kOk;
  Status status;
  // Restores only: whether OpenBao is certainly as it was before (nothing sent, or the snapshot
  // refused or cut off before its end). Unset for other commands. The operator retries a
  // restore only when this is true.
  std::optional<bool> openbao_unchanged;
};

inline Failure Fail(ExitCode code, Status status) {
  return Failure{code, std::move(status)};
}

// Short stage name for results and status ("config", "auth", "leader", "snapshot", "storage",
// "verification").
const char* StageName(ExitCode code);

}  // namespace bao::backup
