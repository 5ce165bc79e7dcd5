// The subcommands, each returning the process exit code.
#pragma once

#include <string>

#include "cli/settings.h"

namespace bao::cli {

struct CommandOptions {
  std::string key;
  std::string file_prefix;
  std::string result_file;
};

// `bao-backup backup`: one backup; prints the result JSON as the last stdout line.
int RunBackupCommand(const Flags& flags, const CommandOptions& opts);

}  // namespace bao::cli
