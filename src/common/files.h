// Small file helpers with specific error messages.
#pragma once

#include <sys/types.h>

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

enum class Replace { kYes, kNo };

// Writes `data` to `path` atomically: a temporary file beside it (random name, created with
// O_EXCL|O_NOFOLLOW, so a planted file or symlink is never written through), fsync, rename,
// fsync of the directory. Either the old or the new content is visible, never a mix. The file
// gets `mode`. With Replace::kNo an existing `path` is left alone and the result is
// kAlreadyExists.
Status WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode = 0600,
                       Replace replace = Replace::kYes);

// Renames `from` to `to` unless `to` exists (then kAlreadyExists, nothing changed): the
// kernel's RENAME_NOREPLACE, or link()+unlink() where the file system lacks it.
Status RenameNoReplace(const std::string& from, const std::string& to);

// Removes leading and trailing ASCII white space.
std::string Trim(std::string_view text);

// Human-readable byte count: "1.0 GiB", "512 B".
std::string FormatBytes(uint64_t bytes);

}  // namespace bao
