#include "core/ids.h"

#include "core/error.h"

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>

namespace framepress {
namespace {

constexpr std::string_view kCrockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

int crockford_value(char c) {
  if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  auto pos = kCrockford.find(c);
  return pos == std::string_view::npos ? -1 : static_cast<int>(pos);
}

}  // namespace

VideoId VideoId::generate() {
  // The ULID layout (48-bit millisecond time, 80 random bits) is a dozen lines; no Debian package ships a
  // C++ ULID library, so it is written here.
  static std::mutex mutex;
  static std::mt19937_64 rng{std::random_device{}()};
  std::array<std::uint8_t, 16> bytes{};
  auto ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  for (int i = 0; i < 6; ++i) bytes[i] = static_cast<std::uint8_t>(ms >> (8 * (5 - i)));
  {
    std::lock_guard lock(mutex);
    std::uint64_t a = rng(), b = rng();
    for (int i = 0; i < 8; ++i) bytes[6 + i] = static_cast<std::uint8_t>(a >> (8 * i));
    for (int i = 0; i < 2; ++i) bytes[14 + i] = static_cast<std::uint8_t>(b >> (8 * i));
  }
  // 128 bits as 26 base-32 digits, most significant first (the first digit carries 3 bits).
  std::string out(26, '0');
  unsigned __int128 value = 0;
  for (auto byte : bytes) value = (value << 8) | byte;
  for (int i = 25; i >= 0; --i) {
    out[i] = kCrockford[static_cast<std::size_t>(value & 31)];
    value >>= 5;
  }
  return VideoId(std::move(out));
}

std::optional<VideoId> VideoId::parse(std::string_view text) {
  if (text.size() != 26) return std::nullopt;
  std::string out(26, '0');
  for (std::size_t i = 0; i < text.size(); ++i) {
    int v = crockford_value(text[i]);
    if (v < 0 || (i == 0 && v > 7)) return std::nullopt;
    out[i] = kCrockford[static_cast<std::size_t>(v)];
  }
  return VideoId(std::move(out));
}

ObjectKey ObjectKey::source_of(const VideoId& id) { return ObjectKey(prefix_of(id) + "source"); }

ObjectKey ObjectKey::rendition_of(const VideoId& id, std::string_view rendition) {
  return ObjectKey(prefix_of(id) + "renditions/" + std::string(rendition) + ".mp4");
}

std::string ObjectKey::prefix_of(const VideoId& id) { return "videos/" + id.str() + "/"; }

std::string printable_key(std::string_view key) {
  std::string out(key.substr(0, 120));
  for (auto& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  if (key.size() > out.size()) out += "…";
  return out;
}

void check_object_key(std::string_view key, bool prefix, std::size_t max_length, std::size_t max_segment) {
  auto refuse = [&](std::string_view why) {
    throw Error(ErrorCode::bad_request, "object store: refused key \"" + printable_key(key) + "\": " + std::string(why),
                "bad_key");
  };
  if (key.empty()) refuse("it is empty");
  if (max_length != 0 && key.size() > max_length) refuse("it is longer than " + std::to_string(max_length) + " bytes");
  if (key.front() == '/') refuse("it is absolute");
  for (char c : key) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) refuse("it contains a control character");
    if (c == '\\') refuse("it contains a backslash");
  }
  std::size_t start = 0;
  for (;;) {
    const auto end = key.find('/', start);
    const bool last = end == std::string_view::npos;
    const auto segment = key.substr(start, last ? std::string_view::npos : end - start);
    if (segment.empty() && !(prefix && last)) refuse("it has an empty segment");
    if (segment == "." || segment == "..") refuse("it has a '.' or '..' segment");
    if (max_segment != 0 && segment.size() > max_segment) refuse("a segment is too long");
    if (last) break;
    start = end + 1;
  }
}

}  // namespace framepress
