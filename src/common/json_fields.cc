#include "common/json_fields.h"

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

Status GetInt(const json& j, const char* name, const std::string& path, int64_t* out) {
  const json* f = Field(j, name);
  if (!f) return Status::Ok();
  if (!f->is_number_integer()) return WrongType(path, name, "a whole number");
  *out = f->get<int64_t>();
  return Status::Ok();
}

}  // namespace bao
