#include "base/status.h"

#include <gtest/gtest.h>

namespace loupe {
namespace {

Expected<int> parse_positive(int v) {
  if (v <= 0) return make_error(ErrorCode::kInvalidArgument, "value {} must be positive", v);
  return v;
}

Expected<int> doubled(int v) {
  LOUPE_ASSIGN_OR_RETURN(int x, parse_positive(v));
  return 2 * x;
}

TEST(Status, CarriesCodeAndMessage) {
  Status s = make_error(ErrorCode::kCorrupt, "bad byte at {}", 12);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::kCorrupt);
  EXPECT_EQ(s.message(), "bad byte at 12");
  EXPECT_EQ(s.with_context("f.gguf").message(), "f.gguf: bad byte at 12");
  EXPECT_TRUE(Status().ok());
}

TEST(Expected, PropagatesThroughMacros) {
  auto ok = doubled(4);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(*ok, 8);
  auto bad = doubled(-1);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.status().message(), "value -1 must be positive");
}

}  // namespace
}  // namespace loupe
