// Reading optional fields of a JSON object (a resource spec, a YAML config converted to JSON)
// with errors that name the field's path. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <initializer_list>
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

// kInvalidArgument for the first key of object `j` that is not in `known`:
// "<path>.<key>: unknown field (just "<key>: …" when `path` is empty); did you mean \"<closest>\"?
// (known: a, b, ...)", the guess only when a known name is within a few edits. Ok for an object
// with only known keys (and for anything that is not an object: the type checks report that).
Status CheckKnownFields(const nlohmann::json& j, const std::string& path,
                        std::initializer_list<const char*> known);

}  // namespace bao
