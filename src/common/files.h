// Small file helpers with specific error messages.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace bao {

// Reads a whole file. kNotFound when it does not exist, kPermissionDenied when unreadable,
// kInvalidArgument when larger than `max_bytes`.
Result<std::string> ReadFile(const std::string& path, size_t max_bytes = 16 << 20);

// Reads a credential-style file: like ReadFile, with surrounding white space trimmed (Secret
// values are often written with a trailing newline). Returns nullopt when the file is absent.
Result<std::optional<std::string>> ReadOptionalTrimmed(const std::string& path);

// Writes `data` to `path` atomically: a temporary file beside it, fsync, rename, fsync of the
// directory. Either the old or the new content is visible, never a mix.
Status WriteFileAtomic(const std::string& path, std::string_view data);

// Removes leading and trailing ASCII white space.
std::string Trim(std::string_view text);

// Human-readable byte count: "1.0 GiB", "512 B".
std::string FormatBytes(uint64_t bytes);

}  // namespace bao
