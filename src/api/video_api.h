#pragma once
// The HTTP API of framepress: upload, list, get, cancel, delete, downloads, live events, and the
// prototype's routes. It works only through the seams (EventBus, ObjectStore, Transcoder) and reads
// state from the job book, so it runs unchanged over the embedded bus or Kafka, a directory or S3.

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/thread_pool.hpp>

#include "api/access.h"
#include "api/event_frames.h"
#include "api/presets.h"
#include "bus/event_bus.h"
#include "core/job_book.h"
#include "http/server.h"
#include "media/transcoder.h"
#include "metrics/metrics.h"
#include "store/object_store.h"

namespace framepress::api {

struct ApiOptions {
  std::filesystem::path scratch_dir;              // uploads are spooled here for probing
  LadderPolicy ladder;
  std::vector<QualityPreset> presets;             // the first is the default
  std::uint64_t max_upload_bytes = 20ULL << 30;
  MediaLimits limits;
  std::chrono::seconds heartbeat{15};
  std::chrono::seconds presign_expiry{3600};
  std::string bucket = "framepress";              // the prototype's `bucket` field
  int blocking_threads = 4;                       // threads for store, probe and bus calls
  AccessControl access;                           // tokens; off by default
  metrics::Metrics* metrics = nullptr;            // uploads and open streams are counted here; null: nowhere
};

/// Thread-safe; lives as long as the server that routes to it.
class VideoApi {
 public:
  VideoApi(EventBus& bus, ObjectStore& store, Transcoder& transcoder, JobBook& book, ApiOptions options);
  ~VideoApi();
  VideoApi(const VideoApi&) = delete;
  VideoApi& operator=(const VideoApi&) = delete;

  void add_routes(http::Router& router);
  /// /readyz answers 200 from now on (called once the event log has been replayed into the book).
  void set_ready() { ready_ = true; }

  /// The download path of a rendition, as the job JSON shows it.
  static std::string rendition_path(const VideoId& id, std::string_view rendition);

 private:
  struct WriterDisposal;
  struct Upload;
  boost::asio::awaitable<Upload> receive_upload(http::Exchange& ex, bool prototype_route);
  /// Hands the bytes gathered so far to the store's writer once a batch is full, or all of them when
  /// `last`; a no-op when the store takes the scratch file over instead.
  boost::asio::awaitable<void> forward_to_store(Upload& upload, bool last);
  boost::asio::awaitable<JobView> accept_upload(http::Exchange& ex, Upload& upload);
  boost::asio::awaitable<std::optional<JobView>> await_book(http::Exchange& ex, const VideoId& id,
                                                            const std::function<bool(const std::optional<JobView>&)>& done);

  boost::asio::awaitable<void> upload(http::Exchange& ex);
  boost::asio::awaitable<void> list(http::Exchange& ex);
  boost::asio::awaitable<void> get(http::Exchange& ex);
  boost::asio::awaitable<void> cancel(http::Exchange& ex);
  boost::asio::awaitable<void> remove(http::Exchange& ex);
  boost::asio::awaitable<void> source(http::Exchange& ex);
  boost::asio::awaitable<void> rendition(http::Exchange& ex);
  boost::asio::awaitable<void> events(http::Exchange& ex);
  boost::asio::awaitable<void> multi_events(http::Exchange& ex);
  boost::asio::awaitable<void> presets(http::Exchange& ex);
  boost::asio::awaitable<void> prototype_upload(http::Exchange& ex);
  boost::asio::awaitable<void> prototype_status(http::Exchange& ex);

  boost::asio::awaitable<void> serve_object(http::Exchange& ex, const ObjectKey& key, std::string content_type,
                                            std::string disposition);
  /// The caller, who must hold `scope`. Throws Error(unauthorized/forbidden).
  Principal caller(const http::Exchange& ex, Scope scope) const;
  /// The job of the route's {id}, if the caller may see it; others' jobs are as absent as unknown ones.
  JobView job_or_404(const http::Exchange& ex, const Principal& who) const;
  nlohmann::json job_json(const JobView& job) const;
  nlohmann::json event_json(const VisibleEvent& event) const;

  EventBus& bus_;
  ObjectStore& store_;
  Transcoder& transcoder_;
  JobBook& book_;
  ApiOptions options_;
  boost::asio::thread_pool blocking_;
  EventFrames frames_;  // after options_: it renders with event_json()
  std::atomic<bool> ready_{false};
  std::unique_ptr<metrics::Metrics> unobserved_metrics_;  // counts nobody reads, when no metrics were given
  metrics::Metrics& metrics_;
};

}  // namespace framepress::api
