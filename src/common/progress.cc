#include "common/progress.h"

#include <cstdio>

#include "common/log.h"

namespace bao {

ProgressReporter::ProgressReporter(std::string operation, std::optional<uint64_t> total,
                                   std::chrono::milliseconds interval, NowFn now)
    : operation_(std::move(operation)),
      total_(total),
      interval_(interval),
      now_(std::move(now)),
      start_(now_()),
      last_(start_) {}

void ProgressReporter::Update(uint64_t bytes) {
  const SteadyTime now = now_();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (now - last_ < interval_) return;
    last_ = now;
    ++lines_;
  }
  const double secs = std::chrono::duration<double>(now - start_).count();
  char rate[32];
  std::snprintf(rate, sizeof rate, "%.1f", secs > 0 ? static_cast<double>(bytes) / secs / (1 << 20) : 0.0);
  if (total_.has_value() && *total_ > 0) {
    char percent[16];
    std::snprintf(percent, sizeof percent, "%.1f",
                  100.0 * static_cast<double>(bytes) / static_cast<double>(*total_));
    log::Info("progress", {{"operation", operation_},
                           {"bytes", std::to_string(bytes)},
                           {"total", std::to_string(*total_)},
                           {"percent", percent},
                           {"mibPerSecond", rate}});
  } else {
    log::Info("progress", {{"operation", operation_},
                           {"bytes", std::to_string(bytes)},
                           {"mibPerSecond", rate}});
  }
}

int ProgressReporter::lines() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lines_;
}

}  // namespace bao
