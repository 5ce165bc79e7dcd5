// The one ObjectWriter of every provider. What is the same for all of them lives here, with one
// behaviour: the first error wins and sticks (every later Append() or Commit() returns it), a
// failure releases provider-side state exactly once under a cleanup context, the context is
// checked before every Append() and Commit(), a writer destroyed without a successful Commit()
// is aborted, and every error carries Stage::kStorage (errors.h). A provider implements only its
// protocol, as an Upload.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/context.h"
#include "common/status.h"
#include "storage/store.h"

namespace bao::storage {

// A provider's upload protocol. Called by the writer from one thread at a time, only while the
// writer is open (no earlier error, not committed, not aborted), and only with a live context.
class Upload {
 public:
  virtual ~Upload() = default;

  // Takes `data` (see ObjectWriter::Append). An error fails the writer, which then calls
  // Abort(); the Upload need not clean up itself.
  virtual Status Append(const Context& ctx, std::string_view data) = 0;

  // Publishes and checks the object (see ObjectWriter::Commit); `info.size` is the number of
  // bytes appended (the writer checked). After an error the writer calls Abort(), so an Upload
  // that has already published the object must have taken it back (deleting it under a cleanup
  // context) or leave Abort() a way to do so.
  virtual Result<ObjectInfo> Commit(const Context& ctx, const CommitInfo& info) = 0;

  // Releases provider-side state (multipart upload, upload session, parts in flight, temporary
  // file) under `cleanup`: Context::ForCleanup(kCleanupBudget), not cancelled by the caller.
  // Called at most once, never after a successful Commit(), possibly while a failed Append()
  // or Commit() left any state. Problems are logged, not returned.
  virtual void Abort(const Context& cleanup) = 0;
};

// The ObjectWriter around `upload`. `name` names the object in messages ("S3 object \"k\"").
// `writer_ctx` is the context given to Store::NewWriter(): once it is done, Append() and
// Commit() fail as if their own context were.
std::unique_ptr<ObjectWriter> NewObjectWriter(std::string name, const Context& writer_ctx,
                                              std::unique_ptr<Upload> upload);

}  // namespace bao::storage
