#include "bus/kafka/kafka_event_bus.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "bus/kafka/kafka_core.h"
#include "core/error.h"

namespace framepress {

using detail::KafkaCore;
using kafka::Record;

namespace detail {

bool KafkaCore::has_class(const std::string& worker_class) const {
  return std::find(options.worker_classes.begin(), options.worker_classes.end(), worker_class) !=
         options.worker_classes.end();
}

}  // namespace detail

namespace {

// Kafka's rule for topic names; group ids are checked the same way since they end up in logs and ACLs.
bool is_valid_name(const std::string& name) {
  return !name.empty() && name.size() <= 249 && name != "." && name != ".." &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                  c == '-';
         });
}

void validate(const KafkaOptions& o) {
  auto refuse = [](const std::string& what) { throw Error(ErrorCode::internal, "Kafka options: " + what, "kafka_config"); };
  if (o.bootstrap_servers.empty()) refuse("no bootstrap servers (host:port[,host:port…])");
  if (o.partitions < 1 || o.side_partitions < 1) refuse("partitions must be at least 1");
  if (o.replication_factor < 1) refuse("the replication factor must be at least 1");
  if (o.worker_classes.empty()) refuse("no worker classes");
  for (const auto* topic : {&o.events_topic, &o.upload_topic, &o.compress_topic, &o.dead_letter_topic}) {
    if (!is_valid_name(*topic)) refuse(fmt::format("'{}' is not a valid topic name", *topic));
  }
  for (const auto& c : o.worker_classes) {
    if (!is_valid_name(o.tasks_topic_prefix + c) || c.empty()) refuse(fmt::format("'{}' is not a valid worker class", c));
    if (!is_valid_name(o.worker_group_prefix + c)) refuse(fmt::format("'{}{}' is not a valid group id", o.worker_group_prefix, c));
  }
  if (o.session_timeout > o.max_poll_interval) refuse("session_timeout must not exceed max_poll_interval");
}

std::string random_suffix() {
  std::random_device device;
  return fmt::format("{}-{:08x}{:08x}", ::getpid(), device(), device());
}

// The prototype's video.upload message (bucket, file_name, uploaded_at) plus ours.
Record upload_record(const KafkaOptions& o, const Event& event, const JobCreated& created) {
  nlohmann::json renditions = nlohmann::json::array();
  for (const auto& r : created.renditions) renditions.push_back(r.name);
  nlohmann::json value{
      {"bucket", o.bucket},
      {"file_name", created.source_key.str()},
      {"uploaded_at", format_iso8601(event.at)},
      {"video_id", event.video_id.str()},
      {"filename", created.filename},
      {"source_key", created.source_key.str()},
      {"size", created.source.size},
      {"duration", created.source.duration},
      {"width", created.source.display_width()},
      {"height", created.source.display_height()},
      {"renditions", std::move(renditions)},
      {"at_ms", event.at},
  };
  return Record{o.upload_topic, created.source_key.str(), value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
}

// The prototype's video.compress message (bucket, file_name, resolution, uploaded_at), keyed by the
// source object as the prototype did, plus ours.
Record compress_record(const KafkaOptions& o, const Event& event, const RenditionDone& done) {
  const std::string source_key = ObjectKey::source_of(event.video_id).str();
  nlohmann::json value{
      {"bucket", o.bucket},
      {"file_name", done.key.str()},
      {"resolution", done.rendition},
      {"uploaded_at", format_iso8601(event.at)},
      {"video_id", event.video_id.str()},
      {"key", done.key.str()},
      {"size", done.size},
      {"bit_rate", done.bit_rate},
      {"duration", done.duration},
      {"width", done.width},
      {"height", done.height},
      {"source_key", source_key},
      {"at_ms", event.at},
  };
  return Record{o.compress_topic, source_key, value.dump()};
}

// ---- the event log reader ----------------------------------------------------------------------

class KafkaSubscription final : public Subscription {
 public:
  KafkaSubscription(std::shared_ptr<KafkaCore> core, EventBus::EventHandler handler, std::function<void()> caught_up)
      : state_(std::make_shared<State>()) {
    const KafkaOptions& o = core->options;
    state_->core = std::move(core);
    state_->handler = std::move(handler);
    state_->caught_up = std::move(caught_up);

    // A group id is required by librdkafka's consumer API, but assign() never joins the group and
    // nothing is committed, so every reader reads everything, independently of every other.
    kafka::Conf conf = kafka::make_conf(o, "events-reader", {},
                                        {
                                            {"group.id", fmt::format("{}-events-reader-{}", o.client_id, random_suffix())},
                                            {"enable.auto.commit", "false"},
                                            {"enable.auto.offset.store", "false"},
                                            {"enable.partition.eof", "true"},
                                            {"auto.offset.reset", "earliest"},
                                        });
    state_->rk = kafka::make_client(RD_KAFKA_CONSUMER, std::move(conf));
    rd_kafka_t* rk = state_->rk.get();
    rd_kafka_poll_set_consumer(rk);

    const auto counts = kafka::partition_counts(rk, o, o.startup_timeout);
    auto it = counts.find(o.events_topic);
    if (it == counts.end()) kafka::throw_unavailable(o, fmt::format("has no topic {}", o.events_topic));
    const int partitions = it->second;

    // Where each partition ends now: caught_up fires once every one has been read that far.
    state_->ends.assign(static_cast<std::size_t>(partitions), -1);
    const auto deadline = std::chrono::steady_clock::now() + o.startup_timeout;
    for (int p = 0; p < partitions; ++p) {
      std::int64_t low = 0;
      std::int64_t high = 0;
      for (;;) {
        const auto err =
            rd_kafka_query_watermark_offsets(rk, o.events_topic.c_str(), p, &low, &high, kafka::to_ms(o.startup_timeout));
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
        // Right after the topic was created, or during a leader election, the leader is not known yet.
        if (std::chrono::steady_clock::now() >= deadline) {
          kafka::throw_unavailable(o, fmt::format("did not tell where {} [{}] ends: {}", o.events_topic, p, rd_kafka_err2str(err)));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      if (high > low) {
        state_->ends[static_cast<std::size_t>(p)] = high;
        ++state_->behind;
      }
    }

    kafka::PartitionList list(rd_kafka_topic_partition_list_new(partitions));
    for (int p = 0; p < partitions; ++p) {
      rd_kafka_topic_partition_list_add(list.get(), o.events_topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    if (const auto err = rd_kafka_assign(rk, list.get()); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw Error(ErrorCode::internal, fmt::format("cannot read {}: {}", o.events_topic, rd_kafka_err2str(err)), "kafka");
    }
    spdlog::info("reading {} ({} partitions) from the beginning", o.events_topic, partitions);
    thread_ = std::thread([state = state_] { run(*state); });
  }

  ~KafkaSubscription() override {
    state_->stop.store(true);
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();  // destroyed from its own handler: the thread ends after the handler returns
    } else {
      thread_.join();
    }
  }

 private:
  struct State {
    std::shared_ptr<KafkaCore> core;
    EventBus::EventHandler handler;
    std::function<void()> caught_up;
    kafka::Handle rk;
    std::atomic<bool> stop{false};
    std::vector<std::int64_t> ends;  // per partition: the end when subscribing, -1 once reached
    std::size_t behind = 0;          // partitions not read up to their end yet
    bool caught_up_called = false;
  };

  static void reached(State& state, std::int32_t partition, std::int64_t next_offset) {
    if (partition < 0 || static_cast<std::size_t>(partition) >= state.ends.size()) return;
    auto& end = state.ends[static_cast<std::size_t>(partition)];
    if (end >= 0 && next_offset >= end) {
      end = -1;
      --state.behind;
    }
  }

  static void maybe_caught_up(State& state) {
    if (state.caught_up_called || state.behind > 0) return;
    state.caught_up_called = true;
    if (!state.caught_up) return;
    try {
      state.caught_up();
    } catch (const std::exception& e) {
      spdlog::error("event log reader: caught_up failed: {}", e.what());
    }
  }

  static void deliver(State& state, const rd_kafka_message_t& message) {
    const std::string_view value(static_cast<const char*>(message.payload), message.len);
    Event event;
    try {
      event = event_from_json(nlohmann::json::parse(value));
    } catch (const std::exception& e) {
      spdlog::warn("event log reader: {} [{}] at {} is not an event, skipped: {}", rd_kafka_topic_name(message.rkt),
                   message.partition, message.offset, e.what());
      return;
    }
    try {
      state.handler(static_cast<LogPosition>(message.offset), event);
    } catch (const std::exception& e) {
      spdlog::error("event log reader: the handler failed on {} at {}: {}", event_type(event), message.offset, e.what());
    }
  }

  static void run(State& state) {
    rd_kafka_t* rk = state.rk.get();
    maybe_caught_up(state);  // an empty log
    while (!state.stop.load()) {
      kafka::Message message(rd_kafka_consumer_poll(rk, 100));
      if (!message) continue;
      if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        // Covers ends that no message sits right before (offsets a compaction or a transaction marker took).
        reached(state, message->partition, message->offset);
      } else if (message->err) {
        spdlog::warn("event log reader: {}", rd_kafka_message_errstr(message.get()));
        continue;
      } else {
        deliver(state, *message);
        reached(state, message->partition, message->offset + 1);
      }
      maybe_caught_up(state);
    }
    rd_kafka_consumer_close(rk);
  }

  std::shared_ptr<State> state_;
  std::thread thread_;
};

}  // namespace

// ---- KafkaEventBus ---------------------------------------------------------------------------

KafkaEventBus::KafkaEventBus(KafkaOptions options) : core_(std::make_shared<KafkaCore>()) {
  core_->options = std::move(options);
  const KafkaOptions& o = core_->options;
  validate(o);
  core_->producer = std::make_unique<kafka::Producer>(o);

  // The events topic is the jobs' state, replayed by every process from its start: it must never expire
  // (the broker's default retention is 7 days). Keyed by job, and a deleted job's events stay until an
  // operator compacts or trims them (docs/OPERATIONS.md).
  std::vector<kafka::TopicSpec> topics{{o.events_topic, o.partitions, {{"retention.ms", "-1"}, {"retention.bytes", "-1"}}},
                                       {o.upload_topic, o.side_partitions},
                                       {o.compress_topic, o.side_partitions},
                                       {o.dead_letter_topic, o.side_partitions}};
  for (const auto& c : o.worker_classes) topics.push_back({core_->tasks_topic(c), o.partitions});
  kafka::ensure_topics(core_->producer->get(), o, topics, o.startup_timeout);
  spdlog::info("Kafka event bus at {}: events in {}, tasks in {}{{{}}}", o.bootstrap_servers, o.events_topic,
               o.tasks_topic_prefix, fmt::join(o.worker_classes, ","));
}

KafkaEventBus::~KafkaEventBus() = default;

const KafkaOptions& KafkaEventBus::options() const { return core_->options; }

void KafkaEventBus::publish(const Event& event) {
  const KafkaOptions& o = core_->options;
  Record record{o.events_topic, event.video_id.str(), to_json(event).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
  if (std::holds_alternative<RenditionProgress>(event.payload)) {
    // Twice a second per task, and superseded by the next one: not worth a round trip each. The
    // idempotent producer still keeps it in order with the job's other events.
    core_->producer->produce_async(record);
    return;
  }
  std::vector<Record> records{std::move(record)};
  if (const auto* created = std::get_if<JobCreated>(&event.payload)) {
    records.push_back(upload_record(o, event, *created));
  } else if (const auto* done = std::get_if<RenditionDone>(&event.payload)) {
    records.push_back(compress_record(o, event, *done));
  }
  core_->producer->produce_durable(records);
}

std::unique_ptr<Subscription> KafkaEventBus::subscribe(EventHandler handler, std::function<void()> caught_up) {
  return std::make_unique<KafkaSubscription>(core_, std::move(handler), std::move(caught_up));
}

void KafkaEventBus::enqueue(const RenditionTask& task, std::chrono::milliseconds not_before) {
  enqueue_all({task}, not_before);
}

void KafkaEventBus::enqueue_all(const std::vector<RenditionTask>& tasks, std::chrono::milliseconds not_before) {
  enqueue_to(tasks, not_before, RD_KAFKA_PARTITION_UA);
}

void KafkaEventBus::enqueue_elsewhere(const RenditionTask& task, std::chrono::milliseconds not_before,
                                      TaskSource& failed_on) {
  std::int32_t partition = RD_KAFKA_PARTITION_UA;
  if (auto* source = dynamic_cast<KafkaTaskSource*>(&failed_on)) {
    partition = source->partition_elsewhere(task.rendition.worker_class);
  }
  enqueue_to({task}, not_before, partition);
}

void KafkaEventBus::enqueue_to(const std::vector<RenditionTask>& tasks, std::chrono::milliseconds not_before,
                               std::int32_t partition) {
  const KafkaOptions& o = core_->options;
  for (const auto& task : tasks) {
    const std::string& worker_class = task.rendition.worker_class;
    if (!core_->has_class(worker_class)) {
      throw Error(ErrorCode::internal,
                  fmt::format("no Kafka topic for worker class '{}' (classes: {})", worker_class, fmt::join(o.worker_classes, ",")),
                  "unknown_worker_class");
    }
  }
  const TimestampMs now = now_ms();
  std::vector<Record> records;
  records.reserve(tasks.size());
  for (const auto& task : tasks) {
    nlohmann::json value = to_json(task);
    // An absolute time, so the delay holds whichever worker takes the task, and after a redelivery.
    value["not_before_ms"] = not_before.count() > 0 ? now + not_before.count() : 0;
    value["enqueued_at_ms"] = now;
    // The job's renditions of this class queued with it, in order: the worker that takes one waits for
    // the others (they follow in the same partition) to encode them all from one decode.
    nlohmann::json group = nlohmann::json::array();
    for (const auto& other : tasks) {
      if (other.video_id == task.video_id && other.rendition.worker_class == task.rendition.worker_class) {
        group.push_back(other.rendition.name);
      }
    }
    value["group"] = std::move(group);
    // Keyed by the video: a job's tasks of one class land in one partition, so one worker gets them all.
    records.push_back(Record{core_->tasks_topic(task.rendition.worker_class), task.video_id.str(),
                             value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), partition});
  }
  // One batch, one wait for the acknowledgements.
  core_->producer->produce_durable(records);
}

std::unique_ptr<TaskSource> KafkaEventBus::tasks(const std::vector<std::string>& classes) { return kafka_tasks(classes); }

std::unique_ptr<KafkaTaskSource> KafkaEventBus::kafka_tasks(const std::vector<std::string>& classes) {
  std::vector<std::string> chosen = classes.empty() ? core_->options.worker_classes : classes;
  std::sort(chosen.begin(), chosen.end());
  chosen.erase(std::unique(chosen.begin(), chosen.end()), chosen.end());
  for (const auto& c : chosen) {
    if (!core_->has_class(c)) {
      throw Error(ErrorCode::internal,
                  fmt::format("unknown worker class '{}' (classes: {})", c, fmt::join(core_->options.worker_classes, ",")),
                  "unknown_worker_class");
    }
  }
  return KafkaTaskSource::create(core_, chosen);
}

void KafkaEventBus::forget(const VideoId&) {}

}  // namespace framepress
