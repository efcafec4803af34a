#pragma once
// The pieces of AWS Signature Version 4 that libcurl does not do for us: URI encoding as SigV4 wants it,
// canonical (sorted, encoded) query strings, and presigned URLs (the signature in the query string,
// computed with OpenSSL's HMAC-SHA256). Requests themselves are signed by libcurl (CURLOPT_AWS_SIGV4).
// Pure functions of their inputs; thread-safe.

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace framepress::s3 {

/// Percent-encodes `text` as SigV4 requires: every byte but A-Z a-z 0-9 - . _ ~ becomes %XX (upper-case
/// hex); '/' stays as it is when `keep_slash` (object key paths) and is encoded otherwise (query values).
std::string uri_encode(std::string_view text, bool keep_slash);

using QueryParams = std::vector<std::pair<std::string, std::string>>;

/// The canonical query string of `params` (names and values not yet encoded): each encoded, sorted by
/// name then value, joined as name=value&… A parameter without value is written "name=" ("uploads="):
/// libcurl 7.88 signs the query exactly as given, so the URL must already be in canonical form.
std::string canonical_query(QueryParams params);

/// Lower-case hex of SHA-256 of `bytes` (the x-amz-content-sha256 of a body held in memory).
std::string sha256_hex(std::string_view bytes);

/// Base64 of the MD5 of `bytes`: the Content-MD5 header that DeleteObjects requires.
std::string md5_base64(std::string_view bytes);

/// "YYYYMMDDTHHMMSSZ" of `time` in UTC.
std::string amz_date(std::chrono::system_clock::time_point time);

/// What a presigned GET URL is made of.
struct PresignRequest {
  /// "scheme://host[:port]" the browser will use; the signed Host header is taken from it (without a
  /// default port, as browsers send it).
  std::string origin;
  /// The request path, already URI-encoded ("/bucket/videos/x/renditions/720p.mp4").
  std::string path;
  /// Extra query parameters to sign (e.g. response-content-disposition), not encoded.
  QueryParams params;
  std::string region;
  std::string access_key;
  std::string secret_key;
  std::chrono::system_clock::time_point now;
  std::chrono::seconds expires{3600};
};

/// The presigned GET URL (SigV4 query signing, payload UNSIGNED-PAYLOAD, signed header: host).
/// libcurl cannot presign, so this is computed here with OpenSSL's HMAC-SHA256.
std::string presign_get(const PresignRequest& request);

/// `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<encoded>` for `name` (RFC 6266 with
/// RFC 5987 encoding), so browsers save the download under its UTF-8 name and older ones under a safe
/// ASCII approximation ('"', '\\', control and non-ASCII characters replaced by '_').
std::string content_disposition_attachment(std::string_view name);

}  // namespace framepress::s3
