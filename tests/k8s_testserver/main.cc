// k8s-testserver: an in-memory Kubernetes API server for tests. See README.md.
//
//   k8s-testserver [--ready-file PATH] [--port N] [--token T]... [--tls-cert F --tls-key F]
//                  [--event-window N] [--bookmark-interval-ms N]
#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "api_server.h"
#include "common/files.h"

namespace {

int Usage(const char* why) {
  std::fprintf(stderr,
               "k8s-testserver: %s\nusage: k8s-testserver [--ready-file PATH] [--port N] "
               "[--token T]... [--tls-cert FILE --tls-key FILE] [--event-window N] "
               "[--bookmark-interval-ms N]\n",
               why);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  k8stest::Options options;
  std::string ready_file, tls_cert, tls_key;
  int port = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (arg == "--ready-file" && (v = value())) {
      ready_file = v;
    } else if (arg == "--port" && (v = value())) {
      port = std::atoi(v);
    } else if (arg == "--token" && (v = value())) {
      options.tokens.push_back(v);
    } else if (arg == "--tls-cert" && (v = value())) {
      tls_cert = v;
    } else if (arg == "--tls-key" && (v = value())) {
      tls_key = v;
    } else if (arg == "--event-window" && (v = value())) {
      options.event_window = std::strtoul(v, nullptr, 10);
      if (options.event_window == 0) return Usage("--event-window must be at least 1");
    } else if (arg == "--bookmark-interval-ms" && (v = value())) {
      options.bookmark_interval_ms = std::atoi(v);
      if (options.bookmark_interval_ms <= 0) return Usage("--bookmark-interval-ms must be > 0");
    } else {
      return Usage(("unknown or incomplete argument " + arg).c_str());
    }
  }
  if (tls_cert.empty() != tls_key.empty()) return Usage("--tls-cert and --tls-key go together");

  // Signals are taken by a dedicated thread so that shutdown is not done in a signal handler.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::unique_ptr<httplib::Server> server;
  if (tls_cert.empty()) {
    server = std::make_unique<httplib::Server>();
  } else {
    auto tls = std::make_unique<httplib::SSLServer>(tls_cert.c_str(), tls_key.c_str());
    if (!tls->is_valid()) return Usage("cannot load the TLS certificate or key");
    server = std::move(tls);
  }
  server->new_task_queue = [] { return new httplib::ThreadPool(64); };
  // Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and the
  // client's delayed ACK add about 40 ms to every answer.
  server->set_tcp_nodelay(true);
  k8stest::ApiServer api(options);
  api.Install(server.get());

  int bound = port == 0 ? server->bind_to_any_port("127.0.0.1")
                        : (server->bind_to_port("127.0.0.1", port) ? port : -1);
  if (bound <= 0) {
    std::fprintf(stderr, "k8s-testserver: cannot listen on 127.0.0.1:%d\n", port);
    return 1;
  }
  std::string url =
      std::string(tls_cert.empty() ? "http" : "https") + "://127.0.0.1:" + std::to_string(bound);
  if (!ready_file.empty()) {
    bao::Status s = bao::WriteFileAtomic(ready_file, nlohmann::json{{"url", url}}.dump());
    if (!s.ok()) {
      std::fprintf(stderr, "k8s-testserver: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  std::fprintf(stderr, "k8s-testserver listening on %s\n", url.c_str());

  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    api.Shutdown();
    server->stop();
  });
  server->listen_after_bind();
  // The waiter uses `api` and `server`, which end with this function: it must have finished
  // (it may still be inside stop(), or, when listening failed, still in sigwait: wake it).
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  return 0;
}
