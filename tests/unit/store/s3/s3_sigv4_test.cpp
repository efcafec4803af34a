// SigV4 presigning, encoding, XML reading and the retry classification: pure, no server.

#include <curl/curl.h>
#include <gtest/gtest.h>

#include <chrono>

#include "store/s3/s3_client.h"
#include "store/s3/s3_retry.h"
#include "store/s3/s3_sigv4.h"

namespace framepress::s3 {
namespace {

using namespace std::chrono;
using namespace std::chrono_literals;

// The example of AWS's "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)":
// GET examplebucket/test.txt, presigned on 2013-05-24 for 86400 s.
TEST(SigV4, PresignsTheAwsDocumentationExample) {
  PresignRequest request;
  request.origin = "https://examplebucket.s3.amazonaws.com";
  request.path = "/test.txt";
  request.region = "us-east-1";
  request.access_key = "AKIAIOSFODNN7EXAMPLE";
  request.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  request.now = sys_days{2013y / May / 24};
  request.expires = 86400s;
  EXPECT_EQ(presign_get(request),
            "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
            "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
            "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
}

TEST(SigV4, SignsExtraParametersInCanonicalOrder) {
  PresignRequest request;
  request.origin = "http://127.0.0.1:8333";
  request.path = "/bucket/a%20b.mp4";
  request.params = {{"response-content-disposition", "attachment; filename=\"x.mp4\""}};
  request.region = "us-east-1";
  request.access_key = "AK";
  request.secret_key = "SK";
  request.now = sys_days{2026y / November / 24} + 12h;
  request.expires = 60s;
  const std::string url = presign_get(request);
  // Upper-case X-Amz-* sort before lower-case names; the value is fully encoded; the signature comes last.
  EXPECT_EQ(url.rfind("http://127.0.0.1:8333/bucket/a%20b.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&", 0), 0u) << url;
  EXPECT_NE(url.find("&X-Amz-SignedHeaders=host&response-content-disposition="
                     "attachment%3B%20filename%3D%22x.mp4%22&X-Amz-Signature="),
            std::string::npos)
      << url;
  // The same inputs give the same URL; another secret gives another signature.
  EXPECT_EQ(presign_get(request), url);
  request.secret_key = "other";
  EXPECT_NE(presign_get(request), url);
}

TEST(SigV4, DefaultPortsAreNotPartOfTheSignedHost) {
  PresignRequest a;
  a.origin = "https://media.example.com";
  a.path = "/k";
  a.region = "us-east-1";
  a.access_key = "AK";
  a.secret_key = "SK";
  a.now = sys_days{2026y / January / 1};
  PresignRequest b = a;
  b.origin = "https://media.example.com:443";
  const auto signature = [](const std::string& url) { return url.substr(url.find("X-Amz-Signature=")); };
  EXPECT_EQ(signature(presign_get(a)), signature(presign_get(b)));
}

TEST(SigV4, UriEncoding) {
  EXPECT_EQ(uri_encode("videos/01H/renditions/720p.mp4", true), "videos/01H/renditions/720p.mp4");
  EXPECT_EQ(uri_encode("a b/c~d_e-f.g", true), "a%20b/c~d_e-f.g");
  EXPECT_EQ(uri_encode("a/b", false), "a%2Fb");
  EXPECT_EQ(uri_encode("é+=&?", false), "%C3%A9%2B%3D%26%3F");
}

TEST(SigV4, CanonicalQueryIsSortedAndEncoded) {
  EXPECT_EQ(canonical_query({{"uploads", ""}}), "uploads=");
  EXPECT_EQ(canonical_query({{"uploadId", "x/y+z"}, {"partNumber", "10"}}), "partNumber=10&uploadId=x%2Fy%2Bz");
  EXPECT_EQ(canonical_query({{"prefix", "videos/A"}, {"list-type", "2"}, {"continuation-token", "t=="}}),
            "continuation-token=t%3D%3D&list-type=2&prefix=videos%2FA");
  EXPECT_EQ(canonical_query({}), "");
}

TEST(SigV4, Digests) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(md5_base64(""), "1B2M2Y8AsgTpgAmY7PhCfg==");
  EXPECT_EQ(md5_base64("abc"), "kAFQmDzST7DWlj99KOF/cg==");
  EXPECT_EQ(amz_date(sys_days{2026y / November / 24} + 5h + 6min + 7s), "20261124T050607Z");
}

TEST(SigV4, ContentDisposition) {
  EXPECT_EQ(content_disposition_attachment("clip-720p.mp4"),
            "attachment; filename=\"clip-720p.mp4\"; filename*=UTF-8''clip-720p.mp4");
  EXPECT_EQ(content_disposition_attachment("Vidéo \"été\" 720p.mp4"),
            "attachment; filename=\"Vid_o __t__ 720p.mp4\"; "
            "filename*=UTF-8''Vid%C3%A9o%20%22%C3%A9t%C3%A9%22%20720p.mp4");
  EXPECT_EQ(content_disposition_attachment("a\\b\r\n.mp4"),
            "attachment; filename=\"a_b__.mp4\"; filename*=UTF-8''a%5Cb%0D%0A.mp4");
}

TEST(S3Xml, ReadsValuesAndEscapes) {
  const std::string body =
      "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>a &lt;b&gt; &amp; &#233;&#x41;</Message>"
      "</Error>";
  ASSERT_EQ(xml_values(body, "Code").size(), 1u);
  EXPECT_EQ(xml_values(body, "Code")[0], "NoSuchKey");
  EXPECT_EQ(xml_values(body, "Message")[0], "a <b> & \xC3\xA9" "A");
  EXPECT_TRUE(xml_values(body, "Key").empty());
  EXPECT_EQ(xml_values("<Key>a</Key><Key>b</Key>", "Key"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(xml_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");

  Response response;
  response.status = 403;
  response.body = body;
  EXPECT_EQ(response.error_code(), "NoSuchKey");
  EXPECT_EQ(response.summary(), "HTTP 403 NoSuchKey: a <b> & \xC3\xA9" "A");
}

TEST(S3Retry, RetriesTransientAnswersOnly) {
  EXPECT_EQ(classify_response(500, "InternalError"), Verdict::retry);
  EXPECT_EQ(classify_response(503, "SlowDown"), Verdict::retry);
  EXPECT_EQ(classify_response(503, ""), Verdict::retry);
  EXPECT_EQ(classify_response(502, ""), Verdict::retry);
  EXPECT_EQ(classify_response(504, ""), Verdict::retry);
  EXPECT_EQ(classify_response(400, "RequestTimeout"), Verdict::retry);
  EXPECT_EQ(classify_response(408, ""), Verdict::retry);
  EXPECT_EQ(classify_response(429, ""), Verdict::retry);
  EXPECT_EQ(classify_response(409, "OperationAborted"), Verdict::retry);

  EXPECT_EQ(classify_response(400, "InvalidArgument"), Verdict::give_up);
  EXPECT_EQ(classify_response(400, "EntityTooSmall"), Verdict::give_up);
  EXPECT_EQ(classify_response(403, "SignatureDoesNotMatch"), Verdict::give_up);
  EXPECT_EQ(classify_response(403, "AccessDenied"), Verdict::give_up);
  EXPECT_EQ(classify_response(404, "NoSuchKey"), Verdict::give_up);
  EXPECT_EQ(classify_response(404, "NoSuchUpload"), Verdict::give_up);
  EXPECT_EQ(classify_response(409, "BucketAlreadyExists"), Verdict::give_up);
  EXPECT_EQ(classify_response(412, "PreconditionFailed"), Verdict::give_up);
  EXPECT_EQ(classify_response(301, "PermanentRedirect"), Verdict::give_up);
}

TEST(S3Retry, RetriesTransientTransportFailuresOnly) {
  for (CURLcode code : {CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_OPERATION_TIMEDOUT, CURLE_SEND_ERROR,
                        CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE}) {
    EXPECT_EQ(classify_transport(code), Verdict::retry) << curl_easy_strerror(code);
  }
  for (CURLcode code : {CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL, CURLE_PEER_FAILED_VERIFICATION,
                        CURLE_ABORTED_BY_CALLBACK, CURLE_WRITE_ERROR, CURLE_READ_ERROR}) {
    EXPECT_EQ(classify_transport(code), Verdict::give_up) << curl_easy_strerror(code);
  }
  EXPECT_TRUE(is_connect_failure(CURLE_COULDNT_CONNECT));
  EXPECT_TRUE(is_connect_failure(CURLE_COULDNT_RESOLVE_HOST));
  EXPECT_FALSE(is_connect_failure(CURLE_RECV_ERROR));
}

TEST(S3Retry, BackoffIsExponentialWithFullJitterAndCapped) {
  S3RetryPolicy policy;
  policy.base_delay = 100ms;
  policy.max_delay = 1000ms;
  EXPECT_EQ(backoff_delay(policy, 1, 0.0), 0ms);
  EXPECT_EQ(backoff_delay(policy, 1, 0.999999), 99ms);
  EXPECT_EQ(backoff_delay(policy, 2, 0.5), 100ms);
  EXPECT_EQ(backoff_delay(policy, 3, 0.5), 200ms);
  EXPECT_EQ(backoff_delay(policy, 4, 0.5), 400ms);
  EXPECT_EQ(backoff_delay(policy, 5, 0.5), 500ms);  // the ceiling is capped at max_delay
  EXPECT_EQ(backoff_delay(policy, 60, 0.5), 500ms);
  EXPECT_EQ(backoff_delay(policy, 1000, 1.0), 1000ms);
}

}  // namespace
}  // namespace framepress::s3
