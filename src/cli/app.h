// The bao-backup command line: one binary, one subcommand per task.
#pragma once

namespace bao::cli {

// Parses argv, runs the chosen subcommand and returns the process exit code (the contract's
// codes: 0 ok, 1 configuration, 2 authentication, 3 leader discovery, 4 snapshot read,
// 5 storage, 6 verification).
int RunCli(int argc, char** argv);

}  // namespace bao::cli
