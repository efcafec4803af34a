#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "media/ffmpeg_transcoder.h"
#include "support/test_media.h"
#include "unit/media/media_fixture.h"

namespace framepress {
namespace {

namespace fs = std::filesystem;
using framepress::testing::ClipSpec;
using framepress::testing::SharedClips;
using framepress::testing::TempDir;
using nlohmann::json;

void write_file(const fs::path& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// The Error a probe throws, or a fake one saying it did not throw.
Error probe_error(const fs::path& file, MediaLimits limits = {}) {
  FfmpegOptions options;
  options.limits = limits;
  FfmpegTranscoder transcoder(options);
  try {
    transcoder.probe(file);
  } catch (const Error& e) {
    return e;
  }
  return Error(ErrorCode::internal, "probe accepted the file", "accepted");
}

// A rejection: unprocessable, the reason word, and a message that names no server path.
void expect_rejected(const fs::path& file, const std::string& reason, MediaLimits limits = {}) {
  Error e = probe_error(file, limits);
  EXPECT_EQ(e.reason(), reason) << file.filename() << ": " << e.what();
  EXPECT_EQ(e.code(), ErrorCode::unprocessable) << e.what();
  const std::string message = e.what();
  EXPECT_FALSE(message.empty());
  EXPECT_EQ(message.find(file.parent_path().string()), std::string::npos) << message;
  EXPECT_EQ(message.find(file.filename().string()), std::string::npos) << message;
}

// ---- real files ------------------------------------------------------------------------------------

TEST(Probe, LandscapeWithAudio) {
  auto clip = SharedClips::get("landscape", {});
  SourceInfo info = FfmpegTranscoder({}).probe(clip);
  EXPECT_EQ(info.width, 320);
  EXPECT_EQ(info.height, 180);
  EXPECT_EQ(info.rotation, 0);
  EXPECT_EQ(info.display_width(), 320);
  EXPECT_EQ(info.display_height(), 180);
  EXPECT_EQ(info.video_codec, "h264");
  EXPECT_NEAR(info.duration, 2.0, 0.1);
  EXPECT_NEAR(info.frame_rate, 25.0, 0.01);
  EXPECT_DOUBLE_EQ(info.sample_aspect, 1.0);
  EXPECT_EQ(info.size, fs::file_size(clip));
  EXPECT_GT(info.bit_rate, 0);
  EXPECT_NE(info.container.find("mp4"), std::string::npos);
  ASSERT_TRUE(info.audio.has_value());
  EXPECT_EQ(info.audio->codec, "aac");
  EXPECT_EQ(info.audio->sample_rate, 48000);
  EXPECT_EQ(info.audio->channels, 1);
}

TEST(Probe, PortraitWithoutAudio) {
  ClipSpec spec;
  spec.width = 180;
  spec.height = 320;
  spec.audio = false;
  SourceInfo info = FfmpegTranscoder({}).probe(SharedClips::get("portrait", spec));
  EXPECT_EQ(info.width, 180);
  EXPECT_EQ(info.height, 320);
  EXPECT_EQ(info.rotation, 0);
  EXPECT_FALSE(info.audio.has_value());
}

TEST(Probe, RotatedClipReportsRotationAndUprightDisplaySize) {
  ClipSpec spec;
  spec.rotation = 90;
  SourceInfo info = FfmpegTranscoder({}).probe(SharedClips::get("rotated", spec));
  EXPECT_EQ(info.width, 320);
  EXPECT_EQ(info.height, 180);
  EXPECT_EQ(info.rotation, 90);
  EXPECT_EQ(info.display_width(), 180);
  EXPECT_EQ(info.display_height(), 320);
}

// Every container of the default whitelist that make_clip can write opens, under the name ffmpeg 5.1
// gives its demuxer; and the clips of the test support library are what they claim to be.
TEST(Probe, AcceptedContainers) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"mp4", "mov,mp4"}, {"mov", "mov,mp4"}, {"mkv", "matroska"}, {"webm", "matroska,webm"},
      {"avi", "avi"},     {"ts", "mpegts"},   {"flv", "flv"}};
  for (const auto& [extension, container] : cases) {
    ClipSpec spec;
    spec.extension = extension;
    const fs::path clip = SharedClips::get("container_" + extension, spec);
    SourceInfo info = FfmpegTranscoder({}).probe(clip);
    EXPECT_TRUE(info.container.starts_with(container)) << extension << ": " << info.container;
    EXPECT_EQ(info.width, 320) << extension;
    EXPECT_EQ(info.height, 180) << extension;
    EXPECT_NEAR(info.duration, 2.0, 0.2) << extension;
    EXPECT_TRUE(info.audio.has_value()) << extension;
    auto facts = framepress::testing::inspect(clip);
    EXPECT_TRUE(facts.decodes_cleanly) << extension;
    EXPECT_EQ(facts.frames, 50) << extension;
  }
}

// ---- rejects ---------------------------------------------------------------------------------------

TEST(ProbeRejects, EmptyFile) {
  TempDir dir;
  write_file(dir / "empty.mp4", "");
  expect_rejected(dir / "empty.mp4", "empty");
}

TEST(ProbeRejects, TextNamedMp4) {
  TempDir dir;
  write_file(dir / "notes.mp4", "Dear diary,\nthis is plain text and certainly not a video.\n");
  expect_rejected(dir / "notes.mp4", "not_a_video");
}

TEST(ProbeRejects, RandomBytes) {
  TempDir dir;
  std::mt19937 rng(42);
  std::string bytes(200000, '\0');
  for (auto& c : bytes) c = static_cast<char>(rng());
  write_file(dir / "noise.mp4", bytes);
  write_file(dir / "noise", bytes);
  expect_rejected(dir / "noise.mp4", "not_a_video");
  expect_rejected(dir / "noise", "not_a_video");
}

TEST(ProbeRejects, AudioOnly) {
  TempDir dir;
  const fs::path m4a = dir / "song.m4a";
  framepress::testing::run_command({"ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                                    "sine=duration=2", "-c:a", "aac", m4a.string()});
  fs::rename(m4a, dir / "song.mp4");
  expect_rejected(dir / "song.mp4", "audio_only");
}

TEST(ProbeRejects, AudioWithCoverArtIsStillAudioOnly) {
  TempDir dir;
  const fs::path png = dir / "cover.png";
  framepress::testing::run_command({"ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                                    "testsrc2=size=64x64", "-frames:v", "1", png.string()});
  framepress::testing::run_command({"ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                                    "sine=duration=2", "-i", png.string(), "-map", "0", "-map", "1", "-c:a", "aac",
                                    "-c:v", "png", "-disposition:v", "attached_pic", (dir / "album.m4a").string()});
  expect_rejected(dir / "album.m4a", "audio_only");
}

TEST(ProbeRejects, PngStill) {
  TempDir dir;
  const fs::path png = dir / "photo.png";
  framepress::testing::run_command({"ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                                    "testsrc2=size=320x180", "-frames:v", "1", png.string()});
  expect_rejected(png, "still_image");
  fs::copy_file(png, dir / "photo.mp4");
  expect_rejected(dir / "photo.mp4", "still_image");
}

TEST(ProbeRejects, SingleFrameMp4) {
  ClipSpec spec;
  spec.seconds = 0.04;
  spec.audio = false;
  expect_rejected(SharedClips::get("one_frame", spec), "still_image");
}

TEST(ProbeRejects, Mp4CutInHalfWithIndexAtTheEnd) {
  TempDir dir;
  auto clip = SharedClips::get("landscape", {});
  ASSERT_FALSE(framepress::testing::moov_before_mdat(clip)) << "ffmpeg writes the index last by default";
  const std::string bytes = read_file(clip);
  write_file(dir / "half.mp4", std::string_view(bytes).substr(0, bytes.size() / 2));
  expect_rejected(dir / "half.mp4", "truncated");
}

TEST(ProbeRejects, Mp4CutInHalfWithIndexInFront) {
  TempDir dir;
  auto clip = SharedClips::get("landscape", {});
  const fs::path faststart = dir / "faststart.mp4";
  framepress::testing::run_command({"ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-i", clip.string(),
                                    "-c", "copy", "-movflags", "+faststart", faststart.string()});
  ASSERT_TRUE(framepress::testing::moov_before_mdat(faststart));
  const std::string bytes = read_file(faststart);
  write_file(dir / "half.mp4", std::string_view(bytes).substr(0, bytes.size() / 2));
  expect_rejected(dir / "half.mp4", "truncated");
}

TEST(ProbeRejects, HlsPlaylistPointingAtARealClip) {
  TempDir dir;
  auto clip = SharedClips::get("landscape", {});
  const std::string playlist = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n" + clip.string() +
                               "\n#EXTINF:2.0,\nfile:" + clip.string() + "\n#EXT-X-ENDLIST\n";
  write_file(dir / "playlist.mp4", playlist);
  write_file(dir / "playlist.m3u8", playlist);
  expect_rejected(dir / "playlist.mp4", "unsupported_format");
  expect_rejected(dir / "playlist.m3u8", "unsupported_format");
  // With a byte order mark and blank lines in front as well.
  write_file(dir / "bom.mp4", "\xEF\xBB\xBF\n\n" + playlist);
  expect_rejected(dir / "bom.mp4", "unsupported_format");
}

TEST(ProbeRejects, WhitelistAloneRefusesPlaylists) {
  // The second line of defence, without our own sniffing: the argv probe() runs refuses a playlist
  // that ffprobe would otherwise open with its hls demuxer (which then reads the clip it lists).
  TempDir dir;
  auto clip = SharedClips::get("landscape", {});
  write_file(dir / "list.m3u8",
             "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n" + clip.string() + "\n#EXT-X-ENDLIST\n");
  write_file(dir / "concat.txt", "ffconcat version 1.0\nfile '" + clip.string() + "'\n");
  for (const char* name : {"list.m3u8", "concat.txt"}) {
    auto guarded = framepress::testing::run_process(probe_command(dir / name, FfmpegOptions{}));
    EXPECT_NE(guarded.exit_code, 0) << name << ": " << guarded.out;
    EXPECT_EQ(guarded.out.find("\"h264\""), std::string::npos) << name;
  }
  // Control: the same playlist without the whitelists is opened, and the clip behind it read.
  auto open = framepress::testing::run_process(
      {"ffprobe", "-v", "error", "-print_format", "json", "-show_streams", (dir / "list.m3u8").string()});
  EXPECT_NE(open.out.find("\"h264\""), std::string::npos) << open.err;
}

TEST(ProbeRejects, ConcatListNamedMp4) {
  TempDir dir;
  auto clip = SharedClips::get("landscape", {});
  write_file(dir / "list.mp4", "ffconcat version 1.0\nfile '" + clip.string() + "'\n");
  expect_rejected(dir / "list.mp4", "unsupported_format");
}

TEST(ProbeRejects, Limits) {
  auto clip = SharedClips::get("landscape", {});
  MediaLimits limits;
  limits.max_duration_seconds = 1;
  expect_rejected(clip, "too_long", limits);
  limits = {};
  limits.max_pixels = 320 * 180 - 1;
  expect_rejected(clip, "too_many_pixels", limits);
  limits = {};
  limits.max_frame_rate = 24;
  expect_rejected(clip, "frame_rate_too_high", limits);
  limits = {};
  limits.max_streams = 1;
  expect_rejected(clip, "too_many_streams", limits);
  limits = {};
  limits.max_duration_seconds = 0;  // zero: no limit
  limits.max_pixels = 320 * 180;    // at the limit is fine
  limits.max_frame_rate = 25;
  limits.max_streams = 2;
  FfmpegOptions options;
  options.limits = limits;
  EXPECT_NO_THROW(FfmpegTranscoder(options).probe(clip));
}

TEST(ProbeRejects, MissingFfprobeIsUnavailable) {
  FfmpegOptions options;
  options.ffprobe = "/nonexistent/ffprobe";
  try {
    FfmpegTranscoder(options).probe(SharedClips::get("landscape", {}));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unavailable);
    EXPECT_EQ(e.reason(), "encoder_unavailable");
    EXPECT_TRUE(e.retryable());
  }
}

// ---- interpreting ffprobe's JSON (pure) ------------------------------------------------------------

json video_stream() {
  return json{{"index", 0},
              {"codec_name", "h264"},
              {"codec_type", "video"},
              {"width", 1920},
              {"height", 1080},
              {"sample_aspect_ratio", "1:1"},
              {"r_frame_rate", "30/1"},
              {"avg_frame_rate", "30/1"},
              {"duration", "10.000000"},
              {"nb_frames", "300"},
              {"nb_read_packets", "300"},
              {"disposition", {{"attached_pic", 0}}}};
}

json probe_json(std::vector<json> streams) {
  return json{{"streams", streams},
              {"format",
               {{"format_name", "mov,mp4,m4a,3gp,3g2,mj2"}, {"duration", "10.000000"}, {"bit_rate", "5000000"}}}};
}

std::string reason_of(const json& probe, std::string_view diagnostics = "") {
  try {
    media::interpret_probe(probe, diagnostics, 1000, MediaLimits{});
  } catch (const Error& e) {
    return e.reason();
  }
  return "accepted";
}

TEST(InterpretProbe, RotationFromDisplayMatrixOrTag) {
  auto with_rotation = [](json side_data) {
    json v = video_stream();
    v["side_data_list"] = json::array({json{{"side_data_type", "Display Matrix"}, {"rotation", side_data}}});
    return media::interpret_probe(probe_json({v}), "", 1, {}).rotation;
  };
  EXPECT_EQ(with_rotation(90), 90);
  EXPECT_EQ(with_rotation(-90), 270);
  EXPECT_EQ(with_rotation(180), 180);
  EXPECT_EQ(with_rotation(-180), 180);
  EXPECT_EQ(with_rotation(269.6), 270);
  EXPECT_EQ(with_rotation(0), 0);

  json tagged = video_stream();
  tagged["tags"] = {{"rotate", "90"}};  // the old clockwise tag: the same as a matrix of -90
  EXPECT_EQ(media::interpret_probe(probe_json({tagged}), "", 1, {}).rotation, 270);
  EXPECT_EQ(media::normalise_rotation(-450), 270);
  EXPECT_EQ(media::normalise_rotation(720), 0);
}

TEST(InterpretProbe, FrameRateSampleAspectAndAudio) {
  json v = video_stream();
  v["avg_frame_rate"] = "30000/1001";
  v["r_frame_rate"] = "90000/1";  // variable-rate phones: not the rate a viewer sees
  v["sample_aspect_ratio"] = "4:3";
  json a{{"codec_type", "audio"}, {"codec_name", "opus"}, {"channels", 2}, {"sample_rate", "48000"}};
  SourceInfo info = media::interpret_probe(probe_json({v, a}), "", 1234, {});
  EXPECT_NEAR(info.frame_rate, 29.97, 0.01);
  EXPECT_NEAR(info.sample_aspect, 4.0 / 3.0, 1e-9);
  EXPECT_EQ(info.size, 1234u);
  EXPECT_EQ(info.bit_rate, 5000000);
  ASSERT_TRUE(info.audio);
  EXPECT_EQ(info.audio->codec, "opus");
  EXPECT_EQ(info.audio->channels, 2);
  EXPECT_EQ(info.audio->sample_rate, 48000);

  v["avg_frame_rate"] = "0/0";
  v["r_frame_rate"] = "25/1";
  v["sample_aspect_ratio"] = "0:1";  // unknown: square
  info = media::interpret_probe(probe_json({v}), "", 1, {});
  EXPECT_DOUBLE_EQ(info.frame_rate, 25);
  EXPECT_DOUBLE_EQ(info.sample_aspect, 1.0);
}

TEST(InterpretProbe, Classification) {
  EXPECT_EQ(reason_of(probe_json({video_stream()})), "accepted");
  EXPECT_EQ(reason_of(probe_json({})), "not_a_video");
  EXPECT_EQ(reason_of(json::object()), "not_a_video");
  json audio{{"codec_type", "audio"}, {"codec_name", "aac"}};
  EXPECT_EQ(reason_of(probe_json({audio})), "audio_only");

  json cover = video_stream();
  cover["codec_name"] = "mjpeg";
  cover["disposition"]["attached_pic"] = 1;
  EXPECT_EQ(reason_of(probe_json({audio, cover})), "audio_only");

  json still = video_stream();
  still["codec_name"] = "png";
  still["nb_read_packets"] = "1";
  EXPECT_EQ(reason_of(probe_json({still})), "still_image");

  json motion_jpeg = video_stream();
  motion_jpeg["codec_name"] = "mjpeg";  // many frames: a real (camera) video
  EXPECT_EQ(reason_of(probe_json({motion_jpeg})), "accepted");

  json short_read = video_stream();
  short_read["nb_read_packets"] = "150";
  EXPECT_EQ(reason_of(probe_json({short_read})), "truncated");
  json nearly = video_stream();
  nearly["nb_read_packets"] = "297";  // within the slack
  EXPECT_EQ(reason_of(probe_json({nearly})), "accepted");
  EXPECT_EQ(reason_of(probe_json({video_stream()}), "[mov @ 0x1] stream 1, offset 0x14d0e: partial file\n"),
            "truncated");

  json sizeless = video_stream();
  sizeless["width"] = 0;
  EXPECT_EQ(reason_of(probe_json({sizeless})), "not_a_video");
}

TEST(InterpretProbe, ProbeFailuresFromDiagnostics) {
  EXPECT_EQ(media::probe_failure("[png_pipe @ 0x5] Format not on whitelist 'mov'\nx: Invalid argument\n").reason(),
            "still_image");
  EXPECT_EQ(media::probe_failure("[concat @ 0x5] Format not on whitelist 'mov'\n").reason(), "unsupported_format");
  EXPECT_EQ(media::probe_failure("[gif @ 0x5] Format not on whitelist 'mov'\n").reason(), "unsupported_format");
  EXPECT_EQ(media::probe_failure("[mov,mp4 @ 0x5] moov atom not found\n").reason(), "truncated");
  EXPECT_EQ(media::probe_failure("[mov,mp4 @ 0x5] Format mov,mp4 detected only with low score of 1, misdetection "
                                 "possible!\n[mov,mp4 @ 0x5] moov atom not found\n")
                .reason(),
            "not_a_video");
  EXPECT_EQ(media::probe_failure("x: Invalid data found when processing input\n").reason(), "not_a_video");
  EXPECT_EQ(media::probe_failure("").reason(), "not_a_video");
}

TEST(InterpretProbe, RefusesPlaylistsByTheirFirstBytes) {
  auto reason = [](std::string_view head) {
    try {
      media::refuse_playlists(head);
    } catch (const Error& e) {
      return e.reason();
    }
    return std::string("accepted");
  };
  EXPECT_EQ(reason("#EXTM3U\n"), "unsupported_format");
  EXPECT_EQ(reason("#extm3u\n"), "unsupported_format");
  EXPECT_EQ(reason("  \r\nffconcat version 1.0\n"), "unsupported_format");
  EXPECT_EQ(reason("<?xml version=\"1.0\"?><MPD>"), "unsupported_format");
  EXPECT_EQ(reason("v=0\no=- 0 0 IN IP4 127.0.0.1\n"), "unsupported_format");
  EXPECT_EQ(reason(std::string_view("\0\0\0\x20" "ftypisom", 12)), "accepted");
  EXPECT_EQ(reason(""), "accepted");
}

// ffprobe runs in the directory of the file it reads, never in the server's: a stand-in ffprobe records
// where it ran.
TEST(Probe, RunsInTheFilesDirectory) {
  TempDir dir;
  fs::create_directories(dir / "upload");
  const fs::path clip = dir / "upload" / "clip.mp4";
  fs::copy_file(SharedClips::get("landscape", {}), clip);
  const fs::path where = dir / "ffprobe-cwd";
  const fs::path script = dir / "fake-ffprobe";
  write_file(script, "#!/bin/sh\npwd > '" + where.string() + "'\nexit 1\n");
  fs::permissions(script, fs::perms::owner_all);
  FfmpegOptions options;
  options.ffprobe = script.string();
  FfmpegTranscoder transcoder(options);
  EXPECT_THROW(transcoder.probe(clip), Error);
  std::string cwd = read_file(where);
  while (!cwd.empty() && cwd.back() == '\n') cwd.pop_back();
  EXPECT_EQ(fs::path(cwd), fs::canonical(dir / "upload"));
}

}  // namespace
}  // namespace framepress
