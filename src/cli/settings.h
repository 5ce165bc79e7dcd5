// How the CLI turns flags, environment and a --config file into one configuration.
// Precedence, highest first: flags, environment variables, the --config file, defaults.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "backup/spec.h"
#include "common/status.h"
#include "openbao/client.h"
#include "storage/target.h"

namespace bao::cli {

// Values as given on the command line; nullopt/empty = not given.
struct Flags {
  std::string config_file;
  // OpenBao connection and authentication.
  std::vector<std::string> bao_addr;
  std::optional<std::string> bao_cacert;
  std::optional<bool> bao_skip_verify;
  std::optional<std::string> bao_token;
  std::optional<std::string> bao_token_file;
  std::optional<std::string> jwt_role;
  std::optional<std::string> jwt_token_file;
  std::optional<std::string> jwt_mount;
  std::optional<std::string> leader_wait;
  std::optional<std::string> source_stall_timeout;   // the snapshot stream's stall limit
  std::optional<std::string> storage_stall_timeout;  // every storage request's stall limit
  // Target (contract field names in kebab-case).
  std::optional<std::string> provider;
  std::optional<std::string> endpoint;
  std::optional<std::string> bucket;
  std::optional<std::string> path_prefix;
  std::optional<std::string> credentials_dir;
  std::optional<uint64_t> part_size;
  std::optional<int> concurrency;
  std::optional<std::string> region;
  std::optional<std::string> role_arn;
  std::optional<bool> use_path_style;
  std::optional<std::string> gcs_project;
  std::optional<std::string> storage_account;
  std::optional<std::string> container;
  std::optional<bool> insecure_skip_verify;
  // Extra targets (--extra-target FILE, repeatable): YAML files each holding one BackupTarget
  // (with optional name and credentialsDir). Given, they replace the config file's extraTargets.
  std::vector<std::string> extra_target_files;
  // list, verify, restore, prune: which target to use ("primary" or an extra target's name).
  std::optional<std::string> target_name;
  std::optional<std::string> sse;               // target.sse
  std::optional<std::string> kms_key_id;        // target.kmsKeyId
  std::optional<std::string> kms_key_name;      // target.gcs.kmsKeyName
  std::optional<std::string> encryption_scope;  // target.azure.encryptionScope
  std::optional<std::string> object_lock_mode;  // target.objectLock.mode
  std::optional<int> object_lock_retain_days;   // target.objectLock.retainDays
  // Naming.
  std::optional<std::string> ns;
  std::optional<std::string> cluster;
  // Retention.
  std::optional<int64_t> max_count;
  std::optional<std::string> max_age;
  std::optional<int> keep_daily, keep_weekly, keep_monthly;
};

// Environment lookup; nullopt when unset. Tests pass a map-backed one.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup ProcessEnv();

struct Settings {
  openbao::ConnectionConfig connection;
  openbao::AuthConfig auth;
  backup::BackupSpec spec;      // target, retention, schedule, jwtAuthRole from the config file
  storage::StoreOptions store;  // --storage-stall-timeout
  std::string ns = "default";
  std::string cluster;
};

// Resolves flags, environment and config file. Reads the token file and the config file;
// kInvalidArgument naming the flag, variable or config field that is wrong.
Result<Settings> ResolveSettings(const Flags& flags, const EnvLookup& env);

// Checks what every command that talks to a store needs (target rules, every extra target's
// too).
Status ValidateTargetSettings(const Settings& settings);

// Makes the target named `name` the one `settings.spec.target` describes: "primary" (or empty)
// keeps it, an extra target's name puts that target in its place (and no extra targets remain).
// kInvalidArgument naming --target and the names there are when none is called `name`.
Status SelectTarget(const std::string& name, Settings* settings);

}  // namespace bao::cli
