#pragma once
// The workers: threads that take rendition tasks from the bus, encode them and store the results. Only
// the seams are known here (EventBus, ObjectStore, Transcoder), so the same code runs embedded and
// distributed.

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "bus/event_bus.h"
#include "core/job_book.h"
#include "media/transcoder.h"
#include "metrics/metrics.h"
#include "store/object_store.h"

namespace framepress::worker {

struct WorkerOptions {
  int concurrency = 2;                                    // tasks encoded at once
  std::vector<std::string> classes;                       // worker classes to take; empty: all
  int max_retries = 2;                                    // after the first attempt
  int max_group = 8;                                      // renditions of one job encoded from one decode; 1: apart
  std::chrono::milliseconds retry_backoff{2000};          // doubled at each attempt
  std::chrono::milliseconds progress_interval{500};       // at most two progress events a second
  std::chrono::seconds unknown_job_grace{30};             // how long to wait for the book to learn a new job
  std::filesystem::path scratch_dir;                      // one directory per task below it
  std::string name = "worker";                            // shown in rendition.started
  metrics::Metrics* metrics = nullptr;                    // task and encode metrics go here; null: nowhere
};

/// Reads the job book (never writes it) to skip work for jobs that were cancelled or deleted and to kill
/// encodes when that happens mid-way.
class WorkerPool {
 public:
  WorkerPool(EventBus& bus, ObjectStore& store, Transcoder& transcoder, JobBook& book, WorkerOptions options);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void start();
  /// Stops taking tasks and kills running encodes; their tasks are not completed, so the bus hands them out
  /// again (after a restart, or to another worker). Returns when every thread has ended.
  void stop();

 private:
  struct Running;
  void run(std::stop_token stop, int slot);
  void execute(std::vector<TaskLease> leases, std::stop_token stop);
  void execute_group(std::vector<TaskLease> group, std::stop_token stop);
  void on_job_changed(const VideoId& id);

  EventBus& bus_;
  ObjectStore& store_;
  Transcoder& transcoder_;
  JobBook& book_;
  WorkerOptions options_;
  std::unique_ptr<metrics::Metrics> unobserved_metrics_;  // when no metrics were given
  metrics::Metrics& metrics_;
  std::unique_ptr<TaskSource> tasks_;
  std::vector<std::jthread> threads_;
  std::uint64_t listener_ = 0;

  std::mutex running_mutex_;
  std::multimap<VideoId, std::stop_source*> running_;   // encodes to kill when their job ends
};

}  // namespace framepress::worker
