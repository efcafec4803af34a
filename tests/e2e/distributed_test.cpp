// End to end, distributed: `framepress api` and `framepress worker` processes over a real Apache Kafka
// broker and a real S3 server (SeaweedFS), both started by the project's scripts; nothing embedded.

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "e2e/e2e_support.h"

namespace framepress::e2e {
namespace {

using testing::TempDir;

class DistributedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kafka = std::make_unique<ScriptService>("kafka.sh", scratch.path() / "kafka");
    s3 = std::make_unique<ScriptService>("seaweedfs.sh", scratch.path() / "s3");
    environment = {"FRAMEPRESS_S3_ACCESS_KEY=" + (*s3)["S3_ACCESS_KEY"], "FRAMEPRESS_S3_SECRET_KEY=" + (*s3)["S3_SECRET_KEY"]};
    common = {"--bus", "kafka://" + (*kafka)["KAFKA_BOOTSTRAP"],
              "--storage", "s3://videos?endpoint=" + (*s3)["S3_ENDPOINT"] + "&presign=false",
              "--kafka-session-timeout", "6s", "--kafka-partitions", "12", "--encoder-preset", "ultrafast"};
    api = start("api", "api", {});
  }
  void TearDown() override {
    if (HasFailure()) {
      if (api) std::cerr << "---- api log ----\n" << api->log() << "\n";
      for (auto& w : workers) std::cerr << "---- worker log ----\n" << w->log() << "\n";
    }
    workers.clear();
    api.reset();
    s3.reset();
    kafka.reset();
  }

  std::unique_ptr<FramepressProcess> start(const std::string& role, const std::string& name,
                                           std::vector<std::string> extra) {
    auto args = common;
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<FramepressProcess>(role, scratch.path() / name, args, environment);
  }
  void start_worker(const std::string& classes) {
    workers.push_back(start("worker", "worker" + std::to_string(workers.size()), {"--classes", classes, "--concurrency", "1"}));
  }

  std::string upload(const std::filesystem::path& clip, const std::string& renditions) {
    auto response = upload_file(api->url() + "/api/videos?renditions=" + renditions, clip);
    EXPECT_EQ(response.status, 201) << response.body;
    return response.status == 201 ? response.json()["id"].get<std::string>() : "";
  }

  /// Every event of the job from the start of the log (Last-Event-ID 0: no snapshot, all state changes).
  SseResult replay(const std::string& id) {
    return read_sse(api->url() + "/api/videos/" + id + "/events", {"Last-Event-ID: 0"}, [](auto&) { return false; },
                    std::chrono::seconds(60));
  }

  void expect_done_once_each(const std::string& id, std::size_t renditions) {
    auto all = replay(id);
    std::multiset<std::string> done;
    for (const auto& e : all.events) {
      if (e.event == "rendition") done.insert(e.json()["rendition"].get<std::string>());
    }
    EXPECT_EQ(done.size(), renditions);
    for (const auto& name : done) EXPECT_EQ(done.count(name), 1u) << name;
    auto job = http_get(api->url() + "/api/videos/" + id).json();
    EXPECT_EQ(job["state"], "completed");
    for (const auto& r : job["renditions"]) {
      auto file = http_get(api->url() + r["url"].get<std::string>());
      EXPECT_EQ(file.status, 200) << r["name"];
      EXPECT_EQ(file.body.size(), r["size"].get<std::size_t>()) << r["name"];
    }
  }

  TempDir scratch;
  TempDir media;
  std::unique_ptr<ScriptService> kafka;
  std::unique_ptr<ScriptService> s3;
  std::vector<std::string> environment;
  std::vector<std::string> common;
  std::unique_ptr<FramepressProcess> api;
  std::vector<std::unique_ptr<FramepressProcess>> workers;
};

}  // namespace

TEST_F(DistributedTest, WorkerPoolsPerClassShareTheWorkJobByJobEachJobDecodedOnceAClass) {
  start_worker("sd");
  start_worker("sd");
  start_worker("hd,uhd");
  auto clip = testing::make_clip(media.path(), "dist", {.width = 1280, .height = 720, .seconds = 2});
  // A job's renditions of one class share a partition (keyed by video id), so one worker of the class
  // encodes them all from one decode, and the class's workers share the work job by job. Jobs land on
  // partitions by their random ids: a dozen jobs make it all but certain that both sd workers get one.
  std::set<std::string> sd_workers;
  for (int attempt = 0; attempt < 12 && sd_workers.size() < 2; ++attempt) {
    const std::string id = upload(clip, "144p,240p,360p,480p,720p");
    ASSERT_FALSE(id.empty());
    auto stream = follow_job(api->url(), id, std::chrono::seconds(240));
    ASSERT_EQ(stream.events.back().event, "completed") << stream.events.back().data;
    std::map<std::string, std::set<std::string>> workers_by_class;
    for (const auto& e : replay(id).events) {
      if (e.event != "started") continue;
      auto data = e.json();
      std::string rendition = data["rendition"];
      workers_by_class[rendition == "720p" ? "hd" : "sd"].insert(data["worker"].get<std::string>());
    }
    EXPECT_EQ(workers_by_class["hd"].size(), 1u);
    EXPECT_EQ(workers_by_class["sd"].size(), 1u) << "a job's sd renditions went to two workers";
    sd_workers.insert(workers_by_class["sd"].begin(), workers_by_class["sd"].end());
    // One ffmpeg for the job's four sd renditions, in whichever sd worker took them.
    std::size_t one_decode = 0;
    for (const auto& w : workers) {
      std::istringstream log(w->log());
      for (std::string line; std::getline(log, line);) {
        one_decode += line.find(id) != std::string::npos && line.find("encoding 4 rendition(s) from one decode") != std::string::npos;
      }
    }
    EXPECT_EQ(one_decode, 1u) << id;
    expect_done_once_each(id, 5);
  }
  EXPECT_EQ(sd_workers.size(), 2u) << "one sd worker took every job";
}

TEST_F(DistributedTest, AWorkerAnswersProbesAndMetricsOnItsOwnPort) {
  workers.push_back(start("worker", "metered", {"--classes", "sd", "--concurrency", "1", "--metrics-listen", "127.0.0.1:0"}));
  const std::string worker_url = workers.back()->url();
  ASSERT_FALSE(worker_url.empty()) << workers.back()->log();
  EXPECT_EQ(http_get(worker_url + "/healthz").status, 200);
  EXPECT_EQ(http_get(worker_url + "/readyz").status, 200);
  EXPECT_EQ(http_get(worker_url + "/api/videos").status, 404);  // a worker serves no API

  auto clip = testing::make_clip(media.path(), "metered", {.width = 426, .height = 240, .seconds = 2});
  const std::string id = upload(clip, "144p,240p");
  ASSERT_FALSE(id.empty());
  auto stream = follow_job(api->url(), id, std::chrono::seconds(240));
  ASSERT_EQ(stream.events.back().event, "completed") << stream.events.back().data;

  EXPECT_EQ(metric_value(worker_url, R"(framepress_build_info{role="worker",version=")" + std::string(FRAMEPRESS_VERSION) + "\"}"), 1);
  // A task's timer ends, and the worker's book folds the end, a moment after the API's stream said it.
  const std::string done_tasks = R"(framepress_task_duration_seconds_count{class="sd",outcome="done"})";
  EXPECT_TRUE(eventually([&] { return metric_value(worker_url, done_tasks) == 2; })) << metric_value(worker_url, done_tasks);
  const std::string completed_jobs = R"(framepress_jobs{state="completed"})";
  EXPECT_TRUE(eventually([&] { return metric_value(worker_url, completed_jobs) == 1; }))
      << metric_value(worker_url, completed_jobs);
  EXPECT_GT(metric_value(worker_url, R"(framepress_encoded_frames_total{class="sd"})"), 0);
  // The consumer lag is reported every few seconds: once both tasks are committed, nothing waits.
  const std::string lag = R"(framepress_consumer_lag{class="sd"})";
  EXPECT_TRUE(eventually([&] { return metric_value(worker_url, lag) == 0; })) << metric_value(worker_url, lag);
  // The API counted the upload; both processes fold the same log into the same job states.
  EXPECT_EQ(metric_value(api->url(), R"(framepress_uploads_total{result="accepted"})"), 1);
  EXPECT_EQ(metric_value(api->url(), R"(framepress_jobs{state="completed"})"), 1);
  EXPECT_EQ(metric_value(api->url(), R"(framepress_jobs_ended_total{state="completed"})"), 1);
  EXPECT_EQ(metric_value(api->url(), R"(framepress_task_duration_seconds_count{class="sd",outcome="done"})"), -1)
      << "the api encodes nothing";
}

TEST_F(DistributedTest, AWorkerKilledMidEncodeLosesNothing) {
  start_worker("sd,hd,uhd");
  auto clip = testing::make_clip(media.path(), "long", {.width = 1280, .height = 720, .seconds = 20});
  const std::string id = upload(clip, "360p,720p");
  ASSERT_FALSE(id.empty());
  auto progress = read_sse(api->url() + "/api/videos/" + id + "/events", {},
                           [](const SseEvent& e) { return e.event == "progress"; }, std::chrono::seconds(120));
  ASSERT_EQ(progress.events.back().event, "progress");
  workers.front()->kill_hard();
  start_worker("sd,hd,uhd");  // the survivor takes the tasks after the session time-out
  auto stream = follow_job(api->url(), id, std::chrono::seconds(300));
  ASSERT_EQ(stream.events.back().event, "completed");
  expect_done_once_each(id, 2);
}

TEST_F(DistributedTest, AnApiRestartLosesNoEventAndResumesFromLastEventId) {
  start_worker("sd,hd,uhd");
  auto clip = testing::make_clip(media.path(), "resume", {.width = 1280, .height = 720, .seconds = 10});
  const std::string id = upload(clip, "144p,360p,720p");
  ASSERT_FALSE(id.empty());
  auto first = read_sse(api->url() + "/api/videos/" + id + "/events", {},
                        [](const SseEvent& e) { return e.event == "started"; }, std::chrono::seconds(120));
  ASSERT_EQ(first.events.back().event, "started");
  const std::string last_id = first.events.back().id;
  api->kill_hard();
  api = start("api", "api", {});  // a new process: its state comes from the log alone
  auto rest = read_sse(api->url() + "/api/videos/" + id + "/events", {"Last-Event-ID: " + last_id},
                       [](auto&) { return false; }, std::chrono::seconds(300));
  ASSERT_FALSE(rest.events.empty());
  EXPECT_NE(rest.events.front().event, "snapshot");
  EXPECT_EQ(rest.events.back().event, "completed");
  // Together the two connections saw every state change exactly once, in order.
  std::vector<std::string> seen;
  std::uint64_t previous = 0;
  for (const auto* part : {&first, &rest}) {
    for (const auto& e : part->events) {
      if (e.event == "snapshot" || e.event == "progress") continue;
      EXPECT_GT(std::stoull(e.id), previous) << e.event;
      previous = std::stoull(e.id);
      seen.push_back(e.event + (e.event == "rendition" ? ":" + e.json()["rendition"].get<std::string>() : ""));
    }
  }
  // What the log holds after the snapshot the first connection began with.
  const std::uint64_t snapshot_id = std::stoull(first.events.front().id);
  std::vector<std::string> all;
  for (const auto& e : replay(id).events) {
    if (e.event == "progress" || std::stoull(e.id) <= snapshot_id) continue;
    all.push_back(e.event + (e.event == "rendition" ? ":" + e.json()["rendition"].get<std::string>() : ""));
  }
  EXPECT_EQ(seen, all);
  // A second API process beside it shows the same state.
  auto other = start("api", "api2", {});
  EXPECT_EQ(http_get(other->url() + "/api/videos/" + id).json()["last_event_id"],
            http_get(api->url() + "/api/videos/" + id).json()["last_event_id"]);
}

TEST_F(DistributedTest, TheBrokerAndTheStoreRestartedMidJobTheJobCompletes) {
  start_worker("sd,hd,uhd");
  auto clip = testing::make_clip(media.path(), "faults", {.width = 1280, .height = 720, .seconds = 10});
  const std::string id = upload(clip, "144p,360p,720p");
  ASSERT_FALSE(id.empty());
  auto started = read_sse(api->url() + "/api/videos/" + id + "/events", {},
                          [](const SseEvent& e) { return e.event == "progress"; }, std::chrono::seconds(120));
  ASSERT_EQ(started.events.back().event, "progress");
  kafka->restart();
  s3->restart();
  auto stream = follow_job(api->url(), id, std::chrono::seconds(400));
  ASSERT_FALSE(stream.events.empty());
  EXPECT_EQ(stream.events.back().event, "completed");
  expect_done_once_each(id, 3);
}

}  // namespace framepress::e2e
