#include "app/serve.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <future>
#include <thread>

#include <spdlog/spdlog.h>

#include "api/video_api.h"
#include "bus/embedded/sqlite_event_bus.h"
#include "bus/kafka/kafka_event_bus.h"
#include "core/error.h"
#include "http/server.h"
#include "http/static_files.h"
#include "media/ffmpeg_transcoder.h"
#include "metrics/job_metrics.h"
#include "metrics/metrics.h"
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

std::unique_ptr<EventBus> open_bus(const Config& config, const std::filesystem::path& data_dir,
                                   metrics::Metrics& metrics) {
  if (config.bus == "embedded") return std::make_unique<SqliteEventBus>(data_dir / "framepress.db");
  KafkaOptions options;
  options.bootstrap_servers = config.bus.substr(std::string_view("kafka://").size());
  options.client_properties = config.kafka_properties;
  // The SASL password is a secret: from the environment or a file (Docker/Kubernetes secrets), never a flag.
  auto environment = process_environment();
  if (auto file = environment.find("FRAMEPRESS_KAFKA_SASL_PASSWORD_FILE"); file != environment.end()) {
    std::ifstream in(file->second);
    if (!in) throw Error(ErrorCode::bad_request, "cannot read FRAMEPRESS_KAFKA_SASL_PASSWORD_FILE", "bad_config");
    std::string password;
    std::getline(in, password);
    options.client_properties["sasl.password"] = password;
  } else if (auto value = environment.find("FRAMEPRESS_KAFKA_SASL_PASSWORD"); value != environment.end()) {
    options.client_properties["sasl.password"] = value->second;
  }
  options.events_topic = config.kafka_events_topic;
  options.tasks_topic_prefix = config.kafka_tasks_topic_prefix;
  options.upload_topic = config.kafka_upload_topic;
  options.compress_topic = config.kafka_compress_topic;
  options.partitions = config.kafka_partitions;
  options.replication_factor = config.kafka_replication;
  options.session_timeout = config.kafka_session_timeout;
  options.on_consumer_lag = [&metrics](const std::string& worker_class, std::int64_t waiting) {
    metrics.set_consumer_lag(worker_class, waiting);
  };
  options.worker_classes.clear();
  for (const auto& c : config.ladder.classes) options.worker_classes.push_back(c.name);
  if (config.storage.rfind("s3://", 0) == 0) options.bucket = parse_s3_url(config.storage).bucket;
  return std::make_unique<KafkaEventBus>(std::move(options));
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

namespace {

enum class Role { serve, api, worker };

std::string_view role_name(Role role) {
  return role == Role::serve ? "serve" : role == Role::api ? "api" : "worker";
}

FfmpegOptions media_options(const Config& config) {
  FfmpegOptions options;
  options.limits = config.limits;
  options.task_timeout = config.task_timeout;
  options.memory_limit_bytes = config.encoder_memory_limit;
  options.cpu_seconds_limit = static_cast<std::uint64_t>(config.encoder_cpu_time_limit.count());
  return options;
}

http::ServerOptions server_options(const Config& config, const std::string& host, unsigned short port,
                                   metrics::Metrics& metrics) {
  http::ServerOptions options;
  options.on_response = [&metrics](int status) { metrics.http_response(status); };
  options.address = host;
  options.port = port;
  options.threads = config.http_threads;
  options.max_body_bytes = config.max_upload_bytes;
  options.header_timeout = config.header_timeout;
  options.body_idle_timeout = config.body_idle_timeout;
  options.max_header_bytes = config.max_header_bytes;
  options.max_uploads_per_ip = config.max_uploads_per_ip;
  options.max_uploads = config.max_uploads;
  options.max_streams_per_ip = config.max_streams_per_ip;
  options.max_streams = config.max_streams;
  options.max_connections = config.max_connections;
  options.retry_after = config.retry_after;
  options.cors_allow_origin = config.cors_origin;
  return options;
}

api::ApiOptions api_options(const Config& config, const std::filesystem::path& data_dir, const std::string& host,
                            metrics::Metrics& metrics) {
  api::ApiOptions options;
  options.metrics = &metrics;
  options.scratch_dir = data_dir / "scratch";
  options.ladder = config.ladder;
  options.presets = api::quality_presets(config.encoding);
  options.max_upload_bytes = config.max_upload_bytes;
  options.limits = config.limits;
  options.presign_expiry = config.presign_expiry;
  if (config.storage.rfind("s3://", 0) == 0) options.bucket = parse_s3_url(config.storage).bucket;
  if (!config.tokens_file.empty()) {
    options.access = api::AccessControl::from_file(config.tokens_file);
    spdlog::info("bearer tokens required (from {})", config.tokens_file.string());
  } else if (host != "127.0.0.1" && host != "localhost" && host != "::1") {
    spdlog::warn("listening on {} without tokens: anyone who reaches it may upload and delete (see --tokens-file)",
                 host);
  }
  return options;
}

worker::WorkerOptions worker_options(const Config& config, const std::filesystem::path& data_dir, Role role,
                                     metrics::Metrics& metrics) {
  worker::WorkerOptions options;
  options.metrics = &metrics;
  options.concurrency = config.effective_workers();
  options.classes = config.classes;
  options.max_retries = config.max_retries;
  options.max_group = config.group_renditions;
  options.scratch_dir = data_dir / "scratch";
  char host[256] = "host";
  ::gethostname(host, sizeof host - 1);
  options.name = role == Role::serve ? "embedded" : std::string(host) + "/" + std::to_string(::getpid());
  return options;
}

/// GET /metrics: the Prometheus exposition, with the jobs by state read from the book now. Open like
/// /healthz (counts only, no job or user in it), so that a scraper needs no token.
void add_metrics_route(http::Router& router, metrics::Metrics& metrics, const JobBook& book) {
  router.add("GET", "/metrics", [&metrics, &book](http::Exchange& ex) -> boost::asio::awaitable<void> {
    metrics::set_jobs_from(metrics, book);
    http::Response response;
    response.content_type = std::string(metrics::Metrics::kContentType);
    response.body = metrics.exposition();
    co_await ex.respond(std::move(response));
  });
}

/// A worker's own small HTTP server (--metrics-listen): /metrics, and the probes Kubernetes asks for:
/// /healthz (the process answers) and /readyz (the log is replayed and the workers take tasks).
http::Router worker_router(metrics::Metrics& metrics, const JobBook& book, const std::atomic<bool>& ready) {
  http::Router router;
  router.add("GET", "/healthz", [](http::Exchange& ex) -> boost::asio::awaitable<void> {
    http::Response alive{200, "application/json", {}, R"({"status":"ok"})"};  // GCC 12: no braced temporary in co_await
    co_await ex.respond(std::move(alive));
  });
  router.add("GET", "/readyz", [&ready](http::Exchange& ex) -> boost::asio::awaitable<void> {
    if (!ready) throw Error(ErrorCode::unavailable, "replaying the event log", "not_ready");
    http::Response ready_answer{200, "application/json", {}, R"({"status":"ready"})"};
    co_await ex.respond(std::move(ready_answer));
  });
  add_metrics_route(router, metrics, book);
  return router;
}

/// Builds the parts a role needs, runs until SIGINT/SIGTERM, then stops them in order: the HTTP server
/// first (no new work), then the workers (running encodes are killed and their tasks handed back), then
/// the bus subscription.
int run_role(const Config& config, Role role) {
  sigset_t signals = block_shutdown_signals();
  const auto data_dir = std::filesystem::absolute(config.effective_data_dir());
  std::filesystem::create_directories(data_dir);
  spdlog::info("framepress {} {} starting: data {}, bus {}, configuration file {}", FRAMEPRESS_VERSION,
               role_name(role), data_dir.string(), config.bus, config.config_file_used);
  if (role != Role::serve && config.bus == "embedded") {
    throw Error(ErrorCode::bad_request,
                std::string("`framepress ") + std::string(role_name(role)) +
                    "` shares its work with other processes: give it --bus kafka://host:9092 (or run `framepress serve`)",
                "bad_config");
  }
  if (role != Role::serve && config.effective_storage().rfind("file://", 0) == 0) {
    spdlog::warn("storage {} is a local directory: the api and the workers must all see it (a shared volume), "
                 "or use s3://", config.effective_storage());
  }

  // Before every part that reports to it, so that it outlives them all.
  metrics::Metrics metrics(FRAMEPRESS_VERSION, role_name(role));
  auto store = open_store(config.effective_storage());
  // The store's own description, not the URL as given: it never holds a secret.
  spdlog::info("storage {}", store->describe());
  auto bus = open_bus(config, data_dir, metrics);
  FfmpegTranscoder transcoder(media_options(config));
  JobBook book;

  std::unique_ptr<api::VideoApi> video_api;
  std::unique_ptr<http::Server> server;
  std::string host;
  if (role != Role::worker) {
    auto [listen_host, port] = split_listen(config.listen);
    host = listen_host;
    video_api = std::make_unique<api::VideoApi>(*bus, *store, transcoder, book,
                                                api_options(config, data_dir, host, metrics));
    http::Router router;
    video_api->add_routes(router);
    add_metrics_route(router, metrics, book);
    if (auto web = find_web_root(config)) {
      router.set_fallback(http::static_files(*web));
      spdlog::info("serving the web page from {}", web->string());
    } else {
      spdlog::warn("no web page found (build it with `make web`, or set --web-root): serving the API only");
    }
    server = std::make_unique<http::Server>(server_options(config, host, port, metrics), std::move(router));
  }
  std::unique_ptr<worker::WorkerPool> workers;
  std::atomic<bool> workers_ready{false};
  if (role != Role::api) {
    workers = std::make_unique<worker::WorkerPool>(*bus, *store, transcoder, book,
                                                   worker_options(config, data_dir, role, metrics));
  }
  if (role == Role::worker && !config.metrics_listen.empty()) {
    auto [metrics_host, metrics_port] = split_listen(config.metrics_listen);
    host = metrics_host;
    auto options = server_options(config, metrics_host, metrics_port, metrics);
    options.threads = 1;
    server = std::make_unique<http::Server>(std::move(options), worker_router(metrics, book, workers_ready));
  }

  // Every role folds the event log into its book: the API answers from it, the workers see cancellations.
  std::promise<void> caught_up;
  auto replayed = caught_up.get_future();
  // Job metrics count live events only: a restart replaying the log must not count its history again.
  std::atomic<bool> live{false};
  auto subscription = bus->subscribe(
      [&](LogPosition position, const Event& event) {
        auto visible = book.apply(position, event);
        if (live) metrics::count_job_events(metrics, visible);
      },
      [&] {
        live = true;
        caught_up.set_value();
      });

  std::jthread serving;
  if (server) {
    serving = std::jthread([&] { server->run(); });
    spdlog::info("listening on http://{}:{}", host, server->port());
  }
  replayed.wait();
  spdlog::info("event log replayed: {} job(s)", book.size());
  if (video_api) video_api->set_ready();
  if (workers) workers->start();
  workers_ready = true;

  int received = 0;
  sigwait(&signals, &received);
  spdlog::info("received {}, shutting down", received == SIGINT ? "SIGINT" : "SIGTERM");
  if (server) server->stop();
  if (serving.joinable()) serving.join();
  if (workers) workers->stop();
  subscription.reset();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int run_serve(const Config& config) { return run_role(config, Role::serve); }
int run_api(const Config& config) { return run_role(config, Role::api); }
int run_worker(const Config& config) { return run_role(config, Role::worker); }

}  // namespace framepress::app
