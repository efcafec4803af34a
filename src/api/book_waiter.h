#pragma once
// Lets a streaming coroutine sleep until one of its jobs changes in the job book.

#include <atomic>
#include <chrono>
#include <memory>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/job_book.h"

namespace framepress::api {

/// Lives in one coroutine on one strand. The book's listener (on a bus thread) only sets a flag and posts a
/// cancel of the timer onto the strand, so a change that lands while the coroutine is busy writing is seen
/// at its next wait() instead of being lost.
class BookWaiter {
 public:
  BookWaiter(JobBook& book, boost::asio::any_io_executor executor, const std::vector<VideoId>& ids);
  ~BookWaiter();
  BookWaiter(const BookWaiter&) = delete;
  BookWaiter& operator=(const BookWaiter&) = delete;

  /// Returns true as soon as a watched job has changed since the previous call, false after `timeout`
  /// (never earlier).
  boost::asio::awaitable<bool> wait(std::chrono::steady_clock::duration timeout);

 private:
  struct Shared {
    explicit Shared(boost::asio::any_io_executor executor) : timer(std::move(executor)) {}
    boost::asio::steady_timer timer;
    std::atomic<bool> changed{false};
  };
  JobBook& book_;
  std::shared_ptr<Shared> shared_;
  std::uint64_t handle_ = 0;
};

}  // namespace framepress::api
