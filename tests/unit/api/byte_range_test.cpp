#include "api/byte_range.h"

#include <gtest/gtest.h>

namespace framepress::api {
namespace {

ByteRange range(std::optional<std::string_view> header, std::uint64_t size) {
  auto r = parse_range(header, size);
  EXPECT_TRUE(std::holds_alternative<ByteRange>(r)) << (header ? *header : "none");
  return std::holds_alternative<ByteRange>(r) ? std::get<ByteRange>(r) : ByteRange{};
}

bool whole(std::optional<std::string_view> header, std::uint64_t size) {
  return std::holds_alternative<WholeObject>(parse_range(header, size));
}

bool unsatisfiable(std::string_view header, std::uint64_t size) {
  return std::holds_alternative<Unsatisfiable>(parse_range(header, size));
}

}  // namespace

TEST(ByteRange, SingleRanges) {
  EXPECT_EQ(range("bytes=0-0", 100).last, 0u);
  EXPECT_EQ(range("bytes=10-19", 100).length(), 10u);
  EXPECT_EQ(range("bytes=90-", 100).first, 90u);
  EXPECT_EQ(range("bytes=90-", 100).last, 99u);
  EXPECT_EQ(range("bytes=90-500", 100).last, 99u);  // clamped to the end
  EXPECT_EQ(range("bytes=-10", 100).first, 90u);
  EXPECT_EQ(range("bytes=-500", 100).first, 0u);
  EXPECT_EQ(range(" bytes= 5 - 6 ", 100).length(), 2u);
}

TEST(ByteRange, WhatIsIgnoredServesTheWholeObject) {
  EXPECT_TRUE(whole(std::nullopt, 100));
  EXPECT_TRUE(whole("items=0-1", 100));
  EXPECT_TRUE(whole("bytes=0-1,5-6", 100));
  EXPECT_TRUE(whole("bytes=abc", 100));
  EXPECT_TRUE(whole("bytes=5-1", 100));
  EXPECT_TRUE(whole("bytes=-", 100));
  EXPECT_TRUE(whole("bytes=99999999999999999999999-", 100));
}

TEST(ByteRange, OutsideTheObjectIsUnsatisfiable) {
  EXPECT_TRUE(unsatisfiable("bytes=100-", 100));
  EXPECT_TRUE(unsatisfiable("bytes=-0", 100));
  EXPECT_TRUE(unsatisfiable("bytes=0-", 0));
}

}  // namespace framepress::api
