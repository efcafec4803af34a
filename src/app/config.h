#pragma once
// Configuration: plain structs with documented defaults, resolved once at start-up from, lowest first,
// the built-in defaults, a TOML file, the prototype's environment names (only where ours are unset),
// FRAMEPRESS_* environment variables, and command-line flags. Every option is declared once in a table
// (config.cpp) that gives its TOML key, flag, environment name, help and parser, so --help, the file,
// the environment and the docs cannot drift apart.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/events.h"
#include "core/ladder.h"
#include "media/transcoder.h"

namespace framepress::app {

/// Which subcommands an option belongs to.
enum Scope : unsigned {
  kServe = 1u << 0,   // framepress serve
  kApi = 1u << 1,     // framepress api (distributed)
  kWorker = 1u << 2,  // framepress worker (distributed)
  kClient = 1u << 3,  // framepress submit / status
};

struct Config {
  // Server
  std::string listen = "127.0.0.1:8080";
  std::filesystem::path data_dir;           // default: $XDG_DATA_HOME/framepress or ~/.local/share/framepress
  std::string bus = "embedded";             // "embedded" or "kafka://host:9092[,host2…]"
  std::string storage;                      // "file:///path" (default: <data_dir>/objects) or "s3://…"
  int http_threads = 2;
  std::uint64_t max_upload_bytes = 20ULL << 30;
  std::string cors_origin = "*";
  std::filesystem::path web_root;           // the built web page; empty: found next to the binary
  std::chrono::seconds header_timeout{30};
  std::chrono::seconds body_idle_timeout{60};
  std::size_t max_header_bytes = 16 * 1024;
  // Admission limits of the HTTP server (http::ServerOptions); 0: none.
  std::size_t max_uploads_per_ip = 8;
  std::size_t max_uploads = 64;
  std::size_t max_streams_per_ip = 32;
  std::size_t max_streams = 10000;
  std::size_t max_connections = 20000;
  std::chrono::seconds retry_after{5};
  std::filesystem::path tokens_file;        // bearer tokens (hashed); empty: tokens off
  std::chrono::seconds presign_expiry{3600};

  // Work
  int workers = 0;                          // parallel encodes; 0: one per core
  std::vector<std::string> classes;         // worker classes this process serves; empty: all
  std::string metrics_listen;               // a worker's /metrics, /healthz, /readyz; empty: none
  int max_retries = 2;
  int group_renditions = 8;                 // renditions of one job encoded from one decode; 1: one ffmpeg each
  LadderPolicy ladder;
  EncodingSettings encoding;                // the "standard" preset
  MediaLimits limits;
  std::chrono::seconds task_timeout{6 * 3600};
  std::uint64_t encoder_memory_limit = 0;   // bytes of address space per encoder child; 0: none
  std::chrono::seconds encoder_cpu_time_limit{0};  // CPU seconds per encoder child, all threads; 0: none

  // Kafka (the distributed bus)
  std::string kafka_events_topic = "video.events";
  std::string kafka_tasks_topic_prefix = "video.tasks.";
  std::string kafka_upload_topic = "video.upload";
  std::string kafka_compress_topic = "video.compress";
  int kafka_partitions = 12;
  int kafka_replication = 1;
  std::chrono::milliseconds kafka_session_timeout{45000};
  std::map<std::string, std::string> kafka_properties;   // librdkafka properties: security.protocol, sasl.*

  // Logs
  std::string log_level = "info";
  std::string log_format = "auto";          // auto (text on a terminal, JSON otherwise), text, json

  // Client
  std::string server = "http://127.0.0.1:8080";
  std::string token;

  /// Where the file came from, for the start-up log ("none" when no file was read).
  std::string config_file_used = "none";

  std::filesystem::path effective_data_dir() const;
  /// The storage URL with the default filled in.
  std::string effective_storage() const;
  int effective_workers() const;
};

struct OptionInfo {
  std::string key;          // TOML key, dotted for tables: "encoder.preset"
  std::string flag;         // "--encoder-preset"
  std::string env;          // "FRAMEPRESS_ENCODER_PRESET"
  std::vector<std::string> legacy_env;  // the prototype's names, used only when `env` is unset
  std::string help;
  std::string default_text;
  unsigned scopes = 0;
};
/// Every option, in --help order.
const std::vector<OptionInfo>& options();

/// The raw inputs, gathered at the edge (main) so that resolving them is a pure function.
struct ConfigSources {
  std::map<std::string, std::string> flags;          // option key → value given on the command line
  std::map<std::string, std::string> environment;    // the process environment
  std::optional<std::string> file_text;              // the TOML file's contents, when one is read
  std::string file_name;                             // for messages
};

/// Resolves the configuration. Throws Error(bad_request) naming the option, where its value came from
/// and what was expected, on a bad value, an unknown key in the file, or malformed TOML.
Config resolve(const ConfigSources& sources, unsigned scope);

/// The configuration file to read: `--config`, else FRAMEPRESS_CONFIG, else ./framepress.toml,
/// $XDG_CONFIG_HOME/framepress/config.toml and /etc/framepress/config.toml, the first that exists.
std::optional<std::filesystem::path> find_config_file(const std::optional<std::string>& flag,
                                                      const std::map<std::string, std::string>& environment);

/// "20GiB", "512MiB", "100MB", "1048576" → bytes. nullopt when malformed.
std::optional<std::uint64_t> parse_size(std::string_view text);
/// "90s", "15m", "6h", "30" (seconds) → seconds. nullopt when malformed.
std::optional<std::chrono::seconds> parse_duration(std::string_view text);

}  // namespace framepress::app
