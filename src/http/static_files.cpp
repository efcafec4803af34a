#include "http/static_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <system_error>
#include <utility>
#include <vector>

#include "core/error.h"

namespace framepress::http {

namespace {

namespace fs = std::filesystem;

constexpr std::size_t kChunk = 64 * 1024;
constexpr std::string_view kImmutable = "public, max-age=31536000, immutable";

struct FileType {
  std::string_view extension;
  std::string_view content_type;
};

constexpr FileType kTypes[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".jpeg", "image/jpeg"},
    {".gif", "image/gif"},
    {".webp", "image/webp"},
    {".json", "application/json"},
    {".webmanifest", "application/manifest+json"},
    {".ico", "image/x-icon"},
    {".woff", "font/woff"},
    {".woff2", "font/woff2"},
    {".map", "application/json"},
    {".txt", "text/plain; charset=utf-8"},
    {".wasm", "application/wasm"},
};

std::string_view content_type_of(const fs::path& file) {
  std::string extension = file.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const auto& type : kTypes) {
    if (type.extension == extension) return type.content_type;
  }
  return "application/octet-stream";
}

bool is_within(const fs::path& root, const fs::path& path) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

/// An open file: closed on destruction.
class File {
 public:
  File(int fd, std::uint64_t size, std::int64_t mtime_ns) : fd_(fd), size_(size), mtime_ns_(mtime_ns) {}
  File(File&& other) noexcept : fd_(std::exchange(other.fd_, -1)), size_(other.size_), mtime_ns_(other.mtime_ns_) {}
  File& operator=(File&& other) noexcept {
    std::swap(fd_, other.fd_);
    size_ = other.size_;
    mtime_ns_ = other.mtime_ns_;
    return *this;
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File() {
    if (fd_ >= 0) ::close(fd_);
  }

  std::uint64_t size() const { return size_; }
  std::int64_t mtime_ns() const { return mtime_ns_; }

  std::size_t read(std::span<char> buffer) {
    for (;;) {
      const auto n = ::read(fd_, buffer.data(), buffer.size());
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno != EINTR) throw std::system_error(errno, std::generic_category(), "reading a static file");
    }
  }

 private:
  int fd_;
  std::uint64_t size_;
  std::int64_t mtime_ns_;
};

// The regular file at `candidate` when it exists and, symbolic links resolved, lies under `root`.
std::optional<File> open_file(const fs::path& root, const fs::path& candidate) {
  std::error_code ec;
  const auto resolved = fs::canonical(candidate, ec);
  if (ec || !is_within(root, resolved)) return std::nullopt;
  // The resolved path has no links left: O_NOFOLLOW keeps one from being swapped in since.
  const int fd = ::open(resolved.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return std::nullopt;
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    return std::nullopt;
  }
  return File(fd, static_cast<std::uint64_t>(info.st_size),
              static_cast<std::int64_t>(info.st_mtim.tv_sec) * 1'000'000'000 + info.st_mtim.tv_nsec);
}

std::string etag_of(const File& file) {
  char tag[64];
  std::snprintf(tag, sizeof tag, "W/\"%llx-%llx\"", static_cast<unsigned long long>(file.size()),
                static_cast<unsigned long long>(file.mtime_ns()));
  return tag;
}

// If-None-Match is a list of tags, or "*"; weak comparison (RFC 9110 §13.1.2) ignores the W/ prefix.
bool etag_matches(std::string_view if_none_match, std::string_view etag) {
  const auto opaque = [](std::string_view tag) {
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    return tag;
  };
  while (!if_none_match.empty()) {
    const auto comma = if_none_match.find(',');
    auto item = if_none_match.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item == "*" || opaque(item) == opaque(etag)) return true;
    if (comma == std::string_view::npos) break;
    if_none_match.remove_prefix(comma + 1);
  }
  return false;
}

asio::awaitable<void> serve(std::shared_ptr<const fs::path> root, Exchange& exchange) {
  const Request& request = exchange.request();
  if (request.method != "GET" && request.method != "HEAD") {
    Response refusal;
    refusal.status = 405;
    refusal.headers = {{"Allow", "GET, HEAD"}};
    refusal.body = error_body("method_not_allowed", request.method + " is not allowed here");
    co_await exchange.respond(std::move(refusal));
    co_return;
  }

  std::string_view path = request.path;  // percent-decoded by the server, so %2e%2e arrives as ".."
  if (path.empty() || path.front() != '/') throw Error(ErrorCode::not_found, "no such file");
  fs::path relative;
  std::string_view last;
  bool hidden = false;
  for (std::string_view rest = path.substr(1);;) {
    const auto slash = rest.find('/');
    const auto segment = rest.substr(0, slash);
    if (segment == ".." || segment == ".") {
      throw Error(ErrorCode::bad_request, "the path may not contain . or .. segments", "bad_path");
    }
    if (!segment.empty()) {
      hidden = hidden || segment.front() == '.';
      relative /= fs::path(std::string(segment));
    }
    last = segment;
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }

  std::optional<File> file;
  bool index = false;
  if (!hidden && !relative.empty()) file = open_file(*root, *root / relative);
  if (!file && last.find('.') == std::string_view::npos) {
    // The page's own routes (/videos/01J…) are not files: the page loads and routes itself.
    file = open_file(*root, *root / "index.html");
    index = true;
  }
  if (!file) throw Error(ErrorCode::not_found, "no such file: " + request.path);

  const fs::path served = index ? fs::path("index.html") : relative;
  const bool immutable = !index && path.starts_with("/assets/");
  const std::string etag = etag_of(*file);
  Headers headers{
      {"Content-Type", std::string(content_type_of(served))},
      // Bundled assets carry a content hash in their name: a new build gives new names, so they never
      // change. index.html names them, so it must always be revalidated.
      {"Cache-Control", std::string(immutable ? kImmutable : "no-cache")},
      {"ETag", etag},
      {"X-Content-Type-Options", "nosniff"},
  };

  if (const auto if_none_match = request.header("If-None-Match"); if_none_match && etag_matches(*if_none_match, etag)) {
    Response not_modified;
    not_modified.status = 304;
    not_modified.content_type.clear();
    not_modified.headers = {{"Cache-Control", headers[1].second}, {"ETag", etag}};
    co_await exchange.respond(std::move(not_modified));
    co_return;
  }

  co_await exchange.begin(200, std::move(headers), file->size());
  if (request.method == "GET") {
    std::vector<char> buffer(kChunk);
    std::uint64_t left = file->size();
    while (left > 0) {
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(left, kChunk));
      const auto n = file->read(std::span(buffer.data(), want));
      // The file shrank while being sent: the declared length can no longer be met, so finish() fails and
      // the connection closes, which is all a client can be told.
      if (n == 0) break;
      co_await exchange.write(std::string_view(buffer.data(), n));
      left -= n;
    }
  }
  co_await exchange.finish();
}

}  // namespace

Handler static_files(fs::path root) {
  std::error_code ec;
  auto resolved = fs::canonical(root, ec);
  if (ec || !fs::is_directory(resolved, ec)) {
    throw Error(ErrorCode::unavailable, "cannot serve the web page from " + root.string() + ": " +
                                            (ec ? ec.message() : std::string("not a directory")));
  }
  auto shared_root = std::make_shared<const fs::path>(std::move(resolved));
  // Not a coroutine lambda: its captures would live in the std::function, not in the coroutine frame.
  return [shared_root](Exchange& exchange) { return serve(shared_root, exchange); };
}

}  // namespace framepress::http
