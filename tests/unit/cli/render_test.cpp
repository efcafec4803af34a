#include "cli/render.h"

#include <cmath>
#include <limits>
#include <sstream>

#include <gtest/gtest.h>

namespace framepress::cli {
namespace {

using namespace std::chrono_literals;

TEST(Render, HumanBytes) {
  EXPECT_EQ(human_bytes(0), "0 B");
  EXPECT_EQ(human_bytes(1023), "1023 B");
  EXPECT_EQ(human_bytes(1024), "1.0 KiB");
  EXPECT_EQ(human_bytes(1536), "1.5 KiB");
  EXPECT_EQ(human_bytes(100 * 1024), "100 KiB");
  EXPECT_EQ(human_bytes(12'900'000), "12.3 MiB");
  EXPECT_EQ(human_bytes(640ull << 20), "640 MiB");
  EXPECT_EQ(human_bytes(1024ull * 1024 - 1), "1.0 MiB");  // never "1024 KiB"
  EXPECT_EQ(human_bytes(1'288'490'189ull), "1.2 GiB");
  EXPECT_EQ(human_bytes(3ull << 40), "3.0 TiB");
}

TEST(Render, Rates) {
  EXPECT_EQ(human_rate(3.2 * 1024 * 1024), "3.2 MiB/s");
  EXPECT_EQ(human_rate(500), "500 B/s");
  EXPECT_EQ(human_rate(-1), "--");
  EXPECT_EQ(human_rate(std::numeric_limits<double>::infinity()), "--");
  EXPECT_EQ(human_rate(std::nan("")), "--");

  EXPECT_EQ(human_bitrate(850'000), "850 kb/s");
  EXPECT_EQ(human_bitrate(4'900'000), "4.9 Mb/s");
  EXPECT_EQ(human_bitrate(999), "999 b/s");
  EXPECT_EQ(human_bitrate(0), "--");
}

TEST(Render, ClockAndEta) {
  EXPECT_EQ(format_clock(0), "0:00");
  EXPECT_EQ(format_clock(42), "0:42");
  EXPECT_EQ(format_clock(59.6), "1:00");
  EXPECT_EQ(format_clock(65), "1:05");
  EXPECT_EQ(format_clock(3599), "59:59");
  EXPECT_EQ(format_clock(3600), "1:00:00");
  EXPECT_EQ(format_clock(3 * 3600 + 25 * 60 + 7), "3:25:07");
  EXPECT_EQ(format_clock(-1), "--:--");  // the API's "unknown"
  EXPECT_EQ(format_clock(std::nan("")), "--:--");
  EXPECT_EQ(format_clock(std::numeric_limits<double>::infinity()), "--:--");

  EXPECT_FALSE(eta_seconds(10, 100, std::nullopt));
  EXPECT_FALSE(eta_seconds(10, 100, 0.0));
  EXPECT_DOUBLE_EQ(*eta_seconds(10, 100, 9.0), 10.0);
  EXPECT_DOUBLE_EQ(*eta_seconds(100, 100, 9.0), 0.0);
}

TEST(Render, ProgressBarAndPercent) {
  EXPECT_EQ(progress_bar(0, 10), "[          ]");
  EXPECT_EQ(progress_bar(0.05, 10), "[>         ]");
  EXPECT_EQ(progress_bar(0.45, 10), "[====>     ]");
  EXPECT_EQ(progress_bar(1, 10), "[==========]");
  EXPECT_EQ(progress_bar(7, 4), "[====]");  // clamped
  EXPECT_EQ(progress_bar(-1, 4), "[    ]");
  EXPECT_EQ(progress_bar(std::nan(""), 4), "[    ]");

  EXPECT_EQ(format_percent(0.45), " 45.0%");
  EXPECT_EQ(format_percent(1), "100.0%");
  EXPECT_EQ(format_percent(0), "  0.0%");
}

TEST(Render, RowWithAndWithoutBar) {
  ProgressRow row{"720p", "encoding", 0.45, "30.0 fps  ETA 0:42"};
  EXPECT_EQ(format_row(row, 6, true, 10), "720p    encoding   [====>     ]  45.0%  30.0 fps  ETA 0:42");
  EXPECT_EQ(format_row(row, 0, false), "720p: encoding 45.0%  30.0 fps  ETA 0:42");

  ProgressRow failed{"1080p", "failed", -1, "ffmpeg exited with 1"};
  EXPECT_EQ(format_row(failed, 5, true, 10), "1080p  failed     ffmpeg exited with 1");
  EXPECT_EQ(format_row(failed, 0, false), "1080p: failed  ffmpeg exited with 1");
}

TEST(Render, RateMeterMeasuresTheRecentWindow) {
  const auto t0 = RateMeter::Clock::time_point{} + 1h;
  RateMeter meter(5s);
  EXPECT_FALSE(meter.rate());
  meter.add(t0, 0);
  EXPECT_FALSE(meter.rate());
  meter.add(t0 + 50ms, 100);
  EXPECT_FALSE(meter.rate());  // too short a span to say anything
  meter.add(t0 + 1s, 1000);
  EXPECT_DOUBLE_EQ(*meter.rate(), 1000.0);
  for (int s = 2; s <= 10; ++s) meter.add(t0 + std::chrono::seconds(s), 1000);  // a stall
  EXPECT_DOUBLE_EQ(*meter.rate(), 0.0);  // the stall shows: the start is out of the window
  meter.add(t0 + 11s, 3000);
  EXPECT_NEAR(*meter.rate(), 2000.0 / 5, 1e-9);
}

/// A display with a hand-driven clock.
struct FakeClock {
  ProgressDisplay::Clock::time_point now = ProgressDisplay::Clock::time_point{} + 1h;
  std::function<ProgressDisplay::Clock::time_point()> fn() {
    return [this] { return now; };
  }
};

std::size_t count(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + 1)) ++n;
  return n;
}

TEST(ProgressDisplay, PlainLinesOnStateChangesAndAtMostEveryInterval) {
  FakeClock clock;
  std::ostringstream out;
  ProgressDisplay::Options options;
  options.terminal = false;
  options.plain_interval = 5s;
  options.now = clock.fn();
  ProgressDisplay display(out, options);

  display.update({"720p", "queued", 0, ""});
  display.update({"720p", "encoding", 0.1, "ETA 1:00"});
  clock.now += 1s;
  display.update({"720p", "encoding", 0.2, "ETA 0:50"});  // same state, too soon: held back
  clock.now += 1s;
  display.update({"720p", "encoding", 0.3, "ETA 0:40"});
  clock.now += 4s;
  display.update({"720p", "encoding", 0.6, "ETA 0:20"});  // the interval has passed
  display.update({"720p", "done", 1, "10.0 MiB"});        // a state change: at once
  display.finish();

  EXPECT_EQ(out.str(),
            "720p: queued 0.0%\n"
            "720p: encoding 10.0%  ETA 1:00\n"
            "720p: encoding 60.0%  ETA 0:20\n"
            "720p: done 100.0%  10.0 MiB\n");
  EXPECT_EQ(out.str().find('\x1b'), std::string::npos);
}

TEST(ProgressDisplay, PlainFinishPrintsTheLastStateHeldBack) {
  FakeClock clock;
  std::ostringstream out;
  ProgressDisplay::Options options;
  options.now = clock.fn();
  ProgressDisplay display(out, options);
  display.update({"upload", "uploading", 0.1, ""});
  display.update({"upload", "uploading", 0.9, ""});
  display.finish();
  EXPECT_EQ(out.str(), "upload: uploading 10.0%\nupload: uploading 90.0%\n");
}

TEST(ProgressDisplay, TerminalRedrawsInPlace) {
  FakeClock clock;
  std::ostringstream out;
  ProgressDisplay::Options options;
  options.terminal = true;
  options.redraw_interval = 100ms;
  options.now = clock.fn();
  ProgressDisplay display(out, options);

  display.update({"1080p", "queued", 0, ""});
  display.update({"720p", "queued", 0, ""});
  std::string first = out.str();
  EXPECT_NE(first.find("\x1b[1A"), std::string::npos);  // the second row redrew the one-line block
  out.str("");

  display.update({"720p", "encoding", 0.5, ""});  // state change: drawn at once, from the block's top
  EXPECT_EQ(out.str().rfind("\x1b[2A", 0), 0u);
  EXPECT_EQ(count(out.str(), "\r\x1b[2K"), 2u);
  EXPECT_NE(out.str().find("720p   encoding   ["), std::string::npos);  // labels padded to "1080p"
  out.str("");

  clock.now += 10ms;
  display.update({"720p", "encoding", 0.6, ""});  // too soon after the last drawing
  EXPECT_EQ(out.str(), "");
  clock.now += 200ms;
  display.update({"720p", "encoding", 0.7, ""});
  EXPECT_NE(out.str().find(" 70.0%"), std::string::npos);
  out.str("");

  display.message("720p: attempt 1 failed");
  // The block is erased, the message printed where it was, and the block drawn again below.
  EXPECT_EQ(out.str().rfind("\x1b[2A\r\x1b[J720p: attempt 1 failed\n", 0), 0u);
  EXPECT_EQ(count(out.str(), "\r\x1b[2K"), 2u);
  out.str("");

  clock.now += 10ms;
  display.update({"720p", "encoding", 0.8, ""});  // held back by the interval…
  display.finish();                               // …and drawn by finish
  EXPECT_NE(out.str().find(" 80.0%"), std::string::npos);
  out.str("");

  // After finish the block is left alone: a new one starts below it without moving up.
  display.update({"480p", "queued", 0, ""});
  EXPECT_EQ(out.str().find("\x1b[1A"), std::string::npos);
}

TEST(ProgressDisplay, TerminalLinesAreCutToTheWidth) {
  FakeClock clock;
  std::ostringstream out;
  ProgressDisplay::Options options;
  options.terminal = true;
  options.columns = 30;
  options.now = clock.fn();
  ProgressDisplay display(out, options);
  display.update({"720p", "encoding", 0.5, "a long detail that would wrap"});
  auto text = out.str();
  auto start = text.find("\x1b[2K") + 4;
  auto end = text.find('\n', start);
  EXPECT_EQ(end - start, 29u);
}

TEST(ProgressDisplay, AStringStreamIsNeverATerminal) {
  std::ostringstream out;
  EXPECT_FALSE(is_terminal(out));
}

}  // namespace
}  // namespace framepress::cli
