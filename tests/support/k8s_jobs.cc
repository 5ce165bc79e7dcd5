#include "support/k8s_jobs.h"

#include "crypto/crypto.h"

namespace bao::testing {

using nlohmann::json;

Status FinishJob(k8s::Client& client, const json& job, bool succeeded, const std::string& message,
                 TimePoint start, TimePoint end) {
  const json& meta = job["metadata"];
  const std::string job_name = meta.value("name", "");
  const std::string ns = meta.value("namespace", "default");
  const std::string started = FormatRfc3339(start), ended = FormatRfc3339(end);
  json labels = job["spec"]["template"]["metadata"].value("labels", json::object());
  labels["job-name"] = job_name;
  labels["batch.kubernetes.io/job-name"] = job_name;
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata",
               {{"name", job_name + "-" + crypto::RandomHex(3)},
                {"namespace", ns},
                {"labels", labels},
                {"ownerReferences", json::array({{{"apiVersion", "batch/v1"},
                                                  {"kind", "Job"},
                                                  {"name", job_name},
                                                  {"uid", meta.value("uid", "")},
                                                  {"controller", true},
                                                  {"blockOwnerDeletion", true}}})}}},
              {"spec", job["spec"]["template"]["spec"]}};
  BAO_ASSIGN_OR_RETURN(json created, client.Create(k8s::kPods, ns, pod));
  const json& container = job["spec"]["template"]["spec"]["containers"][0];
  json terminated = {{"exitCode", succeeded ? 0 : 1},
                     {"reason", succeeded ? "Completed" : "Error"},
                     {"message", message},
                     {"startedAt", started},
                     {"finishedAt", ended}};
  json pod_status = {
      {"phase", succeeded ? "Succeeded" : "Failed"},
      {"startTime", started},
      {"containerStatuses", json::array({{{"name", container.value("name", "")},
                                          {"image", container.value("image", "")},
                                          {"imageID", ""},
                                          {"ready", false},
                                          {"restartCount", 0},
                                          {"started", false},
                                          {"state", {{"terminated", terminated}}}}})}};
  BAO_RETURN_IF_ERROR(
      client.PatchStatus(k8s::kPods, ns, created["metadata"]["name"], {{"status", pod_status}})
          .status());
  // The Job controller's order: first the criterion, then the final condition.
  json criterion = {{"type", succeeded ? "SuccessCriteriaMet" : "FailureTarget"},
                    {"status", "True"},
                    {"reason", succeeded ? "CompletionsReached" : "BackoffLimitExceeded"},
                    {"message", succeeded ? "Reached expected number of succeeded pods"
                                          : "Job has reached the specified backoff limit"},
                    {"lastProbeTime", ended},
                    {"lastTransitionTime", ended}};
  json final_condition = criterion;
  final_condition["type"] = succeeded ? "Complete" : "Failed";
  if (succeeded) final_condition.erase("reason");
  if (succeeded) final_condition.erase("message");
  json status = {{"startTime", started},
                 {succeeded ? "succeeded" : "failed", 1},
                 {"ready", 0},
                 {"uncountedTerminatedPods", json::object()},
                 {"conditions", json::array({criterion, final_condition})}};
  if (succeeded) status["completionTime"] = ended;
  return client.PatchStatus(k8s::kJobs, ns, job_name, {{"status", status}}).status();
}

}  // namespace bao::testing
