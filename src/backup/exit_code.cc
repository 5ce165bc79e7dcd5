#include "backup/exit_code.h"

#include "common/redact.h"

namespace bao::backup {

ExitCode ExitCodeFor(const Status& status) {
  if (status.ok()) return ExitCode::kOk;
  if (status.reason() == Reason::kCancelled) return ExitCode::kCancelled;
  switch (status.stage()) {
    case Stage::kUnspecified:
    case Stage::kConfig: return ExitCode::kConfig;
    case Stage::kAuth: return ExitCode::kAuth;
    case Stage::kLeader: return ExitCode::kLeaderDiscovery;
    case Stage::kSnapshot: return ExitCode::kSnapshotRead;
    case Stage::kStorage: return ExitCode::kStorage;
    case Stage::kVerify: return ExitCode::kVerification;
  }
  return ExitCode::kConfig;
}

std::optional<bool> OpenBaoUnchanged(const Status& status) {
  const std::string* v = status.payload(kOpenBaoUnchanged);
  if (v == nullptr) return std::nullopt;
  return *v == "true";
}

nlohmann::json ErrorToJson(const Status& status) {
  nlohmann::json j = {{"error", Redact(status.message())},
                      {"exitCode", static_cast<int>(ExitCodeFor(status))}};
  if (status.stage() != Stage::kUnspecified) j["stage"] = StageName(status.stage());
  if (status.reason() != Reason::kUnspecified) j["reason"] = ReasonName(status.reason());
  if (status.http_status() != 0) j["httpStatus"] = status.http_status();
  if (std::optional<bool> u = OpenBaoUnchanged(status)) j[kOpenBaoUnchanged] = *u;
  return j;
}

}  // namespace bao::backup
