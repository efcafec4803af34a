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

  /// `boundary` without the leading dashes. The sink must outlive the reader.
  MultipartReader(std::string boundary, Sink& sink, std::size_t max_part_header_bytes = 16 * 1024);

  /// Feeds the next bytes of the body. Throws Error(bad_request) when the body is not well-formed.
  void feed(std::string_view bytes);
  /// The body ended. Throws Error(bad_request) unless the closing boundary was seen.
  void finish();
  bool done() const;

  /// The boundary parameter of a multipart/form-data Content-Type, or nullopt.
  static std::optional<std::string> boundary_of(std::string_view content_type);

 private:
  enum class State { preamble, part_headers, part_body, epilogue };
  void drain();
  void parse_headers(std::string_view block);

  std::string delimiter_;  // "\r\n--" + boundary
  Sink& sink_;
  std::size_t max_header_bytes_;
  State state_ = State::preamble;
  std::string pending_;
  bool part_open_ = false;
};

}  // namespace framepress::http
