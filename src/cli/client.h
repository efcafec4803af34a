#pragma once
// The command-line client: `framepress submit` and `framepress status`, over the HTTP API with libcurl.

#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

namespace framepress::cli {

/// The exit codes of submit() and status(), so scripts can tell what went wrong.
namespace exit_code {
inline constexpr int ok = 0;
inline constexpr int internal = 1;     ///< a bug or an unexpected local failure
inline constexpr int usage = 2;        ///< bad options, or the local file is missing, empty or unreadable
inline constexpr int refused = 3;      ///< the server refused the request (4xx): not a video, no such id, …
inline constexpr int job_failed = 4;   ///< the job failed, or was cancelled or deleted
inline constexpr int unavailable = 5;  ///< the server is unreachable, answered 5xx, or answered nonsense
}  // namespace exit_code

struct SubmitOptions {
  std::string server = "http://127.0.0.1:8080";
  std::filesystem::path file;
  std::vector<std::string> renditions;  // empty: the server's default ladder
  std::string preset;                   // empty: the server's default
  std::string token;                    // bearer token, when the server wants one
  bool wait = true;                     // follow the job's progress until it ends
};

/// Uploads `file` with a progress bar (bytes, speed, ETA), then follows the job's SSE stream with one
/// progress bar per rendition, and prints the download URLs. Returns the process exit code: 0 when the
/// job completed, non-zero (with the reason on `err`) otherwise. Bars are redrawn in place when `err` is a
/// terminal, printed as plain lines otherwise.
///
/// On `out`: with `wait`, one line per finished rendition, "<name>  <absolute download URL>"; without,
/// "<id>  <absolute job URL>". Everything else (progress, warnings, errors) goes to `err`. A dropped event
/// stream is resumed with Last-Event-ID a few times with back-off. Exit codes: see exit_code.
/// Blocking; safe to call from several threads at once (each call has its own connection).
int submit(const SubmitOptions& options, std::ostream& out, std::ostream& err);

struct StatusOptions {
  std::string server = "http://127.0.0.1:8080";
  std::string id;                       // empty: list recent jobs
  std::string token;
  bool follow = false;                  // follow the job's progress until it ends
  bool json = false;                    // print the API's JSON as it is
};

/// Prints one job's state (or the recent jobs). Returns 0, or non-zero with the reason on `err`.
///
/// With an id: a readable summary (or the API's JSON with `json`) on `out`; an unknown id is
/// exit_code::refused with "no such video". With `follow`, progress bars on `err` until the job ends, then
/// the summary, and the exit code of the job's outcome as submit() gives it (job_failed unless completed).
/// Without an id: a table of the 20 most recent jobs (or the API's list JSON).
int status(const StatusOptions& options, std::ostream& out, std::ostream& err);

}  // namespace framepress::cli
