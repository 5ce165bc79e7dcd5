// The running backup manager: watches OpenBaoClusters and backup Jobs (informers), keeps a
// work queue of clusters with per-cluster due times (next slot, Job polls, error backoff),
// reconciles only while holding the Lease (k8s::LeaderElector), and serves /healthz, /readyz
// and /metrics over HTTP (cpp-httplib). One worker thread: reconciles are serialized.
#pragma once

#include <atomic>
#include <string>

#include "common/status.h"
#include "k8s/client.h"
#include "operator/backup_manager.h"

namespace bao::op {

struct ControllerOptions {
  std::string watch_namespace;  // "" = all namespaces
  std::string lease_namespace = "default";
  std::string lease_name = "bao-backup-operator";
  std::string identity;  // unique per replica (pod name + random suffix)
  std::string listen_host = "0.0.0.0";
  int listen_port = 8080;  // 0 = no HTTP server
  ManagerOptions manager;
  std::chrono::seconds resync{300};  // every cluster is reconciled at least this often
};

// Runs until `*stop` becomes true; then releases the Lease and returns ok. An error when the
// HTTP port cannot be bound. `client` must outlive the call.
Status RunController(k8s::Client* client, const ControllerOptions& options,
                     const std::atomic<bool>* stop);

}  // namespace bao::op
