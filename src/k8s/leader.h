// Leader election with a coordination.k8s.io/v1 Lease, following client-go's algorithm: a
// candidate takes the Lease when it is absent, released (empty holder) or not renewed for
// leaseDurationSeconds as observed on the candidate's own clock; the leader renews it every
// retry period. Every write is an update carrying the read resourceVersion, so when two
// candidates race only one write succeeds (the other gets 409 Conflict and stays follower).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "common/time.h"
#include "k8s/client.h"

namespace bao::k8s {

struct LeaderElectionConfig {
  std::string ns;        // namespace of the Lease
  std::string name;      // Lease name
  std::string identity;  // unique per candidate (pod name + random suffix)
  std::chrono::milliseconds lease_duration{15000};  // written as whole seconds (at least 1)
  // A leader that could not renew for this long stops leading. Must be < lease_duration, so it
  // stops before anyone else may take over.
  std::chrono::milliseconds renew_deadline{10000};
  std::chrono::milliseconds retry_period{2000};
  bool release_on_stop = true;  // Stop() hands the Lease back so a successor starts at once
  const Clock* clock = &SystemClock();
};

// Thread-safe. `client` must outlive the elector.
class LeaderElector {
 public:
  // `on_change(true)` when this candidate starts leading, `on_change(false)` when it stops
  // (renewal failed past the deadline, lease lost, or Stop()). Called on the elector's thread
  // (or the caller's, for TryAcquireOrRenew / Stop).
  LeaderElector(Client* client, LeaderElectionConfig config,
                std::function<void(bool leading)> on_change = {});
  ~LeaderElector();  // Stop()
  LeaderElector(const LeaderElector&) = delete;
  LeaderElector& operator=(const LeaderElector&) = delete;

  // One round: acquire or renew. True when this candidate holds the Lease afterwards, false
  // when someone else holds a live Lease or won a race; an error when the API failed (the
  // leadership then lapses once renew_deadline has passed since the last renewal). Drives the
  // same state as the background loop, so tests can step it with a fake clock.
  Result<bool> TryAcquireOrRenew();

  // True while this candidate holds the Lease and renewed it less than renew_deadline ago on
  // the injected clock. Check it right before acting.
  bool IsLeader() const;

  // Runs TryAcquireOrRenew() every retry_period on a background thread.
  void Start();
  // Stops the loop; when leading, releases the Lease (if configured) and reports
  // on_change(false).
  void Stop();

 private:
  void SetLeading(bool leading);
  void Loop();

  Client* client_;
  LeaderElectionConfig config_;
  std::function<void(bool)> on_change_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  bool leading_ = false;
  TimePoint last_renew_{};
  std::string observed_record_;  // holder|acquireTime|renewTime last seen
  TimePoint observed_at_{};      // local time it was first seen
  std::thread thread_;
};

}  // namespace bao::k8s
