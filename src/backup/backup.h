// One backup: find the Raft leader, authenticate, stream the snapshot into the store while
// checking it as an OpenBao archive and hashing it, commit the object, confirm what was
// stored. Nothing is buffered to disk; memory stays bounded whatever the snapshot size.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "backup/exit_code.h"
#include "common/time.h"
#include "openbao/client.h"
#include "storage/store.h"
#include "storage/target.h"

namespace bao::backup {

struct BackupRequest {
  openbao::ConnectionConfig connection;
  openbao::AuthConfig auth;
  storage::TargetConfig target;  // path_prefix is used for naming
  std::string ns;                // namespace segment of the key
  std::string cluster;           // cluster segment of the key
  std::string key;               // explicit object key; empty = generated per the contract
  std::string file_prefix;       // optional file-name prefix ("pre-upgrade-")
  const Clock* clock = nullptr;  // defaults to SystemClock()
  // Called now and then with the bytes stored so far (progress display).
  std::function<void(uint64_t bytes)> on_progress;
};

struct BackupResult {
  std::string key;
  uint64_t size = 0;
  std::string sha256;
  TimePoint started{};
  Duration duration{0};
  uint64_t raft_index = 0;
  uint64_t raft_term = 0;
  std::string leader;
  std::string store;  // the store's description
  nlohmann::json ToJson() const;
};

// Takes one backup into `store` (not owned). On failure nothing is left under the final key,
// and the Failure says which stage failed (its exit code) and why. Backups are write-once: an
// explicit `key` that exists is refused (kAlreadyExists, exit 1) before OpenBao is contacted.
// Every OpenBao and storage call runs under `ctx`.
Result<BackupResult> RunBackup(const Context& ctx, const BackupRequest& request,
                               storage::Store* store, Failure* failure);

// The JSON line printed for a failure: {"error": "...", "stage": "...", "exitCode": N}.
nlohmann::json FailureToJson(const Failure& failure);

}  // namespace bao::backup
