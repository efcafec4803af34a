#pragma once
// The one error rule of framepress:
//  - A failure that the caller cannot handle where it happens is thrown as framepress::Error, carrying a
//    stable machine code (ErrorCode), a message for people, and whether trying again may help.
//  - Absence that is a normal outcome (no such job, no task right now) is a value: std::optional.
//  - Each boundary that can answer a user catches Error and answers: the HTTP API as
//    {"error":{"code","message"}} with the status of the code, the CLI as a message and an exit code,
//    the worker as a retry (retryable) or a failed rendition.
// Anything else that escapes (std::bad_alloc, a bug) is logged and answered as "internal".

#include <stdexcept>
#include <string>
#include <string_view>

namespace framepress {

enum class ErrorCode {
  bad_request,          // 400: malformed request
  unauthorized,         // 401
  forbidden,            // 403
  not_found,            // 404
  method_not_allowed,   // 405
  conflict,             // 409: the job is in a state that forbids the action
  gone,                 // 410
  payload_too_large,    // 413
  unsupported_media,    // 415: neither multipart nor video/*
  unprocessable,        // 422: the upload is not a usable video, or the options are not possible
  too_many_requests,    // 429
  internal,             // 500
  unavailable,          // 503: a dependency (store, bus, encoder) is not reachable
};

std::string_view to_string(ErrorCode code);
int http_status(ErrorCode code);

class Error : public std::runtime_error {
 public:
  /// `reason` refines the code with a stable word clients can branch on (e.g. "audio_only"); it is the
  /// JSON `code` when set, so an empty reason falls back to the ErrorCode's own name.
  Error(ErrorCode code, std::string message, std::string reason = {}, bool retryable = false)
      : std::runtime_error(std::move(message)), code_(code), reason_(std::move(reason)), retryable_(retryable) {}

  ErrorCode code() const noexcept { return code_; }
  /// The word a client reads: the reason when there is one, else the code's name.
  std::string reason() const { return reason_.empty() ? std::string(to_string(code_)) : reason_; }
  bool retryable() const noexcept { return retryable_; }

 private:
  ErrorCode code_;
  std::string reason_;
  bool retryable_;
};

}  // namespace framepress
