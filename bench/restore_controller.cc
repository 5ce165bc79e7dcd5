// restore_controller: a restore through the operator next to the same restore from the command
// line, on real peers: OpenBao 2.7.2 (one node, TLS) filled to about --size-mib, MinIO, and a
// real kube-apiserver + etcd with the Helm chart installed. The backup is made once with the
// CLI into MinIO; then, alternately --runs times each:
//   cli:        `bao-backup restore --key K --yes` of that object into the same cluster;
//   controller: an OpenBaoRestore of the same object, reconciled by the real `bao-backup
//               operator --controllers restore` process (as the chart's ServiceAccount); this
//               program plays the kubelet and runs each Job's executor locally.
// Reported per path: wall time (the controller's from the moment it reports phase Running to
// the moment it reports Completed, so Job creation, the executor and the status write are all
// inside), and for the controller also the whole request (creation to Completed, with the
// verification Job) and the executor's own run. The snapshot must be at least 150 MB.
//
//   restore_controller [--size-mib N] [--runs N]
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/time.h"
#include "crypto/crypto.h"
#include "k8s/client.h"
#include "support/k8s_operator.h"
#include "support/kube_apiserver.h"
#include "support/minio.h"
#include "support/openbao.h"
#include "support/testing.h"

namespace bao::bench {
namespace {

using nlohmann::json;
using Steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr const char* kNs = "bench";

double Seconds(Steady::duration d) {
  return std::chrono::duration<double>(d).count();
}

struct Options {
  int size_mib = 160;
  int runs = 3;
};

int Fail(const std::string& what, const Status& s) {
  std::fprintf(stderr, "restore_controller: %s: %s\n", what.c_str(), s.ToString().c_str());
  return 1;
}

int Main(const Options& opt) {
  testing::RealBaoCluster bao({.nodes = 1, .tls = true});
  if (Status s = bao.Start(); !s.ok()) return Fail("OpenBao", s);
  if (Status s = bao.Fill(static_cast<uint64_t>(opt.size_mib) << 20); !s.ok()) {
    return Fail("fill", s);
  }
  testing::MinioServer minio;
  std::string error;
  if (!minio.Start(&error) || !minio.CreateBucket("backups", &error)) {
    std::fprintf(stderr, "restore_controller: MinIO: %s\n", error.c_str());
    return 1;
  }
  testing::TempDir dir;
  std::filesystem::create_directories(dir.File("creds"));
  testing::WriteText(dir.File("creds/accessKeyId"), minio.access_key());
  testing::WriteText(dir.File("creds/secretAccessKey"), minio.secret_key());
  const std::vector<std::string> target = {
      "--provider",     "s3",      "--endpoint",       minio.endpoint(),
      "--bucket",       "backups", "--use-path-style", "--credentials-dir",
      dir.File("creds")};
  const std::string binary = testing::BuildBinary("bao-backup");
  auto bao_args = [&] {
    std::vector<std::string> a = {"--bao-addr", bao.Url(0), "--bao-cacert", bao.ca_file()};
    a.insert(a.end(), target.begin(), target.end());
    return a;
  };
  std::map<std::string, std::string> env = {{"BAO_TOKEN", bao.root_token()}};

  // The backup, once.
  std::vector<std::string> backup = {binary, "backup", "--namespace", kNs, "--cluster", "bao"};
  for (const std::string& a : bao_args()) backup.push_back(a);
  testing::RunResult b = testing::Run(backup, env, 10min);
  json result = json::parse(testing::LastLine(b.out), nullptr, false);
  if (b.exit_code != 0 || !result.is_object()) {
    std::fprintf(stderr, "restore_controller: backup failed: %s\n", b.err.c_str());
    return 1;
  }
  const std::string key = result["key"];
  const int64_t size = result["size"];
  std::printf("restore_controller: real OpenBao, 1 node; snapshot %lld bytes (%.0f MiB)%s\n",
              static_cast<long long>(size), size / 1048576.0,
              size >= 150'000'000 ? "" : " (under 150 MB: raise --size-mib)");

  // The API server, the chart, the objects the restore needs, the operator process.
  testing::RealKubeApiServer k8s;
  if (Status s = k8s.Start(); !s.ok()) return Fail("kube-apiserver", s);
  Result<std::string> token = testing::InstallChart(k8s, "bao-backup", "bao-backup-system");
  if (!token.ok()) return Fail("chart", token.status());
  k8s::Client admin(k8s.AdminConfig());
  auto create = [&](const k8s::Resource& r, const json& obj) -> bool {
    Result<json> c = admin.Create(r, kNs, obj);
    if (!c.ok()) Fail("create " + obj.value("kind", std::string()), c.status());
    return c.ok();
  };
  auto secret = [&](const std::string& name, const json& data) {
    json d = json::object();
    for (const auto& [k, v] : data.items()) d[k] = crypto::Base64Encode(v.get<std::string>());
    return create(
        k8s::kSecrets,
        {{"apiVersion", "v1"}, {"kind", "Secret"}, {"metadata", {{"name", name}}}, {"data", d}});
  };
  json target_spec = {{"provider", "s3"},
                      {"endpoint", minio.endpoint()},
                      {"bucket", "backups"},
                      {"usePathStyle", true},
                      {"credentialsSecretRef", {{"name", "s3-creds"}}}};
  if (!create(k8s::kNamespaces,
              {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", kNs}}}}) ||
      !secret("s3-creds",
              {{"accessKeyId", minio.access_key()}, {"secretAccessKey", minio.secret_key()}}) ||
      !secret("restore-token", {{"token", bao.root_token()}}) ||
      !secret("bao-tls-ca", {{"ca.crt", testing::ReadText(bao.ca_file())}}) ||
      !create(k8s::kOpenBaoClusters, {{"apiVersion", "openbao.org/v1alpha1"},
                                      {"kind", "OpenBaoCluster"},
                                      {"metadata", {{"name", "bao"}}},
                                      {"spec", {{"version", "2.7.2"}, {"replicas", 1}}}})) {
    return 1;
  }
  testing::WriteText(dir.File("kubeconfig"), testing::Kubeconfig(k8s, *token, kNs));
  testing::Process op;
  if (!op.Start({binary, "operator", "--kubeconfig", dir.File("kubeconfig"), "--lease-namespace",
                 "bao-backup-system", "--metrics-bind-address", "0", "--controllers", "restore",
                 "--image", "bao-backup:bench"},
                {}, &error)) {
    std::fprintf(stderr, "restore_controller: operator: %s\n", error.c_str());
    return 1;
  }

  auto phase = [&](const std::string& name) {
    Result<json> r = admin.Get(k8s::kOpenBaoRestores, kNs, name);
    return r.ok() ? r->value("status", json::object()).value("phase", "") : std::string();
  };
  // Plays the kubelet for Job `job_name` once it exists: runs its executor, finishes it.
  auto run_job = [&](const std::string& job_name, double* executor_s) -> bool {
    Result<json> job = NotFound("");
    if (!testing::WaitUntil(
            [&] {
              job = admin.Get(k8s::kJobs, kNs, job_name);
              return job.ok();
            },
            60s)) {
      std::fprintf(stderr, "restore_controller: no Job %s; operator log:\n%s\n", job_name.c_str(),
                   op.Stderr().c_str());
      return false;
    }
    auto start = Steady::now();
    TimePoint wall_start = SystemClock().Now();
    Result<testing::LocalRun> r = testing::RunJobLocally(admin, *job, {bao.Url(0)}, binary, 10min);
    if (executor_s) *executor_s = Seconds(Steady::now() - start);
    if (!r.ok() || r->run.exit_code != 0) {
      std::fprintf(stderr, "restore_controller: Job %s failed: %s\n", job_name.c_str(),
                   r.ok() ? r->run.err.c_str() : r.status().ToString().c_str());
      return false;
    }
    Status f = testing::FinishJob(admin, *job, true, r->message, wall_start, SystemClock().Now());
    if (!f.ok()) Fail("finish " + job_name, f);
    return f.ok();
  };

  std::vector<double> cli, running, whole, executor;
  for (int i = 0; i < opt.runs; ++i) {
    std::vector<std::string> restore = {binary, "restore", "--key", key, "--yes"};
    for (const std::string& a : bao_args()) restore.push_back(a);
    auto t0 = Steady::now();
    testing::RunResult r = testing::Run(restore, env, 10min);
    cli.push_back(Seconds(Steady::now() - t0));
    if (r.exit_code != 0) {
      std::fprintf(stderr, "restore_controller: CLI restore failed: %s\n", r.err.c_str());
      return 1;
    }
    if (Status s = bao.WaitForActive(); !s.ok()) return Fail("OpenBao after the restore", s);

    const std::string name = "r" + std::to_string(i);
    auto created = Steady::now();
    if (!create(k8s::kOpenBaoRestores, {{"apiVersion", "openbao.org/v1alpha1"},
                                        {"kind", "OpenBaoRestore"},
                                        {"metadata", {{"name", name}}},
                                        {"spec",
                                         {{"cluster", "bao"},
                                          {"source", {{"target", target_spec}, {"key", key}}},
                                          {"tokenSecretRef", {{"name", "restore-token"}}}}}})) {
      return 1;
    }
    if (!run_job("restore-verify-" + name, nullptr)) return 1;
    Steady::time_point running_at;
    if (!testing::WaitUntil(
            [&] {
              running_at = Steady::now();
              return phase(name) == "Running";
            },
            60s)) {
      std::fprintf(stderr, "restore_controller: %s never Running (%s)\n", name.c_str(),
                   phase(name).c_str());
      return 1;
    }
    double exec_s = 0;
    if (!run_job("restore-" + name + "-1", &exec_s)) return 1;
    if (!testing::WaitUntil([&] { return phase(name) == "Completed"; }, 60s)) {
      std::fprintf(stderr, "restore_controller: %s never Completed (%s)\n", name.c_str(),
                   phase(name).c_str());
      return 1;
    }
    auto done = Steady::now();
    running.push_back(Seconds(done - running_at));
    whole.push_back(Seconds(done - created));
    executor.push_back(exec_s);
    if (Status s = bao.WaitForActive(); !s.ok()) return Fail("OpenBao after the restore", s);
  }
  op.Stop();
  auto best = [](std::vector<double> v) { return *std::min_element(v.begin(), v.end()); };
  auto all = [](const std::vector<double>& v) {
    std::string s;
    for (double x : v) s += (s.empty() ? "" : " ") + std::to_string(x).substr(0, 5);
    return s;
  };
  const double mib = size / 1048576.0;
  std::printf(
      "  cli restore (bao-backup restore --key, to applied):  best %.2f s (%.0f MiB/s); runs %s\n",
      best(cli), mib / best(cli), all(cli).c_str());
  std::printf(
      "  controller, phase Running -> Completed:             best %.2f s (%.0f MiB/s, %.2fx the "
      "CLI); runs %s\n",
      best(running), mib / best(running), best(cli) / best(running), all(running).c_str());
  std::printf("    of which the restore Job's executor:               best %.2f s; runs %s\n",
              best(executor), all(executor).c_str());
  std::printf("  controller, whole request (created -> Completed):   best %.2f s; runs %s\n",
              best(whole), all(whole).c_str());
  return 0;
}

}  // namespace
}  // namespace bao::bench

int main(int argc, char** argv) {
  bao::bench::Options opt;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view flag = argv[i], value = argv[i + 1];
    int* out = flag == "--size-mib" ? &opt.size_mib : flag == "--runs" ? &opt.runs : nullptr;
    auto [end, ec] = out ? std::from_chars(value.data(), value.data() + value.size(), *out)
                         : std::from_chars_result{value.data(), std::errc::invalid_argument};
    if (ec != std::errc() || end != value.data() + value.size() || *out < 1 || *out > 100000) {
      std::fprintf(stderr, "usage: restore_controller [--size-mib N] [--runs N]\n");
      return 2;
    }
  }
  return bao::bench::Main(opt);
}
