// Process-wide signal handling. The termination handler below cancels a CancelSource (see
// common/context.h); the process-global flag further down is deprecated and only bridges
// callers that do not pass a Context yet.
#pragma once

#include <atomic>
#include <chrono>

#include "common/context.h"

namespace bao {

// Blocks SIGTERM and SIGINT in the calling thread (call it first in main(), before any thread
// exists, so that every thread inherits the mask) and starts a thread that waits for them. The
// first signal cancels `source` and logs that the process stops; if the process is still
// running `grace` later, it ends with `exit_code` (in-flight cleanup is abandoned, which the
// crash-safe commit protocol allows). A second signal ends the process at once with 130.
// Call once per process; `source` must live until exit. SIGPIPE is ignored.
void HandleTerminationSignals(CancelSource* source, std::chrono::milliseconds grace,
                              int exit_code);

// Deprecated: the process-global flag below is being replaced by Context; do not add users.

// The flag itself (for code that still polls an atomic).
const std::atomic<bool>* CancelFlag();
// The CancelSource the flag drives: RequestCancel() and the handlers of
// InstallCancelSignalHandlers() cancel it, so `Context(ProcessCancelSource())` is cancelled
// exactly when CancelRequested() becomes true. ResetCancel() replaces it with a fresh source;
// contexts made from an earlier one stay cancelled. Never null; lives until exit. For call sites
// that have no Context of their own yet (the CLI, the scheduler, the OpenBao client).
const CancelSource* ProcessCancelSource();
bool CancelRequested();
void RequestCancel();
// Clears the flag (tests, and the scheduler between runs).
void ResetCancel();
// Installs SIGTERM and SIGINT handlers that call RequestCancel(); a second signal exits at once
// with status 130.
void InstallCancelSignalHandlers();

}  // namespace bao
