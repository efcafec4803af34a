#include "worker/worker_pool.h"

#include <random>

#include <spdlog/spdlog.h>

#include "core/error.h"

namespace framepress::worker {
namespace {

/// A task's own scratch directory, removed with everything in it however the task ends.
class TaskScratch {
 public:
  TaskScratch(const std::filesystem::path& root, const RenditionTask& task) {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    path_ = root / ("task-" + task.video_id.str() + "-" + task.rendition.name + "-" + std::to_string(rng() % 1000000));
    std::filesystem::create_directories(path_);
  }
  ~TaskScratch() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
    if (ec) spdlog::warn("cannot remove scratch directory {}: {}", path_.string(), ec.message());
  }
  TaskScratch(const TaskScratch&) = delete;
  TaskScratch& operator=(const TaskScratch&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

bool job_is_over(const std::optional<JobView>& job, const std::string& rendition) {
  if (!job || is_terminal(job->state)) return true;
  const auto* r = job->rendition(rendition);
  return r == nullptr || is_terminal(r->state);
}

}  // namespace

/// Registers a running encode so that a cancel or delete of its job can stop it.
struct WorkerPool::Running {
  Running(WorkerPool& pool, const VideoId& id, std::stop_source& source) : pool(pool) {
    std::lock_guard lock(pool.running_mutex_);
    entry = pool.running_.emplace(id, &source);
  }
  ~Running() {
    std::lock_guard lock(pool.running_mutex_);
    pool.running_.erase(entry);
  }
  WorkerPool& pool;
  std::multimap<VideoId, std::stop_source*>::iterator entry;
};

WorkerPool::WorkerPool(EventBus& bus, ObjectStore& store, Transcoder& transcoder, JobBook& book, WorkerOptions options)
    : bus_(bus), store_(store), transcoder_(transcoder), book_(book), options_(std::move(options)) {
  std::filesystem::create_directories(options_.scratch_dir);
  // Directories of tasks a crash cut off: their tasks will run again from scratch.
  for (const auto& entry : std::filesystem::directory_iterator(options_.scratch_dir)) {
    if (entry.path().filename().string().rfind("task-", 0) == 0) {
      std::error_code ec;
      std::filesystem::remove_all(entry.path(), ec);
    }
  }
}

WorkerPool::~WorkerPool() { stop(); }

void WorkerPool::start() {
  tasks_ = bus_.tasks(options_.classes);
  listener_ = book_.listen([this](const VideoId& id) { on_job_changed(id); });
  for (int slot = 0; slot < options_.concurrency; ++slot) {
    threads_.emplace_back([this, slot](std::stop_token stop) { run(stop, slot); });
  }
  spdlog::info("{} encoding {} task(s) at a time, classes: {}", options_.name, options_.concurrency,
               options_.classes.empty() ? std::string("all") : fmt::format("{}", fmt::join(options_.classes, ",")));
}

void WorkerPool::stop() {
  if (threads_.empty()) return;
  for (auto& t : threads_) t.request_stop();
  {
    std::lock_guard lock(running_mutex_);
    for (auto& [id, source] : running_) source->request_stop();
  }
  threads_.clear();  // joins
  book_.unlisten(listener_);
  tasks_.reset();
}

void WorkerPool::on_job_changed(const VideoId& id) {
  auto job = book_.get(id);
  std::lock_guard lock(running_mutex_);
  auto [first, last] = running_.equal_range(id);
  for (auto it = first; it != last; ++it) {
    if (!job || job->state == JobState::cancelled) it->second->request_stop();
  }
}

void WorkerPool::run(std::stop_token stop, int slot) {
  while (!stop.stop_requested()) {
    std::optional<TaskLease> lease;
    try {
      lease = tasks_->next(std::chrono::milliseconds(500));
    } catch (const std::exception& e) {
      spdlog::error("{}#{}: cannot take a task: {}", options_.name, slot, e.what());
      std::this_thread::sleep_for(std::chrono::seconds(1));
      continue;
    }
    if (!lease) continue;
    try {
      execute(*lease, stop);
    } catch (const std::exception& e) {
      // The task stays leased: the bus hands it out again rather than losing it.
      spdlog::error("[{} {}] {}#{}: task abandoned: {}", lease->task.video_id.str(), lease->task.rendition.name,
                    options_.name, slot, e.what());
    }
  }
}

void WorkerPool::execute(const TaskLease& lease, std::stop_token stop) {
  const RenditionTask& task = lease.task;
  const std::string& rendition = task.rendition.name;
  const std::string tag = "[" + task.video_id.str() + " " + rendition + "]";

  // The book learns of a job from the same bus a moment after its tasks are queued; give it time.
  auto job = book_.get(task.video_id);
  for (auto waited = std::chrono::milliseconds(0); !job && waited < options_.unknown_job_grace && !stop.stop_requested();
       waited += std::chrono::milliseconds(50)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    job = book_.get(task.video_id);
  }
  if (stop.stop_requested()) return;
  if (job_is_over(job, rendition)) {
    spdlog::info("{} skipped: the job has ended or is gone", tag);
    tasks_->complete(lease);
    return;
  }

  bus_.publish(Event{task.video_id, now_ms(), RenditionStarted{rendition, task.attempt, options_.name}});
  spdlog::info("{} encoding {}x{} (attempt {})", tag, task.rendition.width, task.rendition.height, task.attempt);

  std::stop_source cancel;
  std::stop_callback forward(stop, [&] { cancel.request_stop(); });
  Running running(*this, task.video_id, cancel);
  if (job_is_over(book_.get(task.video_id), rendition)) cancel.request_stop();  // cancelled just now

  try {
    TaskScratch scratch(options_.scratch_dir, task);
    std::filesystem::path input;
    if (auto local = store_.readable_path(task.source_key)) {
      input = *local;
    } else {
      input = scratch.path() / "source";
      store_.fetch_to_file(task.source_key, input);
    }
    const std::filesystem::path output = scratch.path() / (rendition + ".mp4");

    auto last_report = std::chrono::steady_clock::now() - options_.progress_interval;
    transcoder_.encode(
        EncodeRequest{input, task.source, {EncodeOutput{task.rendition, output}}, task.encoding},
        [&](const EncodeProgress& p) {
          auto now = std::chrono::steady_clock::now();
          if (now - last_report < options_.progress_interval) return;
          last_report = now;
          bus_.publish(Event{task.video_id, now_ms(), RenditionProgress{rendition, p.percent, p.fps, p.speed, p.eta_seconds}});
        },
        cancel.get_token());

    const std::uint64_t size = std::filesystem::file_size(output);
    store_.put_file(task.output_key, output, "video/mp4", /*consume=*/true);
    const double duration = task.source.duration;
    const auto bit_rate = duration > 0 ? static_cast<std::int64_t>(static_cast<double>(size) * 8 / duration) : 0;
    bus_.publish(Event{task.video_id, now_ms(),
                       RenditionDone{rendition, task.output_key, size, bit_rate, duration, task.rendition.width,
                                     task.rendition.height}});
    spdlog::info("{} done: {} bytes, {} kbit/s", tag, size, bit_rate / 1000);
    tasks_->complete(lease);
    // Deleted while the output was being stored: do not leave it behind.
    if (!book_.get(task.video_id)) store_.remove_prefix(ObjectKey::prefix_of(task.video_id));
  } catch (const std::exception& e) {
    if (stop.stop_requested()) {
      spdlog::info("{} handed back: this worker is stopping", tag);
      return;  // not completed: handed out again
    }
    if (cancel.stop_requested()) {
      spdlog::info("{} stopped: the job was cancelled", tag);
      tasks_->complete(lease);
      return;
    }
    // Anything but a framepress::Error (a full scratch disk, say) is a fault of this attempt, worth another.
    const auto* error = dynamic_cast<const Error*>(&e);
    const bool retryable = error == nullptr || error->retryable();
    const bool retry = retryable && task.attempt <= options_.max_retries;
    spdlog::warn("{} attempt {} failed{}: {}", tag, task.attempt, retry ? " (will retry)" : "", e.what());
    bus_.publish(Event{task.video_id, now_ms(), RenditionFailed{rendition, task.attempt, e.what(), retry}});
    if (retry) {
      RenditionTask next = task;
      next.attempt += 1;
      bus_.enqueue(next, options_.retry_backoff * (1 << (task.attempt - 1)));
    }
    tasks_->complete(lease);
  }
}

}  // namespace framepress::worker
