#include "worker/worker_pool.h"

#include <algorithm>
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
    : bus_(bus),
      store_(store),
      transcoder_(transcoder),
      book_(book),
      options_(std::move(options)),
      unobserved_metrics_(options_.metrics ? nullptr : std::make_unique<metrics::Metrics>()),
      metrics_(options_.metrics ? *options_.metrics : *unobserved_metrics_) {
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
    std::vector<TaskLease> leases;
    try {
      // Decode once, encode many: the job's other queued renditions come with its first, taken together.
      leases = tasks_->next_group(std::chrono::milliseconds(500), static_cast<std::size_t>(std::max(0, options_.max_group - 1)));
    } catch (const std::exception& e) {
      spdlog::error("{}#{}: cannot take a task: {}", options_.name, slot, e.what());
      std::this_thread::sleep_for(std::chrono::seconds(1));
      continue;
    }
    if (leases.empty()) continue;
    const std::string video = leases.front().task.video_id.str();
    try {
      execute(std::move(leases), stop);
    } catch (const std::exception& e) {
      // The tasks stay leased: the bus hands them out again rather than losing them.
      spdlog::error("[{}] {}#{}: task abandoned: {}", video, options_.name, slot, e.what());
    }
  }
}

void WorkerPool::execute(std::vector<TaskLease> leases, std::stop_token stop) {
  // The renditions that read the same source with the same settings share one ffmpeg.
  const TaskLease& first = leases.front();
  std::vector<TaskLease> group{first};
  std::vector<TaskLease> apart;
  for (std::size_t i = 1; i < leases.size(); ++i) {
    TaskLease& sibling = leases[i];
    bool same_input = sibling.task.source_key == first.task.source_key && sibling.task.encoding == first.task.encoding;
    (same_input ? group : apart).push_back(std::move(sibling));
  }
  execute_group(std::move(group), stop);
  for (auto& lease : apart) execute_group({std::move(lease)}, stop);
}

void WorkerPool::execute_group(std::vector<TaskLease> group, std::stop_token stop) {
  const RenditionTask& lead = group.front().task;
  const VideoId video = lead.video_id;
  std::string names;
  for (const auto& lease : group) names += (names.empty() ? "" : ",") + lease.task.rendition.name;
  const std::string tag = "[" + video.str() + " " + names + "]";

  // The book learns of a job from the same bus a moment after its tasks are queued; give it time.
  auto job = book_.get(video);
  for (auto waited = std::chrono::milliseconds(0); !job && waited < options_.unknown_job_grace && !stop.stop_requested();
       waited += std::chrono::milliseconds(50)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    job = book_.get(video);
  }
  if (stop.stop_requested()) return;
  std::erase_if(group, [&](const TaskLease& lease) {
    if (!job_is_over(job, lease.task.rendition.name)) return false;
    spdlog::info("[{} {}] skipped: the job has ended or is gone", video.str(), lease.task.rendition.name);
    tasks_->complete(lease);
    return true;
  });
  if (group.empty()) return;

  // One timer a task: each ends on its own (done, retry, failed, cancelled); one left running when this
  // function unwinds records the task as handed back.
  std::vector<metrics::TaskTimer> timers;
  const auto taken_at = std::chrono::system_clock::now();
  for (const auto& lease : group) {
    const auto waited = lease.enqueued_at.time_since_epoch().count() > 0 ? taken_at - lease.enqueued_at
                                                                          : std::chrono::system_clock::duration{};
    timers.push_back(metrics_.start_task(lease.task.rendition.worker_class, std::max(waited, decltype(waited){})));
    bus_.publish(Event{video, now_ms(), RenditionStarted{lease.task.rendition.name, lease.task.attempt, options_.name}});
  }
  auto end_timer = [&](const TaskLease& lease, metrics::TaskOutcome outcome) {
    for (std::size_t i = 0; i < group.size(); ++i) {
      if (group[i].handle == lease.handle) timers[i].end(outcome);
    }
  };
  spdlog::info("{} encoding {} rendition(s) from one decode", tag, group.size());

  std::stop_source cancel;
  std::stop_callback forward(stop, [&] { cancel.request_stop(); });
  Running running(*this, video, cancel);
  if (job_is_over(book_.get(video), lead.rendition.name)) cancel.request_stop();  // cancelled just now

  std::vector<TaskLease> pending = group;  // leases not yet completed
  try {
    TaskScratch scratch(options_.scratch_dir, lead);
    std::filesystem::path input;
    if (auto local = store_.readable_path(lead.source_key)) {
      input = *local;
    } else {
      input = scratch.path() / "source";
      store_.fetch_to_file(lead.source_key, input);
    }
    EncodeRequest request{input, lead.source, {}, lead.encoding};
    for (const auto& lease : group) {
      request.outputs.push_back(EncodeOutput{lease.task.rendition, scratch.path() / (lease.task.rendition.name + ".mp4")});
    }

    const auto encode_started = std::chrono::steady_clock::now();
    auto last_report = encode_started - options_.progress_interval;
    std::int64_t frames_counted = 0;
    transcoder_.encode(
        request,
        [&](const EncodeProgress& p) {
          // One decode feeds the whole group: its frames count once, under the lead's class.
          if (p.frames > frames_counted) {
            metrics_.frames_encoded(lead.rendition.worker_class, static_cast<std::uint64_t>(p.frames - frames_counted));
            frames_counted = p.frames;
          }
          auto now = std::chrono::steady_clock::now();
          if (now - last_report < options_.progress_interval) return;
          last_report = now;
          // One process, one report: its renditions advance together.
          for (const auto& lease : group) {
            bus_.publish(Event{video, now_ms(),
                               RenditionProgress{lease.task.rendition.name, p.percent, p.fps, p.speed, p.eta_seconds}});
          }
        },
        cancel.get_token());
    const std::chrono::duration<double> encode_time = std::chrono::steady_clock::now() - encode_started;
    if (frames_counted > 0 && encode_time.count() > 0) {
      metrics_.encode_finished(lead.rendition.worker_class, static_cast<double>(frames_counted) / encode_time.count());
    }

    for (std::size_t i = 0; i < group.size(); ++i) {
      const RenditionTask& task = group[i].task;
      const auto& output = request.outputs[i].path;
      const std::uint64_t size = std::filesystem::file_size(output);
      store_.put_file(task.output_key, output, "video/mp4", /*consume=*/true);
      const double duration = task.source.duration;
      const auto bit_rate = duration > 0 ? static_cast<std::int64_t>(static_cast<double>(size) * 8 / duration) : 0;
      bus_.publish(Event{video, now_ms(),
                         RenditionDone{task.rendition.name, task.output_key, size, bit_rate, duration,
                                       task.rendition.width, task.rendition.height}});
      spdlog::info("[{} {}] done: {} bytes, {} kbit/s", video.str(), task.rendition.name, size, bit_rate / 1000);
      tasks_->complete(group[i]);
      timers[i].end(metrics::TaskOutcome::done);
      std::erase_if(pending, [&](const TaskLease& l) { return l.handle == group[i].handle; });
    }
    // Deleted while the outputs were being stored: do not leave them behind.
    if (!book_.get(video)) store_.remove_prefix(ObjectKey::prefix_of(video));
  } catch (const std::exception& e) {
    if (stop.stop_requested()) {
      spdlog::info("{} handed back: this worker is stopping", tag);
      return;  // not completed: handed out again
    }
    if (cancel.stop_requested()) {
      spdlog::info("{} stopped: the job was cancelled", tag);
      for (const auto& lease : pending) {
        tasks_->complete(lease);
        end_timer(lease, metrics::TaskOutcome::cancelled);
      }
      return;
    }
    // Anything but a framepress::Error (a full scratch disk, say) is a fault of this attempt, worth another.
    const auto* error = dynamic_cast<const Error*>(&e);
    const bool retryable = error == nullptr || error->retryable();
    // The reason goes to the job's users: this machine's directories are none of their business.
    std::string reason = e.what();
    const std::string root = std::filesystem::absolute(options_.scratch_dir).string() + "/";
    for (auto at = reason.find(root); at != std::string::npos; at = reason.find(root, at)) reason.erase(at, root.size());
    for (const auto& lease : pending) {
      const RenditionTask& task = lease.task;
      const bool retry = retryable && task.attempt <= options_.max_retries;
      spdlog::warn("[{} {}] attempt {} failed{}: {}", video.str(), task.rendition.name, task.attempt,
                   retry ? " (will retry)" : "", e.what());
      bus_.publish(Event{video, now_ms(), RenditionFailed{task.rendition.name, task.attempt, reason, retry}});
      if (retry) {
        RenditionTask next = task;
        next.attempt += 1;
        bus_.enqueue_elsewhere(next, options_.retry_backoff * (1 << (task.attempt - 1)), *tasks_);
        tasks_->complete(lease);
        end_timer(lease, metrics::TaskOutcome::retry);
      } else {
        tasks_->dead_letter(lease, e.what());
        end_timer(lease, metrics::TaskOutcome::failed);
      }
    }
  }
}

}  // namespace framepress::worker
