#include "bus/embedded/sqlite_event_bus.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "core/error.h"

namespace framepress {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

/// Generous bound for "eventually": only a broken bus ever waits this long, and no test asserts a
/// duration.
constexpr auto kPatience = 30s;

/// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "framepress-bus-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

Event make_event(const VideoId& id, EventPayload payload) { return Event{id, now_ms(), std::move(payload)}; }

RenditionTask make_task(const VideoId& id, const std::string& rendition, const std::string& worker_class,
                        int attempt = 1) {
  RenditionTask task;
  task.video_id = id;
  task.source_key = ObjectKey::source_of(id);
  task.rendition = RenditionSpec{rendition, parse_rendition_name(rendition), 0, 0, worker_class};
  task.output_key = ObjectKey::rendition_of(id, rendition);
  task.attempt = attempt;
  return task;
}

/// What one subscription received.
struct Received {
  LogPosition position;
  VideoId video_id;
  std::string type;
};

class Collector {
 public:
  EventBus::EventHandler handler() {
    return [this](LogPosition position, const Event& event) {
      std::lock_guard lock(mutex_);
      events_.push_back({position, event.video_id, std::string(event_type(event))});
      changed_.notify_all();
    };
  }
  std::function<void()> caught_up() {
    return [this] {
      std::lock_guard lock(mutex_);
      ++caught_up_;
      events_at_caught_up_ = events_.size();
      changed_.notify_all();
    };
  }
  bool wait_for_events(std::size_t count) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kPatience, [&] { return events_.size() >= count; });
  }
  bool wait_caught_up() {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kPatience, [&] { return caught_up_ > 0; });
  }
  std::vector<Received> events() const {
    std::lock_guard lock(mutex_);
    return events_;
  }
  int caught_up_calls() const {
    std::lock_guard lock(mutex_);
    return caught_up_;
  }
  std::size_t events_at_caught_up() const {
    std::lock_guard lock(mutex_);
    return events_at_caught_up_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Received> events_;
  int caught_up_ = 0;
  std::size_t events_at_caught_up_ = 0;
};

/// Replays the whole log of the bus and returns it.
std::vector<Received> replay(SqliteEventBus& bus) {
  Collector collector;
  auto subscription = bus.subscribe(collector.handler(), collector.caught_up());
  EXPECT_TRUE(collector.wait_caught_up());
  subscription.reset();
  return collector.events();
}

class SqliteEventBusTest : public ::testing::Test {
 protected:
  fs::path db_path() const { return dir_.path() / "data" / "framepress.db"; }
  TempDir dir_;
};

// ---- the event log -----------------------------------------------------------------------------------

TEST_F(SqliteEventBusTest, EventsSurviveReopenInOrderAtTheSamePositions) {
  auto a = VideoId::generate();
  auto b = VideoId::generate();
  std::vector<Received> first;
  {
    SqliteEventBus bus(db_path());
    bus.publish(make_event(a, JobCreated{"a.mp4", ObjectKey::source_of(a)}));
    bus.publish(make_event(b, JobCreated{"b.mp4", ObjectKey::source_of(b)}));
    bus.publish(make_event(a, RenditionStarted{"360p", 1, "w1"}));
    bus.publish(make_event(a, RenditionProgress{"360p", 50}));
    first = replay(bus);
  }
  ASSERT_EQ(first.size(), 4u);
  EXPECT_EQ(first[0].video_id, a);
  EXPECT_EQ(first[0].type, "job.created");
  EXPECT_EQ(first[1].video_id, b);
  EXPECT_EQ(first[2].type, "rendition.started");
  EXPECT_EQ(first[3].type, "rendition.progress");
  for (std::size_t i = 1; i < first.size(); ++i) EXPECT_GT(first[i].position, first[i - 1].position);

  SqliteEventBus reopened(db_path());
  auto second = replay(reopened);
  ASSERT_EQ(second.size(), first.size());
  for (std::size_t i = 0; i < first.size(); ++i) {
    EXPECT_EQ(second[i].position, first[i].position);
    EXPECT_EQ(second[i].video_id, first[i].video_id);
    EXPECT_EQ(second[i].type, first[i].type);
  }
  EXPECT_EQ(reopened.stats().events, 4u);

  // New events continue after the old ones.
  reopened.publish(make_event(b, JobCancelled{}));
  auto third = replay(reopened);
  ASSERT_EQ(third.size(), 5u);
  EXPECT_GT(third[4].position, first[3].position);
}

TEST_F(SqliteEventBusTest, DeliversLiveEventsAfterCatchingUpAndCallsCaughtUpOnce) {
  SqliteEventBus bus(db_path());
  auto id = VideoId::generate();
  bus.publish(make_event(id, JobCreated{"x.mp4", ObjectKey::source_of(id)}));
  bus.publish(make_event(id, RenditionStarted{"240p", 1, "w"}));

  Collector collector;
  auto subscription = bus.subscribe(collector.handler(), collector.caught_up());
  ASSERT_TRUE(collector.wait_caught_up());
  EXPECT_EQ(collector.events_at_caught_up(), 2u);  // caught up only after the events present at subscribing

  bus.publish(make_event(id, RenditionProgress{"240p", 10}));
  bus.publish(make_event(id, RenditionProgress{"240p", 20}));
  bus.publish(make_event(id, JobCancelled{}));
  ASSERT_TRUE(collector.wait_for_events(5));
  auto events = collector.events();
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[4].type, "job.cancelled");
  for (std::size_t i = 1; i < events.size(); ++i) EXPECT_GT(events[i].position, events[i - 1].position);

  subscription.reset();  // waits for the dispatcher: nothing runs after this
  EXPECT_EQ(collector.caught_up_calls(), 1);
  bus.publish(make_event(id, JobDeleted{}));
  EXPECT_EQ(collector.events().size(), 5u);
}

TEST_F(SqliteEventBusTest, CaughtUpIsCalledOnAnEmptyLog) {
  SqliteEventBus bus(db_path());
  Collector collector;
  auto subscription = bus.subscribe(collector.handler(), collector.caught_up());
  ASSERT_TRUE(collector.wait_caught_up());
  EXPECT_TRUE(collector.events().empty());

  auto id = VideoId::generate();
  bus.publish(make_event(id, JobCancelled{}));
  ASSERT_TRUE(collector.wait_for_events(1));
  subscription.reset();
  EXPECT_EQ(collector.caught_up_calls(), 1);
}

TEST_F(SqliteEventBusTest, EverySubscriptionGetsEveryEventInOrder) {
  SqliteEventBus bus(db_path());
  auto id = VideoId::generate();
  for (int i = 0; i < 10; ++i) bus.publish(make_event(id, RenditionProgress{"360p", double(i)}));

  std::vector<std::unique_ptr<Collector>> collectors;
  std::vector<std::unique_ptr<Subscription>> subscriptions;
  for (int i = 0; i < 3; ++i) {
    collectors.push_back(std::make_unique<Collector>());
    subscriptions.push_back(bus.subscribe(collectors.back()->handler(), collectors.back()->caught_up()));
  }
  // Published while the subscriptions catch up, from another thread.
  std::thread publisher([&] {
    for (int i = 10; i < 600; ++i) bus.publish(make_event(id, RenditionProgress{"360p", double(i)}));
  });
  publisher.join();

  std::vector<Received> reference;
  for (auto& collector : collectors) {
    ASSERT_TRUE(collector->wait_for_events(600));
    auto events = collector->events();
    ASSERT_EQ(events.size(), 600u);
    for (std::size_t i = 1; i < events.size(); ++i) ASSERT_GT(events[i].position, events[i - 1].position);
    if (reference.empty()) reference = events;
    for (std::size_t i = 0; i < events.size(); ++i) ASSERT_EQ(events[i].position, reference[i].position);
  }
  subscriptions.clear();
  for (auto& collector : collectors) EXPECT_EQ(collector->caught_up_calls(), 1);
}

TEST_F(SqliteEventBusTest, AFailingHandlerDoesNotStopDelivery) {
  SqliteEventBus bus(db_path());
  auto id = VideoId::generate();
  Collector collector;
  auto inner = collector.handler();
  auto subscription = bus.subscribe(
      [&](LogPosition position, const Event& event) {
        inner(position, event);
        if (std::holds_alternative<RenditionStarted>(event.payload)) throw std::runtime_error("handler bug");
      },
      collector.caught_up());
  bus.publish(make_event(id, RenditionStarted{"360p", 1, "w"}));
  bus.publish(make_event(id, RenditionDone{"360p", ObjectKey::rendition_of(id, "360p")}));
  ASSERT_TRUE(collector.wait_for_events(2));
  EXPECT_EQ(collector.events()[1].type, "rendition.done");
}

TEST_F(SqliteEventBusTest, ASubscriptionMayBeDestroyedFromItsOwnHandler) {
  SqliteEventBus bus(db_path());
  std::unique_ptr<Subscription> subscription;
  std::mutex mutex;
  std::promise<void> destroyed;
  {
    std::lock_guard lock(mutex);  // the handler waits until `subscription` is assigned
    subscription = bus.subscribe(
        [&](LogPosition, const Event&) {
          std::lock_guard inner(mutex);
          if (subscription) {
            subscription.reset();
            destroyed.set_value();
          }
        },
        nullptr);
  }
  bus.publish(make_event(VideoId::generate(), JobCancelled{}));
  ASSERT_EQ(destroyed.get_future().wait_for(kPatience), std::future_status::ready);
}

TEST_F(SqliteEventBusTest, RowsThatCannotBeParsedAreSkipped) {
  auto id = VideoId::generate();
  {
    SqliteEventBus bus(db_path());
    bus.publish(make_event(id, RenditionStarted{"360p", 1, "w"}));
  }
  {
    // A damaged row and a row of an unknown type, written behind the bus's back.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_path().c_str(), &db), SQLITE_OK);
    std::string sql = "INSERT INTO events (video_id, type, body) VALUES ('" + id.str() +
                      "', 'x', 'not json'), ('" + id.str() + "', 'x', '{\"type\":\"job.exploded\",\"video_id\":\"" +
                      id.str() + "\"}')";
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  SqliteEventBus bus(db_path());
  bus.publish(make_event(id, JobCancelled{}));
  auto events = replay(bus);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, "rendition.started");
  EXPECT_EQ(events[1].type, "job.cancelled");
  EXPECT_EQ(bus.stats().events, 4u);  // skipped, not deleted
}

TEST_F(SqliteEventBusTest, InvalidUtf8IsStoredReplacedNotThrown) {
  SqliteEventBus bus(db_path());
  auto id = VideoId::generate();
  EXPECT_NO_THROW(bus.publish(make_event(id, JobCreated{"caf\xe9.mp4", ObjectKey::source_of(id)})));
  auto task = make_task(id, "360p", "sd");
  task.source.video_codec = "h\xff" "264";
  ASSERT_NO_THROW(bus.enqueue(task));
  EXPECT_EQ(replay(bus).size(), 1u);
  ASSERT_EQ(bus.stats().queued_tasks, 1u);  // so the wait below returns at once
  EXPECT_TRUE(bus.tasks({})->next(std::chrono::milliseconds::max()));  // a wait that long must not overflow
}

TEST_F(SqliteEventBusTest, ForgetRemovesOneJobAndKeepsTheOthersPositions) {
  SqliteEventBus bus(db_path());
  auto gone = VideoId::generate();
  auto kept = VideoId::generate();
  bus.publish(make_event(kept, JobCreated{"k.mp4", ObjectKey::source_of(kept)}));
  bus.publish(make_event(gone, JobCreated{"g.mp4", ObjectKey::source_of(gone)}));
  bus.publish(make_event(kept, RenditionStarted{"360p", 1, "w"}));
  bus.publish(make_event(gone, JobDeleted{}));
  bus.enqueue(make_task(gone, "360p", "sd"));
  bus.enqueue(make_task(kept, "360p", "sd"));
  auto before = replay(bus);
  ASSERT_EQ(before.size(), 4u);

  bus.forget(gone);
  auto after = replay(bus);
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0].video_id, kept);
  EXPECT_EQ(after[0].position, before[0].position);
  EXPECT_EQ(after[1].position, before[2].position);

  auto stats = bus.stats();
  EXPECT_EQ(stats.events, 2u);
  EXPECT_EQ(stats.queued_tasks, 1u);
  auto source = bus.tasks({});
  auto lease = source->next(0ms);
  ASSERT_TRUE(lease);
  EXPECT_EQ(lease->task.video_id, kept);
  EXPECT_FALSE(source->next(0ms));

  // Positions never go back, even when the newest rows were deleted.
  bus.forget(kept);
  bus.publish(make_event(kept, JobCancelled{}));
  auto last = replay(bus);
  ASSERT_EQ(last.size(), 1u);
  EXPECT_GT(last[0].position, before[3].position);
}

// ---- the task queues ---------------------------------------------------------------------------------

TEST_F(SqliteEventBusTest, TasksComeOutOldestFirst) {
  SqliteEventBus bus(db_path());
  auto id = VideoId::generate();
  for (auto name : {"144p", "240p", "360p"}) bus.enqueue(make_task(id, name, "sd"));
  auto source = bus.tasks({"sd"});
  for (auto name : {"144p", "240p", "360p"}) {
    auto lease = source->next(0ms);
    ASSERT_TRUE(lease);
    EXPECT_EQ(lease->task.rendition.name, name);
    EXPECT_EQ(lease->task.video_id, id);
    EXPECT_EQ(lease->task.output_key, ObjectKey::rendition_of(id, name));
    EXPECT_GT(lease->enqueued_at.time_since_epoch().count(), 0);
  }
  EXPECT_FALSE(source->next(0ms));
}

TEST_F(SqliteEventBusTest, SiblingsAreTheSameJobsOtherDueTasksOfTheSourcesClasses) {
  SqliteEventBus bus(db_path());
  auto id = VideoId::generate();
  auto other = VideoId::generate();
  bus.enqueue(make_task(id, "144p", "sd"));
  bus.enqueue(make_task(other, "144p", "sd"));
  bus.enqueue(make_task(id, "240p", "sd"));
  bus.enqueue(make_task(id, "360p", "sd"));
  bus.enqueue(make_task(id, "720p", "hd"));
  bus.enqueue(make_task(id, "480p", "sd"), 1h);  // not due
  auto source = bus.tasks({"sd"});
  auto first = source->next(0ms);
  ASSERT_TRUE(first);
  auto siblings = source->claim_siblings(*first, 1);
  ASSERT_EQ(siblings.size(), 1u);
  EXPECT_EQ(siblings[0].task.rendition.name, "240p");
  siblings = source->claim_siblings(*first, 8);
  ASSERT_EQ(siblings.size(), 1u);
  EXPECT_EQ(siblings[0].task.rendition.name, "360p");
  EXPECT_TRUE(source->claim_siblings(*first, 8).empty());
  // Leased siblings are nobody else's: the next task is the other job's.
  auto next = source->next(0ms);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->task.video_id, other);
  EXPECT_EQ(bus.stats().leased_tasks, 4u);
}

TEST_F(SqliteEventBusTest, SourcesSeeOnlyTheirClasses) {
  SqliteEventBus bus(db_path());
  auto id = VideoId::generate();
  bus.enqueue(make_task(id, "360p", "sd"));
  bus.enqueue(make_task(id, "720p", "hd"));
  bus.enqueue(make_task(id, "2160p", "uhd"));

  auto hd = bus.tasks({"hd"});
  auto lease = hd->next(0ms);
  ASSERT_TRUE(lease);
  EXPECT_EQ(lease->task.rendition.name, "720p");
  EXPECT_FALSE(hd->next(0ms));

  auto sd_uhd = bus.tasks({"uhd", "sd", "sd"});
  auto first = sd_uhd->next(0ms);
  auto second = sd_uhd->next(0ms);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->task.rendition.name, "360p");
  EXPECT_EQ(second->task.rendition.name, "2160p");
  EXPECT_FALSE(sd_uhd->next(0ms));

  bus.enqueue(make_task(id, "1080p", "hd"));
  auto any = bus.tasks({});
  auto third = any->next(0ms);
  ASSERT_TRUE(third);
  EXPECT_EQ(third->task.rendition.name, "1080p");
}

TEST_F(SqliteEventBusTest, NotBeforeIsRespected) {
  SqliteEventBus bus(db_path());
  auto id = VideoId::generate();
  auto source = bus.tasks({});
  bus.enqueue(make_task(id, "360p", "sd"), std::chrono::hours(1));
  EXPECT_FALSE(source->next(0ms));  // an hour away: certainly not due within this test

  // A due task behind a delayed one is not held up by it.
  bus.enqueue(make_task(id, "240p", "sd"));
  auto due = source->next(0ms);
  ASSERT_TRUE(due);
  EXPECT_EQ(due->task.rendition.name, "240p");

  // A short delay comes due while next() waits: the wait wakes for it, with no enqueue to wake it.
  bus.enqueue(make_task(id, "144p", "sd"), 200ms);
  std::optional<TaskLease> later;
  auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (!later && std::chrono::steady_clock::now() < deadline) later = source->next(kPatience);
  ASSERT_TRUE(later);
  EXPECT_EQ(later->task.rendition.name, "144p");
  EXPECT_EQ(bus.stats().queued_tasks, 1u);  // the one an hour away
}

TEST_F(SqliteEventBusTest, AWaitingNextIsWokenByEnqueue) {
  SqliteEventBus bus(db_path());
  auto source = bus.tasks({"hd"});
  auto waiter = std::async(std::launch::async, [&] { return source->next(60s); });
  bus.enqueue(make_task(VideoId::generate(), "360p", "sd"));  // not its class: it keeps waiting
  bus.enqueue(make_task(VideoId::generate(), "720p", "hd"));
  ASSERT_EQ(waiter.wait_for(kPatience), std::future_status::ready);
  auto lease = waiter.get();
  ASSERT_TRUE(lease);
  EXPECT_EQ(lease->task.rendition.name, "720p");
}

TEST_F(SqliteEventBusTest, NextGroupTakesAJobQueuedTogetherInOrderUpToTheLimit) {
  SqliteEventBus bus(db_path());
  auto id = VideoId::generate();
  auto other = VideoId::generate();
  bus.enqueue_all({make_task(id, "720p", "hd"), make_task(id, "480p", "sd"), make_task(id, "360p", "sd"),
                   make_task(id, "240p", "sd")});
  bus.enqueue_all({make_task(other, "360p", "sd")});
  bus.enqueue_all({});  // nothing to queue: no error, no row
  EXPECT_EQ(bus.stats().queued_tasks, 5u);

  auto source = bus.tasks({});
  auto group = source->next_group(0ms, 2);
  ASSERT_EQ(group.size(), 3u);
  EXPECT_EQ(group[0].task.rendition.name, "720p");
  EXPECT_EQ(group[1].task.rendition.name, "480p");
  EXPECT_EQ(group[2].task.rendition.name, "360p");
  for (const auto& lease : group) EXPECT_EQ(lease.task.video_id, id);
  // Over the limit: left for the next taker, still ahead of the later job.
  group = source->next_group(0ms, 8);
  ASSERT_EQ(group.size(), 1u);
  EXPECT_EQ(group[0].task.rendition.name, "240p");
  group = source->next_group(0ms, 8);
  ASSERT_EQ(group.size(), 1u);
  EXPECT_EQ(group[0].task.video_id, other);
  EXPECT_TRUE(source->next_group(0ms, 8).empty());
}

TEST_F(SqliteEventBusTest, EnqueueAllDelaysEveryTaskAndSurvivesReopen) {
  auto id = VideoId::generate();
  {
    SqliteEventBus bus(db_path());
    bus.enqueue_all({make_task(id, "360p", "sd", 2), make_task(id, "240p", "sd", 2)}, std::chrono::hours(1));
    bus.enqueue_all({make_task(id, "144p", "sd")});
  }
  SqliteEventBus bus(db_path());
  EXPECT_EQ(bus.stats().queued_tasks, 3u);
  auto source = bus.tasks({});
  auto group = source->next_group(0ms, 8);
  ASSERT_EQ(group.size(), 1u);  // the delayed ones are an hour away: not siblings yet
  EXPECT_EQ(group[0].task.rendition.name, "144p");
  EXPECT_TRUE(source->next_group(0ms, 8).empty());
}

// The race the API's one-task-at-a-time enqueue lost: idle workers all woken by one job, each taking part
// of it, so the source was decoded twice or more. With enqueue_all and next_group, the worker that takes
// the first task leases all its siblings before any other worker can take one.
TEST_F(SqliteEventBusTest, TheWorkerThatTakesAJobsFirstTaskGetsAllItsSiblings) {
  SqliteEventBus bus(db_path());
  auto source = bus.tasks({});
  constexpr int kWorkers = 4;
  constexpr int kJobs = 20;
  const std::vector<std::pair<std::string, std::string>> ladder{{"1080p", "hd"}, {"720p", "hd"}, {"480p", "sd"},
                                                                {"360p", "sd"}, {"240p", "sd"}, {"144p", "sd"}};
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::vector<TaskLease>> groups;
  std::size_t leased = 0;
  std::atomic<bool> done{false};
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&] {
      while (!done) {
        auto group = source->next_group(100ms, 8);
        if (group.empty()) continue;
        std::lock_guard lock(mutex);
        leased += group.size();
        groups.push_back(std::move(group));
        changed.notify_all();
      }
    });
  }
  for (int job = 0; job < kJobs; ++job) {
    auto id = VideoId::generate();
    std::vector<RenditionTask> tasks;
    for (const auto& [name, worker_class] : ladder) tasks.push_back(make_task(id, name, worker_class));
    bus.enqueue_all(tasks);
    // One job at a time, as when the workers are idle: every one of them is waiting when it comes.
    std::unique_lock lock(mutex);
    if (!changed.wait_for(lock, kPatience, [&] { return leased == ladder.size() * (job + 1); })) {
      ADD_FAILURE() << "job " << job << ": only " << leased << " tasks leased in all";
      break;  // the workers must still be joined
    }
  }
  done = true;
  for (auto& w : workers) w.join();

  ASSERT_EQ(groups.size(), static_cast<std::size_t>(kJobs));
  for (const auto& group : groups) {
    ASSERT_EQ(group.size(), ladder.size());
    for (std::size_t i = 0; i < group.size(); ++i) {
      EXPECT_EQ(group[i].task.video_id, group[0].task.video_id);
      EXPECT_EQ(group[i].task.rendition.name, ladder[i].first);
    }
  }
}

TEST_F(SqliteEventBusTest, EachTaskIsHandedToOneWorkerOnly) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 200;
  SqliteEventBus bus(db_path());
  auto source = bus.tasks({});
  std::vector<VideoId> producers_ids;
  for (int p = 0; p < kThreads; ++p) producers_ids.push_back(VideoId::generate());

  std::mutex mutex;
  std::map<std::pair<VideoId, int>, int> seen;
  std::atomic<int> taken{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < kThreads; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < kPerThread; ++i) bus.enqueue(make_task(producers_ids[p], "360p", "sd", i));
    });
  }
  for (int c = 0; c < kThreads; ++c) {
    threads.emplace_back([&] {
      auto deadline = std::chrono::steady_clock::now() + kPatience;
      while (taken < kThreads * kPerThread && std::chrono::steady_clock::now() < deadline) {
        auto lease = source->next(20ms);
        if (!lease) continue;
        {
          std::lock_guard lock(mutex);
          ++seen[{lease->task.video_id, lease->task.attempt}];
        }
        source->complete(*lease);
        ++taken;
      }
    });
  }
  for (auto& thread : threads) thread.join();

  EXPECT_EQ(taken, kThreads * kPerThread);
  ASSERT_EQ(seen.size(), std::size_t{kThreads * kPerThread});
  for (const auto& [task, count] : seen) EXPECT_EQ(count, 1) << task.first.str() << " #" << task.second;
  auto stats = bus.stats();
  EXPECT_EQ(stats.queued_tasks, 0u);
  EXPECT_EQ(stats.leased_tasks, 0u);
}

TEST_F(SqliteEventBusTest, CompleteRemovesTheTaskForGood) {
  auto id = VideoId::generate();
  {
    SqliteEventBus bus(db_path());
    bus.enqueue(make_task(id, "360p", "sd"));
    auto source = bus.tasks({});
    auto lease = source->next(0ms);
    ASSERT_TRUE(lease);
    EXPECT_EQ(bus.stats().leased_tasks, 1u);
    source->complete(*lease);
    EXPECT_EQ(bus.stats().leased_tasks, 0u);
    source->complete(*lease);  // twice is harmless
  }
  SqliteEventBus reopened(db_path());
  EXPECT_FALSE(reopened.tasks({})->next(0ms));
}

TEST_F(SqliteEventBusTest, ALeaseNotCompletedIsHandedOutAgainAfterReopen) {
  auto id = VideoId::generate();
  {
    SqliteEventBus bus(db_path());
    bus.enqueue(make_task(id, "360p", "sd", 2));
    auto source = bus.tasks({});
    ASSERT_TRUE(source->next(0ms));
    EXPECT_FALSE(source->next(0ms));  // leased: nobody else gets it meanwhile
  }
  SqliteEventBus reopened(db_path());
  EXPECT_EQ(reopened.stats().queued_tasks, 1u);
  auto lease = reopened.tasks({})->next(0ms);
  ASSERT_TRUE(lease);
  EXPECT_EQ(lease->task.video_id, id);
  EXPECT_EQ(lease->task.attempt, 2);
}

// ---- process-level guarantees ------------------------------------------------------------------------

TEST_F(SqliteEventBusTest, SurvivesKillMinus9) {
  auto id = VideoId::generate();
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child: no gtest assertions here, only work and then a death no destructor sees.
    try {
      SqliteEventBus bus(db_path());
      bus.enqueue(make_task(id, "360p", "sd"));
      bus.enqueue(make_task(id, "720p", "hd"));
      auto source = bus.tasks({"sd"});
      auto lease = source->next(0ms);
      if (!lease) ::_exit(3);
      bus.publish(make_event(id, JobCreated{"k.mp4", ObjectKey::source_of(id)}));
      bus.publish(make_event(id, RenditionStarted{"360p", 1, "child"}));
      bus.publish(make_event(id, RenditionProgress{"360p", 42}));
      ::kill(::getpid(), SIGKILL);
    } catch (...) {
      ::_exit(2);
    }
    ::_exit(4);  // not reached
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  ASSERT_EQ(WTERMSIG(status), SIGKILL);

  SqliteEventBus bus(db_path());  // the child's lock died with it
  auto events = replay(bus);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type, "job.created");
  EXPECT_EQ(events[1].type, "rendition.started");
  EXPECT_EQ(events[2].type, "rendition.progress");

  auto stats = bus.stats();
  EXPECT_EQ(stats.queued_tasks, 2u);
  EXPECT_EQ(stats.leased_tasks, 0u);
  auto source = bus.tasks({"sd"});
  auto lease = source->next(0ms);
  ASSERT_TRUE(lease);
  EXPECT_EQ(lease->task.rendition.name, "360p");
  source->complete(*lease);
}

TEST_F(SqliteEventBusTest, ASecondInstanceOnTheSameDataDirIsRefused) {
  auto first = std::make_unique<SqliteEventBus>(db_path());
  try {
    SqliteEventBus second(db_path());
    FAIL() << "a second bus opened the same database";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unavailable);
    EXPECT_EQ(e.reason(), "data_dir_locked");
    EXPECT_NE(std::string(e.what()).find("another framepress"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(db_path().parent_path().string()), std::string::npos) << e.what();
  }
  first->publish(make_event(VideoId::generate(), JobCancelled{}));  // the first is unharmed

  // A subscription keeps the database (and its lock) until it is gone too.
  auto subscription = first->subscribe([](LogPosition, const Event&) {}, nullptr);
  first.reset();
  EXPECT_THROW(SqliteEventBus{db_path()}, Error);
  subscription.reset();
  SqliteEventBus again(db_path());
  EXPECT_EQ(again.stats().events, 1u);
}

TEST_F(SqliteEventBusTest, ADatabaseFromANewerVersionIsRefused) {
  { SqliteEventBus bus(db_path()); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path().c_str(), &db), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  try {
    SqliteEventBus bus(db_path());
    FAIL() << "opened a database of schema version 99";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unavailable);
    EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace framepress
