// The local-directory provider ("file"): objects are files under a root directory, the key
// being the relative path. A checksum side file "<key>.sha256" (sha256sum format) records each
// object's SHA-256, so `sha256sum -c` works on it too.
//
// Writes go to a hidden temporary file in the object's directory (".<name>.partial-<random>"),
// with O_DIRECT where the file system allows it (aligned input straight from the caller's
// buffer, other input gathered into an aligned block first), are fsynced, and are
// renamed onto the final name only at Commit(); after any failure the temporary file is
// removed and nothing exists under the final name.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "storage/store.h"

namespace bao::storage {

// Opens the store rooted at `root` without touching the file system: List() on a missing root
// is kNotFound, NewWriter() creates the directories it needs. kInvalidArgument for an empty
// root. Objects are write-once: NewWriter() and Commit() refuse an existing key with
// kAlreadyExists. Files are created exclusively (never through a planted file or symlink),
// with mode 0640.
Result<std::unique_ptr<Store>> OpenFileStore(const std::string& root);

}  // namespace bao::storage
