#pragma once
// The quality presets an upload can choose, and the /api/presets document. Pure.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/events.h"
#include "core/ladder.h"
#include "media/transcoder.h"

namespace framepress::api {

struct QualityPreset {
  std::string name;
  std::string description;
  EncodingSettings encoding;
};

/// fast, standard (= the configured encoder settings), small and quality. "standard" is the default.
std::vector<QualityPreset> quality_presets(const EncodingSettings& standard);

/// The preset named `name`, or the default one for an empty name. Throws Error(unprocessable,
/// "unknown_preset") for any other name.
const QualityPreset& choose_preset(const std::vector<QualityPreset>& presets, const std::string& name);

nlohmann::json presets_document(const LadderPolicy& ladder, const std::vector<QualityPreset>& presets,
                                std::uint64_t max_upload_bytes, const MediaLimits& limits);

}  // namespace framepress::api
