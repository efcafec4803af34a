#include "store/s3/s3_object_store.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <thread>

#include "core/error.h"
#include "store/s3/s3_client.h"
#include "store/s3/s3_retry.h"
#include "store/s3/s3_sigv4.h"

namespace framepress {
namespace {

using s3::Request;
using s3::Response;
using s3::S3Client;

constexpr std::uint64_t kMiB = 1ull << 20;
/// What a reader holds: small enough for many concurrent downloads, large enough that the request per
/// chunk costs little.
constexpr std::uint64_t kReadChunk = 4 * kMiB;
constexpr std::uint64_t kMaxParts = 10'000;  // S3's limit for one multipart upload
constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
constexpr std::chrono::seconds kMaxPresignExpiry{7 * 24 * 3600};  // SigV4's limit

constexpr std::size_t kMaxKeyBytes = 1024;  // S3's limit

void validate_key(std::string_view key, bool prefix) { check_object_key(key, prefix, kMaxKeyBytes); }

std::string errno_text(int error) { return std::generic_category().message(error); }

/// A content type goes into a request header: a control character could forge another header.
void validate_content_type(std::string_view content_type) {
  for (char c : content_type) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      throw Error(ErrorCode::bad_request, "object store: a content type with a control character", "bad_content_type");
    }
  }
}

[[noreturn]] void throw_io(std::string_view what, const std::filesystem::path& path, int error) {
  throw Error(ErrorCode::unavailable,
              "object store: " + std::string(what) + " " + path.string() + ": " + errno_text(error), "storage_error",
              true);
}

std::string random_hex(std::size_t bytes) {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < bytes; ++i) {
    const auto byte = static_cast<unsigned>(engine() & 0xff);
    out.push_back(digits[byte >> 4]);
    out.push_back(digits[byte & 0xf]);
  }
  return out;
}

/// A file descriptor closed on scope exit.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  /// Closes now, reporting the error (a write-back failure shows up here on some filesystems).
  int close() {
    const int result = ::close(fd_);
    fd_ = -1;
    return result;
  }

 private:
  int fd_;
};

// --- the S3 operations ------------------------------------------------------------------------------

std::optional<Response> head_object(S3Client& client, const std::string& key) {
  const std::string what = "HEAD " + key;
  Response response = client.send(what, [&](int) {
    Request request;
    request.method = "HEAD";
    request.url = client.url(key);
    return request;
  });
  if (response.status == 404) return std::nullopt;
  if (!response.ok()) client.fail(what, response);
  return response;
}

std::uint64_t content_length(const Response& response, std::string_view what) {
  const std::string text = response.header("content-length");
  try {
    std::size_t used = 0;
    const auto value = std::stoull(text, &used);
    if (used == text.size()) return value;
  } catch (const std::exception&) {
  }
  throw Error(ErrorCode::internal, std::string(what) + ": the store sent no valid Content-Length", "s3_error");
}

void put_object(S3Client& client, const std::string& key, std::string_view content_type, s3::RequestBody body) {
  const std::string what = "PUT " + key;
  const Response response = client.send(what, [&](int) {
    Request request;
    request.method = "PUT";
    request.url = client.url(key);
    if (!content_type.empty()) request.headers.push_back("Content-Type: " + std::string(content_type));
    request.body = body;
    request.payload_hash = kUnsignedPayload;
    return request;
  });
  if (!response.ok()) client.fail(what, response);
}

std::string create_multipart(S3Client& client, const std::string& key, std::string_view content_type) {
  const std::string what = "CreateMultipartUpload " + key;
  // An attempt whose answer is lost may leave an unused upload behind when the next one succeeds; S3
  // bills its parts until a lifecycle rule (AbortIncompleteMultipartUpload) removes it. It has no parts.
  const std::string query = s3::canonical_query({{"uploads", ""}});
  const Response response = client.send(what, [&](int) {
    Request request;
    request.method = "POST";
    request.url = client.url(key, query);
    request.headers.push_back("Content-Type: " + (content_type.empty() ? std::string("application/octet-stream")
                                                                       : std::string(content_type)));
    return request;
  });
  if (!response.ok()) client.fail(what, response);
  const auto ids = s3::xml_values(response.body, "UploadId");
  if (ids.empty() || ids.front().empty()) {
    throw Error(ErrorCode::internal, what + ": the answer carries no UploadId", "s3_error");
  }
  return ids.front();
}

std::string upload_part(S3Client& client, const std::string& key, const std::string& upload_id, std::uint64_t number,
                        s3::RequestBody body) {
  const std::string what = "UploadPart " + std::to_string(number) + " of " + key;
  const std::string query = s3::canonical_query({{"partNumber", std::to_string(number)}, {"uploadId", upload_id}});
  const Response response = client.send(what, [&](int) {
    Request request;
    request.method = "PUT";
    request.url = client.url(key, query);
    request.body = body;
    request.payload_hash = kUnsignedPayload;
    return request;
  });
  if (!response.ok()) client.fail(what, response);
  std::string etag = response.header("etag");
  if (etag.empty()) throw Error(ErrorCode::internal, what + ": the answer carries no ETag", "s3_error");
  return etag;
}

void complete_multipart(S3Client& client, const std::string& key, const std::string& upload_id,
                        const std::vector<std::string>& etags, std::uint64_t total_size) {
  const std::string what = "CompleteMultipartUpload " + key;
  std::string body = "<CompleteMultipartUpload>";
  for (std::size_t i = 0; i < etags.size(); ++i) {
    body += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" + s3::xml_escape(etags[i]) +
            "</ETag></Part>";
  }
  body += "</CompleteMultipartUpload>";
  const std::string hash = s3::sha256_hex(body);
  const std::string query = s3::canonical_query({{"uploadId", upload_id}});

  // S3 may answer 200 and then report a failure in the body (it has sent the status before assembling
  // the object), so a 200 with <Error> is judged like an error status.
  const int attempts = std::max(1, client.options().retry.max_attempts);
  for (int round = 1;; ++round) {
    int last_attempt = 0;
    const Response response = client.send(what, [&](int attempt) {
      last_attempt = attempt;
      Request request;
      request.method = "POST";
      request.url = client.url(key, query);
      request.headers.push_back("Content-Type: application/xml");
      request.body.memory = body;
      request.payload_hash = hash;
      return request;
    });
    if (response.ok() && response.body.find("<Error>") == std::string::npos) return;
    const std::string code = response.error_code();
    // An answer lost after the upload completed: the retry finds the upload gone. The object is there.
    if ((last_attempt > 1 || round > 1) && code == "NoSuchUpload") {
      const auto head = head_object(client, key);
      if (head && content_length(*head, what) == total_size) return;
    }
    if (!response.ok()) client.fail(what, response);  // send() has retried what was worth retrying
    // A 200 with <Error>: its code alone tells whether to try again (InternalError, SlowDown, …).
    const bool transient = s3::classify_response(400, code) == s3::Verdict::retry;
    if (!transient || round >= attempts) {
      Response failed = response;
      failed.status = transient ? 503 : 400;  // so that fail() maps it as retryable or not
      client.fail(what, failed);
    }
    std::this_thread::sleep_for(s3::backoff_delay(client.options().retry, round, s3::random_unit()));
  }
}

/// Best effort, never throws: it runs in destructors and on paths that are already failing.
void abort_multipart(S3Client& client, const std::string& key, const std::string& upload_id) noexcept {
  try {
    const std::string what = "AbortMultipartUpload " + key;
    const std::string query = s3::canonical_query({{"uploadId", upload_id}});
    const Response response = client.send(what, [&](int) {
      Request request;
      request.method = "DELETE";
      request.url = client.url(key, query);
      return request;
    });
    // 404 NoSuchUpload: already aborted or completed; either way nothing is pending.
    if (!response.ok() && response.status != 404) client.fail(what, response);
  } catch (const std::exception& error) {
    spdlog::warn("{}: could not abort the multipart upload of {} ({}); a lifecycle rule must remove it",
                 client.description(), printable_key(key), error.what());
  }
}

void delete_objects(S3Client& client, const std::vector<std::string>& keys) {
  const std::string what = "DeleteObjects (" + std::to_string(keys.size()) + " keys)";
  std::string body = "<Delete><Quiet>true</Quiet>";
  for (const auto& key : keys) body += "<Object><Key>" + s3::xml_escape(key) + "</Key></Object>";
  body += "</Delete>";
  const std::string hash = s3::sha256_hex(body);
  const std::string md5 = s3::md5_base64(body);  // S3 requires Content-MD5 on DeleteObjects
  const std::string query = s3::canonical_query({{"delete", ""}});
  const Response response = client.send(what, [&](int) {
    Request request;
    request.method = "POST";
    request.url = client.url("", query);
    request.headers.push_back("Content-Type: application/xml");
    request.headers.push_back("Content-MD5: " + md5);
    request.body.memory = body;
    request.payload_hash = hash;
    return request;
  });
  if (!response.ok()) client.fail(what, response);
  // Quiet mode lists only the keys that could not be deleted, each in an <Error> with its own <Code>.
  const auto errors = s3::xml_values(response.body, "Error");
  if (!errors.empty()) {
    const auto key = s3::xml_values(errors.front(), "Key");
    const auto code = s3::xml_values(errors.front(), "Code");
    throw Error(ErrorCode::unavailable,
                what + ": " + std::to_string(errors.size()) + " could not be deleted (first: " +
                    printable_key(key.empty() ? "" : key.front()) + ": " + (code.empty() ? "?" : code.front()) + ")",
                "s3_unavailable", true);
  }
}

// --- writer -----------------------------------------------------------------------------------------

class S3ObjectWriter final : public ObjectWriter {
 public:
  S3ObjectWriter(std::shared_ptr<S3Client> client, std::string key, std::string content_type)
      : client_(std::move(client)), key_(std::move(key)), content_type_(std::move(content_type)),
        part_size_(client_->options().part_size) {}

  ~S3ObjectWriter() override {
    if (!committed_ && !upload_id_.empty()) abort_multipart(*client_, key_, upload_id_);
  }

  void write(std::span<const char> bytes) override {
    check_usable();
    try {
      while (!bytes.empty()) {
        if (buffer_.capacity() < part_size_) buffer_.reserve(part_size_);  // one allocation, touched as filled
        const std::size_t take = std::min<std::size_t>(bytes.size(), part_size_ - buffer_.size());
        buffer_.append(bytes.data(), take);
        bytes = bytes.subspan(take);
        if (buffer_.size() == part_size_) flush_part();
      }
    } catch (...) {
      failed_ = true;
      throw;
    }
  }

  void commit() override {
    check_usable();
    try {
      if (upload_id_.empty()) {
        // Below one part: a plain PUT, no multipart upload at all.
        put_object(*client_, key_, content_type_, s3::RequestBody{buffer_});
      } else {
        if (!buffer_.empty()) flush_part();  // the last part may be smaller than 5 MiB
        complete_multipart(*client_, key_, upload_id_, etags_, total_);
      }
    } catch (...) {
      failed_ = true;
      throw;  // the destructor aborts the upload
    }
    committed_ = true;
    std::string().swap(buffer_);
  }

 private:
  void check_usable() const {
    if (committed_) throw Error(ErrorCode::internal, "object store: writer used after commit");
    if (failed_) throw Error(ErrorCode::internal, "object store: writer used after a failed write");
  }

  void flush_part() {
    if (etags_.size() >= kMaxParts) {
      throw Error(ErrorCode::payload_too_large,
                  "object store: " + printable_key(key_) + " exceeds " + std::to_string(kMaxParts) + " parts of " +
                      std::to_string(part_size_ >> 20) + " MiB; raise part_size",
                  "s3_too_many_parts");
    }
    if (upload_id_.empty()) upload_id_ = create_multipart(*client_, key_, content_type_);
    etags_.push_back(upload_part(*client_, key_, upload_id_, etags_.size() + 1, s3::RequestBody{buffer_}));
    total_ += buffer_.size();
    buffer_.clear();  // keeps the capacity: the next part reuses the same memory
  }

  std::shared_ptr<S3Client> client_;
  std::string key_;
  std::string content_type_;
  std::uint64_t part_size_;
  std::string buffer_;
  std::string upload_id_;
  std::vector<std::string> etags_;
  std::uint64_t total_ = 0;
  bool committed_ = false;
  bool failed_ = false;
};

// --- reader -----------------------------------------------------------------------------------------

class S3ObjectReader final : public ObjectReader {
 public:
  S3ObjectReader(std::shared_ptr<S3Client> client, std::string key, std::string etag, std::uint64_t first,
                 std::uint64_t end, std::uint64_t object_size)
      : client_(std::move(client)), key_(std::move(key)), etag_(std::move(etag)), next_(first), end_(end),
        object_size_(object_size) {}

  std::size_t read(std::span<char> buffer) override {
    if (buffer.empty()) return 0;
    if (position_ == chunk_.size()) {
      if (next_ >= end_) return 0;
      fetch();
    }
    const std::size_t n = std::min(buffer.size(), chunk_.size() - position_);
    std::memcpy(buffer.data(), chunk_.data() + position_, n);
    position_ += n;
    return n;
  }

 private:
  void fetch() {
    const std::uint64_t last = std::min(end_, next_ + kReadChunk) - 1;
    const std::uint64_t want = last - next_ + 1;
    const std::string what = "GET " + key_ + " bytes " + std::to_string(next_) + "-" + std::to_string(last);
    const bool whole = next_ == 0 && last + 1 == object_size_;
    const Response response = client_->send(what, [&](int) {
      chunk_.clear();  // an attempt cut off mid-way starts the chunk again
      if (chunk_.capacity() < want) chunk_.reserve(static_cast<std::size_t>(want));
      Request request;
      request.url = client_->url(key_);
      request.headers.push_back("Range: bytes=" + std::to_string(next_) + "-" + std::to_string(last));
      if (!etag_.empty()) request.headers.push_back("If-Match: " + etag_);
      request.sink = [this, want, whole, what](const Response& head, std::string_view bytes) {
        // A store that ignores Range would send the whole object into memory: refuse it at once.
        if ((head.status == 200 && !whole) || chunk_.size() + bytes.size() > want) {
          throw Error(ErrorCode::internal, what + ": the store ignored the Range header", "s3_error");
        }
        chunk_.append(bytes);
      };
      return request;
    });
    if (response.status == 412) {
      throw Error(ErrorCode::unavailable, "object store: " + printable_key(key_) + " was replaced while being read",
                  "s3_object_changed", true);
    }
    if (!response.ok()) client_->fail(what, response);
    if (chunk_.size() != want) {
      throw Error(ErrorCode::unavailable,
                  what + ": got " + std::to_string(chunk_.size()) + " bytes of " + std::to_string(want),
                  "s3_unavailable", true);
    }
    position_ = 0;
    next_ = last + 1;
  }

  std::shared_ptr<S3Client> client_;
  std::string key_;
  std::string etag_;
  std::uint64_t next_;  // the next byte to fetch
  std::uint64_t end_;   // one past the last byte to read
  std::uint64_t object_size_;
  std::string chunk_;
  std::size_t position_ = 0;
};

}  // namespace

// --- the store --------------------------------------------------------------------------------------

S3ObjectStore::S3ObjectStore(S3Options options, S3Credentials credentials)
    : client_(std::make_shared<S3Client>(std::move(options), std::move(credentials))) {
  S3Client& client = *client_;
  const S3Options& o = client.options();
  const std::string what = "start-up check of bucket " + o.bucket;
  const std::string query = s3::canonical_query({{"list-type", "2"}, {"max-keys", "1"}});
  const Response response = client.send(what, [&](int) {
    Request request;
    request.url = client.url("", query);
    return request;
  });
  if (response.ok()) {
    spdlog::info("object store: {}", client.description());
    return;
  }
  const std::string code = response.error_code();
  if (response.status == 403) client.fail(what, response);
  if (response.status != 404 || (!code.empty() && code != "NoSuchBucket")) {
    throw Error(ErrorCode::unavailable,
                "S3 " + what + " at " + o.endpoint + " failed: " + response.summary(), "s3_error");
  }

  // No bucket: create it. A location constraint is needed everywhere but us-east-1 (where it is refused).
  const std::string create_what = "CreateBucket " + o.bucket;
  const std::string body =
      o.region == "us-east-1"
          ? std::string{}
          : "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>" +
                s3::xml_escape(o.region) + "</LocationConstraint></CreateBucketConfiguration>";
  const std::string hash = s3::sha256_hex(body);
  const Response created = client.send(create_what, [&](int) {
    Request request;
    request.method = "PUT";
    request.url = client.url("");
    request.body.memory = body;
    request.payload_hash = hash;
    return request;
  });
  // BucketAlreadyOwnedByYou: another process created it meanwhile, which is just as good.
  if (!created.ok() && created.error_code() != "BucketAlreadyOwnedByYou") {
    if (created.status == 403) client.fail(create_what, created);
    throw Error(ErrorCode::unavailable,
                "S3 bucket " + o.bucket + " is missing at " + o.endpoint + " and could not be created: " +
                    created.summary(),
                "s3_error");
  }
  spdlog::info("object store: {} (bucket created)", client.description());
}

S3ObjectStore::~S3ObjectStore() = default;

std::unique_ptr<ObjectWriter> S3ObjectStore::create(const ObjectKey& key, std::string_view content_type) {
  validate_key(key.str(), false);
  validate_content_type(content_type);
  return std::make_unique<S3ObjectWriter>(client_, key.str(), std::string(content_type));
}

void S3ObjectStore::put_file(const ObjectKey& key, const std::filesystem::path& path, std::string_view content_type,
                             bool consume) {
  validate_key(key.str(), false);
  validate_content_type(content_type);
  S3Client& client = *client_;
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw_io("cannot open", path, errno);
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) throw_io("cannot stat", path, errno);
  if (!S_ISREG(info.st_mode)) {
    throw Error(ErrorCode::internal, "object store: " + path.string() + " is not a regular file");
  }
  const auto size = static_cast<std::uint64_t>(info.st_size);

  const std::uint64_t part_size = client.options().part_size;
  if (size <= part_size) {
    put_object(client, key.str(), content_type, s3::RequestBody{{}, fd.get(), 0, size});
  } else {
    // The size is known, so the parts can grow to keep a huge file within 10,000 of them (whole MiBs).
    const std::uint64_t needed = (size + kMaxParts - 1) / kMaxParts;
    const std::uint64_t part = std::max(part_size, (needed + kMiB - 1) / kMiB * kMiB);
    const std::string upload_id = create_multipart(client, key.str(), content_type);
    try {
      std::vector<std::string> etags;
      for (std::uint64_t offset = 0; offset < size; offset += part) {
        const std::uint64_t length = std::min(part, size - offset);
        etags.push_back(upload_part(client, key.str(), upload_id, etags.size() + 1,
                                    s3::RequestBody{{}, fd.get(), offset, length}));
      }
      complete_multipart(client, key.str(), upload_id, etags, size);
    } catch (...) {
      abort_multipart(client, key.str(), upload_id);
      throw;
    }
  }
  fd.close();
  if (consume && ::unlink(path.c_str()) != 0 && errno != ENOENT) {
    spdlog::warn("object store: stored {} but could not remove {}: {}", printable_key(key.str()), path.string(),
                 errno_text(errno));
  }
}

void S3ObjectStore::fetch_to_file(const ObjectKey& key, const std::filesystem::path& path) {
  validate_key(key.str(), false);
  S3Client& client = *client_;
  const std::filesystem::path temp = path.string() + ".part-" + random_hex(8);
  Fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (fd.get() < 0) throw_io("cannot create", temp, errno);
  try {
    std::uint64_t written = 0;
    std::string etag;
    std::optional<std::uint64_t> total;
    const std::string what = "GET " + key.str();
    const Response response = client.send(what, [&](int) {
      Request request;
      request.url = client.url(key.str());
      if (written > 0) {
        // Resume where the previous attempt was cut off, from the same version of the object.
        request.headers.push_back("Range: bytes=" + std::to_string(written) + "-");
        if (!etag.empty()) request.headers.push_back("If-Match: " + etag);
      }
      request.sink = [&, first = true](const Response& head, std::string_view bytes) mutable {
        if (first) {
          first = false;
          if (head.status == 200) {
            // The whole object (a first attempt, or a store that ignored Range): start the file over.
            if (written > 0 && ::ftruncate(fd.get(), 0) != 0) throw_io("cannot truncate", temp, errno);
            written = 0;
            etag = head.header("etag");
            total = content_length(head, what);
          } else {
            const std::string range = head.header("content-range");  // "bytes 100-199/1000"
            const auto dash = range.find('-');
            const auto slash = range.find('/');
            if (!range.starts_with("bytes ") || dash == std::string::npos || slash == std::string::npos ||
                range.substr(6, dash - 6) != std::to_string(written)) {
              throw Error(ErrorCode::unavailable, what + ": the store resumed at the wrong place (" + range + ")",
                          "s3_unavailable", true);
            }
            total = std::stoull(range.substr(slash + 1));
          }
        }
        while (!bytes.empty()) {
          const ssize_t n = ::pwrite(fd.get(), bytes.data(), bytes.size(), static_cast<off_t>(written));
          if (n < 0) {
            if (errno == EINTR) continue;
            throw_io("cannot write", temp, errno);
          }
          written += static_cast<std::uint64_t>(n);
          bytes.remove_prefix(static_cast<std::size_t>(n));
        }
      };
      return request;
    });
    if (response.status == 412) {
      throw Error(ErrorCode::unavailable, "object store: " + printable_key(key.str()) + " was replaced while being fetched",
                  "s3_object_changed", true);
    }
    if (!response.ok()) client.fail(what, response);
    if (!total) total = content_length(response, what);  // an empty object: no byte, so no sink call
    if (written != *total) {
      throw Error(ErrorCode::unavailable,
                  what + ": got " + std::to_string(written) + " bytes of " + std::to_string(*total), "s3_unavailable",
                  true);
    }
    if (fd.close() != 0) throw_io("cannot write", temp, errno);
    // A scratch copy for the worker: no fsync, it is fetched again if the machine goes down.
    std::error_code error;
    std::filesystem::rename(temp, path, error);
    if (error) throw_io("cannot rename to", path, error.value());
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(temp, ignored);
    throw;
  }
}

std::optional<ObjectInfo> S3ObjectStore::stat(const ObjectKey& key) {
  validate_key(key.str(), false);
  const auto head = head_object(*client_, key.str());
  if (!head) return std::nullopt;
  return ObjectInfo{content_length(*head, "HEAD " + key.str())};
}

std::unique_ptr<ObjectReader> S3ObjectStore::open(const ObjectKey& key, std::optional<ByteRange> range) {
  validate_key(key.str(), false);
  const auto head = head_object(*client_, key.str());
  if (!head) throw Error(ErrorCode::not_found, "object store: no object " + key.str(), "not_found");
  const std::uint64_t size = content_length(*head, "HEAD " + key.str());
  std::uint64_t first = 0, end = size;
  if (range) {
    // The caller checked the range against stat(), but the object may have been replaced since.
    if (range->first > range->last || range->last >= size) {
      throw Error(ErrorCode::bad_request,
                  "object store: bytes " + std::to_string(range->first) + "-" + std::to_string(range->last) +
                      " are not within " + key.str() + " (" + std::to_string(size) + " bytes)",
                  "range_not_satisfiable");
    }
    first = range->first;
    end = range->last + 1;
  }
  return std::make_unique<S3ObjectReader>(client_, key.str(), head->header("etag"), first, end, size);
}

void S3ObjectStore::remove_prefix(std::string_view prefix) {
  validate_key(prefix, true);
  S3Client& client = *client_;
  const std::string what = "ListObjectsV2 " + std::string(prefix);
  std::string token;
  std::size_t removed = 0;
  for (;;) {
    s3::QueryParams params{{"list-type", "2"}, {"prefix", std::string(prefix)}};
    if (!token.empty()) params.emplace_back("continuation-token", token);
    const std::string query = s3::canonical_query(std::move(params));
    const Response response = client.send(what, [&](int) {
      Request request;
      request.url = client.url("", query);
      return request;
    });
    if (!response.ok()) client.fail(what, response);
    // Each page holds at most 1,000 keys, as many as one DeleteObjects takes.
    const auto keys = s3::xml_values(response.body, "Key");
    if (!keys.empty()) delete_objects(client, keys);
    removed += keys.size();
    const auto truncated = s3::xml_values(response.body, "IsTruncated");
    const auto next = s3::xml_values(response.body, "NextContinuationToken");
    if (truncated.empty() || truncated.front() != "true" || next.empty() || next.front().empty()) break;
    token = next.front();
  }
  spdlog::debug("object store: removed {} objects under {}", removed, printable_key(prefix));
}

std::optional<std::string> S3ObjectStore::presigned_url(const ObjectKey& key, std::string_view download_name,
                                                        std::chrono::seconds expiry) {
  validate_key(key.str(), false);
  const S3Options& o = client_->options();
  if (!o.presign) return std::nullopt;
  if (expiry < std::chrono::seconds(1) || expiry > kMaxPresignExpiry) {
    throw Error(ErrorCode::bad_request, "a presigned URL's expiry must be between 1 second and 7 days");
  }
  // libcurl signs requests but cannot presign a URL, so the signature is computed in s3_sigv4.cpp.
  s3::PresignRequest request;
  request.origin = client_->origin(o.public_endpoint.empty() ? o.endpoint : o.public_endpoint);
  request.path = client_->path(key.str());
  if (!download_name.empty()) {
    request.params.emplace_back("response-content-disposition", s3::content_disposition_attachment(download_name));
  }
  request.region = o.region;
  request.access_key = client_->credentials().access_key;
  request.secret_key = client_->credentials().secret_key;
  request.now = std::chrono::system_clock::now();
  request.expires = expiry;
  return s3::presign_get(request);
}

std::optional<std::filesystem::path> S3ObjectStore::readable_path(const ObjectKey&) { return std::nullopt; }

std::string S3ObjectStore::describe() const { return client_->description(); }

}  // namespace framepress
