// End to end over a real S3 store: the built `framepress serve --storage s3://…` (embedded bus and
// workers, objects in a SeaweedFS started by scripts/seaweedfs.sh), driven over HTTP as a user would.
// What it proves: an upload streams into an S3 multipart upload while it arrives, with flat memory; a
// client that goes away leaves nothing in the bucket; a rendition download is a 302 to a presigned URL
// on the public endpoint, which works with curl and stops working after its expiry.
//
// The bucket is looked at from outside framepress, with requests that libcurl signs itself
// (CURLOPT_AWS_SIGV4), so the checks do not trust the code they check.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <fstream>
#include <iostream>
#include <iterator>
#include <thread>

#include "e2e/e2e_support.h"

namespace framepress::e2e {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

constexpr const char* kBucket = "videos";

/// The S3 server as a client of the bucket sees it.
class BucketView {
 public:
  explicit BucketView(const ScriptService& s3)
      : endpoint_(s3["S3_ENDPOINT"]), userpwd_(s3["S3_ACCESS_KEY"] + ":" + s3["S3_SECRET_KEY"]) {}

  /// A signed request to `path_and_query` (after the endpoint), with `headers`.
  HttpResponse request(const std::string& method, const std::string& path_and_query, const HeaderList& headers = {}) const {
    auto response = s3_request(method, endpoint_ + path_and_query, userpwd_, headers);
    if (response.status == 0) throw std::runtime_error("no answer from S3 for " + method + " " + path_and_query);
    return response;
  }

  /// The keys of the pending multipart uploads (ListMultipartUploads).
  std::vector<std::string> pending_uploads() const {
    auto response = request("GET", "/" + std::string(kBucket) + "?uploads=");
    if (response.status != 200) throw std::runtime_error("ListMultipartUploads: " + response.body);
    std::vector<std::string> keys;
    for (std::size_t at = 0; (at = response.body.find("<Upload>", at)) != std::string::npos; ++at) {
      keys.push_back(between(response.body, "<Key>", "</Key>", at));
    }
    return keys;
  }

  /// The keys of the objects under `prefix` (ListObjectsV2; a test bucket holds far fewer than 1,000).
  std::vector<std::string> objects(const std::string& prefix) const {
    std::string encoded;  // SigV4 signs the query as sent: '/' must arrive percent-encoded
    for (char c : prefix) encoded += c == '/' ? std::string("%2F") : std::string(1, c);
    auto response = request("GET", "/" + std::string(kBucket) + "?list-type=2&prefix=" + encoded);
    if (response.status != 200) throw std::runtime_error("ListObjectsV2: " + response.body);
    std::vector<std::string> keys;
    for (std::size_t at = 0; (at = response.body.find("<Contents>", at)) != std::string::npos; ++at) {
      keys.push_back(between(response.body, "<Key>", "</Key>", at));
    }
    return keys;
  }

  HttpResponse get(const std::string& key, const HeaderList& headers = {}) const {
    return request("GET", "/" + std::string(kBucket) + "/" + key, headers);
  }

  const std::string& endpoint() const { return endpoint_; }

 private:
  static std::string between(const std::string& text, const std::string& open, const std::string& close, std::size_t from) {
    auto start = text.find(open, from);
    if (start == std::string::npos) return "";
    start += open.size();
    return text.substr(start, text.find(close, start) - start);
  }

  std::string endpoint_;
  std::string userpwd_;
};

/// Waits (up to a minute, polling) until `done()`; returns whether it got there.
std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// A client on a plain socket, so that a test decides exactly what is sent, when, and when to go away.
class RawClient {
 public:
  explicit RawClient(const std::string& server_url) {
    const auto port = static_cast<std::uint16_t>(std::stoi(server_url.substr(server_url.rfind(':') + 1)));
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    timeval patience{60, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      throw std::runtime_error("cannot connect to " + server_url);
    }
  }
  ~RawClient() { close(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  /// Sends all of `bytes`; false once the server has closed the connection.
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  /// What the server sent until it closed the connection (or a minute passed); "" if it reset it.
  std::string receive_all() {
    std::string out;
    char buffer[4096];
    for (ssize_t n; (n = ::recv(fd_, buffer, sizeof buffer, 0)) > 0;) out.append(buffer, static_cast<std::size_t>(n));
    return out;
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

class S3ServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    s3 = std::make_unique<ScriptService>("seaweedfs.sh", scratch.path() / "s3");
    bucket = std::make_unique<BucketView>(*s3);
  }
  void TearDown() override {
    if (HasFailure() && server) std::cerr << "---- server log ----\n" << server->log() << "\n";
    server.reset();
    s3.reset();
  }

  /// `framepress serve` on the bucket, with `parameters` added to the storage URL.
  void serve(const std::string& parameters, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--storage", "s3://" + std::string(kBucket) + "?endpoint=" + bucket->endpoint() + parameters,
                                     "--encoder-preset", "ultrafast", "--workers", "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    server = std::make_unique<FramepressProcess>(
        "serve", scratch.path() / "data", args,
        std::vector<std::string>{"FRAMEPRESS_S3_ACCESS_KEY=" + (*s3)["S3_ACCESS_KEY"],
                                 "FRAMEPRESS_S3_SECRET_KEY=" + (*s3)["S3_SECRET_KEY"]});
  }
  std::filesystem::path scratch_dir() const { return scratch.path() / "data" / "scratch"; }

  /// Waits for the upload in progress to show in the bucket as a multipart upload of a source.
  void expect_one_pending_source_upload() {
    std::vector<std::string> pending;
    EXPECT_TRUE(eventually([&] { return !(pending = bucket->pending_uploads()).empty(); }))
        << "the upload never became a multipart upload";
    ASSERT_EQ(pending.size(), 1u);
    EXPECT_EQ(pending[0].rfind("videos/", 0), 0u) << pending[0];
    EXPECT_TRUE(pending[0].ends_with("/source")) << pending[0];
  }
  /// No object under videos/, no pending multipart upload, no spool file: nothing of the upload is left.
  void expect_nothing_left() {
    EXPECT_TRUE(eventually([&] { return bucket->pending_uploads().empty(); }))
        << "still pending: " << bucket->pending_uploads().size();
    EXPECT_EQ(bucket->objects("videos/"), std::vector<std::string>{});
    EXPECT_TRUE(eventually([&] { return files_under(scratch_dir()).empty(); })) << files_under(scratch_dir()).size();
  }

  TempDir scratch;
  TempDir media;
  std::unique_ptr<ScriptService> s3;
  std::unique_ptr<BucketView> bucket;
  std::unique_ptr<FramepressProcess> server;
};

}  // namespace

// The body is a real MP4 followed by a 1 GiB-long `free` box (MP4's own padding, which demuxers skip), so
// the probe accepts it and the whole path runs: streamed into the multipart upload while it arrives,
// committed after the probe, fetched by the worker, encoded. A refused body would prove less: its
// multipart upload is aborted, so nothing would show that the stored object is whole.
TEST_F(S3ServeTest, A1GiBUploadStreamsIntoAMultipartUploadWithFlatMemory) {
  serve("");
  const auto clip = testing::make_clip(media.path(), "big", {.width = 320, .height = 180, .seconds = 1});
  const std::string head = read_file(clip);
  const std::uint64_t total = 1ULL << 30;
  const std::uint64_t box = total - head.size();  // the free box: its 8-byte header and zeros
  ASSERT_LT(box, 1ULL << 32);
  std::string box_header(8, '\0');
  for (int i = 0; i < 4; ++i) box_header[static_cast<std::size_t>(i)] = static_cast<char>((box >> (24 - 8 * i)) & 0xff);
  box_header.replace(4, 4, "free");
  const std::string prefix = head + box_header;

  const std::uint64_t baseline = server->rss_bytes();
  // While the body is on its way, the upload must already be a multipart upload in the bucket.
  std::atomic<std::uint64_t> sent{0};
  std::atomic<bool> finished{false};
  std::atomic<std::uint64_t> sent_when_seen{0};
  std::thread watcher([&] {
    while (!finished && sent_when_seen == 0) {
      try {
        for (const auto& key : bucket->pending_uploads()) {
          if (key.rfind("videos/", 0) == 0 && key.ends_with("/source")) sent_when_seen = sent.load();
        }
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
        return;
      }
      std::this_thread::sleep_for(100ms);
    }
  });
  auto response = upload_generated(server->url() + "/api/videos?renditions=144p", total, "video/mp4",
                                    [&](char* buffer, std::size_t n, std::uint64_t offset) {
                                      std::memset(buffer, 0, n);
                                      if (offset < prefix.size()) {
                                        auto take = std::min<std::uint64_t>(n, prefix.size() - offset);
                                        std::memcpy(buffer, prefix.data() + offset, take);
                                      }
                                      sent = offset + n;
                                    });
  finished = true;
  watcher.join();
  ASSERT_EQ(response.status, 201) << response.body;
  const std::uint64_t peak_after_upload = server->peak_rss_bytes();
  EXPECT_LT(peak_after_upload - std::min(peak_after_upload, baseline), 64ULL << 20)
      << "baseline " << baseline << " peak " << peak_after_upload;
  EXPECT_GT(sent_when_seen.load(), 0u) << "no multipart upload was seen while the body was being sent";
  EXPECT_LT(sent_when_seen.load(), total / 2) << "the multipart upload began only late in the body";

  // Committed whole and in order, with no upload left pending.
  const std::string id = response.json()["id"];
  const std::string key = "videos/" + id + "/source";
  EXPECT_EQ(bucket->pending_uploads(), std::vector<std::string>{});
  auto head_response = bucket->request("HEAD", "/" + std::string(kBucket) + "/" + key);
  ASSERT_EQ(head_response.status, 200);
  EXPECT_EQ(head_response.headers["content-length"], std::to_string(total));
  const std::uint64_t seam = head.size() - 16;  // the clip's end, the box header, the first zeros
  auto across = bucket->get(key, {"Range: bytes=" + std::to_string(seam) + "-" + std::to_string(seam + 63)});
  ASSERT_EQ(across.status, 206);
  EXPECT_EQ(across.body, (prefix + std::string(64, '\0')).substr(seam, 64));
  auto tail = bucket->get(key, {"Range: bytes=" + std::to_string(total - 4096) + "-"});
  EXPECT_EQ(tail.body, std::string(4096, '\0'));

  // The worker fetches the 1 GiB source, encodes it and leaves no scratch file behind.
  auto stream = follow_job(server->url(), id, 600s);
  ASSERT_FALSE(stream.events.empty());
  EXPECT_EQ(stream.events.back().event, "completed") << stream.events.back().data;
  EXPECT_EQ(bucket->objects("videos/" + id + "/renditions/").size(), 1u);
  // Removed just after the worker published the end: a moment after the client saw it.
  EXPECT_TRUE(eventually([&] { return files_under(scratch_dir()).empty(); })) << files_under(scratch_dir()).size();
  const std::uint64_t peak = server->peak_rss_bytes();
  EXPECT_LT(peak - std::min(peak, baseline), 64ULL << 20) << "baseline " << baseline << " peak " << peak;
  std::cout << "RSS baseline " << (baseline >> 20) << " MiB, peak after the upload " << (peak_after_upload >> 20)
            << " MiB, peak after the job " << (peak >> 20) << " MiB; multipart upload seen after "
            << (sent_when_seen.load() >> 20) << " MiB sent\n";
  EXPECT_EQ(server->stop(), 0);
}

TEST_F(S3ServeTest, AClientThatDisconnectsMidUploadLeavesNoObjectAndNoPendingUpload) {
  serve("&part_size=5MiB");
  RawClient client(server->url());
  ASSERT_TRUE(client.send("POST /api/videos HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: video/mp4\r\n"
                          "Content-Length: " + std::to_string(256ULL << 20) + "\r\n\r\n"));
  // A few parts' worth, then wait until the server has started the multipart upload with them.
  const std::string mebibyte(1 << 20, 'x');
  for (int i = 0; i < 24; ++i) ASSERT_TRUE(client.send(mebibyte));
  expect_one_pending_source_upload();
  EXPECT_FALSE(files_under(scratch_dir()).empty());  // the spool for the probe, meanwhile

  client.close();  // the client goes away with most of the body unsent

  expect_nothing_left();
  EXPECT_EQ(http_get(server->url() + "/healthz").status, 200);
  EXPECT_EQ(server->stop(), 0);
}

// The other ways an upload fails after its parts have gone to S3: the probe refuses the file (422), and a
// chunked body runs past the size limit (413, known only mid-way).
TEST_F(S3ServeTest, RefusedUploadsAbortTheirMultipartUpload) {
  serve("&part_size=5MiB", {"--max-upload-bytes", "24MiB"});
  const std::string mebibyte(1 << 20, 'x');
  {
    SCOPED_TRACE("not a video");
    RawClient client(server->url());
    ASSERT_TRUE(client.send("POST /api/videos HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: video/mp4\r\n"
                            "Connection: close\r\nContent-Length: " + std::to_string(20 << 20) + "\r\n\r\n"));
    for (int i = 0; i < 12; ++i) ASSERT_TRUE(client.send(mebibyte));
    expect_one_pending_source_upload();
    for (int i = 12; i < 20; ++i) ASSERT_TRUE(client.send(mebibyte));
    const std::string response = client.receive_all();
    EXPECT_EQ(response.rfind("HTTP/1.1 422", 0), 0u) << response.substr(0, 300);
    expect_nothing_left();
  }
  {
    SCOPED_TRACE("over the limit");
    RawClient client(server->url());
    ASSERT_TRUE(client.send("POST /api/videos HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: video/mp4\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n"));
    const std::string chunk = "100000\r\n" + mebibyte + "\r\n";  // 1 MiB each
    for (int i = 0; i < 12; ++i) ASSERT_TRUE(client.send(chunk));
    expect_one_pending_source_upload();
    bool refused = false;
    for (int i = 12; i < 64 && !refused; ++i) refused = !client.send(chunk);
    const std::string response = client.receive_all();
    // The answer may be lost to the reset of a connection the server closed with bytes unread.
    if (!response.empty()) EXPECT_EQ(response.rfind("HTTP/1.1 413", 0), 0u) << response.substr(0, 300);
    EXPECT_TRUE(refused || !response.empty()) << "the server took 64 MiB past a 24 MiB limit";
    expect_nothing_left();
  }
  EXPECT_EQ(server->stop(), 0);
}

TEST_F(S3ServeTest, ARenditionDownloadIsA302ToAPresignedUrlThatExpires) {
  // The public endpoint names the same server by another host, as a browser's view of it would.
  const std::string internal = bucket->endpoint();
  const std::string public_endpoint = "http://localhost:" + internal.substr(internal.rfind(':') + 1);
  serve("&public_endpoint=" + public_endpoint, {"--presign-expiry", "3s"});
  const auto clip = testing::make_clip(media.path(), "holiday", {.width = 320, .height = 180, .seconds = 1});
  auto uploaded = upload_file(server->url() + "/api/videos?renditions=144p", clip);
  ASSERT_EQ(uploaded.status, 201) << uploaded.body;
  const std::string id = uploaded.json()["id"];
  auto stream = follow_job(server->url(), id);
  ASSERT_FALSE(stream.events.empty());
  ASSERT_EQ(stream.events.back().event, "completed") << stream.events.back().data;
  const auto job = http_get(server->url() + "/api/videos/" + id).json();

  const auto signed_at = std::chrono::steady_clock::now();
  auto redirect = http_get(server->url() + "/api/videos/" + id + "/renditions/144p");
  ASSERT_EQ(redirect.status, 302) << redirect.body;
  const std::string location = redirect.headers["location"];
  EXPECT_EQ(location.rfind(public_endpoint + "/", 0), 0u) << location;
  EXPECT_NE(location.find("response-content-disposition="), std::string::npos) << location;

  // curl, as a user or a browser would follow it: no credentials but the URL's own signature.
  auto curl = [&](const std::filesystem::path& out) {
    return testing::run_process({"curl", "-sS", "-o", out.string(), "-D", "-", "-w", "%{http_code}", location});
  };
  auto fetched = curl(media.path() / "download.mp4");
  ASSERT_EQ(fetched.exit_code, 0) << fetched.err;
  EXPECT_TRUE(fetched.out.ends_with("200")) << fetched.out;
  EXPECT_NE(fetched.out.find("holiday-144p.mp4"), std::string::npos) << fetched.out;  // Content-Disposition
  const std::string downloaded = read_file(media.path() / "download.mp4");
  const auto stored = bucket->get("videos/" + id + "/renditions/144p.mp4");
  ASSERT_EQ(stored.status, 200);
  EXPECT_EQ(downloaded.size(), job["renditions"][0]["size"].get<std::size_t>());
  EXPECT_TRUE(downloaded == stored.body) << "the download differs from the stored rendition";

  std::this_thread::sleep_until(signed_at + 4s);  // past the 3 s expiry
  auto expired = curl(media.path() / "expired.xml");
  EXPECT_EQ(expired.exit_code, 0) << expired.err;
  EXPECT_TRUE(expired.out.ends_with("403")) << expired.out;
  EXPECT_EQ(read_file(media.path() / "expired.xml").find("ftyp"), std::string::npos);

  // The worker fetched the source from S3 and removed its scratch copy and outputs.
  EXPECT_TRUE(eventually([&] { return files_under(scratch_dir()).empty(); })) << files_under(scratch_dir()).size();
  EXPECT_EQ(server->stop(), 0);
}

}  // namespace framepress::e2e
