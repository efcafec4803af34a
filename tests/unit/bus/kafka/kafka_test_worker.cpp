// A worker that takes one task and never completes it: the Kafka bus tests kill it with SIGKILL mid-task
// and see the task handed out again.
//
//   kafka_test_worker <bootstrap> <suffix> <partitions> <class>
// Prints "READY" once its consumer has partitions, "LEASED <video id>" once it holds a task, then waits
// to be killed.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <thread>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "kafka_test_support.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s <bootstrap> <suffix> <partitions> <class>\n", argv[0]);
    return 2;
  }
  try {
    // stdout carries the protocol with the test: logs go to stderr.
    spdlog::set_default_logger(spdlog::stderr_color_mt("worker"));
    const auto options = framepress::testing::kafka_test_options(argv[1], argv[2], std::atoi(argv[3]));
    framepress::KafkaEventBus bus(options);
    auto tasks = bus.kafka_tasks({argv[4]});
    bool ready = false;
    for (;;) {
      if (!ready && tasks->assigned_partitions() > 0) {
        std::printf("READY\n");
        std::fflush(stdout);
        ready = true;
      }
      if (auto lease = tasks->next(std::chrono::milliseconds(200))) {
        std::printf("LEASED %s\n", lease->task.video_id.str().c_str());
        std::fflush(stdout);
        for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));  // an endless encode
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kafka_test_worker: %s\n", e.what());
    return 1;
  }
}
