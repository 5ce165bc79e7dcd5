#include "operator/controller.h"

#include <httplib.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "common/log.h"
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

}  // namespace

Status RunController(k8s::Client* client, const ControllerOptions& options,
                     const std::atomic<bool>* stop) {
  k8s::EventRecorder events(client, "bao-backup-operator", options.manager.clock);
  BackupManager manager(client, &events, options.manager);
  WorkQueue queue;
  auto now = [&] { return options.manager.clock->Now(); };
  auto enqueue_cluster = [&](const json& obj) { queue.Add(k8s::ObjectKey(obj), now()); };

  k8s::InformerOptions cluster_opts;
  cluster_opts.resource = k8s::kOpenBaoClusters;
  cluster_opts.ns = options.watch_namespace;
  std::map<std::string, std::string> fingerprints;  // only touched on the informer's thread
  k8s::Informer clusters(client, cluster_opts, [&](k8s::EventType type, const json& obj) {
    std::string key = k8s::ObjectKey(obj);
    if (type == k8s::EventType::kDeleted) {
      fingerprints.erase(key);
    } else {
      std::string fp = Fingerprint(obj);
      auto [it, added] = fingerprints.try_emplace(key, fp);
      if (!added && it->second == fp) return;
      it->second = fp;
    }
    queue.Add(key, now());
  });
  k8s::InformerOptions job_opts;
  job_opts.resource = k8s::kJobs;
  job_opts.ns = options.watch_namespace;
  job_opts.label_selector = std::string(kLabelManagedBy) + "=" + kManagedBy;
  k8s::Informer jobs(client, job_opts, [&](k8s::EventType, const json& job) {
    const json& labels = job["metadata"].value("labels", json::object());
    if (labels.contains(kLabelCluster) && labels[kLabelCluster].is_string()) {
      queue.Add(job["metadata"].value("namespace", "default") + "/" +
                    labels[kLabelCluster].get<std::string>(),
                now());
    }
  });

  k8s::LeaderElectionConfig lec;
  lec.ns = options.lease_namespace;
  lec.name = options.lease_name;
  lec.identity = options.identity;
  k8s::LeaderElector elector(client, lec, [&](bool leading) {
    log::Info(leading ? "became leader" : "stopped leading", {{"identity", options.identity}});
    if (leading) {
      for (const json& c : clusters.List()) enqueue_cluster(c);
    }
  });

  httplib::Server http;
  std::thread http_thread;
  if (options.listen_port > 0) {
    http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok\n", "text/plain");
    });
    http.Get("/readyz", [&](const httplib::Request&, httplib::Response& res) {
      bool ready = clusters.HasSynced() && jobs.HasSynced();
      res.status = ready ? 200 : 503;
      res.set_content(ready ? "ok\n" : "informers not synced\n", "text/plain");
    });
    http.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
      std::string text = manager.MetricsText();
      text +=
          "# HELP bao_operator_leader 1 while this replica holds the Lease.\n"
          "# TYPE bao_operator_leader gauge\nbao_operator_leader " +
          std::string(elector.IsLeader() ? "1" : "0") + "\n";
      res.set_content(text, "text/plain; version=0.0.4");
    });
    if (!http.bind_to_port(options.listen_host.c_str(), options.listen_port)) {
      return Unavailable("cannot listen on " + options.listen_host + ":" +
                         std::to_string(options.listen_port) + " for /healthz, /readyz, /metrics");
    }
    http_thread = std::thread([&] { http.listen_after_bind(); });
  }

  clusters.Start();
  jobs.Start();
  elector.Start();
  log::Info("backup manager started",
            {{"identity", options.identity},
             {"namespace",
              options.watch_namespace.empty() ? std::string("(all)") : options.watch_namespace}});
  while (!stop->load()) {
    std::string key = queue.Pop();
    if (key.empty()) continue;
    if (!elector.IsLeader()) continue;  // the new leader re-enqueues everything
    size_t slash = key.find('/');
    std::string ns = key.substr(0, slash), name = key.substr(slash + 1);
    Result<ReconcileResult> r = manager.Reconcile(ns, name);
    if (!r.ok()) {
      log::Warn("reconcile failed; retrying", {{"cluster", key}, {"error", r.status().ToString()}});
      queue.Add(key, now() + std::chrono::seconds(5));
      continue;
    }
    TimePoint due = std::min(r->requeue_at, now() + options.resync);
    if (clusters.Get(ns, name)) queue.Add(key, due);
  }
  elector.Stop();
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
