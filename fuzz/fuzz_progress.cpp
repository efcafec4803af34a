// Fuzzes the parser of ffmpeg's `-progress pipe:1` output (src/media/progress_parser.cpp). ffmpeg writes
// it, but about a hostile upload: its timestamps, frame counts and speeds are whatever the file makes them.
//
// Input: the raw output (key=value lines). Fed whole, then cut in random pieces, then line by line:
// the three must give the same blocks. Every block goes through compute_progress() with a source duration
// and an elapsed time taken from the input; what a user would see must be sane: no NaN, the percent in
// 0..100, the ETA -1 (unknown) or a finite number of seconds ≥ 0, fps and speed finite and ≥ 0. Every value
// also goes through parse_speed() and parse_clock_us() on its own.
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.h"
#include "media/progress_parser.h"

namespace {

using framepress::media::ProgressBlock;
using framepress::media::ProgressParser;

bool same(const ProgressBlock& a, const ProgressBlock& b) {
  auto eq = [](double x, double y) { return x == y || (std::isnan(x) && std::isnan(y)); };
  return a.out_time_us == b.out_time_us && eq(a.fps, b.fps) && a.speed.has_value() == b.speed.has_value() &&
         (!a.speed || eq(*a.speed, *b.speed)) && a.frame == b.frame && a.end == b.end;
}

bool same(const std::vector<ProgressBlock>& a, const std::vector<ProgressBlock>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!same(a[i], b[i])) return false;
  }
  return true;
}

void check_progress(const ProgressBlock& block, double duration, double elapsed) {
  const auto p = framepress::media::compute_progress(block, duration, std::chrono::duration<double>(elapsed));
  FUZZ_CHECK(std::isfinite(p.percent) && p.percent >= 0 && p.percent <= 100, "percent");
  FUZZ_CHECK(std::isfinite(p.fps) && p.fps >= 0, "fps");
  FUZZ_CHECK(std::isfinite(p.speed) && p.speed >= 0, "speed");
  FUZZ_CHECK(p.eta_seconds == -1 || (std::isfinite(p.eta_seconds) && p.eta_seconds >= 0), "eta_seconds");
  if (block.end) FUZZ_CHECK(p.percent == 100 && p.eta_seconds == 0, "the end is 100%");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto seed = fuzz::hash(input);

  ProgressParser whole_parser;
  const auto whole = whole_parser.feed(input);

  ProgressParser split_parser;
  std::vector<ProgressBlock> split;
  for (auto piece : fuzz::random_split(input, seed)) {
    for (auto& b : split_parser.feed(piece)) split.push_back(b);
  }
  FUZZ_CHECK(same(whole, split), "whole and split feeds give different blocks");

  // Line by line through feed_line(); feed() drops lines over 4 KiB whole, so they are skipped here too.
  ProgressParser line_parser;
  std::vector<ProgressBlock> lines;
  std::string_view rest = input;
  while (true) {
    const auto nl = rest.find('\n');
    if (nl == std::string_view::npos) break;
    const auto line = rest.substr(0, nl);
    rest.remove_prefix(nl + 1);
    if (line.size() > 4096) continue;
    if (auto b = line_parser.feed_line(line)) lines.push_back(*b);
    const auto eq = line.find('=');
    if (eq != std::string_view::npos) {
      const auto value = line.substr(eq + 1);
      if (auto s = framepress::media::parse_speed(value)) FUZZ_CHECK(std::isfinite(*s) && *s >= 0, "parse_speed");
      (void)framepress::media::parse_clock_us(value);
    }
  }
  FUZZ_CHECK(same(whole, lines), "feed() and feed_line() give different blocks");

  // A realistic source (up to the 6 h limit and a bit) and a realistic wall time, chosen by the input.
  fuzz::Rng rng{seed};
  const double durations[] = {0.0, -1.0, 0.04, 1.0, 10.0, 21600.0, NAN, INFINITY};
  for (const auto& block : whole) {
    const double duration = (rng.next() & 1) ? durations[rng.next() % 8] : static_cast<double>(rng.next() % 30000000) / 1000;
    const double elapsed = (rng.next() & 3) == 0 ? 0.0 : static_cast<double>(rng.next() % 100000000) / 1000;
    check_progress(block, duration, elapsed);
  }
  return 0;
}
