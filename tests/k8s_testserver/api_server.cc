#include "api_server.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <random>

#include "common/time.h"
#include "crypto/crypto.h"
#include "k8s/merge_patch.h"
#include "k8s/selector.h"

namespace k8stest {
namespace {

using json = nlohmann::json;
using Reply = ApiServer::Reply;

// The resource table: group, version, plural, kind, namespaced, status subresource, custom,
// orphan by default.
const std::vector<ResourceType>& Types() {
  static const std::vector<ResourceType> kTypes = {
      {"", "v1", "namespaces", "Namespace", false, false, false, false},
      {"", "v1", "serviceaccounts", "ServiceAccount", true, false, false, false},
      {"", "v1", "secrets", "Secret", true, false, false, false},
      {"", "v1", "configmaps", "ConfigMap", true, false, false, false},
      {"", "v1", "services", "Service", true, false, false, false},
      {"", "v1", "events", "Event", true, false, false, false},
      {"", "v1", "pods", "Pod", true, true, false, false},
      {"batch", "v1", "jobs", "Job", true, true, false, true},
      {"coordination.k8s.io", "v1", "leases", "Lease", true, false, false, false},
      {"openbao.org", "v1alpha1", "openbaoclusters", "OpenBaoCluster", true, true, true, false},
      {"openbao.org", "v1alpha1", "openbaorestores", "OpenBaoRestore", true, true, true, false},
  };
  return kTypes;
}

int FindType(const std::string& group, const std::string& version, const std::string& plural) {
  const auto& types = Types();
  for (size_t i = 0; i < types.size(); ++i) {
    if (types[i].group == group && types[i].version == version && types[i].plural == plural) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

json StatusBody(int code, const std::string& reason, const std::string& message,
                const json& details = nullptr) {
  json s = {{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", json::object()},
            {"status", "Failure"}, {"message", message}, {"reason", reason},
            {"code", code}};
  if (!details.is_null()) s["details"] = details;
  return s;
}

Reply Error(int code, const std::string& reason, const std::string& message,
            const json& details = nullptr) {
  return {code, StatusBody(code, reason, message, details)};
}

json Details(const ResourceType& type, const std::string& name) {
  json d = {{"name", name}, {"kind", type.plural}};
  if (!type.group.empty()) d["group"] = type.group;
  return d;
}

Reply NotFoundReply(const ResourceType& type, const std::string& name) {
  return Error(404, "NotFound", type.GroupResource() + " \"" + name + "\" not found",
               Details(type, name));
}

Reply ConflictReply(const ResourceType& type, const std::string& name, const std::string& why) {
  return Error(
      409, "Conflict",
      "Operation cannot be fulfilled on " + type.GroupResource() + " \"" + name + "\": " + why,
      Details(type, name));
}

Reply InvalidReply(const ResourceType& type, const std::string& name, const std::string& why) {
  return Error(422, "Invalid", type.kind + " \"" + name + "\" is invalid: " + why,
               Details(type, name));
}

// DNS-1123 subdomain: lower-case alphanumerics, '-' and '.', alphanumeric at both ends.
bool ValidObjectName(const std::string& name) {
  if (name.empty() || name.size() > 253) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(name.front()) || !alnum(name.back())) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return alnum(c) || c == '-' || c == '.'; });
}

std::string NewUid() {
  std::string h = bao::crypto::RandomHex(32);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-4" + h.substr(13, 3) + "-a" + h.substr(17, 3) +
         "-" + h.substr(20, 12);
}

std::string RandomSuffix() {
  static const char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  std::string bytes = bao::crypto::RandomBytes(5);
  std::string out;
  for (char b : bytes) out.push_back(kAlphabet[static_cast<unsigned char>(b) % 27]);
  return out;
}

std::string Now() {
  return bao::FormatRfc3339(bao::SystemClock().Now());
}

std::string StrField(const json& obj, const char* field) {
  auto it = obj.find(field);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

json& Meta(json& obj) {
  if (!obj.contains("metadata") || !obj["metadata"].is_object()) obj["metadata"] = json::object();
  return obj["metadata"];
}

const json& MetaOf(const json& obj) {
  static const json kEmpty = json::object();
  auto it = obj.find("metadata");
  return it != obj.end() && it->is_object() ? *it : kEmpty;
}

std::vector<std::string> Finalizers(const json& obj) {
  std::vector<std::string> out;
  const json& meta = MetaOf(obj);
  if (meta.contains("finalizers") && meta["finalizers"].is_array()) {
    for (const auto& f : meta["finalizers"]) {
      if (f.is_string()) out.push_back(f.get<std::string>());
    }
  }
  return out;
}

// The object without metadata and status: what "spec changes" bump generation for.
json SpecPart(json obj) {
  obj.erase("metadata");
  obj.erase("status");
  obj.erase("kind");
  obj.erase("apiVersion");
  return obj;
}

// fieldSelector support: metadata.name and metadata.namespace with =, == and !=.
struct FieldRequirement {
  std::string field, value;
  bool equal;
};

bool ParseFieldSelector(const std::string& text, std::vector<FieldRequirement>* out,
                        std::string* error) {
  size_t start = 0;
  while (start <= text.size() && !text.empty()) {
    size_t comma = text.find(',', start);
    std::string part = text.substr(start, comma == std::string::npos ? comma : comma - start);
    FieldRequirement r;
    size_t op = part.find("!=");
    if (op != std::string::npos) {
      r = {part.substr(0, op), part.substr(op + 2), false};
    } else if ((op = part.find("==")) != std::string::npos) {
      r = {part.substr(0, op), part.substr(op + 2), true};
    } else if ((op = part.find('=')) != std::string::npos) {
      r = {part.substr(0, op), part.substr(op + 1), true};
    } else {
      *error = "invalid field selector requirement \"" + part + "\"";
      return false;
    }
    if (r.field != "metadata.name" && r.field != "metadata.namespace") {
      *error = "field label not supported: " + r.field;
      return false;
    }
    out->push_back(r);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return true;
}

bool FieldsMatch(const std::vector<FieldRequirement>& reqs, const json& obj) {
  const json& meta = MetaOf(obj);
  for (const auto& r : reqs) {
    std::string have = StrField(meta, r.field == "metadata.name" ? "name" : "namespace");
    if ((have == r.value) != r.equal) return false;
  }
  return true;
}

}  // namespace

struct ApiServer::Target {
  int type = -1;
  std::string ns;    // "" for cluster-scoped types and all-namespace collections
  std::string name;  // "" for collections
  std::string subresource;
  const ResourceType& rt() const { return Types()[type]; }
};

ApiServer::ApiServer(Options options) : options_(std::move(options)) {
  std::lock_guard<std::mutex> lock(mu_);
  EnsureNamespace("default");
}

std::string ApiServer::Key(int type, const std::string& ns, const std::string& name) const {
  return std::to_string(type) + '\0' + ns + '\0' + name;
}

json* ApiServer::Find(int type, const std::string& ns, const std::string& name) {
  auto it = objects_.find(Key(type, ns, name));
  return it == objects_.end() ? nullptr : &it->second.second;
}

json ApiServer::WithTypeMeta(int type, json object) const {
  object["kind"] = Types()[type].kind;
  object["apiVersion"] = Types()[type].ApiVersion();
  return object;
}

void ApiServer::Emit(int type, const std::string& kind, const json& object, const json& previous) {
  history_.push_back({rv_, type, kind, object, previous});
  while (history_.size() > options_.event_window) {
    compacted_ = history_.front().rv;
    history_.pop_front();
  }
  changed_.notify_all();
}

void ApiServer::EnsureNamespace(const std::string& ns) {
  int type = FindType("", "v1", "namespaces");
  if (ns.empty() || Find(type, "", ns) != nullptr) return;
  json obj = {{"kind", "Namespace"},
              {"apiVersion", "v1"},
              {"metadata",
               {{"name", ns},
                {"uid", NewUid()},
                {"resourceVersion", std::to_string(++rv_)},
                {"generation", 1},
                {"creationTimestamp", Now()}}},
              {"spec", {{"finalizers", {"kubernetes"}}}},
              {"status", {{"phase", "Active"}}}};
  objects_[Key(type, "", ns)] = {type, obj};
  Emit(type, "ADDED", obj);
}

void ApiServer::Remove(const std::string& key) {
  auto it = objects_.find(key);
  if (it == objects_.end()) return;
  int type = it->second.first;
  json obj = std::move(it->second.second);
  objects_.erase(it);
  Meta(obj)["resourceVersion"] = std::to_string(++rv_);
  Emit(type, "DELETED", obj);
}

void ApiServer::StartDelete(const std::string& key, const std::string& policy) {
  auto it = objects_.find(key);
  if (it == objects_.end()) return;
  int type = it->second.first;
  json& obj = it->second.second;
  json& meta = Meta(obj);
  std::string uid = StrField(meta, "uid");
  if (policy == "Orphan") {
    // Dependents lose their owner reference to this object instead of being collected.
    for (auto& [k, entry] : objects_) {
      json& dm = Meta(entry.second);
      if (!dm.contains("ownerReferences") || !dm["ownerReferences"].is_array()) continue;
      json kept = json::array();
      for (const auto& ref : dm["ownerReferences"]) {
        if (!(ref.is_object() && StrField(ref, "uid") == uid)) kept.push_back(ref);
      }
      if (kept.size() == dm["ownerReferences"].size()) continue;
      json previous = entry.second;
      if (kept.empty()) {
        dm.erase("ownerReferences");
      } else {
        dm["ownerReferences"] = kept;
      }
      dm["resourceVersion"] = std::to_string(++rv_);
      Emit(entry.first, "MODIFIED", entry.second, previous);
    }
  }
  std::vector<std::string> finalizers = Finalizers(obj);
  bool foreground = policy == "Foreground";
  if (finalizers.empty() && !foreground) {
    Remove(key);
    return;
  }
  json previous = obj;
  if (foreground &&
      std::find(finalizers.begin(), finalizers.end(), "foregroundDeletion") == finalizers.end()) {
    finalizers.push_back("foregroundDeletion");
    meta["finalizers"] = finalizers;
  }
  if (!meta.contains("deletionTimestamp")) {
    meta["deletionTimestamp"] = Now();
    meta["deletionGracePeriodSeconds"] = 0;
  }
  if (previous == obj) return;
  meta["resourceVersion"] = std::to_string(++rv_);
  Emit(type, "MODIFIED", obj, previous);
}

bool ApiServer::HasLiveOwner(const json& obj) {
  const json& meta = MetaOf(obj);
  const std::string ns = StrField(meta, "namespace");
  for (const json& ref : meta.value("ownerReferences", json::array())) {
    for (size_t type = 0; type < Types().size(); ++type) {
      const ResourceType& rt = Types()[type];
      if (rt.kind != StrField(ref, "kind") || rt.ApiVersion() != StrField(ref, "apiVersion")) {
        continue;
      }
      const json* owner =
          Find(static_cast<int>(type), rt.namespaced ? ns : "", StrField(ref, "name"));
      if (owner != nullptr && StrField(MetaOf(*owner), "uid") == StrField(ref, "uid") &&
          !MetaOf(*owner).contains("deletionTimestamp")) {
        return true;
      }
    }
  }
  return false;
}

void ApiServer::CollectGarbage() {
  for (bool changed = true; changed;) {
    changed = false;
    // uid -> (namespace, being deleted in the foreground)
    std::map<std::string, std::pair<std::string, bool>> live;
    std::set<std::string> referenced;
    for (const auto& [key, entry] : objects_) {
      const json& meta = MetaOf(entry.second);
      std::vector<std::string> f = Finalizers(entry.second);
      bool foreground = meta.contains("deletionTimestamp") &&
                        std::find(f.begin(), f.end(), "foregroundDeletion") != f.end();
      live[StrField(meta, "uid")] = {StrField(meta, "namespace"), foreground};
    }
    std::vector<std::string> to_delete;
    for (const auto& [key, entry] : objects_) {
      const json& meta = MetaOf(entry.second);
      if (!meta.contains("ownerReferences") || !meta["ownerReferences"].is_array() ||
          meta["ownerReferences"].empty()) {
        continue;
      }
      std::string ns = StrField(meta, "namespace");
      bool any_owner_alive = false;
      for (const auto& ref : meta["ownerReferences"]) {
        if (!ref.is_object()) continue;
        auto it = live.find(StrField(ref, "uid"));
        // An owner must be cluster-scoped or in the dependent's namespace.
        if (it == live.end() || (!it->second.first.empty() && it->second.first != ns)) continue;
        referenced.insert(it->first);
        if (!it->second.second) any_owner_alive = true;
      }
      if (!any_owner_alive && !meta.contains("deletionTimestamp")) to_delete.push_back(key);
    }
    for (const auto& key : to_delete) {
      StartDelete(key, "Background");
      changed = true;
    }
    // Owners deleted in the foreground go once no dependent refers to them any more.
    std::vector<std::string> release;
    for (const auto& [key, entry] : objects_) {
      const json& meta = MetaOf(entry.second);
      if (!meta.contains("deletionTimestamp")) continue;
      std::vector<std::string> f = Finalizers(entry.second);
      if (std::find(f.begin(), f.end(), "foregroundDeletion") == f.end()) continue;
      if (!referenced.contains(StrField(meta, "uid"))) release.push_back(key);
    }
    for (const auto& key : release) {
      auto it = objects_.find(key);
      if (it == objects_.end()) continue;
      json previous = it->second.second;
      std::vector<std::string> f = Finalizers(previous);
      f.erase(std::remove(f.begin(), f.end(), "foregroundDeletion"), f.end());
      if (f.empty()) {
        Remove(key);
      } else {
        json& meta = Meta(it->second.second);
        meta["finalizers"] = f;
        meta["resourceVersion"] = std::to_string(++rv_);
        Emit(it->second.first, "MODIFIED", it->second.second, previous);
      }
      changed = true;
    }
  }
}

Reply ApiServer::Get(const Target& t) {
  std::lock_guard<std::mutex> lock(mu_);
  json* obj = Find(t.type, t.ns, t.name);
  if (obj == nullptr) return NotFoundReply(t.rt(), t.name);
  return {200, *obj};
}

Reply ApiServer::List(const Target& t, const std::string& label_selector,
                      const std::string& field_selector) {
  auto sel = bao::k8s::LabelSelector::Parse(label_selector);
  if (!sel.ok()) return Error(400, "BadRequest", sel.status().message());
  std::vector<FieldRequirement> fields;
  std::string error;
  if (!ParseFieldSelector(field_selector, &fields, &error)) {
    return Error(400, "BadRequest", error);
  }
  std::lock_guard<std::mutex> lock(mu_);
  json items = json::array();
  for (const auto& [key, entry] : objects_) {
    if (entry.first != t.type) continue;
    const json& meta = MetaOf(entry.second);
    if (!t.ns.empty() && StrField(meta, "namespace") != t.ns) continue;
    if (!sel->Matches(meta.contains("labels") ? meta["labels"] : json())) continue;
    if (!FieldsMatch(fields, entry.second)) continue;
    json item = entry.second;
    if (!t.rt().custom) {
      item.erase("kind");
      item.erase("apiVersion");
    }
    items.push_back(std::move(item));
  }
  return {200,
          {{"kind", t.rt().kind + "List"},
           {"apiVersion", t.rt().ApiVersion()},
           {"metadata", {{"resourceVersion", std::to_string(rv_)}}},
           {"items", std::move(items)}}};
}

Reply ApiServer::Create(const Target& t, const std::string& body) {
  const ResourceType& rt = t.rt();
  json obj = json::parse(body, nullptr, false);
  if (obj.is_discarded() || !obj.is_object()) {
    return Error(400, "BadRequest", "the request body is not a JSON object");
  }
  if (obj.contains("kind") && obj["kind"] != rt.kind) {
    return Error(400, "BadRequest",
                 "the kind of the object (" + obj["kind"].dump() + ") does not match " + rt.kind);
  }
  json& meta = Meta(obj);
  std::string ns = StrField(meta, "namespace");
  if (rt.namespaced) {
    if (!ns.empty() && ns != t.ns) {
      return Error(400, "BadRequest",
                   "the namespace of the provided object does not match the namespace sent on "
                   "the request");
    }
    meta["namespace"] = t.ns;
  } else {
    meta.erase("namespace");
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::string name = StrField(meta, "name");
  if (name.empty()) {
    std::string prefix = StrField(meta, "generateName");
    if (prefix.empty()) {
      return InvalidReply(rt, "",
                          "metadata.name: Required value: name or generateName is "
                          "required");
    }
    do {
      name = prefix + RandomSuffix();
    } while (Find(t.type, t.ns, name) != nullptr);
    meta["name"] = name;
  }
  if (!ValidObjectName(name)) {
    return InvalidReply(rt, name,
                        "metadata.name: Invalid value: \"" + name +
                            "\": a lowercase RFC 1123 subdomain must consist of lower case "
                            "alphanumeric characters, '-' or '.', and must start and end with an "
                            "alphanumeric character");
  }
  if (Find(t.type, t.ns, name) != nullptr) {
    return Error(409, "AlreadyExists", rt.GroupResource() + " \"" + name + "\" already exists",
                 Details(rt, name));
  }
  if (rt.namespaced) EnsureNamespace(t.ns);
  meta["uid"] = NewUid();
  meta["resourceVersion"] = std::to_string(++rv_);
  meta["generation"] = 1;
  meta["creationTimestamp"] = Now();
  meta.erase("deletionTimestamp");
  meta.erase("deletionGracePeriodSeconds");
  if (rt.status_subresource) obj.erase("status");
  obj = WithTypeMeta(t.type, std::move(obj));
  objects_[Key(t.type, t.ns, name)] = {t.type, obj};
  Emit(t.type, "ADDED", obj);
  if (MetaOf(obj).contains("ownerReferences") && !HasLiveOwner(obj)) CollectGarbage();
  return {201, obj};
}

Reply ApiServer::Store(int type, const json& old, json incoming, bool status_only) {
  const ResourceType& rt = Types()[type];
  const json& old_meta = MetaOf(old);
  std::string name = StrField(old_meta, "name");
  std::string want_rv = StrField(MetaOf(incoming), "resourceVersion");
  if (!want_rv.empty() && want_rv != StrField(old_meta, "resourceVersion")) {
    return ConflictReply(rt, name,
                         "the object has been modified; please apply your changes to the latest "
                         "version and try again");
  }
  json next;
  if (status_only) {
    next = old;
    if (incoming.contains("status")) {
      next["status"] = incoming["status"];
    } else {
      next.erase("status");
    }
  } else {
    next = std::move(incoming);
    if (rt.status_subresource) {
      if (old.contains("status")) {
        next["status"] = old["status"];
      } else {
        next.erase("status");
      }
    }
    json& meta = Meta(next);
    for (const char* f : {"uid", "creationTimestamp", "deletionTimestamp",
                          "deletionGracePeriodSeconds", "namespace", "name", "generation"}) {
      if (old_meta.contains(f)) {
        meta[f] = old_meta[f];
      } else {
        meta.erase(f);
      }
    }
    meta["resourceVersion"] = old_meta["resourceVersion"];
    next = WithTypeMeta(type, std::move(next));
  }
  if (next == old) return {200, old};  // a no-op update does not change resourceVersion
  json& meta = Meta(next);
  if (old_meta.contains("deletionTimestamp")) {
    std::vector<std::string> before = Finalizers(old);
    for (const auto& f : Finalizers(next)) {
      if (std::find(before.begin(), before.end(), f) == before.end()) {
        return InvalidReply(rt, name,
                            "metadata.finalizers: Forbidden: no new finalizers can be added if "
                            "the object is being deleted, found new finalizers [\"" +
                                f + "\"]");
      }
    }
  }
  if (SpecPart(next) != SpecPart(old)) {
    meta["generation"] = old_meta.value("generation", 0) + 1;
  }
  meta["resourceVersion"] = std::to_string(++rv_);
  std::string key = Key(type, StrField(meta, "namespace"), name);
  objects_[key] = {type, next};
  Emit(type, "MODIFIED", next, old);
  if (meta.contains("deletionTimestamp") && Finalizers(next).empty()) {
    Remove(key);
    CollectGarbage();
  } else if (meta.value("ownerReferences", json()) != old_meta.value("ownerReferences", json()) ||
             meta.contains("deletionTimestamp")) {
    CollectGarbage();
  }
  return {200, next};
}

Reply ApiServer::Replace(const Target& t, const std::string& body) {
  const ResourceType& rt = t.rt();
  json obj = json::parse(body, nullptr, false);
  if (obj.is_discarded() || !obj.is_object()) {
    return Error(400, "BadRequest", "the request body is not a JSON object");
  }
  const json& meta = MetaOf(obj);
  if (StrField(meta, "name") != t.name) {
    return Error(400, "BadRequest",
                 "the name of the object (" + StrField(meta, "name") +
                     ") does not match the name on the URL (" + t.name + ")");
  }
  if (rt.namespaced && meta.contains("namespace") && StrField(meta, "namespace") != t.ns) {
    return Error(400, "BadRequest",
                 "the namespace of the provided object does not match the namespace sent on the "
                 "request");
  }
  std::lock_guard<std::mutex> lock(mu_);
  json* current = Find(t.type, t.ns, t.name);
  if (current == nullptr) return NotFoundReply(rt, t.name);
  json old = *current;
  return Store(t.type, old, std::move(obj), t.subresource == "status");
}

Reply ApiServer::Patch(const Target& t, const std::string& content_type, const std::string& body) {
  const ResourceType& rt = t.rt();
  if (content_type.rfind("application/merge-patch+json", 0) != 0) {
    return Error(415, "UnsupportedMediaType",
                 "the body of the request was in an unknown format - accepted media types "
                 "include: application/merge-patch+json");
  }
  json patch = json::parse(body, nullptr, false);
  if (patch.is_discarded() || !patch.is_object()) {
    return Error(400, "BadRequest", "the merge patch is not a JSON object");
  }
  std::lock_guard<std::mutex> lock(mu_);
  json* current = Find(t.type, t.ns, t.name);
  if (current == nullptr) return NotFoundReply(rt, t.name);
  json old = *current;
  json merged = bao::k8s::ApplyMergePatch(old, patch);
  const json& pm = MetaOf(patch);
  if (StrField(MetaOf(merged), "name") != t.name ||
      (rt.namespaced && StrField(MetaOf(merged), "namespace") != t.ns)) {
    return InvalidReply(rt, t.name, "metadata.name: Invalid value: the patch changes the name");
  }
  if (!pm.contains("resourceVersion")) {
    // Only an explicit resourceVersion in the patch is a precondition.
    Meta(merged)["resourceVersion"] = MetaOf(old)["resourceVersion"];
  }
  return Store(t.type, old, std::move(merged), t.subresource == "status");
}

Reply ApiServer::Delete(const Target& t, const std::string& body, const std::string& policy_param) {
  const ResourceType& rt = t.rt();
  json options = json::object();
  if (!body.empty()) {
    options = json::parse(body, nullptr, false);
    if (options.is_discarded() || !options.is_object()) {
      return Error(400, "BadRequest", "the DeleteOptions body is not a JSON object");
    }
  }
  std::string policy = StrField(options, "propagationPolicy");
  if (policy.empty()) policy = policy_param;
  if (policy.empty()) policy = rt.orphan_by_default ? "Orphan" : "Background";
  if (policy != "Orphan" && policy != "Background" && policy != "Foreground") {
    return Error(400, "BadRequest", "unknown propagationPolicy \"" + policy + "\"");
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::string key = Key(t.type, t.ns, t.name);
  json* current = Find(t.type, t.ns, t.name);
  if (current == nullptr) return NotFoundReply(rt, t.name);
  const json& meta = MetaOf(*current);
  if (options.contains("preconditions") && options["preconditions"].is_object()) {
    const json& pre = options["preconditions"];
    std::string uid = StrField(pre, "uid"), rv = StrField(pre, "resourceVersion");
    if (!uid.empty() && uid != StrField(meta, "uid")) {
      return ConflictReply(rt, t.name,
                           "Precondition failed: UID in precondition: " + uid +
                               ", UID in object meta: " + StrField(meta, "uid"));
    }
    if (!rv.empty() && rv != StrField(meta, "resourceVersion")) {
      return ConflictReply(
          rt, t.name,
          "Precondition failed: ResourceVersion in precondition: " + rv +
              ", ResourceVersion in object meta: " + StrField(meta, "resourceVersion"));
    }
  }
  json last = *current;
  StartDelete(key, policy);
  if (json* still = Find(t.type, t.ns, t.name)) last = *still;
  CollectGarbage();
  return {200, last};
}

void ApiServer::HandleWatch(const Target& t, const httplib::Request& req, httplib::Response& res) {
  auto sel = bao::k8s::LabelSelector::Parse(req.get_param_value("labelSelector"));
  std::vector<FieldRequirement> fields;
  std::string error;
  if (!sel.ok()) error = sel.status().message();
  if (error.empty()) ParseFieldSelector(req.get_param_value("fieldSelector"), &fields, &error);
  if (!error.empty()) {
    res.status = 400;
    res.set_content(StatusBody(400, "BadRequest", error).dump(), "application/json");
    return;
  }
  struct State {
    Target target;
    bao::k8s::LabelSelector selector;
    std::vector<FieldRequirement> fields;
    uint64_t last_rv = 0;
    bool bookmarks = false;
    bool finished = false;
    std::vector<std::string> pending;
    std::chrono::steady_clock::time_point deadline, next_bookmark;
  };
  auto st = std::make_shared<State>();
  st->target = t;
  st->selector = *sel;
  st->fields = fields;
  st->bookmarks = req.get_param_value("allowWatchBookmarks") == "true" ||
                  req.get_param_value("allowWatchBookmarks") == "1";
  auto now = std::chrono::steady_clock::now();
  long timeout = 1800;
  if (req.has_param("timeoutSeconds")) {
    timeout = std::strtol(req.get_param_value("timeoutSeconds").c_str(), nullptr, 10);
  }
  st->deadline = now + std::chrono::seconds(std::max(timeout, 1L));
  st->next_bookmark = now + std::chrono::milliseconds(options_.bookmark_interval_ms);
  auto matches = [st](const json& obj) {
    const json& meta = MetaOf(obj);
    if (!st->target.ns.empty() && StrField(meta, "namespace") != st->target.ns) return false;
    return st->selector.Matches(meta.contains("labels") ? meta["labels"] : json()) &&
           FieldsMatch(st->fields, obj);
  };
  auto line = [](const std::string& type, const json& obj) {
    return json{{"type", type}, {"object", obj}}.dump() + "\n";
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::string from = req.get_param_value("resourceVersion");
    if (from.empty() || from == "0") {
      // Synthetic ADDED events for the current state, then changes from now on.
      for (const auto& [key, entry] : objects_) {
        if (entry.first == t.type && matches(entry.second)) {
          st->pending.push_back(line("ADDED", entry.second));
        }
      }
      st->last_rv = rv_;
    } else {
      char* end = nullptr;
      st->last_rv = std::strtoull(from.c_str(), &end, 10);
      if (end == from.c_str() || *end != '\0') {
        res.status = 400;
        res.set_content(
            StatusBody(400, "BadRequest", "invalid resourceVersion \"" + from + "\"").dump(),
            "application/json");
        return;
      }
    }
  }
  res.set_chunked_content_provider(
      "application/json", [this, st, matches, line](size_t, httplib::DataSink& sink) {
        std::vector<std::string> out;
        out.swap(st->pending);
        if (st->finished) {
          sink.done();
          return true;
        }
        {
          std::unique_lock<std::mutex> lock(mu_);
          auto collect = [&] {
            if (st->last_rv < compacted_) {
              out.push_back(line(
                  "ERROR", StatusBody(410, "Expired",
                                      "too old resource version: " + std::to_string(st->last_rv) +
                                          " (" + std::to_string(compacted_) + ")")));
              st->finished = true;
              return;
            }
            auto it = std::upper_bound(history_.begin(), history_.end(), st->last_rv,
                                       [](uint64_t rv, const Event& e) { return rv < e.rv; });
            for (; it != history_.end(); ++it) {
              if (it->type != st->target.type) continue;
              bool now_in = it->kind != "DELETED" ? matches(it->object) : false;
              bool was_in = it->kind == "MODIFIED" ? matches(it->previous) : false;
              if (it->kind == "ADDED" && matches(it->object)) {
                out.push_back(line("ADDED", it->object));
              } else if (it->kind == "DELETED" && matches(it->object)) {
                out.push_back(line("DELETED", it->object));
              } else if (it->kind == "MODIFIED" && now_in) {
                out.push_back(line(was_in ? "MODIFIED" : "ADDED", it->object));
              } else if (it->kind == "MODIFIED" && was_in) {
                out.push_back(line("DELETED", it->object));
              }
            }
            st->last_rv = std::max(st->last_rv, rv_);
          };
          collect();
          auto now = std::chrono::steady_clock::now();
          if (out.empty() && !st->finished && !shutting_down_) {
            auto wake = std::min({st->deadline, now + std::chrono::milliseconds(200),
                                  st->bookmarks ? st->next_bookmark : st->deadline});
            changed_.wait_until(lock, wake);
            collect();
            now = std::chrono::steady_clock::now();
          }
          if (!st->finished && st->bookmarks && now >= st->next_bookmark) {
            json bookmark = {{"kind", Types()[st->target.type].kind},
                             {"apiVersion", Types()[st->target.type].ApiVersion()},
                             {"metadata", {{"resourceVersion", std::to_string(st->last_rv)}}}};
            out.push_back(line("BOOKMARK", bookmark));
            st->next_bookmark = now + std::chrono::milliseconds(options_.bookmark_interval_ms);
          }
          if (now >= st->deadline || shutting_down_) st->finished = true;
        }
        for (const auto& l : out) {
          if (!sink.write(l.data(), l.size())) return false;
        }
        if (st->finished) sink.done();
        return true;
      });
}

void ApiServer::HandleApi(const httplib::Request& req, httplib::Response& res) {
  auto reply = [&res](const Reply& r) {
    res.status = r.code;
    res.set_content(r.body.dump(), "application/json");
  };
  // Split the path: /api/v1/... or /apis/<group>/<version>/...
  std::vector<std::string> segs;
  for (size_t start = 1; start <= req.path.size();) {
    size_t slash = req.path.find('/', start);
    if (slash == std::string::npos) slash = req.path.size();
    if (slash > start) segs.push_back(req.path.substr(start, slash - start));
    start = slash + 1;
  }
  std::string group, version;
  size_t i = 0;
  if (segs.size() >= 2 && segs[0] == "api") {
    version = segs[1];
    i = 2;
  } else if (segs.size() >= 3 && segs[0] == "apis") {
    group = segs[1];
    version = segs[2];
    i = 3;
  } else {
    return reply(Error(404, "NotFound", "the server could not find the requested resource"));
  }
  std::vector<std::string> rest(segs.begin() + static_cast<long>(i), segs.end());
  Target t;
  if (rest.size() >= 3 && rest[0] == "namespaces") {
    t.ns = rest[1];
    t.type = FindType(group, version, rest[2]);
    if (rest.size() >= 4) t.name = rest[3];
    if (rest.size() >= 5) t.subresource = rest[4];
    if (rest.size() > 5 || (t.type >= 0 && !t.rt().namespaced)) t.type = -1;
  } else if (!rest.empty()) {
    t.type = FindType(group, version, rest[0]);
    if (rest.size() >= 2) t.name = rest[1];
    if (rest.size() >= 3) t.subresource = rest[2];
    if (rest.size() > 3 || (t.type >= 0 && t.rt().namespaced && !t.name.empty())) t.type = -1;
  }
  if (t.type < 0 || (!t.subresource.empty() && t.subresource != "status") ||
      (t.subresource == "status" && !t.rt().status_subresource)) {
    return reply(Error(404, "NotFound", "the server could not find the requested resource"));
  }
  bool collection = t.name.empty();
  const std::string& m = req.method;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = faults_.begin(); it != faults_.end(); ++it) {
      if (it->method != m || !req.path.ends_with(it->path_suffix)) continue;
      int code = it->code;
      if (--it->count <= 0) faults_.erase(it);
      return reply(Error(code, code == 500 ? "InternalError" : "ServiceUnavailable",
                         "injected fault (/_test/faults) for " + m + " " + req.path));
    }
  }
  if (collection && m == "GET") {
    std::string w = req.get_param_value("watch");
    if (w == "true" || w == "1") return HandleWatch(t, req, res);
    return reply(
        List(t, req.get_param_value("labelSelector"), req.get_param_value("fieldSelector")));
  }
  if (collection && m == "POST" && (!t.ns.empty() || !t.rt().namespaced)) {
    return reply(Create(t, req.body));
  }
  if (!collection && m == "GET") return reply(Get(t));
  if (!collection && m == "PUT") return reply(Replace(t, req.body));
  if (!collection && m == "PATCH") {
    return reply(Patch(t, req.get_header_value("Content-Type"), req.body));
  }
  if (!collection && m == "DELETE" && t.subresource.empty()) {
    return reply(Delete(t, req.body, req.get_param_value("propagationPolicy")));
  }
  reply(Error(405, "MethodNotAllowed",
              "the server does not allow this method on the requested "
              "resource"));
}

void ApiServer::Install(httplib::Server* server) {
  server->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (req.path.rfind("/_test/", 0) == 0) return httplib::Server::HandlerResponse::Unhandled;
    std::string auth = req.get_header_value("Authorization");
    std::lock_guard<std::mutex> lock(mu_);  // /_test/tokens changes them
    if (options_.tokens.empty()) return httplib::Server::HandlerResponse::Unhandled;
    for (const auto& token : options_.tokens) {
      if (auth == "Bearer " + token) return httplib::Server::HandlerResponse::Unhandled;
    }
    res.status = 401;
    res.set_content(StatusBody(401, "Unauthorized", "Unauthorized").dump(), "application/json");
    return httplib::Server::HandlerResponse::Handled;
  });
  server->Get("/_test/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok", "text/plain");
  });
  server->Post("/_test/compact", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mu_);
    compacted_ = rv_;
    history_.clear();
    changed_.notify_all();
    res.set_content(json{{"compactedResourceVersion", std::to_string(rv_)}}.dump(),
                    "application/json");
  });
  server->Post("/_test/tokens", [this](const httplib::Request& req, httplib::Response& res) {
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.contains("tokens") || !body["tokens"].is_array()) {
      res.status = 400;
      res.set_content("expected {\"tokens\": [...]}", "text/plain");
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    options_.tokens.clear();
    for (const auto& t : body["tokens"]) {
      if (t.is_string()) options_.tokens.push_back(t.get<std::string>());
    }
    res.set_content("{}", "application/json");
  });
  server->Post("/_test/faults", [this](const httplib::Request& req, httplib::Response& res) {
    json body = json::parse(req.body, nullptr, false);
    bool valid = body.is_object() && body.contains("faults") && body["faults"].is_array();
    std::vector<Fault> faults;
    for (const json& f : valid ? body["faults"] : json::array()) {
      if (!f.is_object() || !f.contains("method") || !f["method"].is_string() ||
          !f.contains("pathSuffix") || !f["pathSuffix"].is_string()) {
        valid = false;
        break;
      }
      Fault fault{f["method"].get<std::string>(), f["pathSuffix"].get<std::string>()};
      if (f.contains("code") && f["code"].is_number_integer()) fault.code = f["code"].get<int>();
      if (f.contains("count") && f["count"].is_number_integer()) fault.count = f["count"];
      faults.push_back(fault);
    }
    if (!valid) {
      res.status = 400;
      res.set_content(
          "expected {\"faults\": [{\"method\": \"POST\", \"pathSuffix\": \"/jobs\", "
          "\"code\": 500, \"count\": 1}]}",
          "text/plain");
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    faults_ = std::move(faults);
    res.set_content("{}", "application/json");
  });
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    HandleApi(req, res);
  };
  server->Get("/api/.*|/apis/.*", handler);
  server->Post("/api/.*|/apis/.*", handler);
  server->Put("/api/.*|/apis/.*", handler);
  server->Patch("/api/.*|/apis/.*", handler);
  server->Delete("/api/.*|/apis/.*", handler);
}

void ApiServer::Shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  shutting_down_ = true;
  changed_.notify_all();
}

}  // namespace k8stest
