#pragma once
// Configuration of the S3 object store: the storage URL, the credentials (kept apart: they are secrets)
// and the retry policy. Plain data and pure functions, parsed once at the edge; no I/O but reading the
// credential files named by the environment.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace framepress {

/// How failed S3 requests are tried again: exponential backoff with full jitter, so that many clients
/// that failed together do not come back together. Attempt n (1-based) that failed waits a uniformly
/// random time in [0, min(max_delay, base_delay · 2^(n-1))] before attempt n+1.
struct S3RetryPolicy {
  /// Attempts in all, the first included (≥ 1). The default rides out a store restart of ~10 s.
  int max_attempts = 8;
  std::chrono::milliseconds base_delay{200};
  std::chrono::milliseconds max_delay{10'000};
};

/// Where and how to reach the bucket. Everything but the credentials.
struct S3Options {
  /// The bucket name (3–63 characters of a-z, 0-9, '.', '-').
  std::string bucket;
  /// "scheme://host[:port]" of the S3 API, no path. Default: https://s3.<region>.amazonaws.com.
  std::string endpoint;
  /// The SigV4 signing region. Default us-east-1 (what MinIO, SeaweedFS and Versity expect).
  std::string region = "us-east-1";
  /// Path-style URLs (endpoint/bucket/key) rather than virtual-hosted ones (bucket.host/key).
  /// parse_s3_url's default: true when an endpoint is given (self-hosted stores rarely have wildcard
  /// DNS for bucket names), false for AWS (which is phasing path-style out).
  bool path_style = false;
  /// "scheme://host[:port]" that browsers use to reach the store, for presigned URLs (signed for that
  /// host, so it must reach the store with its Host header unchanged). Addressed in the same style as
  /// the endpoint (path_style). Empty: the endpoint.
  std::string public_endpoint;
  /// Whether downloads are redirected to presigned URLs (else the API proxies them).
  bool presign = true;
  /// The multipart part size in bytes: the memory one upload holds. At least 5 MiB (S3's minimum part),
  /// at most 5 GiB (its maximum). A streamed upload can hold 10,000 parts, so at most part_size × 10,000.
  std::uint64_t part_size = 8ull << 20;
  /// Retries of failed requests (not part of the URL).
  S3RetryPolicy retry;
  /// How long to wait for a TCP connection before the attempt counts as failed (not part of the URL).
  std::chrono::milliseconds connect_timeout{5'000};
  /// A transfer that moves no byte for this long counts as failed (not part of the URL).
  std::chrono::seconds stall_timeout{60};
};

/// Parses a storage URL: `s3://bucket?endpoint=http://host:8333&region=us-east-1&path_style=true&
/// public_endpoint=https://media.example.com&presign=true&part_size=8MiB`. Every parameter is optional;
/// values may be percent-encoded; booleans are true/false/1/0; sizes are a number with an optional unit
/// (B, KiB, MiB, GiB, KB, MB, GB). Throws Error(bad_request, reason "bad_storage_url") naming the
/// offending part for anything else: another scheme, a bad bucket name, a key prefix after the bucket,
/// an unknown or repeated parameter, an endpoint with a path or query, a part size out of range.
S3Options parse_s3_url(std::string_view url);

/// A size such as "8MiB", "5242880" or "16 MB" in bytes; Error(bad_request) when malformed.
std::uint64_t parse_byte_size(std::string_view text);

/// The access key pair. Never logged, never put in an error message.
struct S3Credentials {
  std::string access_key;
  std::string secret_key;
};

/// The credentials from the environment `env`, in this order of preference:
///   FRAMEPRESS_S3_ACCESS_KEY / FRAMEPRESS_S3_SECRET_KEY, each of which may instead be given as a file
///   by FRAMEPRESS_S3_ACCESS_KEY_FILE / FRAMEPRESS_S3_SECRET_KEY_FILE (the Docker/Kubernetes secrets
///   convention; trailing whitespace and newlines of the file are dropped), then the prototype's
///   MINIO_ACCESS_KEY / MINIO_SECRET_KEY.
/// Each key is looked up on its own, so the access key may come from a variable and the secret from a file.
/// Throws Error(bad_request, reason "s3_credentials") when a key is missing or empty, when a variable and
/// its _FILE variant are both set (which one was meant is unclear), or when the file cannot be read; the
/// message names the variable and the file, never the value.
S3Credentials credentials_from_environment(const std::map<std::string, std::string>& env);

/// The process environment as a map, for credentials_from_environment.
std::map<std::string, std::string> process_environment();

}  // namespace framepress
