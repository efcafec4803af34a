#include "e2e/http_client.h"

#include <curl/curl.h>

#include <memory>
#include <stdexcept>

namespace framepress::e2e {
namespace {

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};
const CurlGlobal global_init;

using Easy = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;
using Slist = std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)>;

Easy make_easy(const std::string& url) {
  Easy easy(curl_easy_init(), &curl_easy_cleanup);
  curl_easy_setopt(easy.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy.get(), CURLOPT_TIMEOUT, 600L);
  return easy;
}

size_t append_body(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

size_t collect_header(char* data, size_t size, size_t count, void* user) {
  std::string line(data, size * count);
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
    (*static_cast<std::map<std::string, std::string>*>(user))[name] = value;
  }
  return size * count;
}

Slist make_headers(const HeaderList& headers) {
  curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  return Slist(list, &curl_slist_free_all);
}

HttpResponse perform(CURL* easy, const HeaderList& headers) {
  HttpResponse response;
  auto list = make_headers(headers);
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, list.get());
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, collect_header);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &response.headers);
  if (curl_easy_perform(easy) == CURLE_OK) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

}  // namespace

HttpResponse http_get(const std::string& url, const HeaderList& headers) {
  auto easy = make_easy(url);
  return perform(easy.get(), headers);
}

HttpResponse http_request(const std::string& method, const std::string& url, const std::string& body,
                          const HeaderList& headers) {
  auto easy = make_easy(url);
  curl_easy_setopt(easy.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method == "HEAD") curl_easy_setopt(easy.get(), CURLOPT_NOBODY, 1L);
  if (!body.empty() || method == "POST") {
    curl_easy_setopt(easy.get(), CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(easy.get(), CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  return perform(easy.get(), headers);
}

HttpResponse s3_request(const std::string& method, const std::string& url, const std::string& access_and_secret,
                        const HeaderList& headers) {
  auto easy = make_easy(url);
  curl_easy_setopt(easy.get(), CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:s3");
  curl_easy_setopt(easy.get(), CURLOPT_USERPWD, access_and_secret.c_str());
  if (method == "HEAD") {
    curl_easy_setopt(easy.get(), CURLOPT_NOBODY, 1L);
  } else if (method != "GET") {
    curl_easy_setopt(easy.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  return perform(easy.get(), headers);
}

HttpResponse upload_form(const std::string& url, const std::vector<FormPart>& parts) {
  auto easy = make_easy(url);
  std::unique_ptr<curl_mime, decltype(&curl_mime_free)> mime(curl_mime_init(easy.get()), &curl_mime_free);
  for (const auto& p : parts) {
    curl_mimepart* part = curl_mime_addpart(mime.get());
    curl_mime_name(part, p.name.c_str());
    if (!p.file.empty()) {
      curl_mime_filedata(part, p.file.c_str());
      if (!p.filename.empty()) curl_mime_filename(part, p.filename.c_str());
    } else {
      curl_mime_data(part, p.value.data(), p.value.size());
    }
    if (!p.content_type.empty()) curl_mime_type(part, p.content_type.c_str());
  }
  curl_easy_setopt(easy.get(), CURLOPT_MIMEPOST, mime.get());
  return perform(easy.get(), {});
}

HttpResponse upload_file(const std::string& url, const std::filesystem::path& file) {
  return upload_form(url, {FormPart{.name = "video", .file = file}});
}

HttpResponse upload_generated(const std::string& url, std::uint64_t size, const std::string& content_type,
                              const std::function<void(char*, std::size_t, std::uint64_t)>& fill) {
  struct Source {
    std::uint64_t size;
    std::uint64_t offset = 0;
    const std::function<void(char*, std::size_t, std::uint64_t)>* fill;
  } source{size, 0, &fill};
  auto easy = make_easy(url);
  curl_easy_setopt(easy.get(), CURLOPT_POST, 1L);
  curl_easy_setopt(easy.get(), CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(size));
  curl_easy_setopt(easy.get(), CURLOPT_READDATA, &source);
  curl_easy_setopt(easy.get(), CURLOPT_READFUNCTION, +[](char* buffer, size_t item, size_t count, void* user) -> size_t {
    auto* s = static_cast<Source*>(user);
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(item * count, s->size - s->offset));
    (*s->fill)(buffer, n, s->offset);
    s->offset += n;
    return n;
  });
  return perform(easy.get(), {"Content-Type: " + content_type});
}

SseResult read_sse(const std::string& url, const HeaderList& headers, const std::function<bool(const SseEvent&)>& stop,
                   std::chrono::seconds timeout) {
  struct State {
    SseResult result;
    std::string pending;
    SseEvent current;
    const std::function<bool(const SseEvent&)>* stop;
    bool stopped = false;
  } state;
  state.stop = &stop;
  auto easy = make_easy(url);
  curl_easy_setopt(easy.get(), CURLOPT_TIMEOUT, static_cast<long>(timeout.count()));
  auto list = make_headers(headers);
  curl_easy_setopt(easy.get(), CURLOPT_HTTPHEADER, list.get());
  curl_easy_setopt(easy.get(), CURLOPT_WRITEDATA, &state);
  curl_easy_setopt(easy.get(), CURLOPT_WRITEFUNCTION, +[](char* data, size_t size, size_t count, void* user) -> size_t {
    auto* s = static_cast<State*>(user);
    s->pending.append(data, size * count);
    std::size_t newline;
    while ((newline = s->pending.find('\n')) != std::string::npos) {
      std::string line = s->pending.substr(0, newline);
      s->pending.erase(0, newline + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) {
        if (!s->current.data.empty() || !s->current.event.empty()) {
          if (!s->current.data.empty() && s->current.data.back() == '\n') s->current.data.pop_back();
          s->result.events.push_back(s->current);
          if ((*s->stop)(s->current)) {
            s->stopped = true;
            return 0;  // ends the transfer
          }
        }
        s->current = SseEvent{};
      } else if (line[0] == ':') {
        s->result.comments.push_back(line.substr(1));
      } else {
        auto colon = line.find(':');
        std::string field = line.substr(0, colon);
        std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
        if (!value.empty() && value[0] == ' ') value.erase(0, 1);
        if (field == "id") s->current.id = value;
        if (field == "event") s->current.event = value;
        if (field == "data") s->current.data += value + "\n";
      }
    }
    return size * count;
  });
  CURLcode code = curl_easy_perform(easy.get());
  curl_easy_getinfo(easy.get(), CURLINFO_RESPONSE_CODE, &state.result.status);
  state.result.closed_by_server = code == CURLE_OK;
  return state.result;
}

}  // namespace framepress::e2e
