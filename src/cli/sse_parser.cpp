#include "cli/sse_parser.h"

#include "core/error.h"

namespace framepress::cli {
namespace {

constexpr char kBom[] = "\xEF\xBB\xBF";

[[noreturn]] void too_large() {
  throw Error(ErrorCode::bad_request,
              "the event stream sent a line or event larger than " +
                  std::to_string(SseParser::kMaxEventBytes / (1024 * 1024)) + " MiB; is this a framepress server?",
              "sse_event_too_large");
}

}  // namespace

SseParser::SseParser(std::string last_event_id)
    : id_buffer_(last_event_id), last_event_id_(std::move(last_event_id)) {}

std::vector<SseEvent> SseParser::feed(std::string_view bytes) {
  std::vector<SseEvent> out;

  // The BOM may itself arrive split over pieces, so it is matched byte by byte. Bytes that started like
  // a BOM but were not one belong to the first line.
  while (bom_checked_ < 3 && !bytes.empty()) {
    if (bytes.front() == kBom[bom_checked_]) {
      ++bom_checked_;
      bytes.remove_prefix(1);
    } else {
      line_.append(kBom, bom_checked_);
      bom_checked_ = 3;
    }
  }

  // A "\r\n" split between two pieces: the '\r' already ended the line.
  if (skip_lf_ && !bytes.empty()) {
    if (bytes.front() == '\n') bytes.remove_prefix(1);
    skip_lf_ = false;
  }

  while (!bytes.empty()) {
    auto end = bytes.find_first_of("\r\n");
    if (end == std::string_view::npos) {
      if (line_.size() + bytes.size() > kMaxEventBytes) too_large();
      line_.append(bytes);
      break;
    }
    if (line_.size() + end > kMaxEventBytes) too_large();
    line_.append(bytes.substr(0, end));
    const char terminator = bytes[end];
    bytes.remove_prefix(end + 1);
    if (terminator == '\r') {
      if (bytes.empty()) {
        skip_lf_ = true;
      } else if (bytes.front() == '\n') {
        bytes.remove_prefix(1);
      }
    }
    process_line(line_, out);
    line_.clear();
  }
  return out;
}

void SseParser::process_line(std::string_view line, std::vector<SseEvent>& out) {
  if (line.empty()) {
    dispatch(out);
    return;
  }
  if (line.front() == ':') return;  // a comment: the server's heartbeat

  std::string_view field = line;
  std::string_view value;
  if (auto colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }

  if (field == "data") {
    if (data_.size() + value.size() + 1 > kMaxEventBytes) too_large();
    data_.append(value);
    data_.push_back('\n');
  } else if (field == "event") {
    event_type_.assign(value);
  } else if (field == "id") {
    // The spec ignores an id with NUL in it, so that it can always be sent back as a header.
    if (value.find('\0') == std::string_view::npos) id_buffer_.assign(value);
  }
  // "retry" (the reconnection delay) is deliberately ignored: the client has its own back-off. Unknown
  // fields are ignored by the spec.
}

void SseParser::dispatch(std::vector<SseEvent>& out) {
  last_event_id_ = id_buffer_;
  if (data_.empty()) {
    event_type_.clear();
    return;
  }
  data_.pop_back();  // the '\n' after the last data line
  SseEvent event;
  event.id = last_event_id_;
  if (!event_type_.empty()) event.event = std::move(event_type_);
  event.data = std::move(data_);
  out.push_back(std::move(event));
  data_.clear();
  event_type_.clear();
}

}  // namespace framepress::cli
