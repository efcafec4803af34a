// The one translation unit of framepress that includes Beast: everything else sees only server.h.

#include "http/server.h"

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

/// One accepted socket. Everything on it runs on its strand: the session coroutine, and the closing
/// that Server::stop() posts there.
struct Connection {
  explicit Connection(tcp::socket socket) : stream(std::move(socket)) {}
  beast::tcp_stream stream;
  // Ends whatever the session is waiting for (a socket, or a timer of a stream handler) on stop().
  asio::cancellation_signal cancel;
  bool stopping = false;
};

std::string remote_of(Connection& conn) {
  beast::error_code ec;
  const auto peer = conn.stream.socket().remote_endpoint(ec);
  return ec ? std::string() : peer.address().to_string();
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
      conn_.stream.expires_after(options_.body_idle_timeout);
      auto [ec, transferred] = co_await bhttp::async_read_some(conn_.stream, buffer_, parser_, use_tuple);
      (void)transferred;
      conn_.stream.expires_never();
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
      : options(std::move(opts)), router(std::move(r)), ioc(std::max(1, options.threads)) {}

  ServerOptions options;
  Router router;
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

  void listen();
  bool track(const std::shared_ptr<Connection>& connection);
  void forget(Connection* connection);
  void stop();
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> session(std::shared_ptr<Connection> connection);
  asio::awaitable<bool> serve(Connection& connection, beast::flat_buffer& buffer, Parser& parser);
  asio::awaitable<void> dispatch(ServerExchange& exchange, bool target_ok);
  asio::awaitable<void> send_error(Connection& connection, int status, std::string_view code, std::string_view message);
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

bool Server::Impl::track(const std::shared_ptr<Connection>& connection) {
  std::lock_guard lock(mutex);
  if (stopping) return false;
  live.emplace(connection.get(), connection);
  return true;
}

void Server::Impl::forget(Connection* connection) {
  std::lock_guard lock(mutex);
  live.erase(connection);
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
    if (!track(connection)) continue;  // stopping: the connection closes as it goes out of scope
    asio::co_spawn(strand, session(connection),
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
  beast::flat_buffer buffer;  // kept across requests: it may hold the start of the next one
  bool linger = false;
  try {
    for (;;) {
      Parser parser;
      parser.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(options.max_header_bytes, UINT32_MAX)));
      parser.body_limit(boost::none);  // enforced by dispatch() and read_body(), with our own errors
      // One deadline for the whole head, not per read: a client trickling a byte at a time (slow loris)
      // would otherwise hold the connection for ever.
      conn.stream.expires_after(options.header_timeout);
      auto [ec, transferred] = co_await bhttp::async_read_header(conn.stream, buffer, parser, use_tuple);
      (void)transferred;
      conn.stream.expires_never();
      if (ec) {
        if (!connection_ended(ec)) spdlog::debug("{}: unreadable request head: {}", remote_of(conn), ec.message());
        if (ec == bhttp::error::header_limit) {
          co_await send_error(conn, 431, "header_too_large",
                              "the request head is larger than " + std::to_string(options.max_header_bytes) + " bytes");
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
  request.remote_address = remote_of(conn);
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
  exchange.mutable_request().params = std::move(match.params);
  co_await (*handler)(exchange);
}

asio::awaitable<void> Server::Impl::send_error(Connection& conn, int status, std::string_view code,
                                               std::string_view message) {
  auto response = error_response(status, code, message, options);
  response.keep_alive(false);
  conn.stream.expires_after(options.body_idle_timeout);
  auto [ec, transferred] = co_await bhttp::async_write(conn.stream, response, use_tuple);
  (void)ec;
  (void)transferred;
  conn.stream.expires_never();
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
