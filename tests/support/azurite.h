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

  // Before Start(): also serve storage account `name` with the base64 account key `key`
  // (Azurite's AZURITE_ACCOUNTS; the well-known account stays).
  void AddAccount(const std::string& name, const std::string& key);

  // Starts `node azurite/dist/src/blob/main.js` with --skipApiVersionCheck and waits until it
  // answers HTTP. False with `error` filled (including Azurite's output) when it does not.
  bool Start(std::string* error);

  int port() const { return port_; }
  // http://127.0.0.1:<port>/devstoreaccount1
  std::string endpoint() const;
  // http://127.0.0.1:<port>/<account>
  std::string endpoint(const std::string& account) const;
  // A connection string for the well-known account at this instance.
  std::string connection_string() const;

  // Runs azure_check.js `args` with this instance's connection string (or `connection_string`,
  // e.g. for an account added with AddAccount()); the result's `out` is the JSON line it
  // printed.
  RunResult Check(const std::vector<std::string>& args,
                  const std::string& connection_string = "") const;

 private:
  int port_ = 0;
  std::string accounts_;  // AZURITE_ACCOUNTS entries beyond the well-known account
  TempDir dir_;
  Process process_;
};

}  // namespace bao::testing
