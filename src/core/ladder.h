#pragma once
// Ladder planning: which renditions a source gets, and their exact output dimensions. Pure functions.

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/source_info.h"

namespace framepress {

/// A resolution class: the worker pool that encodes renditions whose short side lies in [min, max].
struct WorkerClass {
  std::string name;
  int min_short_side = 0;
  int max_short_side = 0;
};

struct LadderPolicy {
  /// Short sides on offer, ascending.
  std::vector<int> rungs{144, 240, 360, 480, 720, 1080, 1440, 2160};
  /// No rendition above this short side, whatever the source.
  int max_resolution = 1080;
  std::vector<WorkerClass> classes{{"sd", 0, 480}, {"hd", 481, 1080}, {"uhd", 1081, 1 << 20}};

  /// The class of a short side; the last class when none matches.
  const WorkerClass& class_of(int short_side) const;
};

/// One output of a job: "720p" is 720 pixels on the short side, upright, aspect kept, both sides even.
struct RenditionSpec {
  std::string name;
  int short_side = 0;
  int width = 0;
  int height = 0;
  std::string worker_class;
  auto operator<=>(const RenditionSpec&) const = default;
};

void to_json(nlohmann::json& j, const RenditionSpec& r);
void from_json(const nlohmann::json& j, RenditionSpec& r);

/// "720p" → 720; anything else → 0.
int parse_rendition_name(std::string_view name);

/// The renditions of `source` under `policy`, smallest first. With `requested` empty: every rung up to
/// the source's short side and the cap; a source smaller than the smallest rung gets one rendition at
/// its own size. With `requested`: exactly those, each of which must be a rung within both limits.
/// Throws Error(unprocessable) with reason "unknown_rendition", "above_cap" or "above_source".
std::vector<RenditionSpec> plan_ladder(const SourceInfo& source, const LadderPolicy& policy,
                                       const std::vector<std::string>& requested = {});

}  // namespace framepress
