#pragma once
// The Transcoder of framepress: ffprobe and ffmpeg run as child processes (child_process.h), so a crash
// or a runaway on a hostile file costs a child, never the server.

#include <cstdint>
#include <filesystem>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "core/error.h"
#include "media/ffmpeg_command.h"
#include "media/transcoder.h"

namespace framepress {

/// Probes and encodes with the ffprobe and ffmpeg programs.
///
/// Thread-safe: holds only its options; every call runs its own child processes, so any number of
/// threads may probe and encode at once.
class FfmpegTranscoder final : public Transcoder {
 public:
  explicit FfmpegTranscoder(FfmpegOptions options);

  /// Runs ffprobe (whitelisted protocols and containers, limits, `probe_timeout`, its working directory the
  /// file's own) and maps what it
  /// reports. Besides the Error(unprocessable) reasons of Transcoder::probe, throws
  /// Error(unavailable, "encoder_unavailable", retryable) when ffprobe cannot be started,
  /// Error(unavailable, "probe_timeout", retryable) when it runs out of time, and Error(internal) when
  /// the file cannot be read. Messages are meant for the uploader and never contain server paths.
  SourceInfo probe(const std::filesystem::path& path) override;

  /// Runs one ffmpeg for every output (see encode_command()), with the child limits and `task_timeout`,
  /// in the directory of the first output (the task's scratch directory: anything ffmpeg writes by a
  /// relative name stays there).
  /// Calls `on_progress` for every progress block (about twice a second), on this thread, with a
  /// percent that never goes down; once `stop` is requested it is no longer called. Throws:
  ///  - Error(conflict, "cancelled") when `stop` was requested before encode returned (the child is
  ///    killed at once through a std::stop_callback);
  ///  - Error(internal, "timeout", retryable) past `task_timeout`;
  ///  - Error(internal, "cpu_time_limit", not retryable) when ffmpeg reached `cpu_seconds_limit`;
  ///  - Error(internal, "encode_failed", retryable) when ffmpeg fails, with the last lines of its stderr
  ///    (server paths replaced by file names);
  ///  - Error(unavailable, "encoder_unavailable", retryable) when ffmpeg cannot be started;
  ///  - whatever `on_progress` throws.
  /// Every output file is removed on any failure.
  void encode(const EncodeRequest& request, const ProgressSink& on_progress, std::stop_token stop) override;

  const FfmpegOptions& options() const noexcept { return options_; }

 private:
  FfmpegOptions options_;
};

namespace media {

/// What ffprobe's JSON (`-show_format -show_streams [-count_packets]`) says about a file of `size`
/// bytes, as a SourceInfo, or Error(unprocessable, reason) when it is not a video framepress accepts
/// under `limits`. `diagnostics` is ffprobe's stderr (its warnings reveal cut-off files). Pure.
SourceInfo interpret_probe(const nlohmann::json& probe, std::string_view diagnostics, std::uint64_t size,
                           const MediaLimits& limits);

/// The Error(unprocessable, reason) for a file ffprobe could not open, judged from its stderr. Pure.
Error probe_failure(std::string_view diagnostics);

/// Refuses, before any ffmpeg code sees them, text files that would make a demuxer open other files:
/// HLS and other playlists, concat lists, DASH manifests, SDP descriptions. `head` is the start of the
/// file. Throws Error(unprocessable, "unsupported_format"). Pure.
void refuse_playlists(std::string_view head);

/// ffprobe's display-matrix rotation (counter-clockwise degrees, any sign) as 0, 90, 180 or 270.
int normalise_rotation(double degrees);

}  // namespace media

}  // namespace framepress
