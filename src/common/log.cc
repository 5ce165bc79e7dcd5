#include "common/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>

#include "common/redact.h"
#include "common/time.h"

namespace bao::log {
namespace {

std::atomic<Level> g_level{Level::kInfo};
std::atomic<Format> g_format{Format::kText};
std::mutex g_mu;

const char* LevelName(Level level) {
  switch (level) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

}  // namespace

void SetLevel(Level level) {
  g_level = level;
}
void SetFormat(Format format) {
  g_format = format;
}

bool ParseLevel(std::string_view text, Level* out) {
  for (Level l : {Level::kDebug, Level::kInfo, Level::kWarn, Level::kError}) {
    if (text == LevelName(l)) {
      *out = l;
      return true;
    }
  }
  return false;
}

void Write(Level level, std::string_view message, std::initializer_list<Field> fields) {
  if (level < g_level.load()) return;
  std::string line;
  std::string now = FormatRfc3339(SystemClock().Now(), /*millis=*/true);
  if (g_format.load() == Format::kJson) {
    nlohmann::json j;
    j["time"] = now;
    j["level"] = LevelName(level);
    j["msg"] = Redact(message);
    for (const auto& [k, v] : fields) j[std::string(k)] = Redact(v);
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    line = now + " " + LevelName(level) + " " + Redact(message);
    for (const auto& [k, v] : fields) {
      line.push_back(' ');
      line.append(k);
      line.push_back('=');
      std::string value = Redact(v);
      bool quote = value.empty() || value.find_first_of(" \t\"") != std::string::npos;
      line += quote ? nlohmann::json(value).dump() : value;
    }
  }
  line += "\n";
  std::lock_guard<std::mutex> lock(g_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

namespace {

void Print(FILE* stream, std::string_view text) {
  std::string line = Redact(text);
  line.push_back('\n');
  std::lock_guard<std::mutex> lock(g_mu);
  std::fwrite(line.data(), 1, line.size(), stream);
  std::fflush(stream);
}

}  // namespace

void Out(std::string_view text) {
  Print(stdout, text);
}

void Err(std::string_view text) {
  Print(stderr, text);
}

}  // namespace bao::log
