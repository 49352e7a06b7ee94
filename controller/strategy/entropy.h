// SPDX-License-Identifier: Apache-2.0
// The cluster balance metric: normalised Shannon entropy of host loads
// (Forsman, Glad, Lundberg and Ilie, JSS 2015). Pure function, no I/O.
#pragma once

#include <span>

#include "vmtide/result.h"

namespace vmtide::strategy {

// With shares p_h = L_h / sum(L): E = -sum(p_h ln p_h) / ln N, in [0, 1];
// 1 means perfectly even, 0 means all load on one host. Hosts with zero
// load contribute 0 (the limit of p ln p). By convention a cluster of one
// host, or with no load at all, is balanced (1). Loads must be finite and
// non-negative.
[[nodiscard]] Result<double> normalized_entropy(std::span<const double> loads);

}  // namespace vmtide::strategy
