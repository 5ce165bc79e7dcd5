#include "k8s/merge_patch.h"

namespace bao::k8s {

nlohmann::json ApplyMergePatch(nlohmann::json target, const nlohmann::json& patch) {
  if (!patch.is_object()) return patch;
  if (!target.is_object()) target = nlohmann::json::object();
  for (const auto& [key, value] : patch.items()) {
    if (value.is_null()) {
      target.erase(key);
    } else {
      auto it = target.find(key);
      nlohmann::json current = it == target.end() ? nlohmann::json() : std::move(*it);
      target[key] = ApplyMergePatch(std::move(current), value);
    }
  }
  return target;
}

nlohmann::json CreateMergePatch(const nlohmann::json& original, const nlohmann::json& modified) {
  if (!original.is_object() || !modified.is_object()) return modified;
  nlohmann::json patch = nlohmann::json::object();
  for (const auto& [key, value] : original.items()) {
    if (!modified.contains(key)) patch[key] = nullptr;
  }
  for (const auto& [key, value] : modified.items()) {
    auto it = original.find(key);
    if (it == original.end()) {
      patch[key] = value;
    } else if (*it != value) {
      patch[key] = (it->is_object() && value.is_object()) ? CreateMergePatch(*it, value) : value;
    }
  }
  return patch;
}

}  // namespace bao::k8s
