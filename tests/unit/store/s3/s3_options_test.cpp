// The storage URL and the credentials: pure parsing, no server.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "store/s3/s3_client.h"
#include "store/s3/s3_options.h"

namespace framepress {
namespace {

/// Runs `body` and returns the Error it throws (failing the test when it throws none).
template <typename F>
Error error_of(F&& body) {
  try {
    body();
  } catch (const Error& error) {
    return error;
  }
  ADD_FAILURE() << "no Error thrown";
  return Error(ErrorCode::internal, "none");
}

TEST(S3Url, TheIssueExample) {
  const auto o = parse_s3_url("s3://bucket?endpoint=http://host:8333&region=us-east-1&path_style=true");
  EXPECT_EQ(o.bucket, "bucket");
  EXPECT_EQ(o.endpoint, "http://host:8333");
  EXPECT_EQ(o.region, "us-east-1");
  EXPECT_TRUE(o.path_style);
  EXPECT_TRUE(o.presign);
  EXPECT_EQ(o.part_size, 8u << 20);
  EXPECT_EQ(o.public_endpoint, "");
}

TEST(S3Url, EveryParameter) {
  const auto o = parse_s3_url(
      "s3://media.example?endpoint=https://s3.internal:9000/&region=eu-west-3&path_style=true"
      "&public_endpoint=https://media.example.com&presign=false&part_size=16MiB");
  EXPECT_EQ(o.bucket, "media.example");
  EXPECT_EQ(o.endpoint, "https://s3.internal:9000");  // the trailing '/' is dropped
  EXPECT_EQ(o.region, "eu-west-3");
  EXPECT_EQ(o.public_endpoint, "https://media.example.com");
  EXPECT_FALSE(o.presign);
  EXPECT_EQ(o.part_size, 16u << 20);
}

TEST(S3Url, DefaultsToAwsWithVirtualHostedUrls) {
  const auto o = parse_s3_url("s3://videos?region=eu-central-1");
  EXPECT_EQ(o.endpoint, "https://s3.eu-central-1.amazonaws.com");
  EXPECT_FALSE(o.path_style);
  EXPECT_EQ(parse_s3_url("s3://videos").region, "us-east-1");
  // With an endpoint of its own, a store is addressed path-style unless told otherwise.
  EXPECT_TRUE(parse_s3_url("s3://videos?endpoint=http://127.0.0.1:8333").path_style);
  EXPECT_FALSE(parse_s3_url("s3://videos?endpoint=http://127.0.0.1:8333&path_style=false").path_style);
}

TEST(S3Url, AcceptsPercentEncodedValues) {
  const auto o = parse_s3_url("s3://videos/?endpoint=http%3A%2F%2F127.0.0.1%3A8333&part_size=5242880");
  EXPECT_EQ(o.endpoint, "http://127.0.0.1:8333");
  EXPECT_EQ(o.part_size, 5u << 20);
}

TEST(S3Url, RefusesWhatItDoesNotKnow) {
  for (const char* url : {
           "s3://videos?endpont=http://host:8333",             // unknown parameter (a typo)
           "s3://videos?endpoint=http://a:1&endpoint=http://b:2",  // repeated
           "http://videos",                                      // another scheme
           "s3://",                                              // no bucket
           "s3://Videos",                                        // upper case
           "s3://ab",                                            // too short
           "s3://-videos",                                       // starts with '-'
           "s3://vid_eos",                                       // '_'
           "s3://videos/prefix",                                 // a key prefix
           "s3://videos?endpoint=ftp://host",                    // not http(s)
           "s3://videos?endpoint=host:8333",                     // no scheme
           "s3://videos?endpoint=http://host:8333/base",         // a path
           "s3://videos?endpoint=http://user:secret@host:8333",  // credentials in the URL
           "s3://videos?endpoint=http://host:99999",             // bad port
           "s3://videos?endpoint=http://",                       // no host
           "s3://videos?path_style=yes",                         // not a boolean
           "s3://videos?part_size=4MiB",                         // below S3's 5 MiB part minimum
           "s3://videos?part_size=6GiB",                         // above its 5 GiB maximum
           "s3://videos?part_size=8XB",                          // unknown unit
           "s3://videos?part_size=",                             // empty
           "s3://videos?region=us east",                         // not a region
           "s3://a.b.c",                                         // dots need path_style (AWS default: virtual-hosted)
           "s3://videos?endpoint=http%3",                        // truncated escape
       }) {
    SCOPED_TRACE(url);
    const Error error = error_of([&] { parse_s3_url(url); });
    EXPECT_EQ(error.code(), ErrorCode::bad_request);
    EXPECT_EQ(error.reason(), "bad_storage_url");
  }
}

TEST(S3Url, UnknownParameterIsNamed) {
  const Error error = error_of([] { parse_s3_url("s3://videos?bogus=1"); });
  EXPECT_NE(std::string(error.what()).find("bogus"), std::string::npos) << error.what();
}

TEST(S3Url, ByteSizes) {
  EXPECT_EQ(parse_byte_size("8MiB"), 8u << 20);
  EXPECT_EQ(parse_byte_size("8 MiB"), 8u << 20);
  EXPECT_EQ(parse_byte_size("5242880"), 5242880u);
  EXPECT_EQ(parse_byte_size("1GiB"), 1u << 30);
  EXPECT_EQ(parse_byte_size("64KiB"), 64u << 10);
  EXPECT_EQ(parse_byte_size("10MB"), 10'000'000u);
  EXPECT_EQ(parse_byte_size("12B"), 12u);
  EXPECT_THROW(parse_byte_size("MiB"), Error);
  EXPECT_THROW(parse_byte_size("-1"), Error);
  EXPECT_THROW(parse_byte_size("99999999999999999999"), Error);
  EXPECT_THROW(parse_byte_size("20000000000GiB"), Error);
}

TEST(S3Url, BuildsPathStyleAndVirtualHostedUrls) {
  const S3Credentials credentials{"access", "secret"};
  s3::S3Client path_style(parse_s3_url("s3://videos?endpoint=http://127.0.0.1:8333"), credentials);
  EXPECT_EQ(path_style.url("videos/A B/source"), "http://127.0.0.1:8333/videos/videos/A%20B/source");
  EXPECT_EQ(path_style.url("", "list-type=2"), "http://127.0.0.1:8333/videos?list-type=2");
  EXPECT_EQ(path_style.description(), "s3://videos@127.0.0.1:8333");

  s3::S3Client aws(parse_s3_url("s3://videos?region=eu-west-1"), credentials);
  EXPECT_EQ(aws.url("a/b.mp4", "uploads="), "https://videos.s3.eu-west-1.amazonaws.com/a/b.mp4?uploads=");
  EXPECT_EQ(aws.description(), "s3://videos@s3.eu-west-1.amazonaws.com");
}

// --- credentials ---

class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    std::string pattern = (std::filesystem::temp_directory_path() / "fp-secret-XXXXXX").string();
    const int fd = ::mkstemp(pattern.data());
    ::close(fd);
    path_ = pattern;
    std::ofstream(path_, std::ios::binary) << content;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

TEST(S3Credentials, FromVariables) {
  const auto c = credentials_from_environment({{"FRAMEPRESS_S3_ACCESS_KEY", "AK"}, {"FRAMEPRESS_S3_SECRET_KEY", "SK"}});
  EXPECT_EQ(c.access_key, "AK");
  EXPECT_EQ(c.secret_key, "SK");
}

TEST(S3Credentials, FromFilesWithoutTheirTrailingNewline) {
  TempFile access("AK-file\n"), secret("SK-file\r\n\n");
  const auto c = credentials_from_environment(
      {{"FRAMEPRESS_S3_ACCESS_KEY_FILE", access.path()}, {"FRAMEPRESS_S3_SECRET_KEY_FILE", secret.path()}});
  EXPECT_EQ(c.access_key, "AK-file");
  EXPECT_EQ(c.secret_key, "SK-file");
}

TEST(S3Credentials, MixesAVariableAndAFile) {
  TempFile secret("SK-file");
  const auto c = credentials_from_environment(
      {{"FRAMEPRESS_S3_ACCESS_KEY", "AK"}, {"FRAMEPRESS_S3_SECRET_KEY_FILE", secret.path()}});
  EXPECT_EQ(c.access_key, "AK");
  EXPECT_EQ(c.secret_key, "SK-file");
}

TEST(S3Credentials, FallsBackToThePrototypesMinioVariables) {
  const auto c = credentials_from_environment({{"MINIO_ACCESS_KEY", "minio"}, {"MINIO_SECRET_KEY", "minio123"}});
  EXPECT_EQ(c.access_key, "minio");
  EXPECT_EQ(c.secret_key, "minio123");
  // framepress's own variables win.
  const auto d = credentials_from_environment({{"MINIO_ACCESS_KEY", "minio"},
                                               {"MINIO_SECRET_KEY", "minio123"},
                                               {"FRAMEPRESS_S3_ACCESS_KEY", "AK"},
                                               {"FRAMEPRESS_S3_SECRET_KEY", "SK"}});
  EXPECT_EQ(d.access_key, "AK");
  EXPECT_EQ(d.secret_key, "SK");
}

TEST(S3Credentials, RefusesMissingAmbiguousOrUnreadable) {
  TempFile secret("from-file");
  const std::vector<std::map<std::string, std::string>> cases = {
      {},
      {{"FRAMEPRESS_S3_ACCESS_KEY", "AK"}},
      {{"FRAMEPRESS_S3_ACCESS_KEY", "AK"}, {"FRAMEPRESS_S3_SECRET_KEY", ""}},
      {{"FRAMEPRESS_S3_ACCESS_KEY", "AK"},
       {"FRAMEPRESS_S3_SECRET_KEY", "s3cr3t-value"},
       {"FRAMEPRESS_S3_SECRET_KEY_FILE", secret.path()}},
      {{"FRAMEPRESS_S3_ACCESS_KEY", "AK"}, {"FRAMEPRESS_S3_SECRET_KEY_FILE", "/nonexistent/fp-secret"}},
  };
  for (const auto& env : cases) {
    const Error error = error_of([&] { credentials_from_environment(env); });
    EXPECT_EQ(error.code(), ErrorCode::bad_request);
    EXPECT_EQ(error.reason(), "s3_credentials");
    // The message names variables and files, never a value.
    EXPECT_EQ(std::string(error.what()).find("s3cr3t-value"), std::string::npos) << error.what();
    EXPECT_EQ(std::string(error.what()).find("from-file"), std::string::npos) << error.what();
  }
}

TEST(S3Credentials, UnreadableFileIsNamed) {
  const Error error = error_of([] {
    credentials_from_environment(
        {{"FRAMEPRESS_S3_ACCESS_KEY", "AK"}, {"FRAMEPRESS_S3_SECRET_KEY_FILE", "/nonexistent/x"}});
  });
  EXPECT_NE(std::string(error.what()).find("FRAMEPRESS_S3_SECRET_KEY_FILE (/nonexistent/x)"), std::string::npos)
      << error.what();
}

TEST(S3Credentials, ReadsTheProcessEnvironment) {
  ::setenv("FP_S3_TEST_VARIABLE", "a=b", 1);
  const auto env = process_environment();
  ASSERT_TRUE(env.contains("FP_S3_TEST_VARIABLE"));
  EXPECT_EQ(env.at("FP_S3_TEST_VARIABLE"), "a=b");
  ::unsetenv("FP_S3_TEST_VARIABLE");
}

}  // namespace
}  // namespace framepress
