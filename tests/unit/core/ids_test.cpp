#include "core/ids.h"

#include <set>

#include <gtest/gtest.h>

namespace framepress {

TEST(VideoId, GeneratedIdsAreUniqueParseableAndSortByTime) {
  std::set<std::string> seen;
  VideoId previous = VideoId::generate();
  for (int i = 0; i < 1000; ++i) {
    VideoId id = VideoId::generate();
    ASSERT_EQ(id.str().size(), 26u);
    ASSERT_TRUE(VideoId::parse(id.str()).has_value());
    ASSERT_TRUE(seen.insert(id.str()).second);
    ASSERT_GE(id.str().substr(0, 10), previous.str().substr(0, 10));  // the time part never goes back
    previous = id;
  }
}

TEST(VideoId, ParseRejectsWhatIsNotAUlid) {
  EXPECT_FALSE(VideoId::parse("").has_value());
  EXPECT_FALSE(VideoId::parse("../../etc/passwd").has_value());
  EXPECT_FALSE(VideoId::parse("01ARZ3NDEKTSV4RRFFQ69G5FA").has_value());    // 25 characters
  EXPECT_FALSE(VideoId::parse("01ARZ3NDEKTSV4RRFFQ69G5FAVU").has_value());  // 27
  EXPECT_FALSE(VideoId::parse("01ARZ3NDEKTSV4RRFFQ69G5FU!").has_value());
  EXPECT_FALSE(VideoId::parse("81ARZ3NDEKTSV4RRFFQ69G5FAV").has_value());   // overflows 128 bits
  auto lower = VideoId::parse("01arz3ndektsv4rrffq69g5fav");
  ASSERT_TRUE(lower.has_value());
  EXPECT_EQ(lower->str(), "01ARZ3NDEKTSV4RRFFQ69G5FAV");
}

TEST(ObjectKey, KeysComeFromTheIdOnly) {
  auto id = *VideoId::parse("01ARZ3NDEKTSV4RRFFQ69G5FAV");
  EXPECT_EQ(ObjectKey::source_of(id).str(), "videos/01ARZ3NDEKTSV4RRFFQ69G5FAV/source");
  EXPECT_EQ(ObjectKey::rendition_of(id, "720p").str(), "videos/01ARZ3NDEKTSV4RRFFQ69G5FAV/renditions/720p.mp4");
}

}  // namespace framepress
