// Where the Kubernetes API is and how to authenticate to it: in-cluster (ServiceAccount) or
// from a kubeconfig file. Client certificates and exec/auth-provider plugins are not supported
// (see docs/k8s-client.md); bearer tokens (inline or from a file) are.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>

#include "common/status.h"
#include "http/client.h"

namespace bao::k8s {

struct Config {
  std::string server;  // "https://10.0.0.1:443", no trailing slash
  http::TlsOptions tls;
  std::string token;       // static bearer token (registered as a secret)
  std::string token_file;  // re-read whenever it changes (wins over `token` when set)
  std::string default_namespace = "default";
  std::chrono::milliseconds request_timeout{30000};  // non-watch requests
  // Sent as User-Agent, and as ?fieldManager= on every write, so the API server's
  // metadata.managedFields and audit log name bao-backup as the writer.
  std::string user_agent = "bao-backup";
};

// Paths of the in-cluster ServiceAccount files; tests point them at temporary files.
struct InClusterPaths {
  std::string token = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  std::string ca_cert = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
  std::string ns = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
};

// In-cluster configuration from KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT and the
// ServiceAccount files. kFailedPrecondition when not running in a cluster (variables unset),
// kNotFound / kPermissionDenied when the token cannot be read. The CA file is used when present.
Result<Config> InClusterConfig(const InClusterPaths& paths = {});

// Loads a kubeconfig. `path` may list several files separated by ':' (like KUBECONFIG); for
// each named cluster, user and context the first definition wins, and current-context comes
// from the first file that sets it. `context` overrides current-context when not empty.
// Relative certificate-authority and tokenFile paths are resolved against the file's directory.
// kInvalidArgument for malformed YAML, a missing context/cluster/user, or an unsupported
// credential (client certificate or exec plugin without a token).
Result<Config> LoadKubeconfig(const std::string& path, const std::string& context = "");

// The usual resolution: in-cluster when KUBERNETES_SERVICE_HOST is set, else $KUBECONFIG, else
// ~/.kube/config.
Result<Config> DefaultConfig();

// Supplies the bearer token, re-reading `token_file` when its modification time, size or inode
// changes (kubelet rotates projected tokens by swapping a symlink). Thread-safe.
class TokenSource {
 public:
  explicit TokenSource(const Config& config);
  // The current token ("" when none is configured), or the error reading the file.
  Result<std::string> Token();

 private:
  std::mutex mu_;
  std::string file_;
  std::string token_;
  std::optional<std::tuple<long, long, long, unsigned long>> seen_;  // mtime s, ns, size, inode
};

}  // namespace bao::k8s
