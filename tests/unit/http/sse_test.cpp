#include <gtest/gtest.h>

#include "http/sse.h"

namespace framepress::http {
namespace {

struct ParsedEvent {
  std::string id;
  std::string type;
  std::string data;
  bool operator==(const ParsedEvent&) const = default;
};

// The event stream interpretation of the WHATWG HTML standard (§9.2.6), as a browser's EventSource does
// it: lines end at CRLF, CR or LF; a blank line dispatches; data lines are joined with LF; an event with
// an empty data buffer is not dispatched; comments are skipped.
std::vector<ParsedEvent> parse_stream(std::string_view stream) {
  std::vector<ParsedEvent> events;
  std::string id;
  std::string type;
  std::string data;
  bool has_data = false;
  while (!stream.empty()) {
    const auto end = stream.find_first_of("\r\n");
    if (end == std::string_view::npos) break;  // an incomplete last line is not processed
    const auto line = stream.substr(0, end);
    const bool crlf = stream[end] == '\r' && end + 1 < stream.size() && stream[end + 1] == '\n';
    stream.remove_prefix(end + (crlf ? 2 : 1));
    if (line.empty()) {
      if (has_data) events.push_back({id, type.empty() ? "message" : type, data});
      data.clear();
      type.clear();
      has_data = false;
      continue;
    }
    if (line.front() == ':') continue;
    const auto colon = line.find(':');
    const auto field = line.substr(0, colon);
    auto value = colon == std::string_view::npos ? std::string_view{} : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (field == "data") {
      if (has_data) data.push_back('\n');
      data.append(value);
      has_data = true;
    } else if (field == "event") {
      type = value;
    } else if (field == "id") {
      if (value.find('\0') == std::string_view::npos) id = value;
    }
  }
  return events;
}

TEST(Sse, FramesAnEvent) {
  EXPECT_EQ(sse_event("42", "progress", R"({"percent":50})"), "id: 42\nevent: progress\ndata: {\"percent\":50}\n\n");
}

TEST(Sse, LeavesOutAnEmptyIdOrName) {
  EXPECT_EQ(sse_event("", "", "x"), "data: x\n\n");
  EXPECT_EQ(sse_event("7", "", "x"), "id: 7\ndata: x\n\n");
  EXPECT_EQ(sse_event("", "snapshot", "x"), "event: snapshot\ndata: x\n\n");
}

TEST(Sse, EmptyDataIsStillAnEvent) {
  EXPECT_EQ(sse_event("", "ping", ""), "event: ping\ndata: \n\n");
  EXPECT_EQ(parse_stream(sse_event("", "ping", "")), (std::vector<ParsedEvent>{{"", "ping", ""}}));
}

TEST(Sse, SplitsDataAtEveryKindOfLineBreak) {
  EXPECT_EQ(sse_event("", "", "a\nb"), "data: a\ndata: b\n\n");
  EXPECT_EQ(sse_event("", "", "a\r\nb"), "data: a\ndata: b\n\n");
  EXPECT_EQ(sse_event("", "", "a\rb"), "data: a\ndata: b\n\n");
  EXPECT_EQ(sse_event("", "", "a\n\nb"), "data: a\ndata: \ndata: b\n\n");
  EXPECT_EQ(sse_event("", "", "a\r\n"), "data: a\ndata: \n\n");
  EXPECT_EQ(sse_event("", "", "\r\r\n"), "data: \ndata: \ndata: \n\n");
}

TEST(Sse, StripsLineBreaksFromIdAndName) {
  EXPECT_EQ(sse_event("1\n2", "a\r\nb", "x"), "id: 12\nevent: ab\ndata: x\n\n");
  EXPECT_EQ(sse_event("\n", "\r", "x"), "data: x\n\n");
  // An attempt to inject a whole event through the name stays one event.
  const auto events = parse_stream(sse_event("5", "x\n\ndata: injected\n\n", "real"));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "real");
  EXPECT_EQ(events[0].id, "5");
}

TEST(Sse, DataSurvivesAnEventSourceParser) {
  const std::vector<std::string> payloads = {
      "plain",
      "",
      "\n",
      "two\nlines",
      "windows\r\nlines\r\n",
      "old mac\rlines",
      "\r\n\r\n\r\n",
      "data: not a field\n\nevent: nor this",
      ": not a comment",
      "  leading spaces kept",
      R"({"type":"job.created","filename":"a b.mp4"})",
  };
  for (const auto& payload : payloads) {
    // The stream carries line breaks, not which kind: each comes out as LF.
    std::string expected;
    for (std::size_t i = 0; i < payload.size(); ++i) {
      if (payload[i] == '\r') {
        expected.push_back('\n');
        if (i + 1 < payload.size() && payload[i + 1] == '\n') ++i;
      } else {
        expected.push_back(payload[i]);
      }
    }
    const auto stream = sse_comment("heartbeat") + sse_event("9", "progress", payload) + sse_comment("x\ny");
    EXPECT_EQ(parse_stream(stream), (std::vector<ParsedEvent>{{"9", "progress", expected}})) << payload;
  }
}

TEST(Sse, Comments) {
  EXPECT_EQ(sse_comment("heartbeat"), ": heartbeat\n\n");
  EXPECT_EQ(sse_comment(""), ": \n\n");
  EXPECT_EQ(sse_comment("a\nb"), ": a\n: b\n\n");
  EXPECT_TRUE(parse_stream(sse_comment("a\r\ndata: b\r\n")).empty());
}

TEST(Sse, Headers) {
  EXPECT_EQ(sse_headers(), (Headers{{"Content-Type", "text/event-stream"},
                                    {"Cache-Control", "no-cache"},
                                    {"X-Accel-Buffering", "no"}}));
}

}  // namespace
}  // namespace framepress::http
