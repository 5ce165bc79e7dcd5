// Records core/v1 Events about objects, like client-go's recorder: repeated identical events
// (same object, type, reason and message) update count and lastTimestamp of the existing Event
// instead of creating new ones. Messages pass through Redact().
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "common/time.h"
#include "k8s/client.h"

namespace bao::k8s {

// Thread-safe. `client` and `clock` must outlive the recorder.
class EventRecorder {
 public:
  EventRecorder(Client* client, std::string component, const Clock* clock = &SystemClock());

  // Records an Event of `type` ("Normal" or "Warning") about `object` (which needs kind,
  // apiVersion and metadata.name; namespace and uid are used when present). The Event lives in
  // the object's namespace, or "default" for cluster-scoped objects. Returns the API error if
  // the Event could not be written; callers usually just log it.
  Status Record(const json& object, const std::string& type, const std::string& reason,
                const std::string& message);
  Status Normal(const json& object, const std::string& reason, const std::string& message) {
    return Record(object, "Normal", reason, message);
  }
  Status Warning(const json& object, const std::string& reason, const std::string& message) {
    return Record(object, "Warning", reason, message);
  }

 private:
  struct Seen {
    std::string ns, name;
    int count = 0;
  };
  Client* client_;
  std::string component_;
  const Clock* clock_;
  std::mutex mu_;
  std::map<std::string, Seen> seen_;  // bounded: cleared when it grows past 4096 entries
};

}  // namespace bao::k8s
