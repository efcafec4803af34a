#include "api/event_frames.h"

#include <algorithm>

#include "http/sse.h"

namespace framepress::api {

EventFrames::EventFrames(RenderData render_data, std::size_t capacity)
    : render_data_(std::move(render_data)), capacity_(std::max<std::size_t>(capacity, 1)) {}

EventFrames::Bytes EventFrames::data(const VisibleEvent& event) {
  std::lock_guard lock(mutex_);
  return get(event).data;
}

EventFrames::Bytes EventFrames::frame(const VisibleEvent& event) {
  std::lock_guard lock(mutex_);
  return get(event).frame;
}

std::size_t EventFrames::rendered() const {
  std::lock_guard lock(mutex_);
  return rendered_;
}

const EventFrames::Rendered& EventFrames::get(const VisibleEvent& event) {
  auto key = std::make_pair(event.event.video_id, event.id);
  if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  // Rendered under the lock: the subscribers that ask at the same moment wait for this one rendering
  // rather than each making its own.
  auto data = std::make_shared<const std::string>(render_data_(event));
  auto frame = std::make_shared<const std::string>(http::sse_event(std::to_string(event.id), sse_name(event.event), *data));
  ++rendered_;
  if (cache_.size() >= capacity_) {
    cache_.erase(order_.front());
    order_.pop_front();
  }
  order_.push_back(key);
  return cache_.emplace(std::move(key), Rendered{std::move(data), std::move(frame)}).first->second;
}

}  // namespace framepress::api
