// YAML documents as JSON values, so one parser serves YAML files (CLI, scheduler) and the JSON
// the Kubernetes API sends.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace bao {

// Parses one YAML document. Plain scalars become numbers, booleans or null where YAML 1.2's
// core schema says so; quoted scalars stay strings. kInvalidArgument with the line and column
// of a syntax error, and for text that is not UTF-8.
Result<nlohmann::json> YamlToJson(std::string_view text);

// Reads and parses a YAML file; errors name the file.
Result<nlohmann::json> ReadYamlFile(const std::string& path);

}  // namespace bao
