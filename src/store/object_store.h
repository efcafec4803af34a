#pragma once
// The object store: where sources and renditions live. Implementations: fs/ (a directory), s3/ (any
// S3-compatible store). Keys come from ObjectKey and never from user input. All calls block; the HTTP
// server calls them off its I/O threads. Failures are thrown as framepress::Error: not_found for a
// missing object, unavailable (retryable) when the store cannot be reached.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/ids.h"

namespace framepress {

struct ObjectInfo {
  std::uint64_t size = 0;
};

/// An inclusive byte range, as HTTP Range has it.
struct ByteRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  std::uint64_t length() const { return last - first + 1; }
};

/// Streams one object's bytes in. Nothing is visible under the key before commit(); destroying a writer
/// that was not committed discards what it wrote (an S3 multipart upload is aborted).
class ObjectWriter {
 public:
  virtual ~ObjectWriter() = default;
  virtual void write(std::span<const char> bytes) = 0;
  virtual void commit() = 0;
};

/// Streams one object's bytes (or one range of them) out.
class ObjectReader {
 public:
  virtual ~ObjectReader() = default;
  /// Fills `buffer` with the next bytes; returns how many, 0 at the end.
  virtual std::size_t read(std::span<char> buffer) = 0;
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  /// A writer for `key`; a committed object replaces any previous one whole (readers never see half).
  virtual std::unique_ptr<ObjectWriter> create(const ObjectKey& key, std::string_view content_type) = 0;

  /// Stores the local file `path` under `key`. With `consume` the file may be moved rather than copied.
  virtual void put_file(const ObjectKey& key, const std::filesystem::path& path, std::string_view content_type,
                        bool consume) = 0;

  /// Whether put_file(…, consume=true) takes over a file in `directory` without copying its bytes (a
  /// rename within one filesystem). The API asks this to choose how an upload reaches the store: spooled
  /// to `directory` and handed over whole after the probe, or streamed into create() while it arrives
  /// (so that a store that would copy, such as S3, has the upload when the request ends).
  virtual bool adopts_files_from(const std::filesystem::path& directory) const {
    (void)directory;
    return false;
  }

  /// Copies the object to the local file `path` (the worker's scratch copy of a source).
  virtual void fetch_to_file(const ObjectKey& key, const std::filesystem::path& path) = 0;

  virtual std::optional<ObjectInfo> stat(const ObjectKey& key) = 0;

  /// A reader of the object, or of `range` of it (which the caller has checked against stat()).
  virtual std::unique_ptr<ObjectReader> open(const ObjectKey& key, std::optional<ByteRange> range) = 0;

  /// Removes every object whose key starts with `prefix`. Removing nothing is no error.
  virtual void remove_prefix(std::string_view prefix) = 0;

  /// A URL a browser can download the object from directly, naming it `download_name`, or nullopt when
  /// the store has no such URLs (the API then streams the object itself).
  virtual std::optional<std::string> presigned_url(const ObjectKey& key, std::string_view download_name,
                                                   std::chrono::seconds expiry) {
    (void)key, (void)download_name, (void)expiry;
    return std::nullopt;
  }

  /// The object as a local file that may be read in place (the filesystem store), or nullopt when it
  /// must be fetched (fetch_to_file). Saves the embedded worker a copy of every source.
  virtual std::optional<std::filesystem::path> readable_path(const ObjectKey& key) {
    (void)key;
    return std::nullopt;
  }

  /// A description for logs, with no secret in it ("file:///var/lib/framepress", "s3://bucket@host").
  virtual std::string describe() const = 0;
};

}  // namespace framepress
