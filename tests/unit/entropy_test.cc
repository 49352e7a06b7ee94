// SPDX-License-Identifier: Apache-2.0
// Table-driven tests of the normalised Shannon entropy of host loads.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "entropy.h"

namespace vmtide::strategy {
namespace {

struct Case {
  const char* name;
  std::vector<double> loads;
  double want;
};

TEST(Entropy, KnownValues) {
  // 3:1 over two hosts: -(0.75 ln 0.75 + 0.25 ln 0.25) / ln 2.
  const double three_to_one = -(0.75 * std::log(0.75) + 0.25 * std::log(0.25)) / std::log(2.0);
  const std::vector<Case> cases = {
      {"even", {0.5, 0.5, 0.5, 0.5}, 1.0},
      {"all on one", {0.0, 0.0, 0.9}, 0.0},
      {"three to one", {0.75, 0.25}, three_to_one},
      {"scale free", {75.0, 25.0}, three_to_one},
      {"single host", {0.7}, 1.0},
      {"idle cluster", {0.0, 0.0}, 1.0},
      {"empty", {}, 1.0},
  };
  for (const auto& c : cases) {
    auto e = normalized_entropy(c.loads);
    ASSERT_TRUE(e) << c.name;
    EXPECT_NEAR(*e, c.want, 1e-12) << c.name;
  }
}

TEST(Entropy, MovingLoadFromHotToColdRaisesIt) {
  std::vector<double> loads = {0.9, 0.1, 0.2};
  double prev = *normalized_entropy(loads);
  for (int i = 0; i < 3; ++i) {
    loads[0] -= 0.1;
    loads[1] += 0.1;
    const double e = *normalized_entropy(loads);
    EXPECT_GT(e, prev);
    prev = e;
  }
}

TEST(Entropy, RejectsNegativeAndNonFinite) {
  EXPECT_EQ(normalized_entropy(std::vector<double>{0.5, -0.1}).error().code, Errc::kInvalidArgument);
  EXPECT_FALSE(normalized_entropy(std::vector<double>{std::numeric_limits<double>::quiet_NaN(), 1.0}));
  EXPECT_FALSE(normalized_entropy(std::vector<double>{std::numeric_limits<double>::infinity(), 1.0}));
}

}  // namespace
}  // namespace vmtide::strategy
