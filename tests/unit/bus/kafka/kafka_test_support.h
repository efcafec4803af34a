#pragma once
// Helpers of the Kafka bus tests, shared by the test binary and the worker it kills (kafka_test_worker).
// No gtest here.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bus/kafka/kafka_event_bus.h"

namespace framepress::testing {

/// Options whose every topic and group name ends in `suffix`, so tests never see each other's messages.
/// Short session time-outs, so a vanished worker's partitions move within seconds.
KafkaOptions kafka_test_options(const std::string& bootstrap, const std::string& suffix, int partitions);

/// A task of `worker_class` for rendition `rendition` of `video` (a fresh id when empty).
RenditionTask make_task(const std::string& worker_class, const std::string& rendition, VideoId video = {});

/// A message as a plain consumer sees it.
struct RawMessage {
  std::string key;
  std::string value;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
};

/// Reads `topic` from the beginning (every partition, no group) until `count` messages came or `timeout`
/// passed; returns what came.
std::vector<RawMessage> read_topic(const std::string& bootstrap, const std::string& topic, std::size_t count,
                                   std::chrono::milliseconds timeout);

/// Produces one message as is (e.g. one that is not a task) and waits for it to be stored.
void produce_raw(const std::string& bootstrap, const std::string& topic, const std::string& key, const std::string& value);

/// The offset and metadata `group` committed for partition 0 of `topic` (offset -1001 when none).
struct Committed {
  std::int64_t offset = -1;
  std::string metadata;
};
Committed committed_offset(const std::string& bootstrap, const std::string& group, const std::string& topic);

/// The value of the configuration entry `name` of `topic` as the broker describes it (its default when
/// the topic does not set it). Throws std::runtime_error when the broker does not answer.
std::string topic_config(const std::string& bootstrap, const std::string& topic, const std::string& name);

/// Calls `predicate` every 50 ms until it is true or `timeout` passed; returns its last answer.
bool eventually(const std::function<bool()>& predicate, std::chrono::milliseconds timeout);

}  // namespace framepress::testing
