#include "api/book_waiter.h"

#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace framepress::api {

namespace asio = boost::asio;

BookWaiter::BookWaiter(JobBook& book, asio::any_io_executor executor, const std::vector<VideoId>& ids)
    : book_(book), shared_(std::make_shared<Shared>(executor)) {
  std::weak_ptr<Shared> weak = shared_;
  handle_ = book_.listen_to(ids, [weak, executor](const VideoId&) {
    auto shared = weak.lock();
    if (!shared) return;
    // Only the change that raises the flag wakes the coroutine: the ones after it, until wait() lowers the
    // flag, are read by that same wake-up. A job's events come in bursts, so with many streams this saves
    // most of the posts (and of the empty rounds they caused).
    if (shared->changed.exchange(true)) return;
    asio::post(executor, [weak] {
      if (auto s = weak.lock()) s->timer.cancel();
    });
  });
}

BookWaiter::~BookWaiter() { book_.unlisten(handle_); }

asio::awaitable<bool> BookWaiter::wait(std::chrono::steady_clock::duration timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (shared_->changed.exchange(false)) co_return true;
    if (std::chrono::steady_clock::now() >= deadline) co_return false;
    shared_->timer.expires_at(deadline);
    boost::system::error_code ec;
    co_await shared_->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec != asio::error::operation_aborted) co_return shared_->changed.exchange(false);
    // Cancelled with nothing new: a cancel posted for a change that an earlier wait() already returned
    // (it ran while the coroutine was busy). Not a time-out: wait on.
  }
}

}  // namespace framepress::api
