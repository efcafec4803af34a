#include "core/job_book.h"

#include <algorithm>
#include <iterator>

#include <nlohmann/json.hpp>

namespace framepress {

std::string_view to_string(JobState state) {
  switch (state) {
    case JobState::queued: return "queued";
    case JobState::processing: return "processing";
    case JobState::completed: return "completed";
    case JobState::failed: return "failed";
    case JobState::cancelled: return "cancelled";
  }
  return "queued";
}

std::string_view to_string(RenditionState state) {
  switch (state) {
    case RenditionState::queued: return "queued";
    case RenditionState::encoding: return "encoding";
    case RenditionState::done: return "done";
    case RenditionState::failed: return "failed";
    case RenditionState::cancelled: return "cancelled";
  }
  return "queued";
}

bool is_terminal(JobState state) {
  return state == JobState::completed || state == JobState::failed || state == JobState::cancelled;
}

bool is_terminal(RenditionState state) {
  return state == RenditionState::done || state == RenditionState::failed || state == RenditionState::cancelled;
}

const RenditionView* JobView::rendition(std::string_view name) const {
  for (const auto& r : renditions) {
    if (r.spec.name == name) return &r;
  }
  return nullptr;
}

nlohmann::json to_json(const JobView& job,
                       const std::function<std::string(const JobView&, const RenditionView&)>& url_of) {
  nlohmann::json renditions = nlohmann::json::array();
  for (const auto& r : job.renditions) {
    nlohmann::json item{{"name", r.spec.name},
                        {"width", r.spec.width},
                        {"height", r.spec.height},
                        {"class", r.spec.worker_class},
                        {"state", to_string(r.state)},
                        {"attempt", r.attempt},
                        {"percent", r.percent},
                        {"fps", r.fps},
                        {"speed", r.speed},
                        {"eta_seconds", r.eta_seconds},
                        {"size", r.size},
                        {"bit_rate", r.bit_rate},
                        {"duration", r.duration}};
    item["url"] = r.state == RenditionState::done ? nlohmann::json(url_of(job, r)) : nlohmann::json(nullptr);
    item["error"] = r.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.error);
    renditions.push_back(std::move(item));
  }
  return nlohmann::json{{"id", job.id.str()},
                        {"state", to_string(job.state)},
                        {"filename", job.created.filename},
                        {"created_at", format_iso8601(job.created_at)},
                        {"updated_at", format_iso8601(job.updated_at)},
                        {"source", job.created.source},
                        {"preset", job.created.preset_name},
                        {"encoding", job.created.encoding},
                        {"renditions", std::move(renditions)},
                        {"error", job.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(job.error)},
                        {"last_event_id", std::to_string(job.last_event_id)}};
}

namespace {

RenditionView* find_rendition(JobView& view, std::string_view name) {
  for (auto& r : view.renditions) {
    if (r.spec.name == name) return &r;
  }
  return nullptr;
}

/// Applies the payload to the view. Returns false when the event changes nothing (a duplicate, or too
/// late), in which case no reader sees it.
struct Fold {
  JobView& view;
  TimestampMs at;

  bool operator()(const JobCreated&) const { return false; }  // a second creation of a known job
  bool operator()(const RenditionStarted& e) const {
    auto* r = find_rendition(view, e.rendition);
    if (r == nullptr || is_terminal(r->state)) return false;
    r->state = RenditionState::encoding;
    r->attempt = std::max(r->attempt, e.attempt);
    r->percent = 0;
    r->fps = 0;
    r->speed = 0;
    r->eta_seconds = -1;
    r->started_at = at;
    if (view.state == JobState::queued) view.state = JobState::processing;
    return true;
  }
  bool operator()(const RenditionProgress& e) const {
    auto* r = find_rendition(view, e.rendition);
    if (r == nullptr || r->state != RenditionState::encoding) return false;
    r->percent = e.percent;
    r->fps = e.fps;
    r->speed = e.speed;
    r->eta_seconds = e.eta_seconds;
    return true;
  }
  bool operator()(const RenditionDone& e) const {
    auto* r = find_rendition(view, e.rendition);
    if (r == nullptr || is_terminal(r->state)) return false;
    r->state = RenditionState::done;
    r->percent = 100;
    r->eta_seconds = 0;
    r->key = e.key;
    r->size = e.size;
    r->bit_rate = e.bit_rate;
    r->duration = e.duration;
    r->finished_at = at;
    r->error.clear();
    return true;
  }
  bool operator()(const RenditionFailed& e) const {
    auto* r = find_rendition(view, e.rendition);
    if (r == nullptr || is_terminal(r->state)) return false;
    r->attempt = std::max(r->attempt, e.attempt);
    r->error = e.reason;
    if (e.will_retry) {
      r->state = RenditionState::queued;
    } else {
      r->state = RenditionState::failed;
      r->finished_at = at;
    }
    return true;
  }
  bool operator()(const JobCancelled&) const {
    for (auto& r : view.renditions) {
      if (!is_terminal(r.state)) {
        r.state = RenditionState::cancelled;
        r.finished_at = at;
      }
    }
    view.state = JobState::cancelled;
    return true;
  }
  bool operator()(const JobDeleted&) const { return true; }
  bool operator()(const JobCompleted&) const { return false; }  // derived only, never taken from the log
  bool operator()(const JobFailed&) const { return false; }
};

/// The terminal event the job has just reached, if it has.
std::optional<EventPayload> derive_terminal(JobView& view) {
  if (is_terminal(view.state)) return std::nullopt;
  bool all_ended = std::all_of(view.renditions.begin(), view.renditions.end(),
                               [](const RenditionView& r) { return is_terminal(r.state); });
  if (!all_ended) return std::nullopt;
  for (const auto& r : view.renditions) {
    if (r.state == RenditionState::failed) {
      view.state = JobState::failed;
      view.error = r.spec.name + ": " + r.error;
      return JobFailed{r.spec.name, r.error};
    }
  }
  view.state = JobState::completed;
  return JobCompleted{};
}

}  // namespace

std::vector<VisibleEvent> JobBook::fold(Entry& entry, LogPosition position, const Event& event) {
  JobView& view = entry.view;
  const bool job_was_terminal = is_terminal(view.state);
  const bool is_delete = std::holds_alternative<JobDeleted>(event.payload);
  // After the end only a deletion changes anything: late progress, a finish after a cancel, a second
  // cancel are dropped here, so every reader ignores them alike.
  if (job_was_terminal && !is_delete) return {};
  if (!std::visit(Fold{view, event.at}, event.payload)) return {};

  std::vector<VisibleEvent> visible;
  VisibleEvent seen{position * 2, event};
  view.updated_at = event.at;
  view.last_event_id = seen.id;
  if (is_state_change(event)) {
    entry.state_changes.push_back(seen);
  } else {
    entry.latest_progress[std::get<RenditionProgress>(event.payload).rendition] = seen;
  }
  visible.push_back(std::move(seen));

  if (auto terminal = derive_terminal(view)) {
    VisibleEvent derived{position * 2 + 1, Event{event.video_id, event.at, std::move(*terminal)}};
    view.last_event_id = derived.id;
    entry.state_changes.push_back(derived);
    visible.push_back(std::move(derived));
  }
  return visible;
}

std::vector<VisibleEvent> JobBook::apply(LogPosition position, const Event& event) {
  std::vector<VisibleEvent> visible;
  {
    std::lock_guard lock(mutex_);
    auto it = jobs_.find(event.video_id);
    if (const auto* created = std::get_if<JobCreated>(&event.payload)) {
      if (it != jobs_.end()) return {};
      Entry entry;
      entry.view.id = event.video_id;
      entry.view.created_at = entry.view.updated_at = event.at;
      entry.view.created = *created;
      for (const auto& spec : created->renditions) entry.view.renditions.push_back(RenditionView{spec});
      VisibleEvent seen{position * 2, event};
      entry.view.last_event_id = seen.id;
      entry.state_changes.push_back(seen);
      visible.push_back(std::move(seen));
      jobs_.emplace(event.video_id, std::move(entry));
    } else {
      if (it == jobs_.end()) return {};  // before its creation or after its deletion
      visible = fold(it->second, position, event);
      if (std::holds_alternative<JobDeleted>(event.payload) && !visible.empty()) jobs_.erase(it);
    }
  }
  if (!visible.empty()) {
    // Shared pointers, not copies of the listeners (which may carry state), called outside the lock.
    std::vector<std::shared_ptr<const Listener>> to_call;
    {
      std::lock_guard lock(listeners_mutex_);
      auto [first, last] = job_listeners_.equal_range(event.video_id);
      to_call.reserve(listeners_.size() + static_cast<std::size_t>(std::distance(first, last)));
      for (const auto& [handle, listener] : listeners_) to_call.push_back(listener);
      for (auto it = first; it != last; ++it) to_call.push_back(it->second.second);
    }
    for (const auto& listener : to_call) (*listener)(event.video_id);
  }
  return visible;
}

std::optional<JobView> JobBook::get(const VideoId& id) const {
  std::lock_guard lock(mutex_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return std::nullopt;
  return it->second.view;
}

JobBook::Page JobBook::list(std::size_t limit, const std::optional<VideoId>& before,
                            const std::function<bool(const JobView&)>& visible) const {
  std::lock_guard lock(mutex_);
  Page page;
  for (const auto& [id, entry] : jobs_) page.total += !visible || visible(entry.view);
  auto it = before ? jobs_.lower_bound(*before) : jobs_.end();
  // ULIDs sort by creation time, so walking the map backwards is newest first.
  bool more = false;
  while (it != jobs_.begin()) {
    --it;
    if (visible && !visible(it->second.view)) continue;
    if (page.jobs.size() == limit) {
      more = true;
      break;
    }
    page.jobs.push_back(it->second.view);
  }
  if (more) page.next_before = page.jobs.back().id;
  return page;
}

std::vector<VisibleEvent> JobBook::events_after(const VideoId& id, EventId after) const {
  std::lock_guard lock(mutex_);
  std::vector<VisibleEvent> missed;
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return missed;
  const Entry& entry = it->second;
  auto first = std::upper_bound(entry.state_changes.begin(), entry.state_changes.end(), after,
                                [](EventId a, const VisibleEvent& e) { return a < e.id; });
  missed.assign(first, entry.state_changes.end());
  for (const auto& [name, progress] : entry.latest_progress) {
    const auto* r = entry.view.rendition(name);
    // Progress of a rendition that has since ended is stale: its ending event says more.
    if (progress.id > after && r != nullptr && r->state == RenditionState::encoding) missed.push_back(progress);
  }
  std::sort(missed.begin(), missed.end(), [](const VisibleEvent& a, const VisibleEvent& b) { return a.id < b.id; });
  return missed;
}

std::uint64_t JobBook::listen(Listener listener) {
  std::lock_guard lock(listeners_mutex_);
  auto handle = next_listener_++;
  listeners_.emplace(handle, std::make_shared<const Listener>(std::move(listener)));
  return handle;
}

std::uint64_t JobBook::listen_to(const std::vector<VideoId>& ids, Listener listener) {
  auto shared = std::make_shared<const Listener>(std::move(listener));
  std::vector<VideoId> unique = ids;
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  std::lock_guard lock(listeners_mutex_);
  auto handle = next_listener_++;
  for (const auto& id : unique) job_listeners_.emplace(id, std::make_pair(handle, shared));
  watched_.emplace(handle, std::move(unique));
  return handle;
}

void JobBook::unlisten(std::uint64_t handle) {
  std::lock_guard lock(listeners_mutex_);
  listeners_.erase(handle);
  auto watched = watched_.find(handle);
  if (watched == watched_.end()) return;
  for (const auto& id : watched->second) {
    auto [first, last] = job_listeners_.equal_range(id);
    for (auto it = first; it != last; ++it) {
      if (it->second.first == handle) {
        job_listeners_.erase(it);
        break;
      }
    }
  }
  watched_.erase(watched);
}

std::size_t JobBook::size() const {
  std::lock_guard lock(mutex_);
  return jobs_.size();
}

std::map<JobState, std::size_t> JobBook::count_by_state() const {
  std::map<JobState, std::size_t> counts;
  for (auto state : {JobState::queued, JobState::processing, JobState::completed, JobState::failed, JobState::cancelled}) {
    counts[state] = 0;
  }
  std::lock_guard lock(mutex_);
  for (const auto& [id, entry] : jobs_) ++counts[entry.view.state];
  return counts;
}

}  // namespace framepress
