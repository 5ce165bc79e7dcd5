// Kubernetes label selectors (k8s/selector.h). Input: the selector's string form.
//
// Properties: an accepted selector prints (ToString) to a selector that parses to the same
// requirements and prints the same; both match the same label sets; the equality selector made
// from labels that the selector's requirements name (FromMap) matches those labels, also after
// a round trip through its string form.
#include "k8s/selector.h"

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "check.h"

using bao::k8s::LabelRequirement;
using bao::k8s::LabelSelector;

namespace {

bool SameRequirements(const LabelSelector& a, const LabelSelector& b) {
  if (a.requirements().size() != b.requirements().size()) return false;
  for (size_t i = 0; i < a.requirements().size(); ++i) {
    const LabelRequirement& x = a.requirements()[i];
    const LabelRequirement& y = b.requirements()[i];
    if (x.key != y.key || x.op != y.op || x.values != y.values) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  bao::Result<LabelSelector> parsed = LabelSelector::Parse(text);
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == bao::Code::kInvalidArgument);
    return 0;
  }
  const LabelSelector& sel = *parsed;
  const std::string printed = sel.ToString();
  bao::Result<LabelSelector> again = LabelSelector::Parse(printed);
  if (!again.ok()) std::fprintf(stderr, "\"%s\" does not parse\n", printed.c_str());
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(SameRequirements(sel, *again));
  FUZZ_CHECK(again->ToString() == printed);
  FUZZ_CHECK(sel.empty() == printed.empty());

  // Label sets built from the requirements: each key with each of its values, and without.
  std::map<std::string, std::string> labels, other;
  for (const LabelRequirement& r : sel.requirements()) {
    labels[r.key] = r.values.empty() ? "" : r.values.front();
    if (r.values.size() > 1) other[r.key] = r.values.back();
  }
  for (const auto* set : {&labels, &other}) {
    FUZZ_CHECK(sel.Matches(*set) == again->Matches(*set));
    nlohmann::json j(*set);
    FUZZ_CHECK(sel.Matches(j) == sel.Matches(*set));
  }
  LabelSelector eq = LabelSelector::FromMap(labels);
  FUZZ_CHECK(eq.Matches(labels));
  bao::Result<LabelSelector> eq_again = LabelSelector::Parse(eq.ToString());
  FUZZ_CHECK(eq_again.ok() && eq_again->Matches(labels) && SameRequirements(eq, *eq_again));
  return 0;
}
