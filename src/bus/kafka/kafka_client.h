#pragma once
// Internal to src/bus/kafka (it includes rdkafka.h; no other component includes this): owning handles
// over librdkafka's C API, client configuration, the shared idempotent producer and topic creation.
// The C API rather than rdkafka++ because only it has the Admin API (CreateTopics).

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bus/kafka/kafka_event_bus.h"

namespace framepress::kafka {

struct HandleDelete {
  void operator()(rd_kafka_t* rk) const noexcept { rd_kafka_destroy(rk); }
};
struct ConfDelete {
  void operator()(rd_kafka_conf_t* conf) const noexcept { rd_kafka_conf_destroy(conf); }
};
struct PartitionListDelete {
  void operator()(rd_kafka_topic_partition_list_t* list) const noexcept { rd_kafka_topic_partition_list_destroy(list); }
};
struct MessageDelete {
  void operator()(rd_kafka_message_t* message) const noexcept { rd_kafka_message_destroy(message); }
};
struct QueueDelete {
  void operator()(rd_kafka_queue_t* queue) const noexcept { rd_kafka_queue_destroy(queue); }
};
struct MetadataDelete {
  void operator()(const rd_kafka_metadata_t* metadata) const noexcept { rd_kafka_metadata_destroy(metadata); }
};

using Handle = std::unique_ptr<rd_kafka_t, HandleDelete>;
using Conf = std::unique_ptr<rd_kafka_conf_t, ConfDelete>;
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDelete>;
using Message = std::unique_ptr<rd_kafka_message_t, MessageDelete>;
using Queue = std::unique_ptr<rd_kafka_queue_t, QueueDelete>;
using Metadata = std::unique_ptr<const rd_kafka_metadata_t, MetadataDelete>;

inline int to_ms(std::chrono::milliseconds d) { return static_cast<int>(d.count()); }

/// A client configuration: `tunables` first, the options' client_properties over them, and `required`
/// last (what the bus's guarantees rest on; a client property that tries to change one is logged and
/// ignored). Throws Error(internal) naming a property librdkafka refuses.
Conf make_conf(const KafkaOptions& options, std::string_view role,
               const std::map<std::string, std::string>& tunables,
               const std::map<std::string, std::string>& required);

/// rd_kafka_new over `conf` (consumed). Throws Error(internal) with librdkafka's reason.
Handle make_client(rd_kafka_type_t type, Conf conf);

/// "Kafka at <bootstrap> …" errors: unavailable and retryable.
[[noreturn]] void throw_unavailable(const KafkaOptions& options, const std::string& what);

/// The partition count of every topic of the cluster (with `with_leaders`, only of the topics every
/// partition of which has a leader). Throws Error(unavailable) when the cluster does not answer within
/// `timeout`.
std::map<std::string, int> partition_counts(rd_kafka_t* rk, const KafkaOptions& options,
                                            std::chrono::milliseconds timeout, bool with_leaders = false);

struct TopicSpec {
  std::string name;
  int partitions = 1;
  /// Topic configuration set when the bus creates the topic ("retention.ms" = "-1"); an existing topic's
  /// is left as its operator set it.
  std::map<std::string, std::string> config;
};

/// Creates the topics of `topics` that are missing and waits until the cluster's metadata shows every
/// one of them. A topic another process creates meanwhile is fine. Throws Error(unavailable) on time-out,
/// Error(internal) when the cluster refuses the topic (a replication factor above the broker count …).
void ensure_topics(rd_kafka_t* rk, const KafkaOptions& options, const std::vector<TopicSpec>& topics,
                   std::chrono::milliseconds timeout);

/// One message to produce.
struct Record {
  std::string topic;
  std::string key;
  std::string value;
  std::int32_t partition = -1;  // RD_KAFKA_PARTITION_UA: chosen from the key
};

/// The bus's one producer: idempotent (enable.idempotence, acks=all), so retries after a broker
/// failover neither duplicate nor reorder a key's messages. A thread serves its delivery reports.
class Producer {
 public:
  explicit Producer(const KafkaOptions& options);
  /// Waits (bounded) for what is still in flight, then stops.
  ~Producer();
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  /// Produces every record and returns once the broker acknowledged all of them. Throws
  /// Error(unavailable, retryable) naming the topic when one was not delivered in time.
  void produce_durable(const std::vector<Record>& records);

  /// Produces without waiting; a failed delivery is only logged.
  void produce_async(const Record& record);

  rd_kafka_t* get() const { return rk_.get(); }

 private:
  void produce(const Record& record, void* opaque);

  const KafkaOptions& options_;
  Handle rk_;
  std::atomic<bool> stop_{false};
  std::thread poller_;
};

}  // namespace framepress::kafka
