// The S3 store against a real S3 server (SeaweedFS from scripts/seaweedfs.sh). Each test has its own
// bucket, so tests never see each other's objects.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "store/s3/s3_object_store.h"
#include "unit/store/s3/s3_test_server.h"

namespace framepress {
namespace {

using namespace std::chrono_literals;
using testing::credentials_for;
using testing::options_for;
using testing::pending_uploads;
using testing::random_bucket;
using testing::raw_get;
using testing::raw_signed;
using testing::s3_server;
using testing::S3TestServer;

constexpr std::size_t kMiB = 1 << 20;

// Deterministic bytes that differ at every offset, so a part in the wrong place or a shifted range shows.
void fill(char* out, std::size_t length, std::uint64_t offset, std::uint64_t seed) {
  for (std::size_t i = 0; i < length; ++i) {
    std::uint64_t x = (offset + i) / 8 * 0x9E3779B97F4A7C15ull ^ seed;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    out[i] = static_cast<char>(x >> (8 * ((offset + i) % 8)));
  }
}

std::string bytes(std::size_t length, std::uint64_t seed = 1) {
  std::string out(length, '\0');
  fill(out.data(), length, 0, seed);
  return out;
}

std::string read_all(ObjectReader& reader, std::size_t buffer_size = 64 * 1024) {
  std::string out;
  std::string buffer(buffer_size, '\0');
  while (const std::size_t n = reader.read(buffer)) out.append(buffer.data(), n);
  return out;
}

std::string file_contents(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

void write_file(const std::filesystem::path& path, std::string_view content) {
  std::ofstream(path, std::ios::binary).write(content.data(), static_cast<std::streamsize>(content.size()));
}

/// Incremental SHA-256, to compare objects too large to hold.
class Sha256 {
 public:
  Sha256() : context_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) { EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr); }
  void add(std::string_view bytes) { EVP_DigestUpdate(context_.get(), bytes.data(), bytes.size()); }
  std::string hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(context_.get(), digest, &length);
    std::string out;
    for (unsigned int i = 0; i < length; ++i) {
      static constexpr char digits[] = "0123456789abcdef";
      out.push_back(digits[digest[i] >> 4]);
      out.push_back(digits[digest[i] & 0xf]);
    }
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context_;
};

/// A value of /proc/self/status in KiB ("VmHWM", "VmRSS").
long status_kib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

template <typename F>
Error error_of(F&& body) {
  try {
    body();
  } catch (const Error& error) {
    return error;
  } catch (const std::exception& other) {
    ADD_FAILURE() << "not a framepress::Error: " << other.what();
    return Error(ErrorCode::internal, "none");
  }
  ADD_FAILURE() << "no Error thrown";
  return Error(ErrorCode::internal, "none");
}

/// A port on 127.0.0.1 that nothing listens on (bound, read, released).
int unused_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

class S3StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = &s3_server();
    bucket_ = random_bucket("t");
    scratch_ = std::filesystem::temp_directory_path() / ("fp-s3-scratch-" + bucket_);
    std::filesystem::create_directories(scratch_);
  }
  void TearDown() override { std::filesystem::remove_all(scratch_); }

  std::unique_ptr<S3ObjectStore> store(const std::string& extra = "") {
    return std::make_unique<S3ObjectStore>(options_for(*server_, bucket_, extra), credentials_for(*server_));
  }

  /// The files left in the scratch directory, to prove that no temporary file stays behind.
  std::vector<std::string> scratch_files() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(scratch_)) names.push_back(entry.path().filename());
    return names;
  }

  const S3TestServer* server_ = nullptr;
  std::string bucket_;
  std::filesystem::path scratch_;
};

TEST_F(S3StoreTest, SmallObjectRoundTripThroughCreate) {
  auto s = store();
  const ObjectKey key("videos/01SMALL/source");
  const std::string data = "hello, " + bytes(1000);
  auto writer = s->create(key, "video/mp4");
  writer->write(std::span(data).first(3));
  writer->write(std::span(data).subspan(3));
  EXPECT_FALSE(s->stat(key)) << "nothing is visible before commit";
  writer->commit();

  ASSERT_TRUE(s->stat(key));
  EXPECT_EQ(s->stat(key)->size, data.size());
  EXPECT_EQ(read_all(*s->open(key, std::nullopt)), data);
  s->fetch_to_file(key, scratch_ / "copy");
  EXPECT_EQ(file_contents(scratch_ / "copy"), data);
  EXPECT_EQ(scratch_files(), std::vector<std::string>{"copy"});
  EXPECT_EQ(pending_uploads(*server_, bucket_), 0);

  // The content type given to create() is stored with the object.
  const auto head = raw_signed(*server_, "HEAD", server_->endpoint + "/" + bucket_ + "/" + key.str());
  EXPECT_EQ(head.headers.at("content-type"), "video/mp4");
}

TEST_F(S3StoreTest, MultipartRoundTripThroughCreate) {
  auto s = store("&part_size=5MiB");
  const ObjectKey key("videos/01MULTI/renditions/720p.mp4");
  const std::string data = bytes(20 * kMiB + 12345, 7);
  auto writer = s->create(key, "video/mp4");
  // Writes that straddle part boundaries.
  for (std::size_t at = 0; at < data.size(); at += 777'777) {
    writer->write(std::span(data).subspan(at, std::min<std::size_t>(777'777, data.size() - at)));
  }
  EXPECT_EQ(pending_uploads(*server_, bucket_), 1) << "full parts are uploaded as they fill";
  EXPECT_FALSE(s->stat(key));
  writer->commit();
  writer.reset();

  ASSERT_TRUE(s->stat(key));
  EXPECT_EQ(s->stat(key)->size, data.size());
  EXPECT_EQ(pending_uploads(*server_, bucket_), 0);
  const std::string back = read_all(*s->open(key, std::nullopt), 100'000);
  EXPECT_EQ(back.size(), data.size());
  EXPECT_TRUE(back == data) << "the object differs from what was written";
  s->fetch_to_file(key, scratch_ / "copy.mp4");
  EXPECT_TRUE(file_contents(scratch_ / "copy.mp4") == data);
}

TEST_F(S3StoreTest, ExactlyOnePartAndEmptyObjects) {
  auto s = store("&part_size=5MiB");
  const std::string one_part = bytes(5 * kMiB, 3);
  auto writer = s->create(ObjectKey("one-part"), "application/octet-stream");
  writer->write(one_part);
  writer->commit();
  EXPECT_TRUE(read_all(*s->open(ObjectKey("one-part"), std::nullopt)) == one_part);

  s->create(ObjectKey("empty"), "text/plain")->commit();
  ASSERT_TRUE(s->stat(ObjectKey("empty")));
  EXPECT_EQ(s->stat(ObjectKey("empty"))->size, 0u);
  EXPECT_EQ(read_all(*s->open(ObjectKey("empty"), std::nullopt)), "");
  s->fetch_to_file(ObjectKey("empty"), scratch_ / "empty");
  EXPECT_TRUE(std::filesystem::exists(scratch_ / "empty"));
  EXPECT_EQ(std::filesystem::file_size(scratch_ / "empty"), 0u);
  EXPECT_EQ(pending_uploads(*server_, bucket_), 0);
}

TEST_F(S3StoreTest, CommitReplacesTheWholeObject) {
  auto s = store();
  const ObjectKey key("videos/01REPLACE/source");
  auto first = s->create(key, "video/mp4");
  first->write(std::string(100, 'a'));
  first->commit();
  auto second = s->create(key, "video/mp4");
  second->write(std::string(10, 'b'));
  second->commit();
  EXPECT_EQ(read_all(*s->open(key, std::nullopt)), std::string(10, 'b'));
}

TEST_F(S3StoreTest, PutFileSmallAndMultipart) {
  auto s = store("&part_size=5MiB");
  const std::string small = bytes(1234, 11);
  const std::string large = bytes(20 * kMiB + 3, 12);
  write_file(scratch_ / "small", small);
  write_file(scratch_ / "large", large);

  s->put_file(ObjectKey("videos/01PUT/small"), scratch_ / "small", "video/mp4", false);
  EXPECT_TRUE(std::filesystem::exists(scratch_ / "small")) << "without consume the file stays";
  s->put_file(ObjectKey("videos/01PUT/large"), scratch_ / "large", "video/mp4", true);
  EXPECT_FALSE(std::filesystem::exists(scratch_ / "large")) << "with consume the file is removed";
  EXPECT_EQ(pending_uploads(*server_, bucket_), 0);

  s->fetch_to_file(ObjectKey("videos/01PUT/small"), scratch_ / "small.back");
  s->fetch_to_file(ObjectKey("videos/01PUT/large"), scratch_ / "large.back");
  EXPECT_TRUE(file_contents(scratch_ / "small.back") == small);
  EXPECT_TRUE(file_contents(scratch_ / "large.back") == large);
  EXPECT_EQ(s->stat(ObjectKey("videos/01PUT/large"))->size, large.size());

  // A file that is not there is an error, and nothing is stored.
  const Error missing = error_of([&] { s->put_file(ObjectKey("x"), scratch_ / "nope", "video/mp4", false); });
  EXPECT_EQ(missing.reason(), "storage_error");
  EXPECT_FALSE(s->stat(ObjectKey("x")));
}

TEST_F(S3StoreTest, Ranges) {
  auto s = store();
  const ObjectKey key("videos/01RANGE/renditions/480p.mp4");
  const std::string data = bytes(9 * kMiB + 7, 5);  // more than two 4 MiB read chunks
  s->create(key, "video/mp4")->write(data);  // destroyed uncommitted: nothing stored
  EXPECT_FALSE(s->stat(key));
  auto writer = s->create(key, "video/mp4");
  writer->write(data);
  writer->commit();

  const std::uint64_t size = data.size();
  for (const ByteRange range : {ByteRange{0, 0}, ByteRange{1, 4 * kMiB + 100}, ByteRange{4 * kMiB - 1, 4 * kMiB},
                                ByteRange{size - 1, size - 1}, ByteRange{0, size - 1}, ByteRange{123, 8 * kMiB + 5}}) {
    SCOPED_TRACE(std::to_string(range.first) + "-" + std::to_string(range.last));
    const std::string got = read_all(*s->open(key, range), 1000);
    EXPECT_EQ(got.size(), range.length());
    EXPECT_TRUE(got == data.substr(range.first, range.length()));
  }
  const Error outside = error_of([&] { s->open(key, ByteRange{size - 10, size}); });
  EXPECT_EQ(outside.code(), ErrorCode::bad_request);
  EXPECT_EQ(outside.reason(), "range_not_satisfiable");
}

TEST_F(S3StoreTest, MissingObjects) {
  auto s = store();
  const ObjectKey key("videos/01NONE/source");
  EXPECT_FALSE(s->stat(key));
  EXPECT_EQ(error_of([&] { s->open(key, std::nullopt); }).code(), ErrorCode::not_found);
  EXPECT_EQ(error_of([&] { s->open(key, ByteRange{0, 10}); }).code(), ErrorCode::not_found);
  EXPECT_EQ(error_of([&] { s->fetch_to_file(key, scratch_ / "copy"); }).code(), ErrorCode::not_found);
  EXPECT_TRUE(scratch_files().empty()) << "a failed fetch leaves no file behind";
  s->remove_prefix("videos/01NONE/");  // removing nothing is no error
}

TEST_F(S3StoreTest, RefusesBadKeys) {
  auto s = store();
  for (const char* key : {"", "/abs", "a//b", "a/../b", "./a", "a\\b", "a\nb"}) {
    SCOPED_TRACE(key);
    EXPECT_EQ(error_of([&] { s->stat(ObjectKey(key)); }).reason(), "bad_key");
  }
  EXPECT_EQ(error_of([&] { s->remove_prefix(""); }).reason(), "bad_key");
  EXPECT_EQ(error_of([&] { s->create(ObjectKey("k"), "video/mp4\r\nX-Evil: 1"); }).reason(), "bad_content_type");
}

TEST_F(S3StoreTest, AnUploadAbortedUnderTheWriterIsARetryableError) {
  auto s = store("&part_size=5MiB");
  const ObjectKey key("videos/01LOST/source");
  auto writer = s->create(key, "video/mp4");
  writer->write(bytes(6 * kMiB, 51));  // one part uploaded
  const auto uploads = raw_signed(*server_, "GET", server_->endpoint + "/" + bucket_ + "?uploads=");
  const auto start = uploads.body.find("<UploadId>") + 10;
  const std::string upload_id = uploads.body.substr(start, uploads.body.find("</UploadId>") - start);
  ASSERT_FALSE(upload_id.empty()) << uploads.body;
  // Someone else (a lifecycle rule, an operator) aborts it.
  EXPECT_EQ(raw_signed(*server_, "DELETE",
                       server_->endpoint + "/" + bucket_ + "/" + key.str() + "?uploadId=" + upload_id)
                .status,
            204);
  const Error error = error_of([&] { writer->commit(); });
  EXPECT_EQ(error.reason(), "s3_upload_lost") << error.what();
  EXPECT_EQ(error.code(), ErrorCode::unavailable) << error.what();
  EXPECT_TRUE(error.retryable());
  EXPECT_FALSE(s->stat(key));
}

TEST_F(S3StoreTest, UncommittedWriterLeavesNothingBehind) {
  auto s = store("&part_size=5MiB");
  const ObjectKey key("videos/01ABORT/source");
  {
    auto writer = s->create(key, "video/mp4");
    writer->write(bytes(12 * kMiB, 9));  // two full parts uploaded, the rest buffered
    ASSERT_EQ(pending_uploads(*server_, bucket_), 1) << "the multipart upload is under way";
  }  // a client that disconnects: the writer is destroyed without commit
  EXPECT_EQ(pending_uploads(*server_, bucket_), 0);
  EXPECT_FALSE(s->stat(key));

  // A writer that never filled a part sends nothing at all.
  { s->create(key, "video/mp4")->write(std::string(1000, 'x')); }
  EXPECT_EQ(pending_uploads(*server_, bucket_), 0);
  EXPECT_FALSE(s->stat(key));
}

TEST_F(S3StoreTest, WriterRefusesUseAfterCommit) {
  auto s = store();
  auto writer = s->create(ObjectKey("k"), "text/plain");
  writer->write(std::string("abc"));
  writer->commit();
  EXPECT_THROW(writer->write(std::string("more")), Error);
  EXPECT_THROW(writer->commit(), Error);
}

TEST_F(S3StoreTest, RemovePrefix) {
  auto s = store();
  std::vector<ObjectKey> doomed, kept;
  for (int i = 0; i < 40; ++i) doomed.emplace_back("videos/01AAA/renditions/r" + std::to_string(i) + ".mp4");
  doomed.emplace_back("videos/01AAA/source");
  for (int i = 0; i < 3; ++i) kept.emplace_back("videos/01AAB/r" + std::to_string(i));  // shares "videos/01AA"
  for (const auto& key : doomed) s->create(key, "video/mp4")->commit();
  for (const auto& key : kept) s->create(key, "video/mp4")->commit();

  s->remove_prefix("videos/01AAA/");
  for (const auto& key : doomed) EXPECT_FALSE(s->stat(key)) << key.str();
  for (const auto& key : kept) EXPECT_TRUE(s->stat(key)) << key.str();
  const auto listing = raw_signed(*server_, "GET", server_->endpoint + "/" + bucket_ + "?list-type=2&prefix=videos%2F");
  EXPECT_EQ(listing.body.find("01AAA"), std::string::npos) << listing.body;
}

TEST_F(S3StoreTest, PresignedUrlDownloadsWithPlainHttp) {
  auto s = store();
  const ObjectKey key("videos/01PRESIGN/renditions/720p.mp4");
  const std::string data = bytes(300'000, 21);
  auto writer = s->create(key, "video/mp4");
  writer->write(data);
  writer->commit();

  const auto url = s->presigned_url(key, "Vidéo de test-720p.mp4", 300s);
  ASSERT_TRUE(url);
  EXPECT_EQ(url->rfind(server_->endpoint + "/" + bucket_ + "/videos/01PRESIGN/renditions/720p.mp4?", 0), 0u) << *url;
  EXPECT_EQ(url->find(server_->secret_key), std::string::npos);
  const auto response = raw_get(*url);
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_TRUE(response.body == data);
  EXPECT_EQ(response.headers.at("content-disposition"),
            "attachment; filename=\"Vid_o de test-720p.mp4\"; filename*=UTF-8''Vid%C3%A9o%20de%20test-720p.mp4");

  // The signature covers the query: a changed file name is refused.
  std::string tampered = *url;
  tampered.replace(tampered.find("test-720p"), 4, "TEST");
  EXPECT_EQ(raw_get(tampered).status, 403);
}

TEST_F(S3StoreTest, PresignedUrlExpires) {
  auto s = store();
  const ObjectKey key("videos/01EXPIRE/source");
  s->create(key, "video/mp4")->write(std::string("x"));  // uncommitted: nothing
  auto writer = s->create(key, "video/mp4");
  writer->write(std::string("expiring"));
  writer->commit();

  // X-Amz-Date has whole seconds, so a 1-second URL lives until the next second but one: sign early in a
  // second so that the first download comes well within it.
  while (std::chrono::system_clock::now().time_since_epoch() % 1s > 200ms) std::this_thread::sleep_for(10ms);
  const auto url = s->presigned_url(key, "source.mp4", 1s);
  ASSERT_TRUE(url);
  EXPECT_EQ(raw_get(*url).status, 200);

  // Then it stops working (a bounded wait).
  long status = 200;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (status == 200 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(250ms);
    status = raw_get(*url).status;
  }
  EXPECT_EQ(status, 403);
}

TEST_F(S3StoreTest, PresignedUrlOnThePublicEndpoint) {
  // Browsers reach the store under another name than the services do: sign for that host.
  std::string public_endpoint = server_->endpoint;
  public_endpoint.replace(public_endpoint.find("127.0.0.1"), 9, "localhost");
  auto s = store("&public_endpoint=" + public_endpoint);
  const ObjectKey key("videos/01PUBLIC/source");
  auto writer = s->create(key, "video/mp4");
  writer->write(std::string("public"));
  writer->commit();
  const auto url = s->presigned_url(key, "", 60s);
  ASSERT_TRUE(url);
  EXPECT_EQ(url->rfind(public_endpoint + "/", 0), 0u) << *url;
  const auto response = raw_get(*url);
  EXPECT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.body, "public");
}

TEST_F(S3StoreTest, PresignOffMeansNoUrl) {
  auto s = store("&presign=false");
  EXPECT_FALSE(s->presigned_url(ObjectKey("a"), "a.mp4", 60s));
  EXPECT_FALSE(s->readable_path(ObjectKey("a")));
}

TEST_F(S3StoreTest, CreatesTheBucketWhenMissing) {
  const std::string url = server_->endpoint + "/" + bucket_;
  EXPECT_EQ(raw_signed(*server_, "HEAD", url).status, 404);
  auto s = store();
  EXPECT_EQ(raw_signed(*server_, "HEAD", url).status, 200);
  auto again = store();  // an existing bucket is used as it is
  auto writer = again->create(ObjectKey("k"), "text/plain");
  writer->write(std::string("v"));
  writer->commit();
  EXPECT_EQ(s->stat(ObjectKey("k"))->size, 1u);
  EXPECT_EQ(s->describe(), "s3://" + bucket_ + "@" + server_->endpoint.substr(7));
}

TEST_F(S3StoreTest, WrongSecretIsRefusedAtStartUp) {
  const std::string wrong = "not-the-secret-" + bucket_;
  const Error error = error_of([&] {
    S3ObjectStore s(options_for(*server_, bucket_), S3Credentials{server_->access_key, wrong});
  });
  EXPECT_EQ(error.reason(), "s3_forbidden");
  EXPECT_FALSE(error.retryable());
  const std::string message = error.what();
  EXPECT_EQ(message.rfind("credentials were refused by " + server_->endpoint, 0), 0u) << message;
  EXPECT_EQ(message.find(wrong), std::string::npos) << "the secret must not be in the message";

  const Error unknown = error_of([&] {
    S3ObjectStore s(options_for(*server_, bucket_), S3Credentials{"nobody", server_->secret_key});
  });
  EXPECT_EQ(unknown.reason(), "s3_forbidden");
}

TEST_F(S3StoreTest, UnreachableEndpointFailsAtStartUp) {
  const std::string endpoint = "http://127.0.0.1:" + std::to_string(unused_port());
  S3Options options = parse_s3_url("s3://" + bucket_ + "?endpoint=" + endpoint);
  options.retry.max_attempts = 3;
  options.retry.base_delay = 50ms;
  const Error error = error_of([&] { S3ObjectStore s(options, S3Credentials{"a", "b"}); });
  EXPECT_EQ(error.code(), ErrorCode::unavailable);
  EXPECT_EQ(error.reason(), "s3_unreachable");
  EXPECT_TRUE(error.retryable());
  EXPECT_EQ(std::string(error.what()).rfind("cannot reach " + endpoint, 0), 0u) << error.what();
}

TEST_F(S3StoreTest, ConcurrentWritersAndReaders) {
  auto s = store("&part_size=5MiB");
  std::vector<std::thread> threads;
  std::vector<std::string> failures(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      try {
        const ObjectKey key("videos/01CONC/r" + std::to_string(t));
        const std::string data = bytes(6 * kMiB + static_cast<std::size_t>(t), static_cast<std::uint64_t>(t));
        auto writer = s->create(key, "video/mp4");
        writer->write(data);
        writer->commit();
        if (read_all(*s->open(key, std::nullopt)) != data) failures[t] = "content differs";
      } catch (const std::exception& error) {
        failures[t] = error.what();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& failure : failures) EXPECT_EQ(failure, "");
}

/// Connections from this process to `port` in TIME_WAIT: each one a connection that was closed by us.
int closed_connections_to(int port) {
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);  // the header
  int count = 0;
  char remote_port[8];
  std::snprintf(remote_port, sizeof remote_port, "%04X", port);
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    if (remote.substr(remote.find(':') + 1) == remote_port && state == "06") ++count;  // 06: TIME_WAIT
  }
  return count;
}

TEST_F(S3StoreTest, ReusesConnections) {
  auto s = store();
  const int port = std::stoi(server_->endpoint.substr(server_->endpoint.rfind(':') + 1));
  const ObjectKey key("videos/01REUSE/source");
  s->create(key, "video/mp4")->commit();
  const int before = closed_connections_to(port);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(s->stat(key));
  // A connection per request would leave ~50 closed ones behind; a reused one leaves none.
  EXPECT_LT(closed_connections_to(port) - before, 5);
}

TEST_F(S3StoreTest, ReaderNoticesAnObjectReplacedMidway) {
  auto s = store();
  const ObjectKey key("videos/01CHANGE/source");
  auto writer = s->create(key, "video/mp4");
  writer->write(bytes(9 * kMiB, 41));
  writer->commit();
  auto reader = s->open(key, std::nullopt);
  std::string buffer(kMiB, '\0');
  ASSERT_EQ(reader->read(buffer), kMiB);  // the first 4 MiB chunk is fetched

  auto replacement = s->create(key, "video/mp4");
  replacement->write(bytes(9 * kMiB, 42));
  replacement->commit();
  const Error error = error_of([&] {
    while (reader->read(buffer) > 0) {
    }
  });
  EXPECT_EQ(error.reason(), "s3_object_changed");
  EXPECT_TRUE(error.retryable());
}

TEST_F(S3StoreTest, OneGiBUploadKeepsMemoryBounded) {
  auto s = store();  // the default 8 MiB parts
  const ObjectKey key("videos/01BIG/source");
  constexpr std::uint64_t kTotal = 1ull << 30;
  std::string block(kMiB, '\0');

  // Writing "5" to clear_refs resets the peak (VmHWM) to the current RSS, so earlier tests do not count.
  { std::ofstream("/proc/self/clear_refs") << "5"; }
  const long before = status_kib("VmHWM");
  ASSERT_GT(before, 0);

  Sha256 written;
  auto writer = s->create(key, "video/mp4");
  for (std::uint64_t offset = 0; offset < kTotal; offset += block.size()) {
    fill(block.data(), block.size(), offset, 99);
    written.add(block);
    writer->write(block);
  }
  writer->commit();
  writer.reset();
  const long after_upload = status_kib("VmHWM");
  RecordProperty("peak_rss_growth_upload_kib", std::to_string(after_upload - before));
  std::printf("1 GiB upload: peak RSS grew by %ld KiB\n", after_upload - before);
  EXPECT_LT(after_upload - before, 64 * 1024) << "peak RSS grew by " << (after_upload - before) / 1024 << " MiB";

  EXPECT_EQ(s->stat(key)->size, kTotal);
  // Read back through a reader, which holds one 4 MiB chunk at a time.
  Sha256 read;
  auto reader = s->open(key, std::nullopt);
  std::uint64_t total = 0;
  while (const std::size_t n = reader->read(block)) {
    read.add(std::string_view(block.data(), n));
    total += n;
  }
  EXPECT_EQ(total, kTotal);
  EXPECT_EQ(read.hex(), written.hex());
  const long after_read = status_kib("VmHWM");
  std::printf("1 GiB upload and read back: peak RSS grew by %ld KiB\n", after_read - before);
  EXPECT_LT(after_read - before, 64 * 1024);
  s->remove_prefix("videos/01BIG/");
}

TEST_F(S3StoreTest, UploadSurvivesAStoreRestart) {
  if (!server_->owned()) GTEST_SKIP() << "the store is not ours to restart";
  S3Options options = options_for(*server_, bucket_, "&part_size=5MiB");
  options.retry.max_attempts = 40;  // ~30 s of retries: a restart takes a few seconds
  options.retry.base_delay = 100ms;
  options.retry.max_delay = 1000ms;
  S3ObjectStore s(options, credentials_for(*server_));
  const ObjectKey key("videos/01RESTART/source");
  const std::string data = bytes(22 * kMiB, 31);

  auto writer = s.create(key, "video/mp4");
  writer->write(std::string_view(data).substr(0, 11 * kMiB));  // two parts uploaded
  server_->kill();                                              // kill -9: connections drop
  std::thread restarter([&] {
    std::this_thread::sleep_for(1s);
    server_->restart();
  });
  try {
    writer->write(std::string_view(data).substr(11 * kMiB));  // retried until the store is back
    writer->commit();
  } catch (...) {
    restarter.join();
    throw;
  }
  restarter.join();
  EXPECT_TRUE(read_all(*s.open(key, std::nullopt), kMiB) == data);
  EXPECT_EQ(pending_uploads(*server_, bucket_), 0);
}

}  // namespace
}  // namespace framepress
