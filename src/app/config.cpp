#include "app/config.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <functional>
#include <sstream>
#include <thread>

#include <toml++/toml.h>

#include "core/error.h"

namespace framepress::app {
namespace {

using Setter = std::function<void(Config&, const std::string&)>;

struct OptionSpec {
  OptionInfo info;
  Setter set;
};

[[noreturn]] void invalid(const std::string& expected) { throw std::invalid_argument(expected); }

// A refused value that may hold a secret: the message never shows it.
struct CredentialsInUrl : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

int to_int(const std::string& text, int min, int max) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < min || value > max) {
    invalid("a whole number from " + std::to_string(min) + " to " + std::to_string(max));
  }
  return value;
}

double to_double(const std::string& text, double min, double max) {
  try {
    std::size_t used = 0;
    double value = std::stod(text, &used);
    if (used == text.size() && value >= min && value <= max) return value;
  } catch (const std::exception&) {
  }
  invalid("a number from " + std::to_string(min) + " to " + std::to_string(max));
}

std::uint64_t to_size(const std::string& text) {
  auto value = parse_size(text);
  if (!value) invalid("a size such as 20GiB, 512MiB or a number of bytes");
  return *value;
}

// A limit on how many of something: 0 means none.
std::size_t to_count(const std::string& text) { return static_cast<std::size_t>(to_int(text, 0, 10000000)); }

std::chrono::seconds to_duration(const std::string& text) {
  auto value = parse_duration(text);
  if (!value) invalid("a duration such as 90s, 15m or 6h");
  return *value;
}

// User information in a URL ("user:password@") is where people put secrets; the URLs are logged and echoed
// in errors, so it is refused rather than stripped silently.
void refuse_credentials(const std::string& url, const std::string& where_they_go) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return;
  const auto authority_end = url.find_first_of("/?#", scheme_end + 3);
  const std::string_view authority = std::string_view(url).substr(scheme_end + 3, authority_end - (scheme_end + 3));
  if (authority.find('@') != std::string_view::npos) {
    throw CredentialsInUrl("a URL without user:password@ (" + where_they_go + ")");
  }
}

std::vector<std::string> to_list(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) items.push_back(item);
  }
  return items;
}

std::string one_of(const std::string& text, std::initializer_list<const char*> allowed) {
  for (const char* a : allowed) {
    if (text == a) return text;
  }
  std::string expected = "one of";
  for (const char* a : allowed) expected += std::string(" ") + a;
  invalid(expected);
}

std::string flag_of(const std::string& key) {
  std::string flag = "--" + key;
  std::replace(flag.begin(), flag.end(), '.', '-');
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

std::string env_of(const std::string& key) {
  std::string env = "FRAMEPRESS_" + key;
  for (auto& c : env) c = c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return env;
}

OptionSpec option(std::string key, unsigned scopes, std::string default_text, std::string help, Setter set,
                  std::vector<std::string> legacy = {}) {
  OptionInfo info{key, flag_of(key), env_of(key), std::move(legacy), std::move(help), std::move(default_text), scopes};
  return OptionSpec{std::move(info), std::move(set)};
}

constexpr unsigned kServers = kServe | kApi | kWorker;
constexpr unsigned kHttp = kServe | kApi;
constexpr unsigned kWork = kServe | kWorker;

const std::vector<OptionSpec>& specs() {
  static const std::vector<OptionSpec> table = [] {
    std::vector<OptionSpec> t;
    t.push_back(option("listen", kHttp, "127.0.0.1:8080", "address and port the HTTP API listens on",
                       [](Config& c, const std::string& v) {
                         if (v.rfind(':') == std::string::npos) invalid("host:port, e.g. 0.0.0.0:8080");
                         c.listen = v;
                       }));
    t.push_back(option("data_dir", kServers, "~/.local/share/framepress",
                       "directory for the embedded queue, scratch files and the default object store",
                       [](Config& c, const std::string& v) { c.data_dir = v; }));
    t.push_back(option("bus", kServers, "embedded", "event bus: 'embedded' or kafka://host:9092[,host2:9092]",
                       [](Config& c, const std::string& v) {
                         if (v != "embedded" && v.rfind("kafka://", 0) != 0) invalid("'embedded' or kafka://host:port");
                         refuse_credentials(v, "the SASL password comes from FRAMEPRESS_KAFKA_SASL_PASSWORD or _FILE");
                         // A query is no part of a broker list, and one could carry a secret into the log.
                         if (v.find_first_of("?#") != std::string::npos) {
                           throw CredentialsInUrl("kafka://host:port[,host:port…] with no query (client settings go "
                                                  "in --kafka-properties)");
                         }
                         c.bus = v;
                       },
                       {"KAFKA_SERVER"}));
    t.push_back(option("storage", kServers, "file://<data_dir>/objects", "object store: file:///path or s3://bucket?…",
                       [](Config& c, const std::string& v) {
                         if (v.rfind("file://", 0) != 0 && v.rfind("s3://", 0) != 0) invalid("file:///path or s3://bucket");
                         refuse_credentials(v, "S3 keys come from FRAMEPRESS_S3_ACCESS_KEY and _SECRET_KEY or their _FILE forms");
                         c.storage = v;
                       },
                       {"MINIO_BUCKET"}));
    t.push_back(option("http_threads", kHttp, "2", "threads serving HTTP",
                       [](Config& c, const std::string& v) { c.http_threads = to_int(v, 1, 64); }));
    t.push_back(option("max_upload_bytes", kHttp, "20GiB", "largest upload accepted (larger: 413)",
                       [](Config& c, const std::string& v) { c.max_upload_bytes = to_size(v); },
                       {"MAX_CONTENT_LENGTH"}));
    t.push_back(option("cors_origin", kHttp, "*", "Access-Control-Allow-Origin for browsers on other origins; empty: none",
                       [](Config& c, const std::string& v) { c.cors_origin = v; }));
    t.push_back(option("web_root", kHttp, "(the built web page next to the binary)", "directory of the web page to serve at /",
                       [](Config& c, const std::string& v) { c.web_root = v; }));
    t.push_back(option("header_timeout", kHttp, "30s", "time a client has to send a request's head",
                       [](Config& c, const std::string& v) { c.header_timeout = to_duration(v); }));
    t.push_back(option("body_idle_timeout", kHttp, "60s", "longest pause in an upload's body before it is dropped",
                       [](Config& c, const std::string& v) { c.body_idle_timeout = to_duration(v); }));
    t.push_back(option("max_header_bytes", kHttp, "16KiB", "largest request head (larger: 431)",
                       [](Config& c, const std::string& v) {
                         const auto bytes = to_size(v);
                         if (bytes < 1024 || bytes > (1u << 20)) invalid("a size from 1KiB to 1MiB");
                         c.max_header_bytes = static_cast<std::size_t>(bytes);
                       }));
    t.push_back(option("max_uploads_per_ip", kHttp, "8",
                       "uploads (requests with a body) in flight from one address, IPv6 /64 (more: 429); 0: no limit",
                       [](Config& c, const std::string& v) { c.max_uploads_per_ip = to_count(v); }));
    t.push_back(option("max_uploads", kHttp, "64", "uploads in flight from everyone (more: 503); 0: no limit",
                       [](Config& c, const std::string& v) { c.max_uploads = to_count(v); }));
    t.push_back(option("max_streams_per_ip", kHttp, "32",
                       "event streams (SSE) open to one address, IPv6 /64 (more: 429); 0: no limit",
                       [](Config& c, const std::string& v) { c.max_streams_per_ip = to_count(v); }));
    t.push_back(option("max_streams", kHttp, "10000", "event streams open to everyone (more: 503); 0: no limit",
                       [](Config& c, const std::string& v) { c.max_streams = to_count(v); }));
    t.push_back(option("max_connections", kHttp, "20000",
                       "open HTTP connections (more: 503), kept below the descriptor limit; 0: that limit only",
                       [](Config& c, const std::string& v) { c.max_connections = to_count(v); }));
    t.push_back(option("retry_after", kHttp, "5s", "the Retry-After sent with a 429 or 503 for a limit",
                       [](Config& c, const std::string& v) { c.retry_after = to_duration(v); }));
    t.push_back(option("tokens_file", kHttp, "(none: tokens off)",
                       "TOML file of [[token]] entries (name, sha256, scopes); `framepress token` makes them",
                       [](Config& c, const std::string& v) { c.tokens_file = v; }));
    t.push_back(option("presign_expiry", kHttp, "1h", "lifetime of presigned download URLs (S3 storage)",
                       [](Config& c, const std::string& v) { c.presign_expiry = to_duration(v); }));
    t.push_back(option("workers", kServe, "one per core", "encodes run in parallel",
                       [](Config& c, const std::string& v) { c.workers = to_int(v, 1, 256); },
                       {"MAX_WORKERS"}));
    t.push_back(option("metrics_listen", kWorker, "(none: no HTTP)",
                       "address and port where a worker answers GET /metrics, /healthz and /readyz, e.g. "
                       "0.0.0.0:9464 (serve and api answer them on --listen)",
                       [](Config& c, const std::string& v) {
                         if (v.rfind(':') == std::string::npos) invalid("host:port, e.g. 0.0.0.0:9464");
                         c.metrics_listen = v;
                       }));
    t.push_back(option("classes", kWorker, "all", "worker classes this worker serves, e.g. hd,uhd",
                       [](Config& c, const std::string& v) { c.classes = to_list(v); }));
    t.push_back(option("max_retries", kWork, "2", "retries of a failed encode before the rendition fails",
                       [](Config& c, const std::string& v) { c.max_retries = to_int(v, 0, 20); }));
    t.push_back(option("group_renditions", kWork, "8",
                       "renditions of one video encoded together from a single decode (1: each in its own ffmpeg)",
                       [](Config& c, const std::string& v) { c.group_renditions = to_int(v, 1, 16); }));
    t.push_back(option("max_resolution", kServers, "1080", "highest rendition (short side in pixels)",
                       [](Config& c, const std::string& v) {
                         auto value = v;
                         if (!value.empty() && (value.back() == 'p' || value.back() == 'P')) value.pop_back();
                         c.ladder.max_resolution = to_int(value, 144, 8640);
                       },
                       {"MAX_RESOLUTION"}));
    t.push_back(option("encoder.video_codec", kServers, "libx264", "ffmpeg video encoder of the standard preset",
                       [](Config& c, const std::string& v) { c.encoding.video_codec = one_of(v, {"libx264", "libx265"}); }));
    t.push_back(option("encoder.preset", kServers, "medium", "encoder speed preset of the standard preset",
                       [](Config& c, const std::string& v) {
                         c.encoding.preset = one_of(v, {"ultrafast", "superfast", "veryfast", "faster", "fast", "medium",
                                                        "slow", "slower", "veryslow"});
                       }));
    t.push_back(option("encoder.crf", kServers, "23", "constant rate factor of the standard preset (lower: better, larger)",
                       [](Config& c, const std::string& v) { c.encoding.crf = to_int(v, 0, 51); }));
    t.push_back(option("encoder.audio_bitrate", kServers, "128", "AAC bit rate in kbit/s",
                       [](Config& c, const std::string& v) { c.encoding.audio_bitrate_kbps = to_int(v, 16, 512); }));
    t.push_back(option("limits.max_duration", kServers, "6h", "longest source accepted",
                       [](Config& c, const std::string& v) {
                         c.limits.max_duration_seconds = static_cast<double>(to_duration(v).count());
                       }));
    t.push_back(option("limits.max_pixels", kServers, "33177600 (8K)", "largest picture accepted, width × height",
                       [](Config& c, const std::string& v) { c.limits.max_pixels = static_cast<std::int64_t>(to_size(v)); }));
    t.push_back(option("limits.max_frame_rate", kServers, "240", "highest frame rate accepted",
                       [](Config& c, const std::string& v) { c.limits.max_frame_rate = to_double(v, 1, 10000); }));
    t.push_back(option("limits.max_streams", kServers, "16", "most streams a source may have",
                       [](Config& c, const std::string& v) { c.limits.max_streams = to_int(v, 1, 1024); }));
    t.push_back(option("limits.task_timeout", kWork, "6h", "wall-clock limit of one encode",
                       [](Config& c, const std::string& v) { c.task_timeout = to_duration(v); }));
    t.push_back(option("limits.encoder_memory", kWork, "0 (none)", "address-space limit of each encoder process",
                       [](Config& c, const std::string& v) { c.encoder_memory_limit = to_size(v); }));
    t.push_back(option("limits.encoder_cpu_time", kWork, "0 (none)",
                       "CPU-time limit of each encoder process, all its threads together (e.g. 12h)",
                       [](Config& c, const std::string& v) { c.encoder_cpu_time_limit = to_duration(v); }));
    t.push_back(option("concurrency", kWorker, "one per core", "encodes this worker runs in parallel (as --workers)",
                       [](Config& c, const std::string& v) { c.workers = to_int(v, 1, 256); }));
    t.push_back(option("kafka.events_topic", kServers, "video.events", "topic of every job event (key: video id)",
                       [](Config& c, const std::string& v) { c.kafka_events_topic = v; }));
    t.push_back(option("kafka.tasks_topic_prefix", kServers, "video.tasks.", "tasks topic of a class: this + class",
                       [](Config& c, const std::string& v) { c.kafka_tasks_topic_prefix = v; }));
    t.push_back(option("kafka.upload_topic", kServers, "video.upload", "the prototype's upload topic",
                       [](Config& c, const std::string& v) { c.kafka_upload_topic = v; }, {"KAFKA_UPLOAD_TOPIC"}));
    t.push_back(option("kafka.compress_topic", kServers, "video.compress", "the prototype's finished-rendition topic",
                       [](Config& c, const std::string& v) { c.kafka_compress_topic = v; }, {"KAFKA_COMPRESS_TOPIC"}));
    t.push_back(option("kafka.partitions", kServers, "12", "partitions of the topics framepress creates",
                       [](Config& c, const std::string& v) { c.kafka_partitions = to_int(v, 1, 10000); }));
    t.push_back(option("kafka.replication", kServers, "1", "replication factor of the topics framepress creates",
                       [](Config& c, const std::string& v) { c.kafka_replication = to_int(v, 1, 16); }));
    t.push_back(option("kafka.session_timeout", kServers, "45s", "how soon a silent worker's tasks move elsewhere",
                       [](Config& c, const std::string& v) {
                         c.kafka_session_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(to_duration(v));
                       }));
    t.push_back(option("kafka.properties", kServers, "(none)",
                       "librdkafka properties, e.g. security.protocol=SASL_SSL,sasl.mechanism=PLAIN,sasl.username=u "
                       "(the password: FRAMEPRESS_KAFKA_SASL_PASSWORD or _FILE)",
                       [](Config& c, const std::string& v) {
                         for (const auto& item : to_list(v)) {
                           auto eq = item.find('=');
                           if (eq == std::string::npos || eq == 0) invalid("key=value pairs separated by commas");
                           c.kafka_properties[item.substr(0, eq)] = item.substr(eq + 1);
                         }
                       }));
    t.push_back(option("log.level", kServers | kClient, "info", "trace, debug, info, warn or error",
                       [](Config& c, const std::string& v) {
                         c.log_level = one_of(v, {"trace", "debug", "info", "warn", "error"});
                       }));
    t.push_back(option("log.format", kServers, "auto", "auto (text on a terminal, else JSON), text or json",
                       [](Config& c, const std::string& v) { c.log_format = one_of(v, {"auto", "text", "json"}); }));
    t.push_back(option("server", kClient, "http://127.0.0.1:8080", "URL of the framepress API",
                       [](Config& c, const std::string& v) {
                         if (v.rfind("http://", 0) != 0 && v.rfind("https://", 0) != 0) invalid("an http:// or https:// URL");
                         c.server = v;
                         while (!c.server.empty() && c.server.back() == '/') c.server.pop_back();
                       }));
    t.push_back(option("token", kClient, "(none)", "bearer token sent to the API",
                       [](Config& c, const std::string& v) { c.token = v; }));
    return t;
  }();
  return table;
}

/// Flattens a TOML table into dotted keys with string values; nested tables make dotted keys.
void flatten(const toml::table& table, const std::string& prefix, std::map<std::string, std::string>& out) {
  for (const auto& [key, node] : table) {
    std::string name = prefix.empty() ? std::string(key.str()) : prefix + "." + std::string(key.str());
    if (const auto* sub = node.as_table()) {
      flatten(*sub, name, out);
    } else if (const auto* s = node.as_string()) {
      out[name] = s->get();
    } else if (const auto* i = node.as_integer()) {
      out[name] = std::to_string(i->get());
    } else if (const auto* f = node.as_floating_point()) {
      std::ostringstream text;
      text << f->get();
      out[name] = text.str();
    } else if (const auto* b = node.as_boolean()) {
      out[name] = b->get() ? "true" : "false";
    } else if (const auto* a = node.as_array()) {
      std::string joined;
      for (const auto& item : *a) {
        if (!joined.empty()) joined += ",";
        if (const auto* is = item.as_string()) {
          joined += is->get();
        } else if (const auto* ii = item.as_integer()) {
          joined += std::to_string(ii->get());
        }
      }
      out[name] = joined;
    } else {
      throw Error(ErrorCode::bad_request, "unsupported value type for '" + name + "'", "bad_config");
    }
  }
}

/// The prototype's variables in our form: KAFKA_SERVER is a bare host:port list, and its MinIO was a
/// bucket plus a host:port endpoint; ours are URLs.
std::string legacy_value(const std::string& env_name, const std::string& value,
                         const std::map<std::string, std::string>& environment) {
  if (env_name == "KAFKA_SERVER") return "kafka://" + value;
  if (env_name == "MINIO_BUCKET") {
    std::string url = "s3://" + value;
    if (auto endpoint = environment.find("MINIO_ENDPOINT_URL"); endpoint != environment.end()) {
      bool has_scheme = endpoint->second.find("://") != std::string::npos;
      url += "?endpoint=" + std::string(has_scheme ? "" : "http://") + endpoint->second;
    }
    return url;
  }
  return value;
}

}  // namespace

const std::vector<OptionInfo>& options() {
  static const std::vector<OptionInfo> infos = [] {
    std::vector<OptionInfo> out;
    for (const auto& s : specs()) out.push_back(s.info);
    return out;
  }();
  return infos;
}

Config resolve(const ConfigSources& sources, unsigned scope) {
  Config config;
  std::map<std::string, std::string> from_file;
  if (sources.file_text) {
    try {
      flatten(toml::parse(*sources.file_text, sources.file_name), "", from_file);
    } catch (const toml::parse_error& e) {
      std::ostringstream message;
      message << "cannot read the configuration file " << sources.file_name << ": " << e.description() << " (line "
              << e.source().begin.line << ")";
      throw Error(ErrorCode::bad_request, message.str(), "bad_config");
    }
    for (const auto& [key, value] : from_file) {
      bool known = std::any_of(specs().begin(), specs().end(), [&](const OptionSpec& s) { return s.info.key == key; });
      if (!known) {
        throw Error(ErrorCode::bad_request,
                    "unknown option '" + key + "' in the configuration file " + sources.file_name, "bad_config");
      }
    }
    config.config_file_used = sources.file_name;
  }

  auto env = [&](const std::string& name) -> const std::string* {
    auto it = sources.environment.find(name);
    return it == sources.environment.end() ? nullptr : &it->second;
  };

  for (const auto& spec : specs()) {
    // Options of other subcommands are still read from the file (one file serves every process), but
    // only this scope's flags and variables are taken.
    std::string value;
    std::string origin;
    if (auto it = sources.flags.find(spec.info.key); it != sources.flags.end() && (spec.info.scopes & scope)) {
      value = it->second;
      origin = "flag " + spec.info.flag;
    } else if (const auto* v = env(spec.info.env)) {
      value = *v;
      origin = "environment variable " + spec.info.env;
    } else {
      const std::string* legacy = nullptr;
      std::string legacy_name;
      for (const auto& name : spec.info.legacy_env) {
        if ((legacy = env(name))) {
          legacy_name = name;
          break;
        }
      }
      if (legacy) {
        value = legacy_value(legacy_name, *legacy, sources.environment);
        origin = "environment variable " + legacy_name;
      } else if (auto f = from_file.find(spec.info.key); f != from_file.end()) {
        value = f->second;
        origin = "'" + spec.info.key + "' in " + sources.file_name;
      } else {
        continue;
      }
    }
    try {
      spec.set(config, value);
    } catch (const std::invalid_argument& e) {
      // Client properties may carry credentials (sasl.password), URLs user information: such a refused
      // value is never echoed.
      const bool may_hold_secrets =
          spec.info.key == "kafka.properties" || dynamic_cast<const CredentialsInUrl*>(&e) != nullptr;
      throw Error(ErrorCode::bad_request,
                  "invalid value " + (may_hold_secrets ? std::string("(not shown)") : "'" + value + "'") + " for " +
                      spec.info.flag + " (from " + origin + "): expected " + e.what(),
                  "bad_config");
    }
  }
  return config;
}

std::optional<std::filesystem::path> find_config_file(const std::optional<std::string>& flag,
                                                      const std::map<std::string, std::string>& environment) {
  if (flag) return std::filesystem::path(*flag);
  if (auto it = environment.find("FRAMEPRESS_CONFIG"); it != environment.end()) return std::filesystem::path(it->second);
  std::vector<std::filesystem::path> candidates{"framepress.toml"};
  if (auto it = environment.find("XDG_CONFIG_HOME"); it != environment.end() && !it->second.empty()) {
    candidates.emplace_back(std::filesystem::path(it->second) / "framepress" / "config.toml");
  } else if (auto home = environment.find("HOME"); home != environment.end() && !home->second.empty()) {
    candidates.emplace_back(std::filesystem::path(home->second) / ".config" / "framepress" / "config.toml");
  }
  candidates.emplace_back("/etc/framepress/config.toml");
  for (const auto& c : candidates) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(c, ec)) return c;
  }
  return std::nullopt;
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::uint64_t number = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc{} || end == text.data()) return std::nullopt;
  std::string unit(end, text.data() + text.size());
  unit.erase(0, unit.find_first_not_of(' '));
  for (auto& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::map<std::string, std::uint64_t> units{
      {"", 1},           {"b", 1},
      {"k", 1000},       {"kb", 1000},       {"kib", 1ULL << 10},
      {"m", 1000000},    {"mb", 1000000},    {"mib", 1ULL << 20},
      {"g", 1000000000}, {"gb", 1000000000}, {"gib", 1ULL << 30},
      {"t", 1000000000000ULL}, {"tb", 1000000000000ULL}, {"tib", 1ULL << 40}};
  auto it = units.find(unit);
  if (it == units.end()) return std::nullopt;
  if (number > UINT64_MAX / it->second) return std::nullopt;
  return number * it->second;
}

std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
  std::int64_t number = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc{} || end == text.data() || number < 0) return std::nullopt;
  std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  std::int64_t scale = 0;
  if (unit.empty() || unit == "s") scale = 1;
  else if (unit == "m") scale = 60;
  else if (unit == "h") scale = 3600;
  else if (unit == "d") scale = 86400;
  else return std::nullopt;
  // Over 100 years is a typo, and would overflow the nanosecond clocks the time-outs are added to.
  constexpr std::int64_t kMaxSeconds = 100LL * 365 * 86400;
  if (number > kMaxSeconds / scale) return std::nullopt;
  return std::chrono::seconds(number * scale);
}

std::filesystem::path Config::effective_data_dir() const {
  if (!data_dir.empty()) return data_dir;
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg) return std::filesystem::path(xdg) / "framepress";
  if (const char* home = std::getenv("HOME"); home && *home) {
    return std::filesystem::path(home) / ".local" / "share" / "framepress";
  }
  return "/var/lib/framepress";
}

std::string Config::effective_storage() const {
  if (!storage.empty()) return storage;
  return "file://" + std::filesystem::absolute(effective_data_dir() / "objects").string();
}

int Config::effective_workers() const {
  if (workers > 0) return workers;
  return static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));
}

}  // namespace framepress::app
