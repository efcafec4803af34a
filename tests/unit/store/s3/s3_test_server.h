#pragma once
// A real S3 server for the store tests, and plain libcurl requests to look at it from outside the store.
//
// The server is SeaweedFS, started by scripts/seaweedfs.sh in a temporary directory the first time a
// test asks for it (so the pure tests start nothing) and stopped by a gtest Environment at the end. ctest
// runs each test in its own process, so each gets its own server; run the binary directly to share one.
// FRAMEPRESS_TEST_S3_ENDPOINT (+ _ACCESS_KEY, _SECRET_KEY, _REGION) points the tests at a running store
// instead; the tests that restart the server are then skipped.

#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "store/s3/s3_options.h"

namespace framepress::testing {

struct S3TestServer {
  std::string endpoint;  // http://127.0.0.1:<port>
  std::string access_key;
  std::string secret_key;
  std::string region = "us-east-1";
  std::filesystem::path dir;  // empty for an external server

  /// Whether the tests started it (and so may kill and restart it).
  bool owned() const { return !dir.empty(); }
  /// scripts/seaweedfs.sh kill / restart on the same ports and data. Throw std::runtime_error on failure.
  void kill() const;
  void restart() const;
};

/// The server, started at the first call. Throws std::runtime_error (with the script's output) when it
/// cannot be started.
const S3TestServer& s3_server();

/// A fresh bucket name ("fp-<stem>-<random>"), so that tests never see each other's objects.
std::string random_bucket(std::string_view stem);

/// Options for `bucket` on the test server, with `extra` ("&part_size=5MiB") appended to the URL.
S3Options options_for(const S3TestServer& server, const std::string& bucket, const std::string& extra = "");
S3Credentials credentials_for(const S3TestServer& server);

struct RawResponse {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

/// A request signed by libcurl alone (not through the store): for checks such as ListMultipartUploads.
RawResponse raw_signed(const S3TestServer& server, const std::string& method, const std::string& url);
/// An unsigned GET, as a browser following a presigned URL makes it.
RawResponse raw_get(const std::string& url);

/// How many <Upload> entries ListMultipartUploads reports for `bucket`: pending multipart uploads.
int pending_uploads(const S3TestServer& server, const std::string& bucket);

}  // namespace framepress::testing
