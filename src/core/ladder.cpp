#include "core/ladder.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace framepress {
namespace {

int round_to_even(double value) { return std::max(2, static_cast<int>(std::lround(value / 2.0)) * 2); }

RenditionSpec make_spec(int short_side, int display_width, int display_height, const LadderPolicy& policy) {
  RenditionSpec spec;
  spec.short_side = short_side;
  spec.name = std::to_string(short_side) + "p";
  if (display_width >= display_height) {
    spec.height = round_to_even(short_side);
    spec.width = round_to_even(static_cast<double>(display_width) * short_side / display_height);
  } else {
    spec.width = round_to_even(short_side);
    spec.height = round_to_even(static_cast<double>(display_height) * short_side / display_width);
  }
  spec.worker_class = policy.class_of(short_side).name;
  return spec;
}

}  // namespace

const WorkerClass& LadderPolicy::class_of(int short_side) const {
  for (const auto& c : classes) {
    if (short_side >= c.min_short_side && short_side <= c.max_short_side) return c;
  }
  return classes.back();
}

void to_json(nlohmann::json& j, const RenditionSpec& r) {
  j = nlohmann::json{{"name", r.name}, {"short_side", r.short_side}, {"width", r.width},
                     {"height", r.height}, {"class", r.worker_class}};
}

void from_json(const nlohmann::json& j, RenditionSpec& r) {
  r.name = j.at("name").get<std::string>();
  r.short_side = j.at("short_side").get<int>();
  r.width = j.at("width").get<int>();
  r.height = j.at("height").get<int>();
  r.worker_class = j.value("class", "");
}

int parse_rendition_name(std::string_view name) {
  if (name.size() < 2 || (name.back() != 'p' && name.back() != 'P')) return 0;
  int value = 0;
  auto digits = name.substr(0, name.size() - 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc{} || end != digits.data() + digits.size() || value <= 0) return 0;
  return value;
}

std::vector<RenditionSpec> plan_ladder(const SourceInfo& source, const LadderPolicy& policy,
                                       const std::vector<std::string>& requested) {
  const int dw = source.display_width();
  const int dh = source.display_height();
  if (dw <= 0 || dh <= 0) throw Error(ErrorCode::unprocessable, "the video has no picture size", "no_dimensions");
  const int source_short = std::min(dw, dh);
  const int limit = std::min(source_short, policy.max_resolution);

  std::vector<int> chosen;
  if (requested.empty()) {
    for (int rung : policy.rungs) {
      if (rung <= limit) chosen.push_back(rung);
    }
    // A source below the smallest rung still gets one rendition: at its own size, never upscaled.
    if (chosen.empty()) chosen.push_back(std::min(source_short, policy.max_resolution) / 2 * 2);
  } else {
    for (const auto& name : requested) {
      int rung = parse_rendition_name(name);
      if (rung == 0 || std::find(policy.rungs.begin(), policy.rungs.end(), rung) == policy.rungs.end()) {
        throw Error(ErrorCode::unprocessable, "unknown rendition '" + name + "'", "unknown_rendition");
      }
      if (rung > policy.max_resolution) {
        throw Error(ErrorCode::unprocessable,
                    "rendition " + name + " is above the server's maximum of " +
                        std::to_string(policy.max_resolution) + "p",
                    "above_cap");
      }
      if (rung > source_short) {
        throw Error(ErrorCode::unprocessable,
                    "rendition " + name + " is larger than the source (" + std::to_string(source_short) +
                        " pixels on the short side)",
                    "above_source");
      }
      if (std::find(chosen.begin(), chosen.end(), rung) == chosen.end()) chosen.push_back(rung);
    }
    std::sort(chosen.begin(), chosen.end());
  }

  std::vector<RenditionSpec> plan;
  plan.reserve(chosen.size());
  for (int rung : chosen) plan.push_back(make_spec(rung, dw, dh, policy));
  return plan;
}

}  // namespace framepress
