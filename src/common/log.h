// Structured logging to stderr. Human-readable lines by default, one JSON object per line with
// SetLogFormat(kJson). Every message and field value is passed through Redact(). Thread-safe.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace bao::log {

enum class Level { kDebug = 0, kInfo, kWarn, kError };
enum class Format { kText, kJson };

void SetLevel(Level level);
void SetFormat(Format format);
// Parses "debug", "info", "warn", "error"; false on anything else.
bool ParseLevel(std::string_view text, Level* out);

using Field = std::pair<std::string_view, std::string>;

void Write(Level level, std::string_view message, std::initializer_list<Field> fields = {});
inline void Debug(std::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kDebug, m, f);
}
inline void Info(std::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kInfo, m, f);
}
inline void Warn(std::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kWarn, m, f);
}
inline void Error(std::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kError, m, f);
}

// The printer for everything that is not a log line: results on stdout, usage errors and
// prompts on stderr. Redact()s `text` (registered secrets, URL user-info and queries) and
// writes it with a newline. Thread-safe.
void Out(std::string_view text);
void Err(std::string_view text);

}  // namespace bao::log
