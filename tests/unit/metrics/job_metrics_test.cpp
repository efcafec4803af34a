#include "metrics/job_metrics.h"

#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace framepress::metrics {
namespace {

/// The value of one exact series line ("name{labels} value") of the exposition; -1 when absent.
double series(const Metrics& metrics, const std::string& name_and_labels) {
  std::istringstream in(metrics.exposition());
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name_and_labels + " ", 0) == 0) return std::stod(line.substr(name_and_labels.size() + 1));
  }
  return -1;
}

class JobMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    JobCreated created;
    created.filename = "clip.mp4";
    created.source_key = ObjectKey::source_of(id);
    created.renditions = {RenditionSpec{"360p", 360, 640, 360, "sd"}};
    count_job_events(metrics, apply(created));
  }
  std::vector<VisibleEvent> apply(EventPayload payload) { return book.apply(++position, Event{id, 1000, payload}); }

  Metrics metrics;
  JobBook book;
  VideoId id = VideoId::generate();
  LogPosition position = 0;
};

}  // namespace

TEST_F(JobMetricsTest, CountsCreatedAndTheDerivedEndOnce) {
  EXPECT_EQ(series(metrics, "framepress_jobs_created_total"), 1);
  count_job_events(metrics, apply(RenditionStarted{"360p", 1, "w"}));
  // The book derives job.completed from the last rendition.done: both arrive in one call.
  count_job_events(metrics, apply(RenditionDone{"360p", ObjectKey("k"), 10, 20, 1, 640, 360}));
  EXPECT_EQ(series(metrics, R"(framepress_jobs_ended_total{state="completed"})"), 1);
  // A redelivered rendition.done is dropped by the book, so nothing is counted twice.
  count_job_events(metrics, apply(RenditionDone{"360p", ObjectKey("k"), 10, 20, 1, 640, 360}));
  EXPECT_EQ(series(metrics, R"(framepress_jobs_ended_total{state="completed"})"), 1);
  count_job_events(metrics, apply(JobDeleted{}));
  EXPECT_EQ(series(metrics, R"(framepress_jobs_ended_total{state="deleted"})"), 1);
}

TEST_F(JobMetricsTest, JobsByStateFollowTheBook) {
  set_jobs_from(metrics, book);
  EXPECT_EQ(series(metrics, R"(framepress_jobs{state="queued"})"), 1);
  EXPECT_EQ(series(metrics, R"(framepress_jobs{state="processing"})"), 0);
  apply(RenditionStarted{"360p", 1, "w"});
  set_jobs_from(metrics, book);
  EXPECT_EQ(series(metrics, R"(framepress_jobs{state="queued"})"), 0);
  EXPECT_EQ(series(metrics, R"(framepress_jobs{state="processing"})"), 1);
  apply(JobCancelled{});
  set_jobs_from(metrics, book);
  EXPECT_EQ(series(metrics, R"(framepress_jobs{state="processing"})"), 0);
  EXPECT_EQ(series(metrics, R"(framepress_jobs{state="cancelled"})"), 1);
}

}  // namespace framepress::metrics
