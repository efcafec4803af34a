#include "unit/http/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include <curl/curl.h>

namespace framepress::http::test {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ')) s.pop_back();
  std::size_t start = 0;
  while (start < s.size() && s[start] == ' ') ++start;
  return s.substr(start);
}

std::optional<std::string> find_header(const std::multimap<std::string, std::string>& headers,
                                       const std::string& name) {
  const auto it = headers.find(name);
  if (it == headers.end()) return std::nullopt;
  return it->second;
}

void parse_header_block(std::string_view block, int& status, std::string& status_line,
                        std::multimap<std::string, std::string>& headers) {
  bool first = true;
  while (!block.empty()) {
    const auto eol = block.find("\r\n");
    const std::string line(block.substr(0, eol));
    block = eol == std::string_view::npos ? std::string_view{} : block.substr(eol + 2);
    if (first) {
      status_line = line;
      if (line.size() >= 12) status = std::stoi(line.substr(9, 3));
      first = false;
      continue;
    }
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    headers.emplace(lower(line.substr(0, colon)), trim(line.substr(colon + 1)));
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------

ServerOptions TestServer::local(ServerOptions options) {
  options.address = "127.0.0.1";
  options.port = 0;
  return options;
}

TestServer::TestServer(Router router, ServerOptions options) : server_(local(std::move(options)), std::move(router)) {
  thread_ = std::thread([this] { server_.run(); });
}

TestServer::~TestServer() { stop(); }

void TestServer::stop() {
  server_.stop();
  if (thread_.joinable()) thread_.join();
}

std::string TestServer::url(std::string_view path) const {
  return "http://127.0.0.1:" + std::to_string(port()) + std::string(path);
}

// ---------------------------------------------------------------------------------------------------------

std::optional<std::string> CurlResponse::header(const std::string& lower_name) const {
  return find_header(headers, lower_name);
}

bool CurlResponse::saw_line_starting(std::string_view prefix) const {
  return std::any_of(header_lines.begin(), header_lines.end(),
                     [&](const std::string& line) { return std::string_view(line).starts_with(prefix); });
}

CurlClient::CurlClient() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  handle_ = curl_easy_init();
  if (!handle_) throw std::runtime_error("curl_easy_init failed");
}

CurlClient::~CurlClient() { curl_easy_cleanup(static_cast<CURL*>(handle_)); }

namespace {

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  static_cast<CurlResponse*>(user)->body.append(data, size * count);
  return size * count;
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* response = static_cast<CurlResponse*>(user);
  std::string line(data, size * count);
  if (line.starts_with("HTTP/")) response->headers.clear();  // a new (final or 1xx) response begins
  response->header_lines.push_back(trim(line));
  const auto colon = line.find(':');
  if (colon != std::string::npos && !line.starts_with("HTTP/")) {
    response->headers.emplace(lower(line.substr(0, colon)), trim(line.substr(colon + 1)));
  }
  return size * count;
}

std::size_t on_read(char* buffer, std::size_t size, std::size_t count, void* user) {
  return (*static_cast<std::function<std::size_t(char*, std::size_t)>*>(user))(buffer, size * count);
}

}  // namespace

CurlResponse CurlClient::request(const std::string& method, const std::string& url, std::vector<std::string> headers,
                                 std::optional<std::string> body, std::optional<Upload> upload) {
  auto* curl = static_cast<CURL*>(handle_);
  curl_easy_reset(curl);  // keeps the connection cache
  CurlResponse response;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);  // a hang guard
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response);
  if (method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (method != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  if (body) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
  }
  if (upload) {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(curl, CURLOPT_READDATA, &upload->read);
    if (upload->size) {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(*upload->size));
    } else {
      headers.push_back("Transfer-Encoding: chunked");
    }
  }
  curl_slist* list = nullptr;
  for (const auto& header : headers) list = curl_slist_append(list, header.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);

  response.curl_code = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &response.new_connections);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  curl_slist_free_all(list);
  return response;
}

// ---------------------------------------------------------------------------------------------------------

RawClient::RawClient(unsigned short port, std::chrono::seconds patience, const std::string& from) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd_ < 0) throw std::runtime_error("socket() failed");
  timeval timeout{};
  timeout.tv_sec = static_cast<time_t>(patience.count());
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (!from.empty()) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    if (::inet_pton(AF_INET, from.c_str(), &local.sin_addr) != 1 ||
        ::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
      ::close(fd_);
      throw std::runtime_error("cannot connect from " + from + ": " + std::strerror(errno));
    }
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd_);
    throw std::runtime_error(std::string("connect() failed: ") + std::strerror(errno));
  }
}

RawClient::~RawClient() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawClient::send(std::string_view bytes) {
  while (!bytes.empty()) {
    const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void RawClient::shutdown_write() { ::shutdown(fd_, SHUT_WR); }

bool RawClient::fill() {
  char buffer[64 * 1024];
  for (;;) {
    const auto n = ::recv(fd_, buffer, sizeof buffer, 0);
    if (n > 0) {
      received_.append(buffer, static_cast<std::size_t>(n));
      return true;
    }
    if (n == 0) {
      closed_ = true;
      return false;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) timed_out_ = true;
    else closed_ = true;  // reset
    return false;
  }
}

std::string RawClient::read_until(std::string_view marker) {
  std::size_t end;
  while ((end = received_.find(marker)) == std::string::npos) {
    if (!fill()) {
      std::string all;
      all.swap(received_);
      return all;
    }
  }
  std::string out = received_.substr(0, end + marker.size());
  received_.erase(0, end + marker.size());
  return out;
}

std::string RawClient::read_response() {
  std::string head = read_until("\r\n\r\n");
  if (!head.ends_with("\r\n\r\n")) return head;
  int status = 0;
  std::string status_line;
  std::multimap<std::string, std::string> headers;
  parse_header_block(std::string_view(head).substr(0, head.size() - 4), status, status_line, headers);
  std::size_t length = 0;
  if (const auto it = headers.find("content-length"); it != headers.end()) length = std::stoul(it->second);
  while (received_.size() < length && fill()) {
  }
  const auto take = std::min(length, received_.size());
  head += received_.substr(0, take);
  received_.erase(0, take);
  return head;
}

std::string RawClient::read_to_end() {
  while (fill()) {
  }
  std::string all;
  all.swap(received_);
  return all;
}

// ---------------------------------------------------------------------------------------------------------

std::optional<std::string> RawResponse::header(const std::string& lower_name) const {
  return find_header(headers, lower_name);
}

RawResponse take_response(std::string& raw, bool no_body) {
  RawResponse response;
  const auto end = raw.find("\r\n\r\n");
  if (end == std::string::npos) {
    raw.clear();
    return response;
  }
  parse_header_block(std::string_view(raw).substr(0, end), response.status, response.status_line,
                     response.headers);
  raw.erase(0, end + 4);
  if (no_body) return response;
  if (const auto length = response.header("content-length")) {
    const auto n = std::min<std::size_t>(std::stoul(*length), raw.size());
    response.body = raw.substr(0, n);
    raw.erase(0, n);
  } else {
    response.body = raw;
    raw.clear();
  }
  return response;
}

std::string pattern_bytes(std::size_t size, std::uint64_t seed) {
  std::string out(size, '\0');
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (auto& c : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x >> 24);
  }
  return out;
}

}  // namespace framepress::http::test
