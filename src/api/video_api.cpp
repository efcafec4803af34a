#include "api/video_api.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <cerrno>
#include <cstring>
#include <sstream>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "api/book_waiter.h"
#include "api/byte_range.h"
#include "core/error.h"
#include "core/filename.h"
#include "http/multipart.h"
#include "http/offload.h"
#include "http/sse.h"

namespace framepress::api {

namespace asio = boost::asio;
using nlohmann::json;

namespace {

constexpr std::size_t kBodyBufferBytes = 1 << 20;     // the fixed buffer every upload streams through
// Bytes gathered before they are handed to the store's writer (one hop to the blocking pool per batch).
// What waits is at most one batch plus one body read: memory stays flat whatever the upload's size.
constexpr std::size_t kStoreBatchBytes = 1 << 20;
constexpr std::size_t kDownloadChunkBytes = 256 << 10;
constexpr std::size_t kMaxFormFieldBytes = 1024;
constexpr std::size_t kMaxJobsPerStream = 100;

/// A file under the scratch directory that is removed when the upload does not make it into the store.
class ScratchFile {
 public:
  explicit ScratchFile(std::filesystem::path path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd_ < 0) throw Error(ErrorCode::unavailable, "cannot create a scratch file: " + std::string(std::strerror(errno)),
                             "storage_error", true);
  }
  ~ScratchFile() {
    close();
    std::error_code ec;
    std::filesystem::remove(path_, ec);  // gone already when the store took it over
  }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  void write(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::write(fd_, bytes.data(), bytes.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        throw Error(ErrorCode::unavailable, "cannot write the upload to scratch space: " + std::string(std::strerror(errno)),
                    "storage_error", true);
      }
      bytes.remove_prefix(static_cast<std::size_t>(n));
      size_ += static_cast<std::uint64_t>(n);
    }
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  const std::filesystem::path& path() const { return path_; }
  std::uint64_t size() const { return size_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

/// The type the client declared for the file, when it is a plain video/* one, for the stored object's
/// metadata (the probe has not run yet when the store's writer is created).
std::string declared_content_type(std::string_view declared) {
  std::string type;
  for (char c : declared.substr(0, declared.find(';'))) {
    if (c == ' ') continue;
    type += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  const bool plain = type.size() > 6 && type.size() < 64 && type.rfind("video/", 0) == 0 &&
                     type.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789/.+-") == std::string::npos;
  return plain ? type : "application/octet-stream";
}

std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> out;
  std::stringstream in{std::string(text)};
  std::string item;
  while (std::getline(in, item, ',')) {
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

VideoId id_param(const http::Exchange& ex) {
  const auto& params = ex.request().params;
  auto it = params.find("id");
  auto id = it == params.end() ? std::nullopt : VideoId::parse(it->second);
  if (!id) throw Error(ErrorCode::not_found, "no such video", "not_found");
  return *id;
}

/// `attachment; filename="…"; filename*=UTF-8''…` (RFC 6266): an ASCII fallback for old clients and the
/// exact UTF-8 name for the rest.
std::string content_disposition(std::string_view type, std::string_view name) {
  std::string ascii;
  std::string encoded;
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : name) {
    bool plain = std::isalnum(c) || std::strchr("-._~", c) != nullptr;
    ascii += (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') ? static_cast<char>(c) : '_';
    if (plain) {
      encoded += static_cast<char>(c);
    } else {
      encoded += '%';
      encoded += kHex[c >> 4];
      encoded += kHex[c & 15];
    }
  }
  return std::string(type) + "; filename=\"" + ascii + "\"; filename*=UTF-8''" + encoded;
}

std::string source_content_type(const SourceInfo& source) {
  if (source.container.find("webm") != std::string::npos) return "video/webm";
  if (source.container.find("matroska") != std::string::npos) return "video/x-matroska";
  if (source.container.find("mp4") != std::string::npos || source.container.find("mov") != std::string::npos) {
    return "video/mp4";
  }
  if (source.container == "avi") return "video/x-msvideo";
  if (source.container == "mpegts") return "video/mp2t";
  return "application/octet-stream";
}

bool is_terminal_event(const Event& event) {
  return std::holds_alternative<JobCompleted>(event.payload) || std::holds_alternative<JobFailed>(event.payload) ||
         std::holds_alternative<JobCancelled>(event.payload) || std::holds_alternative<JobDeleted>(event.payload);
}

std::optional<std::uint64_t> parse_u64(std::string_view text) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

/// The Last-Event-ID a client resumes from: the header EventSource sends, or `last_event_id` in the query
/// for clients that cannot set headers on a first connection.
std::optional<std::string> resume_point(const http::Exchange& ex) {
  if (auto header = ex.request().header("Last-Event-ID"); header && !header->empty()) return header;
  if (auto query = ex.request().query_param("last_event_id"); query && !query->empty()) return query;
  return std::nullopt;
}

/// A whole response. (Built by a function: GCC 12 miscompiles braced temporaries inside co_await.)
http::Response reply(int status, std::string body, http::Headers headers = {},
                     std::string content_type = "application/json") {
  return http::Response{status, std::move(content_type), std::move(headers), std::move(body)};
}

/// Checks what can be checked before a byte of the body is read, so a bad request costs no upload: the
/// preset, and that each named rendition is a rung within the cap (the source's size is checked later).
void check_options_early(const http::Request& request, const ApiOptions& options) {
  if (auto preset = request.query_param("preset")) choose_preset(options.presets, *preset);
  SourceInfo largest;
  largest.width = largest.height = 1 << 14;
  for (const auto& name : split_list(request.query_param("renditions").value_or(""))) {
    plan_ladder(largest, options.ladder, {name});
  }
}

/// The event a stream sends for a job that is gone (it has no id: nothing follows it).
std::string deleted_event(const std::string& id) {
  return http::sse_event("", "deleted", json{{"type", "job.deleted"}, {"video_id", id}}.dump());
}

json json_response_body(const JobView& job, const std::function<std::string(const JobView&, const RenditionView&)>& url) {
  return to_json(job, url);
}

}  // namespace

// ---- construction and routes ------------------------------------------------------------------

/// Destroys a writer on the blocking pool. A writer destroyed uncommitted aborts its upload (S3:
/// AbortMultipartUpload), a request that must not stall an I/O thread; this is how a client that
/// disconnects, a 413, a probe refusal or any failure mid-way leaves nothing in the store.
struct VideoApi::WriterDisposal {
  boost::asio::thread_pool* pool;
  void operator()(ObjectWriter* writer) const {
    // Owned by the posted handler: should the pool never run it, destroying the handler still aborts.
    asio::post(*pool, [owned = std::unique_ptr<ObjectWriter>(writer)]() mutable { owned.reset(); });
  }
};

/// One upload as it arrives. Every byte goes to the scratch file (ffprobe reads a file); for a store that
/// cannot take that file over in place (S3), each byte is also streamed into the store's writer, so the
/// source is in the store, uncommitted, when the request ends. It is committed only once the probe has
/// accepted it; destroying the Upload before that removes the scratch file and aborts the writer.
struct VideoApi::Upload {
  VideoId id = VideoId::generate();           // chosen first: the source's key is needed while it streams
  bool streams_to_store = false;
  std::unique_ptr<ScratchFile> file;
  std::unique_ptr<ObjectWriter, WriterDisposal> writer{nullptr, WriterDisposal{nullptr}};
  std::string pending;                        // bytes for the writer not yet handed to it
  std::string filename;
  std::string part_content_type;
  std::map<std::string, std::string> fields;  // small form fields: renditions, preset
  bool file_part_seen = false;

  void take(std::string_view bytes) {
    file->write(bytes);
    if (streams_to_store) pending.append(bytes);
  }
};

VideoApi::VideoApi(EventBus& bus, ObjectStore& store, Transcoder& transcoder, JobBook& book, ApiOptions options)
    : bus_(bus),
      store_(store),
      transcoder_(transcoder),
      book_(book),
      options_(std::move(options)),
      blocking_(static_cast<std::size_t>(std::max(1, options_.blocking_threads))),
      frames_([this](const VisibleEvent& visible) { return event_json(visible).dump(); }),
      unobserved_metrics_(options_.metrics ? nullptr : std::make_unique<metrics::Metrics>()),
      metrics_(options_.metrics ? *options_.metrics : *unobserved_metrics_) {
  std::filesystem::create_directories(options_.scratch_dir);
  // Spool files of uploads that a crash cut off are of no use to anyone.
  for (const auto& entry : std::filesystem::directory_iterator(options_.scratch_dir)) {
    if (entry.path().filename().string().rfind("upload-", 0) == 0) {
      std::error_code ec;
      std::filesystem::remove(entry.path(), ec);
    }
  }
  if (options_.presets.empty()) options_.presets = quality_presets(EncodingSettings{});
}

VideoApi::~VideoApi() { blocking_.join(); }

std::string VideoApi::rendition_path(const VideoId& id, std::string_view rendition) {
  return "/api/videos/" + id.str() + "/renditions/" + std::string(rendition);
}

void VideoApi::add_routes(http::Router& router) {
  auto bind = [this](asio::awaitable<void> (VideoApi::*member)(http::Exchange&)) {
    return [this, member](http::Exchange& ex) { return (this->*member)(ex); };
  };
  router.add("GET", "/healthz", [](http::Exchange& ex) -> asio::awaitable<void> {
    co_await ex.respond(reply(200, R"({"status":"ok"})"));
  });
  router.add("GET", "/readyz", [this](http::Exchange& ex) -> asio::awaitable<void> {
    if (!ready_) throw Error(ErrorCode::unavailable, "replaying the event log", "not_ready");
    co_await ex.respond(reply(200, R"({"status":"ready"})"));
  });
  router.add("POST", "/api/videos", bind(&VideoApi::upload));
  router.add("GET", "/api/videos", bind(&VideoApi::list));
  router.add("GET", "/api/videos/{id}", bind(&VideoApi::get));
  router.add("DELETE", "/api/videos/{id}", bind(&VideoApi::remove));
  router.add("POST", "/api/videos/{id}/cancel", bind(&VideoApi::cancel));
  router.add("GET", "/api/videos/{id}/source", bind(&VideoApi::source));
  router.add("GET", "/api/videos/{id}/renditions/{name}", bind(&VideoApi::rendition));
  // An event stream counts in framepress_sse_clients for as long as its handler runs.
  auto counted_stream = [this](http::Handler inner) -> http::Handler {
    return [this, inner = std::move(inner)](http::Exchange& ex) -> asio::awaitable<void> {
      auto open_stream = metrics_.sse_client();
      co_await inner(ex);
    };
  };
  router.add("GET", "/api/videos/{id}/events", counted_stream(bind(&VideoApi::events)), http::RouteKind::stream);
  router.add("GET", "/api/events", counted_stream(bind(&VideoApi::multi_events)), http::RouteKind::stream);
  router.add("GET", "/api/presets", bind(&VideoApi::presets));
  router.add("POST", "/upload", bind(&VideoApi::prototype_upload));
  router.add("GET", "/compression-status/{id}", counted_stream(bind(&VideoApi::prototype_status)),
             http::RouteKind::stream);
}

json VideoApi::job_json(const JobView& job) const {
  return json_response_body(job, [](const JobView& j, const RenditionView& r) { return rendition_path(j.id, r.spec.name); });
}

json VideoApi::event_json(const VisibleEvent& visible) const {
  json data = to_json(visible.event);
  data["id"] = std::to_string(visible.id);
  if (const auto* done = std::get_if<RenditionDone>(&visible.event.payload)) {
    data["url"] = rendition_path(visible.event.video_id, done->rendition);
  }
  return data;
}

Principal VideoApi::caller(const http::Exchange& ex, Scope scope) const {
  std::optional<std::string> token;
  if (auto header = ex.request().header("Authorization"); header && header->rfind("Bearer ", 0) == 0) {
    token = header->substr(7);
  } else if (ex.request().method == "GET" || ex.request().method == "HEAD") {
    // EventSource and <video src> cannot send headers: reads may carry the token in the query.
    token = ex.request().query_param("access_token");
  }
  Principal who = options_.access.authenticate(token);
  if (!who.may(scope)) {
    static constexpr const char* kNames[] = {"upload", "read", "admin"};
    throw Error(ErrorCode::forbidden,
                std::string("this token may not do that: it needs the '") + kNames[static_cast<int>(scope)] + "' scope",
                "forbidden");
  }
  return who;
}

JobView VideoApi::job_or_404(const http::Exchange& ex, const Principal& who) const {
  auto job = book_.get(id_param(ex));
  if (!job || !who.owns(job->created.owner)) throw Error(ErrorCode::not_found, "no such video", "not_found");
  return *job;
}

asio::awaitable<std::optional<JobView>> VideoApi::await_book(
    http::Exchange& ex, const VideoId& id, const std::function<bool(const std::optional<JobView>&)>& done) {
  // The book learns of an event a moment after it is published (the bus delivers it on its own thread).
  BookWaiter waiter(book_, ex.executor(), {id});
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  auto job = book_.get(id);
  while (!done(job) && std::chrono::steady_clock::now() < deadline) {
    co_await waiter.wait(std::chrono::milliseconds(200));
    job = book_.get(id);
  }
  co_return job;
}

// ---- uploads ----------------------------------------------------------------------------------

asio::awaitable<VideoApi::Upload> VideoApi::receive_upload(http::Exchange& ex, bool prototype_route) {
  const auto& request = ex.request();
  std::string content_type = request.header("Content-Type").value_or("");
  std::string lowered = content_type;
  for (auto& c : lowered) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));

  Upload upload;
  upload.streams_to_store = !store_.adopts_files_from(options_.scratch_dir);
  if (upload.streams_to_store) upload.pending.reserve(kStoreBatchBytes + kBodyBufferBytes);
  auto scratch = options_.scratch_dir / ("upload-" + upload.id.str());
  std::vector<char> buffer(kBodyBufferBytes);

  if (lowered.rfind("multipart/form-data", 0) == 0) {
    auto boundary = http::MultipartReader::boundary_of(content_type);
    if (!boundary) throw Error(ErrorCode::bad_request, "multipart/form-data without a boundary", "bad_multipart");

    // Parts go straight to the scratch file as they arrive; only small text fields are kept.
    struct Sink : http::MultipartReader::Sink {
      Upload& upload;
      std::filesystem::path scratch;
      bool prototype_route;
      enum class Target { none, file, field } target = Target::none;
      std::string field_name;

      Sink(Upload& u, std::filesystem::path s, bool p) : upload(u), scratch(std::move(s)), prototype_route(p) {}
      void on_part_begin(const http::PartHeader& part) override {
        target = Target::none;
        if (part.name == "video" && part.filename) {
          if (upload.file_part_seen) {
            throw Error(ErrorCode::bad_request, "send exactly one file, in the field 'video'", "multiple_files");
          }
          upload.file_part_seen = true;
          upload.filename = *part.filename;
          upload.part_content_type = part.content_type;
          if (upload.filename.empty()) {
            throw Error(ErrorCode::bad_request, prototype_route ? "No file selected" : "the file has no name", "no_file");
          }
          if (prototype_route && !part.content_type.empty() && part.content_type.rfind("video/", 0) != 0 &&
              part.content_type != "application/octet-stream") {
            throw Error(ErrorCode::bad_request, "File is not a video", "not_a_video");
          }
          upload.file = std::make_unique<ScratchFile>(scratch);
          target = Target::file;
        } else if (!part.filename && (part.name == "renditions" || part.name == "preset" || part.name == "filename")) {
          field_name = part.name;
          upload.fields[field_name].clear();
          target = Target::field;
        }
      }
      void on_part_data(std::string_view bytes) override {
        if (target == Target::file) {
          upload.take(bytes);
        } else if (target == Target::field) {
          auto& value = upload.fields[field_name];
          if (value.size() + bytes.size() > kMaxFormFieldBytes) {
            throw Error(ErrorCode::bad_request, "form field '" + field_name + "' is too long", "bad_multipart");
          }
          value.append(bytes);
        }
      }
      void on_part_end() override { target = Target::none; }
    } sink(upload, scratch, prototype_route);

    http::MultipartReader reader(*boundary, sink);
    for (;;) {
      std::size_t n = co_await ex.read_body(buffer);
      if (n == 0) break;
      reader.feed(std::string_view(buffer.data(), n));
      co_await forward_to_store(upload, false);
    }
    reader.finish();
    if (!upload.file_part_seen) {
      throw Error(ErrorCode::bad_request,
                  prototype_route ? "No file part in the request" : "no file in the form field 'video'", "no_file");
    }
  } else if (!prototype_route && (lowered.rfind("video/", 0) == 0 || lowered.rfind("application/octet-stream", 0) == 0)) {
    upload.file = std::make_unique<ScratchFile>(scratch);
    upload.file_part_seen = true;
    upload.filename = request.query_param("filename").value_or("video");
    upload.part_content_type = content_type;
    for (;;) {
      std::size_t n = co_await ex.read_body(buffer);
      if (n == 0) break;
      upload.take(std::string_view(buffer.data(), n));
      co_await forward_to_store(upload, false);
    }
  } else if (prototype_route) {
    throw Error(ErrorCode::bad_request, "No file part in the request", "no_file");
  } else {
    throw Error(ErrorCode::unsupported_media,
                "send multipart/form-data with the file in the field 'video', or the file itself with a video/* "
                "Content-Type",
                "unsupported_media_type");
  }
  upload.file->close();
  co_await forward_to_store(upload, true);
  co_return upload;
}

asio::awaitable<void> VideoApi::forward_to_store(Upload& upload, bool last) {
  if (!upload.streams_to_store || !upload.file) co_return;
  if (upload.pending.size() < kStoreBatchBytes && !last) co_return;
  co_await http::offload(blocking_, [&] {
    if (!upload.writer) {
      // Created here, off the I/O thread (the first part starts a multipart upload), and created even for
      // an empty body, so that a finished upload always has a writer to commit.
      upload.writer = {store_.create(ObjectKey::source_of(upload.id), declared_content_type(upload.part_content_type))
                           .release(),
                       WriterDisposal{&blocking_}};
    }
    if (!upload.pending.empty()) upload.writer->write(upload.pending);
  });
  upload.pending.clear();  // keeps its capacity for the next batch
}

asio::awaitable<JobView> VideoApi::accept_upload(http::Exchange& ex, Upload& upload) {
  const auto& request = ex.request();
  const Principal who = caller(ex, Scope::upload);
  auto option = [&](const char* name) -> std::string {
    if (auto q = request.query_param(name)) return *q;
    if (auto f = upload.fields.find(name); f != upload.fields.end()) return f->second;
    return {};
  };
  const QualityPreset& preset = choose_preset(options_.presets, option("preset"));
  auto requested = split_list(option("renditions"));

  const auto path = upload.file->path();
  SourceInfo source = co_await http::offload(blocking_, [&] { return transcoder_.probe(path); });
  auto renditions = plan_ladder(source, options_.ladder, requested);

  const VideoId id = upload.id;
  const ObjectKey source_key = ObjectKey::source_of(id);
  JobCreated created;
  created.filename = sanitize_filename(upload.filename);
  created.source_key = source_key;
  created.source = source;
  created.renditions = renditions;
  created.encoding = preset.encoding;
  created.preset_name = preset.name;
  created.owner = who.name;

  co_await http::offload(blocking_, [&] {
    // The probe accepted the file: only now does the source appear under its key.
    if (upload.writer) {
      upload.writer->commit();
    } else {
      store_.put_file(source_key, path, source_content_type(source), /*consume=*/true);
    }
    bus_.publish(Event{id, now_ms(), created});
    // All at once, so the worker that takes the first finds the others and decodes the source once.
    std::vector<RenditionTask> tasks;
    for (const auto& spec : renditions) {
      tasks.push_back(RenditionTask{id, source_key, source, spec, preset.encoding, ObjectKey::rendition_of(id, spec.name), 1});
    }
    bus_.enqueue_all(tasks);
  });
  spdlog::info("[{}] accepted '{}' ({} bytes, {}x{}, {:.1f}s) → {} renditions, preset {}", id.str(), created.filename,
               source.size, source.display_width(), source.display_height(), source.duration, renditions.size(),
               preset.name);

  auto job = co_await await_book(ex, id, [](const std::optional<JobView>& j) { return j.has_value(); });
  if (!job) {
    // The bus has not delivered the event to this process yet; answer from the event itself.
    JobBook local;
    local.apply(0, Event{id, now_ms(), created});
    job = local.get(id);
  }
  co_return *job;
}

asio::awaitable<void> VideoApi::upload(http::Exchange& ex) {
  // The caller and the options are checked before the body is read: a refusal costs no upload.
  JobView job;
  try {
    caller(ex, Scope::upload);
    check_options_early(ex.request(), options_);
    Upload upload = co_await receive_upload(ex, false);
    job = co_await accept_upload(ex, upload);
  } catch (...) {
    metrics_.upload_rejected();
    throw;  // answered by the server's error rule
  }
  metrics_.upload_accepted(job.created.source.size);
  http::Headers location{{"Location", "/api/videos/" + job.id.str()}};
  co_await ex.respond(reply(201, job_json(job).dump(), std::move(location)));
}

asio::awaitable<void> VideoApi::prototype_upload(http::Exchange& ex) {
  // The prototype's clients read {"error": "<text>"} and {"message", "video"}: its shapes are kept here.
  std::optional<Error> failure;
  try {
    caller(ex, Scope::upload);
    Upload upload = co_await receive_upload(ex, true);
    JobView job = co_await accept_upload(ex, upload);
    metrics_.upload_accepted(job.created.source.size);
    json body{{"message", "File saved as " + job.id.str()}, {"video", job.id.str()}};
    co_await ex.respond(reply(200, body.dump()));
  } catch (const Error& e) {
    failure = e;
  }
  if (failure) {
    metrics_.upload_rejected();
    json body{{"error", failure->what()}};
    co_await ex.respond(reply(http_status(failure->code()), body.dump()));
  }
}

// ---- reading and managing jobs ----------------------------------------------------------------

asio::awaitable<void> VideoApi::list(http::Exchange& ex) {
  std::size_t limit = 20;
  if (auto text = ex.request().query_param("limit")) {
    auto value = parse_u64(*text);
    if (!value || *value < 1 || *value > 100) {
      throw Error(ErrorCode::bad_request, "limit must be a whole number from 1 to 100", "bad_request");
    }
    limit = *value;
  }
  std::optional<VideoId> before;
  if (auto text = ex.request().query_param("before"); text && !text->empty()) {
    before = VideoId::parse(*text);
    if (!before) throw Error(ErrorCode::bad_request, "before must be a video id", "bad_request");
  }
  const Principal who = caller(ex, Scope::read);
  auto page = book_.list(limit, before, [&](const JobView& job) { return who.owns(job.created.owner); });
  json videos = json::array();
  for (const auto& job : page.jobs) videos.push_back(job_json(job));
  json body{{"videos", std::move(videos)},
            {"next", page.next_before ? json(page.next_before->str()) : json(nullptr)},
            {"total", page.total}};
  co_await ex.respond(reply(200, body.dump()));
}

asio::awaitable<void> VideoApi::get(http::Exchange& ex) {
  co_await ex.respond(reply(200, job_json(job_or_404(ex, caller(ex, Scope::read))).dump()));
}

asio::awaitable<void> VideoApi::cancel(http::Exchange& ex) {
  JobView job = job_or_404(ex, caller(ex, Scope::upload));
  if (is_terminal(job.state)) {
    throw Error(ErrorCode::conflict, "the job has already ended (" + std::string(to_string(job.state)) + ")", "ended");
  }
  co_await http::offload(blocking_, [&] { bus_.publish(Event{job.id, now_ms(), JobCancelled{}}); });
  auto after = co_await await_book(ex, job.id, [](const std::optional<JobView>& j) { return !j || is_terminal(j->state); });
  if (!after) throw Error(ErrorCode::not_found, "no such video", "not_found");
  co_await ex.respond(reply(202, job_json(*after).dump()));
}

asio::awaitable<void> VideoApi::remove(http::Exchange& ex) {
  JobView job = job_or_404(ex, caller(ex, Scope::upload));
  co_await http::offload(blocking_, [&] {
    if (!is_terminal(job.state)) bus_.publish(Event{job.id, now_ms(), JobCancelled{}});
    store_.remove_prefix(ObjectKey::prefix_of(job.id));
    bus_.publish(Event{job.id, now_ms(), JobDeleted{}});
  });
  co_await await_book(ex, job.id, [](const std::optional<JobView>& j) { return !j.has_value(); });
  co_await http::offload(blocking_, [&] { bus_.forget(job.id); });
  spdlog::info("[{}] deleted", job.id.str());
  co_await ex.respond(reply(204, ""));
}

asio::awaitable<void> VideoApi::presets(http::Exchange& ex) {
  auto body = presets_document(options_.ladder, options_.presets, options_.max_upload_bytes, options_.limits);
  co_await ex.respond(reply(200, body.dump()));
}

// ---- downloads --------------------------------------------------------------------------------

asio::awaitable<void> VideoApi::source(http::Exchange& ex) {
  JobView job = job_or_404(ex, caller(ex, Scope::read));
  co_await serve_object(ex, job.created.source_key, source_content_type(job.created.source),
                        content_disposition("inline", job.created.filename));
}

asio::awaitable<void> VideoApi::rendition(http::Exchange& ex) {
  JobView job = job_or_404(ex, caller(ex, Scope::read));
  const auto& name = ex.request().params.at("name");
  const RenditionView* r = job.rendition(name);
  if (r == nullptr) throw Error(ErrorCode::not_found, "this video has no rendition " + name, "not_found");
  if (r->state != RenditionState::done) {
    throw Error(ErrorCode::not_found, "rendition " + name + " is not ready (" + std::string(to_string(r->state)) + ")",
                "not_ready");
  }
  std::string download_name = filename_stem(job.created.filename) + "-" + name + ".mp4";
  auto presigned = co_await http::offload(blocking_, [&] {
    return store_.presigned_url(r->key, download_name, options_.presign_expiry);
  });
  if (presigned) {
    http::Headers redirect{{"Location", *presigned}, {"Cache-Control", "no-store"}};
    co_await ex.respond(reply(302, "", std::move(redirect)));
    co_return;
  }
  co_await serve_object(ex, r->key, "video/mp4", content_disposition("attachment", download_name));
}

asio::awaitable<void> VideoApi::serve_object(http::Exchange& ex, const ObjectKey& key, std::string content_type,
                                             std::string disposition) {
  auto info = co_await http::offload(blocking_, [&] { return store_.stat(key); });
  if (!info) throw Error(ErrorCode::not_found, "the file is missing from the store", "not_found");
  const std::uint64_t size = info->size;
  auto range = parse_range(ex.request().header("Range"), size);
  if (std::holds_alternative<Unsatisfiable>(range)) {
    http::Headers content_range{{"Content-Range", "bytes */" + std::to_string(size)}};
    co_await ex.respond(reply(416, http::error_body("range_not_satisfiable", "the requested range is outside the file"),
                              std::move(content_range)));
    co_return;
  }
  http::Headers headers{{"Content-Type", content_type},
                        {"Accept-Ranges", "bytes"},
                        {"Content-Disposition", disposition},
                        {"Cache-Control", "private, max-age=3600"}};
  int status = 200;
  std::optional<ByteRange> wanted;
  std::uint64_t length = size;
  if (const auto* r = std::get_if<ByteRange>(&range)) {
    wanted = *r;
    length = r->length();
    status = 206;
    headers.emplace_back("Content-Range",
                         "bytes " + std::to_string(r->first) + "-" + std::to_string(r->last) + "/" + std::to_string(size));
  }
  co_await ex.begin(status, headers, length);
  if (ex.request().method != "HEAD" && length > 0) {
    auto reader = co_await http::offload(blocking_, [&] { return store_.open(key, wanted); });
    std::vector<char> chunk(kDownloadChunkBytes);
    std::uint64_t sent = 0;
    while (sent < length) {
      std::size_t n = co_await http::offload(blocking_, [&] { return reader->read(chunk); });
      if (n == 0) break;
      n = static_cast<std::size_t>(std::min<std::uint64_t>(n, length - sent));
      co_await ex.write(std::string_view(chunk.data(), n));
      sent += n;
    }
    if (sent != length) {
      throw Error(ErrorCode::unavailable, "the stored file ended early", "storage_error", true);
    }
  }
  co_await ex.finish();
}

// ---- live events ------------------------------------------------------------------------------

asio::awaitable<void> VideoApi::events(http::Exchange& ex) {
  const VideoId id = id_param(ex);
  std::optional<JobView> job = job_or_404(ex, caller(ex, Scope::read));

  EventId cursor = 0;
  auto resume = resume_point(ex);
  std::optional<EventId> last_seen = resume ? parse_u64(*resume) : std::nullopt;
  if (last_seen && is_terminal(job->state) && *last_seen >= job->last_event_id) {
    // The client saw the end already; 204 makes EventSource stop reconnecting.
    co_await ex.respond(reply(204, "", {}, "text/event-stream"));
    co_return;
  }
  BookWaiter waiter(book_, ex.executor(), {id});
  co_await ex.begin(200, http::sse_headers(), std::nullopt);
  if (last_seen) {
    cursor = *last_seen;
  } else if (is_terminal(job->state)) {
    // A late subscriber still gets the whole final state, then the terminal event under its id.
    co_await ex.write(http::sse_event("", "snapshot", job_json(*job).dump()));
    auto all = book_.events_after(id, 0);
    if (!all.empty()) {
      auto frame = frames_.frame(all.back());
      co_await ex.write(*frame);
    }
    co_await ex.finish();
    co_return;
  } else {
    co_await ex.write(http::sse_event(std::to_string(job->last_event_id), "snapshot", job_json(*job).dump()));
    cursor = job->last_event_id;
  }

  for (;;) {
    auto missed = book_.events_after(id, cursor);
    // The same bytes for every subscriber of the job, rendered by the first to ask.
    std::vector<EventFrames::Bytes> frames;
    bool ended = false;
    for (const auto& visible : missed) {
      frames.push_back(frames_.frame(visible));
      cursor = visible.id;
      if (is_terminal_event(visible.event)) {
        ended = true;
        break;
      }
    }
    if (frames.size() == 1) {
      co_await ex.write(*frames.front());
    } else if (frames.size() > 1) {
      // Behind by a burst (a job's renditions start, progress and end together): one write for all.
      std::string batch;
      for (const auto& frame : frames) batch += *frame;
      co_await ex.write(batch);
    }
    if (ended) {
      co_await ex.finish();
      co_return;
    }
    if (missed.empty() && !book_.get(id)) {  // deleted while we were away
      co_await ex.write(deleted_event(id.str()));
      co_await ex.finish();
      co_return;
    }
    if (!co_await waiter.wait(options_.heartbeat)) co_await ex.write(http::sse_comment("heartbeat"));
  }
}

asio::awaitable<void> VideoApi::multi_events(http::Exchange& ex) {
  const Principal who = caller(ex, Scope::read);
  std::vector<VideoId> ids;
  for (const auto& text : split_list(ex.request().query_param("ids").value_or(""))) {
    auto id = VideoId::parse(text);
    if (!id) throw Error(ErrorCode::bad_request, "'" + text + "' is not a video id", "bad_request");
    if (std::find(ids.begin(), ids.end(), *id) == ids.end()) ids.push_back(*id);
  }
  if (ids.empty()) throw Error(ErrorCode::bad_request, "name the videos: ?ids=a,b,c", "bad_request");
  if (ids.size() > kMaxJobsPerStream) {
    throw Error(ErrorCode::bad_request, "at most " + std::to_string(kMaxJobsPerStream) + " videos on one stream",
                "bad_request");
  }

  // The cursor is every job's latest id, in the order of ?ids=, joined by dots.
  std::vector<EventId> cursor(ids.size(), 0);
  std::vector<bool> ended(ids.size(), false);
  bool resumed = false;
  if (auto resume = resume_point(ex)) {
    std::vector<EventId> parsed;
    std::stringstream in(*resume);
    std::string part;
    while (std::getline(in, part, '.')) {
      auto value = parse_u64(part);
      if (!value) break;
      parsed.push_back(*value);
    }
    if (parsed.size() == ids.size()) {
      cursor = parsed;
      resumed = true;
    }
  }
  auto cursor_text = [&] {
    std::string text;
    for (std::size_t i = 0; i < cursor.size(); ++i) text += (i ? "." : "") + std::to_string(cursor[i]);
    return text;
  };

  BookWaiter waiter(book_, ex.executor(), ids);
  co_await ex.begin(200, http::sse_headers(), std::nullopt);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    auto job = book_.get(ids[i]);
    if (!job || !who.owns(job->created.owner)) {
      ended[i] = true;
      co_await ex.write(deleted_event(ids[i].str()));
      continue;
    }
    if (!resumed) {
      cursor[i] = job->last_event_id;
      if (is_terminal(job->state)) ended[i] = true;
      co_await ex.write(http::sse_event(cursor_text(), "snapshot", job_json(*job).dump()));
    } else if (is_terminal(job->state) && cursor[i] >= job->last_event_id) {
      ended[i] = true;
    }
  }

  for (;;) {
    bool wrote = false;
    std::string batch;  // what this wake-up has to send, in one write
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (ended[i]) continue;
      auto missed = book_.events_after(ids[i], cursor[i]);
      for (const auto& visible : missed) {
        cursor[i] = visible.id;
        // The id is this stream's own cursor, so only the JSON is shared.
        auto data = frames_.data(visible);
        batch += http::sse_event(cursor_text(), sse_name(visible.event), *data);
        wrote = true;
        if (is_terminal_event(visible.event)) ended[i] = true;
      }
      if (missed.empty() && !book_.get(ids[i])) {
        ended[i] = true;
        batch += deleted_event(ids[i].str());
      }
    }
    if (!batch.empty()) co_await ex.write(batch);
    if (std::all_of(ended.begin(), ended.end(), [](bool e) { return e; })) break;
    if (!co_await waiter.wait(options_.heartbeat) && !wrote) co_await ex.write(http::sse_comment("heartbeat"));
  }
  co_await ex.finish();
}

asio::awaitable<void> VideoApi::prototype_status(http::Exchange& ex) {
  // The prototype sent one unnamed event per finished rendition and never closed the stream (its page
  // reports a closed stream as an error), so this one stays open after the end too.
  const VideoId id = id_param(ex);
  job_or_404(ex, caller(ex, Scope::read));
  BookWaiter waiter(book_, ex.executor(), {id});
  co_await ex.begin(200, http::sse_headers(), std::nullopt);
  std::vector<std::string> sent;
  for (;;) {
    auto job = book_.get(id);
    if (job) {
      std::vector<const RenditionView*> done;
      for (const auto& r : job->renditions) {
        if (r.state == RenditionState::done && std::find(sent.begin(), sent.end(), r.spec.name) == sent.end()) {
          done.push_back(&r);
        }
      }
      std::sort(done.begin(), done.end(), [](auto* a, auto* b) { return a->finished_at < b->finished_at; });
      for (const auto* r : done) {
        json data{{"bucket", options_.bucket},
                  {"file_name", filename_stem(job->created.filename) + "-" + r->spec.name +
                                    filename_extension(job->created.filename)},
                  {"resolution", r->spec.name},
                  {"uploaded_at", format_iso8601(r->finished_at)},
                  {"video", id.str()},
                  {"url", rendition_path(id, r->spec.name)}};
        co_await ex.write("data: " + data.dump() + "\n\n");
        sent.push_back(r->spec.name);
      }
    }
    if (!co_await waiter.wait(options_.heartbeat)) co_await ex.write(http::sse_comment("heartbeat"));
  }
}

}  // namespace framepress::api
