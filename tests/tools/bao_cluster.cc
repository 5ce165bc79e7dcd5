// bao-cluster: starts a real OpenBao Raft cluster (tests/support/openbao.h) for `make demo` and
// the benchmarks, writes what a script needs to reach it into --info-file, and keeps it running
// until SIGTERM or SIGINT, then stops every node and removes its data.
//
//   bao-cluster --nodes 3 --info-file run/a.json [--tls] [--fill BYTES]
//   -> {"nodes":["http://127.0.0.1:P",...],"rootToken":"...","unsealKey":"...","caFile":""}
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "support/openbao.h"

int main(int argc, char** argv) {
  CLI::App app{"bao-cluster: a real OpenBao Raft cluster on 127.0.0.1 for demos and benchmarks"};
  int nodes = 3;
  bool tls = false;
  std::string info_file;
  uint64_t fill = 0;
  app.add_option("--nodes", nodes, "number of nodes (1..5)")->check(CLI::Range(1, 5));
  app.add_flag("--tls", tls, "serve HTTPS with a fresh test CA (its file is in the info file)");
  app.add_option("--fill", fill,
                 "write about this many bytes of incompressible KV data first (snapshots grow "
                 "by as much)");
  app.add_option("--info-file", info_file, "where to write the cluster's addresses and keys")
      ->required();
  CLI11_PARSE(app, argc, argv);

  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  bao::testing::RealBaoCluster cluster({.nodes = nodes, .tls = tls});
  bao::Status s = cluster.Start();
  if (s.ok() && fill > 0) s = cluster.Fill(fill);
  if (!s.ok()) {
    std::fprintf(stderr, "bao-cluster: %s\n", s.message().c_str());
    return 1;
  }
  nlohmann::json info = {{"nodes", cluster.Urls()},
                         {"rootToken", cluster.root_token()},
                         {"unsealKey", cluster.unseal_key()},
                         {"caFile", cluster.ca_file()}};
  std::string tmp = info_file + ".tmp";
  bao::testing::WriteText(tmp, info.dump());
  std::filesystem::rename(tmp, info_file);
  int sig = 0;
  sigwait(&stop, &sig);
  cluster.Stop();
  std::filesystem::remove(info_file);
  return 0;
}
