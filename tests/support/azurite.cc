#include "support/azurite.h"

#include <chrono>
#include <map>

namespace bao::testing {

std::string NodeModulesDir() {
  return PeersDir() + "/node/node_modules";
}

Azurite::~Azurite() {
  if (process_.pid() > 0) process_.Stop(std::chrono::milliseconds(3000));
}

void Azurite::AddAccount(const std::string& name, const std::string& key) {
  accounts_ += ";" + name + ":" + key;
}

bool Azurite::Start(std::string* error) {
  port_ = FreePort();
  std::string main_js = NodeModulesDir() + "/azurite/dist/src/blob/main.js";
  std::string start_error;
  std::map<std::string, std::string> env;
  if (!accounts_.empty()) {
    env["AZURITE_ACCOUNTS"] = std::string(kAzuriteAccount) + ":" + kAzuriteKey + accounts_;
  }
  if (!process_.Start(
          {"node", main_js, "--blobHost", "127.0.0.1", "--blobPort", std::to_string(port_),
           "--location", dir_.path(), "--skipApiVersionCheck", "--silent"},
          env, &start_error)) {
    *error = "cannot start Azurite (" + main_js + "): " + start_error;
    return false;
  }
  if (!WaitForHttp("http://127.0.0.1:" + std::to_string(port_) + "/", std::chrono::seconds(30))) {
    *error = "Azurite did not answer on port " + std::to_string(port_) +
             "; stdout: " + process_.Stdout() + " stderr: " + process_.Stderr();
    return false;
  }
  return true;
}

std::string Azurite::endpoint() const {
  return endpoint(kAzuriteAccount);
}

std::string Azurite::endpoint(const std::string& account) const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/" + account;
}

std::string Azurite::connection_string() const {
  return std::string("DefaultEndpointsProtocol=http;AccountName=") + kAzuriteAccount +
         ";AccountKey=" + kAzuriteKey + ";BlobEndpoint=" + endpoint() + ";";
}

RunResult Azurite::Check(const std::vector<std::string>& args,
                         const std::string& connection_string) const {
  std::vector<std::string> argv = {
      "node", std::string(BAO_SOURCE_DIR) + "/tests/integration/azure_check.js"};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(
      argv,
      {{"AZ_CONN", connection_string.empty() ? this->connection_string() : connection_string},
       {"NODE_PATH", NodeModulesDir()}},
      std::chrono::seconds(120));
}

}  // namespace bao::testing
