// The standalone scheduler: runs each configured cluster's backups in-process on its cron
// schedule (see docs/scheduler.md).
//
// Rules: at most one attempt per scheduled slot; at most one backup per cluster at a time
// (clusters are independent, each attempt runs on its own thread); a slot that is due while
// the cluster's previous backup still runs, or while the process was down, runs once when it
// is at most `starting_deadline` old, otherwise it is recorded as missed (as are all older
// slots passed over); retention runs after each successful backup. Status is persisted in the
// state file after every change.
//
// Driving: Tick(now) decides and starts due work and returns at once; Run() is the real loop
// (Tick, then sleep until the next slot, a finished attempt or Shutdown()). Tests drive Tick
// with a fake clock and call WaitIdle(). All public methods are thread-safe.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backup/backup.h"
#include "common/context.h"
#include "schedule/config.h"
#include "schedule/state_file.h"

namespace bao::schedule {

// What an attempt does, replaceable in tests. Both are called on the attempt's thread, with
// the attempt's context: cancelled when this attempt is cancelled (Scheduler::Cancel) or when
// the shutdown grace period is over.
struct AttemptHooks {
  // One backup of `cluster`; a failure's Status carries its stage.
  std::function<Result<backup::BackupResult>(const Context& ctx, const ClusterConfig& cluster)>
      backup;
  // Retention after a successful backup, at `now`.
  std::function<Status(const Context& ctx, const ClusterConfig& cluster, TimePoint now)> retain;
};

// The real thing: OpenStore + RunBackup (object names from `clock`) and Prune. A tokenFile is
// re-read before every attempt.
AttemptHooks DefaultHooks(const Clock* clock);

class Scheduler {
 public:
  // `clock` is not owned and must outlive the scheduler. Loads nothing; call Start().
  Scheduler(SchedulerConfig config, const Clock* clock, AttemptHooks hooks);
  ~Scheduler();  // Shutdown() then joins everything.
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Loads the state file (clusters no longer configured are dropped; a cluster whose schedule
  // changed starts afresh from now) and writes it back with nextScheduledBackup filled in. A
  // cluster seen for the first time only runs slots after `Start`'s clock reading. Errors: the
  // state file is unreadable/invalid or cannot be written.
  Status Start();

  // Decides for every idle cluster whether a slot is due at `now` and starts its attempt on a
  // thread; records missed slots. Does nothing after Shutdown().
  void Tick(TimePoint now);

  // Blocks until no attempt runs (tests).
  void WaitIdle();

  // The real loop: Tick at the clock's time, then wait until the next due slot (re-checking at
  // least every 30 s against clock jumps), an attempt's end, or Shutdown(). Returns after
  // Shutdown() once attempts have ended.
  void Run();

  // Stops new work and wakes Run(). Running attempts get `shutdown_grace` to finish, then
  // their contexts are cancelled (their uploads leave no object); returns when all ended and
  // the state is saved. Idempotent.
  void Shutdown();

  // Cancels the running attempt of the cluster with this Key() ("namespace/name"), and no
  // other; it is recorded as cancelled. False when that cluster has no running attempt.
  bool Cancel(const std::string& cluster_key);

  // Cancels every running attempt now (a second signal); they are recorded as cancelled.
  void CancelAll() { cancel_all_.Cancel(); }

  // A copy of the current state (for /metrics and tests).
  SchedulerState Snapshot() const;

  // Records where the HTTP endpoint listens, saved with the state.
  void SetMetricsAddress(const std::string& address);

  const SchedulerConfig& config() const { return config_; }

 private:
  struct Worker {
    std::thread thread;
    bool running = false;
    // The running attempt's cancellation, a child of cancel_all_; replaced per attempt.
    std::unique_ptr<CancelSource> cancel;
  };

  void StartAttemptLocked(size_t index, TimePoint slot, TimePoint now);
  void RunAttempt(size_t index, TimePoint slot);
  void SaveLocked();
  TimePoint NextWakeLocked(TimePoint now) const;

  SchedulerConfig config_;
  const Clock* clock_;
  AttemptHooks hooks_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  SchedulerState state_;
  std::vector<Worker> workers_;  // one per cluster, same order as config_.clusters
  CancelSource cancel_all_;      // cancelled when the shutdown grace period is over
  bool stopping_ = false;
  bool shut_down_ = false;
};

}  // namespace bao::schedule
