// A real Kubernetes API server for tests: etcd (3.4, /usr/bin/etcd from Debian's etcd-server)
// and kube-apiserver (v1.33.13, built by scripts/install-peers.sh into $PEERS/bin) on 127.0.0.1
// free ports, with no controller manager, scheduler or kubelet. It authenticates a static admin
// token (group system:masters) and ServiceAccount tokens from the TokenRequest API, authorizes
// with RBAC (and Node), and runs the default admission plugins plus
// OwnerReferencesPermissionEnforcement, so RBAC rules, CRD schemas and admission are the real
// ones. Without a controller manager nothing reconciles: no garbage collection, no namespace
// deletion, no Deployment/Job controllers, no `default` ServiceAccounts.
//
// Serving certificate from MakeTestPki (verify with ca_file()); data in a TempDir. Start()
// polls /readyz (no sleeps) and, when the server does not come up, fails with the logs of both
// processes. The destructor stops both (SIGTERM, then SIGKILL); they also die with the test
// process (PR_SET_PDEATHSIG). Not thread-safe: use one instance from one thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "http/client.h"
#include "k8s/config.h"
#include "support/testing.h"

namespace bao::testing {

// One answer of the Kubernetes API: the HTTP status and the body parsed as JSON (a JSON string
// when it is not JSON, null when empty).
struct KubeReply {
  long status = 0;
  nlohmann::json body;
  bool ok() const { return status >= 200 && status < 300; }
  // "HTTP <status> <reason>: <message>" for a Status body, else "HTTP <status> <body>".
  std::string Describe() const;
};

class RealKubeApiServer {
 public:
  RealKubeApiServer();
  ~RealKubeApiServer();
  RealKubeApiServer(const RealKubeApiServer&) = delete;
  RealKubeApiServer& operator=(const RealKubeApiServer&) = delete;

  // The kube-apiserver binary of the peers cache ($PEERS/bin/kube-apiserver); "" when it or
  // etcd (EtcdBinary()) is not installed: the server cannot run without both.
  static std::string Binary();
  // etcd from PATH (Debian's etcd-server installs /usr/bin/etcd); "" when missing.
  static std::string EtcdBinary();

  // Starts etcd and kube-apiserver and waits (up to 60 s) until /readyz answers 200 and the
  // `default` namespace exists. kFailedPrecondition when a binary is missing,
  // kDeadlineExceeded (kInternal when a process exited), with both logs, when the server does
  // not come up.
  Status Start();
  // Stops kube-apiserver, then etcd (SIGTERM, then SIGKILL after a grace period).
  void Stop();

  // "https://127.0.0.1:PORT".
  const std::string& url() const { return url_; }
  // The static bearer token of user "admin" in group system:masters.
  const std::string& admin_token() const { return admin_token_; }
  // The CA certificate (PEM) that signed the serving certificate.
  const std::string& ca_file() const { return ca_file_; }
  http::TlsOptions Tls() const;
  // Server, TLS and the admin token; default namespace "default".
  k8s::Config AdminConfig() const;
  // The same with `token` instead (e.g. from ServiceAccountToken()).
  k8s::Config ConfigFor(const std::string& token,
                        const std::string& default_namespace = "default") const;

  // Server-side apply of every document of a multi-document YAML stream (PATCH
  // application/apply-patch+yaml, fieldManager=bao-backup-tests, force=true,
  // fieldValidation=Strict) as admin, in order. Namespaced objects without metadata.namespace
  // go to `default_namespace` ("" = "default"). Kinds map to resources through a fixed table
  // (core Namespace, ServiceAccount, Secret, ConfigMap, Service, Pod; RBAC; apps Deployment;
  // batch Job; policy PodDisruptionBudget; CustomResourceDefinition; openbao.org
  // OpenBaoCluster/OpenBaoRestore); `kind: List` applies its items. monitoring.coreos.com kinds
  // (ServiceMonitor, PodMonitor, PrometheusRule: not served here) are skipped with a note on
  // stderr; any other kind is kInvalidArgument. After a CustomResourceDefinition it waits (up
  // to 30 s) until the CRD is Established. The first failure stops and is returned, naming the
  // object and carrying the server's status and message.
  Status Apply(const std::string& yaml, const std::string& default_namespace = "");
  // Apply() of a file's contents; errors name the file.
  Status ApplyFile(const std::string& path, const std::string& default_namespace = "");

  // A token for ServiceAccount `ns`/`sa` from the TokenRequest API (POST
  // /api/v1/namespaces/{ns}/serviceaccounts/{sa}/token). Empty `audiences` = the API server's
  // own (https://kubernetes.default.svc); the server requires `ttl` >= 10 minutes.
  Result<std::string> ServiceAccountToken(const std::string& ns, const std::string& sa,
                                          const std::vector<std::string>& audiences = {},
                                          std::chrono::seconds ttl = std::chrono::hours(1));

  // One raw API call: `path` starts with "/" (e.g. "/api/v1/namespaces"); `token` "" = the
  // admin token. Fails only when no HTTP answer arrived.
  Result<KubeReply> Call(const std::string& method, const std::string& path,
                         const nlohmann::json& body = nullptr, const std::string& token = "",
                         const std::string& content_type = "application/json");

  // The last part of the etcd and kube-apiserver logs, for failure messages.
  std::string Logs() const;
  // The peak resident set size (VmHWM) of etcd plus kube-apiserver in KiB; 0 when not running.
  long PeakRssKiB() const;

 private:
  Status StartEtcd();
  Status StartApiServer();
  Status WaitFor(const std::string& what, std::chrono::milliseconds deadline,
                 const std::function<bool(std::string* state)>& done);
  Status ApplyObject(const nlohmann::json& object, const std::string& default_namespace);
  Status WaitForCrdEstablished(const std::string& name);

  TempDir dir_;
  std::unique_ptr<Process> etcd_, apiserver_;
  int etcd_client_port_ = 0, etcd_peer_port_ = 0, port_ = 0;
  std::string url_, admin_token_, ca_file_;
  http::Client http_;
};

}  // namespace bao::testing
