#include "support/k8s_operator.h"

#include <charconv>
#include <filesystem>
#include <map>
#include <sstream>

#include "common/yaml_json.h"
#include "crypto/crypto.h"
#include "support/testing.h"

namespace bao::testing {

using nlohmann::json;
using namespace std::chrono_literals;

std::string ChartDir() {
  return std::string(BAO_SOURCE_DIR) + "/deploy/helm/bao-backup";
}

Result<std::string> RenderChart(const std::string& release, const std::string& ns,
                                const std::vector<std::string>& args) {
  std::string helm = PeerBinary("helm");
  std::vector<std::string> argv = {helm, "template", release, ChartDir(), "--namespace", ns};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = Run(argv, {}, 60s);
  if (r.exit_code != 0) return Internal("helm template failed (" + helm + "): " + r.err);
  return r.out;
}

std::pair<std::string, std::string> ChartServiceAccount(const std::string& rendered) {
  // The documents of the stream, split at "---" lines.
  std::vector<std::string> docs(1);
  std::istringstream in(rendered);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("---", 0) == 0) {
      docs.emplace_back();
    } else {
      docs.back() += line + "\n";
    }
  }
  for (const std::string& doc : docs) {
    Result<json> obj = YamlToJson(doc);
    if (!obj.ok() || !obj->is_object() || obj->value("kind", "") != "ServiceAccount") continue;
    const json& meta = obj->value("metadata", json::object());
    return {meta.value("namespace", ""), meta.value("name", "")};
  }
  return {};
}

Result<std::string> InstallChart(RealKubeApiServer& server, const std::string& release,
                                 const std::string& ns, const std::vector<std::string>& args,
                                 const std::string& probe_ns) {
  for (const char* crd : {"openbaocluster.yaml", "openbaorestore.yaml"}) {
    BAO_RETURN_IF_ERROR(server.ApplyFile(ChartDir() + "/crds/" + crd));
  }
  BAO_RETURN_IF_ERROR(
      server.Apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: " + ns + "}\n"));
  BAO_ASSIGN_OR_RETURN(std::string rendered, RenderChart(release, ns, args));
  BAO_RETURN_IF_ERROR(server.Apply(rendered));
  auto [sa_ns, sa] = ChartServiceAccount(rendered);
  if (sa.empty()) return Internal("the rendered chart has no ServiceAccount");
  BAO_ASSIGN_OR_RETURN(std::string token, server.ServiceAccountToken(sa_ns, sa));
  k8s::Client probe(server.ConfigFor(token, probe_ns.empty() ? "default" : probe_ns));
  if (!WaitUntil([&] { return probe.List(k8s::kOpenBaoClusters, probe_ns).ok(); }, 20s)) {
    return DeadlineExceeded("the chart's RBAC for " + sa_ns + "/" + sa +
                            " did not take effect within 20 s");
  }
  return token;
}

std::string Kubeconfig(const RealKubeApiServer& server, const std::string& token,
                       const std::string& ns) {
  return "apiVersion: v1\nkind: Config\ncurrent-context: t\nclusters:\n- name: t\n  cluster:\n"
         "    server: " +
         server.url() + "\n    certificate-authority: " + server.ca_file() +
         "\nusers:\n- name: u\n  user:\n    token: " + token +
         "\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: u\n    namespace: " + ns +
         "\n";
}

Result<LocalRun> RunJobLocally(k8s::Client& client, const json& job,
                               const std::vector<std::string>& bao_urls, const std::string& binary,
                               std::chrono::milliseconds deadline) {
  TempDir root;
  const std::string ns = job["metadata"].value("namespace", "default");
  const json& pod = job["spec"]["template"]["spec"];
  const json& container = pod["containers"][0];
  std::map<std::string, json> volumes;
  for (const json& v : pod["volumes"]) volumes[v["name"]] = v;
  const json annotations = job["spec"]["template"]["metadata"].value("annotations", json::object());
  for (const json& m : container["volumeMounts"]) {
    auto it = volumes.find(m["name"]);
    if (it == volumes.end()) continue;
    const json& volume = it->second;
    std::string dir = root.path() + m["mountPath"].get<std::string>();
    if (volume.contains("downwardAPI")) {
      // Files of Pod annotations, as the kubelet projects them; absolute paths under /etc/bao/
      // inside them point into `root` like the arguments below.
      std::filesystem::create_directories(dir);
      for (const json& item : volume["downwardAPI"]["items"]) {
        std::string field = item["fieldRef"]["fieldPath"];
        const std::string open = "metadata.annotations['";
        if (!field.starts_with(open) || !field.ends_with("']")) {
          return InvalidArgument("RunJobLocally: unsupported fieldPath " + field);
        }
        std::string name = field.substr(open.size(), field.size() - open.size() - 2);
        std::string text = annotations.value(name, "");
        for (size_t at = text.find("\"/etc/bao/"); at != std::string::npos;
             at = text.find("\"/etc/bao/", at + root.path().size() + 2)) {
          text.insert(at + 1, root.path());
        }
        WriteText(dir + "/" + item["path"].get<std::string>(), text);
      }
      continue;
    }
    if (!volume.contains("secret")) continue;
    std::filesystem::create_directories(dir);
    Result<json> got = client.Get(k8s::kSecrets, ns, volume["secret"]["secretName"]);
    if (!got.ok() && got.status().code() == Code::kNotFound &&
        volume["secret"].value("optional", false)) {
      continue;  // an optional Secret that does not exist: an empty directory
    }
    BAO_ASSIGN_OR_RETURN(json secret, std::move(got));
    const json data = secret.value("data", json::object());
    for (const auto& [key, value] : data.items()) {
      Result<std::string> decoded = crypto::Base64Decode(value.get<std::string>());
      if (!decoded.ok()) return decoded.status();
      WriteText(dir + "/" + key, *decoded);
    }
  }
  const std::string cluster =
      job["metadata"].value("annotations", json::object()).value("openbao.org/cluster", "");
  const std::string prefix = "https://" + cluster + "-";
  std::vector<std::string> argv = {binary};
  for (const json& a : container["args"]) {
    std::string arg = a;
    if (!cluster.empty() && arg.rfind(prefix, 0) == 0 && !bao_urls.empty()) {
      size_t i = 0;
      std::string rest = arg.substr(prefix.size());
      std::from_chars(rest.data(), rest.data() + rest.size(), i);
      arg = bao_urls[i % bao_urls.size()];
    } else if (arg.rfind("/etc/bao/", 0) == 0 || arg.rfind("/var/run/secrets/", 0) == 0) {
      arg = root.path() + arg;
    } else if (arg == "/dev/termination-log") {
      arg = root.File("termination-log");
    }
    argv.push_back(arg);
  }
  LocalRun out;
  out.run = Run(argv, {}, deadline);
  out.message = ReadText(root.File("termination-log"));
  return out;
}

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
