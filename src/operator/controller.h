// The running operator: the backup manager and the restore controller. Watches
// OpenBaoClusters, OpenBaoRestores and the operator's Jobs (informers), keeps a work queue of
// clusters and restores with per-item due times (next slot, Job polls, error backoff),
// reconciles only while holding the Lease (k8s::LeaderElector), and serves /healthz, /readyz
// and /metrics over HTTP (cpp-httplib). One worker thread: reconciles are serialized. With
// watch namespaces it only lists and watches those (a namespaced install's Roles suffice);
// without, cluster-wide. Per-cluster gauges in /metrics come from the informer cache, so every
// replica serves them.
#pragma once

#include <atomic>
#include <functional>

#include "common/context.h"
#include <string>
#include <vector>

#include "common/status.h"
#include "k8s/client.h"
#include "operator/backup_manager.h"
#include "operator/restore_manager.h"

namespace bao::op {

struct ControllerOptions {
  std::vector<std::string> watch_namespaces;  // empty = all namespaces
  std::string lease_namespace = "default";
  std::string lease_name = "bao-backup-operator";
  std::string identity;  // unique per replica (pod name + random suffix)
  // Where /healthz, /readyz and /metrics listen: "HOST:PORT" or ":PORT" (all addresses);
  // "0" or "" = no HTTP server. Checked by ParseBindAddress.
  std::string metrics_bind_address = ":8080";
  ManagerOptions manager;
  // Which controllers run (--controllers): the backup manager (OpenBaoCluster spec.backup) and
  // the restore controller (OpenBaoRestore).
  bool backups = true;
  bool restores = true;
  std::chrono::seconds resync{300};  // every cluster is reconciled at least this often
  // A failed reconcile is retried after min_backoff, doubling per failure in a row up to
  // max_backoff (a refused Job should not be retried every few seconds forever).
  std::chrono::milliseconds min_backoff{5000};
  std::chrono::milliseconds max_backoff{300000};
};

struct BindAddress {
  std::string host;  // "0.0.0.0" for ":PORT"
  int port = 0;      // 0 = no server
};
// Parses ControllerOptions::metrics_bind_address. kInvalidArgument naming the flag
// (--metrics-bind-address) and the accepted forms.
Result<BindAddress> ParseBindAddress(const std::string& text);

// Runs until `ctx` is cancelled; then releases the Lease and returns ok. An error when the
// bind address is malformed or cannot be bound. `client` must outlive the call. Every
// reconcile runs behind a barrier: whatever goes wrong in it (an error, or an exception from
// an object of an unexpected shape) becomes a Warning Event on the object and a requeue with
// backoff, never the end of the process.
Status RunController(k8s::Client* client, const ControllerOptions& options, const Context& ctx);

// The barrier: runs `reconcile`, turning an exception into kInternal naming the object.
Result<ReconcileResult> Guarded(const std::string& key,
                                const std::function<Result<ReconcileResult>()>& reconcile);

}  // namespace bao::op
