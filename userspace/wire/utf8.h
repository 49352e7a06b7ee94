// SPDX-License-Identifier: Apache-2.0
// UTF-8 validation shared by the JSON renderer (which replaces bad bytes)
// and the JSON parser (which rejects them), so both agree on what is valid.
#pragma once

#include <cstddef>
#include <string_view>

namespace vmtide::wire::utf8 {

// Length of the valid UTF-8 sequence starting at s[i] (i < s.size()) when
// s[i] >= 0x80, or 0 if the bytes there are not one (RFC 3629: no overlongs,
// surrogates or code points past U+10FFFF).
inline std::size_t sequence_length(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  std::size_t len = 0;
  unsigned char lo = 0x80;  // allowed range of the second byte
  unsigned char hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // UTF-16 surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // past U+10FFFF
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < len; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return len;
}

}  // namespace vmtide::wire::utf8
