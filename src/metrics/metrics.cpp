#include "metrics/metrics.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <set>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace framepress::metrics {
namespace {

using prometheus::Histogram;

// Buckets fitted to what framepress does: a task waits from well under a second (idle workers) to an
// hour (a backlog); an encode takes from a second (144p of a short clip) to hours (a long 2160p source);
// an encode runs from a few fps (x264 slow at 2160p on one core) to hundreds (small rungs).
const Histogram::BucketBoundaries kQueueWaitBuckets{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};
const Histogram::BucketBoundaries kDurationBuckets{1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 21600};
const Histogram::BucketBoundaries kFpsBuckets{1, 2, 5, 10, 15, 24, 30, 45, 60, 90, 120, 180, 240, 360, 480};

const char* const kJobStates[] = {"queued", "processing", "completed", "failed", "cancelled"};

}  // namespace

std::string_view to_string(TaskOutcome outcome) {
  switch (outcome) {
    case TaskOutcome::done:
      return "done";
    case TaskOutcome::retry:
      return "retry";
    case TaskOutcome::failed:
      return "failed";
    case TaskOutcome::cancelled:
      return "cancelled";
    case TaskOutcome::handed_back:
      return "handed_back";
  }
  return "unknown";
}

struct Metrics::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();

  prometheus::Family<prometheus::Gauge>& build_info =
      prometheus::BuildGauge().Name("framepress_build_info").Help("Always 1; labels: the version and role of this process").Register(*registry);
  prometheus::Family<prometheus::Counter>& uploads =
      prometheus::BuildCounter().Name("framepress_uploads_total").Help("Uploads by result (accepted, rejected)").Register(*registry);
  prometheus::Counter& upload_bytes = prometheus::BuildCounter()
                                          .Name("framepress_upload_bytes_total")
                                          .Help("Bytes of accepted uploads (source sizes)")
                                          .Register(*registry)
                                          .Add({});
  prometheus::Counter& jobs_created = prometheus::BuildCounter()
                                          .Name("framepress_jobs_created_total")
                                          .Help("Jobs created")
                                          .Register(*registry)
                                          .Add({});
  prometheus::Family<prometheus::Counter>& jobs_ended =
      prometheus::BuildCounter().Name("framepress_jobs_ended_total").Help("Jobs that reached a terminal state, by state").Register(*registry);
  prometheus::Family<prometheus::Gauge>& jobs =
      prometheus::BuildGauge().Name("framepress_jobs").Help("Jobs in each state now, as this process's job book holds them").Register(*registry);
  prometheus::Family<prometheus::Gauge>& tasks_running =
      prometheus::BuildGauge().Name("framepress_tasks_running").Help("Rendition tasks being worked on, by class").Register(*registry);
  prometheus::Family<Histogram>& queue_wait = prometheus::BuildHistogram()
                                                  .Name("framepress_task_queue_wait_seconds")
                                                  .Help("Time from a task's enqueueing until a worker took it, by class")
                                                  .Register(*registry);
  prometheus::Family<Histogram>& task_duration = prometheus::BuildHistogram()
                                                     .Name("framepress_task_duration_seconds")
                                                     .Help("Time from taking a task until it ended, by class and outcome")
                                                     .Register(*registry);
  prometheus::Family<prometheus::Counter>& frames =
      prometheus::BuildCounter().Name("framepress_encoded_frames_total").Help("Frames encoded, by class; rate() is the encode fps").Register(*registry);
  prometheus::Family<Histogram>& encode_fps = prometheus::BuildHistogram()
                                                  .Name("framepress_encode_fps")
                                                  .Help("Average frames per second of each finished encode, by class")
                                                  .Register(*registry);
  prometheus::Family<prometheus::Gauge>& consumer_lag =
      prometheus::BuildGauge()
          .Name("framepress_consumer_lag")
          .Help("Tasks waiting in the partitions this process holds, by class (high watermark - committed offset)")
          .Register(*registry);
  prometheus::Gauge& sse_clients =
      prometheus::BuildGauge().Name("framepress_sse_clients").Help("Open Server-Sent Events streams").Register(*registry).Add({});
  prometheus::Family<prometheus::Counter>& http_responses =
      prometheus::BuildCounter().Name("framepress_http_responses_total").Help("HTTP answers by status code").Register(*registry);
  prometheus::Family<prometheus::Counter>& http_errors =
      prometheus::BuildCounter().Name("framepress_http_errors_total").Help("HTTP answers with a status of 400 or more, by code").Register(*registry);

  std::mutex jobs_mutex;
  std::set<std::string> job_states;  // every state set_jobs has seen, to zero those that emptied
};

Metrics::Metrics(std::string_view version, std::string_view role) : impl_(std::make_unique<Impl>()) {
  impl_->build_info.Add({{"version", std::string(version)}, {"role", std::string(role)}}).Set(1);
  // Series that exist from the start, so that rate() and the dashboard see zeros rather than nothing.
  impl_->uploads.Add({{"result", "accepted"}});
  impl_->uploads.Add({{"result", "rejected"}});
  for (const char* state : kJobStates) {
    impl_->jobs.Add({{"state", state}});
    impl_->job_states.insert(state);
  }
}

Metrics::~Metrics() = default;

void Metrics::upload_accepted(std::uint64_t bytes) {
  impl_->uploads.Add({{"result", "accepted"}}).Increment();
  impl_->upload_bytes.Increment(static_cast<double>(bytes));
}

void Metrics::upload_rejected() { impl_->uploads.Add({{"result", "rejected"}}).Increment(); }

void Metrics::job_created() { impl_->jobs_created.Increment(); }

void Metrics::job_ended(std::string_view state) { impl_->jobs_ended.Add({{"state", std::string(state)}}).Increment(); }

void Metrics::set_jobs(const std::vector<std::pair<std::string, std::int64_t>>& count_by_state) {
  std::lock_guard lock(impl_->jobs_mutex);
  std::map<std::string, std::int64_t> given(count_by_state.begin(), count_by_state.end());
  for (const auto& [state, count] : given) impl_->job_states.insert(state);
  for (const auto& state : impl_->job_states) {
    auto it = given.find(state);
    impl_->jobs.Add({{"state", state}}).Set(it == given.end() ? 0.0 : static_cast<double>(it->second));
  }
}

void Metrics::http_response(int status) {
  const std::string code = std::to_string(status);
  impl_->http_responses.Add({{"code", code}}).Increment();
  if (status >= 400) impl_->http_errors.Add({{"code", code}}).Increment();
}

SseClient Metrics::sse_client() {
  impl_->sse_clients.Increment();
  return SseClient(this);
}

void Metrics::sse_closed() { impl_->sse_clients.Decrement(); }

TaskTimer Metrics::start_task(std::string_view worker_class, std::chrono::duration<double> queue_wait) {
  std::string cls(worker_class);
  impl_->queue_wait.Add({{"class", cls}}, kQueueWaitBuckets).Observe(std::max(0.0, queue_wait.count()));
  impl_->tasks_running.Add({{"class", cls}}).Increment();
  return TaskTimer(this, std::move(cls));
}

void Metrics::task_ended(const std::string& worker_class, TaskOutcome outcome, std::chrono::duration<double> duration) {
  impl_->tasks_running.Add({{"class", worker_class}}).Decrement();
  impl_->task_duration.Add({{"class", worker_class}, {"outcome", std::string(to_string(outcome))}}, kDurationBuckets)
      .Observe(duration.count());
}

void Metrics::frames_encoded(std::string_view worker_class, std::uint64_t frames) {
  impl_->frames.Add({{"class", std::string(worker_class)}}).Increment(static_cast<double>(frames));
}

void Metrics::encode_finished(std::string_view worker_class, double fps) {
  if (!(fps >= 0)) return;  // NaN or negative: nothing measured
  impl_->encode_fps.Add({{"class", std::string(worker_class)}}, kFpsBuckets).Observe(fps);
}

void Metrics::set_consumer_lag(std::string_view worker_class, std::int64_t lag) {
  impl_->consumer_lag.Add({{"class", std::string(worker_class)}}).Set(static_cast<double>(lag));
}

std::string Metrics::exposition() const { return prometheus::TextSerializer().Serialize(impl_->registry->Collect()); }

// ---- TaskTimer ----

TaskTimer::TaskTimer(Metrics* metrics, std::string worker_class)
    : metrics_(metrics), worker_class_(std::move(worker_class)), started_(std::chrono::steady_clock::now()) {}

TaskTimer::TaskTimer(TaskTimer&& other) noexcept
    : metrics_(std::exchange(other.metrics_, nullptr)),
      worker_class_(std::move(other.worker_class_)),
      started_(other.started_) {}

TaskTimer& TaskTimer::operator=(TaskTimer&& other) noexcept {
  if (this != &other) {
    end(TaskOutcome::handed_back);
    metrics_ = std::exchange(other.metrics_, nullptr);
    worker_class_ = std::move(other.worker_class_);
    started_ = other.started_;
  }
  return *this;
}

TaskTimer::~TaskTimer() { end(TaskOutcome::handed_back); }

void TaskTimer::end(TaskOutcome outcome) {
  if (!metrics_) return;
  auto* metrics = std::exchange(metrics_, nullptr);
  try {
    metrics->task_ended(worker_class_, outcome, std::chrono::steady_clock::now() - started_);
  } catch (...) {
    // Only allocation can fail here; a lost observation must not take a worker down (end runs in a destructor).
  }
}

// ---- SseClient ----

SseClient::SseClient(Metrics* metrics) : metrics_(metrics) {}

SseClient::SseClient(SseClient&& other) noexcept : metrics_(std::exchange(other.metrics_, nullptr)) {}

SseClient& SseClient::operator=(SseClient&& other) noexcept {
  if (this != &other) {
    if (metrics_) metrics_->sse_closed();
    metrics_ = std::exchange(other.metrics_, nullptr);
  }
  return *this;
}

SseClient::~SseClient() {
  if (metrics_) metrics_->sse_closed();
}

}  // namespace framepress::metrics
