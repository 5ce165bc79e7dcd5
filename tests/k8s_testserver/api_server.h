// The in-memory Kubernetes API test server: object store, watch history and the HTTP routes.
// See README.md for what it implements.
#pragma once

#include <httplib.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace k8stest {

// One row of the resource table. Adding a resource is one line in api_server.cc.
struct ResourceType {
  std::string group;    // "" for core
  std::string version;  // "v1"
  std::string plural;   // "secrets"
  std::string kind;     // "Secret"
  bool namespaced = true;
  bool status_subresource = false;  // main endpoint ignores status, /status only status
  bool custom = false;              // a custom resource (list items carry kind/apiVersion)
  bool orphan_by_default = false;   // default propagationPolicy is Orphan (batch/v1 Job)

  std::string ApiVersion() const { return group.empty() ? version : group + "/" + version; }
  std::string GroupResource() const { return group.empty() ? plural : plural + "." + group; }
};

struct Options {
  std::vector<std::string> tokens;  // accepted bearer tokens; empty = no authentication
  size_t event_window = 1000;       // watch events kept; older resourceVersions get 410
  int bookmark_interval_ms = 5000;
};

class ApiServer {
 public:
  explicit ApiServer(Options options);
  // Registers the routes on `server`.
  void Install(httplib::Server* server);
  // Wakes every watch so it can notice shutdown.
  void Shutdown();

  struct Reply {
    int code = 200;
    nlohmann::json body;
  };

 private:
  struct Event {
    uint64_t rv;
    int type;
    std::string kind;  // ADDED, MODIFIED, DELETED
    nlohmann::json object;
    nlohmann::json previous;  // MODIFIED only: the object before the change
  };
  struct Target;  // a parsed request path

  Reply Get(const Target& t);
  Reply List(const Target& t, const std::string& label_selector, const std::string& field_selector);
  Reply Create(const Target& t, const std::string& body);
  Reply Replace(const Target& t, const std::string& body);
  Reply Patch(const Target& t, const std::string& content_type, const std::string& body);
  Reply Delete(const Target& t, const std::string& body, const std::string& policy_param);

  // All below run with mu_ held.
  std::string Key(int type, const std::string& ns, const std::string& name) const;
  nlohmann::json* Find(int type, const std::string& ns, const std::string& name);
  Reply Store(int type, const nlohmann::json& old, nlohmann::json incoming, bool status_only);
  void Emit(int type, const std::string& kind, const nlohmann::json& object,
            const nlohmann::json& previous = nullptr);
  void Remove(const std::string& key);
  // Starts deletion of the object at `key`: marks it (finalizers) or removes it.
  void StartDelete(const std::string& key, const std::string& policy);
  void CollectGarbage();
  // True when one of `obj`'s owner references (if any) names a live object in its namespace (or
  // a cluster-scoped one) by kind, name and uid: then creating `obj` cannot make garbage, and
  // the full scan of CollectGarbage() is skipped.
  bool HasLiveOwner(const nlohmann::json& obj);
  void EnsureNamespace(const std::string& ns);
  nlohmann::json WithTypeMeta(int type, nlohmann::json object) const;

  void HandleApi(const httplib::Request& req, httplib::Response& res);
  void HandleWatch(const Target& t, const httplib::Request& req, httplib::Response& res);

  Options options_;
  std::mutex mu_;
  std::condition_variable changed_;
  bool shutting_down_ = false;
  uint64_t rv_ = 0;
  uint64_t compacted_ = 0;  // watches from a resourceVersion below this get 410 Gone
  std::map<std::string, std::pair<int, nlohmann::json>> objects_;  // key -> (type, object)
  std::deque<Event> history_;
  // Injected failures (POST /_test/faults): the next `count` API requests with this method
  // whose path ends with `path_suffix` fail with `code` and change nothing.
  struct Fault {
    std::string method, path_suffix;
    int code = 500;
    int count = 1;
  };
  std::vector<Fault> faults_;
};

}  // namespace k8stest
