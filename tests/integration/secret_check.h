// The secret values a test hands to bao-backup (tokens, JWTs, keys, passwords), and the one
// check that none of them reaches a place it must never reach: stdout, stderr, a result file,
// object metadata, a state file, a Kubernetes object, the operator's log. A leak is reported
// with the secret's name, the form it leaked in, where, and the text around it.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "crypto/crypto.h"

namespace bao::testing {

// Every secret value the secrets tests choose carries this marker, so that a piece of one (a
// prefix, a value cut short, one embedded in a longer string) is found as well.
constexpr const char* kSecretMarker = "S3CR3T";

class SecretList {
 public:
  // Looks for `value` (named `name` in reports) as it is, JSON-escaped, percent-encoded, and
  // base64-encoded (how a Kubernetes Secret's data holds it). Values under 8 characters would
  // match ordinary text and are refused.
  void Add(const std::string& name, const std::string& value) {
    EXPECT_GE(value.size(), 8u) << name << ": too short to look for";
    if (value.size() < 8) return;
    AddForm(name, "as is", value);
    std::string json = nlohmann::json(value).dump();
    AddForm(name, "JSON-escaped", json.substr(1, json.size() - 2));
    AddForm(name, "percent-encoded", PercentEncode(value));
    AddForm(name, "base64", crypto::Base64Encode(value));
  }

  // Looks for matches of `regex`: secrets a peer issues that the test never sees (the token
  // OpenBao returns for a JWT login).
  void AddPattern(const std::string& name, const std::string& regex) {
    patterns_.emplace_back(name, std::regex(regex));
  }

  size_t size() const { return forms_.size() + patterns_.size(); }

  // Success when `text` holds no form of any secret, no match of any pattern, and not the
  // marker; otherwise a failure naming each leak and where it was found.
  ::testing::AssertionResult NoneIn(const std::string& where, std::string_view text) const {
    std::string report;
    for (const Form& f : forms_) {
      size_t at = text.find(f.value);
      if (at == std::string_view::npos) continue;
      report += "  secret \"" + f.name + "\" (" + f.form + ") leaked in " + where + ": " +
                Context(text, at, f.value.size()) + "\n";
    }
    const std::string copy(text);
    for (const auto& [name, re] : patterns_) {
      std::smatch m;
      if (!std::regex_search(copy, m, re)) continue;
      report +=
          "  secret \"" + name + "\" (pattern) leaked in " + where + ": " +
          Context(text, static_cast<size_t>(m.position(0)), static_cast<size_t>(m.length(0))) +
          "\n";
    }
    if (size_t at = text.find(kSecretMarker); at != std::string_view::npos && report.empty()) {
      report += "  part of a secret (the marker " + std::string(kSecretMarker) + ") leaked in " +
                where + ": " + Context(text, at, 6) + "\n";
    }
    if (report.empty()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "\n" << report;
  }

 private:
  struct Form {
    std::string name, form, value;
  };

  void AddForm(const std::string& name, const std::string& form, const std::string& value) {
    for (const Form& f : forms_) {
      if (f.value == value) return;
    }
    forms_.push_back({name, form, value});
  }

  static std::string PercentEncode(std::string_view s) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
      if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
        out.push_back(static_cast<char>(c));
      } else {
        out += {'%', hex[c >> 4], hex[c & 15]};
      }
    }
    return out;
  }

  // The leak and up to 40 characters on either side, control characters shown as '.'.
  static std::string Context(std::string_view text, size_t at, size_t n) {
    size_t from = at > 40 ? at - 40 : 0;
    size_t to = std::min(text.size(), at + n + 40);
    std::string out = "..." + std::string(text.substr(from, at - from)) + ">>>" +
                      std::string(text.substr(at, n)) + "<<<" +
                      std::string(text.substr(at + n, to - at - n)) + "...";
    for (char& c : out) {
      if (static_cast<unsigned char>(c) < ' ') c = '.';
    }
    return out;
  }

  std::vector<Form> forms_;
  std::vector<std::pair<std::string, std::regex>> patterns_;
};

}  // namespace bao::testing
