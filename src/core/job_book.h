#pragma once
// The job book: every job's state, folded from the event log. It is the only place state is derived, so
// every process that reads the same log (an embedded server after a restart, any number of API processes
// over Kafka) derives the same state and the same event ids. No I/O.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/events.h"

namespace framepress {

/// Where an event stands in its job's log: increasing within a job (the embedded bus's sequence number,
/// a Kafka partition offset).
using LogPosition = std::uint64_t;

/// The id a client sees in SSE `id:` fields: position × 2, plus 1 for an event the book derived from the
/// event at that position. Increasing within a job, equal in every process that reads the same log.
using EventId = std::uint64_t;

struct VisibleEvent {
  EventId id = 0;
  Event event;
};

enum class JobState { queued, processing, completed, failed, cancelled };
enum class RenditionState { queued, encoding, done, failed, cancelled };
std::string_view to_string(JobState state);
std::string_view to_string(RenditionState state);
bool is_terminal(JobState state);
bool is_terminal(RenditionState state);

struct RenditionView {
  RenditionSpec spec;
  RenditionState state = RenditionState::queued;
  int attempt = 0;
  double percent = 0;
  double fps = 0;
  double speed = 0;
  double eta_seconds = -1;
  std::uint64_t size = 0;
  std::int64_t bit_rate = 0;
  double duration = 0;
  ObjectKey key;
  std::string error;
  TimestampMs started_at = 0;
  TimestampMs finished_at = 0;
};

struct JobView {
  VideoId id;
  JobState state = JobState::queued;
  TimestampMs created_at = 0;
  TimestampMs updated_at = 0;
  JobCreated created;
  std::vector<RenditionView> renditions;
  std::string error;            // why the job failed: the failed rendition and ffmpeg's last words
  EventId last_event_id = 0;    // the id of the latest event a client could have seen

  const RenditionView* rendition(std::string_view name) const;
};

/// The JSON a client sees for a job (GET /api/videos/{id}, the SSE snapshot). Download URLs are the API's
/// business: `url_of(rendition)` returns them.
nlohmann::json to_json(const JobView& job, const std::function<std::string(const JobView&, const RenditionView&)>& url_of);

/// Thread-safe. Listeners are called on the thread that applied the event, outside the book's lock.
class JobBook {
 public:
  /// Folds the event at `position` into its job. Returns what readers see because of it: the event itself
  /// (unless it is a duplicate or comes too late, e.g. a redelivered `rendition.done`, or progress after
  /// the end) and the terminal event it led to, if any.
  std::vector<VisibleEvent> apply(LogPosition position, const Event& event);

  std::optional<JobView> get(const VideoId& id) const;

  struct Page {
    std::vector<JobView> jobs;
    std::optional<VideoId> next_before;  // pass as `before` for the next page; empty on the last one
    std::size_t total = 0;
  };
  /// Newest first; `before` continues a previous page; `visible` (when given) leaves out the jobs it
  /// refuses, as if they did not exist (another token's jobs).
  Page list(std::size_t limit, const std::optional<VideoId>& before = std::nullopt,
            const std::function<bool(const JobView&)>& visible = {}) const;

  /// What a client that has seen everything up to `after` missed: every state change after it exactly,
  /// and only the latest progress of each rendition. Sorted by id. Empty for an unknown job.
  std::vector<VisibleEvent> events_after(const VideoId& id, EventId after) const;

  /// Calls `listener(video_id)` after each change to a job. Returns a handle for unlisten().
  using Listener = std::function<void(const VideoId&)>;
  std::uint64_t listen(Listener listener);
  /// Calls `listener(video_id)` after each change to one of `ids` only: a change costs nothing to the
  /// listeners of other jobs (thousands of SSE streams, each on its own job). Returns a handle for
  /// unlisten().
  std::uint64_t listen_to(const std::vector<VideoId>& ids, Listener listener);
  void unlisten(std::uint64_t handle);

  std::size_t size() const;

  /// How many jobs are in each state now (every state present, zeros included), for the metrics.
  std::map<JobState, std::size_t> count_by_state() const;

 private:
  struct Entry {
    JobView view;
    std::vector<VisibleEvent> state_changes;
    std::map<std::string, VisibleEvent, std::less<>> latest_progress;
  };

  std::vector<VisibleEvent> fold(Entry& entry, LogPosition position, const Event& event);

  mutable std::mutex mutex_;
  std::map<VideoId, Entry> jobs_;
  std::mutex listeners_mutex_;
  std::map<std::uint64_t, std::shared_ptr<const Listener>> listeners_;  // of every job
  std::multimap<VideoId, std::pair<std::uint64_t, std::shared_ptr<const Listener>>> job_listeners_;
  std::map<std::uint64_t, std::vector<VideoId>> watched_;  // what each job listener is filed under
  std::uint64_t next_listener_ = 1;
};

}  // namespace framepress
