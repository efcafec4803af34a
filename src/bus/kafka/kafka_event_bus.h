#pragma once
// The Kafka event bus: the event log and the task queues of `framepress api` and `framepress worker`
// processes, over Apache Kafka (librdkafka, hidden behind this header). docs/ARCHITECTURE.md tells the
// topics, keys and guarantees; in short:
//  - video.events: every event, key = video id, so one job's events stay in order in one partition and
//    the partition offset is the event's LogPosition. Every reader reads every partition from the start
//    (no consumer group), so any number of API processes derive the same state and the same event ids.
//  - video.tasks.<class>: one message per rendition task, key = video id, so one job's renditions of a
//    class land in one partition, one after another, and the worker that holds it takes them together
//    (one decode, TaskSource::next_group). The workers of one class form one consumer group
//    ("framepress-workers-<class>"): each task goes to one worker, and starting more processes scales the
//    pool. An offset is committed only once its task is completed, and only up to the lowest unfinished
//    offset of its partition; the finished offsets above it travel in the commit's metadata, so after a
//    crash or a rebalance exactly the unfinished tasks are handed out again.
//  - video.upload and video.compress: the prototype's messages for its consumers (PROTOTYPE-API.md).
//  - video.tasks.dead: tasks that cannot be parsed or that failed for good, with the reason.

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bus/event_bus.h"

namespace framepress {

namespace detail {
struct KafkaCore;
class KafkaTaskSourceImpl;
}  // namespace detail

/// How to reach Kafka and what to call things there. Defaults continue the prototype's topic names.
struct KafkaOptions {
  /// "host:9092,host2:9092". Required.
  std::string bootstrap_servers;
  /// librdkafka properties passed to every client as they are: security.protocol, sasl.mechanism,
  /// sasl.username, sasl.password, ssl.ca.location, … Properties the bus depends on for its guarantees
  /// (idempotence, acks, commits, offset storage) cannot be overridden here.
  std::map<std::string, std::string> client_properties;
  /// Prefix of the client.id of every client (the role is appended), as brokers log and quota it.
  std::string client_id = "framepress";

  std::string events_topic = "video.events";
  /// A class's tasks topic is this prefix followed by the class name: "video.tasks.hd".
  std::string tasks_topic_prefix = "video.tasks.";
  std::string upload_topic = "video.upload";
  std::string compress_topic = "video.compress";
  std::string dead_letter_topic = "video.tasks.dead";
  /// A class's consumer group is this prefix followed by the class name: "framepress-workers-hd".
  std::string worker_group_prefix = "framepress-workers-";

  /// The worker classes that have a tasks topic (and so a pool).
  std::vector<std::string> worker_classes{"sd", "hd", "uhd"};
  /// Partitions of the events and tasks topics when the bus creates them. A tasks topic's partition
  /// count caps how many workers of its class run at once. Never add partitions to an events topic in
  /// use: a job's later events would land in another partition, out of order with its earlier ones.
  int partitions = 12;
  /// Partitions of video.upload, video.compress and the dead letters: little traffic.
  int side_partitions = 1;
  int replication_factor = 1;

  /// The bucket named in the prototype's messages.
  std::string bucket = "videos";

  /// How long a silent worker keeps its partitions (session.timeout.ms): after a crash its tasks move
  /// to another worker this much later. Tests use about 6 s.
  std::chrono::milliseconds session_timeout{45000};
  /// max.poll.interval.ms. The task source polls all the time (pausing what it does not want), so a
  /// long encode never comes near it; it only matters when a process hangs.
  std::chrono::milliseconds max_poll_interval{300000};
  /// How long the constructor (and subscribe, tasks) may wait for the cluster before giving up.
  std::chrono::milliseconds startup_timeout{15000};
  /// How long publish() and enqueue() keep trying to deliver (message.timeout.ms): long enough to ride
  /// out a broker restart.
  std::chrono::milliseconds delivery_timeout{60000};

  /// Told, every few seconds on a task source's poll thread, how many tasks of a class wait in the
  /// partitions this process holds: the high watermark as last fetched minus the commit point, summed.
  /// The metrics' consumer lag; keep it short.
  std::function<void(const std::string& worker_class, std::int64_t waiting)> on_consumer_lag;
};

/// Hands out the tasks of some worker classes of a KafkaEventBus: one consumer a class, in that class's
/// group. A background thread a class keeps polling while tasks run (so max.poll.interval.ms is never
/// exceeded), pausing its partitions while enough tasks are waiting to be taken.
///
/// Thread-safety: every method may be called from any thread. Destroying the source stops handing out
/// tasks, commits what was completed, and leaves the groups: leases not completed by then are handed
/// out again to the other members (and complete() must not be called for them any more).
class KafkaTaskSource final : public TaskSource {
 public:
  ~KafkaTaskSource() override;
  KafkaTaskSource(const KafkaTaskSource&) = delete;
  KafkaTaskSource& operator=(const KafkaTaskSource&) = delete;

  /// The next due task of any of the classes, oldest first as fetched; nullopt after `wait` without one.
  std::optional<TaskLease> next(std::chrono::milliseconds wait) override;

  /// The next due task, then the other tasks of its job queued with it (enqueue_all), up to
  /// `max_siblings`: those already fetched, and those the poll thread fetches next from the same
  /// partition, waiting (briefly: they follow it in the partition) until they come or the partition has
  /// been read past them. Meanwhile no other caller takes that job's tasks and no partition is paused.
  /// Siblings not found (finished before a redelivery, or queued apart) run as groups of their own.
  std::vector<TaskLease> next_group(std::chrono::milliseconds wait, std::size_t max_siblings) override;

  /// Marks the lease's offset finished. The poll thread commits its partition at once (asynchronously,
  /// retried while the broker is away, and synchronously when the partition is revoked or the source
  /// closes), up to the lowest unfinished offset with the finished ones above it in the commit's
  /// metadata. At-least-once: a crash before that commit lands hands the task out again, which only
  /// overwrites the same output. A lease whose partition was revoked meanwhile (a rebalance, or the
  /// broker away longer than the session time-out) runs again on the partition's new owner; should the
  /// partition come back to this source, the task is not run again (nor while it is still running here).
  /// Never throws for Kafka's sake; completing a lease twice is harmless.
  void complete(const TaskLease& lease) override;

  /// Sends the task to the dead-letter topic with `reason` (durably), then completes the lease. For a
  /// task whose retries are exhausted. Throws Error(unavailable, retryable) when Kafka does not take it;
  /// the lease is then still open.
  void dead_letter(const TaskLease& lease, const std::string& reason) override;

  /// Partitions assigned to this source now, over all its classes (for tests and diagnostics).
  std::size_t assigned_partitions() const;

  /// A partition of `worker_class`'s tasks topic that this source does not hold now, at random, so that
  /// another member of the group takes what is sent there; -1 when it holds them all (it is alone), the
  /// class is not one of its own, or the broker does not answer within a few seconds.
  std::int32_t partition_elsewhere(const std::string& worker_class);

 private:
  friend class KafkaEventBus;
  explicit KafkaTaskSource(std::unique_ptr<detail::KafkaTaskSourceImpl> impl);
  static std::unique_ptr<KafkaTaskSource> create(std::shared_ptr<detail::KafkaCore> core,
                                                 const std::vector<std::string>& classes);
  std::unique_ptr<detail::KafkaTaskSourceImpl> impl_;
};

/// An EventBus over Apache Kafka, for many processes. See the top of this file for topics and keys.
///
/// Thread-safety: every method may be called from any thread. Subscriptions and task sources keep the
/// bus's producer alive, so they may outlive the KafkaEventBus object.
///
/// Failures are thrown as framepress::Error: unavailable (retryable) when Kafka cannot be reached or
/// does not acknowledge in time; internal (not retryable) for a configuration Kafka refuses.
class KafkaEventBus final : public EventBus {
 public:
  /// Connects, and creates the topics that are missing with the configured partitions and replication.
  /// Throws Error(unavailable) naming the bootstrap servers when no broker answers within
  /// options.startup_timeout, Error(internal) when the options are unusable.
  explicit KafkaEventBus(KafkaOptions options);
  ~KafkaEventBus() override;

  KafkaEventBus(const KafkaEventBus&) = delete;
  KafkaEventBus& operator=(const KafkaEventBus&) = delete;

  /// Produces the event to the events topic (key = video id) and waits for the broker's acknowledgement
  /// from all in-sync replicas (idempotent producer, acks=all). rendition.progress is the exception: it
  /// returns at once (still in order behind the job's earlier events); its loss costs one progress
  /// update. job.created also goes to the upload topic and rendition.done to the compress topic, in the
  /// prototype's form, acknowledged as well.
  void publish(const Event& event) override;

  /// Reads every partition of the events topic from the beginning with a consumer of its own (no group,
  /// no commits) and delivers each event with its offset as position, one call at a time on the
  /// subscription's thread, in order within each partition (so within each job). `caught_up` is called
  /// once every partition has been read up to where it ended when subscribing. An exception from
  /// `handler` is logged and delivery goes on; a message that is not an event is logged and skipped.
  /// Destroying the subscription stops delivery and waits for a handler call under way (unless it is
  /// destroyed from inside its own handler). Throws Error(unavailable) when the partitions' ends cannot
  /// be read.
  std::unique_ptr<Subscription> subscribe(EventHandler handler, std::function<void()> caught_up) override;

  /// Produces the task to its class's topic (key = video id), with `not_before` as an absolute time in
  /// the message so that the source holds it back until then, and waits for the acknowledgement. Throws
  /// Error(internal) for a class that has no topic.
  void enqueue(const RenditionTask& task,
               std::chrono::milliseconds not_before = std::chrono::milliseconds{0}) override;

  /// As enqueue(), for a job's tasks at once: one producer batch, one wait for its acknowledgements. Each
  /// message names the renditions of its job and class queued with it ("group"), which follow one another
  /// in one partition, so that the task source can hand them out together. Not atomic (Kafka has no
  /// transaction here): when it throws, some tasks may have been stored. Throws Error(internal) before
  /// producing anything when a task's class has no topic.
  void enqueue_all(const std::vector<RenditionTask>& tasks,
                   std::chrono::milliseconds not_before = std::chrono::milliseconds{0}) override;

  /// enqueue(), to a partition that `failed_on` (a KafkaTaskSource) does not hold, so that another member
  /// of the class's group takes it; by key as enqueue() when every partition is its own.
  void enqueue_elsewhere(const RenditionTask& task, std::chrono::milliseconds not_before,
                         TaskSource& failed_on) override;

  /// kafka_tasks() as the interface's type.
  std::unique_ptr<TaskSource> tasks(const std::vector<std::string>& classes) override;

  /// A source of the tasks of `classes` (empty: every configured class), joining each class's group.
  /// Throws Error(internal) for an unknown class.
  std::unique_ptr<KafkaTaskSource> kafka_tasks(const std::vector<std::string>& classes);

  /// Does nothing: Kafka keeps the log until its retention drops it, and a reader's book drops the job
  /// again when it replays the job.deleted event.
  void forget(const VideoId& id) override;

  const KafkaOptions& options() const;

 private:
  /// Produces `tasks` as one batch to `partition` (RD_KAFKA_PARTITION_UA: by key), keyed by video id,
  /// each naming the renditions of its job and class in the batch ("group").
  void enqueue_to(const std::vector<RenditionTask>& tasks, std::chrono::milliseconds not_before, std::int32_t partition);
  std::shared_ptr<detail::KafkaCore> core_;
};

}  // namespace framepress
