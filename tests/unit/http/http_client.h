#pragma once
// Clients for the server tests: libcurl for what a real client does, a raw socket for what only bytes
// on the wire can show (100 Continue, framing, a head sent without its body, slow clients).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "http/server.h"

namespace framepress::http::test {

/// A Server running on a port of its own in a background thread; stopped and joined on destruction.
class TestServer {
 public:
  explicit TestServer(Router router, ServerOptions options = {});
  ~TestServer();
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  unsigned short port() const { return server_.port(); }
  std::string url(std::string_view path) const;
  /// Stops the server and waits for run() to return.
  void stop();
  /// Server::stop() alone, without waiting: what a handler may call.
  void request_stop() { server_.stop(); }

 private:
  static ServerOptions local(ServerOptions options);
  Server server_;
  std::thread thread_;
};

struct CurlResponse {
  int curl_code = 0;                       // CURLcode: 0 is success
  long status = 0;
  std::vector<std::string> header_lines;   // every header line received, 1xx responses included
  std::multimap<std::string, std::string> headers;  // of the final response, names lower-cased
  std::string body;
  long new_connections = 0;                // CURLINFO_NUM_CONNECTS

  std::optional<std::string> header(const std::string& lower_name) const;
  bool saw_line_starting(std::string_view prefix) const;
};

/// One libcurl easy handle: requests made through the same client reuse its connection.
class CurlClient {
 public:
  CurlClient();
  ~CurlClient();
  CurlClient(const CurlClient&) = delete;
  CurlClient& operator=(const CurlClient&) = delete;

  struct Upload {
    std::optional<std::uint64_t> size;   // nullopt: chunked transfer encoding
    std::function<std::size_t(char*, std::size_t)> read;  // fills up to n bytes, 0 at the end
  };

  CurlResponse request(const std::string& method, const std::string& url, std::vector<std::string> headers = {},
                       std::optional<std::string> body = std::nullopt, std::optional<Upload> upload = std::nullopt);

 private:
  void* handle_;
};

/// A blocking TCP client. Every read gives up after `patience` (a guard against hanging tests, not a
/// timing assertion). `from`: the local IPv4 address to connect from (any of 127.0.0.0/8 reaches the
/// server on 127.0.0.1), so a test can be several clients; empty: the system's choice.
class RawClient {
 public:
  explicit RawClient(unsigned short port, std::chrono::seconds patience = std::chrono::seconds(20),
                     const std::string& from = {});
  ~RawClient();
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  /// Sends everything; false when the server has closed or reset the connection.
  bool send(std::string_view bytes);
  void shutdown_write();
  /// Reads until `marker` is among what was received (returns all received so far, marker included), or
  /// the connection ends.
  std::string read_until(std::string_view marker);
  /// Reads one response whose body is framed by Content-Length (or has none).
  std::string read_response();
  /// Reads until the server closes the connection.
  std::string read_to_end();
  /// Whether the last read ended because the server closed (or reset) the connection, not on patience.
  bool closed() const { return closed_; }
  bool timed_out() const { return timed_out_; }

 private:
  bool fill();
  int fd_ = -1;
  std::string received_;  // read but not yet returned
  bool closed_ = false;
  bool timed_out_ = false;
};

/// A response as bytes on the wire, split up. Does not decode chunked bodies.
struct RawResponse {
  int status = 0;
  std::string status_line;
  std::multimap<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::optional<std::string> header(const std::string& lower_name) const;
};
/// Splits the first response off `raw` (removing it); a body is taken by Content-Length, or as the rest.
/// `no_body`: the response to a HEAD request, which has none whatever its Content-Length says.
RawResponse take_response(std::string& raw, bool no_body = false);

/// FNV-1a, 64 bits: a checksum both ends of a transfer can compute piece by piece.
struct Fnv1a {
  std::uint64_t value = 14695981039346656037ULL;
  void add(std::string_view bytes) {
    for (unsigned char c : bytes) {
      value ^= c;
      value *= 1099511628211ULL;
    }
  }
};

/// Deterministic pseudo-random bytes (xorshift), the same for every run.
std::string pattern_bytes(std::size_t size, std::uint64_t seed = 42);

}  // namespace framepress::http::test
