#pragma once
// The command-line client: `framepress submit` and `framepress status`, over the HTTP API with libcurl.

#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

namespace framepress::cli {

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
int submit(const SubmitOptions& options, std::ostream& out, std::ostream& err);

struct StatusOptions {
  std::string server = "http://127.0.0.1:8080";
  std::string id;                       // empty: list recent jobs
  std::string token;
  bool follow = false;                  // follow the job's progress until it ends
  bool json = false;                    // print the API's JSON as it is
};

/// Prints one job's state (or the recent jobs). Returns 0, or non-zero with the reason on `err`.
int status(const StatusOptions& options, std::ostream& out, std::ostream& err);

}  // namespace framepress::cli
