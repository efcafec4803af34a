#include "core/filename.h"

#include <cstdint>

namespace framepress {
namespace {

/// Length of the valid UTF-8 sequence starting at `s[i]`, or 0 when it is not valid.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(s[k]); };
  std::uint8_t lead = byte(i);
  std::size_t length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 0;
  if (length == 0 || i + length > s.size()) return 0;
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  if (length == 2 && lead < 0xC2) return 0;                                  // overlong
  if (length == 3 && lead == 0xE0 && byte(i + 1) < 0xA0) return 0;           // overlong
  if (length == 3 && lead == 0xED && byte(i + 1) >= 0xA0) return 0;          // surrogates
  if (length == 4 && lead == 0xF0 && byte(i + 1) < 0x90) return 0;           // overlong
  if (length == 4 && (lead > 0xF4 || (lead == 0xF4 && byte(i + 1) >= 0x90))) return 0;  // > U+10FFFF
  return length;
}

}  // namespace

std::string sanitize_filename(std::string_view raw) {
  auto slash = raw.find_last_of("/\\");
  if (slash != std::string_view::npos) raw.remove_prefix(slash + 1);

  constexpr std::size_t kMaxBytes = 180;
  std::string out;
  for (std::size_t i = 0; i < raw.size();) {
    std::size_t length = utf8_sequence_length(raw, i);
    std::string_view piece = length ? raw.substr(i, length) : std::string_view("\xEF\xBF\xBD");
    i += length ? length : 1;
    if (piece.size() == 1) {
      auto c = static_cast<unsigned char>(piece[0]);
      if (c < 0x20 || c == 0x7F) continue;                  // control characters and NUL
      if (c == '"') piece = "'";                            // keeps header quoting simple
    }
    if (out.size() + piece.size() > kMaxBytes) break;       // whole characters only
    out += piece;
  }
  auto first = out.find_first_not_of(". ");
  out = first == std::string::npos ? std::string() : out.substr(first);
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out.empty() ? "video" : out;
}

std::string filename_stem(std::string_view name) {
  auto dot = name.rfind('.');
  return std::string(dot == std::string_view::npos || dot == 0 ? name : name.substr(0, dot));
}

std::string filename_extension(std::string_view name) {
  auto dot = name.rfind('.');
  return dot == std::string_view::npos || dot == 0 ? std::string() : std::string(name.substr(dot));
}

}  // namespace framepress
