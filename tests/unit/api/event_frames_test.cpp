#include "api/event_frames.h"

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "http/sse.h"

namespace framepress::api {
namespace {

VisibleEvent progress(const VideoId& id, EventId event_id, double percent) {
  return VisibleEvent{event_id, Event{id, 1700000000000, RenditionProgress{"720p", percent, 30, 1.5, 12}}};
}

/// Renders as the API does (the event's JSON plus its id), counting the renderings.
struct CountingRender {
  std::atomic<int>* calls;
  std::string operator()(const VisibleEvent& visible) const {
    ++*calls;
    auto data = to_json(visible.event);
    data["id"] = std::to_string(visible.id);
    return data.dump();
  }
};

TEST(EventFrames, AFrameIsTheSseTextOfTheEventAndItsJson) {
  std::atomic<int> calls{0};
  EventFrames frames(CountingRender{&calls});
  const auto id = VideoId::generate();
  const auto event = progress(id, 42, 12.5);
  auto data = frames.data(event);
  auto frame = frames.frame(event);
  ASSERT_TRUE(data && frame);
  EXPECT_EQ(*data, CountingRender{&calls}(event));
  EXPECT_EQ(*frame, http::sse_event("42", "progress", *data));
  EXPECT_EQ(nlohmann::json::parse(*data).at("percent"), 12.5);
}

TEST(EventFrames, EverySubscriberGetsTheSameBytesRenderedOnce) {
  std::atomic<int> calls{0};
  EventFrames frames(CountingRender{&calls});
  const auto id = VideoId::generate();
  const auto event = progress(id, 8, 50);
  const auto first = frames.frame(event);
  // The same event asked for again, as a copy a subscriber got from the book: the same buffer.
  for (int i = 0; i < 100; ++i) EXPECT_EQ(frames.frame(progress(id, 8, 50)).get(), first.get());
  EXPECT_EQ(frames.data(event).get(), frames.data(event).get());
  EXPECT_EQ(frames.rendered(), 1u);
  EXPECT_EQ(calls.load(), 1);
}

TEST(EventFrames, EventsOfOtherIdsOrJobsAreFramesOfTheirOwn) {
  std::atomic<int> calls{0};
  EventFrames frames(CountingRender{&calls});
  const auto id = VideoId::generate();
  const auto other = VideoId::generate();
  auto a = frames.frame(progress(id, 8, 50));
  auto b = frames.frame(progress(id, 10, 60));
  auto c = frames.frame(progress(other, 8, 70));
  EXPECT_NE(*a, *b);
  EXPECT_NE(*a, *c);
  EXPECT_NE(c->find(other.str()), std::string::npos);
  EXPECT_EQ(frames.rendered(), 3u);
}

TEST(EventFrames, ManyStreamsAtOnceRenderAnEventOnce) {
  std::atomic<int> calls{0};
  EventFrames frames(CountingRender{&calls});
  const auto id = VideoId::generate();
  constexpr int kThreads = 8;
  constexpr int kEvents = 200;
  std::vector<std::vector<const std::string*>> seen(kThreads);
  std::vector<std::vector<EventFrames::Bytes>> kept(kThreads);  // keeps the buffers (and so their addresses)
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int e = 0; e < kEvents; ++e) {
        auto frame = frames.frame(progress(id, static_cast<EventId>(2 * e), e / 2.0));
        seen[t].push_back(frame.get());
        kept[t].push_back(std::move(frame));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(calls.load(), kEvents);
  for (int t = 1; t < kThreads; ++t) EXPECT_EQ(seen[t], seen[0]);
}

TEST(EventFrames, TheOldestFramesMakeRoomAndAreRenderedAgainWhenAskedFor) {
  std::atomic<int> calls{0};
  EventFrames frames(CountingRender{&calls}, /*capacity=*/2);
  const auto id = VideoId::generate();
  const auto held = frames.frame(progress(id, 2, 10));  // a stream still writing it keeps it alive
  const std::string text = *held;
  frames.frame(progress(id, 4, 20));
  frames.frame(progress(id, 6, 30));  // evicts id 2
  EXPECT_EQ(*held, text);
  EXPECT_EQ(frames.rendered(), 3u);
  auto again = frames.frame(progress(id, 2, 10));
  EXPECT_EQ(*again, text);
  EXPECT_EQ(frames.rendered(), 4u);
  frames.frame(progress(id, 2, 10));  // kept again
  EXPECT_EQ(frames.rendered(), 4u);
}

}  // namespace
}  // namespace framepress::api
