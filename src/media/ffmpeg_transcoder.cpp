#include "media/ffmpeg_transcoder.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <optional>
#include <set>
#include <system_error>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/error.h"
#include "media/child_process.h"
#include "media/progress_parser.h"

namespace framepress {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// What we tell uploaders they may send, matching kDefaultFormatWhitelist.
constexpr const char* kAccepted =
    "Accepted containers are MP4/MOV, Matroska/WebM, AVI, MPEG-TS, FLV, MPEG-PS, ASF/WMV, Ogg and MXF.";

// ffprobe's JSON for a file with a few streams is a few KiB; this bounds a hostile file with thousands.
constexpr std::size_t kMaxProbeOutput = 16 * 1024 * 1024;

Error unprocessable(std::string message, std::string reason) {
  return Error(ErrorCode::unprocessable, std::move(message), std::move(reason));
}

// ---- reading ffprobe's JSON: numbers come as numbers or as strings ("duration": "2.000000") --------

std::optional<double> number(const json& object, std::string_view key) {
  auto it = object.find(key);
  if (it == object.end()) return std::nullopt;
  if (it->is_number()) return it->get<double>();
  if (it->is_string()) {
    const std::string& text = it->get_ref<const std::string&>();
    char* end = nullptr;
    double value = std::strtod(text.c_str(), &end);
    if (end != text.c_str() && *end == '\0' && std::isfinite(value)) return value;
  }
  return std::nullopt;
}

std::optional<std::int64_t> integer(const json& object, std::string_view key) {
  auto value = number(object, key);
  if (!value) return std::nullopt;
  return static_cast<std::int64_t>(std::llround(*value));
}

std::string text(const json& object, std::string_view key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// "30000/1001" → 29.97; "0/0", "N/A", garbage → nullopt.
std::optional<double> rational(const std::string& value, char separator = '/') {
  auto sep = value.find(separator);
  if (sep == std::string::npos) return std::nullopt;
  char* end = nullptr;
  double num = std::strtod(value.c_str(), &end);
  if (end != value.c_str() + sep) return std::nullopt;
  double den = std::strtod(value.c_str() + sep + 1, &end);
  if (*end != '\0' || !(num > 0) || !(den > 0)) return std::nullopt;
  return num / den;
}

bool flag(const json& stream, std::string_view group, std::string_view key) {
  auto it = stream.find(group);
  return it != stream.end() && it->is_object() && number(*it, key).value_or(0) != 0;
}

// "2h 5m", "1m 30s", "45s": how long, for people.
std::string human_duration(double seconds) {
  auto total = static_cast<long long>(std::llround(seconds));
  long long h = total / 3600, m = total % 3600 / 60, s = total % 60;
  std::string out;
  if (h) out += std::to_string(h) + "h";
  if (m) out += (out.empty() ? "" : " ") + std::to_string(m) + "m";
  if (s || out.empty()) out += (out.empty() ? "" : " ") + std::to_string(s) + "s";
  return out;
}

std::string format_number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.4g", value);
  return buffer;
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// Codecs that hold pictures rather than motion: in any container, one of these with a single frame or
// no duration is a photo.
bool is_image_codec(const std::string& codec) {
  static const std::set<std::string, std::less<>> images{"png", "mjpeg", "jpeg2000", "jpegls", "bmp", "gif",
                                                         "webp", "tiff", "targa", "ppm", "pgm", "pam",
                                                         "qoi", "jpegxl", "exr", "dpx", "sgi", "pcx"};
  return images.count(codec) > 0;
}

// The demuxer named in ffmpeg's log prefix, e.g. "[png_pipe @ 0x55…] Format not on whitelist …".
std::string demuxer_of_line(std::string_view diagnostics, std::string_view marker) {
  auto at = diagnostics.find(marker);
  if (at == std::string_view::npos) return {};
  auto line_start = diagnostics.rfind('\n', at);
  line_start = line_start == std::string_view::npos ? 0 : line_start + 1;
  std::string_view line = diagnostics.substr(line_start, at - line_start);
  if (line.empty() || line.front() != '[') return {};
  auto end = line.find(" @ ");
  if (end == std::string_view::npos) return {};
  return std::string(line.substr(1, end - 1));
}

std::string quoted_argv(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    bool plain = !a.empty() && a.find_first_of(" \t\"'\\;[]()") == std::string::npos;
    out += plain ? a : "'" + a + "'";
  }
  return out;
}

// `directory` becomes the child's working directory: whatever it writes by a relative name (x264's pass
// logs, a crash dump) stays in the task's scratch directory instead of the server's.
media::ChildOptions child_options(const FfmpegOptions& options, std::chrono::seconds timeout,
                                  std::filesystem::path directory) {
  media::ChildOptions child;
  child.working_directory = std::move(directory);
  child.cpu_seconds_limit = options.cpu_seconds_limit;
  child.memory_limit_bytes = options.memory_limit_bytes;
  child.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
  child.stderr_tail_bytes = 32 * 1024;
  return child;
}

Error cannot_start(const std::string& program, const std::system_error& e) {
  spdlog::error("cannot start {}: {}", program, e.what());
  return Error(ErrorCode::unavailable, "The video tools are not available on this server (" + program + ")",
               "encoder_unavailable", true);
}

// Removes the outputs of an encode unless it succeeded: a half-written MP4 must never be stored.
class OutputGuard {
 public:
  explicit OutputGuard(const std::vector<EncodeOutput>& outputs) : outputs_(outputs) {}
  ~OutputGuard() {
    if (committed_) return;
    for (const auto& out : outputs_) {
      std::error_code ec;
      std::filesystem::remove(out.path, ec);
    }
  }
  OutputGuard(const OutputGuard&) = delete;
  OutputGuard& operator=(const OutputGuard&) = delete;
  void commit() { committed_ = true; }

 private:
  const std::vector<EncodeOutput>& outputs_;
  bool committed_ = false;
};

// ffmpeg names its files in its errors; users see only the file names.
std::string redact_paths(std::string message, const EncodeRequest& request) {
  std::vector<std::filesystem::path> paths{request.input};
  for (const auto& out : request.outputs) paths.push_back(out.path);
  std::sort(paths.begin(), paths.end(),
            [](const auto& a, const auto& b) { return a.native().size() > b.native().size(); });
  for (const auto& path : paths) {
    const std::string full = path.string();
    const std::string name = path.filename().string();
    if (full.empty()) continue;
    for (const std::string& needle : {"file:" + full, full}) {
      for (auto at = message.find(needle); at != std::string::npos; at = message.find(needle, at + name.size())) {
        message.replace(at, needle.size(), name);
      }
    }
  }
  return message;
}

}  // namespace

// ---- pure parts ----------------------------------------------------------------------------------

namespace media {

int normalise_rotation(double degrees) {
  if (!std::isfinite(degrees)) return 0;
  long quarter = std::lround(degrees / 90.0);
  return static_cast<int>(((quarter % 4) + 4) % 4) * 90;
}

void refuse_playlists(std::string_view head) {
  // A UTF-8 byte order mark and leading blank space do not change what a demuxer sees.
  if (head.substr(0, 3) == "\xEF\xBB\xBF") head.remove_prefix(3);
  while (!head.empty() && (head.front() == ' ' || head.front() == '\t' || head.front() == '\r' || head.front() == '\n'))
    head.remove_prefix(1);
  auto starts = [&](std::string_view prefix) {
    if (head.size() < prefix.size()) return false;
    return std::equal(prefix.begin(), prefix.end(), head.begin(),
                      [](char want, char have) { return std::tolower(static_cast<unsigned char>(have)) == want; });
  };
  const char* kind = nullptr;
  if (starts("#extm3u")) {
    kind = "an HLS/M3U playlist";
  } else if (starts("ffconcat")) {
    kind = "an ffmpeg concat list";
  } else if (starts("<?xml") || starts("<mpd")) {
    kind = "an XML document (such as a DASH manifest)";
  } else if (starts("[playlist]")) {
    kind = "a PLS playlist";
  } else if (starts("v=0\n") || starts("v=0\r")) {
    kind = "an SDP stream description";
  }
  if (kind) {
    throw unprocessable(std::string("The file is ") + kind +
                            ", which refers to other files; upload the video file itself. " + kAccepted,
                        "unsupported_format");
  }
}

Error probe_failure(std::string_view diagnostics) {
  if (contains(diagnostics, "Format not on whitelist")) {
    const std::string demuxer = demuxer_of_line(diagnostics, "Format not on whitelist");
    const bool image_pipe = demuxer.size() > 5 && demuxer.ends_with("_pipe");
    if (image_pipe || demuxer == "image2") {
      std::string kind = image_pipe ? demuxer.substr(0, demuxer.size() - 5) : "image";
      return unprocessable("The file is a still image (" + kind + "), not a video.", "still_image");
    }
    if (demuxer == "gif") {
      return unprocessable(std::string("GIF animations are not accepted; convert it to a video first. ") + kAccepted,
                           "unsupported_format");
    }
    return unprocessable("The file's format" + (demuxer.empty() ? std::string() : " (" + demuxer + ")") +
                             " is not accepted. " + kAccepted,
                         "unsupported_format");
  }
  // The MP4 demuxer is also picked for any file that merely ends in .mp4; ffmpeg then warns that it
  // guessed from the name alone. With a real ftyp and no index, the file was cut short.
  if (contains(diagnostics, "moov atom not found") && !contains(diagnostics, "detected only with low score")) {
    return unprocessable(
        "The file is incomplete: its index (the MP4 'moov' atom) is missing, which happens when an upload or "
        "a recording is cut short. Upload the complete file.",
        "truncated");
  }
  return unprocessable("The file is not a video that can be read. " + std::string(kAccepted), "not_a_video");
}

SourceInfo interpret_probe(const json& probe, std::string_view diagnostics, std::uint64_t size,
                           const MediaLimits& limits) {
  if (!probe.is_object()) throw probe_failure(diagnostics);
  auto streams_it = probe.find("streams");
  auto format_it = probe.find("format");
  if (format_it == probe.end() || !format_it->is_object() || streams_it == probe.end() || !streams_it->is_array())
    throw probe_failure(diagnostics);
  const json& format = *format_it;
  const json& streams = *streams_it;

  // Cover art in an audio file is a "video" stream flagged attached_pic: it is not a video.
  const json* video = nullptr;
  const json* audio = nullptr;
  for (const auto& stream : streams) {
    if (!stream.is_object()) continue;
    const std::string type = text(stream, "codec_type");
    if (type == "video" && !video && !flag(stream, "disposition", "attached_pic")) video = &stream;
    if (type == "audio" && !audio) audio = &stream;
  }
  if (!video) {
    if (audio) throw unprocessable("The file has sound but no picture: upload a video.", "audio_only");
    throw unprocessable("The file contains no video stream. " + std::string(kAccepted), "not_a_video");
  }

  SourceInfo info;
  info.container = text(format, "format_name");
  info.size = size;
  info.bit_rate = integer(format, "bit_rate").value_or(0);
  info.video_codec = text(*video, "codec_name");
  info.width = static_cast<int>(integer(*video, "width").value_or(0));
  info.height = static_cast<int>(integer(*video, "height").value_or(0));
  if (info.width <= 0 || info.height <= 0) {
    throw unprocessable("The video stream has no picture size, so it cannot be decoded.", "not_a_video");
  }

  const auto packets = integer(*video, "nb_read_packets");
  const auto declared = integer(*video, "nb_frames");
  double duration = number(format, "duration").value_or(0);
  if (!(duration > 0)) duration = number(*video, "duration").value_or(0);

  // Frame rate: avg_frame_rate is what a viewer sees; r_frame_rate is a timebase guess that is huge
  // for variable-rate files (90000 for some phones), so it is only the fallback.
  std::optional<double> rate = rational(text(*video, "avg_frame_rate"));
  if (!rate || *rate > 1000) rate = rational(text(*video, "r_frame_rate"));
  info.frame_rate = rate.value_or(0);

  if (!(duration > 0) && packets && *packets > 1 && info.frame_rate > 0) duration = *packets / info.frame_rate;
  const bool one_picture = packets && *packets <= 1;
  if (one_picture || flag(*video, "disposition", "still_image") ||
      (!(duration > 0) && (is_image_codec(info.video_codec) || !packets))) {
    throw unprocessable("The file holds a single picture (" + info.video_codec + "), not a video.", "still_image");
  }
  if (!(duration > 0)) throw unprocessable("The video has no duration, so it cannot be played.", "not_a_video");
  info.duration = duration;

  // A file cut short: the MP4 demuxer reports "partial file" when samples point past the end, and the
  // index declares more frames than could be read (5% slack for edit lists and the like).
  if (contains(diagnostics, "partial file") ||
      (declared && packets && *declared > 0 && *packets + std::max<std::int64_t>(2, *declared / 20) < *declared)) {
    std::string detail = declared && packets ? " (" + std::to_string(*packets) + " of " + std::to_string(*declared) +
                                                   " frames present)"
                                             : "";
    throw unprocessable("The file is incomplete" + detail + ", which happens when an upload or a recording is cut "
                            "short. Upload the complete file.",
                        "truncated");
  }

  // Rotation: phones store a display matrix; ffprobe reports its angle, counter-clockwise. Old ffprobe
  // versions exported the matrix as a clockwise "rotate" tag instead.
  info.rotation = 0;
  bool have_matrix = false;
  if (auto sd = video->find("side_data_list"); sd != video->end() && sd->is_array()) {
    for (const auto& entry : *sd) {
      if (auto r = number(entry, "rotation")) {
        info.rotation = normalise_rotation(*r);
        have_matrix = true;
        break;
      }
    }
  }
  if (!have_matrix) {
    if (auto tags = video->find("tags"); tags != video->end() && tags->is_object()) {
      if (auto r = number(*tags, "rotate")) info.rotation = normalise_rotation(-*r);
    }
  }

  info.sample_aspect = rational(text(*video, "sample_aspect_ratio"), ':').value_or(1.0);
  if (info.sample_aspect < 0.01 || info.sample_aspect > 100) info.sample_aspect = 1.0;

  if (audio) {
    AudioInfo a;
    a.codec = text(*audio, "codec_name");
    a.channels = static_cast<int>(integer(*audio, "channels").value_or(0));
    a.sample_rate = static_cast<int>(integer(*audio, "sample_rate").value_or(0));
    info.audio = a;
  }

  // The limits, last: the reasons above say more about what the file is.
  if (limits.max_streams > 0 && streams.size() > static_cast<std::size_t>(limits.max_streams)) {
    throw unprocessable("The file has " + std::to_string(streams.size()) + " streams; at most " +
                            std::to_string(limits.max_streams) + " are accepted.",
                        "too_many_streams");
  }
  if (limits.max_duration_seconds > 0 && info.duration > limits.max_duration_seconds) {
    throw unprocessable("The video is " + human_duration(info.duration) + " long; at most " +
                            human_duration(limits.max_duration_seconds) + " is accepted.",
                        "too_long");
  }
  const std::int64_t pixels = static_cast<std::int64_t>(info.width) * info.height;
  if (limits.max_pixels > 0 && pixels > limits.max_pixels) {
    throw unprocessable("The picture is " + std::to_string(info.width) + "x" + std::to_string(info.height) +
                            " pixels; at most " + std::to_string(limits.max_pixels) + " pixels are accepted.",
                        "too_many_pixels");
  }
  if (limits.max_frame_rate > 0 && info.frame_rate > limits.max_frame_rate) {
    throw unprocessable("The video has " + format_number(info.frame_rate) + " frames per second; at most " +
                            format_number(limits.max_frame_rate) + " are accepted.",
                        "frame_rate_too_high");
  }
  return info;
}

}  // namespace media

// ---- FfmpegTranscoder ----------------------------------------------------------------------------

FfmpegTranscoder::FfmpegTranscoder(FfmpegOptions options) : options_(std::move(options)) {}

SourceInfo FfmpegTranscoder::probe(const std::filesystem::path& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    spdlog::error("probe: cannot read {}: {}", path.string(), ec.message());
    throw Error(ErrorCode::internal, "The uploaded file could not be read on the server.", "source_unreadable");
  }
  if (size == 0) throw unprocessable("The file is empty.", "empty");

  {
    std::ifstream in(path, std::ios::binary);
    std::array<char, 512> head{};
    in.read(head.data(), head.size());
    media::refuse_playlists(std::string_view(head.data(), static_cast<std::size_t>(in.gcount())));
  }

  // Absolute, as the child runs in the file's directory.
  const auto argv = probe_command(std::filesystem::absolute(path), options_);
  spdlog::debug("probe: {}", quoted_argv(argv));
  std::string output;
  bool overflow = false;
  media::ExitStatus status;
  std::string diagnostics;
  try {
    media::ChildProcess child(argv, child_options(options_, options_.probe_timeout,
                                                  std::filesystem::absolute(path).parent_path()));
    child.read_output([&](std::string_view line) {
      if (overflow) return;
      if (output.size() + line.size() > kMaxProbeOutput) {
        overflow = true;
        child.kill();
        return;
      }
      output.append(line);
      output += '\n';
    });
    status = child.wait();
    diagnostics = child.stderr_tail();
  } catch (const std::system_error& e) {
    throw cannot_start(options_.ffprobe, e);
  }

  if (status.timed_out) {
    spdlog::warn("probe: ffprobe timed out on {}", path.string());
    throw Error(ErrorCode::unavailable, "Analysing the file took too long; try again later.", "probe_timeout", true);
  }
  if (overflow) throw unprocessable("The file has too many streams to analyse.", "too_many_streams");
  if (!status.success()) {
    spdlog::info("probe: ffprobe {} on {}: {}", status.describe(), path.string(), media::last_lines(diagnostics, 5));
    throw media::probe_failure(diagnostics);
  }
  json parsed = json::parse(output, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    spdlog::warn("probe: ffprobe printed no JSON for {}", path.string());
    throw media::probe_failure(diagnostics);
  }
  return media::interpret_probe(parsed, diagnostics, size, options_.limits);
}

void FfmpegTranscoder::encode(const EncodeRequest& given, const ProgressSink& on_progress, std::stop_token stop) {
  // Absolute paths, as ffmpeg runs in the directory of the first output (the task's scratch directory).
  EncodeRequest request = given;
  if (!request.input.empty()) request.input = std::filesystem::absolute(request.input);
  for (auto& out : request.outputs) {
    if (!out.path.empty()) out.path = std::filesystem::absolute(out.path);
  }
  const auto argv = encode_command(request, options_);  // validates the request first
  OutputGuard guard(request.outputs);
  auto cancelled = [] { return Error(ErrorCode::conflict, "cancelled", "cancelled"); };
  if (stop.stop_requested()) throw cancelled();

  for (const auto& out : request.outputs) {
    std::error_code ec;
    if (out.path.has_parent_path()) std::filesystem::create_directories(out.path.parent_path(), ec);
  }

  spdlog::debug("encode: {}", quoted_argv(argv));
  const auto started = Clock::now();
  std::optional<media::ChildProcess> child;
  try {
    child.emplace(argv, child_options(options_, options_.task_timeout, request.outputs.front().path.parent_path()));
  } catch (const std::system_error& e) {
    throw cannot_start(options_.ffmpeg, e);
  }
  // Runs on the thread that requests the stop; kill() is safe from any thread. Declared after the
  // child, so it is gone before the child is destroyed.
  std::stop_callback kill_on_stop(stop, [&child] { child->kill(); });

  media::ProgressParser parser;
  double best = 0;
  child->read_output([&](std::string_view line) {
    auto block = parser.feed_line(line);
    if (!block || !on_progress || stop.stop_requested()) return;
    EncodeProgress p = media::compute_progress(*block, request.source.duration, Clock::now() - started);
    // ffmpeg's position can step back a little (audio and video muxed apart); users see no regress.
    best = std::max(best, p.percent);
    p.percent = best;
    on_progress(p);
  });
  const media::ExitStatus status = child->wait();
  const std::string diagnostics = child->stderr_tail();

  if (stop.stop_requested()) {
    spdlog::debug("encode: cancelled ({})", status.describe());
    throw cancelled();
  }
  if (status.timed_out) {
    throw Error(ErrorCode::internal,
                "ffmpeg timed out after " + human_duration(static_cast<double>(options_.task_timeout.count())),
                "timeout", true);
  }
  // At RLIMIT_CPU the kernel sends SIGXCPU (and SIGKILL a second later); ffmpeg catches the first and exits
  // with status 255, so the processor time used is what tells (wait4 reports a few per cent less than the
  // kernel's limit counts, hence 90%). Another attempt would meet the same limit: this failure is final.
  const auto cpu_limit = std::chrono::milliseconds(std::chrono::seconds(options_.cpu_seconds_limit));
  if (!status.success() && cpu_limit.count() > 0 &&
      (status.signal == SIGXCPU || status.cpu_time * 10 >= cpu_limit * 9)) {
    spdlog::warn("encode: ffmpeg reached its CPU-time limit ({} s)", options_.cpu_seconds_limit);
    throw Error(ErrorCode::internal,
                "ffmpeg used up its CPU-time limit (" + human_duration(static_cast<double>(options_.cpu_seconds_limit)) +
                    " of processor time)",
                "cpu_time_limit", false);
  }
  if (!status.success()) {
    std::string tail = redact_paths(media::last_lines(diagnostics, 5), request);
    spdlog::warn("encode: ffmpeg {}: {}", status.describe(), tail);
    throw Error(ErrorCode::internal, "ffmpeg failed: " + (tail.empty() ? status.describe() : tail), "encode_failed",
                true);
  }
  for (const auto& out : request.outputs) {
    std::error_code ec;
    if (std::filesystem::file_size(out.path, ec) == 0 || ec) {
      throw Error(ErrorCode::internal, "ffmpeg failed: it wrote no output for " + out.rendition.name, "encode_failed",
                  true);
    }
  }
  guard.commit();
}

}  // namespace framepress
