// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for include/vmtide/toml_config.h, the strict TOML layer
// under every config file: arbitrary text must parse or fail with a
// "source:line: " message, never throw or crash, and every typed read
// (strings, numbers, booleans, integers, seconds, string arrays) of every
// key must give a value or a type error naming the key.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "vmtide/toml_config.h"

namespace {

using namespace vmtide;

void require(bool ok, const char* invariant) {
  if (!ok) {
    std::fprintf(stderr, "toml_config invariant violated: %s\n", invariant);
    std::abort();
  }
}

const std::string kSource = "fuzz.toml";

bool names_source(const Error& e) { return e.context.rfind(kSource + ":", 0) == 0; }

// Every typed read of `n`: a value or an error naming the file and key.
void read_all(const toml::node& n, const std::string& key) {
  std::string s;
  double d = 0;
  bool b = false;
  int i = 0;
  std::chrono::nanoseconds ns{-1};
  std::vector<std::string> v;
  const Status reads[] = {tomlcfg::get(kSource, n, key, &s), tomlcfg::get(kSource, n, key, &d),
                          tomlcfg::get(kSource, n, key, &b), tomlcfg::get(kSource, n, key, &i),
                          tomlcfg::get(kSource, n, key, &ns), tomlcfg::get(kSource, n, key, &v)};
  for (const Status& st : reads) {
    if (!st) {
      require(names_source(st.error()), "a type error does not start with source:line:");
      require(st.error().context.find("'" + key + "'") != std::string::npos, "a type error does not name the key");
    }
  }
  if (reads[4]) {
    require(ns.count() >= 0 && ns.count() <= 10'000'000'000'000'000LL, "a duration outside [0, 1e7] s was accepted");
  }
}

void walk_all(const toml::table& t, int depth) {
  if (depth > 8) return;
  for (const auto& [k, node] : t) {
    read_all(node, std::string(k.str()));
    if (const toml::table* sub = node.as_table()) walk_all(*sub, depth + 1);
    if (const toml::array* a = node.as_array()) {
      for (const auto& e : *a) {
        if (const toml::table* et = e.as_table()) walk_all(*et, depth + 1);
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto root = tomlcfg::parse(text, kSource);
  if (!root) {
    require(root.error().code == Errc::kInvalidArgument, "a syntax error is not kInvalidArgument");
    require(names_source(root.error()), "a syntax error does not start with source:line:");
    return 0;
  }
  const Status sections = tomlcfg::check_sections(*root, kSource, {"agent", "publish", "controller"});
  if (!sections) require(names_source(sections.error()), "an unknown section error does not name the source");
  for (const char* section : {"agent", "publish", "controller", "x"}) {
    const Status st = tomlcfg::walk(*root, kSource, section, {"a", "b", "interval"},
                                    [](const std::string& key, const toml::node& n) {
                                      read_all(n, key);
                                      return Status{};
                                    });
    if (!st) require(names_source(st.error()), "a walk error does not name the source");
  }
  walk_all(*root, 0);
  return 0;
}
