#include "store/s3/s3_client.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <thread>

#include "core/error.h"
#include "store/s3/s3_retry.h"
#include "store/s3/s3_sigv4.h"

namespace framepress::s3 {
namespace {

constexpr std::size_t kMaxErrorBody = 1 << 20;
// SHA-256 of the empty string: the payload hash of a request without a body.
constexpr std::string_view kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// A borrowed easy handle that goes back to the pool however the request ends.
class Lease {
 public:
  explicit Lease(CurlPool& pool) : pool_(pool), handle_(pool.acquire()) {}
  ~Lease() { pool_.release(std::move(handle_)); }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  CURL* get() const { return handle_.get(); }

 private:
  CurlPool& pool_;
  CurlHandle handle_;
};

struct CurlSlist {
  curl_slist* list = nullptr;
  ~CurlSlist() { curl_slist_free_all(list); }
  void append(const std::string& line) {
    curl_slist* next = curl_slist_append(list, line.c_str());
    if (next == nullptr) throw std::bad_alloc();
    list = next;
  }
};

// The state of one transfer, shared with libcurl's callbacks. Exceptions cannot cross libcurl's C frames,
// so a callback that fails parks its exception here, makes libcurl abort, and perform() rethrows it.
struct Transfer {
  CURL* curl = nullptr;
  const Request* request = nullptr;
  Response* response = nullptr;
  std::uint64_t sent = 0;
  std::exception_ptr error;
};

std::size_t on_read(char* buffer, std::size_t size, std::size_t count, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  const RequestBody& body = t.request->body;
  const std::uint64_t left = body.size() - std::min(t.sent, body.size());
  const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, size * count));
  if (want == 0) return 0;
  if (body.fd >= 0) {
    ssize_t n;
    do {
      n = ::pread(body.fd, buffer, want, static_cast<off_t>(body.offset + t.sent));
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
      const std::string why = n < 0 ? std::strerror(errno) : "the file ended early (was it truncated?)";
      t.error = std::make_exception_ptr(
          Error(ErrorCode::unavailable, "cannot read the file being uploaded: " + why, "storage_error"));
      return CURL_READFUNC_ABORT;
    }
    t.sent += static_cast<std::uint64_t>(n);
    return static_cast<std::size_t>(n);
  }
  std::memcpy(buffer, body.memory.data() + t.sent, want);
  t.sent += want;
  return want;
}

// libcurl rewinds the body when it must send it again on the same attempt (e.g. a 100-continue refused
// and retried by libcurl itself).
int on_seek(void* user, curl_off_t offset, int origin) {
  auto& t = *static_cast<Transfer*>(user);
  if (origin != SEEK_SET || offset < 0 || static_cast<std::uint64_t>(offset) > t.request->body.size()) {
    return CURL_SEEKFUNC_CANTSEEK;
  }
  t.sent = static_cast<std::uint64_t>(offset);
  return CURL_SEEKFUNC_OK;
}

std::size_t on_write(char* data, std::size_t size, std::size_t count, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  const std::size_t length = size * count;
  long status = 0;
  curl_easy_getinfo(t.curl, CURLINFO_RESPONSE_CODE, &status);
  t.response->status = status;
  const bool success = status >= 200 && status < 300;
  if (success && t.request->sink) {
    try {
      t.request->sink(*t.response, std::string_view(data, length));
    } catch (...) {
      t.error = std::current_exception();
      return 0;  // any count but `length` makes libcurl abort with CURLE_WRITE_ERROR
    }
    return length;
  }
  std::string& body = t.response->body;
  if (success || body.size() < kMaxErrorBody) {
    body.append(data, success ? length : std::min(length, kMaxErrorBody - body.size()));
  }
  return length;
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  const std::size_t length = size * count;
  std::string_view line(data, length);
  if (line.starts_with("HTTP/")) {
    t.response->headers.clear();  // a new answer begins (after a 100 Continue, the real one)
    return length;
  }
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return length;
  std::string name(line.substr(0, colon));
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
    value.remove_suffix(1);
  }
  t.response->headers[name] = std::string(value);
  return length;
}

struct Failure {
  CURLcode code = CURLE_OK;
  std::string message;
  bool never_connected = false;
};

// One attempt: either a Response (whatever its status) or the transport Failure.
bool perform(CURL* curl, const Request& request, const S3Options& options, const std::string& sigv4,
             const std::string& userpwd, Response& response, Failure& failure) {
  curl_easy_reset(curl);  // forgets the previous request's options; keeps the connection cache
  Transfer transfer{curl, &request, &response};
  char error_buffer[CURL_ERROR_SIZE] = {};

  CurlSlist headers;
  for (const auto& header : request.headers) headers.append(header);
  const std::string payload_hash = request.payload_hash.empty() ? std::string(kEmptySha256) : request.payload_hash;
  headers.append("x-amz-content-sha256: " + payload_hash);

  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // we are multi-threaded: no SIGALRM for DNS timeouts
  curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, sigv4.c_str());
  curl_easy_setopt(curl, CURLOPT_USERPWD, userpwd.c_str());
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connect_timeout.count()));
  // Whole-transfer timeouts would cut off large parts on slow links; a stall is what signals trouble.
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options.stall_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.list);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);

  const auto size = static_cast<curl_off_t>(request.body.size());
  if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (request.method == "PUT" || request.method == "POST") {
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(curl, CURLOPT_READDATA, &transfer);
    curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, on_seek);
    curl_easy_setopt(curl, CURLOPT_SEEKDATA, &transfer);
    if (request.method == "PUT") {
      curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, size);
    } else {
      curl_easy_setopt(curl, CURLOPT_POST, 1L);
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, size);
    }
  } else if (request.method != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }

  const CURLcode code = curl_easy_perform(curl);
  if (transfer.error) std::rethrow_exception(transfer.error);
  if (code != CURLE_OK) {
    failure.code = code;
    failure.message = error_buffer[0] != '\0' ? std::string(error_buffer) : std::string(curl_easy_strerror(code));
    curl_off_t connect_time = 0;
    curl_easy_getinfo(curl, CURLINFO_CONNECT_TIME_T, &connect_time);
    failure.never_connected = connect_time == 0;
    return false;
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  return true;
}

// "host[:port]" of an endpoint URL.
std::string authority_of(const std::string& endpoint) {
  const auto start = endpoint.find("://");
  return start == std::string::npos ? endpoint : endpoint.substr(start + 3);
}

std::string decode_entities(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '&') {
      out.push_back(text[i]);
      continue;
    }
    const auto semi = text.find(';', i);
    if (semi == std::string_view::npos) {
      out.push_back(text[i]);
      continue;
    }
    const std::string_view entity = text.substr(i + 1, semi - i - 1);
    if (entity == "amp") out.push_back('&');
    else if (entity == "lt") out.push_back('<');
    else if (entity == "gt") out.push_back('>');
    else if (entity == "quot") out.push_back('"');
    else if (entity == "apos") out.push_back('\'');
    else if (entity.starts_with("#")) {
      unsigned long cp = 0;
      try {
        cp = entity.size() > 1 && (entity[1] == 'x' || entity[1] == 'X')
                 ? std::stoul(std::string(entity.substr(2)), nullptr, 16)
                 : std::stoul(std::string(entity.substr(1)), nullptr, 10);
      } catch (const std::exception&) {
        out.append(text.substr(i, semi - i + 1));
        i = semi;
        continue;
      }
      // UTF-8 encoding of the code point.
      if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
      } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
    } else {
      out.append(text.substr(i, semi - i + 1));
    }
    i = semi;
  }
  return out;
}

}  // namespace

void CurlDelete::operator()(CURL* handle) const noexcept { curl_easy_cleanup(handle); }

CurlHandle CurlPool::acquire() {
  {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      CurlHandle handle = std::move(idle_.back());
      idle_.pop_back();
      return handle;
    }
  }
  CurlHandle handle(curl_easy_init());
  if (!handle) throw Error(ErrorCode::internal, "libcurl could not create a handle", "s3_client");
  return handle;
}

void CurlPool::release(CurlHandle handle) {
  if (!handle) return;
  std::lock_guard lock(mutex_);
  if (idle_.size() < max_idle_) idle_.push_back(std::move(handle));
}

std::string Response::header(const std::string& lower_case_name) const {
  const auto found = headers.find(lower_case_name);
  return found == headers.end() ? std::string{} : found->second;
}

std::string Response::error_code() const {
  const auto codes = xml_values(body, "Code");
  return codes.empty() ? std::string{} : codes.front();
}

std::string Response::summary() const {
  std::string text = "HTTP " + std::to_string(status);
  const auto codes = xml_values(body, "Code");
  if (!codes.empty()) text += " " + codes.front();
  const auto messages = xml_values(body, "Message");
  if (!messages.empty() && !messages.front().empty()) text += ": " + messages.front();
  return text;
}

S3Client::S3Client(S3Options options, S3Credentials credentials)
    : options_(std::move(options)),
      credentials_(std::move(credentials)),
      description_("s3://" + options_.bucket + "@" + authority_of(options_.endpoint)),
      sigv4_("aws:amz:" + options_.region + ":s3"),
      userpwd_(credentials_.access_key + ":" + credentials_.secret_key),
      pool_(32) {
  // curl_global_init is not thread-safe in 7.88; curl_easy_init would call it implicitly, racing.
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

S3Client::~S3Client() = default;

std::string S3Client::origin(const std::string& endpoint) const {
  if (options_.path_style) return endpoint;
  const auto start = endpoint.find("://") + 3;
  return endpoint.substr(0, start) + options_.bucket + "." + endpoint.substr(start);
}

std::string S3Client::path(std::string_view key) const {
  if (options_.path_style) {
    return "/" + options_.bucket + (key.empty() ? std::string{} : "/" + uri_encode(key, true));
  }
  return "/" + uri_encode(key, true);
}

std::string S3Client::url(std::string_view key, std::string_view query) const {
  std::string text = origin(options_.endpoint) + path(key);
  if (!query.empty()) {
    text.push_back('?');
    text.append(query);
  }
  return text;
}

Response S3Client::send(std::string_view what, const std::function<Request(int attempt)>& make) {
  const int attempts = std::max(1, options_.retry.max_attempts);
  std::string last_problem;
  bool unreachable = false;
  for (int attempt = 1;; ++attempt) {
    const Request request = make(attempt);
    Response response;
    Failure failure;
    bool answered;
    {
      Lease lease(pool_);
      answered = perform(lease.get(), request, options_, sigv4_, userpwd_, response, failure);
    }
    if (answered) {
      if (response.ok() || classify_response(response.status, response.error_code()) == Verdict::give_up) {
        return response;
      }
      last_problem = response.summary();
      unreachable = false;
    } else {
      unreachable = is_connect_failure(failure.code) ||
                    (failure.code == CURLE_OPERATION_TIMEDOUT && failure.never_connected);
      if (classify_transport(failure.code) == Verdict::give_up) {
        throw Error(ErrorCode::unavailable,
                    (unreachable ? "cannot reach " + options_.endpoint : std::string(what) + " failed") + ": " +
                        failure.message,
                    unreachable ? "s3_unreachable" : "s3_unavailable");
      }
      last_problem = failure.message;
    }
    if (attempt >= attempts) break;
    const auto delay = backoff_delay(options_.retry, attempt, random_unit());
    spdlog::warn("{}: {} failed ({}); attempt {} of {}, trying again in {} ms", description_, what, last_problem,
                 attempt, attempts, delay.count());
    std::this_thread::sleep_for(delay);
  }
  if (unreachable) {
    throw Error(ErrorCode::unavailable,
                "cannot reach " + options_.endpoint + ": " + last_problem + " (" + std::to_string(attempts) +
                    " attempts)",
                "s3_unreachable", true);
  }
  throw Error(ErrorCode::unavailable,
              std::string(what) + " failed " + std::to_string(attempts) + " times; the last answer: " + last_problem,
              "s3_unavailable", true);
}

void S3Client::fail(std::string_view what, const Response& response) const {
  const std::string code = response.error_code();
  const std::string summary = response.summary();
  if (response.status == 403) {
    throw Error(ErrorCode::unavailable,
                "credentials were refused by " + options_.endpoint + " (" + std::string(what) + ": " + summary +
                    "); check the access key and secret",
                "s3_forbidden");
  }
  if (response.status == 404 && code == "NoSuchBucket") {
    throw Error(ErrorCode::unavailable, "bucket " + options_.bucket + " does not exist at " + options_.endpoint,
                "s3_no_bucket");
  }
  if (response.status == 404 && code == "NoSuchUpload") {
    // The multipart upload was aborted or expired under us (a lifecycle rule, a store that lost it):
    // uploading the object again from the start can succeed.
    throw Error(ErrorCode::unavailable, std::string(what) + " failed: the multipart upload is gone", "s3_upload_lost",
                true);
  }
  if (response.status == 404 && (code.empty() || code == "NoSuchKey")) {
    throw Error(ErrorCode::not_found, std::string(what) + ": no such object");
  }
  if (classify_response(response.status, code) == Verdict::retry) {
    throw Error(ErrorCode::unavailable, std::string(what) + " failed: " + summary, "s3_unavailable", true);
  }
  throw Error(ErrorCode::internal, std::string(what) + " failed: " + summary, "s3_error");
}

std::vector<std::string> xml_values(std::string_view xml, std::string_view tag) {
  std::vector<std::string> values;
  const std::string open = "<" + std::string(tag) + ">";
  const std::string close = "</" + std::string(tag) + ">";
  std::size_t at = 0;
  while ((at = xml.find(open, at)) != std::string_view::npos) {
    const std::size_t start = at + open.size();
    const std::size_t end = xml.find(close, start);
    if (end == std::string_view::npos) break;
    values.push_back(decode_entities(xml.substr(start, end - start)));
    at = end + close.size();
  }
  return values;
}

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

}  // namespace framepress::s3
