#include "operator/controller.h"

#include <httplib.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "common/log.h"
#include "common/numbers.h"
#include "k8s/events.h"
#include "k8s/informer.h"
#include "k8s/leader.h"

namespace bao::op {

using nlohmann::json;

namespace {

// Cluster keys with the time each is due; Pop waits for the earliest.
class WorkQueue {
 public:
  void Add(const std::string& key, TimePoint due) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = due_.find(key);
    if (it == due_.end() || due < it->second) due_[key] = due;
    cv_.notify_one();
  }
  // The key of a due item, or "" after about a second without one. Wakes when an item is
  // added or the earliest one falls due, whichever comes first.
  std::string Pop() {
    std::unique_lock<std::mutex> l(mu_);
    const TimePoint deadline = std::chrono::system_clock::now() + std::chrono::seconds(1);
    while (true) {
      TimePoint now = std::chrono::system_clock::now();
      auto best = due_.end();
      for (auto it = due_.begin(); it != due_.end(); ++it) {
        if (best == due_.end() || it->second < best->second) best = it;
      }
      if (best != due_.end() && best->second <= now) {
        std::string key = best->first;
        due_.erase(best);
        return key;
      }
      if (now >= deadline) return "";
      cv_.wait_until(l, best == due_.end() ? deadline : std::min(deadline, best->second));
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, TimePoint> due_;
};

// What about a cluster is worth a reconcile at once: its identity, its spec (generation) and the
// trigger annotation. Status changes (mostly the controller's own writes) wait for the next slot,
// a Job event or the periodic resync, so a status write does not cause a second reconcile.
std::string Fingerprint(const json& obj) {
  const json& meta = obj.value("metadata", json::object());
  const json& annotations = meta.value("annotations", json::object());
  return meta.value("uid", "") + "|" + meta.value("generation", json(0)).dump() + "|" +
         annotations.value(kAnnotationTrigger, json(nullptr)).dump() + "|" +
         meta.value("deletionTimestamp", "");
}

// One informer per watched namespace ("" = all), seen as one cache.
class Informers {
 public:
  Informers(k8s::Client* client, const std::vector<std::string>& namespaces,
            k8s::InformerOptions options, const k8s::Informer::Handler& handler) {
    std::vector<std::string> nss = namespaces;
    if (nss.empty()) nss.push_back("");
    for (const std::string& ns : nss) {
      options.ns = ns;
      informers_.push_back(std::make_unique<k8s::Informer>(client, options, handler));
    }
  }
  void Start() {
    for (auto& i : informers_) i->Start();
  }
  void Stop() {
    for (auto& i : informers_) i->Stop();
  }
  bool HasSynced() const {
    return std::all_of(informers_.begin(), informers_.end(),
                       [](const auto& i) { return i->HasSynced(); });
  }
  bool Contains(const std::string& ns, const std::string& name) const {
    return std::any_of(informers_.begin(), informers_.end(),
                       [&](const auto& i) { return i->Get(ns, name).has_value(); });
  }
  void Visit(const std::function<void(const json&)>& fn) const {
    for (const auto& i : informers_) i->Visit(fn);
  }

 private:
  std::vector<std::unique_ptr<k8s::Informer>> informers_;
};

// Work-queue keys: "<ns>/<name>" of a cluster, "restore:<ns>/<name>" of an OpenBaoRestore.
constexpr std::string_view kRestoreKeyPrefix = "restore:";

// The queue key a Job of the operator's belongs to: its OpenBaoRestore, else its cluster (the
// annotations hold the full names; the label value may be shortened).
std::string QueueKeyOfJob(const json& job) {
  const json& meta = job["metadata"];
  std::string restore = Str(At(meta, {"annotations"}), kAnnotationRestore);
  if (!restore.empty()) {
    return std::string(kRestoreKeyPrefix) + meta.value("namespace", "default") + "/" + restore;
  }
  std::string cluster = Str(At(meta, {"annotations"}), kAnnotationCluster);
  if (cluster.empty()) cluster = Str(At(meta, {"labels"}), kLabelCluster);
  if (cluster.empty()) return "";
  return meta.value("namespace", "default") + "/" + cluster;
}

}  // namespace

Result<BindAddress> ParseBindAddress(const std::string& text) {
  BindAddress a;
  if (text.empty() || text == "0") return a;
  size_t colon = text.rfind(':');
  auto bad = [&] {
    return InvalidArgument("--metrics-bind-address \"" + text +
                           "\": expected HOST:PORT or :PORT with a port 1..65535 (0 disables)");
  };
  if (colon == std::string::npos) return bad();
  std::optional<int> port = ParseInteger<int>(text.substr(colon + 1), 0, 65535);
  if (!port) return bad();
  a.port = *port;
  a.host = text.substr(0, colon);
  if (a.host.size() >= 2 && a.host.front() == '[' && a.host.back() == ']') {
    a.host = a.host.substr(1, a.host.size() - 2);
  }
  if (a.host.empty()) a.host = "0.0.0.0";
  return a;
}

Result<ReconcileResult> Guarded(const std::string& key,
                                const std::function<Result<ReconcileResult>()>& reconcile) {
  try {
    return reconcile();
  } catch (const std::exception& e) {
    return Error(Code::kInternal, Reason::kBadResponse,
                 "reconciling " + key + " failed unexpectedly: " + e.what());
  } catch (...) {
    return Error(Code::kInternal, Reason::kBadResponse,
                 "reconciling " + key + " failed unexpectedly");
  }
}

Status RunController(k8s::Client* client, const ControllerOptions& options, const Context& ctx) {
  BAO_ASSIGN_OR_RETURN(BindAddress bind, ParseBindAddress(options.metrics_bind_address));
  k8s::EventRecorder events(client, "bao-backup-operator", options.manager.clock);
  BackupManager manager(client, &events, options.manager);
  WorkQueue queue;
  auto now = [&] { return options.manager.clock->Now(); };
  auto enqueue_cluster = [&](const json& obj) { queue.Add(k8s::ObjectKey(obj), now()); };

  k8s::InformerOptions cluster_opts;
  cluster_opts.resource = k8s::kOpenBaoClusters;
  std::mutex fingerprints_mu;  // one informer thread per namespace
  std::map<std::string, std::string> fingerprints;
  Informers clusters(client, options.watch_namespaces, cluster_opts,
                     [&](k8s::EventType type, const json& obj) {
                       std::string key = k8s::ObjectKey(obj);
                       {
                         std::lock_guard<std::mutex> l(fingerprints_mu);
                         if (type == k8s::EventType::kDeleted) {
                           fingerprints.erase(key);
                         } else {
                           std::string fp = Fingerprint(obj);
                           auto [it, added] = fingerprints.try_emplace(key, fp);
                           if (!added && it->second == fp) return;
                           it->second = fp;
                         }
                       }
                       queue.Add(key, now());
                     });
  k8s::InformerOptions job_opts;
  job_opts.resource = k8s::kJobs;
  job_opts.label_selector = std::string(kLabelManagedBy) + "=" + kManagedBy;
  Informers jobs(client, options.watch_namespaces, job_opts, [&](k8s::EventType, const json& job) {
    std::string key = QueueKeyOfJob(job);
    if (!key.empty()) queue.Add(key, now());
  });
  RestoreManager restore_manager(client, &events, options.manager);
  k8s::InformerOptions restore_opts;
  restore_opts.resource = k8s::kOpenBaoRestores;
  Informers restores(client, options.watch_namespaces, restore_opts,
                     [&](k8s::EventType, const json& obj) {
                       queue.Add(std::string(kRestoreKeyPrefix) + k8s::ObjectKey(obj), now());
                     });

  k8s::LeaderElectionConfig lec;
  lec.ns = options.lease_namespace;
  lec.name = options.lease_name;
  lec.identity = options.identity;
  k8s::LeaderElector elector(client, lec, [&](bool leading) {
    // The elector logs the change; a new leader looks at every cluster once.
    if (!leading) return;
    if (options.backups) {
      clusters.Visit(enqueue_cluster);
    }
    if (options.restores) {
      restores.Visit([&](const json& r) {
        queue.Add(std::string(kRestoreKeyPrefix) + k8s::ObjectKey(r), now());
      });
    }
  });

  httplib::Server http;
  std::thread http_thread;
  if (bind.port > 0) {
    http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok\n", "text/plain");
    });
    http.Get("/readyz", [&](const httplib::Request&, httplib::Response& res) {
      bool ready =
          clusters.HasSynced() && jobs.HasSynced() && (!options.restores || restores.HasSynced());
      res.status = ready ? 200 : 503;
      res.set_content(ready ? "ok\n" : "informers not synced\n", "text/plain");
    });
    http.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
      // Only what the gauges read, not whole copies of every cached cluster.
      std::vector<json> gauges;
      clusters.Visit([&](const json& c) {
        const json& backup = At(c, {"status", "backup"});
        if (At(c, {"spec", "backup"}).is_null() || !backup.is_object()) return;
        gauges.push_back({{"metadata",
                           {{"namespace", Str(At(c, {"metadata"}), "namespace")},
                            {"name", Str(At(c, {"metadata"}), "name")}}},
                          {"spec", {{"backup", true}}},
                          {"status", {{"backup", backup}}}});
      });
      std::string text = ClusterGaugesText(gauges) + manager.MetricsText();
      text +=
          "# HELP bao_operator_leader 1 while this replica holds the Lease.\n"
          "# TYPE bao_operator_leader gauge\nbao_operator_leader " +
          std::string(elector.IsLeader() ? "1" : "0") + "\n";
      res.set_content(text, "text/plain; version=0.0.4");
    });
    if (!http.bind_to_port(bind.host.c_str(), bind.port)) {
      return Unavailable("cannot listen on " + options.metrics_bind_address +
                         " for /healthz, /readyz, /metrics (--metrics-bind-address)");
    }
    http_thread = std::thread([&] { http.listen_after_bind(); });
  }

  clusters.Start();
  jobs.Start();
  if (options.restores) restores.Start();
  elector.Start();
  std::string scope;
  for (const std::string& ns : options.watch_namespaces) scope += (scope.empty() ? "" : ",") + ns;
  log::Info("backup manager started",
            {{"identity", options.identity}, {"namespaces", scope.empty() ? "(all)" : scope}});
  std::map<std::string, int> failures_in_a_row;  // by cluster key
  while (!ctx.done()) {
    std::string key = queue.Pop();
    if (key.empty()) continue;
    if (!elector.IsLeader()) continue;  // the new leader re-enqueues everything
    const bool is_restore = key.starts_with(kRestoreKeyPrefix);
    std::string item = is_restore ? key.substr(kRestoreKeyPrefix.size()) : key;
    size_t slash = item.find('/');
    std::string ns = item.substr(0, slash), name = item.substr(slash + 1);
    if (is_restore ? !options.restores : !options.backups) continue;
    Result<ReconcileResult> r = Guarded(key, [&] {
      return is_restore ? restore_manager.Reconcile(ns, name) : manager.Reconcile(ns, name);
    });
    if (!r.ok()) {
      if (r.status().code() == Code::kInternal) {
        // Make it visible on the object; the Event itself may fail, the requeue still happens.
        json ref = {{"apiVersion", "openbao.org/v1alpha1"},
                    {"kind", is_restore ? "OpenBaoRestore" : "OpenBaoCluster"},
                    {"metadata", {{"namespace", ns}, {"name", name}}}};
        static_cast<void>(events.Warning(ref, "ReconcileFailed", r.status().message()));
      }
      int n = std::min(++failures_in_a_row[key], 16);
      auto backoff = std::min<std::chrono::milliseconds>(options.min_backoff * (1LL << (n - 1)),
                                                         options.max_backoff);
      log::Warn("reconcile failed; retrying",
                {{"cluster", key},
                 {"error", r.status().ToString()},
                 {"retryInSeconds", std::to_string(backoff.count() / 1000)}});
      queue.Add(key, now() + backoff);
      continue;
    }
    failures_in_a_row.erase(key);
    TimePoint due = std::min(r->requeue_at, now() + options.resync);
    if ((is_restore ? restores : clusters).Contains(ns, name)) queue.Add(key, due);
  }
  elector.Stop();
  restores.Stop();
  jobs.Stop();
  clusters.Stop();
  if (http_thread.joinable()) {
    http.stop();
    http_thread.join();
  }
  log::Info("backup manager stopped", {});
  return Status::Ok();
}

}  // namespace bao::op
