// Kubernetes label selectors in their string form ("a=b,c!=d,e in (x,y),!f,g,h notin (z)"),
// as accepted by the API's labelSelector query parameter, and matching against labels.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace bao::k8s {

struct LabelRequirement {
  enum class Op { kExists, kNotExists, kEquals, kNotEquals, kIn, kNotIn, kGreater, kLess };
  std::string key;
  Op op = Op::kExists;
  std::vector<std::string> values;  // one for =, !=, >, <; one or more for in/notin
};

// An AND of requirements. The empty selector matches everything. Value type, thread-compatible.
class LabelSelector {
 public:
  // Parses the string form. Keys must be qualified names ("[prefix/]name", name up to 63
  // characters of [A-Za-z0-9._-] starting and ending alphanumeric), values up to 63 characters
  // of the same set (or empty); `>`/`<` need an integer. Anything else is kInvalidArgument
  // naming the offending requirement.
  static Result<LabelSelector> Parse(std::string_view text);
  // Equality selector from a map ("k1=v1,k2=v2").
  static LabelSelector FromMap(const std::map<std::string, std::string>& labels);

  bool empty() const { return requirements_.empty(); }
  const std::vector<LabelRequirement>& requirements() const { return requirements_; }

  bool Matches(const std::map<std::string, std::string>& labels) const;
  // `labels` is metadata.labels of an object (an object of strings, or null/absent).
  bool Matches(const nlohmann::json& labels) const;

  // The canonical string form, accepted back by Parse().
  std::string ToString() const;

 private:
  std::vector<LabelRequirement> requirements_;
};

}  // namespace bao::k8s
