#include "common/cancel.h"

#include <signal.h>
#include <unistd.h>

namespace bao {
namespace {

std::atomic<bool> g_cancel{false};

void OnSignal(int) {
  if (g_cancel.exchange(true)) _exit(130);
}

}  // namespace

const std::atomic<bool>* CancelFlag() {
  return &g_cancel;
}
bool CancelRequested() {
  return g_cancel.load();
}
void RequestCancel() {
  g_cancel = true;
}
void ResetCancel() {
  g_cancel = false;
}

void InstallCancelSignalHandlers() {
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

}  // namespace bao
