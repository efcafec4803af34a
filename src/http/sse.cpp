#include "http/sse.h"

namespace framepress::http {

namespace {

// A field value may not carry a line break: the parser would read the rest as a new field and the event
// would be cut in two (or, with an injected blank line, dispatched early). NUL makes browsers ignore an id.
std::string single_line(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c != '\r' && c != '\n' && c != '\0') out.push_back(c);
  }
  return out;
}

// Emits `prefix` + line + "\n" for every line of `text`, splitting at "\r\n", "\r" and "\n" alike: those
// are the three line ends an event stream parser accepts, so any of them inside a value would end a line.
void append_lines(std::string& out, std::string_view prefix, std::string_view text) {
  for (;;) {
    const auto end = text.find_first_of("\r\n");
    out.append(prefix);
    out.append(text.substr(0, end));
    out.push_back('\n');
    if (end == std::string_view::npos) return;
    const bool crlf = text[end] == '\r' && end + 1 < text.size() && text[end + 1] == '\n';
    text.remove_prefix(end + (crlf ? 2 : 1));
  }
}

}  // namespace

std::string sse_event(std::string_view id, std::string_view name, std::string_view data) {
  std::string out;
  out.reserve(data.size() + id.size() + name.size() + 32);
  // An id or name that is nothing but line breaks leaves its line out, as an empty one would.
  if (const auto clean_id = single_line(id); !clean_id.empty()) {
    out.append("id: ").append(clean_id).push_back('\n');
  }
  if (const auto clean_name = single_line(name); !clean_name.empty()) {
    out.append("event: ").append(clean_name).push_back('\n');
  }
  // Always at least one data line: an event without data is not dispatched by EventSource.
  append_lines(out, "data: ", data);
  out.push_back('\n');
  return out;
}

std::string sse_comment(std::string_view text) {
  std::string out;
  append_lines(out, ": ", text);
  out.push_back('\n');
  return out;
}

Headers sse_headers() {
  return {
      {"Content-Type", "text/event-stream"},
      {"Cache-Control", "no-cache"},
      // nginx and similar proxies buffer responses by default, which would hold events back.
      {"X-Accel-Buffering", "no"},
  };
}

}  // namespace framepress::http
