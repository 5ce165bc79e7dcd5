#include "k8s/config.h"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <map>
#include <vector>

#include "common/files.h"
#include "common/redact.h"
#include "crypto/crypto.h"

namespace bao::k8s {
namespace {

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::string Resolve(const std::string& dir, const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  return dir + "/" + path;
}

std::string Scalar(const YAML::Node& node, const char* key) {
  const YAML::Node v = node[key];
  return v && v.IsScalar() ? v.Scalar() : "";
}

struct Named {
  YAML::Node node;
  std::string dir;  // directory of the file it came from
};

}  // namespace

Result<Config> InClusterConfig(const InClusterPaths& paths) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || *host == '\0' || port == nullptr || *port == '\0') {
    return FailedPrecondition(
        "not running in a Kubernetes cluster: KUBERNETES_SERVICE_HOST and "
        "KUBERNETES_SERVICE_PORT are not set");
  }
  Config config;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";  // IPv6
  config.server = "https://" + h + ":" + port;
  BAO_ASSIGN_OR_RETURN(std::optional<std::string> token, ReadOptionalTrimmed(paths.token));
  if (!token || token->empty()) {
    return NotFound("the ServiceAccount token " + paths.token +
                    " is missing or empty; is automountServiceAccountToken disabled?");
  }
  RegisterSecret(*token);
  config.token_file = paths.token;
  struct stat st;
  if (stat(paths.ca_cert.c_str(), &st) == 0) config.tls.ca_file = paths.ca_cert;
  BAO_ASSIGN_OR_RETURN(std::optional<std::string> ns, ReadOptionalTrimmed(paths.ns));
  if (ns && !ns->empty()) config.default_namespace = *ns;
  return config;
}

Result<Config> LoadKubeconfig(const std::string& path, const std::string& context_override) {
  std::map<std::string, Named> clusters, users, contexts;
  std::string current;
  std::vector<std::string> files;
  for (size_t start = 0; start <= path.size();) {
    size_t colon = path.find(':', start);
    if (colon == std::string::npos) colon = path.size();
    if (colon > start) files.push_back(path.substr(start, colon - start));
    start = colon + 1;
  }
  if (files.empty()) return InvalidArgument("no kubeconfig path given");
  bool any = false;
  for (const auto& file : files) {
    Result<std::string> text = ReadFile(file);
    if (!text.ok()) {
      if (text.status().code() == Code::kNotFound && files.size() > 1) continue;
      return text.status().WithContext("kubeconfig");
    }
    any = true;
    YAML::Node root;
    try {
      root = YAML::Load(*text);
    } catch (const std::exception& e) {
      return InvalidArgument("kubeconfig " + file + " is not valid YAML: " + e.what());
    }
    if (!root.IsMap()) return InvalidArgument("kubeconfig " + file + " is not a YAML mapping");
    auto collect = [&](const char* list, const char* inner, std::map<std::string, Named>* out) {
      const YAML::Node items = root[list];
      if (!items || !items.IsSequence()) return;
      for (const auto& item : items) {
        std::string name = Scalar(item, "name");
        if (name.empty() || out->contains(name) || !item[inner]) continue;
        (*out)[name] = {item[inner], DirOf(file)};
      }
    };
    collect("clusters", "cluster", &clusters);
    collect("users", "user", &users);
    collect("contexts", "context", &contexts);
    if (current.empty()) current = Scalar(root, "current-context");
  }
  if (!any) return NotFound("none of the kubeconfig files exist: " + path);
  std::string context_name = context_override.empty() ? current : context_override;
  if (context_name.empty()) {
    return InvalidArgument("kubeconfig " + path + " sets no current-context; pick a context");
  }
  auto ctx = contexts.find(context_name);
  if (ctx == contexts.end()) {
    return InvalidArgument("kubeconfig context \"" + context_name + "\" is not defined in " + path);
  }
  std::string cluster_name = Scalar(ctx->second.node, "cluster");
  std::string user_name = Scalar(ctx->second.node, "user");
  auto cluster = clusters.find(cluster_name);
  if (cluster == clusters.end()) {
    return InvalidArgument("kubeconfig context \"" + context_name + "\" names cluster \"" +
                           cluster_name + "\", which is not defined");
  }
  Config config;
  const YAML::Node& c = cluster->second.node;
  config.server = Scalar(c, "server");
  while (!config.server.empty() && config.server.back() == '/') config.server.pop_back();
  if (config.server.empty()) {
    return InvalidArgument("kubeconfig cluster \"" + cluster_name + "\" has no server");
  }
  std::string ca_data = Scalar(c, "certificate-authority-data");
  if (!ca_data.empty()) {
    Result<std::string> pem = crypto::Base64Decode(ca_data);
    if (!pem.ok()) {
      return InvalidArgument("kubeconfig cluster \"" + cluster_name +
                             "\": certificate-authority-data is not valid base64");
    }
    config.tls.ca_pem = *pem;
  } else if (!Scalar(c, "certificate-authority").empty()) {
    config.tls.ca_file = Resolve(cluster->second.dir, Scalar(c, "certificate-authority"));
  }
  config.tls.insecure_skip_verify = Scalar(c, "insecure-skip-tls-verify") == "true";
  std::string ns = Scalar(ctx->second.node, "namespace");
  if (!ns.empty()) config.default_namespace = ns;
  if (!user_name.empty()) {
    auto user = users.find(user_name);
    if (user == users.end()) {
      return InvalidArgument("kubeconfig context \"" + context_name + "\" names user \"" +
                             user_name + "\", which is not defined");
    }
    const YAML::Node& u = user->second.node;
    config.token = Scalar(u, "token");
    if (!Scalar(u, "tokenFile").empty()) {
      config.token_file = Resolve(user->second.dir, Scalar(u, "tokenFile"));
    }
    RegisterSecret(config.token);
    bool has_cert = u["client-certificate"] || u["client-certificate-data"];
    bool has_plugin = u["exec"] || u["auth-provider"];
    if (config.token.empty() && config.token_file.empty() && (has_cert || has_plugin)) {
      return InvalidArgument("kubeconfig user \"" + user_name + "\" uses " +
                             (has_cert ? "a client certificate" : "an exec/auth-provider plugin") +
                             ", which bao-backup does not support; use a bearer token "
                             "(token or tokenFile)");
    }
  }
  return config;
}

Result<Config> DefaultConfig() {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  if (host != nullptr && *host != '\0') return InClusterConfig();
  const char* env = std::getenv("KUBECONFIG");
  if (env != nullptr && *env != '\0') return LoadKubeconfig(env);
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') {
    return FailedPrecondition(
        "no Kubernetes configuration: not in a cluster, KUBECONFIG and "
        "HOME unset");
  }
  return LoadKubeconfig(std::string(home) + "/.kube/config");
}

TokenSource::TokenSource(const Config& config) : file_(config.token_file), token_(config.token) {}

Result<std::string> TokenSource::Token() {
  std::lock_guard<std::mutex> lock(mu_);
  if (file_.empty()) return token_;
  struct stat st;
  if (stat(file_.c_str(), &st) != 0) {
    if (!token_.empty()) return token_;  // keep the last token while a rotation is in flight
    return NotFound("the bearer token file " + file_ + " does not exist");
  }
  std::tuple<long, long, long, unsigned long> id{st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
                                                 static_cast<long>(st.st_size), st.st_ino};
  if (seen_ && *seen_ == id) return token_;
  BAO_ASSIGN_OR_RETURN(std::optional<std::string> token, ReadOptionalTrimmed(file_));
  if (!token || token->empty()) {
    if (!token_.empty()) return token_;
    return NotFound("the bearer token file " + file_ + " is empty");
  }
  RegisterSecret(*token);
  token_ = *token;
  seen_ = id;
  return token_;
}

}  // namespace bao::k8s
