#pragma once
// The events of a job, and their one JSON form. Workers and the API publish these on the event bus; the
// job book (job_book.h) folds them into the state every reader sees. docs/ARCHITECTURE.md lists each
// with its exact JSON.

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/ids.h"
#include "core/ladder.h"
#include "core/source_info.h"

namespace framepress {

/// Milliseconds since the Unix epoch.
using TimestampMs = std::int64_t;
TimestampMs now_ms();
std::string format_iso8601(TimestampMs at);

struct EncodingSettings {
  std::string video_codec = "libx264";
  std::string preset = "medium";
  int crf = 23;
  std::string audio_codec = "aac";
  int audio_bitrate_kbps = 128;
  auto operator<=>(const EncodingSettings&) const = default;
};
void to_json(nlohmann::json& j, const EncodingSettings& e);
void from_json(const nlohmann::json& j, EncodingSettings& e);

// ---- events published on the bus ---------------------------------------------------------------

/// A video was stored and probed; its renditions are planned and their tasks queued.
struct JobCreated {
  std::string filename;      // sanitized original name: metadata only, never part of a key
  ObjectKey source_key;
  SourceInfo source;
  std::vector<RenditionSpec> renditions;
  EncodingSettings encoding;
  std::string preset_name;   // the quality preset the upload chose
  std::string owner;         // who uploaded it (a token's name), empty when tokens are off
};

/// A worker began (or began again) to encode one rendition.
struct RenditionStarted {
  std::string rendition;
  int attempt = 1;
  std::string worker;
};

/// Live progress of one rendition. Coalesced: only the latest per rendition matters.
struct RenditionProgress {
  std::string rendition;
  double percent = 0;        // 0..100
  double fps = 0;
  double speed = 0;          // encoded media seconds per wall second
  double eta_seconds = -1;   // -1 when unknown
};

/// One rendition is encoded and stored.
struct RenditionDone {
  std::string rendition;
  ObjectKey key;
  std::uint64_t size = 0;
  std::int64_t bit_rate = 0;
  double duration = 0;
  int width = 0;
  int height = 0;
};

/// An attempt failed; `will_retry` says whether another attempt is queued.
struct RenditionFailed {
  std::string rendition;
  int attempt = 1;
  std::string reason;
  bool will_retry = false;
};

/// The user cancelled the job: running encodes are killed, queued ones skipped.
struct JobCancelled {};

/// The job and every object of it are gone.
struct JobDeleted {};

// ---- events the job book derives (never published; every reader derives the same) --------------

/// Every rendition is done.
struct JobCompleted {};
/// Every rendition has ended and at least one failed for good.
struct JobFailed {
  std::string rendition;
  std::string reason;
};

using EventPayload = std::variant<JobCreated, RenditionStarted, RenditionProgress, RenditionDone, RenditionFailed,
                                  JobCancelled, JobDeleted, JobCompleted, JobFailed>;

struct Event {
  VideoId video_id;
  TimestampMs at = 0;
  EventPayload payload;
};

/// "job.created", "rendition.progress", … : the `type` field of the JSON form.
std::string_view event_type(const Event& event);
/// The SSE event name: "created", "started", "progress", "rendition", "rendition_failed", "retrying",
/// "cancelled", "deleted", "completed", "failed".
std::string_view sse_name(const Event& event);
/// Whether the event changes state that a reconnecting client must not miss (everything but progress).
bool is_state_change(const Event& event);

nlohmann::json to_json(const Event& event);
/// Throws Error(bad_request) when `j` is not an event of a known type.
Event event_from_json(const nlohmann::json& j);

// ---- tasks --------------------------------------------------------------------------------------

/// One rendition to encode: everything a worker needs, so it reads no other state to do it.
struct RenditionTask {
  VideoId video_id;
  ObjectKey source_key;
  SourceInfo source;
  RenditionSpec rendition;
  EncodingSettings encoding;
  ObjectKey output_key;
  int attempt = 1;
};
nlohmann::json to_json(const RenditionTask& task);
/// Throws Error(bad_request) when `j` is not a task.
RenditionTask task_from_json(const nlohmann::json& j);

}  // namespace framepress
