// BackupTarget: where backups live, in the shape of the contract's BackupTarget (also used by
// OpenBaoRestore.spec.source.target), plus the CLI's local-directory provider.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"
#include "storage/store.h"

namespace bao::storage {

constexpr uint64_t kDefaultPartSize = 10485760;
constexpr uint64_t kMinPartSize = 5242880;
constexpr int kDefaultConcurrency = 3;
constexpr int kMaxRetainDays = 36500;  // objectLock.retainDays: at most 100 years

struct TargetConfig {
  std::string provider = "s3";  // "file", "s3", "gcs", "azure"
  std::string endpoint;
  std::string bucket;       // bucket, Azure container, or the root directory for "file"
  std::string path_prefix;  // without leading or trailing '/'
  // Where the credential files are: a directory with files named after the Secret keys
  // (accessKeyId, secretAccessKey, sessionToken, region, caCert, credentials.json, accountKey,
  // connectionString). Empty: ambient identity.
  std::string credentials_dir;
  std::string credentials_secret;  // Kubernetes: credentialsSecretRef.name
  uint64_t part_size = kDefaultPartSize;
  int concurrency = kDefaultConcurrency;
  std::string region;  // S3; empty means us-east-1 unless the credentials name one
  std::string role_arn;
  bool use_path_style = false;
  std::string gcs_project;
  std::string azure_storage_account;
  std::string azure_container;
  bool insecure_skip_verify = false;

  // Encryption at rest, done by the provider (docs/storage-*.md).
  // S3 `sse`: "" (the bucket's default), "AES256" (SSE-S3) or "aws:kms" (SSE-KMS), sent as
  // x-amz-server-side-encryption on every upload and checked on the read-back.
  std::string sse;
  // S3 `kmsKeyId`: the KMS key of SSE-KMS (x-amz-server-side-encryption-aws-kms-key-id);
  // only with sse "aws:kms"; "" lets the server pick its default key.
  std::string kms_key_id;
  // GCS `gcs.kmsKeyName`: the Cloud KMS key (CMEK) objects are encrypted with.
  std::string gcs_kms_key_name;
  // Azure `azure.encryptionScope`: the encryption scope blocks and blobs are written with.
  std::string azure_encryption_scope;

  // Immutable backups (`objectLock: {mode, retainDays}`): every object written is locked for
  // `object_lock_retain_days` days after its upload. Mode "" (off), "GOVERNANCE" or
  // "COMPLIANCE" (S3 names; GCS and Azure take them, or their own "Unlocked" / "Locked",
  // which mean the same: GOVERNANCE = Unlocked, COMPLIANCE = Locked).
  std::string object_lock_mode;
  int object_lock_retain_days = 0;

  // The prefix joined to a relative key ("" prefix: the key itself).
  std::string FullKey(const std::string& relative) const;
};

// Parses a BackupTarget object. `path` names it in messages ("spec.backup.target").
// Unknown fields are ignored. Wrong types are kInvalidArgument naming the field.
Result<TargetConfig> ParseTarget(const nlohmann::json& j, const std::string& path,
                                 const std::string& default_provider = "s3");

// Checks the contract's rules (provider known, bucket set, endpoint required for S3,
// storageAccount for Azure, partSize >= 5242880, concurrency 1..10; sse only for s3 and one
// of AES256 / aws:kms, kmsKeyId only with sse aws:kms, gcs.kmsKeyName only for gcs,
// azure.encryptionScope only for azure, objectLock not for file, its mode one of GOVERNANCE /
// COMPLIANCE / Unlocked / Locked and retainDays 1..36500 whenever a mode is set). `path` as
// above; kInvalidArgument (Stage::kConfig, Reason::kInvalidValue) naming the field and the fix.
Status ValidateTarget(const TargetConfig& target, const std::string& path);

// The BackupTarget as JSON (contract field names), for status and Job arguments.
nlohmann::json TargetToJson(const TargetConfig& target);

// The object lock mode in S3's terms: "GOVERNANCE" for "GOVERNANCE" / "Unlocked",
// "COMPLIANCE" for "COMPLIANCE" / "Locked", "" otherwise.
std::string S3LockMode(const std::string& mode);
// The same in GCS's and Azure's terms: "Unlocked" or "Locked" ("" otherwise).
std::string UnlockedOrLocked(const std::string& mode);

// Settings of a store that are not part of the BackupTarget contract: what the CLI's
// run-control flags set. The defaults are what the standalone scheduler and the operator's
// Jobs use.
struct StoreOptions {
  // Every request of a network provider (s3, gcs, azure) fails as stalled when no byte moves
  // for this long, and is retried like a dropped connection (--storage-stall-timeout). The
  // file provider has no such limit.
  std::chrono::milliseconds stall_time = kDefaultStallTime;
};

// Opens the store the target describes, with `options`. Validates first. Providers read
// their credentials from `credentials_dir` or the environment here, so a missing key fails
// now, by name. Sends no request. Errors are configuration errors (Stage::kConfig,
// kInvalidArgument, with Reason::kNoCredentials when a provider has no credentials at all,
// else kInvalidValue or kNotFound for a missing file), except kFailedPrecondition for a
// provider this build lacks.
Result<std::unique_ptr<Store>> OpenStore(const TargetConfig& target,
                                         const StoreOptions& options = {});

}  // namespace bao::storage
