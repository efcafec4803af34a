#pragma once
// The filesystem object store: each object is one file under a root directory, at the path of its key
// ("videos/<id>/source" → "<root>/videos/<id>/source"). Used by `framepress serve`.

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "store/object_store.h"

namespace framepress {

/// An ObjectStore in a local directory.
///
/// Atomicity: an object appears whole or not at all. Its bytes go to "<final>.tmp-<random>" in the same
/// directory, which is fsynced and then renamed over the final name (and the directory fsynced), so a
/// reader, a crash or a power loss sees either the previous object or the new one, never a part.
///
/// Keys: a key is relative, '/'-separated, with no empty, "." or ".." segment, no backslash and no
/// control character; anything else is refused with Error(bad_request, reason "bad_key"). Keys are made
/// by the server, so this is defence in depth: nothing is ever read or written outside the root.
///
/// Errors: a missing object is Error(not_found); a failed system call is Error(unavailable, reason
/// "storage_error", retryable) whose message names the path and the system's error, and nothing else.
///
/// Thread-safety: every method may be called from any thread; writers and readers are used by one
/// thread at a time. Content types are not kept (the API derives them from the key).
class FsObjectStore final : public ObjectStore {
 public:
  /// Uses `root` (created when missing) as the store. Throws Error(unavailable) when it cannot be created.
  explicit FsObjectStore(const std::filesystem::path& root);

  /// Creates the temporary file at once (so a full or read-only disk fails here, not at the first write)
  /// and streams into it through a fixed 1 MiB buffer. Destroying it uncommitted removes the temporary
  /// file. A writer whose write() failed refuses to commit.
  std::unique_ptr<ObjectWriter> create(const ObjectKey& key, std::string_view content_type) override;

  /// With `consume`, the file is renamed into place (no copy) when it is on the root's filesystem, else
  /// copied and then removed; without, it is copied. Either way the object appears atomically. The file
  /// is fsynced before it becomes visible.
  void put_file(const ObjectKey& key, const std::filesystem::path& path, std::string_view content_type,
                bool consume) override;

  /// True when `directory` is on the root's filesystem, where put_file with `consume` is a rename.
  bool adopts_files_from(const std::filesystem::path& directory) const override;

  /// Copies the object to `path` (whose directory must exist), atomically: `path` is complete or absent.
  /// A copy rather than a hard link, so that nothing done to the scratch file can change the stored
  /// object. The embedded worker avoids the copy altogether by reading local_path() in place.
  void fetch_to_file(const ObjectKey& key, const std::filesystem::path& path) override;

  /// The object's size, or nullopt when there is no object (a directory of keys is not an object).
  std::optional<ObjectInfo> stat(const ObjectKey& key) override;

  /// A reader of the object, or of `range` of it. The reader keeps the file open, so an object replaced
  /// or removed meanwhile is still read whole, as it was. Throws Error(not_found) when missing, and
  /// Error(bad_request, reason "range_not_satisfiable") when `range` does not lie within the object.
  std::unique_ptr<ObjectReader> open(const ObjectKey& key, std::optional<ByteRange> range) override;

  /// Removes every object whose key starts with `prefix` ("videos/<id>/"), then the directories left
  /// empty; the prefix's own directory too when it ends with '/'. Nothing to remove is no error. The
  /// prefix obeys the rules of keys, except that it may end with '/'.
  void remove_prefix(std::string_view prefix) override;

  /// "file://<root>".
  std::string describe() const override;

  /// The object's own file: the worker reads sources in place instead of copying them.
  std::optional<std::filesystem::path> readable_path(const ObjectKey& key) override;

  /// The file that holds `key` (whether or not it exists), for a reader in this process that wants the
  /// bytes in place, without a copy: the embedded worker hands it to ffmpeg. Throws Error(bad_request) for
  /// a key that is not valid. Read only: writing through it would bypass the store's atomicity.
  std::filesystem::path local_path(const ObjectKey& key) const;

  const std::filesystem::path& root() const noexcept { return root_; }

 private:
  /// Creates the directories from the root down to `dir`, making each new one durable.
  void ensure_directory(const std::filesystem::path& dir) const;

  std::filesystem::path root_;
};

}  // namespace framepress
