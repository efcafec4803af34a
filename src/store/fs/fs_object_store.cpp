#include "store/fs/fs_object_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <random>
#include <system_error>
#include <utility>

#include <spdlog/spdlog.h>

#include "core/error.h"

namespace framepress {
namespace {

namespace fs = std::filesystem;

/// The one buffer size for streaming: memory stays flat whatever the object's size.
constexpr std::size_t kBufferSize = std::size_t{1} << 20;
/// Longest key segment: a file name is at most 255 bytes, and the temporary name adds ".tmp-" and 16 hex
/// digits. Longer segments are refused as bad keys rather than failing later as an I/O error that
/// claims to be retryable.
constexpr std::size_t kMaxSegment = 200;
/// Attempts at a fresh temporary name before giving up (a collision of 64 random bits is not expected).
constexpr int kTempAttempts = 4;

std::string describe_errno(int error) { return std::generic_category().message(error); }

/// A system call failed on `path`. The message names the path and the system's error only.
[[noreturn]] void throw_io(std::string_view what, const fs::path& path, int error) {
  throw Error(ErrorCode::unavailable,
              "object store: " + std::string(what) + " " + path.string() + ": " + describe_errno(error),
              "storage_error", true);
}

[[noreturn]] void throw_not_found(const ObjectKey& key) {
  throw Error(ErrorCode::not_found, "object store: no object " + key.str(), "not_found");
}

/// Refuses what could point outside the root or be read two ways; a segment becomes a file name, and
/// its temporary twin's name must still fit the file system's 255 bytes.
void validate_key(std::string_view key, bool prefix) { check_object_key(key, prefix, 0, kMaxSegment); }

/// An owned file descriptor. Not copyable; closed once.
class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() { reset(); }
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  /// Closes and reports the error of the close, which is where some filesystems (NFS) report a failed
  /// write. 0 on success, else the errno.
  int close_checked() noexcept {
    int rc = ::close(std::exchange(fd_, -1));
    return rc == 0 ? 0 : errno;
  }

 private:
  int fd_ = -1;
};

FileDescriptor open_read(const fs::path& path) { return FileDescriptor(::open(path.c_str(), O_RDONLY | O_CLOEXEC)); }

void write_all(int fd, const char* data, std::size_t size, const fs::path& path) {
  while (size > 0) {
    auto n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_io("cannot write", path, errno);
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

void sync_file(int fd, const fs::path& path) {
  if (::fsync(fd) != 0) throw_io("cannot sync", path, errno);
}

/// Makes a rename or a new entry in `dir` durable: without it, a power loss may forget the entry even
/// though the file's data was synced.
void sync_directory(const fs::path& dir) {
  FileDescriptor fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) throw_io("cannot open directory", dir, errno);
  sync_file(fd.get(), dir);
}

/// Copies everything from `in` to `out` through one fixed buffer.
void copy_contents(int in, const fs::path& in_path, int out, const fs::path& out_path) {
  auto buffer = std::make_unique<char[]>(kBufferSize);
  for (;;) {
    auto n = ::read(in, buffer.get(), kBufferSize);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_io("cannot read", in_path, errno);
    }
    if (n == 0) return;
    write_all(out, buffer.get(), static_cast<std::size_t>(n), out_path);
  }
}

std::string random_suffix() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(rng()));
  return text;
}

/// "<final>.tmp-<random>" beside the final file (a rename is atomic only within one filesystem, and the
/// same directory is surely the same one), removed on destruction unless renamed into place.
class TempFile {
 public:
  explicit TempFile(fs::path final_path) : final_(std::move(final_path)) {
    for (int attempt = 0; attempt < kTempAttempts; ++attempt) {
      path_ = final_;
      path_ += ".tmp-" + random_suffix();
      // O_EXCL: never write into a file someone else has open.
      fd_ = FileDescriptor(::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
      if (fd_) return;
      if (errno != EEXIST) throw_io("cannot create", path_, errno);
    }
    throw_io("cannot create", path_, EEXIST);
  }
  ~TempFile() {
    if (done_) return;
    fd_.reset();
    if (::unlink(path_.c_str()) != 0 && errno != ENOENT) {
      spdlog::warn("object store: cannot remove {}: {}", path_.string(), describe_errno(errno));
    }
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  int fd() const noexcept { return fd_.get(); }
  const fs::path& path() const noexcept { return path_; }

  /// Renames the file over the final name. `durable`: data and directory entry are synced first and after,
  /// so the object survives a power loss (objects); without, only the atomicity (scratch copies).
  void commit(bool durable) {
    if (durable) sync_file(fd_.get(), path_);
    if (int error = fd_.close_checked(); error != 0) throw_io("cannot write", path_, error);
    if (::rename(path_.c_str(), final_.c_str()) != 0) throw_io("cannot rename into place", final_, errno);
    done_ = true;
    if (durable) sync_directory(final_.parent_path());
  }

 private:
  fs::path final_;
  fs::path path_;
  FileDescriptor fd_;
  bool done_ = false;
};

class FsObjectWriter final : public ObjectWriter {
 public:
  explicit FsObjectWriter(fs::path final_path)
      : temp_(std::move(final_path)), buffer_(std::make_unique<char[]>(kBufferSize)) {}

  void write(std::span<const char> bytes) override {
    check_usable();
    try {
      if (used_ == 0 && bytes.size() >= kBufferSize) {
        // A big chunk with nothing pending: straight to the file, no copy through the buffer.
        write_all(temp_.fd(), bytes.data(), bytes.size(), temp_.path());
        return;
      }
      while (!bytes.empty()) {
        auto n = std::min(bytes.size(), kBufferSize - used_);
        std::copy_n(bytes.data(), n, buffer_.get() + used_);
        used_ += n;
        bytes = bytes.subspan(n);
        if (used_ == kBufferSize) flush();
      }
    } catch (...) {
      // Part of the bytes may be in the file: committing now would store a hole.
      failed_ = true;
      throw;
    }
  }

  void commit() override {
    check_usable();
    try {
      flush();
      temp_.commit(true);
      committed_ = true;
    } catch (...) {
      failed_ = true;
      throw;
    }
  }

 private:
  void check_usable() const {
    if (committed_) throw Error(ErrorCode::internal, "object store: writer used after commit");
    if (failed_) throw Error(ErrorCode::internal, "object store: writer used after a failed write");
  }

  void flush() {
    write_all(temp_.fd(), buffer_.get(), used_, temp_.path());
    used_ = 0;
  }

  TempFile temp_;
  std::unique_ptr<char[]> buffer_;
  std::size_t used_ = 0;
  bool committed_ = false;
  bool failed_ = false;
};

class FsObjectReader final : public ObjectReader {
 public:
  FsObjectReader(FileDescriptor fd, fs::path path, std::uint64_t offset, std::uint64_t length)
      : fd_(std::move(fd)), path_(std::move(path)), offset_(offset), remaining_(length) {
    // Objects are streamed front to back: let the kernel read ahead generously.
    ::posix_fadvise(fd_.get(), static_cast<off_t>(offset), static_cast<off_t>(length), POSIX_FADV_SEQUENTIAL);
  }

  std::size_t read(std::span<char> buffer) override {
    if (remaining_ == 0 || buffer.empty()) return 0;
    auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), remaining_));
    for (;;) {
      // pread: the range is read by offset, so nothing outside it is ever returned.
      auto n = ::pread(fd_.get(), buffer.data(), want, static_cast<off_t>(offset_));
      if (n < 0) {
        if (errno == EINTR) continue;
        throw_io("cannot read", path_, errno);
      }
      if (n == 0) {
        // Objects are replaced by rename, never truncated in place, so this is someone else's doing.
        throw Error(ErrorCode::unavailable, "object store: " + path_.string() + " is shorter than it was",
                    "storage_error", true);
      }
      offset_ += static_cast<std::uint64_t>(n);
      remaining_ -= static_cast<std::uint64_t>(n);
      return static_cast<std::size_t>(n);
    }
  }

 private:
  FileDescriptor fd_;
  fs::path path_;
  std::uint64_t offset_;
  std::uint64_t remaining_;
};

}  // namespace

FsObjectStore::FsObjectStore(const fs::path& root) {
  std::error_code error;
  fs::create_directories(root, error);
  if (!error) root_ = fs::canonical(root, error);  // absolute and exact, for describe() and local_path()
  if (error) {
    throw Error(ErrorCode::unavailable, "object store: cannot use " + root.string() + ": " + error.message(),
                "storage_error", true);
  }
}

std::optional<fs::path> FsObjectStore::readable_path(const ObjectKey& key) {
  auto path = local_path(key);
  std::error_code error;
  if (!fs::is_regular_file(path, error)) return std::nullopt;
  return path;
}

fs::path FsObjectStore::local_path(const ObjectKey& key) const {
  validate_key(key.str(), false);
  return root_ / key.str();
}

void FsObjectStore::ensure_directory(const fs::path& dir) const {
  // Component by component from the root, so each directory made here is synced into its parent:
  // create_directories() would not say which ones it made.
  fs::path current = root_;
  for (const auto& part : dir.lexically_relative(root_)) {
    if (part == ".") continue;
    auto parent = current;
    current /= part;
    if (::mkdir(current.c_str(), 0755) == 0) {
      sync_directory(parent);
    } else if (errno != EEXIST) {
      throw_io("cannot create directory", current, errno);
    }
  }
}

std::unique_ptr<ObjectWriter> FsObjectStore::create(const ObjectKey& key, std::string_view /*content_type*/) {
  auto target = local_path(key);
  ensure_directory(target.parent_path());
  return std::make_unique<FsObjectWriter>(std::move(target));
}

void FsObjectStore::put_file(const ObjectKey& key, const fs::path& path, std::string_view /*content_type*/,
                             bool consume) {
  auto target = local_path(key);
  auto source = open_read(path);
  if (!source) throw_io("cannot open", path, errno);
  struct stat info {};
  if (::fstat(source.get(), &info) != 0) throw_io("cannot stat", path, errno);
  if (!S_ISREG(info.st_mode)) {
    throw Error(ErrorCode::internal, "object store: " + path.string() + " is not a regular file");
  }
  ensure_directory(target.parent_path());

  if (consume) {
    // The data must be on disk before the rename shows it under the key: otherwise a power loss could
    // leave the key naming an empty file (delayed allocation). The rename itself is atomic: a reader sees
    // the previous object or this one.
    sync_file(source.get(), path);
    if (::rename(path.c_str(), target.c_str()) == 0) {
      sync_directory(target.parent_path());
      return;
    }
    if (int error = errno; error != EXDEV) throw_io("cannot move " + path.string() + " to", target, error);
    // Another filesystem (e.g. scratch on a tmpfs): copy as below, then drop the source.
  }

  TempFile temp(target);
  copy_contents(source.get(), path, temp.fd(), temp.path());
  temp.commit(true);
  if (consume && ::unlink(path.c_str()) != 0 && errno != ENOENT) {
    spdlog::warn("object store: stored {} but cannot remove {}: {}", key.str(), path.string(), describe_errno(errno));
  }
}

bool FsObjectStore::adopts_files_from(const fs::path& directory) const {
  // Same device, same filesystem: rename() works (bind mounts of one filesystem aside, where put_file
  // falls back to a copy on EXDEV anyway).
  struct stat here {};
  struct stat root {};
  return ::stat(directory.c_str(), &here) == 0 && ::stat(root_.c_str(), &root) == 0 && here.st_dev == root.st_dev;
}

void FsObjectStore::fetch_to_file(const ObjectKey& key, const fs::path& path) {
  auto from = local_path(key);
  auto source = open_read(from);
  if (!source) {
    if (errno == ENOENT || errno == ENOTDIR) throw_not_found(key);
    throw_io("cannot open", from, errno);
  }
  // A scratch copy: atomic, so a half copy never passes for the source, but not synced (a crash discards
  // the scratch directory anyway).
  TempFile temp(path);
  copy_contents(source.get(), from, temp.fd(), temp.path());
  temp.commit(false);
}

std::optional<ObjectInfo> FsObjectStore::stat(const ObjectKey& key) {
  auto path = local_path(key);
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    throw_io("cannot stat", path, errno);
  }
  if (!S_ISREG(info.st_mode)) return std::nullopt;
  return ObjectInfo{static_cast<std::uint64_t>(info.st_size)};
}

std::unique_ptr<ObjectReader> FsObjectStore::open(const ObjectKey& key, std::optional<ByteRange> range) {
  auto path = local_path(key);
  auto fd = open_read(path);
  if (!fd) {
    if (errno == ENOENT || errno == ENOTDIR) throw_not_found(key);
    throw_io("cannot open", path, errno);
  }
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) throw_io("cannot stat", path, errno);
  if (!S_ISREG(info.st_mode)) throw_not_found(key);
  auto size = static_cast<std::uint64_t>(info.st_size);
  if (!range) return std::make_unique<FsObjectReader>(std::move(fd), std::move(path), 0, size);
  // The caller checked the range against stat(), but the object may have been replaced since.
  if (range->first > range->last || range->last >= size) {
    throw Error(ErrorCode::bad_request,
                "object store: bytes " + std::to_string(range->first) + "-" + std::to_string(range->last) +
                    " are not within " + key.str() + " (" + std::to_string(size) + " bytes)",
                "range_not_satisfiable");
  }
  return std::make_unique<FsObjectReader>(std::move(fd), std::move(path), range->first, range->length());
}

void FsObjectStore::remove_prefix(std::string_view prefix) {
  validate_key(prefix, true);
  // "videos/<id>/" → every entry of <root>/videos/<id>; "videos/AB" → the entries of <root>/videos whose
  // name starts with "AB".
  auto slash = prefix.rfind('/');
  fs::path dir = slash == std::string_view::npos ? root_ : root_ / prefix.substr(0, slash);
  std::string_view stem = slash == std::string_view::npos ? prefix : prefix.substr(slash + 1);

  std::error_code error;
  fs::directory_iterator it(dir, error);
  if (error) {
    if (error == std::errc::no_such_file_or_directory || error == std::errc::not_a_directory) return;
    throw_io("cannot list", dir, error.value());
  }
  std::uintmax_t removed = 0;
  for (; it != fs::directory_iterator(); it.increment(error)) {
    if (!it->path().filename().string().starts_with(stem)) continue;
    // remove_all removes the files, then the directories they leave empty, and does not follow links.
    std::error_code remove_error;
    auto count = fs::remove_all(it->path(), remove_error);
    if (remove_error && remove_error != std::errc::no_such_file_or_directory) {
      throw_io("cannot remove", it->path(), remove_error.value());
    }
    if (!remove_error) removed += count;
  }
  // increment() ends the loop on an error, which must not pass for "all removed".
  if (error) throw_io("cannot list", dir, error.value());

  if (stem.empty() && dir != root_ && ::rmdir(dir.c_str()) != 0 && errno != ENOENT && errno != ENOTEMPTY &&
      errno != EEXIST) {
    // Not empty: something was written under the prefix meanwhile, and it stays.
    throw_io("cannot remove", dir, errno);
  }
  spdlog::debug("object store: removed {} entries under {}", removed, printable_key(prefix));
}

std::string FsObjectStore::describe() const { return "file://" + root_.string(); }

}  // namespace framepress
