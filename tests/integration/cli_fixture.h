// Shared fixture for tests that run the real bao-backup binary against the OpenBao test
// server and a local-directory store.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "crypto/crypto.h"
#include "support/bao_testserver.h"
#include "support/testing.h"

namespace bao::testing {

class CliTest : public ::testing::Test {
 protected:
  // Runs bao-backup with `args`; BAO_TOKEN etc. from `env`.
  RunResult Cli(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
    args.insert(args.begin(), BuildBinary("bao-backup"));
    env.emplace("BAO_TOKEN", "");
    env.emplace("BAO_ADDR", "");
    return ::bao::testing::Run(args, env, std::chrono::minutes(5));
  }

  // The JSON object on the last stdout line (null when there is none).
  static nlohmann::json LastJson(const RunResult& r) {
    return nlohmann::json::parse(LastLine(r.out), nullptr, false);
  }

  // Every file below `dir`, relative (temporary and checksum files included).
  static std::vector<std::string> Files(const std::string& dir) {
    std::vector<std::string> out;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
         it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_regular_file()) {
        out.push_back(std::filesystem::relative(it->path(), dir).string());
      }
    }
    return out;
  }

  static std::string FileSha256(const std::string& path) {
    crypto::Sha256 h;
    std::ifstream in(path, std::ios::binary);
    std::vector<char> buf(1 << 20);
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      h.Update(std::string_view(buf.data(), static_cast<size_t>(in.gcount())));
    }
    return h.FinishHex();
  }

  static std::string Describe(const RunResult& r) {
    return "exit " + std::to_string(r.exit_code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
  }
};

}  // namespace bao::testing
