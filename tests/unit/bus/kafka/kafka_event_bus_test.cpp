// The Kafka event bus against a real broker: scripts/kafka.sh starts one (KRaft, 127.0.0.1, a free port)
// for this process and stops it at the end, unless FRAMEPRESS_KAFKA_BOOTSTRAP names one already running.
// Every test has topics and groups of its own (a random suffix), so tests never see each other's messages.

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bus/kafka/kafka_event_bus.h"
#include "core/error.h"
#include "core/job_book.h"
#include "kafka_test_support.h"

namespace framepress {
namespace {

using namespace std::chrono_literals;
using testing::eventually;
using testing::make_task;

// ---- the broker ----------------------------------------------------------------------------------

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class KafkaBroker : public ::testing::Environment {
 public:
  static const std::string& bootstrap() { return bootstrap_; }
  /// The broker's directory for scripts/kafka.sh; empty when the broker was given from outside.
  static const std::filesystem::path& dir() { return dir_; }

  /// kill -9 and start again on the same data and port; "" or what went wrong.
  static std::string restart() {
    const auto log = dir_ / "restart.log";
    return script(fmt::format("restart {}", dir_.string()), log) ? "" : read_file(log);
  }

  void SetUp() override {
    if (const char* given = std::getenv("FRAMEPRESS_KAFKA_BOOTSTRAP"); given != nullptr && *given != '\0') {
      bootstrap_ = given;
      return;
    }
    char pattern[] = "/tmp/framepress-kafka-test-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) give_up("cannot make a directory for the broker");
    dir_ = pattern;
    run("install", dir_ / "install.log");
    // KAFKA_OWNER_PID: the script stops the broker by itself should this process die without TearDown.
    run(fmt::format("start {}", dir_.string()), dir_ / "start.log", fmt::format("KAFKA_OWNER_PID={} ", ::getpid()));
    const std::string env = read_file(dir_ / "env");
    const auto at = env.find("KAFKA_BOOTSTRAP=");
    if (at == std::string::npos) give_up("no KAFKA_BOOTSTRAP in " + (dir_ / "env").string() + ":\n" + env);
    bootstrap_ = env.substr(at + 16, env.find('\n', at) - at - 16);
  }

  void TearDown() override {
    if (dir_.empty()) return;
    script(fmt::format("stop {}", dir_.string()), dir_ / "stop.log");
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

 private:
  static bool script(const std::string& args, const std::filesystem::path& log, const std::string& env = {}) {
    const std::string command =
        fmt::format("{}{}/scripts/kafka.sh {} >{} 2>&1", env, FRAMEPRESS_SOURCE_DIR, args, log.string());
    return std::system(command.c_str()) == 0;
  }
  static void run(const std::string& args, const std::filesystem::path& log, const std::string& env = {}) {
    if (!script(args, log, env)) give_up("scripts/kafka.sh " + args + " failed:\n" + read_file(log));
  }

  // A failure in an environment's SetUp makes gtest report every test as skipped, which ctest counts as
  // a pass: without a broker this run must fail, loudly.
  [[noreturn]] static void give_up(const std::string& why) {
    std::fprintf(stderr, "kafka_bus_tests: no broker: %s\n", why.c_str());
    std::fflush(stderr);
    std::exit(1);
  }

  static inline std::string bootstrap_;
  static inline std::filesystem::path dir_;
};

[[maybe_unused]] ::testing::Environment* const broker = ::testing::AddGlobalTestEnvironment(new KafkaBroker);

std::string unique_suffix() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::random_device random;
  return fmt::format("{}-{:08x}", info ? info->name() : "test", random());
}

KafkaOptions options(int partitions = 12) {
  return testing::kafka_test_options(KafkaBroker::bootstrap(), unique_suffix(), partitions);
}

/// next() until a task comes or `timeout` passes.
std::optional<TaskLease> next_within(TaskSource& source, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto lease = source.next(500ms)) return lease;
  }
  return std::nullopt;
}

/// next_group() until a task comes or `timeout` passes.
std::vector<TaskLease> next_group_within(TaskSource& source, std::chrono::milliseconds timeout, std::size_t max_siblings) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto group = source.next_group(500ms, max_siblings); !group.empty()) return group;
  }
  return {};
}

std::vector<std::string> names_of(const std::vector<TaskLease>& group) {
  std::vector<std::string> names;
  for (const auto& lease : group) names.push_back(lease.task.rendition.name);
  return names;
}

// ---- events ------------------------------------------------------------------------------------

/// Records what a subscription delivers.
struct Recorder {
  std::mutex mutex;
  std::vector<std::pair<LogPosition, Event>> events;
  std::optional<std::size_t> delivered_when_caught_up;
  JobBook* book = nullptr;

  EventBus::EventHandler handler() {
    return [this](LogPosition position, const Event& event) {
      if (book) book->apply(position, event);
      std::lock_guard lock(mutex);
      events.emplace_back(position, event);
    };
  }
  std::function<void()> caught_up() {
    return [this] {
      std::lock_guard lock(mutex);
      delivered_when_caught_up = events.size();
    };
  }
  std::size_t size() {
    std::lock_guard lock(mutex);
    return events.size();
  }
  bool is_caught_up() {
    std::lock_guard lock(mutex);
    return delivered_when_caught_up.has_value();
  }
  /// Per job: (position, type) in delivery order.
  std::map<std::string, std::vector<std::pair<LogPosition, std::string>>> by_job() {
    std::lock_guard lock(mutex);
    std::map<std::string, std::vector<std::pair<LogPosition, std::string>>> jobs;
    for (const auto& [position, event] : events) jobs[event.video_id.str()].emplace_back(position, event_type(event));
    return jobs;
  }
};

JobCreated created_with(const std::vector<std::string>& renditions, const VideoId& id) {
  JobCreated created;
  created.filename = "cat.mp4";
  created.source_key = ObjectKey::source_of(id);
  created.source = make_task("hd", "720p", id).source;
  for (const auto& name : renditions) {
    const int side = parse_rendition_name(name);
    created.renditions.push_back(RenditionSpec{name, side, side * 16 / 9 / 2 * 2, side, side > 480 ? "hd" : "sd"});
  }
  return created;
}

RenditionDone done_of(const VideoId& id, const std::string& rendition) {
  return RenditionDone{rendition, ObjectKey::rendition_of(id, rendition), 123456, 98765, 10.0, 1280, 720};
}

/// One job's events as a worker and the API publish them; returns their types in order.
std::vector<std::string> publish_job(EventBus& bus, const VideoId& id) {
  const std::vector<Event> events{
      {id, now_ms(), created_with({"360p", "720p"}, id)},
      {id, now_ms(), RenditionStarted{"360p", 1, "w1"}},
      {id, now_ms(), RenditionProgress{"360p", 50, 30, 1.5, 3}},
      {id, now_ms(), RenditionDone{done_of(id, "360p")}},
      {id, now_ms(), RenditionStarted{"720p", 1, "w2"}},
      {id, now_ms(), RenditionProgress{"720p", 40, 20, 1.0, 6}},
      {id, now_ms(), RenditionFailed{"720p", 1, "ffmpeg crashed", true}},
      {id, now_ms(), RenditionStarted{"720p", 2, "w1"}},
      {id, now_ms(), RenditionDone{done_of(id, "720p")}},
  };
  std::vector<std::string> types;
  for (const auto& event : events) {
    bus.publish(event);
    types.emplace_back(event_type(event));
  }
  return types;
}

TEST(KafkaEventBus, EventsReachTwoSubscriptionsInOrderAndCatchUpAfterTheBacklog) {
  KafkaEventBus bus(options());
  std::map<std::string, std::vector<std::string>> published;
  std::vector<VideoId> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(VideoId::generate());
  for (const auto& id : ids) published[id.str()] = publish_job(bus, id);
  const std::size_t backlog = ids.size() * published.begin()->second.size();

  Recorder a;
  Recorder b;
  auto sub_a = bus.subscribe(a.handler(), a.caught_up());
  auto sub_b = bus.subscribe(b.handler(), b.caught_up());
  ASSERT_TRUE(eventually([&] { return a.is_caught_up() && b.is_caught_up(); }, 60s));
  // caught_up comes after the whole backlog, not before.
  EXPECT_EQ(*a.delivered_when_caught_up, backlog);
  EXPECT_EQ(*b.delivered_when_caught_up, backlog);

  // Live events after the catch-up.
  for (const auto& id : ids) {
    bus.publish(Event{id, now_ms(), JobCancelled{}});
    bus.publish(Event{id, now_ms(), JobDeleted{}});
    published[id.str()].insert(published[id.str()].end(), {"job.cancelled", "job.deleted"});
  }
  const std::size_t total = backlog + 2 * ids.size();
  ASSERT_TRUE(eventually([&] { return a.size() == total && b.size() == total; }, 60s))
      << a.size() << " and " << b.size() << " of " << total;

  const auto jobs_a = a.by_job();
  const auto jobs_b = b.by_job();
  ASSERT_EQ(jobs_a.size(), ids.size());
  for (const auto& [id, types] : published) {
    const auto& got = jobs_a.at(id);
    ASSERT_EQ(got.size(), types.size()) << id;
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].second, types[i]) << id << " #" << i;
      if (i > 0) {
        EXPECT_LT(got[i - 1].first, got[i].first) << id << " positions must increase";
      }
    }
    // Both readers see the same positions: the same event ids in every API process.
    EXPECT_EQ(got, jobs_b.at(id)) << id;
  }
}

TEST(KafkaEventBus, ASubscriptionStartedLaterReplaysEverythingFromTheStart) {
  const KafkaOptions o = options();
  std::vector<VideoId> ids{VideoId::generate(), VideoId::generate()};
  JobBook first_book;
  Recorder first;
  first.book = &first_book;
  {
    KafkaEventBus bus(o);
    auto subscription = bus.subscribe(first.handler(), first.caught_up());
    ASSERT_TRUE(eventually([&] { return first.is_caught_up(); }, 60s));
    for (const auto& id : ids) publish_job(bus, id);
    ASSERT_TRUE(eventually([&] { return first.size() == 18; }, 60s)) << first.size();
  }  // the API process stops

  // A new API process: a new bus over the same topics, its own book.
  JobBook second_book;
  Recorder second;
  second.book = &second_book;
  KafkaEventBus bus(o);
  auto subscription = bus.subscribe(second.handler(), second.caught_up());
  ASSERT_TRUE(eventually([&] { return second.is_caught_up(); }, 60s));
  EXPECT_EQ(*second.delivered_when_caught_up, 18u);
  EXPECT_EQ(second.by_job(), first.by_job());
  for (const auto& id : ids) {
    const auto before = first_book.get(id);
    const auto after = second_book.get(id);
    ASSERT_TRUE(before && after);
    EXPECT_EQ(after->state, JobState::completed);
    EXPECT_EQ(after->state, before->state);
    EXPECT_EQ(after->last_event_id, before->last_event_id);
    std::vector<EventId> ids_before;
    std::vector<EventId> ids_after;
    for (const auto& e : first_book.events_after(id, 0)) ids_before.push_back(e.id);
    for (const auto& e : second_book.events_after(id, 0)) ids_after.push_back(e.id);
    EXPECT_EQ(ids_after, ids_before);  // Last-Event-ID means the same thing across restarts
  }
}

TEST(KafkaEventBus, PrototypeTopicsGetThePrototypesMessages) {
  const KafkaOptions o = options();
  KafkaEventBus bus(o);
  const VideoId id = VideoId::generate();
  const TimestampMs at = now_ms();
  bus.publish(Event{id, at, created_with({"360p", "720p"}, id)});
  bus.publish(Event{id, at, done_of(id, "720p")});

  const auto uploads = testing::read_topic(o.bootstrap_servers, o.upload_topic, 1, 30s);
  ASSERT_EQ(uploads.size(), 1u);
  EXPECT_EQ(uploads[0].key, ObjectKey::source_of(id).str());
  const auto upload = nlohmann::json::parse(uploads[0].value);
  EXPECT_EQ(upload.at("bucket"), "test-bucket");
  EXPECT_EQ(upload.at("file_name"), ObjectKey::source_of(id).str());
  EXPECT_EQ(upload.at("uploaded_at"), format_iso8601(at));
  EXPECT_EQ(upload.at("video_id"), id.str());
  EXPECT_EQ(upload.at("filename"), "cat.mp4");
  EXPECT_EQ(upload.at("renditions"), nlohmann::json::array({"360p", "720p"}));

  const auto compressed = testing::read_topic(o.bootstrap_servers, o.compress_topic, 1, 30s);
  ASSERT_EQ(compressed.size(), 1u);
  EXPECT_EQ(compressed[0].key, ObjectKey::source_of(id).str());
  const auto done = nlohmann::json::parse(compressed[0].value);
  EXPECT_EQ(done.at("bucket"), "test-bucket");
  EXPECT_EQ(done.at("file_name"), ObjectKey::rendition_of(id, "720p").str());
  EXPECT_EQ(done.at("resolution"), "720p");
  EXPECT_EQ(done.at("uploaded_at"), format_iso8601(at));
  EXPECT_EQ(done.at("video_id"), id.str());
  EXPECT_EQ(done.at("size"), 123456);
}

TEST(KafkaEventBus, TheEventsTopicIsCreatedToBeKeptForeverAndTheOthersAreNot) {
  const KafkaOptions o = options();
  KafkaEventBus bus(o);
  // The events are the jobs' state, replayed by every process: the broker's 7-day default would lose jobs.
  EXPECT_EQ(testing::topic_config(o.bootstrap_servers, o.events_topic, "retention.ms"), "-1");
  EXPECT_NE(testing::topic_config(o.bootstrap_servers, o.tasks_topic_prefix + "sd", "retention.ms"), "-1");
}

TEST(KafkaEventBus, AnUnreachableBrokerGivesAClearErrorAtStartUp) {
  // A port nobody listens on: bound, then released.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  KafkaOptions o = options();
  o.bootstrap_servers = fmt::format("127.0.0.1:{}", ntohs(address.sin_port));
  o.startup_timeout = 3s;

  auto attempt = std::async(std::launch::async, [o] { KafkaEventBus bus(o); });
  ASSERT_EQ(attempt.wait_for(60s), std::future_status::ready) << "the constructor must give up on its own";
  try {
    attempt.get();
    FAIL() << "a bus without a broker";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unavailable);
    EXPECT_TRUE(e.retryable());
    EXPECT_NE(std::string(e.what()).find(o.bootstrap_servers), std::string::npos) << e.what();
  }
}

// ---- tasks ---------------------------------------------------------------------------------------

TEST(KafkaTaskSource, EachTaskReachesExactlyOneConsumerOfItsClassGroup) {
  const KafkaOptions o = options();
  KafkaEventBus bus(o);
  auto a = bus.kafka_tasks({"hd"});
  auto b = bus.kafka_tasks({"hd"});
  // Enqueue once the group is settled; tasks fetched before a rebalance would legitimately come twice.
  ASSERT_TRUE(eventually([&] {
    return a->assigned_partitions() > 0 && b->assigned_partitions() > 0 &&
           a->assigned_partitions() + b->assigned_partitions() == static_cast<std::size_t>(o.partitions);
  }, 60s));

  std::set<std::string> enqueued;
  for (int i = 0; i < 24; ++i) {
    auto task = make_task("hd", "720p");
    bus.enqueue(task);
    enqueued.insert(task.video_id.str());
  }
  std::set<std::string> sd;
  for (int i = 0; i < 3; ++i) {
    auto task = make_task("sd", "360p");
    bus.enqueue(task);
    sd.insert(task.video_id.str());
  }

  std::mutex mutex;
  std::multiset<std::string> received;
  std::map<char, int> per_consumer;
  std::atomic<bool> stop{false};
  auto drain = [&](KafkaTaskSource& source, char name) {
    while (!stop.load()) {
      if (auto lease = source.next(300ms)) {
        EXPECT_EQ(lease->task.rendition.worker_class, "hd");
        source.complete(*lease);
        std::lock_guard lock(mutex);
        received.insert(lease->task.video_id.str());
        ++per_consumer[name];
      }
    }
  };
  std::thread ta(drain, std::ref(*a), 'a');
  std::thread tb(drain, std::ref(*b), 'b');
  const bool all = eventually([&] {
    std::lock_guard lock(mutex);
    return received.size() >= enqueued.size();
  }, 90s);
  std::this_thread::sleep_for(3s);  // a duplicate would show up now
  stop.store(true);
  ta.join();
  tb.join();
  ASSERT_TRUE(all) << received.size() << " of " << enqueued.size();
  EXPECT_EQ(std::set<std::string>(received.begin(), received.end()), enqueued);
  EXPECT_EQ(received.size(), enqueued.size()) << "a task was handed out twice";
  EXPECT_GT(per_consumer['a'], 0);
  EXPECT_GT(per_consumer['b'], 0);
  a.reset();
  b.reset();

  // Completed means committed: the group's next member gets none of them again.
  auto c = bus.kafka_tasks({"hd"});
  ASSERT_TRUE(eventually([&] { return c->assigned_partitions() == static_cast<std::size_t>(o.partitions); }, 60s));
  EXPECT_FALSE(next_within(*c, 3s)) << "a completed task came back";

  // The other class's pool has its own tasks.
  auto d = bus.kafka_tasks({"sd"});
  std::set<std::string> got_sd;
  while (auto lease = next_within(*d, got_sd.size() < sd.size() ? 60s : 2s)) {
    got_sd.insert(lease->task.video_id.str());
    d->complete(*lease);
  }
  EXPECT_EQ(got_sd, sd);
}

// A retry after a failure on one worker goes to another member of the group (a full scratch disk or a
// broken machine is not met again); alone in its group, the worker gets it back.
TEST(KafkaTaskSource, ARetryEnqueuedElsewhereReachesAnotherConsumer) {
  const KafkaOptions o = options();
  KafkaEventBus bus(o);
  auto a = bus.kafka_tasks({"sd"});
  auto b = bus.kafka_tasks({"sd"});
  ASSERT_TRUE(eventually([&] {
    return a->assigned_partitions() > 0 && b->assigned_partitions() > 0 &&
           a->assigned_partitions() + b->assigned_partitions() == static_cast<std::size_t>(o.partitions);
  }, 60s));
  for (int round = 0; round < 8; ++round) {
    // Whichever consumer the task lands on, its retry must reach the other.
    auto task = make_task("sd", "240p");
    bus.enqueue(task);
    std::optional<TaskLease> first;
    KafkaTaskSource* failed_on = nullptr;
    KafkaTaskSource* other = nullptr;
    for (int i = 0; i < 200 && !first; ++i) {
      if ((first = a->next(50ms))) {
        failed_on = a.get(), other = b.get();
      } else if ((first = b->next(50ms))) {
        failed_on = b.get(), other = a.get();
      }
    }
    ASSERT_TRUE(first) << "round " << round;
    RenditionTask next = first->task;
    next.attempt += 1;
    bus.enqueue_elsewhere(next, 0ms, *failed_on);
    failed_on->complete(*first);
    auto retry = next_within(*other, 30s);
    ASSERT_TRUE(retry) << "round " << round << ": the retry did not reach the other consumer";
    EXPECT_EQ(retry->task.video_id, task.video_id);
    EXPECT_EQ(retry->task.attempt, 2);
    other->complete(*retry);
    EXPECT_FALSE(failed_on->next(300ms)) << "the retry came back to the consumer it failed on";
  }
  b.reset();
  ASSERT_TRUE(eventually([&] { return a->assigned_partitions() == static_cast<std::size_t>(o.partitions); }, 60s));
  auto alone = make_task("sd", "240p");
  bus.enqueue_elsewhere(alone, 0ms, *a);
  auto back = next_within(*a, 30s);
  ASSERT_TRUE(back) << "alone in its group, the worker gets its retry back";
  EXPECT_EQ(back->task.video_id, alone.video_id);
  a->complete(*back);
}

TEST(KafkaTaskSource, AnUncompletedLeaseGoesToAnotherConsumerWhenItsOwnerGoes) {
  const KafkaOptions o = options(1);
  KafkaEventBus bus(o);
  auto a = bus.kafka_tasks({"hd"});
  const auto task = make_task("hd", "720p");
  bus.enqueue(task);
  auto lease = next_within(*a, 60s);
  ASSERT_TRUE(lease);
  EXPECT_EQ(lease->task.video_id, task.video_id);

  auto b = bus.kafka_tasks({"sd", "hd"});
  EXPECT_FALSE(next_within(*b, 3s)) << "the task is leased to a";
  a.reset();  // without completing: a worker that stops mid-task

  auto again = next_within(*b, 60s);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->task.video_id, task.video_id);
  EXPECT_EQ(again->task.output_key, task.output_key);
  b->complete(*again);
}

/// A kafka_test_worker child process, its stdout read line by line.
class WorkerProcess {
 public:
  WorkerProcess(const std::string& bootstrap, const std::string& suffix, int partitions, const std::string& worker_class) {
    int out[2];
    if (::pipe(out) != 0) throw std::runtime_error("pipe");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      ::close(out[0]);
      ::close(out[1]);
      const std::string parts = std::to_string(partitions);
      ::execl(KAFKA_TEST_WORKER, KAFKA_TEST_WORKER, bootstrap.c_str(), suffix.c_str(), parts.c_str(), worker_class.c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(out[1]);
    fd_ = out[0];
  }
  ~WorkerProcess() {
    kill();
    ::close(fd_);
  }
  /// The next line the worker printed, or "" after `timeout`.
  std::string line(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (buffer_.find('\n') == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left <= 0ms) return "";
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[256];
      const ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n <= 0) return "";
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
    const auto end = buffer_.find('\n');
    std::string line = buffer_.substr(0, end);
    buffer_.erase(0, end + 1);
    return line;
  }
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buffer_;
};

TEST(KafkaTaskSource, AKilledWorkersTaskIsHandedOutAgainAfterTheSessionTimeOut) {
  const std::string suffix = unique_suffix();
  const KafkaOptions o = testing::kafka_test_options(KafkaBroker::bootstrap(), suffix, 1);
  KafkaEventBus bus(o);
  WorkerProcess worker(o.bootstrap_servers, suffix, 1, "hd");
  ASSERT_EQ(worker.line(60s), "READY");
  const auto task = make_task("hd", "1080p");
  bus.enqueue(task);
  ASSERT_EQ(worker.line(60s), "LEASED " + task.video_id.str());

  auto b = bus.kafka_tasks({"hd"});
  EXPECT_FALSE(next_within(*b, 3s)) << "the task is leased to the worker process";
  worker.kill();  // kill -9 mid-encode: no goodbye to the group, the session times out

  auto again = next_within(*b, 60s);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->task.video_id, task.video_id);
  b->complete(*again);
}

TEST(KafkaTaskSource, ATaskHeldLongerThanTheMaxPollIntervalIsNotHandedOutAgain) {
  KafkaOptions o = options(1);
  o.max_poll_interval = 10s;
  KafkaEventBus bus(o);
  auto a = bus.kafka_tasks({"hd"});
  const auto first = make_task("hd", "2160p");
  const auto second = make_task("hd", "1440p");
  bus.enqueue(first);
  bus.enqueue(second);
  auto lease = next_within(*a, 60s);
  ASSERT_TRUE(lease);
  ASSERT_EQ(lease->task.video_id, first.video_id);

  // Another member of the group polls all along the "encode": it must get nothing, which it would if a
  // had overrun max.poll.interval.ms and been thrown out of the group.
  auto b = bus.kafka_tasks({"hd"});
  const auto until = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < until) {
    auto stolen = b->next(500ms);
    ASSERT_FALSE(stolen) << "handed out again during a long task: " << stolen->task.video_id.str();
  }
  a->complete(*lease);
  auto next = next_within(*a, 30s);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->task.video_id, second.video_id);
  a->complete(*next);

  a.reset();
  ASSERT_TRUE(eventually([&] { return b->assigned_partitions() == 1; }, 60s));
  EXPECT_FALSE(next_within(*b, 3s)) << "a completed task came back";
}

TEST(KafkaTaskSource, NotBeforeHoldsATaskBackUntilItsTime) {
  KafkaEventBus bus(options(1));
  auto source = bus.kafka_tasks({});
  const auto later = make_task("hd", "720p");
  const auto now = make_task("hd", "480p");
  const auto enqueued = std::chrono::steady_clock::now();
  bus.enqueue(later, 4s);
  bus.enqueue(now);

  auto first = next_within(*source, 60s);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->task.video_id, now.video_id) << "the delayed task went first";
  source->complete(*first);
  auto second = next_within(*source, 60s);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->task.video_id, later.video_id);
  EXPECT_GE(std::chrono::steady_clock::now() - enqueued, 3900ms) << "handed out before its not_before";
  source->complete(*second);
}

TEST(KafkaTaskSource, CommitsOnlyUpToTheLowestUnfinishedTaskAndRedoesExactlyTheUnfinished) {
  const KafkaOptions o = options(1);
  KafkaEventBus bus(o);
  const VideoId video = VideoId::generate();
  std::vector<RenditionTask> tasks;
  for (int i = 0; i < 6; ++i) {
    tasks.push_back(make_task("hd", fmt::format("r{}", i), video));
    bus.enqueue(tasks.back());
  }
  std::map<std::string, TaskLease> leases;
  {
    auto a = bus.kafka_tasks({"hd"});
    for (int i = 0; i < 6; ++i) {
      auto lease = next_within(*a, 60s);
      ASSERT_TRUE(lease) << i;
      leases.emplace(lease->task.rendition.name, *lease);
    }
    ASSERT_EQ(leases.size(), 6u);
    // Out of order; r2, r3 and r5 are still running when the worker goes.
    a->complete(leases.at("r4"));
    a->complete(leases.at("r1"));
    a->complete(leases.at("r0"));
  }
  const auto committed = testing::committed_offset(o.bootstrap_servers, o.worker_group_prefix + "hd", o.tasks_topic_prefix + "hd");
  EXPECT_EQ(committed.offset, 2) << "the lowest unfinished offset";

  auto b = bus.kafka_tasks({"hd"});
  std::multiset<std::string> again;
  while (auto lease = next_within(*b, again.size() < 3 ? 60s : 3s)) {
    again.insert(lease->task.rendition.name);
    b->complete(*lease);
  }
  EXPECT_EQ(again, (std::multiset<std::string>{"r2", "r3", "r5"}));
}

TEST(KafkaTaskSource, DeadLettersTakeWhatIsNotATaskAndWhatFailedForGood) {
  const KafkaOptions o = options(1);
  KafkaEventBus bus(o);
  testing::produce_raw(o.bootstrap_servers, o.tasks_topic_prefix + "hd", "garbage", "this is not json");
  const auto task = make_task("hd", "720p");
  bus.enqueue(task);
  {
    auto a = bus.kafka_tasks({"hd"});
    auto lease = next_within(*a, 60s);
    ASSERT_TRUE(lease);
    EXPECT_EQ(lease->task.video_id, task.video_id);
    a->dead_letter(*lease, "ffmpeg failed 3 times");
  }
  const auto dead = testing::read_topic(o.bootstrap_servers, o.dead_letter_topic, 2, 30s);
  ASSERT_EQ(dead.size(), 2u);
  const auto garbage = nlohmann::json::parse(dead[0].value);
  EXPECT_EQ(dead[0].key, "garbage");
  EXPECT_EQ(garbage.at("raw"), "this is not json");
  EXPECT_NE(garbage.at("reason").get<std::string>().find("not a task"), std::string::npos);
  const auto failed = nlohmann::json::parse(dead[1].value);
  EXPECT_EQ(dead[1].key, task.video_id.str() + "/720p");
  EXPECT_EQ(failed.at("reason"), "ffmpeg failed 3 times");
  EXPECT_EQ(failed.at("task").at("video_id"), task.video_id.str());

  // Both are done with: nothing comes back.
  auto b = bus.kafka_tasks({"hd"});
  ASSERT_TRUE(eventually([&] { return b->assigned_partitions() == 1; }, 60s));
  EXPECT_FALSE(next_within(*b, 3s));
}

TEST(KafkaEventBus, RidesOutABrokerRestart) {
  if (KafkaBroker::dir().empty()) GTEST_SKIP() << "the broker is not this test's to restart";
  const KafkaOptions o = options(1);
  KafkaEventBus bus(o);
  Recorder recorder;
  auto subscription = bus.subscribe(recorder.handler(), recorder.caught_up());
  auto source = bus.kafka_tasks({"hd"});
  const VideoId id = VideoId::generate();
  bus.publish(Event{id, now_ms(), created_with({"720p"}, id)});
  const auto first = make_task("hd", "720p", id);
  bus.enqueue(first);
  auto lease = next_within(*source, 60s);
  ASSERT_TRUE(lease);

  const std::string failed = KafkaBroker::restart();  // kill -9 mid-task, then the same broker again
  ASSERT_EQ(failed, "");

  source->complete(*lease);
  bus.publish(Event{id, now_ms(), done_of(id, "720p")});  // waits for the broker to be back
  const auto second = make_task("hd", "1080p", id);
  bus.enqueue(second);
  auto next = next_within(*source, 60s);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->task.rendition.name, "1080p");
  source->complete(*next);
  ASSERT_TRUE(eventually([&] { return recorder.size() == 2; }, 60s)) << recorder.size();
  source.reset();

  // The completions were committed despite the restart.
  auto again = bus.kafka_tasks({"hd"});
  ASSERT_TRUE(eventually([&] { return again->assigned_partitions() == 1; }, 60s));
  EXPECT_FALSE(next_within(*again, 3s)) << "a completed task came back";
}

TEST(KafkaTaskSource, ATaskQueuedBehindARunningOneIsHandedOutAfterABrokerRestart) {
  if (KafkaBroker::dir().empty()) GTEST_SKIP() << "the broker is not this test's to restart";
  const KafkaOptions o = options(1);
  KafkaEventBus bus(o);
  auto source = bus.kafka_tasks({"hd"});
  const auto first = make_task("hd", "720p");
  const auto second = make_task("hd", "1080p");
  bus.enqueue(first);
  bus.enqueue(second);
  auto lease = next_within(*source, 60s);
  ASSERT_TRUE(lease);
  ASSERT_EQ(lease->task.rendition.name, "720p");
  // Nobody asks for more: the second is fetched and waits, and the partition is paused meanwhile.
  std::this_thread::sleep_for(3s);

  const std::string failed = KafkaBroker::restart();  // kill -9 mid-task, then the same broker again
  ASSERT_EQ(failed, "");
  // The group coordinator came back without this member: the partition is revoked (session time-out)...
  const bool revoked = eventually([&] { return source->assigned_partitions() == 0; }, 30s);
  source->complete(*lease);
  // ... and assigned back. The task queued behind the running one must come now.
  ASSERT_TRUE(eventually([&] { return source->assigned_partitions() == 1; }, 60s));
  auto next = next_within(*source, 60s);
  ASSERT_TRUE(next) << "the queued task never came (revoked during the restart: " << revoked << ")";
  EXPECT_EQ(next->task.rendition.name, "1080p");
  source->complete(*next);
  EXPECT_FALSE(next_within(*source, 3s)) << "a task came twice";
  source.reset();

  // Both completions were committed.
  auto again = bus.kafka_tasks({"hd"});
  ASSERT_TRUE(eventually([&] { return again->assigned_partitions() == 1; }, 60s));
  EXPECT_FALSE(next_within(*again, 3s)) << "a completed task came back";
}

TEST(KafkaTaskSource, AJobQueuedTogetherIsHandedOutTogetherAndRedoneExactlyWhereUnfinished) {
  const KafkaOptions o = options(1);
  KafkaEventBus bus(o);
  const VideoId video = VideoId::generate();
  const VideoId other = VideoId::generate();
  std::vector<RenditionTask> tasks;
  for (int i = 0; i < 6; ++i) tasks.push_back(make_task("hd", fmt::format("r{}", i), video));
  tasks.push_back(make_task("sd", "360p", video));  // another class: another topic, another group
  bus.enqueue_all(tasks);
  bus.enqueue_all({make_task("hd", "720p", other)});

  // Keyed by the video, each naming the renditions of its class queued with it.
  const auto stored = testing::read_topic(o.bootstrap_servers, o.tasks_topic_prefix + "hd", 7, 30s);
  ASSERT_EQ(stored.size(), 7u);
  EXPECT_EQ(stored[0].key, video.str());
  EXPECT_EQ(nlohmann::json::parse(stored[0].value).at("group"),
            (nlohmann::json{"r0", "r1", "r2", "r3", "r4", "r5"}));

  {
    auto a = bus.kafka_tasks({"hd"});
    // However few tasks the source had fetched when the first was taken, the rest come with it.
    auto group = next_group_within(*a, 60s, 8);
    ASSERT_EQ(names_of(group), (std::vector<std::string>{"r0", "r1", "r2", "r3", "r4", "r5"}));
    auto next = next_group_within(*a, 60s, 8);
    ASSERT_EQ(next.size(), 1u);
    EXPECT_EQ(next[0].task.video_id, other);
    a->complete(next[0]);
    // Each rendition is still its own task: r2 and r4 are still running when the worker goes.
    for (const auto& lease : group) {
      if (lease.task.rendition.name != "r2" && lease.task.rendition.name != "r4") a->complete(lease);
    }
  }
  const auto committed = testing::committed_offset(o.bootstrap_servers, o.worker_group_prefix + "hd", o.tasks_topic_prefix + "hd");
  EXPECT_EQ(committed.offset, 2) << "the lowest unfinished offset";

  // Handed out again: only the unfinished two, together (the finished ones between and after them are
  // skipped, and the wait for them ends once the partition has been read past the job).
  auto b = bus.kafka_tasks({"hd"});
  auto again = next_group_within(*b, 60s, 8);
  EXPECT_EQ(names_of(again), (std::vector<std::string>{"r2", "r4"}));
  for (const auto& lease : again) b->complete(lease);
  EXPECT_TRUE(next_group_within(*b, 3s, 8).empty()) << "a finished task came back";

  // The sd task went to its own class's source.
  auto sd = bus.kafka_tasks({"sd"});
  auto lone = next_group_within(*sd, 60s, 8);
  EXPECT_EQ(names_of(lone), std::vector<std::string>{"360p"});
}

TEST(KafkaTaskSource, NextGroupStopsAtItsLimitAndLeavesTheRestForTheNextCall) {
  const KafkaOptions o = options(1);
  KafkaEventBus bus(o);
  const VideoId video = VideoId::generate();
  std::vector<RenditionTask> tasks;
  for (int i = 0; i < 5; ++i) tasks.push_back(make_task("hd", fmt::format("r{}", i), video));
  bus.enqueue_all(tasks);
  auto a = bus.kafka_tasks({"hd"});
  auto first = next_group_within(*a, 60s, 2);
  EXPECT_EQ(names_of(first), (std::vector<std::string>{"r0", "r1", "r2"}));
  auto rest = next_group_within(*a, 60s, 8);
  EXPECT_EQ(names_of(rest), (std::vector<std::string>{"r3", "r4"}));
  for (const auto& lease : first) a->complete(lease);
  for (const auto& lease : rest) a->complete(lease);
}

TEST(KafkaTaskSource, EveryJobGoesWholeToOneWorkerOfTheGroup) {
  const KafkaOptions o = options(4);
  KafkaEventBus bus(o);
  auto a = bus.kafka_tasks({"hd"});
  auto b = bus.kafka_tasks({"hd"});
  ASSERT_TRUE(eventually([&] {
    return a->assigned_partitions() > 0 && b->assigned_partitions() > 0 &&
           a->assigned_partitions() + b->assigned_partitions() == static_cast<std::size_t>(o.partitions);
  }, 60s));

  constexpr std::size_t kJobs = 12;
  const std::vector<std::string> ladder{"1080p", "720p", "540p", "480p"};
  std::mutex mutex;
  std::vector<std::vector<TaskLease>> groups;
  std::size_t received = 0;
  std::atomic<bool> stop{false};
  // Two worker threads a source, as `framepress worker --concurrency 2` runs them.
  auto work = [&](KafkaTaskSource& source) {
    while (!stop.load()) {
      auto group = source.next_group(300ms, 8);
      if (group.empty()) continue;
      for (const auto& lease : group) source.complete(lease);
      std::lock_guard lock(mutex);
      received += group.size();
      groups.push_back(std::move(group));
    }
  };
  std::vector<std::thread> workers;
  for (auto* source : {a.get(), a.get(), b.get(), b.get()}) workers.emplace_back(work, std::ref(*source));
  for (std::size_t job = 0; job < kJobs; ++job) {
    const VideoId video = VideoId::generate();
    std::vector<RenditionTask> tasks;
    for (const auto& name : ladder) tasks.push_back(make_task("hd", name, video));
    bus.enqueue_all(tasks);
  }
  const bool all = eventually([&] {
    std::lock_guard lock(mutex);
    return received >= kJobs * ladder.size();
  }, 120s);
  stop.store(true);
  for (auto& w : workers) w.join();
  ASSERT_TRUE(all) << received << " of " << kJobs * ladder.size();
  EXPECT_EQ(groups.size(), kJobs);
  std::set<VideoId> jobs;
  for (const auto& group : groups) {
    EXPECT_EQ(names_of(group), ladder);
    for (const auto& lease : group) EXPECT_EQ(lease.task.video_id, group.front().task.video_id);
    jobs.insert(group.front().task.video_id);
  }
  EXPECT_EQ(jobs.size(), kJobs);
}

TEST(KafkaTaskSource, EnqueueRefusesAClassWithoutATopic) {
  KafkaEventBus bus(options(1));
  try {
    bus.enqueue(make_task("8k", "4320p"));
    FAIL() << "enqueued to a class that has no topic";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::internal);
  }
  EXPECT_THROW(bus.kafka_tasks({"8k"}), Error);
}

}  // namespace
}  // namespace framepress
