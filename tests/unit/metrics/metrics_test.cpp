#include "metrics/metrics.h"

#include <atomic>
#include <cmath>
#include <map>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace framepress::metrics {
namespace {

using namespace std::chrono_literals;

/// Every sample of an exposition: "name{labels}" → value. Fails the test on a line that is not a
/// comment, a blank or a sample, and on a sample whose family has no # TYPE line before it.
std::map<std::string, double> samples(const std::string& text) {
  static const std::regex sample(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$)");
  static const std::regex type(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  std::map<std::string, double> out;
  std::vector<std::string> families;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (line.empty() || line.rfind("# HELP ", 0) == 0) continue;
    if (std::regex_match(line, m, type)) {
      families.push_back(m[1]);
      continue;
    }
    if (!std::regex_match(line, m, sample)) {
      ADD_FAILURE() << "not a sample line: " << line;
      continue;
    }
    std::string name = m[1];
    bool typed = false;
    for (const auto& f : families) {
      if (name == f || name == f + "_bucket" || name == f + "_sum" || name == f + "_count") typed = true;
    }
    EXPECT_TRUE(typed) << name << " has no # TYPE line before it";
    out[name + std::string(m[2])] = std::stod(m[3]);
  }
  return out;
}

double value(const Metrics& metrics, const std::string& series) {
  auto all = samples(metrics.exposition());
  auto it = all.find(series);
  if (it == all.end()) {
    ADD_FAILURE() << "no series " << series << " in:\n" << metrics.exposition();
    return std::nan("");
  }
  return it->second;
}

TEST(Metrics, StartsWithBuildInfoAndZeroes) {
  Metrics metrics("1.2.3", "worker");
  EXPECT_EQ(value(metrics, R"(framepress_build_info{role="worker",version="1.2.3"})"), 1);
  EXPECT_EQ(value(metrics, R"(framepress_uploads_total{result="accepted"})"), 0);
  EXPECT_EQ(value(metrics, R"(framepress_uploads_total{result="rejected"})"), 0);
  EXPECT_EQ(value(metrics, "framepress_upload_bytes_total"), 0);
  EXPECT_EQ(value(metrics, "framepress_jobs_created_total"), 0);
  EXPECT_EQ(value(metrics, "framepress_sse_clients"), 0);
  for (const char* state : {"queued", "processing", "completed", "failed", "cancelled"}) {
    EXPECT_EQ(value(metrics, std::string(R"(framepress_jobs{state=")") + state + "\"}"), 0) << state;
  }
}

TEST(Metrics, ExpositionIsPrometheusText) {
  Metrics metrics;
  metrics.upload_accepted(5);
  metrics.http_response(404);
  auto timer = metrics.start_task("sd", 1s);
  timer.end(TaskOutcome::done);
  const std::string text = metrics.exposition();
  EXPECT_NE(text.find("# TYPE framepress_task_duration_seconds histogram"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE framepress_uploads_total counter"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE framepress_jobs gauge"), std::string::npos) << text;
  EXPECT_FALSE(samples(text).empty());
  EXPECT_EQ(Metrics::kContentType, "text/plain; version=0.0.4; charset=utf-8");
}

TEST(Metrics, UploadsCountAndSumBytes) {
  Metrics metrics;
  metrics.upload_accepted(1000);
  metrics.upload_accepted(24);
  metrics.upload_rejected();
  EXPECT_EQ(value(metrics, R"(framepress_uploads_total{result="accepted"})"), 2);
  EXPECT_EQ(value(metrics, R"(framepress_uploads_total{result="rejected"})"), 1);
  EXPECT_EQ(value(metrics, "framepress_upload_bytes_total"), 1024);
}

TEST(Metrics, JobsCreatedEndedAndByState) {
  Metrics metrics;
  metrics.job_created();
  metrics.job_created();
  metrics.job_ended("completed");
  metrics.job_ended("cancelled");
  metrics.job_ended("completed");
  EXPECT_EQ(value(metrics, "framepress_jobs_created_total"), 2);
  EXPECT_EQ(value(metrics, R"(framepress_jobs_ended_total{state="completed"})"), 2);
  EXPECT_EQ(value(metrics, R"(framepress_jobs_ended_total{state="cancelled"})"), 1);

  metrics.set_jobs({{"queued", 3}, {"processing", 2}, {"completed", 7}});
  EXPECT_EQ(value(metrics, R"(framepress_jobs{state="queued"})"), 3);
  EXPECT_EQ(value(metrics, R"(framepress_jobs{state="processing"})"), 2);
  EXPECT_EQ(value(metrics, R"(framepress_jobs{state="completed"})"), 7);
  // A state not named again is zeroed, not left at its last count.
  metrics.set_jobs({{"completed", 12}});
  EXPECT_EQ(value(metrics, R"(framepress_jobs{state="queued"})"), 0);
  EXPECT_EQ(value(metrics, R"(framepress_jobs{state="processing"})"), 0);
  EXPECT_EQ(value(metrics, R"(framepress_jobs{state="completed"})"), 12);
}

TEST(Metrics, HttpErrorsByCode) {
  Metrics metrics;
  metrics.http_response(200);
  metrics.http_response(206);
  metrics.http_response(404);
  metrics.http_response(404);
  metrics.http_response(503);
  EXPECT_EQ(value(metrics, R"(framepress_http_responses_total{code="200"})"), 1);
  EXPECT_EQ(value(metrics, R"(framepress_http_responses_total{code="404"})"), 2);
  EXPECT_EQ(value(metrics, R"(framepress_http_errors_total{code="404"})"), 2);
  EXPECT_EQ(value(metrics, R"(framepress_http_errors_total{code="503"})"), 1);
  auto all = samples(metrics.exposition());
  EXPECT_EQ(all.count(R"(framepress_http_errors_total{code="200"})"), 0u);
  EXPECT_EQ(all.count(R"(framepress_http_errors_total{code="206"})"), 0u);
}

TEST(Metrics, SseClientsFollowTheGuards) {
  Metrics metrics;
  {
    auto a = metrics.sse_client();
    auto b = metrics.sse_client();
    EXPECT_EQ(value(metrics, "framepress_sse_clients"), 2);
    auto moved = std::move(a);  // a move hands the count over: no double decrement
    EXPECT_EQ(value(metrics, "framepress_sse_clients"), 2);
    b = std::move(moved);  // b's own stream ends; moved's goes on in b
    EXPECT_EQ(value(metrics, "framepress_sse_clients"), 1);
  }
  EXPECT_EQ(value(metrics, "framepress_sse_clients"), 0);
}

TEST(Metrics, TaskTimerRecordsQueueWaitDurationAndOutcome) {
  Metrics metrics;
  {
    auto timer = metrics.start_task("hd", 2.5s);
    EXPECT_EQ(value(metrics, R"(framepress_tasks_running{class="hd"})"), 1);
    timer.end(TaskOutcome::done);
    timer.end(TaskOutcome::failed);  // ignored: a task ends once
  }
  EXPECT_EQ(value(metrics, R"(framepress_tasks_running{class="hd"})"), 0);
  EXPECT_EQ(value(metrics, R"(framepress_task_queue_wait_seconds_count{class="hd"})"), 1);
  EXPECT_EQ(value(metrics, R"(framepress_task_queue_wait_seconds_sum{class="hd"})"), 2.5);
  EXPECT_EQ(value(metrics, R"(framepress_task_queue_wait_seconds_bucket{class="hd",le="1"})"), 0);
  EXPECT_EQ(value(metrics, R"(framepress_task_queue_wait_seconds_bucket{class="hd",le="2.5"})"), 1);
  EXPECT_EQ(value(metrics, R"(framepress_task_queue_wait_seconds_bucket{class="hd",le="+Inf"})"), 1);
  EXPECT_EQ(value(metrics, R"(framepress_task_duration_seconds_count{class="hd",outcome="done"})"), 1);
  EXPECT_LT(value(metrics, R"(framepress_task_duration_seconds_sum{class="hd",outcome="done"})"), 5);
  EXPECT_EQ(samples(metrics.exposition()).count(R"(framepress_task_duration_seconds_count{class="hd",outcome="failed"})"), 0u);
}

TEST(Metrics, TaskTimerDroppedUnendedCountsAsHandedBack) {
  Metrics metrics;
  {
    auto timer = metrics.start_task("uhd", 0s);
    auto moved = std::move(timer);  // only one of the two ends the task
  }
  EXPECT_EQ(value(metrics, R"(framepress_task_duration_seconds_count{class="uhd",outcome="handed_back"})"), 1);
  EXPECT_EQ(value(metrics, R"(framepress_tasks_running{class="uhd"})"), 0);
}

TEST(Metrics, EncodeFramesFpsAndLag) {
  Metrics metrics;
  metrics.frames_encoded("sd", 250);
  metrics.frames_encoded("sd", 750);
  metrics.encode_finished("sd", 100);
  metrics.encode_finished("sd", std::nan(""));  // nothing measured: not observed
  metrics.set_consumer_lag("sd", 17);
  metrics.set_consumer_lag("sd", 4);
  EXPECT_EQ(value(metrics, R"(framepress_encoded_frames_total{class="sd"})"), 1000);
  EXPECT_EQ(value(metrics, R"(framepress_encode_fps_count{class="sd"})"), 1);
  EXPECT_EQ(value(metrics, R"(framepress_encode_fps_bucket{class="sd",le="90"})"), 0);
  EXPECT_EQ(value(metrics, R"(framepress_encode_fps_bucket{class="sd",le="120"})"), 1);
  EXPECT_EQ(value(metrics, R"(framepress_consumer_lag{class="sd"})"), 4);
}

TEST(Metrics, OutcomeNames) {
  EXPECT_EQ(to_string(TaskOutcome::done), "done");
  EXPECT_EQ(to_string(TaskOutcome::retry), "retry");
  EXPECT_EQ(to_string(TaskOutcome::failed), "failed");
  EXPECT_EQ(to_string(TaskOutcome::cancelled), "cancelled");
  EXPECT_EQ(to_string(TaskOutcome::handed_back), "handed_back");
}

TEST(Metrics, CountsExactlyUnderConcurrentUse) {
  Metrics metrics;
  constexpr int kThreads = 8;
  constexpr int kRounds = 500;
  std::atomic<bool> scraping{true};
  std::thread scraper([&] {
    while (scraping) EXPECT_FALSE(metrics.exposition().empty());
  });
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        const std::string cls = t % 2 ? "sd" : "hd";
        for (int i = 0; i < kRounds; ++i) {
          metrics.http_response(i % 2 ? 200 : 500);
          metrics.upload_accepted(2);
          auto sse = metrics.sse_client();
          auto timer = metrics.start_task(cls, 0.01s);
          metrics.frames_encoded(cls, 3);
          timer.end(TaskOutcome::done);
          metrics.set_jobs({{"queued", i}});
        }
      });
    }
  }
  scraping = false;
  scraper.join();
  const double total = kThreads * kRounds;
  EXPECT_EQ(value(metrics, R"(framepress_http_errors_total{code="500"})"), total / 2);
  EXPECT_EQ(value(metrics, R"(framepress_uploads_total{result="accepted"})"), total);
  EXPECT_EQ(value(metrics, "framepress_upload_bytes_total"), total * 2);
  EXPECT_EQ(value(metrics, "framepress_sse_clients"), 0);
  EXPECT_EQ(value(metrics, R"(framepress_tasks_running{class="sd"})"), 0);
  EXPECT_EQ(value(metrics, R"(framepress_task_duration_seconds_count{class="sd",outcome="done"})"), total / 2);
  EXPECT_EQ(value(metrics, R"(framepress_encoded_frames_total{class="hd"})"), total / 2 * 3);
  EXPECT_EQ(value(metrics, R"(framepress_jobs{state="queued"})"), kRounds - 1);
}

}  // namespace
}  // namespace framepress::metrics
