#include "fake_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace framepress::cli::testing {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return std::string(s);
}

int listen_on_loopback(int& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(fd, 16) != 0) {
    ::close(fd);
    throw std::runtime_error("bind/listen on 127.0.0.1 failed");
  }
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  port = ntohs(address.sin_port);
  return fd;
}

/// Reads until `buffer` holds `n` bytes; false when the peer closed first.
bool read_until_size(int fd, std::string& buffer, std::size_t n) {
  char chunk[16384];
  while (buffer.size() < n) {
    const auto got = ::recv(fd, chunk, sizeof chunk, 0);
    if (got <= 0) return false;
    buffer.append(chunk, static_cast<std::size_t>(got));
  }
  return true;
}

}  // namespace

std::string Request::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

bool Connection::send(std::string_view bytes) {
  while (!bytes.empty()) {
    // MSG_NOSIGNAL: a client that hung up must not kill the test binary with SIGPIPE.
    const auto sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(sent));
  }
  return true;
}

FakeServer::FakeServer(Handler handler) : handler_(std::move(handler)) {
  listen_fd_ = listen_on_loopback(port_);
  thread_ = std::thread([this] { run(); });
}

FakeServer::~FakeServer() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
}

std::vector<Request> FakeServer::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

void FakeServer::run() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;  // wake up now and then to see whether to stop
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    serve(fd);
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
  }
}

void FakeServer::serve(int fd) {
  std::string buffer;
  std::size_t head_end = std::string::npos;
  char chunk[16384];
  while ((head_end = buffer.find("\r\n\r\n")) == std::string::npos) {
    const auto got = ::recv(fd, chunk, sizeof chunk, 0);
    if (got <= 0) return;
    buffer.append(chunk, static_cast<std::size_t>(got));
  }

  Request request;
  std::string_view head(buffer.data(), head_end);
  auto line_end = head.find("\r\n");
  std::string_view request_line = head.substr(0, line_end);
  auto space1 = request_line.find(' ');
  auto space2 = request_line.find(' ', space1 + 1);
  request.method = std::string(request_line.substr(0, space1));
  request.target = std::string(request_line.substr(space1 + 1, space2 - space1 - 1));
  head.remove_prefix(line_end == std::string_view::npos ? head.size() : line_end + 2);
  while (!head.empty()) {
    auto end = head.find("\r\n");
    auto line = head.substr(0, end);
    if (auto colon = line.find(':'); colon != std::string_view::npos) {
      request.headers[lower(std::string(line.substr(0, colon)))] = trim(line.substr(colon + 1));
    }
    head.remove_prefix(end == std::string_view::npos ? head.size() : end + 2);
  }

  // The whole body is read before answering: closing a socket with unread data resets the connection,
  // and the client would see a send error instead of the answer.
  std::string body = buffer.substr(head_end + 4);
  if (auto length = request.header("content-length"); !length.empty()) {
    if (!read_until_size(fd, body, std::stoull(length))) return;
  }
  request.body = std::move(body);

  {
    std::lock_guard lock(mutex_);
    requests_.push_back(request);
  }
  Connection connection(fd);
  handler_(request, connection);
}

std::string FakeServer::response(int status, std::string_view content_type, std::string_view body,
                                 std::string_view extra_headers) {
  std::string reason = status == 200 ? "OK" : status == 201 ? "Created" : status == 204 ? "No Content" : "Status";
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n";
  if (!content_type.empty()) out += "Content-Type: " + std::string(content_type) + "\r\n";
  if (status != 204) out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  out += extra_headers;
  out += "Connection: close\r\n\r\n";
  out += body;
  return out;
}

std::string FakeServer::sse_head() {
  return "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";
}

std::string FakeServer::sse_event(std::string_view id, std::string_view event, std::string_view data) {
  std::string out;
  if (!id.empty()) out += "id: " + std::string(id) + "\n";
  out += "event: " + std::string(event) + "\n";
  out += "data: " + std::string(data) + "\n\n";
  return out;
}

int unused_port() {
  int port = 0;
  const int fd = listen_on_loopback(port);
  ::close(fd);
  return port;
}

}  // namespace framepress::cli::testing
