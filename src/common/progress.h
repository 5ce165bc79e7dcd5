// Progress of a long transfer (backup, verify, restore), reported as ordinary log lines every
// few seconds: "progress" with bytes, total and percent when the size is known, and the average
// rate. Being log lines, they appear in both log formats and whether or not stderr is a
// terminal, so a Kubernetes Job's log shows them too.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "common/context.h"

namespace bao {

class ProgressReporter {
 public:
  using NowFn = std::function<SteadyTime()>;

  // `operation` names the transfer in each line ("backup", "verify", "restore"); `total` is
  // its size when known. `now` is the time source (tests pass their own).
  ProgressReporter(std::string operation, std::optional<uint64_t> total,
                   std::chrono::milliseconds interval = std::chrono::seconds(5),
                   NowFn now = [] { return std::chrono::steady_clock::now(); });

  // Records that `bytes` have moved in all; logs a line when `interval` has passed since the
  // last one. Thread-safe; cheap when no line is due.
  void Update(uint64_t bytes);

  // How many lines were logged (tests).
  int lines() const;

 private:
  const std::string operation_;
  const std::optional<uint64_t> total_;
  const std::chrono::milliseconds interval_;
  const NowFn now_;
  const SteadyTime start_;
  mutable std::mutex mu_;
  SteadyTime last_;
  int lines_ = 0;
};

}  // namespace bao
