// The client against a tiny in-test HTTP server (fake_server.h) answering canned responses. The real
// server end to end is tested in tests/e2e.

#include "cli/client.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fake_server.h"

namespace framepress::cli {
namespace {

using nlohmann::json;
using testing::Connection;
using testing::FakeServer;
using testing::Request;

constexpr const char* kId = "01HZX3K5Q8R9T0V1W2X3Y4Z5A6";

std::string video_path() { return std::string("/api/videos/") + kId; }

/// The job JSON as the API gives it, with every rendition in `state`.
json job(const std::string& state, const std::string& rendition_state, std::vector<std::string> names = {"720p", "480p"}) {
  json renditions = json::array();
  for (const auto& name : names) {
    const bool done = rendition_state == "done";
    renditions.push_back({{"name", name},
                          {"width", name == "720p" ? 1280 : 854},
                          {"height", name == "720p" ? 720 : 480},
                          {"class", "medium"},
                          {"state", rendition_state},
                          {"attempt", 1},
                          {"percent", done ? 100 : 0},
                          {"fps", 0},
                          {"speed", 0},
                          {"eta_seconds", -1},
                          {"size", done ? 1048576 : 0},
                          {"bit_rate", 0},
                          {"duration", 0},
                          {"url", done ? json(video_path() + "/renditions/" + name) : json(nullptr)},
                          {"error", nullptr}});
  }
  return {{"id", kId},
          {"state", state},
          {"filename", "clip.mp4"},
          {"created_at", "2026-11-25T10:00:00.000Z"},
          {"updated_at", "2026-11-25T10:00:00.000Z"},
          {"source", {{"size", 4096}, {"width", 1920}, {"height", 1080}, {"video_codec", "h264"}, {"duration", 2}}},
          {"preset", "standard"},
          {"encoding", json::object()},
          {"renditions", renditions},
          {"error", nullptr},
          {"last_event_id", "2"}};
}

std::string progress(const std::string& name, double percent) {
  return json{{"type", "rendition.progress"}, {"video_id", kId}, {"rendition", name},
              {"percent", percent}, {"fps", 25.0}, {"speed", 1.0}, {"eta_seconds", 3}}
      .dump();
}

std::string done(const std::string& name) {
  return json{{"type", "rendition.done"}, {"video_id", kId}, {"rendition", name}, {"key", "k"}, {"size", 1048576},
              {"bit_rate", 1000000}, {"duration", 2}, {"width", 1280}, {"height", 720}}
      .dump();
}

const std::string kApiError422 =
    R"({"error":{"code":"audio_only","message":"the upload has no video stream"}})";

/// A small file to upload, removed at the end of the test.
class TempFile {
 public:
  explicit TempFile(std::string_view content, std::string name = "clip.mp4") {
    dir_ = std::filesystem::temp_directory_path() / ("framepress-cli-test-" + std::to_string(::getpid()) + "-" +
                                                     std::to_string(counter_++));
    std::filesystem::create_directories(dir_);
    path_ = dir_ / name;
    std::ofstream(path_, std::ios::binary) << content;
  }
  ~TempFile() { std::filesystem::remove_all(dir_); }
  const std::filesystem::path& path() const { return path_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  static inline std::atomic<int> counter_{0};
  std::filesystem::path dir_;
  std::filesystem::path path_;
};

const std::string kContent = "not really a video, but the client does not care: " + std::string(20000, 'x');

struct Run {
  int code = -1;
  std::string out;
  std::string err;
};

Run run_submit(const SubmitOptions& options) {
  std::ostringstream out, err;
  Run run;
  run.code = submit(options, out, err);
  run.out = out.str();
  run.err = err.str();
  return run;
}

Run run_status(const StatusOptions& options) {
  std::ostringstream out, err;
  Run run;
  run.code = status(options, out, err);
  run.out = out.str();
  run.err = err.str();
  return run;
}

std::vector<Request> requests_to(const FakeServer& server, std::string_view prefix) {
  std::vector<Request> out;
  for (auto& r : server.requests()) {
    if (r.target.starts_with(prefix)) out.push_back(r);
  }
  return out;
}

// ---- submit --------------------------------------------------------------------------------------

TEST(Submit, UploadsFollowsTheJobAndPrintsTheDownloadUrls) {
  FakeServer server([](const Request& request, Connection& c) {
    if (request.method == "POST") {
      c.send(FakeServer::response(201, "application/json", job("queued", "queued").dump(),
                                  std::string("Location: ") + video_path() + "\r\n"));
    } else if (request.target == video_path() + "/events") {
      c.send(FakeServer::sse_head());
      c.send(": heartbeat\n\n");
      c.send(FakeServer::sse_event("2", "snapshot", job("queued", "queued").dump()));
      c.send(FakeServer::sse_event("4", "progress", progress("720p", 50)));
      c.send(FakeServer::sse_event("6", "rendition", done("720p")));
      c.send(FakeServer::sse_event("8", "rendition", done("480p")));
      c.send(FakeServer::sse_event("9", "completed", "{}"));
    } else if (request.target == video_path()) {
      c.send(FakeServer::response(200, "application/json", job("completed", "done").dump()));
    } else {
      c.send(FakeServer::response(404, "application/json", R"({"error":{"code":"not_found","message":"no"}})"));
    }
  });
  TempFile file(kContent);

  SubmitOptions options;
  options.server = server.url() + "/";  // a trailing slash is harmless
  options.file = file.path();
  options.renditions = {"720p", "480p"};
  options.preset = "fast web";
  options.token = "s3cret";
  auto run = run_submit(options);

  EXPECT_EQ(run.code, exit_code::ok) << run.err;
  EXPECT_NE(run.out.find("720p  " + server.url() + video_path() + "/renditions/720p\n"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("480p  " + server.url() + video_path() + "/renditions/480p\n"), std::string::npos) << run.out;
  EXPECT_NE(run.err.find("upload: "), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("720p: encoding 50.0%"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("720p: done"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("completed"), std::string::npos) << run.err;

  auto requests = server.requests();
  ASSERT_GE(requests.size(), 3u);
  const auto& upload = requests[0];
  EXPECT_EQ(upload.method, "POST");
  EXPECT_EQ(upload.target, "/api/videos?renditions=720p,480p&preset=fast%20web");
  EXPECT_NE(upload.header("content-type").find("multipart/form-data"), std::string::npos);
  EXPECT_NE(upload.body.find(R"(name="video"; filename="clip.mp4")"), std::string::npos);
  EXPECT_NE(upload.body.find(kContent), std::string::npos);
  EXPECT_FALSE(upload.has_header("expect"));

  auto events = requests_to(server, video_path() + "/events");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_FALSE(events[0].has_header("last-event-id"));
  EXPECT_EQ(events[0].header("accept"), "text/event-stream");
  for (const auto& r : requests) EXPECT_EQ(r.header("authorization"), "Bearer s3cret") << r.target;
}

TEST(Submit, PrintsTheApiErrorWhenTheServerRefusesTheUpload) {
  FakeServer server([](const Request&, Connection& c) {
    c.send(FakeServer::response(422, "application/json", kApiError422));
  });
  TempFile file(kContent);
  SubmitOptions options;
  options.server = server.url();
  options.file = file.path();
  auto run = run_submit(options);

  EXPECT_EQ(run.code, exit_code::refused);
  EXPECT_EQ(run.out, "");
  EXPECT_NE(run.err.find("the server refused the upload: the upload has no video stream (audio_only, HTTP 422)"),
            std::string::npos)
      << run.err;
  EXPECT_EQ(server.requests().size(), 1u);
  EXPECT_FALSE(server.requests()[0].has_header("authorization"));  // no token, no header
}

TEST(Submit, ResumesADroppedStreamWithLastEventId) {
  std::atomic<int> connections{0};
  FakeServer server([&](const Request& request, Connection& c) {
    if (request.method == "POST") {
      c.send(FakeServer::response(201, "application/json", job("queued", "queued").dump()));
    } else if (request.target == video_path() + "/events") {
      c.send(FakeServer::sse_head());
      if (connections++ == 0) {
        c.send(FakeServer::sse_event("2", "snapshot", job("queued", "queued").dump()));
        c.send(FakeServer::sse_event("6", "progress", progress("720p", 40)));
        c.send("id: 8\nevent: rendition\ndata: {\"rendi");  // and the connection drops mid-event
        return;
      }
      // Resumed: no snapshot, only what was missed.
      c.send(FakeServer::sse_event("8", "rendition", done("720p")));
      c.send(FakeServer::sse_event("10", "rendition", done("480p")));
      c.send(FakeServer::sse_event("11", "completed", "{}"));
    } else {
      c.send(FakeServer::response(200, "application/json", job("completed", "done").dump()));
    }
  });
  TempFile file(kContent);
  SubmitOptions options;
  options.server = server.url();
  options.file = file.path();
  auto run = run_submit(options);

  EXPECT_EQ(run.code, exit_code::ok) << run.err;
  auto events = requests_to(server, video_path() + "/events");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_FALSE(events[0].has_header("last-event-id"));
  EXPECT_EQ(events[1].header("last-event-id"), "6");  // the half-sent event 8 was never seen
  EXPECT_NE(run.err.find("reconnecting"), std::string::npos) << run.err;
  EXPECT_NE(run.out.find(server.url() + video_path() + "/renditions/480p"), std::string::npos) << run.out;
}

TEST(Submit, A204OnReconnectMeansTheJobEndedAndItsStateIsFetched) {
  std::atomic<int> connections{0};
  FakeServer server([&](const Request& request, Connection& c) {
    if (request.method == "POST") {
      c.send(FakeServer::response(201, "application/json", job("queued", "queued").dump()));
    } else if (request.target == video_path() + "/events") {
      if (connections++ == 0) {
        c.send(FakeServer::sse_head());
        c.send(FakeServer::sse_event("2", "snapshot", job("processing", "encoding").dump()));
        return;  // dropped
      }
      c.send(FakeServer::response(204, "", ""));
    } else {
      c.send(FakeServer::response(200, "application/json", job("completed", "done").dump()));
    }
  });
  TempFile file(kContent);
  SubmitOptions options;
  options.server = server.url();
  options.file = file.path();
  auto run = run_submit(options);

  EXPECT_EQ(run.code, exit_code::ok) << run.err;
  auto events = requests_to(server, video_path() + "/events");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].header("last-event-id"), "2");
  EXPECT_NE(run.out.find("720p  " + server.url() + video_path() + "/renditions/720p"), std::string::npos) << run.out;
}

TEST(Submit, AFailedJobExitsWithFourAndSaysWhy) {
  FakeServer server([](const Request& request, Connection& c) {
    if (request.method == "POST") {
      c.send(FakeServer::response(201, "application/json", job("queued", "queued", {"720p"}).dump()));
    } else if (request.target == video_path() + "/events") {
      c.send(FakeServer::sse_head());
      c.send(FakeServer::sse_event("2", "snapshot", job("queued", "queued", {"720p"}).dump()));
      c.send(FakeServer::sse_event(
          "4", "rendition_failed",
          R"({"rendition":"720p","attempt":3,"reason":"ffmpeg exited with 1: moov atom not found","will_retry":false})"));
      c.send(FakeServer::sse_event("5", "failed", R"({"rendition":"720p","reason":"moov atom not found"})"));
    } else {
      auto j = job("failed", "failed", {"720p"});
      j["error"] = "720p: moov atom not found";
      c.send(FakeServer::response(200, "application/json", j.dump()));
    }
  });
  TempFile file(kContent);
  SubmitOptions options;
  options.server = server.url();
  options.file = file.path();
  auto run = run_submit(options);

  EXPECT_EQ(run.code, exit_code::job_failed);
  EXPECT_EQ(run.out, "");
  EXPECT_NE(run.err.find("720p failed: ffmpeg exited with 1: moov atom not found"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("video " + std::string(kId) + " failed: 720p: moov atom not found"), std::string::npos)
      << run.err;
}

TEST(Submit, AJobDeletedWhileFollowedExitsWithFour) {
  FakeServer server([](const Request& request, Connection& c) {
    if (request.method == "POST") {
      c.send(FakeServer::response(201, "application/json", job("queued", "queued").dump()));
    } else if (request.target == video_path() + "/events") {
      c.send(FakeServer::sse_head());
      c.send(FakeServer::sse_event("2", "snapshot", job("queued", "queued").dump()));
      c.send(FakeServer::sse_event("4", "deleted", "{}"));
    } else {
      c.send(FakeServer::response(404, "application/json", R"({"error":{"code":"not_found","message":"gone"}})"));
    }
  });
  TempFile file(kContent);
  SubmitOptions options;
  options.server = server.url();
  options.file = file.path();
  auto run = run_submit(options);
  EXPECT_EQ(run.code, exit_code::job_failed);
  EXPECT_NE(run.err.find("the job was deleted"), std::string::npos) << run.err;
  EXPECT_EQ(run.out, "");
}

TEST(Submit, AnAnswerThatIsNotJsonExitsWithFive) {
  FakeServer server([](const Request&, Connection& c) {
    c.send(FakeServer::response(201, "text/html", "<html>proxy says hi</html>"));
  });
  TempFile file(kContent);
  SubmitOptions options;
  options.server = server.url();
  options.file = file.path();
  auto run = run_submit(options);
  EXPECT_EQ(run.code, exit_code::unavailable);
  EXPECT_NE(run.err.find("not JSON"), std::string::npos) << run.err;
}

TEST(Submit, WithoutWaitPrintsTheIdAndTheJobUrl) {
  FakeServer server([](const Request&, Connection& c) {
    c.send(FakeServer::response(201, "application/json", job("queued", "queued").dump()));
  });
  TempFile file(kContent);
  SubmitOptions options;
  options.server = server.url();
  options.file = file.path();
  options.wait = false;
  auto run = run_submit(options);

  EXPECT_EQ(run.code, exit_code::ok) << run.err;
  EXPECT_EQ(run.out, std::string(kId) + "  " + server.url() + video_path() + "\n");
  EXPECT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].target, "/api/videos");
}

TEST(Submit, AnUnreachableServerExitsWithFive) {
  TempFile file(kContent);
  SubmitOptions options;
  options.server = "http://127.0.0.1:" + std::to_string(testing::unused_port());
  options.file = file.path();
  auto run = run_submit(options);
  EXPECT_EQ(run.code, exit_code::unavailable);
  EXPECT_NE(run.err.find("cannot reach " + options.server), std::string::npos) << run.err;
}

TEST(Submit, AServerErrorExitsWithFive) {
  FakeServer server([](const Request&, Connection& c) {
    c.send(FakeServer::response(503, "application/json",
                                R"({"error":{"code":"unavailable","message":"the store is not reachable"}})"));
  });
  TempFile file(kContent);
  SubmitOptions options;
  options.server = server.url();
  options.file = file.path();
  auto run = run_submit(options);
  EXPECT_EQ(run.code, exit_code::unavailable);
  EXPECT_NE(run.err.find("the store is not reachable (unavailable, HTTP 503)"), std::string::npos) << run.err;
}

TEST(Submit, LocalFileProblemsExitWithTwoBeforeAnyRequest) {
  FakeServer server([](const Request&, Connection& c) { c.send(FakeServer::response(500, "", "")); });
  SubmitOptions options;
  options.server = server.url();

  TempFile file(kContent);
  options.file = file.dir() / "missing.mp4";
  auto run = run_submit(options);
  EXPECT_EQ(run.code, exit_code::usage);
  EXPECT_NE(run.err.find("no such file"), std::string::npos) << run.err;

  options.file = file.dir();
  run = run_submit(options);
  EXPECT_EQ(run.code, exit_code::usage);
  EXPECT_NE(run.err.find("is a directory"), std::string::npos) << run.err;

  TempFile empty("");
  options.file = empty.path();
  run = run_submit(options);
  EXPECT_EQ(run.code, exit_code::usage);
  EXPECT_NE(run.err.find("is empty"), std::string::npos) << run.err;

  if (::geteuid() != 0) {  // root reads whatever the mode says
    TempFile locked(kContent);
    std::filesystem::permissions(locked.path(), std::filesystem::perms::none);
    options.file = locked.path();
    run = run_submit(options);
    EXPECT_EQ(run.code, exit_code::usage);
    EXPECT_NE(run.err.find("cannot read"), std::string::npos) << run.err;
  }

  options.file = file.path();
  options.renditions = {"720p,480p"};
  EXPECT_EQ(run_submit(options).code, exit_code::usage);

  EXPECT_TRUE(server.requests().empty());
}

// ---- status --------------------------------------------------------------------------------------

FakeServer::Handler status_server() {
  return [](const Request& request, Connection& c) {
    if (request.target == video_path()) {
      c.send(FakeServer::response(200, "application/json", job("completed", "done").dump()));
    } else if (request.target == "/api/videos?limit=20") {
      json list{{"videos", json::array({job("completed", "done")})}, {"next", nullptr}, {"total", 1}};
      c.send(FakeServer::response(200, "application/json", list.dump()));
    } else {
      c.send(FakeServer::response(404, "application/json",
                                  R"({"error":{"code":"not_found","message":"no such video"}})"));
    }
  };
}

TEST(Status, SummarisesAJob) {
  FakeServer server(status_server());
  StatusOptions options;
  options.server = server.url();
  options.id = "01hzx3k5q8r9t0v1w2x3y4z5a6";  // ids are case-insensitive
  options.token = "t";
  auto run = run_status(options);
  EXPECT_EQ(run.code, exit_code::ok) << run.err;
  EXPECT_NE(run.out.find(std::string(kId) + "  completed"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("1920x1080 h264"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find(server.url() + video_path() + "/renditions/720p"), std::string::npos) << run.out;
  EXPECT_EQ(server.requests().at(0).header("authorization"), "Bearer t");
}

TEST(Status, PrintsTheRawJson) {
  FakeServer server(status_server());
  StatusOptions options;
  options.server = server.url();
  options.id = kId;
  options.json = true;
  auto run = run_status(options);
  EXPECT_EQ(run.code, exit_code::ok) << run.err;
  EXPECT_EQ(json::parse(run.out), job("completed", "done"));
}

TEST(Status, AnUnknownIdIsNoSuchVideo) {
  FakeServer server(status_server());
  StatusOptions options;
  options.server = server.url();
  options.id = "01HZX3K5Q8R9T0V1W2X3Y4Z5A7";
  auto run = run_status(options);
  EXPECT_EQ(run.code, exit_code::refused);
  EXPECT_NE(run.err.find("no such video: 01HZX3K5Q8R9T0V1W2X3Y4Z5A7"), std::string::npos) << run.err;
  EXPECT_EQ(run.out, "");
}

TEST(Status, AMalformedIdIsAUsageErrorWithoutARequest) {
  FakeServer server(status_server());
  StatusOptions options;
  options.server = server.url();
  options.id = "../../etc/passwd";
  auto run = run_status(options);
  EXPECT_EQ(run.code, exit_code::usage);
  EXPECT_TRUE(server.requests().empty());
}

TEST(Status, ListsRecentJobsAsATable) {
  FakeServer server(status_server());
  StatusOptions options;
  options.server = server.url();
  auto run = run_status(options);
  EXPECT_EQ(run.code, exit_code::ok) << run.err;
  EXPECT_NE(run.out.find("STATE"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find(std::string(kId) + "  completed"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("2/2"), std::string::npos) << run.out;
}

TEST(Status, FollowsAJobToItsEnd) {
  std::atomic<int> gets{0};
  FakeServer server([&](const Request& request, Connection& c) {
    if (request.target == video_path()) {
      c.send(FakeServer::response(200, "application/json",
                                  (gets++ == 0 ? job("processing", "encoding") : job("completed", "done")).dump()));
    } else if (request.target == video_path() + "/events") {
      c.send(FakeServer::sse_head());
      c.send(FakeServer::sse_event("2", "snapshot", job("processing", "encoding").dump()));
      c.send(FakeServer::sse_event("4", "rendition", done("720p")));
      c.send(FakeServer::sse_event("6", "rendition", done("480p")));
      c.send(FakeServer::sse_event("7", "completed", "{}"));
    }
  });
  StatusOptions options;
  options.server = server.url();
  options.id = kId;
  options.follow = true;
  auto run = run_status(options);
  EXPECT_EQ(run.code, exit_code::ok) << run.err;
  EXPECT_NE(run.err.find("480p: done"), std::string::npos) << run.err;
  EXPECT_NE(run.out.find(std::string(kId) + "  completed"), std::string::npos) << run.out;
}

TEST(Status, FollowWithJsonPrintsTheFinalJsonOnly) {
  FakeServer server([](const Request& request, Connection& c) {
    if (request.target == video_path() + "/events") {
      c.send(FakeServer::sse_head());
      c.send(FakeServer::sse_event("", "snapshot", job("completed", "done").dump()));  // after the end: no id
      c.send(FakeServer::sse_event("9", "completed", "{}"));
    } else {
      c.send(FakeServer::response(200, "application/json", job("completed", "done").dump()));
    }
  });
  StatusOptions options;
  options.server = server.url();
  options.id = kId;
  options.follow = true;
  options.json = true;
  auto run = run_status(options);
  EXPECT_EQ(run.code, exit_code::ok) << run.err;
  EXPECT_EQ(json::parse(run.out), job("completed", "done"));
}

TEST(Status, AnUnreachableServerExitsWithFive) {
  StatusOptions options;
  options.server = "http://127.0.0.1:" + std::to_string(testing::unused_port());
  auto run = run_status(options);
  EXPECT_EQ(run.code, exit_code::unavailable);
  EXPECT_NE(run.err.find("cannot reach"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace framepress::cli
