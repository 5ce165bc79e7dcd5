// Process-wide signal handling: SIGTERM and SIGINT cancel the CancelSource at the root of the
// process's contexts (see common/context.h). There is no process-global cancel flag.
#pragma once

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

}  // namespace bao
