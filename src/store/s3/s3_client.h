#pragma once
// The HTTP layer of the S3 store (internal to src/store/s3): libcurl easy handles in a pool, one request
// signed by libcurl's SigV4, and the retry loop. No S3 operation logic here; s3_object_store.cpp has it.
// curl/curl.h stays out of this header (shaka-packager's `typedef void CURL` pattern).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "store/s3/s3_options.h"

typedef void CURL;  // NOLINT: libcurl's own type for an easy handle is an opaque `void`

namespace framepress::s3 {

struct CurlDelete {
  void operator()(CURL* handle) const noexcept;
};
using CurlHandle = std::unique_ptr<CURL, CurlDelete>;

/// Idle easy handles. Each handle keeps its own connection cache, and curl_easy_reset() keeps it, so a
/// request made with a handle that was used before reuses that handle's open connection. A request
/// borrows a handle for its duration, so concurrent requests from several threads each have their own.
/// Thread-safe.
class CurlPool {
 public:
  explicit CurlPool(std::size_t max_idle) : max_idle_(max_idle) {}
  CurlHandle acquire();
  /// Returns a handle; past max_idle the handle (and its connections) is closed instead.
  void release(CurlHandle handle);

 private:
  std::mutex mutex_;
  std::vector<CurlHandle> idle_;
  std::size_t max_idle_;
};

/// A request body: bytes in memory, or a byte range of an open file (read with pread, so a retry can
/// send it again without holding it in memory).
struct RequestBody {
  std::string_view memory;
  int fd = -1;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;

  std::uint64_t size() const { return fd >= 0 ? length : memory.size(); }
};

struct Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;                            // unless a sink took it; error bodies are capped at 1 MiB

  bool ok() const { return status >= 200 && status < 300; }
  std::string header(const std::string& lower_case_name) const;
  /// The <Code> of an S3 error body, or "" when there is none.
  std::string error_code() const;
  /// "HTTP 403 AccessDenied: Access Denied" for messages.
  std::string summary() const;
};

struct Request {
  std::string method = "GET";  // GET, HEAD, PUT, POST, DELETE
  std::string url;             // path already URI-encoded, query already canonical (s3_sigv4.h)
  std::vector<std::string> headers;
  RequestBody body;
  /// x-amz-content-sha256: the hex SHA-256 of the body, or UNSIGNED-PAYLOAD for a streamed one.
  /// libcurl signs with the value of this header (it cannot hash a body it reads through a callback).
  std::string payload_hash;
  /// Takes the body of a 2xx answer as it arrives, instead of Response::body; `head` has the status
  /// (200 or 206) and the headers. May throw; the transfer is then abandoned and send() rethrows it.
  std::function<void(const Response& head, std::string_view bytes)> sink;
};

/// Sends S3 requests to one endpoint with one identity. Thread-safe; cheap to share.
class S3Client {
 public:
  S3Client(S3Options options, S3Credentials credentials);
  ~S3Client();

  const S3Options& options() const { return options_; }
  const S3Credentials& credentials() const { return credentials_; }
  /// "s3://bucket@host[:port]": for logs and messages; no secret in it.
  const std::string& description() const { return description_; }

  /// The URL of `key` in the bucket (the bucket itself when `key` is empty), with `query` (canonical,
  /// from canonical_query()) appended when not empty. `origin` replaces the endpoint (presigned URLs).
  std::string url(std::string_view key, std::string_view query = {}) const;
  /// The path part of url() (what SigV4 signs as the canonical URI), for `key`.
  std::string path(std::string_view key) const;
  /// The origin ("scheme://host[:port]") of url(): the endpoint, or bucket.host when virtual-hosted.
  std::string origin(const std::string& endpoint) const;

  /// Sends the request that `make(attempt)` builds (attempt is 1-based, so a resumed download can ask for
  /// the bytes it still lacks), trying again with backoff on transient failures (s3_retry.h). Returns the
  /// first answer that is a success or not worth retrying; the caller judges its status. Throws
  /// Error(unavailable, retryable) when attempts run out: reason "s3_unreachable" when the endpoint could
  /// not be reached, "s3_unavailable" otherwise. `what` names the operation in logs and messages.
  Response send(std::string_view what, const std::function<Request(int attempt)>& make);

  /// The Error for an answer that was not a success: 403 → "s3_forbidden" ("credentials were refused
  /// by <endpoint>"), 404 NoSuchKey / a HEAD 404 → not_found, NoSuchBucket → "s3_no_bucket",
  /// NoSuchUpload → "s3_upload_lost" (retryable), retryable statuses → unavailable ("s3_unavailable"),
  /// anything else → internal with S3's code and message ("s3_error").
  [[noreturn]] void fail(std::string_view what, const Response& response) const;

 private:
  S3Options options_;
  S3Credentials credentials_;
  std::string description_;
  std::string sigv4_;    // "aws:amz:<region>:s3"
  std::string userpwd_;  // "<access>:<secret>" for CURLOPT_USERPWD
  CurlPool pool_;
};

/// The text of every <tag>…</tag> element in `xml`, in order, entities decoded. S3's answers are flat
/// enough that this is all the XML reading the store needs.
std::vector<std::string> xml_values(std::string_view xml, std::string_view tag);
/// `text` with & < > " ' escaped, for XML request bodies.
std::string xml_escape(std::string_view text);

}  // namespace framepress::s3
