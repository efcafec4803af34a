#pragma once
// The job as the command-line client knows it: read from the API's job JSON, kept current by the SSE
// events, and turned into progress rows and summaries. Pure: no I/O.
//
// The client is lenient where the server is strict: a missing or mistyped field reads as its default, so
// an older or newer server still gets a useful display instead of an error.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/render.h"

namespace framepress::cli {

struct RenditionInfo {
  std::string name;
  int width = 0;
  int height = 0;
  std::string state = "queued";  ///< queued, encoding, done, failed, cancelled
  int attempt = 0;
  double percent = 0;            ///< 0..100
  double fps = 0;
  double speed = 0;
  double eta_seconds = -1;       ///< -1 when unknown
  std::uint64_t size = 0;
  std::int64_t bit_rate = 0;
  double duration = 0;
  std::string url;               ///< the download path the API gave ("/api/videos/…"), empty until done
  std::string error;
};

struct JobInfo {
  std::string id;
  std::string state = "queued";  ///< queued, processing, completed, failed, cancelled; "deleted" too here
  std::string filename;
  std::string created_at;
  std::string updated_at;
  std::string preset;
  nlohmann::json source = nlohmann::json::object();    ///< as the API gave it
  nlohmann::json encoding = nlohmann::json::object();  ///< as the API gave it
  std::vector<RenditionInfo> renditions;
  std::string error;
  std::string last_event_id;

  RenditionInfo* rendition(std::string_view name);
  const RenditionInfo* rendition(std::string_view name) const;
};

/// Reads the API's job JSON. Throws nlohmann::json::exception only when `j` is not an object.
JobInfo parse_job(const nlohmann::json& j);

/// Whether a job in `state` will change no more ("completed", "failed", "cancelled", "deleted").
bool is_terminal_state(std::string_view state);

/// What an SSE event changed, for the display.
struct EventEffect {
  std::vector<std::string> changed;  ///< the renditions whose row must be updated
  std::string message;               ///< a line worth printing on its own ("720p: attempt 1 failed …")
  bool terminal = false;             ///< the job has ended: the stream is over
};

/// Applies the SSE event named `event` with its JSON `data` to `job` ("snapshot" replaces the whole job).
/// Unknown events change nothing, so a newer server's events don't break an older client.
EventEffect apply_event(JobInfo& job, std::string_view event, const nlohmann::json& data);

/// The progress row of a rendition: its state, its percent, and fps/speed/ETA while encoding, the size
/// when done, the error when failed.
ProgressRow rendition_row(const RenditionInfo& rendition);

/// A readable, multi-line summary of a job (for `status <id>`); `server` makes the download URLs absolute.
std::string format_job(const JobInfo& job, std::string_view server);

/// One table of recent jobs (for `status` without an id), from GET /api/videos's JSON.
std::string format_job_list(const nlohmann::json& list);

}  // namespace framepress::cli
