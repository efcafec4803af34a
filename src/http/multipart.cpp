#include "http/multipart.h"

#include <algorithm>
#include <cctype>
#include <vector>

#include "core/error.h"

namespace framepress::http {

namespace {

constexpr std::size_t kMaxBoundary = 70;      // RFC 2046 §5.1.1
constexpr std::size_t kMaxPadding = 256;      // whitespace allowed between a boundary and its CRLF
constexpr std::string_view kHeaderEnd = "\r\n\r\n";

using Parameters = std::vector<std::pair<std::string, std::string>>;

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

std::string to_lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

bool is_ows(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// RFC 9110 tchar: what a header or parameter name may be made of.
bool is_tchar(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar); }

// The `; name=value` list after a media type or disposition type. Names come back lower-cased; quoted
// values are unquoted. Only `\"` and `\\` are taken as escapes: browsers do not escape a backslash in a
// file name (the HTML standard percent-encodes `"` instead), so "C:\new.mp4" must survive as sent.
// nullopt when the list is malformed.
std::optional<Parameters> parse_parameters(std::string_view s) {
  Parameters params;
  std::size_t i = 0;
  auto skip_ows = [&] {
    while (i < s.size() && is_ows(s[i])) ++i;
  };
  for (;;) {
    skip_ows();
    if (i == s.size()) return params;
    if (s[i] != ';') return std::nullopt;
    ++i;
    skip_ows();
    if (i == s.size()) return params;  // a trailing ';' is common and harmless
    const auto name_start = i;
    while (i < s.size() && s[i] != '=' && s[i] != ';' && !is_ows(s[i])) ++i;
    const auto name = s.substr(name_start, i - name_start);
    skip_ows();
    if (!is_token(name) || i == s.size() || s[i] != '=') return std::nullopt;
    ++i;
    skip_ows();
    std::string value;
    if (i < s.size() && s[i] == '"') {
      ++i;
      bool closed = false;
      while (i < s.size()) {
        const char c = s[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\' && i < s.size() && (s[i] == '"' || s[i] == '\\')) {
          value.push_back(s[i++]);
        } else {
          value.push_back(c);
        }
      }
      if (!closed) return std::nullopt;
    } else {
      const auto value_start = i;
      while (i < s.size() && s[i] != ';') ++i;
      value = trim(s.substr(value_start, i - value_start));
      if (value.empty()) return std::nullopt;
    }
    params.emplace_back(to_lower(name), std::move(value));
  }
}

const std::string* find_parameter(const Parameters& params, std::string_view name) {
  for (const auto& [key, value] : params) {
    if (key == name) return &value;
  }
  return nullptr;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 8187 (was 5987) ext-value: charset'language'percent-encoded, e.g. UTF-8''na%C3%AFve.mp4. Returns
// UTF-8, or nullopt for a malformed value or a charset other than UTF-8 and ISO-8859-1 (the two the RFC
// asks for), in which case the plain `filename` is used instead.
std::optional<std::string> decode_ext_value(std::string_view value) {
  const auto first = value.find('\'');
  if (first == std::string_view::npos) return std::nullopt;
  const auto second = value.find('\'', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  const auto charset = value.substr(0, first);
  const bool utf8 = iequals(charset, "utf-8");
  if (!utf8 && !iequals(charset, "iso-8859-1")) return std::nullopt;

  std::string out;
  for (std::size_t i = second + 1; i < value.size(); ++i) {
    unsigned char byte = static_cast<unsigned char>(value[i]);
    if (byte == '%') {
      if (i + 2 >= value.size()) return std::nullopt;
      const int hi = hex_value(value[i + 1]);
      const int lo = hex_value(value[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      byte = static_cast<unsigned char>(hi * 16 + lo);
      i += 2;
    }
    if (utf8 || byte < 0x80) {
      out.push_back(static_cast<char>(byte));
    } else {  // ISO-8859-1 maps one to one onto U+0080..U+00FF
      out.push_back(static_cast<char>(0xC0 | (byte >> 6)));
      out.push_back(static_cast<char>(0x80 | (byte & 0x3F)));
    }
  }
  return out;
}

// RFC 2046 bchars: what a boundary may be made of (a space too, but not at its end).
bool is_boundary_char(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  return std::string_view("'()+_,-./:=? ").find(c) != std::string_view::npos;
}

}  // namespace

MultipartReader::MultipartReader(std::string boundary, Sink& sink, std::size_t max_part_header_bytes)
    : delimiter_("\r\n--" + boundary), sink_(sink), max_header_bytes_(max_part_header_bytes) {
  if (boundary.empty() || boundary.size() > kMaxBoundary) fail("the multipart boundary must be 1 to 70 characters");
  // The first delimiter may open the body without the CRLF that precedes all the others: seeding the
  // buffer with one lets a single search find both.
  pending_ = "\r\n";
  state_ = State::preamble;
}

void MultipartReader::fail(const char* message) {
  state_ = State::failed;
  pending_.clear();
  throw Error(ErrorCode::bad_request, message, "bad_multipart");
}

bool MultipartReader::done() const { return state_ == State::epilogue; }

void MultipartReader::feed(std::string_view bytes) {
  if (state_ == State::failed) fail("the multipart body was already found malformed");
  if (state_ == State::epilogue) return;  // the epilogue is ignored (RFC 2046), so not even buffered
  pending_.append(bytes);
  try {
    drain();
  } catch (...) {
    // A sink failure leaves a part half given out: the reader cannot go on from there either.
    state_ = State::failed;
    pending_.clear();
    throw;
  }
}

void MultipartReader::finish() {
  if (state_ == State::failed) fail("the multipart body was already found malformed");
  if (state_ != State::epilogue) fail("the multipart body ended before its closing boundary");
}

void MultipartReader::drain() {
  const std::string_view delimiter = delimiter_;
  for (;;) {
    switch (state_) {
      case State::preamble: {
        const auto pos = pending_.find(delimiter);
        if (pos == std::string::npos) {
          // Keep only what could be the start of the delimiter; count the rest against the limit so that
          // a body that is not multipart at all is refused early rather than read to its end.
          const auto keep = std::min(pending_.size(), delimiter.size() - 1);
          preamble_bytes_ += pending_.size() - keep;
          pending_.erase(0, pending_.size() - keep);
          if (preamble_bytes_ > max_header_bytes_) fail("the multipart body does not start with its boundary");
          return;
        }
        if (preamble_bytes_ + pos > max_header_bytes_) fail("the multipart body does not start with its boundary");
        pending_.erase(0, pos + delimiter.size());
        state_ = State::boundary_tail;
        break;
      }

      case State::boundary_tail: {
        if (pending_.size() < 2) return;
        if (pending_.compare(0, 2, "--") == 0) {
          state_ = State::epilogue;
          pending_.clear();
          if (part_open_) {
            part_open_ = false;
            sink_.on_part_end();
          }
          return;
        }
        // RFC 2046 allows linear whitespace ("transport padding") between the boundary and its CRLF.
        std::size_t i = 0;
        while (i < pending_.size() && is_ows(pending_[i])) ++i;
        if (i > kMaxPadding) fail("malformed multipart boundary line");
        if (pending_.size() < i + 2) return;
        if (pending_[i] != '\r' || pending_[i + 1] != '\n') fail("malformed multipart boundary line");
        if (part_open_) {
          part_open_ = false;
          sink_.on_part_end();
        }
        // The CRLF stays: the header block is then "\r\n" + headers, and ends at the first "\r\n\r\n"
        // whether or not there are any headers.
        pending_.erase(0, i);
        header_scanned_ = 0;
        state_ = State::part_headers;
        break;
      }

      case State::part_headers: {
        // Search only the new bytes (less what could be a split "\r\n\r\n"), so that headers trickling in
        // a byte at a time cost linear time.
        const auto from = header_scanned_ > 3 ? header_scanned_ - 3 : 0;
        const auto end = pending_.find(kHeaderEnd, from);
        if (end == std::string::npos) {
          header_scanned_ = pending_.size();
          // The end may still begin in the last 3 bytes: fail only once even that would be too far (the
          // test below), so that where the network cut the body cannot change the verdict.
          if (pending_.size() > max_header_bytes_ + 2 + kHeaderEnd.size() - 1) fail("multipart part headers are too long");
          return;
        }
        if (end > max_header_bytes_ + 2) fail("multipart part headers are too long");
        parse_headers(std::string_view(pending_).substr(2, end >= 2 ? end - 2 : 0));
        pending_.erase(0, end + kHeaderEnd.size());
        state_ = State::part_body;
        break;
      }

      case State::part_body: {
        const auto pos = pending_.find(delimiter);
        if (pos == std::string::npos) {
          // Every delimiter begins with '\r': bytes before the first '\r' of the last (delimiter − 1)
          // bytes cannot be part of one and are given out now; the rest waits for the next feed.
          const auto window = pending_.size() - std::min(pending_.size(), delimiter.size() - 1);
          auto keep_from = pending_.find('\r', window);
          if (keep_from == std::string::npos) keep_from = pending_.size();
          if (keep_from > 0) {
            sink_.on_part_data(std::string_view(pending_).substr(0, keep_from));
            pending_.erase(0, keep_from);
          }
          return;
        }
        if (pos > 0) sink_.on_part_data(std::string_view(pending_).substr(0, pos));
        pending_.erase(0, pos + delimiter.size());
        state_ = State::boundary_tail;  // the part ends there, once the boundary line is known good
        break;
      }

      case State::epilogue:
      case State::failed:
        pending_.clear();
        return;
    }
  }
}

void MultipartReader::parse_headers(std::string_view block) {
  PartHeader part;
  while (!block.empty()) {
    const auto eol = block.find("\r\n");
    const auto line = block.substr(0, eol);
    block = eol == std::string_view::npos ? std::string_view{} : block.substr(eol + 2);
    if (line.empty()) continue;
    if (is_ows(line.front())) {
      // obs-fold (RFC 9112 §5.2): a continuation of the previous header's value.
      if (part.headers.empty()) fail("malformed multipart part header");
      part.headers.back().second.append(" ").append(trim(line));
      continue;
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) fail("malformed multipart part header");
    part.headers.emplace_back(std::string(line.substr(0, colon)), std::string(trim(line.substr(colon + 1))));
  }

  const std::string* disposition = nullptr;
  for (const auto& [name, value] : part.headers) {
    if (!disposition && iequals(name, "Content-Disposition")) disposition = &value;
    if (part.content_type.empty() && iequals(name, "Content-Type")) part.content_type = value;
  }
  // RFC 7578 §4.2: every part has Content-Disposition: form-data with a name.
  if (!disposition) fail("a multipart part has no Content-Disposition");
  const std::string_view text = *disposition;
  const auto semicolon = text.find(';');
  if (!iequals(trim(text.substr(0, semicolon)), "form-data")) fail("a multipart part is not form-data");
  const auto params = semicolon == std::string_view::npos ? std::optional<Parameters>(Parameters{})
                                                          : parse_parameters(text.substr(semicolon));
  if (!params) fail("malformed multipart Content-Disposition");
  const auto* name = find_parameter(*params, "name");
  if (!name) fail("a multipart part has no name");
  part.name = *name;
  if (const auto* extended = find_parameter(*params, "filename*")) {
    part.filename = decode_ext_value(*extended);
  }
  if (!part.filename) {
    if (const auto* filename = find_parameter(*params, "filename")) part.filename = *filename;
  }
  part_open_ = true;
  sink_.on_part_begin(part);
}

std::optional<std::string> MultipartReader::boundary_of(std::string_view content_type) {
  const auto semicolon = content_type.find(';');
  if (!iequals(trim(content_type.substr(0, semicolon)), "multipart/form-data")) return std::nullopt;
  if (semicolon == std::string_view::npos) return std::nullopt;
  const auto params = parse_parameters(content_type.substr(semicolon));
  if (!params) return std::nullopt;
  const auto* boundary = find_parameter(*params, "boundary");
  if (!boundary || boundary->empty() || boundary->size() > kMaxBoundary) return std::nullopt;
  if (!std::all_of(boundary->begin(), boundary->end(), is_boundary_char) || boundary->back() == ' ') {
    return std::nullopt;
  }
  return *boundary;
}

}  // namespace framepress::http
