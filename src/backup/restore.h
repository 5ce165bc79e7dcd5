// Restoring a stored backup into OpenBao. The archive is checked while it streams; the last
// chunk is held back until every check has passed, so when a check fails the request is
// aborted before it is complete and OpenBao never applies a damaged snapshot.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "backup/exit_code.h"
#include "openbao/client.h"
#include "storage/store.h"

namespace bao::backup {

struct RestoreRequest {
  openbao::ConnectionConfig connection;
  openbao::AuthConfig auth;
  std::string key;
  bool force = false;         // snapshot-force: into a new or rebuilt cluster
  bool verify_first = false;  // full verification before OpenBao is contacted at all
};

struct RestoreResult {
  std::string key;
  uint64_t size = 0;
  std::string sha256;
  std::string leader;
  bool forced = false;
  Duration duration{0};
  nlohmann::json ToJson() const;
};

Result<RestoreResult> RunRestore(const RestoreRequest& request, storage::Store* store,
                                 Failure* failure);

}  // namespace bao::backup
