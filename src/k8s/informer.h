// An informer: list, then watch from the list's resourceVersion with bookmarks, keeping an
// in-memory cache of the objects keyed by "<namespace>/<name>" and calling a handler for every
// change. On 410 Gone it lists again (and reports the differences as events); on other errors
// it backs off exponentially and resumes the watch from the last seen resourceVersion.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/context.h"
#include "k8s/client.h"

namespace bao::k8s {

enum class EventType { kAdded, kModified, kDeleted };
const char* EventTypeName(EventType type);

struct InformerOptions {
  Resource resource;
  std::string ns;  // "" = all namespaces
  std::string label_selector;
  int watch_timeout_seconds = 300;  // each watch request; it is renewed seamlessly
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{10000};
};

// The cache and the handler see objects without metadata.managedFields (about half of an
// object's size on a real API server, and never read here).
// Thread-safety: Start()/Stop() from one owner thread; the cache accessors from any thread.
// The handler runs on the informer's own thread, one event at a time, after the cache has been
// updated and without any lock held (it may call the accessors).
class Informer {
 public:
  using Handler = std::function<void(EventType type, const json& object)>;

  // `client` must outlive the informer.
  Informer(Client* client, InformerOptions options, Handler handler);
  ~Informer();  // Stop()
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  // Starts the background thread. Calling it twice is a no-op.
  void Start();
  // Stops and joins the thread. An idle watch is aborted within about a second (libcurl checks
  // the stop flag at least once per second).
  void Stop();

  // True once the first list has filled the cache.
  bool HasSynced() const;
  std::optional<json> Get(const std::string& ns, const std::string& name) const;
  std::vector<json> List() const;
  // Calls `fn` for each cached object, under the cache's lock and without copying: `fn` must be
  // quick and must not call this informer.
  void Visit(const std::function<void(const json&)>& fn) const;
  // Resource version the next watch starts from.
  std::string ResourceVersion() const;
  // How many full lists were done (1 after the initial sync; more after 410 Gone).
  int ListCount() const;
  // How many list or watch requests failed (other than 410 Gone); for metrics and tests.
  int ErrorCount() const;

 private:
  void Run();
  Status ListAndReplace();
  void Deliver(EventType type, const json& object);
  // Sleeps up to `d`; false when stopping.
  bool Pause(std::chrono::milliseconds d);

  Client* client_;
  InformerOptions options_;
  Handler handler_;
  std::atomic<bool> stop_{false};
  std::unique_ptr<CancelSource> cancel_;  // cancels the running watch; a new one per Start()
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::map<std::string, json> cache_;
  std::string resource_version_;
  bool synced_ = false;
  int lists_ = 0;
  int errors_ = 0;
};

}  // namespace bao::k8s
