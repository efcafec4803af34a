#include <fstream>
#include <future>
#include <thread>

#include <sys/stat.h>

#include <gtest/gtest.h>

#include "core/error.h"
#include "media/ffmpeg_transcoder.h"
#include "support/test_media.h"
#include "unit/media/media_fixture.h"

namespace framepress {
namespace {

namespace fs = std::filesystem;
using framepress::testing::ClipSpec;
using framepress::testing::inspect;
using framepress::testing::MediaFacts;
using framepress::testing::SharedClips;
using framepress::testing::TempDir;

RenditionSpec spec(std::string name, int w, int h) {
  RenditionSpec r;
  r.name = std::move(name);
  r.width = w;
  r.height = h;
  r.short_side = std::min(w, h);
  return r;
}

EncodeRequest request_for(const fs::path& clip, const SourceInfo& source, const TempDir& out,
                          std::vector<RenditionSpec> renditions) {
  EncodeRequest req;
  req.input = clip;
  req.source = source;
  req.settings.preset = "veryfast";
  for (auto& r : renditions) req.outputs.push_back({r, out / (r.name + ".mp4")});
  return req;
}

Error encode_error(FfmpegTranscoder& transcoder, const EncodeRequest& req, const ProgressSink& sink = {},
                   std::stop_token stop = {}) {
  try {
    transcoder.encode(req, sink, stop);
  } catch (const Error& e) {
    return e;
  }
  return Error(ErrorCode::internal, "encode succeeded", "succeeded");
}

void expect_no_outputs(const EncodeRequest& req) {
  for (const auto& out : req.outputs) EXPECT_FALSE(fs::exists(out.path)) << out.path;
}

TEST(Encode, TwoOutputsFromOneProcess) {
  auto clip = SharedClips::get("landscape", {});
  FfmpegTranscoder transcoder({});
  const SourceInfo source = transcoder.probe(clip);
  TempDir out;
  auto req = request_for(clip, source, out, {spec("180p", 320, 180), spec("144p", 256, 144)});

  std::vector<EncodeProgress> reports;
  transcoder.encode(req, [&](const EncodeProgress& p) { reports.push_back(p); }, {});

  for (const auto& o : req.outputs) {
    MediaFacts facts = inspect(o.path);
    EXPECT_EQ(facts.width, o.rendition.width) << o.rendition.name;
    EXPECT_EQ(facts.height, o.rendition.height) << o.rendition.name;
    EXPECT_EQ(facts.video_codec, "h264");
    EXPECT_EQ(facts.audio_codec, "aac");
    EXPECT_EQ(facts.rotation, 0);
    EXPECT_TRUE(facts.faststart) << o.rendition.name;
    EXPECT_TRUE(facts.decodes_cleanly) << o.rendition.name;
    EXPECT_NEAR(facts.duration, 2.0, 0.15);
    EXPECT_EQ(facts.frames, 50);
  }

  ASSERT_FALSE(reports.empty());
  for (std::size_t i = 1; i < reports.size(); ++i) EXPECT_GE(reports[i].percent, reports[i - 1].percent);
  EXPECT_GE(reports.back().percent, 99.0);
  EXPECT_EQ(reports.back().eta_seconds, 0);
  for (const auto& p : reports) {
    EXPECT_GE(p.percent, 0);
    EXPECT_LE(p.percent, 100);
  }
}

TEST(Encode, RotatedSourceComesOutUpright) {
  ClipSpec rotated;
  rotated.rotation = 90;
  auto clip = SharedClips::get("rotated", rotated);
  FfmpegTranscoder transcoder({});
  const SourceInfo source = transcoder.probe(clip);
  ASSERT_EQ(source.display_width(), 180);
  ASSERT_EQ(source.display_height(), 320);
  TempDir out;
  // The planner's sizes are upright display sizes.
  auto req = request_for(clip, source, out, {spec("180p", source.display_width(), source.display_height())});
  transcoder.encode(req, {}, {});
  MediaFacts facts = inspect(req.outputs[0].path);
  EXPECT_EQ(facts.width, 180);
  EXPECT_EQ(facts.height, 320);
  EXPECT_LT(facts.width, facts.height);
  EXPECT_EQ(facts.rotation, 0) << "no display matrix may turn the upright picture again";
  EXPECT_TRUE(facts.faststart);
}

TEST(Encode, SourceWithoutAudio) {
  ClipSpec portrait;
  portrait.width = 180;
  portrait.height = 320;
  portrait.audio = false;
  auto clip = SharedClips::get("portrait", portrait);
  FfmpegTranscoder transcoder({});
  const SourceInfo source = transcoder.probe(clip);
  TempDir out;
  auto req = request_for(clip, source, out, {spec("144p", 144, 256)});
  transcoder.encode(req, {}, {});
  MediaFacts facts = inspect(req.outputs[0].path);
  EXPECT_EQ(facts.width, 144);
  EXPECT_EQ(facts.height, 256);
  EXPECT_EQ(facts.audio_codec, "");
  EXPECT_TRUE(facts.decodes_cleanly);
}

TEST(Encode, CancelKillsTheChildAndLeavesNoOutputs) {
  // Long enough that the first progress report comes well before the end.
  ClipSpec longer;
  longer.seconds = 30;
  auto clip = SharedClips::get("thirty_seconds", longer);
  FfmpegTranscoder transcoder({});
  const SourceInfo source = transcoder.probe(clip);
  TempDir out;
  auto req = request_for(clip, source, out, {spec("180p", 320, 180), spec("144p", 256, 144)});
  req.settings.preset = "slow";

  std::stop_source stop;
  std::promise<void> first_report;
  bool reported = false;
  // The stop comes from another thread, as the worker's cancel does.
  std::jthread canceller([&stop, f = first_report.get_future()] {
    f.wait();
    stop.request_stop();
  });
  std::vector<double> percents;
  Error e = encode_error(
      transcoder, req,
      [&](const EncodeProgress& p) {
        percents.push_back(p.percent);
        if (!reported) {
          reported = true;
          first_report.set_value();
        }
      },
      stop.get_token());
  if (!reported) first_report.set_value();
  EXPECT_EQ(e.code(), ErrorCode::conflict) << e.what();
  EXPECT_EQ(e.reason(), "cancelled");
  EXPECT_FALSE(e.retryable());
  expect_no_outputs(req);
  ASSERT_FALSE(percents.empty());
  EXPECT_LT(percents.front(), 100.0);
}

TEST(Encode, StopRequestedBeforeStartRunsNothing) {
  auto clip = SharedClips::get("landscape", {});
  FfmpegTranscoder transcoder({});
  TempDir out;
  auto req = request_for(clip, transcoder.probe(clip), out, {spec("144p", 256, 144)});
  std::stop_source stop;
  stop.request_stop();
  Error e = encode_error(transcoder, req, {}, stop.get_token());
  EXPECT_EQ(e.reason(), "cancelled");
  expect_no_outputs(req);
}

TEST(Encode, FailureCarriesStderrAndIsRetryable) {
  auto clip = SharedClips::get("landscape", {});
  FfmpegTranscoder transcoder({});
  TempDir out;
  auto req = request_for(clip, transcoder.probe(clip), out, {spec("180p", 320, 180), spec("144p", 256, 144)});
  req.settings.preset = "no-such-preset";
  Error e = encode_error(transcoder, req);
  EXPECT_EQ(e.code(), ErrorCode::internal);
  EXPECT_EQ(e.reason(), "encode_failed");
  EXPECT_TRUE(e.retryable());
  const std::string message = e.what();
  EXPECT_TRUE(message.starts_with("ffmpeg failed: ")) << message;
  EXPECT_NE(message.find("preset"), std::string::npos) << message;
  EXPECT_EQ(message.find(out.path().string()), std::string::npos) << "server paths leak: " << message;
  expect_no_outputs(req);
}

TEST(Encode, ProgressSinkExceptionStopsTheEncode) {
  auto clip = SharedClips::get("landscape", {});
  FfmpegTranscoder transcoder({});
  TempDir out;
  auto req = request_for(clip, transcoder.probe(clip), out, {spec("144p", 256, 144)});
  EXPECT_THROW(transcoder.encode(req, [](const EncodeProgress&) { throw std::runtime_error("sink broke"); }, {}),
               std::runtime_error);
  expect_no_outputs(req);
}

// A stand-in for ffmpeg that writes part of its output, reports a little progress and then hangs.
fs::path hanging_ffmpeg(const TempDir& dir) {
  const fs::path script = dir / "fake-ffmpeg";
  std::ofstream(script) << "#!/bin/sh\n"
                           "for last; do :; done\n"
                           "printf partial > \"${last#file:}\"\n"
                           "printf 'out_time_us=500000\\nspeed=1x\\nprogress=continue\\n'\n"
                           "exec sleep 60\n";
  fs::permissions(script, fs::perms::owner_all);
  return script;
}

TEST(Encode, TimeoutKillsAndRemovesPartialOutput) {
  TempDir dir;
  FfmpegOptions options;
  options.ffmpeg = hanging_ffmpeg(dir).string();
  options.task_timeout = std::chrono::seconds(1);
  FfmpegTranscoder transcoder(options);
  auto clip = SharedClips::get("landscape", {});
  auto req = request_for(clip, FfmpegTranscoder({}).probe(clip), dir, {spec("144p", 256, 144)});
  std::vector<EncodeProgress> reports;
  Error e = encode_error(transcoder, req, [&](const EncodeProgress& p) { reports.push_back(p); });
  EXPECT_EQ(e.code(), ErrorCode::internal);
  EXPECT_EQ(e.reason(), "timeout");
  EXPECT_TRUE(e.retryable());
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_NEAR(reports[0].percent, 25, 0.1);  // 0.5 s of 2 s
  expect_no_outputs(req);
}

// ffmpeg runs in the task's scratch directory (its first output's), so anything it writes by a relative
// name stays there: a stand-in ffmpeg writes where it ran into its output.
TEST(Encode, RunsInTheDirectoryOfItsOutputs) {
  TempDir dir;
  const fs::path script = dir / "fake-ffmpeg";
  std::ofstream(script) << "#!/bin/sh\n"
                           "for last; do :; done\n"
                           "pwd > \"${last#file:}\"\n";
  fs::permissions(script, fs::perms::owner_all);
  FfmpegOptions options;
  options.ffmpeg = script.string();
  FfmpegTranscoder transcoder(options);
  auto clip = SharedClips::get("landscape", {});
  TempDir task;
  auto req = request_for(clip, FfmpegTranscoder({}).probe(clip), task, {spec("144p", 256, 144)});
  transcoder.encode(req, {}, {});
  std::ifstream in(req.outputs[0].path);
  std::string cwd;
  std::getline(in, cwd);
  EXPECT_EQ(fs::path(cwd), fs::canonical(task.path()));
}

TEST(Encode, MissingFfmpegIsUnavailable) {
  FfmpegOptions options;
  options.ffmpeg = "framepress-no-such-ffmpeg";
  FfmpegTranscoder transcoder(options);
  auto clip = SharedClips::get("landscape", {});
  TempDir out;
  auto req = request_for(clip, FfmpegTranscoder({}).probe(clip), out, {spec("144p", 256, 144)});
  Error e = encode_error(transcoder, req);
  EXPECT_EQ(e.code(), ErrorCode::unavailable);
  EXPECT_EQ(e.reason(), "encoder_unavailable");
  EXPECT_TRUE(e.retryable());
}

}  // namespace
}  // namespace framepress
