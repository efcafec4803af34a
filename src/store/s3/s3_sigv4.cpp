#include "store/s3/s3_sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <array>
#include <ctime>
#include <stdexcept>

namespace framepress::s3 {
namespace {

constexpr char kHex[] = "0123456789ABCDEF";
constexpr char kHexLower[] = "0123456789abcdef";

bool unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

template <std::size_t N>
std::string to_hex(const std::array<unsigned char, N>& bytes, unsigned int length) {
  std::string out;
  out.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHexLower[bytes[i] >> 4]);
    out.push_back(kHexLower[bytes[i] & 0x0f]);
  }
  return out;
}

using Digest = std::array<unsigned char, EVP_MAX_MD_SIZE>;

unsigned int digest(const EVP_MD* md, std::string_view bytes, Digest& out) {
  unsigned int length = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), out.data(), &length, md, nullptr) != 1) {
    throw std::runtime_error("OpenSSL digest failed");
  }
  return length;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  Digest out{};
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
           data.size(), out.data(), &length) == nullptr) {
    throw std::runtime_error("OpenSSL HMAC-SHA256 failed");
  }
  return std::string(reinterpret_cast<const char*>(out.data()), length);
}

std::string hex_of(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kHexLower[c >> 4]);
    out.push_back(kHexLower[c & 0x0f]);
  }
  return out;
}

// The Host header a client sends for `origin`: its authority, without the scheme's default port.
std::string host_of(std::string_view origin) {
  const auto scheme_end = origin.find("://");
  std::string_view scheme = origin.substr(0, scheme_end);
  std::string_view authority = scheme_end == std::string_view::npos ? origin : origin.substr(scheme_end + 3);
  if (scheme == "http" && authority.ends_with(":80")) authority.remove_suffix(3);
  if (scheme == "https" && authority.ends_with(":443")) authority.remove_suffix(4);
  std::string host(authority);
  std::transform(host.begin(), host.end(), host.begin(), [](unsigned char c) { return std::tolower(c); });
  return host;
}

}  // namespace

std::string uri_encode(std::string_view text, bool keep_slash) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (unreserved(c) || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0x0f]);
    }
  }
  return out;
}

std::string canonical_query(QueryParams params) {
  for (auto& [name, value] : params) {
    name = uri_encode(name, false);
    value = uri_encode(value, false);
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [name, value] : params) {
    if (!out.empty()) out.push_back('&');
    out += name;
    out.push_back('=');
    out += value;
  }
  return out;
}

std::string sha256_hex(std::string_view bytes) {
  Digest out{};
  return to_hex(out, digest(EVP_sha256(), bytes, out));
}

std::string md5_base64(std::string_view bytes) {
  Digest out{};
  const unsigned int length = digest(EVP_md5(), bytes, out);
  std::array<unsigned char, 4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1> encoded{};
  const int n = EVP_EncodeBlock(encoded.data(), out.data(), static_cast<int>(length));
  return std::string(reinterpret_cast<const char*>(encoded.data()), static_cast<std::size_t>(n));
}

std::string amz_date(std::chrono::system_clock::time_point time) {
  const std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char text[17];
  std::strftime(text, sizeof text, "%Y%m%dT%H%M%SZ", &utc);
  return text;
}

std::string presign_get(const PresignRequest& request) {
  const std::string date_time = amz_date(request.now);
  const std::string date = date_time.substr(0, 8);
  const std::string scope = date + "/" + request.region + "/s3/aws4_request";

  QueryParams params = request.params;
  params.emplace_back("X-Amz-Algorithm", "AWS4-HMAC-SHA256");
  params.emplace_back("X-Amz-Credential", request.access_key + "/" + scope);
  params.emplace_back("X-Amz-Date", date_time);
  params.emplace_back("X-Amz-Expires", std::to_string(request.expires.count()));
  params.emplace_back("X-Amz-SignedHeaders", "host");
  const std::string query = canonical_query(std::move(params));

  const std::string canonical_request = "GET\n" + request.path + "\n" + query + "\nhost:" + host_of(request.origin) +
                                        "\n\nhost\nUNSIGNED-PAYLOAD";
  const std::string string_to_sign =
      "AWS4-HMAC-SHA256\n" + date_time + "\n" + scope + "\n" + sha256_hex(canonical_request);

  std::string key = hmac_sha256("AWS4" + request.secret_key, date);
  key = hmac_sha256(key, request.region);
  key = hmac_sha256(key, "s3");
  key = hmac_sha256(key, "aws4_request");
  const std::string signature = hex_of(hmac_sha256(key, string_to_sign));

  return request.origin + request.path + "?" + query + "&X-Amz-Signature=" + signature;
}

std::string content_disposition_attachment(std::string_view name) {
  std::string fallback;
  std::string encoded;
  for (unsigned char c : name) {
    if (c >= 0x80) {
      // One '_' per UTF-8 character: its lead byte gives one, its continuation bytes none.
      if (c >= 0xC0) fallback.push_back('_');
    } else if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
      fallback.push_back('_');
    } else {
      fallback.push_back(static_cast<char>(c));
    }
    // RFC 5987 attr-char: ALPHA / DIGIT / "!#$&+-.^_`|~"; everything else is %-encoded.
    const bool attr_char = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                           std::string_view("!#$&+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
    if (attr_char) {
      encoded.push_back(static_cast<char>(c));
    } else {
      encoded.push_back('%');
      encoded.push_back(kHex[c >> 4]);
      encoded.push_back(kHex[c & 0x0f]);
    }
  }
  return "attachment; filename=\"" + fallback + "\"; filename*=UTF-8''" + encoded;
}

}  // namespace framepress::s3
