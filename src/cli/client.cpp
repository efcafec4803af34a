#include "cli/client.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/http_client.h"
#include "cli/job.h"
#include "cli/render.h"
#include "cli/sse_parser.h"
#include "core/error.h"
#include "core/ids.h"

namespace framepress::cli {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// A dropped stream is resumed this many times in a row (a connection that brings new events resets the
// count) with doubling pauses: about half a minute in all, enough for a server restart.
constexpr int kMaxReconnects = 6;
constexpr std::chrono::milliseconds kFirstBackoff{500};
constexpr std::chrono::milliseconds kMaxBackoff{8000};

std::string format_seconds(double seconds) {
  std::ostringstream out;
  out << seconds << " s";
  return out.str();
}

std::string job_path(const std::string& id) { return "/api/videos/" + id; }

std::string absolute(const HttpClient& http, std::string_view path) {
  if (path.starts_with("http://") || path.starts_with("https://")) return std::string(path);
  return http.url(path);
}

ProgressDisplay::Options display_options(std::ostream& err) {
  ProgressDisplay::Options options;
  options.terminal = is_terminal(err);
  options.columns = options.terminal ? terminal_columns() : 0;
  return options;
}

/// The exit code for an HTTP status that is not the one hoped for.
int exit_for(long status) {
  return status >= 400 && status < 500 ? exit_code::refused : exit_code::unavailable;
}

/// "<what>: <the API's message> (<code>, HTTP <status>)", from the API's {"error":{"code","message"}} when
/// the body is one, else from the status and the first line of whatever the body is.
void print_http_error(std::ostream& err, std::string_view what, const HttpResponse& response) {
  std::string message;
  std::string code;
  const json body = json::parse(response.body, nullptr, false);
  if (body.is_object() && body.contains("error") && body["error"].is_object()) {
    const auto& e = body["error"];
    if (e.contains("message") && e["message"].is_string()) message = e["message"].get<std::string>();
    if (e.contains("code") && e["code"].is_string()) code = e["code"].get<std::string>();
  }
  if (message.empty()) {
    message = response.body.substr(0, response.body.find('\n'));
    if (message.size() > 200) message = message.substr(0, 200) + "...";
    if (message.empty()) message = "no explanation given";
  }
  err << "error: " << what << ": " << message << " (";
  if (!code.empty()) err << code << ", ";
  err << "HTTP " << response.status << ")\n";
}

void print_no_such_video(std::ostream& err, const std::string& id) {
  err << "error: no such video: " << id << " (it never existed, or it was deleted)\n";
}

/// Reads a 2xx answer's body as JSON; throws Error(unavailable) when it is not, since a server that answers
/// nonsense is as good as none.
json parse_body(const HttpResponse& response) {
  json body = json::parse(response.body, nullptr, false);
  if (body.is_discarded()) {
    throw Error(ErrorCode::unavailable, "the server's answer is not JSON (HTTP " + std::to_string(response.status) +
                                            "); is this a framepress server?");
  }
  return body;
}

std::vector<std::string> rendition_names(const JobInfo& job) {
  std::vector<std::string> names;
  for (const auto& r : job.renditions) names.push_back(r.name);
  return names;
}

void show_rows(ProgressDisplay& display, const JobInfo& job) {
  for (const auto& r : job.renditions) display.update(rendition_row(r));
}

/// Follows the job's event stream until the job ends, keeping `job` and the display current. Returns
/// exit_code::ok when the job reached its end (its final state is in `job`, or, after a 204, to be fetched),
/// otherwise the exit code of why it could not be followed, with the reason on `err` (via the display).
int follow(HttpClient& http, JobInfo& job, ProgressDisplay& display, std::ostream& err) {
  const std::string path = job_path(job.id) + "/events";
  std::string last_id;
  int failures = 0;
  for (;;) {
    SseParser parser(last_id);
    bool ended = false;
    std::vector<std::string> headers;
    // No Last-Event-ID on the first connection: the snapshot is what sets the display up.
    if (!last_id.empty()) headers.push_back("Last-Event-ID: " + last_id);

    auto result = http.stream(path, headers, [&](std::string_view piece) {
      for (const auto& event : parser.feed(piece)) {
        const json data = json::parse(event.data, nullptr, false);
        if (data.is_discarded()) continue;  // not ours to judge: skip rather than stop following
        const auto before = rendition_names(job);
        const auto effect = apply_event(job, event.event, data);
        if (event.event == "snapshot") {
          // Rows already shown (from the upload's answer) are updated in place; only a different set of
          // renditions starts the block afresh.
          if (rendition_names(job) != before) display.clear();
          show_rows(display, job);
        } else {
          for (const auto& name : effect.changed) {
            if (const auto* r = job.rendition(name)) display.update(rendition_row(*r));
          }
        }
        if (!effect.message.empty()) display.message(effect.message);
        if (effect.terminal) {
          ended = true;
          return false;
        }
      }
      return true;
    });
    if (ended) return exit_code::ok;

    const long status = result.response.status;
    if (status == 204) return exit_code::ok;  // the job had ended before this connection: nothing to send
    if (status == 404) {
      display.finish();
      print_no_such_video(err, job.id);
      return exit_code::refused;
    }
    if (status >= 400 && status < 500 && status != 408 && status != 429) {
      display.finish();
      print_http_error(err, "the server refused the event stream", result.response);
      return exit_code::refused;
    }

    // Anything else is a drop: the server went away, restarted, or a proxy cut the connection.
    std::string why;
    if (result.end == StreamResult::End::failed) {
      why = result.error;
    } else if (status >= 200 && status < 300) {
      why = "the server closed the stream";
    } else {
      why = "HTTP " + std::to_string(status);
    }
    const bool progressed = parser.last_event_id() != last_id;
    // A connection that brought no id (the snapshot after the end has none) must not make the next one
    // start over from the snapshot: the id seen last is kept.
    if (!parser.last_event_id().empty()) last_id = parser.last_event_id();
    failures = progressed ? 1 : failures + 1;
    if (failures > kMaxReconnects) {
      display.finish();
      err << "error: lost the progress stream of " << job.id << " (" << why << "); gave up after " << kMaxReconnects
          << " attempts. Run `framepress status --follow " << job.id << "` to look again.\n";
      return exit_code::unavailable;
    }
    const auto backoff = std::min(kMaxBackoff, kFirstBackoff * (1 << std::min(failures - 1, 8)));
    display.message("progress stream interrupted (" + why + "); reconnecting in " +
                    format_seconds(std::chrono::duration<double>(backoff).count()));
    std::this_thread::sleep_for(backoff);
  }
}

/// GET the job's final state after following it, for the download URLs and in case the stream ended with
/// a 204. Keeps what the stream said when the fetch fails, so a completed job still prints its URLs.
/// Returns false (with the reason on `err`) when the job's end is not known at all. `raw` receives the
/// API's JSON when the fetch succeeded.
bool refresh_job(HttpClient& http, JobInfo& job, std::ostream& err, std::string& raw) {
  try {
    auto response = http.get(job_path(job.id));
    if (response.status == 200) {
      const auto id = job.id;
      job = parse_job(parse_body(response));
      raw = std::move(response.body);
      if (job.id.empty()) job.id = id;
    } else if (response.status == 404) {
      // Deleted after its end (or during it, and the stream said so already).
      if (!is_terminal_state(job.state)) job.state = "deleted";
    } else if (!is_terminal_state(job.state)) {
      print_http_error(err, "cannot read the job's final state", response);
      return false;
    }
  } catch (const Error& e) {
    if (!is_terminal_state(job.state)) {
      err << "error: " << e.what() << '\n';
      return false;
    }
    err << "warning: " << e.what() << "; the download URLs below are the API's default routes\n";
  }
  return true;
}

/// Prints the end of a followed job: the URLs on `out`, the outcome on `err`. Returns the exit code.
int report_outcome(const HttpClient& http, const JobInfo& job, std::ostream& out, std::ostream& err,
                   bool print_urls) {
  if (print_urls) {
    std::size_t width = 0;
    for (const auto& r : job.renditions) width = std::max(width, r.name.size());
    for (const auto& r : job.renditions) {
      if (r.state != "done") continue;
      std::string url = r.url.empty() ? job_path(job.id) + "/renditions/" + r.name : r.url;
      out << r.name << std::string(width - r.name.size() + 2, ' ') << absolute(http, url) << '\n';
    }
    out << std::flush;
  }
  if (job.state == "completed") {
    err << "video " << job.id << " completed: " << job.renditions.size() << " rendition"
        << (job.renditions.size() == 1 ? "" : "s") << '\n';
    return exit_code::ok;
  }
  err << "error: video " << job.id << " " << job.state;
  if (!job.error.empty()) err << ": " << job.error;
  err << '\n';
  return exit_code::job_failed;
}

/// What follow_to_end() prints on `out` once the job has ended.
enum class FinalOutput {
  urls,     ///< submit: one download URL per finished rendition
  summary,  ///< status --follow: the readable summary
  json,     ///< status --follow --json: the API's final job JSON as it is
};

/// Follows a job to its end and reports it. `job` holds what is known so far (at least the id).
int follow_to_end(HttpClient& http, JobInfo& job, std::ostream& out, std::ostream& err, FinalOutput output) {
  ProgressDisplay display(err, display_options(err));
  show_rows(display, job);
  if (!is_terminal_state(job.state)) {
    if (int code = follow(http, job, display, err); code != exit_code::ok) return code;
  }
  display.finish();
  std::string raw;
  if (!refresh_job(http, job, err, raw)) return exit_code::unavailable;
  if (output == FinalOutput::summary) out << format_job(job, http.server()) << std::flush;
  if (output == FinalOutput::json && !raw.empty()) {
    out << raw << (raw.ends_with('\n') ? "" : "\n") << std::flush;
  }
  return report_outcome(http, job, out, err, output == FinalOutput::urls);
}

/// Checks that `file` can be uploaded; prints why not and returns false otherwise.
bool check_file(const std::filesystem::path& file, std::ostream& err) {
  if (file.empty()) {
    err << "error: no file to upload\n";
    return false;
  }
  std::error_code ec;
  const auto st = std::filesystem::status(file, ec);
  if (ec || !std::filesystem::exists(st)) {
    err << "error: no such file: " << file.string() << '\n';
    return false;
  }
  if (std::filesystem::is_directory(st)) {
    err << "error: " << file.string() << " is a directory, not a video file\n";
    return false;
  }
  if (!std::filesystem::is_regular_file(st)) {
    // The multipart body needs the size up front; a pipe or a device has none.
    err << "error: " << file.string() << " is not a regular file\n";
    return false;
  }
  std::ifstream probe(file, std::ios::binary);
  if (!probe) {
    err << "error: cannot read " << file.string() << ": " << std::strerror(errno) << '\n';
    return false;
  }
  if (std::filesystem::file_size(file, ec) == 0 && !ec) {
    err << "error: " << file.string() << " is empty\n";
    return false;
  }
  return true;
}

std::string upload_path(const SubmitOptions& options) {
  std::string path = "/api/videos";
  char separator = '?';
  if (!options.renditions.empty()) {
    std::string list;
    for (const auto& name : options.renditions) {
      if (!list.empty()) list += ',';  // the separator stays literal: escaping it would merge the names
      list += HttpClient::escape(name);
    }
    path += separator + std::string("renditions=") + list;
    separator = '&';
  }
  if (!options.preset.empty()) path += separator + std::string("preset=") + HttpClient::escape(options.preset);
  return path;
}

/// Maps what escaped the work of a command to a message and an exit code: the CLI's side of the error rule.
template <typename Work>
int guarded(std::ostream& err, Work&& work) {
  try {
    return work();
  } catch (const Error& e) {
    err << "error: " << e.what() << '\n';
    if (e.reason() == "unreadable_file") return exit_code::usage;
    return exit_code::unavailable;  // unreachable, or the server sent what we cannot read
  } catch (const json::exception& e) {
    err << "error: the server's answer is not what framepress sends (" << e.what() << ")\n";
    return exit_code::unavailable;
  } catch (const std::exception& e) {
    err << "error: " << e.what() << '\n';
    return exit_code::internal;
  }
}

}  // namespace

int submit(const SubmitOptions& options, std::ostream& out, std::ostream& err) {
  for (const auto& name : options.renditions) {
    if (name.empty() || name.find(',') != std::string::npos) {
      err << "error: bad rendition name '" << name << "'\n";
      return exit_code::usage;
    }
  }
  if (!check_file(options.file, err)) return exit_code::usage;

  return guarded(err, [&] {
    HttpClient http(options.server, options.token);
    std::error_code ec;
    const std::uint64_t file_size = std::filesystem::file_size(options.file, ec);

    ProgressDisplay display(err, display_options(err));
    RateMeter meter;
    const auto upload_started = Clock::now();
    auto response = http.upload(upload_path(options), "video", options.file, [&](std::uint64_t sent, std::uint64_t total) {
      if (total == 0) total = file_size;  // libcurl knows the body's size only once it starts
      const auto now = Clock::now();
      meter.add(now, sent);
      ProgressRow row;
      row.label = "upload";
      if (sent < total || sent == 0) {
        row.state = "uploading";
        row.fraction = total > 0 ? static_cast<double>(sent) / static_cast<double>(total) : 0;
        const auto rate = meter.rate();
        const auto eta = eta_seconds(sent, total, rate);
        row.detail = human_bytes(sent) + " / " + human_bytes(total) + "  " + human_rate(rate.value_or(-1)) +
                     "  ETA " + format_clock(eta.value_or(-1));
      } else {
        row.state = "sent";
        row.fraction = 1;
        const std::chrono::duration<double> took = now - upload_started;
        row.detail = human_bytes(total) + " in " + format_clock(took.count()) +
                     "; the server is checking the video";
      }
      display.update(row);
    });
    display.finish();

    if (response.status < 200 || response.status >= 300) {
      print_http_error(err, response.status >= 400 && response.status < 500 ? "the server refused the upload"
                                                                               : "the upload failed",
                       response);
      return exit_for(response.status);
    }
    JobInfo job = parse_job(parse_body(response));
    const auto id = VideoId::parse(job.id);
    if (!id) throw Error(ErrorCode::unavailable, "the server accepted the upload but sent no valid job id");
    job.id = id->str();

    if (!options.wait) {
      out << job.id << "  " << http.url(job_path(job.id)) << '\n' << std::flush;
      return exit_code::ok;
    }
    err << "video " << job.id << ": " << job.renditions.size() << " rendition"
        << (job.renditions.size() == 1 ? "" : "s") << " queued\n";
    return follow_to_end(http, job, out, err, FinalOutput::urls);
  });
}

int status(const StatusOptions& options, std::ostream& out, std::ostream& err) {
  std::string id;
  if (!options.id.empty()) {
    const auto parsed = VideoId::parse(options.id);
    if (!parsed) {
      err << "error: '" << options.id << "' is not a video id (26 letters and digits, as submit printed)\n";
      return exit_code::usage;
    }
    id = parsed->str();
  }

  return guarded(err, [&] {
    HttpClient http(options.server, options.token);
    if (id.empty()) {
      auto response = http.get("/api/videos?limit=20");
      if (response.status != 200) {
        print_http_error(err, "cannot list the videos", response);
        return exit_for(response.status);
      }
      const json list = parse_body(response);
      if (options.json) {
        out << response.body;
        if (!response.body.ends_with('\n')) out << '\n';
      } else {
        out << format_job_list(list);
      }
      out << std::flush;
      return exit_code::ok;
    }

    auto response = http.get(job_path(id));
    if (response.status == 404) {
      print_no_such_video(err, id);
      return exit_code::refused;
    }
    if (response.status != 200) {
      print_http_error(err, "cannot read the video", response);
      return exit_for(response.status);
    }
    JobInfo job = parse_job(parse_body(response));
    if (job.id.empty()) job.id = id;

    if (options.follow) {
      return follow_to_end(http, job, out, err, options.json ? FinalOutput::json : FinalOutput::summary);
    }

    if (options.json) {
      out << response.body;
      if (!response.body.ends_with('\n')) out << '\n';
    } else {
      out << format_job(job, http.server());
    }
    out << std::flush;
    return exit_code::ok;
  });
}

}  // namespace framepress::cli
