#include "support/testing.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "http/client.h"

extern char** environ;

namespace bao::testing {

namespace {

// The lowest port the kernel hands out on its own (connect() without bind(), bind() to port 0):
// ports below it are only ever taken by someone asking for them by number.
int EphemeralLow() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 32768;
  if (!(in >> low) || low < 10000) low = 32768;
  return low;
}

bool Bindable(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

}  // namespace

int FreePort() {
  // Not bind-to-0-then-close (the kernel may give that port to the next connect() before the
  // peer binds it): a port below the ephemeral range, reserved for the life of this process by
  // an exclusive lock on /tmp/bao-test-ports/<port>, so that no other test process (ctest -j)
  // and no later call here picks it, and checked to be bindable now.
  static const int high = EphemeralLow();
  static const int low = high - 12000;
  const std::string dir = "/tmp/bao-test-ports";
  mkdir(dir.c_str(), 01777);
  static std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pick(low, high - 1);
  for (int tries = 0; tries < 1000; ++tries) {
    int port = pick(rng);
    std::string lock = dir + "/" + std::to_string(port);
    int fd = open(lock.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0) continue;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0 || !Bindable(port)) {
      close(fd);
      continue;
    }
    return port;  // `fd` stays open: the reservation lasts until this process exits
  }
  return -1;
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/bao-test-XXXXXX";
  char* made = mkdtemp(tmpl.data());
  path_ = made != nullptr ? made : "";
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

bool WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  auto interval = std::chrono::milliseconds(5);
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= until) return condition();
    std::this_thread::sleep_for(interval);
    interval = std::min(interval * 2, std::chrono::milliseconds(100));
  }
}

bool WaitForHttp(const std::string& url, std::chrono::milliseconds deadline) {
  http::Client client;
  return WaitUntil(
      [&] {
        http::Request req;
        req.url = url;
        req.connect_timeout = std::chrono::milliseconds(500);
        req.timeout = std::chrono::milliseconds(2000);
        req.tls.insecure_skip_verify = true;
        return client.Do(req).ok();
      },
      deadline);
}

Process::~Process() {
  if (pid_ > 0 && status_ < 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (!out_path_.empty()) unlink(out_path_.c_str());
  if (!err_path_.empty()) unlink(err_path_.c_str());
}

bool Process::Start(const std::vector<std::string>& argv,
                    const std::map<std::string, std::string>& env, std::string* error) {
  std::map<std::string, std::string> merged;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv(*e);
    size_t eq = kv.find('=');
    if (eq != std::string::npos) merged[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : env) {
    if (v.empty())
      merged.erase(k);
    else
      merged[k] = v;
  }
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : merged) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& s : argv_copy) args.push_back(s.data());
  args.push_back(nullptr);

  // Resolve the program before forking: the child only makes async-signal-safe calls.
  std::string program = argv.empty() ? "" : argv[0];
  if (program.find('/') == std::string::npos) {
    const char* path = std::getenv("PATH");
    std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
    for (std::string dir; std::getline(dirs, dir, ':');) {
      std::string candidate = (dir.empty() ? "." : dir) + "/" + program;
      if (access(candidate.c_str(), X_OK) == 0) {
        program = candidate;
        break;
      }
    }
  }

  char out_tmpl[] = "/tmp/bao-proc-out-XXXXXX";
  char err_tmpl[] = "/tmp/bao-proc-err-XXXXXX";
  int out_fd = mkstemp(out_tmpl), err_fd = mkstemp(err_tmpl);
  out_path_ = out_tmpl;
  err_path_ = err_tmpl;
  int exec_pipe[2];  // the child writes errno here when exec fails; closes on exec
  if (pipe2(exec_pipe, O_CLOEXEC) != 0) {
    if (error != nullptr) *error = std::string("pipe2: ") + std::strerror(errno);
    return false;
  }
  sigset_t none;
  sigemptyset(&none);
  pid_t parent = getpid();
  pid_ = fork();
  if (pid_ == 0) {
    // Die with the test process, however it ends (the peer must not outlive a crashed or
    // killed test). PR_SET_PDEATHSIG follows the forking thread: start processes from the
    // test's own thread.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    for (int sig : {SIGPIPE, SIGTERM, SIGINT}) signal(sig, SIG_DFL);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    int in_fd = open("/dev/null", O_RDONLY);
    dup2(in_fd, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    execve(program.c_str(), args.data(), envp.data());
    int e = errno;
    ssize_t ignored = write(exec_pipe[1], &e, sizeof e);
    (void)ignored;
    _exit(127);
  }
  close(exec_pipe[1]);
  close(out_fd);
  close(err_fd);
  status_ = -1;
  int child_errno = 0;
  ssize_t n = pid_ > 0 ? read(exec_pipe[0], &child_errno, sizeof child_errno) : 0;
  int fork_errno = errno;
  close(exec_pipe[0]);
  if (pid_ < 0 || n == static_cast<ssize_t>(sizeof child_errno)) {
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
    if (error != nullptr) {
      *error =
          "cannot start " + argv[0] + ": " + std::strerror(pid_ < 0 ? fork_errno : child_errno);
    }
    pid_ = -1;
    return false;
  }
  return true;
}

bool Process::Running() {
  if (pid_ <= 0 || status_ >= 0) return false;
  int st;
  struct rusage usage {};
  pid_t r = wait4(pid_, &st, WNOHANG, &usage);
  if (r == pid_) {
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    max_rss_kib_ = usage.ru_maxrss;
    return false;
  }
  return true;
}

void Process::Signal(int sig) {
  if (pid_ > 0 && status_ < 0) kill(pid_, sig);
}

int Process::Wait(std::chrono::milliseconds deadline) {
  if (pid_ <= 0) return status_;
  WaitUntil([&] { return !Running(); }, deadline);
  return status_;
}

int Process::Stop(std::chrono::milliseconds grace) {
  if (!Running()) return status_;
  Signal(SIGTERM);
  if (Wait(grace) < 0) {
    Signal(SIGKILL);
    Wait(std::chrono::milliseconds(10000));
  }
  return status_;
}

std::string Process::Stdout() const {
  return ReadText(out_path_);
}
std::string Process::Stderr() const {
  return ReadText(err_path_);
}

RunResult Run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
              std::chrono::milliseconds deadline) {
  Process p;
  RunResult r;
  std::string error;
  if (!p.Start(argv, env, &error)) {
    r.err = error;
    return r;
  }
  r.exit_code = p.Wait(deadline);
  if (r.exit_code < 0) p.Stop(std::chrono::milliseconds(1000));
  r.out = p.Stdout();
  r.err = p.Stderr();
  r.max_rss_kib = p.max_rss_kib();
  return r;
}

std::string BuildBinary(const std::string& name) {
  for (const char* sub : {"/src/cli/", "/tests/bao_testserver/", "/tests/k8s_testserver/", "/"}) {
    std::string p = std::string(BAO_BINARY_DIR) + sub + name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return std::string(BAO_BINARY_DIR) + "/" + name;
}

std::string PeersDir() {
  const char* dir = std::getenv("BAO_BACKUP_PEERS_DIR");
  if (dir != nullptr && *dir != '\0') return dir;
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : "/root") + "/.cache/bao-backup/peers";
}

std::string PeerBinary(const std::string& name) {
  return PeersDir() + "/bin/" + name;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string LastLine(const std::string& text) {
  size_t end = text.find_last_not_of("\r\n");
  if (end == std::string::npos) return "";
  size_t start = text.rfind('\n', end);
  return text.substr(start == std::string::npos ? 0 : start + 1,
                     end + 1 - (start == std::string::npos ? 0 : start + 1));
}

}  // namespace bao::testing
