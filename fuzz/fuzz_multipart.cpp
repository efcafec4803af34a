// Fuzzes the streaming multipart/form-data reader (src/http/multipart.cpp) and the filename sanitizer the
// upload applies to what it reads.
//
// Input (a text file, so seeds are easy to write by hand):
//   line 1: the request's Content-Type (boundary_of() takes the boundary from it; when it finds none, the
//           whole line is used as the boundary, so odd and over-long boundaries are tried too)
//   line 2: the part-header limit in bytes (a number; anything else means the server's 16 KiB)
//   rest:   the body, with the bytes as they are (seeds use CRLF)
//
// The body is fed three times: whole, cut in pieces of random sizes (seeded by the input), and a byte at a
// time. Properties: nothing crashes or trips a sanitizer; only framepress::Error("bad_multipart") is
// thrown; all three feeds
// give the same parts, with the same headers and bytes, and the same verdict; a failed reader keeps
// failing; every filename sanitizes to a safe name.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/filename.h"
#include "fuzz_support.h"
#include "http/multipart.h"

namespace {

using framepress::Error;
using framepress::http::MultipartReader;
using framepress::http::PartHeader;

struct Transcript : MultipartReader::Sink {
  std::vector<std::string> events;
  bool in_part = false;
  void on_part_begin(const PartHeader& part) override {
    FUZZ_CHECK(!in_part, "a part began inside another");
    in_part = true;
    std::string e = "begin name=" + part.name + " filename=" + (part.filename ? "[" + *part.filename + "]" : "-") +
                    " type=" + part.content_type;
    for (const auto& [k, v] : part.headers) e += "\n" + k + ": " + v;
    events.push_back(std::move(e));
    events.emplace_back("data:");
    check_filename(part.filename);
  }
  void on_part_data(std::string_view bytes) override {
    FUZZ_CHECK(in_part, "data outside a part");
    events.back().append(bytes);
  }
  void on_part_end() override {
    FUZZ_CHECK(in_part, "end outside a part");
    in_part = false;
    events.emplace_back("end");
  }

  static void check_filename(const std::optional<std::string>& raw) {
    if (!raw) return;
    const std::string safe = framepress::sanitize_filename(*raw);
    FUZZ_CHECK(!safe.empty() && safe.size() <= 180, "sanitized name length");
    FUZZ_CHECK(safe.front() != '.' && safe.front() != ' ' && safe.back() != ' ', "sanitized name edges");
    for (unsigned char c : safe) {
      FUZZ_CHECK(c >= 0x20 && c != 0x7F && c != '/' && c != '\\' && c != '"', "sanitized name character");
    }
    FUZZ_CHECK(framepress::sanitize_filename(safe) == safe, "sanitize_filename is idempotent");
  }
};

enum class Verdict { ok, bad_boundary, failed };

struct Outcome {
  Verdict verdict = Verdict::ok;
  std::vector<std::string> events;
};

Outcome run(const std::string& boundary, std::size_t limit, const std::vector<std::string_view>& pieces) {
  Outcome out;
  Transcript sink;
  std::optional<MultipartReader> reader;
  try {
    reader.emplace(boundary, sink, limit);
  } catch (const Error& e) {
    FUZZ_CHECK(e.reason() == "bad_multipart", "constructor error reason");
    FUZZ_CHECK(boundary.empty() || boundary.size() > 70, "constructor refused a good boundary");
    out.verdict = Verdict::bad_boundary;
    return out;
  }
  try {
    for (auto piece : pieces) reader->feed(piece);
    reader->finish();
    FUZZ_CHECK(reader->done(), "finish() passed without the closing boundary");
    FUZZ_CHECK(!sink.in_part, "the body ended inside a part");
  } catch (const Error& e) {
    FUZZ_CHECK(e.reason() == "bad_multipart", "feed error reason");
    FUZZ_CHECK(e.code() == framepress::ErrorCode::bad_request, "feed error code");
    out.verdict = Verdict::failed;
    // Once failed, always failed.
    bool threw = false;
    try {
      reader->feed("more");
    } catch (const Error&) {
      threw = true;
    }
    FUZZ_CHECK(threw || reader->done(), "a failed reader accepted more bytes");
  }
  out.events = std::move(sink.events);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto [content_type, rest] = fuzz::first_line(input);
  auto [limit_text, body] = fuzz::first_line(rest);

  const auto parsed = MultipartReader::boundary_of(content_type);
  if (parsed) {
    FUZZ_CHECK(!parsed->empty() && parsed->size() <= 70 && parsed->back() != ' ', "boundary_of() result");
  }
  const std::string boundary = parsed ? *parsed : std::string(content_type);

  std::size_t limit = 16 * 1024;
  if (!limit_text.empty() && limit_text.size() <= 6 &&
      limit_text.find_first_not_of("0123456789") == std::string_view::npos) {
    limit = std::stoul(std::string(limit_text));
  }

  const Outcome whole = run(boundary, limit, {body});
  const Outcome split = run(boundary, limit, fuzz::random_split(body, fuzz::hash(input)));
  FUZZ_CHECK(whole.verdict == split.verdict, "whole and split feeds disagree on the verdict");
  if (whole.verdict == Verdict::ok) {
    FUZZ_CHECK(whole.events == split.events, "whole and split feeds give different parts");
  }
  // A byte at a time: the reader stops at every possible cut, which is where limits and look-behinds slip.
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < body.size(); ++i) bytes.push_back(body.substr(i, 1));
  const Outcome trickle = run(boundary, limit, bytes);
  FUZZ_CHECK(whole.verdict == trickle.verdict, "whole and byte-by-byte feeds disagree on the verdict");
  if (whole.verdict == Verdict::ok) {
    FUZZ_CHECK(whole.events == trickle.events, "whole and byte-by-byte feeds give different parts");
  }
  return 0;
}
