#pragma once
// Metrics: the Prometheus counters, gauges and histograms of one framepress process, and their text
// exposition for `GET /metrics` (served by the existing HTTP server; prometheus-cpp's own exposer is not
// used). prometheus-cpp stays behind this header.
//
// Every metric is named framepress_*; deploy/grafana-dashboard.json charts them and docs/OPERATIONS.md
// says what to watch. The metric families:
//
//   framepress_build_info{version,role}                       gauge, always 1
//   framepress_uploads_total{result="accepted|rejected"}        counter
//   framepress_upload_bytes_total                              counter, bytes of accepted sources
//   framepress_jobs_created_total                              counter (live job.created events folded)
//   framepress_jobs_ended_total{state}                         counter: completed, failed, cancelled, deleted
//   framepress_jobs{state}                                     gauge: jobs now in each state (from the job book)
//   framepress_tasks_running{class}                            gauge
//   framepress_task_queue_wait_seconds{class}                  histogram: enqueued → taken by a worker
//   framepress_task_duration_seconds{class,outcome}            histogram: taken → ended, by how it ended
//   framepress_encoded_frames_total{class}                     counter: rate() is the live encode fps
//   framepress_encode_fps{class}                               histogram: average fps of each finished encode
//   framepress_consumer_lag{class}                             gauge: tasks waiting in the partitions this
//                                                              process holds (set by the bus)
//   framepress_sse_clients                                     gauge: open event streams
//   framepress_http_responses_total{code}                      counter: every answer, by status
//   framepress_http_errors_total{code}                         counter: answers with status >= 400
//
// Thread-safety: every member function of Metrics may be called from any thread at once. A TaskTimer or
// an SseClient guard belongs to one thread at a time (like any other object), but many may exist at once.
// Lifetime: the guards point to their Metrics, which must outlive them.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace framepress::metrics {

/// How a rendition task ended, as the worker sees it.
enum class TaskOutcome {
  done,         // stored and reported
  retry,        // failed; another attempt was enqueued
  failed,       // failed for good
  cancelled,    // the job was cancelled or deleted while it ran
  handed_back,  // the worker stopped (SIGTERM) and left the task to be handed out again
};
std::string_view to_string(TaskOutcome outcome);

class Metrics;

/// Measures one task from the moment a worker took it; ends it once. Movable, not copyable. A timer
/// destroyed without end() (an exception, a worker stopping) records TaskOutcome::handed_back.
class [[nodiscard]] TaskTimer {
 public:
  TaskTimer(TaskTimer&& other) noexcept;
  TaskTimer& operator=(TaskTimer&& other) noexcept;
  TaskTimer(const TaskTimer&) = delete;
  TaskTimer& operator=(const TaskTimer&) = delete;
  ~TaskTimer();

  /// Records the task's duration under `outcome` and lowers framepress_tasks_running. Later calls do nothing.
  void end(TaskOutcome outcome);

 private:
  friend class Metrics;
  TaskTimer(Metrics* metrics, std::string worker_class);
  Metrics* metrics_ = nullptr;
  std::string worker_class_;
  std::chrono::steady_clock::time_point started_;
};

/// Counts one open SSE stream while it lives (framepress_sse_clients). Movable, not copyable.
class [[nodiscard]] SseClient {
 public:
  SseClient(SseClient&& other) noexcept;
  SseClient& operator=(SseClient&& other) noexcept;
  SseClient(const SseClient&) = delete;
  SseClient& operator=(const SseClient&) = delete;
  ~SseClient();

 private:
  friend class Metrics;
  explicit SseClient(Metrics* metrics);
  Metrics* metrics_ = nullptr;
};

class Metrics {
 public:
  /// The content type of exposition(), for the Content-Type header of GET /metrics.
  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

  /// `version` and `role` (serve, api or worker) label framepress_build_info.
  explicit Metrics(std::string_view version = "unknown", std::string_view role = "serve");
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // ---- API ----
  /// An upload was stored and its job created, counted by the process that took it: `bytes` is the
  /// source's size.
  void upload_accepted(std::uint64_t bytes);
  /// An upload was refused (too large, not a video, bad request, client gone).
  void upload_rejected();

  // ---- The job book (every process that folds the event log) ----
  // Every process sees every event, so these count each job in each process: the dashboard takes the
  // maximum over processes. Count only events that arrive after the log was replayed (the subscription's
  // caught-up callback), or every restart would count the whole history again.
  /// A live job.created event.
  void job_created();
  /// A live terminal event: "completed", "failed", "cancelled" or "deleted".
  void job_ended(std::string_view state);
  /// The number of jobs in each state now, e.g. {{"queued", 3}, {"processing", 1}, …}. States known
  /// before but not named here are set to 0, so a state that emptied does not keep its last count.
  void set_jobs(const std::vector<std::pair<std::string, std::int64_t>>& count_by_state);

  // ---- HTTP ----
  /// One HTTP answer with `status`; counted as an error too when status >= 400.
  void http_response(int status);
  /// An SSE stream opened; it counts until the guard is destroyed.
  SseClient sse_client();

  // ---- Worker ----
  /// A worker took a task of `worker_class` that had waited `queue_wait` since it was enqueued.
  TaskTimer start_task(std::string_view worker_class, std::chrono::duration<double> queue_wait);
  /// `frames` more source frames went through an encode: the difference between two of ffmpeg's
  /// `frame=` progress reports. A group of renditions made from one decode counts its frames once, so
  /// rate() compares with the fps figures of docs/OPERATIONS.md.
  void frames_encoded(std::string_view worker_class, std::uint64_t frames);
  /// An encode (a group from one decode counts once) finished at an average of `fps` source frames per
  /// second: its frames over its wall time.
  void encode_finished(std::string_view worker_class, double fps);

  // ---- Bus ----
  /// Tasks of `worker_class` waiting in the partitions this process holds (high watermark minus the
  /// committed offset, summed), as last seen by the bus.
  void set_consumer_lag(std::string_view worker_class, std::int64_t lag);

  /// Every metric in the Prometheus text format (version 0.0.4).
  std::string exposition() const;

 private:
  friend class TaskTimer;
  friend class SseClient;
  void task_ended(const std::string& worker_class, TaskOutcome outcome, std::chrono::duration<double> duration);
  void sse_closed();

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace framepress::metrics
