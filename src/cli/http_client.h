#pragma once
// A small blocking HTTP client over libcurl, for the three things the command-line client does: GET JSON,
// upload a file as multipart streamed from disk, and read a Server-Sent Events stream as it arrives.
// libcurl stays behind a pimpl: no <curl/curl.h> for anyone who includes this.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace framepress::cli {

/// An HTTP answer. `body` is capped for streams (see HttpClient::stream) but complete otherwise.
struct HttpResponse {
  long status = 0;           ///< 0 when no answer arrived
  std::string content_type;  ///< the Content-Type header, empty when none
  std::string body;
};

/// How a stream ended.
struct StreamResult {
  enum class End {
    closed,       ///< the server ended the body: for SSE, a drop unless a terminal event came first
    stopped,      ///< on_data asked to stop
    failed,       ///< no answer or the connection broke (refused, reset, idle too long): `error` says
  };
  End end = End::failed;
  HttpResponse response;  ///< status and, for a non-2xx answer, its body (the API's error JSON)
  std::string error;      ///< libcurl's description when `end` is failed
};

/// One connection's worth of settings and a reusable libcurl easy handle.
///
/// Every request goes to `server` + path and carries `Authorization: Bearer <token>` when a token is set.
/// Only http and https are allowed, redirects are not followed (they would carry the token elsewhere).
///
/// Error rule: get() and upload() throw framepress::Error(unavailable, reason "unreachable", retryable)
/// when no HTTP answer arrives (connection refused, DNS, reset, timeout): the caller cannot do anything
/// but give up. Any HTTP status, including 4xx/5xx, is a value. stream() never throws for the network:
/// its caller reconnects, so a failure is a value there too.
///
/// Not thread-safe: one HttpClient a thread. Movable, not copyable.
class HttpClient {
 public:
  /// `server` is the base URL ("http://127.0.0.1:8080"); a trailing '/' is dropped.
  explicit HttpClient(std::string server, std::string token = {});
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// The base URL, without a trailing '/'.
  const std::string& server() const noexcept { return server_; }
  /// `server()` + `path`: the absolute URL of a path the API returned ("/api/videos/…").
  std::string url(std::string_view path) const;

  /// GET `path` (with its query), asking for JSON. Gives up after 60 s.
  HttpResponse get(std::string_view path);

  /// Called while uploading with the bytes sent so far and the bytes to send (0 when not yet known).
  using UploadProgress = std::function<void(std::uint64_t sent, std::uint64_t total)>;

  /// POSTs `file` as multipart/form-data, in the part named `field` with the file's name, to `path`.
  /// The file is read from disk as libcurl sends it, never held in memory, so its size does not matter.
  /// Throws Error(unavailable) as said above, and Error(bad_request, "unreadable_file") when libcurl
  /// cannot read the file.
  HttpResponse upload(std::string_view path, std::string_view field, const std::filesystem::path& file,
                      const UploadProgress& on_progress);

  /// Given each piece of a 2xx body as it arrives; returns false to stop reading.
  using OnData = std::function<bool(std::string_view piece)>;

  /// GETs `path` as an event stream and hands each piece of a 2xx body to `on_data` as it arrives, with
  /// `headers` ("Last-Event-ID: 42") added to the request. A non-2xx body is collected (up to 64 KiB)
  /// in the result instead. The connection is given up as `failed` when no byte arrives for
  /// `idle_timeout` (the server sends a heartbeat every 15 s, so silence means a dead connection).
  StreamResult stream(std::string_view path, const std::vector<std::string>& headers, const OnData& on_data,
                      std::chrono::seconds idle_timeout = std::chrono::seconds(45));

  /// Percent-encodes `text` for a query string or a path segment.
  static std::string escape(std::string_view text);

 private:
  struct Impl;
  std::string server_;
  std::string token_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace framepress::cli
