#pragma once
// The transcoder: probing an upload and encoding renditions. The implementation runs ffprobe and ffmpeg as
// child processes (ffmpeg_transcoder.h), so a crash on a hostile file kills only the child.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "core/events.h"
#include "core/ladder.h"
#include "core/source_info.h"

namespace framepress {

/// What a source may be before it is accepted. Zero means no limit.
struct MediaLimits {
  double max_duration_seconds = 6 * 3600;
  std::int64_t max_pixels = 7680LL * 4320LL;  // 8K
  double max_frame_rate = 240;
  int max_streams = 16;
};

struct EncodeOutput {
  RenditionSpec rendition;
  std::filesystem::path path;
};

struct EncodeRequest {
  std::filesystem::path input;
  SourceInfo source;
  std::vector<EncodeOutput> outputs;  // several outputs: one decode, one encode each
  EncodingSettings settings;
};

/// One progress report of an encode. With several outputs they advance together.
struct EncodeProgress {
  double percent = 0;        // 0..100 of the source's duration
  double fps = 0;
  double speed = 0;          // media seconds per wall second
  double eta_seconds = -1;   // -1 when not yet known
  std::int64_t frames = 0;   // frames written so far (of the first output; one decode feeds them all)
};

using ProgressSink = std::function<void(const EncodeProgress&)>;

class Transcoder {
 public:
  virtual ~Transcoder() = default;

  /// Probes a local file. Throws Error(unprocessable) with a reason word ("empty", "not_a_video",
  /// "unsupported_format", "audio_only", "still_image", "truncated", "too_long", "too_many_pixels",
  /// "frame_rate_too_high", "too_many_streams") when it is not a video framepress accepts.
  virtual SourceInfo probe(const std::filesystem::path& path) = 0;

  /// Encodes `request.outputs` from `request.input`, calling `on_progress` as it goes (on the calling
  /// thread). Returns when every output is complete. Throws Error(internal, retryable) with the tail of
  /// the encoder's error output when it fails; Error(conflict, "cancelled") when `stop` was requested,
  /// in which case the child has been killed. Partial outputs are removed on any failure.
  virtual void encode(const EncodeRequest& request, const ProgressSink& on_progress, std::stop_token stop) = 0;
};

}  // namespace framepress
