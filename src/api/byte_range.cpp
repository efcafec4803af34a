#include "api/byte_range.h"

#include <charconv>

namespace framepress::api {
namespace {

std::optional<std::uint64_t> number(std::string_view text) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

RangeRequest parse_range(std::optional<std::string_view> header, std::uint64_t size) {
  if (!header) return WholeObject{};
  std::string_view spec = trim(*header);
  if (spec.substr(0, 6) != "bytes=") return WholeObject{};
  spec = trim(spec.substr(6));
  if (spec.find(',') != std::string_view::npos) return WholeObject{};  // several ranges: serve it whole
  auto dash = spec.find('-');
  if (dash == std::string_view::npos) return WholeObject{};
  auto first_text = trim(spec.substr(0, dash));
  auto last_text = trim(spec.substr(dash + 1));

  if (first_text.empty()) {  // "-N": the last N bytes
    auto suffix = number(last_text);
    if (!suffix) return WholeObject{};
    if (*suffix == 0 || size == 0) return Unsatisfiable{};
    std::uint64_t length = std::min(*suffix, size);
    return ByteRange{size - length, size - 1};
  }
  auto first = number(first_text);
  if (!first) return WholeObject{};
  std::optional<std::uint64_t> last = size == 0 ? std::nullopt : std::optional<std::uint64_t>(size - 1);
  if (!last_text.empty()) {
    auto given = number(last_text);
    if (!given || *given < *first) return WholeObject{};
    if (last) last = std::min(*given, *last);
  }
  if (!last || *first >= size) return Unsatisfiable{};
  return ByteRange{*first, *last};
}

}  // namespace framepress::api
