#include "api/book_waiter.h"

#include <chrono>
#include <future>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

namespace framepress::api {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

/// Only a broken waiter ever waits this long; no test asserts a duration.
constexpr auto kPatience = std::chrono::seconds(60);
/// "Nothing changed": how long a wait that must time out is given.
constexpr auto kQuiet = std::chrono::milliseconds(50);

class BookWaiterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    watched = create();
    // Progress is visible (and so a change) only while its rendition is encoding.
    book.apply(++position, Event{watched, now_ms(), RenditionStarted{"360p", 1, "w"}});
  }

  VideoId create() {
    const auto id = VideoId::generate();
    JobCreated created;
    created.filename = "clip.mp4";
    created.source_key = ObjectKey::source_of(id);
    created.renditions = {RenditionSpec{"360p", 360, 640, 360, "sd"}};
    book.apply(++position, Event{id, now_ms(), created});
    return id;
  }
  void progress(const VideoId& id, double percent) {
    book.apply(++position, Event{id, now_ms(), RenditionProgress{"360p", percent, 30, 1, 5}});
  }

  /// Runs `body` as a coroutine on a strand of `io` (as a stream runs) and returns what it returns.
  template <typename Body>
  auto run(Body body) {
    auto strand = asio::make_strand(io);
    auto result = asio::co_spawn(strand, body(strand), asio::use_future);
    io.restart();
    io.run();
    return result.get();
  }

  asio::io_context io;
  JobBook book;
  VideoId watched;
  LogPosition position = 0;
};

TEST_F(BookWaiterTest, ABurstOfChangesWakesOnceAndThenNothingIsPending) {
  auto woken = run([&](asio::any_io_executor strand) -> asio::awaitable<std::vector<bool>> {
    BookWaiter waiter(book, strand, {watched});
    std::vector<bool> answers;
    // Three changes before the coroutine waits (it was busy writing): one wake-up reads them all.
    progress(watched, 10);
    progress(watched, 20);
    progress(watched, 30);
    answers.push_back(co_await waiter.wait(kPatience));
    answers.push_back(co_await waiter.wait(kQuiet));
    co_return answers;
  });
  EXPECT_EQ(woken, (std::vector<bool>{true, false}));
}

TEST_F(BookWaiterTest, OtherJobsChangesDoNotWakeIt) {
  const auto other = create();
  auto woken = run([&](asio::any_io_executor strand) -> asio::awaitable<bool> {
    BookWaiter waiter(book, strand, {watched});
    book.apply(++position, Event{other, now_ms(), RenditionStarted{"360p", 1, "w"}});
    co_return co_await waiter.wait(kQuiet);
  });
  EXPECT_FALSE(woken);
}

TEST_F(BookWaiterTest, AChangeFromAnotherThreadWakesAWaitingCoroutineEveryTime) {
  auto woken = run([&](asio::any_io_executor strand) -> asio::awaitable<std::vector<bool>> {
    BookWaiter waiter(book, strand, {watched});
    std::vector<bool> answers;
    for (int round = 0; round < 20; ++round) {
      // Applied on a bus thread while the coroutine waits (or is about to): never lost.
      std::thread bus([&, round] { progress(watched, round); });
      answers.push_back(co_await waiter.wait(kPatience));
      bus.join();
    }
    co_return answers;
  });
  EXPECT_EQ(woken, std::vector<bool>(20, true));
}

}  // namespace
}  // namespace framepress::api
