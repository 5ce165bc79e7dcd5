#include "k8s/informer.h"

#include <algorithm>

#include "common/log.h"

namespace bao::k8s {
namespace {

std::string ResourceVersionOf(const json& object) {
  if (!object.contains("metadata") || !object["metadata"].is_object()) return "";
  const json& meta = object["metadata"];
  auto it = meta.find("resourceVersion");
  return it != meta.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

const char* EventTypeName(EventType type) {
  switch (type) {
    case EventType::kAdded: return "ADDED";
    case EventType::kModified: return "MODIFIED";
    case EventType::kDeleted: return "DELETED";
  }
  return "?";
}

Informer::Informer(Client* client, InformerOptions options, Handler handler)
    : client_(client), options_(std::move(options)), handler_(std::move(handler)) {}

Informer::~Informer() {
  Stop();
}

void Informer::Start() {
  if (thread_.joinable()) return;
  stop_ = false;
  cancel_ = std::make_unique<CancelSource>();
  thread_ = std::thread([this] { Run(); });
}

namespace {

void Slim(json& object) {
  if (object.contains("metadata") && object["metadata"].is_object()) {
    object["metadata"].erase("managedFields");
  }
}

}  // namespace

void Informer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    if (cancel_) cancel_->Cancel();
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Informer::HasSynced() const {
  std::lock_guard<std::mutex> lock(mu_);
  return synced_;
}

std::optional<json> Informer::Get(const std::string& ns, const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cache_.find(ns.empty() ? name : ns + "/" + name);
  if (it == cache_.end()) return std::nullopt;
  return it->second;
}

std::vector<json> Informer::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<json> out;
  out.reserve(cache_.size());
  for (const auto& [key, obj] : cache_) out.push_back(obj);
  return out;
}

void Informer::Visit(const std::function<void(const json&)>& fn) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [key, obj] : cache_) fn(obj);
}

std::string Informer::ResourceVersion() const {
  std::lock_guard<std::mutex> lock(mu_);
  return resource_version_;
}

int Informer::ListCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lists_;
}

int Informer::ErrorCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return errors_;
}

bool Informer::Pause(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  return !wake_.wait_for(lock, d, [this] { return stop_.load(); });
}

void Informer::Deliver(EventType type, const json& object) {
  if (handler_) handler_(type, object);
}

Status Informer::ListAndReplace() {
  BAO_ASSIGN_OR_RETURN(ObjectList list, client_->List(options_.resource, options_.ns,
                                                      ListOptions{options_.label_selector, ""}));
  std::vector<std::pair<EventType, json>> changes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::map<std::string, json> next;
    for (auto& item : list.items) {
      Slim(item);
      std::string key = ObjectKey(item);
      auto old = cache_.find(key);
      if (old == cache_.end()) {
        changes.emplace_back(EventType::kAdded, item);
      } else if (ResourceVersionOf(old->second) != ResourceVersionOf(item)) {
        changes.emplace_back(EventType::kModified, item);
      }
      next[key] = std::move(item);
    }
    for (const auto& [key, obj] : cache_) {
      if (!next.contains(key)) changes.emplace_back(EventType::kDeleted, obj);
    }
    cache_ = std::move(next);
    resource_version_ = list.resource_version;
    synced_ = true;
    ++lists_;
  }
  for (const auto& [type, obj] : changes) Deliver(type, obj);
  return Status::Ok();
}

void Informer::Run() {
  const std::string what = options_.resource.plural;
  auto backoff = options_.initial_backoff;
  auto grow = [&] { backoff = std::min(backoff * 2, options_.max_backoff); };
  bool need_list = true;
  while (!stop_) {
    if (need_list) {
      Status s = ListAndReplace();
      if (!s.ok()) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          ++errors_;
        }
        log::Warn("informer list failed; retrying", {{"resource", what}, {"error", s.message()}});
        if (!Pause(backoff)) break;
        grow();
        continue;
      }
      need_list = false;
      backoff = options_.initial_backoff;
    }
    WatchOptions wo;
    wo.resource_version = ResourceVersion();
    wo.label_selector = options_.label_selector;
    wo.timeout_seconds = options_.watch_timeout_seconds;
    wo.allow_bookmarks = true;
    Status s = client_->Watch(
        options_.resource, options_.ns, wo,
        [&](const WatchEvent& event) -> Status {
          WatchEvent e = event;
          Slim(e.object);
          std::string rv = ResourceVersionOf(e.object);
          std::optional<EventType> type;
          {
            std::lock_guard<std::mutex> lock(mu_);
            if (!rv.empty()) resource_version_ = rv;
            if (e.type == "ADDED" || e.type == "MODIFIED") {
              auto [it, inserted] = cache_.insert_or_assign(ObjectKey(e.object), e.object);
              (void)it;
              type = e.type == "ADDED" ? EventType::kAdded : EventType::kModified;
            } else if (e.type == "DELETED") {
              cache_.erase(ObjectKey(e.object));
              type = EventType::kDeleted;
            }
          }
          backoff = options_.initial_backoff;
          if (type) Deliver(*type, e.object);
          return Status::Ok();
        },
        Context(cancel_.get()));
    if (stop_) break;
    if (s.ok()) continue;  // the server closed the watch at its timeout: resume
    if (IsGone(s)) {
      log::Info("informer watch expired; listing again", {{"resource", what}});
      need_list = true;
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++errors_;
    }
    log::Warn("informer watch failed; resuming after a pause",
              {{"resource", what}, {"error", s.message()}});
    if (!Pause(backoff)) break;
    grow();
  }
}

}  // namespace bao::k8s
