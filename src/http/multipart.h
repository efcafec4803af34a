#pragma once
// A streaming multipart/form-data reader (RFC 7578): bytes go in as they arrive, in pieces of any size,
// and come out as parts without the whole body ever being held in memory. No Debian-packaged C++ library
// reads multipart incrementally (Boost has none), so it is written here.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "http/server.h"

namespace framepress::http {

struct PartHeader {
  Headers headers;
  std::string name;          // from Content-Disposition
  std::optional<std::string> filename;  // from Content-Disposition, as sent (unsanitized)
  std::string content_type;  // "" when absent
};

class MultipartReader {
 public:
  class Sink {
   public:
    virtual ~Sink() = default;
    virtual void on_part_begin(const PartHeader& part) = 0;
    virtual void on_part_data(std::string_view bytes) = 0;
    virtual void on_part_end() = 0;
  };

  /// `boundary` without the leading dashes (as boundary_of() returns it). The sink must outlive the reader.
  /// `max_part_header_bytes` bounds the header block of each part, and the preamble before the first part.
  /// Throws Error(bad_request, …, "bad_multipart") for an empty boundary or one over 70 characters.
  /// Not thread-safe: one reader belongs to one request.
  MultipartReader(std::string boundary, Sink& sink, std::size_t max_part_header_bytes = 16 * 1024);

  /// Feeds the next bytes of the body, split anywhere. The sink is called from inside feed(): part data
  /// comes out in pieces as soon as it cannot be the start of a delimiter, so memory stays bounded by the
  /// size of one feed. Throws Error(bad_request, …, "bad_multipart") when the body is not well-formed,
  /// and again on every later call. Exceptions thrown by the sink pass through.
  void feed(std::string_view bytes);
  /// The body ended. Throws Error(bad_request, …, "bad_multipart") unless the closing boundary was seen.
  void finish();
  /// Whether the closing boundary has been seen (what follows it is ignored).
  bool done() const;

  /// The boundary parameter of a multipart/form-data Content-Type (quoted or not), or nullopt when the
  /// type is something else, or the boundary is missing, empty, over 70 characters or has characters
  /// RFC 2046 does not allow.
  static std::optional<std::string> boundary_of(std::string_view content_type);

 private:
  // preamble: before the first delimiter · boundary_tail: just after a delimiter, deciding between a part
  // ("\r\n") and the end ("--") · epilogue: after the closing delimiter (ignored) · failed: threw once.
  enum class State { preamble, boundary_tail, part_headers, part_body, epilogue, failed };
  void drain();
  void parse_headers(std::string_view block);
  [[noreturn]] void fail(const char* message);

  std::string delimiter_;  // "\r\n--" + boundary
  Sink& sink_;
  std::size_t max_header_bytes_;
  State state_ = State::preamble;
  std::string pending_;           // bytes received but not yet given out: at most a delimiter's worth in a body
  std::size_t header_scanned_ = 0;  // how much of pending_ was already searched for the end of part headers
  std::size_t preamble_bytes_ = 0;
  bool part_open_ = false;
};

}  // namespace framepress::http
