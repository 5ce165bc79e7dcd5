// The scheduler's HTTP endpoint: /healthz and /metrics (Prometheus text format 0.0.4).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/status.h"
#include "schedule/state_file.h"

namespace httplib {
class Server;
}

namespace bao::schedule {

// Renders `state` as Prometheus text. Per cluster (labels namespace, cluster):
//   bao_backup_last_success_timestamp_seconds, bao_backup_last_duration_seconds,
//   bao_backup_last_size_bytes, bao_backup_consecutive_failures,
//   bao_backup_next_scheduled_timestamp_seconds, bao_backup_running,
//   bao_backup_attempts_total{outcome="success|failure|missed|cancelled"}.
// Series whose value is unknown (no success yet) are left out.
std::string RenderMetrics(const SchedulerState& state);

// Serves GET /healthz ("ok") and GET /metrics (RenderMetrics of `snapshot()`) on a thread.
class MetricsServer {
 public:
  explicit MetricsServer(std::function<SchedulerState()> snapshot);
  ~MetricsServer();  // Stop()
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Binds "host:port" (port 0: a free port) and starts serving. Returns the address actually
  // bound ("127.0.0.1:40123"). kInvalidArgument for a malformed address, kUnavailable when the
  // address cannot be bound.
  Result<std::string> Start(const std::string& address);
  // Stops serving and joins the thread. Idempotent.
  void Stop();

 private:
  std::function<SchedulerState()> snapshot_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace bao::schedule
