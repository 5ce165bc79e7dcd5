#include "common/yaml_json.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <climits>

#include "common/files.h"
#include "common/numbers.h"

namespace bao {
namespace {

// YAML 1.2 core schema: [-+]?[0-9]+
bool IsInteger(const std::string& s) {
  size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  return true;
}

// YAML 1.2 core schema: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool IsFloat(const std::string& s) {
  size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  size_t digits = 0, dots = 0;
  for (; i < s.size() && s[i] != 'e' && s[i] != 'E'; ++i) {
    if (s[i] == '.') ++dots;
    else if (s[i] >= '0' && s[i] <= '9') ++digits;
    else return false;
  }
  if (digits == 0 || dots > 1) return false;
  if (i == s.size()) return true;
  ++i;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  return true;
}

nlohmann::json ScalarToJson(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  if (node.Tag() == "!") return s;  // quoted
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (IsInteger(s)) {
    // from_chars takes no '+'; an integer out of range stays text (and fails typed parsing).
    std::string_view digits = s[0] == '+' ? std::string_view(s).substr(1) : std::string_view(s);
    std::optional<long long> v = ParseInteger<long long>(digits, LLONG_MIN, LLONG_MAX);
    if (v.has_value()) return *v;
    return s;
  }
  if (IsFloat(s)) {
    std::string_view text = s[0] == '+' ? std::string_view(s).substr(1) : std::string_view(s);
    double v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec == std::errc() && end == text.data() + text.size()) return v;
  }
  return s;
}

// Bounds on what a document may make: an alias inside the node it names is a cycle, and
// aliases of aliases multiply a small document (each alias is expanded where it is used).
constexpr int kMaxDepth = 200;
constexpr size_t kMaxNodes = 100000;

// Converts `node` into `out`; false when it nests deeper than kMaxDepth or the document grows
// beyond kMaxNodes nodes (`*nodes` counts them).
bool NodeToJson(const YAML::Node& node, int depth, size_t* nodes, nlohmann::json* out) {
  if (depth > kMaxDepth || ++*nodes > kMaxNodes) return false;
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: *out = nullptr; return true;
    case YAML::NodeType::Scalar: *out = ScalarToJson(node); return true;
    case YAML::NodeType::Sequence: {
      *out = nlohmann::json::array();
      for (const auto& item : node) {
        nlohmann::json j;
        if (!NodeToJson(item, depth + 1, nodes, &j)) return false;
        out->push_back(std::move(j));
      }
      return true;
    }
    case YAML::NodeType::Map: {
      *out = nlohmann::json::object();
      for (const auto& kv : node) {
        nlohmann::json j;
        if (!NodeToJson(kv.second, depth + 1, nodes, &j)) return false;
        (*out)[kv.first.as<std::string>()] = std::move(j);
      }
      return true;
    }
  }
  *out = nullptr;
  return true;
}

}  // namespace

Result<nlohmann::json> YamlToJson(std::string_view text) {
  try {
    YAML::Node root = YAML::Load(std::string(text));
    nlohmann::json j;
    size_t nodes = 0;
    if (!NodeToJson(root, 0, &nodes, &j)) {
      return InvalidArgument("the YAML document nests deeper than " + std::to_string(kMaxDepth) +
                             " levels or expands to more than " + std::to_string(kMaxNodes) +
                             " values (is an alias used inside the node it names?)");
    }
    // yaml-cpp passes bytes that are not UTF-8 through (and makes some of a stream it takes
    // for UTF-16 or UTF-32); nlohmann::json throws when such a string is written out later
    // (the scheduler's state file, command output). Refuse them here, where it is an error.
    (void)j.dump();
    return j;
  } catch (const YAML::Exception& e) {
    return InvalidArgument("YAML syntax error at line " + std::to_string(e.mark.line + 1) +
                           ", column " + std::to_string(e.mark.column + 1) + ": " + e.msg);
  } catch (const nlohmann::json::type_error&) {
    return InvalidArgument("the YAML document is not valid UTF-8 text");
  }
}

Result<nlohmann::json> ReadYamlFile(const std::string& path) {
  Result<std::string> text = ReadFile(path, 4 << 20);
  if (!text.ok()) return InvalidArgument("cannot read config file: " + text.status().message());
  Result<nlohmann::json> j = YamlToJson(*text);
  if (!j.ok()) return j.status().WithContext(path);
  return j;
}

}  // namespace bao
