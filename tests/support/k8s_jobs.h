// Plays the Job controller and the kubelet for one backup Job, with the object shapes a real
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

#include "common/status.h"
#include "common/time.h"
#include "k8s/client.h"

namespace bao::testing {

// Finishes `job` (as read from the API): the run started at `start` and ended at `end` with the
// termination `message`; `succeeded` picks the exit code (0 or 1) and the conditions. `client`
// must be allowed to create Pods and write pods/status and jobs/status.
Status FinishJob(k8s::Client& client, const nlohmann::json& job, bool succeeded,
                 const std::string& message, TimePoint start, TimePoint end);

}  // namespace bao::testing
