#include "core/events.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace framepress {

TEST(Events, EveryPublishedTypeRoundTripsThroughJson) {
  auto id = VideoId::generate();
  SourceInfo source;
  source.width = 1920;
  source.height = 1080;
  source.duration = 10.5;
  source.audio = AudioInfo{"aac", 2, 48000};
  std::vector<EventPayload> payloads{
      JobCreated{"clip.mp4", ObjectKey::source_of(id), source, {RenditionSpec{"720p", 720, 1280, 720, "hd"}},
                 EncodingSettings{}, "standard", ""},
      RenditionStarted{"720p", 2, "host-1/3"},
      RenditionProgress{"720p", 42.5, 88, 2.5, 3.25},
      RenditionDone{"720p", ObjectKey::rendition_of(id, "720p"), 12345, 800000, 10.5, 1280, 720},
      RenditionFailed{"720p", 1, "ffmpeg exited with 1", true},
      JobCancelled{},
      JobDeleted{},
  };
  for (const auto& payload : payloads) {
    Event event{id, 1700000000123, payload};
    auto json = to_json(event);
    Event back = event_from_json(nlohmann::json::parse(json.dump()));
    EXPECT_EQ(back.video_id, id);
    EXPECT_EQ(back.at, 1700000000123);
    EXPECT_EQ(back.payload.index(), payload.index());
    EXPECT_EQ(to_json(back), json) << json.dump();
  }
}

TEST(Events, JsonCarriesTypeAndTime) {
  Event event{VideoId::generate(), 1700000000123, RenditionProgress{"480p", 10, 30, 1, 9}};
  auto j = to_json(event);
  EXPECT_EQ(j["type"], "rendition.progress");
  EXPECT_EQ(j["at"], "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(sse_name(event), "progress");
  EXPECT_FALSE(is_state_change(event));
}

TEST(Events, MalformedEventsAreErrorsNotCrashes) {
  EXPECT_THROW(event_from_json(nlohmann::json::object()), Error);
  EXPECT_THROW(event_from_json({{"type", "nope"}, {"video_id", VideoId::generate().str()}}), Error);
  EXPECT_THROW(event_from_json({{"type", "job.cancelled"}, {"video_id", "x"}}), Error);
  EXPECT_THROW(event_from_json({{"type", "rendition.done"}, {"video_id", VideoId::generate().str()}}), Error);
}

TEST(Tasks, RoundTripThroughJson) {
  RenditionTask task;
  task.video_id = VideoId::generate();
  task.source_key = ObjectKey::source_of(task.video_id);
  task.rendition = RenditionSpec{"360p", 360, 640, 360, "sd"};
  task.output_key = ObjectKey::rendition_of(task.video_id, "360p");
  task.attempt = 3;
  task.encoding.crf = 30;
  auto back = task_from_json(nlohmann::json::parse(to_json(task).dump()));
  EXPECT_EQ(back.video_id, task.video_id);
  EXPECT_EQ(back.rendition, task.rendition);
  EXPECT_EQ(back.encoding, task.encoding);
  EXPECT_EQ(back.output_key, task.output_key);
  EXPECT_EQ(back.attempt, 3);
  EXPECT_THROW(task_from_json({{"video_id", "bad"}}), Error);
}

}  // namespace framepress
