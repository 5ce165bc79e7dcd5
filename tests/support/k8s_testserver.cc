#include "support/k8s_testserver.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "http/client.h"

namespace bao::testing {

K8sTestServer::~K8sTestServer() {
  Stop();
}

bool K8sTestServer::Start(const K8sTestServerOptions& options, std::string* error) {
  std::string ready = dir_.File("ready.json");
  std::vector<std::string> argv = {BuildBinary("k8s-testserver"), "--ready-file", ready,
                                   "--bookmark-interval-ms",
                                   std::to_string(options.bookmark_interval_ms)};
  for (const auto& t : options.tokens) {
    argv.push_back("--token");
    argv.push_back(t);
  }
  if (!options.tls_cert.empty()) {
    argv.insert(argv.end(), {"--tls-cert", options.tls_cert, "--tls-key", options.tls_key});
    tls_ = true;
  }
  if (options.event_window > 0) {
    argv.insert(argv.end(), {"--event-window", std::to_string(options.event_window)});
  }
  if (!process_.Start(argv, {}, error)) return false;
  bool up = WaitUntil(
      [&] {
        auto j = nlohmann::json::parse(ReadText(ready), nullptr, false);
        if (j.is_object() && j.contains("url") && j["url"].is_string()) {
          url_ = j["url"].get<std::string>();
          return true;
        }
        return !process_.Running();
      },
      std::chrono::seconds(10));
  if (!up || url_.empty()) {
    if (error != nullptr) *error = "k8s-testserver did not start: " + process_.Stderr();
    return false;
  }
  return true;
}

void K8sTestServer::Stop() {
  if (process_.pid() <= 0) return;
  int code = process_.Stop(std::chrono::seconds(5));
  // A ThreadSanitizer build of the server exits with 66 (TSan's exit code) when it reported a
  // race: that fails the test that ran it, with the report.
  if (code == 66) ADD_FAILURE() << "k8s-testserver reported a data race:\n" << process_.Stderr();
}

bool K8sTestServer::Post(const std::string& path, const std::string& body) {
  http::Client client;
  http::Request req;
  req.method = "POST";
  req.url = url_ + path;
  req.body = body;
  req.headers.emplace_back("Content-Type", "application/json");
  req.tls.insecure_skip_verify = tls_;
  auto r = client.Do(req);
  return r.ok() && r->ok();
}

bool K8sTestServer::Compact() {
  return Post("/_test/compact", "{}");
}

bool K8sTestServer::SetTokens(const std::vector<std::string>& tokens) {
  return Post("/_test/tokens", nlohmann::json{{"tokens", tokens}}.dump());
}

}  // namespace bao::testing
