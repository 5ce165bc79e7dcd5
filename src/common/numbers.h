// Parsing integers from external input (headers, JSON strings, flags, configuration) without
// exceptions or undefined behaviour: the whole text must be the number, in range.
#pragma once

#include <charconv>
#include <optional>
#include <string_view>
#include <system_error>

namespace bao {

// The value of `text` in base `base` when all of it is one integer within [min, max]
// (no sign for unsigned types, no spaces, no '+'); nullopt otherwise, overflow included.
template <typename T>
std::optional<T> ParseInteger(std::string_view text, T min, T max, int base = 10) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  if (value < min || value > max) return std::nullopt;
  return value;
}

}  // namespace bao
