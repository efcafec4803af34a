#include "core/error.h"

namespace framepress {

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::bad_request: return "bad_request";
    case ErrorCode::unauthorized: return "unauthorized";
    case ErrorCode::forbidden: return "forbidden";
    case ErrorCode::not_found: return "not_found";
    case ErrorCode::method_not_allowed: return "method_not_allowed";
    case ErrorCode::conflict: return "conflict";
    case ErrorCode::gone: return "gone";
    case ErrorCode::payload_too_large: return "payload_too_large";
    case ErrorCode::unsupported_media: return "unsupported_media_type";
    case ErrorCode::unprocessable: return "unprocessable";
    case ErrorCode::too_many_requests: return "too_many_requests";
    case ErrorCode::internal: return "internal";
    case ErrorCode::unavailable: return "unavailable";
  }
  return "internal";
}

int http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::bad_request: return 400;
    case ErrorCode::unauthorized: return 401;
    case ErrorCode::forbidden: return 403;
    case ErrorCode::not_found: return 404;
    case ErrorCode::method_not_allowed: return 405;
    case ErrorCode::conflict: return 409;
    case ErrorCode::gone: return 410;
    case ErrorCode::payload_too_large: return 413;
    case ErrorCode::unsupported_media: return 415;
    case ErrorCode::unprocessable: return 422;
    case ErrorCode::too_many_requests: return 429;
    case ErrorCode::internal: return 500;
    case ErrorCode::unavailable: return 503;
  }
  return 500;
}

}  // namespace framepress
