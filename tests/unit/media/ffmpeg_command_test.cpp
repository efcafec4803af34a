#include "media/ffmpeg_command.h"

#include <algorithm>

#include <gtest/gtest.h>

#include "core/error.h"

namespace framepress {
namespace {

using Argv = std::vector<std::string>;

std::ptrdiff_t index_of(const Argv& argv, const std::string& value, std::size_t from = 0) {
  auto it = std::find(argv.begin() + static_cast<std::ptrdiff_t>(from), argv.end(), value);
  return it == argv.end() ? -1 : it - argv.begin();
}

std::size_t count_of(const Argv& argv, const std::string& value) {
  return static_cast<std::size_t>(std::count(argv.begin(), argv.end(), value));
}

// The value that follows `flag` (first occurrence at or after `from`).
std::string value_of(const Argv& argv, const std::string& flag, std::size_t from = 0) {
  auto i = index_of(argv, flag, from);
  return i < 0 || static_cast<std::size_t>(i + 1) >= argv.size() ? "" : argv[static_cast<std::size_t>(i + 1)];
}

RenditionSpec spec(std::string name, int w, int h) {
  RenditionSpec r;
  r.name = std::move(name);
  r.width = w;
  r.height = h;
  r.short_side = std::min(w, h);
  return r;
}

EncodeRequest request(std::vector<RenditionSpec> renditions, bool audio = true) {
  EncodeRequest req;
  req.input = "/data/scratch/job/source";
  req.source.duration = 10;
  req.source.width = 1920;
  req.source.height = 1080;
  if (audio) req.source.audio = AudioInfo{"aac", 2, 48000};
  for (auto& r : renditions) req.outputs.push_back({r, "/data/scratch/job/" + r.name + ".mp4"});
  req.settings.preset = "veryfast";
  req.settings.crf = 26;
  return req;
}

// The guards: both whitelists appear before the (only) -i.
void expect_guarded_input(const Argv& argv, const FfmpegOptions& options) {
  auto input = index_of(argv, "-i");
  ASSERT_GE(input, 0);
  EXPECT_EQ(count_of(argv, "-i"), 1u);
  auto protocols = index_of(argv, "-protocol_whitelist");
  auto formats = index_of(argv, "-format_whitelist");
  ASSERT_GE(protocols, 0);
  ASSERT_GE(formats, 0);
  EXPECT_LT(protocols, input);
  EXPECT_LT(formats, input);
  EXPECT_EQ(value_of(argv, "-protocol_whitelist"), "file,pipe");
  EXPECT_EQ(value_of(argv, "-format_whitelist"), options.format_whitelist);
}

TEST(FfmpegCommand, DefaultWhitelistHasOnlyRealContainers) {
  const std::string list = kDefaultFormatWhitelist;
  for (const char* name : {"mov", "matroska", "avi", "mpegts", "flv", "mpeg", "asf", "ogg", "mxf"})
    EXPECT_NE(list.find(name), std::string::npos) << name;
  for (const char* name : {"hls", "concat", "dash", "image2", "tty", "lavfi", "sdp", "rtsp"})
    EXPECT_EQ(("," + list + ",").find(std::string(",") + name + ","), std::string::npos) << name;
}

TEST(FfmpegCommand, ProbeIsGuardedAndReadsAFileUrl) {
  FfmpegOptions options;
  options.ffprobe = "/opt/ffprobe";
  auto argv = probe_command("/data/scratch/upload", options);
  EXPECT_EQ(argv.front(), "/opt/ffprobe");
  expect_guarded_input(argv, options);
  EXPECT_EQ(value_of(argv, "-i"), "file:/data/scratch/upload");
  EXPECT_EQ(value_of(argv, "-print_format"), "json");
  EXPECT_GE(index_of(argv, "-show_format"), 0);
  EXPECT_GE(index_of(argv, "-show_streams"), 0);
  EXPECT_GE(index_of(argv, "-count_packets"), 0);
  EXPECT_LT(index_of(argv, "-i"), static_cast<std::ptrdiff_t>(argv.size()));

  options.count_packets = false;
  options.format_whitelist = "mov";
  argv = probe_command("x.mp4", options);
  EXPECT_EQ(index_of(argv, "-count_packets"), -1);
  expect_guarded_input(argv, options);
}

TEST(FfmpegCommand, EncodeOneOutputUsesPlainScale) {
  FfmpegOptions options;
  auto req = request({spec("720p", 1280, 720)});
  auto argv = encode_command(req, options);
  expect_guarded_input(argv, options);
  EXPECT_EQ(value_of(argv, "-i"), "file:/data/scratch/job/source");
  for (const char* global : {"-nostdin", "-nostats", "-y"}) {
    auto at = index_of(argv, global);
    EXPECT_GE(at, 0) << global;
    EXPECT_LT(at, index_of(argv, "-i")) << global;
  }
  EXPECT_EQ(value_of(argv, "-progress"), "pipe:1");
  EXPECT_EQ(index_of(argv, "-filter_complex"), -1);
  EXPECT_EQ(value_of(argv, "-vf"), "scale=1280:720,setsar=1");
  EXPECT_EQ(value_of(argv, "-map"), "0:V:0");
  EXPECT_GE(index_of(argv, "0:a:0?"), 0);
  EXPECT_EQ(value_of(argv, "-c:v"), "libx264");
  EXPECT_EQ(value_of(argv, "-preset"), "veryfast");
  EXPECT_EQ(value_of(argv, "-crf"), "26");
  EXPECT_EQ(value_of(argv, "-pix_fmt"), "yuv420p");
  EXPECT_EQ(value_of(argv, "-c:a"), "aac");
  EXPECT_EQ(value_of(argv, "-b:a"), "128k");
  EXPECT_EQ(value_of(argv, "-movflags"), "+faststart");
  EXPECT_EQ(value_of(argv, "-f"), "mp4");
  EXPECT_EQ(argv.back(), "file:/data/scratch/job/720p.mp4");
  EXPECT_EQ(index_of(argv, "-an"), -1);
  EXPECT_EQ(index_of(argv, "-threads"), -1);
}

TEST(FfmpegCommand, EncodeSeveralOutputsSplitsOneDecode) {
  FfmpegOptions options;
  options.threads = 2;
  auto req = request({spec("360p", 640, 360), spec("480p", 854, 480), spec("720p", 1280, 720)});
  auto argv = encode_command(req, options);
  expect_guarded_input(argv, options);
  EXPECT_EQ(index_of(argv, "-vf"), -1);
  EXPECT_EQ(value_of(argv, "-filter_complex"),
            "[0:V:0]split=3[s0][s1][s2];[s0]scale=640:360,setsar=1[v0];[s1]scale=854:480,setsar=1[v1];"
            "[s2]scale=1280:720,setsar=1[v2]");
  // Each output group: its own video label, the audio, the encoder settings, faststart, its file last.
  std::size_t from = static_cast<std::size_t>(index_of(argv, "-filter_complex"));
  for (int i = 0; i < 3; ++i) {
    const std::string label = "[v" + std::to_string(i) + "]";
    auto map = index_of(argv, label, from);
    ASSERT_GE(map, 0) << label;
    EXPECT_EQ(argv[static_cast<std::size_t>(map - 1)], "-map");
    EXPECT_EQ(value_of(argv, "-map", static_cast<std::size_t>(map)), "0:a:0?");
    EXPECT_EQ(value_of(argv, "-movflags", static_cast<std::size_t>(map)), "+faststart");
    EXPECT_EQ(value_of(argv, "-threads", static_cast<std::size_t>(map)), "2");
    auto file = index_of(argv, "file:" + req.outputs[static_cast<std::size_t>(i)].path.string(), from);
    EXPECT_GT(file, map);
    from = static_cast<std::size_t>(file);
  }
  EXPECT_EQ(count_of(argv, "+faststart"), 3u);
  EXPECT_EQ(count_of(argv, "libx264"), 3u);
  EXPECT_EQ(count_of(argv, "-progress"), 1u);
}

TEST(FfmpegCommand, NoAudioMeansMinusAn) {
  auto argv = encode_command(request({spec("240p", 426, 240), spec("360p", 640, 360)}, /*audio=*/false), {});
  EXPECT_EQ(count_of(argv, "-an"), 2u);
  EXPECT_EQ(index_of(argv, "0:a:0?"), -1);
  EXPECT_EQ(index_of(argv, "-c:a"), -1);
}

TEST(FfmpegCommand, SettingsReachTheEncoder) {
  auto req = request({spec("480p", 854, 480)});
  req.settings.video_codec = "libx265";
  req.settings.preset = "slow";
  req.settings.crf = 30;
  req.settings.audio_codec = "libopus";
  req.settings.audio_bitrate_kbps = 96;
  auto argv = encode_command(req, {});
  EXPECT_EQ(value_of(argv, "-c:v"), "libx265");
  EXPECT_EQ(value_of(argv, "-preset"), "slow");
  EXPECT_EQ(value_of(argv, "-crf"), "30");
  EXPECT_EQ(value_of(argv, "-c:a"), "libopus");
  EXPECT_EQ(value_of(argv, "-b:a"), "96k");
}

TEST(FfmpegCommand, RefusesImpossibleRequests) {
  auto reason = [](const EncodeRequest& req) {
    try {
      encode_command(req, {});
    } catch (const Error& e) {
      return e.reason();
    }
    return std::string("no error");
  };
  EXPECT_EQ(reason(request({})), "invalid_request");
  EXPECT_EQ(reason(request({spec("odd", 641, 360)})), "invalid_request");
  EXPECT_EQ(reason(request({spec("zero", 0, 360)})), "invalid_request");
  auto no_path = request({spec("360p", 640, 360)});
  no_path.outputs[0].path.clear();
  EXPECT_EQ(reason(no_path), "invalid_request");
}

}  // namespace
}  // namespace framepress
