#include "cli/sse_parser.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace framepress::cli {
namespace {

std::vector<SseEvent> feed_all(SseParser& parser, std::string_view bytes) { return parser.feed(bytes); }

/// Feeds `bytes` one byte at a time, the harshest split there is.
std::vector<SseEvent> feed_bytewise(SseParser& parser, std::string_view bytes) {
  std::vector<SseEvent> out;
  for (char c : bytes) {
    for (auto& e : parser.feed(std::string_view(&c, 1))) out.push_back(std::move(e));
  }
  return out;
}

SseEvent ev(std::string id, std::string event, std::string data) { return {std::move(id), std::move(event), std::move(data)}; }

const std::string kStream =
    ": heartbeat\n"
    "id: 4\n"
    "event: snapshot\n"
    "data: {\"id\":\"X\",\n"
    "data: \"state\":\"queued\"}\n"
    "\n"
    "event: progress\n"
    "id: 6\n"
    "data: {\"percent\":45}\n"
    "\n"
    ": another heartbeat\n"
    "\n"
    "event: completed\n"
    "id: 7\n"
    "data: {}\n"
    "\n";

const std::vector<SseEvent> kExpected = {
    ev("4", "snapshot", "{\"id\":\"X\",\n\"state\":\"queued\"}"),
    ev("6", "progress", "{\"percent\":45}"),
    ev("7", "completed", "{}"),
};

TEST(SseParser, ParsesAStreamFedInOnePiece) {
  SseParser parser;
  EXPECT_EQ(feed_all(parser, kStream), kExpected);
  EXPECT_EQ(parser.last_event_id(), "7");
}

TEST(SseParser, GivesTheSameEventsWhereverThePiecesSplit) {
  for (std::size_t cut = 0; cut <= kStream.size(); ++cut) {
    SseParser parser;
    auto events = parser.feed(std::string_view(kStream).substr(0, cut));
    for (auto& e : parser.feed(std::string_view(kStream).substr(cut))) events.push_back(std::move(e));
    EXPECT_EQ(events, kExpected) << "split at byte " << cut;
  }
  SseParser parser;
  EXPECT_EQ(feed_bytewise(parser, kStream), kExpected);
}

std::string with_line_ends(const std::string& stream, std::string_view end) {
  std::string out;
  for (char c : stream) {
    if (c == '\n') {
      out += end;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

TEST(SseParser, AcceptsCrLfAndLoneCrLineEndsEvenWhenSplitBetweenCrAndLf) {
  for (std::string_view end : {"\r\n", "\r"}) {
    const auto stream = with_line_ends(kStream, end);
    SseParser whole;
    EXPECT_EQ(whole.feed(stream), kExpected) << "line end " << (end.size() == 2 ? "CRLF" : "CR");
    SseParser bytewise;
    EXPECT_EQ(feed_bytewise(bytewise, stream), kExpected) << "line end " << (end.size() == 2 ? "CRLF" : "CR");
  }
  // Mixed, with a CRLF split over two pieces: the LF must not end a second (empty) line.
  SseParser parser;
  auto events = parser.feed("data: a\r");
  EXPECT_TRUE(events.empty());
  events = parser.feed("\ndata: b\n\r");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "a\nb");
}

TEST(SseParser, IgnoresCommentsAndEventsWithoutData) {
  SseParser parser;
  auto events = parser.feed(":comment\n: another\n\nevent: lonely\n\nid: 3\n\n");
  EXPECT_TRUE(events.empty());
  // The id of a data-less event still counts as the last event ID, as in EventSource.
  EXPECT_EQ(parser.last_event_id(), "3");
}

TEST(SseParser, JoinsDataLinesAndKeepsEmptyOnes) {
  SseParser parser;
  auto events = parser.feed("data: one\ndata:\ndata:  two spaces\ndata:three\n\n");
  ASSERT_EQ(events.size(), 1u);
  // One space after the colon goes; a second one is data.
  EXPECT_EQ(events[0].data, "one\n\n two spaces\nthree");
  EXPECT_EQ(events[0].event, "message");

  events = parser.feed("data\n\n");  // a field name alone is the field with an empty value
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "");
}

TEST(SseParser, IdCarriesOverUntilChangedAndEventNameDoesNot) {
  SseParser parser;
  auto events = parser.feed("id: 10\nevent: progress\ndata: a\n\ndata: b\n\nid\ndata: c\n\n");
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0], ev("10", "progress", "a"));
  EXPECT_EQ(events[1], ev("10", "message", "b"));  // no id line: the previous id; no event line: "message"
  EXPECT_EQ(events[2], ev("", "message", "c"));    // an empty id resets it
  EXPECT_EQ(parser.last_event_id(), "");
}

TEST(SseParser, IgnoresIdsWithNulRetryAndUnknownFields) {
  SseParser parser;
  using namespace std::string_literals;
  auto events = parser.feed("id: 5\n\nid: 6\0x\nretry: 10\nfoo: bar\ndata: d\n\n"s);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0], ev("5", "message", "d"));
}

TEST(SseParser, DropsALeadingBomEvenWhenSplitAndKeepsFalseStarts) {
  SseParser parser;
  EXPECT_TRUE(parser.feed("\xEF").empty());
  EXPECT_TRUE(parser.feed("\xBB").empty());
  auto events = parser.feed("\xBF" "data: x\n\n");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "x");

  // A second BOM is not at the start of the stream: it is part of the line (an unknown field here).
  events = parser.feed("\xEF\xBB\xBF" "data: y\n\n");
  EXPECT_TRUE(events.empty());
}

TEST(SseParser, NeverDispatchesAnUnfinishedEvent) {
  SseParser parser;
  auto events = parser.feed("id: 8\nevent: rendition\ndata: {\"size\":1}\n");
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(parser.last_event_id(), "");  // the id of an event never dispatched is not "seen"
}

TEST(SseParser, StartsFromTheGivenLastEventId) {
  SseParser parser("41");
  auto events = parser.feed("data: resumed\n\n");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].id, "41");
}

TEST(SseParser, RefusesALineWithoutEnd) {
  SseParser parser;
  std::string chunk(1024 * 1024, 'a');
  EXPECT_THROW(
      {
        for (int i = 0; i < 20; ++i) parser.feed(chunk);
      },
      Error);
}

}  // namespace
}  // namespace framepress::cli
