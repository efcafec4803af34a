// End to end: the built `framepress serve`, driven over HTTP as a user would, with real ffmpeg.

#include <signal.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "e2e/e2e_support.h"

namespace framepress::e2e {
namespace {

using testing::TempDir;

class ServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    media = std::make_unique<TempDir>();
    data = std::make_unique<TempDir>();
    server = std::make_unique<FramepressProcess>(data->path(), fast_encoding_args());
  }
  static void TearDownTestSuite() {
    if (server) {
      EXPECT_EQ(server->stop(), 0) << server->log();
    }
    server.reset();
    data.reset();
    media.reset();
  }
  void TearDown() override {
    if (HasFailure() && server) std::cerr << "---- server log ----\n" << server->log() << "\n";
  }

  static std::string url() { return server->url(); }
  static std::filesystem::path objects() { return data->path() / "objects"; }

  /// `name` without its extension: make_clip adds the spec's.
  static std::filesystem::path clip(const std::string& name, testing::ClipSpec spec) {
    auto path = media->path() / (name + "." + spec.extension);
    if (!std::filesystem::exists(path)) path = testing::make_clip(media->path(), name, spec);
    return path;
  }
  static std::filesystem::path text_file(const std::string& name, const std::string& content) {
    auto path = media->path() / name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  /// Uploads, expects 201, follows the job to its end and returns the final job JSON.
  nlohmann::json upload_and_finish(const std::filesystem::path& file, const std::string& query = "") {
    auto response = upload_file(url() + "/api/videos" + query, file);
    EXPECT_EQ(response.status, 201) << response.body;
    if (response.status != 201) return {};
    auto job = response.json();
    EXPECT_EQ(response.headers["location"], "/api/videos/" + job["id"].get<std::string>());
    auto stream = follow_job(url(), job["id"]);
    EXPECT_FALSE(stream.events.empty());
    EXPECT_EQ(stream.events.back().event, "completed") << stream.events.back().data;
    return http_get(url() + "/api/videos/" + job["id"].get<std::string>()).json();
  }

  void expect_error(const HttpResponse& response, long status, const std::string& code) {
    EXPECT_EQ(response.status, status) << response.body;
    auto body = nlohmann::json::parse(response.body, nullptr, false);
    ASSERT_TRUE(body.is_object()) << response.body;
    EXPECT_EQ(body["error"]["code"], code) << response.body;
    EXPECT_FALSE(body["error"]["message"].get<std::string>().empty());
  }

  /// Checks every rendition of a finished job with ffprobe and a full decode.
  void expect_renditions_playable(const nlohmann::json& job, bool with_audio) {
    const double source_duration = job["source"]["duration"];
    for (const auto& r : job["renditions"]) {
      SCOPED_TRACE(r["name"].get<std::string>());
      EXPECT_EQ(r["state"], "done");
      auto download = http_get(url() + r["url"].get<std::string>());
      ASSERT_EQ(download.status, 200);
      auto file = media->path() / ("out-" + job["id"].get<std::string>() + "-" + r["name"].get<std::string>() + ".mp4");
      std::ofstream(file, std::ios::binary) << download.body;
      auto facts = testing::inspect(file);
      EXPECT_EQ(facts.width, r["width"].get<int>());
      EXPECT_EQ(facts.height, r["height"].get<int>());
      EXPECT_EQ(facts.rotation, 0);
      EXPECT_NEAR(facts.duration, source_duration, 0.1);
      EXPECT_EQ(facts.video_codec, "h264");
      EXPECT_EQ(facts.audio_codec, with_audio ? "aac" : "");
      EXPECT_TRUE(facts.faststart);
      EXPECT_TRUE(facts.decodes_cleanly);
      EXPECT_EQ(r["size"].get<std::uint64_t>(), download.body.size());
    }
  }

  static inline std::unique_ptr<TempDir> media;
  static inline std::unique_ptr<TempDir> data;
  static inline std::unique_ptr<FramepressProcess> server;
};

}  // namespace

TEST_F(ServeTest, Landscape1080pWithAudioBecomesTheWholeLadder) {
  auto file = clip("landscape", {.width = 1920, .height = 1080, .seconds = 10, .audio = true});
  auto job = upload_and_finish(file);
  ASSERT_TRUE(job.is_object());
  EXPECT_EQ(job["state"], "completed");
  EXPECT_EQ(job["filename"], "landscape.mp4");
  EXPECT_EQ(job["source"]["width"], 1920);
  EXPECT_EQ(job["source"]["audio"]["codec"], "aac");
  std::vector<std::string> names;
  for (const auto& r : job["renditions"]) names.push_back(r["name"]);
  EXPECT_EQ(names, (std::vector<std::string>{"144p", "240p", "360p", "480p", "720p", "1080p"}));
  expect_renditions_playable(job, true);
}

TEST_F(ServeTest, PortraitWithoutAudioKeepsItsShape) {
  auto file = clip("portrait", {.width = 720, .height = 1280, .seconds = 3, .audio = false});
  auto job = upload_and_finish(file);
  ASSERT_TRUE(job.is_object());
  EXPECT_EQ(job["source"]["audio"], nullptr);
  ASSERT_EQ(job["renditions"].back()["name"], "720p");
  EXPECT_EQ(job["renditions"].back()["width"], 720);
  EXPECT_EQ(job["renditions"].back()["height"], 1280);
  expect_renditions_playable(job, false);
}

TEST_F(ServeTest, RotatedPhoneClipComesOutUpright) {
  auto file = clip("rotated", {.width = 640, .height = 360, .seconds = 2, .audio = true, .rotation = 90});
  auto job = upload_and_finish(file, "?renditions=360p,240p");
  ASSERT_TRUE(job.is_object());
  EXPECT_EQ(job["source"]["rotation"], 90);
  ASSERT_EQ(job["renditions"].size(), 2u);
  EXPECT_EQ(job["renditions"][1]["name"], "360p");
  EXPECT_EQ(job["renditions"][1]["width"], 360);
  EXPECT_EQ(job["renditions"][1]["height"], 640);
  expect_renditions_playable(job, true);
}

TEST_F(ServeTest, RawBodyUploadWithFilenameAndPreset) {
  auto file = clip("small", {.width = 320, .height = 180, .seconds = 2});
  std::ifstream in(file, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  auto response = http_request("POST", url() + "/api/videos?filename=..%2F..%2Fmy%20clip.mp4&preset=fast", bytes,
                               {"Content-Type: video/mp4"});
  ASSERT_EQ(response.status, 201) << response.body;
  auto job = response.json();
  EXPECT_EQ(job["filename"], "my clip.mp4");
  EXPECT_EQ(job["preset"], "fast");
  EXPECT_EQ(job["encoding"]["preset"], "veryfast");
  auto stream = follow_job(url(), job["id"]);
  EXPECT_EQ(stream.events.back().event, "completed");
}

TEST_F(ServeTest, EventsStreamSnapshotThenEveryStateChangeThenEnds) {
  auto file = clip("events", {.width = 320, .height = 180, .seconds = 2});
  auto response = upload_file(url() + "/api/videos?renditions=180p", file);
  EXPECT_EQ(response.status, 422);  // 180p is not a rung
  response = upload_file(url() + "/api/videos?renditions=144p", file);
  ASSERT_EQ(response.status, 201) << response.body;
  const std::string id = response.json()["id"];
  // Read until the server ends the stream itself: it must, after the terminal event.
  auto stream = read_sse(url() + "/api/videos/" + id + "/events", {}, [](auto&) { return false; },
                         std::chrono::seconds(300));
  ASSERT_FALSE(stream.events.empty());
  EXPECT_EQ(stream.events.front().event, "snapshot");
  EXPECT_TRUE(stream.closed_by_server);
  auto names = event_names(stream);
  EXPECT_EQ(names.back(), "completed");
  EXPECT_EQ(std::count(names.begin(), names.end(), "rendition"), 1);
  // ids increase
  std::uint64_t previous = 0;
  for (const auto& e : stream.events) {
    ASSERT_FALSE(e.id.empty()) << e.event;
    EXPECT_GE(std::stoull(e.id), previous);
    previous = std::stoull(e.id);
  }
  auto rendition = std::find_if(stream.events.begin(), stream.events.end(), [](auto& e) { return e.event == "rendition"; });
  ASSERT_NE(rendition, stream.events.end());
  auto data = rendition->json();
  EXPECT_EQ(data["rendition"], "144p");
  EXPECT_GT(data["size"].get<int>(), 0);
  EXPECT_GT(data["bit_rate"].get<int>(), 0);

  // A late subscriber: the whole final state, then the terminal event, then the end.
  auto late = follow_job(url(), id);
  ASSERT_EQ(event_names(late), (std::vector<std::string>{"snapshot", "completed"}));
  EXPECT_EQ(late.events[0].json()["state"], "completed");
  EXPECT_EQ(late.events[0].id, "");
  EXPECT_EQ(late.events[1].id, stream.events.back().id);

  // Reconnecting after the end: 204, which stops EventSource.
  auto after_end = read_sse(url() + "/api/videos/" + id + "/events", {"Last-Event-ID: " + stream.events.back().id},
                            [](auto&) { return false; }, std::chrono::seconds(10));
  EXPECT_EQ(after_end.status, 204);

  // Reconnecting mid-way: no snapshot, every state change after that id exactly once.
  auto replay = read_sse(url() + "/api/videos/" + id + "/events", {"Last-Event-ID: 1"}, [](auto&) { return false; },
                         std::chrono::seconds(10));
  auto replay_names = event_names(replay);
  EXPECT_EQ(std::count(replay_names.begin(), replay_names.end(), "snapshot"), 0);
  EXPECT_EQ(std::count(replay_names.begin(), replay_names.end(), "rendition"), 1);
  EXPECT_EQ(std::count(replay_names.begin(), replay_names.end(), "started"), 1);
  EXPECT_EQ(replay_names.back(), "completed");
}

TEST_F(ServeTest, SeveralJobsOnOneStream) {
  auto file = clip("multi", {.width = 320, .height = 180, .seconds = 1});
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    auto response = upload_file(url() + "/api/videos?renditions=144p", file);
    ASSERT_EQ(response.status, 201);
    ids.push_back(response.json()["id"]);
  }
  std::set<std::string> completed;
  auto stream = read_sse(
      url() + "/api/events?ids=" + ids[0] + "," + ids[1] + "," + ids[2], {},
      [&](const SseEvent& e) {
        // A job that ended before the stream opened shows it in its snapshot.
        auto data = e.json();
        if (e.event == "completed") completed.insert(data["video_id"].get<std::string>());
        if (e.event == "snapshot" && data["state"] == "completed") completed.insert(data["id"].get<std::string>());
        return false;
      },
      std::chrono::seconds(300));
  EXPECT_TRUE(stream.closed_by_server);
  EXPECT_EQ(completed, std::set<std::string>(ids.begin(), ids.end()));
  EXPECT_EQ(std::count_if(stream.events.begin(), stream.events.end(), [](auto& e) { return e.event == "snapshot"; }), 3);
  // The cursor of the last event resumes every job past its end: nothing more to say.
  auto resumed = read_sse(url() + "/api/events?ids=" + ids[0] + "," + ids[1] + "," + ids[2],
                          {"Last-Event-ID: " + stream.events.back().id}, [](auto&) { return false; },
                          std::chrono::seconds(10));
  EXPECT_TRUE(resumed.events.empty());
  EXPECT_TRUE(resumed.closed_by_server);
}

TEST_F(ServeTest, DownloadsSupportRangesAndNameTheFile) {
  auto file = clip("ranges", {.width = 320, .height = 180, .seconds = 2});
  auto job = upload_and_finish(file, "?renditions=144p");
  ASSERT_TRUE(job.is_object());
  const std::string path = job["renditions"][0]["url"];
  auto whole = http_get(url() + path);
  ASSERT_EQ(whole.status, 200);
  EXPECT_EQ(whole.headers["accept-ranges"], "bytes");
  EXPECT_EQ(whole.headers["content-type"], "video/mp4");
  EXPECT_NE(whole.headers["content-disposition"].find("ranges-144p.mp4"), std::string::npos);
  auto part = http_get(url() + path, {"Range: bytes=100-199"});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, whole.body.substr(100, 100));
  EXPECT_EQ(part.headers["content-range"], "bytes 100-199/" + std::to_string(whole.body.size()));
  auto tail = http_get(url() + path, {"Range: bytes=-10"});
  EXPECT_EQ(tail.body, whole.body.substr(whole.body.size() - 10));
  auto beyond = http_get(url() + path, {"Range: bytes=" + std::to_string(whole.body.size()) + "-"});
  EXPECT_EQ(beyond.status, 416);
  auto source = http_get(url() + "/api/videos/" + job["id"].get<std::string>() + "/source", {"Range: bytes=0-3"});
  EXPECT_EQ(source.status, 206);
  EXPECT_EQ(source.body.size(), 4u);
  auto head = http_request("HEAD", url() + path);
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.headers["content-length"], std::to_string(whole.body.size()));
  expect_error(http_get(url() + "/api/videos/" + job["id"].get<std::string>() + "/renditions/2160p"), 404, "not_found");
}

TEST_F(ServeTest, BadUploadsAreRefusedWithAReasonAndLeaveNothingBehind) {
  auto before = files_under(objects());
  auto audio_only = media->path() / "audio.mp4";
  testing::run_command({"ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=duration=2", "-c:a", "aac", "-f", "mp4",
                        audio_only.string()});
  auto still = media->path() / "still.mp4";
  testing::run_command({"ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x180", "-frames:v", "1",
                        "-f", "image2", "-update", "1", "-c:v", "png", still.string()});
  auto good = clip("for-truncation", {.width = 320, .height = 180, .seconds = 2});
  auto truncated = media->path() / "truncated.mp4";
  {
    std::ifstream in(good, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  auto playlist = text_file("playlist.mp4", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n" + good.string() +
                                                "\n#EXT-X-ENDLIST\n");
  struct Case {
    std::filesystem::path file;
    std::string reason;
  };
  std::vector<Case> cases{{text_file("empty.mp4", ""), "empty"},
                          {text_file("text.mp4", "this is not a video, just some text\n"), ""},
                          {audio_only, "audio_only"},
                          {still, ""},
                          {truncated, "truncated"},
                          {playlist, "unsupported_format"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file.filename().string());
    auto response = upload_file(url() + "/api/videos", c.file);
    EXPECT_EQ(response.status, 422) << response.body;
    auto body = nlohmann::json::parse(response.body, nullptr, false);
    ASSERT_TRUE(body.is_object()) << response.body;
    if (!c.reason.empty()) {
      EXPECT_EQ(body["error"]["code"], c.reason) << response.body;
    }
    EXPECT_FALSE(body["error"]["message"].get<std::string>().empty());
  }
  expect_error(upload_form(url() + "/api/videos", {FormPart{.name = "other", .value = "x"}}), 400, "no_file");
  expect_error(http_request("POST", url() + "/api/videos", "hello", {"Content-Type: text/plain"}), 415,
               "unsupported_media_type");
  expect_error(upload_file(url() + "/api/videos?renditions=4320p", good), 422, "unknown_rendition");
  expect_error(upload_file(url() + "/api/videos?renditions=1440p", good), 422, "above_cap");
  expect_error(upload_file(url() + "/api/videos?renditions=720p", good), 422, "above_source");
  expect_error(upload_file(url() + "/api/videos?preset=turbo", good), 422, "unknown_preset");
  EXPECT_EQ(files_under(objects()), before);
  EXPECT_TRUE(files_under(data->path() / "scratch").empty());
  EXPECT_EQ(http_get(url() + "/healthz").status, 200);
}

TEST_F(ServeTest, ErrorsAreJsonWithTheRightStatus) {
  expect_error(http_get(url() + "/api/videos/01ARZ3NDEKTSV4RRFFQ69G5FAV"), 404, "not_found");
  expect_error(http_get(url() + "/api/videos/not-an-id"), 404, "not_found");
  expect_error(http_request("PUT", url() + "/api/videos"), 405, "method_not_allowed");
  expect_error(http_get(url() + "/api/videos?limit=0"), 400, "bad_request");
  expect_error(http_get(url() + "/api/events"), 400, "bad_request");
  auto presets = http_get(url() + "/api/presets");
  ASSERT_EQ(presets.status, 200);
  EXPECT_EQ(presets.json()["max_resolution"], 1080);
  EXPECT_EQ(presets.json()["default_preset"], "standard");
}

TEST_F(ServeTest, ListIsNewestFirstAndPaged) {
  auto file = clip("list", {.width = 320, .height = 180, .seconds = 1});
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    auto r = upload_file(url() + "/api/videos?renditions=144p", file);
    ASSERT_EQ(r.status, 201);
    ids.push_back(r.json()["id"]);
  }
  auto first = http_get(url() + "/api/videos?limit=2").json();
  ASSERT_EQ(first["videos"].size(), 2u);
  EXPECT_EQ(first["videos"][0]["id"], ids[2]);
  EXPECT_EQ(first["videos"][1]["id"], ids[1]);
  ASSERT_TRUE(first["next"].is_string());
  auto second = http_get(url() + "/api/videos?limit=2&before=" + first["next"].get<std::string>()).json();
  EXPECT_EQ(second["videos"][0]["id"], ids[0]);
  for (const auto& id : ids) follow_job(url(), id);
}

TEST_F(ServeTest, CancelKillsTheEncodersAndKeepsTheJob) {
  // Long enough, and slow enough, that the encode is still running when the cancel arrives.
  auto file = clip("long", {.width = 1280, .height = 720, .seconds = 30});
  auto response = upload_file(url() + "/api/videos?preset=quality", file);
  ASSERT_EQ(response.status, 201) << response.body;
  const std::string id = response.json()["id"];
  auto started = read_sse(url() + "/api/videos/" + id + "/events", {},
                          [](const SseEvent& e) { return e.event == "progress"; }, std::chrono::seconds(120));
  ASSERT_EQ(started.events.back().event, "progress");
  EXPECT_FALSE(server->children().empty());
  auto cancelled = http_request("POST", url() + "/api/videos/" + id + "/cancel");
  ASSERT_EQ(cancelled.status, 202) << cancelled.body;
  EXPECT_EQ(cancelled.json()["state"], "cancelled");
  for (const auto& r : cancelled.json()["renditions"]) EXPECT_NE(r["state"], "encoding");
  // The encoders are killed: wait (bounded) until no child is left.
  for (int i = 0; i < 200 && !server->children().empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(server->children().empty());
  auto job = http_get(url() + "/api/videos/" + id).json();
  EXPECT_EQ(job["state"], "cancelled");
  expect_error(http_request("POST", url() + "/api/videos/" + id + "/cancel"), 409, "ended");

  EXPECT_EQ(http_request("DELETE", url() + "/api/videos/" + id).status, 204);
  expect_error(http_get(url() + "/api/videos/" + id), 404, "not_found");
  EXPECT_FALSE(std::filesystem::exists(objects() / "videos" / id));
}

TEST_F(ServeTest, PrototypeRoutesKeepTheirShapes) {
  auto file = clip("proto", {.width = 320, .height = 180, .seconds = 1});
  auto response = upload_form(url() + "/upload", {FormPart{.name = "video", .file = file, .content_type = "video/mp4"}});
  ASSERT_EQ(response.status, 200) << response.body;
  auto body = response.json();
  const std::string id = body["video"];
  EXPECT_EQ(body["message"], "File saved as " + id);
  auto no_part = upload_form(url() + "/upload", {FormPart{.name = "other", .value = "x"}});
  EXPECT_EQ(no_part.status, 400);
  EXPECT_EQ(no_part.json()["error"], "No file part in the request");
  auto not_video = upload_form(url() + "/upload", {FormPart{.name = "video", .file = file, .content_type = "text/plain"}});
  EXPECT_EQ(not_video.json()["error"], "File is not a video");

  auto job = http_get(url() + "/api/videos/" + id).json();
  const std::size_t expected = job["renditions"].size();
  std::set<std::string> resolutions;
  auto stream = read_sse(
      url() + "/compression-status/" + id, {},
      [&](const SseEvent& e) {
        auto data = e.json();
        EXPECT_EQ(e.event, "");
        EXPECT_EQ(e.id, "");
        EXPECT_EQ(data["file_name"], "proto-" + data["resolution"].get<std::string>() + ".mp4");
        EXPECT_TRUE(data.contains("bucket"));
        EXPECT_TRUE(data.contains("uploaded_at"));
        resolutions.insert(data["resolution"]);
        return resolutions.size() == expected;
      },
      std::chrono::seconds(300));
  EXPECT_EQ(resolutions.size(), expected);
  EXPECT_FALSE(stream.closed_by_server);  // the prototype's stream never ends by itself
}

TEST_F(ServeTest, SubmitFromTheCommandLine) {
  auto file = clip("cli", {.width = 320, .height = 180, .seconds = 1});
  int exit_code = -1;
  auto output = testing::run_command(
      {framepress_binary().string(), "submit", file.string(), "--server", url(), "--renditions", "144p"}, &exit_code);
  EXPECT_EQ(exit_code, 0) << output;
  EXPECT_NE(output.find(url() + "/api/videos/"), std::string::npos) << output;
  EXPECT_NE(output.find("/renditions/144p"), std::string::npos) << output;

  auto bad = text_file("cli-bad.mp4", "not a video");
  testing::run_command({framepress_binary().string(), "submit", bad.string(), "--server", url()}, &exit_code);
  EXPECT_NE(exit_code, 0);
  testing::run_command({framepress_binary().string(), "submit", "/nonexistent.mp4", "--server", url()}, &exit_code);
  EXPECT_NE(exit_code, 0);
}

TEST_F(ServeTest, MetricsCountUploadsJobsTasksAndAnswers) {
  // Each test runs in a process of its own with a server of its own: every count starts at zero here.
  auto file = clip("metrics", {.width = 426, .height = 240, .seconds = 2});
  auto job = upload_and_finish(file);
  ASSERT_TRUE(job.is_object());
  // 240p source: 144p and 240p, both of class sd.
  ASSERT_EQ(job["renditions"].size(), 2u);
  expect_error(http_request("POST", url() + "/api/videos", "hello", {"Content-Type: text/plain"}), 415,
               "unsupported_media_type");

  const std::map<std::string, double> expected{
      {R"(framepress_build_info{role="serve",version=")" + std::string(FRAMEPRESS_VERSION) + "\"}", 1},
      {R"(framepress_uploads_total{result="accepted"})", 1},
      {R"(framepress_uploads_total{result="rejected"})", 1},
      {"framepress_upload_bytes_total", static_cast<double>(std::filesystem::file_size(file))},
      {"framepress_jobs_created_total", 1},
      {R"(framepress_jobs_ended_total{state="completed"})", 1},
      {R"(framepress_jobs{state="completed"})", 1},
      {R"(framepress_jobs{state="processing"})", 0},
      // Each rendition a task that waited in the queue, then ended done; none runs now.
      {R"(framepress_task_duration_seconds_count{class="sd",outcome="done"})", 2},
      {R"(framepress_task_queue_wait_seconds_count{class="sd"})", 2},
      {R"(framepress_tasks_running{class="sd"})", 0},
      {R"(framepress_http_responses_total{code="201"})", 1},
      {R"(framepress_http_errors_total{code="415"})", 1},
      {"framepress_sse_clients", 0},
  };
  // A worker ends a task's timer just after publishing its rendition.done, and the server counts an answer
  // once it is over: the counts settle a moment after the client has seen the end. Wait for them, boundedly.
  std::string exposition;
  std::map<std::string, double> samples;
  auto settled = [&] {
    for (const auto& [series, value] : expected) {
      auto it = samples.find(series);
      if (it == samples.end() || it->second != value) return false;
    }
    return true;
  };
  for (int i = 0; i < 200 && (samples.empty() || !settled()); ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto response = http_get(url() + "/metrics");
    ASSERT_EQ(response.status, 200);
    EXPECT_EQ(response.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    exposition = response.body;
    samples = metric_samples(exposition);
  }
  for (const auto& [series, value] : expected) {
    auto it = samples.find(series);
    ASSERT_NE(it, samples.end()) << series << " missing from\n" << exposition;
    EXPECT_EQ(it->second, value) << series;
  }
  EXPECT_GT(samples[R"(framepress_encoded_frames_total{class="sd"})"], 0);
  // One encode when a worker took both renditions into one decode, two when it began the first before the
  // second was queued.
  EXPECT_GE(samples[R"(framepress_encode_fps_count{class="sd"})"], 1);
  EXPECT_LE(samples[R"(framepress_encode_fps_count{class="sd"})"], 2);
  EXPECT_EQ(samples.count(R"(framepress_http_errors_total{code="201"})"), 0u);
}

TEST(ServeAlone, JsonLogsNameTheJobAndRenditionOnEveryLineAboutThem) {
  TempDir data;
  TempDir media;
  auto args = fast_encoding_args();
  args.insert(args.end(), {"--log-format", "json"});
  FramepressProcess server(data.path(), args);
  auto clip = testing::make_clip(media.path(), "logged", {.width = 426, .height = 240, .seconds = 1});
  auto created = upload_file(server.url() + "/api/videos", clip);
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = created.json()["id"];
  ASSERT_EQ(follow_job(server.url(), id).events.back().event, "completed");
  EXPECT_EQ(server.stop(), 0);

  std::istringstream log(server.log());
  int lines = 0, about_the_job = 0, with_rendition = 0;
  for (std::string line; std::getline(log, line);) {
    ++lines;
    auto entry = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(entry.is_object()) << "not a JSON line: " << line;
    EXPECT_TRUE(entry.contains("time") && entry.contains("level") && entry.contains("message")) << line;
    if (line.find(id) == std::string::npos) continue;
    ++about_the_job;
    EXPECT_EQ(entry.value("video_id", ""), id) << line;
    EXPECT_EQ(entry["message"].get<std::string>().find(id), std::string::npos) << "the id belongs in video_id: " << line;
    if (entry.contains("rendition")) {
      ++with_rendition;
      EXPECT_NE(entry["rendition"].get<std::string>().find("p"), std::string::npos) << line;
    }
  }
  EXPECT_GT(lines, 3);
  EXPECT_GE(about_the_job, 3);   // accepted, encoding, done …
  EXPECT_GE(with_rendition, 2);  // each rendition's "done"
}

TEST(ServeAlone, UploadOverTheLimitIs413WithoutReadingIt) {
  TempDir data;
  FramepressProcess server(data.path(), {"--max-upload-bytes", "1MiB"});
  auto response = upload_generated(server.url() + "/api/videos", 64ULL << 20, "video/mp4",
                                   [](char* buffer, std::size_t n, std::uint64_t) { std::memset(buffer, 'x', n); });
  EXPECT_EQ(response.status, 413) << response.body;
  EXPECT_EQ(nlohmann::json::parse(response.body)["error"]["code"], "payload_too_large");
  EXPECT_TRUE(files_under(data.path() / "objects").empty());
  EXPECT_EQ(server.stop(), 0);
}

TEST(ServeAlone, A2GiBUploadStreamsThroughFixedBuffers) {
  TempDir data;
  FramepressProcess server(data.path(), {"--workers", "1"});
  const std::uint64_t baseline = server.rss_bytes();
  std::mt19937 rng(7);
  std::vector<char> noise(1 << 16);
  for (auto& c : noise) c = static_cast<char>(rng());
  auto response = upload_generated(server.url() + "/api/videos", 2ULL << 30, "video/mp4",
                                   [&](char* buffer, std::size_t n, std::uint64_t offset) {
                                     for (std::size_t i = 0; i < n; ++i) buffer[i] = noise[(offset + i) % noise.size()];
                                   });
  // Random bytes are no video: the whole body was received and spooled, then refused by the probe.
  EXPECT_EQ(response.status, 422) << response.body;
  const std::uint64_t peak = server.peak_rss_bytes();
  EXPECT_LT(peak - std::min(peak, baseline), 64ULL << 20) << "baseline " << baseline << " peak " << peak;
  EXPECT_TRUE(files_under(data.path() / "objects").empty());
  EXPECT_TRUE(files_under(data.path() / "scratch").empty());
  EXPECT_EQ(server.stop(), 0);
}

// --limits-encoder-cpu-time reaches ffmpeg as RLIMIT_CPU: one second of processor time is far less than a
// 720p x264 "medium" encode of six seconds of video needs, so the rendition fails, at once and for good,
// with the limit as its reason.
TEST(ServeAlone, EncoderCpuTimeLimitFailsTheRenditionWithItsReason) {
  TempDir media;
  TempDir data;
  auto file = testing::make_clip(media.path(), "busy", {.width = 1280, .height = 720, .seconds = 6});
  FramepressProcess server(data.path(), {"--limits-encoder-cpu-time", "1s", "--encoder-preset", "medium", "--max-retries", "2"});
  auto response = upload_file(server.url() + "/api/videos?renditions=720p", file);
  ASSERT_EQ(response.status, 201) << response.body;
  const std::string id = response.json()["id"];
  auto stream = follow_job(server.url(), id);
  ASSERT_FALSE(stream.events.empty()) << server.log();
  EXPECT_EQ(stream.events.back().event, "failed") << server.log();
  auto job = http_get(server.url() + "/api/videos/" + id).json();
  const std::string error = job["renditions"][0]["error"].is_string() ? job["renditions"][0]["error"].get<std::string>() : "";
  EXPECT_NE(error.find("CPU-time limit"), std::string::npos) << job.dump();
  EXPECT_EQ(job["renditions"][0]["attempt"], 1) << "a CPU limit is not worth another attempt: " << job.dump();
  EXPECT_TRUE(files_under(data.path() / "scratch").empty());
  EXPECT_EQ(server.stop(), 0);
}

// A storage URL with user information is refused before anything starts, and the secret is not echoed.
TEST(ServeAlone, StorageUrlWithCredentialsIsRefusedWithoutShowingThem) {
  TempDir data;
  auto result = testing::run_process({framepress_binary().string(), "serve", "--data-dir", data.path().string(),
                                      "--listen", "127.0.0.1:0", "--storage",
                                      "s3://AKIDEXAMPLE:hunter2secret@videos?endpoint=http://127.0.0.1:9"});
  const std::string out = result.out + result.err;
  EXPECT_NE(result.exit_code, 0) << out;
  EXPECT_NE(out.find("--storage"), std::string::npos) << out;
  EXPECT_EQ(out.find("hunter2secret"), std::string::npos) << out;
  EXPECT_EQ(out.find("AKIDEXAMPLE"), std::string::npos) << out;
}

TEST(ServeAlone, KillNineMidEncodeThenRestartCompletesEveryJobOnce) {
  TempDir media;
  TempDir data;
  auto file = testing::make_clip(media.path(), "crash", {.width = 1280, .height = 720, .seconds = 20});
  auto server = std::make_unique<FramepressProcess>(data.path(), std::vector<std::string>{"--workers", "2", "--encoder-preset", "veryfast"});
  std::vector<std::string> ids;
  for (int i = 0; i < 2; ++i) {
    auto response = upload_file(server->url() + "/api/videos?renditions=144p,360p,720p", file);
    ASSERT_EQ(response.status, 201) << response.body;
    ids.push_back(response.json()["id"]);
  }
  // Kill it while the first job is encoding.
  auto progress = read_sse(server->url() + "/api/videos/" + ids[0] + "/events", {},
                           [](const SseEvent& e) { return e.event == "progress"; }, std::chrono::seconds(120));
  ASSERT_EQ(progress.events.back().event, "progress");
  server->kill_hard();

  server->restart();
  for (const auto& id : ids) {
    auto stream = follow_job(server->url(), id);
    ASSERT_FALSE(stream.events.empty()) << server->log();
    EXPECT_EQ(stream.events.back().event, "completed") << server->log();
    // Replaying the whole log: each rendition reported done exactly once.
    auto replay = read_sse(server->url() + "/api/videos/" + id + "/events", {"Last-Event-ID: 0"},
                           [](auto&) { return false; }, std::chrono::seconds(30));
    auto names = event_names(replay);
    EXPECT_EQ(std::count(names.begin(), names.end(), "rendition"), 3) << id;
    auto stored = files_under(data.path() / "objects" / "videos" / id);
    EXPECT_EQ(stored, (std::vector<std::string>{"renditions/144p.mp4", "renditions/360p.mp4", "renditions/720p.mp4",
                                                 "source"}));
  }
  EXPECT_EQ(server->stop(), 0);
}

}  // namespace framepress::e2e

namespace framepress::e2e {

TEST(ServeWithTokens, TokensGateUploadsAndEachTokenSeesItsOwnJobs) {
  TempDir media;
  TempDir data;
  // Tokens as `framepress token` makes them: the file holds hashes only.
  struct Made {
    std::string secret;
    std::string entry;
  };
  auto make = [&](const std::string& name, const std::string& scopes) {
    int code = -1;
    auto out = testing::run_command({framepress_binary().string(), "token", "--name", name, "--scopes", scopes}, &code);
    EXPECT_EQ(code, 0);
    return Made{out.substr(0, out.find('\n')), out.substr(out.find('\n') + 1)};
  };
  Made alice = make("alice", "upload,read");
  Made bob = make("bob", "upload,read");
  Made viewer = make("viewer", "read");
  Made admin = make("root", "admin");
  auto tokens_file = data.path() / "tokens.toml";
  std::ofstream(tokens_file) << alice.entry << bob.entry << viewer.entry << admin.entry;
  {
    std::ifstream in(tokens_file);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(text.find(alice.secret), std::string::npos) << "the file must not hold the token itself";
  }
  FramepressProcess server(data.path() / "server", {"--tokens-file", tokens_file.string(), "--encoder-preset", "ultrafast"});
  auto clip = testing::make_clip(media.path(), "owned", {.width = 320, .height = 180, .seconds = 1});
  auto bearer = [](const Made& m) { return "Authorization: Bearer " + m.secret; };

  auto anonymous = upload_file(server.url() + "/api/videos", clip);
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_EQ(http_get(server.url() + "/api/videos").status, 401);
  EXPECT_EQ(http_get(server.url() + "/api/videos", {"Authorization: Bearer fp_wrong"}).status, 401);
  // Every 401 names the scheme it wants (RFC 7235, RFC 6750), the prototype's route too.
  for (const auto& refused : {anonymous, http_get(server.url() + "/api/videos", {"Authorization: Bearer fp_wrong"}),
                              http_get(server.url() + "/api/videos/01ARZ3NDEKTSV4RRFFQ69G5FAV/events"),
                              upload_form(server.url() + "/upload", {FormPart{.name = "file", .file = clip}})}) {
    EXPECT_EQ(refused.status, 401) << refused.body;
    EXPECT_EQ(refused.headers.count("www-authenticate") ? refused.headers.at("www-authenticate") : "(none)", "Bearer");
  }
  EXPECT_EQ(http_get(server.url() + "/healthz").status, 200);

  auto read_only = http_request("POST", server.url() + "/api/videos", "x", {bearer(viewer), "Content-Type: video/mp4"});
  EXPECT_EQ(read_only.status, 403) << read_only.body;

  int code = -1;
  auto submitted = testing::run_command({framepress_binary().string(), "submit", clip.string(), "--server", server.url(),
                                         "--renditions", "144p", "--token", alice.secret},
                                        &code);
  ASSERT_EQ(code, 0) << submitted;
  auto alices = http_get(server.url() + "/api/videos", {bearer(alice)}).json();
  ASSERT_EQ(alices["videos"].size(), 1u);
  const std::string id = alices["videos"][0]["id"];

  // Bob neither sees nor touches Alice's job; the admin does.
  EXPECT_EQ(http_get(server.url() + "/api/videos", {bearer(bob)}).json()["videos"].size(), 0u);
  EXPECT_EQ(http_get(server.url() + "/api/videos/" + id, {bearer(bob)}).status, 404);
  EXPECT_EQ(http_request("DELETE", server.url() + "/api/videos/" + id, "", {bearer(bob)}).status, 404);
  EXPECT_EQ(http_get(server.url() + "/api/videos/" + id, {bearer(admin)}).status, 200);
  EXPECT_EQ(http_get(server.url() + "/api/videos/" + id, {bearer(viewer)}).status, 404);

  // EventSource and <video> cannot send headers: reads take the token in the query.
  auto download = http_get(server.url() + "/api/videos/" + id + "/renditions/144p?access_token=" + alice.secret);
  EXPECT_EQ(download.status, 200);
  auto events = read_sse(server.url() + "/api/videos/" + id + "/events?access_token=" + alice.secret, {},
                         [](auto&) { return false; }, std::chrono::seconds(30));
  EXPECT_EQ(events.status, 200);
  ASSERT_FALSE(events.events.empty());
  EXPECT_EQ(events.events.front().event, "snapshot");
  EXPECT_EQ(http_request("DELETE", server.url() + "/api/videos/" + id + "?access_token=" + alice.secret).status, 401);
  EXPECT_EQ(http_request("DELETE", server.url() + "/api/videos/" + id, "", {bearer(alice)}).status, 204);
  EXPECT_EQ(server.stop(), 0);
}

}  // namespace framepress::e2e
