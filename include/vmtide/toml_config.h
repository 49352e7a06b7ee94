// SPDX-License-Identifier: Apache-2.0
// Strict TOML reading shared by the agent's and the controller's config
// files: every error names the file and line, unknown keys and sections are
// errors (a typo never falls back to a default silently), and toml++'s
// exceptions stop here. Include only where toml++ is linked.
#pragma once

#include <chrono>
#include <cmath>
#include <limits>
#include <cstdint>
#include <fstream>
#include <functional>
#include <sstream>
#include <set>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "vmtide/result.h"

namespace vmtide::tomlcfg {

inline std::string where(const std::string& source, const toml::node& n) {
  const auto& b = n.source().begin;
  return source + ":" + std::to_string(b.line) + ": ";
}

inline std::string join(const std::set<std::string>& names) {
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  return list;
}

// Parses TOML text; a syntax error becomes kInvalidArgument "source:line: ...".
inline Result<toml::table> parse(std::string_view text, const std::string& source) {
  try {
    return toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return make_error(Errc::kInvalidArgument,
                      source + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
  }
}

// The whole text of a configuration file; kNotFound ("cannot read PATH")
// when it cannot be opened.
inline Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error(Errc::kNotFound, "cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Rejects top-level keys of `root` that are not in `known`.
inline Status check_sections(const toml::table& root, const std::string& source, const std::set<std::string>& known) {
  for (const auto& [k, v] : root) {
    if (known.count(std::string(k.str())) == 0) {
      return make_error(Errc::kInvalidArgument, where(source, v) + "unknown section [" + std::string(k.str()) +
                                                    "] (known: " + join(known) + ")");
    }
  }
  return {};
}

// Calls `set(key, node)` for each key of table `tbl` (named `section` in
// errors), rejecting keys not in `known`.
inline Status walk_table(const toml::table& tbl, const std::string& source, const std::string& section,
                         const std::set<std::string>& known,
                         const std::function<Status(const std::string&, const toml::node&)>& set) {
  for (const auto& [k, v] : tbl) {
    const std::string key(k.str());
    if (known.count(key) == 0) {
      return make_error(Errc::kInvalidArgument, where(source, v) + "unknown key '" + key + "' in [" + section +
                                                    "] (known: " + join(known) + ")");
    }
    if (Status st = set(key, v); !st) return st;
  }
  return {};
}

// walk_table() on root[section]; a missing section is fine.
inline Status walk(const toml::table& root, const std::string& source, const std::string& section,
                   const std::set<std::string>& known,
                   const std::function<Status(const std::string&, const toml::node&)>& set) {
  const toml::node* t = root.get(section);
  if (t == nullptr) return {};
  const toml::table* tbl = t->as_table();
  if (tbl == nullptr) return make_error(Errc::kInvalidArgument, where(source, *t) + "[" + section + "] must be a table");
  return walk_table(*tbl, source, section, known, set);
}

inline Status type_error(const std::string& source, const toml::node& n, const std::string& key, const char* want) {
  return make_error(Errc::kInvalidArgument, where(source, n) + "'" + key + "' must be " + want);
}

inline Status get(const std::string& src, const toml::node& n, const std::string& key, std::string* out) {
  if (auto v = n.value<std::string>(); v && n.is_string()) {
    *out = *v;
    return {};
  }
  return type_error(src, n, key, "a string");
}
inline Status get(const std::string& src, const toml::node& n, const std::string& key, double* out) {
  if (n.is_floating_point() || n.is_integer()) {
    *out = *n.value<double>();
    return {};
  }
  return type_error(src, n, key, "a number");
}
inline Status get(const std::string& src, const toml::node& n, const std::string& key, bool* out) {
  if (n.is_boolean()) {
    *out = *n.value<bool>();
    return {};
  }
  return type_error(src, n, key, "true or false");
}
inline Status get(const std::string& src, const toml::node& n, const std::string& key, int* out) {
  if (n.is_integer()) {
    // Out of an int's range is an error, not a silent truncation
    // (sndhwm = 4294967297 would otherwise become 1).
    const std::int64_t v = *n.value<std::int64_t>();
    if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) {
      return type_error(src, n, key, "an integer that fits in 32 bits");
    }
    *out = static_cast<int>(v);
    return {};
  }
  return type_error(src, n, key, "an integer");
}
// A duration in seconds: a finite number >= 0, at most 1e7 (116 days).
inline Status get(const std::string& src, const toml::node& n, const std::string& key,
                  std::chrono::nanoseconds* out) {
  double v = 0;
  if (Status st = get(src, n, key, &v); !st) return st;
  if (!(v >= 0) || !std::isfinite(v) || v > 1e7) return type_error(src, n, key, "a number of seconds >= 0");
  *out = std::chrono::nanoseconds{std::llround(v * 1e9)};
  return {};
}
inline Status get(const std::string& src, const toml::node& n, const std::string& key, std::vector<std::string>* out) {
  const toml::array* a = n.as_array();
  if (a == nullptr) return type_error(src, n, key, "an array of strings");
  out->clear();
  for (const auto& e : *a) {
    if (!e.is_string()) return type_error(src, e, key, "an array of strings");
    out->push_back(*e.value<std::string>());
  }
  return {};
}

}  // namespace vmtide::tomlcfg
