#include "core/source_info.h"

#include <cmath>

#include <nlohmann/json.hpp>

namespace framepress {

// Non-square pixels stretch the stored width; after a quarter turn that stored width stands upright.
int SourceInfo::display_width() const {
  bool quarter_turn = rotation == 90 || rotation == 270;
  return static_cast<int>(std::lround(quarter_turn ? height : width * sample_aspect));
}

int SourceInfo::display_height() const {
  bool quarter_turn = rotation == 90 || rotation == 270;
  return static_cast<int>(std::lround(quarter_turn ? width * sample_aspect : height));
}

void to_json(nlohmann::json& j, const SourceInfo& s) {
  j = nlohmann::json{{"container", s.container},
                     {"size", s.size},
                     {"duration", s.duration},
                     {"bit_rate", s.bit_rate},
                     {"video_codec", s.video_codec},
                     {"width", s.width},
                     {"height", s.height},
                     {"rotation", s.rotation},
                     {"sample_aspect", s.sample_aspect},
                     {"display_width", s.display_width()},
                     {"display_height", s.display_height()},
                     {"frame_rate", s.frame_rate}};
  if (s.audio) {
    j["audio"] = {{"codec", s.audio->codec}, {"channels", s.audio->channels}, {"sample_rate", s.audio->sample_rate}};
  } else {
    j["audio"] = nullptr;
  }
}

void from_json(const nlohmann::json& j, SourceInfo& s) {
  s.container = j.value("container", "");
  s.size = j.value("size", std::uint64_t{0});
  s.duration = j.value("duration", 0.0);
  s.bit_rate = j.value("bit_rate", std::int64_t{0});
  s.video_codec = j.value("video_codec", "");
  s.width = j.value("width", 0);
  s.height = j.value("height", 0);
  s.rotation = j.value("rotation", 0);
  s.sample_aspect = j.value("sample_aspect", 1.0);
  s.frame_rate = j.value("frame_rate", 0.0);
  s.audio.reset();
  if (auto it = j.find("audio"); it != j.end() && it->is_object()) {
    s.audio = AudioInfo{it->value("codec", ""), it->value("channels", 0), it->value("sample_rate", 0)};
  }
}

}  // namespace framepress
