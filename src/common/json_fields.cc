#include "common/json_fields.h"

#include <algorithm>
#include <vector>

namespace bao {

using nlohmann::json;

namespace {

// The field when it is present and not null, else nullptr.
const json* Field(const json& j, const char* name) {
  auto it = j.find(name);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

Status WrongType(const std::string& path, const char* name, const char* want) {
  return InvalidArgument(path + "." + name + ": must be " + want);
}

}  // namespace

Status GetString(const json& j, const char* name, const std::string& path, std::string* out) {
  const json* f = Field(j, name);
  if (!f) return Status::Ok();
  if (!f->is_string()) return WrongType(path, name, "a string");
  *out = f->get<std::string>();
  return Status::Ok();
}

Status GetBool(const json& j, const char* name, const std::string& path, bool* out) {
  const json* f = Field(j, name);
  if (!f) return Status::Ok();
  if (!f->is_boolean()) return WrongType(path, name, "true or false");
  *out = f->get<bool>();
  return Status::Ok();
}

namespace {

// The edit distance (insertions, deletions, substitutions) between `a` and `b`.
size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

Status CheckKnownFields(const json& j, const std::string& path,
                        std::initializer_list<const char*> known) {
  if (!j.is_object()) return Status::Ok();
  for (const auto& [key, value] : j.items()) {
    if (std::any_of(known.begin(), known.end(),
                    [&name = key](const char* k) { return name == k; })) {
      continue;
    }
    std::string closest, list;
    size_t best = std::max<size_t>(2, key.size() / 3) + 1;
    for (const char* k : known) {
      list += (list.empty() ? "" : ", ") + std::string(k);
      size_t d = EditDistance(key, k);
      if (d < best) best = d, closest = k;
    }
    return InvalidArgument((path.empty() ? "" : path + ".") + key + ": unknown field" +
                           (closest.empty() ? "" : "; did you mean \"" + closest + "\"?") +
                           " (known: " + list + ")");
  }
  return Status::Ok();
}

Status GetInt(const json& j, const char* name, const std::string& path, int64_t* out) {
  const json* f = Field(j, name);
  if (!f) return Status::Ok();
  if (!f->is_number_integer()) return WrongType(path, name, "a whole number");
  *out = f->get<int64_t>();
  return Status::Ok();
}

}  // namespace bao
