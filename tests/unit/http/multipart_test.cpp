#include <gtest/gtest.h>

#include <functional>

#include "core/error.h"
#include "http/multipart.h"
#include "unit/http/http_client.h"

namespace framepress::http {
namespace {

struct Part {
  std::string name;
  std::optional<std::string> filename;
  std::string content_type;
  Headers headers;
  std::string data;
  bool ended = false;

  bool operator==(const Part&) const = default;
};

// Records what the reader gives out, and checks the order of the calls as it goes.
class Recorder : public MultipartReader::Sink {
 public:
  void on_part_begin(const PartHeader& header) override {
    if (!parts.empty() && !parts.back().ended) protocol_errors.push_back("begin inside a part");
    parts.push_back(Part{header.name, header.filename, header.content_type, header.headers, {}, false});
  }
  void on_part_data(std::string_view bytes) override {
    if (parts.empty() || parts.back().ended) protocol_errors.push_back("data outside a part");
    if (bytes.empty()) protocol_errors.push_back("empty data");
    largest_piece = std::max(largest_piece, bytes.size());
    data_bytes += bytes.size();
    parts.back().data.append(bytes);
  }
  void on_part_end() override {
    if (parts.empty() || parts.back().ended) protocol_errors.push_back("end outside a part");
    else parts.back().ended = true;
  }

  std::vector<Part> parts;
  std::vector<std::string> protocol_errors;
  std::size_t largest_piece = 0;
  std::size_t data_bytes = 0;
};

const std::string kBoundary = "----framepressBoundary7MA4YWxk";

std::string part(std::string_view disposition, std::string_view data, std::string_view extra_headers = "") {
  std::string out = "--" + kBoundary + "\r\nContent-Disposition: " + std::string(disposition) + "\r\n";
  out += extra_headers;
  out += "\r\n";
  out += data;
  out += "\r\n";
  return out;
}

std::string close_delimiter() { return "--" + kBoundary + "--\r\n"; }

// Binary data full of near-misses: prefixes of the delimiter, the boundary without its CRLF, lone CRs,
// a CR right before the real delimiter, NULs and high bytes.
std::string tricky_data() {
  std::string data = "\r\n--";
  data += "A\r\n-B\r\n--C\r\r\n--" + kBoundary.substr(0, 10) + "D";
  data += "\r\n--" + kBoundary.substr(0, kBoundary.size() - 1) + "E";
  data += "--" + kBoundary + "F";  // the boundary without a preceding CRLF is data
  data += std::string("\0\xff\xfe\r", 4);
  data += "\n\r\n\r\n";
  data += test::pattern_bytes(64, 7);
  data += "\r";
  return data;
}

std::string sample_body() {
  return part("form-data; name=\"title\"", "My holiday") +
         part("form-data; name=\"video\"; filename=\"clip \\\"one\\\".mp4\"", tricky_data(),
              "Content-Type: video/mp4\r\n") +
         part("form-data; name=\"empty\"", "") + close_delimiter();
}

std::vector<Part> expected_sample() {
  return {
      Part{"title", std::nullopt, "", {{"Content-Disposition", "form-data; name=\"title\""}}, "My holiday", true},
      Part{"video",
           "clip \"one\".mp4",
           "video/mp4",
           {{"Content-Disposition", "form-data; name=\"video\"; filename=\"clip \\\"one\\\".mp4\""},
            {"Content-Type", "video/mp4"}},
           tricky_data(),
           true},
      Part{"empty", std::nullopt, "", {{"Content-Disposition", "form-data; name=\"empty\""}}, "", true},
  };
}

std::vector<Part> parse_in_pieces(const std::string& body, const std::vector<std::size_t>& cuts) {
  Recorder recorder;
  MultipartReader reader(kBoundary, recorder);
  std::size_t from = 0;
  for (auto cut : cuts) {
    reader.feed(std::string_view(body).substr(from, cut - from));
    from = cut;
  }
  reader.feed(std::string_view(body).substr(from));
  reader.finish();
  EXPECT_TRUE(reader.done());
  EXPECT_TRUE(recorder.protocol_errors.empty()) << recorder.protocol_errors.front();
  return recorder.parts;
}

// Runs `body` through a reader and returns the reason of the Error it throws ("" when none).
std::string failure_of(const std::string& body, std::size_t max_header_bytes = 16 * 1024,
                       std::optional<std::size_t> piece = std::nullopt) {
  Recorder recorder;
  try {
    MultipartReader reader(kBoundary, recorder, max_header_bytes);
    if (piece) {
      for (std::size_t i = 0; i < body.size(); i += *piece) reader.feed(std::string_view(body).substr(i, *piece));
    } else {
      reader.feed(body);
    }
    reader.finish();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::bad_request);
    return e.reason();
  }
  return "";
}

TEST(Multipart, ReadsPartsFedAtOnce) {
  EXPECT_EQ(parse_in_pieces(sample_body(), {}), expected_sample());
}

TEST(Multipart, GivesTheSamePartsWhereverTheBodyIsSplit) {
  const auto body = sample_body();
  const auto expected = expected_sample();
  for (std::size_t cut = 0; cut <= body.size(); ++cut) {
    ASSERT_EQ(parse_in_pieces(body, {cut}), expected) << "split at " << cut;
  }
}

TEST(Multipart, GivesTheSamePartsWhereverTheBodyIsSplitTwice) {
  // Every pair of cuts over the delimiter-heavy file part: a delimiter split in three pieces at any bytes.
  const auto body = sample_body();
  const auto expected = expected_sample();
  const auto file_part = body.find("Content-Type: video/mp4");
  ASSERT_NE(file_part, std::string::npos);
  for (std::size_t a = file_part; a <= body.size(); ++a) {
    for (std::size_t b = a; b <= std::min(body.size(), a + 2 * (kBoundary.size() + 4)); ++b) {
      ASSERT_EQ(parse_in_pieces(body, {a, b}), expected) << "split at " << a << " and " << b;
    }
  }
}

TEST(Multipart, GivesTheSamePartsFedAByteAtATime) {
  const auto body = sample_body();
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < body.size(); ++i) cuts.push_back(i);
  EXPECT_EQ(parse_in_pieces(body, cuts), expected_sample());
}

TEST(Multipart, StreamsPartDataWithoutHoldingIt) {
  const std::string payload = test::pattern_bytes(1 << 20, 3);
  const std::string body = part("form-data; name=\"video\"; filename=\"a.mp4\"", payload) + close_delimiter();
  Recorder recorder;
  MultipartReader reader(kBoundary, recorder);
  constexpr std::size_t kPiece = 64 * 1024;
  for (std::size_t i = 0; i < body.size(); i += kPiece) {
    reader.feed(std::string_view(body).substr(i, kPiece));
    // All but a delimiter's worth of what was fed has come out already.
    const std::size_t fed = std::min(body.size(), i + kPiece);
    const std::size_t header_size = body.find("\r\n\r\n") + 4;
    if (fed > header_size + kBoundary.size() + 4 && fed < body.size()) {
      EXPECT_GE(recorder.data_bytes + kBoundary.size() + 4, fed - header_size) << "after " << fed << " bytes";
    }
  }
  reader.finish();
  ASSERT_EQ(recorder.parts.size(), 1u);
  EXPECT_EQ(recorder.parts[0].data, payload);
  EXPECT_LE(recorder.largest_piece, kPiece + kBoundary.size() + 4);
}

TEST(Multipart, IgnoresPreambleAndEpilogueAndAllowsTransportPadding) {
  const std::string body = "This is the preamble.\r\n--" + kBoundary + " \t \r\n" +
                           "Content-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--" + kBoundary +
                           "--\r\nThis is the epilogue, ignored.\r\n--" + kBoundary + "\r\n";
  const auto parts = parse_in_pieces(body, {});
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].name, "a");
  EXPECT_EQ(parts[0].data, "1");
}

TEST(Multipart, AcceptsAClosingDelimiterWithoutTrailingCrlf) {
  const std::string body = part("form-data; name=\"a\"", "x") + "--" + kBoundary + "--";
  const auto parts = parse_in_pieces(body, {});
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].data, "x");
}

TEST(Multipart, ParsesContentDisposition) {
  struct Case {
    std::string disposition;
    std::string name;
    std::optional<std::string> filename;
  };
  const std::vector<Case> cases = {
      {"form-data; name=video; filename=clip.mp4", "video", "clip.mp4"},
      {"FORM-DATA ; NAME=\"v\" ; FileName=\"a;b=c.mp4\"", "v", "a;b=c.mp4"},
      {"form-data; name=\"v\"; filename=\"C:\\new\\clip.mp4\"", "v", "C:\\new\\clip.mp4"},
      {"form-data; name=\"v\"; filename=\"back\\\\slash\"", "v", "back\\slash"},
      {"form-data; name=\"v\"; filename=\"\"", "v", ""},
      {"form-data; name=\"v\"; filename=\"fallback.mp4\"; filename*=UTF-8''na%C3%AFve%20clip.mp4", "v",
       "na\xC3\xAFve clip.mp4"},
      {"form-data; name=\"v\"; filename*=utf-8'en'%E2%82%AC.mp4", "v", "\xE2\x82\xAC.mp4"},
      {"form-data; name=\"v\"; filename*=iso-8859-1''caf%E9.mp4", "v", "caf\xC3\xA9.mp4"},
      {"form-data; name=\"v\"; filename=\"plain.mp4\"; filename*=UTF-8''bad%G0", "v", "plain.mp4"},
      {"form-data; name=\"v\"; filename=\"plain.mp4\"; filename*=KOI8-R''x", "v", "plain.mp4"},
      {"form-data; name=\"\xC3\xA9t\xC3\xA9\";", "\xC3\xA9t\xC3\xA9", std::nullopt},
  };
  for (const auto& c : cases) {
    const auto parts = parse_in_pieces(part(c.disposition, "x") + close_delimiter(), {});
    ASSERT_EQ(parts.size(), 1u) << c.disposition;
    EXPECT_EQ(parts[0].name, c.name) << c.disposition;
    EXPECT_EQ(parts[0].filename, c.filename) << c.disposition;
  }
}

TEST(Multipart, KeepsPartHeadersAndUnfoldsContinuations) {
  const std::string body = "--" + kBoundary +
                           "\r\ncontent-disposition:form-data;name=\"a\"\r\nContent-Type:  text/plain;\r\n"
                           " charset=utf-8\r\nX-Extra: 1\r\n\r\nhi\r\n" +
                           close_delimiter();
  const auto parts = parse_in_pieces(body, {});
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(parts[0].headers, (Headers{{"content-disposition", "form-data;name=\"a\""},
                                       {"Content-Type", "text/plain; charset=utf-8"},
                                       {"X-Extra", "1"}}));
}

TEST(Multipart, RefusesMalformedBodies) {
  const std::string d = "--" + kBoundary;
  struct Case {
    std::string what;
    std::string body;
  };
  const std::vector<Case> cases = {
      {"empty body", ""},
      {"no boundary at all", std::string(40000, 'x')},
      {"wrong boundary", "--other\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--other--\r\n"},
      {"no closing delimiter", part("form-data; name=\"a\"", "x")},
      {"cut in a part's headers", d + "\r\nContent-Disposition: form-da"},
      {"cut in a part's body", d + "\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nxyz"},
      {"garbage after a boundary", d + "garbage\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n" +
                                       close_delimiter()},
      {"part without headers", d + "\r\n\r\nx\r\n" + close_delimiter()},
      {"header line without a colon", d + "\r\nContent-Disposition form-data\r\n\r\nx\r\n" + close_delimiter()},
      {"header name with a space", d + "\r\nContent Disposition: form-data; name=a\r\n\r\nx\r\n" + close_delimiter()},
      {"fold before any header", d + "\r\n folded\r\n\r\nx\r\n" + close_delimiter()},
      {"no Content-Disposition", d + "\r\nContent-Type: text/plain\r\n\r\nx\r\n" + close_delimiter()},
      {"not form-data", part("attachment; name=\"a\"", "x") + close_delimiter()},
      {"no name", part("form-data; filename=\"a.mp4\"", "x") + close_delimiter()},
      {"unterminated quote", part("form-data; name=\"a", "x") + close_delimiter()},
      {"parameter without value", part("form-data; name", "x") + close_delimiter()},
      {"headers too long", d + "\r\nContent-Disposition: form-data; name=\"a\"\r\nX-Long: " + std::string(20000, 'a') +
                               "\r\n\r\nx\r\n" + close_delimiter()},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(failure_of(c.body), "bad_multipart") << c.what;
    EXPECT_EQ(failure_of(c.body, 16 * 1024, 7), "bad_multipart") << c.what << " (fed in pieces)";
  }
}

TEST(Multipart, RefusesANonMultipartBodyEarly) {
  // The preamble is bounded by the header limit: a plain video sent as multipart is refused within it,
  // not after being read to its end.
  Recorder recorder;
  MultipartReader reader(kBoundary, recorder, 1024);
  const std::string junk = test::pattern_bytes(4096, 9);
  EXPECT_THROW(reader.feed(junk), Error);
}

TEST(Multipart, KeepsFailingAfterAnError) {
  Recorder recorder;
  MultipartReader reader(kBoundary, recorder);
  EXPECT_THROW(reader.feed("--" + kBoundary + "xx\r\n"), Error);
  EXPECT_THROW(reader.feed(part("form-data; name=\"a\"", "x")), Error);
  EXPECT_THROW(reader.finish(), Error);
  EXPECT_FALSE(reader.done());
}

TEST(Multipart, HeaderLimitIsConfigurable) {
  const std::string body = part("form-data; name=\"a\"", "x", "X-Pad: " + std::string(200, 'p') + "\r\n") +
                           close_delimiter();
  EXPECT_EQ(failure_of(body, 100), "bad_multipart");
  EXPECT_EQ(failure_of(body, 1000), "");
}

TEST(Multipart, RefusesBadBoundaries) {
  Recorder recorder;
  EXPECT_THROW(MultipartReader("", recorder), Error);
  EXPECT_THROW(MultipartReader(std::string(71, 'b'), recorder), Error);
  EXPECT_NO_THROW(MultipartReader(std::string(70, 'b'), recorder));
}

TEST(Multipart, IgnoresBytesAfterTheEnd) {
  Recorder recorder;
  MultipartReader reader(kBoundary, recorder);
  reader.feed(part("form-data; name=\"a\"", "x") + close_delimiter());
  EXPECT_TRUE(reader.done());
  reader.feed("anything at all");
  reader.finish();
  EXPECT_EQ(recorder.parts.size(), 1u);
}

TEST(MultipartBoundary, ParsesTheContentTypeParameter) {
  EXPECT_EQ(MultipartReader::boundary_of("multipart/form-data; boundary=abc123"), "abc123");
  EXPECT_EQ(MultipartReader::boundary_of("multipart/form-data;boundary=\"a b:c\""), "a b:c");
  EXPECT_EQ(MultipartReader::boundary_of("Multipart/Form-Data; charset=utf-8; BOUNDARY=----WebKitFormBoundaryx"),
            "----WebKitFormBoundaryx");
  EXPECT_EQ(MultipartReader::boundary_of("multipart/form-data; boundary=xyz;"), "xyz");
  EXPECT_EQ(MultipartReader::boundary_of("multipart/form-data; boundary=" + std::string(70, 'z')),
            std::string(70, 'z'));
}

TEST(MultipartBoundary, RefusesWhatIsNotAUsableBoundary) {
  EXPECT_EQ(MultipartReader::boundary_of("multipart/form-data"), std::nullopt);
  EXPECT_EQ(MultipartReader::boundary_of("multipart/form-data; charset=utf-8"), std::nullopt);
  EXPECT_EQ(MultipartReader::boundary_of("multipart/form-data; boundary="), std::nullopt);
  EXPECT_EQ(MultipartReader::boundary_of("multipart/form-data; boundary=\"\""), std::nullopt);
  EXPECT_EQ(MultipartReader::boundary_of("multipart/form-data; boundary=" + std::string(71, 'z')), std::nullopt);
  EXPECT_EQ(MultipartReader::boundary_of("multipart/form-data; boundary=\"trailing \""), std::nullopt);
  EXPECT_EQ(MultipartReader::boundary_of("multipart/form-data; boundary=\"a\r\nb\""), std::nullopt);
  EXPECT_EQ(MultipartReader::boundary_of("multipart/form-data; boundary=\"unterminated"), std::nullopt);
  EXPECT_EQ(MultipartReader::boundary_of("multipart/mixed; boundary=abc"), std::nullopt);
  EXPECT_EQ(MultipartReader::boundary_of("video/mp4"), std::nullopt);
  EXPECT_EQ(MultipartReader::boundary_of(""), std::nullopt);
}

}  // namespace
}  // namespace framepress::http
