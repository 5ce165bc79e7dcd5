#include "schedule/scheduler.h"

#include <algorithm>

#include "backup/prune.h"
#include "common/log.h"
#include "common/redact.h"
#include "storage/target.h"

namespace bao::schedule {
namespace {

using std::chrono::milliseconds;

// Older missed slots are counted one by one up to this many per decision.
constexpr int kMaxMissedCounted = 10000;
constexpr auto kMaxSleep = std::chrono::seconds(30);

}  // namespace

AttemptHooks DefaultHooks(const Clock* clock) {
  AttemptHooks hooks;
  hooks.backup = [clock](const Context& ctx,
                         const ClusterConfig& c) -> Result<backup::BackupResult> {
    backup::BackupRequest req;
    req.connection = c.connection;
    req.auth = c.auth;
    if (!c.token_file.empty()) {
      BAO_ASSIGN_OR_RETURN(req.auth.token,
                           openbao::ReadSecretFile(c.token_file, "openbao.tokenFile token"));
    }
    BAO_ASSIGN_OR_RETURN(std::unique_ptr<storage::Store> store,
                         storage::OpenStore(c.backup.target));
    backup::CopyTargets copies = backup::OpenCopyTargets(c.backup.extra_targets, {});
    req.copies = copies.copies;
    req.target = c.backup.target;
    req.ns = c.ns;
    req.cluster = c.name;
    req.clock = clock;
    return backup::RunBackup(ctx, req, store.get());
  };
  hooks.retain = [](const Context& ctx, const ClusterConfig& c, TimePoint now) -> Status {
    BAO_ASSIGN_OR_RETURN(std::unique_ptr<storage::Store> store,
                         storage::OpenStore(c.backup.target));
    backup::PruneResult pruned;  // Prune logs each key it keeps or deletes
    Status first = backup::Prune(ctx, store.get(), c.backup.target.path_prefix, c.ns, c.name,
                                 c.backup.retention, now, /*dry_run=*/false, &pruned);
    // Retention runs in every extra target too; the first failure is returned.
    for (const backup::ExtraTarget& extra : c.backup.extra_targets) {
      Result<std::unique_ptr<storage::Store>> copy = storage::OpenStore(extra.target);
      backup::PruneResult copy_pruned;
      Status s = copy.ok() ? backup::Prune(ctx, copy->get(), extra.target.path_prefix, c.ns, c.name,
                                           c.backup.retention, now, false, &copy_pruned)
                           : copy.status();
      if (!s.ok() && first.ok()) first = s.WithContext("extra target \"" + extra.name + "\"");
    }
    return first;
  };
  return hooks;
}

Scheduler::Scheduler(SchedulerConfig config, const Clock* clock, AttemptHooks hooks)
    : config_(std::move(config)),
      clock_(clock),
      hooks_(std::move(hooks)),
      workers_(config_.clusters.size()) {}

Scheduler::~Scheduler() {
  Shutdown();
}

Status Scheduler::Start() {
  BAO_ASSIGN_OR_RETURN(SchedulerState loaded, LoadState(config_.state_file));
  TimePoint now = clock_->Now();
  std::lock_guard<std::mutex> lock(mu_);
  state_.metrics_address = loaded.metrics_address;
  for (const ClusterConfig& c : config_.clusters) {
    ClusterStatus st;
    if (auto it = loaded.clusters.find(c.Key()); it != loaded.clusters.end()) st = it->second;
    if (!st.last_decided_slot || st.schedule != c.schedule.ToString()) {
      // New cluster or new schedule: only slots from now on are ours.
      if (st.last_decided_slot) {
        log::Info("schedule changed; earlier slots are not caught up",
                  {{"cluster", c.Key()}, {"schedule", c.schedule.ToString()}});
      }
      std::optional<TimePoint> prev = c.schedule.Previous(now - milliseconds(1));
      st.last_decided_slot = prev ? *prev : now - milliseconds(1);
      st.schedule = c.schedule.ToString();
    }
    st.running = false;
    st.next_scheduled_backup = c.schedule.Next(*st.last_decided_slot);
    state_.clusters[c.Key()] = std::move(st);
  }
  state_.updated = now;
  Status s = SaveState(config_.state_file, state_);
  return s;
}

void Scheduler::Tick(TimePoint now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return;
  bool changed = false;
  for (size_t i = 0; i < config_.clusters.size(); ++i) {
    const ClusterConfig& c = config_.clusters[i];
    ClusterStatus& st = state_.clusters[c.Key()];
    if (workers_[i].running) continue;
    std::optional<TimePoint> slot = c.schedule.Previous(now);
    if (!slot || (st.last_decided_slot && *slot <= *st.last_decided_slot)) {
      TimePoint next = c.schedule.Next(now);
      if (st.next_scheduled_backup != next) {
        st.next_scheduled_backup = next;
        changed = true;
      }
      continue;
    }
    changed = true;
    // Slots passed over between the last decision and the newest due slot are missed.
    if (st.last_decided_slot) {
      int passed = 0;
      for (TimePoint t = c.schedule.Next(*st.last_decided_slot);
           t < *slot && passed < kMaxMissedCounted; t = c.schedule.Next(t)) {
        ++passed;
        st.last_missed_slot = t;
      }
      if (passed > 0) {
        st.attempts[kOutcomeMissed] += static_cast<uint64_t>(passed);
        log::Warn("scheduled backups missed (the process was down or a backup ran long)",
                  {{"cluster", c.Key()},
                   {"count", std::to_string(passed)},
                   {"last", FormatRfc3339(*st.last_missed_slot)}});
      }
    }
    st.last_decided_slot = *slot;
    st.next_scheduled_backup = c.schedule.Next(now);
    if (now - *slot <= config_.starting_deadline) {
      StartAttemptLocked(i, *slot, now);
    } else {
      st.attempts[kOutcomeMissed] += 1;
      st.last_missed_slot = *slot;
      log::Warn("scheduled backup missed: its starting deadline passed",
                {{"cluster", c.Key()},
                 {"slot", FormatRfc3339(*slot)},
                 {"startingDeadlineSeconds", std::to_string(config_.starting_deadline.count())}});
    }
  }
  if (changed) SaveLocked();
}

void Scheduler::StartAttemptLocked(size_t index, TimePoint slot, TimePoint now) {
  const ClusterConfig& c = config_.clusters[index];
  ClusterStatus& st = state_.clusters[c.Key()];
  st.last_attempt_time = now;
  st.last_attempt_scheduled_time = slot;
  st.running = true;
  Worker& w = workers_[index];
  if (w.thread.joinable()) w.thread.join();  // the previous attempt has fully ended
  w.running = true;
  w.cancel = std::make_unique<CancelSource>(&cancel_all_);
  log::Info("backup starting", {{"cluster", c.Key()}, {"slot", FormatRfc3339(slot)}});
  w.thread = std::thread([this, index, slot] { RunAttempt(index, slot); });
}

void Scheduler::RunAttempt(size_t index, TimePoint slot) {
  const ClusterConfig& c = config_.clusters[index];
  Context ctx;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ctx = Context(workers_[index].cancel.get());
  }
  Result<backup::BackupResult> result = hooks_.backup(ctx, c);
  Status retained;
  if (result.ok() && !c.backup.retention.empty()) {
    retained = hooks_.retain(ctx, c, clock_->Now());
  }
  std::lock_guard<std::mutex> lock(mu_);
  ClusterStatus& st = state_.clusters[c.Key()];
  if (result.ok()) {
    st.last_backup_time = clock_->Now();
    st.last_backup_size = result->size;
    st.last_backup_duration = result->duration;
    st.last_backup_name = result->key;
    st.consecutive_failures = 0;
    st.attempts[kOutcomeSuccess] += 1;
    st.last_retention_error = retained.ok() ? "" : Redact(retained.message());
    log::Info("backup stored",
              {{"cluster", c.Key()}, {"key", result->key}, {"size", std::to_string(result->size)}});
    if (!retained.ok()) {
      log::Error("retention failed after a successful backup",
                 {{"cluster", c.Key()}, {"error", retained.message()}});
    }
  } else {
    const Status& s = result.status();
    const bool cancelled = s.reason() == Reason::kCancelled;
    const char* stage = StageName(s.stage());
    std::string reason = *stage == '\0' ? s.message() : std::string(stage) + ": " + s.message();
    if (cancelled) {
      st.attempts[kOutcomeCancelled] += 1;
      st.last_failure_reason =
          Redact((stopping_ ? "cancelled by shutdown (" : "cancelled (") + reason + ")");
    } else {
      st.attempts[kOutcomeFailure] += 1;
      st.consecutive_failures += 1;
      st.last_failure_reason = Redact(reason);
    }
    log::Error(cancelled ? "backup cancelled" : "backup failed",
               {{"cluster", c.Key()}, {"slot", FormatRfc3339(slot)}, {"error", s.message()}});
  }
  st.running = false;
  workers_[index].running = false;
  SaveLocked();
  cv_.notify_all();
}

void Scheduler::SaveLocked() {
  state_.updated = clock_->Now();
  Status s = SaveState(config_.state_file, state_);
  if (!s.ok()) log::Error("cannot save the scheduler state", {{"error", s.message()}});
}

TimePoint Scheduler::NextWakeLocked(TimePoint now) const {
  TimePoint wake = now + kMaxSleep;
  for (size_t i = 0; i < config_.clusters.size(); ++i) {
    if (workers_[i].running) continue;  // its end wakes the loop
    const ClusterConfig& c = config_.clusters[i];
    auto it = state_.clusters.find(c.Key());
    TimePoint from = it != state_.clusters.end() && it->second.last_decided_slot
                         ? *it->second.last_decided_slot
                         : now;
    wake = std::min(wake, c.schedule.Next(from));
  }
  return wake;
}

void Scheduler::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    TimePoint now = clock_->Now();
    Tick(now);
    lock.lock();
    if (stopping_) break;
    auto running = [this] {
      return std::count_if(workers_.begin(), workers_.end(),
                           [](const Worker& w) { return w.running; });
    };
    auto was_running = running();
    TimePoint wake = NextWakeLocked(now);
    auto sleep = std::clamp<std::chrono::system_clock::duration>(
        wake - now, std::chrono::system_clock::duration::zero(), kMaxSleep);
    cv_.wait_for(lock, sleep, [&] { return stopping_ || running() < was_running; });
  }
  cv_.wait(lock, [this] { return shut_down_; });
}

void Scheduler::Shutdown() {
  std::unique_lock<std::mutex> lock(mu_);
  if (shut_down_) return;
  bool first = !stopping_;
  stopping_ = true;
  cv_.notify_all();
  if (!first) {  // another thread is shutting down; wait for it
    cv_.wait(lock, [this] { return shut_down_; });
    return;
  }
  auto idle = [this] {
    return std::none_of(workers_.begin(), workers_.end(),
                        [](const Worker& w) { return w.running; });
  };
  if (!idle()) {
    log::Info("stopping: waiting for running backups",
              {{"gracePeriodSeconds", std::to_string(config_.shutdown_grace.count())}});
    if (!cv_.wait_for(lock, config_.shutdown_grace, idle)) {
      log::Warn("grace period over: aborting running backups (no partial object is kept)");
      cancel_all_.Cancel();
      cv_.wait(lock, idle);
    }
  }
  std::vector<std::thread> threads;
  for (Worker& w : workers_) {
    if (w.thread.joinable()) threads.push_back(std::move(w.thread));
  }
  lock.unlock();
  for (std::thread& t : threads) t.join();
  lock.lock();
  SaveLocked();
  shut_down_ = true;
  cv_.notify_all();
}

bool Scheduler::Cancel(const std::string& cluster_key) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < config_.clusters.size(); ++i) {
    if (config_.clusters[i].Key() == cluster_key && workers_[i].running) {
      log::Info("cancelling the running backup", {{"cluster", cluster_key}});
      workers_[i].cancel->Cancel();
      return true;
    }
  }
  return false;
}

void Scheduler::WaitIdle() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] {
    return std::none_of(workers_.begin(), workers_.end(),
                        [](const Worker& w) { return w.running; });
  });
}

SchedulerState Scheduler::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

void Scheduler::SetMetricsAddress(const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  state_.metrics_address = address;
  SaveLocked();
}

}  // namespace bao::schedule
