#pragma once
// What ffprobe found in an upload, as the rest of framepress sees it.

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace framepress {

struct AudioInfo {
  std::string codec;
  int channels = 0;
  int sample_rate = 0;
};

struct SourceInfo {
  std::string container;        // ffprobe's format_name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
  std::uint64_t size = 0;       // bytes
  double duration = 0;          // seconds
  std::int64_t bit_rate = 0;    // bits per second of the whole file
  std::string video_codec;      // e.g. "h264"
  int width = 0;                // coded width, as stored
  int height = 0;
  int rotation = 0;             // display rotation in degrees, normalised to 0, 90, 180 or 270
  double sample_aspect = 1.0;   // pixel aspect ratio (1 for square pixels)
  double frame_rate = 0;        // frames per second
  std::optional<AudioInfo> audio;

  /// The picture as a player shows it: rotation applied, non-square pixels stretched.
  int display_width() const;
  int display_height() const;
};

void to_json(nlohmann::json& j, const SourceInfo& s);
void from_json(const nlohmann::json& j, SourceInfo& s);

}  // namespace framepress
