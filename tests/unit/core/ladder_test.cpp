#include "core/ladder.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace framepress {
namespace {

SourceInfo source(int width, int height, int rotation = 0, double sar = 1.0) {
  SourceInfo s;
  s.width = width;
  s.height = height;
  s.rotation = rotation;
  s.sample_aspect = sar;
  s.duration = 10;
  return s;
}

std::vector<std::string> names(const std::vector<RenditionSpec>& plan) {
  std::vector<std::string> out;
  for (const auto& r : plan) out.push_back(r.name);
  return out;
}

std::string reason_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.reason();
  }
  return "no error";
}

}  // namespace

TEST(Ladder, Landscape1080pGetsEveryRungUpToTheDefaultCap) {
  LadderPolicy policy;
  auto plan = plan_ladder(source(1920, 1080), policy);
  EXPECT_EQ(names(plan), (std::vector<std::string>{"144p", "240p", "360p", "480p", "720p", "1080p"}));
  EXPECT_EQ(plan[4].width, 1280);
  EXPECT_EQ(plan[4].height, 720);
  EXPECT_EQ(plan[0].width, 256);
  EXPECT_EQ(plan[0].height, 144);
  EXPECT_EQ(plan[0].worker_class, "sd");
  EXPECT_EQ(plan[4].worker_class, "hd");
}

TEST(Ladder, CapAndSourceBothLimit) {
  LadderPolicy policy;
  policy.max_resolution = 2160;
  EXPECT_EQ(names(plan_ladder(source(3840, 2160), policy)).back(), "2160p");
  EXPECT_EQ(plan_ladder(source(3840, 2160), policy).back().worker_class, "uhd");
  policy.max_resolution = 480;
  EXPECT_EQ(names(plan_ladder(source(3840, 2160), policy)).back(), "480p");
  policy.max_resolution = 2160;
  EXPECT_EQ(names(plan_ladder(source(1280, 720), policy)).back(), "720p");
}

TEST(Ladder, PortraitKeepsAspectWithTheShortSideAsTheName) {
  auto plan = plan_ladder(source(720, 1280), LadderPolicy{});
  ASSERT_EQ(names(plan).back(), "720p");
  EXPECT_EQ(plan.back().width, 720);
  EXPECT_EQ(plan.back().height, 1280);
  EXPECT_EQ(plan.front().width, 144);
  EXPECT_EQ(plan.front().height, 256);
}

TEST(Ladder, RotatedSourceIsPlannedUpright) {
  // A phone's landscape-coded frame with a 90° display matrix shows as portrait.
  auto plan = plan_ladder(source(1920, 1080, 90), LadderPolicy{});
  EXPECT_EQ(plan.back().name, "1080p");
  EXPECT_EQ(plan.back().width, 1080);
  EXPECT_EQ(plan.back().height, 1920);
  auto upside_down = plan_ladder(source(1920, 1080, 180), LadderPolicy{});
  EXPECT_EQ(upside_down.back().width, 1920);
}

TEST(Ladder, OddSizesComeOutEven) {
  auto plan = plan_ladder(source(853, 481), LadderPolicy{});
  for (const auto& r : plan) {
    EXPECT_EQ(r.width % 2, 0) << r.name;
    EXPECT_EQ(r.height % 2, 0) << r.name;
  }
  EXPECT_EQ(names(plan).back(), "480p");
  EXPECT_EQ(plan.back().width, 852);  // 853 × 480/481 = 851.2 → nearest even
}

TEST(Ladder, NonSquarePixelsAreStretchedToTheDisplayAspect) {
  // DVD-style 720x480 with 32:27 pixels displays as 853x480.
  auto plan = plan_ladder(source(720, 480, 0, 32.0 / 27.0), LadderPolicy{});
  EXPECT_EQ(plan.back().name, "480p");
  EXPECT_EQ(plan.back().width, 854);
}

TEST(Ladder, TinySourceGetsOneRenditionAtItsOwnSize) {
  auto plan = plan_ladder(source(160, 90), LadderPolicy{});
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].name, "90p");
  EXPECT_EQ(plan[0].height, 90);
  EXPECT_EQ(plan[0].width, 160);
  auto odd = plan_ladder(source(33, 17), LadderPolicy{});
  ASSERT_EQ(odd.size(), 1u);
  EXPECT_EQ(odd[0].height % 2, 0);
  EXPECT_GE(odd[0].height, 2);
}

TEST(Ladder, RequestedRenditionsAreCheckedAgainstTheRungsTheCapAndTheSource) {
  LadderPolicy policy;
  auto plan = plan_ladder(source(1920, 1080), policy, {"720p", "240p", "720p"});
  EXPECT_EQ(names(plan), (std::vector<std::string>{"240p", "720p"}));
  EXPECT_EQ(reason_of([&] { plan_ladder(source(1920, 1080), policy, {"700p"}); }), "unknown_rendition");
  EXPECT_EQ(reason_of([&] { plan_ladder(source(1920, 1080), policy, {"abc"}); }), "unknown_rendition");
  EXPECT_EQ(reason_of([&] { plan_ladder(source(3840, 2160), policy, {"1440p"}); }), "above_cap");
  EXPECT_EQ(reason_of([&] { plan_ladder(source(640, 360), policy, {"480p"}); }), "above_source");
}

TEST(Ladder, NoPictureSizeIsRefused) {
  EXPECT_EQ(reason_of([] { plan_ladder(source(0, 0), LadderPolicy{}); }), "no_dimensions");
}

TEST(Ladder, RenditionNames) {
  EXPECT_EQ(parse_rendition_name("720p"), 720);
  EXPECT_EQ(parse_rendition_name("1080P"), 1080);
  EXPECT_EQ(parse_rendition_name("p"), 0);
  EXPECT_EQ(parse_rendition_name("72x0p"), 0);
  EXPECT_EQ(parse_rendition_name("-5p"), 0);
  EXPECT_EQ(parse_rendition_name("720"), 0);
}

}  // namespace framepress
