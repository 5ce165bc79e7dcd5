#include "k8s/leader.h"

#include <cstdio>

#include "common/log.h"

namespace bao::k8s {
namespace {

// metav1.MicroTime: RFC 3339 with exactly six fractional digits.
std::string MicroTime(TimePoint t) {
  std::string base = FormatRfc3339(t);  // "...:SSZ"
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  long long frac = us % 1000000;
  if (frac < 0) frac += 1000000;
  char buf[8];
  std::snprintf(buf, sizeof(buf), ".%06lld", frac);
  return base.substr(0, base.size() - 1) + buf + "Z";
}

std::string Str(const json& obj, const char* field) {
  auto it = obj.find(field);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

LeaderElector::LeaderElector(Client* client, LeaderElectionConfig config,
                             std::function<void(bool)> on_change)
    : client_(client), config_(std::move(config)), on_change_(std::move(on_change)) {}

LeaderElector::~LeaderElector() {
  Stop();
}

bool LeaderElector::IsLeader() const {
  std::lock_guard<std::mutex> lock(mu_);
  return leading_ && config_.clock->Now() - last_renew_ < config_.renew_deadline;
}

void LeaderElector::SetLeading(bool leading) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (leading_ == leading) return;
    leading_ = leading;
  }
  log::Info(leading ? "became leader" : "stopped leading",
            {{"lease", config_.ns + "/" + config_.name}, {"identity", config_.identity}});
  if (on_change_) on_change_(leading);
}

Result<bool> LeaderElector::TryAcquireOrRenew() {
  TimePoint now = config_.clock->Now();
  long long duration_s = std::max<long long>(
      1, std::chrono::duration_cast<std::chrono::seconds>(config_.lease_duration).count());
  auto lapse_if_due = [&](const Status& s) -> Result<bool> {
    bool lapse;
    {
      std::lock_guard<std::mutex> lock(mu_);
      lapse = leading_ && config_.clock->Now() - last_renew_ >= config_.renew_deadline;
    }
    if (lapse) SetLeading(false);
    return s;
  };
  auto won = [&] {
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_renew_ = now;
    }
    SetLeading(true);
    return Result<bool>(true);
  };
  auto lost = [&] {
    SetLeading(false);
    return Result<bool>(false);
  };

  Result<json> current = client_->Get(kLeases, config_.ns, config_.name);
  if (!current.ok() && !IsNotFound(current.status())) return lapse_if_due(current.status());
  if (!current.ok()) {
    json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                  {"kind", "Lease"},
                  {"metadata", {{"name", config_.name}, {"namespace", config_.ns}}},
                  {"spec",
                   {{"holderIdentity", config_.identity},
                    {"leaseDurationSeconds", duration_s},
                    {"acquireTime", MicroTime(now)},
                    {"renewTime", MicroTime(now)},
                    {"leaseTransitions", 0}}}};
    Result<json> created = client_->Create(kLeases, config_.ns, lease);
    if (created.ok()) return won();
    if (IsAlreadyExists(created.status())) return lost();
    return lapse_if_due(created.status());
  }
  json lease = std::move(current).value();
  json spec = lease.contains("spec") && lease["spec"].is_object() ? lease["spec"] : json::object();
  std::string holder = Str(spec, "holderIdentity");
  long long held_for =
      spec.contains("leaseDurationSeconds") && spec["leaseDurationSeconds"].is_number_integer()
          ? spec["leaseDurationSeconds"].get<long long>()
          : duration_s;
  std::string record = holder + "|" + Str(spec, "acquireTime") + "|" + Str(spec, "renewTime");
  bool mine = holder == config_.identity;
  bool held_by_other;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (record != observed_record_) {
      observed_record_ = record;
      observed_at_ = now;
    }
    held_by_other = !holder.empty() && !mine && now < observed_at_ + std::chrono::seconds(held_for);
  }
  if (held_by_other) return lost();

  spec["holderIdentity"] = config_.identity;
  spec["leaseDurationSeconds"] = duration_s;
  spec["renewTime"] = MicroTime(now);
  if (!mine) {
    long long transitions =
        spec.contains("leaseTransitions") && spec["leaseTransitions"].is_number_integer()
            ? spec["leaseTransitions"].get<long long>()
            : 0;
    spec["acquireTime"] = MicroTime(now);
    spec["leaseTransitions"] = transitions + 1;
  }
  lease["spec"] = spec;
  Result<json> updated = client_->Update(kLeases, config_.ns, lease);
  if (updated.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    observed_record_ =
        config_.identity + "|" + Str(spec, "acquireTime") + "|" + Str(spec, "renewTime");
    observed_at_ = now;
  }
  if (updated.ok()) return won();
  if (IsConflict(updated.status())) return lost();
  return lapse_if_due(updated.status());
}

void LeaderElector::Loop() {
  while (true) {
    Result<bool> r = TryAcquireOrRenew();
    if (!r.ok()) {
      log::Warn("leader election round failed",
                {{"lease", config_.ns + "/" + config_.name}, {"error", r.status().message()}});
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (wake_.wait_for(lock, config_.retry_period, [this] { return stop_; })) return;
  }
}

void LeaderElector::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void LeaderElector::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  bool was_leading;
  {
    std::lock_guard<std::mutex> lock(mu_);
    was_leading = leading_;
  }
  if (!was_leading) return;
  if (config_.release_on_stop) {
    Result<json> lease = client_->Get(kLeases, config_.ns, config_.name);
    if (lease.ok() && (*lease).contains("spec") && (*lease)["spec"].is_object() &&
        Str((*lease)["spec"], "holderIdentity") == config_.identity) {
      json l = std::move(lease).value();
      l["spec"]["holderIdentity"] = "";
      l["spec"]["leaseDurationSeconds"] = 1;
      l["spec"]["renewTime"] = MicroTime(config_.clock->Now());
      Result<json> released = client_->Update(kLeases, config_.ns, l);
      if (!released.ok()) {
        log::Warn("could not release the lease", {{"error", released.status().message()}});
      }
    }
  }
  SetLeading(false);
}

}  // namespace bao::k8s
