// `bao-backup operator`: the Kubernetes backup manager (src/operator).
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "backup/exit_code.h"
#include "cli/commands.h"
#include "common/log.h"
#include "crypto/crypto.h"
#include "k8s/config.h"
#include "operator/controller.h"

namespace bao::cli {

namespace {
std::string Env(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}
}  // namespace

int RunOperatorCommand(const Context& ctx, const OperatorOptions& opts) {
  Result<k8s::Config> config =
      opts.kubeconfig.empty() ? k8s::DefaultConfig() : k8s::LoadKubeconfig(opts.kubeconfig);
  if (!config.ok()) {
    log::Error("cannot find the Kubernetes API: " + config.status().message());
    return static_cast<int>(backup::ExitCode::kConfig);
  }
  op::ControllerOptions o;
  o.watch_namespaces = opts.watch_namespaces;
  o.lease_namespace = opts.lease_namespace.empty() ? Env("POD_NAMESPACE", config->default_namespace)
                                                   : opts.lease_namespace;
  o.lease_name = opts.lease_name;
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  o.identity = Env("POD_NAME", host) + "_" + crypto::RandomHex(8);
  o.metrics_bind_address = opts.metrics_bind_address;
  auto enabled = [&](const char* c) {
    return std::find(opts.controllers.begin(), opts.controllers.end(), c) != opts.controllers.end();
  };
  o.backups = enabled("backup");
  o.restores = enabled("restore");
  o.manager.job.default_image = opts.image.empty() ? Env("BAO_BACKUP_IMAGE", "") : opts.image;
  o.manager.job.jwt_audience = Env("OPENBAO_JWT_AUDIENCE", "openbao-internal");
  if (o.manager.job.default_image.empty()) {
    log::Error("no executor image: set --image or BAO_BACKUP_IMAGE (the operator's own image)");
    return static_cast<int>(backup::ExitCode::kConfig);
  }
  config->user_agent = "bao-backup-operator";
  k8s::Client client(*config);
  Status s = op::RunController(&client, o, ctx);
  if (!s.ok()) {
    log::Error(s.message());
    return static_cast<int>(backup::ExitCode::kConfig);
  }
  return 0;
}

}  // namespace bao::cli
