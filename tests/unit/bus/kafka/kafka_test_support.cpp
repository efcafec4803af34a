#include "kafka_test_support.h"

#include <librdkafka/rdkafka.h>

#include <memory>
#include <stdexcept>
#include <thread>

namespace framepress::testing {
namespace {

using Clock = std::chrono::steady_clock;

struct Destroy {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
  void operator()(rd_kafka_topic_partition_list_t* list) const { rd_kafka_topic_partition_list_destroy(list); }
  void operator()(rd_kafka_message_t* message) const { rd_kafka_message_destroy(message); }
  void operator()(const rd_kafka_metadata_t* metadata) const { rd_kafka_metadata_destroy(metadata); }
};

std::unique_ptr<rd_kafka_t, Destroy> client(rd_kafka_type_t type, const std::string& bootstrap,
                                            const std::vector<std::pair<std::string, std::string>>& properties) {
  char reason[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const std::string& key, const std::string& value) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), reason, sizeof reason) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error(reason);
    }
  };
  set("bootstrap.servers", bootstrap);
  for (const auto& [key, value] : properties) set(key, value);
  rd_kafka_t* rk = rd_kafka_new(type, conf, reason, sizeof reason);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(reason);
  }
  return std::unique_ptr<rd_kafka_t, Destroy>(rk);
}

}  // namespace

KafkaOptions kafka_test_options(const std::string& bootstrap, const std::string& suffix, int partitions) {
  KafkaOptions o;
  o.bootstrap_servers = bootstrap;
  o.client_id = "framepress-test";
  o.events_topic = "video.events." + suffix;
  o.tasks_topic_prefix = "video.tasks." + suffix + ".";
  o.upload_topic = "video.upload." + suffix;
  o.compress_topic = "video.compress." + suffix;
  o.dead_letter_topic = "video.dead." + suffix;
  o.worker_group_prefix = "framepress-workers-" + suffix + "-";
  o.partitions = partitions;
  o.bucket = "test-bucket";
  o.session_timeout = std::chrono::milliseconds(6000);
  o.max_poll_interval = std::chrono::milliseconds(60000);
  // Two cores shared with other builds and tests: generous, and only ever reached when something is wrong.
  o.startup_timeout = std::chrono::milliseconds(30000);
  o.delivery_timeout = std::chrono::milliseconds(30000);
  return o;
}

RenditionTask make_task(const std::string& worker_class, const std::string& rendition, VideoId video) {
  RenditionTask task;
  task.video_id = video.empty() ? VideoId::generate() : video;
  task.source_key = ObjectKey::source_of(task.video_id);
  task.source.container = "mov,mp4,m4a,3gp,3g2,mj2";
  task.source.size = 1'000'000;
  task.source.duration = 10;
  task.source.bit_rate = 800'000;
  task.source.video_codec = "h264";
  task.source.width = 1920;
  task.source.height = 1080;
  task.source.frame_rate = 30;
  task.rendition = RenditionSpec{rendition, 720, 1280, 720, worker_class};
  task.output_key = ObjectKey::rendition_of(task.video_id, rendition);
  return task;
}

std::vector<RawMessage> read_topic(const std::string& bootstrap, const std::string& topic, std::size_t count,
                                   std::chrono::milliseconds timeout) {
  auto rk = client(RD_KAFKA_CONSUMER, bootstrap,
                   {{"group.id", "framepress-test-reader"}, {"enable.auto.commit", "false"}, {"enable.partition.eof", "false"}});
  rd_kafka_poll_set_consumer(rk.get());
  const rd_kafka_metadata_t* raw = nullptr;
  if (rd_kafka_metadata(rk.get(), 1, nullptr, &raw, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) throw std::runtime_error("no metadata");
  std::unique_ptr<const rd_kafka_metadata_t, Destroy> metadata(raw);
  int partitions = 0;
  for (int i = 0; i < metadata->topic_cnt; ++i) {
    if (topic == metadata->topics[i].topic) partitions = metadata->topics[i].partition_cnt;
  }
  if (partitions == 0) throw std::runtime_error("no topic " + topic);
  std::unique_ptr<rd_kafka_topic_partition_list_t, Destroy> list(rd_kafka_topic_partition_list_new(partitions));
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_assign(rk.get(), list.get());
  std::vector<RawMessage> messages;
  const auto deadline = Clock::now() + timeout;
  while (messages.size() < count && Clock::now() < deadline) {
    std::unique_ptr<rd_kafka_message_t, Destroy> message(rd_kafka_consumer_poll(rk.get(), 100));
    if (!message || message->err) continue;
    messages.push_back(RawMessage{
        message->key ? std::string(static_cast<const char*>(message->key), message->key_len) : std::string(),
        std::string(static_cast<const char*>(message->payload), message->len), message->partition, message->offset});
  }
  rd_kafka_consumer_close(rk.get());
  return messages;
}

void produce_raw(const std::string& bootstrap, const std::string& topic, const std::string& key, const std::string& value) {
  auto rk = client(RD_KAFKA_PRODUCER, bootstrap, {{"acks", "all"}});
  const auto err = rd_kafka_producev(rk.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(key.data(), key.size()),
                                     RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) throw std::runtime_error(rd_kafka_err2str(err));
  if (rd_kafka_flush(rk.get(), 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) throw std::runtime_error("not delivered");
}

Committed committed_offset(const std::string& bootstrap, const std::string& group, const std::string& topic) {
  auto rk = client(RD_KAFKA_CONSUMER, bootstrap, {{"group.id", group}, {"enable.auto.commit", "false"}});
  std::unique_ptr<rd_kafka_topic_partition_list_t, Destroy> list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), 0);
  if (const auto err = rd_kafka_committed(rk.get(), list.get(), 10000); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error(rd_kafka_err2str(err));
  }
  const auto& entry = list->elems[0];
  Committed result{entry.offset, entry.metadata ? std::string(static_cast<const char*>(entry.metadata), entry.metadata_size)
                                                : std::string()};
  rd_kafka_consumer_close(rk.get());
  return result;
}

std::string topic_config(const std::string& bootstrap, const std::string& topic, const std::string& name) {
  auto admin = client(RD_KAFKA_PRODUCER, bootstrap, {});
  rd_kafka_ConfigResource_t* resource = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str());
  std::unique_ptr<rd_kafka_queue_t, decltype(&rd_kafka_queue_destroy)> queue(rd_kafka_queue_new(admin.get()),
                                                                              &rd_kafka_queue_destroy);
  rd_kafka_DescribeConfigs(admin.get(), &resource, 1, nullptr, queue.get());
  rd_kafka_ConfigResource_destroy(resource);
  std::unique_ptr<rd_kafka_event_t, decltype(&rd_kafka_event_destroy)> event(rd_kafka_queue_poll(queue.get(), 30000),
                                                                             &rd_kafka_event_destroy);
  if (!event || rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error("DescribeConfigs of " + topic + " failed" +
                             (event ? std::string(": ") + rd_kafka_event_error_string(event.get()) : std::string()));
  }
  size_t count = 0;
  const rd_kafka_ConfigResource_t** resources =
      rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(event.get()), &count);
  for (size_t r = 0; r < count; ++r) {
    size_t entries = 0;
    const rd_kafka_ConfigEntry_t** configs = rd_kafka_ConfigResource_configs(resources[r], &entries);
    for (size_t i = 0; i < entries; ++i) {
      if (name == rd_kafka_ConfigEntry_name(configs[i])) {
        const char* value = rd_kafka_ConfigEntry_value(configs[i]);
        return value ? value : "";
      }
    }
  }
  throw std::runtime_error("the broker describes no " + name + " for " + topic);
}

bool eventually(const std::function<bool()>& predicate, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!predicate()) {
    if (Clock::now() >= deadline) return predicate();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

}  // namespace framepress::testing
