#include "api/presets.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace framepress::api {

TEST(Presets, StandardIsTheConfiguredEncoderAndTheDefault) {
  EncodingSettings configured;
  configured.preset = "ultrafast";
  configured.crf = 30;
  auto presets = quality_presets(configured);
  EXPECT_EQ(choose_preset(presets, "").name, "standard");
  EXPECT_EQ(choose_preset(presets, "").encoding, configured);
  EXPECT_EQ(choose_preset(presets, "fast").encoding.preset, "veryfast");
  EXPECT_GT(choose_preset(presets, "small").encoding.crf, configured.crf);
  EXPECT_LT(choose_preset(presets, "quality").encoding.crf, configured.crf);
  try {
    choose_preset(presets, "turbo");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.reason(), "unknown_preset");
    EXPECT_EQ(http_status(e.code()), 422);
  }
}

TEST(Presets, DocumentListsRungsUpToTheCapAndTheLimits) {
  LadderPolicy ladder;
  ladder.max_resolution = 720;
  auto doc = presets_document(ladder, quality_presets({}), 1234, MediaLimits{});
  ASSERT_EQ(doc["ladder"].size(), 5u);
  EXPECT_EQ(doc["ladder"].back()["name"], "720p");
  EXPECT_EQ(doc["ladder"].back()["class"], "hd");
  EXPECT_EQ(doc["max_resolution"], 720);
  EXPECT_EQ(doc["default_preset"], "standard");
  EXPECT_EQ(doc["limits"]["max_upload_bytes"], 1234);
  EXPECT_EQ(doc["presets"].size(), 4u);
}

}  // namespace framepress::api
