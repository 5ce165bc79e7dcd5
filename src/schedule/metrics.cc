#include "schedule/metrics.h"

#include <httplib.h>

#include <cstdio>

#include "common/log.h"
#include "common/numbers.h"

namespace bao::schedule {
namespace {

std::string Escape(const std::string& v) {
  std::string out;
  for (char ch : v) {
    if (ch == '\\' || ch == '"') out += '\\';
    if (ch == '\n') {
      out += "\\n";
      continue;
    }
    out += ch;
  }
  return out;
}

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

double Seconds(TimePoint t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

struct Family {
  const char* name;
  const char* type;
  const char* help;
};

}  // namespace

std::string RenderMetrics(const SchedulerState& state) {
  const Family families[] = {
      {"bao_backup_last_success_timestamp_seconds", "gauge",
       "Unix time of the last successful backup."},
      {"bao_backup_last_duration_seconds", "gauge", "Duration of the last successful backup."},
      {"bao_backup_last_size_bytes", "gauge", "Size of the last successful backup."},
      {"bao_backup_consecutive_failures", "gauge", "Failed attempts since the last success."},
      {"bao_backup_next_scheduled_timestamp_seconds", "gauge",
       "Unix time of the next scheduled backup."},
      {"bao_backup_running", "gauge", "1 while a backup of the cluster runs."},
      {"bao_backup_attempts_total", "counter", "Scheduled slots by outcome."},
  };
  std::string out;
  for (const Family& f : families) {
    out += std::string("# HELP ") + f.name + " " + f.help + "\n";
    out += std::string("# TYPE ") + f.name + " " + f.type + "\n";
    std::string metric = f.name;
    for (const auto& [key, st] : state.clusters) {
      size_t slash = key.find('/');
      std::string labels = "namespace=\"" + Escape(key.substr(0, slash)) + "\",cluster=\"" +
                           Escape(slash == std::string::npos ? "" : key.substr(slash + 1)) + "\"";
      auto line = [&](const std::string& extra, double v) {
        out += metric + "{" + labels + extra + "} " + Num(v) + "\n";
      };
      if (metric == "bao_backup_last_success_timestamp_seconds" && st.last_backup_time) {
        line("", Seconds(*st.last_backup_time));
      } else if (metric == "bao_backup_last_duration_seconds" && st.last_backup_duration) {
        line("", std::chrono::duration<double>(*st.last_backup_duration).count());
      } else if (metric == "bao_backup_last_size_bytes" && st.last_backup_time) {
        line("", static_cast<double>(st.last_backup_size));
      } else if (metric == "bao_backup_consecutive_failures") {
        line("", static_cast<double>(st.consecutive_failures));
      } else if (metric == "bao_backup_next_scheduled_timestamp_seconds" &&
                 st.next_scheduled_backup) {
        line("", Seconds(*st.next_scheduled_backup));
      } else if (metric == "bao_backup_running") {
        line("", st.running ? 1 : 0);
      } else if (metric == "bao_backup_attempts_total") {
        for (const char* outcome :
             {kOutcomeSuccess, kOutcomeFailure, kOutcomeMissed, kOutcomeCancelled}) {
          auto it = st.attempts.find(outcome);
          line(std::string(",outcome=\"") + outcome + "\"",
               it == st.attempts.end() ? 0.0 : static_cast<double>(it->second));
        }
      }
    }
  }
  return out;
}

MetricsServer::MetricsServer(std::function<SchedulerState()> snapshot)
    : snapshot_(std::move(snapshot)) {}

MetricsServer::~MetricsServer() {
  Stop();
}

Result<std::string> MetricsServer::Start(const std::string& address) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return InvalidArgument("metricsAddress \"" + address + "\" must be host:port");
  }
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  std::optional<int> parsed =
      ParseInteger<int>(std::string_view(address).substr(colon + 1), 0, 65535);
  if (!parsed) {
    return InvalidArgument("metricsAddress \"" + address + "\": the port is not 0..65535");
  }
  int port = *parsed;
  server_ = std::make_unique<httplib::Server>();
  server_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(RenderMetrics(snapshot_()), "text/plain; version=0.0.4");
  });
  if (port == 0) {
    port = server_->bind_to_any_port(host);
    if (port < 0) port = -1;
  } else if (!server_->bind_to_port(host, port)) {
    port = -1;
  }
  if (port <= 0) {
    server_.reset();
    return Unavailable("cannot listen on metricsAddress " + address +
                       " (in use, or not a local address)");
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() only takes effect once the server runs; wait for that so Stop() never hangs.
  for (int i = 0; i < 5000 && !server_->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::string bound =
      (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  log::Info("serving /healthz and /metrics", {{"address", bound}});
  return bound;
}

void MetricsServer::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

}  // namespace bao::schedule
