// Azurite (the Azure Storage emulator, blob service only) for integration tests, started on a
// free loopback port with a fresh data directory, plus a runner for the independent Node
// client tests/integration/azure_check.js (@azure/storage-blob).
#pragma once

#include <string>
#include <vector>

#include "support/testing.h"

namespace bao::testing {

// The emulator's well-known account and published key.
constexpr const char* kAzuriteAccount = "devstoreaccount1";
constexpr const char* kAzuriteKey =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

// <peers>/node/node_modules (azurite, @azure/storage-blob).
std::string NodeModulesDir();

class Azurite {
 public:
  Azurite() = default;
  ~Azurite();
  Azurite(const Azurite&) = delete;
  Azurite& operator=(const Azurite&) = delete;

  // Starts `node azurite/dist/src/blob/main.js` with --skipApiVersionCheck and waits until it
  // answers HTTP. False with `error` filled (including Azurite's output) when it does not.
  bool Start(std::string* error);

  int port() const { return port_; }
  // http://127.0.0.1:<port>/devstoreaccount1
  std::string endpoint() const;
  // A connection string for the well-known account at this instance.
  std::string connection_string() const;

  // Runs azure_check.js `args` with this instance's connection string; the result's `out` is
  // the JSON line it printed.
  RunResult Check(const std::vector<std::string>& args) const;

 private:
  int port_ = 0;
  TempDir dir_;
  Process process_;
};

}  // namespace bao::testing
