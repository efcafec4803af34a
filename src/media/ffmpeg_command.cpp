#include "media/ffmpeg_command.h"

#include <string_view>

#include "core/error.h"

namespace framepress {

namespace {

// Input options that go before every `-i`. The protocol whitelist also binds the nested opens a demuxer
// makes (a playlist's segments), and the format whitelist refuses playlist demuxers outright.
void add_input_guards(std::vector<std::string>& argv, const FfmpegOptions& options) {
  argv.insert(argv.end(), {"-protocol_whitelist", "file,pipe"});
  argv.insert(argv.end(), {"-format_whitelist", options.format_whitelist});
}

[[noreturn]] void invalid(const std::string& why) {
  throw Error(ErrorCode::internal, "invalid encode request: " + why, "invalid_request", false);
}

void validate(const EncodeRequest& request) {
  if (request.input.empty()) invalid("no input");
  if (request.outputs.empty()) invalid("no outputs");
  for (const auto& out : request.outputs) {
    const auto& r = out.rendition;
    if (out.path.empty()) invalid("rendition " + r.name + " has no output path");
    // yuv420p halves chroma in both directions: x264 refuses odd sizes.
    if (r.width <= 0 || r.height <= 0 || r.width % 2 != 0 || r.height % 2 != 0) {
      invalid("rendition " + r.name + " has unusable dimensions " + std::to_string(r.width) + "x" +
              std::to_string(r.height));
    }
  }
  if (request.settings.video_codec.empty()) invalid("no video codec");
}

// The planner's width and height are the upright display size: ffmpeg autorotates while decoding, so we
// scale straight to them. setsar=1 makes the pixels square, since the display size already accounts
// for a source's non-square pixels.
std::string scale_filter(const RenditionSpec& r) {
  return "scale=" + std::to_string(r.width) + ":" + std::to_string(r.height) + ",setsar=1";
}

void add_output(std::vector<std::string>& argv, const EncodeRequest& request, const EncodeOutput& out,
                const std::string& video_map, const FfmpegOptions& options) {
  const auto& s = request.settings;
  argv.insert(argv.end(), {"-map", video_map});
  if (request.source.audio) argv.insert(argv.end(), {"-map", "0:a:0?"});
  argv.insert(argv.end(), {"-c:v", s.video_codec, "-preset", s.preset, "-crf", std::to_string(s.crf),
                           "-pix_fmt", "yuv420p"});
  if (options.threads > 0) argv.insert(argv.end(), {"-threads", std::to_string(options.threads)});
  if (request.source.audio) {
    argv.insert(argv.end(), {"-c:a", s.audio_codec, "-b:a", std::to_string(s.audio_bitrate_kbps) + "k"});
  } else {
    argv.push_back("-an");
  }
  // Uploads from phones carry their owner's metadata (location, device): a published rendition does
  // not. Subtitles and data streams are not mapped at all.
  argv.insert(argv.end(), {"-map_metadata", "-1", "-map_chapters", "-1"});
  argv.insert(argv.end(), {"-movflags", "+faststart", "-f", "mp4", ffmpeg_file_url(out.path)});
}

}  // namespace

std::string ffmpeg_file_url(const std::filesystem::path& path) { return "file:" + path.string(); }

std::vector<std::string> probe_command(const std::filesystem::path& path, const FfmpegOptions& options) {
  // ffprobe 5.1 has no -nostdin (it never reads stdin); the child's stdin is /dev/null anyway.
  // "warning" rather than "error": the "detected only with low score" warning tells a file that
  // merely has a video extension from a broken video.
  std::vector<std::string> argv{options.ffprobe, "-hide_banner", "-v", "warning"};
  add_input_guards(argv, options);
  argv.insert(argv.end(), {"-print_format", "json", "-show_format", "-show_streams"});
  if (options.count_packets) argv.push_back("-count_packets");
  argv.insert(argv.end(), {"-i", ffmpeg_file_url(path)});
  return argv;
}

std::vector<std::string> encode_command(const EncodeRequest& request, const FfmpegOptions& options) {
  validate(request);
  std::vector<std::string> argv{options.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
                                "-progress",    "pipe:1",       "-nostats", "-y"};
  add_input_guards(argv, options);
  if (options.threads > 0) argv.insert(argv.end(), {"-threads", std::to_string(options.threads)});
  argv.insert(argv.end(), {"-i", ffmpeg_file_url(request.input)});

  // 0:V:0 (capital V) is the first video stream that is not cover art: probe() accepts a file whose
  // first "video" stream is an attached picture when a real video follows it.
  const auto& outputs = request.outputs;
  if (outputs.size() == 1) {
    argv.insert(argv.end(), {"-vf", scale_filter(outputs[0].rendition)});
    add_output(argv, request, outputs[0], "0:V:0", options);
    return argv;
  }

  // Decode once, encode many: [0:V:0]split=N[s0][s1]…;[s0]scale=…[v0];[s1]scale=…[v1];…
  std::string graph = "[0:V:0]split=" + std::to_string(outputs.size());
  for (std::size_t i = 0; i < outputs.size(); ++i) graph += "[s" + std::to_string(i) + "]";
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    graph += ";[s" + std::to_string(i) + "]" + scale_filter(outputs[i].rendition) + "[v" + std::to_string(i) + "]";
  }
  argv.insert(argv.end(), {"-filter_complex", graph});
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    add_output(argv, request, outputs[i], "[v" + std::to_string(i) + "]", options);
  }
  return argv;
}

}  // namespace framepress
