// SPDX-License-Identifier: Apache-2.0
// Sizes, rates and durations as an operator types and reads them, for
// `vmtide predict` and `vmtide explain`. Pure.
#pragma once

#include <string>
#include <string_view>

#include "vmtide/result.h"

namespace vmtide::cli {

// Bytes from "4096", "512M", "1.5Gi", "64 KiB": decimal K M G T (10^3...,
// any case), binary Ki Mi Gi Ti (2^10...), an optional B. kInvalidArgument
// for anything else, negative, or not finite.
[[nodiscard]] Result<double> parse_size(std::string_view text);

// Bytes per second: a size with an optional "/s" ("20M/s", "20M").
[[nodiscard]] Result<double> parse_rate(std::string_view text);

// Binary units with three significant digits: "512 B", "4.00 KiB", "2.10 GiB".
[[nodiscard]] std::string format_bytes(double bytes);
// "30.5 MiB/s".
[[nodiscard]] std::string format_rate(double bytes_per_s);
// Link speeds in bits: "1.25 Gbit/s".
[[nodiscard]] std::string format_bits_per_s(double bits_per_s);
// "4.5 ms", "45 ms" below 1 s, "12.3 s" below 10 min, "42.0 min" beyond.
[[nodiscard]] std::string format_duration_ms(double ms);

}  // namespace vmtide::cli
