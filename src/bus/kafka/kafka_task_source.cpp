// The task source: one consumer a worker class, each in its class's group, each with a thread that
// polls all the time. Why it is built this way:
//  - Polling never stops, so max.poll.interval.ms is never exceeded however long an encode takes: no
//    rebalance, no second worker starting the same task.
//  - Fetched tasks wait in `ready` until a worker asks. While enough are waiting, the partitions are
//    paused, so the consumer keeps polling without taking more tasks than this process will start soon.
//  - Offsets are committed from the poll thread only (asynchronously after each completion,
//    synchronously when partitions are revoked or the source closes), so commits of a partition are sent
//    in order. Each commit is the lowest unfinished offset plus, in its metadata, the finished ones above
//    it (OffsetTracker).
//  - A job's tasks of one class share a partition (keyed by video id) and each names the renditions queued
//    with it. next_group() hands out the first and then collects the others as the poll thread fetches
//    them: while it does, no partition is paused and no other worker may take that job's tasks.

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "bus/kafka/kafka_core.h"
#include "bus/kafka/offset_tracker.h"
#include "core/error.h"

namespace framepress::detail {
namespace {

using Clock = std::chrono::steady_clock;
using kafka::OffsetTracker;

// How many due tasks are kept fetched beyond the workers waiting right now, so that a worker that
// finishes gets its next task without a round trip to the broker.
constexpr std::size_t prefetch = 1;
// After a failed commit, the next attempt waits this long (the broker is likely away).
constexpr auto commit_retry_delay = std::chrono::seconds(1);
// How long next_group() waits at most for a job's other tasks to be fetched. They were produced in one
// batch right behind the first, so a fetch brings them in milliseconds; this only bounds a broker that
// went away meanwhile, or siblings that never come (finished before a redelivery, say), when the
// partition's fetch position does not tell.
constexpr auto sibling_patience = std::chrono::seconds(5);

struct ParsedTask {
  std::optional<RenditionTask> task;
  TimestampMs due_ms = 0;
  std::vector<std::string> group;
  std::string error;
};

ParsedTask parse_task(std::string_view value) {
  ParsedTask parsed;
  try {
    const auto json = nlohmann::json::parse(value);
    parsed.task = task_from_json(json);
    if (auto it = json.find("not_before_ms"); it != json.end() && it->is_number_integer()) parsed.due_ms = it->get<TimestampMs>();
    // Absent from a task queued alone (or by an older framepress): then it has no siblings to wait for.
    if (auto it = json.find("group"); it != json.end() && it->is_array()) {
      for (const auto& name : *it) {
        if (name.is_string()) parsed.group.push_back(name.get<std::string>());
      }
    }
  } catch (const std::exception& e) {
    parsed.error = e.what();
  }
  return parsed;
}

std::chrono::system_clock::time_point enqueued_at(const rd_kafka_message_t& message) {
  rd_kafka_timestamp_type_t type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
  const std::int64_t ms = rd_kafka_message_timestamp(&message, &type);
  if (ms < 0) return std::chrono::system_clock::now();
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
}

}  // namespace

class ClassConsumer;

/// A fetched task not handed out yet.
struct ReadyTask {
  ClassConsumer* consumer = nullptr;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::uint64_t epoch = 0;  // of the partition's assignment when fetched
  RenditionTask task;
  std::chrono::system_clock::time_point enqueued_at;
  std::vector<std::string> group;  // the renditions of its job and class queued with it, in queue order
};

/// What a lease handle stands for.
struct LeaseRecord {
  ClassConsumer* consumer = nullptr;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::uint64_t epoch = 0;  // of the partition's assignment: a lease from before a rebalance is stale
};

class KafkaTaskSourceImpl {
 public:
  KafkaTaskSourceImpl(std::shared_ptr<KafkaCore> core, const std::vector<std::string>& classes);
  ~KafkaTaskSourceImpl();

  std::optional<TaskLease> next(std::chrono::milliseconds wait);
  std::vector<TaskLease> next_group(std::chrono::milliseconds wait, std::size_t max_siblings);
  void complete(const TaskLease& lease);
  void dead_letter(const TaskLease& lease, const std::string& reason);
  std::size_t assigned_partitions() const;
  std::int32_t partition_elsewhere(const std::string& worker_class);

  // Shared with the class consumers.
  std::shared_ptr<KafkaCore> core;
  mutable std::mutex mutex;  // guards what follows and each consumer's partitions_ and delayed_
  std::condition_variable ready_changed;
  std::deque<ReadyTask> ready;
  std::size_t waiters = 0;
  bool stopping = false;
  std::map<std::uint64_t, LeaseRecord> leases;
  std::uint64_t next_handle = 1;
  /// Jobs whose siblings a next_group() call is collecting: nobody else takes their tasks meanwhile.
  std::map<VideoId, std::size_t> claiming;
  /// next_group() calls collecting now: while there are any, no partition is paused.
  std::size_t claims = 0;

 private:
  /// Waits up to `wait` for a ready task that nobody is collecting, and leases it. Under `lock`.
  std::optional<ReadyTask> take_first(std::unique_lock<std::mutex>& lock, std::chrono::milliseconds wait);
  /// Leases the ready tasks of `video` (up to `max` in all in `group`), appending them to `group`. Under
  /// the lock.
  void take_siblings(const VideoId& video, std::size_t max, std::vector<TaskLease>& group);
  TaskLease lease(ReadyTask task);

  std::vector<std::unique_ptr<ClassConsumer>> consumers_;
};

/// One class's consumer and its poll thread.
class ClassConsumer {
 public:
  ClassConsumer(KafkaTaskSourceImpl& source, const std::string& worker_class);

  void start() {
    thread_ = std::thread([this] { run(); });
  }
  /// Stops polling (the thread ends), then leaves the group: the revocation commits what is finished.
  void close();
  /// Wakes the poll thread now (a worker started waiting, a task was completed).
  void wake() { rd_kafka_queue_yield(queue_.get()); }

  const std::string& topic() const { return topic_; }
  const std::string& worker_class() const { return class_; }

  // Under source_.mutex.
  std::size_t partition_count() const { return partitions_.size(); }
  /// The highest offset of `p` fetched since it was assigned here (-1: none yet); nullopt when this
  /// consumer does not hold `p`.
  std::optional<std::int64_t> fetched_upto(std::int32_t p) const {
    auto it = partitions_.find(p);
    if (it == partitions_.end()) return std::nullopt;
    return it->second.fetched_upto;
  }

  bool holds(std::int32_t partition) const { return partitions_.count(partition) != 0; }

  /// How many partitions the topic has now (-1 when the broker does not say within a few seconds).
  int topic_partitions() {
    try {
      const auto counts = kafka::partition_counts(rk_.get(), source_.core->options, std::chrono::seconds(5));
      auto it = counts.find(topic_);
      return it == counts.end() ? -1 : it->second;
    } catch (const Error&) {
      return -1;
    }
  }
  /// Records that the lease's task is finished; false when its partition was revoked meanwhile.
  bool finish(const LeaseRecord& lease);

  /// At most this many finished offsets are remembered of a partition this consumer lost.
  static constexpr std::size_t max_remembered = 10000;

 private:
  struct PartitionState {
    OffsetTracker tracker;
    std::uint64_t epoch = 0;
    bool paused = false;
    std::int64_t fetched_upto = -1;
    std::optional<OffsetTracker::Commit> sent;  // the last commit sent (or the one read at assignment)
  };

  void run();
  void on_message(const rd_kafka_message_t& message);
  /// Whether the task fetched at `offset` of `p` is running here since before the partition was last
  /// revoked; its lease then counts for the new assignment and it is not handed out again.
  bool adopt_running(std::int32_t p, std::int64_t offset, const PartitionState& state);
  /// Keeps what `tracker` knows is finished of `p`, which this consumer is losing.
  void remember(std::int32_t p, const OffsetTracker& tracker);
  void release_due();
  void adjust_flow();
  /// Tells KafkaOptions::on_consumer_lag what waits in this consumer's partitions, every few seconds.
  void report_lag();
  /// Commits every partition of `only` (all when empty) whose commit point moved; `sync` waits for it.
  void commit(const std::vector<std::int32_t>& only, bool sync);
  void send_to_dead_letters(const rd_kafka_message_t& message, const std::string& reason);

  void on_assign(rd_kafka_topic_partition_list_t* partitions);
  void on_revoke(rd_kafka_topic_partition_list_t* partitions);
  /// Drops the bookkeeping of `revoked` (every partition when null); returns how many leases of them
  /// are still running here.
  std::size_t forget_partitions(const std::vector<std::int32_t>* revoked);
  static void rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions,
                        void* opaque);
  static void committed(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets,
                        void* opaque);

  KafkaTaskSourceImpl& source_;
  const std::string class_;
  const std::string topic_;
  kafka::Handle rk_;
  kafka::Queue queue_;
  std::atomic<bool> stop_{false};
  std::thread thread_;

  // Under source_.mutex (changed only on the poll thread, or in close() once it has ended).
  std::map<std::int32_t, PartitionState> partitions_;
  std::multimap<TimestampMs, ReadyTask> delayed_;  // by due time
  /// What this consumer knows to be finished of partitions it no longer holds: merged back should a
  /// partition come back, so that nothing finished here runs again.
  struct Remembered {
    std::optional<std::int64_t> done_below;
    std::set<std::int64_t> done;
  };
  std::map<std::int32_t, Remembered> remembered_;
  std::uint64_t next_epoch_ = 1;

  // Poll thread only.
  bool cooperative_ = false;
  Clock::time_point commit_not_before_{};
  Clock::time_point next_lag_report_{};
};

// ---- ClassConsumer -----------------------------------------------------------------------------

ClassConsumer::ClassConsumer(KafkaTaskSourceImpl& source, const std::string& worker_class)
    : source_(source), class_(worker_class), topic_(source.core->tasks_topic(worker_class)) {
  const KafkaOptions& o = source.core->options;
  const auto session = o.session_timeout.count();
  kafka::Conf conf = kafka::make_conf(
      o, "worker-" + worker_class,
      {
          // Only the partitions that move are revoked when a worker joins or leaves, so the tasks
          // running on the others are not started a second time elsewhere.
          {"partition.assignment.strategy", "cooperative-sticky"},
          {"session.timeout.ms", std::to_string(session)},
          {"heartbeat.interval.ms", std::to_string(std::clamp<long long>(session / 3, 100, 3000))},
          {"max.poll.interval.ms", std::to_string(o.max_poll_interval.count())},
          // A group's first member starts with the tasks queued before the group existed.
          {"auto.offset.reset", "earliest"},
      },
      {
          {"group.id", o.worker_group_prefix + worker_class},
          {"enable.auto.commit", "false"},
          {"enable.auto.offset.store", "false"},
          {"enable.partition.eof", "false"},
      });
  rd_kafka_conf_set_opaque(conf.get(), this);
  rd_kafka_conf_set_rebalance_cb(conf.get(), &ClassConsumer::rebalance);
  rd_kafka_conf_set_offset_commit_cb(conf.get(), &ClassConsumer::committed);
  rk_ = kafka::make_client(RD_KAFKA_CONSUMER, std::move(conf));
  rd_kafka_poll_set_consumer(rk_.get());
  queue_.reset(rd_kafka_queue_get_consumer(rk_.get()));

  kafka::PartitionList topics(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(topics.get(), topic_.c_str(), RD_KAFKA_PARTITION_UA);
  if (const auto err = rd_kafka_subscribe(rk_.get(), topics.get()); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw Error(ErrorCode::internal, fmt::format("cannot subscribe to {}: {}", topic_, rd_kafka_err2str(err)), "kafka");
  }
}

void ClassConsumer::close() {
  stop_.store(true);
  wake();
  if (thread_.joinable()) thread_.join();
  // Serves the revocation (our rebalance callback commits what is finished), then leaves the group so
  // the partitions move at once rather than after the session time-out.
  if (const auto err = rd_kafka_consumer_close(rk_.get()); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    spdlog::warn("{}: closing the consumer: {}", topic_, rd_kafka_err2str(err));
  }
}

void ClassConsumer::run() {
  while (!stop_.load()) {
    release_due();
    adjust_flow();
    commit({}, /*sync=*/false);
    report_lag();
    kafka::Message message(rd_kafka_consumer_poll(rk_.get(), 100));
    if (!message) continue;
    if (message->err) {
      // Transient trouble (a broker away) librdkafka works through itself.
      spdlog::warn("{}: {}", topic_, rd_kafka_message_errstr(message.get()));
      continue;
    }
    on_message(*message);
  }
}

void ClassConsumer::report_lag() {
  const auto& report = source_.core->options.on_consumer_lag;
  if (!report || Clock::now() < next_lag_report_) return;
  next_lag_report_ = Clock::now() + std::chrono::seconds(5);
  std::vector<std::pair<std::int32_t, std::optional<std::int64_t>>> commit_points;
  {
    std::lock_guard lock(source_.mutex);
    for (const auto& [p, state] : partitions_) {
      auto point = state.tracker.commit();
      commit_points.emplace_back(p, point ? std::optional(point->offset) : std::nullopt);
    }
  }
  std::int64_t waiting = 0;
  for (const auto& [p, committed] : commit_points) {
    // The watermarks librdkafka cached from its last fetch of the partition: no broker round trip on
    // the poll thread. A paused partition's is as old as its last fetch.
    std::int64_t low = 0, high = 0;
    if (rd_kafka_get_watermark_offsets(rk_.get(), topic_.c_str(), p, &low, &high) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        high < 0) {
      continue;
    }
    waiting += std::max<std::int64_t>(0, high - committed.value_or(std::max<std::int64_t>(low, 0)));
  }
  report(class_, waiting);
}

void ClassConsumer::on_message(const rd_kafka_message_t& message) {
  const std::int32_t p = message.partition;
  const std::int64_t offset = message.offset;
  ParsedTask parsed = parse_task(std::string_view(static_cast<const char*>(message.payload), message.len));
  OffsetTracker::Fetched fetched{};
  {
    std::lock_guard lock(source_.mutex);
    auto it = partitions_.find(p);
    if (it == partitions_.end()) return;  // revoked while the message was on its way
    it->second.fetched_upto = std::max(it->second.fetched_upto, offset);
    // A next_group() call may be waiting to see how far the partition has been read.
    if (source_.claims > 0) source_.ready_changed.notify_all();
    fetched = it->second.tracker.fetched(offset);
    if (fetched == OffsetTracker::Fetched::fresh && parsed.task && adopt_running(p, offset, it->second)) {
      return;
    }
    if (fetched == OffsetTracker::Fetched::fresh && parsed.task) {
      ReadyTask ready{this, p, offset, it->second.epoch, std::move(*parsed.task), enqueued_at(message),
                      std::move(parsed.group)};
      if (parsed.due_ms > now_ms()) {
        delayed_.emplace(parsed.due_ms, std::move(ready));
      } else {
        source_.ready.push_back(std::move(ready));
        source_.ready_changed.notify_one();
      }
    }
  }
  if (fetched == OffsetTracker::Fetched::done) {
    spdlog::debug("{} [{}] {}: finished by the partition's previous owner, skipped", topic_, p, offset);
  }
  if (fetched == OffsetTracker::Fetched::fresh && !parsed.task) {
    spdlog::error("{} [{}] {}: not a task, sent to {}: {}", topic_, p, offset, source_.core->options.dead_letter_topic,
                  parsed.error);
    try {
      send_to_dead_letters(message, "not a task: " + parsed.error);
    } catch (const std::exception& e) {
      // Left unfinished: it is read again (and sent again) after a restart or a rebalance.
      spdlog::error("{} [{}] {}: could not dead-letter it: {}", topic_, p, offset, e.what());
      return;
    }
    std::lock_guard lock(source_.mutex);
    if (auto it = partitions_.find(p); it != partitions_.end()) it->second.tracker.finish(offset);
  }
}

void ClassConsumer::release_due() {
  std::lock_guard lock(source_.mutex);
  const TimestampMs now = now_ms();
  bool released = false;
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    source_.ready.push_back(std::move(delayed_.begin()->second));
    delayed_.erase(delayed_.begin());
    released = true;
  }
  if (released) source_.ready_changed.notify_all();
}

void ClassConsumer::adjust_flow() {
  std::vector<std::int32_t> changed;
  bool pause = false;
  {
    std::lock_guard lock(source_.mutex);
    // A next_group() call collecting a job's tasks needs their partition fetched: pausing would also
    // drop what librdkafka has fetched but not yet handed over.
    pause = source_.claims == 0 && source_.ready.size() >= source_.waiters + prefetch;
    for (auto& [p, state] : partitions_) {
      // Only partitions whose state changes: resuming one that is not paused makes librdkafka 2.0 fetch
      // again from an older position (librdkafka issue #4686).
      if (state.paused != pause) {
        state.paused = pause;
        changed.push_back(p);
      }
    }
  }
  if (changed.empty()) return;
  kafka::PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(changed.size())));
  for (auto p : changed) rd_kafka_topic_partition_list_add(list.get(), topic_.c_str(), p);
  const auto err = pause ? rd_kafka_pause_partitions(rk_.get(), list.get()) : rd_kafka_resume_partitions(rk_.get(), list.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) spdlog::warn("{}: pause/resume: {}", topic_, rd_kafka_err2str(err));
}

void ClassConsumer::commit(const std::vector<std::int32_t>& only, bool sync) {
  if (!sync && Clock::now() < commit_not_before_) return;
  kafka::PartitionList list(rd_kafka_topic_partition_list_new(4));
  {
    std::lock_guard lock(source_.mutex);
    for (auto& [p, state] : partitions_) {
      if (!only.empty() && std::find(only.begin(), only.end(), p) == only.end()) continue;
      auto point = state.tracker.commit();
      if (!point || point == state.sent) continue;
      rd_kafka_topic_partition_t* entry = rd_kafka_topic_partition_list_add(list.get(), topic_.c_str(), p);
      entry->offset = point->offset;
      // Freed with the list (librdkafka frees metadata with free()).
      entry->metadata = std::malloc(point->metadata.size());
      std::memcpy(entry->metadata, point->metadata.data(), point->metadata.size());
      entry->metadata_size = point->metadata.size();
      state.sent = std::move(point);
    }
  }
  if (list->cnt == 0) return;
  if (!sync) {
    rd_kafka_commit(rk_.get(), list.get(), /*async=*/1);  // the result comes to committed()
    return;
  }
  // Only at revocation: the partitions leave this consumer, so a failure is only worth a line (their
  // new owner runs the unfinished and uncommitted tasks again).
  if (const auto err = rd_kafka_commit(rk_.get(), list.get(), /*async=*/0); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    spdlog::warn("{}: commit at revocation failed: {}", topic_, rd_kafka_err2str(err));
  }
}

void ClassConsumer::committed(rd_kafka_t* /*rk*/, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets,
                              void* opaque) {
  auto* self = static_cast<ClassConsumer*>(opaque);
  if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) return;  // nothing was due
  std::vector<std::int32_t> failed;
  for (int i = 0; offsets != nullptr && i < offsets->cnt; ++i) {
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR || offsets->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      failed.push_back(offsets->elems[i].partition);
    }
  }
  if (failed.empty()) return;
  spdlog::warn("{}: commit of partitions {} failed ({}); will try again", self->topic_, fmt::join(failed, ","),
               rd_kafka_err2str(err != RD_KAFKA_RESP_ERR_NO_ERROR ? err : offsets->elems[0].err));
  std::lock_guard lock(self->source_.mutex);
  for (auto p : failed) {
    if (auto it = self->partitions_.find(p); it != self->partitions_.end()) it->second.sent.reset();
  }
  self->commit_not_before_ = Clock::now() + commit_retry_delay;
}

bool ClassConsumer::finish(const LeaseRecord& lease) {
  auto it = partitions_.find(lease.partition);
  if (it != partitions_.end() && it->second.epoch == lease.epoch) {
    it->second.tracker.finish(lease.offset);
    return true;
  }
  if (it != partitions_.end()) {
    // Revoked and assigned back since the lease was taken, the task not fetched again yet.
    it->second.tracker.mark_done(lease.offset);
    return true;
  }
  // Revoked: remembered in case the partition comes back here.
  auto& done = remembered_[lease.partition].done;
  if (done.size() < max_remembered) done.insert(lease.offset);
  return false;
}

void ClassConsumer::remember(std::int32_t p, const OffsetTracker& tracker) {
  const auto commit = tracker.commit();
  if (!commit) return;
  Remembered& r = remembered_[p];
  r.done_below = std::max(r.done_below.value_or(commit->offset), commit->offset);
  for (auto offset : OffsetTracker::parse_metadata(commit->metadata, commit->offset)) {
    if (r.done.size() >= max_remembered) break;
    r.done.insert(offset);
  }
}

bool ClassConsumer::adopt_running(std::int32_t p, std::int64_t offset, const PartitionState& state) {
  // Still running here since before the revocation: that lease counts again, no second encode.
  for (auto& [handle, lease] : source_.leases) {
    if (lease.consumer == this && lease.partition == p && lease.offset == offset) {
      lease.epoch = state.epoch;
      spdlog::info("{} [{}] {}: still running here since before the rebalance, not handed out again", topic_, p, offset);
      return true;
    }
  }
  return false;
}

void ClassConsumer::send_to_dead_letters(const rd_kafka_message_t& message, const std::string& reason) {
  const KafkaOptions& o = source_.core->options;
  const TimestampMs now = now_ms();
  nlohmann::json value{
      {"reason", reason},
      {"raw", std::string(static_cast<const char*>(message.payload), message.len)},
      {"class", class_},
      {"topic", topic_},
      {"partition", message.partition},
      {"offset", message.offset},
      {"at", format_iso8601(now)},
      {"at_ms", now},
  };
  std::string key = message.key ? std::string(static_cast<const char*>(message.key), message.key_len) : std::string();
  source_.core->producer->produce_durable(
      {kafka::Record{o.dead_letter_topic, std::move(key), value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)}});
}

void ClassConsumer::rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions,
                              void* opaque) {
  auto* self = static_cast<ClassConsumer*>(opaque);
  self->cooperative_ = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    self->on_assign(partitions);
  } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    self->on_revoke(partitions);
  } else {
    // librdkafka's contract: clear the assignment to get back in step with the group.
    spdlog::error("{}: rebalance failed: {}; dropping the assignment", self->topic_, rd_kafka_err2str(err));
    self->forget_partitions(nullptr);
    rd_kafka_assign(rk, nullptr);
  }
}

void ClassConsumer::on_assign(rd_kafka_topic_partition_list_t* partitions) {
  const KafkaOptions& o = source_.core->options;
  // Read what the group committed, with its metadata (what the previous owner finished above the
  // offset), and start fetching exactly there.
  kafka::PartitionList list(rd_kafka_topic_partition_list_copy(partitions));
  const auto err = rd_kafka_committed(rk_.get(), list.get(), kafka::to_ms(o.startup_timeout));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    spdlog::warn("{}: cannot read the committed offsets ({}); finished tasks above them may run again", topic_,
                 rd_kafka_err2str(err));
  }
  std::vector<std::int32_t> assigned;
  {
    std::lock_guard lock(source_.mutex);
    for (int i = 0; i < list->cnt; ++i) {
      rd_kafka_topic_partition_t& entry = list->elems[i];
      PartitionState state;
      state.epoch = next_epoch_++;
      std::optional<std::int64_t> start;
      std::set<std::int64_t> done;
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR && entry.err == RD_KAFKA_RESP_ERR_NO_ERROR && entry.offset >= 0) {
        std::string metadata(static_cast<const char*>(entry.metadata), entry.metadata ? entry.metadata_size : 0);
        start = entry.offset;
        done = OffsetTracker::parse_metadata(metadata, entry.offset);
        state.sent = OffsetTracker::Commit{entry.offset, std::move(metadata)};
      }
      // What this consumer finished of the partition before losing it and never got committed (the
      // broker was away longer than the session time-out, say) is finished all the same.
      if (auto r = remembered_.find(entry.partition); r != remembered_.end()) {
        if (r->second.done_below && (!start || *r->second.done_below > *start)) start = r->second.done_below;
        done.merge(r->second.done);
        remembered_.erase(r);
      }
      state.tracker = OffsetTracker(start, std::move(done));
      // Start exactly there; without any commit librdkafka applies auto.offset.reset.
      entry.offset = start.value_or(RD_KAFKA_OFFSET_INVALID);
      partitions_[entry.partition] = std::move(state);
      assigned.push_back(entry.partition);
    }
  }
  // Each assigned partition starts unpaused here (PartitionState::paused is false), so it must be
  // unpaused in librdkafka too: librdkafka keeps a partition's pause across unassign and assign, so a
  // partition paused when it was revoked (tasks were waiting in `ready`) would come back paused, and
  // adjust_flow() would never resume it as it believes it running: nothing fetched again. Resuming before
  // the assignment starts fetching is harmless (librdkafka issue #4686 is about resuming while fetching).
  if (const auto resumed = rd_kafka_resume_partitions(rk_.get(), list.get()); resumed != RD_KAFKA_RESP_ERR_NO_ERROR) {
    spdlog::warn("{}: resume at assignment: {}", topic_, rd_kafka_err2str(resumed));
  }
  for (int i = 0; i < list->cnt; ++i) list->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;  // set by the resume
  if (cooperative_) {
    if (rd_kafka_error_t* error = rd_kafka_incremental_assign(rk_.get(), list.get())) {
      spdlog::error("{}: incremental assign: {}", topic_, rd_kafka_error_string(error));
      rd_kafka_error_destroy(error);
    }
  } else {
    rd_kafka_assign(rk_.get(), list.get());
  }
  if (!assigned.empty()) {
    spdlog::info("{}: assigned partitions {} (group {}{})", topic_, fmt::join(assigned, ","), o.worker_group_prefix, class_);
  }
}

std::size_t ClassConsumer::forget_partitions(const std::vector<std::int32_t>* revoked) {
  auto is_revoked = [&](std::int32_t p) {
    return revoked == nullptr || std::find(revoked->begin(), revoked->end(), p) != revoked->end();
  };
  std::lock_guard lock(source_.mutex);
  for (auto it = partitions_.begin(); it != partitions_.end();) {
    if (!is_revoked(it->first)) {
      ++it;
      continue;
    }
    remember(it->first, it->second.tracker);
    it = partitions_.erase(it);
  }
  // Fetched but not handed out: the new owner fetches them again.
  auto gone = [&](const ReadyTask& t) { return t.consumer == this && is_revoked(t.partition); };
  std::erase_if(source_.ready, gone);
  std::erase_if(delayed_, [&](const auto& entry) { return gone(entry.second); });
  // Leases of these partitions stay in `leases`: their epoch no longer matches, so complete() records
  // them in remembered_, and adopt_running() takes them back should the partition come back.
  std::size_t running = 0;
  for (const auto& [handle, lease] : source_.leases) {
    if (lease.consumer == this && is_revoked(lease.partition)) ++running;
  }
  return running;
}

void ClassConsumer::on_revoke(rd_kafka_topic_partition_list_t* partitions) {
  std::vector<std::int32_t> revoked;
  for (int i = 0; partitions != nullptr && i < partitions->cnt; ++i) revoked.push_back(partitions->elems[i].partition);
  // Hand over what is finished, so the new owner skips it. When the assignment was lost (this member
  // was thrown out of the group) the commit would be refused anyway.
  if (!rd_kafka_assignment_lost(rk_.get())) commit(revoked, /*sync=*/true);
  const std::size_t running = forget_partitions(&revoked);
  if (cooperative_) {
    if (rd_kafka_error_t* error = rd_kafka_incremental_unassign(rk_.get(), partitions)) {
      spdlog::error("{}: incremental unassign: {}", topic_, rd_kafka_error_string(error));
      rd_kafka_error_destroy(error);
    }
  } else {
    rd_kafka_assign(rk_.get(), nullptr);
  }
  if (!revoked.empty()) {
    spdlog::info("{}: partitions {} revoked{}", topic_, fmt::join(revoked, ","),
                 running > 0 ? fmt::format("; {} task(s) running here will run again unless they come back", running) : "");
  }
}

// ---- KafkaTaskSourceImpl -------------------------------------------------------------------------

KafkaTaskSourceImpl::KafkaTaskSourceImpl(std::shared_ptr<KafkaCore> core_, const std::vector<std::string>& classes)
    : core(std::move(core_)) {
  for (const auto& c : classes) consumers_.push_back(std::make_unique<ClassConsumer>(*this, c));
  for (auto& c : consumers_) c->start();
  spdlog::info("taking tasks of {} (groups {}<class>)", fmt::join(classes, ","), core->options.worker_group_prefix);
}

KafkaTaskSourceImpl::~KafkaTaskSourceImpl() {
  {
    std::lock_guard lock(mutex);
    stopping = true;
  }
  ready_changed.notify_all();
  for (auto& c : consumers_) c->close();
}

std::optional<ReadyTask> KafkaTaskSourceImpl::take_first(std::unique_lock<std::mutex>& lock,
                                                         std::chrono::milliseconds wait) {
  auto takeable = [&] {
    return std::find_if(ready.begin(), ready.end(), [&](const ReadyTask& t) { return !claiming.contains(t.task.video_id); });
  };
  ++waiters;
  // Nothing fetched: the partitions may be paused; let the poll threads resume them now (outside the
  // lock: their rebalance callbacks take it while librdkafka serves them).
  if (ready.empty()) {
    lock.unlock();
    for (auto& c : consumers_) c->wake();
    lock.lock();
  }
  ready_changed.wait_for(lock, wait, [&] { return stopping || takeable() != ready.end(); });
  --waiters;
  if (stopping) return std::nullopt;
  auto it = takeable();
  if (it == ready.end()) return std::nullopt;
  ReadyTask task = std::move(*it);
  ready.erase(it);
  return task;
}

TaskLease KafkaTaskSourceImpl::lease(ReadyTask task) {
  const std::uint64_t handle = next_handle++;
  leases.emplace(handle, LeaseRecord{task.consumer, task.partition, task.offset, task.epoch});
  return TaskLease{std::move(task.task), handle, task.enqueued_at};
}

void KafkaTaskSourceImpl::take_siblings(const VideoId& video, std::size_t max, std::vector<TaskLease>& group) {
  for (auto it = ready.begin(); it != ready.end() && group.size() < max + 1;) {
    if (it->task.video_id != video) {
      ++it;
      continue;
    }
    group.push_back(lease(std::move(*it)));
    it = ready.erase(it);
  }
}

std::optional<TaskLease> KafkaTaskSourceImpl::next(std::chrono::milliseconds wait) {
  std::unique_lock lock(mutex);
  auto task = take_first(lock, wait);
  if (!task) return std::nullopt;
  return lease(std::move(*task));
}

std::vector<TaskLease> KafkaTaskSourceImpl::next_group(std::chrono::milliseconds wait, std::size_t max_siblings) {
  std::vector<TaskLease> group;
  std::unique_lock lock(mutex);
  auto first = take_first(lock, wait);
  if (!first) return group;
  const VideoId video = first->task.video_id;
  ClassConsumer* consumer = first->consumer;
  const std::int32_t partition = first->partition;
  // The renditions queued behind this one in its batch follow it in the partition, up to this offset
  // (unless another producer's messages came between: then they come later and run as a group of their own).
  std::optional<std::int64_t> last_expected;
  std::vector<std::string> expected;  // siblings not leased yet
  if (auto self = std::find(first->group.begin(), first->group.end(), first->task.rendition.name); self != first->group.end()) {
    last_expected = first->offset + (first->group.end() - self - 1);
    expected.assign(first->group.begin(), first->group.end());
    std::erase(expected, first->task.rendition.name);
  }
  group.push_back(lease(std::move(*first)));
  if (max_siblings == 0) return group;

  auto collect = [&] {
    const std::size_t before = group.size();
    take_siblings(video, max_siblings, group);
    for (std::size_t i = before; i < group.size(); ++i) std::erase(expected, group[i].task.rendition.name);
  };
  collect();
  if (expected.empty() || group.size() > max_siblings || !last_expected) return group;

  ++claiming[video];
  ++claims;
  lock.unlock();
  consumer->wake();  // resumes the partitions at once
  lock.lock();
  const auto deadline = Clock::now() + sibling_patience;
  for (;;) {
    collect();
    if (expected.empty() || group.size() > max_siblings || stopping) break;
    const auto upto = consumer->fetched_upto(partition);
    if (!upto || *upto >= *last_expected) break;  // gone from here, or read past the batch
    if (ready_changed.wait_until(lock, deadline) == std::cv_status::timeout) {
      collect();
      break;
    }
  }
  if (--claiming[video] == 0) claiming.erase(video);
  --claims;
  ready_changed.notify_all();  // the job's tasks left over are anybody's again
  return group;
}

void KafkaTaskSourceImpl::complete(const TaskLease& lease) {
  ClassConsumer* consumer = nullptr;
  {
    std::lock_guard lock(mutex);
    auto it = leases.find(lease.handle);
    if (it == leases.end()) return;  // completed twice
    const LeaseRecord record = it->second;
    leases.erase(it);
    if (!record.consumer->finish(record)) {
      spdlog::info("[{} {}] completed after its partition was revoked: it runs again unless the partition comes "
                   "back here",
                   lease.task.video_id.str(), lease.task.rendition.name);
      return;
    }
    consumer = record.consumer;
  }
  consumer->wake();  // commits it
}

void KafkaTaskSourceImpl::dead_letter(const TaskLease& lease, const std::string& reason) {
  std::string topic;
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  {
    std::lock_guard lock(mutex);
    if (auto it = leases.find(lease.handle); it != leases.end()) {
      topic = it->second.consumer->topic();
      partition = it->second.partition;
      offset = it->second.offset;
    }
  }
  const TimestampMs now = now_ms();
  nlohmann::json value{
      {"reason", reason},
      {"task", to_json(lease.task)},
      {"class", lease.task.rendition.worker_class},
      {"topic", topic},
      {"partition", partition},
      {"offset", offset},
      {"at", format_iso8601(now)},
      {"at_ms", now},
  };
  core->producer->produce_durable({kafka::Record{core->options.dead_letter_topic,
                                                 lease.task.video_id.str() + "/" + lease.task.rendition.name,
                                                 value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)}});
  complete(lease);
}

std::int32_t KafkaTaskSourceImpl::partition_elsewhere(const std::string& worker_class) {
  auto consumer = std::find_if(consumers_.begin(), consumers_.end(),
                               [&](const auto& c) { return c->worker_class() == worker_class; });
  if (consumer == consumers_.end()) return -1;
  const int count = (*consumer)->topic_partitions();  // outside the mutex: it asks the broker
  std::vector<std::int32_t> others;
  {
    std::lock_guard lock(mutex);
    for (std::int32_t p = 0; p < count; ++p) {
      if (!(*consumer)->holds(p)) others.push_back(p);
    }
  }
  if (others.empty()) return -1;
  // At random, so that the retries of one failing worker spread over the others.
  thread_local std::mt19937 engine{std::random_device{}()};
  return others[std::uniform_int_distribution<std::size_t>(0, others.size() - 1)(engine)];
}

std::size_t KafkaTaskSourceImpl::assigned_partitions() const {
  std::lock_guard lock(mutex);
  std::size_t count = 0;
  for (const auto& c : consumers_) count += c->partition_count();
  return count;
}

}  // namespace framepress::detail

namespace framepress {

KafkaTaskSource::KafkaTaskSource(std::unique_ptr<detail::KafkaTaskSourceImpl> impl) : impl_(std::move(impl)) {}
KafkaTaskSource::~KafkaTaskSource() = default;

std::unique_ptr<KafkaTaskSource> KafkaTaskSource::create(std::shared_ptr<detail::KafkaCore> core,
                                                         const std::vector<std::string>& classes) {
  return std::unique_ptr<KafkaTaskSource>(
      new KafkaTaskSource(std::make_unique<detail::KafkaTaskSourceImpl>(std::move(core), classes)));
}

std::optional<TaskLease> KafkaTaskSource::next(std::chrono::milliseconds wait) { return impl_->next(wait); }
std::vector<TaskLease> KafkaTaskSource::next_group(std::chrono::milliseconds wait, std::size_t max_siblings) {
  return impl_->next_group(wait, max_siblings);
}
void KafkaTaskSource::complete(const TaskLease& lease) { impl_->complete(lease); }
void KafkaTaskSource::dead_letter(const TaskLease& lease, const std::string& reason) { impl_->dead_letter(lease, reason); }
std::size_t KafkaTaskSource::assigned_partitions() const { return impl_->assigned_partitions(); }
std::int32_t KafkaTaskSource::partition_elsewhere(const std::string& worker_class) {
  return impl_->partition_elsewhere(worker_class);
}

}  // namespace framepress
