// Process-wide cancellation: SIGTERM/SIGINT set a flag that long operations poll (HTTP
// transfers through http::Request::cancel, the backup pipeline between chunks). Cleanup code
// (aborting uploads, removing temporary files) deliberately does not observe it.
#pragma once

#include <atomic>

namespace bao {

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
