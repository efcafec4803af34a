#include "core/job_book.h"

#include <gtest/gtest.h>

namespace framepress {
namespace {

class JobBookTest : public ::testing::Test {
 protected:
  void SetUp() override {
    id = VideoId::generate();
    JobCreated created;
    created.filename = "clip.mp4";
    created.source_key = ObjectKey::source_of(id);
    created.renditions = {RenditionSpec{"360p", 360, 640, 360, "sd"}, RenditionSpec{"720p", 720, 1280, 720, "hd"}};
    apply(created);
  }

  std::vector<VisibleEvent> apply(EventPayload payload) { return book.apply(++position, Event{id, ++clock, payload}); }
  JobView view() { return *book.get(id); }

  std::vector<std::string> names(const std::vector<VisibleEvent>& events) {
    std::vector<std::string> out;
    for (const auto& e : events) out.emplace_back(sse_name(e.event));
    return out;
  }

  JobBook book;
  VideoId id;
  LogPosition position = 0;
  TimestampMs clock = 1000;
};

}  // namespace

TEST_F(JobBookTest, AJobRunsFromQueuedToCompleted) {
  EXPECT_EQ(view().state, JobState::queued);
  apply(RenditionStarted{"360p", 1, "w"});
  EXPECT_EQ(view().state, JobState::processing);
  EXPECT_EQ(view().rendition("360p")->state, RenditionState::encoding);
  apply(RenditionProgress{"360p", 50, 100, 3, 1});
  EXPECT_DOUBLE_EQ(view().rendition("360p")->percent, 50);
  EXPECT_EQ(names(apply(RenditionDone{"360p", ObjectKey("k"), 10, 20, 1, 640, 360})),
            (std::vector<std::string>{"rendition"}));
  apply(RenditionStarted{"720p", 1, "w"});
  auto last = apply(RenditionDone{"720p", ObjectKey("k2"), 10, 20, 1, 1280, 720});
  EXPECT_EQ(names(last), (std::vector<std::string>{"rendition", "completed"}));
  EXPECT_EQ(last[1].id, last[0].id + 1);  // derived from the same position
  EXPECT_EQ(view().state, JobState::completed);
  EXPECT_EQ(view().last_event_id, last[1].id);
}

TEST_F(JobBookTest, CountsJobsByStateWithEveryStateNamed) {
  auto counts = book.count_by_state();
  EXPECT_EQ(counts.size(), 5u);  // zeros included, so a state that emptied reads 0
  EXPECT_EQ(counts[JobState::queued], 1u);
  EXPECT_EQ(counts[JobState::processing], 0u);
  apply(RenditionStarted{"360p", 1, "w"});
  counts = book.count_by_state();
  EXPECT_EQ(counts[JobState::queued], 0u);
  EXPECT_EQ(counts[JobState::processing], 1u);
  apply(JobCancelled{});
  counts = book.count_by_state();
  EXPECT_EQ(counts[JobState::processing], 0u);
  EXPECT_EQ(counts[JobState::cancelled], 1u);
}

TEST_F(JobBookTest, DuplicatesAndLateEventsAreDropped) {
  apply(RenditionStarted{"360p", 1, "w"});
  EXPECT_EQ(apply(RenditionDone{"360p", ObjectKey("k"), 10, 20, 1, 640, 360}).size(), 1u);
  EXPECT_TRUE(apply(RenditionDone{"360p", ObjectKey("k"), 10, 20, 1, 640, 360}).empty());  // redelivered
  EXPECT_TRUE(apply(RenditionStarted{"360p", 2, "w"}).empty());
  EXPECT_TRUE(apply(RenditionProgress{"360p", 10, 1, 1, 1}).empty());
  EXPECT_TRUE(apply(RenditionDone{"1080p", ObjectKey("k"), 10, 20, 1, 640, 360}).empty());  // not planned
  EXPECT_TRUE(book.apply(++position, Event{VideoId::generate(), clock, RenditionStarted{"360p", 1, "w"}}).empty());
  JobCreated again;
  EXPECT_TRUE(apply(again).empty());
  EXPECT_EQ(view().rendition("360p")->state, RenditionState::done);
  EXPECT_EQ(view().renditions.size(), 2u);
}

TEST_F(JobBookTest, ARetriedFailureRequeuesAndAFinalOneFailsTheJobOnceAllHaveEnded) {
  apply(RenditionStarted{"360p", 1, "w"});
  EXPECT_EQ(names(apply(RenditionFailed{"360p", 1, "boom", true})), (std::vector<std::string>{"retrying"}));
  EXPECT_EQ(view().rendition("360p")->state, RenditionState::queued);
  apply(RenditionStarted{"360p", 2, "w"});
  EXPECT_EQ(view().rendition("360p")->attempt, 2);
  EXPECT_EQ(names(apply(RenditionFailed{"360p", 2, "boom again", false})),
            (std::vector<std::string>{"rendition_failed"}));
  EXPECT_EQ(view().state, JobState::processing);  // 720p still runs
  apply(RenditionStarted{"720p", 1, "w"});
  auto last = apply(RenditionDone{"720p", ObjectKey("k2"), 10, 20, 1, 1280, 720});
  EXPECT_EQ(names(last), (std::vector<std::string>{"rendition", "failed"}));
  EXPECT_EQ(view().state, JobState::failed);
  EXPECT_EQ(view().error, "360p: boom again");
  EXPECT_EQ(std::get<JobFailed>(last[1].event.payload).reason, "boom again");
}

TEST_F(JobBookTest, CancelEndsEveryOpenRenditionAndLaterWorkIsIgnored) {
  apply(RenditionStarted{"360p", 1, "w"});
  apply(RenditionDone{"360p", ObjectKey("k"), 10, 20, 1, 640, 360});
  apply(RenditionStarted{"720p", 1, "w"});
  EXPECT_EQ(names(apply(JobCancelled{})), (std::vector<std::string>{"cancelled"}));
  EXPECT_EQ(view().state, JobState::cancelled);
  EXPECT_EQ(view().rendition("360p")->state, RenditionState::done);
  EXPECT_EQ(view().rendition("720p")->state, RenditionState::cancelled);
  EXPECT_TRUE(apply(RenditionDone{"720p", ObjectKey("k2"), 10, 20, 1, 1280, 720}).empty());
  EXPECT_TRUE(apply(JobCancelled{}).empty());
  EXPECT_EQ(names(apply(JobDeleted{})), (std::vector<std::string>{"deleted"}));
  EXPECT_FALSE(book.get(id).has_value());
}

TEST_F(JobBookTest, ReplayAfterAnIdGivesEveryStateChangeAndOnlyTheLatestProgress) {
  apply(RenditionStarted{"360p", 1, "w"});
  EventId seen = view().last_event_id;
  apply(RenditionProgress{"360p", 10, 1, 1, 1});
  apply(RenditionProgress{"360p", 20, 1, 1, 1});
  apply(RenditionStarted{"720p", 1, "w"});
  apply(RenditionProgress{"720p", 5, 1, 1, 1});
  apply(RenditionProgress{"360p", 30, 1, 1, 1});
  auto missed = book.events_after(id, seen);
  ASSERT_EQ(names(missed), (std::vector<std::string>{"started", "progress", "progress"}));
  EXPECT_DOUBLE_EQ(std::get<RenditionProgress>(missed[1].event.payload).percent, 5);
  EXPECT_DOUBLE_EQ(std::get<RenditionProgress>(missed[2].event.payload).percent, 30);
  for (std::size_t i = 1; i < missed.size(); ++i) EXPECT_LT(missed[i - 1].id, missed[i].id);
  // Progress of a rendition that has ended is not replayed: its end is.
  apply(RenditionDone{"360p", ObjectKey("k"), 10, 20, 1, 640, 360});
  EXPECT_EQ(names(book.events_after(id, seen)),
            (std::vector<std::string>{"started", "progress", "rendition"}));
  EXPECT_TRUE(book.events_after(id, view().last_event_id).empty());
  EXPECT_EQ(book.events_after(id, 0).front().event.payload.index(), EventPayload{JobCreated{}}.index());
}

TEST_F(JobBookTest, ReadersOfTheSameLogDeriveTheSameIds) {
  // A live process and a restarted one that replays the same log.
  JobBook replayed;
  JobBook live;
  auto id2 = VideoId::generate();
  JobCreated created;
  created.renditions = {RenditionSpec{"360p", 360, 640, 360, "sd"}};
  std::vector<Event> events{Event{id2, 1, created}, Event{id2, 2, RenditionStarted{"360p", 1, "w"}},
                            Event{id2, 3, RenditionDone{"360p", ObjectKey("k"), 1, 1, 1, 1, 1}}};
  std::vector<EventId> ids_live, ids_replayed;
  LogPosition pos = 40;
  for (const auto& e : events) {
    for (const auto& v : live.apply(pos, e)) ids_live.push_back(v.id);
    for (const auto& v : replayed.apply(pos, e)) ids_replayed.push_back(v.id);
    pos += 3;
  }
  EXPECT_EQ(ids_live, ids_replayed);
  EXPECT_EQ(ids_live, (std::vector<EventId>{80, 86, 92, 93}));
}

TEST(JobBookList, NewestFirstInPages) {
  JobBook book;
  std::vector<VideoId> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(VideoId::generate());
    book.apply(static_cast<LogPosition>(i + 1), Event{ids.back(), i, JobCreated{}});
  }
  std::sort(ids.begin(), ids.end());
  auto page = book.list(2);
  ASSERT_EQ(page.jobs.size(), 2u);
  EXPECT_EQ(page.total, 5u);
  EXPECT_EQ(page.jobs[0].id, ids[4]);
  EXPECT_EQ(page.jobs[1].id, ids[3]);
  ASSERT_TRUE(page.next_before.has_value());
  auto second = book.list(2, page.next_before);
  EXPECT_EQ(second.jobs[0].id, ids[2]);
  auto third = book.list(2, second.next_before);
  ASSERT_EQ(third.jobs.size(), 1u);
  EXPECT_EQ(third.jobs[0].id, ids[0]);
  EXPECT_FALSE(third.next_before.has_value());
}

TEST(JobBookListeners, AreToldOfChangesUntilTheyLeave) {
  JobBook book;
  int calls = 0;
  auto handle = book.listen([&](const VideoId&) { ++calls; });
  auto id = VideoId::generate();
  book.apply(1, Event{id, 1, JobCreated{}});
  book.apply(2, Event{id, 1, JobCreated{}});  // a duplicate tells no one
  EXPECT_EQ(calls, 1);
  book.unlisten(handle);
  book.apply(3, Event{id, 1, JobCancelled{}});
  EXPECT_EQ(calls, 1);
}

}  // namespace framepress

namespace framepress {

TEST(JobBookListeners, AJobListenerHearsOnlyItsJobsOnceEachUntilItLeaves) {
  JobBook book;
  const auto watched = VideoId::generate();
  const auto also = VideoId::generate();
  const auto other = VideoId::generate();
  std::vector<VideoId> heard;
  std::vector<VideoId> everything;
  auto handle = book.listen_to({watched, also, watched}, [&](const VideoId& id) { heard.push_back(id); });
  auto all = book.listen([&](const VideoId& id) { everything.push_back(id); });
  book.apply(1, Event{watched, 1, JobCreated{}});
  book.apply(2, Event{other, 1, JobCreated{}});
  book.apply(3, Event{also, 1, JobCreated{}});
  EXPECT_EQ(heard, (std::vector<VideoId>{watched, also}));  // once per change, though named twice
  EXPECT_EQ(everything, (std::vector<VideoId>{watched, other, also}));
  book.unlisten(handle);
  book.apply(4, Event{watched, 1, JobCancelled{}});
  EXPECT_EQ(heard.size(), 2u);
  EXPECT_EQ(everything.size(), 4u);
  book.unlisten(all);
  book.unlisten(all);  // twice: harmless
}

TEST(JobBookListeners, ManyJobListenersLeaveInAnyOrder) {
  JobBook book;
  const auto id = VideoId::generate();
  int calls = 0;
  std::vector<std::uint64_t> handles;
  for (int i = 0; i < 100; ++i) handles.push_back(book.listen_to({id}, [&](const VideoId&) { ++calls; }));
  book.apply(1, Event{id, 1, JobCreated{}});
  EXPECT_EQ(calls, 100);
  for (std::size_t i = 0; i < handles.size(); i += 2) book.unlisten(handles[i]);
  book.apply(2, Event{id, 1, JobCancelled{}});
  EXPECT_EQ(calls, 150);
}

}  // namespace framepress
