#pragma once
// An incremental parser of Server-Sent Events (the WHATWG HTML "event stream" interpretation). Pure: bytes
// in, events out, no I/O, so the network code can hand it whatever pieces the socket delivered.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace framepress::cli {

/// One dispatched event.
struct SseEvent {
  /// The stream's last event ID when the event was dispatched. As in the browser's EventSource it carries
  /// over from earlier events until an `id:` field changes it, so an event without an `id:` line has the
  /// id of the one before it.
  std::string id;
  std::string event = "message";  ///< the `event:` field, "message" when the event had none
  std::string data;               ///< the `data:` lines joined with '\n' (no trailing '\n')

  bool operator==(const SseEvent&) const = default;
};

/// Splits an event stream into events, whatever the size and boundaries of the pieces it is fed.
///
/// Follows the WHATWG rules: lines end with "\r\n", "\n" or "\r"; a leading UTF-8 BOM is dropped; lines
/// starting with ':' are comments (heartbeats); `field: value` loses one space after the colon; a line
/// without a colon is a field with an empty value; `data` lines accumulate, `event` names the event,
/// `id` (unless it contains NUL) sets the last event ID; `retry` and unknown fields are ignored; an empty
/// line dispatches the event, unless no `data` line came, in which case the fields are discarded; an
/// unfinished event at the end of the stream is never dispatched.
///
/// Not thread-safe: one parser per stream. Movable and copyable.
class SseParser {
 public:
  /// No line or event may grow beyond this: a server (or something posing as one) that never ends a line
  /// must not make the client swallow all memory.
  static constexpr std::size_t kMaxEventBytes = 16 * 1024 * 1024;

  /// `last_event_id` seeds the last event ID, e.g. with the value sent as `Last-Event-ID` when
  /// reconnecting, so that events of the resumed stream without an `id:` line still carry it.
  explicit SseParser(std::string last_event_id = {});

  /// Consumes `bytes` and returns the events they completed, in order. Throws framepress::Error
  /// (bad_request, reason "sse_event_too_large") when a line or an event exceeds kMaxEventBytes.
  std::vector<SseEvent> feed(std::string_view bytes);

  /// The last event ID as of the last dispatch (or blank line): what a client sends as `Last-Event-ID`
  /// when it reconnects. Empty when no event has carried an id.
  const std::string& last_event_id() const noexcept { return last_event_id_; }

 private:
  void process_line(std::string_view line, std::vector<SseEvent>& out);
  void dispatch(std::vector<SseEvent>& out);

  std::string line_;             // the current, unfinished line
  bool skip_lf_ = false;         // the last piece ended in '\r': a '\n' starting the next is its pair
  std::size_t bom_checked_ = 0;  // how many leading bytes were compared with the BOM (3 when done)
  std::string data_;
  std::string event_type_;
  std::string id_buffer_;
  std::string last_event_id_;
};

}  // namespace framepress::cli
