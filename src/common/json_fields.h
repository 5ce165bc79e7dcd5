// Reading optional fields of a JSON object (a resource spec, a YAML config converted to JSON)
// with errors that name the field's path. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"

namespace bao {

// Each leaves `*out` unchanged when `j` has no field `name` (or it is null); copies it when it
// has the right type; otherwise kInvalidArgument "<path>.<name>: must be <a string | true or
// false | a whole number>". `j` must be an object.
Status GetString(const nlohmann::json& j, const char* name, const std::string& path,
                 std::string* out);
Status GetBool(const nlohmann::json& j, const char* name, const std::string& path, bool* out);
Status GetInt(const nlohmann::json& j, const char* name, const std::string& path, int64_t* out);

}  // namespace bao
