#include "k8s/selector.h"

#include <cctype>
#include <charconv>

namespace bao::k8s {
namespace {

bool IsAlnum(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

bool ValidName(std::string_view s, bool allow_empty) {
  if (s.empty()) return allow_empty;
  if (s.size() > 63) return false;
  if (!IsAlnum(s.front()) || !IsAlnum(s.back())) return false;
  for (char c : s) {
    if (!IsAlnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

bool ValidKey(std::string_view key) {
  size_t slash = key.find('/');
  if (slash == std::string_view::npos) return ValidName(key, false);
  std::string_view prefix = key.substr(0, slash);
  if (prefix.empty() || prefix.size() > 253) return false;
  for (char c : prefix) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.')) {
      return false;
    }
  }
  return ValidName(key.substr(slash + 1), false);
}

std::string_view TrimView(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool ParseInt(std::string_view s, long long* out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

Status Bad(std::string_view req, std::string_view why) {
  return InvalidArgument("invalid label selector requirement \"" + std::string(req) +
                         "\": " + std::string(why));
}

Result<LabelRequirement> ParseRequirement(std::string_view text) {
  std::string_view req = TrimView(text);
  if (req.empty()) return Bad(text, "empty requirement");
  LabelRequirement r;
  if (req.front() == '!') {
    std::string_view key = TrimView(req.substr(1));
    if (!ValidKey(key)) return Bad(req, "invalid key \"" + std::string(key) + "\"");
    r.key = key;
    r.op = LabelRequirement::Op::kNotExists;
    return r;
  }
  size_t i = 0;
  while (i < req.size() && !std::isspace(static_cast<unsigned char>(req[i])) &&
         std::string_view("=!<>(").find(req[i]) == std::string_view::npos) {
    ++i;
  }
  std::string_view key = req.substr(0, i);
  if (!ValidKey(key)) return Bad(req, "invalid key \"" + std::string(key) + "\"");
  r.key = key;
  std::string_view rest = TrimView(req.substr(i));
  if (rest.empty()) {
    r.op = LabelRequirement::Op::kExists;
    return r;
  }
  auto single = [&](LabelRequirement::Op op, size_t len) -> Result<LabelRequirement> {
    std::string_view value = TrimView(rest.substr(len));
    if (!ValidName(value, true)) return Bad(req, "invalid value \"" + std::string(value) + "\"");
    if (op == LabelRequirement::Op::kGreater || op == LabelRequirement::Op::kLess) {
      long long n;
      if (!ParseInt(value, &n)) return Bad(req, "'>' and '<' need an integer value");
    }
    r.op = op;
    r.values.emplace_back(value);
    return r;
  };
  if (rest.starts_with("==")) return single(LabelRequirement::Op::kEquals, 2);
  if (rest.starts_with("!=")) return single(LabelRequirement::Op::kNotEquals, 2);
  if (rest.starts_with("=")) return single(LabelRequirement::Op::kEquals, 1);
  if (rest.starts_with(">")) return single(LabelRequirement::Op::kGreater, 1);
  if (rest.starts_with("<")) return single(LabelRequirement::Op::kLess, 1);
  size_t word_end = 0;
  while (word_end < rest.size() && std::isalpha(static_cast<unsigned char>(rest[word_end]))) {
    ++word_end;
  }
  std::string_view word = rest.substr(0, word_end);
  if (word == "in") {
    r.op = LabelRequirement::Op::kIn;
  } else if (word == "notin") {
    r.op = LabelRequirement::Op::kNotIn;
  } else {
    return Bad(req, "expected =, ==, !=, in, notin, > or < after the key");
  }
  std::string_view list = TrimView(rest.substr(word_end));
  if (list.size() < 2 || list.front() != '(' || list.back() != ')') {
    return Bad(req, "set values must be in parentheses, e.g. \"env in (a,b)\"");
  }
  list = list.substr(1, list.size() - 2);
  size_t start = 0;
  while (true) {
    size_t comma = list.find(',', start);
    std::string_view value =
        TrimView(list.substr(start, comma == std::string_view::npos ? list.npos : comma - start));
    if (!ValidName(value, true)) return Bad(req, "invalid value \"" + std::string(value) + "\"");
    r.values.emplace_back(value);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (r.values.size() == 1 && r.values[0].empty() && TrimView(list).empty()) {
    return Bad(req, "a set needs at least one value");
  }
  return r;
}

}  // namespace

Result<LabelSelector> LabelSelector::Parse(std::string_view text) {
  LabelSelector sel;
  if (TrimView(text).empty()) return sel;
  size_t start = 0;
  int depth = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size()) {
      if (text[i] == '(') ++depth;
      if (text[i] == ')') --depth;
      if (depth < 0) return InvalidArgument("unbalanced ')' in label selector");
      if (text[i] != ',' || depth > 0) continue;
    }
    if (depth != 0) return InvalidArgument("unbalanced '(' in label selector");
    BAO_ASSIGN_OR_RETURN(LabelRequirement r, ParseRequirement(text.substr(start, i - start)));
    sel.requirements_.push_back(std::move(r));
    start = i + 1;
  }
  return sel;
}

LabelSelector LabelSelector::FromMap(const std::map<std::string, std::string>& labels) {
  LabelSelector sel;
  for (const auto& [k, v] : labels) {
    sel.requirements_.push_back({k, LabelRequirement::Op::kEquals, {v}});
  }
  return sel;
}

bool LabelSelector::Matches(const std::map<std::string, std::string>& labels) const {
  for (const auto& r : requirements_) {
    auto it = labels.find(r.key);
    bool has = it != labels.end();
    auto in_values = [&] {
      for (const auto& v : r.values) {
        if (v == it->second) return true;
      }
      return false;
    };
    switch (r.op) {
      case LabelRequirement::Op::kExists:
        if (!has) return false;
        break;
      case LabelRequirement::Op::kNotExists:
        if (has) return false;
        break;
      case LabelRequirement::Op::kEquals:
      case LabelRequirement::Op::kIn:
        if (!has || !in_values()) return false;
        break;
      case LabelRequirement::Op::kNotEquals:
      case LabelRequirement::Op::kNotIn:
        if (has && in_values()) return false;
        break;
      case LabelRequirement::Op::kGreater:
      case LabelRequirement::Op::kLess: {
        long long have, want;
        if (!has || !ParseInt(it->second, &have) || !ParseInt(r.values[0], &want)) return false;
        if (r.op == LabelRequirement::Op::kGreater ? !(have > want) : !(have < want)) return false;
        break;
      }
    }
  }
  return true;
}

bool LabelSelector::Matches(const nlohmann::json& labels) const {
  std::map<std::string, std::string> m;
  if (labels.is_object()) {
    for (const auto& [k, v] : labels.items()) {
      if (v.is_string()) m[k] = v.get<std::string>();
    }
  }
  return Matches(m);
}

std::string LabelSelector::ToString() const {
  std::string out;
  for (const auto& r : requirements_) {
    if (!out.empty()) out += ",";
    auto joined = [&] {  // a comma between every two values, also around empty ones
      std::string s;
      for (size_t i = 0; i < r.values.size(); ++i) s += (i == 0 ? "" : ",") + r.values[i];
      return s;
    };
    switch (r.op) {
      case LabelRequirement::Op::kExists: out += r.key; break;
      case LabelRequirement::Op::kNotExists: out += "!" + r.key; break;
      case LabelRequirement::Op::kEquals: out += r.key + "=" + r.values[0]; break;
      case LabelRequirement::Op::kNotEquals: out += r.key + "!=" + r.values[0]; break;
      case LabelRequirement::Op::kGreater: out += r.key + ">" + r.values[0]; break;
      case LabelRequirement::Op::kLess: out += r.key + "<" + r.values[0]; break;
      case LabelRequirement::Op::kIn: out += r.key + " in (" + joined() + ")"; break;
      case LabelRequirement::Op::kNotIn: out += r.key + " notin (" + joined() + ")"; break;
    }
  }
  return out;
}

}  // namespace bao::k8s
