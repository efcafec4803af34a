#include "bus/kafka/kafka_client.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "core/error.h"

namespace framepress::kafka {
namespace {

using Clock = std::chrono::steady_clock;

// librdkafka logs with syslog levels from its own threads; spdlog is thread-safe.
void log_to_spdlog(const rd_kafka_t* rk, int level, const char* facility, const char* message) {
  const char* name = rk ? rd_kafka_name(rk) : "kafka";
  if (level <= 2) {
    spdlog::error("[{}] {}: {}", name, facility, message);
  } else if (level <= 4) {
    spdlog::warn("[{}] {}: {}", name, facility, message);
  } else if (level <= 6) {
    spdlog::info("[{}] {}: {}", name, facility, message);
  } else {
    spdlog::debug("[{}] {}: {}", name, facility, message);
  }
}

// Errors librdkafka recovers from on its own (a broker going away and coming back) come here too, so
// they are warnings; only a fatal error (the idempotent producer's state is lost) is an error.
void report_error(rd_kafka_t* rk, int err, const char* reason, void* /*opaque*/) {
  const auto code = static_cast<rd_kafka_resp_err_t>(err);
  if (code == RD_KAFKA_RESP_ERR__FATAL) {
    char fatal[512];
    rd_kafka_fatal_error(rk, fatal, sizeof fatal);
    spdlog::error("[{}] fatal Kafka error: {}", rd_kafka_name(rk), fatal);
    return;
  }
  spdlog::warn("[{}] {}: {}", rd_kafka_name(rk), rd_kafka_err2name(code), reason);
}

// One durable produce call: counts the delivery reports still to come.
struct Delivery {
  std::mutex mutex;
  std::condition_variable done;
  std::size_t remaining = 0;
  rd_kafka_resp_err_t error = RD_KAFKA_RESP_ERR_NO_ERROR;
  std::string failed_topic;
};

// The message's opaque is a heap-held shared_ptr, so a publish() that gave up waiting never leaves
// librdkafka holding a dangling pointer.
void on_delivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* message, void* /*opaque*/) {
  auto* holder = static_cast<std::shared_ptr<Delivery>*>(message->_private);
  if (holder == nullptr) {
    if (message->err) {
      spdlog::warn("Kafka: a message to {} was not delivered: {}", rd_kafka_topic_name(message->rkt),
                   rd_kafka_err2str(message->err));
    }
    return;
  }
  std::shared_ptr<Delivery> delivery = std::move(*holder);
  delete holder;
  {
    std::lock_guard lock(delivery->mutex);
    if (message->err && delivery->error == RD_KAFKA_RESP_ERR_NO_ERROR) {
      delivery->error = message->err;
      delivery->failed_topic = rd_kafka_topic_name(message->rkt);
    }
    --delivery->remaining;
  }
  delivery->done.notify_all();
}

// Produce errors that no retry will cure: the message or the permissions are wrong, or the idempotent
// producer is dead.
bool is_permanent(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
      return true;
    default:
      return false;
  }
}

std::string seconds(std::chrono::milliseconds d) { return fmt::format("{:g} s", static_cast<double>(d.count()) / 1000.0); }

}  // namespace

Conf make_conf(const KafkaOptions& options, std::string_view role, const std::map<std::string, std::string>& tunables,
               const std::map<std::string, std::string>& required) {
  Conf conf(rd_kafka_conf_new());
  auto set = [&](const std::string& key, const std::string& value, bool show_value) {
    char reason[512];
    if (rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), reason, sizeof reason) != RD_KAFKA_CONF_OK) {
      // Client properties may hold secrets: their values stay out of the message.
      throw Error(ErrorCode::internal,
                  show_value ? fmt::format("Kafka client property {}={} is refused: {}", key, value, reason)
                             : fmt::format("Kafka client property {} is refused: {}", key, reason),
                  "kafka_config");
    }
  };
  set("bootstrap.servers", options.bootstrap_servers, true);
  set("client.id", fmt::format("{}-{}", options.client_id, role), true);
  // Idle connections are closed by brokers all the time: not worth a log line each.
  set("log.connection.close", "false", true);
  for (const auto& [key, value] : tunables) set(key, value, true);
  for (const auto& [key, value] : options.client_properties) {
    if (required.contains(key) || key == "bootstrap.servers") {
      spdlog::warn("Kafka client property {} is ignored: the {} client of the bus sets it itself", key, role);
      continue;
    }
    set(key, value, false);
  }
  for (const auto& [key, value] : required) set(key, value, true);
  rd_kafka_conf_set_log_cb(conf.get(), log_to_spdlog);
  rd_kafka_conf_set_error_cb(conf.get(), report_error);
  return conf;
}

Handle make_client(rd_kafka_type_t type, Conf conf) {
  char reason[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), reason, sizeof reason);
  if (rk == nullptr) throw Error(ErrorCode::internal, fmt::format("cannot create a Kafka client: {}", reason), "kafka_config");
  conf.release();  // rd_kafka_new owns it now
  return Handle(rk);
}

void throw_unavailable(const KafkaOptions& options, const std::string& what) {
  throw Error(ErrorCode::unavailable, fmt::format("Kafka at {} {}", options.bootstrap_servers, what), "kafka_unavailable",
              /*retryable=*/true);
}

std::map<std::string, int> partition_counts(rd_kafka_t* rk, const KafkaOptions& options,
                                            std::chrono::milliseconds timeout, bool with_leaders) {
  const rd_kafka_metadata_t* raw = nullptr;
  const rd_kafka_resp_err_t err = rd_kafka_metadata(rk, /*all_topics=*/1, nullptr, &raw, to_ms(timeout));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw_unavailable(options, fmt::format("did not answer within {} ({}): check the bootstrap servers, the "
                                           "network and the security settings",
                                           seconds(timeout), rd_kafka_err2str(err)));
  }
  Metadata metadata(raw);
  std::map<std::string, int> counts;
  for (int i = 0; i < metadata->topic_cnt; ++i) {
    const rd_kafka_metadata_topic_t& topic = metadata->topics[i];
    // A topic being created shows up with an error and no partitions for a moment: not there yet.
    if (topic.err != RD_KAFKA_RESP_ERR_NO_ERROR || topic.partition_cnt <= 0) continue;
    const bool led = std::all_of(topic.partitions, topic.partitions + topic.partition_cnt,
                                 [](const rd_kafka_metadata_partition_t& p) { return p.leader >= 0; });
    if (led || !with_leaders) counts[topic.topic] = topic.partition_cnt;
  }
  return counts;
}

void ensure_topics(rd_kafka_t* rk, const KafkaOptions& options, const std::vector<TopicSpec>& topics,
                   std::chrono::milliseconds timeout) {
  const auto existing = partition_counts(rk, options, timeout);
  std::vector<const TopicSpec*> missing;
  for (const auto& topic : topics) {
    auto it = existing.find(topic.name);
    if (it == existing.end()) {
      missing.push_back(&topic);
    } else if (it->second < topic.partitions) {
      spdlog::info("Kafka topic {} has {} partitions ({} configured): kept as it is", topic.name, it->second,
                   topic.partitions);
    }
  }
  if (missing.empty()) return;

  std::vector<rd_kafka_NewTopic_t*> requests;
  auto free_requests = [&] { rd_kafka_NewTopic_destroy_array(requests.data(), requests.size()); };
  for (const TopicSpec* topic : missing) {
    char reason[512];
    rd_kafka_NewTopic_t* request =
        rd_kafka_NewTopic_new(topic->name.c_str(), topic->partitions, options.replication_factor, reason, sizeof reason);
    if (request == nullptr) {
      free_requests();
      throw Error(ErrorCode::internal, fmt::format("cannot create Kafka topic {}: {}", topic->name, reason), "kafka_config");
    }
    requests.push_back(request);
    for (const auto& [name, value] : topic->config) {
      if (rd_kafka_NewTopic_set_config(request, name.c_str(), value.c_str()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        free_requests();
        throw Error(ErrorCode::internal, fmt::format("cannot set {} of Kafka topic {}", name, topic->name), "kafka_config");
      }
    }
  }
  rd_kafka_AdminOptions_t* admin = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  char reason[512];
  rd_kafka_AdminOptions_set_request_timeout(admin, to_ms(timeout), reason, sizeof reason);
  // Wait until the controller has created them, not just accepted the request.
  rd_kafka_AdminOptions_set_operation_timeout(admin, to_ms(timeout), reason, sizeof reason);
  Queue queue(rd_kafka_queue_new(rk));
  rd_kafka_CreateTopics(rk, requests.data(), requests.size(), admin, queue.get());
  rd_kafka_AdminOptions_destroy(admin);
  free_requests();

  std::unique_ptr<rd_kafka_event_t, decltype(&rd_kafka_event_destroy)> event(
      rd_kafka_queue_poll(queue.get(), to_ms(timeout + std::chrono::seconds(5))), &rd_kafka_event_destroy);
  if (!event) throw_unavailable(options, fmt::format("did not create the topics within {}", seconds(timeout)));
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw_unavailable(options, fmt::format("did not create the topics: {}", rd_kafka_event_error_string(event.get())));
  }
  std::size_t count = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event.get()), &count);
  for (std::size_t i = 0; i < count; ++i) {
    const char* name = rd_kafka_topic_result_name(results[i]);
    const rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::info("created Kafka topic {}", name);
      continue;
    }
    if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) continue;  // another process was quicker
    const char* message = rd_kafka_topic_result_error_string(results[i]);
    const std::string what = fmt::format("refused to create topic {}: {}", name, message ? message : rd_kafka_err2str(err));
    if (err == RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT || err == RD_KAFKA_RESP_ERR__TIMED_OUT ||
        err == RD_KAFKA_RESP_ERR_NOT_CONTROLLER) {
      throw_unavailable(options, what);
    }
    // A replication factor above the broker count, a policy, missing permissions: the configuration.
    throw Error(ErrorCode::internal, fmt::format("Kafka at {} {}", options.bootstrap_servers, what), "kafka_config");
  }

  // Brokers learn of new topics from the controller a moment later; producers and readers need them now.
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto counts = partition_counts(rk, options, timeout, /*with_leaders=*/true);
    std::vector<std::string> absent;
    for (const TopicSpec* topic : missing) {
      if (!counts.contains(topic->name)) absent.push_back(topic->name);
    }
    if (absent.empty()) return;
    if (Clock::now() >= deadline) {
      throw_unavailable(options, fmt::format("created but does not show topics {} after {}", fmt::join(absent, ", "),
                                             seconds(timeout)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// ---- Producer ----------------------------------------------------------------------------------

Producer::Producer(const KafkaOptions& options) : options_(options) {
  Conf conf = make_conf(options, "producer",
                        {
                            // A few ms of batching costs nothing next to an encode and helps bursts.
                            {"linger.ms", "5"},
                        },
                        {
                            // No duplicates and no reordering of a key's messages when retrying.
                            {"enable.idempotence", "true"},
                            {"acks", "all"},
                            {"message.timeout.ms", std::to_string(options.delivery_timeout.count())},
                        });
  rd_kafka_conf_set_dr_msg_cb(conf.get(), on_delivery);
  rk_ = make_client(RD_KAFKA_PRODUCER, std::move(conf));
  poller_ = std::thread([this] {
    while (!stop_.load()) rd_kafka_poll(rk_.get(), 100);
  });
}

Producer::~Producer() {
  const rd_kafka_resp_err_t err = rd_kafka_flush(rk_.get(), 10000);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    spdlog::warn("Kafka producer: {} message(s) not delivered at shutdown", rd_kafka_outq_len(rk_.get()));
    // Their delivery reports (with an error) free what they hold and wake any waiter.
    rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(rk_.get(), 0);
  }
  stop_.store(true);
  poller_.join();
}

void Producer::produce(const Record& record, void* opaque) {
  const auto deadline = Clock::now() + options_.delivery_timeout;
  for (;;) {
    const rd_kafka_resp_err_t err = rd_kafka_producev(
        rk_.get(), RD_KAFKA_V_TOPIC(record.topic.c_str()), RD_KAFKA_V_PARTITION(record.partition),
        RD_KAFKA_V_KEY(record.key.data(), record.key.size()),
        RD_KAFKA_V_VALUE(const_cast<char*>(record.value.data()), record.value.size()),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
    // The local queue is full while the broker is away: wait for room rather than fail at once.
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    const std::string what = fmt::format("did not take a message for {}: {}", record.topic, rd_kafka_err2str(err));
    if (is_permanent(err)) {
      throw Error(ErrorCode::internal, fmt::format("Kafka at {} {}", options_.bootstrap_servers, what), "kafka_produce");
    }
    throw_unavailable(options_, what);
  }
}

void Producer::produce_durable(const std::vector<Record>& records) {
  char fatal[512];
  if (rd_kafka_fatal_error(rk_.get(), fatal, sizeof fatal) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw Error(ErrorCode::unavailable,
                fmt::format("the Kafka producer failed for good ({}): restart the process", fatal), "kafka_fatal");
  }
  auto delivery = std::make_shared<Delivery>();
  delivery->remaining = records.size();
  for (std::size_t i = 0; i < records.size(); ++i) {
    auto* holder = new std::shared_ptr<Delivery>(delivery);
    try {
      produce(records[i], holder);
    } catch (...) {
      delete holder;
      throw;  // the ones produced before still report to `delivery`, which they keep alive
    }
  }
  std::unique_lock lock(delivery->mutex);
  // message.timeout.ms bounds every delivery report; the margin covers a report being served late.
  const bool done = delivery->done.wait_for(lock, options_.delivery_timeout + std::chrono::seconds(10),
                                            [&] { return delivery->remaining == 0; });
  if (!done) throw_unavailable(options_, fmt::format("did not acknowledge within {}", seconds(options_.delivery_timeout)));
  if (delivery->error != RD_KAFKA_RESP_ERR_NO_ERROR) {
    const std::string what =
        fmt::format("did not store a message of {}: {}", delivery->failed_topic, rd_kafka_err2str(delivery->error));
    if (is_permanent(delivery->error)) {
      throw Error(ErrorCode::internal, fmt::format("Kafka at {} {}", options_.bootstrap_servers, what), "kafka_produce");
    }
    throw_unavailable(options_, what);
  }
}

void Producer::produce_async(const Record& record) { produce(record, nullptr); }

}  // namespace framepress::kafka
