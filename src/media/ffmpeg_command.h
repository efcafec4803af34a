#pragma once
// Building the argv of ffprobe and ffmpeg. Pure functions: what runs is decided here and nowhere else,
// so the tests can read every flag that guards against hostile input.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "media/transcoder.h"

namespace framepress {

/// The demuxers ffprobe and ffmpeg may use: real containers only, by the names ffmpeg 5.1 gives its
/// demuxers (`ffmpeg -demuxers`; a name matches any of a demuxer's comma-separated names, so "mov" is
/// the "mov,mp4,m4a,3gp,3g2,mj2" demuxer and "matroska" the "matroska,webm" one). Left out on purpose:
/// playlist and list demuxers (hls, dash, concat, …) which open other files or URLs, image demuxers
/// (image2 opens numbered file sequences), raw elementary streams, and the long tail of rarely used
/// demuxers, where most of the parser bugs live.
inline constexpr const char* kDefaultFormatWhitelist = "mov,matroska,webm,avi,mpegts,flv,mpeg,asf,ogg,mxf";

/// How framepress runs ffmpeg and ffprobe. Plain data with defaults, parsed once in the app.
struct FfmpegOptions {
  std::string ffmpeg = "ffmpeg";    ///< program name (searched on PATH) or path
  std::string ffprobe = "ffprobe";  ///< program name (searched on PATH) or path
  MediaLimits limits;               ///< what probe() accepts
  /// Input option `-format_whitelist` of every invocation: the containers we accept.
  std::string format_whitelist = kDefaultFormatWhitelist;
  /// Encoder threads per output; 0 lets ffmpeg pick (one per core).
  int threads = 0;
  /// Wall-clock limit of one encode; the process group is killed after it.
  std::chrono::seconds task_timeout{6 * 3600};
  /// Wall-clock limit of one probe. A probe reads the whole file once (-count_packets).
  std::chrono::seconds probe_timeout{120};
  /// RLIMIT_AS of every child in bytes; 0 for none. x264 reserves a lot of address space per thread:
  /// leave ample room (several GiB at 1080p) or it fails to start.
  std::uint64_t memory_limit_bytes = 0;
  /// RLIMIT_CPU of every child in seconds; 0 for none. Counts all threads, so on N cores an encode
  /// may use up to N times its wall time.
  std::uint64_t cpu_seconds_limit = 0;
  /// Have ffprobe count the packets of every stream (reads the file once, no decoding; 0.08 s for
  /// 20 s of 1080p) to detect files cut short. Off: truncation is found only when the index is missing.
  bool count_packets = true;
};

/// `ffprobe … -print_format json -show_format -show_streams [-count_packets] -i file:<path>`, with the
/// protocol and format whitelists as input options.
std::vector<std::string> probe_command(const std::filesystem::path& path, const FfmpegOptions& options);

/// One ffmpeg process for every output of `request`: a single decode, `split` to one scaler and one
/// encoder per output, each written as an MP4 with the index in front (`+faststart`). Progress goes to
/// stdout (`-progress pipe:1`). Throws Error(internal, "invalid_request") when the request has no
/// outputs, or an output has no path or odd/non-positive dimensions.
std::vector<std::string> encode_command(const EncodeRequest& request, const FfmpegOptions& options);

/// `file:<path>`: ffmpeg then never reads a path as a protocol ("concat:…", "http:…") or an option.
std::string ffmpeg_file_url(const std::filesystem::path& path);

}  // namespace framepress
