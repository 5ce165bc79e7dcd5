#include "backup/verify.h"

namespace bao::backup {

StreamVerifier::StreamVerifier(std::string key, std::string recorded_sha256, uint64_t recorded_size)
    : key_(std::move(key)), recorded_(std::move(recorded_sha256)), recorded_size_(recorded_size) {}

Status StreamVerifier::Update(std::string_view chunk) {
  Status s = checker_.Update(chunk);
  if (!s.ok()) return s.WithContext(key_ + " is not an intact snapshot archive");
  return s;
}

Result<snapshot::ArchiveReport> StreamVerifier::Finish() {
  Result<snapshot::ArchiveReport> report = checker_.Finish();
  if (!report.ok()) return report.status().WithContext(key_ + " is not an intact snapshot archive");
  computed_ = report->sha256;
  if (report->compressed_bytes != recorded_size_) {
    return DataLoss(key_ + " has " + std::to_string(report->compressed_bytes) +
                    " bytes but the store reported " + std::to_string(recorded_size_));
  }
  if (recorded_.empty()) {
    return DataLoss(key_ +
                    " has no recorded SHA-256, so its integrity cannot be confirmed "
                    "(computed " +
                    computed_ + ")");
  }
  if (computed_ != recorded_) {
    return DataLoss("SHA-256 of " + key_ + " is " + computed_ + " but " + recorded_ +
                    " was recorded at upload");
  }
  return report;
}

nlohmann::json VerifyReport::ToJson() const {
  return {{"key", key},
          {"size", size},
          {"sha256", sha256},
          {"raftIndex", archive.meta.index},
          {"raftTerm", archive.meta.term},
          {"stateSize", archive.meta.size},
          {"checks",
           {"sha256 matches the recorded checksum", "gzip stream complete (CRC-32, length)",
            "tar structure sound",
            "members meta.json, state.bin, SHA256SUMS, SHA256SUMS.sealed "
            "present once",
            "SHA256SUMS entries match", "state.bin size matches meta.json"}}};
}

Result<VerifyReport> VerifyBackup(const Context& ctx, storage::Store* store, const std::string& key,
                                  Failure* failure) {
  Result<storage::ObjectInfo> info = store->Stat(ctx, key);
  if (!info.ok()) {
    *failure = Fail(ExitCode::kStorage, info.status());
    return info.status();
  }
  StreamVerifier verifier(key, info->sha256, info->size);
  Status check;
  Status read = store->Read(ctx, key, 0, [&](std::string_view chunk) {
    check = verifier.Update(chunk);
    return check;
  });
  if (!check.ok()) {
    *failure = Fail(ExitCode::kVerification, check);
    return check;
  }
  if (!read.ok()) {
    *failure = Fail(ExitCode::kStorage, read.WithContext("reading " + key));
    return failure->status;
  }
  Result<snapshot::ArchiveReport> report = verifier.Finish();
  if (!report.ok()) {
    *failure = Fail(ExitCode::kVerification, report.status());
    return report.status();
  }
  VerifyReport out;
  out.key = key;
  out.size = info->size;
  out.sha256 = verifier.computed_sha256();
  out.archive = *report;
  return out;
}

}  // namespace bao::backup
