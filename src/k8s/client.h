// A compact Kubernetes API client over http::Client: get, list, create, update, delete, JSON
// merge patch, the status subresource and watch. Objects are nlohmann::json as the API sends
// them. Thread-safe: one Client may be shared by many threads; it keeps a small pool of
// connections (one per concurrent request).
//
// Errors: an API error answer becomes a Status whose code follows the HTTP status (404
// kNotFound, 409 AlreadyExists kAlreadyExists, 409 Conflict and 410 Gone kFailedPrecondition,
// 400/415/422 kInvalidArgument, 401 kUnauthenticated, 403 kPermissionDenied, 429/5xx
// kUnavailable), whose detail carries the HTTP status, a bao::Reason and the API's own reason
// (payload "k8sReason"), and whose message carries the server's message for people; use
// ReasonOf() / IsConflict() & co. to tell them apart, never the message.
// Transport failures are passed through from http::Client (kUnavailable, kDeadlineExceeded, ...).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/context.h"
#include "common/status.h"
#include "http/client.h"
#include "k8s/config.h"

namespace bao::k8s {

using json = nlohmann::json;

// Identifies a resource type on the API.
struct Resource {
  std::string group;  // "" for core
  std::string version;
  std::string plural;
  std::string kind;
  bool namespaced = true;
  std::string ApiVersion() const { return group.empty() ? version : group + "/" + version; }
};

inline const Resource kNamespaces{"", "v1", "namespaces", "Namespace", false};
inline const Resource kServiceAccounts{"", "v1", "serviceaccounts", "ServiceAccount", true};
inline const Resource kSecrets{"", "v1", "secrets", "Secret", true};
inline const Resource kConfigMaps{"", "v1", "configmaps", "ConfigMap", true};
inline const Resource kServices{"", "v1", "services", "Service", true};
inline const Resource kPods{"", "v1", "pods", "Pod", true};
inline const Resource kEvents{"", "v1", "events", "Event", true};
inline const Resource kJobs{"batch", "v1", "jobs", "Job", true};
inline const Resource kLeases{"coordination.k8s.io", "v1", "leases", "Lease", true};
inline const Resource kOpenBaoClusters{"openbao.org", "v1alpha1", "openbaoclusters",
                                       "OpenBaoCluster", true};
inline const Resource kOpenBaoRestores{"openbao.org", "v1alpha1", "openbaorestores",
                                       "OpenBaoRestore", true};

// The Kubernetes reason of an API error ("NotFound", "AlreadyExists", "Conflict", "Expired",
// "Gone", "Invalid", "Unauthorized", ...), or "" when `status` did not come from an API answer.
std::string ReasonOf(const Status& status);
// The HTTP status of an API error, or 0.
int HttpCodeOf(const Status& status);
bool IsNotFound(const Status& status);
bool IsAlreadyExists(const Status& status);
bool IsConflict(const Status& status);  // 409 with reason Conflict (stale resourceVersion)
bool IsGone(const Status& status);      // 410: the resourceVersion is too old, re-list

struct ListOptions {
  std::string label_selector;  // "a=b,c in (x,y)"
  std::string field_selector;  // "metadata.name=x"
};

struct ObjectList {
  std::vector<json> items;
  std::string resource_version;  // of the list, to start a watch from
};

struct DeleteOptions {
  std::string propagation_policy;  // "", "Background", "Foreground" or "Orphan"
  std::string precondition_uid;
  std::string precondition_resource_version;
};

struct WatchOptions {
  std::string resource_version;  // "" = synthetic ADDED events for the current state first
  std::string label_selector;
  std::string field_selector;
  int timeout_seconds = 300;  // the server ends the watch after this; Watch() then returns ok
  bool allow_bookmarks = true;
};

struct WatchEvent {
  std::string type;  // ADDED, MODIFIED, DELETED, BOOKMARK
  json object;
};

class Client {
 public:
  explicit Client(Config config);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const Config& config() const { return config_; }

  // `ns` is ignored for cluster-scoped resources. For namespaced ones an empty `ns` in List and
  // Watch means all namespaces; elsewhere it is config().default_namespace.
  Result<json> Get(const Resource& r, const std::string& ns, const std::string& name);
  Result<ObjectList> List(const Resource& r, const std::string& ns, const ListOptions& opts = {});
  Result<json> Create(const Resource& r, const std::string& ns, const json& object);
  // PUT of the whole object (name from metadata.name). With metadata.resourceVersion set, a
  // stale version fails with IsConflict().
  Result<json> Update(const Resource& r, const std::string& ns, const json& object);
  Result<json> UpdateStatus(const Resource& r, const std::string& ns, const json& object);
  // JSON merge patch (RFC 7386). A metadata.resourceVersion in the patch is a precondition.
  Result<json> MergePatch(const Resource& r, const std::string& ns, const std::string& name,
                          const json& patch);
  Result<json> PatchStatus(const Resource& r, const std::string& ns, const std::string& name,
                           const json& patch);
  // Starts deletion; ok also when finalizers keep the object around for a while.
  Status Delete(const Resource& r, const std::string& ns, const std::string& name,
                const DeleteOptions& opts = {});

  // Streams watch events to `on_event` (on the calling thread) until the server ends the
  // stream (ok), `on_event` returns an error (returned), `ctx` is cancelled (kAborted) or past
  // its deadline (kDeadlineExceeded), the server sends an ERROR event (its Status; IsGone() for
  // an expired resourceVersion) or the connection fails.
  Status Watch(const Resource& r, const std::string& ns, const WatchOptions& opts,
               const std::function<Status(const WatchEvent&)>& on_event,
               const Context& ctx = Context());

 private:
  std::string Url(const Resource& r, const std::string& ns, const std::string& name,
                  const std::string& subresource) const;
  Result<http::Response> Do(http::Request request);
  Result<json> Call(const std::string& what, http::Request request);
  // PUT or PATCH `body` to object `name` (or its `subresource`); `what` names the call.
  Result<json> Send(const char* method, const char* content_type, const Resource& r,
                    const std::string& ns, const std::string& name, const char* subresource,
                    const json& body, const std::string& what);

  Config config_;
  TokenSource tokens_;
  std::mutex pool_mu_;
  std::vector<std::unique_ptr<http::Client>> idle_;
};

// Runs `attempt` (typically: get, modify, update with the read resourceVersion) again while it
// fails with IsConflict(), up to `max_attempts` times in all, with a short growing pause.
// Returns the last result.
Status RetryOnConflict(const std::function<Status()>& attempt, int max_attempts = 5);

// "<namespace>/<name>" (or "<name>" when cluster-scoped) of an object: the informer cache key.
std::string ObjectKey(const json& object);

}  // namespace bao::k8s
