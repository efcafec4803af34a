// The commit bookkeeping of a task partition, alone (no broker needed).

#include "bus/kafka/offset_tracker.h"

#include <gtest/gtest.h>

namespace framepress::kafka {
namespace {

using Fetched = OffsetTracker::Fetched;

TEST(OffsetTracker, KnowsNothingBeforeTheFirstFetch) { EXPECT_FALSE(OffsetTracker().commit()); }

TEST(OffsetTracker, CommitsUpToTheLowestUnfinishedOffset) {
  OffsetTracker t;
  for (std::int64_t o = 10; o < 16; ++o) EXPECT_EQ(t.fetched(o), Fetched::fresh);
  EXPECT_EQ(t.commit()->offset, 10);
  t.finish(14);
  t.finish(11);
  EXPECT_EQ(t.commit()->offset, 10);
  t.finish(10);
  EXPECT_EQ(t.commit()->offset, 12);
  EXPECT_EQ(t.commit()->metadata, "fp1:2");  // 14 = 12 + 2
  t.finish(12);
  t.finish(13);
  EXPECT_EQ(t.commit()->offset, 15);
  EXPECT_EQ(t.commit()->metadata, "fp1:");
  t.finish(15);
  EXPECT_EQ(t.commit()->offset, 16);
  EXPECT_EQ(t.open_count(), 0u);
}

TEST(OffsetTracker, ANewOwnerSkipsExactlyWhatThePreviousOneFinished) {
  OffsetTracker before;
  for (std::int64_t o = 0; o < 8; ++o) before.fetched(o);
  for (std::int64_t o : {0, 1, 3, 4, 5, 7}) before.finish(o);
  const auto commit = *before.commit();
  EXPECT_EQ(commit.offset, 2);
  EXPECT_EQ(commit.metadata, "fp1:1-3,5");

  OffsetTracker after(commit.offset, commit.metadata);
  std::vector<std::int64_t> redone;
  for (std::int64_t o = 2; o < 10; ++o) {
    if (after.fetched(o) == Fetched::fresh) redone.push_back(o);
  }
  EXPECT_EQ(redone, (std::vector<std::int64_t>{2, 6, 8, 9}));
  after.finish(2);
  EXPECT_EQ(after.commit()->offset, 6);
  EXPECT_EQ(after.commit()->metadata, "fp1:1");  // 7
}

TEST(OffsetTracker, FinishedOffsetsRightAtTheCommitPointNeedNoFetch) {
  OffsetTracker t(5, "fp1:0-2,4");  // 5, 6, 7 and 9 were finished
  EXPECT_EQ(t.commit()->offset, 8);
  EXPECT_EQ(t.commit()->metadata, "fp1:1");
}

TEST(OffsetTracker, AFetchAgainAfterPauseIsNotASecondTask) {
  OffsetTracker t;
  EXPECT_EQ(t.fetched(3), Fetched::fresh);
  EXPECT_EQ(t.fetched(4), Fetched::fresh);
  EXPECT_EQ(t.fetched(3), Fetched::seen);
  t.finish(3);
  EXPECT_EQ(t.fetched(3), Fetched::seen);
  EXPECT_EQ(t.commit()->offset, 4);
}

TEST(OffsetTracker, GapsInTheLogDoNotHoldTheCommitBack) {
  OffsetTracker t;
  t.fetched(0);
  t.fetched(5);  // 1-4 are gone (compaction) or were never records
  t.finish(0);
  EXPECT_EQ(t.commit()->offset, 5);
  t.finish(5);
  EXPECT_EQ(t.commit()->offset, 6);
}

TEST(OffsetTracker, ATaskFinishedWhileItsPartitionWasAwayIsSkippedWhenItComesBack) {
  // Lost with 3 and 4 fetched and 3 finished; 4 completes while the partition is away.
  OffsetTracker before;
  before.fetched(3);
  before.fetched(4);
  before.finish(3);
  const auto lost = *before.commit();
  std::set<std::int64_t> done = OffsetTracker::parse_metadata(lost.metadata, lost.offset);
  done.insert(4);
  OffsetTracker back(lost.offset, std::move(done));
  EXPECT_EQ(back.fetched(4), Fetched::done);
  EXPECT_EQ(back.fetched(5), Fetched::fresh);
  EXPECT_EQ(back.commit()->offset, 5);

  // Or it completes after the partition came back, before it is fetched again.
  OffsetTracker again(std::int64_t{4}, std::set<std::int64_t>{});
  again.mark_done(4);
  EXPECT_EQ(again.fetched(4), Fetched::done);
  again.mark_done(2);  // below the start: nothing to do
  EXPECT_EQ(again.commit()->offset, 5);
}

TEST(OffsetTracker, ForeignOrDamagedMetadataMeansNothingFinished) {
  EXPECT_TRUE(OffsetTracker::parse_metadata("", 0).empty());
  EXPECT_TRUE(OffsetTracker::parse_metadata("some other client's note", 0).empty());
  EXPECT_EQ(OffsetTracker::parse_metadata("fp1:x,2,5-3,7-8,-1", 10), (std::set<std::int64_t>{12, 17, 18}));
  EXPECT_TRUE(OffsetTracker::parse_metadata("fp1:0-99999999999", 0).empty());
}

TEST(OffsetTracker, MetadataStaysWithinItsBound) {
  OffsetTracker t;
  for (std::int64_t o = 0; o < 20000; ++o) t.fetched(o);
  for (std::int64_t o = 1; o < 20000; o += 2) t.finish(o);  // every other one: no runs to compress
  const auto commit = *t.commit();
  EXPECT_EQ(commit.offset, 0);
  EXPECT_LE(commit.metadata.size(), OffsetTracker::max_metadata_bytes);
  // What is listed is right; what was cut is merely done again.
  for (auto o : OffsetTracker::parse_metadata(commit.metadata, commit.offset)) EXPECT_EQ(o % 2, 1);
}

}  // namespace
}  // namespace framepress::kafka
