#include "k8s/client.h"

#include <chrono>
#include <random>
#include <thread>

#include "common/redact.h"

namespace bao::k8s {
namespace {

constexpr std::string_view kReasonMarker = " (reason ";
const std::string kReasonPayload = "k8sReason";

std::string StrField(const json& obj, const char* field) {
  auto it = obj.find(field);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string DefaultReason(int code) {
  switch (code) {
    case 400: return "BadRequest";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "NotFound";
    case 405: return "MethodNotAllowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 415: return "UnsupportedMediaType";
    case 422: return "Invalid";
    case 429: return "TooManyRequests";
    case 500: return "InternalError";
    case 503: return "ServiceUnavailable";
    case 504: return "Timeout";
    default: return "Unknown";
  }
}

// Builds the Status for an API error from a Status object (may be empty) and the HTTP code.
Status ApiStatus(const std::string& what, int code, const json& status_object,
                 const std::string& fallback_message) {
  std::string reason, message;
  if (status_object.is_object()) {
    reason = StrField(status_object, "reason");
    message = StrField(status_object, "message");
    if (status_object.contains("code") && status_object["code"].is_number_integer()) {
      code = status_object["code"].get<int>();
    }
  }
  if (reason.empty()) reason = DefaultReason(code);
  if (message.empty()) message = fallback_message;
  std::string text = Redact(what + ": " + message + std::string(kReasonMarker) + reason +
                            ", HTTP " + std::to_string(code) + ")");
  Code c = Code::kInternal;
  Reason why = Reason::kBadResponse;
  if (code == 400 || code == 415 || code == 422) c = Code::kInvalidArgument, why = Reason::kInvalidValue;
  if (code == 401) c = Code::kUnauthenticated, why = Reason::kUnauthenticated;
  if (code == 403) c = Code::kPermissionDenied, why = Reason::kPermissionDenied;
  if (code == 404) c = Code::kNotFound, why = Reason::kNotFound;
  if (code == 409) {
    c = reason == "AlreadyExists" ? Code::kAlreadyExists : Code::kFailedPrecondition;
    why = Reason::kConflict;
  }
  if (code == 410) c = Code::kFailedPrecondition, why = Reason::kConflict;
  if (code == 429) c = Code::kUnavailable, why = Reason::kThrottled;
  if (code >= 500) c = Code::kUnavailable, why = Reason::kServerError;
  return Status(c, text).WithReason(why).WithHttpStatus(code).WithPayload(kReasonPayload, reason);
}

std::string Describe(const Resource& r, const std::string& ns, const std::string& name) {
  std::string what = r.group.empty() ? r.plural : r.plural + "." + r.group;
  if (!name.empty()) what += " \"" + name + "\"";
  if (r.namespaced && !ns.empty()) what += " in namespace \"" + ns + "\"";
  return what;
}

}  // namespace

std::string ReasonOf(const Status& status) {
  const std::string* reason = status.payload(kReasonPayload);
  return reason == nullptr ? "" : *reason;
}

int HttpCodeOf(const Status& status) {
  return ReasonOf(status).empty() ? 0 : status.http_status();
}

bool IsNotFound(const Status& s) {
  return HttpCodeOf(s) == 404;
}
bool IsAlreadyExists(const Status& s) {
  return HttpCodeOf(s) == 409 && ReasonOf(s) == "AlreadyExists";
}
bool IsConflict(const Status& s) {
  return HttpCodeOf(s) == 409 && ReasonOf(s) == "Conflict";
}
bool IsGone(const Status& s) {
  return HttpCodeOf(s) == 410;
}

std::string ObjectKey(const json& object) {
  const json* meta = object.contains("metadata") ? &object["metadata"] : nullptr;
  if (meta == nullptr || !meta->is_object()) return "";
  std::string ns = StrField(*meta, "namespace");
  std::string name = StrField(*meta, "name");
  return ns.empty() ? name : ns + "/" + name;
}

Client::Client(Config config) : config_(std::move(config)), tokens_(config_) {
  while (!config_.server.empty() && config_.server.back() == '/') config_.server.pop_back();
}

Client::~Client() = default;

std::string Client::Url(const Resource& r, const std::string& ns, const std::string& name,
                        const std::string& subresource) const {
  std::string url = config_.server;
  url += r.group.empty() ? "/api/" + r.version : "/apis/" + r.group + "/" + r.version;
  if (r.namespaced && !ns.empty()) url += "/namespaces/" + http::UrlEncode(ns);
  url += "/" + r.plural;
  if (!name.empty()) url += "/" + http::UrlEncode(name);
  if (!subresource.empty()) url += "/" + subresource;
  return url;
}

Result<http::Response> Client::Do(http::Request request) {
  BAO_ASSIGN_OR_RETURN(std::string token, tokens_.Token());
  if (!token.empty()) request.headers.emplace_back("Authorization", "Bearer " + token);
  request.headers.emplace_back("Accept", "application/json");
  request.headers.emplace_back("User-Agent", config_.user_agent);
  if (request.method == "POST" || request.method == "PUT" || request.method == "PATCH") {
    request.url += (request.url.find('?') == std::string::npos ? "?" : "&") +
                   std::string("fieldManager=") + http::UrlEncode(config_.user_agent);
  }
  request.tls = config_.tls;
  std::unique_ptr<http::Client> conn;
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (!idle_.empty()) {
      conn = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (!conn) conn = std::make_unique<http::Client>();
  Result<http::Response> response = conn->Do(request);
  std::lock_guard<std::mutex> lock(pool_mu_);
  if (idle_.size() < 8) idle_.push_back(std::move(conn));
  return response;
}

Result<json> Client::Call(const std::string& what, http::Request request) {
  if (request.timeout.count() == 0) request.timeout = config_.request_timeout;
  Result<http::Response> response = Do(std::move(request));
  if (!response.ok()) return response.status().WithContext(what);
  json body = json::parse(response->body, nullptr, false);
  if (!response->ok()) {
    return ApiStatus(what, static_cast<int>(response->status), body, http::ErrorSummary(*response));
  }
  if (body.is_discarded() || !body.is_object()) {
    return Internal(what + ": the API answered HTTP " + std::to_string(response->status) +
                    " with a body that is not a JSON object");
  }
  return body;
}

Result<json> Client::Get(const Resource& r, const std::string& ns, const std::string& name) {
  std::string n = ns.empty() ? config_.default_namespace : ns;
  http::Request req;
  req.url = Url(r, n, name, "");
  return Call("get " + Describe(r, n, name), std::move(req));
}

Result<ObjectList> Client::List(const Resource& r, const std::string& ns, const ListOptions& opts) {
  http::Request req;
  req.url = Url(r, ns, "", "");
  std::string query;
  if (!opts.label_selector.empty())
    query += "&labelSelector=" + http::UrlEncode(opts.label_selector);
  if (!opts.field_selector.empty())
    query += "&fieldSelector=" + http::UrlEncode(opts.field_selector);
  if (!query.empty()) req.url += "?" + query.substr(1);
  std::string what = "list " + Describe(r, ns, "");
  BAO_ASSIGN_OR_RETURN(json body, Call(what, std::move(req)));
  ObjectList list;
  if (body.contains("metadata") && body["metadata"].is_object()) {
    list.resource_version = StrField(body["metadata"], "resourceVersion");
  }
  if (!body.contains("items") || !(body["items"].is_array() || body["items"].is_null())) {
    return Internal(what + ": the answer has no items array");
  }
  if (body["items"].is_array()) {
    for (auto& item : body["items"]) {
      if (!item.is_object()) continue;
      // Lists of built-in types omit kind/apiVersion on items; fill them in.
      if (!item.contains("kind")) item["kind"] = r.kind;
      if (!item.contains("apiVersion")) item["apiVersion"] = r.ApiVersion();
      list.items.push_back(std::move(item));
    }
  }
  return list;
}

Result<json> Client::Create(const Resource& r, const std::string& ns, const json& object) {
  std::string n = ns.empty() ? config_.default_namespace : ns;
  json body = object;
  if (!body.contains("kind")) body["kind"] = r.kind;
  if (!body.contains("apiVersion")) body["apiVersion"] = r.ApiVersion();
  std::string name;
  if (object.contains("metadata") && object["metadata"].is_object()) {
    name = StrField(object["metadata"], "name");
  }
  http::Request req;
  req.method = "POST";
  req.url = Url(r, n, "", "");
  req.headers.emplace_back("Content-Type", "application/json");
  req.body = body.dump();
  return Call("create " + Describe(r, n, name), std::move(req));
}

namespace {
Result<std::string> NameOf(const json& object, const std::string& what) {
  if (object.contains("metadata") && object["metadata"].is_object()) {
    std::string name = StrField(object["metadata"], "name");
    if (!name.empty()) return name;
  }
  return InvalidArgument(what + ": the object has no metadata.name");
}
}  // namespace

Result<json> Client::Send(const char* method, const char* content_type, const Resource& r,
                          const std::string& ns, const std::string& name, const char* subresource,
                          const json& body, const std::string& what) {
  http::Request req;
  req.method = method;
  req.url = Url(r, ns, name, subresource);
  req.headers.emplace_back("Content-Type", content_type);
  req.body = body.dump();
  return Call(what + " " + Describe(r, ns, name), std::move(req));
}

Result<json> Client::Update(const Resource& r, const std::string& ns, const json& object) {
  std::string n = ns.empty() ? config_.default_namespace : ns;
  BAO_ASSIGN_OR_RETURN(std::string name, NameOf(object, "update " + r.plural));
  return Send("PUT", "application/json", r, n, name, "", object, "update");
}

Result<json> Client::UpdateStatus(const Resource& r, const std::string& ns, const json& object) {
  std::string n = ns.empty() ? config_.default_namespace : ns;
  BAO_ASSIGN_OR_RETURN(std::string name, NameOf(object, "update status of " + r.plural));
  return Send("PUT", "application/json", r, n, name, "status", object, "update status of");
}

Result<json> Client::MergePatch(const Resource& r, const std::string& ns, const std::string& name,
                                const json& patch) {
  std::string n = ns.empty() ? config_.default_namespace : ns;
  return Send("PATCH", "application/merge-patch+json", r, n, name, "", patch, "patch");
}

Result<json> Client::PatchStatus(const Resource& r, const std::string& ns, const std::string& name,
                                 const json& patch) {
  std::string n = ns.empty() ? config_.default_namespace : ns;
  return Send("PATCH", "application/merge-patch+json", r, n, name, "status", patch,
              "patch status of");
}

Status Client::Delete(const Resource& r, const std::string& ns, const std::string& name,
                      const DeleteOptions& opts) {
  std::string n = ns.empty() ? config_.default_namespace : ns;
  json body = {{"kind", "DeleteOptions"}, {"apiVersion", "v1"}};
  if (!opts.propagation_policy.empty()) body["propagationPolicy"] = opts.propagation_policy;
  if (!opts.precondition_uid.empty()) body["preconditions"]["uid"] = opts.precondition_uid;
  if (!opts.precondition_resource_version.empty()) {
    body["preconditions"]["resourceVersion"] = opts.precondition_resource_version;
  }
  http::Request req;
  req.method = "DELETE";
  req.url = Url(r, n, name, "");
  req.headers.emplace_back("Content-Type", "application/json");
  req.body = body.dump();
  Result<json> result = Call("delete " + Describe(r, n, name), std::move(req));
  return result.ok() ? Status::Ok() : result.status();
}

Status Client::Watch(const Resource& r, const std::string& ns, const WatchOptions& opts,
                     const std::function<Status(const WatchEvent&)>& on_event,
                     const Context& ctx) {
  std::string what = "watch " + Describe(r, ns, "");
  http::Request req;
  req.url = Url(r, ns, "", "") + "?watch=1&timeoutSeconds=" + std::to_string(opts.timeout_seconds);
  if (opts.allow_bookmarks) req.url += "&allowWatchBookmarks=true";
  if (!opts.resource_version.empty()) {
    req.url += "&resourceVersion=" + http::UrlEncode(opts.resource_version);
  }
  if (!opts.label_selector.empty()) {
    req.url += "&labelSelector=" + http::UrlEncode(opts.label_selector);
  }
  if (!opts.field_selector.empty()) {
    req.url += "&fieldSelector=" + http::UrlEncode(opts.field_selector);
  }
  req.timeout = std::chrono::seconds(opts.timeout_seconds + 30);
  // A quiet watch (no bookmarks, no changes) legitimately sends nothing for a long time.
  req.stall_time = std::chrono::seconds(opts.timeout_seconds + 30);
  req.ctx = ctx;
  std::string buffer;
  req.on_body = [&](std::string_view chunk) -> Status {
    buffer.append(chunk);
    size_t start = 0;
    for (size_t nl; (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view line(buffer.data() + start, nl - start);
      if (line.find_first_not_of(" \r\t") == std::string_view::npos) continue;
      json event = json::parse(line, nullptr, false);
      if (event.is_discarded() || !event.is_object() || !event.contains("object") ||
          StrField(event, "type").empty()) {
        return Internal(what + ": the watch stream sent a line that is not a watch event");
      }
      WatchEvent e{StrField(event, "type"), std::move(event["object"])};
      if (e.type == "ERROR") return ApiStatus(what, 500, e.object, "the watch failed");
      BAO_RETURN_IF_ERROR(on_event(e));
    }
    buffer.erase(0, start);
    return Status::Ok();
  };
  Result<http::Response> response = Do(std::move(req));
  if (!response.ok()) {
    if (ctx.cancelled()) return Aborted(what + ": stopped");
    return response.status();
  }
  if (!response->ok()) {
    return ApiStatus(what, static_cast<int>(response->status),
                     json::parse(response->body, nullptr, false), http::ErrorSummary(*response));
  }
  return Status::Ok();
}

Status RetryOnConflict(const std::function<Status()>& attempt, int max_attempts) {
  thread_local std::minstd_rand rng(std::random_device{}());
  Status s;
  for (int i = 1; i <= max_attempts; ++i) {
    s = attempt();
    if (!IsConflict(s) || i == max_attempts) break;
    std::uniform_int_distribution<int> jitter(0, 10 << std::min(i, 5));
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + jitter(rng)));
  }
  if (IsConflict(s)) {
    return s.WithContext("still conflicting after " + std::to_string(max_attempts) + " attempts");
  }
  return s;
}

}  // namespace bao::k8s
