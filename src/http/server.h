#pragma once
// A small asynchronous HTTP/1.1 server over Boost.Beast with C++20 coroutines. It knows routes, bodies
// and streams, and nothing about videos. Beast stays inside http/*.cpp: handlers see only Exchange.
//
// Handlers are coroutines. A handler that throws framepress::Error before it has begun a response gets
// the JSON error {"error":{"code","message"}} with the code's status; anything else thrown becomes a 500
// "internal" (logged, never echoed). After a response has begun the connection is closed instead.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace framepress::http {

namespace asio = boost::asio;

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method;                           // "GET", "POST", …
  std::string target;                           // as sent: path and query
  std::string path;                             // percent-decoded path
  std::multimap<std::string, std::string> query;  // percent-decoded query parameters
  Headers headers;                              // as sent
  std::optional<std::uint64_t> content_length;  // when the request declared one
  bool chunked = false;
  std::string remote_address;                   // the peer's IP address
  std::map<std::string, std::string> params;    // the route's {placeholders}

  /// The first header of that name (case-insensitive).
  std::optional<std::string> header(std::string_view name) const;
  /// The first query parameter of that name.
  std::optional<std::string> query_param(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  Headers headers;
  std::string body;
};

/// One request and its response. Lives for the duration of the handler call.
class Exchange {
 public:
  virtual ~Exchange() = default;
  virtual const Request& request() const = 0;

  /// Reads the next bytes of the request body into `buffer`; 0 at its end. Throws Error(payload_too_large)
  /// past the server's body limit, Error(bad_request) on a malformed or cut-off body, and gives up with
  /// Error(bad_request, "timeout") when the client sends nothing for the body idle time-out.
  virtual asio::awaitable<std::size_t> read_body(std::span<char> buffer) = 0;

  /// Sends a whole response.
  virtual asio::awaitable<void> respond(Response response) = 0;

  /// Begins a streamed response: with a Content-Length when `content_length` is given, else chunked.
  /// `headers` should carry Content-Type.
  virtual asio::awaitable<void> begin(int status, Headers headers, std::optional<std::uint64_t> content_length) = 0;
  /// Sends the next bytes of a streamed response. Throws (a boost::system::system_error) when the client
  /// has gone.
  virtual asio::awaitable<void> write(std::string_view bytes) = 0;
  /// Ends a streamed response.
  virtual asio::awaitable<void> finish() = 0;

  /// Whether a response has begun (after which an error can only close the connection).
  virtual bool responded() const = 0;
  /// The executor of the connection: timers for streams belong on it.
  virtual asio::any_io_executor executor() const = 0;
};

using Handler = std::function<asio::awaitable<void>(Exchange&)>;

/// What a route's responses are, for the server's admission limits. The server cannot tell a stream from
/// a slow answer before the handler runs, and the limit must be applied before then (a refused client
/// costs nothing), so the route says so. Uploads need no kind: any request with a body is one.
enum class RouteKind {
  plain,   // answered, and done
  stream,  // a long-lived streamed response (Server-Sent Events): counted against max_streams* while open
};

/// Routes by method and path pattern: "/api/videos/{id}/renditions/{name}". A placeholder matches one
/// non-empty path segment. The first route added that matches wins.
class Router {
 public:
  void add(std::string method, std::string pattern, Handler handler, RouteKind kind = RouteKind::plain);
  /// A handler for any GET/HEAD path no route matched (the web page's files); optional.
  void set_fallback(Handler handler);

  struct Match {
    const Handler* handler = nullptr;            // null: no route
    RouteKind kind = RouteKind::plain;           // the matched route's
    std::map<std::string, std::string> params;
    std::vector<std::string> allowed_methods;    // when the path matched under other methods only (→ 405)
  };
  Match match(std::string_view method, std::string_view path) const;
  const Handler* fallback() const { return fallback_ ? &fallback_ : nullptr; }

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    Handler handler;
    RouteKind kind = RouteKind::plain;
  };
  std::vector<Route> routes_;
  Handler fallback_;
};

struct ServerOptions {
  std::string address = "127.0.0.1";
  unsigned short port = 8080;                       // 0 picks a free port
  int threads = 2;
  std::uint64_t max_body_bytes = 20ULL << 30;       // 20 GiB: a larger Content-Length is a 413 at once
  std::size_t max_header_bytes = 16 * 1024;         // a larger request head is a 431
  std::chrono::seconds header_timeout{30};          // the whole request head must arrive within this (else a
                                                    // 408 when some of it came, and the connection closes)
  std::chrono::seconds body_idle_timeout{60};       // no body byte for this long ends the request; also
                                                    // the longest one response write may take
  std::string cors_allow_origin = "*";              // empty: no CORS headers
  std::string unauthorized_challenge = "Bearer";    // WWW-Authenticate of every 401 that has none (RFC 7235
                                                    // requires one); empty: none added

  // Admission limits, so that no client (or crowd) can take the server from everyone else. Over a limit of
  // its address the answer is 429, over a total 503, both with Retry-After, at once: nothing waits in a
  // queue, and a refused request's body is never read (its connection closes). 0: no limit.
  // A client is an IPv4 address, or an IPv6 /64 (what one host is usually given to pick addresses from).
  std::size_t max_uploads_per_ip = 8;               // requests with a body in flight, from one client …
  std::size_t max_uploads = 64;                     // … and from all of them
  std::size_t max_streams_per_ip = 32;              // open responses of RouteKind::stream routes, to one client …
  std::size_t max_streams = 10000;                  // … and to all
  std::size_t max_connections = 20000;              // open connections; one more is answered 503 and closed.
                                                    // Also kept below the descriptor limit (ulimit -n).
  std::chrono::seconds retry_after{5};              // the Retry-After of those answers

  /// Told the status of every answer the server sends (handlers' and its own refusals), once the answer
  /// has ended, on an I/O thread: keep it short and thread-safe. The metrics count them.
  std::function<void(int status)> on_response;
};

/// Binds on construction (throws Error(unavailable) when it cannot), serves from run() until stop().
///
/// Every connection runs on its own strand: a handler and the timers it makes on Exchange::executor()
/// never run concurrently with each other, while different connections run in parallel on the
/// options.threads threads. The Router is only read once serving.
class Server {
 public:
  Server(ServerOptions options, Router router);
  /// Stops, and waits for a run() in another thread to return. Must not be called from a handler.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// The port actually bound (useful with port 0).
  unsigned short port() const;
  /// Serves on options.threads threads (the calling one among them), returning after stop() once every
  /// connection has ended. Call it once.
  void run();
  /// Thread-safe, from anywhere (a handler included), any number of times, before or during run():
  /// closes the listener and every connection, and cancels what their handlers are waiting on (a stream's
  /// timer too), so long streams end at once: a handler waiting on an operation sees it fail
  /// (operation_aborted) and unwinds.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Builds the JSON error body: {"error":{"code":code,"message":message}}.
std::string error_body(std::string_view code, std::string_view message);

}  // namespace framepress::http
