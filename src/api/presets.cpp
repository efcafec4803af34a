#include "api/presets.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace framepress::api {

std::vector<QualityPreset> quality_presets(const EncodingSettings& standard) {
  auto with = [&](std::string preset, int crf) {
    EncodingSettings e = standard;
    e.preset = std::move(preset);
    e.crf = crf;
    return e;
  };
  return {
      {"standard", "balanced size and quality (the server's default settings)", standard},
      {"fast", "quickest encode, somewhat larger files", with("veryfast", standard.crf)},
      {"small", "smaller files for slower links, visibly softer", with("slow", standard.crf + 5)},
      {"quality", "near-transparent quality, larger files, slow", with("slow", std::max(0, standard.crf - 3))},
  };
}

const QualityPreset& choose_preset(const std::vector<QualityPreset>& presets, const std::string& name) {
  if (name.empty()) return presets.front();
  for (const auto& p : presets) {
    if (p.name == name) return p;
  }
  std::string known;
  for (const auto& p : presets) known += (known.empty() ? "" : ", ") + p.name;
  throw Error(ErrorCode::unprocessable, "unknown preset '" + name + "' (known: " + known + ")", "unknown_preset");
}

nlohmann::json presets_document(const LadderPolicy& ladder, const std::vector<QualityPreset>& presets,
                                std::uint64_t max_upload_bytes, const MediaLimits& limits) {
  nlohmann::json rungs = nlohmann::json::array();
  for (int rung : ladder.rungs) {
    if (rung > ladder.max_resolution) continue;
    rungs.push_back({{"name", std::to_string(rung) + "p"}, {"short_side", rung}, {"class", ladder.class_of(rung).name}});
  }
  nlohmann::json list = nlohmann::json::array();
  for (const auto& p : presets) {
    list.push_back({{"name", p.name},
                    {"description", p.description},
                    {"video_codec", p.encoding.video_codec},
                    {"preset", p.encoding.preset},
                    {"crf", p.encoding.crf}});
  }
  return {{"ladder", std::move(rungs)},
          {"max_resolution", ladder.max_resolution},
          {"presets", std::move(list)},
          {"default_preset", presets.front().name},
          {"limits",
           {{"max_upload_bytes", max_upload_bytes},
            {"max_duration_seconds", limits.max_duration_seconds},
            {"max_pixels", limits.max_pixels},
            {"max_frame_rate", limits.max_frame_rate},
            {"max_streams", limits.max_streams}}}};
}

}  // namespace framepress::api
