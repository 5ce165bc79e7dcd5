// Checking a stored backup: its SHA-256 against the one recorded at upload, and its content as
// an OpenBao snapshot archive.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "backup/exit_code.h"
#include "common/status.h"
#include "snapshot/archive_checker.h"
#include "storage/store.h"

namespace bao::backup {

// Checks a backup's bytes as they stream past: archive structure and the whole-object SHA-256
// against `recorded_sha256`. Not thread-safe.
class StreamVerifier {
 public:
  StreamVerifier(std::string key, std::string recorded_sha256, uint64_t recorded_size);
  // kDataLoss at the first archive defect.
  Status Update(std::string_view chunk);
  // kDataLoss when the archive is incomplete or the size or SHA-256 differs from the record.
  Result<snapshot::ArchiveReport> Finish();
  const std::string& computed_sha256() const { return computed_; }

 private:
  std::string key_, recorded_, computed_;
  uint64_t recorded_size_;
  snapshot::ArchiveChecker checker_;
};

struct VerifyReport {
  std::string key;
  uint64_t size = 0;
  std::string sha256;
  snapshot::ArchiveReport archive;
  nlohmann::json ToJson() const;
};

// Streams object `key` and checks it. kVerification failures for any mismatch (including an
// object with no recorded checksum), kStorage when it cannot be read.
Result<VerifyReport> VerifyBackup(const Context& ctx, storage::Store* store, const std::string& key,
                                  Failure* failure);

}  // namespace bao::backup
