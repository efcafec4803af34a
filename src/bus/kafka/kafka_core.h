#pragma once
// Internal to src/bus/kafka: what the bus, its subscriptions and its task sources share.

#include <memory>
#include <string>
#include <vector>

#include "bus/kafka/kafka_client.h"
#include "bus/kafka/kafka_event_bus.h"

namespace framepress::detail {

/// Owned by the bus and kept alive by every subscription and task source made from it.
struct KafkaCore {
  KafkaOptions options;
  std::unique_ptr<kafka::Producer> producer;  // after options: it refers to them

  std::string tasks_topic(const std::string& worker_class) const { return options.tasks_topic_prefix + worker_class; }
  bool has_class(const std::string& worker_class) const;
};

}  // namespace framepress::detail
