#include "store/s3/s3_options.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <set>
#include <sstream>

#include "core/error.h"

extern char** environ;

namespace framepress {
namespace {

constexpr std::uint64_t kMiB = 1ull << 20;
constexpr std::uint64_t kMinPartSize = 5 * kMiB;   // S3's smallest part (but the last)
constexpr std::uint64_t kMaxPartSize = 5ull << 30;  // and its largest

[[noreturn]] void bad_url(const std::string& message) {
  throw Error(ErrorCode::bad_request, "storage URL: " + message, "bad_storage_url");
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%') {
      if (i + 2 >= text.size()) bad_url("truncated %-escape in \"" + std::string(text) + "\"");
      const int hi = hex_value(text[i + 1]), lo = hex_value(text[i + 2]);
      if (hi < 0 || lo < 0) bad_url("bad %-escape in \"" + std::string(text) + "\"");
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

bool parse_bool(std::string_view name, std::string_view value) {
  if (value == "true" || value == "1") return true;
  if (value == "false" || value == "0") return false;
  bad_url(std::string(name) + " must be true or false, not \"" + std::string(value) + "\"");
}

// Bucket names as S3 allows them for new buckets: 3–63 characters of a-z 0-9 . -, starting and ending
// with a letter or digit. Anything else would need escaping in a URL or a host name.
void check_bucket(const std::string& bucket) {
  const auto alnum = [](char c) {
    return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c));
  };
  const bool ok = bucket.size() >= 3 && bucket.size() <= 63 && alnum(bucket.front()) && alnum(bucket.back()) &&
                  std::all_of(bucket.begin(), bucket.end(), [&](char c) { return alnum(c) || c == '.' || c == '-'; });
  if (!ok) {
    bad_url("bad bucket name \"" + bucket +
            "\" (3 to 63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit)");
  }
}

// "scheme://host[:port]" with nothing else: a path would be ambiguous with path-style buckets, and user
// information would put a secret where describe() and the logs show the endpoint.
std::string check_endpoint(std::string_view name, std::string value) {
  const auto scheme_end = value.find("://");
  const std::string scheme = scheme_end == std::string::npos ? "" : value.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") {
    bad_url(std::string(name) + " must start with http:// or https://, not \"" + value + "\"");
  }
  while (value.size() > scheme_end + 3 && value.back() == '/') value.pop_back();
  const std::string authority = value.substr(scheme_end + 3);
  if (authority.empty()) bad_url(std::string(name) + " has no host");
  if (authority.find_first_of("/?#") != std::string::npos) {
    bad_url(std::string(name) + " must be scheme://host[:port] with no path or query, not \"" + value + "\"");
  }
  if (authority.find('@') != std::string::npos) {
    bad_url(std::string(name) + " must not carry credentials; give them through the environment");
  }
  // An optional :port after the host (or after an IPv6 literal's ']').
  const auto bracket = authority.rfind(']');
  const auto colon = authority.rfind(':');
  if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
    const std::string port = authority.substr(colon + 1);
    const bool digits = !port.empty() && port.size() <= 5 && std::all_of(port.begin(), port.end(), [](char c) {
      return std::isdigit(static_cast<unsigned char>(c));
    });
    if (!digits || std::stoi(port) < 1 || std::stoi(port) > 65535) {
      bad_url(std::string(name) + " has a bad port in \"" + value + "\"");
    }
    if (colon == 0) bad_url(std::string(name) + " has no host");
  }
  for (char c : authority) {
    if (static_cast<unsigned char>(c) <= ' ' || c == '\\' || c == '"') {
      bad_url(std::string(name) + " has a character that cannot be in a host name");
    }
  }
  return value;
}

std::string trim_trailing_space(std::string text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text;
}

[[noreturn]] void bad_credentials(const std::string& message) {
  throw Error(ErrorCode::bad_request, message, "s3_credentials");
}

// One key from NAME, NAME_FILE or the fallback variable; nullopt when none of them is set.
std::optional<std::string> credential(const std::map<std::string, std::string>& env, const std::string& name,
                                      const std::string& fallback) {
  const auto direct = env.find(name);
  const auto file = env.find(name + "_FILE");
  if (direct != env.end() && file != env.end()) {
    bad_credentials("both " + name + " and " + name + "_FILE are set; set only one");
  }
  if (direct != env.end()) {
    if (direct->second.empty()) bad_credentials(name + " is set but empty");
    return direct->second;
  }
  if (file != env.end()) {
    std::ifstream in(file->second, std::ios::binary);
    if (!in) {
      bad_credentials("cannot read " + name + "_FILE (" + file->second + "): " + std::strerror(errno));
    }
    std::ostringstream content;
    content << in.rdbuf();
    std::string value = trim_trailing_space(content.str());
    if (value.empty()) bad_credentials(name + "_FILE (" + file->second + ") is empty");
    return value;
  }
  const auto old = env.find(fallback);
  if (old != env.end() && !old->second.empty()) return old->second;
  return std::nullopt;
}

}  // namespace

std::uint64_t parse_byte_size(std::string_view text) {
  std::size_t i = 0;
  std::uint64_t number = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    const std::uint64_t digit = static_cast<std::uint64_t>(text[i] - '0');
    if (number > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) {
      bad_url("size too large: " + std::string(text));
    }
    number = number * 10 + digit;
    ++i;
  }
  if (i == 0) bad_url("bad size \"" + std::string(text) + "\" (e.g. 8MiB)");
  while (i < text.size() && text[i] == ' ') ++i;
  const std::string_view unit = text.substr(i);
  static const std::pair<std::string_view, std::uint64_t> units[] = {
      {"", 1},           {"B", 1},           {"KiB", 1ull << 10}, {"MiB", 1ull << 20},
      {"GiB", 1ull << 30}, {"KB", 1000},     {"kB", 1000},        {"MB", 1000 * 1000},
      {"GB", 1000 * 1000 * 1000},
  };
  for (const auto& [name, factor] : units) {
    if (unit == name) {
      if (number > std::numeric_limits<std::uint64_t>::max() / factor) bad_url("size too large: " + std::string(text));
      return number * factor;
    }
  }
  bad_url("bad size unit in \"" + std::string(text) + "\" (B, KiB, MiB, GiB, KB, MB or GB)");
}

S3Options parse_s3_url(std::string_view url) {
  constexpr std::string_view scheme = "s3://";
  if (url.substr(0, scheme.size()) != scheme) {
    bad_url("must start with s3://, as in s3://bucket?endpoint=http://host:8333");
  }
  std::string_view rest = url.substr(scheme.size());
  const auto question = rest.find('?');
  std::string_view bucket_part = rest.substr(0, question);
  const std::string_view query = question == std::string_view::npos ? std::string_view{} : rest.substr(question + 1);

  if (bucket_part.ends_with('/')) bucket_part.remove_suffix(1);
  if (bucket_part.find('/') != std::string_view::npos) {
    bad_url("a key prefix after the bucket is not supported: \"" + std::string(bucket_part) + "\"");
  }
  S3Options options;
  options.bucket = percent_decode(bucket_part);
  check_bucket(options.bucket);

  std::set<std::string> seen;
  std::optional<bool> path_style;
  std::size_t start = 0;
  while (start <= query.size() && !query.empty()) {
    const auto amp = query.find('&', start);
    const std::string_view pair =
        query.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
    start = amp == std::string_view::npos ? query.size() + 1 : amp + 1;
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    const std::string name = percent_decode(pair.substr(0, eq));
    const std::string value = eq == std::string_view::npos ? std::string{} : percent_decode(pair.substr(eq + 1));
    if (!seen.insert(name).second) bad_url("parameter \"" + name + "\" is given twice");

    if (name == "endpoint") {
      options.endpoint = check_endpoint(name, value);
    } else if (name == "region") {
      const bool ok = !value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
      });
      if (!ok) bad_url("bad region \"" + value + "\"");
      options.region = value;
    } else if (name == "path_style") {
      path_style = parse_bool(name, value);
    } else if (name == "public_endpoint") {
      options.public_endpoint = check_endpoint(name, value);
    } else if (name == "presign") {
      options.presign = parse_bool(name, value);
    } else if (name == "part_size") {
      options.part_size = parse_byte_size(value);
      if (options.part_size < kMinPartSize || options.part_size > kMaxPartSize) {
        bad_url("part_size must be between 5MiB and 5GiB (S3's limits for a part), not " + value);
      }
    } else {
      bad_url("unknown parameter \"" + name +
              "\" (known: endpoint, region, path_style, public_endpoint, presign, part_size)");
    }
  }

  if (options.endpoint.empty()) {
    options.endpoint = "https://s3." + options.region + ".amazonaws.com";
    options.path_style = path_style.value_or(false);
  } else {
    options.path_style = path_style.value_or(true);
  }
  // A bucket name with dots is no single DNS label, so virtual-hosted HTTPS to it fails certificate checks.
  if (!options.path_style && options.bucket.find('.') != std::string::npos) {
    bad_url("bucket \"" + options.bucket + "\" has a '.', which needs path_style=true");
  }
  return options;
}

S3Credentials credentials_from_environment(const std::map<std::string, std::string>& env) {
  auto access = credential(env, "FRAMEPRESS_S3_ACCESS_KEY", "MINIO_ACCESS_KEY");
  auto secret = credential(env, "FRAMEPRESS_S3_SECRET_KEY", "MINIO_SECRET_KEY");
  if (!access || !secret) {
    bad_credentials(std::string("no S3 ") + (!access ? "access key" : "secret key") +
                    ": set FRAMEPRESS_S3_ACCESS_KEY and FRAMEPRESS_S3_SECRET_KEY, or their _FILE variants");
  }
  return S3Credentials{std::move(*access), std::move(*secret)};
}

std::map<std::string, std::string> process_environment() {
  std::map<std::string, std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const auto eq = text.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
  }
  return env;
}

}  // namespace framepress
