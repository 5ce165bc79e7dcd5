// The standalone scheduler's YAML configuration (common/yaml_json.h YamlToJson, then
// schedule/config.h ParseSchedulerConfig). Input: the YAML file.
//
// Properties: errors are kInvalidArgument; the JSON made from YAML can be written out again
// (the scheduler writes names from it into its state file and logs); an accepted configuration
// has valid targets and schedules, and times the scheduler can add to a clock reading.
#include "schedule/config.h"

#include <cstdint>
#include <exception>
#include <string_view>

#include "check.h"
#include "common/yaml_json.h"
#include "storage/target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  bao::Result<nlohmann::json> j = bao::YamlToJson(text);
  if (!j.ok()) {
    FUZZ_CHECK(j.status().code() == bao::Code::kInvalidArgument);
    return 0;
  }
  bool dumped = true;
  try {
    (void)j->dump();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dump: %s\n", e.what());
    dumped = false;
  }
  FUZZ_CHECK(dumped);

  bao::Result<bao::schedule::SchedulerConfig> cfg =
      bao::schedule::ParseSchedulerConfig(*j, "fuzz.yaml");
  if (!cfg.ok()) {
    FUZZ_CHECK(cfg.status().code() == bao::Code::kInvalidArgument);
    return 0;
  }
  FUZZ_CHECK(!cfg->clusters.empty());
  // Compared in seconds: converting a huge count to milliseconds would overflow right here.
  const int64_t max_seconds = bao::kMaxDuration.count() / 1000;
  FUZZ_CHECK(cfg->starting_deadline.count() >= 0 && cfg->starting_deadline.count() <= max_seconds);
  FUZZ_CHECK(cfg->shutdown_grace.count() >= 0 && cfg->shutdown_grace.count() <= max_seconds);
  for (const bao::schedule::ClusterConfig& c : cfg->clusters) {
    FUZZ_CHECK(!c.name.empty() && !c.ns.empty());
    FUZZ_CHECK(!c.connection.addresses.empty());
    FUZZ_CHECK(bao::storage::ValidateTarget(c.backup.target, "target").ok());
    bao::Result<bao::CronSchedule> again = bao::CronSchedule::Parse(c.schedule.ToString());
    FUZZ_CHECK(again.ok() && again->ToString() == c.schedule.ToString());
  }
  return 0;
}
