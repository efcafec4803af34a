#include "cli/job.h"

#include <gtest/gtest.h>

namespace framepress::cli {
namespace {

using nlohmann::json;

json job_json() {
  return json::parse(R"({
    "id": "01HZX3K5Q8R9T0V1W2X3Y4Z5A6", "state": "processing", "filename": "clip.mp4",
    "created_at": "2026-11-25T10:00:00.000Z", "updated_at": "2026-11-25T10:00:05.000Z",
    "source": {"container": "mov,mp4", "size": 12900000, "duration": 20.0, "bit_rate": 4900000,
               "video_codec": "h264", "width": 1920, "height": 1080, "rotation": 0, "sample_aspect": 1,
               "display_width": 1920, "display_height": 1080, "frame_rate": 30,
               "audio": {"codec": "aac", "channels": 2, "sample_rate": 48000}},
    "preset": "standard",
    "encoding": {"video_codec": "libx264", "preset": "medium", "crf": 23, "audio_codec": "aac", "audio_bitrate_kbps": 128},
    "renditions": [
      {"name": "720p", "width": 1280, "height": 720, "class": "medium", "state": "done", "attempt": 1,
       "percent": 100, "fps": 0, "speed": 0, "eta_seconds": -1, "size": 5242880, "bit_rate": 2000000,
       "duration": 20, "url": "/api/videos/01HZX3K5Q8R9T0V1W2X3Y4Z5A6/renditions/720p", "error": null},
      {"name": "480p", "width": 854, "height": 480, "class": "small", "state": "encoding", "attempt": 1,
       "percent": 45, "fps": 30.5, "speed": 1.2, "eta_seconds": 42, "size": 0, "bit_rate": 0,
       "duration": 0, "url": null, "error": null}
    ],
    "error": null, "last_event_id": "12"})");
}

TEST(Job, ParsesTheApiJobJson) {
  auto job = parse_job(job_json());
  EXPECT_EQ(job.id, "01HZX3K5Q8R9T0V1W2X3Y4Z5A6");
  EXPECT_EQ(job.state, "processing");
  EXPECT_EQ(job.last_event_id, "12");
  ASSERT_EQ(job.renditions.size(), 2u);
  EXPECT_EQ(job.renditions[0].url, "/api/videos/01HZX3K5Q8R9T0V1W2X3Y4Z5A6/renditions/720p");
  EXPECT_EQ(job.renditions[0].size, 5242880u);
  EXPECT_EQ(job.renditions[1].url, "");
  EXPECT_DOUBLE_EQ(job.renditions[1].eta_seconds, 42);
}

TEST(Job, IsLenientWithMissingAndMistypedFields) {
  auto job = parse_job(json::parse(R"({"id": "X", "renditions": [{"name": "720p", "percent": "lots"}, 7]})"));
  EXPECT_EQ(job.state, "queued");
  ASSERT_EQ(job.renditions.size(), 1u);
  EXPECT_EQ(job.renditions[0].percent, 0);
  EXPECT_DOUBLE_EQ(job.renditions[0].eta_seconds, -1);
  EXPECT_THROW(parse_job(json::array()), json::exception);
}

TEST(Job, EventsMoveTheRenditionsAlong) {
  JobInfo job;
  job.id = "01HZX3K5Q8R9T0V1W2X3Y4Z5A6";
  auto effect = apply_event(job, "snapshot", job_json());
  EXPECT_EQ(effect.changed.size(), 2u);
  EXPECT_FALSE(effect.terminal);

  effect = apply_event(job, "progress",
                       json{{"rendition", "480p"}, {"percent", 80}, {"fps", 31}, {"speed", 1.1}, {"eta_seconds", 5}});
  EXPECT_EQ(effect.changed, std::vector<std::string>{"480p"});
  EXPECT_DOUBLE_EQ(job.rendition("480p")->percent, 80);

  effect = apply_event(job, "retrying", json{{"rendition", "480p"}, {"attempt", 1}, {"reason", "worker died"}, {"will_retry", true}});
  EXPECT_EQ(job.rendition("480p")->state, "queued");
  EXPECT_NE(effect.message.find("attempt 1 failed (worker died)"), std::string::npos);

  apply_event(job, "started", json{{"rendition", "480p"}, {"attempt", 2}, {"worker", "w1"}});
  EXPECT_EQ(job.rendition("480p")->state, "encoding");
  EXPECT_EQ(job.rendition("480p")->attempt, 2);
  EXPECT_DOUBLE_EQ(job.rendition("480p")->percent, 0);

  apply_event(job, "rendition", json{{"rendition", "480p"}, {"size", 1000}, {"bit_rate", 400000}, {"key", "k"}});
  EXPECT_EQ(job.rendition("480p")->state, "done");
  EXPECT_EQ(job.rendition("480p")->url, "/api/videos/01HZX3K5Q8R9T0V1W2X3Y4Z5A6/renditions/480p");

  // Late progress of a finished rendition and unknown events change nothing.
  effect = apply_event(job, "progress", json{{"rendition", "480p"}, {"percent", 10}});
  EXPECT_TRUE(effect.changed.empty());
  EXPECT_EQ(job.rendition("480p")->state, "done");
  effect = apply_event(job, "something_new", json::object());
  EXPECT_TRUE(effect.changed.empty());
  EXPECT_FALSE(effect.terminal);

  effect = apply_event(job, "completed", json::object());
  EXPECT_TRUE(effect.terminal);
  EXPECT_EQ(job.state, "completed");
}

TEST(Job, FailureCancellationAndDeletionEndTheJob) {
  auto job = parse_job(job_json());
  auto effect = apply_event(job, "rendition_failed",
                            json{{"rendition", "480p"}, {"attempt", 3}, {"reason", "moov atom not found"}, {"will_retry", false}});
  EXPECT_EQ(job.rendition("480p")->state, "failed");
  EXPECT_EQ(effect.message, "480p failed: moov atom not found");
  effect = apply_event(job, "failed", json{{"rendition", "480p"}, {"reason", "moov atom not found"}});
  EXPECT_TRUE(effect.terminal);
  EXPECT_EQ(job.error, "480p: moov atom not found");

  job = parse_job(job_json());
  effect = apply_event(job, "cancelled", json::object());
  EXPECT_TRUE(effect.terminal);
  EXPECT_EQ(job.rendition("720p")->state, "done");  // what had ended stays as it was
  EXPECT_EQ(job.rendition("480p")->state, "cancelled");

  job = parse_job(job_json());
  EXPECT_TRUE(apply_event(job, "deleted", json::object()).terminal);
  EXPECT_EQ(job.state, "deleted");
}

TEST(Job, RowsShowWhatMattersInEachState) {
  auto job = parse_job(job_json());
  auto done = rendition_row(*job.rendition("720p"));
  EXPECT_EQ(done.state, "done");
  EXPECT_DOUBLE_EQ(done.fraction, 1);
  EXPECT_EQ(done.detail, "5.0 MiB  2.0 Mb/s");

  auto encoding = rendition_row(*job.rendition("480p"));
  EXPECT_DOUBLE_EQ(encoding.fraction, 0.45);
  EXPECT_EQ(encoding.detail, "30.5 fps  1.20x  ETA 0:42");

  RenditionInfo failed;
  failed.name = "1080p";
  failed.state = "failed";
  failed.error = "ffmpeg exited with 1\nlots of stderr";
  auto row = rendition_row(failed);
  EXPECT_LT(row.fraction, 0);
  EXPECT_EQ(row.detail, "ffmpeg exited with 1");
}

TEST(Job, SummaryHasSourceFactsAndAbsoluteUrls) {
  auto text = format_job(parse_job(job_json()), "http://host:8080");
  EXPECT_NE(text.find("01HZX3K5Q8R9T0V1W2X3Y4Z5A6  processing"), std::string::npos) << text;
  EXPECT_NE(text.find("clip.mp4 (12.3 MiB)"), std::string::npos) << text;
  EXPECT_NE(text.find("1920x1080 h264, 0:20, 30 fps, 4.9 Mb/s; audio aac 2 ch 48000 Hz"), std::string::npos) << text;
  EXPECT_NE(text.find("standard (libx264 medium crf 23)"), std::string::npos) << text;
  EXPECT_NE(text.find("http://host:8080/api/videos/01HZX3K5Q8R9T0V1W2X3Y4Z5A6/renditions/720p"), std::string::npos)
      << text;
  EXPECT_NE(text.find("480p  854x480    encoding    45.0%"), std::string::npos) << text;
}

TEST(Job, ListIsATable) {
  json list{{"videos", json::array({job_json()})}, {"next", nullptr}, {"total", 3}};
  auto text = format_job_list(list);
  EXPECT_NE(text.find("ID"), std::string::npos);
  EXPECT_NE(text.find("01HZX3K5Q8R9T0V1W2X3Y4Z5A6  processing  2026-11-25T10:00:00.000Z  1/2   clip.mp4"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("(1 of 3 shown)"), std::string::npos);
  EXPECT_EQ(format_job_list(json{{"videos", json::array()}}), "no videos\n");
}

}  // namespace
}  // namespace framepress::cli
