// JSON merge patch (k8s/merge_patch.h). Input: two JSON documents, "original" and "modified",
// separated by a NUL byte.
//
// Properties (RFC 7386 and the header's contract): with the null members taken out of
// "modified", applying CreateMergePatch(original, modified) to original gives modified;
// the patch between equal objects is empty, and applying an empty patch changes nothing.
#include "k8s/merge_patch.h"

#include <cstdint>
#include <string_view>

#include "check.h"

namespace {

// Removes null object members at every depth (merge patch cannot express them).
void DropNullMembers(nlohmann::json* j) {
  if (j->is_object()) {
    for (auto it = j->begin(); it != j->end();) {
      if (it->is_null()) {
        it = j->erase(it);
      } else {
        DropNullMembers(&*it);
        ++it;
      }
    }
  } else if (j->is_array()) {
    for (nlohmann::json& e : *j) DropNullMembers(&e);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  size_t nul = text.find('\0');
  if (nul == std::string_view::npos) return 0;
  nlohmann::json original = nlohmann::json::parse(text.substr(0, nul), nullptr, false);
  nlohmann::json modified = nlohmann::json::parse(text.substr(nul + 1), nullptr, false);
  if (original.is_discarded() || modified.is_discarded()) return 0;
  DropNullMembers(&modified);

  nlohmann::json patch = bao::k8s::CreateMergePatch(original, modified);
  FUZZ_CHECK(bao::k8s::ApplyMergePatch(original, patch) == modified);
  if (original.is_object()) {
    nlohmann::json none = bao::k8s::CreateMergePatch(original, original);
    FUZZ_CHECK(none.is_object() && none.empty());
    FUZZ_CHECK(bao::k8s::ApplyMergePatch(original, none) == original);
  }
  // Applying the raw second document as a patch must not crash either.
  nlohmann::json raw = nlohmann::json::parse(text.substr(nul + 1), nullptr, false);
  (void)bao::k8s::ApplyMergePatch(original, raw);
  return 0;
}
