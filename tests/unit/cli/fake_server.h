#pragma once
// A tiny HTTP/1.1 server for the client's tests: one thread, a plain POSIX socket on 127.0.0.1 and a free
// port, one request a connection (every answer closes it). The test's handler writes whatever bytes it
// wants, so it can answer canned JSON, stream SSE, or drop the connection half-way through an event.

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace framepress::cli::testing {

struct Request {
  std::string method;
  std::string target;                          // path and query, as sent
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  /// The header's value, or "" when absent. `name` in lower case.
  std::string header(const std::string& name) const;
  bool has_header(const std::string& name) const { return headers.count(name) != 0; }
};

/// The client's end of one connection, for the handler to answer on.
class Connection {
 public:
  explicit Connection(int fd) : fd_(fd) {}
  /// Writes all of `bytes`; returns false once the client has gone away.
  bool send(std::string_view bytes);

 private:
  int fd_;
};

class FakeServer {
 public:
  using Handler = std::function<void(const Request&, Connection&)>;

  /// Listens at once; `handler` is called on the server's thread for each request, in order.
  explicit FakeServer(Handler handler);
  ~FakeServer();
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  /// Every request received so far.
  std::vector<Request> requests() const;

  /// A complete answer with Content-Length and `Connection: close`.
  static std::string response(int status, std::string_view content_type, std::string_view body,
                              std::string_view extra_headers = {});
  /// The head of an SSE answer; the body follows until the connection closes.
  static std::string sse_head();
  /// One SSE event: "id: <id>\nevent: <event>\ndata: <data>\n\n" (no id line when `id` is empty).
  static std::string sse_event(std::string_view id, std::string_view event, std::string_view data);

 private:
  void run();
  void serve(int fd);

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<Request> requests_;
  std::thread thread_;
};

/// A port on 127.0.0.1 where nothing listens (bound, read and closed again), for "connection refused".
int unused_port();

}  // namespace framepress::cli::testing
