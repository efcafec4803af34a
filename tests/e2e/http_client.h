#pragma once
// A plain libcurl client for the end-to-end tests: what curl on the command line does, in code.

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace framepress::e2e {

struct HttpResponse {
  long status = 0;                              // 0: no answer (connection refused, reset)
  std::map<std::string, std::string> headers;   // names in lower case
  std::string body;
  nlohmann::json json() const { return nlohmann::json::parse(body); }
};

using HeaderList = std::vector<std::string>;   // "Name: value"

HttpResponse http_get(const std::string& url, const HeaderList& headers = {});
HttpResponse http_request(const std::string& method, const std::string& url, const std::string& body = "",
                          const HeaderList& headers = {});
/// A bodiless request signed with AWS SigV4 (libcurl's) as `access_key:secret_key`, for tests that look
/// into an S3 bucket themselves.
HttpResponse s3_request(const std::string& method, const std::string& url, const std::string& access_and_secret,
                        const HeaderList& headers = {});

struct FormPart {
  std::string name;
  std::string value;                       // a text field, or …
  std::filesystem::path file;              // … a file part, streamed from disk
  std::string filename;                    // the name sent for a file part (default: the file's own)
  std::string content_type;
};
HttpResponse upload_form(const std::string& url, const std::vector<FormPart>& parts);
/// Uploads `file` as the field "video".
HttpResponse upload_file(const std::string& url, const std::filesystem::path& file);
/// Sends `size` bytes produced by `fill` as a raw body (no file on disk needed).
HttpResponse upload_generated(const std::string& url, std::uint64_t size, const std::string& content_type,
                              const std::function<void(char* buffer, std::size_t length, std::uint64_t offset)>& fill);

struct SseEvent {
  std::string id;
  std::string event;
  std::string data;
  nlohmann::json json() const { return nlohmann::json::parse(data); }
};
struct SseResult {
  long status = 0;
  std::vector<SseEvent> events;
  std::vector<std::string> comments;
  bool closed_by_server = false;           // the server ended the stream
};
/// Reads an event stream until the server closes it, `stop(event)` returns true, or `timeout` passes.
SseResult read_sse(const std::string& url, const HeaderList& headers, const std::function<bool(const SseEvent&)>& stop,
                   std::chrono::seconds timeout);

}  // namespace framepress::e2e
