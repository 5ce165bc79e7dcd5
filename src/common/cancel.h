// Process-wide cancellation: SIGTERM/SIGINT set a flag that long operations poll (HTTP
// transfers through http::Request::cancel, the backup pipeline between chunks). Cleanup code
// (aborting uploads, removing temporary files) deliberately does not observe it.
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

// The flag itself, for http::Request::cancel.
const std::atomic<bool>* CancelFlag();
bool CancelRequested();
void RequestCancel();
// Clears the flag (tests, and the scheduler between runs).
void ResetCancel();
// Installs SIGTERM and SIGINT handlers that call RequestCancel(); a second signal exits at once
// with status 130.
void InstallCancelSignalHandlers();

}  // namespace bao
