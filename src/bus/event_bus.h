#pragma once
// The event bus: the seam between the API and the workers. Two streams go through it:
//  - the event log: every job event, durable and ordered per job, read from the start by every process
//    that derives job state (the API's job book, a worker's cancellations);
//  - the task queues: one rendition task per message, one queue per worker class, each task handed to
//    one worker at a time and handed out again if that worker dies before completing it.
// Implementations: embedded/ (SQLite, one process), kafka/ (Apache Kafka, many processes).
// Failures are thrown as framepress::Error; retryable() says whether trying again may help.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/events.h"
#include "core/job_book.h"

namespace framepress {

/// A running subscription to the event log; destroying it stops delivery (and waits for a handler call
/// under way to return).
class Subscription {
 public:
  virtual ~Subscription() = default;
};

/// A task handed to one worker. Complete it when its outcome is durable (outputs stored and the events
/// that say so published); a lease that is never completed is handed out again after a crash.
struct TaskLease {
  RenditionTask task;
  std::uint64_t handle = 0;   // implementation-defined (a row id, a partition and offset)
  std::chrono::system_clock::time_point enqueued_at{};
};

/// Hands out the tasks of some worker classes. Thread-safe: several worker threads share one.
class TaskSource {
 public:
  virtual ~TaskSource() = default;
  /// The next task, waiting up to `wait`; nullopt when none came.
  virtual std::optional<TaskLease> next(std::chrono::milliseconds wait) = 0;
  /// Leases up to `max` more due tasks of the same job as `first`, so that one decode can feed them all
  /// (one ffmpeg, one output per rendition). Each is then completed on its own. A bus that cannot find a
  /// job's other tasks cheaply returns none, the default (the Kafka source collects them in next_group).
  virtual std::vector<TaskLease> claim_siblings(const TaskLease& first, std::size_t max) {
    (void)first, (void)max;
    return {};
  }
  /// The next task (waiting up to `wait`) followed by up to `max_siblings` due tasks of its job, leased as
  /// one step: another worker asking at the same moment cannot take part of the job between the two, so a
  /// job queued with EventBus::enqueue_all is decoded once. Empty when no task came. The default calls
  /// next() then claim_siblings(), which leaves that gap; the buses override it.
  virtual std::vector<TaskLease> next_group(std::chrono::milliseconds wait, std::size_t max_siblings) {
    std::vector<TaskLease> group;
    auto first = next(wait);
    if (!first) return group;
    group.push_back(std::move(*first));
    if (max_siblings > 0) {
      for (auto& sibling : claim_siblings(group.front(), max_siblings)) group.push_back(std::move(sibling));
    }
    return group;
  }
  /// The task is finished, whatever its outcome: it will not be handed out again.
  virtual void complete(const TaskLease& lease) = 0;
  /// The task failed for good (its retries are spent): keep it, with `reason`, where an operator can find
  /// it (Kafka's dead-letter topic), then complete it. The default only completes it: the failure is
  /// already in the job's events.
  virtual void dead_letter(const TaskLease& lease, const std::string& reason) {
    (void)reason;
    complete(lease);
  }
};

class EventBus {
 public:
  virtual ~EventBus() = default;

  /// Appends `event` to its job's log. Durable when it returns. Thread-safe.
  virtual void publish(const Event& event) = 0;

  using EventHandler = std::function<void(LogPosition position, const Event& event)>;
  /// Delivers every event of the log from its beginning, then each new one, in log order per job, one call
  /// at a time on a thread of the bus. `caught_up` is called once, after the events that were in the log
  /// when subscribing have been delivered (the API is ready only then).
  virtual std::unique_ptr<Subscription> subscribe(EventHandler handler, std::function<void()> caught_up) = 0;

  /// Queues a task on its rendition's class queue. Durable when it returns. Thread-safe.
  /// `not_before` delays it (a retry's back-off).
  virtual void enqueue(const RenditionTask& task,
                       std::chrono::milliseconds not_before = std::chrono::milliseconds{0}) = 0;

  /// Queues a job's tasks together (each on its rendition's class queue, all due `not_before` from now), so
  /// that a worker taking one of them finds the others already there and can encode them from one decode.
  /// Durable when it returns. Thread-safe. The embedded bus makes them visible all at once; Kafka
  /// produces them as one batch, one partition a class (the key is the video id).
  virtual void enqueue_all(const std::vector<RenditionTask>& tasks,
                           std::chrono::milliseconds not_before = std::chrono::milliseconds{0}) = 0;

  /// Queues the next attempt of a task that failed on the worker taking tasks from `failed_on`, on another
  /// worker where the bus can choose (Kafka: a partition `failed_on` does not hold), so that a fault of that
  /// machine (a full scratch disk, a broken encoder) is not met again. Where it cannot (one process, or no
  /// other worker), as enqueue(). Durable when it returns. Thread-safe.
  virtual void enqueue_elsewhere(const RenditionTask& task, std::chrono::milliseconds not_before,
                                 TaskSource& failed_on) {
    (void)failed_on;
    enqueue(task, not_before);
  }

  /// A source of the tasks of `classes` (an empty list: every class).
  virtual std::unique_ptr<TaskSource> tasks(const std::vector<std::string>& classes) = 0;

  /// Forgets what the bus keeps of a deleted job, where it can (the embedded log drops its rows).
  virtual void forget(const VideoId& id) = 0;
};

}  // namespace framepress
