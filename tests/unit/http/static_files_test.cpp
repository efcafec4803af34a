#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "http/static_files.h"
#include "unit/http/http_client.h"

namespace framepress::http {
namespace {

namespace fs = std::filesystem;
using test::CurlClient;
using test::RawClient;
using test::TestServer;

void write_file(const fs::path& path, std::string_view content) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
}

// A built page in <tmp>/site, and a secret beside it that must never be served.
class StaticFilesTest : public ::testing::Test {
 protected:
  StaticFilesTest()
      : base_(fs::temp_directory_path() /
              ("framepress-static-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++))),
        root_(base_ / "site"),
        big_(test::pattern_bytes((1 << 20) + 7, 21)) {
    write_file(root_ / "index.html", "<!doctype html><title>framepress</title>");
    write_file(root_ / "assets" / "index-3f9a.js", "console.log('hi')");
    write_file(root_ / "assets" / "index-3f9a.css", "body{}");
    write_file(root_ / "assets" / "index-3f9a.js.map", "{}");
    write_file(root_ / "assets" / "inter.woff2", "wOF2");
    write_file(root_ / "assets" / "big.bin", big_);
    write_file(root_ / "logo.svg", "<svg/>");
    write_file(root_ / "icon.png", "\x89PNG");
    write_file(root_ / "favicon.ico", "ico");
    write_file(root_ / "manifest.json", "{}");
    write_file(root_ / "robots.txt", "User-agent: *");
    write_file(root_ / "data.unknownext", "?");
    write_file(root_ / ".env", "SECRET=1");
    write_file(base_ / "secret.txt", "top secret");
    write_file(base_ / "outside" / "secret.txt", "top secret");
    fs::create_symlink(base_ / "secret.txt", root_ / "link.txt");
    fs::create_directory_symlink(base_ / "outside", root_ / "linkdir");

    Router router;
    router.add("GET", "/api/hello", [](Exchange& exchange) {
      Response response;
      response.body = R"({"hello":true})";
      return exchange.respond(std::move(response));
    });
    router.set_fallback(static_files(root_));
    server_.emplace(std::move(router));
  }
  ~StaticFilesTest() override {
    server_.reset();
    std::error_code ignored;
    fs::remove_all(base_, ignored);
  }

  test::CurlResponse get(const std::string& path, std::vector<std::string> headers = {}) {
    return curl_.request("GET", server_->url(path), std::move(headers));
  }
  // Sends the target as is: curl would tidy up "..".
  test::RawResponse raw_get(const std::string& target) {
    RawClient client(server_->port());
    client.send("GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    auto raw = client.read_to_end();
    return test::take_response(raw);
  }

  static inline std::atomic<int> counter_{0};
  fs::path base_;
  fs::path root_;
  std::string big_;
  std::optional<TestServer> server_;
  CurlClient curl_;
};

TEST_F(StaticFilesTest, ServesIndexAtTheRoot) {
  for (const char* path : {"/", "/index.html"}) {
    const auto response = get(path);
    EXPECT_EQ(response.status, 200) << path;
    EXPECT_EQ(response.body, "<!doctype html><title>framepress</title>") << path;
    EXPECT_EQ(response.header("content-type"), "text/html; charset=utf-8") << path;
    EXPECT_EQ(response.header("cache-control"), "no-cache") << path;
    EXPECT_EQ(response.header("x-content-type-options"), "nosniff") << path;
  }
}

TEST_F(StaticFilesTest, SetsContentTypes) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/assets/index-3f9a.js", "text/javascript; charset=utf-8"},
      {"/assets/index-3f9a.css", "text/css; charset=utf-8"},
      {"/assets/index-3f9a.js.map", "application/json"},
      {"/assets/inter.woff2", "font/woff2"},
      {"/logo.svg", "image/svg+xml"},
      {"/icon.png", "image/png"},
      {"/favicon.ico", "image/x-icon"},
      {"/manifest.json", "application/json"},
      {"/robots.txt", "text/plain; charset=utf-8"},
      {"/data.unknownext", "application/octet-stream"},
  };
  for (const auto& [path, type] : cases) {
    const auto response = get(path);
    EXPECT_EQ(response.status, 200) << path;
    EXPECT_EQ(response.header("content-type"), type) << path;
  }
}

TEST_F(StaticFilesTest, CachesAssetsForeverAndTheRestNot) {
  EXPECT_EQ(get("/assets/index-3f9a.js").header("cache-control"), "public, max-age=31536000, immutable");
  EXPECT_EQ(get("/logo.svg").header("cache-control"), "no-cache");
  EXPECT_EQ(get("/videos/123").header("cache-control"), "no-cache");
  // index.html given for a path under /assets/ is still index.html.
  EXPECT_EQ(get("/assets/route").header("cache-control"), "no-cache");
}

TEST_F(StaticFilesTest, GivesIndexForThePagesOwnRoutes) {
  for (const char* path : {"/videos/01J9ZX", "/videos", "/videos/", "/settings/profile/x", "/assets"}) {
    const auto response = get(path);
    EXPECT_EQ(response.status, 200) << path;
    EXPECT_EQ(response.body, "<!doctype html><title>framepress</title>") << path;
    EXPECT_EQ(response.header("content-type"), "text/html; charset=utf-8") << path;
  }
}

TEST_F(StaticFilesTest, MissingFileWithAnExtensionIsA404Json) {
  for (const char* path : {"/missing.png", "/assets/index-0000.js", "/videos/clip.mp4"}) {
    const auto response = get(path);
    EXPECT_EQ(response.status, 404) << path;
    EXPECT_EQ(response.header("content-type"), "application/json") << path;
    EXPECT_EQ(nlohmann::json::parse(response.body)["error"]["code"], "not_found") << path;
  }
}

TEST_F(StaticFilesTest, RoutesComeFirst) {
  const auto response = get("/api/hello");
  EXPECT_EQ(response.body, R"({"hello":true})");
  // Only GET and HEAD fall back to the files.
  EXPECT_EQ(curl_.request("POST", server_->url("/index.html"), {}, std::string("x")).status, 404);
}

TEST_F(StaticFilesTest, RefusesTraversal) {
  for (const char* target : {"/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt",
                             "/assets/%2E%2E/%2e%2e/secret.txt", "/./index.html", "/..%2fsecret.txt",
                             "/assets/..", "/.."}) {
    const auto response = raw_get(target);
    EXPECT_EQ(response.status, 400) << target;
    EXPECT_EQ(response.body.find("top secret"), std::string::npos) << target;
    EXPECT_EQ(nlohmann::json::parse(response.body)["error"]["code"], "bad_path") << target;
  }
}

TEST_F(StaticFilesTest, DoesNotFollowLinksOutOfTheRoot) {
  for (const char* path : {"/link.txt", "/linkdir/secret.txt"}) {
    const auto response = get(path);
    EXPECT_EQ(response.status, 404) << path;
    EXPECT_EQ(response.body.find("top secret"), std::string::npos) << path;
  }
}

TEST_F(StaticFilesTest, HidesDotFiles) {
  const auto response = get("/.env");
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.body.find("SECRET"), std::string::npos);
}

TEST_F(StaticFilesTest, StreamsALargeFile) {
  const auto response = get("/assets/big.bin");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.header("content-length"), std::to_string(big_.size()));
  EXPECT_TRUE(response.body == big_);
}

TEST_F(StaticFilesTest, HeadHasHeadersOnly) {
  RawClient client(server_->port());
  client.send(
      "HEAD /assets/big.bin HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /robots.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  auto raw = client.read_to_end();
  const auto head = test::take_response(raw, true);
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("content-length"), std::to_string(big_.size()));
  EXPECT_EQ(head.header("content-type"), "application/octet-stream");
  const auto next = test::take_response(raw);
  EXPECT_EQ(next.status, 200);
  EXPECT_EQ(next.body, "User-agent: *");
}

TEST_F(StaticFilesTest, RevalidatesByEtag) {
  const auto first = get("/");
  const auto etag = first.header("etag");
  ASSERT_TRUE(etag.has_value());
  const auto again = get("/", {"If-None-Match: " + *etag});
  EXPECT_EQ(again.status, 304);
  EXPECT_EQ(again.body, "");
  EXPECT_EQ(again.header("etag"), etag);
  EXPECT_EQ(get("/", {"If-None-Match: \"other\""}).status, 200);
  EXPECT_EQ(get("/", {"If-None-Match: \"other\", " + *etag}).status, 304);

  write_file(root_ / "index.html", "<!doctype html><title>a new build</title>");
  const auto changed = get("/", {"If-None-Match: " + *etag});
  EXPECT_EQ(changed.status, 200);
  EXPECT_EQ(changed.body, "<!doctype html><title>a new build</title>");
}

TEST(StaticFiles, RefusesARootThatIsNotADirectory) {
  try {
    static_files("/nonexistent/framepress/site");
    FAIL() << "accepted a missing directory";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unavailable);
  }
}

}  // namespace
}  // namespace framepress::http
