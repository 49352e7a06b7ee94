// SPDX-License-Identifier: Apache-2.0
// Normalised Shannon entropy of host loads (entropy.h).
#include "entropy.h"

#include <cmath>
#include <string>

namespace vmtide::strategy {

Result<double> normalized_entropy(std::span<const double> loads) {
  double total = 0.0;
  for (std::size_t i = 0; i < loads.size(); ++i) {
    if (!std::isfinite(loads[i]) || loads[i] < 0.0) {
      return make_error(Errc::kInvalidArgument,
                        "entropy: load of host " + std::to_string(i) + " is " + std::to_string(loads[i]));
    }
    total += loads[i];
  }
  if (loads.size() <= 1 || total <= 0.0) return 1.0;
  double h = 0.0;
  for (double l : loads) {
    if (l > 0.0) {
      const double p = l / total;
      h -= p * std::log(p);
    }
  }
  const double e = h / std::log(static_cast<double>(loads.size()));
  // Rounding can push a perfectly even cluster a hair past 1.
  return std::fmin(1.0, std::fmax(0.0, e));
}

}  // namespace vmtide::strategy
