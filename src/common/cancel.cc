#include "common/cancel.h"

#include <signal.h>
#include <unistd.h>

#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "common/log.h"

namespace bao {
namespace {

// A new source that lives until exit (sources handed out must outlive their contexts).
CancelSource* NewProcessSource() {
  static std::mutex mu;
  static std::deque<CancelSource> sources;
  std::lock_guard<std::mutex> lock(mu);
  return &sources.emplace_back();
}

std::atomic<bool> g_cancel{false};
std::atomic<CancelSource*> g_source{NewProcessSource()};

void OnSignal(int) {
  if (g_cancel.exchange(true)) _exit(130);
  g_source.load()->Cancel();  // lock-free atomics only: async-signal-safe
}

}  // namespace

const std::atomic<bool>* CancelFlag() {
  return &g_cancel;
}
const CancelSource* ProcessCancelSource() {
  return g_source.load();
}
bool CancelRequested() {
  return g_cancel.load();
}
void RequestCancel() {
  g_cancel = true;
  g_source.load()->Cancel();
}
void ResetCancel() {
  g_cancel = false;
  g_source = NewProcessSource();
}

void InstallCancelSignalHandlers() {
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

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
