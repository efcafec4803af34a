#include "media/progress_parser.h"

#include <gtest/gtest.h>

namespace framepress::media {
namespace {

using namespace std::chrono_literals;

// Two blocks as ffmpeg 5.1 writes them with two outputs.
constexpr std::string_view kTwoBlocks =
    "frame=0\nfps=0.00\nstream_0_0_q=0.0\nbitrate=N/A\ntotal_size=48\nout_time_us=N/A\nout_time_ms=N/A\n"
    "out_time=N/A\ndup_frames=0\ndrop_frames=0\nspeed=N/A\nprogress=continue\n"
    "frame=50\nfps=24.91\nstream_0_0_q=-1.0\nstream_1_0_q=-1.0\nbitrate= 338.7kbits/s\ntotal_size=85537\n"
    "out_time_us=2020136\nout_time_ms=2020136\nout_time=00:00:02.020136\ndup_frames=0\ndrop_frames=0\n"
    "speed=21.9x\nprogress=end\n";

TEST(ProgressParser, ParsesBlocksWithUnknownValues) {
  ProgressParser parser;
  auto blocks = parser.feed(kTwoBlocks);
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_FALSE(blocks[0].out_time_us.has_value());
  EXPECT_FALSE(blocks[0].speed.has_value());
  EXPECT_EQ(blocks[0].fps, 0);
  EXPECT_EQ(blocks[0].frame, 0);
  EXPECT_FALSE(blocks[0].end);

  EXPECT_EQ(blocks[1].out_time_us, 2020136);
  EXPECT_DOUBLE_EQ(blocks[1].fps, 24.91);
  EXPECT_DOUBLE_EQ(*blocks[1].speed, 21.9);
  EXPECT_EQ(blocks[1].frame, 50);
  EXPECT_TRUE(blocks[1].end);
}

TEST(ProgressParser, SameResultWhateverTheSplit) {
  ProgressParser whole;
  const auto expected = whole.feed(kTwoBlocks);
  for (std::size_t cut = 0; cut <= kTwoBlocks.size(); ++cut) {
    ProgressParser parser;
    auto blocks = parser.feed(kTwoBlocks.substr(0, cut));
    auto rest = parser.feed(kTwoBlocks.substr(cut));
    blocks.insert(blocks.end(), rest.begin(), rest.end());
    ASSERT_EQ(blocks.size(), expected.size()) << "cut at " << cut;
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      EXPECT_EQ(blocks[i].out_time_us, expected[i].out_time_us) << "cut at " << cut;
      EXPECT_EQ(blocks[i].speed, expected[i].speed) << "cut at " << cut;
      EXPECT_EQ(blocks[i].frame, expected[i].frame) << "cut at " << cut;
      EXPECT_EQ(blocks[i].end, expected[i].end) << "cut at " << cut;
    }
  }
  // Byte by byte.
  ProgressParser parser;
  std::size_t count = 0;
  for (char c : kTwoBlocks) count += parser.feed(std::string_view(&c, 1)).size();
  EXPECT_EQ(count, 2u);
}

TEST(ProgressParser, CarriageReturnsAndGarbageAreHarmless) {
  ProgressParser parser;
  auto blocks = parser.feed(
      "garbage without equals\r\nout_time_us=1500000\r\nspeed= 1.5x\r\nfps=abc\r\nprogress=continue\r\n");
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0].out_time_us, 1500000);
  EXPECT_DOUBLE_EQ(*blocks[0].speed, 1.5);
  EXPECT_EQ(blocks[0].fps, 0);
}

TEST(ProgressParser, FallsBackToOutTimeText) {
  ProgressParser parser;
  auto block = parser.feed_line("out_time=01:02:03.500000");
  EXPECT_FALSE(block);
  block = parser.feed_line("progress=continue");
  ASSERT_TRUE(block);
  EXPECT_EQ(block->out_time_us, (3723LL * 1000000) + 500000);
}

TEST(ProgressParser, EachBlockStartsFresh) {
  ProgressParser parser;
  parser.feed("out_time_us=5000000\nspeed=2x\nprogress=continue\n");
  auto blocks = parser.feed("frame=3\nprogress=continue\n");
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_FALSE(blocks[0].out_time_us);
  EXPECT_FALSE(blocks[0].speed);
}

TEST(ProgressParser, ParsesSpeedsAndClocks) {
  EXPECT_EQ(parse_speed("2.5x"), 2.5);
  EXPECT_EQ(parse_speed(" 0.998x"), 0.998);
  EXPECT_EQ(parse_speed("3"), 3.0);
  EXPECT_FALSE(parse_speed("N/A"));
  EXPECT_FALSE(parse_speed(""));
  EXPECT_FALSE(parse_speed("x"));
  EXPECT_FALSE(parse_speed("inf"));
  EXPECT_EQ(parse_clock_us("00:00:02.020136"), 2020136);
  EXPECT_EQ(parse_clock_us("-00:00:00.023220"), -23220);
  EXPECT_EQ(parse_clock_us("100:00:00.5"), 360000LL * 1000000 + 500000);
  EXPECT_FALSE(parse_clock_us("N/A"));
  EXPECT_FALSE(parse_clock_us("12"));
}

ProgressBlock at(double seconds, std::optional<double> speed = std::nullopt) {
  ProgressBlock b;
  b.out_time_us = static_cast<std::int64_t>(seconds * 1e6);
  b.speed = speed;
  b.fps = 30;
  return b;
}

TEST(ComputeProgress, PercentAndEtaFromSpeed) {
  auto p = compute_progress(at(5, 2.0), 20, 2.5s);
  EXPECT_DOUBLE_EQ(p.percent, 25);
  EXPECT_DOUBLE_EQ(p.speed, 2.0);
  EXPECT_DOUBLE_EQ(p.eta_seconds, 7.5);  // 15 media seconds at 2x
  EXPECT_DOUBLE_EQ(p.fps, 30);
}

TEST(ComputeProgress, CarriesTheFrameCountForTheEncodeMetrics) {
  ProgressBlock b = at(5);
  b.frame = 150;
  EXPECT_EQ(compute_progress(b, 20, 1s).frames, 150);
  b.frame = -3;  // nonsense from a broken line is no negative count
  EXPECT_EQ(compute_progress(b, 20, 1s).frames, 0);
}

TEST(ComputeProgress, EtaFromElapsedWhenSpeedUnknown) {
  auto p = compute_progress(at(5), 20, 10s);
  EXPECT_DOUBLE_EQ(p.percent, 25);
  EXPECT_DOUBLE_EQ(p.eta_seconds, 30);  // a quarter in 10 s: three quarters to go
  EXPECT_DOUBLE_EQ(p.speed, 0.5);       // derived: 5 media seconds in 10 wall seconds
}

TEST(ComputeProgress, UnknownUntilThereIsAPosition) {
  ProgressBlock b;
  auto p = compute_progress(b, 20, 1s);
  EXPECT_EQ(p.percent, 0);
  EXPECT_EQ(p.eta_seconds, -1);
  EXPECT_EQ(p.speed, 0);
  // Nor without a duration.
  p = compute_progress(at(5, 1.0), 0, 1s);
  EXPECT_EQ(p.percent, 0);
  EXPECT_EQ(p.eta_seconds, -1);
}

TEST(ComputeProgress, ClampsAndEnds) {
  EXPECT_DOUBLE_EQ(compute_progress(at(25, 1.0), 20, 1s).percent, 100);
  EXPECT_DOUBLE_EQ(compute_progress(at(25, 1.0), 20, 1s).eta_seconds, 0);
  ProgressBlock negative;
  negative.out_time_us = -23220;
  EXPECT_DOUBLE_EQ(compute_progress(negative, 20, 1s).percent, 0);
  ProgressBlock end = at(19.9, 3.0);
  end.end = true;
  auto p = compute_progress(end, 20, 7s);
  EXPECT_DOUBLE_EQ(p.percent, 100);
  EXPECT_DOUBLE_EQ(p.eta_seconds, 0);
}

}  // namespace
}  // namespace framepress::media
