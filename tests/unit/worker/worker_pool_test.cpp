// The worker pool's logic over the real embedded bus and filesystem store, with a scripted transcoder:
// grouping, retries, final failures, cancel and hand-back.

#include "worker/worker_pool.h"

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "bus/embedded/sqlite_event_bus.h"
#include "core/error.h"
#include "store/fs/fs_object_store.h"
#include "support/test_media.h"

namespace framepress::worker {
namespace {

using namespace std::chrono_literals;

/// Writes a few bytes per output, fails the first `failures` calls, or waits for the stop token.
class ScriptedTranscoder : public Transcoder {
 public:
  SourceInfo probe(const std::filesystem::path&) override { return {}; }
  void encode(const EncodeRequest& request, const ProgressSink& on_progress, std::stop_token stop) override {
    int call = ++calls;
    {
      std::lock_guard lock(mutex);
      outputs_per_call.push_back(request.outputs.size());
      inputs.push_back(request.input);
      input_existed.push_back(std::filesystem::is_regular_file(request.input));
    }
    if (block) {
      started = true;
      std::mutex m;
      std::condition_variable_any cv;
      std::unique_lock lock(m);
      cv.wait(lock, stop, [] { return false; });
      throw Error(ErrorCode::conflict, "cancelled", "cancelled");
    }
    on_progress(EncodeProgress{50, 30, 2, 1});
    if (call <= failures) throw Error(ErrorCode::internal, "ffmpeg failed: boom at frame 12", "encode_failed", true);
    for (const auto& out : request.outputs) std::ofstream(out.path) << "encoded " << out.rendition.name;
  }

  std::atomic<int> calls{0};
  int failures = 0;
  bool block = false;
  std::atomic<bool> started{false};
  std::mutex mutex;
  std::vector<std::size_t> outputs_per_call;
  std::vector<std::filesystem::path> inputs;  // what each call was asked to read
  std::vector<bool> input_existed;            // and whether it was there when the encode began
};

/// The filesystem store as a remote store looks to the worker: no object is a local file, so the worker
/// fetches each source into its task's scratch directory, as it does from S3. Counts the fetches.
class RemoteLookingStore final : public ObjectStore {
 public:
  explicit RemoteLookingStore(ObjectStore& inner) : inner_(inner) {}
  std::unique_ptr<ObjectWriter> create(const ObjectKey& key, std::string_view type) override { return inner_.create(key, type); }
  void put_file(const ObjectKey& key, const std::filesystem::path& path, std::string_view type, bool consume) override {
    inner_.put_file(key, path, type, consume);
  }
  void fetch_to_file(const ObjectKey& key, const std::filesystem::path& path) override {
    ++fetches;
    inner_.fetch_to_file(key, path);
  }
  std::optional<ObjectInfo> stat(const ObjectKey& key) override { return inner_.stat(key); }
  std::unique_ptr<ObjectReader> open(const ObjectKey& key, std::optional<ByteRange> range) override {
    return inner_.open(key, range);
  }
  void remove_prefix(std::string_view prefix) override { inner_.remove_prefix(prefix); }
  std::string describe() const override { return "remote-looking " + inner_.describe(); }

  std::atomic<int> fetches{0};

 private:
  ObjectStore& inner_;
};

class WorkerPoolTest : public ::testing::Test {
 protected:
  void open() {
    bus = std::make_unique<SqliteEventBus>(dir.path() / "framepress.db");
    book = std::make_unique<JobBook>();
    subscription = bus->subscribe([this](LogPosition p, const Event& e) { book->apply(p, e); }, [] {});
  }
  void SetUp() override {
    store = std::make_unique<FsObjectStore>(dir.path() / "objects");
    open();
  }
  void TearDown() override {
    pool.reset();
    subscription.reset();
  }

  WorkerOptions options(int concurrency = 1) {
    WorkerOptions o;
    o.concurrency = concurrency;
    o.scratch_dir = dir.path() / "scratch";
    o.retry_backoff = 10ms;
    o.progress_interval = 0ms;
    o.metrics = &metrics;
    return o;
  }

  /// framepress_task_duration_seconds_count of class sd and `outcome`, once it reaches `expected` (a
  /// task's timer ends just after its events are published, so a moment after the book shows them).
  double tasks_ended(const std::string& outcome, double expected) {
    const std::string series = R"(framepress_task_duration_seconds_count{class="sd",outcome=")" + outcome + "\"} ";
    double value = 0;
    for (int i = 0; i < 500; ++i) {
      std::istringstream text(metrics.exposition());
      value = 0;
      for (std::string line; std::getline(text, line);) {
        if (line.rfind(series, 0) == 0) value = std::stod(line.substr(series.size()));
      }
      if (value == expected) break;
      std::this_thread::sleep_for(10ms);
    }
    return value;
  }

  /// Publishes a job and queues its renditions, as the API does.
  VideoId submit(const std::vector<std::string>& renditions) {
    auto id = VideoId::generate();
    auto source_key = ObjectKey::source_of(id);
    auto source_file = dir.path() / "upload";
    std::ofstream(source_file) << "source bytes";
    store->put_file(source_key, source_file, "video/mp4", true);
    JobCreated created;
    created.source_key = source_key;
    created.source.duration = 2;
    for (const auto& name : renditions) {
      int side = parse_rendition_name(name);
      created.renditions.push_back(RenditionSpec{name, side, side * 16 / 9 / 2 * 2, side, "sd"});
    }
    bus->publish(Event{id, now_ms(), created});
    std::vector<RenditionTask> tasks;
    for (const auto& spec : created.renditions) {
      tasks.push_back(RenditionTask{id, source_key, created.source, spec, created.encoding, ObjectKey::rendition_of(id, spec.name), 1});
    }
    bus->enqueue_all(tasks);
    return id;
  }

  JobView wait_for(const VideoId& id, const std::function<bool(const JobView&)>& done) {
    for (int i = 0; i < 1000; ++i) {
      if (auto job = book->get(id); job && done(*job)) return *job;
      std::this_thread::sleep_for(10ms);
    }
    ADD_FAILURE() << "the job did not get there";
    return book->get(id).value_or(JobView{});
  }

  testing::TempDir dir;
  std::unique_ptr<FsObjectStore> store;
  std::unique_ptr<SqliteEventBus> bus;
  std::unique_ptr<JobBook> book;
  std::unique_ptr<Subscription> subscription;
  ScriptedTranscoder transcoder;
  std::unique_ptr<RemoteLookingStore> remote;  // when a test wants sources fetched
  metrics::Metrics metrics;  // before the pool, which reports to it
  std::unique_ptr<WorkerPool> pool;
};

}  // namespace

TEST_F(WorkerPoolTest, AJobsRenditionsShareOneDecodeAndAreStoredOnce) {
  auto id = submit({"144p", "240p", "360p"});
  pool = std::make_unique<WorkerPool>(*bus, *store, transcoder, *book, options());
  pool->start();
  auto job = wait_for(id, [](const JobView& j) { return is_terminal(j.state); });
  EXPECT_EQ(job.state, JobState::completed);
  EXPECT_EQ(transcoder.outputs_per_call, (std::vector<std::size_t>{3}));
  for (const auto& r : job.renditions) {
    EXPECT_EQ(r.state, RenditionState::done);
    EXPECT_TRUE(store->stat(ObjectKey::rendition_of(id, r.spec.name)).has_value()) << r.spec.name;
  }
  EXPECT_EQ(bus->stats().queued_tasks + bus->stats().leased_tasks, 0u);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path() / "scratch"));
}

TEST_F(WorkerPoolTest, JobsQueuedWhileTheWorkersWaitAreEachDecodedOnce) {
  // Idle workers are all waiting when a job comes (the benchmark's case): the first to wake takes the
  // whole job, the other none of it.
  pool = std::make_unique<WorkerPool>(*bus, *store, transcoder, *book, options(2));
  pool->start();
  for (int i = 0; i < 5; ++i) {
    auto id = submit({"144p", "240p", "360p"});
    EXPECT_EQ(wait_for(id, [](const JobView& j) { return is_terminal(j.state); }).state, JobState::completed);
  }
  EXPECT_EQ(transcoder.outputs_per_call, (std::vector<std::size_t>(5, 3)));
}

TEST_F(WorkerPoolTest, GroupingCanBeTurnedOff) {
  auto id = submit({"144p", "240p"});
  auto o = options();
  o.max_group = 1;
  pool = std::make_unique<WorkerPool>(*bus, *store, transcoder, *book, o);
  pool->start();
  EXPECT_EQ(wait_for(id, [](const JobView& j) { return is_terminal(j.state); }).state, JobState::completed);
  EXPECT_EQ(transcoder.outputs_per_call, (std::vector<std::size_t>{1, 1}));
}

TEST_F(WorkerPoolTest, AFailedAttemptIsRetried) {
  transcoder.failures = 1;
  auto id = submit({"144p"});
  pool = std::make_unique<WorkerPool>(*bus, *store, transcoder, *book, options());
  pool->start();
  auto job = wait_for(id, [](const JobView& j) { return is_terminal(j.state); });
  EXPECT_EQ(job.state, JobState::completed);
  EXPECT_EQ(job.renditions[0].attempt, 2);
  EXPECT_EQ(transcoder.calls, 2);
  EXPECT_EQ(tasks_ended("retry", 1), 1);
  EXPECT_EQ(tasks_ended("done", 1), 1);
}

TEST_F(WorkerPoolTest, AfterTheLastRetryTheRenditionFailsWithTheEncodersWords) {
  transcoder.failures = 100;
  auto id = submit({"144p"});
  pool = std::make_unique<WorkerPool>(*bus, *store, transcoder, *book, options());
  pool->start();
  auto job = wait_for(id, [](const JobView& j) { return is_terminal(j.state); });
  EXPECT_EQ(job.state, JobState::failed);
  EXPECT_EQ(transcoder.calls, 3);  // the first attempt and 2 retries
  EXPECT_EQ(job.renditions[0].state, RenditionState::failed);
  EXPECT_NE(job.error.find("boom at frame 12"), std::string::npos) << job.error;
  EXPECT_FALSE(store->stat(ObjectKey::rendition_of(id, "144p")).has_value());
  EXPECT_EQ(tasks_ended("retry", 2), 2);
  EXPECT_EQ(tasks_ended("failed", 1), 1);
  EXPECT_EQ(tasks_ended("done", 0), 0);
}

TEST_F(WorkerPoolTest, CancelStopsTheRunningEncode) {
  transcoder.block = true;
  auto id = submit({"144p"});
  pool = std::make_unique<WorkerPool>(*bus, *store, transcoder, *book, options());
  pool->start();
  wait_for(id, [](const JobView& j) { return j.state == JobState::processing; });
  for (int i = 0; i < 500 && !transcoder.started; ++i) std::this_thread::sleep_for(10ms);
  bus->publish(Event{id, now_ms(), JobCancelled{}});
  wait_for(id, [](const JobView& j) { return j.state == JobState::cancelled; });
  for (int i = 0; i < 500 && bus->stats().leased_tasks > 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(bus->stats().leased_tasks, 0u);  // the cancelled task is finished, not handed out again
  EXPECT_EQ(transcoder.calls, 1);
  EXPECT_EQ(tasks_ended("cancelled", 1), 1);
}

TEST_F(WorkerPoolTest, StoppingHandsTheTaskBack) {
  transcoder.block = true;
  auto id = submit({"144p"});
  pool = std::make_unique<WorkerPool>(*bus, *store, transcoder, *book, options());
  pool->start();
  for (int i = 0; i < 500 && !transcoder.started; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(transcoder.started);
  pool->stop();
  EXPECT_EQ(bus->stats().leased_tasks, 1u);
  EXPECT_EQ(tasks_ended("handed_back", 1), 1);
  EXPECT_NE(book->get(id)->state, JobState::failed);

  // The next process takes it from the start.
  pool.reset();
  subscription.reset();
  bus.reset();
  open();
  EXPECT_EQ(bus->stats().queued_tasks, 1u);
  transcoder.block = false;
  pool = std::make_unique<WorkerPool>(*bus, *store, transcoder, *book, options());
  pool->start();
  EXPECT_EQ(wait_for(id, [](const JobView& j) { return is_terminal(j.state); }).state, JobState::completed);
}

// A store whose sources are fetched (S3): the source goes to the task's scratch directory, and that
// directory is gone after the task, whether it succeeded, failed for good or was cancelled.

TEST_F(WorkerPoolTest, AFetchedSourceIsReadFromScratchAndScratchIsEmptiedAfterSuccess) {
  remote = std::make_unique<RemoteLookingStore>(*store);
  auto id = submit({"144p", "240p"});
  pool = std::make_unique<WorkerPool>(*bus, *remote, transcoder, *book, options());
  pool->start();
  auto job = wait_for(id, [](const JobView& j) { return is_terminal(j.state); });
  pool.reset();  // every task has ended, its scratch directory included
  EXPECT_EQ(job.state, JobState::completed);
  EXPECT_EQ(remote->fetches, 1);  // one decode, one fetch
  ASSERT_EQ(transcoder.inputs.size(), 1u);
  const auto scratch = dir.path() / "scratch";
  EXPECT_EQ(transcoder.inputs[0].parent_path().parent_path(), scratch) << transcoder.inputs[0];
  EXPECT_TRUE(transcoder.input_existed[0]);
  for (const auto& r : job.renditions) {
    EXPECT_TRUE(store->stat(ObjectKey::rendition_of(id, r.spec.name)).has_value()) << r.spec.name;
  }
  EXPECT_TRUE(std::filesystem::is_empty(scratch));
}

TEST_F(WorkerPoolTest, ScratchIsEmptiedAfterEveryFailedAttempt) {
  remote = std::make_unique<RemoteLookingStore>(*store);
  transcoder.failures = 100;
  auto id = submit({"144p"});
  pool = std::make_unique<WorkerPool>(*bus, *remote, transcoder, *book, options());
  pool->start();
  EXPECT_EQ(wait_for(id, [](const JobView& j) { return is_terminal(j.state); }).state, JobState::failed);
  pool.reset();
  EXPECT_EQ(remote->fetches, 3);  // each attempt fetched the source again into its own directory
  EXPECT_EQ(transcoder.input_existed, std::vector<bool>(3, true));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path() / "scratch"));
}

TEST_F(WorkerPoolTest, ScratchIsEmptiedAfterACancelledEncode) {
  remote = std::make_unique<RemoteLookingStore>(*store);
  transcoder.block = true;
  auto id = submit({"144p"});
  pool = std::make_unique<WorkerPool>(*bus, *remote, transcoder, *book, options());
  pool->start();
  for (int i = 0; i < 500 && !transcoder.started; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(transcoder.started);
  EXPECT_FALSE(std::filesystem::is_empty(dir.path() / "scratch"));  // the fetched source, mid-encode
  bus->publish(Event{id, now_ms(), JobCancelled{}});
  wait_for(id, [](const JobView& j) { return j.state == JobState::cancelled; });
  for (int i = 0; i < 500 && bus->stats().leased_tasks > 0; ++i) std::this_thread::sleep_for(10ms);
  pool.reset();
  EXPECT_TRUE(std::filesystem::is_empty(dir.path() / "scratch"));
}

}  // namespace framepress::worker
