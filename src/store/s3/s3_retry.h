#pragma once
// Which failed S3 requests are worth trying again, and how long to wait first. Pure functions, so the
// classification is tested without a server (redpanda's retry / fail split of S3 outcomes).

#include <chrono>
#include <string_view>

#include "store/s3/s3_options.h"

namespace framepress::s3 {

enum class Verdict {
  retry,    // transient: the same request may well succeed in a moment
  give_up,  // the request itself is wrong or refused: trying again gives the same answer
};

/// For an HTTP answer with status ≥ 300 and the S3 error code of its body (empty when it has none, as a
/// HEAD answer): retry on 5xx (InternalError, 503 SlowDown / ServiceUnavailable, 504), 408, 429,
/// RequestTimeout, and OperationAborted (a conflicting operation in progress); give up on every other 4xx.
Verdict classify_response(long status, std::string_view s3_code);

/// For a libcurl failure before a complete answer (`curl_code` is a CURLcode): retry on connection
/// failures, timeouts, and connections dropped mid-way; give up on what another attempt cannot change
/// (a malformed URL, a refused TLS certificate, our own callback aborting the transfer).
Verdict classify_transport(int curl_code);

/// Whether `curl_code` means the endpoint was not reached at all (name resolution or connection failed).
bool is_connect_failure(int curl_code);

/// The pause after failed attempt `failed_attempt` (1-based): full jitter, `unit` (uniform in [0, 1)) of
/// min(max_delay, base_delay · 2^(failed_attempt-1)).
std::chrono::milliseconds backoff_delay(const S3RetryPolicy& policy, int failed_attempt, double unit);

/// A uniform random number in [0, 1) for backoff_delay (a per-thread generator; thread-safe).
double random_unit();

}  // namespace framepress::s3
