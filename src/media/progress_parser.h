#pragma once
// Parsing ffmpeg's `-progress pipe:1` output, and turning it into the progress a user sees. Pure code:
// no I/O, no clocks (the caller passes the elapsed time).
//
// The format: `key=value` lines; each block ends with `progress=continue`, the last one with
// `progress=end`. Values ffmpeg does not know yet are "N/A". ffmpeg 5.1 writes, among others:
//   frame=50  fps=24.91  out_time_us=2020136  out_time=00:00:02.020136  speed=21.9x  progress=continue

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "media/transcoder.h"

namespace framepress::media {

/// One completed `-progress` block.
struct ProgressBlock {
  std::optional<std::int64_t> out_time_us;  ///< output position in microseconds; nullopt while "N/A"
  double fps = 0;                           ///< frames encoded per wall second (0 while unknown)
  std::optional<double> speed;              ///< media seconds per wall second ("2.5x"); nullopt while "N/A"
  std::int64_t frame = 0;                   ///< frames written so far (of the first output)
  bool end = false;                         ///< `progress=end`: ffmpeg has finished
};

/// Incremental parser: feed it bytes as they arrive, split anywhere, and collect the blocks.
/// Not thread-safe (one parser per encode). Unknown keys and malformed lines are ignored.
class ProgressParser {
 public:
  /// Feeds raw output, split at any byte. Returns the blocks completed by these bytes, in order.
  std::vector<ProgressBlock> feed(std::string_view bytes);

  /// Feeds one complete line (without its newline). Returns the block it completed, if it did.
  std::optional<ProgressBlock> feed_line(std::string_view line);

 private:
  std::string partial_;
  ProgressBlock current_;
};

/// The progress a user sees for `block`, given the source's duration (seconds) and the wall time since
/// the encode started. The percent is clamped to 0..100 (100 at `progress=end`). The ETA comes from
/// ffmpeg's speed when it knows one, else from the elapsed time and the percent done; -1 while neither
/// is known. The speed falls back to media time over elapsed time when ffmpeg says "N/A".
EncodeProgress compute_progress(const ProgressBlock& block, double source_duration_seconds,
                                std::chrono::duration<double> elapsed);

/// Parses "2.5x", " 2.5x", "2.5" → 2.5; "N/A", "", "inf", garbage → nullopt.
std::optional<double> parse_speed(std::string_view text);

/// Parses ffmpeg's "HH:MM:SS.micro" (optionally negative) → microseconds; nullopt when malformed or "N/A".
std::optional<std::int64_t> parse_clock_us(std::string_view text);

}  // namespace framepress::media
