#pragma once
// Server-Sent Events framing (the WHATWG HTML "event stream" format).

#include <string>
#include <string_view>

#include "http/server.h"

namespace framepress::http {

/// One event: "id: …\nevent: …\ndata: …\n\n". An empty id or name leaves its line out; data with line
/// breaks becomes several data lines, as the format requires.
std::string sse_event(std::string_view id, std::string_view name, std::string_view data);
/// A comment line (": text\n\n"), which keeps a connection alive without being an event.
std::string sse_comment(std::string_view text);
/// The headers an event stream starts with (content type, no caching, no proxy buffering).
Headers sse_headers();

}  // namespace framepress::http
