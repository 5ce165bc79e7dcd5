// operator_scale: the backup manager at scale (issue 8, "Scale"). Starts the Kubernetes API
// test server, creates N OpenBaoClusters (default 1,000 in 10 namespaces: varied schedules,
// 10% with bad input: invalid cron, missing Secret, no token, missing TLS CA Secret), runs the
// real `bao-backup operator` process against it with the real clock and measures, from a watch
// of its own:
//   1. cold start: time until every cluster converged (valid ones: BackupConfigured=True and
//      nextScheduledBackup set; bad ones: BackupConfigured=False with the expected reason);
//   2. schedule changes: 100 clusters get a new spec.backup.schedule, one every 50 ms; latency
//      from the patch to nextScheduledBackup reflecting it;
//   3. manual triggers: 100 clusters get openbao.org/trigger-backup; latency to their Job;
//   4. a cron slot: the every-minute clusters at the next minute boundary; latency from the
//      slot to the status recording it (attempt, or skip because their Job still runs);
//   5. 10 s idle.
// For each phase the reconciles the controller ran (its /metrics), and at the end its peak RSS
// (VmHWM of /proc/<pid>/status). Exit status 1 when anything did not converge in time or the
// controller exceeds --max-rss-mib.
//
//   operator_scale [--clusters N] [--namespaces N] [--changes N] [--max-rss-mib M]
// OPERATOR_SCALE_LOG=FILE keeps the controller's log.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/time.h"
#include "crypto/crypto.h"
#include "k8s/client.h"
#include "schedule/cron.h"
#include "support/k8s_testserver.h"
#include "support/testing.h"

namespace bao::bench {
namespace {

using nlohmann::json;
using Steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr const char* kTrigger = "openbao.org/trigger-backup";

// What the watch last saw of one cluster.
struct Seen {
  std::string configured;  // "True", "False", ""
  std::string reason;
  std::string next;  // status.backup.nextScheduledBackup
  std::string attempt_slot, skip_slot;
};

// Watches OpenBaoClusters and Jobs; records when each awaited condition first held.
class Observer {
 public:
  using Predicate = std::function<bool(const Seen&)>;

  explicit Observer(k8s::Client* client) : client_(client) {}
  ~Observer() { Stop(); }

  void Start() {
    threads_.emplace_back([this] { Loop(k8s::kOpenBaoClusters, ""); });
    threads_.emplace_back(
        [this] { Loop(k8s::kJobs, "app.kubernetes.io/managed-by=bao-backup-operator"); });
  }
  void Stop() {
    stop_ = true;
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  // Awaits `pred` on cluster `key` ("ns/name"), timing from `since`.
  void Expect(const std::string& key, Predicate pred, Steady::time_point since) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = seen_.find(key);
    if (it != seen_.end() && pred(it->second)) {
      done_[key] = Steady::now() - since;
      return;
    }
    pending_[key] = {std::move(pred), since};
  }
  // Awaits a Job whose name starts with `prefix` in namespace `ns`, for cluster `key`.
  void ExpectJob(const std::string& key, const std::string& ns, const std::string& prefix,
                 Steady::time_point since) {
    std::lock_guard<std::mutex> l(mu_);
    for (const std::string& j : jobs_) {
      if (j.rfind(ns + "/" + prefix, 0) == 0 && !old_jobs_.count(j)) {
        done_[key] = Steady::now() - since;
        return;
      }
    }
    pending_jobs_[key] = {ns + "/" + prefix, since};
  }
  // Jobs seen so far no longer satisfy ExpectJob.
  void ForgetJobs() {
    std::lock_guard<std::mutex> l(mu_);
    old_jobs_ = jobs_;
  }
  size_t Pending() {
    std::lock_guard<std::mutex> l(mu_);
    return pending_.size() + pending_jobs_.size();
  }
  std::vector<std::string> PendingKeys() {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<std::string> out;
    for (const auto& [k, _] : pending_) out.push_back(k);
    for (const auto& [k, _] : pending_jobs_) out.push_back(k + " (job)");
    return out;
  }
  // The latencies recorded since the last call, in milliseconds.
  std::vector<double> TakeLatencies() {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<double> out;
    for (const auto& [k, d] : done_) {
      out.push_back(std::chrono::duration<double, std::milli>(d).count());
    }
    done_.clear();
    pending_.clear();
    pending_jobs_.clear();
    return out;
  }
  Seen Get(const std::string& key) {
    std::lock_guard<std::mutex> l(mu_);
    return seen_[key];
  }

 private:
  static std::string Str(const json& j, const char* f) {
    return j.is_object() && j.contains(f) && j[f].is_string() ? j[f].get<std::string>() : "";
  }

  void OnCluster(const json& obj) {
    Seen s;
    const json& st = obj.value("status", json::object());
    for (const json& c : st.value("conditions", json::array())) {
      if (Str(c, "type") == "BackupConfigured") {
        s.configured = Str(c, "status");
        s.reason = Str(c, "reason");
      }
    }
    const json& b = st.value("backup", json::object());
    s.next = Str(b, "nextScheduledBackup");
    s.attempt_slot = Str(b, "lastAttemptScheduledTime");
    s.skip_slot = Str(b, "lastSkippedScheduledTime");
    std::string key = k8s::ObjectKey(obj);
    std::lock_guard<std::mutex> l(mu_);
    seen_[key] = s;
    auto it = pending_.find(key);
    if (it != pending_.end() && it->second.first(s)) {
      done_[key] = Steady::now() - it->second.second;
      pending_.erase(it);
    }
  }

  void OnJob(const json& obj) {
    std::string key = k8s::ObjectKey(obj);
    std::lock_guard<std::mutex> l(mu_);
    if (!jobs_.insert(key).second) return;
    for (auto it = pending_jobs_.begin(); it != pending_jobs_.end();) {
      if (key.rfind(it->second.first, 0) == 0) {
        done_[it->first] = Steady::now() - it->second.second;
        it = pending_jobs_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void Loop(const k8s::Resource& r, const std::string& selector) {
    std::string rv;
    while (!stop_) {
      k8s::WatchOptions o;
      o.resource_version = rv;
      o.label_selector = selector;
      o.timeout_seconds = 600;
      Status s = client_->Watch(
          r, "", o,
          [&](const k8s::WatchEvent& e) {
            if (e.type == "BOOKMARK" || e.type == "DELETED") {
            } else if (&r == &k8s::kJobs) {
              OnJob(e.object);
            } else {
              OnCluster(e.object);
            }
            const json& meta = e.object.value("metadata", json::object());
            if (meta.contains("resourceVersion")) rv = meta["resourceVersion"];
            return Status::Ok();
          },
          &stop_);
      if (!s.ok() && !stop_) {
        std::fprintf(stderr, "operator_scale: watch %s: %s\n", r.plural.c_str(),
                     s.ToString().c_str());
        rv.clear();
        std::this_thread::sleep_for(200ms);  // back off before watching again
      }
    }
  }

  k8s::Client* client_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::map<std::string, Seen> seen_;
  std::set<std::string> jobs_, old_jobs_;
  std::map<std::string, std::pair<Predicate, Steady::time_point>> pending_;
  std::map<std::string, std::pair<std::string, Steady::time_point>> pending_jobs_;
  std::map<std::string, Steady::duration> done_;
};

// Waits until nothing is pending or `limit` passed; false on time-out (and says what is left).
bool AwaitAll(Observer& obs, std::chrono::milliseconds limit, const char* phase) {
  if (testing::WaitUntil([&] { return obs.Pending() == 0; }, limit)) return true;
  std::vector<std::string> left = obs.PendingKeys();
  std::fprintf(stderr, "operator_scale: %s: %zu clusters did not converge within %lld s, e.g.",
               phase, left.size(), static_cast<long long>(limit.count() / 1000));
  for (size_t i = 0; i < left.size() && i < 5; ++i) std::fprintf(stderr, " %s", left[i].c_str());
  std::fprintf(stderr, "\n");
  return false;
}

std::string Percentiles(std::vector<double> ms) {
  if (ms.empty()) return "no samples";
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) {
    size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(ms.size() - 1) + 0.5);
    return ms[std::min(i, ms.size() - 1)];
  };
  char buf[160];
  std::snprintf(buf, sizeof buf, "p50 %.0f ms  p95 %.0f ms  p99 %.0f ms  max %.0f ms (n=%zu)",
                pct(50), pct(95), pct(99), ms.back(), ms.size());
  return buf;
}

// bao_operator_reconcile_total and _errors_total from the controller's /metrics.
std::pair<long, long> Reconciles(int port) {
  httplib::Client http("127.0.0.1", port);
  auto res = http.Get("/metrics");
  if (!res || res->status != 200) return {-1, -1};
  auto value = [&](const std::string& name) {
    size_t p = res->body.find("\n" + name + " ");
    return p == std::string::npos ? -1L : std::atol(res->body.c_str() + p + name.size() + 2);
  };
  return {value("bao_operator_reconcile_total"), value("bao_operator_reconcile_errors_total")};
}

// A field of /proc/<pid>/status in KiB ("VmHWM", "VmRSS"), or -1.
long ProcKib(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field + ":", 0) == 0) return std::atol(line.c_str() + field.size() + 1);
  }
  return -1;
}

struct Options {
  int clusters = 1000;
  int namespaces = 10;
  int changes = 100;
  double max_rss_mib = 64;
};

// The kind of cluster number i: most valid with varied schedules; some bad.
enum class Kind { kEveryMinute, kValid, kBadCron, kMissingSecret, kNoToken, kMissingTlsCa };
Kind KindOf(int i) {
  switch (i % 40) {
    case 7: return Kind::kBadCron;
    case 17: return Kind::kMissingSecret;
    case 27: return Kind::kNoToken;
    case 37: return Kind::kMissingTlsCa;
    default: return i % 10 == 0 ? Kind::kEveryMinute : Kind::kValid;
  }
}
const char* ExpectedReason(Kind k) {
  switch (k) {
    case Kind::kBadCron: return "InvalidSchedule";
    case Kind::kMissingSecret: return "SecretNotFound";
    case Kind::kNoToken: return "NoBackupToken";
    case Kind::kMissingTlsCa: return "TlsCaSecretNotFound";
    default: return "";
  }
}

const std::vector<std::string> kSchedules = {"0 3 * * *",
                                             "*/15 * * * *",
                                             "30 */2 * * *",
                                             "@hourly",
                                             "45 1 * * 0",
                                             "15 4 1 * *",
                                             "CRON_TZ=Europe/Paris 0 2 * * 1-5"};

int Main(const Options& opt) {
  std::printf("operator_scale: %d OpenBaoClusters in %d namespaces, real clock, %u cores\n",
              opt.clusters, opt.namespaces, std::thread::hardware_concurrency());
  testing::K8sTestServer server;
  testing::K8sTestServerOptions so;
  so.event_window = 200000;  // like etcd's few minutes of history: no artificial 410s
  so.bookmark_interval_ms = 1000;
  std::string error;
  if (!server.Start(so, &error)) {
    std::fprintf(stderr, "operator_scale: %s\n", error.c_str());
    return 1;
  }
  k8s::Config config;
  config.server = server.url();
  k8s::Client client(config);

  auto ns_of = [&](int i) { return "team-" + std::to_string(i % opt.namespaces); };
  auto name_of = [&](int i) { return "bao-" + std::to_string(i); };
  auto secret = [&](const std::string& ns, const std::string& name, const json& data) {
    json d = json::object();
    for (const auto& [k, v] : data.items()) d[k] = crypto::Base64Encode(v.get<std::string>());
    json s = {{"apiVersion", "v1"},
              {"kind", "Secret"},
              {"metadata", {{"name", name}, {"namespace", ns}}},
              {"data", d}};
    Result<json> r = client.Create(k8s::kSecrets, ns, s);
    if (!r.ok()) std::fprintf(stderr, "create secret: %s\n", r.status().ToString().c_str());
    return r.ok();
  };
  auto setup_start = Steady::now();
  for (int n = 0; n < opt.namespaces; ++n) {
    std::string ns = "team-" + std::to_string(n);
    if (!secret(ns, "s3-creds", {{"accessKeyId", "AKIA"}, {"secretAccessKey", "bench"}}) ||
        !secret(ns, "bao-token", {{"token", "s.bench"}})) {
      return 1;
    }
  }
  std::map<std::string, Kind> kinds;
  for (int i = 0; i < opt.clusters; ++i) {
    Kind kind = KindOf(i);
    std::string ns = ns_of(i), name = name_of(i);
    json backup = {{"schedule", kind == Kind::kEveryMinute ? "* * * * *"
                                : kind == Kind::kBadCron   ? "61 * * * *"
                                                           : kSchedules[i % kSchedules.size()]},
                   {"target",
                    {{"provider", "s3"},
                     {"endpoint", "https://s3.example.com"},
                     {"bucket", "backups-" + ns},
                     {"pathPrefix", "prod"},
                     {"credentialsSecretRef",
                      {{"name", kind == Kind::kMissingSecret ? "nope" : "s3-creds"}}}}},
                   {"retention", {{"maxCount", 7}, {"maxAge", "168h"}}}};
    if (kind != Kind::kNoToken) backup["tokenSecretRef"] = {{"name", "bao-token"}};
    json cluster = {{"apiVersion", "openbao.org/v1alpha1"},
                    {"kind", "OpenBaoCluster"},
                    {"metadata", {{"name", name}, {"namespace", ns}}},
                    {"spec",
                     {{"version", "2.1.0"},
                      {"replicas", 3},
                      {"backup", backup},
                      {"storage", {{"size", "10Gi"}}},
                      {"vendorExtension", {{"team", ns}, {"tier", i % 3}}}}}};
    Result<json> c = client.Create(k8s::kOpenBaoClusters, ns, cluster);
    Result<json> st =
        c.ok()
            ? client.PatchStatus(k8s::kOpenBaoClusters, ns, name,
                                 {{"status", {{"phase", "Running"}, {"currentVersion", "2.1.0"}}}})
            : c;
    if (!st.ok()) {
      std::fprintf(stderr, "create cluster: %s\n", st.status().ToString().c_str());
      return 1;
    }
    if (kind != Kind::kMissingTlsCa &&
        !secret(ns, name + "-tls-ca",
                {{"ca.crt", "-----BEGIN CERTIFICATE-----\nbench\n-----END CERTIFICATE-----\n"}})) {
      return 1;
    }
    kinds[ns + "/" + name] = kind;
  }
  int bad = 0;
  for (const auto& [k, kind] : kinds) bad += ExpectedReason(kind)[0] != '\0';
  std::printf("  setup: %d clusters (%d with bad input) and %d Secrets created in %.1f s\n",
              opt.clusters, bad, opt.clusters - opt.clusters / 40 + 2 * opt.namespaces,
              std::chrono::duration<double>(Steady::now() - setup_start).count());

  Observer obs(&client);
  obs.Start();
  // Each cluster's expectation for the cold start.
  auto cold_start = Steady::now();
  for (const auto& [key, kind] : kinds) {
    std::string reason = ExpectedReason(kind);
    if (reason.empty()) {
      obs.Expect(
          key, [](const Seen& s) { return s.configured == "True" && !s.next.empty(); }, cold_start);
    } else {
      obs.Expect(
          key, [reason](const Seen& s) { return s.configured == "False" && s.reason == reason; },
          cold_start);
    }
  }

  testing::TempDir dir;
  std::string kubeconfig = dir.File("kubeconfig");
  testing::WriteText(kubeconfig,
                     "apiVersion: v1\nkind: Config\ncurrent-context: t\nclusters:\n- name: t\n"
                     "  cluster:\n    server: " +
                         server.url() +
                         "\nusers:\n- name: u\n  user:\n    token: bench\ncontexts:\n- name: t\n"
                         "  context:\n    cluster: t\n    user: u\n    namespace: default\n");
  int port = testing::FreePort();
  testing::Process op;
  if (!op.Start(
          {testing::BuildBinary("bao-backup"), "--log-format", "json", "operator", "--kubeconfig",
           kubeconfig, "--metrics-bind-address", "127.0.0.1:" + std::to_string(port), "--image", "bao-backup:bench"},
          {}, &error)) {
    std::fprintf(stderr, "operator_scale: %s\n", error.c_str());
    return 1;
  }
  bool ok = AwaitAll(obs, 180s, "cold start");
  double converge_s = std::chrono::duration<double>(Steady::now() - cold_start).count();
  std::vector<double> cold = obs.TakeLatencies();
  auto [rec0, err0] = Reconciles(port);
  std::printf(
      "  cold start: %zu/%d clusters converged in %.2f s (operator start to the last\n"
      "    status observed); per cluster %s\n"
      "    reconciles %ld, errors %ld; controller RSS now %.1f MiB\n",
      cold.size(), opt.clusters, converge_s, Percentiles(cold).c_str(), rec0, err0,
      ProcKib(op.pid(), "VmRSS") / 1024.0);

  // 2. Schedule changes on valid, not every-minute clusters, paced.
  std::vector<std::string> valid, minute;
  for (const auto& [key, kind] : kinds) {
    if (kind == Kind::kValid) valid.push_back(key);
    if (kind == Kind::kEveryMinute) minute.push_back(key);
  }
  int changes = std::min<int>(opt.changes, static_cast<int>(valid.size()) / 2);
  for (int i = 0; i < changes && ok; ++i) {
    const std::string& key = valid[i];
    std::string ns = key.substr(0, key.find('/')), name = key.substr(key.find('/') + 1);
    // A schedule whose next run differs from the old one's: minute 7 + i of some hour.
    std::string sched = std::to_string(7 + i % 50) + " */5 * * *";
    std::string expected =
        FormatRfc3339(CronSchedule::Parse(sched)->Next(std::chrono::system_clock::now()));
    auto since = Steady::now();
    Result<json> r = client.MergePatch(k8s::kOpenBaoClusters, ns, name,
                                       {{"spec", {{"backup", {{"schedule", sched}}}}}});
    if (!r.ok()) {
      std::fprintf(stderr, "patch: %s\n", r.status().ToString().c_str());
      return 1;
    }
    obs.Expect(
        key, [expected](const Seen& s) { return s.next == expected; }, since);
    std::this_thread::sleep_for(50ms);  // pacing the load, not waiting for a result
  }
  ok = ok && AwaitAll(obs, 60s, "schedule changes");
  auto [rec1, err1] = Reconciles(port);
  std::printf(
      "  schedule change (%d clusters, one every 50 ms) -> nextScheduledBackup updated:\n"
      "    %s; reconciles +%ld\n",
      changes, Percentiles(obs.TakeLatencies()).c_str(), rec1 - rec0);

  // 3. Manual triggers on other valid clusters.
  obs.ForgetJobs();
  for (int i = changes; i < 2 * changes && ok; ++i) {
    const std::string& key = valid[i];
    std::string ns = key.substr(0, key.find('/')), name = key.substr(key.find('/') + 1);
    auto since = Steady::now();
    Result<json> r = client.MergePatch(k8s::kOpenBaoClusters, ns, name,
                                       {{"metadata", {{"annotations", {{kTrigger, "now"}}}}}});
    if (!r.ok()) {
      std::fprintf(stderr, "patch: %s\n", r.status().ToString().c_str());
      return 1;
    }
    obs.ExpectJob(key, ns, "backup-" + name + "-", since);
    std::this_thread::sleep_for(50ms);
  }
  ok = ok && AwaitAll(obs, 60s, "triggers");
  auto [rec2, err2] = Reconciles(port);
  std::printf(
      "  trigger annotation (%d clusters, one every 50 ms) -> backup Job created:\n"
      "    %s; reconciles +%ld\n",
      changes, Percentiles(obs.TakeLatencies()).c_str(), rec2 - rec1);

  // 4. The next minute boundary for the every-minute clusters.
  auto now = std::chrono::system_clock::now();
  TimePoint slot = CronSchedule::Parse("* * * * *")->Next(now);
  std::string slot_text = FormatRfc3339(slot);
  auto slot_steady = Steady::now() + std::chrono::duration_cast<Steady::duration>(slot - now);
  for (const std::string& key : minute) {
    obs.Expect(
        key,
        [slot_text](const Seen& s) {
          return s.attempt_slot == slot_text || s.skip_slot == slot_text;
        },
        slot_steady);
  }
  ok = ok && AwaitAll(obs, 120s, "cron slot");
  auto [rec3, err3] = Reconciles(port);
  std::printf(
      "  cron slot %s (%zu every-minute clusters) -> attempt or skip recorded:\n"
      "    %s after the slot; reconciles +%ld\n",
      slot_text.c_str(), minute.size(), Percentiles(obs.TakeLatencies()).c_str(), rec3 - rec2);

  // 5. Idle.
  std::this_thread::sleep_for(10s);  // measuring the idle load over a fixed window
  auto [rec4, err4] = Reconciles(port);
  std::printf(
      "  idle 10 s: reconciles +%ld (running Jobs, which never finish here, are looked at every 30 "
      "s)\n",
      rec4 - rec3);

  long hwm = ProcKib(op.pid(), "VmHWM");
  long rss = ProcKib(op.pid(), "VmRSS");
  double hwm_mib = hwm / 1024.0;
  std::printf("  reconciles total %ld, errors %ld\n", rec4, err4);
  std::printf("  controller peak RSS (VmHWM) %.1f MiB, RSS now %.1f MiB (target < %.0f MiB): %s\n",
              hwm_mib, rss / 1024.0, opt.max_rss_mib, hwm_mib < opt.max_rss_mib ? "ok" : "OVER");
  obs.Stop();
  int code = op.Stop();
  if (const char* log = std::getenv("OPERATOR_SCALE_LOG")) testing::WriteText(log, op.Stderr());
  if (code != 0) {
    std::fprintf(stderr, "operator_scale: the operator exited with %d:\n%s\n", code,
                 testing::LastLine(op.Stderr()).c_str());
    ok = false;
  }
  return ok && hwm_mib < opt.max_rss_mib ? 0 : 1;
}

}  // namespace
}  // namespace bao::bench

int main(int argc, char** argv) {
  bao::bench::Options opt;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--clusters") {
      opt.clusters = std::atoi(argv[i + 1]);
    } else if (flag == "--namespaces") {
      opt.namespaces = std::atoi(argv[i + 1]);
    } else if (flag == "--changes") {
      opt.changes = std::atoi(argv[i + 1]);
    } else if (flag == "--max-rss-mib") {
      opt.max_rss_mib = std::atof(argv[i + 1]);
    } else {
      std::fprintf(stderr,
                   "usage: operator_scale [--clusters N] [--namespaces N] [--changes N] "
                   "[--max-rss-mib M]\n");
      return 2;
    }
  }
  if (opt.clusters < 40 || opt.namespaces < 1) {
    std::fprintf(stderr, "operator_scale: --clusters must be >= 40, --namespaces >= 1\n");
    return 2;
  }
  return bao::bench::Main(opt);
}
