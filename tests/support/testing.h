// Helpers for integration tests. Everything listens on 127.0.0.1 with ports chosen free at
// start-up; nothing waits by sleeping: WaitUntil() polls a condition until a deadline.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace bao::testing {

// A TCP port on 127.0.0.1 for a peer to listen on: free now, outside the kernel's ephemeral
// range, and reserved for this process's lifetime against every other caller (other test
// processes included). -1 when none could be found.
int FreePort();

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Polls `condition` (first at once, then with a short growing interval) until it returns true
// or `deadline` passes. Returns the last result.
bool WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds deadline);

// True once GET `url` answers with any HTTP status before `deadline`.
bool WaitForHttp(const std::string& url, std::chrono::milliseconds deadline);

// A child process with stdout and stderr captured to files. Killed (SIGKILL) on destruction if
// still running, and by the kernel when the test process dies in any way (PR_SET_PDEATHSIG,
// which follows the thread that started it: start processes from the test's own thread).
class Process {
 public:
  Process() = default;
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Starts argv[0] (searched in PATH when it has no '/') with the current environment plus
  // `env` (entries with an empty value are removed from the environment). Returns false and
  // fills `error` when it cannot start.
  bool Start(const std::vector<std::string>& argv,
             const std::map<std::string, std::string>& env = {}, std::string* error = nullptr);
  bool Running();
  // Sends `sig`.
  void Signal(int sig);
  // Waits for exit up to `deadline`; returns the exit status (128+signal when killed), or -1 on
  // time-out (the process keeps running).
  int Wait(std::chrono::milliseconds deadline);
  // Stops the process: SIGTERM, then SIGKILL if it has not exited within `grace`.
  int Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));
  std::string Stdout() const;
  std::string Stderr() const;
  pid_t pid() const { return pid_; }
  // The child's peak resident set size in KiB (getrusage's ru_maxrss, from wait4) once it has
  // been reaped; -1 before.
  long max_rss_kib() const { return max_rss_kib_; }

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  long max_rss_kib_ = -1;
  std::string out_path_, err_path_;
};

struct RunResult {
  int exit_code = -1;  // -1 when it timed out
  std::string out;
  std::string err;
  long max_rss_kib = -1;  // the child's peak RSS (Process::max_rss_kib()); -1 when timed out
};

// Runs a command to completion (or kills it after `deadline`).
RunResult Run(const std::vector<std::string>& argv,
              const std::map<std::string, std::string>& env = {},
              std::chrono::milliseconds deadline = std::chrono::minutes(5));

// Path of a program built in this build tree, e.g. BuildBinary("bao-backup").
std::string BuildBinary(const std::string& name);

// Directory holding the installed peers' binaries (minio, fake-gcs-server, ...):
// $BAO_BACKUP_PEERS_DIR/bin or ~/.cache/bao-backup/peers/bin. PeerPath("") is the peers root.
std::string PeersDir();
std::string PeerBinary(const std::string& name);

// Reads a whole file ("" when missing).
std::string ReadText(const std::string& path);
void WriteText(const std::string& path, const std::string& text);

// The last non-empty line of `text`.
std::string LastLine(const std::string& text);

}  // namespace bao::testing
