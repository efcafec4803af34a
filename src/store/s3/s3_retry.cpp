#include "store/s3/s3_retry.h"

#include <curl/curl.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace framepress::s3 {

Verdict classify_response(long status, std::string_view s3_code) {
  if (status >= 500) return Verdict::retry;
  if (status == 408 || status == 429) return Verdict::retry;
  // S3 answers an upload whose body came too slowly with 400 RequestTimeout, and SlowDown may come as a
  // 503 or (some gateways) a 4xx; both mean "the same request, later".
  if (s3_code == "RequestTimeout" || s3_code == "SlowDown" ||
      s3_code == "OperationAborted" || s3_code == "InternalError" || s3_code == "ServiceUnavailable") {
    return Verdict::retry;
  }
  return Verdict::give_up;
}

Verdict classify_transport(int curl_code) {
  switch (static_cast<CURLcode>(curl_code)) {
    case CURLE_COULDNT_RESOLVE_HOST:  // DNS hiccups and a store whose name is not yet published
    case CURLE_COULDNT_CONNECT:       // the store is restarting
    case CURLE_OPERATION_TIMEDOUT:    // connect timeout or a stalled transfer
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:  // the server closed a reused connection without an answer
    case CURLE_PARTIAL_FILE:  // the answer ended before its Content-Length
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return Verdict::retry;
    default:
      return Verdict::give_up;
  }
}

bool is_connect_failure(int curl_code) {
  const auto code = static_cast<CURLcode>(curl_code);
  return code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_PROXY;
}

std::chrono::milliseconds backoff_delay(const S3RetryPolicy& policy, int failed_attempt, double unit) {
  const double base = static_cast<double>(policy.base_delay.count());
  const double cap = static_cast<double>(policy.max_delay.count());
  const double ceiling = std::min(cap, base * std::ldexp(1.0, std::clamp(failed_attempt - 1, 0, 62)));
  const double fraction = std::clamp(unit, 0.0, 1.0);
  return std::chrono::milliseconds(static_cast<long long>(ceiling * fraction));
}

double random_unit() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
}

}  // namespace framepress::s3
