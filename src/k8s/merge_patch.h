// JSON merge patch (RFC 7386), as used by the Kubernetes API with the content type
// application/merge-patch+json.
#pragma once

#include <nlohmann/json.hpp>

namespace bao::k8s {

// Applies `patch` to `target` per RFC 7386: objects merge recursively, null removes a member,
// anything else (arrays included) replaces. A non-object patch replaces the whole target.
nlohmann::json ApplyMergePatch(nlohmann::json target, const nlohmann::json& patch);

// The smallest merge patch that turns `original` into `modified`:
// ApplyMergePatch(original, CreateMergePatch(original, modified)) == modified, provided
// `modified` holds no null member values (merge patch cannot express those). Returns an empty
// object when they are equal objects.
nlohmann::json CreateMergePatch(const nlohmann::json& original, const nlohmann::json& modified);

}  // namespace bao::k8s
