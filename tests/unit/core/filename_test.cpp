#include "core/filename.h"

#include <gtest/gtest.h>

namespace framepress {

TEST(Filename, KeepsOnlyTheLastComponent) {
  EXPECT_EQ(sanitize_filename("../../etc/passwd"), "passwd");
  EXPECT_EQ(sanitize_filename("C:\\Users\\me\\clip.mp4"), "clip.mp4");
  EXPECT_EQ(sanitize_filename("dir/"), "video");
}

TEST(Filename, DropsControlCharactersNulAndLeadingDots) {
  EXPECT_EQ(sanitize_filename(std::string("a\0b\r\n\tc.mp4", 11)), "abc.mp4");
  EXPECT_EQ(sanitize_filename("..hidden.mp4"), "hidden.mp4");
  EXPECT_EQ(sanitize_filename("...."), "video");
  EXPECT_EQ(sanitize_filename(""), "video");
  EXPECT_EQ(sanitize_filename("say \"hi\".mp4"), "say 'hi'.mp4");
}

TEST(Filename, RepairsInvalidUtf8AndKeepsValidUtf8) {
  EXPECT_EQ(sanitize_filename("f\xC3\xA9te.mp4"), "f\xC3\xA9te.mp4");
  EXPECT_EQ(sanitize_filename("bad\xFF\xFEname.mp4"), "bad\xEF\xBF\xBD\xEF\xBF\xBDname.mp4");
  EXPECT_EQ(sanitize_filename("\xC0\xAF.mp4"), "\xEF\xBF\xBD\xEF\xBF\xBD.mp4");  // overlong '/'
}

TEST(Filename, LimitsLengthOnCharacterBoundaries) {
  std::string long_name;
  for (int i = 0; i < 300; ++i) long_name += "\xC3\xA9";
  auto cut = sanitize_filename(long_name);
  EXPECT_LE(cut.size(), 180u);
  EXPECT_EQ(cut.size() % 2, 0u);
}

TEST(Filename, StemAndExtension) {
  EXPECT_EQ(filename_stem("holiday.final.mp4"), "holiday.final");
  EXPECT_EQ(filename_extension("clip.MOV"), ".MOV");
  EXPECT_EQ(filename_stem(".profile"), ".profile");
  EXPECT_EQ(filename_extension("noext"), "");
}

}  // namespace framepress
