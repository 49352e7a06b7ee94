// SPDX-License-Identifier: Apache-2.0
// Result<T> and Error behave as the rest of the code relies on.
#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>

#include "vmtide/result.h"

namespace vmtide {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return make_error(Errc::kInvalidArgument, "value " + std::to_string(v) + " is not positive");
  return v;
}

TEST(Result, ValueAndError) {
  auto ok = parse_positive(3);
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, 3);
  auto bad = parse_positive(-1);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(bad.error().message(), "invalid_argument: value -1 is not positive");
}

TEST(Result, MoveOnlyValue) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r);
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

TEST(Result, VoidStatus) {
  Status ok;
  EXPECT_TRUE(ok);
  Status bad = make_error(Errc::kIo, "reading x");
  EXPECT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "io: reading x");
}

TEST(Result, ErrorNamesAreDistinct) {
  std::set<std::string_view> names;
  for (int c = 0; c <= static_cast<int>(Errc::kBusy); ++c) {
    auto n = errc_name(static_cast<Errc>(c));
    EXPECT_NE(n, "unknown") << c;
    EXPECT_TRUE(names.insert(n).second) << "duplicate name " << n;
  }
}

}  // namespace
}  // namespace vmtide
