#include "k8s/events.h"

#include "common/redact.h"
#include "crypto/crypto.h"

namespace bao::k8s {
namespace {

std::string Str(const json& obj, const char* field) {
  auto it = obj.find(field);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

EventRecorder::EventRecorder(Client* client, std::string component, const Clock* clock)
    : client_(client), component_(std::move(component)), clock_(clock) {}

Status EventRecorder::Record(const json& object, const std::string& type, const std::string& reason,
                             const std::string& message) {
  json meta = object.contains("metadata") && object["metadata"].is_object() ? object["metadata"]
                                                                            : json::object();
  std::string name = Str(meta, "name");
  if (name.empty()) return InvalidArgument("cannot record an event about an object without name");
  std::string obj_ns = Str(meta, "namespace");
  std::string ns = obj_ns.empty() ? "default" : obj_ns;
  std::string text = Redact(message);
  std::string now = FormatRfc3339(clock_->Now());
  std::string key = Str(object, "kind") + "/" + obj_ns + "/" + name + "/" + Str(meta, "uid") +
                    "\n" + type + "\n" + reason + "\n" + text;

  std::unique_lock<std::mutex> lock(mu_);
  auto it = seen_.find(key);
  if (it != seen_.end()) {
    Seen seen = it->second;
    lock.unlock();
    Result<json> patched = client_->MergePatch(kEvents, seen.ns, seen.name,
                                               {{"count", seen.count + 1}, {"lastTimestamp", now}});
    lock.lock();
    if (patched.ok()) {
      seen_[key].count = seen.count + 1;
      return Status::Ok();
    }
    if (!IsNotFound(patched.status())) return patched.status();
    seen_.erase(key);  // the Event expired on the server: write a fresh one
  }
  lock.unlock();

  json involved = {
      {"kind", Str(object, "kind")}, {"apiVersion", Str(object, "apiVersion")}, {"name", name}};
  if (!obj_ns.empty()) involved["namespace"] = obj_ns;
  if (!Str(meta, "uid").empty()) involved["uid"] = Str(meta, "uid");
  if (!Str(meta, "resourceVersion").empty()) {
    involved["resourceVersion"] = Str(meta, "resourceVersion");
  }
  std::string event_name = name + "." + crypto::RandomHex(16);
  json event = {{"apiVersion", "v1"},
                {"kind", "Event"},
                {"metadata", {{"name", event_name}, {"namespace", ns}}},
                {"involvedObject", involved},
                {"reason", reason},
                {"message", text},
                {"type", type},
                {"count", 1},
                {"firstTimestamp", now},
                {"lastTimestamp", now},
                {"source", {{"component", component_}}},
                {"reportingComponent", component_}};
  Result<json> created = client_->Create(kEvents, ns, event);
  if (!created.ok()) return created.status();
  lock.lock();
  if (seen_.size() >= 4096) seen_.clear();
  seen_[key] = {ns, event_name, 1};
  return Status::Ok();
}

}  // namespace bao::k8s
