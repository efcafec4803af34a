#include "app/serve.h"

#include <signal.h>
#include <unistd.h>

#include <future>
#include <thread>

#include <spdlog/spdlog.h>

#include "api/video_api.h"
#include "bus/embedded/sqlite_event_bus.h"
#include "core/error.h"
#include "http/server.h"
#include "http/static_files.h"
#include "media/ffmpeg_transcoder.h"
#include "store/fs/fs_object_store.h"
#include "store/s3/s3_object_store.h"
#include "store/s3/s3_options.h"
#include "worker/worker_pool.h"

namespace framepress::app {
namespace {

std::unique_ptr<ObjectStore> open_store(const std::string& url) {
  if (url.rfind("file://", 0) == 0) return std::make_unique<FsObjectStore>(url.substr(7));
  // Credentials come from FRAMEPRESS_S3_ACCESS_KEY / _SECRET_KEY, their *_FILE forms (Docker and
  // Kubernetes secrets) or the prototype's MINIO_* names; never from the URL, which is logged.
  return std::make_unique<S3ObjectStore>(parse_s3_url(url), credentials_from_environment(process_environment()));
}

std::unique_ptr<EventBus> open_bus(const std::string& url, const std::filesystem::path& data_dir) {
  if (url == "embedded") return std::make_unique<SqliteEventBus>(data_dir / "framepress.db");
  throw Error(ErrorCode::unavailable, "bus '" + url + "' is not available in this build: use embedded", "bad_config");
}

std::pair<std::string, unsigned short> split_listen(const std::string& listen) {
  auto colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = std::stoi(listen.substr(colon + 1));
  if (port < 0 || port > 65535) throw Error(ErrorCode::bad_request, "invalid port in --listen " + listen, "bad_config");
  return {host.empty() ? "0.0.0.0" : host, static_cast<unsigned short>(port)};
}

/// The built web page: --web-root, else web/dist of the source tree the binary was built in, else
/// share/framepress/web next to an installed binary.
std::optional<std::filesystem::path> find_web_root(const Config& config) {
  if (!config.web_root.empty()) return config.web_root;
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::vector<std::filesystem::path> candidates{FRAMEPRESS_SOURCE_DIR "/web/dist"};
  if (!ec) candidates.push_back(exe.parent_path().parent_path() / "share" / "framepress" / "web");
  for (const auto& c : candidates) {
    if (std::filesystem::is_regular_file(c / "index.html", ec)) return c;
  }
  return std::nullopt;
}

}  // namespace

sigset_t block_shutdown_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  return signals;
}

int run_serve(const Config& config) {
  // Threads inherit the mask: main() blocked these before any thread was started.
  sigset_t signals = block_shutdown_signals();

  const auto data_dir = std::filesystem::absolute(config.effective_data_dir());
  std::filesystem::create_directories(data_dir);
  spdlog::info("framepress {} starting: data {}, bus {}, storage {}, configuration file {}", FRAMEPRESS_VERSION,
               data_dir.string(), config.bus, config.effective_storage(), config.config_file_used);

  auto store = open_store(config.effective_storage());
  auto bus = open_bus(config.bus, data_dir);

  FfmpegOptions media_options;
  media_options.limits = config.limits;
  media_options.task_timeout = config.task_timeout;
  media_options.memory_limit_bytes = config.encoder_memory_limit;
  FfmpegTranscoder transcoder(media_options);

  auto [host, port] = split_listen(config.listen);
  JobBook book;
  api::ApiOptions api_options;
  api_options.scratch_dir = data_dir / "scratch";
  api_options.ladder = config.ladder;
  api_options.presets = api::quality_presets(config.encoding);
  api_options.max_upload_bytes = config.max_upload_bytes;
  api_options.limits = config.limits;
  api_options.presign_expiry = config.presign_expiry;
  if (!config.tokens_file.empty()) {
    api_options.access = api::AccessControl::from_file(config.tokens_file);
    spdlog::info("bearer tokens required (from {})", config.tokens_file.string());
  } else if (host != "127.0.0.1" && host != "localhost" && host != "::1") {
    spdlog::warn("listening on {} without tokens: anyone who reaches it may upload and delete (see --tokens-file)",
                 host);
  }
  api::VideoApi video_api(*bus, *store, transcoder, book, api_options);

  http::Router router;
  video_api.add_routes(router);
  if (auto web = find_web_root(config)) {
    router.set_fallback(http::static_files(*web));
    spdlog::info("serving the web page from {}", web->string());
  } else {
    spdlog::warn("no web page found (build it with `make web`, or set --web-root): serving the API only");
  }

  http::ServerOptions server_options;
  server_options.address = host;
  server_options.port = port;
  server_options.threads = config.http_threads;
  server_options.max_body_bytes = config.max_upload_bytes;
  server_options.header_timeout = config.header_timeout;
  server_options.body_idle_timeout = config.body_idle_timeout;
  server_options.cors_allow_origin = config.cors_origin;
  http::Server server(server_options, std::move(router));

  worker::WorkerOptions worker_options;
  worker_options.concurrency = config.effective_workers();
  worker_options.max_retries = config.max_retries;
  worker_options.max_group = config.group_renditions;
  worker_options.scratch_dir = data_dir / "scratch";
  worker_options.name = "embedded";
  worker::WorkerPool workers(*bus, *store, transcoder, book, worker_options);

  std::promise<void> caught_up;
  auto replayed = caught_up.get_future();
  auto subscription = bus->subscribe([&](LogPosition position, const Event& event) { book.apply(position, event); },
                                     [&] { caught_up.set_value(); });

  std::jthread serving([&] { server.run(); });
  spdlog::info("listening on http://{}:{}", host, server.port());
  replayed.wait();
  spdlog::info("event log replayed: {} job(s)", book.size());
  video_api.set_ready();
  workers.start();

  std::jthread signal_waiter([&] {
    int received = 0;
    sigwait(&signals, &received);
    spdlog::info("received {}, shutting down", received == SIGINT ? "SIGINT" : "SIGTERM");
    server.stop();
  });
  serving.join();
  workers.stop();
  subscription.reset();
  spdlog::info("stopped");
  // The signal waiter is still blocked when stop() came from elsewhere; nothing is left to do for it.
  signal_waiter.detach();
  return 0;
}

}  // namespace framepress::app
