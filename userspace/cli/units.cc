// SPDX-License-Identifier: Apache-2.0
// Sizes, rates and durations (units.h).
#include "units.h"

#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <string>
#include <system_error>

namespace vmtide::cli {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Three significant digits: 1.23, 12.3, 123.
std::string three_digits(double v) {
  char buf[32];
  const int decimals = v < 10 ? 2 : v < 100 ? 1 : 0;
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

Error bad_size(std::string_view text, std::string_view why) {
  return make_error(Errc::kInvalidArgument,
                    "\"" + std::string(text) + "\": " + std::string(why) + " (e.g. 4096, 512M, 1.5Gi, 64KiB)");
}

}  // namespace

Result<double> parse_size(std::string_view text) {
  const std::string_view s = trim(text);
  if (s.empty()) return bad_size(text, "empty size");
  // from_chars would take "inf" and "nan"; a size starts with a digit.
  if (!(std::isdigit(static_cast<unsigned char>(s.front())) || s.front() == '.')) {
    return bad_size(text, "not a non-negative number");
  }
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, std::chars_format::fixed);
  if (ec != std::errc() || !std::isfinite(v)) return bad_size(text, "not a number");
  std::string_view unit = trim(std::string_view(end, static_cast<std::size_t>(s.data() + s.size() - end)));
  if (!unit.empty() && unit.back() == 'B') unit.remove_suffix(1);
  double scale = 1;
  if (!unit.empty()) {
    static constexpr std::string_view kLetters = "KMGT";
    const auto letter = kLetters.find(static_cast<char>(std::toupper(static_cast<unsigned char>(unit.front()))));
    if (letter == std::string_view::npos || unit.size() > 2 || (unit.size() == 2 && unit[1] != 'i')) {
      return bad_size(text, "unknown unit \"" + std::string(unit) + "\"");
    }
    scale = std::pow(unit.size() == 2 ? 1024.0 : 1000.0, static_cast<double>(letter + 1));
  }
  v *= scale;
  if (!std::isfinite(v)) return bad_size(text, "too large");
  return v;
}

Result<double> parse_rate(std::string_view text) {
  std::string_view s = trim(text);
  if (s.ends_with("/s")) s.remove_suffix(2);
  return parse_size(s);
}

std::string format_bytes(double bytes) {
  static constexpr std::array<const char*, 6> kUnits = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (!std::isfinite(bytes)) return "?";
  if (bytes < 1024) return std::to_string(static_cast<long long>(std::llround(bytes))) + " B";
  std::size_t u = 0;
  while (bytes >= 1024 && u + 1 < kUnits.size()) {
    bytes /= 1024;
    ++u;
  }
  // 1023.9 would print as "1024 KiB"; say "1.00 MiB" instead.
  if (three_digits(bytes) == "1024" && u + 1 < kUnits.size()) {
    bytes /= 1024;
    ++u;
  }
  return three_digits(bytes) + " " + kUnits[u];
}

std::string format_rate(double bytes_per_s) { return format_bytes(bytes_per_s) + "/s"; }

std::string format_bits_per_s(double bits_per_s) {
  static constexpr std::array<const char*, 5> kUnits = {"bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"};
  if (!std::isfinite(bits_per_s)) return "?";
  std::size_t u = 0;
  while (bits_per_s >= 1000 && u + 1 < kUnits.size()) {
    bits_per_s /= 1000;
    ++u;
  }
  return three_digits(bits_per_s) + " " + kUnits[u];
}

std::string format_duration_ms(double ms) {
  if (!std::isfinite(ms)) return "?";
  char buf[32];
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, ms < 10 ? "%.1f ms" : "%.0f ms", ms);
  } else if (ms < 600'000) {
    std::snprintf(buf, sizeof buf, "%.1f s", ms / 1000);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f min", ms / 60'000);
  }
  return buf;
}

}  // namespace vmtide::cli
