// The server's defences against hostile clients: admission limits on uploads, streams and connections
// (429 per client, 503 in total, with Retry-After, at once), and the bounds on what a request may make it
// buffer (chunk-size lines, trailers) or wait for (a head that never ends).
//
// No timing assertions: where the server gives a place back only after its answer is on the wire, the
// tests wait for it (bounded, as a guard against hanging), never for a time.

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <condition_variable>
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
using test::RawClient;
using test::RawResponse;
using test::TestServer;

// Loopback addresses standing for different clients (Linux answers all of 127.0.0.0/8 locally).
const std::string kAlice = "127.0.0.1";
const std::string kBob = "127.0.0.2";
const std::string kCarol = "127.0.0.3";

/// Counts handler entries, for the tests to wait until requests are surely in flight.
struct Entries {
  std::mutex mutex;
  std::condition_variable changed;
  int count = 0;

  void enter() {
    std::lock_guard lock(mutex);
    ++count;
    changed.notify_all();
  }
  bool wait_for(int n) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, 30s, [&] { return count >= n; });  // a hang guard
  }
  int now() {
    std::lock_guard lock(mutex);
    return count;
  }
};

Response text(std::string body) {
  Response response;
  response.content_type = "text/plain";
  response.body = std::move(body);
  return response;
}

// Reads the whole body and answers its size; counts itself in. A failed body read is the server's to
// answer (its JSON error).
asio::awaitable<void> receive(Exchange& exchange, Entries& entries) {
  entries.enter();
  std::array<char, 4096> buffer;
  std::size_t total = 0;
  while (const auto n = co_await exchange.read_body(buffer)) total += n;
  co_await exchange.respond(text(std::to_string(total)));
}

// An event stream with a quick heartbeat, so that it notices a client that left (a write fails) and
// ends, as the API's streams do with theirs.
asio::awaitable<void> stream(Exchange& exchange, Entries& entries) {
  entries.enter();
  co_await exchange.begin(200, sse_headers(), std::nullopt);
  co_await exchange.write(sse_event("1", "hello", "x"));
  asio::steady_timer timer(exchange.executor());
  for (;;) {
    timer.expires_after(20ms);
    co_await timer.async_wait(asio::use_awaitable);
    co_await exchange.write(sse_comment("heartbeat"));
  }
}

Router make_router(Entries& uploads, Entries& streams) {
  Router router;
  router.add("GET", "/hello", [](Exchange& exchange) { return exchange.respond(text("hello")); });
  router.add("POST", "/receive", [&uploads](Exchange& exchange) { return receive(exchange, uploads); });
  router.add("GET", "/events", [&streams](Exchange& exchange) { return stream(exchange, streams); }, RouteKind::stream);
  return router;
}

std::string upload_head(std::size_t length, std::string_view extra = "") {
  return "POST /receive HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(length) + "\r\n" +
         std::string(extra) + "\r\n";
}

constexpr std::string_view kGetHello = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
constexpr std::string_view kGetEvents = "GET /events HTTP/1.1\r\nHost: x\r\n\r\n";

/// The whole of one response read from `client`, split up.
RawResponse next_response(RawClient& client) {
  auto raw = client.read_response();
  return test::take_response(raw);
}

/// Checks a refusal: its status, its JSON error code, and a Retry-After of `retry_after` seconds.
void expect_refusal(const RawResponse& response, int status, const std::string& code, const std::string& retry_after) {
  EXPECT_EQ(response.status, status) << response.status_line << "\n" << response.body;
  EXPECT_EQ(response.header("retry-after"), retry_after);
  EXPECT_EQ(response.header("content-type"), "application/json");
  const auto body = json::parse(response.body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << response.body;
  EXPECT_EQ(body["error"]["code"], code) << response.body;
  EXPECT_FALSE(body["error"]["message"].get<std::string>().empty());
}

/// Tries `attempt` until it returns true: the server gives a place back a moment after the client has
/// its answer. Bounded, as a guard against hanging, not as a time limit on the server.
template <class Attempt>
bool eventually(Attempt attempt) {
  for (int i = 0; i < 500; ++i) {
    if (attempt()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

class LimitsTest : public ::testing::Test {
 protected:
  explicit LimitsTest(ServerOptions options) : server_(make_router(uploads_, streams_), std::move(options)) {}

  Entries uploads_;
  Entries streams_;
  TestServer server_;
};

// ---- uploads ---------------------------------------------------------------------------------------------

class UploadLimitsTest : public LimitsTest {
 protected:
  static ServerOptions options() {
    ServerOptions o;
    o.max_uploads_per_ip = 2;
    o.max_uploads = 3;
    o.retry_after = 7s;
    return o;
  }
  UploadLimitsTest() : LimitsTest(options()) {}
};

TEST_F(UploadLimitsTest, OverAClientsLimitIs429AndOverTheTotal503AtOnce) {
  // Alice's two uploads are in flight: their heads and half their bodies are in, the rest yet to come.
  RawClient alice1(server_.port(), 20s, kAlice);
  RawClient alice2(server_.port(), 20s, kAlice);
  ASSERT_TRUE(alice1.send(upload_head(10) + "01234"));
  ASSERT_TRUE(alice2.send(upload_head(10) + "01234"));
  ASSERT_TRUE(uploads_.wait_for(2));

  // Her third is refused before a byte of its body is asked for: no 100 Continue, and the connection
  // closes, since the body it announced stands between it and any next request.
  RawClient alice3(server_.port(), 20s, kAlice);
  ASSERT_TRUE(alice3.send(upload_head(1 << 20, "Expect: 100-continue\r\n")));
  auto raw = alice3.read_to_end();
  EXPECT_EQ(raw.find("100 Continue"), std::string::npos) << raw;
  const auto refused = test::take_response(raw);
  expect_refusal(refused, 429, "too_many_uploads", "7");
  EXPECT_EQ(refused.header("connection"), "close");
  EXPECT_TRUE(alice3.closed());

  // Bob is another client: his first upload gets in, and takes the last place in total.
  RawClient bob1(server_.port(), 20s, kBob);
  ASSERT_TRUE(bob1.send(upload_head(10) + "01234"));
  ASSERT_TRUE(uploads_.wait_for(3));
  // Carol, under her own limit, meets the total.
  RawClient carol(server_.port(), 20s, kCarol);
  ASSERT_TRUE(carol.send(upload_head(10) + "0123456789"));
  expect_refusal(next_response(carol), 503, "server_busy", "7");

  // A request without a body is no upload: everyone is still served.
  for (const auto& who : {kAlice, kBob, kCarol}) {
    RawClient plain(server_.port(), 20s, who);
    ASSERT_TRUE(plain.send(kGetHello));
    EXPECT_EQ(next_response(plain).status, 200) << who;
  }
  EXPECT_EQ(uploads_.now(), 3) << "a refused upload reached its handler";

  // Alice's first upload ends; her place, and one in total, come back.
  ASSERT_TRUE(alice1.send("56789"));
  const auto done = next_response(alice1);
  EXPECT_EQ(done.status, 200);
  EXPECT_EQ(done.body, "10");
  EXPECT_TRUE(eventually([&] {
    RawClient again(server_.port(), 20s, kAlice);
    again.send(upload_head(10) + "0123456789");
    const auto response = next_response(again);
    if (response.status == 429 || response.status == 503) return false;
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.body, "10");
    return true;
  }));

  // The uploads still in flight were not disturbed by any of it.
  ASSERT_TRUE(alice2.send("56789"));
  EXPECT_EQ(next_response(alice2).body, "10");
  ASSERT_TRUE(bob1.send("56789"));
  EXPECT_EQ(next_response(bob1).body, "10");
}

TEST_F(UploadLimitsTest, AChunkedBodyIsAnUploadToo) {
  RawClient alice1(server_.port(), 20s, kAlice);
  RawClient alice2(server_.port(), 20s, kAlice);
  const std::string chunked_head = "POST /receive HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  ASSERT_TRUE(alice1.send(chunked_head + "3\r\nabc\r\n"));
  ASSERT_TRUE(alice2.send(chunked_head + "3\r\nabc\r\n"));
  ASSERT_TRUE(uploads_.wait_for(2));
  RawClient alice3(server_.port(), 20s, kAlice);
  ASSERT_TRUE(alice3.send(chunked_head + "3\r\nabc\r\n0\r\n\r\n"));
  auto raw = alice3.read_to_end();
  expect_refusal(test::take_response(raw), 429, "too_many_uploads", "7");
  ASSERT_TRUE(alice1.send("0\r\n\r\n"));
  EXPECT_EQ(next_response(alice1).body, "3");
  ASSERT_TRUE(alice2.send("0\r\n\r\n"));
  EXPECT_EQ(next_response(alice2).body, "3");
}

// ---- streams ---------------------------------------------------------------------------------------------

class StreamLimitsTest : public LimitsTest {
 protected:
  static ServerOptions options() {
    ServerOptions o;
    o.max_streams_per_ip = 2;
    o.max_streams = 3;
    o.retry_after = 3s;
    return o;
  }
  StreamLimitsTest() : LimitsTest(options()) {}
};

/// Opens an event stream and reads until its first event: the stream is then surely counted.
std::unique_ptr<RawClient> open_stream(unsigned short port, const std::string& from) {
  auto client = std::make_unique<RawClient>(port, 20s, from);
  client->send(kGetEvents);
  const auto start = client->read_until("data: x\n\n");
  EXPECT_NE(start.find("200 OK"), std::string::npos) << start;
  return client;
}

TEST_F(StreamLimitsTest, OverAClientsLimitIs429AndOverTheTotal503AtOnce) {
  auto alice1 = open_stream(server_.port(), kAlice);
  auto alice2 = open_stream(server_.port(), kAlice);

  // A refused stream request has no body: its connection stays open and serves what comes next.
  RawClient alice3(server_.port(), 20s, kAlice);
  ASSERT_TRUE(alice3.send(kGetEvents));
  const auto refused = next_response(alice3);
  expect_refusal(refused, 429, "too_many_streams", "3");
  EXPECT_NE(refused.header("connection"), "close");
  ASSERT_TRUE(alice3.send(kGetHello));
  EXPECT_EQ(next_response(alice3).status, 200);

  auto bob1 = open_stream(server_.port(), kBob);
  RawClient bob2(server_.port(), 20s, kBob);
  ASSERT_TRUE(bob2.send(kGetEvents));
  expect_refusal(next_response(bob2), 503, "server_busy", "3");
  EXPECT_EQ(streams_.now(), 3) << "a refused stream reached its handler";

  // Alice leaves one stream; its handler notices at its next heartbeat and ends, and the place is hers
  // again (and the total's).
  alice1.reset();
  EXPECT_TRUE(eventually([&] {
    RawClient again(server_.port(), 20s, kAlice);
    again.send(kGetEvents);
    const auto head = again.read_until("\r\n\r\n");
    if (head.find(" 429 ") != std::string::npos || head.find(" 503 ") != std::string::npos) return false;
    EXPECT_NE(head.find("200 OK"), std::string::npos) << head;
    EXPECT_NE(again.read_until("data: x\n\n").find("event: hello"), std::string::npos);
    return true;
  }));
}

// ---- connections -----------------------------------------------------------------------------------------

class ConnectionLimitTest : public LimitsTest {
 protected:
  static ServerOptions options() {
    ServerOptions o;
    o.max_connections = 2;
    o.retry_after = 2s;
    return o;
  }
  ConnectionLimitTest() : LimitsTest(options()) {}
};

TEST_F(ConnectionLimitTest, OneConnectionTooManyIs503AndClosed) {
  // Two kept-alive connections, each known to be served (it has answered).
  auto first = std::make_unique<RawClient>(server_.port(), 20s, kAlice);
  RawClient second(server_.port(), 20s, kBob);
  for (RawClient* client : {first.get(), &second}) {
    ASSERT_TRUE(client->send(kGetHello));
    ASSERT_EQ(next_response(*client).status, 200);
  }

  RawClient third(server_.port(), 20s, kCarol);
  third.send(kGetHello);  // the answer may already be there: the server does not read the request
  auto raw = third.read_to_end();
  EXPECT_TRUE(third.closed());
  EXPECT_FALSE(third.timed_out());
  const auto refused = test::take_response(raw);
  expect_refusal(refused, 503, "server_busy", "2");
  EXPECT_EQ(refused.header("connection"), "close");

  // The connections being served are not disturbed.
  ASSERT_TRUE(second.send(kGetHello));
  EXPECT_EQ(next_response(second).status, 200);

  // One closes: a new one is served once the server has let the old one go.
  first.reset();
  EXPECT_TRUE(eventually([&] {
    RawClient again(server_.port(), 20s, kCarol);
    again.send(kGetHello);
    const auto response = next_response(again);
    if (response.status == 503) return false;
    EXPECT_EQ(response.status, 200);
    return true;
  }));
}

// ---- what a request can make the server buffer ----------------------------------------------------------

class BodyBoundsTest : public LimitsTest {
 protected:
  static ServerOptions options() {
    ServerOptions o;
    o.max_body_bytes = 1 << 20;
    return o;
  }
  BodyBoundsTest() : LimitsTest(options()) {}

  /// Sends a chunked request whose body is `body`, then `endless` over and over (1 MiB of it: far past
  /// any bound, and less than the server drains from a connection it closes, so its answer is not lost to
  /// a reset), and returns the response.
  RawResponse chunked(const std::string& body, const std::string& endless = {}) {
    RawClient client(server_.port());
    client.send("POST /receive HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body);
    if (!endless.empty()) {
      std::string block;
      while (block.size() < 64 * 1024) block += endless;
      for (std::size_t sent = 0; sent < (1u << 20) && client.send(block); sent += block.size()) {
      }
    }
    auto raw = client.read_to_end();
    return test::take_response(raw);
  }

  static void expect_error(const RawResponse& response, int status, const std::string& code) {
    EXPECT_EQ(response.status, status) << response.status_line << "\n" << response.body;
    const auto body = json::parse(response.body, nullptr, false);
    ASSERT_TRUE(body.is_object()) << response.body;
    EXPECT_EQ(body["error"]["code"], code);
  }
};

TEST_F(BodyBoundsTest, EndlessChunkExtensionsAreA400) {
  expect_error(chunked("5", ";name=value"), 400, "bad_body");
}

TEST_F(BodyBoundsTest, EndlessLeadingZerosInAChunkSizeAreA400) {
  expect_error(chunked("", "0000000000000000"), 400, "bad_body");
}

TEST_F(BodyBoundsTest, EndlessTrailersAreA400) {
  expect_error(chunked("3\r\nabc\r\n0\r\n", "X-Trailer: and another one\r\n"), 400, "bad_body");
}

TEST_F(BodyBoundsTest, AChunkSizeOverTheLimitIsA413BeforeItsData) {
  // Declares a terabyte and sends three bytes of it: refused on the size line, without waiting for more
  // (the client sends nothing else, and no body time-out is needed to end it).
  expect_error(chunked("FFFFFFFFFF\r\nabc"), 413, "payload_too_large");
}

TEST_F(BodyBoundsTest, AChunkSizeOverflowingIsA400) {
  expect_error(chunked("FFFFFFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n"), 400, "bad_body");
}

TEST_F(BodyBoundsTest, InvalidHexIsA400AndTheServerServesOn) {
  expect_error(chunked("xyz\r\nabc\r\n0\r\n\r\n"), 400, "bad_body");
  RawClient client(server_.port());
  client.send(kGetHello);
  EXPECT_EQ(next_response(client).status, 200);
}

class SlowLorisTest : public LimitsTest {
 protected:
  static ServerOptions options() {
    ServerOptions o;
    o.header_timeout = 1s;
    return o;
  }
  SlowLorisTest() : LimitsTest(options()) {}
};

TEST_F(SlowLorisTest, AHeadTrickledInIsCutOffWithA408WhileOthersAreServed) {
  RawClient loris(server_.port());
  loris.send("GET /hello HTTP/1.1\r\nHost: x\r\n");
  // Everyone else is served meanwhile.
  RawClient other(server_.port());
  other.send(kGetHello);
  EXPECT_EQ(next_response(other).status, 200);

  // A header line now and then must not keep the head alive: its deadline is one for the whole head, not
  // one per read. So the trickle goes on until the server has answered and closed; were the deadline
  // renewed by every line, that would never happen, and the trickle would run out instead (200 lines).
  std::atomic<bool> answered = false;
  std::string raw;
  std::thread reader([&] {
    raw = loris.read_to_end();
    answered = true;
  });
  int lines = 0;
  while (!answered && lines < 200 && loris.send("X-" + std::to_string(lines) + ": y\r\n")) {
    ++lines;
    std::this_thread::sleep_for(100ms);
  }
  loris.shutdown_write();
  reader.join();
  EXPECT_LT(lines, 200) << "the trickle kept the request head open";
  const auto response = test::take_response(raw);
  EXPECT_EQ(response.status, 408) << raw;
  EXPECT_EQ(json::parse(response.body, nullptr, false)["error"]["code"], "request_timeout");
}

}  // namespace
}  // namespace framepress::http
