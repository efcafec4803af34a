#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "http/server.h"
#include "http/sse.h"
#include "unit/http/http_client.h"

namespace framepress::http {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test::CurlClient;
using test::RawClient;
using test::TestServer;

constexpr ErrorCode kAllCodes[] = {
    ErrorCode::bad_request,     ErrorCode::unauthorized,     ErrorCode::forbidden,     ErrorCode::not_found,
    ErrorCode::method_not_allowed, ErrorCode::conflict,      ErrorCode::gone,          ErrorCode::payload_too_large,
    ErrorCode::unsupported_media, ErrorCode::unprocessable,  ErrorCode::too_many_requests, ErrorCode::internal,
    ErrorCode::unavailable,
};

// What handlers saw, for the tests to wait on.
struct Probe {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::string> body_outcomes;  // per request of /record: "complete" or the Error reason
  int upload_runs = 0;

  void record(std::string outcome) {
    std::lock_guard lock(mutex);
    body_outcomes.push_back(std::move(outcome));
    changed.notify_all();
  }
  std::optional<std::string> next_outcome() {
    std::unique_lock lock(mutex);
    // A guard against a hang, not a timing assertion.
    if (!changed.wait_for(lock, 30s, [&] { return !body_outcomes.empty(); })) return std::nullopt;
    auto outcome = body_outcomes.front();
    body_outcomes.erase(body_outcomes.begin());
    return outcome;
  }
};

Response text(std::string body, int status = 200) {
  Response response;
  response.status = status;
  response.content_type = "text/plain";
  response.body = std::move(body);
  return response;
}

// Reads the whole body through a 64 KiB buffer; answers its size and checksum.
asio::awaitable<void> upload(Exchange& exchange, Probe& probe) {
  {
    std::lock_guard lock(probe.mutex);
    ++probe.upload_runs;
  }
  std::vector<char> buffer(64 * 1024);
  test::Fnv1a sum;
  std::uint64_t total = 0;
  std::size_t largest_read = 0;
  for (;;) {
    const auto n = co_await exchange.read_body(buffer);
    if (n == 0) break;
    largest_read = std::max(largest_read, n);
    sum.add(std::string_view(buffer.data(), n));
    total += n;
  }
  Response response;
  response.body = json{{"bytes", total}, {"fnv", std::to_string(sum.value)}, {"largest_read", largest_read}}.dump();
  co_await exchange.respond(std::move(response));
}

// Reads the body and records how that ended.
asio::awaitable<void> record(Exchange& exchange, Probe& probe) {
  std::array<char, 1000> buffer;
  std::string outcome = "complete";
  try {
    while (co_await exchange.read_body(buffer) > 0) {
    }
  } catch (const Error& e) {
    outcome = e.reason();
  }
  probe.record(outcome);
  co_await exchange.respond(text(outcome));
}

asio::awaitable<void> throw_code(Exchange& exchange) {
  const int index = std::stoi(exchange.request().params.at("n"));
  throw Error(kAllCodes[index], "failure number " + std::to_string(index));
  co_return;
}

asio::awaitable<void> endless_stream(Exchange& exchange) {
  co_await exchange.begin(200, sse_headers(), std::nullopt);
  co_await exchange.write(sse_event("1", "hello", "x"));
  asio::steady_timer timer(exchange.executor());
  for (;;) {
    timer.expires_after(1h);
    co_await timer.async_wait(asio::use_awaitable);
    co_await exchange.write(sse_comment("heartbeat"));
  }
}

// Named, not braced inside a co_await: g++ 12 rejects string literals in a braced initializer there.
Headers plain_text() { return {{"Content-Type", "text/plain"}}; }

Router make_router(Probe& probe) {
  Router router;
  router.add("GET", "/hello", [](Exchange& exchange) { return exchange.respond(text("hello")); });
  router.add("POST", "/upload", [&probe](Exchange& exchange) { return upload(exchange, probe); });
  router.add("POST", "/record", [&probe](Exchange& exchange) { return record(exchange, probe); });
  router.add("POST", "/ignore", [](Exchange& exchange) { return exchange.respond(text("not read")); });
  router.add("GET", "/items/{id}", [](Exchange& exchange) { return exchange.respond(text("item")); });
  router.add("DELETE", "/items/{id}", [](Exchange& exchange) { return exchange.respond(text("gone")); });
  router.add("GET", "/inspect/{a}/and/{b}", [](Exchange& exchange) -> asio::awaitable<void> {
    const auto& r = exchange.request();
    json query = json::array();
    for (const auto& [key, value] : r.query) query.push_back({key, value});
    Response response;
    response.body = json{{"method", r.method},
                         {"target", r.target},
                         {"path", r.path},
                         {"query", query},
                         {"a", r.params.at("a")},
                         {"b", r.params.at("b")},
                         {"x_test", r.header("x-test").value_or("")},
                         {"remote", r.remote_address},
                         {"content_length", r.content_length ? json(*r.content_length) : json(nullptr)},
                         {"chunked", r.chunked}}
                        .dump();
    co_await exchange.respond(std::move(response));
  });
  router.add("GET", "/error/code/{n}", throw_code);
  router.add("GET", "/error/reason", [](Exchange&) -> asio::awaitable<void> {
    throw Error(ErrorCode::conflict, "the job had already ended", "already_ended");
    co_return;
  });
  router.add("GET", "/error/unexpected", [](Exchange&) -> asio::awaitable<void> {
    throw std::runtime_error("secret detail 42");
    co_return;
  });
  router.add("GET", "/error/after-begin", [](Exchange& exchange) -> asio::awaitable<void> {
    co_await exchange.begin(200, plain_text(), std::nullopt);
    co_await exchange.write("partial");
    throw Error(ErrorCode::unavailable, "the store went away");
  });
  router.add("GET", "/silent", [](Exchange&) -> asio::awaitable<void> { co_return; });
  router.add("GET", "/stream/chunked", [](Exchange& exchange) -> asio::awaitable<void> {
    auto headers = plain_text();
    headers.emplace_back("X-Stream", "yes");
    co_await exchange.begin(200, std::move(headers), std::nullopt);
    static constexpr std::string_view kPieces[] = {"one,", "", "two,", "three"};  // "" must not end the body
    for (const auto piece : kPieces) co_await exchange.write(piece);
    co_await exchange.finish();
  });
  router.add("GET", "/stream/length", [](Exchange& exchange) -> asio::awaitable<void> {
    co_await exchange.begin(200, plain_text(), 11);
    co_await exchange.write("hello");
    co_await exchange.write(" world");
    co_await exchange.finish();
  });
  router.add("GET", "/stream/unfinished", [](Exchange& exchange) -> asio::awaitable<void> {
    co_await exchange.begin(200, plain_text(), std::nullopt);
    co_await exchange.write("left open");
  });
  router.add("GET", "/sse", endless_stream);
  router.add(
      "GET", "/sse/watched",
      [&probe](Exchange& exchange) -> asio::awaitable<void> {
        struct Ended {
          Probe& probe;
          ~Ended() { probe.record("stream ended"); }
        } ended{probe};
        co_await endless_stream(exchange);
      },
      RouteKind::stream);
  return router;
}

class ServerTest : public ::testing::Test {
 protected:
  explicit ServerTest(ServerOptions options = {}) : server_(make_router(probe_), std::move(options)) {}

  Probe probe_;
  TestServer server_;
  CurlClient curl_;
};

json error_of(const std::string& body) {
  const auto parsed = json::parse(body);
  EXPECT_EQ(parsed.size(), 1u);
  EXPECT_EQ(parsed.at("error").size(), 2u);
  return parsed.at("error");
}

TEST(ErrorBody, IsTheDocumentedJson) {
  EXPECT_EQ(error_body("not_found", "no such video"), R"({"error":{"code":"not_found","message":"no such video"}})");
  EXPECT_EQ(json::parse(error_body("x", "quote \" and \\ and \n"))["error"]["message"], "quote \" and \\ and \n");
  EXPECT_NO_THROW(json::parse(error_body("x", "not utf-8: \xff")));
}

TEST_F(ServerTest, AnswersARoute) {
  const auto response = curl_.request("GET", server_.url("/hello"));
  EXPECT_EQ(response.curl_code, 0);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "hello");
  EXPECT_EQ(response.header("content-type"), "text/plain");
  EXPECT_EQ(response.header("content-length"), "5");
}

TEST_F(ServerTest, FillsTheRequest) {
  const auto response = curl_.request("GET", server_.url("/inspect/a%20b/and/%E2%82%AC?q=1+2&q=3&flag&e=%26"),
                                      {"X-Test: yes"});
  ASSERT_EQ(response.status, 200);
  const auto r = json::parse(response.body);
  EXPECT_EQ(r["method"], "GET");
  EXPECT_EQ(r["target"], "/inspect/a%20b/and/%E2%82%AC?q=1+2&q=3&flag&e=%26");
  EXPECT_EQ(r["path"], "/inspect/a b/and/\xE2\x82\xAC");
  EXPECT_EQ(r["a"], "a b");
  EXPECT_EQ(r["b"], "\xE2\x82\xAC");
  EXPECT_EQ(r["query"], json::parse(R"([["e","&"],["flag",""],["q","1 2"],["q","3"]])"));
  EXPECT_EQ(r["x_test"], "yes");
  EXPECT_EQ(r["remote"], "127.0.0.1");
  EXPECT_EQ(r["content_length"], nullptr);
  EXPECT_EQ(r["chunked"], false);
}

TEST_F(ServerTest, UnknownPathIsA404Json) {
  const auto response = curl_.request("GET", server_.url("/nope"));
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.header("content-type"), "application/json");
  EXPECT_EQ(error_of(response.body)["code"], "not_found");
}

TEST_F(ServerTest, WrongMethodIsA405WithAllow) {
  const auto response = curl_.request("POST", server_.url("/items/5"), {}, std::string("x"));
  EXPECT_EQ(response.status, 405);
  EXPECT_EQ(response.header("allow"), "GET, DELETE, HEAD");
  EXPECT_EQ(error_of(response.body)["code"], "method_not_allowed");
}

TEST_F(ServerTest, ErrorCodesMapToTheirStatus) {
  for (std::size_t i = 0; i < std::size(kAllCodes); ++i) {
    const auto response = curl_.request("GET", server_.url("/error/code/" + std::to_string(i)));
    EXPECT_EQ(response.status, http_status(kAllCodes[i])) << i;
    const auto error = error_of(response.body);
    EXPECT_EQ(error["code"], std::string(to_string(kAllCodes[i])));
    EXPECT_EQ(error["message"], "failure number " + std::to_string(i));
  }
}

TEST_F(ServerTest, ErrorReasonIsTheCode) {
  const auto response = curl_.request("GET", server_.url("/error/reason"));
  EXPECT_EQ(response.status, 409);
  EXPECT_EQ(response.body, R"({"error":{"code":"already_ended","message":"the job had already ended"}})");
}

TEST_F(ServerTest, UnexpectedExceptionIsA500WithoutItsText) {
  const auto response = curl_.request("GET", server_.url("/error/unexpected"));
  EXPECT_EQ(response.status, 500);
  EXPECT_EQ(response.body, R"({"error":{"code":"internal","message":"internal error"}})");
  EXPECT_EQ(response.body.find("secret"), std::string::npos);
}

TEST_F(ServerTest, HandlerWithoutAResponseIsA500) {
  const auto response = curl_.request("GET", server_.url("/silent"));
  EXPECT_EQ(response.status, 500);
  EXPECT_EQ(error_of(response.body)["code"], "internal");
}

TEST_F(ServerTest, ErrorAfterTheResponseBeganClosesTheConnection) {
  RawClient client(server_.port());
  client.send("GET /error/after-begin HTTP/1.1\r\nHost: x\r\n\r\n");
  auto raw = client.read_to_end();
  EXPECT_TRUE(client.closed());
  const auto response = test::take_response(raw);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.header("transfer-encoding"), "chunked");
  // The chunk that was sent, and no last chunk: the client sees a cut-off body, not a complete one.
  EXPECT_EQ(response.body, "7\r\npartial\r\n");

  const auto via_curl = curl_.request("GET", server_.url("/error/after-begin"));
  EXPECT_NE(via_curl.curl_code, 0);
}

TEST_F(ServerTest, StreamsAnUploadThroughAFixedBuffer) {
  const std::uint64_t size = (5 << 20) + 12345;
  const std::string data = test::pattern_bytes(size, 11);
  test::Fnv1a expected;
  expected.add(data);

  for (const bool chunked : {false, true}) {
    std::size_t offset = 0;
    CurlClient::Upload upload;
    if (!chunked) upload.size = size;
    upload.read = [&](char* out, std::size_t n) {
      n = std::min<std::size_t>(n, data.size() - offset);
      std::memcpy(out, data.data() + offset, n);
      offset += n;
      return n;
    };
    const auto response = curl_.request("POST", server_.url("/upload"), {"Content-Type: video/mp4"}, std::nullopt,
                                        std::move(upload));
    ASSERT_EQ(response.status, 200) << (chunked ? "chunked" : "sized");
    const auto result = json::parse(response.body);
    EXPECT_EQ(result["bytes"], size);
    EXPECT_EQ(result["fnv"], std::to_string(expected.value));
    EXPECT_LE(result["largest_read"].get<std::size_t>(), 64u * 1024);
  }
}

TEST_F(ServerTest, SendsContinueWhenTheBodyIsFirstRead) {
  const std::string body = test::pattern_bytes(3 << 20, 5);
  RawClient client(server_.port());
  client.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
              "\r\nExpect: 100-continue\r\n\r\n");
  // The body is held back until the server asks for it.
  const auto interim = client.read_until("\r\n\r\n");
  EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  client.send(body);
  auto raw = client.read_response();
  const auto response = test::take_response(raw);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(json::parse(response.body)["bytes"], body.size());
}

TEST_F(ServerTest, CurlUploadWithExpectContinueGetsIt) {
  const std::string data = test::pattern_bytes(3 << 20, 6);
  const auto response = curl_.request("POST", server_.url("/upload"), {"Expect: 100-continue"}, data);
  EXPECT_EQ(response.curl_code, 0);
  EXPECT_EQ(response.status, 200);
  EXPECT_TRUE(response.saw_line_starting("HTTP/1.1 100 Continue"));
  EXPECT_EQ(json::parse(response.body)["bytes"], data.size());
}

TEST_F(ServerTest, NoContinueForARequestThatDoesNotReadItsBody) {
  RawClient client(server_.port());
  client.send("POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n");
  auto raw = client.read_to_end();
  EXPECT_EQ(raw.find("100 Continue"), std::string::npos);
  const auto response = test::take_response(raw);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "not read");
  // The body was not read, so the connection cannot carry another request.
  EXPECT_EQ(response.header("connection"), "close");
  EXPECT_TRUE(client.closed());
}

TEST_F(ServerTest, ServesSeveralRequestsOnOneConnection) {
  RawClient client(server_.port());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(client.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto raw = client.read_response();
    const auto response = test::take_response(raw);
    EXPECT_EQ(response.status, 200) << i;
    EXPECT_EQ(response.body, "hello") << i;
    EXPECT_EQ(response.header("connection"), std::nullopt) << i;
  }
  // A request with a body that was read keeps the connection too.
  ASSERT_TRUE(client.send("POST /record HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"));
  auto raw = client.read_response();
  EXPECT_EQ(test::take_response(raw).body, "complete");
  ASSERT_TRUE(client.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  raw = client.read_response();
  EXPECT_EQ(test::take_response(raw).body, "hello");

  const auto first = curl_.request("GET", server_.url("/hello"));
  const auto second = curl_.request("GET", server_.url("/items/1"));
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(second.new_connections, 0);  // curl reused the first request's connection
  (void)first;
}

TEST_F(ServerTest, ContentLengthOverTheLimitIsRefusedBeforeTheBody) {
  // Only the head is sent: the answer must come without the server waiting for (or reading) the body.
  RawClient client(server_.port());
  client.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1099511627776000\r\n\r\n");
  auto raw = client.read_to_end();
  EXPECT_TRUE(client.closed());
  const auto response = test::take_response(raw);
  EXPECT_EQ(response.status, 413);
  EXPECT_EQ(response.header("connection"), "close");
  EXPECT_EQ(error_of(response.body)["code"], "payload_too_large");
  std::lock_guard lock(probe_.mutex);
  EXPECT_EQ(probe_.upload_runs, 0);
}

TEST_F(ServerTest, ExpectContinueOverTheLimitGetsA413Instead) {
  RawClient client(server_.port());
  client.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1099511627776000\r\nExpect: 100-continue\r\n\r\n");
  auto raw = client.read_to_end();
  EXPECT_EQ(raw.find("100 Continue"), std::string::npos);
  EXPECT_EQ(test::take_response(raw).status, 413);
}

TEST_F(ServerTest, ChunkedStreamedResponse) {
  RawClient client(server_.port());
  client.send("GET /stream/chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  auto raw = client.read_to_end();
  const auto response = test::take_response(raw);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.header("transfer-encoding"), "chunked");
  EXPECT_EQ(response.header("content-length"), std::nullopt);
  EXPECT_EQ(response.header("x-stream"), "yes");
  EXPECT_EQ(response.body, "4\r\none,\r\n4\r\ntwo,\r\n5\r\nthree\r\n0\r\n\r\n");

  const auto via_curl = curl_.request("GET", server_.url("/stream/chunked"));
  EXPECT_EQ(via_curl.curl_code, 0);
  EXPECT_EQ(via_curl.body, "one,two,three");
}

TEST_F(ServerTest, ContentLengthStreamedResponse) {
  RawClient client(server_.port());
  client.send("GET /stream/length HTTP/1.1\r\nHost: x\r\n\r\n");
  auto raw = client.read_response();
  const auto response = test::take_response(raw);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.header("content-length"), "11");
  EXPECT_EQ(response.header("transfer-encoding"), std::nullopt);
  EXPECT_EQ(response.body, "hello world");
}

TEST_F(ServerTest, StreamLeftOpenByItsHandlerIsEnded) {
  const auto response = curl_.request("GET", server_.url("/stream/unfinished"));
  EXPECT_EQ(response.curl_code, 0);
  EXPECT_EQ(response.body, "left open");
}

TEST_F(ServerTest, HeadSendsTheHeadersWithoutTheBody) {
  RawClient client(server_.port());
  // Pipelined: any body byte after a HEAD answer would show up in front of the next answer.
  client.send(
      "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n"
      "HEAD /stream/length HTTP/1.1\r\nHost: x\r\n\r\n"
      "HEAD /stream/chunked HTTP/1.1\r\nHost: x\r\n\r\n"
      "HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  auto raw = client.read_to_end();
  const auto hello = test::take_response(raw, true);
  EXPECT_EQ(hello.status, 200);
  EXPECT_EQ(hello.header("content-length"), "5");
  const auto length = test::take_response(raw, true);
  EXPECT_EQ(length.status, 200);
  EXPECT_EQ(length.header("content-length"), "11");
  const auto chunked = test::take_response(raw, true);
  EXPECT_EQ(chunked.status, 200);
  EXPECT_EQ(chunked.header("transfer-encoding"), "chunked");
  const auto missing = test::take_response(raw, true);
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(missing.header("content-length"), "0");
  const auto get = test::take_response(raw);
  EXPECT_EQ(get.status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(get.body, "hello");
  EXPECT_EQ(raw, "");
}

TEST_F(ServerTest, CorsHeadersOnEveryKindOfResponse) {
  for (const char* path : {"/hello", "/nope", "/error/unexpected", "/stream/chunked", "/stream/length"}) {
    const auto response = curl_.request("GET", server_.url(path), {"Origin: https://elsewhere.example"});
    EXPECT_EQ(response.header("access-control-allow-origin"), "*") << path;
    EXPECT_EQ(response.header("access-control-expose-headers"), "Location, Content-Disposition") << path;
    EXPECT_EQ(response.header("vary"), std::nullopt) << path;
  }
}

TEST_F(ServerTest, AnswersAPreflight) {
  const auto response = curl_.request(
      "OPTIONS", server_.url("/upload"),
      {"Origin: https://elsewhere.example", "Access-Control-Request-Method: POST",
       "Access-Control-Request-Headers: content-type"});
  EXPECT_EQ(response.status, 204);
  EXPECT_EQ(response.header("access-control-allow-origin"), "*");
  EXPECT_EQ(response.header("access-control-allow-methods"), "GET, POST, DELETE, OPTIONS");
  EXPECT_EQ(response.header("access-control-allow-headers"), "Authorization, Content-Type, Last-Event-ID");
  EXPECT_TRUE(response.header("access-control-max-age").has_value());
  EXPECT_EQ(response.header("content-length"), std::nullopt);
  EXPECT_EQ(response.body, "");
}

TEST_F(ServerTest, OversizedHeadIsA431) {
  RawClient client(server_.port());
  client.send("GET /hello HTTP/1.1\r\nHost: x\r\nCookie: " + std::string(32 * 1024, 'c') + "\r\n\r\n");
  auto raw = client.read_to_end();
  const auto response = test::take_response(raw);
  EXPECT_EQ(response.status, 431);
  EXPECT_EQ(error_of(response.body)["code"], "header_too_large");
  EXPECT_EQ(response.header("access-control-allow-origin"), "*");
}

TEST_F(ServerTest, BadTargetIsA400) {
  for (const char* target : {"/a%zz", "http://example.com/hello", "*", "/a%00b"}) {
    RawClient client(server_.port());
    client.send(std::string("GET ") + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
    auto raw = client.read_to_end();
    const auto response = test::take_response(raw);
    EXPECT_EQ(response.status, 400) << target;
    EXPECT_EQ(error_of(response.body)["code"], "bad_request") << target;
  }
}

TEST_F(ServerTest, MalformedRequestIsA400) {
  RawClient client(server_.port());
  client.send("GET /hello HTTP/9.9x\r\n\r\n");
  auto raw = client.read_to_end();
  const auto response = test::take_response(raw);
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(error_of(response.body)["code"], "bad_request");
}

TEST_F(ServerTest, BodyCutShortIsAnIncompleteBody) {
  RawClient client(server_.port());
  client.send("POST /record HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789");
  client.shutdown_write();
  EXPECT_EQ(probe_.next_outcome(), "incomplete_body");
}

TEST_F(ServerTest, MalformedChunkedBodyIsABadBody) {
  RawClient client(server_.port());
  client.send("POST /record HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\nzz\r\n");
  EXPECT_EQ(probe_.next_outcome(), "bad_body");
  auto raw = client.read_to_end();
  EXPECT_EQ(test::take_response(raw).body, "bad_body");
}

TEST_F(ServerTest, ChunkedBodyReadsCompletely) {
  RawClient client(server_.port());
  client.send(
      "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n1;ext=1\r\nd\r\n0\r\n\r\n");
  auto raw = client.read_response();
  const auto response = test::take_response(raw);
  ASSERT_EQ(response.status, 200);
  test::Fnv1a expected;
  expected.add("abcd");
  EXPECT_EQ(json::parse(response.body)["bytes"], 4);
  EXPECT_EQ(json::parse(response.body)["fnv"], std::to_string(expected.value));
}

class SmallLimitServerTest : public ServerTest {
 protected:
  static ServerOptions options() {
    ServerOptions o;
    o.max_body_bytes = 256 * 1024;
    return o;
  }
  SmallLimitServerTest() : ServerTest(options()) {}
};

TEST_F(SmallLimitServerTest, ChunkedBodyOverTheLimitIsA413) {
  RawClient client(server_.port());
  client.send("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  const std::string chunk = "4000\r\n" + std::string(0x4000, 'v') + "\r\n";
  for (int i = 0; i < 32; ++i) {
    if (!client.send(chunk)) break;  // the server may have answered and stopped reading
  }
  client.send("0\r\n\r\n");
  auto raw = client.read_to_end();
  const auto response = test::take_response(raw);
  EXPECT_EQ(response.status, 413);
  EXPECT_EQ(error_of(response.body)["code"], "payload_too_large");
}

TEST_F(SmallLimitServerTest, BodyAtTheLimitIsAccepted) {
  const std::string data(256 * 1024, 'a');
  const auto response = curl_.request("POST", server_.url("/upload"), {}, data);
  EXPECT_EQ(response.status, 200);
  const auto over = curl_.request("POST", server_.url("/upload"), {}, data + "a");
  EXPECT_EQ(over.status, 413);
}

class SlowClientServerTest : public ServerTest {
 protected:
  static ServerOptions options() {
    ServerOptions o;
    o.header_timeout = 1s;
    o.body_idle_timeout = 1s;
    return o;
  }
  SlowClientServerTest() : ServerTest(options()) {}
};

TEST_F(SlowClientServerTest, HeadThatNeverEndsIsA408AndClosed) {
  RawClient client(server_.port());
  client.send("GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: ");
  auto raw = client.read_to_end();
  EXPECT_TRUE(client.closed());
  EXPECT_FALSE(client.timed_out());
  const auto response = test::take_response(raw);
  EXPECT_EQ(response.status, 408);
  EXPECT_EQ(error_of(response.body)["code"], "request_timeout");
  EXPECT_EQ(response.header("connection"), "close");
}

TEST_F(SlowClientServerTest, IdleConnectionIsClosedWithoutAWord) {
  // Nothing of a request was sent: a client may be reusing the connection this very moment, and an
  // unasked-for 408 would be read as the answer to that request.
  RawClient client(server_.port());
  EXPECT_EQ(client.read_to_end(), "");
  EXPECT_TRUE(client.closed());
  EXPECT_FALSE(client.timed_out());
}

TEST_F(SlowClientServerTest, BodyThatStopsComingTimesOut) {
  RawClient client(server_.port());
  client.send("POST /record HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789");
  EXPECT_EQ(probe_.next_outcome(), "timeout");
  client.read_to_end();
  EXPECT_TRUE(client.closed());
}

class CorsOriginServerTest : public ServerTest {
 protected:
  static ServerOptions options() {
    ServerOptions o;
    o.cors_allow_origin = "https://app.example";
    return o;
  }
  CorsOriginServerTest() : ServerTest(options()) {}
};

TEST_F(CorsOriginServerTest, NamesTheOriginAndVaries) {
  for (const char* path : {"/hello", "/nope", "/stream/chunked"}) {
    const auto response = curl_.request("GET", server_.url(path));
    EXPECT_EQ(response.header("access-control-allow-origin"), "https://app.example") << path;
    EXPECT_EQ(response.header("vary"), "Origin") << path;
  }
  const auto preflight = curl_.request("OPTIONS", server_.url("/hello"));
  EXPECT_EQ(preflight.status, 204);
  EXPECT_EQ(preflight.header("vary"), "Origin");
}

class NoCorsServerTest : public ServerTest {
 protected:
  static ServerOptions options() {
    ServerOptions o;
    o.cors_allow_origin = "";
    return o;
  }
  NoCorsServerTest() : ServerTest(options()) {}
};

TEST_F(NoCorsServerTest, SendsNoCorsHeaders) {
  const auto response = curl_.request("GET", server_.url("/hello"));
  EXPECT_EQ(response.status, 200);
  for (const auto& [name, value] : response.headers) EXPECT_FALSE(name.starts_with("access-control-")) << name;
  // No preflight answer either: OPTIONS is routed like any method.
  EXPECT_EQ(curl_.request("OPTIONS", server_.url("/hello")).status, 405);
}

/// Collects what ServerOptions::on_response is told (on the server's I/O threads).
struct ObservedStatuses {
  std::mutex mutex;
  std::vector<int> statuses;
  /// The statuses once `count` have come; the hook runs after the answer is sent, so the client may read
  /// it first: wait for it, boundedly.
  std::vector<int> wait_for(std::size_t count) {
    for (int i = 0; i < 500; ++i) {
      {
        std::lock_guard lock(mutex);
        if (statuses.size() >= count) return statuses;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::lock_guard lock(mutex);
    return statuses;
  }
};

class ObservedServerTest : public ServerTest {
 protected:
  static ServerOptions options(ObservedStatuses& observed) {
    ServerOptions o;
    o.on_response = [&observed](int status) {
      std::lock_guard lock(observed.mutex);
      observed.statuses.push_back(status);
    };
    return o;
  }
  ObservedServerTest() : ServerTest(options(observed_)) {
    std::lock_guard lock(observed_.mutex);
    observed_.statuses.clear();
  }
  static inline ObservedStatuses observed_;  // static: it must outlive the server the base class owns
};

TEST_F(ObservedServerTest, EveryAnswerIsReportedWithItsStatus) {
  EXPECT_EQ(curl_.request("GET", server_.url("/hello")).status, 200);
  EXPECT_EQ(curl_.request("GET", server_.url("/nope")).status, 404);
  {
    RawClient client(server_.port());  // refused by the server itself, before any handler
    client.send("GET /hello HTTP/1.1\r\nHost: x\r\nCookie: " + std::string(32 * 1024, 'c') + "\r\n\r\n");
    auto raw = client.read_to_end();
    EXPECT_EQ(test::take_response(raw).status, 431);
  }
  auto statuses = observed_.wait_for(3);
  std::sort(statuses.begin(), statuses.end());
  EXPECT_EQ(statuses, (std::vector<int>{200, 404, 431}));
}

TEST(ServerLifecycle, StopEndsAnOpenStream) {
  Probe probe;
  TestServer server(make_router(probe));
  RawClient client(server.port());
  client.send("GET /sse HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto start = client.read_until("data: x\n\n");
  ASSERT_NE(start.find("event: hello"), std::string::npos);
  ASSERT_NE(start.find("text/event-stream"), std::string::npos);
  server.stop();  // returns only once run() has returned
  client.read_to_end();
  EXPECT_TRUE(client.closed());
  EXPECT_FALSE(client.timed_out());
}

TEST_F(ServerTest, AStreamEndsWhenItsClientHangsUpNotAtItsNextWrite) {
  {
    RawClient client(server_.port());
    client.send("GET /sse/watched HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_NE(client.read_until("data: x\n\n").find("event: hello"), std::string::npos);
  }  // the client closes its socket; the stream's next write is an hour away
  EXPECT_EQ(probe_.next_outcome(), "stream ended");
  EXPECT_EQ(curl_.request("GET", server_.url("/hello")).status, 200);
}

TEST(ServerLifecycle, StopFromAHandler) {
  TestServer* self = nullptr;
  Router router;
  router.add("POST", "/shutdown", [&self](Exchange& exchange) {
    self->request_stop();
    return exchange.respond(text("bye"));
  });
  TestServer server(std::move(router));
  self = &server;
  RawClient client(server.port());
  client.send("POST /shutdown HTTP/1.1\r\nHost: x\r\n\r\n");
  client.read_to_end();
  EXPECT_TRUE(client.closed());
  server.stop();  // run() returns: the join in here does not hang
}

TEST(ServerLifecycle, DestructionWaitsForRunInAnotherThread) {
  auto server = std::make_unique<Server>(ServerOptions{.port = 0}, Router{});
  std::thread runner([&server] { server->run(); });
  // A first answer proves run() is under way before the server is destroyed.
  CurlClient curl;
  EXPECT_EQ(curl.request("GET", "http://127.0.0.1:" + std::to_string(server->port()) + "/").status, 404);
  server.reset();
  runner.join();
}

TEST(ServerLifecycle, StopBeforeRunMakesRunReturn) {
  Server server(ServerOptions{.port = 0}, Router{});
  EXPECT_NE(server.port(), 0);
  server.stop();
  server.run();
}

TEST(ServerLifecycle, DestroyedWithoutRunning) {
  Server server(ServerOptions{.port = 0}, Router{});
  EXPECT_NE(server.port(), 0);
}

TEST(ServerLifecycle, BindFailureIsUnavailable) {
  Server first(ServerOptions{.port = 0}, Router{});
  try {
    Server second(ServerOptions{.port = first.port()}, Router{});
    FAIL() << "a second server bound the same port";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unavailable);
    EXPECT_NE(std::string(e.what()).find("cannot listen on 127.0.0.1:" + std::to_string(first.port())),
              std::string::npos)
        << e.what();
  }
  try {
    Server bad(ServerOptions{.address = "not an address", .port = 0}, Router{});
    FAIL() << "bound a bad address";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unavailable);
  }
}

}  // namespace
}  // namespace framepress::http
