#include "common/cancel.h"

#include <signal.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "common/log.h"

namespace bao {
void HandleTerminationSignals(CancelSource* source, std::chrono::milliseconds grace,
                              int exit_code) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  std::thread([source, grace, exit_code, set] {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) return;
    source->Cancel();
    log::Warn("stopping on signal; in-flight work is aborted",
              {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"},
               {"gracePeriod", std::to_string(grace.count()) + "ms"}});
    std::thread([grace, exit_code] {
      std::this_thread::sleep_for(grace);
      log::Error("grace period over; exiting without finishing cleanup",
                 {{"exitCode", std::to_string(exit_code)}});
      _exit(exit_code);
    }).detach();
    if (sigwait(&set, &sig) == 0) _exit(130);
  }).detach();
}

}  // namespace bao
