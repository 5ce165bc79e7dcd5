// bao-testserver: an imitation of an OpenBao Raft cluster of N nodes on 127.0.0.1 for tests.
// See README.md beside this file for every behaviour, flag and control endpoint.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cluster.h"
#include "common/files.h"
#include "common/log.h"
#include "common/redact.h"
#include "crypto/crypto.h"
#include "server.h"
#include "state.h"

namespace {

int Fail(const std::string& message) {
  std::cerr << "bao-testserver: " << bao::Redact(message) << "\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace bao::testserver;
  CLI::App app{"bao-testserver: imitates an OpenBao Raft cluster on 127.0.0.1 for tests"};
  int nodes = 3;
  std::string ready_file, tls_cert, tls_key, admin_token, jwt_key_file, jwt_mount = "jwt-operator";
  uint64_t state_size = 1 << 20, seed = 1;
  int gzip_level = 0;
  std::string cluster_name, seal_key;
  ListenAddress listen;
  app.add_option("--nodes", nodes, "number of nodes (1..16)")->capture_default_str();
  app.add_option("--ready-file", ready_file,
                 "write {\"nodes\":[urls],\"pid\":N} here once every listener is up");
  app.add_option("--tls-cert", tls_cert, "PEM certificate: serve HTTPS");
  app.add_option("--tls-key", tls_key, "PEM private key for --tls-cert");
  app.add_option("--host", listen.host, "IPv4 loopback address the listeners bind")
      ->capture_default_str();
  app.add_option("--first-port", listen.first_port, "node 0's port (0 = kernel-chosen)")
      ->capture_default_str();
  app.add_option("--admin-token", admin_token, "a token with every capability");
  app.add_option("--jwt-public-key", jwt_key_file, "PEM public key verifying RS256 JWT logins");
  app.add_option("--jwt-mount", jwt_mount, "JWT auth mount name")->capture_default_str();
  app.add_option("--state-size", state_size, "bytes of the generated state.bin")
      ->capture_default_str();
  app.add_option("--seed", seed, "seed of the generated state")->capture_default_str();
  app.add_option("--gzip-level", gzip_level, "gzip level of snapshots, 0..9 (0 = stored)")
      ->capture_default_str();
  app.add_option("--cluster-name", cluster_name,
                 "cluster_name in sys/health (default: vault-cluster-<8 hex>)");
  app.add_option("--seal-key", seal_key,
                 "the cluster's seal secret (default: random; different keys = different "
                 "clusters)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (nodes < 1 || nodes > 16) return Fail("--nodes must be between 1 and 16");
  if (gzip_level < 0 || gzip_level > 9) return Fail("--gzip-level must be between 0 and 9");
  if (tls_cert.empty() != tls_key.empty()) {
    return Fail("--tls-cert and --tls-key must be given together");
  }
  for (const auto& file : {tls_cert, tls_key}) {
    if (!file.empty() && access(file.c_str(), R_OK) != 0) {
      return Fail("cannot read " + file);
    }
  }
  if (!admin_token.empty()) bao::RegisterSecret(admin_token);
  if (seal_key.empty()) seal_key = bao::crypto::RandomHex(32);
  bao::RegisterSecret(seal_key);

  ClusterConfig config;
  config.nodes = nodes;
  config.cluster_name = cluster_name;
  config.seal_key = seal_key;
  config.admin_token = admin_token;
  config.jwt_mount = jwt_mount;
  config.gzip_level = gzip_level;
  if (!jwt_key_file.empty()) {
    auto pem = bao::ReadFile(jwt_key_file);
    if (!pem.ok()) return Fail("--jwt-public-key: " + pem.status().message());
    if (pem->find("-----BEGIN") == std::string::npos) {
      return Fail("--jwt-public-key " + jwt_key_file + " is not a PEM file");
    }
    config.jwt_public_key_pem = *pem;
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/bao-testserver-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) return Fail("cannot create a directory under " + tmpl);
  config.temp_dir = tmpl;
  auto cleanup = [&] {
    std::error_code ec;
    std::filesystem::remove_all(config.temp_dir, ec);
  };

  auto state = State::Generate(state_size, seed);
  if (!state.ok()) {
    cleanup();
    return Fail(state.status().ToString());
  }

  // Block the stop signals in every thread; the main thread waits for them with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  {
    Cluster cluster(config, *state);
    state = bao::Internal("moved");
    auto server = std::make_unique<ClusterServer>(cluster, TlsFiles{tls_cert, tls_key}, listen);
    bao::Status started = server->Start();
    if (!started.ok()) {
      server->Stop();
      server->Join();
      cleanup();
      return Fail(started.ToString());
    }
    nlohmann::json ready = {{"nodes", server->Urls()}, {"pid", getpid()}};
    if (!ready_file.empty()) {
      bao::Status written = bao::WriteFileAtomic(ready_file, ready.dump() + "\n");
      if (!written.ok()) {
        server->Stop();
        server->Join();
        cleanup();
        return Fail("--ready-file: " + written.ToString());
      }
    }
    bao::log::Info("bao-testserver ready",
                   {{"nodes", ready["nodes"].dump()}, {"state_size", std::to_string(state_size)}});
    int sig = 0;
    sigwait(&stop_signals, &sig);
    bao::log::Info("bao-testserver stopping", {{"signal", std::to_string(sig)}});
    server->Stop();
    auto joined = std::async(std::launch::async, [&] { server->Join(); });
    if (joined.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
      bao::log::Warn("connections still open after 5 s; exiting anyway");
      cleanup();
      std::_Exit(0);
    }
    server.reset();
  }
  cleanup();
  return 0;
}
