// operator_scale: the backup manager at scale (issue 8, "Scale"). Starts a Kubernetes API
// server, creates N OpenBaoClusters (default 1,000 in 10 namespaces: varied schedules, 10% with
// bad input: invalid cron, missing Secret, no token, missing TLS CA Secret), runs the real
// `bao-backup operator` process against it with the real clock and measures, from a watch of
// its own:
//   1. cold start: time until every cluster converged (valid ones: BackupConfigured=True and
//      nextScheduledBackup set; bad ones: BackupConfigured=False with the expected reason);
//   2. schedule changes: 100 clusters get a new spec.backup.schedule, one every 50 ms; latency
//      from the patch to nextScheduledBackup reflecting it;
//   3. manual triggers: 100 clusters get openbao.org/trigger-backup; latency to their Job;
//   4. a cron slot: the every-minute clusters at the next minute boundary; latency from the
//      slot to the status recording it (attempt, or skip because their Job still runs);
//   5. 10 s idle.
// The every-minute clusters all fall due at each minute boundary, and the controller reconciles
// one cluster at a time, so the benchmark keeps boundaries out of phases 1-3: it starts the
// operator at least 30 s before one, and before phase 2 waits out one that is near (or that
// just passed).
// For each phase the reconciles the controller ran (its /metrics), and at the end its peak RSS
// (VmHWM of /proc/<pid>/status) and the API server's. Exit status 1 when anything did not
// converge in time or the controller exceeds --max-rss-mib.
//
// --server imitation (default): the project's in-memory API imitation (k8s-testserver); the
// operator authenticates with a plain token. --server real: a real kube-apiserver v1.33 + etcd
// (support/kube_apiserver.h; the peers kube-apiserver and helm, etcd from PATH) with the
// chart as shipped: its CRDs, then `helm template` of deploy/helm/bao-backup in namespace
// bao-backup-system applied (RBAC included); the benchmark sets up Namespaces, Secrets and
// clusters as admin, and the operator runs as the chart's ServiceAccount (a TokenRequest
// token and the server's CA in its kubeconfig) with its Lease in bao-backup-system, so the
// shipped RBAC is what it is allowed. The peak RSS reported for the real server is etcd's plus
// kube-apiserver's.
//
//   operator_scale [--server imitation|real] [--clusters N] [--namespaces N] [--changes N]
//                  [--max-rss-mib M]
// OPERATOR_SCALE_LOG=FILE keeps the controller's log.
#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "common/numbers.h"
#include "common/time.h"
#include "crypto/crypto.h"
#include "k8s/client.h"
#include "schedule/cron.h"
#include "support/k8s_operator.h"
#include "support/k8s_testserver.h"
#include "support/kube_apiserver.h"
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
    cancel_.Cancel();
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
          Context(&cancel_));
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
  CancelSource cancel_;  // ends the watches in flight at Stop()
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

constexpr long kMaxLong = std::numeric_limits<long>::max();

// bao_operator_reconcile_total and _errors_total from the controller's /metrics.
std::pair<long, long> Reconciles(int port) {
  httplib::Client http("127.0.0.1", port);
  auto res = http.Get("/metrics");
  if (!res || res->status != 200) return {-1, -1};
  auto value = [&](const std::string& name) {
    size_t p = res->body.find("\n" + name + " ");
    if (p == std::string::npos) return -1L;
    std::string_view rest(res->body);
    rest = rest.substr(p + name.size() + 2);
    return ParseInteger<long>(rest.substr(0, rest.find('\n')), 0, kMaxLong).value_or(-1L);
  };
  return {value("bao_operator_reconcile_total"), value("bao_operator_reconcile_errors_total")};
}

// A field of /proc/<pid>/status in KiB ("VmHWM", "VmRSS"), or -1.
long ProcKib(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field + ":", 0) != 0) continue;
    std::string_view v(line);  // "VmHWM:\t   31456 kB"
    v.remove_prefix(std::min(v.size(), v.find_first_not_of(" \t", field.size() + 1)));
    return ParseInteger<long>(v.substr(0, v.find(' ')), 0, kMaxLong).value_or(-1L);
  }
  return -1;
}

struct Options {
  bool real_server = false;  // --server real
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

// The API server under test, how the benchmark reaches it (as admin) and how the operator
// does.
struct Server {
  testing::K8sTestServer imitation;
  std::unique_ptr<testing::RealKubeApiServer> real;
  k8s::Config admin;
  std::string operator_kubeconfig;          // the kubeconfig file's text
  std::vector<std::string> operator_flags;  // beyond --kubeconfig, --metrics-bind-address, --image
  std::string name, detail;                 // for the report

  // Peak RSS of the server's processes (kube-apiserver + etcd) in KiB, or -1.
  long PeakRssKiB() {
    return real ? real->PeakRssKiB() : ProcKib(imitation.process().pid(), "VmHWM");
  }
};

std::string ImitationKubeconfig(const std::string& url, const std::string& token) {
  return "apiVersion: v1\nkind: Config\ncurrent-context: t\nclusters:\n- name: t\n"
         "  cluster:\n    server: " +
         url + "\nusers:\n- name: u\n  user:\n    token: " + token +
         "\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: u\n    namespace: "
         "default\n";
}

bool StartImitation(Server* s) {
  testing::K8sTestServerOptions so;
  so.event_window = 200000;  // like etcd's few minutes of history: no artificial 410s
  so.bookmark_interval_ms = 1000;
  std::string error;
  if (!s->imitation.Start(so, &error)) {
    std::fprintf(stderr, "operator_scale: %s\n", error.c_str());
    return false;
  }
  s->admin.server = s->imitation.url();
  s->operator_kubeconfig = ImitationKubeconfig(s->imitation.url(), "bench");
  s->name = "the API imitation (k8s-testserver)";
  return true;
}

// The chart's release namespace, where its ServiceAccount and the Lease live.
constexpr const char* kReleaseNamespace = "bao-backup-system";

// A real kube-apiserver + etcd with the chart installed as shipped and the Namespaces the
// clusters live in (the imitation needs none).
bool StartReal(Server* s, const Options& opt) {
  const std::string helm = testing::PeerBinary("helm");
  if (testing::RealKubeApiServer::Binary().empty() || access(helm.c_str(), X_OK) != 0) {
    std::fprintf(stderr,
                 "operator_scale: --server real needs kube-apiserver (%s), etcd (on PATH, e.g. "
                 "/usr/bin/etcd from Debian's etcd-server: %s) and helm (%s); install them with "
                 "scripts/install-peers.sh kube-apiserver helm\n",
                 testing::PeerBinary("kube-apiserver").c_str(),
                 testing::RealKubeApiServer::EtcdBinary().empty() ? "missing" : "found",
                 helm.c_str());
    return false;
  }
  auto t0 = Steady::now();
  s->real = std::make_unique<testing::RealKubeApiServer>();
  testing::RealKubeApiServer& real = *s->real;
  if (Status st = real.Start(); !st.ok()) {
    std::fprintf(stderr, "operator_scale: kube-apiserver: %s\n", st.ToString().c_str());
    return false;
  }
  double start_s = std::chrono::duration<double>(Steady::now() - t0).count();
  t0 = Steady::now();
  Result<std::string> token = testing::InstallChart(real, "bao-backup", kReleaseNamespace);
  if (!token.ok()) {
    std::fprintf(stderr, "operator_scale: installing the chart: %s\n%s\n",
                 token.status().ToString().c_str(), real.Logs().c_str());
    return false;
  }
  double chart_s = std::chrono::duration<double>(Steady::now() - t0).count();
  s->admin = real.AdminConfig();
  k8s::Client admin(s->admin);
  for (int n = 0; n < opt.namespaces; ++n) {
    Result<json> r = admin.Create(k8s::kNamespaces, "",
                                  {{"apiVersion", "v1"},
                                   {"kind", "Namespace"},
                                   {"metadata", {{"name", "team-" + std::to_string(n)}}}});
    if (!r.ok()) {
      std::fprintf(stderr, "operator_scale: create namespace: %s\n", r.status().ToString().c_str());
      return false;
    }
  }
  s->operator_kubeconfig = testing::Kubeconfig(real, *token);
  s->operator_flags = {"--lease-namespace", kReleaseNamespace};
  Result<testing::KubeReply> version = real.Call("GET", "/version");
  std::string v = version.ok() && version->ok() ? version->body.value("gitVersion", "?") : "?";
  std::string etcd = testing::Run({testing::RealKubeApiServer::EtcdBinary(), "--version"}).out;
  etcd = etcd.substr(0, etcd.find('\n'));  // "etcd Version: 3.4.23"
  if (size_t colon = etcd.find(": "); colon != std::string::npos) etcd = etcd.substr(colon + 2);
  s->name = "a real kube-apiserver " + v + " + etcd " + etcd;
  char detail[256];
  std::snprintf(
      detail, sizeof detail,
      "    up in %.1f s; CRDs, Namespace %s and `helm template` of the chart applied and\n"
      "    its RBAC in force in %.1f s; the operator runs as the chart's ServiceAccount\n",
      start_s, kReleaseNamespace, chart_s);
  s->detail = detail;
  return true;
}

int Main(const Options& opt) {
  std::printf(
      "operator_scale: %d OpenBaoClusters in %d namespaces on the %s server, real clock, "
      "%u cores\n",
      opt.clusters, opt.namespaces, opt.real_server ? "real" : "imitation",
      std::thread::hardware_concurrency());
  std::fflush(stdout);
  Server server;
  if (!(opt.real_server ? StartReal(&server, opt) : StartImitation(&server))) return 1;
  std::printf("  server: %s\n%s", server.name.c_str(), server.detail.c_str());
  std::string error;
  k8s::Client client(server.admin);

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
  // A minute boundary during the cold start makes the every-minute clusters looked at before it
  // due again at once, in the middle of the cold start's queue: start the operator with at least
  // 30 s to the next boundary (a cold start on the real server takes about 20 s).
  const auto every_minute = CronSchedule::Parse("* * * * *");
  auto wall = std::chrono::system_clock::now();
  if (TimePoint next = every_minute->Next(wall); next - wall < 30s) {
    std::this_thread::sleep_until(Steady::now() + (next - wall) + 1s);
    std::printf("  (waited %.0f s for a minute boundary to pass before starting the operator)\n",
                std::chrono::duration<double>(next - wall).count() + 1);
  }
  const TimePoint operator_start = std::chrono::system_clock::now();
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
  testing::WriteText(kubeconfig, server.operator_kubeconfig);
  int port = testing::FreePort();
  std::vector<std::string> argv = {testing::BuildBinary("bao-backup"),
                                   "--log-format",
                                   "json",
                                   "operator",
                                   "--kubeconfig",
                                   kubeconfig,
                                   "--metrics-bind-address",
                                   "127.0.0.1:" + std::to_string(port),
                                   "--image",
                                   "bao-backup:bench"};
  argv.insert(argv.end(), server.operator_flags.begin(), server.operator_flags.end());
  testing::Process op;
  if (!op.Start(argv, {}, &error)) {
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
  // Awaits, for every every-minute cluster, the status recording the next minute's slot
  // (attempt, or skip because its Job still runs), timed from the slot; returns the slot.
  auto expect_next_slot = [&] {
    auto now = std::chrono::system_clock::now();
    TimePoint slot = every_minute->Next(now);
    std::string text = FormatRfc3339(slot);
    auto at = Steady::now() + std::chrono::duration_cast<Steady::duration>(slot - now);
    for (const std::string& key : minute) {
      obs.Expect(
          key, [text](const Seen& s) { return s.attempt_slot == text || s.skip_slot == text; }, at);
    }
    return text;
  };
  // At a minute boundary all every-minute clusters fall due at once, and the controller
  // reconciles one cluster at a time: a boundary inside phases 2 and 3, or one just before them
  // (its queue not drained yet), would put the changed clusters behind that queue. Then wait
  // for the next boundary, until its slot is recorded, then as long again: each Job created for
  // the slot brings its cluster back into the queue once more.
  auto quiet = std::chrono::milliseconds(2 * changes * 50) + 10s;
  auto now = std::chrono::system_clock::now();
  auto next_boundary = every_minute->Next(now), last_boundary = next_boundary - 60s;
  if (ok && (next_boundary - now < quiet ||
             (last_boundary > operator_start && now - last_boundary < 15s))) {
    std::string slot = expect_next_slot();
    ok = AwaitAll(obs, 120s, "cron slot before the schedule changes");
    std::vector<double> burst = obs.TakeLatencies();
    double drain_ms = burst.empty() ? 0 : *std::max_element(burst.begin(), burst.end());
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<long>(drain_ms)) + 1s);
    std::printf(
        "  (a minute boundary was near: waited until the cron slot %s was recorded, %.1f s after\n"
        "    it, and as long again for the reconciles its Jobs bring, before phases 2-3)\n",
        slot.c_str(), drain_ms / 1000);
  }
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
  std::string slot_text = expect_next_slot();
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
  std::printf("  API server peak RSS (VmHWM) %.1f MiB (%s)\n", server.PeakRssKiB() / 1024.0,
              opt.real_server ? "kube-apiserver + etcd" : "k8s-testserver");
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
  auto usage = [] {
    std::fprintf(stderr,
                 "usage: operator_scale [--server imitation|real] [--clusters N] "
                 "[--namespaces N] [--changes N] [--max-rss-mib M]\n");
    return 2;
  };
  auto integer = [&](const char* flag, const char* text, int min, int max, int* out) {
    std::optional<int> v = bao::ParseInteger<int>(text, min, max);
    if (!v) {
      std::fprintf(stderr, "operator_scale: %s \"%s\": expected an integer in [%d, %d]\n", flag,
                   text, min, max);
      return false;
    }
    *out = *v;
    return true;
  };
  for (int i = 1; i < argc; i += 2) {
    std::string flag = argv[i];
    if (i + 1 >= argc) return usage();
    const char* value = argv[i + 1];
    if (flag == "--server") {
      std::string server = value;
      if (server != "imitation" && server != "real") return usage();
      opt.real_server = server == "real";
    } else if (flag == "--clusters") {
      if (!integer("--clusters", value, 40, 1000000, &opt.clusters)) return 2;
    } else if (flag == "--namespaces") {
      if (!integer("--namespaces", value, 1, 10000, &opt.namespaces)) return 2;
    } else if (flag == "--changes") {
      if (!integer("--changes", value, 0, 1000000, &opt.changes)) return 2;
    } else if (flag == "--max-rss-mib") {
      std::string_view text(value);
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), opt.max_rss_mib);
      if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
          !(opt.max_rss_mib > 0 && opt.max_rss_mib <= 1e6)) {
        std::fprintf(
            stderr, "operator_scale: --max-rss-mib \"%s\": expected a number in (0, 1e6]\n", value);
        return 2;
      }
    } else {
      return usage();
    }
  }
  return bao::bench::Main(opt);
}
