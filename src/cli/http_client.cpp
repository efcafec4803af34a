#include "cli/http_client.h"

#include <curl/curl.h>

#include <array>
#include <exception>
#include <mutex>
#include <new>

#include "core/error.h"

namespace framepress::cli {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kErrorBodyCap = 64 * 1024;
constexpr long kConnectTimeoutMs = 10'000;
constexpr long kGetTimeoutMs = 60'000;
// An upload has no overall deadline (a big file on a slow link takes what it takes); it is given up only
// when nothing moves for this long, which also covers the server's probe after the last byte.
constexpr long kUploadStallSeconds = 120;

void global_init() {
  // curl_global_init is not thread-safe in every libcurl build and must run before any handle exists.
  // Never cleaned up: the process ends soon after, and cleanup could race with another thread's handle.
  static std::once_flag once;
  std::call_once(once, [] {
    if (auto rc = curl_global_init(CURL_GLOBAL_DEFAULT); rc != CURLE_OK) {
      throw Error(ErrorCode::internal, std::string("libcurl failed to start: ") + curl_easy_strerror(rc));
    }
  });
}

struct EasyDeleter {
  void operator()(CURL* curl) const noexcept { curl_easy_cleanup(curl); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const noexcept { curl_slist_free_all(list); }
};
struct MimeDeleter {
  void operator()(curl_mime* mime) const noexcept { curl_mime_free(mime); }
};
using Easy = std::unique_ptr<CURL, EasyDeleter>;
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;
using Mime = std::unique_ptr<curl_mime, MimeDeleter>;

void append(Slist& list, const std::string& header) {
  // On failure curl_slist_append leaves the list as it was; on success it returns the (same) head.
  curl_slist* head = curl_slist_append(list.get(), header.c_str());
  if (head == nullptr) throw std::bad_alloc();
  (void)list.release();
  list.reset(head);
}

template <typename T>
void setopt(CURL* curl, CURLoption option, T value) {
  if (auto rc = curl_easy_setopt(curl, option, value); rc != CURLE_OK) {
    throw Error(ErrorCode::internal, std::string("libcurl refused an option: ") + curl_easy_strerror(rc));
  }
}

/// What the callbacks of one transfer share with the code that started it.
struct Transfer {
  CURL* curl = nullptr;
  std::string body;
  std::size_t body_cap = std::string::npos;
  const HttpClient::OnData* on_data = nullptr;
  const HttpClient::UploadProgress* on_upload = nullptr;
  bool stopped = false;
  std::chrono::seconds idle_timeout{0};
  Clock::time_point last_byte = Clock::now();
  bool idle = false;
  // An exception thrown by a callback cannot cross libcurl's C frames: it is kept here, the transfer is
  // aborted, and it is thrown again once curl_easy_perform has returned.
  std::exception_ptr exception;
  std::array<char, CURL_ERROR_SIZE> error{};
};

long response_code(CURL* curl) {
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  return status;
}

std::size_t on_write(char* data, std::size_t size, std::size_t count, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  const std::size_t length = size * count;
  t.last_byte = Clock::now();
  const long status = response_code(t.curl);
  if (t.on_data != nullptr && status >= 200 && status < 300) {
    try {
      if (!(*t.on_data)(std::string_view(data, length))) {
        t.stopped = true;
        return 0;  // anything but `length` makes libcurl stop with CURLE_WRITE_ERROR
      }
    } catch (...) {
      t.exception = std::current_exception();
      return 0;
    }
    return length;
  }
  if (t.body.size() < t.body_cap) t.body.append(data, std::min(length, t.body_cap - t.body.size()));
  return length;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t upload_total, curl_off_t upload_now) {
  auto& t = *static_cast<Transfer*>(user);
  if (t.on_upload != nullptr) {
    try {
      (*t.on_upload)(static_cast<std::uint64_t>(upload_now), static_cast<std::uint64_t>(upload_total));
    } catch (...) {
      t.exception = std::current_exception();
      return 1;
    }
  }
  // libcurl calls this about once a second even when nothing arrives, which is what the idle check needs.
  if (t.idle_timeout.count() > 0 && Clock::now() - t.last_byte > t.idle_timeout) {
    t.idle = true;
    return 1;
  }
  return 0;
}

std::string describe(CURLcode rc, const Transfer& t) {
  if (t.error[0] != '\0') return t.error.data();
  return curl_easy_strerror(rc);
}

}  // namespace

struct HttpClient::Impl {
  Easy curl;

  /// Resets the handle (keeping its connection cache) and sets what every request has.
  void prepare(const std::string& url, Transfer& t, Slist& headers, const std::string& token) {
    curl_easy_reset(curl.get());
    t.curl = curl.get();
    CURL* c = curl.get();
    setopt(c, CURLOPT_URL, url.c_str());
    // The server URL comes from the user: no file://, no gopher:// and friends behind an innocent flag.
    setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    setopt(c, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM for DNS time-outs: signals and threads don't mix
    setopt(c, CURLOPT_CONNECTTIMEOUT_MS, kConnectTimeoutMs);
    setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    setopt(c, CURLOPT_USERAGENT, "framepress-cli");
    setopt(c, CURLOPT_ERRORBUFFER, t.error.data());
    setopt(c, CURLOPT_WRITEFUNCTION, &on_write);
    setopt(c, CURLOPT_WRITEDATA, static_cast<void*>(&t));
    setopt(c, CURLOPT_XFERINFOFUNCTION, &on_progress);
    setopt(c, CURLOPT_XFERINFODATA, static_cast<void*>(&t));
    setopt(c, CURLOPT_NOPROGRESS, 0L);
    if (!token.empty()) append(headers, "Authorization: Bearer " + token);
  }

  /// Runs the transfer. Returns libcurl's result, after throwing what a callback threw.
  CURLcode perform(Transfer& t, Slist& headers) {
    if (headers) setopt(curl.get(), CURLOPT_HTTPHEADER, headers.get());
    t.last_byte = Clock::now();
    const CURLcode rc = curl_easy_perform(curl.get());
    // The error buffer and the header list die with this request, the handle lives on (for its connection
    // cache): it must not keep pointing at them.
    curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, static_cast<char*>(nullptr));
    curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, static_cast<curl_slist*>(nullptr));
    if (t.exception) std::rethrow_exception(t.exception);
    return rc;
  }

  HttpResponse response(Transfer& t) {
    HttpResponse r;
    r.status = response_code(curl.get());
    char* type = nullptr;
    if (curl_easy_getinfo(curl.get(), CURLINFO_CONTENT_TYPE, &type) == CURLE_OK && type != nullptr) {
      r.content_type = type;
    }
    r.body = std::move(t.body);
    return r;
  }
};

HttpClient::HttpClient(std::string server, std::string token) : server_(std::move(server)), token_(std::move(token)) {
  while (!server_.empty() && server_.back() == '/') server_.pop_back();
  global_init();
  impl_ = std::make_unique<Impl>();
  impl_->curl.reset(curl_easy_init());
  if (!impl_->curl) throw Error(ErrorCode::internal, "libcurl could not create a handle");
}

HttpClient::~HttpClient() = default;
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

std::string HttpClient::url(std::string_view path) const {
  std::string url = server_;
  if (path.empty() || path.front() != '/') url.push_back('/');
  url.append(path);
  return url;
}

HttpResponse HttpClient::get(std::string_view path) {
  Transfer t;
  Slist headers;
  impl_->prepare(url(path), t, headers, token_);
  append(headers, "Accept: application/json");
  setopt(impl_->curl.get(), CURLOPT_TIMEOUT_MS, kGetTimeoutMs);
  const CURLcode rc = impl_->perform(t, headers);
  if (rc != CURLE_OK) {
    throw Error(ErrorCode::unavailable, "cannot reach " + server_ + ": " + describe(rc, t), "unreachable", true);
  }
  return impl_->response(t);
}

HttpResponse HttpClient::upload(std::string_view path, std::string_view field, const std::filesystem::path& file,
                                const UploadProgress& on_progress) {
  Transfer t;
  Slist headers;
  impl_->prepare(url(path), t, headers, token_);
  t.on_upload = on_progress ? &on_progress : nullptr;
  CURL* c = impl_->curl.get();

  Mime mime(curl_mime_init(c));
  if (!mime) throw std::bad_alloc();
  curl_mimepart* part = curl_mime_addpart(mime.get());
  if (part == nullptr) throw std::bad_alloc();
  const std::string name(field);
  const std::string file_path = file.string();
  // curl_mime_filedata streams the file from disk while sending and names the part after its base name.
  if (curl_mime_name(part, name.c_str()) != CURLE_OK || curl_mime_filedata(part, file_path.c_str()) != CURLE_OK) {
    throw Error(ErrorCode::bad_request, "cannot read " + file_path, "unreadable_file");
  }
  setopt(c, CURLOPT_MIMEPOST, mime.get());

  append(headers, "Accept: application/json");
  // libcurl would send "Expect: 100-continue" and wait up to a second for an interim answer that a server
  // reading the multipart body as it streams in has no reason to send.
  append(headers, "Expect:");
  setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  setopt(c, CURLOPT_LOW_SPEED_TIME, kUploadStallSeconds);

  const CURLcode rc = impl_->perform(t, headers);
  if (rc == CURLE_READ_ERROR) {
    throw Error(ErrorCode::bad_request, "cannot read " + file_path + ": " + describe(rc, t), "unreadable_file");
  }
  if (rc != CURLE_OK) {
    // A server that refuses an upload (413, 415) may answer before the body is sent and close the
    // connection; libcurl then reports a send error, but the answer is what matters.
    if (response_code(c) >= 400) return impl_->response(t);
    throw Error(ErrorCode::unavailable, "cannot reach " + server_ + ": " + describe(rc, t), "unreachable", true);
  }
  return impl_->response(t);
}

StreamResult HttpClient::stream(std::string_view path, const std::vector<std::string>& extra_headers,
                                const OnData& on_data, std::chrono::seconds idle_timeout) {
  Transfer t;
  Slist headers;
  impl_->prepare(url(path), t, headers, token_);
  t.on_data = &on_data;
  t.body_cap = kErrorBodyCap;
  t.idle_timeout = idle_timeout;
  append(headers, "Accept: text/event-stream");
  append(headers, "Cache-Control: no-cache");
  for (const auto& header : extra_headers) append(headers, header);

  const CURLcode rc = impl_->perform(t, headers);
  StreamResult result;
  result.response = impl_->response(t);
  if (rc == CURLE_OK) {
    result.end = StreamResult::End::closed;
  } else if (t.stopped) {
    result.end = StreamResult::End::stopped;
  } else {
    result.end = StreamResult::End::failed;
    result.error = t.idle ? "no data for " + std::to_string(idle_timeout.count()) + " s" : describe(rc, t);
  }
  return result;
}

std::string HttpClient::escape(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace framepress::cli
