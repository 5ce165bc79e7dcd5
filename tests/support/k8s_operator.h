// What operator tests against a real API server share: installing the Helm chart as shipped,
// and playing the Job controller and the kubelet for one backup Job, with the object shapes a real
// kube-apiserver v1.33 accepts (checked against it in real_k8s_operator_test.cc), so the
// project's API imitation and the real server see the same writes:
//   - a Pod made from the Job's template (its spec, the job-name labels, a controller owner
//     reference to the Job), then its status: phase Succeeded/Failed, startTime, and the
//     container terminated with the executor's result as its message;
//   - the Job's status: startTime, then SuccessCriteriaMet (or FailureTarget) before Complete
//     (or Failed), completionTime only with Complete, succeeded/failed counts.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "k8s/client.h"
#include "support/kube_apiserver.h"
#include "support/testing.h"

namespace bao::testing {

// The operator's chart, deploy/helm/bao-backup in the source tree.
std::string ChartDir();

// `helm template <release> <chart> --namespace <ns> <args...>` with the peers' helm.
Result<std::string> RenderChart(const std::string& release, const std::string& ns,
                                const std::vector<std::string>& args = {});

// The ServiceAccount ("<namespace>", "<name>") that rendered chart output runs the operator as;
// empty strings when there is none.
std::pair<std::string, std::string> ChartServiceAccount(const std::string& rendered);

// Installs what `helm install` would on `server`: the chart's CRDs, namespace `ns`, the
// rendered templates (release `release`, `args` for --set); then waits until the operator's
// ServiceAccount may list OpenBaoClusters (in `probe_ns`, "" = all namespaces: RBAC takes a
// moment to reach the authorizer) and returns a TokenRequest token of it.
Result<std::string> InstallChart(RealKubeApiServer& server, const std::string& release,
                                 const std::string& ns, const std::vector<std::string>& args = {},
                                 const std::string& probe_ns = "");

// A kubeconfig file's text for `server` authenticating with `token` (CA from the server).
std::string Kubeconfig(const RealKubeApiServer& server, const std::string& token,
                       const std::string& ns = "default");

// What running a Job's executor here gave: the run and the termination message it wrote.
struct LocalRun {
  RunResult run;
  std::string message;
};

// Runs `job`'s executor on this machine the way the kubelet would run its Pod: every Secret the
// Pod mounts (read through `client`; an optional one that does not exist is an empty
// directory) is written under a temporary root at its mount path, and so is every downwardAPI
// file of a Pod annotation (its /etc/bao/ paths moved under the root too); in
// the arguments the in-cluster OpenBao addresses https://<c>-<i>.<c>.<ns>.svc:8200 become
// `bao_urls[i % size]`, mount paths and /dev/termination-log move under the root, and the
// command becomes `binary`. It does not finish the Job (FinishJob does).
Result<LocalRun> RunJobLocally(k8s::Client& client, const nlohmann::json& job,
                               const std::vector<std::string>& bao_urls, const std::string& binary,
                               std::chrono::milliseconds deadline = std::chrono::minutes(2));

// Finishes `job` (as read from the API): the run started at `start` and ended at `end` with the
// termination `message`; `succeeded` picks the exit code (0 or 1) and the conditions. `client`
// must be allowed to create Pods and write pods/status and jobs/status.
Status FinishJob(k8s::Client& client, const nlohmann::json& job, bool succeeded,
                 const std::string& message, TimePoint start, TimePoint end);

}  // namespace bao::testing
