// The one translation unit of framepress that includes Beast: everything else sees only server.h.

#include "http/server.h"

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/error.h"

namespace framepress::http {

namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Parser = bhttp::request_parser<bhttp::buffer_body>;

// Results as (error_code, value) tuples: a failed read or write is an expected event on a network
// connection, not an exceptional one, and most of them are answered differently.
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
// How long, and how much, a closing connection keeps reading what the client still sends (see Server::Impl::close()).
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr std::size_t kLingerBytes = 4 << 20;
// Room in a connection's read buffer beyond the head limit: one read's worth. Nothing the parser waits on
// may grow it further: a chunk-size line with endless extensions, or endless trailers, would otherwise be
// buffered whole.
constexpr std::size_t kReadSlack = 64 * 1024;
// Connections past max_connections that are answered 503 at once. Past this many as well they are closed
// without a word: answering a flood must not cost more than the flood.
constexpr std::size_t kMaxRefusing = 128;
// How often, at most, refusals are logged: under attack they come by the thousand.
constexpr auto kRefusalLogInterval = std::chrono::seconds(10);

std::string str(beast::string_view s) { return std::string(s.data(), s.size()); }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool bodiless_status(int status) { return (status >= 100 && status < 200) || status == 204 || status == 304; }

// Framing is the server's business: a handler's Content-Length or Transfer-Encoding would contradict the
// one the server writes, and Connection is decided by the server's keep-alive logic.
bool framing_header(std::string_view name) {
  return iequals(name, "Content-Length") || iequals(name, "Transfer-Encoding") || iequals(name, "Connection");
}

// The ways a connection just ends: the client went away, went quiet, or the server is stopping.
bool connection_ended(const beast::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message || ec == beast::error::timeout ||
         ec == asio::error::eof || ec == asio::error::connection_reset || ec == asio::error::connection_aborted ||
         ec == asio::error::broken_pipe || ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor;
}

// The unit the per-client limits count: an IPv4 address, or the /64 of an IPv6 one, since one host is
// usually given a whole /64 and may pick a fresh address for every connection.
std::string client_of(const asio::ip::address& address) {
  if (address.is_v4()) return address.to_string();
  const auto v6 = address.to_v6();
  if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_string();
  auto bytes = v6.to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return asio::ip::address_v6(bytes).to_string() + "/64";
}

/// One accepted socket. Everything on it runs on its strand: the session coroutine, and the closing
/// that Server::stop() posts there.
struct Connection {
  explicit Connection(tcp::socket socket) : stream(std::move(socket)) {
    beast::error_code ec;
    const auto endpoint = stream.socket().remote_endpoint(ec);
    if (!ec) {
      peer = endpoint.address().to_string();
      client = client_of(endpoint.address());
    }
  }
  beast::tcp_stream stream;
  // Ends whatever the session is waiting for (a socket, or a timer of a stream handler) on stop().
  asio::cancellation_signal cancel;
  bool stopping = false;
  std::string peer;     // the peer's IP address ("" when the peer was gone by the time it was accepted)
  std::string client;   // what the per-client limits count (client_of)
  bool refused = false; // over max_connections: answered 503 and closed, never served
};

/// A time limit on the reads of one wait (a request head, or the next bytes of a body). Unlike
/// tcp_stream's own expiry, which closes the socket, it only cancels the read: the client can still be
/// told why it is dropped. Lives on the connection's strand, like everything of the connection.
class ReadDeadline {
 public:
  ReadDeadline(Connection& conn, std::chrono::steady_clock::duration after)
      : timer_(conn.stream.get_executor()), state_(std::make_shared<State>()) {
    timer_.expires_after(after);
    // The connection is touched only while armed, that is while a read on it is waited for (so it is
    // alive); a handler that fires after disarm() finds it so and does nothing.
    timer_.async_wait([state = state_, &conn](const boost::system::error_code& ec) {
      if (ec || !state->armed) return;
      state->expired = true;
      beast::error_code ignored;
      conn.stream.socket().cancel(ignored);
    });
  }
  ~ReadDeadline() { disarm(); }
  ReadDeadline(const ReadDeadline&) = delete;
  ReadDeadline& operator=(const ReadDeadline&) = delete;

  /// Call as soon as the read has completed.
  void disarm() {
    state_->armed = false;
    timer_.cancel();
  }
  /// Whether the read ended because the time was up (it then failed with operation_aborted).
  bool expired() const { return state_->expired; }

 private:
  struct State {
    bool armed = true;
    bool expired = false;
  };
  asio::steady_timer timer_;
  std::shared_ptr<State> state_;
};

/// Counts the uploads and streams each client has in flight, and refuses those over the limits. Checking
/// and counting is one step under one lock, so two requests racing for the last place cannot both win.
/// Thread-safe: the connections of one client run on different strands.
class Admission {
 public:
  enum class Pool : std::size_t { uploads = 0, streams = 1 };
  enum class Verdict { admitted, client_over, total_over };

  /// A place taken in a pool; given back on destruction. Empty when default-made or moved from.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept { *this = std::move(other); }
    Slot& operator=(Slot&& other) noexcept {
      if (this != &other) {
        release();
        owner_ = std::exchange(other.owner_, nullptr);
        pool_ = other.pool_;
        client_ = std::move(other.client_);
      }
      return *this;
    }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { release(); }

   private:
    friend class Admission;
    Slot(Admission* owner, Pool pool, std::string client) : owner_(owner), pool_(pool), client_(std::move(client)) {}
    void release() {
      if (owner_) std::exchange(owner_, nullptr)->release(pool_, client_);
    }
    Admission* owner_ = nullptr;
    Pool pool_ = Pool::uploads;
    std::string client_;
  };

  explicit Admission(const ServerOptions& options)
      : per_client_limit_{options.max_uploads_per_ip, options.max_streams_per_ip},
        total_limit_{options.max_uploads, options.max_streams} {}

  /// Takes a place in `pool` for `client`, or says which limit refused it (and takes nothing).
  Verdict admit(Pool pool, const std::string& client, Slot& slot) {
    const auto p = static_cast<std::size_t>(pool);
    std::lock_guard lock(mutex_);
    if (total_limit_[p] != 0 && totals_[p] >= total_limit_[p]) return Verdict::total_over;
    auto& counts = per_client_[client];
    if (per_client_limit_[p] != 0 && counts[p] >= per_client_limit_[p]) {
      // Tried with nothing in flight in the other pool either: no entry to keep.
      if (counts[0] == 0 && counts[1] == 0) per_client_.erase(client);
      return Verdict::client_over;
    }
    ++counts[p];
    ++totals_[p];
    slot = Slot(this, pool, client);
    return Verdict::admitted;
  }

 private:
  void release(Pool pool, const std::string& client) {
    const auto p = static_cast<std::size_t>(pool);
    std::lock_guard lock(mutex_);
    --totals_[p];
    auto it = per_client_.find(client);
    if (it == per_client_.end()) return;
    --it->second[p];
    // Forgotten once idle: a map of every address ever seen would itself be a way to exhaust memory.
    if (it->second[0] == 0 && it->second[1] == 0) per_client_.erase(it);
  }

  const std::array<std::size_t, 2> per_client_limit_;
  const std::array<std::size_t, 2> total_limit_;
  std::mutex mutex_;  // guards what follows
  std::unordered_map<std::string, std::array<std::size_t, 2>> per_client_;
  std::array<std::size_t, 2> totals_{};
};

/// Logs refusals at most every kRefusalLogInterval, with how many there were: a flood of refused
/// requests must not become a flood of log lines. Thread-safe.
class RefusalLog {
 public:
  void note(std::string_view what, std::string_view client) {
    std::lock_guard lock(mutex_);
    ++count_;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < kRefusalLogInterval) return;
    spdlog::warn("refused {} ({}{})", what, client.empty() ? "unknown client" : client,
                 count_ > 1 ? ", and " + std::to_string(count_ - 1) + " more refusals since the last report" : "");
    last_ = now;
    count_ = 0;
  }

 private:
  std::mutex mutex_;
  std::chrono::steady_clock::time_point last_{};
  std::uint64_t count_ = 0;
};

/// max_connections, kept below the process's descriptor limit with room to spare for everything else that
/// needs a descriptor (the store's files, the database, encoder pipes): past that limit accept() fails
/// with EMFILE and no one can be told why, while under it the extra client gets a 503.
std::size_t connection_limit(std::size_t wanted) {
  rlimit descriptors{};
  if (::getrlimit(RLIMIT_NOFILE, &descriptors) != 0 || descriptors.rlim_cur == RLIM_INFINITY) return wanted;
  const auto soft = static_cast<std::size_t>(descriptors.rlim_cur);
  const std::size_t reserve = std::clamp<std::size_t>(soft / 8, 64, 1024) + kMaxRefusing;
  const std::size_t usable = soft > reserve ? soft - reserve : 1;
  if (wanted != 0 && wanted <= usable) return wanted;
  spdlog::info("serving at most {} connections: the descriptor limit (ulimit -n) is {}", usable, soft);
  return usable;
}

void apply_cors(bhttp::response_header<>& header, const ServerOptions& options) {
  const auto& origin = options.cors_allow_origin;
  if (origin.empty()) return;
  header.set(bhttp::field::access_control_allow_origin, origin);
  header.set(bhttp::field::access_control_expose_headers, "Location, Content-Disposition");
  if (origin != "*") {
    // Caches must not hand one origin's answer to another.
    const auto vary = header[bhttp::field::vary];
    if (vary.empty()) header.set(bhttp::field::vary, "Origin");
    else if (vary.find("Origin") == beast::string_view::npos) header.set(bhttp::field::vary, str(vary) + ", Origin");
  }
}

bhttp::response<bhttp::string_body> error_response(int status, std::string_view code, std::string_view message,
                                                   const ServerOptions& options) {
  bhttp::response<bhttp::string_body> response{static_cast<bhttp::status>(status), 11};
  response.set(bhttp::field::content_type, "application/json");
  response.body() = error_body(code, message);
  apply_cors(response, options);
  response.prepare_payload();
  return response;
}

/// Ends a long-lived stream as soon as its client hangs up, rather than at the stream's next write (an
/// SSE heartbeat may be 15 s away, and the stream holds an admission slot until then). While it lives it
/// waits for the socket to become readable: a client never sends anything during an event stream, so
/// readable means the peer closed (a peek then reads 0 bytes) or reset it, and the connection's cancel
/// signal ends the handler as Server::stop() would. Bytes a client did send (pipelining) are left unread,
/// and the watch ends. Lives on the connection's strand.
class HangUpWatch {
 public:
  explicit HangUpWatch(Connection& conn) : conn_(conn), state_(std::make_shared<State>()) {
    conn.stream.socket().async_wait(tcp::socket::wait_read, [state = state_, &conn](const boost::system::error_code& ec) {
      // The connection is touched only while armed, that is while the stream's handler runs (it is alive).
      if (ec || !state->armed) return;
      char byte = 0;
      beast::error_code peek_error;
      const auto n = conn.stream.socket().receive(asio::buffer(&byte, 1), tcp::socket::message_peek, peek_error);
      if (n == 0 || peek_error) conn.cancel.emit(asio::cancellation_type::terminal);
    });
  }
  ~HangUpWatch() {
    if (!state_->armed) return;
    state_->armed = false;
    // Only the watch's wait can be outstanding now: the handler has returned.
    beast::error_code ignored;
    conn_.stream.socket().cancel(ignored);
  }
  HangUpWatch(const HangUpWatch&) = delete;
  HangUpWatch& operator=(const HangUpWatch&) = delete;

 private:
  struct State {
    bool armed = true;
  };
  Connection& conn_;
  std::shared_ptr<State> state_;
};

/// The Exchange of one request on one connection, over Beast.
class ServerExchange final : public Exchange {
 public:
  ServerExchange(Connection& connection, beast::flat_buffer& buffer, Parser& parser, Request request,
                 const ServerOptions& options, bool expect_continue)
      : conn_(connection),
        buffer_(buffer),
        parser_(parser),
        request_(std::move(request)),
        options_(options),
        head_(request_.method == "HEAD"),
        expect_continue_(expect_continue) {}

  const Request& request() const override { return request_; }
  Request& mutable_request() { return request_; }

  asio::awaitable<std::size_t> read_body(std::span<char> buffer) override {
    if (body_error_) std::rethrow_exception(body_error_);
    if (parser_.is_done()) co_return 0;
    if (buffer.empty()) throw std::invalid_argument("read_body needs a non-empty buffer");
    if (expect_continue_ && !continue_sent_ && !began_) {
      // The client holds the body back until it hears this (curl for a second, then sends anyway).
      // Sending it only now means a request refused before its body is read never has it sent; and never
      // after a final response has begun, where it would be read as part of that response.
      continue_sent_ = true;
      co_await send(asio::buffer(kContinue.data(), kContinue.size()));
    }
    for (;;) {
      auto& body = parser_.get().body();
      body.data = buffer.data();
      body.size = buffer.size();
      body.more = true;
      ReadDeadline idle(conn_, options_.body_idle_timeout);
      auto [ec, transferred] = co_await bhttp::async_read_some(conn_.stream, buffer_, parser_, use_tuple);
      (void)transferred;
      idle.disarm();
      if (ec == asio::error::operation_aborted && idle.expired()) ec = beast::error::timeout;
      const std::size_t got = buffer.size() - body.size;
      body.data = nullptr;  // the caller's buffer is not ours past this call
      body.size = 0;
      if (ec == bhttp::error::need_buffer) ec = {};

      body_bytes_ += got;
      if (body_bytes_ > options_.max_body_bytes) {
        close_ = true;
        body_error_ = std::make_exception_ptr(Error(
            ErrorCode::payload_too_large,
            "the request body is larger than the limit of " + std::to_string(options_.max_body_bytes) + " bytes"));
        std::rethrow_exception(body_error_);
      }
      if (ec) {
        close_ = true;
        body_error_ = body_failure(ec);
        // Hand out what did arrive; the failure comes with the next call.
        if (got > 0) co_return got;
        std::rethrow_exception(body_error_);
      }
      if (got > 0 || parser_.is_done()) co_return got;
    }
  }

  asio::awaitable<void> respond(Response response) override {
    if (began_) throw std::logic_error("respond() after a response has begun");
    began_ = true;
    status_ = response.status;
    bhttp::response<bhttp::string_body> message{static_cast<bhttp::status>(response.status), 11};
    if (!response.content_type.empty()) message.set(bhttp::field::content_type, response.content_type);
    add_headers(message, response.headers);
    decorate(message);
    if (!bodiless_status(response.status)) {
      message.content_length(response.body.size());
      // HEAD: the same head as GET, Content-Length included, and no body bytes.
      if (!head_) message.body() = std::move(response.body);
    }
    co_await send_message(message);
    body_sent_ = message.body().size();
    finished_ = true;
  }

  asio::awaitable<void> begin(int status, Headers headers, std::optional<std::uint64_t> content_length) override {
    if (began_) throw std::logic_error("begin() after a response has begun");
    began_ = true;
    status_ = status;
    bhttp::response<bhttp::empty_body> message{static_cast<bhttp::status>(status), 11};
    add_headers(message, headers);
    decorate(message);
    if (bodiless_status(status)) {
      declared_ = 0;
    } else if (content_length) {
      message.content_length(*content_length);
      declared_ = content_length;
    } else {
      message.chunked(true);
      chunked_ = true;
    }
    bhttp::response_serializer<bhttp::empty_body> serializer{message};
    conn_.stream.expires_after(options_.body_idle_timeout);
    auto [ec, transferred] = co_await bhttp::async_write_header(conn_.stream, serializer, use_tuple);
    (void)transferred;
    conn_.stream.expires_never();
    if (ec) fail_connection(ec);
  }

  asio::awaitable<void> write(std::string_view bytes) override {
    if (!began_ || finished_) throw std::logic_error("write() outside begin() … finish()");
    if (bytes.empty()) co_return;  // an empty chunk would end a chunked body
    if (declared_ && written_ + bytes.size() > *declared_) {
      close_ = true;
      throw std::logic_error("write() past the declared Content-Length");
    }
    written_ += bytes.size();
    if (head_) co_return;
    if (chunked_) co_await send(bhttp::make_chunk(asio::buffer(bytes.data(), bytes.size())));
    else co_await send(asio::buffer(bytes.data(), bytes.size()));
    body_sent_ += bytes.size();
  }

  asio::awaitable<void> finish() override {
    if (!began_) throw std::logic_error("finish() before begin()");
    if (finished_) co_return;
    finished_ = true;
    // HEAD sends no body bytes, so a handler may well skip its writes.
    if (declared_ && written_ < *declared_ && !head_) {
      // The client waits for bytes that will never come: only closing tells it the response is over.
      close_ = true;
      throw std::logic_error("finish() before the declared Content-Length was written");
    }
    if (chunked_ && !head_) co_await send(bhttp::make_chunk_last());
  }

  bool responded() const override { return began_; }
  asio::any_io_executor executor() const override { return conn_.stream.get_executor(); }

  // ---- for the server ----

  asio::awaitable<void> respond_error(int status, std::string_view code, std::string_view message,
                                      Headers headers = {}) {
    Response response;
    response.status = status;
    response.headers = std::move(headers);
    response.body = error_body(code, message);
    co_await respond(std::move(response));
  }

  /// Ends a handler's failure: the JSON error when nothing was sent yet, else a closed connection.
  /// Never throws.
  asio::awaitable<void> fail(std::exception_ptr failure) {
    int status = 500;
    std::string code = "internal";
    std::string message = "internal error";
    bool quiet = false;
    try {
      std::rethrow_exception(failure);
    } catch (const Error& e) {
      status = http_status(e.code());
      code = e.reason();
      message = e.what();
      if (status >= 500) spdlog::warn("{} {}: {} ({})", request_.method, request_.path, message, code);
    } catch (const boost::system::system_error& e) {
      // A connection that broke, or a stop(), ends the handler this way: nothing to report.
      quiet = broken_ || conn_.stopping;
      if (!quiet) spdlog::error("{} {} failed: {}", request_.method, request_.path, e.what());
    } catch (const std::exception& e) {
      spdlog::error("{} {} failed: {}", request_.method, request_.path, e.what());
    } catch (...) {
      spdlog::error("{} {} failed with an unknown exception", request_.method, request_.path);
    }
    if (began_ || quiet || broken_) {
      close_ = true;
      co_return;
    }
    try {
      co_await respond_error(status, code, message);
    } catch (...) {
      close_ = true;
    }
  }

  /// Ends a streamed response the handler left open: a chunked one can be ended properly, a short
  /// Content-Length one only by closing.
  asio::awaitable<void> complete() {
    if (finished_) co_return;
    if (chunked_ && !broken_) {
      try {
        co_await finish();
        co_return;
      } catch (...) {
      }
    }
    finished_ = true;
    close_ = true;
  }

  void close_after() { close_ = true; }
  const std::string& connection_client() const { return conn_.client; }
  Connection& connection() { return conn_; }
  /// Keeps an admission place until the exchange ends (its response sent, or its connection failed).
  void hold(Admission::Slot slot) { held_.push_back(std::move(slot)); }
  /// Whether the connection can serve another request.
  bool reusable() const { return keep_alive(); }
  int status() const { return status_; }
  std::uint64_t body_sent() const { return body_sent_; }

 private:
  bool keep_alive() const {
    // An unread body (or part of one) stands between us and the next request: closing is simpler and
    // safer than reading and discarding an upload no one asked for.
    return !close_ && !broken_ && !conn_.stopping && parser_.keep_alive() && parser_.is_done();
  }

  void add_headers(bhttp::response_header<>& header, const Headers& headers) {
    for (const auto& [name, value] : headers) {
      if (!framing_header(name)) header.insert(name, value);
    }
  }

  void decorate(bhttp::response_header<>& header) {
    apply_cors(header, options_);
    // Added here, not by each handler, so that no 401 goes out without its challenge: the prototype's
    // routes answer theirs themselves.
    if (header.result_int() == 401 && !options_.unauthorized_challenge.empty() &&
        header.find(bhttp::field::www_authenticate) == header.end()) {
      header.set(bhttp::field::www_authenticate, options_.unauthorized_challenge);
    }
    // Decided now, with the response: a client told "keep-alive" must not find the connection closed.
    if (!keep_alive()) {
      header.set(bhttp::field::connection, "close");
      close_ = true;
    } else if (parser_.get().version() < 11) {
      header.set(bhttp::field::connection, "keep-alive");  // HTTP/1.0 closes unless told otherwise
    }
  }

  [[noreturn]] void fail_connection(const beast::error_code& ec) {
    broken_ = true;
    close_ = true;
    throw boost::system::system_error(ec);
  }

  template <class Buffers>
  asio::awaitable<void> send(const Buffers& buffers) {
    if (broken_) fail_connection(asio::error::broken_pipe);
    // A client that stops reading must not hold the connection (and its handler) forever.
    conn_.stream.expires_after(options_.body_idle_timeout);
    auto [ec, transferred] = co_await asio::async_write(conn_.stream, buffers, use_tuple);
    (void)transferred;
    conn_.stream.expires_never();
    if (ec) fail_connection(ec);
  }

  template <class Message>
  asio::awaitable<void> send_message(Message& message) {
    conn_.stream.expires_after(options_.body_idle_timeout);
    auto [ec, transferred] = co_await bhttp::async_write(conn_.stream, message, use_tuple);
    (void)transferred;
    conn_.stream.expires_never();
    if (ec) fail_connection(ec);
  }

  std::exception_ptr body_failure(const beast::error_code& ec) const {
    if (ec == beast::error::timeout) {
      return std::make_exception_ptr(Error(ErrorCode::bad_request,
                                           "no request body bytes arrived for " +
                                               std::to_string(options_.body_idle_timeout.count()) + " s",
                                           "timeout"));
    }
    if (ec == asio::error::operation_aborted) return std::make_exception_ptr(boost::system::system_error(ec));
    if (ec == bhttp::error::body_limit) {
      // A chunk declared larger than what is left of the limit: refused on its size line.
      return std::make_exception_ptr(Error(
          ErrorCode::payload_too_large,
          "the request body is larger than the limit of " + std::to_string(options_.max_body_bytes) + " bytes"));
    }
    if (connection_ended(ec)) {
      return std::make_exception_ptr(
          Error(ErrorCode::bad_request, "the request body ended before its declared length", "incomplete_body"));
    }
    if (ec.category() == bhttp::make_error_code(bhttp::error::bad_chunk).category()) {
      return std::make_exception_ptr(
          Error(ErrorCode::bad_request, "malformed request body: " + ec.message(), "bad_body"));
    }
    return std::make_exception_ptr(boost::system::system_error(ec));
  }

  Connection& conn_;
  beast::flat_buffer& buffer_;
  Parser& parser_;
  Request request_;
  const ServerOptions& options_;
  const bool head_;
  const bool expect_continue_;

  bool continue_sent_ = false;
  std::uint64_t body_bytes_ = 0;
  std::exception_ptr body_error_;  // once the body failed, every later read fails the same way

  bool began_ = false;
  bool finished_ = false;
  bool chunked_ = false;
  std::optional<std::uint64_t> declared_;
  std::uint64_t written_ = 0;
  std::uint64_t body_sent_ = 0;
  int status_ = 0;

  bool close_ = false;   // this connection ends after this request
  bool broken_ = false;  // the connection failed: nothing more can be sent

  std::vector<Admission::Slot> held_;
};

// Fills path and query from the target; false when it is not an origin-form target ("/path?query").
bool parse_target(Request& request) {
  const auto parsed = boost::urls::parse_origin_form(request.target);
  if (!parsed) return false;
  request.path = parsed->path();
  // A decoded NUL has no business in a path and would cut it short in any C API it reaches.
  if (request.path.find('\0') != std::string::npos) return false;
  // '+' is a space in the query of an HTML form (application/x-www-form-urlencoded).
  for (const auto& param : parsed->params(boost::urls::encoding_opts(true))) {
    request.query.emplace(param.key, param.value);
  }
  return true;
}

}  // namespace

std::string error_body(std::string_view code, std::string_view message) {
  const nlohmann::json body = {{"error", {{"code", code}, {"message", message}}}};
  // A message may quote client input (a path) that is not UTF-8: replace rather than throw.
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

struct Server::Impl {
  Impl(ServerOptions opts, Router r)
      : options(std::move(opts)),
        router(std::move(r)),
        admission(options),
        max_connections(connection_limit(options.max_connections)),
        ioc(std::max(1, options.threads)) {}

  ServerOptions options;
  Router router;
  // Before the io_context: the slots held by coroutine frames destroyed with it give their places back.
  Admission admission;
  RefusalLog refusals;
  const std::size_t max_connections;  // options.max_connections within the descriptor limit
  // Declared before everything that lives on it, so destroyed after: coroutine frames still queued in it
  // own connections, and are destroyed with it.
  asio::io_context ioc;
  tcp::acceptor acceptor{asio::make_strand(ioc)};
  unsigned short bound_port = 0;

  std::mutex mutex;  // guards what follows
  std::condition_variable idle;  // signalled when the last run() returns
  bool stopping = false;
  int running = 0;  // threads inside run()
  std::unordered_map<Connection*, std::weak_ptr<Connection>> live;
  std::size_t serving = 0;   // live connections being served
  std::size_t refusing = 0;  // live connections being refused (Connection::refused)

  enum class Tracked { served, refused, dropped, stopping };
  void listen();
  Tracked track(const std::shared_ptr<Connection>& connection);
  void forget(Connection* connection);
  void stop();
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> session(std::shared_ptr<Connection> connection);
  asio::awaitable<void> refuse_connection(std::shared_ptr<Connection> connection);
  asio::awaitable<bool> serve(Connection& connection, beast::flat_buffer& buffer, Parser& parser);
  asio::awaitable<void> dispatch(ServerExchange& exchange, bool target_ok);
  asio::awaitable<bool> admit(ServerExchange& exchange, Admission::Pool pool);
  /// The Retry-After of a refusal (whole seconds, at least 1: 0 would invite an instant retry).
  Headers retry_after() const {
    return {{"Retry-After", std::to_string(std::max<long long>(1, options.retry_after.count()))}};
  }
  asio::awaitable<void> send_error(Connection& connection, int status, std::string_view code, std::string_view message,
                                   const Headers& headers = {});
  asio::awaitable<void> close(Connection& connection, bool linger);
};

void Server::Impl::listen() {
  beast::error_code ec;
  const auto fail = [&](const std::string& why) {
    throw Error(ErrorCode::unavailable,
                "cannot listen on " + options.address + ":" + std::to_string(options.port) + ": " + why);
  };
  const auto address = asio::ip::make_address(options.address, ec);
  if (ec) fail("not an IP address");
  const tcp::endpoint endpoint{address, options.port};
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) fail(ec.message());
  bound_port = acceptor.local_endpoint().port();
}

Server::Impl::Tracked Server::Impl::track(const std::shared_ptr<Connection>& connection) {
  std::lock_guard lock(mutex);
  if (stopping) return Tracked::stopping;
  if (max_connections != 0 && serving >= max_connections) {
    if (refusing >= kMaxRefusing) return Tracked::dropped;
    connection->refused = true;
    ++refusing;
  } else {
    ++serving;
  }
  // Refused ones too: stop() must end their lingering like any other connection's.
  live.emplace(connection.get(), connection);
  return connection->refused ? Tracked::refused : Tracked::served;
}

void Server::Impl::forget(Connection* connection) {
  std::lock_guard lock(mutex);
  if (live.erase(connection) == 0) return;
  --(connection->refused ? refusing : serving);
}

void Server::Impl::stop() {
  std::vector<std::shared_ptr<Connection>> connections;
  {
    std::lock_guard lock(mutex);
    stopping = true;
    for (auto& [key, weak] : live) {
      if (auto connection = weak.lock()) connections.push_back(std::move(connection));
    }
  }
  asio::post(acceptor.get_executor(), [this] {
    beast::error_code ignored;
    acceptor.close(ignored);
  });
  for (auto& connection : connections) {
    auto executor = connection->stream.get_executor();
    asio::post(executor, [connection = std::move(connection)] {
      connection->stopping = true;
      connection->cancel.emit(asio::cancellation_type::terminal);
      beast::error_code ignored;
      connection->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
      connection->stream.close();
    });
  }
}

asio::awaitable<void> Server::Impl::accept_loop() {
  for (;;) {
    asio::any_io_executor strand = asio::make_strand(ioc);
    auto [ec, socket] = co_await acceptor.async_accept(strand, use_tuple);
    if (ec) {
      if (!acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
      // Out of descriptors and the like: pause rather than spin on an error that will repeat at once.
      spdlog::warn("accepting a connection failed: {}", ec.message());
      asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(100));
      co_await pause.async_wait(use_tuple);
      continue;
    }
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);  // streamed events must not wait for Nagle
    auto connection = std::make_shared<Connection>(std::move(socket));
    const Tracked tracked = track(connection);
    if (tracked == Tracked::dropped || tracked == Tracked::refused) {
      refusals.note("a connection: too many are open", connection->client);
    }
    // Stopping, or a flood past even what is answered: the connection closes as it goes out of scope.
    if (tracked == Tracked::dropped || tracked == Tracked::stopping) continue;
    asio::co_spawn(strand, tracked == Tracked::refused ? refuse_connection(connection) : session(connection),
                   asio::bind_cancellation_slot(connection->cancel.slot(), [this, connection](std::exception_ptr e) {
                     if (e) {
                       try {
                         std::rethrow_exception(e);
                       } catch (const std::exception& x) {
                         spdlog::debug("connection ended: {}", x.what());
                       } catch (...) {
                       }
                     }
                     // The signal bound to this very handler lives in the connection: let it go only
                     // after the handler has returned.
                     asio::post(connection->stream.get_executor(), [this, connection] { forget(connection.get()); });
                   }));
  }
}

asio::awaitable<void> Server::Impl::session(std::shared_ptr<Connection> connection) {
  Connection& conn = *connection;
  // Kept across requests: it may hold the start of the next one. Bounded, so that what the parser has to
  // see whole (a head, a chunk-size line, trailers) cannot grow it without end: past the bound a read
  // fails with buffer_overflow.
  beast::flat_buffer buffer(options.max_header_bytes + kReadSlack);
  // Beast reads no more than the buffer's free capacity (512 bytes when it starts empty): reserve room
  // for large reads up front, or an upload arrives 512 bytes a read.
  buffer.reserve(std::min<std::size_t>(buffer.max_size(), 64 * 1024));
  bool linger = false;
  try {
    for (;;) {
      Parser parser;
      parser.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(options.max_header_bytes, UINT32_MAX)));
      parser.body_limit(boost::none);  // a declared length is checked by dispatch(), with our own error
      // One deadline for the whole head, not per read: a client trickling a byte at a time (slow loris)
      // would otherwise hold the connection for ever.
      ReadDeadline deadline(conn, options.header_timeout);
      auto [ec, transferred] = co_await bhttp::async_read_header(conn.stream, buffer, parser, use_tuple);
      (void)transferred;
      deadline.disarm();
      if (ec == asio::error::operation_aborted && deadline.expired()) ec = beast::error::timeout;
      if (ec) {
        if (!connection_ended(ec)) spdlog::debug("{}: unreadable request head: {}", conn.peer, ec.message());
        if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow) {
          co_await send_error(conn, 431, "header_too_large",
                              "the request head is larger than " + std::to_string(options.max_header_bytes) + " bytes");
          linger = true;
        } else if (ec == beast::error::timeout && parser.got_some()) {
          // A head begun and never finished (slow loris) is told why it is dropped; an idle keep-alive
          // connection that sent nothing is just closed, as a client reusing it may be sending right now.
          refusals.note("a request head that did not arrive in time", conn.client);
          co_await send_error(conn, 408, "request_timeout",
                              "the request head did not arrive within " +
                                  std::to_string(options.header_timeout.count()) + " s");
          linger = true;
        } else if (!connection_ended(ec)) {
          co_await send_error(conn, 400, "bad_request", "malformed request: " + ec.message());
          linger = true;
        }
        break;
      }
      if (!co_await serve(conn, buffer, parser)) {
        linger = true;
        break;
      }
    }
  } catch (...) {
    // The connection broke or the server is stopping: nothing is left to say to the client.
    linger = false;
  }
  co_await close(conn, linger);
}

asio::awaitable<bool> Server::Impl::serve(Connection& conn, beast::flat_buffer& buffer, Parser& parser) {
  const auto started = std::chrono::steady_clock::now();
  const auto& head = parser.get();

  Request request;
  request.method = str(head.method_string());
  request.target = str(head.target());
  for (const auto& field : head) request.headers.emplace_back(str(field.name_string()), str(field.value()));
  if (const auto length = parser.content_length()) request.content_length = *length;
  request.chunked = parser.chunked();
  request.remote_address = conn.peer;
  // Now that a declared length has been seen (dispatch() answers it), the parser checks each chunk-size
  // line against the limit as it arrives: a chunk of a terabyte is refused before a byte of it is read.
  parser.body_limit(options.max_body_bytes);
  const bool target_ok = parse_target(request);
  const bool expect_continue = head.version() >= 11 && iequals(str(head[bhttp::field::expect]), "100-continue");

  ServerExchange exchange(conn, buffer, parser, std::move(request), options, expect_continue);
  std::exception_ptr failure;
  try {
    co_await dispatch(exchange, target_ok);
  } catch (...) {
    failure = std::current_exception();
  }
  if (failure) {
    co_await exchange.fail(failure);
  } else if (!exchange.responded()) {
    co_await exchange.fail(std::make_exception_ptr(std::logic_error("the handler returned without a response")));
  } else {
    co_await exchange.complete();
  }

  if (options.on_response && exchange.status() != 0) options.on_response(exchange.status());
  const auto& req = exchange.request();
  // The path only: a query may carry a token (EventSource cannot send headers).
  spdlog::debug("{} {} {} {} {}B {}ms", req.remote_address, req.method, req.path, exchange.status(),
                exchange.body_sent(),
                std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started)
                    .count());
  co_return exchange.reusable();
}

asio::awaitable<void> Server::Impl::dispatch(ServerExchange& exchange, bool target_ok) {
  const Request& request = exchange.request();
  if (!target_ok) {
    exchange.close_after();
    co_await exchange.respond_error(400, "bad_request", "the request target is not a valid path");
    co_return;
  }
  if (request.content_length && *request.content_length > options.max_body_bytes) {
    // Refused on its declared size alone, before any handler runs or any body byte is read.
    exchange.close_after();
    co_await exchange.respond_error(
        413, "payload_too_large",
        "the request body is larger than the limit of " + std::to_string(options.max_body_bytes) + " bytes");
    co_return;
  }
  if (request.method == "OPTIONS" && !options.cors_allow_origin.empty()) {
    // Built before the co_await: g++ 12 rejects a braced initializer holding string literals inside one
    // ("array used as initializer").
    Response preflight;
    preflight.status = 204;
    preflight.content_type.clear();
    preflight.headers = {{"Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS"},
                         {"Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID"},
                         {"Access-Control-Max-Age", "7200"}};
    co_await exchange.respond(std::move(preflight));
    co_return;
  }

  auto match = router.match(request.method, request.path);
  const Handler* handler = match.handler;
  if (!handler) {
    if (!match.allowed_methods.empty()) {
      std::string allow;
      for (const auto& method : match.allowed_methods) allow += (allow.empty() ? "" : ", ") + method;
      Headers headers{{"Allow", allow}};
      co_await exchange.respond_error(405, "method_not_allowed", request.method + " is not allowed here",
                                      std::move(headers));
      co_return;
    }
    if ((request.method == "GET" || request.method == "HEAD") && router.fallback()) {
      handler = router.fallback();
    } else {
      co_await exchange.respond_error(404, "not_found", "no route for " + request.method + " " + request.path);
      co_return;
    }
  }
  // Admission comes last, so a request that would be refused anyway (404, 405, 413) takes no place; and
  // before the handler, so a refused one costs no work and none of its body is read.
  if (request.chunked || request.content_length.value_or(0) > 0) {
    if (!co_await admit(exchange, Admission::Pool::uploads)) co_return;
  }
  if (match.kind == RouteKind::stream) {
    if (!co_await admit(exchange, Admission::Pool::streams)) co_return;
  }
  exchange.mutable_request().params = std::move(match.params);
  std::optional<HangUpWatch> hang_up;
  if (match.kind == RouteKind::stream) hang_up.emplace(exchange.connection());
  co_await (*handler)(exchange);
}

asio::awaitable<bool> Server::Impl::admit(ServerExchange& exchange, Admission::Pool pool) {
  const std::string& client = exchange.connection_client();
  Admission::Slot slot;
  const auto verdict = admission.admit(pool, client, slot);
  if (verdict == Admission::Verdict::admitted) {
    exchange.hold(std::move(slot));
    co_return true;
  }
  const bool uploads = pool == Admission::Pool::uploads;
  const std::string what = uploads ? "uploads" : "event streams";
  const bool per_client = verdict == Admission::Verdict::client_over;
  const std::size_t limit = per_client ? (uploads ? options.max_uploads_per_ip : options.max_streams_per_ip)
                                       : (uploads ? options.max_uploads : options.max_streams);
  refusals.note(std::string(per_client ? "a client over its limit of " : "a request over the server's limit of ") +
                    std::to_string(limit) + " " + what,
                client);
  // An unread body keeps the connection from serving another request: the response says it closes.
  if (per_client) {
    co_await exchange.respond_error(429, uploads ? "too_many_uploads" : "too_many_streams",
                                    "this address already has " + std::to_string(limit) + " " + what +
                                        " in progress, the most allowed; try again when one has ended",
                                    retry_after());
  } else {
    co_await exchange.respond_error(503, "server_busy",
                                    "the server has " + std::to_string(limit) + " " + what +
                                        " in progress, the most it takes at once; try again shortly",
                                    retry_after());
  }
  co_return false;
}

asio::awaitable<void> Server::Impl::refuse_connection(std::shared_ptr<Connection> connection) {
  // Answered before its request is read: reading requests is what the connection limit saves us from.
  // A client that sends one anyway still gets the answer: close() reads and drops it meanwhile.
  co_await send_error(*connection, 503, "server_busy",
                      "the server has " + std::to_string(max_connections) +
                          " connections open, the most it takes; try again shortly",
                      retry_after());
  co_await close(*connection, true);
}

asio::awaitable<void> Server::Impl::send_error(Connection& conn, int status, std::string_view code,
                                               std::string_view message, const Headers& headers) {
  auto response = error_response(status, code, message, options);
  for (const auto& [name, value] : headers) response.insert(name, value);
  response.keep_alive(false);
  conn.stream.expires_after(options.body_idle_timeout);
  auto [ec, transferred] = co_await bhttp::async_write(conn.stream, response, use_tuple);
  (void)ec;
  (void)transferred;
  conn.stream.expires_never();
  if (options.on_response) options.on_response(status);
}

asio::awaitable<void> Server::Impl::close(Connection& conn, bool linger) {
  beast::error_code ignored;
  auto& socket = conn.stream.socket();
  if (!socket.is_open()) co_return;
  if (linger && !conn.stopping) {
    // Closing a socket with unread bytes in it makes the kernel send a reset, and a reset can destroy the
    // response before the client has read it (a refused upload is exactly that case). So: say we are done
    // sending, and read and drop what still comes, for a short while, until the client closes.
    try {
      socket.shutdown(tcp::socket::shutdown_send, ignored);
      std::vector<char> sink(64 * 1024);
      std::size_t drained = 0;
      conn.stream.expires_after(kLingerTime);
      while (drained < kLingerBytes) {
        auto [ec, n] = co_await conn.stream.async_read_some(asio::buffer(sink), use_tuple);
        if (ec) break;
        drained += n;
      }
    } catch (...) {
      // Stopped meanwhile: close at once.
    }
  }
  conn.stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  conn.stream.close();
}

Server::Server(ServerOptions options, Router router)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(router))) {
  impl_->listen();
  asio::co_spawn(impl_->acceptor.get_executor(), impl_->accept_loop(), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      spdlog::error("the HTTP listener stopped: {}", x.what());
    } catch (...) {
    }
  });
}

Server::~Server() {
  stop();
  // A run() in another thread is let finish first; what is still queued after that (when run() was never
  // called) is destroyed with the io_context, without running.
  std::unique_lock lock(impl_->mutex);
  impl_->idle.wait(lock, [this] { return impl_->running == 0; });
}

unsigned short Server::port() const { return impl_->bound_port; }

void Server::run() {
  {
    std::lock_guard lock(impl_->mutex);
    ++impl_->running;
  }
  const int extra = std::max(1, impl_->options.threads) - 1;
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(extra));
  for (int i = 0; i < extra; ++i) threads.emplace_back([this] { impl_->ioc.run(); });
  impl_->ioc.run();
  for (auto& thread : threads) thread.join();
  std::lock_guard lock(impl_->mutex);
  if (--impl_->running == 0) impl_->idle.notify_all();
}

void Server::stop() { impl_->stop(); }

}  // namespace framepress::http
