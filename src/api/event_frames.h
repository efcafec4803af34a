#pragma once
// The SSE text of each job event, made once and shared by every stream that sends it. With thousands of
// subscribers to one job, each serialising every event itself was most of the fan-out's cost
// (docs/BENCHMARKS.md, SSE fan-out).

#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "core/job_book.h"

namespace framepress::api {

/// A bounded cache of rendered events, keyed by job and event id (an id names one event of a job in
/// every process, so its text never changes). Thread-safe: any stream's coroutine may ask, on any thread;
/// an event is rendered once however many ask at the same moment. The bytes are immutable and shared, so
/// a stream keeps them alive only while it writes them.
class EventFrames {
 public:
  using Bytes = std::shared_ptr<const std::string>;

  /// The event's JSON as a stream sends it (its `data:`).
  using RenderData = std::function<std::string(const VisibleEvent&)>;

  /// Keeps the frames of the `capacity` most recently rendered events (at least one); an older one asked
  /// for again is rendered again.
  explicit EventFrames(RenderData render_data, std::size_t capacity = 4096);

  /// The event's JSON, the `data:` of its frame.
  Bytes data(const VisibleEvent& event);

  /// The whole frame of a one-job stream: `id:` the event id, `event:` its SSE name, `data:` its JSON.
  Bytes frame(const VisibleEvent& event);

  /// How many events were rendered (for tests).
  std::size_t rendered() const;

 private:
  struct Rendered {
    Bytes data;
    Bytes frame;
  };
  const Rendered& get(const VisibleEvent& event);

  RenderData render_data_;
  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::map<std::pair<VideoId, EventId>, Rendered> cache_;  // guarded by mutex_
  std::deque<std::pair<VideoId, EventId>> order_;          // guarded by mutex_: oldest first
  std::size_t rendered_ = 0;                               // guarded by mutex_
};

}  // namespace framepress::api
