#pragma once
// The S3 object store: objects in one bucket of any S3-compatible store (AWS S3, MinIO, SeaweedFS,
// Versity), reached with libcurl and its built-in SigV4 signing. Used by `framepress api` and `worker`.

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "store/object_store.h"
#include "store/s3/s3_options.h"

namespace framepress {

namespace s3 {
class S3Client;
}

/// An ObjectStore in an S3 bucket.
///
/// Start-up: the constructor checks the bucket (a one-key ListObjectsV2) and creates it when missing, so
/// a wrong configuration fails at start rather than at the first upload: Error(unavailable) with reason
/// "s3_forbidden" ("credentials were refused by <endpoint>") on 403, "s3_unreachable" ("cannot reach
/// <endpoint>") when no connection can be made, "s3_error" with S3's error code otherwise.
///
/// Streaming and memory: a writer holds one part (options.part_size) and streams the object into a
/// multipart upload part by part; put_file and fetch_to_file stream between the file and the network;
/// a reader holds one chunk of at most 4 MiB. Memory stays bounded whatever the object's size.
///
/// Failures: each request is tried again with exponential backoff and full jitter on 5xx, 503 SlowDown,
/// RequestTimeout, connection failures and timeouts (options.retry); other 4xx are final. A missing
/// object is Error(not_found); exhausted retries are Error(unavailable, retryable) with reason
/// "s3_unavailable" or "s3_unreachable"; 403 is "s3_forbidden"; other refusals are Error(internal,
/// "s3_error") with S3's code and message. The secret key never appears in a log or a message.
///
/// Connections: requests borrow libcurl easy handles from a pool owned by the store; each handle keeps
/// its connections open between requests, so consecutive requests reuse them (up to 32 idle handles).
///
/// Thread-safety: every method may be called from any thread at once. A writer or a reader is used by
/// one thread at a time; it keeps what it needs of the store alive, so it may outlive the store object.
class S3ObjectStore final : public ObjectStore {
 public:
  /// Connects to the bucket of `options` with `credentials`, creating the bucket when it is missing.
  /// Throws Error as described above.
  S3ObjectStore(S3Options options, S3Credentials credentials);
  ~S3ObjectStore() override;
  S3ObjectStore(const S3ObjectStore&) = delete;
  S3ObjectStore& operator=(const S3ObjectStore&) = delete;

  /// A writer that uploads each full part as it fills (CreateMultipartUpload at the first full part) and
  /// completes the upload on commit(); an object smaller than one part is sent with one PUT at commit().
  /// Destroying it uncommitted, or a failed commit(), aborts the multipart upload: nothing is left behind.
  /// After a failed write() the writer refuses to commit. Objects are limited to part_size × 10,000.
  std::unique_ptr<ObjectWriter> create(const ObjectKey& key, std::string_view content_type) override;

  /// Streams the file from disk: one PUT up to one part size, a multipart upload above (parts grown when
  /// needed to stay within 10,000). With `consume` the file is removed once the object is stored.
  void put_file(const ObjectKey& key, const std::filesystem::path& path, std::string_view content_type,
                bool consume) override;

  /// Streams the object into "<path>.part-<random>" beside `path` and renames it to `path` when complete,
  /// so `path` is whole or absent. A transfer cut off is resumed where it stopped (a ranged GET pinned to
  /// the object's ETag). Throws Error(not_found) when there is no object.
  void fetch_to_file(const ObjectKey& key, const std::filesystem::path& path) override;

  /// HEAD: the size, or nullopt when there is no object.
  std::optional<ObjectInfo> stat(const ObjectKey& key) override;

  /// A reader of the object or of `range` of it. open() checks the object (HEAD): Error(not_found) when
  /// missing, Error(bad_request, reason "range_not_satisfiable") when `range` lies outside it. The reader
  /// then fetches chunks of up to 4 MiB with ranged GETs pinned to the object's ETag (If-Match), so an
  /// object replaced while being read fails (Error(unavailable, retryable)) rather than mixing versions.
  std::unique_ptr<ObjectReader> open(const ObjectKey& key, std::optional<ByteRange> range) override;

  /// ListObjectsV2 (following continuation tokens) and DeleteObjects, 1,000 keys a request.
  void remove_prefix(std::string_view prefix) override;

  /// A presigned GET URL (SigV4 in the query) valid for `expiry` (1 s to 7 days, S3's limit), on
  /// options.public_endpoint when set, with a signed response-content-disposition that names the download
  /// `download_name` (none when empty). nullopt when options.presign is false. Computed locally: no request.
  std::optional<std::string> presigned_url(const ObjectKey& key, std::string_view download_name,
                                           std::chrono::seconds expiry) override;

  /// Always nullopt: objects are not local files.
  std::optional<std::filesystem::path> readable_path(const ObjectKey& key) override;

  /// "s3://bucket@host:port".
  std::string describe() const override;

 private:
  std::shared_ptr<s3::S3Client> client_;
};

}  // namespace framepress
